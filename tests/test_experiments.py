"""mnistlab.experiments: runs over seeds, statistics, cross-validation and the disk cache (tiny data)."""
import json

import numpy as np
import pandas as pd
import pytest
import torch

import mnistlab as ml
import mnistlab.experiments as ex
from conftest import requires_data

pytestmark = requires_data


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    folder = tmp_path / "cache"
    monkeypatch.setenv("MNISTLAB_CACHE", str(folder))
    return folder


def tiny(name="logreg", **kw):
    base = dict(model="logreg", epochs=1, optimizer="adam", lr=1e-2, batch_size=64,
                train_limit=400, test_limit=300, val="test")
    return ml.TrainConfig(name, **{**base, **kw})


def count_fits(monkeypatch):
    calls = []
    import mnistlab.experiments.runs as runs

    real = runs.train_model

    def spy(*a, **k):
        calls.append(1)
        return real(*a, **k)

    monkeypatch.setattr(runs, "train_model", spy)
    return calls


def test_run_returns_tidy_history(cache):
    df = ex.run(tiny(epochs=2), seed=3)
    assert list(df["epoch"]) == [1, 2] and set(df["seed"]) == {3} and set(df["config"]) == {"logreg"}
    for col in ("train_loss", "train_acc", "val_loss", "val_acc", "seconds", "test_acc", "test_loss", "train_seconds"):
        assert col in df and df[col].notna().all(), col
    assert df["test_n"].iloc[0] == 300
    assert df["test_acc"].iloc[0] == pytest.approx(df["val_acc"].iloc[-1])  # val="test": last epoch is the test score
    assert 0.5 < df["test_acc"].iloc[0] <= 1.0  # logistic regression learns something from 400 images
    assert not df["cached"].any() and len(list(cache.glob("*.json"))) == 1


def test_same_seed_reproduces_and_seeds_differ():
    a = ex.run(tiny(), 0, cache=False)
    b = ex.run(tiny(), 0, cache=False)
    c = ex.run(tiny(), 1, cache=False)
    assert a["train_loss"].tolist() == b["train_loss"].tolist()
    assert a["train_loss"].tolist() != c["train_loss"].tolist()


def test_untrained_baseline_is_near_chance():
    df = ex.run_many(tiny("untrained", model="lenet5", epochs=0), [0, 1], progress=False)
    assert len(df) == 2 and (df["epoch"] == 0).all()
    assert (df["test_acc"] < 0.3).all() and df["val_acc"].notna().all()


def test_cache_hit_does_not_retrain(monkeypatch):
    calls = count_fits(monkeypatch)
    first = ex.run_many(tiny(), [0, 1], progress=False)
    assert len(calls) == 2
    again = ex.run_many(tiny(), [0, 1], progress=False)
    assert len(calls) == 2 and again["cached"].all()
    cols = ["config", "seed", "epoch", "train_loss", "val_acc", "test_acc", "seconds"]
    pd.testing.assert_frame_equal(first[cols], again[cols])
    # the display name is not part of the key: a renamed recipe reuses the cached runs
    renamed = ex.run(tiny("another name"), 0)
    assert len(calls) == 2 and renamed["config"].iloc[0] == "another name"


@pytest.mark.parametrize("damage", ["truncate", "flip", "garbage", "empty"])
def test_corrupt_cache_entry_is_detected_and_recomputed(cache, monkeypatch, damage):
    ex.run(tiny(), 0)
    (path,) = cache.glob("*.json")
    text = path.read_text()
    if damage == "truncate":
        path.write_text(text[: len(text) // 2])
    elif damage == "flip":  # still valid JSON, but the numbers no longer match the checksum
        outer = json.loads(text)
        outer["body"] = outer["body"].replace('"test_acc":0.', '"test_acc":1.', 1)
        assert outer["body"] != json.loads(text)["body"]
        path.write_text(json.dumps(outer))
    elif damage == "garbage":
        path.write_bytes(b"\x00\xff not json")
    else:
        path.write_text("")
    calls = count_fits(monkeypatch)
    with pytest.warns(RuntimeWarning, match="damaged"):
        df = ex.run(tiny(), 0)
    assert len(calls) == 1 and not df["cached"].any() and df["test_acc"].iloc[0] <= 1.0
    assert ex.run(tiny(), 0)["cached"].all()  # rewritten, sound again


def test_cache_writes_are_atomic(cache):
    ex.run(tiny(), 0)
    assert [p.name for p in cache.iterdir() if p.suffix != ".json"] == []  # no temporary files left behind


def test_hash_depends_on_recipe_and_seed_not_name():
    c = tiny()
    h = ex.config_hash(c, 0)
    assert h == ex.config_hash(tiny(), 0) and len(h) == 64
    assert h == ex.config_hash(c.but(name="other"), 0)
    assert h != ex.config_hash(c, 1)
    assert h != ex.config_hash(c.but(lr=2e-2), 0)
    assert h != ex.config_hash(c.but(augment=ml.Augment()), 0)
    assert h != ex.config_hash(c, 0, kind="cv", fold=0)
    assert ex.config_hash(dict(c.to_dict()), 0) == h  # dicts and Configs hash alike


def test_config_validation():
    with pytest.raises(ValueError, match="Unknown config keys"):
        ex.as_config({"name": "x", "learning_rate": 0.1})
    with pytest.raises(ValueError, match="val"):
        ml.TrainConfig("x", val="train")
    with pytest.raises(ValueError, match="early_stopping needs"):
        ml.TrainConfig("x", val=None, early_stopping={"patience": 2})
    with pytest.raises(TypeError, match="plain JSON"):
        ml.TrainConfig("x", model_kwargs={"act": object()})
    aug = ml.TrainConfig("x", augment=ml.Augment(rotation=45)).make_augment()
    assert isinstance(aug, ml.Augment) and aug.rotation == 45 and aug.scale == (0.9, 1.1)


def test_summarize_mean_std_ci():
    df = pd.DataFrame({"config": ["a"] * 3 + ["b"] * 3, "seed": [0, 1, 2] * 2, "epoch": 1,
                       "test_acc": [0.90, 0.92, 0.94, 0.5, 0.5, 0.5]})
    s = ex.summarize(df)
    assert list(s.index) == ["a", "b"]  # order of appearance
    assert s.loc["a", "mean"] == pytest.approx(0.92) and s.loc["a", "std"] == pytest.approx(0.02)
    half = 4.302652729911275 * 0.02 / np.sqrt(3)  # t(0.975, 2)
    assert s.loc["a", "ci_low"] == pytest.approx(0.92 - half) and s.loc["a", "ci_high"] == pytest.approx(0.92 + half)
    assert s.loc["b", "std"] == 0 and s.loc["a", "n"] == 3
    with pytest.raises(KeyError, match="nope"):
        ex.summarize(df, "nope")


def test_summarize_uses_last_epoch_of_each_run():
    df = pd.DataFrame({"config": "a", "seed": [0, 0, 1, 1], "epoch": [1, 2, 1, 2], "val_acc": [0.1, 0.8, 0.2, 0.6]})
    assert ex.summarize(df, "val_acc").loc["a", "mean"] == pytest.approx(0.7)


def test_summarize_and_plot_seeds_count_folds_that_share_a_seed():
    # cross_validate's frame: 3 folds, one seed, 2 epochs each; the folds are the repeats
    cv = pd.DataFrame({"config": "a", "seed": 0, "fold": [0, 0, 1, 1, 2, 2], "epoch": [1, 2] * 3,
                       "fold_acc": [0.5, 0.90, 0.5, 0.94, 0.5, 0.98]})
    s = ex.summarize(cv, "fold_acc", unit="fold").loc["a"]
    assert s["n"] == 3 and s["mean"] == pytest.approx(0.94) and s["ci_low"] < 0.90
    assert ex.summarize(cv, "fold_acc").loc["a", "n"] == 1  # by seed, the three folds are one run

    import matplotlib.pyplot as plt
    import mnistlab.viz.experiments as vx

    fig = vx.plot_seeds(cv, "fold_acc", unit="fold")
    ax = fig.axes[0]
    mean_marker = [l for l in ax.lines if l.get_label() == "mean"][0]
    assert mean_marker.get_xdata()[0] == pytest.approx(94.0)
    ci = [l for l in ax.lines if l.get_label() == "95% CI of the mean"][0]
    assert ax.collections and ci.get_xdata()[0] < 90.0 < 98.0 < ci.get_xdata()[-1]
    plt.close(fig)


def _seed_runs(means: dict, spread: float = 0.002, seeds=(0, 1, 2)) -> pd.DataFrame:
    rows = [{"config": c, "seed": s, "epoch": 1, "test_acc": m + spread * (s - 1)} for c, m in means.items() for s in seeds]
    return pd.DataFrame(rows)


def test_plot_seeds_zooms_on_the_differences_and_labels_an_outlier_off_scale():
    """One config far below the rest (04's SGD at its default rate): the axis frames the others, the
    outlier is named off scale with its values, and no interval is drawn past 100%."""
    import matplotlib.pyplot as plt
    import mnistlab.viz.experiments as vx

    means = {"a": 0.972, "b": 0.975, "c": 0.970, "d": 0.977, "e": 0.973}
    df = pd.concat([_seed_runs(means), pd.DataFrame({"config": "sgd", "seed": [0, 1, 2], "epoch": 1,
                                                      "test_acc": [0.70, 0.858, 0.855]})])
    assert vx._far_off({"a": 1.0, "b": 1.01, "c": 0.99, "d": 1.0, "e": 0.5}) == ["e"]
    assert vx._far_off({"a": 1.0, "b": 1.1, "c": 0.9}) == []  # too few to tell
    fig = vx.plot_seeds(df)
    ax = fig.axes[0]
    lo, hi = ax.get_xlim()
    assert 96.0 < lo < 96.9 and 97.8 < hi < 98.5  # the five close configs fill the axis
    texts = [t.get_text() for t in ax.texts]
    assert len(texts) == 1 and "off scale" in texts[0] and "70.0%" in texts[0] and "80.4%" in texts[0]
    for line in ax.lines:
        assert np.all(np.asarray(line.get_xdata(), float) <= hi) and np.all(np.asarray(line.get_xdata(), float) >= lo)
    plt.close(fig)
    # an interval that would pass 100% ends at 100%, marked as cut where it leaves the axis
    wide = _seed_runs({"a": 0.99, "b": 0.991, "c": 0.992, "d": 0.99}, spread=0.001)
    wide.loc[(wide.config == "d"), "test_acc"] = [0.999, 0.97, 0.999]
    fig = vx.plot_seeds(wide)
    ci = [l for l in fig.axes[0].lines if l.get_color() == vx.PALETTE[0] and len(l.get_xdata()) == 2]
    assert max(max(l.get_xdata()) for l in ci) <= 100.0
    plt.close(fig)


def frame(name, values):
    return pd.DataFrame({"config": name, "seed": range(len(values)), "epoch": 1, "test_acc": values})


def test_compare_paired_verdicts():
    a = frame("a", [0.970, 0.975, 0.972, 0.968, 0.971])
    better = frame("b", [0.980, 0.986, 0.981, 0.979, 0.982])  # +1 point on every seed
    r = ex.compare(a, better)
    assert r["verdict"] == ex.Verdict.HELPS and r["p_value"] < 0.001
    assert r["diff"] == pytest.approx(0.0104, abs=1e-4) and r["ci_low"] < r["diff"] < r["ci_high"] and r["n"] == 5
    noisy = frame("c", [0.975, 0.969, 0.973, 0.970, 0.969])
    assert ex.compare(a, noisy)["verdict"] == "within noise"
    assert ex.compare(a, a)["verdict"] == "within noise"
    assert ex.compare(a.head(1), better.head(1))["verdict"] == "too few seeds"
    with pytest.raises(ValueError, match="one config"):
        ex.compare(pd.concat([a, better]), a)


def test_compare_steps_and_real_runs():
    df = ex.run_grid([tiny("untrained", epochs=0), tiny("trained", epochs=2)], [0, 1, 2], progress=False)
    steps = ex.compare_steps(df)
    assert len(steps) == 1 and steps.loc[0, "a"] == "untrained" and steps.loc[0, "b"] == "trained"
    assert steps.loc[0, "diff"] > 0.3 and steps.loc[0, "verdict"] == ex.Verdict.HELPS
    with pytest.raises(ValueError, match="distinct"):
        ex.run_grid([tiny("x"), tiny("x")], [0])


def test_cross_validate_folds(monkeypatch):
    cv = ex.cross_validate(tiny("cv", epochs=2), k=3, seed=0, progress=False)
    assert sorted(cv["fold"].unique()) == [0, 1, 2] and len(cv) == 6
    assert cv["val_acc"].notna().all() and cv["train_loss"].notna().all()
    last = cv.groupby("fold").tail(1)
    assert (last["fold_acc"] == last["val_acc"]).all() and (last["fold_acc"] > 0.4).all()
    calls = count_fits(monkeypatch)
    again = ex.cross_validate(tiny("cv", epochs=2), k=3, seed=0, progress=False)
    assert not calls and again["cached"].all()
    other = ex.cross_validate(tiny("cv", epochs=2), k=3, seed=1, progress=False)  # other folds
    assert len(calls) == 3 and not np.allclose(other["fold_acc"].to_numpy(), cv["fold_acc"].to_numpy())


def test_early_stopping_columns():
    cfg = tiny("es", epochs=8, val=0.25, lr=0.5, optimizer="sgd",
               early_stopping={"monitor": "val_acc", "patience": 1, "min_delta": 0.5})
    df = ex.run(cfg, 0)
    assert len(df) == 2  # min_delta 0.5 can never be met: stops after patience 1
    assert df["stopped_epoch"].iloc[0] == 2 and df["best_epoch"].iloc[0] == 1


def test_diverged_run_is_a_result_not_a_crash():
    df = ex.run(tiny("diverges", model="mlp", optimizer="sgd", lr=100.0, epochs=2), 0)
    assert df["diverged"].all() and np.isnan(df["test_acc"].iloc[0]) and "Loss became" in df["error"].iloc[0]
    assert ex.run(tiny("diverges", model="mlp", optimizer="sgd", lr=100.0, epochs=2), 0)["cached"].all()


def test_lr_sweep_and_best_lrs():
    sweep = ex.lr_sweep(tiny(), ["sgd", "adam"], {"sgd": [1e-4, 0.5], "adam": [1e-6, 1e-2]}, seeds=[0], progress=False)
    assert set(sweep["optimizer"]) == {"sgd", "adam"} and sweep["lr_value"].nunique() == 4
    best = ex.best_lrs(sweep)
    assert best["sgd"] == 0.5 and best["adam"] == 1e-2


def test_lr_sweep_widens_a_grid_whose_best_rate_is_on_its_edge():
    sweep = ex.lr_sweep(tiny(), ["adam"], [1e-5, 1e-4], seeds=[0], widen=1, factor=10, progress=False)
    assert sorted(sweep["lr_value"].unique()) == pytest.approx([1e-5, 1e-4, 1e-3])  # one step beyond the top edge
    assert ex.best_lrs(sweep)["adam"] == pytest.approx(1e-3)


def test_load_model_and_ensemble(cache, monkeypatch):
    cfg = tiny("ens", epochs=2)
    res = ex.run_many(cfg, [0, 1], keep_model=True, progress=False)
    assert len(list(cache.glob("*.pt"))) == 2
    calls = count_fits(monkeypatch)
    model = ex.load_model(cfg, 0)
    assert not calls
    test = ml.load_dataset("mnist", "test", limit=300)
    acc = (ml.predict_classes(model, test) == test.labels.numpy()).mean()
    assert acc == pytest.approx(res[res["seed"] == 0]["test_acc"].iloc[0], abs=1e-6)
    ens = ex.ensemble(cfg, [0, 1])
    assert ens["probs"].shape == (300, 10) and np.allclose(ens["probs"].sum(1), 1, atol=1e-5)
    assert ens["member_mean"] == pytest.approx(ex.summarize(res).loc["ens", "mean"], abs=1e-6)
    assert ens["ensemble_errors"] == round((1 - ens["ensemble_acc"]) * 300)
    # a damaged weights file is detected and the model retrained
    (cache / f"{ex.config_hash(cfg, 0)}.pt").write_bytes(b"broken")
    with pytest.warns(RuntimeWarning, match="damaged"):
        again = ex.load_model(cfg, 0)
    assert len(calls) == 1
    assert (ml.predict_classes(again, test) == test.labels.numpy()).mean() == pytest.approx(acc, abs=1e-6)


def test_recipes_are_configs_of_the_harness():
    cfg = ex.get_recipe("best", epochs=2, train_limit=100)
    assert cfg.model == "best" and cfg.epochs == 2 and cfg.scheduler == "onecycle" and cfg.augment is not None
    assert ex.get_recipe("pt_example").scheduler == "steplr"  # expressible now


def test_plots_draw_real_runs_in_percent():
    """Every plot of viz.experiments on real (tiny) runs: data drawn, accuracies in percent, no axes past 100%."""
    import matplotlib.pyplot as plt

    df = ex.run_grid([tiny("a", epochs=2), tiny("b", epochs=2, lr=3e-2)], [0, 1], progress=False)
    cv = ex.cross_validate(tiny("cv"), k=2, progress=False)
    sweep = ex.lr_sweep(tiny(model="mlp", epochs=2), ["sgd"], [1e-2, 1e-1, 100.0], seeds=[0], progress=False)  # 100 diverges
    v = ml.viz.experiments
    fig = v.plot_seeds(df, published={"a": 0.9}, lines={"target": 0.95})
    ax = fig.axes[0]
    lo, hi = ax.get_xlim()
    assert hi <= 100.5 and lo > 0  # percent, zoomed on the runs and their intervals (not 0-100)
    assert ax.get_legend() is not None
    figs = [fig, v.plot_differences(ex.compare_steps(df)), v.plot_curves(df, zoom=True, failed=["b"]),
            v.plot_curves(cv, [("train_loss", "val_loss")], group="fold"), v.plot_seeds(cv, "fold_acc", unit="fold"),
            v.plot_lr_sweep(sweep, chosen={"sgd": 0.1}, defaults={"sgd": 1e-2})]
    sweep_ax = figs[-1].axes[0]
    assert any(line.get_marker() == "x" for line in sweep_ax.lines)  # the diverged run is marked
    for fig in figs:
        assert fig.axes and any(ax.has_data() for ax in fig.axes)
        plt.close(fig)
    with pytest.raises(ValueError, match="configs"):
        v.plot_seeds(df, configs=["nope"])


def test_failed_runs_count_chance_level_and_nan():
    df = pd.DataFrame({"config": ["ok", "chance", "nan"], "seed": 0, "epoch": 1, "val_acc": [0.95, 0.113, np.nan],
                       "diverged": [False, False, True]})
    assert ex.failed_runs(df).tolist() == [False, True, True]
    assert ex.failed_runs(df, chance=0.5, margin=0.5).tolist() == [True, True, True]
    with pytest.raises(KeyError, match="test_acc"):
        ex.failed_runs(df, "test_acc")


def test_compare_to_best_and_split_by_verdict():
    df = pd.concat([frame("low", [0.90, 0.91, 0.90, 0.92, 0.91]), frame("top", [0.98, 0.985, 0.98, 0.99, 0.981]),
                    frame("close", [0.979, 0.986, 0.981, 0.989, 0.98])])
    c = ex.compare_to_best(df)
    assert list(c["a"]) == ["top", "top"] and list(c["b"]) == ["close", "low"]  # by decreasing mean
    by = ex.split_by_verdict(c)
    assert by[ex.Verdict.HURTS] == ["low"] and by[ex.Verdict.WITHIN_NOISE] == ["close"] and by[ex.Verdict.HELPS] == []


def test_t_factor_is_the_paired_threshold():
    assert ex.t_factor(5) == pytest.approx(2.776445 / np.sqrt(5), rel=1e-5)  # about 1.24, not 2
    assert ex.t_factor(3) == pytest.approx(4.302653 / np.sqrt(3), rel=1e-5) and np.isnan(ex.t_factor(1))


def test_with_settings_and_saved_runs_round_trip(tmp_path):
    cfgs = [tiny("small", train_limit=200), tiny("large", train_limit=400)]
    df = ex.with_settings(ex.run_grid(cfgs, [0, 1], progress=False), cfgs, ["train_limit", "model"])
    assert df.groupby("config")["train_limit"].first().to_dict() == {"large": 400, "small": 200}
    with pytest.raises(ValueError, match="No config"):
        ex.with_settings(df, cfgs[:1], ["model"])
    path = tmp_path / "runs.csv"
    df.to_csv(path)  # as Figures.save_table writes it: with the index
    back = ex.load_runs(path)
    assert back["seed"].dtype.kind == "i" and back["cached"].dtype == bool
    pd.testing.assert_frame_equal(ex.summarize(back), ex.summarize(df))
    assert ex.compare_steps(back).loc[0, "p_value"] == pytest.approx(ex.compare_steps(df).loc[0, "p_value"])
    with pytest.raises(FileNotFoundError, match="RESULTS='recompute'"):
        ex.load_runs(tmp_path / "missing.csv")
    (tmp_path / "other.csv").write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="tidy runs"):
        ex.load_runs(tmp_path / "other.csv")


def test_cache_dir_and_clear_cache(cache):
    assert ex.cache_dir(create=False) == cache and not cache.exists()
    assert ex.clear_cache() == 0  # nothing there yet, no error
    ex.run(tiny(), 0, keep_model=True)
    assert ex.cache_dir() == cache and {p.suffix for p in cache.iterdir()} == {".json", ".pt"}
    assert ex.clear_cache() == 2 and list(cache.iterdir()) == []
    assert not ex.run(tiny(), 0)["cached"].any()  # cleared: trained again


def test_final_rows_keeps_last_epoch_of_each_run():
    df = pd.DataFrame({"config": ["a"] * 3 + ["b"] * 2, "seed": [0, 0, 1, 0, 0], "epoch": [1, 2, 1, 1, 2],
                       "val_acc": [0.1, 0.2, 0.3, 0.4, 0.5]})
    last = ex.final_rows(df)
    assert list(zip(last["config"], last["seed"], last["epoch"], last["val_acc"])) == [
        ("a", 0, 2, 0.2), ("a", 1, 1, 0.3), ("b", 0, 2, 0.5)]


def test_out_of_fold_progress_counts_training_steps(monkeypatch, tmp_path):
    """The bar of the k-fold training moves with the optimizer steps (StepProgress), not once per finished fold;
    a cached fold counts its steps at once. (Moved from test_interpret with out_of_fold_probs_for.)"""
    import mnistlab.experiments.executors as executors

    monkeypatch.setenv("MNISTLAB_CACHE", str(tmp_path / "cache"))
    updates, totals = [], []

    class Bar:
        def __init__(self, total=None, **kw):
            self.steps = kw.get("unit") == "step"          # the step bar, not map_tasks' (disabled) run bar
            if self.steps:
                totals.append(total)

        def update(self, n=1):
            if self.steps:
                updates.append(n)

        def set_postfix_str(self, *a, **kw):
            pass

        def close(self):
            pass

    monkeypatch.setattr(executors, "tqdm", Bar)
    g = torch.Generator().manual_seed(0)
    data = ml.ImageSet(torch.randint(0, 256, (300, 28, 28), dtype=torch.uint8, generator=g), torch.arange(300) % 10)
    cfg = ml.get_recipe("fast", batch_size=25)
    probs = ex.out_of_fold_probs(cfg, k=2, seed=0, data=data, progress=True, device="cpu")
    assert probs.shape == (300, 10) and np.allclose(probs.sum(1), 1, atol=1e-4)
    assert totals[0] == 2 * 6                                    # 2 folds x 1 epoch x ceil(150 / 25) steps
    assert sum(updates) == 12 and len(updates) >= 4              # advanced during the folds (every 4 steps)
    updates.clear()
    again = ex.out_of_fold_probs(cfg, k=2, seed=0, data=data, progress=True, device="cpu")   # from the cache
    assert np.array_equal(again, probs) and sum(updates) == 12 and len(updates) == 2
    # workers > 1 report through a manager queue that a thread of this process reads
    updates.clear()
    with ex.step_progress(10, "steps", True, workers=2) as sink:
        for _ in range(5):
            sink.put(2)
    assert sum(updates) == 10 and len(updates) == 5


def test_step_progress_callback_reports_every_n_steps_and_at_the_end():
    from mnistlab.training.callbacks import StepProgress

    class Sink:
        def __init__(self):
            self.got = []

        def put(self, n):
            self.got.append(n)

    sink = Sink()
    g = torch.Generator().manual_seed(0)
    data = ml.ImageSet(torch.randint(0, 256, (70, 28, 28), dtype=torch.uint8, generator=g), torch.arange(70) % 10)
    ml.fit(ml.create_model("logreg", seed=0), data, config=ml.TrainConfig(epochs=2, batch_size=10),
           callbacks=[StepProgress(sink, every=3)], progress=False, device="cpu")
    assert sink.got == [3, 3, 3, 3, 2]                           # 14 steps: every 3, the rest at the end
    with pytest.raises(ValueError, match="every must be a whole number"):
        StepProgress(sink, every=0)


def test_run_on_caches_the_trained_model_under_a_data_fingerprint(tmp_path, monkeypatch):
    monkeypatch.setenv("MNISTLAB_CACHE", str(tmp_path / "cache"))
    g = torch.Generator().manual_seed(0)
    data = ml.ImageSet(torch.randint(0, 256, (80, 28, 28), dtype=torch.uint8, generator=g), torch.arange(80) % 10)
    cfg = ml.TrainConfig(model="logreg", epochs=1, batch_size=16, val=None)
    model, hist, key = ex.run_on(cfg, data, seed=0, device="cpu")
    again, hist2, key2 = ex.run_on(cfg, data, seed=0, device="cpu")
    assert key == key2 and len(hist) == 1 and torch.equal(model.head.weight, again.head.weight)
    other = ml.ImageSet(data.images, (data.labels + 1) % 10)
    assert ex.run_on(cfg, other, seed=0, device="cpu")[2] != key          # other labels: another run
    assert ex.fingerprint(data) == ex.fingerprint(ml.ImageSet(data.images.clone(), data.labels.clone()))
    # the key is an init_from: a run that starts from this one's weights
    start = cfg.but(init_from=key, keep_head=True).build_model(seed=1)
    assert torch.equal(start.head.weight, model.head.weight)


def test_run_grids_trains_several_grids_in_one_pool_longest_first(monkeypatch):
    import mnistlab.experiments.runs as runs

    short, long = tiny("short"), tiny("long", model="lenet5", epochs=2, val=None)
    assert ex.estimated_work(long) > ex.estimated_work(short) > ex.estimated_work(tiny("none", epochs=0)) == 0
    assert ex.estimated_work(short.but(min_steps=50)) == 50 * 64 / 400 * ex.estimated_work(short)  # min_steps batches
    submitted = []
    real = runs.map_tasks

    def spy(fn, tasks, **kw):
        submitted.extend((cfg.name, seed) for cfg, seed, *_ in tasks)
        return real(fn, tasks, **kw)

    monkeypatch.setattr(runs, "map_tasks", spy)
    out = ex.run_grids({"a": ([short, tiny("untrained", epochs=0)], [0, 1]), "b": ([long, short.but(name="same run")], [0])},
                       progress=False)
    # one pool, the longest runs first; "same run" is short's seed 0 (another name), trained once
    assert submitted == [("long", 0), ("short", 0), ("short", 1), ("untrained", 0), ("untrained", 1)]
    assert list(out) == ["a", "b"] and list(out["a"]["config"].unique()) == ["short", "untrained"]
    assert list(out["b"]["config"].unique()) == ["long", "same run"]
    same = ex.final_rows(out["b"]).set_index("config").loc["same run", "test_acc"]
    assert same == ex.final_rows(out["a"]).query("config == 'short' and seed == 0")["test_acc"].item()
    # the numbers of separate grids, read back from the cache
    submitted.clear()
    alone = ex.run_grid([short, tiny("untrained", epochs=0)], [0, 1], progress=False)
    pd.testing.assert_frame_equal(alone.drop(columns="cached"), out["a"].drop(columns="cached"))
    assert alone["cached"].all()
    with pytest.raises(ValueError, match=r"grids\['x'\] must be a \(configs, seeds\) pair"):
        ex.run_grids({"x": [short]})
    with pytest.raises(ValueError, match="distinct.*in grid 'b'"):
        ex.run_grids({"a": ([short], [0]), "b": ([long, long], [0])})
    with pytest.raises(ValueError, match="non-empty dict"):
        ex.run_grids({})
