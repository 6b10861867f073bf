"""Notebook 03 (model search) runs in QUICK mode, writes its figures, tables and saved runs, and
rebuilds the same tables from those saved runs with RESULTS="saved"."""
import pandas as pd
import pytest

from conftest import check_executed, check_written, requires_data
from mnistlab.studies import claims as C
from test_claims import assert_quotes_exact

NAME = "03_model_search"
FIGURES = ["progression", "sgd_step_curves", "train_size", "small_networks", "augmentation", "failure_ideas",
           "cv_curves", "cv_folds", "early_stopping", "strongest_curves", "strongest_recipe", "new_digits"]
TABLES = ["progression", "small_networks", "failure_ideas", "cv_histories", "strongest_recipe", "claims"]
SAVED_RUNS = ["progression_runs", "size_runs", "small_runs", "ideas_runs", "cv_histories", "es_runs", "strong_runs",
              "ensemble"]
VERDICTS = {"helps", "hurts", "within noise", "too few seeds"}
LENET = ["lenet.untrained", "lenet.vanilla", "lenet.normalization", "lenet.batch64", "lenet.batch32", "lenet.lr",
         "lenet.deeper", "lenet.sgd"]

pytestmark = [pytest.mark.notebook, requires_data]


def test_figures_and_tables(entry):
    check_written(entry, FIGURES, TABLES + SAVED_RUNS)


def test_progression_table(entry):
    n = entry["numbers"]
    assert n["quick"] is True and n["results"] == "recompute" and n["seeds"] == 2
    assert n["n_train"] == n["n_train_progression"] == 1500 and n["n_test"] == 1000
    table = pd.read_csv(entry["dir"] / "progression.csv", index_col=0)
    assert list(table.index) == ["untrained", "vanilla LeNet-5", "+ inputs in [-1, 1]", "+ batch 64", "+ batch 32",
                                 "+ lr 5e-4", "+ deeper ReLU/max-pool net", "+ SGD momentum 0.9, lr 1e-3"]
    assert (table["n"] == 2).all() and (table["ci_low"] <= table["mean"]).all() and (table["mean"] <= table["ci_high"]).all()
    assert table.loc["vanilla LeNet-5", "published"] == 0.9725
    assert set(table["step vs previous"].dropna()) <= VERDICTS
    assert 0.03 < n["untrained_acc"] < 0.2  # chance is 10%
    # one epoch on 1,500 images: Adam at lr 5e-4 with batch 32 reads about 60%, the deeper net about 75%;
    # a broken model stays near 10%
    assert table.loc["+ lr 5e-4", "mean"] > 0.45 and table.loc["+ deeper ReLU/max-pool net", "mean"] > 0.55
    steps = n["progression_real_gains"] + n["progression_real_losses"] + n["progression_within_noise"]
    assert sorted(steps) == sorted(table.index[2:])  # every step after vanilla gets exactly one verdict
    assert n["t_factor"] == pytest.approx(12.706 / 2 ** 0.5, rel=1e-3)  # 2 seeds: t(0.975, 1) / sqrt(2)


def test_sections_numbers(entry):
    n = entry["numbers"]
    ideas = pd.read_csv(entry["dir"] / "failure_ideas.csv", index_col=0)
    assert len(ideas) == 8 and set(ideas["verdict"].dropna()) <= VERDICTS
    assert len(n["ideas_help"]) + len(n["ideas_hurt"]) + len(n["ideas_within_noise"]) == 7
    assert ideas.loc["baseline (lr 5e-4 row)", "mean"] > 0.45
    assert n["conv_fc_acc"] > 0.5  # SGD lr 0.01, 1 epoch: conv+fc reads about 67% (the dropout net barely starts)
    assert 0.25 < n["cv_min_acc"] <= n["cv_mean_acc"] <= n["cv_max_acc"] <= 1 and n["cv_folds"] == 2
    assert sorted(pd.read_csv(entry["dir"] / "cv_histories.csv")["fold"].unique()) == [0, 1]
    assert 1 <= n["es_best_epoch_mean"] <= n["es_stop_epoch_mean"] <= n["es_max_epochs"]
    assert n["es_verdict"] in VERDICTS
    assert n["strong_model"] == "best" and n["strong_seeds"] == 2 and n["strong_train_seconds"] > 0
    assert n["strong_acc"] > 0.8 and n["strong_ensemble_acc"] > 0.8  # the best recipe, 2 epochs on 2,000 images
    strong = pd.read_csv(entry["dir"] / "strongest_recipe.csv")
    assert len(strong) == 2 and strong["test_acc"].mean() == pytest.approx(n["strong_acc"])
    assert n["final_checkpoint_ok"] is True and n["drawn_digits"] == 9
    # the strongest QUICK model reads 7 of the 9 drawn digits; a broken model or preprocessing would read about 1
    assert n["drawn_correct_fraction"] >= 5 / 9
    assert n["confidence_ceiling"] == pytest.approx(0.91) and n["median_confidence"] <= 0.92  # label smoothing 0.1
    sizes = n["size_acc"]
    assert set(sizes) == {f"{m} {k}" for m in ("lenet5", "deeper") for k in (300, 700, 1500)}
    assert sizes["lenet5 1500"] > sizes["lenet5 300"]  # more images, better (by far, after one epoch)


def test_claims_table(entry):
    claims = pd.read_csv(entry["dir"] / "claims.csv", index_col=0)
    assert list(claims.columns) == C.COLUMNS and set(claims["verdict"]) <= set(C.VERDICTS)
    assert len(claims) == 8 + 5 + 2 + 3 + 4 and claims["key"].tolist()[:8] == LENET
    # the README's seven published figures, every one (none left out as "no source value")
    assert claims["published"].tolist()[1:8] == ["97.25%", "97.98%", "98.36%", "98.48%", "98.73%", "99.05%", "99.2%"]
    assert not claims["claim"].str.contains("early stopping reaches").any()  # 99.48% is W&B's final accuracy
    assert_quotes_exact(claims)
    assert entry["numbers"]["claims"] == dict(zip(claims["key"], claims["verdict"]))
    # every verdict of a published value follows the rule: overlap of our interval with it = reproduced
    values = claims[claims["published_low"].notna()]
    assert (values["ci_low"] <= values["measured_value"] + 1e-12).all() and len(values) == 8 + 1 + 7
    for r in values.itertuples():
        tol = C.QUOTES[r.key].tolerance
        want = ("reproduced" if r.ci_low <= r.published_high + tol and r.ci_high >= r.published_low - tol else
                "higher here" if r.ci_low > r.published_high + tol else "lower here")
        assert r.verdict == want, r.key


def test_saved_results_rebuild_the_same_tables(entry, tmp_path, monkeypatch):
    """RESULTS="saved" trains nothing and rebuilds the tables from the CSVs the recompute run wrote."""
    from mnistlab.runner import project_root, run_notebook

    monkeypatch.setenv("MNISTLAB_CACHE", str(tmp_path / "empty-cache"))  # nothing to read: it must not train
    path = project_root() / "notebooks" / f"{NAME}.ipynb"
    saved = run_notebook(path, {"QUICK": True, "RESULTS": "saved", "SAVED_DIR": str(entry["dir"])}, tmp_path / "figs",
                         tmp_path / "executed", progress=False)
    n, m = saved["numbers"], entry["numbers"]
    assert n["results"] == "saved"
    check_executed(tmp_path / "executed" / f"{NAME}.ipynb")  # no stray output on this path either
    for key in ("vanilla_acc", "progression_final_acc", "conv_fc_acc", "cv_mean_acc", "es_acc", "strong_acc",
                "strong_ensemble_acc", "deeper_gap_full"):
        assert n[key] == pytest.approx(m[key], abs=1e-9), key
    for key in ("progression_real_gains", "ideas_help", "ideas_hurt", "es_verdict"):
        assert n[key] == m[key], key
    assert not list((tmp_path / "empty-cache").glob("*.json"))  # no run was trained or cached
    for table in ("progression", "failure_ideas"):
        a = pd.read_csv(entry["dir"] / f"{table}.csv", index_col=0)
        b = pd.read_csv(tmp_path / "figs" / NAME / f"{table}.csv", index_col=0)
        pd.testing.assert_frame_equal(a.drop(columns=["train_s"], errors="ignore"),
                                      b.drop(columns=["train_s"], errors="ignore"), check_exact=False, rtol=1e-9)
