"""Unit tests for mnistlab.embed on small data (synthetic blobs and a slice of real MNIST)."""
from __future__ import annotations

import importlib.util

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
    np.testing.assert_allclose(single, rec[10])
    with pytest.raises(ValueError, match="exceeds"):
        embed.pca_reconstruct(X, 200, model=model)


def test_pca_reconstruct_all_components_is_identity(blobs):
    X, _ = blobs
    rec = embed.pca_reconstruct(X, X.shape[1])
    np.testing.assert_allclose(rec, X, atol=1e-3)


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
    df = embed.compare_backends(X, y, backends=backends, n_jobs=1, trust_sample=200, progress=False)
    assert list(df.columns) == ["backend", "seconds", "knn_acc", "trustworthiness"]
    assert list(df["backend"]) == backends
    assert (df["seconds"] > 0).all()
    assert df["knn_acc"].between(0.9, 1.0).all()
    assert df["trustworthiness"].between(0.8, 1.0).all()
    assert set(df.attrs["embeddings"]) == set(backends)


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
    assert _nonempty(draw.plot_scatter_3d(Y, y, classes))
    _, model = embed.pca(X, None)
    assert _nonempty(draw.plot_explained_variance(model))
    imgs = np.random.default_rng(0).random((20, 784))
    rec = embed.pca_reconstruct(imgs, (2, 10))
    assert len(draw.plot_reconstructions(imgs[:3], {k: r[:3] for k, r in rec.items()}).axes) == 9
    fig = draw.plot_class_highlights(Y, y, classes, ncols=2)
    assert sum(ax.collections != [] for ax in fig.axes) == 4
    assert len(draw.plot_axis_distributions(Y[:, :2], y, classes).axes) == 2
    df = pd.DataFrame({"backend": ["x", "y"], "seconds": [1.0, 2.0], "knn_acc": [0.9, 0.95],
                       "trustworthiness": [0.97, 0.99]})
    assert len(draw.plot_backends(df).axes) == 3
    fig = draw.plot_representations({"a": Y[:, :2], "b": Y[:, 1:]}, y, {"a": {"silhouette": 0.5, "knn_acc": 0.9}})
    assert "silhouette 0.500" in fig.axes[0].get_title()


def test_plot_errors(blobs):
    X, y = blobs
    with pytest.raises(ValueError, match="class names"):
        draw.plot_scatter(X, y, classes=["a"])
    with pytest.raises(ValueError, match="three"):
        draw.plot_scatter_3d(X[:, :2], y)
    with pytest.raises(ValueError, match="missing"):
        draw.plot_backends(pd.DataFrame({"backend": ["x"]}))
