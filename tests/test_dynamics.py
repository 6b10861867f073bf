"""Training dynamics: the recorders, the studies that read them, their figures and TensorBoard export."""
from __future__ import annotations

import copy
import time

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import torch
from scipy import stats as sps
from torch import nn

import mnistlab as ml
from conftest import requires_data
from mnistlab.studies import dynamics as dyn
from mnistlab.training.callbacks import LambdaCallback
from mnistlab.training.recorder import (ACTIVATION_STATISTICS, STATISTICS, ActivationHooks, HistogramFrames,
                                        HistogramRecorder, SnapshotRecorder, activation_statistics, log_steps,
                                        parameterised_layers, tensor_statistics)
from mnistlab.viz import dynamics as vd


# --------------------------------------------------------------------------------------------
# Fixtures
# --------------------------------------------------------------------------------------------

def _images(n: int, seed: int = 0, same: bool = False) -> ml.ImageSet:
    g = torch.Generator().manual_seed(seed)
    if same:
        images = torch.randint(0, 256, (1, 28, 28), dtype=torch.uint8, generator=g).expand(n, 28, 28).clone()
    else:
        images = torch.randint(0, 256, (n, 28, 28), dtype=torch.uint8, generator=g)
    return ml.ImageSet(images, torch.arange(n, dtype=torch.int64) % 10, "mnist")


def _hooks_left(model: nn.Module) -> int:
    return sum(len(m._forward_hooks) for m in model.modules())


@pytest.fixture(scope="module")
def tiny_run():
    """A small MLP trained for 8 steps with every quantity recorded at every step, plus snapshots."""
    torch.set_num_threads(1)
    model = ml.create_model("mlp", seed=0, hidden=(16, 12))
    init = copy.deepcopy(model.state_dict())
    rec, snaps = HistogramRecorder(every=1, bins=32), SnapshotRecorder(steps=[2, 3, 5])
    linear = HistogramRecorder(every=1, bins=32, binning={"gradients": "linear", "updates": "linear"}, activations=False)
    grads = []
    seen = LambdaCallback(on_after_backward=lambda s: grads.append([m.weight.grad.detach().clone() for _, _, m in
                                                                   parameterised_layers(s.model)]))
    hist = ml.fit(model, _images(128), _images(40, seed=1), ml.TrainConfig(epochs=1, optimizer="sgd", lr=0.05, batch_size=16), callbacks=[rec, linear, snaps, seen], progress=False, seed=0, device="cpu")   # histc's CPU binning
    return {"model": model, "init": init, "rec": rec, "linear": linear, "snaps": snaps, "grads": grads, "history": hist}


# --------------------------------------------------------------------------------------------
# The recorder
# --------------------------------------------------------------------------------------------

def test_parameterised_layers_names_kinds_in_order():
    names = [n for n, _, _ in parameterised_layers(ml.create_model("conv2_fc2", seed=0))]
    assert names == ["conv1", "conv2", "fc1", "fc2"]
    with_bn = [n for n, _, _ in parameterised_layers(ml.create_model("fast", seed=0), types=None)]
    assert with_bn[:2] == ["conv1", "bn1"] and with_bn[-1] == "fc1"
    with pytest.raises(ValueError, match="layer_types=None"):
        parameterised_layers(nn.Sequential(nn.BatchNorm1d(3)))


def test_tensor_statistics_match_numpy_and_scipy():
    x = torch.randn(5000, generator=torch.Generator().manual_seed(0)) * 2 + 1
    s = dict(zip(STATISTICS, tensor_statistics(x, -3.0, 3.0).tolist()))
    a = x.double().numpy()
    assert s["mean"] == pytest.approx(a.mean(), rel=1e-5) and s["std"] == pytest.approx(a.std(), rel=1e-5)
    assert s["abs_mean"] == pytest.approx(np.abs(a).mean(), rel=1e-5)
    assert s["abs_max"] == pytest.approx(np.abs(a).max(), rel=1e-6)
    assert s["norm"] == pytest.approx(np.linalg.norm(a), rel=1e-5)
    assert s["kurtosis"] == pytest.approx(sps.kurtosis(a), abs=1e-3)
    assert s["outside"] == pytest.approx(np.mean((a < -3) | (a > 3)))
    assert s["nonfinite"] == 0
    bad = tensor_statistics(torch.tensor([1.0, float("nan"), 3.0, float("inf")]), -1, 1)
    assert dict(zip(STATISTICS, bad.tolist()))["nonfinite"] == 0.5
    assert dict(zip(STATISTICS, bad.tolist()))["mean"] == 2.0


def test_histograms_equal_histc_and_numpy_of_the_same_tensors(tiny_run):
    rec, grads, init = tiny_run["rec"], tiny_run["grads"], tiny_run["init"]
    h = tiny_run["linear"].histograms("gradients")                 # gradients binned linearly on request
    assert h.counts.shape == (len(grads), 3, 32) and list(h.steps) == list(range(len(grads)))
    assert not h.scale.any()
    for f, frame in enumerate(grads):
        for l, g in enumerate(frame):
            lo, hi = h.edges[l, 0], h.edges[l, -1]
            expected = torch.histc(g.clamp(float(lo), float(hi)), bins=32, min=float(lo), max=float(hi))
            assert np.array_equal(h.counts[f, l], expected.numpy().astype(np.int64)), (f, l)
            a = np.clip(g.double().numpy().ravel(), lo, hi)
            ref = np.histogram(a, bins=h.edges[l])[0]
            width = (hi - lo) / 32
            near_edge = int((np.abs((a - lo) / width - np.round((a - lo) / width)) < 1e-4).sum())
            assert np.abs(ref - h.counts[f, l]).sum() <= 2 * near_edge, (f, l)   # float32 vs float64 at bin edges only
    w = rec.histograms("weights")
    for l, (name, path, _) in enumerate(parameterised_layers(tiny_run["model"])):
        w0 = init[f"{path}.weight"]
        lo, hi = w.edges[l, 0], w.edges[l, -1]
        assert np.array_equal(w.counts[0, l], torch.histc(w0.clamp(float(lo), float(hi)), 32, float(lo), float(hi))
                              .numpy().astype(np.int64))
        assert lo == pytest.approx(-3.0 * float(w0.abs().max()), rel=1e-6)   # default range: 3 x max |w| of the first record
    assert not w.scale.any()                                       # weights: linear bins by default


def test_asinh_histograms_equal_numpy_over_asinh_of_the_values(tiny_run):
    """Gradients by default: bins evenly spaced in asinh(g / w), w = max|g| of the first record / 1000."""
    rec, grads = tiny_run["rec"], tiny_run["grads"]
    h = rec.histograms("gradients")
    for l, g0 in enumerate(grads[0]):
        w = h.scale[l]
        assert w == pytest.approx(float(g0.abs().max()) * 1e-3, rel=1e-5)
        u = np.arcsinh(h.edges[l] / w)
        assert np.allclose(np.diff(u), np.diff(u)[0], rtol=1e-5)            # evenly spaced in asinh(x / w)
        if h.edges[l, -1] == pytest.approx(30 * float(g0.abs().max()), rel=1e-4):   # not widened: +- 30 max |g|
            assert u[-1] == pytest.approx(np.arcsinh(3e4), rel=1e-5)
        assert np.allclose(h.centers[l], w * np.sinh(0.5 * (u[1:] + u[:-1])))
        for f, frame in enumerate(grads):
            a = np.arcsinh(frame[l].double().numpy().ravel() / w)
            assert u[0] <= a.min() and a.max() <= u[-1], (f, l)              # the edges cover every frame
            ref = np.histogram(a, bins=u)[0]
            width = u[1] - u[0]
            near_edge = int((np.abs((a - u[0]) / width - np.round((a - u[0]) / width)) < 1e-4).sum())
            assert np.abs(ref - h.counts[f, l]).sum() <= 2 * near_edge, (f, l)
    stats = rec.stats.query("quantity == 'gradients' and statistic == 'abs_max'")
    assert np.allclose(stats.query("step == 0")["value"], [float(g.abs().max()) for g in grads[0]], rtol=1e-6)   # of x, not u
    with pytest.raises(ValueError, match="binning"):
        HistogramRecorder(binning={"gradients": "log"})
    assert HistogramRecorder(binning={"gradients": "linear"}).artifact_name != HistogramRecorder().artifact_name


def _end_bin_share(h) -> np.ndarray:
    """(F, L): the larger share of a frame's values in the first or the last bin."""
    c = h.counts.astype(float)
    return np.maximum(c[..., 0], c[..., -1]) / np.maximum(c.sum(-1), 1)


def _bins_for(h, share: float = 0.95) -> np.ndarray:
    """(F, L): the fewest bins that hold ``share`` of a frame's values."""
    c = np.sort(h.counts.astype(float), axis=-1)[..., ::-1]
    return (np.cumsum(c, -1) / np.maximum(c.sum(-1, keepdims=True), 1) < share).sum(-1) + 1


@requires_data
def test_rmsprop_histograms_cover_every_frame_and_show_its_shape():
    """The run of notebook 05 in small: conv2_fc2, RMSprop at lr 1e-3, 256 steps on 2,000 MNIST images.

    RMSprop's first update is exactly +- 10 lr for every weight (its squared-gradient average starts
    at 0); later updates are about lr and smaller. Linear bins fitted to the first update squeeze
    every later frame into a few central bins; the default asinh bins spread them out, and every
    frame of every quantity stays inside the edges with at most 1% of its values in an end bin.
    """
    torch.set_num_threads(1)
    train = ml.load_dataset("mnist", "train", limit=2_000)
    rec = HistogramRecorder(every=8)
    linear = HistogramRecorder(every=8, binning={"updates": "linear"}, activations=False, quantities=("updates",))
    ml.fit(ml.create_model("conv2_fc2", seed=0), train, None, ml.TrainConfig(epochs=8, optimizer="rmsprop", lr=1e-3, batch_size=64), callbacks=[rec, linear], progress=False, seed=0, device="cpu")
    stats = rec.stats
    for q in ("weights", "gradients", "updates"):
        h = rec.histograms(q)
        assert len(h) >= 32, q
        assert _end_bin_share(h).max() <= 0.01, (q, _end_bin_share(h).max())
        amax = stats.query("quantity == @q and statistic == 'abs_max'").pivot(index="step", columns="layer", values="value")
        amax = amax[rec.layers].to_numpy()
        assert (amax <= np.abs(h.edges[:, [0, -1]]).min(1)).all(), q               # the edges cover every frame
    up = rec.histograms("updates")
    first = stats.query("quantity == 'updates' and step == 0 and statistic == 'abs_max'")["value"]
    assert np.allclose(first, 10 * 1e-3, rtol=1e-3)                                   # the +- 10 lr first step
    assert _bins_for(up)[0].max() <= 4                                                # ... two spikes
    assert _bins_for(up)[1:].min() > 10, _bins_for(up)[1:].min()                      # later frames spread out
    assert _bins_for(linear.histograms("updates"))[1:].min() <= 8                     # linear bins squeezed them
    fig = vd.plot_key_frames(rec, "updates", yscale="log")
    for ax in fig.axes:
        assert ax.get_xscale() == "asinh" and len(ax.get_xticks()) <= 5
    plt.close(fig)


def test_stats_table_is_tidy_and_complete(tiny_run):
    rec = tiny_run["rec"]
    s = rec.stats
    assert list(s.columns) == ["step", "epoch", "layer", "quantity", "statistic", "value"]
    steps = len(tiny_run["grads"])
    for q, frames, n_stats in (("weights", steps + 1, len(STATISTICS)), ("gradients", steps, len(STATISTICS)),
                               ("updates", steps, len(STATISTICS) + 1)):
        assert len(s[s["quantity"] == q]) == frames * 3 * n_stats, q
    acts = s[s["quantity"] == "activations"]
    assert set(acts["layer"].astype(str)) == {"fc1.relu", "fc2.relu"} == set(rec.activation_names)
    assert set(acts["statistic"]) == set(ACTIVATION_STATISTICS) - {"saturated_frac"}   # NaN for ReLU
    loss = s[s["quantity"] == "loss"]
    assert len(loss) == steps and loss["value"].between(0, 10).all()
    assert len(rec.histograms("weights")) == steps + 1   # plus the final weights after the last step
    assert rec.memory_bytes < 200_000


def test_updates_are_the_change_the_step_made(tiny_run):
    snaps, rec = tiny_run["snaps"], tiny_run["rec"]
    after2, after3 = snaps.state(snaps.steps.index(2)), snaps.state(snaps.steps.index(3))
    s = rec.stats.query("step == 2").set_index(["quantity", "layer", "statistic"])["value"]
    for name, path, _ in parameterised_layers(tiny_run["model"]):
        w2, w3 = after2[f"{path}.weight"], after3[f"{path}.weight"]
        assert s["weights", name, "norm"] == pytest.approx(float(w2.norm()), rel=1e-5)     # before the third step
        assert s["updates", name, "norm"] == pytest.approx(float((w3 - w2).norm()), rel=1e-4)
        assert s["updates", name, "mean"] == pytest.approx(float((w3 - w2).mean()), rel=1e-3, abs=1e-9)
    ratio = dyn.over_training(rec, "updates", "ratio")
    norm_u = dyn.over_training(rec, "updates", "norm")
    norm_w = dyn.over_training(rec, "weights", "norm").loc[ratio.index]
    assert np.allclose(ratio.drop(columns="epoch"), norm_u.drop(columns="epoch") / norm_w.drop(columns="epoch"), rtol=1e-4)


def test_gradients_recorded_before_the_optimizer_step_known_gradient():
    """loss = 0.5 * ||W x + b||^2 on identical images: grad W = (W x + b) x^T, and SGD moves W by -lr * grad."""
    model = ml.create_model("logreg", seed=3)
    data = _images(8, seed=2, same=True)
    pre = model.preprocessing
    x = ((data.images[0].double() / 255.0 - pre.mean) / pre.std).reshape(-1)
    W, b = model.head.weight.detach().double().clone(), model.head.bias.detach().double().clone()
    lr = 0.001                                # small enough that the loss does not grow 100-fold (fit calls that divergence)
    expected = []
    for _ in range(2):                        # two steps of plain SGD, computed by hand
        r = W @ x + b
        gW = torch.outer(r, x)
        expected.append((W.clone(), gW))
        W, b = W - lr * gW, b - lr * r
    rec = HistogramRecorder(every=1, activations=False)
    ml.fit(model, data, None, ml.TrainConfig(epochs=1, optimizer="sgd", lr=lr, batch_size=4), progress=False, device="cpu", loss_fn=lambda logits, y: 0.5 * (logits ** 2).sum() / len(y), callbacks=[rec])   # float32 (no bf16 autocast)
    s = rec.stats.query("layer == 'fc1'")
    for step, (W_before, gW) in enumerate(expected):
        got = s[s["step"] == step].set_index(["quantity", "statistic"])["value"]
        assert got["gradients", "norm"] == pytest.approx(float(gW.norm()), rel=1e-4)
        assert got["gradients", "mean"] == pytest.approx(float(gW.mean()), rel=1e-3, abs=1e-7)
        assert got["gradients", "abs_max"] == pytest.approx(float(gW.abs().max()), rel=1e-4)
        assert got["weights", "norm"] == pytest.approx(float(W_before.norm()), rel=1e-5)
        assert got["updates", "norm"] == pytest.approx(lr * float(gW.norm()), rel=1e-3)
        assert got["updates", "ratio"] == pytest.approx(lr * float(gW.norm() / W_before.norm()), rel=1e-3)
    assert expected[0][1].norm() != pytest.approx(float(expected[1][1].norm()), rel=1e-3)  # the steps differ


def test_hooks_are_removed_after_training_and_after_an_exception():
    model = ml.create_model("conv2_fc2", seed=0)
    rec = HistogramRecorder(every=1)
    seen = []
    probe = LambdaCallback(on_batch_end=lambda s: seen.append(_hooks_left(s.model)))
    ml.fit(model, _images(64), None, ml.TrainConfig(epochs=1, batch_size=32), callbacks=[rec, probe], progress=False)
    assert seen and all(n == 3 for n in seen)          # three ReLUs hooked while training
    assert _hooks_left(model) == 0

    def boom(state):
        if state.step == 2:
            raise RuntimeError("boom")

    rec2 = HistogramRecorder(every=1)
    with pytest.raises(RuntimeError, match="boom"):
        ml.fit(model, _images(128), None, ml.TrainConfig(epochs=1, batch_size=32), callbacks=[rec2, LambdaCallback(on_batch_end=boom)], progress=False)
    assert _hooks_left(model) == 0
    assert len(rec2) == 2 and len(rec2.histograms("updates")) == 2   # what was recorded before the error is kept


def test_activation_hooks_context_manager_and_statistics():
    lin = nn.Linear(2, 3)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[1.0, 0.0], [-1.0, -1.0], [0.0, 1.0]]))
        lin.bias.zero_()
    model = nn.Sequential(lin, nn.ReLU(), nn.Linear(3, 2), nn.Sigmoid())
    x = torch.tensor([[1.0, 2.0], [3.0, -1.0], [2.0, 1.0], [1.0, 1.0]])   # unit 1 = -(x0 + x1) < 0 always
    stats = activation_statistics(model, x)
    assert list(stats.index) == ["fc1.relu", "fc2.sigmoid"] and list(stats.columns) == list(ACTIVATION_STATISTICS)
    relu_out = torch.relu(lin(x)).detach()
    assert stats.loc["fc1.relu", "dead_frac"] == pytest.approx(1 / 3)
    assert stats.loc["fc1.relu", "zero_frac"] == pytest.approx(float((relu_out == 0).float().mean()))
    assert stats.loc["fc1.relu", "mean"] == pytest.approx(float(relu_out.mean()))
    assert np.isnan(stats.loc["fc1.relu", "saturated_frac"]) and 0 <= stats.loc["fc2.sigmoid", "saturated_frac"] <= 1
    assert _hooks_left(model) == 0
    hooks = ActivationHooks(model)
    with pytest.raises(ValueError):
        with hooks:
            assert hooks.attached and _hooks_left(model) == 2
            raise ValueError("inside")
    assert not hooks.attached and _hooks_left(model) == 0


def test_recorder_works_with_every_registry_model():
    for name in ml.list_models().index:
        model = ml.create_model(name, seed=0)
        rec = HistogramRecorder(every=1)
        ml.fit(model, _images(32), None, ml.TrainConfig(epochs=1, batch_size=16), progress=False, callbacks=[rec])
        assert len(rec) == 2 and rec.layers, name
        assert rec.histograms("updates").counts.sum() > 0, name
        assert _hooks_left(model) == 0, name


def test_recorder_validates_arguments_and_reports_missing_data():
    with pytest.raises(ValueError, match="every"):
        HistogramRecorder(every=0)
    with pytest.raises(ValueError, match="quantities"):
        HistogramRecorder(quantities=("weights", "activations"))
    with pytest.raises(ValueError, match="train with this recorder first"):
        HistogramRecorder().histograms("weights")
    rec = HistogramRecorder(every=1, quantities=("weights",), ranges={"weights": (-1.0, 1.0)}, activations=False)
    ml.fit(ml.create_model("logreg", seed=0), _images(16), None, ml.TrainConfig(epochs=1, batch_size=16), progress=False, callbacks=[rec])
    h = rec.histograms("weights")
    assert h.edges[0, 0] == -1.0 and h.edges[0, -1] == 1.0
    with pytest.raises(ValueError, match="gradients"):
        rec.histograms("gradients")


def test_recorder_artifact_round_trip(tiny_run, tmp_path):
    rec = tiny_run["rec"]
    path = rec.save_artifact(tmp_path / "run.histograms.npz")
    back = HistogramRecorder(every=1, bins=32).load_artifact(path)
    pd.testing.assert_frame_equal(back.stats, rec.stats)
    for q in ("weights", "gradients", "updates"):
        a, b = rec.histograms(q), back.histograms(q)
        assert np.array_equal(a.counts, b.counts) and np.array_equal(a.edges, b.edges) and np.array_equal(a.steps, b.steps)
    assert back.layers == rec.layers and back.activation_names == rec.activation_names
    with pytest.raises(ValueError, match="bins=64"):
        HistogramRecorder(bins=64).load_artifact(path)


def test_artifact_name_follows_the_settings():
    assert HistogramRecorder(every=5).artifact_name == HistogramRecorder(every=5).artifact_name
    assert HistogramRecorder(every=5).artifact_name.startswith("histograms-")
    names = {HistogramRecorder(every=5).artifact_name, HistogramRecorder(every=6).artifact_name,
             HistogramRecorder(every=5, bins=32).artifact_name, HistogramRecorder(every=5, activations=False).artifact_name,
             HistogramRecorder(every=5, range_factor={"weights": 2.0}).artifact_name}
    assert len(names) == 5
    assert SnapshotRecorder(n=5).artifact_name != SnapshotRecorder(n=6).artifact_name
    assert bool(HistogramRecorder()) and bool(SnapshotRecorder())   # truthy before recording (len 0)


def test_snapshots_keep_init_requested_and_final_steps(tiny_run, tmp_path):
    snaps, init, model = tiny_run["snaps"], tiny_run["init"], tiny_run["model"]
    assert snaps.steps == [0, 2, 3, 5, 8]
    assert all(torch.equal(snaps.state(0)[k], init[k]) for k in init)
    assert all(torch.equal(snaps.state(-1)[k], v.cpu()) for k, v in model.state_dict().items())
    back = SnapshotRecorder().load_artifact(snaps.save_artifact(tmp_path))
    assert back.steps == snaps.steps and all(torch.equal(back.state(2)[k], snaps.state(2)[k]) for k in init)
    assert log_steps(100, 6) == sorted(set(log_steps(100, 6))) and log_steps(100, 6)[0] == 0 and log_steps(100, 6)[-1] == 100
    assert log_steps(0) == [0]


def test_same_seed_same_recording():
    recs = []
    for _ in range(2):
        rec = HistogramRecorder(every=2)
        ml.fit(ml.create_model("mlp", seed=1, hidden=(8,)), _images(64), None, ml.TrainConfig(epochs=1, batch_size=16), seed=4, progress=False, callbacks=[rec], device="cpu")
        recs.append(rec)
    pd.testing.assert_frame_equal(recs[0].stats, recs[1].stats)
    assert np.array_equal(recs[0].histograms("gradients").counts, recs[1].histograms("gradients").counts)


# --------------------------------------------------------------------------------------------
# Studies
# --------------------------------------------------------------------------------------------

def test_layer_table_and_init_check_name_pytorch_default():
    model = ml.create_model("conv2_fc2", seed=0)
    t = dyn.layer_table(model)
    assert t["fan_in"].to_dict() == {"conv1": 25, "conv2": 250, "fc1": 320, "fc2": 50}
    assert t.loc["fc1", "init_bound"] == pytest.approx(1 / np.sqrt(320))
    assert dyn.init_check(model)["matches_default"].all()
    normal = copy.deepcopy(model)
    for _, _, m in parameterised_layers(normal):
        nn.init.normal_(m.weight, std=0.05)
    assert not dyn.init_check(normal)["matches_default"].any()


def test_distribution_shape_kurtosis_and_near_zero():
    model = nn.Sequential(nn.Linear(400, 100))
    g = torch.Generator().manual_seed(0)
    uniform = {"0.weight": torch.rand(100, 400, generator=g) * 2 - 1, "0.bias": torch.zeros(100)}
    normal = {"0.weight": torch.randn(100, 400, generator=g) * 0.5, "0.bias": torch.zeros(100)}
    shape = dyn.distribution_shape(model, {"uniform": uniform, "normal": normal}, band=0.1).set_index("moment")
    assert shape.loc["uniform", "kurtosis"] == pytest.approx(-1.2, abs=0.05)
    assert shape.loc["normal", "kurtosis"] == pytest.approx(0.0, abs=0.1)
    assert shape.loc["uniform", "ks_uniform"] < 0.02 < shape.loc["uniform", "ks_normal"]
    assert shape.loc["normal", "ks_normal"] < 0.02 < shape.loc["normal", "ks_uniform"]
    assert shape.loc["uniform", "near_zero"] == pytest.approx(0.1, abs=0.01)
    assert shape.loc["normal", "near_zero"] == pytest.approx(sps.norm.cdf(0.2) - sps.norm.cdf(-0.2), abs=0.01)
    with pytest.raises(ValueError, match="at least one state"):
        dyn.distribution_shape(model, {})


def test_over_training_gradient_flow_and_summary(tiny_run):
    rec = tiny_run["rec"]
    g = dyn.over_training(rec, "gradients", "abs_mean")
    assert list(g.columns) == ["epoch", "fc1", "fc2", "fc3"] and len(g) == len(tiny_run["grads"])
    first = [float(gr.abs().mean()) for gr in tiny_run["grads"][0]]
    assert np.allclose(g.iloc[0][["fc1", "fc2", "fc3"]].to_numpy(dtype=float), first, rtol=1e-5)
    with pytest.raises(ValueError, match="recorded"):
        dyn.over_training(rec, "gradients", "nope")
    flow = dyn.gradient_flow(rec)
    assert list(flow["layer"].cat.categories) == ["fc3", "fc2", "fc1"]
    assert (flow["abs_max"] >= flow["abs_mean"]).all()
    summary = dyn.layer_summary(rec)
    assert list(summary.index) == ["fc1", "fc2", "fc3"] and summary.loc["fc3", "grad_vs_last"] == 1.0
    assert summary["dead_frac"].iloc[:2].between(0, 1).all() and np.isnan(summary.loc["fc3", "dead_frac"])
    d = dyn.diagnose(rec, tiny_run["history"])
    assert d["first_vs_last_grad"] == pytest.approx(summary["grad_vs_last"].iloc[0])
    assert not d["nonfinite"] and 0 <= d["train_acc"] <= 1 and d["update_ratio"] > 0


def test_interpolate_states():
    a = {"w": torch.zeros(3), "n": torch.tensor(1)}
    b = {"w": torch.ones(3), "n": torch.tensor(7)}
    mid = dyn.interpolate_states(a, b, 0.25)
    assert torch.allclose(mid["w"], torch.full((3,), 0.25)) and int(mid["n"]) == 7
    assert torch.equal(dyn.interpolate_states(a, b, 0.0)["w"], a["w"])
    with pytest.raises(ValueError, match="differ"):
        dyn.interpolate_states(a, {"w": torch.ones(3)}, 0.5)
    with pytest.raises(ValueError, match="shapes"):
        dyn.interpolate_states(a, {"w": torch.ones(4), "n": torch.tensor(1)}, 0.5)


def test_loss_along_line_ends_are_the_two_networks(tiny_run):
    model, snaps = tiny_run["model"], tiny_run["snaps"]
    data = {"test": _images(40, seed=1)}
    line = dyn.loss_along_line(model, snaps.state(0), snaps.state(-1), data, alphas=[0.0, 0.5, 1.0], progress=False)
    assert list(line.columns) == ["alpha", "split", "loss", "acc"] and len(line) == 3
    start = snaps.load_into(copy.deepcopy(model), 0)
    assert line["loss"].iloc[0] == pytest.approx(ml.evaluate(start, data["test"])["loss"], rel=1e-5)
    assert line["loss"].iloc[-1] == pytest.approx(ml.evaluate(model, data["test"])["loss"], rel=1e-5)


def test_representation_over_training(tiny_run):
    digits = _images(100, seed=5)
    rep = dyn.representation_over_training(tiny_run["model"], tiny_run["snaps"], digits, k=3, folds=2, progress=False)
    assert rep.coords.shape == (5, 100, 2) and list(rep.steps) == [0, 2, 3, 5, 8]
    assert list(rep.table.columns) == ["step", "epoch", "knn_acc", "silhouette", "knn_acc_2d"]
    assert rep.table["knn_acc"].between(0, 1).all() and rep.table["silhouette"].between(-1, 1).all()
    last = rep.coords[-1]
    assert last[:, 0].var() >= last[:, 1].var() and 0 < rep.explained_variance.sum() <= 1   # PCA fitted on the final frame
    with pytest.raises(ValueError, match="fewer than folds"):
        dyn.representation_over_training(tiny_run["model"], tiny_run["snaps"], _images(12), folds=5, progress=False)


def test_sick_configs_are_valid_and_described():
    cfgs = dyn.sick_configs(epochs=1, train_limit=500, test_limit=100)
    assert list(cfgs) == ["healthy", "sigmoid", "sigmoid + batch norm", "lr x20"]
    assert cfgs["lr x20"].lr == pytest.approx(20 * cfgs["healthy"].lr)
    assert all(c.description for c in cfgs.values())
    for c in cfgs.values():
        c.build_model(seed=0)      # every variant builds


@requires_data
def test_deep_sigmoid_mlp_gradients_vanish(tmp_path, monkeypatch):
    monkeypatch.setenv("MNISTLAB_CACHE", str(tmp_path))
    cfgs = dyn.sick_configs(epochs=1, train_limit=1_280, test_limit=200)
    recs = {n: HistogramRecorder(every=4) for n in ("healthy", "sigmoid", "sigmoid + batch norm")}
    for n, rec in recs.items():
        dyn.run_recorded(cfgs[n], 0, [rec])
    ratio = {n: dyn.diagnose(r)["first_vs_last_grad"] for n, r in recs.items()}
    assert ratio["sigmoid"] < 1e-3                       # orders of magnitude below the last layer
    assert ratio["healthy"] > 100 * ratio["sigmoid"] and ratio["sigmoid + batch norm"] > 100 * ratio["sigmoid"]
    steps = dyn.over_training(recs["sigmoid"], "gradients", "abs_mean")
    assert (steps["fc1"] < 1e-2 * steps[recs["sigmoid"].layers[-1]]).all()   # at every recorded step


@requires_data
def test_run_recorded_caches_and_records_a_diverged_run(tmp_path, monkeypatch):
    monkeypatch.setenv("MNISTLAB_CACHE", str(tmp_path))
    cfg = dyn.sick_configs(epochs=1, train_limit=640, test_limit=100, lr=5.0)["healthy"]
    first = HistogramRecorder(every=1)
    df = dyn.run_recorded(cfg, 0, [first])
    assert bool(df["diverged"].iloc[0]) and len(first) > 0
    loss = dyn.over_training(first, "loss", "loss")["model"]
    assert not np.isfinite(loss.iloc[-1]) or loss.iloc[-1] > loss.iloc[0]          # it was blowing up
    again = HistogramRecorder(every=1)
    dyn.run_recorded(cfg, 0, [again])                    # the cache holds no recording of a diverged run
    pd.testing.assert_frame_equal(again.stats, first.stats)
    healthy = dyn.sick_configs(epochs=1, train_limit=640, test_limit=100)["healthy"]
    r1, r2 = HistogramRecorder(every=5), HistogramRecorder(every=5)
    a = dyn.run_recorded(healthy, 0, [r1])
    b = dyn.run_recorded(healthy, 0, [r2])              # a cache hit: the recorder is filled from the artifact
    assert not a["cached"].iloc[0] and b["cached"].iloc[0]
    pd.testing.assert_frame_equal(r1.stats, r2.stats)
    r3 = HistogramRecorder(every=3)                      # other settings: not the cached recording, so it retrains
    assert not dyn.run_recorded(healthy, 0, [r3])["cached"].iloc[0] and list(r3.histograms("gradients").steps[:2]) == [0, 3]


def test_to_tensorboard_events_read_back(tiny_run, tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    rec = tiny_run["rec"]
    logdir = dyn.to_tensorboard(rec, tmp_path / "tb")
    acc = EventAccumulator(str(logdir), size_guidance={"histograms": 0, "scalars": 0})
    acc.Reload()
    tags = acc.Tags()
    assert {f"{q}/{l}" for q in ("weights", "gradients", "updates") for l in rec.layers} <= set(tags["histograms"])
    h = rec.histograms("gradients")
    events = acc.Histograms("gradients/fc2")
    assert [e.step for e in events] == list(h.steps)
    assert np.allclose(events[1].histogram_value.bucket, h.counts[1, 1])
    assert np.allclose(events[1].histogram_value.bucket_limit, h.edges[1, 1:])
    assert events[1].histogram_value.num == h.counts[1, 1].sum()
    scal = acc.Scalars("gradients/fc1/abs_mean")
    expected = dyn.over_training(rec, "gradients", "abs_mean")["fc1"]
    assert np.allclose([s.value for s in scal], expected.to_numpy(), rtol=1e-6)
    assert "loss/model/loss" in tags["scalars"]


# --------------------------------------------------------------------------------------------
# Figures: every public function draws into the caller's axes / figure
# --------------------------------------------------------------------------------------------

def _synthetic_frames(F: int = 100, L: int = 8, B: int = 64) -> HistogramFrames:
    rng = np.random.default_rng(0)
    edges = np.stack([np.linspace(-1, 1, B + 1) * (l + 1) for l in range(L)])
    counts = np.stack([[np.histogram(np.clip(rng.normal(0, 0.2 + f / 200, 2000) * (l + 1), -(l + 1), l + 1),
                                     edges[l])[0] for l in range(L)] for f in range(F)])
    return HistogramFrames("weights", [f"fc{l + 1}" for l in range(L)], np.arange(F) * 50, np.arange(F) // 20 + 1,
                           edges, counts)


def test_helpers():
    assert vd.key_frame_indices(np.arange(0, 1000, 10), 5) == [0, 25, 49, 74, 99]
    assert vd.key_frame_indices([0, 5, 10], 5) == [0, 1, 2]
    colors = vd.layer_colors(4)
    assert len(colors) == 4 and colors[0] != colors[-1]


def test_every_plot_draws_into_the_callers_axes(tiny_run):
    rec, snaps, model = tiny_run["rec"], tiny_run["snaps"], tiny_run["model"]
    flow = dyn.gradient_flow(rec)
    shape = dyn.distribution_shape(model, {"init": snaps.state(0), "final": snaps.state(-1)})
    rep = dyn.representation_over_training(model, snaps, _images(60, seed=5), k=3, folds=2, progress=False)
    line = dyn.loss_along_line(model, snaps.state(0), snaps.state(-1), {"test": _images(20)}, alphas=[0, 1],
                               progress=False)
    single = {
        "plot_gradient_flow": lambda ax: vd.plot_gradient_flow(flow, ax=ax),
        "plot_gradient_heatmap": lambda ax: vd.plot_gradient_heatmap(flow, ax=ax),
        "plot_layer_lines": lambda ax: vd.plot_layer_lines(dyn.over_training(rec, "weights", "std"), ax=ax),
        "plot_update_ratios": lambda ax: vd.plot_update_ratios(dyn.over_training(rec, "updates", "ratio"), ax=ax),
        "plot_representation": lambda ax: vd.plot_representation(rep, 1, ax=ax),
        "plot_separation": lambda ax: vd.plot_separation(rep.table, ax=ax),
    }
    for name, call in single.items():
        fig, ax = plt.subplots()
        assert call(ax) is fig, name
        plt.close(fig)
    multi = {
        "plot_histograms": (3, lambda axes: vd.plot_histograms(rec, "gradients", ax=axes)),
        "plot_shape": (2, lambda axes: vd.plot_shape(shape, ax=axes)),
        "plot_loss_line": (2, lambda axes: vd.plot_loss_line(line, ax=axes)),
    }
    for name, (n, call) in multi.items():
        fig, axes = plt.subplots(1, n)
        assert call(axes) is fig, name
        plt.close(fig)
    for name, call in {"plot_key_frames": lambda f: vd.plot_key_frames(rec, "updates", ax=f),
                       "plot_diagnosis": lambda f: vd.plot_diagnosis({"a": rec, "b": rec}, ax=f),
                       "plot_representation_key_frames": lambda f: vd.plot_representation_key_frames(rep, ax=f)}.items():
        fig = plt.figure()
        assert call(fig) is fig, name
        plt.close(fig)
    for name, call in {"histogram_gif_frames": lambda f: vd.histogram_gif_frames(rec, "weights", ax=f, progress=False),
                       "representation_gif_frames": lambda f: vd.representation_gif_frames(rep, ax=f, progress=False)}.items():
        fig = plt.figure(figsize=(4, 3), dpi=50)
        frames = call(fig)
        assert {f.shape for f in frames} == {(150, 200, 3)} and len(frames) >= 4, name
        assert not np.array_equal(frames[0], frames[-1]), name     # the frames really change
        plt.close(fig)


def test_gif_frames_match_full_redraws():
    """Blitting (draw once, update the artists) gives the pixels of drawing every frame from scratch."""
    frames = _synthetic_frames(F=6, L=3)
    fast = vd.histogram_gif_frames(frames, progress=False)
    slow = vd.histogram_gif_frames(frames, blit=False, progress=False)
    assert len({f.tobytes() for f in fast}) == len(fast) == 6
    for a, b in zip(fast, slow):
        assert a.shape == b.shape
        assert np.mean(np.any(a != b, axis=-1)) < 0.002      # at most anti-aliasing of a few edge pixels


def test_hundred_frame_eight_panel_gif_is_fast_and_small(tmp_path):
    frames = _synthetic_frames()
    t0 = time.process_time()        # CPU seconds: other jobs on a shared machine do not count
    images = vd.histogram_gif_frames(frames, progress=False)
    figs = ml.Figures("gif", root=tmp_path)
    figs.save_gif(images, "weights", fps=8)
    path = figs.dir / "weights.gif"
    seconds = time.process_time() - t0
    assert len(images) == 100 and seconds < 20, seconds
    assert path.stat().st_size < 3e6


# --------------------------------------------------------------------------------------------
# Edges that cover every record; the recorder -> GIF helper; one naming of layers
# --------------------------------------------------------------------------------------------

def test_merge_bins_equals_counting_over_the_wider_edges():
    from mnistlab.training.recorder import merge_bins

    rng = np.random.default_rng(0)
    B = 16
    x = rng.uniform(-1, 1, 5000)
    narrow = np.histogram(x, np.linspace(-1, 1, B + 1))[0]
    for j in range(0, 7):
        wide = np.histogram(x, np.linspace(-(2.0 ** j), 2.0 ** j, B + 1))[0]
        assert np.array_equal(merge_bins(narrow, j), wide), j
    # per layer, asymmetric edges (the doubling is about the centre)
    y = rng.uniform(0.5, 3.0, 4000)
    lo, hi = 0.5, 3.0
    c, h = (lo + hi) / 2, (hi - lo) / 2
    two = np.stack([narrow, np.histogram(y, np.linspace(lo, hi, B + 1))[0]])
    merged = merge_bins(two, [0, 2])
    assert np.array_equal(merged[0], narrow)
    assert np.array_equal(merged[1], np.histogram(y, np.linspace(c - 4 * h, c + 4 * h, B + 1))[0])
    with pytest.raises(ValueError, match="even"):
        merge_bins(np.ones(5, dtype=np.int64), 1)
    with pytest.raises(ValueError, match="even"):
        HistogramRecorder(bins=33)
    HistogramRecorder(bins=33, widen=False)


def _blow_up_run(widen: bool):
    """A logistic regression whose weights are multiplied by 10 after step 3: later frames leave the first edges."""
    model = ml.create_model("logreg", seed=0)
    seen = {}

    def grow(s):
        if s.step == 3:
            with torch.no_grad():
                next(m for m in model.modules() if isinstance(m, nn.Linear)).weight.mul_(10.0)

    def keep(s):   # the weights each recorded frame saw (recorded at on_after_backward of steps 0, 1, 2, ...)
        seen[int(s.step)] = next(m for m in model.modules() if isinstance(m, nn.Linear)).weight.detach().clone()

    rec = HistogramRecorder(every=1, bins=32, quantities=("weights",), activations=False, final=False, widen=widen)
    ml.fit(model, _images(96), None, ml.TrainConfig(epochs=1, batch_size=16, optimizer="sgd", lr=0.01), progress=False, seed=0, device="cpu", callbacks=[LambdaCallback(on_after_backward=keep), rec, LambdaCallback(on_batch_end=grow)])
    return rec, seen


def test_recorder_edges_cover_every_record_and_equal_counting_over_them():
    rec, seen = _blow_up_run(widen=True)
    h = rec.histograms("weights")
    lo, hi = h.edges[0, 0], h.edges[0, -1]
    first_hi = 3.0 * float(seen[0].abs().max())
    assert hi == pytest.approx(first_hi * 2 ** np.ceil(np.log2(float(max(w.abs().max() for w in seen.values())) / first_hi)),
                               rel=1e-6)
    assert hi > 3 * first_hi and lo == -hi          # widened (x10 needs 4 doublings of the +-3 max range)
    for f, step in enumerate(h.steps):
        w = seen[int(step)].double().numpy().ravel()
        assert lo <= w.min() and w.max() <= hi, step
        direct = np.histogram(w, h.edges[0])[0]
        assert np.array_equal(direct, h.counts[f, 0]), step        # frames before the widening were merged exactly
    outside = dyn.over_training(rec, "weights", "outside")["fc1"]     # beyond the first record's edges
    beyond = np.array([float(seen[int(st)].abs().max()) > first_hi for st in outside.index])
    assert beyond.any() and not beyond.all()
    assert np.array_equal(outside.to_numpy() > 0, beyond)
    # the same run with widen=False keeps the first edges and piles the values beyond them into the end bins
    fixed, _ = _blow_up_run(widen=False)
    hf = fixed.histograms("weights")
    assert hf.edges[0, -1] == pytest.approx(first_hi, rel=1e-6)
    assert hf.counts[-1, 0, [0, -1]].sum() > h.counts[-1, 0, [0, -1]].sum()
    assert rec.artifact_name != fixed.artifact_name


def test_data_span_covers_every_frame_not_only_the_first():
    B = 20
    edges = np.linspace(-10, 10, B + 1)[None]
    counts = np.zeros((3, 1, B), dtype=np.int64)
    counts[0, 0, 9:11] = 5          # the first frame: two middle bins
    counts[2, 0, 2] = 1              # the last frame reaches far left
    counts[1, 0, 15] = 1
    frames = HistogramFrames("weights", ["fc1"], np.arange(3), np.ones(3, int), edges, counts)
    lo, hi = vd.data_span(frames, 0)
    assert (lo, hi) == (edges[0, 1], edges[0, 17])        # bins 2..15 plus one empty bin each side
    assert vd.data_span(frames, 0, pad=0) == (edges[0, 2], edges[0, 16])
    empty = HistogramFrames("weights", ["fc1"], np.arange(1), np.ones(1, int), edges, np.zeros((1, 1, B), int))
    assert vd.data_span(empty, 0) == (-10.0, 10.0)
    fig = vd.plot_histograms(frames, index=0)
    assert fig.axes[0].get_xlim() == pytest.approx((lo, hi))
    plt.close(fig)


def test_save_histogram_gif_writes_one_frame_per_record(tiny_run, tmp_path):
    from PIL import Image

    rec = tiny_run["rec"]
    path = vd.save_histogram_gif(rec, tmp_path / "out" / "weights.gif", quantity="weights", fps=5)
    assert path == tmp_path / "out" / "weights.gif" and path.is_file()
    with Image.open(path) as im:
        assert im.format == "GIF" and im.n_frames == len(rec.histograms("weights")) > 1
        assert im.info["duration"] == 200 and im.info.get("loop") == 0
        first = np.asarray(im.convert("RGB")).copy()
        im.seek(im.n_frames - 1)
        assert not np.array_equal(first, np.asarray(im.convert("RGB")))
    before = path.stat().st_mtime_ns
    vd.save_histogram_gif(rec, path, quantity="gradients", yscale="log")       # replaced atomically
    assert path.stat().st_mtime_ns >= before
    assert sorted(p.name for p in path.parent.iterdir()) == ["weights.gif"]    # no temporary file left
    with pytest.raises(ValueError, match=r"\.gif"):
        vd.save_histogram_gif(rec, tmp_path / "w.png")
    with pytest.raises(ValueError, match="fps"):
        vd.save_histogram_gif(rec, tmp_path / "w.gif", fps=0)
    with pytest.raises(ValueError, match="train with this recorder first"):
        vd.save_histogram_gif(HistogramRecorder(), tmp_path / "w.gif")
    assert not (tmp_path / "w.gif").exists()


def test_layer_names_are_one_naming_for_every_kind_selection():
    from mnistlab.training.recorder import layer_names

    model = ml.create_model("fast", seed=0)
    names = layer_names(model)
    assert list(names.values())[:2] == ["conv1", "bn1"] and list(names.values())[-1] == "fc1"
    assert all("." not in n for n in names.values()) and len(set(names.values())) == len(names)
    for types in (None, (nn.Conv2d, nn.Linear), (nn.Linear,), (nn.BatchNorm2d,)):
        for name, path, _ in parameterised_layers(model, types=types):
            assert names[path] == name, (types, path)


def test_tensorboard_dir_is_the_checkouts_build_folder_never_figures(tmp_path, monkeypatch):
    from mnistlab._util import project_root

    path = dyn.tensorboard_dir("05_training_dynamics")
    assert path == project_root() / "build" / "tensorboard" / "05_training_dynamics"
    assert "figures" not in path.parts
    monkeypatch.chdir(tmp_path)   # the checkout is found from the package, not the working directory
    assert dyn.tensorboard_dir("x") == project_root() / "build" / "tensorboard" / "x"
