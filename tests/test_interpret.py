"""mnistlab.studies.interpret (and its figures and widgets): numbers checked against hand-built cases."""
from __future__ import annotations

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

import mnistlab as ml
from conftest import requires_data
from mnistlab.models.registry import Preprocessing, create_model
from mnistlab.studies import interpret as I

matplotlib.use("Agg")


# --------------------------------------------------------------------------------------------
# A model with known outputs: image i (pixel [0, 0] = i / 255) gets logits TABLE[i]
# --------------------------------------------------------------------------------------------

TABLE = np.array([
    [3.0, 0.0, 0.0],   # true 0 -> 0
    [0.0, 2.0, 0.0],   # true 1 -> 1
    [0.0, 0.0, 1.0],   # true 2 -> 2
    [0.0, 4.0, 0.0],   # true 0 -> 1 (confident error)
    [1.0, 0.0, 1.5],   # true 1 -> 2
    [2.0, 0.0, 0.0],   # true 2 -> 0
    [0.0, 1.0, 0.0],   # true 0 -> 1
], dtype=np.float32)
LABELS = np.array([0, 1, 2, 0, 1, 2, 0])


class TableModel(nn.Module):
    """Returns TABLE[i] for the image whose top-left pixel is i / 255 (inputs are raw pixels: mean 0, std 1)."""

    def __init__(self):
        super().__init__()
        self.table = nn.Parameter(torch.tensor(TABLE), requires_grad=False)
        self.preprocessing = Preprocessing(0.0, 1.0, "mnist", "custom")

    def forward(self, x):
        i = torch.round(x[:, 0, 0, 0] * 255).long()
        return self.table[i]


def table_data():
    images = torch.zeros(len(TABLE), 28, 28, dtype=torch.uint8)
    images[:, 0, 0] = torch.arange(len(TABLE), dtype=torch.uint8)
    return ml.ImageSet(images, torch.as_tensor(LABELS))


@pytest.fixture(scope="module")
def table_interp():
    return I.Interpretation.from_model(TableModel(), table_data())


def softmax(z):
    e = np.exp(z - z.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def test_interpretation_numbers_match_the_hand_built_model(table_interp):
    it = table_interp
    p = softmax(TABLE.astype(np.float64))
    df = it.predictions
    assert list(df.columns[:6]) == ["true", "predicted", "confidence", "correct", "loss", "p_true"]
    assert df["predicted"].tolist() == [0, 1, 2, 1, 2, 0, 1]
    np.testing.assert_allclose(df["confidence"], p.max(1), rtol=1e-6)
    np.testing.assert_allclose(df["loss"], -np.log(p[np.arange(7), LABELS]), rtol=1e-6)
    np.testing.assert_allclose(df[["p0", "p1", "p2"]].to_numpy(), p, rtol=1e-6)
    assert df["correct"].tolist() == [True, True, True, False, False, False, False]
    assert it.accuracy == pytest.approx(3 / 7) and it.n_errors == 4
    cm = it.confusion()
    assert cm.to_numpy().tolist() == [[1, 2, 0], [0, 1, 1], [1, 0, 1]]
    np.testing.assert_allclose(it.confusion("true").to_numpy().sum(1), 1.0)
    mc = it.most_confused(2)
    assert mc[["true", "predicted", "count"]].values.tolist() == [[0, 1, 2], [1, 2, 1]]
    assert mc["rate"].iloc[0] == pytest.approx(2 / 3)
    assert it.top_losses(1).index.tolist() == [3]            # 4 logits above the true class
    wrong = it.misclassified_by_class()
    assert wrong.index.tolist() == [3, 6, 4, 5] and wrong["rank"].tolist() == [0, 1, 0, 0]
    assert it.cell(0, 1).tolist() == [3, 6]                  # most confident first
    assert it.cell(1, 0).tolist() == []
    assert it.least_confident_correct(1).index.tolist() == [2]
    assert it.most_confident_wrong(1).index.tolist() == [3]


def test_report_is_scikit_learns_per_class_numbers(table_interp):
    rep = table_interp.report()
    # class 0: predicted 0 for items 0 and 5 (one right) -> precision 1/2; recall 1/3
    assert rep.loc["0", "precision"] == pytest.approx(0.5) and rep.loc["0", "recall"] == pytest.approx(1 / 3)
    assert rep.loc["0", "f1"] == pytest.approx(2 * 0.5 * (1 / 3) / (0.5 + 1 / 3))
    assert rep.loc["1", "support"] == 2 and rep.loc["2", "precision"] == pytest.approx(0.5)
    assert rep.loc["accuracy", "f1"] == pytest.approx(3 / 7)


def test_from_logits_probs_and_subset_agree(table_interp):
    a = I.Interpretation.from_logits(TABLE, LABELS)
    b = I.Interpretation.from_probs(softmax(TABLE.astype(np.float64)), LABELS)
    pd.testing.assert_frame_equal(a.predictions, table_interp.predictions, check_exact=False, rtol=1e-6)
    pd.testing.assert_frame_equal(b.predictions, a.predictions, check_exact=False, rtol=1e-6)
    sub = table_interp.subset([3, 5])
    assert sub.indices.tolist() == [3, 5] and sub.predictions.index.tolist() == [3, 5]
    assert sub.images_of([5])[0, 0, 0] == 5
    with pytest.raises(KeyError):
        sub.positions([0])


def test_interpretation_rejects_inconsistent_input():
    with pytest.raises(ValueError, match="N = len"):
        I.Interpretation.from_logits(TABLE, LABELS[:3])
    with pytest.raises(ValueError, match="0..2"):
        I.Interpretation.from_logits(TABLE, LABELS + 5)
    with pytest.raises(ValueError, match="summing to 1"):
        I.Interpretation.from_probs(TABLE, LABELS)


def test_confusion_counts_sum_to_n_and_filters_are_exact():
    rng = np.random.default_rng(0)
    logits, labels = rng.normal(size=(500, 10)), rng.integers(0, 10, 500)
    it = I.Interpretation.from_logits(logits, labels)
    assert it.confusion().to_numpy().sum() == 500
    assert np.trace(it.confusion().to_numpy()) == int(it.correct.sum())
    rows = it.filter(true=3, predicted=5, sort="loss")
    assert set(rows.index) == set(np.flatnonzero((labels == 3) & (logits.argmax(1) == 5)))
    assert rows["loss"].is_monotonic_decreasing
    assert it.grouped().index.names == ["true", "predicted", "index"]


@pytest.fixture(scope="module")
def pretrained():
    return ml.load_pretrained()


@pytest.fixture(scope="module")
def small_interp(pretrained):
    from conftest import have_real_data

    if not have_real_data():
        pytest.skip("real MNIST not found at $MNISTLAB_DATA")
    return I.Interpretation.from_model(pretrained, ml.load_dataset("mnist", "test", limit=600))


@requires_data
def test_ensemble_averages_member_probabilities(pretrained):
    test = ml.load_dataset("mnist", "test", limit=200)
    other = create_model("lenet5", seed=0)
    ens = I.Interpretation.from_model([pretrained, other], test)
    p = (ml.predict(pretrained, test) + ml.predict(other, test)) / 2
    np.testing.assert_allclose(ens.probs, p, atol=1e-5)
    single = I.Interpretation.from_model(pretrained, test)
    assert single.accuracy > 0.97 and single.accuracy == pytest.approx(ml.evaluate(pretrained, test)["acc"])


def test_as_pixels_and_model_logits():
    u8 = torch.full((2, 28, 28), 255, dtype=torch.uint8)
    x = I.as_pixels(u8)
    assert x.shape == (2, 1, 28, 28) and x.dtype == torch.float32 and float(x.max()) == 1.0
    with pytest.raises(ValueError, match="28, 28"):
        I.as_pixels(torch.zeros(2, 3, 28, 28))
    model = create_model("lenet5", seed=0)
    logits = I.model_logits(model, u8)
    np.testing.assert_allclose(np.exp(logits) / np.exp(logits).sum(1, keepdims=True), ml.predict(model, u8), atol=1e-5)


def test_load_subject(tmp_path, monkeypatch):
    model, about = I.load_subject("pretrained")
    assert not model.training and "pretrained" in about and "parameters" in about
    with pytest.raises(ValueError, match="for MNIST"):
        I.load_subject("pretrained", dataset="fashion-mnist")
    with pytest.raises(FileNotFoundError, match="neither 'pretrained', 'ensemble'"):
        I.load_subject(str(tmp_path / "missing.pt"))
    net = create_model("lenet5", seed=3)
    path = ml.save_checkpoint(tmp_path / "lenet.pt", net)
    loaded, about = I.load_subject(str(path))
    assert "lenet.pt" in about and "lenet5" in about
    x = torch.zeros(1, 28, 28, dtype=torch.uint8)
    np.testing.assert_allclose(I.model_logits(loaded, x), I.model_logits(net, x), atol=1e-6)


@requires_data
def test_load_subject_ensemble(tmp_path, monkeypatch):
    monkeypatch.setenv("MNISTLAB_CACHE", str(tmp_path / "cache"))
    cfg = ml.get_recipe("fast").but(train_limit=300, test_limit=100, epochs=1)
    models, about = I.load_subject("ensemble", ensemble=cfg, seeds=[0, 1])
    assert isinstance(models, list) and len(models) == 2 and "ensemble of 2" in about
    it = I.Interpretation.from_model(models, ml.load_dataset("mnist", "test", limit=50))
    p = (ml.predict(models[0], it.images) + ml.predict(models[1], it.images)) / 2
    np.testing.assert_allclose(it.probs, p, atol=1e-5)


# --------------------------------------------------------------------------------------------
# Attributions
# --------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def digits():
    g = torch.Generator().manual_seed(0)
    return (torch.rand(5, 28, 28, generator=g) * 255).to(torch.uint8), np.array([0, 1, 2, 3, 4])


@pytest.mark.parametrize("method", I.METHODS)
def test_attribution_shapes(method, digits):
    model = create_model("lenet5", seed=0)
    res = I.attribute(model, digits[0], digits[1], method, n_steps=16, nt_samples=4)
    assert res.maps.shape == (5, 28, 28) and np.isfinite(res.maps).all() and np.abs(res.maps).max() > 0
    assert res.targets.tolist() == [0, 1, 2, 3, 4]
    assert (res.delta is not None) == (method == "integrated_gradients")


def test_smoothgrad_is_seeded(digits):
    model = create_model("lenet5", seed=0)
    a = I.attribute(model, digits[0], 1, "smoothgrad", nt_samples=4, seed=3).maps
    b = I.attribute(model, digits[0], 1, "smoothgrad", nt_samples=4, seed=3).maps
    c = I.attribute(model, digits[0], 1, "smoothgrad", nt_samples=4, seed=4).maps
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


@requires_data
def test_integrated_gradients_completeness(pretrained):
    test = ml.load_dataset("mnist", "test", limit=8)
    res = I.attribute(pretrained, test.images, test.labels.numpy(), "integrated_gradients", n_steps=64)
    pm = I.pixel_model(pretrained)
    with torch.no_grad():
        fx = pm(I.as_pixels(test.images)).numpy()[np.arange(8), test.labels.numpy()]
        fb = pm(torch.zeros(1, 1, 28, 28)).numpy()[0, test.labels.numpy()]
    total = res.maps.reshape(8, -1).sum(1)
    # sum of attributions = F(x) - F(baseline) up to Captum's convergence delta ...
    np.testing.assert_allclose(total - (fx - fb), res.delta, atol=1e-4)
    assert np.all(np.abs(total - (fx - fb)) <= np.abs(res.delta) + 1e-4)
    # ... and that delta is small against the logit difference it explains
    assert np.median(np.abs(res.delta) / np.abs(fx - fb)) < 0.03


def test_contrast_is_the_difference_of_two_attributions(digits):
    model = create_model("lenet5", seed=0)
    c = I.contrast(model, digits[0], 7, 1, "integrated_gradients", n_steps=16)
    a = I.attribute(model, digits[0], 7, "integrated_gradients", n_steps=16).maps
    b = I.attribute(model, digits[0], 1, "integrated_gradients", n_steps=16).maps
    np.testing.assert_allclose(c.maps, a - b, atol=1e-5)


def test_gradcam_of_an_ensemble_averages_its_members(digits):
    m1, m2 = create_model("lenet5", seed=0), create_model("lenet5", seed=1)
    ens = I.attribute([m1, m2], digits[0], 2, "gradcam").maps
    one = (I.attribute(m1, digits[0], 2, "gradcam").maps + I.attribute(m2, digits[0], 2, "gradcam").maps) / 2
    np.testing.assert_allclose(ens, one, atol=1e-6)


def test_attribute_errors_are_clear(digits):
    with pytest.raises(ValueError, match="Unknown attribution method"):
        I.attribute(create_model("lenet5", seed=0), digits[0], 0, "lime")
    with pytest.raises(ValueError, match="no Conv2d"):
        I.attribute(create_model("mlp", seed=0), digits[0], 0, "gradcam")


def test_region_shares():
    m = np.zeros((28, 28))
    m[20:, :5] = 1.0       # bottom-left
    m[0, 27] = -3.0        # negative mass top-right
    pos, neg = I.region_shares(m), I.region_shares(m, "negative")
    assert pos.sum() == pytest.approx(1.0) and pos.idxmax() == "bottom-left" and pos["bottom-left"] == 1.0
    assert neg.idxmax() == "top-right"


def test_class_average_maps(small_interp, pretrained):
    maps, means, used = I.class_average_maps(pretrained, small_interp, "saliency", per_class=3)
    assert maps.shape == means.shape == (10, 28, 28) and len(used) == 30
    first = used[used["true"] == 0]["index"]
    np.testing.assert_allclose(means[0], small_interp.images_of(first).float().mean(0).numpy() / 255, atol=1e-6)
    single = I.attribute(pretrained, small_interp.images_of(first), 0, "saliency").maps.mean(0)
    np.testing.assert_allclose(maps[0], single, atol=1e-6)
    assert used.groupby("true").size().tolist() == [3] * 10
    assert small_interp.predictions.loc[used["index"], "correct"].all()


@requires_data
def test_randomization_check_maps_decorrelate(pretrained):
    test = ml.load_dataset("mnist", "test", limit=12)
    check = I.randomization_check(pretrained, test.images, test.labels.numpy(), "saliency")
    t = check.table
    assert t["rank_corr_abs"].iloc[0] == pytest.approx(1.0)
    assert len(t) == 1 + len(I._weight_layers(pretrained))
    assert t["rank_corr_abs"].iloc[-1] < 0.5 and t["rank_corr_signed"].iloc[-1] < 0.3
    assert check.trained.shape == check.randomized.shape == (12, 28, 28)
    # the original model is left untouched
    assert I.Interpretation.from_model(pretrained, test).accuracy > 0.9


# --------------------------------------------------------------------------------------------
# Hidden layers
# --------------------------------------------------------------------------------------------

def test_feature_maps_and_filters_of_every_conv_layer():
    model = create_model("lenet5", seed=0, activation="relu", pool="max")
    maps = I.feature_maps(model, torch.zeros(28, 28, dtype=torch.uint8))
    assert list(maps) == [name for name, _ in I.conv_layers(model)]
    assert [m.shape for m in maps.values()] == [(6, 28, 28), (16, 10, 10), (120, 1, 1)]
    assert all((m >= 0).all() for m in maps.values())        # taken after the ReLU
    assert I.first_layer_filters(model).shape == (6, 5, 5)


def test_channel_means_and_top_activating(small_interp, pretrained):
    df = I.channel_class_means(pretrained, small_interp)
    assert df.shape[0] == 10 and df.shape[1] == I.conv_layers(pretrained)[-1][1].out_channels
    top = I.top_activating(pretrained, small_interp, k=3, n_channels=2)
    assert len(top) == 6 and top["channel"].nunique() == 2
    for _, rows in top.groupby("channel"):
        assert rows["activation"].is_monotonic_decreasing
    # the activation reported is the channel's spatial mean for that image
    r = top.iloc[0]
    maps = I.feature_maps(pretrained, small_interp.images_of([r["index"]])[0])
    assert maps[top.attrs["layer"]][int(r["channel"])].mean() == pytest.approx(r["activation"], rel=1e-4)
    with pytest.raises(ValueError, match="No conv layer"):
        I.channel_class_means(pretrained, small_interp, layer="nope")


def _overlapping_labels(labels, renderer) -> list:
    boxes = [(t.get_text(), t.get_window_extent(renderer)) for t in labels if t.get_visible() and t.get_text()]
    return [(a, b) for i, (a, ba) in enumerate(boxes) for b, bb in boxes[i + 1:] if ba.overlaps(bb)]


def test_confusion_tick_labels_of_word_classes_do_not_overlap():
    """Fashion-MNIST's class names ("T-shirt/top", "Ankle boot") as tick labels: none overlaps its neighbour."""
    from mnistlab.data.datasets import dataset_info
    from mnistlab.viz import interpret as V

    rng = np.random.default_rng(0)
    labels = rng.integers(0, 10, 2000)
    logits = rng.normal(size=(2000, 10))
    logits[np.arange(2000), labels] += 2.5
    classes = dataset_info("fashion-mnist").classes
    assert max(map(len, classes)) >= 10
    it = I.Interpretation.from_logits(logits, labels, classes=classes)
    own = V.plot_confusion(it)
    fig, axes = plt.subplots(1, 2, figsize=(14, 5.8))          # notebook 06's layout
    V.plot_confusion(it, ax=axes[0])
    V.plot_confusion(it, normalize=True, ax=axes[1])
    fig.tight_layout()
    for f in (own, fig):
        f.canvas.draw()
        renderer = f.canvas.get_renderer()
        for ax in f.axes[:1] if f is own else axes:
            assert [t.get_text() for t in ax.get_xticklabels()] == list(classes)
            assert not _overlapping_labels(ax.get_xticklabels(), renderer)
            assert not _overlapping_labels(ax.get_yticklabels(), renderer)
        plt.close(f)
    digits = V.plot_confusion(I.Interpretation.from_logits(logits, labels))   # digits stay upright
    assert all(t.get_rotation() == 0 for t in digits.axes[0].get_xticklabels())
    plt.close(digits)


def test_class_maximization_reaches_each_class(pretrained):
    images, table = I.class_maximization(pretrained, classes=[0, 7], steps=150)
    assert images.shape == (2, 28, 28) and 0 <= images.min() and images.max() <= 1
    assert table["predicted"].tolist() == [0, 7] and (table["prob"] > 0.5).all()
    assert all(p.requires_grad for p in pretrained.parameters())     # left trainable


# --------------------------------------------------------------------------------------------
# Calibration
# --------------------------------------------------------------------------------------------

def overconfident(n=6000, c=10, sharpen=4.0, seed=0):
    """Logits of a perfectly calibrated model (labels drawn from its softmax), multiplied by ``sharpen``."""
    rng = np.random.default_rng(seed)
    base = rng.normal(size=(n, c)) * 1.5
    p = softmax(base)
    labels = np.array([rng.choice(c, p=row) for row in p])
    return base * sharpen, labels


def test_temperature_scaling_lowers_ece_of_an_overconfident_model():
    logits, labels = overconfident()
    it = I.Interpretation.from_logits(logits, labels)
    cal = I.calibrate(it, val_fraction=0.5, seed=0)
    assert 3.3 < cal.temperature < 4.7                   # recovers the sharpening factor
    assert cal.ece_after < cal.ece_before / 3
    assert cal.summary.loc["after", "nll"] < cal.summary.loc["before", "nll"]
    assert cal.summary.loc["after", "accuracy"] == cal.summary.loc["before", "accuracy"]
    assert not set(cal.val_indices) & set(cal.eval_indices) and len(cal.val_indices) + len(cal.eval_indices) == 6000


def test_reliability_bins_pool_small_bins_and_carry_wilson_intervals():
    logits, labels = overconfident(3000, sharpen=3.0, seed=2)
    tab = I.reliability_table(softmax(logits), labels, n_bins=15)
    full = tab[tab["count"] > 0]
    assert ((full["ci_low"] >= 0) & (full["ci_low"] <= full["accuracy"]) & (full["accuracy"] <= full["ci_high"])
            & (full["ci_high"] <= 1)).all()
    assert tab.loc[tab["count"] == 0, ["accuracy", "ci_low", "ci_high"]].isna().all().all()
    for m in (1, 30, 200):
        pooled = I.merge_sparse_bins(tab, m)
        assert (pooled["count"] >= m).all() and pooled["count"].sum() == tab["count"].sum()
        assert pooled["correct"].sum() == tab["correct"].sum() and (pooled["low"].iloc[1:].to_numpy() == pooled["high"].iloc[:-1].to_numpy()).all()
        assert pooled[["ci_low", "ci_high"]].stack().between(0, 1).all()
        assert (pooled["ci_low"] <= pooled["accuracy"]).all() and (pooled["accuracy"] <= pooled["ci_high"]).all()
    assert len(I.merge_sparse_bins(tab, 1)) == len(full)
    assert I.merge_sparse_bins(tab, 10_000).empty                      # fewer images than one bin needs
    lo, hi = I.wilson_interval([0, 5, 10], [10, 10, 10])
    assert lo[0] == 0 and hi[-1] == 1 and lo[1] < 0.5 < hi[1]
    assert hi[0] == pytest.approx(0.2775, abs=1e-3)                    # Wilson, not Wald (which gives 0)


def test_reliability_figure_draws_no_sparse_bin_and_keeps_the_legend_off_the_data():
    from mnistlab.viz import interpret as V

    logits, labels = overconfident(2000, sharpen=3.0, seed=3)
    cal = I.calibrate(I.Interpretation.from_logits(logits, labels), min_count=40)
    d = cal.diagram
    assert set(d["which"]) == {"before", "after"} and (d["count"] >= 40).all()
    assert d[["ci_low", "ci_high"]].stack().between(0, 1).all()
    assert (cal.before["count"].between(1, 39)).any()                  # there were small bins to pool
    fig = V.plot_reliability(cal)
    ax, hx = fig.axes[:2]
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    drawn = [c for c in ax.collections if type(c).__name__ == "PathCollection" and len(c.get_offsets())]
    assert sum(len(c.get_offsets()) for c in drawn) == len(d)          # one point per pooled bin, no other
    for a in (ax, hx):
        legend = a.get_legend()
        assert legend is not None
        box, area = legend.get_window_extent(renderer), a.get_window_extent(renderer)
        assert box.y1 <= area.y0 or box.x0 >= area.x1 or box.x1 <= area.x0 or box.y0 >= area.y1, "legend on the data"
    plt.close(fig)


def test_reliability_table_matches_torchmetrics_ece():
    logits, labels = overconfident(2000, sharpen=2.0, seed=1)
    p = softmax(logits)
    tab = I.reliability_table(p, labels, n_bins=15)
    assert tab["count"].sum() == 2000 and len(tab) == 15
    ece = (tab["count"] * tab["gap"].abs()).sum() / 2000
    assert ece == pytest.approx(I.expected_calibration_error(p, labels, 15), abs=1e-5)


def test_fit_temperature_of_a_calibrated_model_is_one():
    logits, labels = overconfident(sharpen=1.0, seed=2)
    assert I.fit_temperature(logits, labels) == pytest.approx(1.0, abs=0.1)


# --------------------------------------------------------------------------------------------
# Label issues
# --------------------------------------------------------------------------------------------

def test_flip_labels():
    labels = np.arange(1000) % 10
    noisy, flipped = I.flip_labels(labels, 0.05, seed=0)
    assert len(flipped) == 50 and (noisy[flipped] != labels[flipped]).all()
    assert (np.delete(noisy, flipped) == np.delete(labels, flipped)).all()


def test_label_issues_ranks_clear_mislabels_first():
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(5), 60)
    probs = np.full((300, 5), 0.02)
    probs[np.arange(300), labels] = 0.92
    bad = np.array([5, 70, 130, 200, 260])
    probs[bad] = 0.02
    probs[bad, (labels[bad] + 1) % 5] = 0.92
    probs += rng.uniform(0, 0.01, probs.shape)
    probs /= probs.sum(1, keepdims=True)
    issues = I.label_issues(labels, probs, classes=list("abcde"))
    assert set(issues["index"]) == set(bad)
    assert (issues["predicted"].to_numpy() == (labels[issues["index"]] + 1) % 5).all()
    assert issues["rank"].tolist() == list(range(5)) and issues["given_name"].iloc[0] in "abcde"


def test_label_issue_images_raise_no_read_only_warning(tmp_path):
    """Notebook 06 printed "The given NumPy array is not writable" when it took the issues' images with
    ``torch.as_tensor(issues["index"].to_numpy())`` (pandas hands out read-only arrays). torch warns once
    per process, so the check runs in a fresh one, with every warning an error."""
    import subprocess
    import sys

    script = tmp_path / "check.py"
    script.write_text(
        "import warnings\n"
        "warnings.simplefilter('error')\n"
        "import matplotlib\nmatplotlib.use('Agg')\n"
        "import numpy as np, pandas as pd, torch\n"
        "import mnistlab as ml\n"
        "from mnistlab.studies import interpret as I\n"
        "from mnistlab.viz import interpret as V\n"
        "data = ml.ImageSet(torch.randint(0, 256, (40, 28, 28), dtype=torch.uint8), torch.arange(40) % 10)\n"
        "probs = np.full((40, 10), 0.01); probs[np.arange(40), (np.arange(40) + 1) % 10] = 0.91\n"
        "issues = I.label_issues(data.labels.numpy(), probs, classes=data.classes)\n"
        "assert not issues['index'].to_numpy().flags.writeable or pd.__version__ < '3'\n"
        "fig = V.plot_label_issues(issues.head(4), data, data.classes)\n"
        "shown = [a for a in fig.axes if a.images]\n"
        "assert len(shown) == 4, len(shown)\n"
        "assert np.allclose(shown[0].images[0].get_array(), data.images[int(issues['index'].iloc[0])].numpy() / 255)\n"
        "it = I.Interpretation.from_probs(probs, data.labels.numpy(), images=data.images)\n"
        "it.images_of(it.most_confident_wrong(3).index)\n"
        "print('clean')\n")
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0 and "clean" in out.stdout, out.stderr[-2000:]


@requires_data
def test_label_issue_ranking_finds_labels_flipped_on_purpose(record_property):
    train = ml.load_dataset("mnist", "train", limit=2000)
    res = I.flipped_label_check(train, fraction=0.05, k=5, seed=0, progress=False)
    print(f"flipped {res['n_flipped']} of {res['n']}: cleanlab flagged {res['n_flagged']}, found "
          f"{res['n_found']} (recall {res['recall']:.2f}, precision {res['precision']:.2f})")
    record_property("flipped_label_recall", res["recall"])
    assert res["n_flipped"] == 100
    assert res["recall"] >= 0.7 and res["recall_top"] >= 0.6


# --------------------------------------------------------------------------------------------
# Robustness
# --------------------------------------------------------------------------------------------

def centre_of_mass(img):
    img = img.float()
    ys, xs = torch.meshgrid(torch.arange(28.0), torch.arange(28.0), indexing="ij")
    return float((img * ys).sum() / img.sum()), float((img * xs).sum() / img.sum())


def test_perturbations_do_what_they_say():
    img = torch.zeros(1, 28, 28, dtype=torch.uint8)
    img[0, 10:18, 12:16] = 255
    assert torch.equal(I.perturb(img, "noise", 0.0), img)
    y0, x0 = centre_of_mass(img[0])
    y1, x1 = centre_of_mass(I.perturb(img, "shift", 3, seed=1)[0])
    assert np.hypot(y1 - y0, x1 - x0) == pytest.approx(3.0, abs=0.25)
    rot = I.perturb(img, "rotation", 90)[0]
    assert rot[12:16, 10:18].float().mean() > 200 and rot[10:12, 12:16].float().mean() < 60   # bar turned sideways
    noisy = I.perturb(torch.full((4, 28, 28), 128, dtype=torch.uint8), "noise", 0.1).float() / 255
    assert noisy.std().item() == pytest.approx(0.1, abs=0.01)
    assert I.perturb(img, "blur", 1.5).max() < 255 and I.perturb(img, "blur", 1.5).sum() > 0.9 * img.float().sum() / 255
    np.testing.assert_array_equal(I.perturb(img, "shift", 2, seed=5), I.perturb(img, "shift", 2, seed=5))
    with pytest.raises(ValueError, match="Unknown perturbation"):
        I.perturb(img, "zoom", 1)


@requires_data
def test_robustness_table(pretrained):
    test = ml.load_dataset("mnist", "test", limit=300)
    df = I.robustness({"pretrained": pretrained, "untrained": create_model("lenet5", seed=0)}, test,
                      levels={"rotation": [0, 45], "noise": [0, 0.3]}, progress=False)
    assert len(df) == 8 and set(df.columns) >= {"model", "perturbation", "level", "acc", "ci_low", "ci_high", "n"}
    clean = df[(df["model"] == "pretrained") & (df["level"] == 0)]["acc"]
    np.testing.assert_allclose(clean, ml.evaluate(pretrained, test)["acc"])
    rot = df[(df["model"] == "pretrained") & (df["perturbation"] == "rotation")].set_index("level")["acc"]
    assert rot[45.0] < rot[0.0]
    assert (df["ci_low"] <= df["acc"]).all() and (df["acc"] <= df["ci_high"]).all()
    # on clean digits the most predicted class holds about a tenth of them (the test set's largest class)
    top = df[(df["model"] == "pretrained") & (df["level"] == 0)]["top_share"]
    assert (top < 0.2).all() and (top >= np.bincount(test.labels.numpy()).max() / len(test) - 0.02).all()
    assert df["top_class"].between(0, 9).all()


def test_studies_module_never_imports_matplotlib_or_viz():
    import ast
    import inspect

    tree = ast.parse(inspect.getsource(I))
    names = [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    names += [("." * n.level) + (n.module or "") for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
    assert names and not [n for n in names if "matplotlib" in n or "viz" in n]


# --------------------------------------------------------------------------------------------
# Widgets (their Python API, no browser)
# --------------------------------------------------------------------------------------------

def test_confusion_explorer_selects_exactly_the_cells_indices(small_interp, pretrained):
    from mnistlab.viz.widgets import ConfusionExplorer

    ex = ConfusionExplorer(small_interp, model=pretrained, max_digits=4)
    first = small_interp.most_confused(1)
    assert ex.selected == (int(first["true"].iloc[0]), int(first["predicted"].iloc[0]))
    labels, pred = small_interp.labels, small_interp.predicted
    for t, p in [(3, 3), (1, 1)] + [tuple(r) for r in small_interp.most_confused(3)[["true", "predicted"]].values]:
        before = ex.image.value
        ex.buttons[(t, p)].click()                                   # what a click in the browser does
        expected = small_interp.indices[(labels == t) & (pred == p)]
        assert ex.selected == (t, p) and sorted(ex.indices.tolist()) == sorted(expected.tolist())
        assert ex.shown.tolist() == ex.indices[:4].tolist()
        assert (ex.true_box.value, ex.pred_box.value) == (t, p)
        assert f"data-true='{t}'" in ex.status.value and ex.image.value != before
    ex.true_box.value = 7                                            # the dropdowns select too
    assert ex.selected == (7, ex.pred_box.value)
    assert "application/vnd.jupyter.widget-view+json" in ex._repr_mimebundle_()


def test_predictions_browser_filters_and_sorts(small_interp):
    from mnistlab.viz.widgets import PredictionsBrowser

    br = PredictionsBrowser(small_interp, page_size=5)
    assert len(br.rows) == len(small_interp) and len(br.page_rows) == 5
    rows = br.set_filter(true=4, sort="loss, highest first")
    assert set(rows.index) == set(small_interp.indices[small_interp.labels == 4])
    assert rows["loss"].is_monotonic_decreasing and br.page_rows.index.tolist() == rows.index[:5].tolist()
    rows = br.set_filter(errors_only=True, sort="confidence, highest first")
    assert len(rows) == small_interp.n_errors and not rows["correct"].any()
    br.set_filter()
    br.page_box.value = 3  # pages count from 1: page 3 holds rows 10..14
    assert br.page_rows.index.tolist() == br.rows.index[10:15].tolist()
    with pytest.raises(ValueError, match="sort must be"):
        br.set_filter(sort="size")


# --------------------------------------------------------------------------------------------
# Figures: every public plot function draws into the caller's axes / figure
# --------------------------------------------------------------------------------------------

def test_every_plot_function_draws_into_the_callers_figure(small_interp, pretrained):
    from mnistlab.viz import interpret as V

    it = small_interp
    imgs = it.images[:3]
    maps = I.attribute(pretrained, imgs, it.labels[:3], "saliency").maps
    check = I.RandomizationCheck(pd.DataFrame({"step": [0, 1], "layer": ["none", "head"], "layers_randomized": [0, 1],
                                               "rank_corr_abs": [1.0, 0.2], "ci_low": [1.0, 0.1], "ci_high": [1.0, 0.3],
                                               "rank_corr_signed": [1.0, 0.0]}), maps, -maps, pd.DataFrame())
    fmaps = I.feature_maps(pretrained, imgs[0])
    cm = I.channel_class_means(pretrained, it)
    top = I.top_activating(pretrained, it, k=2, n_channels=2)
    cmax, cmax_table = np.random.default_rng(0).random((2, 28, 28)), pd.DataFrame({"class": [0, 1], "prob": [0.9, 0.8]})
    cal = I.calibrate(it)
    issues = pd.DataFrame({"given": [1, 2], "predicted": [7, 3], "p_predicted": [0.9, 0.8]})
    rob = pd.DataFrame({"model": ["a", "a", "b", "b"], "perturbation": ["noise"] * 4, "unit": ["std"] * 4,
                        "level": [0, 0.1, 0, 0.1], "acc": [0.99, 0.9, 0.98, 0.7], "ci_low": [0.98, 0.88, 0.97, 0.68],
                        "ci_high": [1.0, 0.92, 0.99, 0.72]})
    calls = {
        "plot_digits": lambda f: V.plot_digits(imgs, ["a", "b", "c"], ax=f),
        "plot_misclassified": lambda f: V.plot_misclassified(it, 3, ax=f),
        "plot_confusion": lambda f: V.plot_confusion(it, ax=f.subplots()),
        "plot_most_confused": lambda f: V.plot_most_confused(it.most_confused(4), ax=f.subplots()),
        "plot_report": lambda f: V.plot_report(it.report(), ax=f.subplots()),
        "plot_attributions": lambda f: V.plot_attributions(imgs, {"saliency": maps}, ax=f),
        "plot_class_maps": lambda f: V.plot_class_maps(maps, ["0", "1", "2"], ax=f),
        "plot_randomization": lambda f: V.plot_randomization(check, ax=f.subplots()),
        "plot_randomization_maps": lambda f: V.plot_randomization_maps(imgs, check, ax=f),
        "plot_feature_maps": lambda f: V.plot_feature_maps(fmaps, imgs[0], ax=f),
        "plot_filters": lambda f: V.plot_filters(I.first_layer_filters(pretrained), ax=f),
        "plot_channel_class_means": lambda f: V.plot_channel_class_means(cm, ax=f.subplots()),
        "plot_top_activating": lambda f: V.plot_top_activating(top, it.images_of(top["index"]), it.classes, ax=f),
        "plot_class_maximization": lambda f: V.plot_class_maximization(cmax, cmax_table, it.classes, ax=f),
        "plot_reliability": lambda f: V.plot_reliability(cal, ax=f.subplots(1, 2)),
        "plot_label_issues": lambda f: V.plot_label_issues(issues, imgs[:2], it.classes, ax=f),
        "plot_robustness": lambda f: V.plot_robustness(rob, ax=[f.subplots()]),
        "plot_cell": lambda f: V.plot_cell(it, 3, 3, maps=None, max_digits=3, ax=f),
    }
    public = {n for n in V.__all__ if n.startswith("plot_")}
    assert public == set(calls), f"add a call for {public - set(calls)}"
    for name, call in calls.items():
        fig = plt.figure()
        fig.set_layout_engine("none")
        assert call(fig) is fig, name
        assert fig.get_layout_engine() is None, f"{name} changed the caller's layout"
        plt.close(fig)


# --------------------------------------------------------------------------------------------
# One naming of layers (the recorders' conv1, fc1, bn1), documented columns
# --------------------------------------------------------------------------------------------

def test_layers_carry_the_recorders_names_not_module_paths():
    from mnistlab.training.recorder import layer_names, parameterised_layers

    for name in ("fast", "lenet5", "conv2_fc2"):
        model = create_model(name, seed=0)
        recorded = [n for n, _, _ in parameterised_layers(model)]      # what notebook 05's recorder calls them
        convs = [n for n, _ in I.conv_layers(model)]
        assert convs == [n for n in recorded if n.startswith("conv")], name
        assert list(I.feature_maps(model, torch.zeros(28, 28, dtype=torch.uint8))) == convs
        assert [n for n, _ in I._weight_layers(model)] == list(layer_names(model).values())
        assert not any("." in n for n in convs)
    # an ensemble is named after its first member
    two = [create_model("fast", seed=0), create_model("fast", seed=1)]
    assert [n for n, _ in I.conv_layers(two)] == [n for n, _ in I.conv_layers(two[0])]


def test_randomization_and_channel_tables_name_layers_like_the_recorder():
    model = create_model("fast", seed=0)
    images = torch.randint(0, 256, (3, 28, 28), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    check = I.randomization_check(model, images, [0, 1, 2], "saliency")
    assert check.table["layer"].tolist()[1:] == [n for n, _ in I._weight_layers(model)][::-1]
    assert check.table["layer"].iloc[1] == "fc1"                       # the output layer is randomised first
    interp = I.Interpretation.from_model(model, ml.ImageSet(images, torch.tensor([0, 1, 2])))
    last = I.conv_layers(model)[-1][0]
    assert I.channel_class_means(model, interp).attrs["layer"] == last
    assert I.channel_class_means(model, interp, layer="conv1").attrs["layer"] == "conv1"
    assert I.top_activating(model, interp, k=1, n_channels=1, layer="conv2").attrs["layer"] == "conv2"
    with pytest.raises(ValueError, match=r"conv1"):                    # the message lists the friendly names
        I.channel_class_means(model, interp, layer="body.0")


def test_most_confident_wrong_documents_every_column(table_interp):
    doc = I.Interpretation.most_confident_wrong.__doc__
    df = table_interp.most_confident_wrong(3)
    assert "Returns" in doc and "-------" in doc
    for col in [c for c in df.columns if not c.startswith("p") or c == "p_true"] + ["p0", df.index.name]:
        assert f"``{col}``" in doc, col
    assert df["confidence"].is_monotonic_decreasing and not df["correct"].any()
    for method in ("least_confident_correct", "top_losses"):
        assert "Returns" in getattr(I.Interpretation, method).__doc__
