"""Unit tests of mnistlab.studies.datastats and mnistlab.viz.datastats: exact answers on tiny synthetic ImageSets, sanity on real MNIST."""
import math

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import torch

import mnistlab as ml
from mnistlab.studies import datastats as ds
from mnistlab.viz import datastats as draw
from conftest import requires_data


def constant_set(values_by_label, dataset="mnist"):
    """An ImageSet whose images are constant: one image per (label, value) pair."""
    labels, images = [], []
    for label, values in values_by_label.items():
        for v in values:
            labels.append(label)
            images.append(torch.full((28, 28), v, dtype=torch.uint8))
    return ml.ImageSet(torch.stack(images), torch.tensor(labels), dataset)


@pytest.fixture
def tiny():
    # class 0: two images, 0 and 255; class 1: three images of 51; class 2: one of 102; others empty
    return constant_set({0: [0, 255], 1: [51, 51, 51], 2: [102]})


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


# ---- class counts and balance ---------------------------------------------------------------

def test_class_counts_exact(tiny):
    test = constant_set({1: [0], 3: [0, 0, 0]})
    df = ds.class_counts(tiny, test)
    assert list(df.columns) == ["class", "train", "train_frac", "test", "test_frac"]
    assert df.index.name == "label" and len(df) == 10
    assert list(df["class"]) == [str(i) for i in range(10)]
    assert df["train"].tolist() == [2, 3, 1] + [0] * 7
    assert df["test"].tolist() == [0, 1, 0, 3] + [0] * 6
    assert df["train_frac"].sum() == pytest.approx(1.0) and df["test_frac"].sum() == pytest.approx(1.0)
    assert df.loc[1, "train_frac"] == pytest.approx(0.5)
    assert "test" not in ds.class_counts(tiny).columns


def test_class_counts_uses_dataset_class_names():
    fashion = constant_set({0: [0], 9: [0]}, dataset="fashion-mnist")
    df = ds.class_counts(fashion)
    assert df.loc[0, "class"] == "T-shirt/top" and df.loc[9, "class"] == "Ankle boot"


def test_class_balance_exact():
    b = ds.class_balance([10, 10, 10, 10])
    assert b["ratio"] == 1.0 and b["entropy_ratio"] == pytest.approx(1.0)
    b = ds.class_balance(pd.Series([30, 10]))
    assert (b["n"], b["min"], b["max"], b["smallest"], b["largest"]) == (40, 10, 30, 1, 0)
    assert b["ratio"] == pytest.approx(3.0)
    p = np.array([0.75, 0.25])
    assert b["entropy_ratio"] == pytest.approx(-(p * np.log(p)).sum() / math.log(2))
    assert ds.class_balance([5, 0])["ratio"] == math.inf
    with pytest.raises(ValueError):
        ds.class_balance([0, 0])


def test_class_balance_of_imageset(tiny):
    b = ds.class_balance(tiny)
    assert b["n_classes"] == 10 and b["min"] == 0 and b["max"] == 3 and b["largest"] == 1


# ---- pixel statistics ------------------------------------------------------------------------

def test_class_means_exact(tiny):
    m = ds.class_means(tiny)
    assert m.shape == (10, 28, 28) and m.dtype == np.float64
    np.testing.assert_allclose(m[0], 0.5)
    np.testing.assert_allclose(m[1], 0.2)
    np.testing.assert_allclose(m[2], 0.4)
    assert np.isnan(m[3:]).all()  # empty classes


def test_class_means_positional():
    images = torch.zeros(2, 28, 28, dtype=torch.uint8)
    images[0, 3, 5] = 255
    images[1, 3, 5] = 85
    data = ml.ImageSet(images, torch.tensor([4, 4]))
    m = ds.class_means(data)[4]
    assert m[3, 5] == pytest.approx(340 / 510) and m.sum() == pytest.approx(340 / 510)


def test_pixel_std_exact(tiny):
    # all six images: values 0, 255, 51, 51, 51, 102 at every pixel
    values = np.array([0, 255, 51, 51, 51, 102]) / 255
    s = ds.pixel_std(tiny, chunk=4)  # chunk smaller than N: the accumulation over chunks is tested too
    assert s.shape == (28, 28)
    np.testing.assert_allclose(s, values.std(), rtol=1e-12)
    assert ds.pixel_std(constant_set({0: [7, 7, 7]})).max() == pytest.approx(0.0, abs=1e-12)


def test_pixel_histograms_exact(tiny):
    h = ds.pixel_histograms(tiny, bins=4, density=False)
    assert h.shape == (4, 10) and list(h.index) == [0, 64, 128, 192]
    assert list(h.columns) == [str(i) for i in range(10)]
    assert h["0"].tolist() == [784, 0, 0, 784]  # one black, one white image
    assert h["1"].tolist() == [3 * 784, 0, 0, 0]  # 51 < 64
    assert h["2"].tolist() == [0, 784, 0, 0]  # 102 in [64, 128)
    d = ds.pixel_histograms(tiny, bins=4)
    assert d["0"].tolist() == [0.5, 0, 0, 0.5]
    assert d["3"].isna().all()  # empty class
    full = ds.pixel_histograms(tiny, bins=256, density=False)
    assert full.loc[51.0, "1"] == 3 * 784 and full["1"].sum() == 3 * 784
    with pytest.raises(ValueError):
        ds.pixel_histograms(tiny, bins=0)


def test_mean_intensity_exact(tiny):
    df = ds.mean_intensity(tiny)
    assert list(df.columns) == ["class", "n", "mean", "std", "nonzero_fraction", "ink_fraction"]
    assert df["n"].tolist()[:4] == [2, 3, 1, 0]
    assert df.loc[0, "mean"] == pytest.approx(0.5) and df.loc[0, "std"] == pytest.approx(0.5)
    assert df.loc[1, "mean"] == pytest.approx(0.2) and df.loc[1, "std"] == pytest.approx(0.0)
    assert df.loc[0, "nonzero_fraction"] == 0.5 and df.loc[0, "ink_fraction"] == 0.5
    assert df.loc[1, "nonzero_fraction"] == 1.0 and df.loc[1, "ink_fraction"] == 0.0
    assert np.isnan(df.loc[3, "mean"])
    assert df.loc[df["mean"].idxmin(), "class"] == "1"


def test_normalization_constants_exact(tiny):
    values = np.array([0, 255, 51, 51, 51, 102]) / 255
    mean, std = ds.normalization_constants(tiny)
    assert mean == pytest.approx(values.mean(), rel=1e-12)
    assert std == pytest.approx(values.std(), rel=1e-12)
    assert ds.normalization_constants(constant_set({0: [255]})) == pytest.approx((1.0, 0.0))
    with pytest.raises(ValueError):
        ds.normalization_constants(ml.ImageSet(torch.zeros(0, 28, 28, dtype=torch.uint8), torch.zeros(0)))


def test_functions_reject_non_imagesets():
    with pytest.raises(TypeError):
        ds.class_means(torch.zeros(3, 28, 28, dtype=torch.uint8))


# ---- typical examples ------------------------------------------------------------------------

def test_distances_and_typical_examples_exact():
    # class 0: values 100, 110, 140 (mean 350/3); class 1: 0 and 30
    data = constant_set({0: [100, 110, 140], 1: [0, 30]})
    d = ds.distances_to_class_mean(data)
    mean0 = 350 / 3
    expected = np.array([abs(100 - mean0), abs(110 - mean0), abs(140 - mean0), 15, 15]) / 255 * 28
    np.testing.assert_allclose(d, expected, rtol=1e-5)
    t = ds.typical_examples(data, n=2, distances=d)
    assert list(t.columns) == ["label", "class", "kind", "rank", "index", "distance"]
    most0 = t[(t.label == 0) & (t.kind == "most")]
    least0 = t[(t.label == 0) & (t.kind == "least")]
    assert most0["index"].tolist() == [1, 0] and most0["rank"].tolist() == [0, 1]
    assert least0["index"].tolist() == [2, 0]
    assert (np.diff(least0["distance"]) <= 0).all()
    assert set(t[t.label == 1]["index"]) == {3, 4}
    assert len(ds.typical_examples(data, n=10)) == 2 * (3 + 2)  # capped at the class size
    with pytest.raises(ValueError):
        ds.typical_examples(data, n=0)


def test_class_spread_exact():
    data = constant_set({0: [100, 110, 140], 1: [0, 30]})
    d = ds.distances_to_class_mean(data)
    spread = ds.class_spread(data, d)
    assert list(spread.columns) == ["class", "n", "median_distance", "p90_distance"]
    assert spread.loc[0, "median_distance"] == pytest.approx(np.median(d[:3]))
    assert spread.loc[1, "median_distance"] == pytest.approx(15 / 255 * 28, rel=1e-5)
    assert spread.loc[0, "p90_distance"] == pytest.approx(np.quantile(d[:3], 0.9))
    assert spread.loc[1, "n"] == 2 and np.isnan(spread.loc[5, "median_distance"])
    with pytest.raises(ValueError, match="distances"):
        ds.class_spread(data, d[:2])


def _claims(train, test=None, **kw):
    return ds.source_claims(train, train if test is None else test, ds.mean_intensity(train), **kw)


def test_pixel_shares_exact():
    # class 0: one black and one white image; class 1: one mid-grey image (grey level 128: bin 5 of 10)
    data = constant_set({0: [0, 255], 1: [128]})
    sh = ds.pixel_shares(data)
    assert sh.loc[0, "lowest"] == sh.loc[0, "highest"] == pytest.approx(0.5) and sh.loc[0, "middle_max"] == 0
    assert sh.loc[1, "lowest"] == 0 and sh.loc[1, "middle_max"] == sh.loc[1, "middle"] == pytest.approx(1.0)
    assert list(sh.columns) == ["class", "lowest", "highest", "middle_max", "middle"]


def test_source_claims_follow_the_numbers():
    from mnistlab.studies import claims as C
    # class 1 has the least ink; every class is mostly black pixels with some white ones
    data = constant_set({c: [0, 0, 0, 255 if c != 1 else 0] for c in range(10)})
    data = ml.ImageSet(data.images.clone(), data.labels)
    data.images[:, 0, :5] = 255          # a little white in every image, the 1s too
    t = _claims(data)
    assert list(t.columns) == C.COLUMNS and (t["source"] == C.MEDIUM).all()
    assert t["claim"].tolist() == [C.QUOTES[k].claim for k in ("medium.size", "medium.least_ink", "medium.pixels")]
    # 40 images are not MNIST's 60,000 + 10,000; class 1 has the least ink; the pixels are black or white
    assert t["verdict"].tolist() == [C.NOT_REPRODUCED, C.REPRODUCED, C.REPRODUCED]
    assert "least mean ink: class 1" in t["measured"].iloc[1] and "10 of 10 classes" in t["measured"].iloc[2]
    # class 7 has the least ink, and grey pixels outnumber white ones in classes 0-4
    grey = constant_set({c: [0, 0, 0, 128 if c < 5 else 255] if c != 7 else [0] for c in range(10)})
    grey = ml.ImageSet(grey.images.clone(), grey.labels)
    grey.images[:, 0, :5] = 255
    g = _claims(grey)
    assert g["verdict"].tolist()[1:] == [C.NOT_REPRODUCED, C.PARTLY]
    # a QUICK subset says nothing about the sizes; Fashion-MNIST nothing about MNIST
    assert _claims(data, subset=True)["verdict"].iloc[0] == C.NOT_APPLICABLE
    fashion = constant_set({c: [60 + c] for c in range(10)}, dataset="fashion-mnist")
    assert (_claims(fashion)["verdict"] == C.NOT_APPLICABLE).all()


@requires_data
def test_source_claims_on_real_mnist(mnist_small):
    from mnistlab.studies import claims as C
    train, test = mnist_small
    t = _claims(train, test, subset=True)
    assert t["verdict"].tolist() == [C.NOT_APPLICABLE, C.REPRODUCED, C.REPRODUCED]


def test_sample_batch_is_seeded(mnist_small):
    train, _ = mnist_small
    x, y = ds.sample_batch(train, n=25, seed=3)
    assert x.shape == (25, 28, 28) and x.dtype == torch.float32 and 0 <= x.min() and x.max() <= 1
    x2, y2 = ds.sample_batch(train, n=25, seed=3)
    assert torch.equal(x, x2) and torch.equal(y, y2)
    assert not torch.equal(y, ds.sample_batch(train, n=25, seed=4)[1])
    assert not torch.equal(y, train.labels[:25])  # shuffled, not the first 25
    # each sampled image is the training image of the same label
    flat = (train.images.reshape(len(train), -1).float() / 255)
    hits = (flat[None] - x.reshape(25, 1, -1)).abs().amax(-1) < 1e-6
    idx = hits.float().argmax(1)
    assert hits.any(1).all() and torch.equal(train.labels[idx], y)


# ---- real data -------------------------------------------------------------------------------

def test_real_small_statistics(mnist_small):
    train, test = mnist_small
    counts = ds.class_counts(train, test)
    assert counts["train"].sum() == 2000 and counts["test"].sum() == 1000
    assert (counts["train"] > 100).all()
    assert 1.0 < ds.class_balance(counts["train"])["ratio"] < 2.0
    means = ds.class_means(train)
    assert means.shape == (10, 28, 28) and 0 <= means.min() and means.max() <= 1
    # the mean image of all digits, built from the class means, equals the direct mean
    direct = train.images.double().mean(0).numpy() / 255
    np.testing.assert_allclose(np.average(means, axis=0, weights=counts["train"]), direct, atol=1e-12)
    s = ds.pixel_std(train)
    np.testing.assert_allclose(s, train.images.double().std(0, unbiased=False).numpy() / 255, atol=1e-9)
    assert s[0, 0] == 0 and s[14, 14] > 0.3  # constant corner, varied centre
    h = ds.pixel_histograms(train)
    np.testing.assert_allclose(h.sum(), 1.0)
    assert (h.iloc[0] > 0.5).all()  # mostly background
    ink = ds.mean_intensity(train)
    per_class = [train.images[train.labels == c].double().mean().item() / 255 for c in range(10)]
    np.testing.assert_allclose(ink["mean"], per_class, rtol=1e-10)
    assert ink.loc[ink["mean"].idxmin(), "class"] == "1"
    mean, std = ds.normalization_constants(train)
    x = train.images.double() / 255
    assert mean == pytest.approx(x.mean().item(), rel=1e-10) and std == pytest.approx(x.std(unbiased=False).item(), rel=1e-10)
    d = ds.distances_to_class_mean(train, means)
    direct_d = (x - torch.as_tensor(means)[train.labels]).reshape(len(train), -1).norm(dim=1).numpy()
    np.testing.assert_allclose(d, direct_d, rtol=1e-5)
    t = ds.typical_examples(train, n=3, distances=d)
    assert len(t) == 10 * 2 * 3
    for c in range(10):
        own = d[(train.labels == c).numpy()]
        assert t[(t.label == c) & (t.kind == "most")]["distance"].iloc[0] == pytest.approx(own.min())
        assert t[(t.label == c) & (t.kind == "least")]["distance"].iloc[0] == pytest.approx(own.max())
    assert train.labels[t["index"].tolist()].tolist() == t["label"].tolist()


@requires_data
def test_normalization_constants_full_mnist_train():
    mean, std = ds.normalization_constants(ml.load_dataset("mnist", "train"))
    assert (round(mean, 4), round(std, 4)) == (0.1307, 0.3081)
    info = ml.dataset_info("mnist")
    assert (round(mean, 4), round(std, 4)) == (info.mean, info.std)


# ---- plots -----------------------------------------------------------------------------------

def test_plots_return_figures(mnist_small, tmp_path):
    train, test = mnist_small
    figs = ml.Figures("01_test", root=tmp_path)
    x, y = ds.sample_batch(train, n=25)
    fig = draw.plot_samples(x, y, classes=train.classes, title="t")
    assert len([a for a in fig.axes if a.images]) == 25
    assert fig.axes[0].get_title() == train.classes[int(y[0])]
    fig = draw.plot_class_counts(ds.class_counts(train, test))
    assert len(fig.axes) == 2 and len(fig.axes[0].patches) == 20
    fig = draw.plot_class_counts(ds.class_counts(train))
    assert len(fig.axes[0].patches) == 10
    fig = draw.plot_class_means(ds.class_means(train), train.classes)
    assert len([a for a in fig.axes if a.images]) == 10
    fig = draw.plot_pixel_std(ds.pixel_std(train), mean=ds.class_means(train).mean(0))
    assert len([a for a in fig.axes if a.images]) == 2
    assert len([a for a in draw.plot_pixel_std(ds.pixel_std(train)).axes if a.images]) == 1
    fig = draw.plot_pixel_histograms(ds.pixel_histograms(train, bins=16))
    panels = [a for a in fig.axes if a.patches]
    assert len(panels) == 10 and panels[0].get_yscale() == "log"
    ink = ds.mean_intensity(train)
    fig = draw.plot_mean_intensity(ink)
    bars = fig.axes[0].patches
    assert len(bars) == 10
    assert bars[int(ink["mean"].idxmin())].get_facecolor() != bars[int(ink["mean"].idxmax())].get_facecolor()
    t = ds.typical_examples(train, n=4)
    for kind in ("most", "least"):
        fig = draw.plot_typical_examples(train.images, t, kind=kind)
        labels = [tick.get_text() for tick in fig.axes[0].get_yticklabels()]
        assert labels == list(train.classes)
        assert len(fig.axes[0].texts) == 40  # one distance per image
        figs.save(fig, kind)
        assert (figs.dir / f"{kind}.png").stat().st_size > 5000
    with pytest.raises(ValueError):
        draw.plot_typical_examples(train.images, t, kind="middle")


def test_plot_typical_examples_places_the_right_images():
    data = constant_set({0: [100, 110, 140], 1: [0, 30]})
    t = ds.typical_examples(data, n=2)
    fig = draw.plot_typical_examples(data.images, t, kind="least")
    mosaic = fig.axes[0].images[0].get_array()
    cell = mosaic[4:32, 4:32]  # class 0, rank 0: the farthest image, value 140
    assert np.allclose(cell, 140 / 255)
    assert np.allclose(mosaic[4:32, 36:64], 100 / 255)  # rank 1: value 100
