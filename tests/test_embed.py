"""Unit tests for mnistlab.studies.embed and mnistlab.viz.embed on small data (synthetic blobs and a slice of real MNIST)."""
from __future__ import annotations

import importlib.util
import json

import matplotlib
import numpy as np
import pandas as pd
import pytest
import torch

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

import mnistlab as ml  # noqa: E402
from mnistlab.studies import embed  # noqa: E402
from mnistlab.viz import embed as draw  # noqa: E402


@pytest.fixture(scope="module")
def blobs():
    """Four well separated Gaussian blobs in 20-D, 80 points each."""
    from sklearn.datasets import make_blobs

    X, y = make_blobs(n_samples=320, n_features=20, centers=4, cluster_std=1.0, center_box=(-20, 20), random_state=0)
    return X.astype(np.float32), y


@pytest.fixture(scope="module")
def noise():
    rng = np.random.default_rng(1)
    return rng.normal(size=(300, 20)).astype(np.float32), rng.integers(0, 4, 300)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


# ---------------------------------------------------------------- PCA

def test_pca_shapes_and_order(blobs):
    X, _ = blobs
    Z, model = embed.pca(X, 5)
    assert Z.shape == (len(X), 5) and Z.dtype == np.float32
    assert model.n_components_ == 5
    assert np.all(np.diff(model.explained_variance_ratio_) <= 1e-9)  # sorted by variance
    np.testing.assert_allclose(Z, model.transform(X), rtol=1e-4, atol=1e-4)


def test_pca_accepts_images_and_rejects_bad_k():
    imgs = torch.randint(0, 256, (40, 28, 28), dtype=torch.uint8)
    Z, _ = embed.pca(imgs.float() / 255, 3)
    assert Z.shape == (40, 3)
    with pytest.raises(ValueError, match="n_components"):
        embed.pca(np.zeros((10, 4)), 7)
    with pytest.raises(ValueError, match="2-D"):
        embed.pca(np.zeros(10), 1)


def test_components_for_variance_exact():
    ratios = np.array([0.5, 0.3, 0.15, 0.04, 0.01])
    assert embed.components_for_variance(ratios, [0.5, 0.8, 0.9, 0.99, 1.0]) == {0.5: 1, 0.8: 2, 0.9: 3, 0.99: 4, 1.0: 5}
    with pytest.raises(ValueError, match="more components"):
        embed.components_for_variance(ratios[:2], [0.9])
    with pytest.raises(ValueError, match=r"\(0, 1\]"):
        embed.components_for_variance(ratios, [1.5])


def test_components_for_variance_on_mnist(mnist_small):
    _, test = mnist_small
    _, model = embed.pca(test.float(), None)
    k = embed.components_for_variance(model)
    assert k[0.9] < k[0.95] < k[0.99] <= 784
    assert 40 <= k[0.9] <= 150


def test_pca_reconstruct_improves_with_k(mnist_small):
    train, test = mnist_small
    _, model = embed.pca(train.float(), 150)
    X = test.float()[:50]
    rec = embed.pca_reconstruct(X, (2, 10, 50, 150), model=model)
    assert list(rec) == [2, 10, 50, 150]
    errors = [float(((rec[k] - X) ** 2).mean()) for k in rec]
    assert all(a > b for a, b in zip(errors, errors[1:]))
    single = embed.pca_reconstruct(X, 10, model=model)
    assert list(single) == [10]  # always a dict, whatever k is
    np.testing.assert_allclose(single[10], rec[10])
    with pytest.raises(ValueError, match="exceeds"):
        embed.pca_reconstruct(X, 200, model=model)


def test_pca_reconstruct_all_components_is_identity(blobs):
    X, _ = blobs
    rec = embed.pca_reconstruct(X, X.shape[1])
    np.testing.assert_allclose(rec[X.shape[1]], X, atol=1e-3)


# ---------------------------------------------------------------- t-SNE

def test_available_backends_are_importable():
    names = embed.available_backends()
    assert names, "at least scikit-learn must be available"
    assert set(names) <= set(embed.BACKENDS)
    assert "sklearn" in names
    order = list(embed.BACKENDS)
    assert names == sorted(names, key=order.index)


def test_unknown_backend_raises(blobs):
    X, _ = blobs
    with pytest.raises(ValueError, match="Unknown t-SNE backend"):
        embed.tsne(X, backend="umap")


def test_missing_backend_names_pip_fix(monkeypatch, blobs):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "MulticoreTSNE" else real(name, *a))
    assert "multicore" not in embed.available_backends()
    with pytest.raises(embed.BackendNotInstalled, match="pip install MulticoreTSNE"):
        embed.tsne(blobs[0], backend="multicore")


def test_auto_prefers_opentsne(monkeypatch, blobs):
    pytest.importorskip("openTSNE")
    called = {}
    monkeypatch.setitem(embed._RUNNERS, "opentsne", lambda X, *a: called.setdefault("yes", np.zeros((len(X), 2))))
    embed.tsne(blobs[0], backend="auto")
    assert "yes" in called


@pytest.mark.parametrize("backend,module", [("opentsne", "openTSNE"), ("multicore", "MulticoreTSNE"),
                                            ("sklearn", "sklearn")])
def test_backend_separates_blobs(backend, module, blobs):
    pytest.importorskip(module)
    X, y = blobs
    Y = embed.tsne(X, backend=backend, seed=0, n_jobs=1)
    assert Y.shape == (len(X), 2)
    assert np.isfinite(Y).all()
    assert embed.knn_accuracy(Y, y) > 0.95


def test_opentsne_seed_reproducible_and_overridable(blobs):
    pytest.importorskip("openTSNE")
    X, _ = blobs
    a = embed.tsne(X, backend="opentsne", seed=3, n_jobs=1)
    b = embed.tsne(X, backend="opentsne", seed=3, n_jobs=1)
    np.testing.assert_allclose(a, b)
    c = embed.tsne(X, backend="opentsne", seed=3, n_jobs=1, n_iter=50)  # kw reaches openTSNE
    assert not np.allclose(a, c)


def test_opentsne_neighbour_and_gradient_choice_follows_size(blobs, monkeypatch):
    openTSNE = pytest.importorskip("openTSNE")
    seen = []

    class Spy:
        def __init__(self, **kw):
            seen.append(kw)

        def fit(self, X):
            return np.zeros((len(X), 2))

    monkeypatch.setattr(openTSNE, "TSNE", Spy)
    X, _ = blobs
    embed.tsne(X, backend="opentsne", n_jobs=1)
    assert seen[-1]["neighbors"] == "exact" and seen[-1]["negative_gradient_method"] == "bh"  # small input
    monkeypatch.setattr(embed, "EXACT_NEIGHBORS_MAX_POINTS", len(X) - 1)
    monkeypatch.setattr(embed, "FFT_MIN_POINTS", len(X))
    embed.tsne(X, backend="opentsne", n_jobs=1)
    assert seen[-1]["neighbors"] == "annoy" and seen[-1]["negative_gradient_method"] == "fft"  # "large" input
    assert seen[-1]["n_iter"] == embed.OPENTSNE_TUNED["n_iter"]


def test_opentsne_fft_path(mnist_small):
    """The FFT gradient (used for >= 10,000 points) on a small input, forced through **kw."""
    pytest.importorskip("openTSNE")
    train, _ = mnist_small
    X, _ = embed.pca(train.float()[:600], 30)
    Y = embed.tsne(X, backend="opentsne", negative_gradient_method="fft", n_jobs=1, early_exaggeration_iter=50, n_iter=100)
    assert embed.knn_accuracy(Y, train.labels[:600].numpy()) > 0.7


def test_tsne_three_components(blobs):
    X, _ = blobs
    Y = embed.tsne(X, backend="sklearn", n_components=3, n_jobs=1, max_iter=250)
    assert Y.shape == (len(X), 3)


def test_tsne_small_input_lowers_perplexity():
    X = np.random.default_rng(0).normal(size=(31, 5))
    with pytest.warns(UserWarning, match="perplexity"):
        Y = embed.tsne(X, backend="sklearn", perplexity=30, n_jobs=1)
    assert Y.shape == (31, 2)
    with pytest.raises(ValueError, match="at least 4"):
        embed.tsne(X[:3], backend="sklearn")


# ---------------------------------------------------------------- metrics

def test_knn_accuracy_blobs_vs_noise(blobs, noise):
    assert embed.knn_accuracy(*blobs) > 0.98
    assert embed.knn_accuracy(*noise) < 0.45  # chance is 0.25


def test_knn_accuracy_validates():
    with pytest.raises(ValueError, match="rows"):
        embed.knn_accuracy(np.zeros((10, 2)), np.zeros(9))
    with pytest.raises(ValueError, match="at least 2"):
        embed.knn_accuracy(np.zeros((10, 2)), np.r_[np.zeros(9), 1])


def test_trustworthiness_identity_and_shuffle(blobs):
    X, _ = blobs
    assert embed.trustworthiness(X, X, sample=200) == pytest.approx(1.0)
    shuffled = np.random.default_rng(0).permutation(X)
    assert embed.trustworthiness(X, shuffled, sample=None) < 0.7
    with pytest.raises(ValueError, match="rows"):
        embed.trustworthiness(X, X[:10])


def test_class_separation_orders_blobs_above_noise(blobs, noise):
    good = embed.class_separation(*blobs)
    bad = embed.class_separation(*noise)
    assert set(good) == {"silhouette", "knn_acc"}
    assert good["silhouette"] > 0.5 > bad["silhouette"]
    assert good["knn_acc"] > bad["knn_acc"]
    with pytest.raises(ValueError, match="two classes"):
        embed.class_separation(blobs[0], np.zeros(len(blobs[0])))


def test_compare_backends_table(blobs):
    X, y = blobs
    backends = [b for b in embed.available_backends()]
    result = embed.compare_backends(X, y, backends=backends, n_jobs=1, trust_sample=200, progress=False)
    df = result.table
    assert list(df.columns) == ["backend", "n", "seconds", "knn_acc", "trustworthiness"]
    assert list(df["backend"]) == backends and (df["n"] == len(X)).all()
    assert (df["seconds"] > 0).all()
    assert df["knn_acc"].between(0.9, 1.0).all()
    assert df["trustworthiness"].between(0.8, 1.0).all()
    assert set(result.embeddings) == set(backends)
    assert all(Y.shape == (len(X), 2) for Y in result.embeddings.values())


def test_tsne_scaling_speedups_and_exponents(blobs):
    X, y = blobs
    backends = [b for b in ("opentsne", "sklearn") if b in embed.available_backends()]
    table = embed.tsne_scaling(X, y, sizes=[80, 160], backends=backends, n_jobs=1, trust_sample=None,
                               progress=False)
    assert sorted(set(table["n"])) == [80, 160] and len(table) == 2 * len(backends)
    assert (table["seconds"] > 0).all()
    exps = embed.time_exponents(table)
    assert set(exps.index) == set(backends) and np.isfinite(exps).all()
    if len(backends) == 2:
        sp = embed.speedups(table, fast=backends[0], reference=backends[1])
        assert list(sp.index) == [80, 160]
        np.testing.assert_allclose(sp["speedup"], sp[f"{backends[1]}_seconds"] / sp[f"{backends[0]}_seconds"])
    assert embed.speedups(table, fast="opentsne", reference="nonexistent").empty
    assert embed.speedups(table.iloc[:0], fast="opentsne", reference="multicore").empty  # no runs: an empty table, no KeyError
    with pytest.raises(ValueError, match="sizes"):
        embed.tsne_scaling(X, y, sizes=[10_000], progress=False)


def test_time_exponents_exact():
    t = pd.DataFrame({"backend": ["a"] * 3 + ["b"] * 3, "n": [10, 100, 1000] * 2,
                      "seconds": [1, 10, 100, 1, 100, 10_000]})
    np.testing.assert_allclose(embed.time_exponents(t).to_numpy(), [1.0, 2.0])


def test_knn_report_exact_on_a_known_layout():
    # classes 0 and 1 interleave on a line, class 2 sits far away: every error is a 0/1 confusion
    Y = np.concatenate([np.c_[np.arange(40) * 1.0, np.zeros(40)], np.c_[np.arange(20) + 500.0, np.zeros(20)]])
    y = np.r_[np.arange(40) % 2, np.full(20, 2)]
    r = embed.knn_report(Y, y, classes=["zero", "one", "two"], k=3, cv=5, seed=0)
    assert r.per_class.loc[2, "accuracy"] == 1.0
    assert r.per_class.loc[0, "accuracy"] < 0.8 and r.per_class.loc[1, "accuracy"] < 0.8
    assert set(r.hardest(2)) == {"zero", "one"}
    assert r.top_pairs(1) == [("zero", "one")]
    assert r.pairs.loc[r.pairs["b"] == "two", "confusions"].sum() == 0
    assert int(r.confusion.to_numpy().sum()) == len(Y)
    assert r.accuracy == pytest.approx(np.trace(r.confusion.to_numpy()) / len(Y))
    with pytest.raises(ValueError, match="class names"):
        embed.knn_report(Y, y, classes=["a"])


def test_knn_report_agrees_with_knn_accuracy(blobs):
    X, y = blobs
    r = embed.knn_report(X, y, k=10, seed=0)
    assert r.accuracy == pytest.approx(embed.knn_accuracy(X, y, k=10, seed=0), abs=0.01)
    assert list(r.per_class["class"]) == ["0", "1", "2", "3"]


def test_class_centroids_are_medians():
    Y = np.array([[0.0, 0.0], [1.0, 1.0], [100.0, 2.0], [10.0, 10.0], [11.0, 12.0], [12.0, 11.0]])
    c = embed.class_centroids(Y, [0, 0, 0, 1, 1, 1], classes=["a", "b"])
    assert list(c["class"]) == ["a", "b"]
    np.testing.assert_allclose(c[["dim_1", "dim_2"]].to_numpy(), [[1.0, 1.0], [11.0, 11.0]])


def test_pair_distances_and_same_class_closer(blobs, noise):
    X, y = blobs
    d = embed.pair_distances(X, y, n_pairs=4000, seed=0)
    assert set(d["pair"]) == {"same class", "different classes"} and (d["distance"] > 0).all()
    assert d["relative"].median() == pytest.approx(1.0)
    assert embed.same_class_closer(d) > 0.99  # separated blobs
    assert 0.35 < embed.same_class_closer(embed.pair_distances(*noise, n_pairs=4000)) < 0.65  # no structure
    with pytest.raises(ValueError, match="both kinds"):
        embed.same_class_closer(d[d["pair"] == "same class"])


def _report(acc: dict) -> embed.KNNReport:
    """A KNNReport with the given per-class accuracies (only what source_claims reads)."""
    per = pd.DataFrame({"class": list(acc), "n": 100, "accuracy": list(acc.values())})
    return embed.KNNReport(confusion=pd.DataFrame(), per_class=per, pairs=pd.DataFrame(columns=["a", "b", "rate"]),
                           accuracy=float(np.mean(list(acc.values()))), k=10)


def _scaling(per_point: float) -> pd.DataFrame:
    n = [5_000, 10_000, 20_000]
    return pd.DataFrame({"backend": ["multicore"] * 3 + ["opentsne"] * 3, "n": n * 2,
                         "seconds": [per_point * k for k in n] + [10.0] * 3})


SEP = {"raw pixels": {"silhouette": 0.05, "knn_acc": 0.90}, "untrained network": {"silhouette": 0.08, "knn_acc": 0.91},
       "trained network": {"silhouette": 0.20, "knn_acc": 0.98}}


def test_source_claims_verdicts_follow_the_numbers():
    from mnistlab.studies import claims as C
    digits = [str(i) for i in range(10)]
    pca = _report({c: (0.9 if c in "01" else 0.3) for c in digits})          # 2 clusters of their own, none separated
    tsne = _report({c: {"3": 0.960, "8": 0.961, "0": 0.995, "1": 0.996, "6": 0.994}.get(c, 0.97) for c in digits})
    t = embed.source_claims("mnist", pca=pca, tsne=tsne, n_points=70_000, scaling=_scaling(0.01), separation=SEP)
    assert list(t.columns) == C.COLUMNS and set(t["source"]) == {C.MEDIUM, C.LENET}
    v = dict(zip(t["claim"], t["verdict"]))
    q = lambda key: C.QUOTES[key].claim  # noqa: E731
    assert v[q("medium.pca_clusters")] == C.NOT_REPRODUCED and "2 of 10 classes" in t["measured"].iloc[0]
    assert v[q("medium.pca_not_enough")] == C.REPRODUCED
    assert [v[q(k)] for k in ("medium.tsne_split", "medium.hardest", "medium.easiest")] == [C.REPRODUCED] * 3
    # 0.01 s per point, linear: 700 s = 11.7 min at 70,000 points, inside 10-15 min
    row = t[t["claim"] == q("medium.tsne_minutes")].iloc[0]
    assert row["verdict"] == C.REPRODUCED and row["measured_value"] == pytest.approx(700.0)
    assert "extrapolated" in row["measured"] and "11.7 min" in row["measured"]
    assert v[q("lenet.tsne_untrained")] == v[q("lenet.tsne_trained")] == C.REPRODUCED
    # the other way round: every class clusters in PCA, t-SNE mixes 2 and 5, MulticoreTSNE takes 70 s
    pca = _report({c: 0.6 for c in digits})
    tsne = _report({c: {"2": 0.5, "3": 0.8, "0": 0.99, "1": 0.99, "7": 0.995}.get(c, 0.95) for c in digits})
    worse = embed.source_claims("mnist", pca=pca, tsne=tsne, n_points=70_000, scaling=_scaling(0.001),
                                separation={**SEP, "untrained network": {"silhouette": 0.01, "knn_acc": 0.8},
                                            "trained network": {"silhouette": 0.3, "knn_acc": 0.9}})
    v = dict(zip(worse["claim"], worse["verdict"]))
    assert v[q("medium.pca_clusters")] == C.REPRODUCED and v[q("medium.tsne_split")] == C.NOT_REPRODUCED
    assert v[q("medium.hardest")] == C.PARTLY and v[q("medium.easiest")] == C.PARTLY
    assert v[q("medium.tsne_minutes")] == C.LOWER
    assert v[q("lenet.tsne_untrained")] == v[q("lenet.tsne_trained")] == C.NOT_REPRODUCED
    # a subset of the points says nothing about the time on all of MNIST; no MulticoreTSNE: no time
    small = embed.source_claims("mnist", pca=pca, tsne=tsne, n_points=2_000, scaling=_scaling(0.01))
    assert small["verdict"].iloc[-1] == C.NOT_APPLICABLE and "subset" in small["rule"].iloc[-1]
    none = embed.source_claims("mnist", pca=pca, tsne=tsne, n_points=70_000, scaling=_scaling(0.01).iloc[3:])
    assert none["verdict"].iloc[-1] == C.NOT_APPLICABLE and len(none) == 6
    # the sources describe MNIST: on Fashion-MNIST every verdict is "not applicable", the numbers stay
    names = [f"c{i}" for i in range(10)]
    fashion = embed.source_claims("fashion-mnist", pca=_report({c: 0.5 for c in names}),
                                  tsne=_report({c: 0.9 for c in names}), n_points=70_000, scaling=_scaling(0.01),
                                  separation=SEP)
    assert (fashion["verdict"] == C.NOT_APPLICABLE).all() and fashion["measured"].str.len().min() > 10


def test_extrapolated_seconds():
    s = _scaling(0.01)
    assert embed.extrapolated_seconds(s, "multicore", 10_000) == (pytest.approx(100.0), False)
    sec, extrapolated = embed.extrapolated_seconds(s, "multicore", 40_000)
    assert extrapolated and sec == pytest.approx(400.0)
    assert np.isnan(embed.extrapolated_seconds(s.iloc[:1], "multicore", 40_000)[0])


# ---------------------------------------------------------------- features

def test_features_shape_and_normalisation(mnist_small):
    _, test = mnist_small
    data = test.head(64)
    model = ml.create_model("fast", seed=0)
    F1 = embed.features(model, data, batch_size=25)
    assert F1.shape == (64, 64 * 9) and F1.dtype == np.float32
    with torch.no_grad():
        x = ml.TensorLoader(data, batch_size=64, shuffle=False).transform(data.images, train=False)
        model.eval()
        expected = model.features(x).numpy()
    np.testing.assert_allclose(F1, expected, rtol=1e-4, atol=1e-5)
    assert model.training is False  # eval state restored (it was left in eval above)
    model.train()
    embed.features(model, data)
    assert model.training is True
    with pytest.raises(TypeError, match="features"):
        embed.features(torch.nn.Linear(784, 10), data)


# ---------------------------------------------------------------- plots

def _nonempty(fig):
    fig.canvas.draw()
    return np.asarray(fig.canvas.buffer_rgba()).std() > 0


def test_plots_return_figures(blobs):
    X, y = blobs
    classes = ["a", "b", "c", "d"]
    Y = X[:, :3]
    assert _nonempty(draw.plot_scatter(Y, y, classes, title="t"))
    fig = draw.plot_scatter(Y, y, classes)
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == classes
    assert sorted(t.get_text() for t in fig.axes[0].texts) == classes  # names at the class medians
    from matplotlib.colors import to_rgba
    from mnistlab.viz.style import class_colors
    fig = draw.plot_scatter(Y, y, classes, colors=class_colors(10)[6:])   # classes given their own colours
    handles = fig.axes[0].get_legend().legend_handles
    assert [to_rgba(h.get_color()) for h in handles] == [to_rgba(c) for c in class_colors(10)[6:]]
    with pytest.raises(ValueError, match="one colour per class"):
        draw.plot_scatter(Y, y, classes, colors=["red"])
    fig = draw.plot_pairs(Y, y, classes, axis_names=["PC 1", "PC 2", "PC 3"])
    assert len(fig.axes) == 9 and sum(ax.axison for ax in fig.axes) == 6
    assert fig.axes[3].get_ylabel() == "PC 2" and fig.axes[6].get_xlabel() == "PC 1"
    _, model = embed.pca(X, None)
    assert _nonempty(draw.plot_explained_variance(model))
    imgs = np.random.default_rng(0).random((20, 784))
    rec = embed.pca_reconstruct(imgs, (2, 10))
    assert len(draw.plot_reconstructions(imgs[:3], {k: r[:3] for k, r in rec.items()}).axes) == 9
    fig = draw.plot_class_highlights(Y, y, classes, ncols=2, scores={"a": 0.912})
    assert sum(ax.collections != [] for ax in fig.axes) == 4
    assert "0.912" in fig.axes[0].get_title()
    fig = draw.plot_axis_distributions(Y[:, :2], y, classes)
    assert len(fig.axes) == 2 and len(fig.axes[0].patches) == 4  # one box per class
    df = pd.DataFrame({"backend": ["x", "y"], "seconds": [1.0, 2.0], "knn_acc": [0.9, 0.95],
                       "trustworthiness": [0.97, 0.99]})
    assert len(draw.plot_backends(df).axes) == 3
    fig = draw.plot_representations({"a": Y[:, :2], "b": Y[:, 1:]}, y, {"a": {"silhouette": 0.5, "knn_acc": 0.9}})
    assert "silhouette 0.500" in fig.axes[0].get_title()
    fig = draw.plot_knn_report(embed.knn_report(Y, y, classes=classes))
    assert len(fig.axes) == 2 and len(fig.axes[1].patches) == 6  # all 6 pairs of 4 classes
    tables = {"784-D": embed.pair_distances(X, y, 500), "2-D": embed.pair_distances(Y[:, :2], y, 500)}
    fig = draw.plot_pair_distances(tables, scores={"2-D": 0.9})
    assert "90%" in fig.axes[1].get_title()
    scaling = pd.DataFrame({"backend": ["f", "s"] * 6, "n": [10] * 6 + [100] * 6, "repeat": np.repeat([0, 1, 2, 0, 1, 2], 2),
                            "seconds": [1.0, 2.0, 1.2, 2.0, 0.8, 2.4, 2.0, 8.0, 2.2, 8.8, 1.8, 7.2]})
    fig = draw.plot_tsne_scaling(scaling)
    assert {t.get_text() for t in fig.axes[1].texts} == {"2.0x", "4.0x"}   # medians of the per-repeat ratios


def test_speed_runs_from_a_benchmark_result(tmp_path):
    machine = {"cores": 2, "load_average": {"start": [2.0, 1.0, 1.0], "end": [2.5, 1.0, 1.0]}}
    rows = [{"backend": b, "n": n, "repeat": r, "seconds": 1.0 + r, "cpu_seconds": 2.0, "knn_acc": 0.9}
            for n in (500, 1000) for r in range(3) for b in ("multicore", "opentsne")]
    runs = draw.tsne_benchmark_runs({"measured": {"n": 1000, "rows": rows}, "machine": machine})
    assert len(runs) == 12 and runs.attrs["machine"] == machine
    assert list(dict.fromkeys(runs["backend"])) == ["opentsne", "multicore"]     # the reference (listed first) last
    assert runs.groupby(["backend", "n"]).size().min() == 3
    draw.plot_tsne_scaling(runs, machine=runs.attrs["machine"])
    plt.close("all")
    old = draw.tsne_benchmark_runs({"measured": {"n": 70000, "rows": [{"backend": "multicore", "seconds": 900.0},
                                                                     {"backend": "opentsne", "seconds": 90.0}]}})
    assert old["n"].tolist() == [70000, 70000] and old["repeat"].tolist() == [0, 0]
    with pytest.raises(ValueError, match="at least 3"):                       # one run each: not drawn
        draw.plot_tsne_scaling(old)
    with pytest.raises(ValueError, match="no timed runs"):
        draw.tsne_benchmark_runs({"measured": {}})
    assert draw.tsne_benchmark_runs(tmp_path / "absent.json").empty
    (tmp_path / "r.json").write_text(json.dumps({"measured": {"n": 1000, "rows": rows}, "machine": machine}))
    assert len(draw.tsne_benchmark_runs(tmp_path / "r.json")) == 12


def test_speed_plot_draws_every_repeat_and_the_median_and_refuses_single_runs():
    rng = np.random.default_rng(1)
    rows = [{"backend": b, "n": n, "repeat": r, "seconds": base * n / 1000 * rng.lognormal(0, 0.2)}
            for n in (1000, 4000) for r in range(4) for b, base in (("opentsne", 1.0), ("multicore", 3.0))]
    scaling = pd.DataFrame(rows)
    machine = {"cores": 2, "load_average": {"start": [1.93, 1.0, 0.8], "end": [3.21, 1.5, 0.9]}}
    fig = draw.plot_tsne_scaling(scaling, machine=machine)
    ax1, ax2 = fig.axes[:2]
    dots = np.concatenate([c.get_offsets() for c in ax1.collections])
    assert len(dots) == len(scaling)                                            # every run is drawn
    assert sorted(dots[:, 1]) == pytest.approx(sorted(scaling["seconds"]))
    medians = scaling.groupby(["backend", "n"])["seconds"].median()
    lines = {line.get_label().split(":")[0]: line for line in ax1.get_lines()}
    for b in ("opentsne", "multicore"):
        assert list(lines[b].get_ydata()) == pytest.approx([medians[b, 1000], medians[b, 4000]])
        assert "median of 4 runs" in lines[b].get_label()
    assert "load average 1.9 at the start, 3.2 at the end" in ax1.get_title() and "2 cores" in ax1.get_title()
    assert len(np.concatenate([c.get_offsets() for c in ax2.collections])) == 8   # one ratio per repeat and size
    plt.close(fig)
    with pytest.raises(ValueError, match="timed 1 time"):                    # single timings are not a result
        draw.plot_tsne_scaling(scaling[scaling["repeat"] == 0])
    fig = draw.plot_tsne_scaling(scaling[scaling["repeat"] < 2], min_repeats=2)   # the caller may accept fewer
    assert "median of 2 runs" in fig.axes[0].get_lines()[0].get_label() and "load" not in fig.axes[0].get_title()
    plt.close(fig)


def test_plot_errors(blobs):
    X, y = blobs
    with pytest.raises(ValueError, match="class names"):
        draw.plot_scatter(X, y, classes=["a"])
    with pytest.raises(ValueError, match="2 to 5"):
        draw.plot_pairs(X, y)
    with pytest.raises(ValueError, match="missing"):
        draw.plot_backends(pd.DataFrame({"backend": ["x"]}))
    with pytest.raises(ValueError, match="needs 3 axes"):
        draw.plot_backends(pd.DataFrame({"backend": ["x"], "seconds": [1.0], "knn_acc": [0.9],
                                         "trustworthiness": [0.9]}), ax=plt.figure().subplots(1, 2))


def test_tsne_benchmark_file_is_the_checkouts_result_wherever_the_notebook_runs(tmp_path, monkeypatch):
    from mnistlab._util import project_root

    expected = project_root() / "benchmarks" / "results" / "tsne_speed.json"
    assert draw.tsne_benchmark_file() == expected
    monkeypatch.chdir(tmp_path)   # e.g. the runner's staging folder inside figures/
    assert draw.tsne_benchmark_file() == expected
