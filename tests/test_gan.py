"""GAN nets, config, training loop, checkpoints, evaluation and figures (models.gan, training.gan, studies.gan, viz.gan)."""
from __future__ import annotations

import math
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import torch

import mnistlab as ml
from mnistlab.data import ImageSet
from mnistlab.models.gan import GAN, Discriminator, Generator, create_gan, list_gans, register_gan
from mnistlab.studies import gan as gs
from mnistlab.training.callbacks import Callback
from mnistlab.training.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from mnistlab.training.gan import (RECIPES, GANConfig, GANSampleRecorder, equilibrium, load_gan, record_steps, sample,
                                   to_unit, train_gan)
from mnistlab.training.gan_config import as_gan_config
from mnistlab.training.loop import TrainingError
from mnistlab.training.loop import predict as ml_predict
from mnistlab.training.pretrained import load_pretrained
from mnistlab.viz import gan as vg

TINY = dict(nz=8, ngf=8, ndf=8)
CFG = GANConfig(batch_size=32, **TINY)


def blobs(n: int = 256, seed: int = 0) -> ImageSet:
    """A tiny learnable set: bright squares at class-dependent positions on black (labels = position)."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % 10
    images = torch.zeros(n, 28, 28, dtype=torch.uint8)
    for i, c in enumerate(labels.tolist()):
        r, col = 4 + 2 * (c // 5) * 5, 3 + 4 * (c % 5)
        images[i, r:r + 8, col:col + 6] = 200 + int(torch.randint(0, 55, (1,), generator=g))
    return ImageSet(images, labels, "mnist")


@pytest.fixture(scope="module")
def judge():
    return load_pretrained()


# ----------------------------------------------------------------------------------------- models

@pytest.mark.parametrize("name", ["dcgan", "cdcgan"])
def test_generator_shapes_and_range(name):
    gan = create_gan(name, seed=0)
    z = torch.randn(5, gan.nz)
    y = torch.arange(5) if gan.conditional else None
    x = gan.generator(z, y)
    assert x.shape == (5, 1, 28, 28)
    assert x.min() >= -1 and x.max() <= 1 and x.std() > 0
    assert gan.discriminator(x, y).shape == (5,)
    gan.eval()
    assert torch.equal(gan(z, y), gan.generator(z, y))


def test_nets_reject_wrong_inputs():
    g, c = Generator(nz=4, ngf=4), Generator(nz=4, ngf=4, num_classes=10)
    with pytest.raises(ValueError, match=r"shape \(batch, 4\)"):
        g(torch.randn(2, 5))
    with pytest.raises(ValueError, match="class-conditional"):
        c(torch.randn(2, 4))
    with pytest.raises(ValueError, match="unconditional"):
        g(torch.randn(2, 4), torch.zeros(2, dtype=torch.long))
    with pytest.raises(ValueError, match="class-conditional"):
        Discriminator(4, num_classes=10)(torch.zeros(2, 1, 28, 28))
    with pytest.raises(ValueError, match="disagree on num_classes"):
        GAN(g, Discriminator(4, num_classes=10))
    with pytest.raises(ValueError, match="ngf >= 1"):
        Generator(ngf=0)


def test_registry_seed_and_listing():
    a, b, c = create_gan("dcgan", seed=3, **TINY), create_gan("dcgan", seed=3, **TINY), create_gan("dcgan", seed=4, **TINY)
    sa, sb, sc = (m.state_dict() for m in (a, b, c))
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not all(torch.equal(sa[k], sc[k]) for k in sa)
    assert a.config == {"name": "dcgan", "kwargs": TINY}
    table = list_gans()
    assert {"dcgan", "cdcgan"} <= set(table.index) and table.loc["cdcgan", "conditional"]
    assert table.loc["dcgan", "generator_parameters"] > 10_000
    with pytest.raises(ValueError, match="Unknown GAN 'nope'"):
        create_gan("nope")
    with pytest.raises(ValueError, match="already registered"):
        register_gan("dcgan")(lambda: None)
    with pytest.raises(ValueError, match="num_classes >= 2"):
        create_gan("cdcgan", num_classes=1)


def test_spectral_norm_discriminator_has_no_batchnorm():
    gan = create_gan("cdcgan", seed=0, spectral_norm=True, **TINY)
    d = gan.discriminator
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in d.modules())
    assert any("parametrizations" in k for k in d.state_dict())
    w = d.head.weight  # spectral norm keeps the largest singular value near 1 after a few power iterations
    for _ in range(20):
        d(torch.zeros(2, 1, 28, 28), torch.zeros(2, dtype=torch.long))
    assert torch.linalg.matrix_norm(w, ord=2) < 1.5


# ----------------------------------------------------------------------------------------- config

def test_gan_config_validates_and_varies():
    cfg = GANConfig()
    assert cfg.recipe() == {k: v for k, v in cfg.to_dict().items() if k not in ("name", "description")}
    assert cfg.but(name="other").recipe() == cfg.recipe() and cfg.but(lr=1e-3).recipe() != cfg.recipe()
    assert cfg.but(steps=None, epochs=2).total_steps(640) == 20 and cfg.total_steps(10) == 3000
    assert cfg.to_dict()["betas"] == [0.5, 0.999] and cfg.but(betas=[0.0, 0.9]).betas == (0.0, 0.9)
    assert as_gan_config(cfg.to_dict()) == cfg
    assert set(GANConfig.fields_help()) == set(cfg.to_dict()) and all(h for _, h in GANConfig.fields_help().values())
    for bad, match in [(dict(gan="wgan"), "gan = 'wgan'"), (dict(loss="wgan"), "loss = 'wgan'"),
                       (dict(epochs=1), "exactly one"), (dict(steps=0), "steps = 0"), (dict(lr=0), "lr = 0"),
                       (dict(betas=[1.0, 0.9]), "betas"), (dict(ema_decay=1.0), "ema_decay"),
                       (dict(dataset="cifar"), "dataset"), (dict(train_limit=10), "train_limit = 10"),
                       (dict(ngf=0), "ngf = 0"), (dict(spectral_norm=1), "spectral_norm")]:
        with pytest.raises(ValueError, match=match):
            cfg.but(**bad)
    with pytest.raises(ValueError, match="Unknown GAN config keys \\['steps_'\\]"):
        as_gan_config({"steps_": 3})
    with pytest.raises(TypeError, match="GANConfig or a dict"):
        as_gan_config(3)


def test_recipes_are_configs_that_build_and_train():
    assert set(RECIPES) == {"dcgan", "sngan"} and RECIPES is ml.GAN_RECIPES
    for name, recipe in RECIPES.items():
        cfg = recipe.but(steps=None, epochs=1, batch_size=32, **TINY)
        gan = cfg.build_gan(seed=0)
        assert any("parametrizations" in k for k in gan.discriminator.state_dict()) == cfg.spectral_norm
        run = train_gan(cfg, blobs(128), progress=False, device="cpu")
        assert run.steps == 4 and np.isfinite(run.history[["loss_d", "loss_g"]].to_numpy()).all()
        assert run.config == cfg
    assert RECIPES["sngan"].loss == "hinge" and RECIPES["sngan"].lr_d == 2 * RECIPES["sngan"].lr
    assert RECIPES["dcgan"].loss == "ns" and RECIPES["dcgan"].betas == (0.5, 0.999)


# --------------------------------------------------------------------------------------- training

def test_discriminator_learns_real_from_fake():
    """Before training D cannot tell (loss_D = 2 ln 2, D = 0.5); a few steps later D(x) > D(G(z))."""
    run = train_gan(CFG.but(steps=30, lr_d=1e-3), blobs(256), progress=False, device="cpu")
    h = run.history
    assert list(h.columns[:6]) == ["step", "epoch", "loss_d", "loss_g", "d_real", "d_fake"]
    assert h["step"].tolist() == list(range(1, 31)) and (h["epoch"].diff().fillna(0) >= 0).all()
    assert abs(h["loss_d"].iloc[0] - 2 * math.log(2)) < 0.15
    assert abs(h["d_real"].iloc[0] - 0.5) < 0.1 and abs(h["d_fake"].iloc[0] - 0.5) < 0.1
    last = h.tail(5).mean()
    assert last["loss_d"] < h["loss_d"].iloc[0] - 0.2
    assert last["d_real"] - last["d_fake"] > 0.2
    assert h["elapsed"].is_monotonic_increasing and run.train_seconds > 0 and run.steps == 30
    assert run.steps_per_second == pytest.approx(30 / run.train_seconds)


def test_equilibrium_values():
    assert equilibrium("ns") == pytest.approx((2 * math.log(2), math.log(2)))
    assert equilibrium("hinge") == (2.0, 0.0)
    with pytest.raises(ValueError, match="loss must be one of"):
        equilibrium("wgan")


def test_same_seed_same_numbers_and_global_rng_untouched():
    torch.manual_seed(123)
    before = torch.random.get_rng_state()
    cfg = CFG.but(gan="cdcgan", steps=4)
    runs = [train_gan(cfg, blobs(128), progress=False, device="cpu", seed=5) for _ in range(2)]
    assert torch.equal(torch.random.get_rng_state(), before)
    pd.testing.assert_frame_equal(runs[0].history.drop(columns=["seconds", "elapsed"]),
                                  runs[1].history.drop(columns=["seconds", "elapsed"]))
    assert torch.equal(sample(runs[0], 8, seed=1), sample(runs[1], 8, seed=1))


@pytest.mark.parametrize("loss", ["ns", "hinge"])
def test_losses_and_spectral_norm_train(loss):
    cfg = CFG.but(gan="cdcgan", spectral_norm=True, steps=None, epochs=1, loss=loss)
    run = train_gan(cfg, blobs(128), progress=False, device="cpu")
    assert len(run.history) == 4 and np.isfinite(run.history[["loss_d", "loss_g"]].to_numpy()).all()
    assert run.config.loss == loss


def test_train_gan_honours_or_refuses_the_config(tmp_path):
    data = blobs(64)
    with pytest.raises(ValueError, match="at least batch_size=128"):
        train_gan(CFG.but(batch_size=128), data, progress=False)
    with pytest.raises(ValueError, match="resume=True needs checkpoint"):
        train_gan(CFG.but(steps=1), data, resume=True)
    with pytest.raises(ValueError, match="amp=True needs a CUDA device"):
        train_gan(CFG.but(steps=1), data, amp=True, device="cpu")
    with pytest.raises(ValueError, match="dataset='mnist' but the images handed in are 'fashion-mnist'"):
        train_gan(CFG.but(steps=1), ImageSet(data.images, data.labels, "fashion-mnist"), progress=False)
    with pytest.raises(ValueError, match="train_limit=96 but only 64 images"):
        train_gan(CFG.but(steps=1, train_limit=96), data, progress=False)
    limited = train_gan(CFG.but(steps=None, epochs=1, train_limit=32), blobs(128), progress=False, device="cpu")
    assert limited.n_train == 32 and limited.steps == 1  # one batch of the first 32 images, not 4 of all 128
    with pytest.raises(ValueError, match="not the one the config describes"):
        train_gan(CFG.but(steps=1), data, gan=create_gan("dcgan", seed=0, nz=8, ngf=16, ndf=8), progress=False)


def _weights(run):
    out = {f"gan.{k}": v for k, v in run.gan.state_dict().items()}
    out.update({f"ema.{k}": v for k, v in run.ema.state_dict().items()})
    return out


def test_checkpoint_resume_takes_the_same_next_step(tmp_path):
    data, kw = blobs(160), dict(progress=False, device="cpu", seed=2)
    cfg = CFG.but(gan="cdcgan", steps=8)
    straight = train_gan(cfg, data, **kw)
    path = tmp_path / "ckpt" / "gan.pt"
    first = train_gan(cfg.but(steps=5), data, checkpoint=path, **kw)  # stops mid-epoch 2
    assert path.is_file() and not list(path.parent.glob("*.tmp"))
    resumed = train_gan(cfg, data, gan=cfg.build_gan(seed=99), checkpoint=path, resume=True, **kw)
    cols = ["step", "epoch", "loss_d", "loss_g", "d_real", "d_fake"]
    pd.testing.assert_frame_equal(resumed.history[cols], straight.history[cols])
    assert first.history[cols].equals(straight.history[cols].head(5))
    a, b = _weights(straight), _weights(resumed)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    # the one checkpoint format: load_checkpoint reads it (weights_only) as a GAN with its GANConfig
    ckpt = load_checkpoint(path)
    assert ckpt.kind == "gan" and isinstance(ckpt.model, GAN) and ckpt.config == cfg
    assert ckpt.state["step"] == 8 and {"opt_g", "opt_d", "ema", "noise_rng"} <= set(ckpt.state)
    loaded = load_gan(path)  # the state after step 8
    assert loaded.steps == 8 and loaded.seed == 2 and loaded.config == cfg and loaded.n_train == 160
    assert torch.equal(sample(loaded, 6, seed=3), sample(straight, 6, seed=3))
    with pytest.raises(ValueError, match="other settings lr=0.0002 \\(now 0.001\\)"):
        train_gan(cfg.but(steps=9, lr=1e-3), data, checkpoint=path, resume=True, **kw)


def test_checkpoint_errors(tmp_path, judge):
    with pytest.raises(FileNotFoundError, match="No checkpoint"):
        load_gan(tmp_path / "missing.pt")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="not an mnistlab checkpoint"):
        load_gan(bad)
    classifier = tmp_path / "classifier.pt"
    save_checkpoint(classifier, judge)
    with pytest.raises(CheckpointError, match="holds a classifier"):
        load_gan(classifier)
    with pytest.raises(ValueError, match="saved with its GANConfig"):
        save_checkpoint(tmp_path / "x.pt", CFG.build_gan(0), config=ml.TrainConfig())


class _Poison:
    """Sets the generator's weights to NaN after step 2; records that on_train_end ran."""

    ended = False

    def on_batch_end(self, state):
        if state.step == 2:
            with torch.no_grad():
                for p in state.gan.generator.parameters():
                    p.fill_(float("nan"))

    def on_train_end(self, state):
        self.ended = True


def test_nan_stops_with_a_clear_error():
    poison = _Poison()
    with pytest.raises(TrainingError, match=r"diverged at step 3 .*loss became nan.*Lower the learning rates"):
        train_gan(CFG.but(steps=10), blobs(128), progress=False, device="cpu", callbacks=[poison])
    assert poison.ended


def test_callback_hooks_order_and_stop():
    calls = []

    class Spy(Callback):  # the callbacks protocol of fit
        def __getattribute__(self, name):
            if name.startswith("on_"):
                return lambda state: calls.append((name, state.step))
            return object.__getattribute__(self, name)

    class Stop(Callback):
        def on_batch_end(self, state):
            state.stop = state.step == 3

    run = train_gan(CFG.but(steps=10), blobs(64), progress=False, device="cpu", callbacks=[Spy(), Stop()])
    assert run.steps == 3
    names = [n for n, _ in calls]
    assert names[0] == "on_train_begin" and names[-1] == "on_train_end"
    assert names[1:5] == ["on_epoch_begin", "on_after_backward", "on_batch_end", "on_after_backward"]
    assert ("on_after_backward", 0) in calls and ("on_batch_end", 1) in calls
    assert ("on_epoch_end", 2) in calls and ("on_epoch_begin", 2) in calls


def test_recorders(judge):
    data = blobs(128)
    snap = GANSampleRecorder(every=2, n=9, seed=0)
    ev = gs.EvaluationRecorder(judge, data, every=3, n=50)
    train_gan(CFG.but(gan="cdcgan", steps=5), data, progress=False, device="cpu", callbacks=[snap, ev])
    assert [s for s, _ in snap.frames] == [0, 2, 4, 5]
    assert all(f.shape == (9, 28, 28) and f.dtype == torch.uint8 for _, f in snap.frames)
    assert not torch.equal(snap.frames[0][1], snap.frames[-1][1])
    t = ev.table
    assert t["step"].tolist() == [3, 5] and (t["n"] == 50).all()
    assert {"frechet", "cond_accuracy", "coverage", "kl_uniform", "mean_confidence"} <= set(t.columns)
    assert record_steps(5, 2) == {0, 2, 4, 5}
    # one name each: the GAN's sample recorder is not the classifier's snapshot recorder
    assert GANSampleRecorder is not ml.SnapshotRecorder and isinstance(snap, Callback)


# --------------------------------------------------------------------------------------- sampling

def test_sample_class_grid_and_interpolation():
    gan = create_gan("cdcgan", seed=0, **TINY).eval()
    a, b = sample(gan, 12, seed=1), sample(gan, 12, seed=1)
    assert a.dtype == torch.uint8 and a.shape == (12, 28, 28) and torch.equal(a, b)
    assert not torch.equal(a, sample(gan, 12, seed=2))
    grid = gs.class_grid(gan, per_class=3, seed=0)
    assert grid.shape == (30, 28, 28)
    # column j of every row shares one noise vector: same z, different class -> different image
    assert not torch.equal(grid[0], grid[3])
    with pytest.raises(ValueError, match="class-conditional generator"):
        gs.class_grid(create_gan("dcgan", seed=0, **TINY))
    with pytest.raises(ValueError, match="labels has 3 entries"):
        sample(gan, 4, labels=[0, 1, 2])
    with pytest.raises(ValueError, match="generator is unconditional"):
        sample(create_gan("dcgan", seed=0, **TINY), 2, labels=[0, 1])
    strip = gs.interpolate(gan, steps=7, seed=0, label=3)
    assert strip.shape == (7, 28, 28)


def test_slerp_endpoints_and_norm():
    g = torch.Generator().manual_seed(0)
    z0, z1 = torch.randn(64, generator=g), torch.randn(64, generator=g)
    path = gs.slerp(z0, z1, 9)
    assert path.shape == (9, 64)
    assert torch.allclose(path[0], z0, atol=1e-5) and torch.allclose(path[-1], z1, atol=1e-5)
    lerp_mid = 0.5 * (z0 + z1)
    assert path[4].norm() > lerp_mid.norm() * 1.2  # the straight line's midpoint is much shorter
    assert torch.allclose(gs.slerp(z0, z0, 3), z0.expand(3, -1), atol=1e-5)
    with pytest.raises(ValueError, match="steps >= 2"):
        gs.slerp(z0, z1, 1)


def test_to_unit():
    x = torch.tensor([-1.0, 0.0, 1.0, 2.0]).reshape(1, 1, 2, 2)
    assert to_unit(x).tolist() == [[[0, 128], [255, 255]]]


# ------------------------------------------------------------------------------------- evaluation

def test_frechet_self_zero_and_grows_with_noise(judge, mnist_small):
    _, test = mnist_small
    fd = gs.FrechetDistance(judge, test)
    assert fd.n_reference == len(test)
    assert abs(fd(test)) < 1e-6 * max(1.0, fd(gs.degrade(test, "noise", 0.1)))
    values = [fd(gs.degrade(test, "noise", s, seed=0)) for s in (0.05, 0.2, 0.5)]
    assert 0 < values[0] < values[1] < values[2]
    assert gs.frechet_distance(test.images[:500], test.images[500:], judge) < values[1]
    with pytest.raises(ValueError, match="at least 2 images"):
        fd(test.images[:1])


def test_classifier_features_stay_in_eval_mode(judge):
    ext = gs.ClassifierFeatures(judge)
    ext.train()
    assert not ext.training and not judge.training and ext.num_features == 128
    x = torch.randint(0, 255, (3, 28, 28), dtype=torch.uint8)
    assert torch.allclose(ext(x), ext(x.float().div(255).unsqueeze(1)))
    with pytest.raises(TypeError, match="no features"):
        gs.ClassifierFeatures(torch.nn.Linear(2, 2))


def test_evaluate_samples_on_real_digits(judge, mnist_small):
    _, test = mnist_small
    r = gs.evaluate_samples(None, judge, images=test.images, requested=test.labels)
    assert r["n"] == len(test) and r["coverage"] == 10 and r["cond_accuracy"] > 0.98
    assert r["kl_uniform"] < 0.02 and r["max_share_deviation"] < 0.04 and r["mean_confidence"] > 0.8
    assert abs(sum(r["shares"]) - 1) < 1e-9 and math.isnan(r["frechet"])
    ones = test.images[test.labels == 1]
    r1 = gs.evaluate_samples(None, judge, images=ones)
    assert r1["coverage"] == 1 and abs(r1["kl_uniform"] - math.log(10)) < 0.1 and r1["max_share"] > 0.95
    assert math.isnan(r1["cond_accuracy"])
    hist = gs.class_histogram(np.eye(3)[[0, 0, 2]])
    assert hist["count"].tolist() == [2, 0, 1] and hist["share"].sum() == pytest.approx(1)


def test_evaluate_run_on_a_generator(judge, mnist_small):
    _, test = mnist_small
    run = train_gan(CFG.but(gan="cdcgan", steps=1), blobs(64), progress=False, device="cpu")
    r = gs.evaluate_run(run, judge, test, n=100)
    assert r["n"] == 100 and r["frechet"] > 0
    # cond_accuracy is the share of the run's samples (seed 1, class i % 10 for sample i) that the judge reads as
    # the class asked for: recomputed here from the same samples, it must agree to the sample
    requested = torch.arange(100) % 10
    pred = ml_predict(judge, sample(run, 100, labels=requested, seed=1)).argmax(1)
    assert r["cond_accuracy"] == pytest.approx(float((pred == requested.numpy()).mean()))


def test_reference_distances_order(judge, mnist_small):
    train, test = mnist_small
    refs = gs.reference_distances(train, test, judge, n=500)
    assert refs["n"].eq(500).all() and len(refs) == 3
    floor, blurred, noised = refs["frechet"]
    assert 0 < floor < blurred and floor < noised
    with pytest.raises(ValueError, match="'blur' or 'noise'"):
        gs.degrade(test.images[:2], "jpeg", 1)


def test_precision_recall_tells_quality_from_diversity():
    g = np.random.default_rng(0)
    real = g.normal(size=(300, 8))
    same = gs.precision_recall(real, g.normal(size=(300, 8)))
    shifted = gs.precision_recall(real, g.normal(size=(300, 8)) + 4)
    # a collapsed generator: every sample in the middle of the real cloud (precise) but no spread (no recall)
    collapsed = gs.precision_recall(real, 0.05 * g.normal(size=(300, 8)))
    assert same["precision"] > 0.7 and same["recall"] > 0.7
    assert shifted["precision"] < 0.2 and shifted["recall"] < 0.2
    assert collapsed["precision"] > 0.9 and collapsed["recall"] < 0.2


def test_precision_recall_names_the_install_when_torch_fidelity_is_missing(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch_fidelity.metric_prc", None)  # import now raises ImportError
    assert not gs.precision_recall_available()
    with pytest.raises(ImportError, match="pip install torch-fidelity"):
        gs.precision_recall(np.zeros((5, 2)), np.zeros((5, 2)))


def test_nearest_train_distances_finds_copies(mnist_small):
    train, test = mnist_small
    copies = train.images[[5, 17, 42]]
    t = gs.nearest_train_distances({"copier": copies}, train, test.images[:50], n=50)
    c = t[t["source"] == "copier"].sort_values("index")
    assert c["distance"].max() < 1e-6 and c["train_index"].tolist() == [5, 17, 42]
    assert (t.loc[t["source"] == "test", "distance"] > 1).all()
    assert len(t) == 3 + 50
    with pytest.raises(ValueError, match="'test' is reserved"):
        gs.nearest_train_distances({"test": copies}, train, test)


def test_check_targets():
    good = {"cond_accuracy": 0.97, "max_share_deviation": 0.02, "frechet": 0.4}
    bad = {"cond_accuracy": 0.5, "max_share_deviation": 0.05, "frechet": 2.0}
    t = gs.check_targets(good, good, floor=0.1, train_seconds=500).set_index("target")
    assert t["met"].tolist() == [True, False, True, True, True, True]
    t = gs.check_targets(bad, bad, floor=0.1, train_seconds=700)
    assert not t["met"].any()
    assert t.loc[3, "value"] == pytest.approx(20.0)


def test_diagnose_reads_dynamics_and_the_judge():
    h = _history()
    balanced = gs.diagnose(h, window=20)
    assert balanced["dynamics"] == "balanced" and balanced["verdict"] == "balanced (not judged)"
    won = h.assign(d_fake=0.01, d_real=0.99, loss_d=0.02)
    d = gs.diagnose(won)
    assert d["verdict"] == "discriminator wins" and "0.010 < 0.05" in d["reason"] and d["window"] == 100
    assert gs.diagnose(h.assign(d_fake=0.7, d_real=0.4))["verdict"] == "generator fools D"
    good = {"frechet": 0.3, "coverage": 10, "cond_accuracy": 0.97}
    pr_good = {"precision": 0.8, "recall": 0.7}
    ok = gs.diagnose(h, good, floor=0.1, pr=pr_good)
    assert ok["verdict"] == "healthy" and ok["frechet_ratio"] == pytest.approx(3.0) and not ok["failed"]
    # balanced dynamics at 155x the floor (notebook 07's old "healthy" run) are not healthy
    far = gs.diagnose(h, {"frechet": 15.5, "coverage": 10, "cond_accuracy": float("nan")}, floor=0.1, pr=pr_good)
    assert far["verdict"] == "samples not yet real" and "155.0x the floor" in far["reason"]
    assert far["failed"] == ["Frechet distance 155.0x the floor (bar 5x)"]
    for judged, pr, word in [({**good, "coverage": 7}, pr_good, "7 of 10 classes"),
                             ({**good, "cond_accuracy": 0.5}, pr_good, "50.0% classified as requested"),
                             (good, {"precision": 0.2, "recall": 0.7}, "precision 0.20"),
                             (good, {"precision": 0.8, "recall": 0.1}, "recall 0.10")]:
        out = gs.diagnose(h, judged, floor=0.1, pr=pr)
        assert out["verdict"] == "samples not yet real" and word in out["reason"], word
    # a losing discriminator is named first, whatever the judge says
    assert gs.diagnose(won, good, floor=0.1, pr=pr_good)["verdict"] == "discriminator wins"
    with pytest.raises(ValueError, match="floor > 0"):
        gs.diagnose(h, good)
    with pytest.raises(ValueError, match="at least one step"):
        gs.diagnose(h.head(0))


# ------------------------------------------------------------------------------------------ plots

def _history():
    steps = np.arange(1, 101)
    return pd.DataFrame({"step": steps, "loss_d": 1.3 - steps / 400, "loss_g": 0.8 + steps / 300,
                         "d_real": 0.5 + steps / 500, "d_fake": 0.5 - steps / 500})


def test_every_plot_draws_into_the_callers_axes(mnist_small):
    train, _ = mnist_small
    imgs = train.images[:20]
    table = pd.DataFrame({"gan": ["dcgan"] * 2 + ["cdcgan"] * 2, "step": [1, 2, 1, 2], "frechet": [3.0, 1.0, 2.0, 0.5],
                          "mean_confidence": [0.5, 0.9, 0.6, 0.95], "cond_accuracy": [np.nan, np.nan, 0.5, 0.97],
                          "max_share_deviation": [0.1, 0.02, 0.05, 0.01]})
    nn_table = gs.nearest_train_distances({"dcgan": imgs}, train, train.images[100:120], n=20)
    calls = [
        (lambda ax: vg.plot_samples(imgs, nrow=5, title="t", ax=ax), 1),
        (lambda ax: vg.plot_training_curves(_history(), window=5, ax=ax), 2),
        (lambda ax: vg.plot_interpolation(imgs[:8], ax=ax), 1),
        (lambda ax: vg.plot_class_grid(imgs, classes=list("ab"), ax=ax), 1),
        (lambda ax: vg.plot_class_shares(np.full(10, 0.1), ax=ax), 1),
        (lambda ax: vg.plot_quality_over_training(table, floor=0.1, ax=ax), 3),
        (lambda ax: vg.plot_nearest_neighbours(imgs, train, nn_table, source="dcgan", n=4, ax=ax), 1),
        (lambda ax: vg.plot_distance_distributions(nn_table, ax=ax), 1),
    ]
    for fn, panels in calls:
        fig, axes = plt.subplots(1, panels)
        assert fn(axes) is fig
        assert all(a.has_data() or a.images for a in np.ravel(axes)), fn  # every panel drawn, in the caller's axes
        assert len(fig.axes) == panels
        plt.close(fig)


def test_multi_panel_plots_take_an_array_or_a_subfigure():
    """ax= a row of a matplotlib grid, or a SubFigure; too few axes are refused with the number needed."""
    fig, grid = plt.subplots(2, 3)  # an array of Axes, as matplotlib gives it
    table = pd.DataFrame({"step": [1, 2], "frechet": [2.0, 1.0], "mean_confidence": [0.5, 0.9],
                          "cond_accuracy": [np.nan, np.nan], "max_share_deviation": [0.1, 0.02]})
    assert vg.plot_quality_over_training(table, ax=grid[1]) is fig
    assert [a.has_data() for a in grid.ravel()] == [False] * 3 + [True] * 3
    assert grid[1, 0].get_yscale() == "log"
    with pytest.raises(ValueError, match="needs 2 axes"):
        vg.plot_training_curves(_history(), ax=grid[0, :1])
    fig = plt.figure()
    top, bottom = fig.subfigures(2, 1)
    assert vg.plot_training_curves(_history(), window=5, ax=bottom) is fig
    assert not top.axes and len(bottom.axes) == 2 and bottom.axes[1].get_ylim() == (0, 1)  # the D panel
    plt.close("all")


def test_plots_make_their_own_figures(tmp_path):
    figs = [vg.plot_samples(torch.zeros(16, 28, 28, dtype=torch.uint8)), vg.plot_training_curves(_history()),
            vg.plot_class_shares(pd.DataFrame({"share": np.full(10, 0.1)}))]
    for f in figs:
        assert len(f.axes) >= 1 and f.get_size_inches()[0] > 1
        plt.close(f)
    with pytest.raises(ValueError, match="do not fill 10 rows"):
        vg.plot_class_grid(torch.zeros(15, 28, 28, dtype=torch.uint8))


def test_training_curves_mark_the_equilibrium_of_the_loss_used():
    ns = vg.plot_training_curves(_history(), window=5)
    lines = {round(l.get_ydata()[0], 4) for l in ns.axes[0].lines if l.get_linestyle() == ":"}
    assert lines == {round(2 * np.log(2), 4), round(np.log(2), 4)}
    # hinge: loss_G = -mean logit goes negative; the panel must show it and the lines at 2 and 0
    hinge_history = _history().assign(loss_d=lambda h: 2.0 - h["step"] / 100, loss_g=lambda h: -h["step"] / 200)
    hinge = vg.plot_training_curves(hinge_history, window=5, loss="hinge")
    ax = hinge.axes[0]
    assert {l.get_ydata()[0] for l in ax.lines if l.get_linestyle() == ":"} == {2.0, 0.0}
    lo, hi = ax.get_ylim()
    assert lo < -0.45 and hi > 2.0 and ax.get_ylabel() == "hinge loss"
    plt.close("all")
    with pytest.raises(ValueError, match="loss must be one of"):
        vg.plot_training_curves(_history(), loss="wasserstein")


def test_tile_and_gif_frames():
    imgs = torch.full((6, 28, 28), 255, dtype=torch.uint8)
    mosaic = vg.tile(imgs, nrow=3, padding=2)
    assert mosaic.shape == (2 * 30 + 2, 3 * 30 + 2) and mosaic.max() == 1.0
    frames = vg.gif_frames([(0, imgs), (100, imgs[:4])], nrow=3)
    assert len(frames) == 2 and frames[0].shape == frames[1].shape and frames[0].dtype == np.uint8
    assert not np.array_equal(frames[0], frames[1])  # the step label differs
    with pytest.raises(ValueError, match="at least one"):
        vg.gif_frames([])


def test_run_gan_trains_once_then_reads_the_one_cache(tmp_path, monkeypatch):
    """experiments.run_gan keys a GAN run by its GANConfig, seed and data, like every other run."""
    from mnistlab import experiments as ex

    monkeypatch.setenv("MNISTLAB_CACHE", str(tmp_path / "cache"))
    data, cfg = blobs(96), CFG.but(steps=4)
    first = ex.run_gan(cfg, data, seed=1, device="cpu", progress=False)
    files = sorted(p.name for p in (tmp_path / "cache").glob("*.pt"))
    assert len(files) == 1 and len(first.history) == 4
    again = ex.run_gan(cfg, data, seed=1, device="cpu", progress=False)  # from the file, not trained
    pd.testing.assert_frame_equal(again.history[["loss_d", "loss_g"]], first.history[["loss_d", "loss_g"]])
    assert torch.equal(sample(again, 4, seed=0), sample(first, 4, seed=0))
    assert sorted(p.name for p in (tmp_path / "cache").glob("*.pt")) == files
    ex.run_gan(cfg, data, seed=2, device="cpu", progress=False)  # another seed: another run
    ex.run_gan(cfg.but(lr=1e-3), data, seed=1, device="cpu", progress=False)  # another config: another run
    assert len(list((tmp_path / "cache").glob("*.pt"))) == 3
    assert ex.config_hash(cfg, 1, kind="gan") != ex.config_hash(cfg.but(name="renamed", lr=1e-3), 1, kind="gan")
    assert ex.config_hash(cfg, 1, kind="gan") == ex.config_hash(cfg.but(name="renamed"), 1, kind="gan")


def test_run_gan_keeps_the_recorders_and_resumes_a_shorter_run(tmp_path, monkeypatch, judge):
    """run_gan stores what the recorders gathered beside the cached GAN (a hit fills them without training), and
    resume_from continues a shorter run of the same config: the same weights as one uninterrupted run."""
    from mnistlab import experiments as ex

    monkeypatch.setenv("MNISTLAB_CACHE", str(tmp_path / "cache"))
    data, cfg = blobs(96), CFG.but(gan="cdcgan", steps=6)
    reference = blobs(64, seed=1)
    frechet = gs.FrechetDistance(judge, reference)

    def both(**kw):
        snaps = GANSampleRecorder(every=2, n=10, seed=0)
        evals = gs.EvaluationRecorder(judge, every=3, n=20, seed=0, frechet=frechet)
        half = ex.run_gan(cfg.but(steps=3), data, callbacks=[snaps, evals], device="cpu", progress=False)
        full = ex.run_gan(cfg, data, callbacks=[snaps, evals], device="cpu", progress=False,
                          resume_from=half.checkpoint, **kw)
        return half, full, snaps, evals

    half, full, snaps, evals = both()
    assert half.steps == 3 and full.steps == 6 and full.checkpoint.parent == tmp_path / "cache"
    assert [s for s, _ in snaps.frames] == [0, 2, 3, 4, 6] and list(evals.table["step"]) == [3, 6]
    assert load_checkpoint(half.checkpoint).state["step"] == 3      # the shorter run's file is left as it was
    straight = train_gan(cfg, data, device="cpu", progress=False)  # no cache: one uninterrupted run
    assert all(torch.equal(a, b) for a, b in zip(straight.gan.state_dict().values(), full.gan.state_dict().values()))
    assert sorted(p.name.split(".", 1)[1] for p in (tmp_path / "cache").iterdir()) == sorted(
        [snaps.artifact_name + ".npz", evals.artifact_name + ".npz", "pt"] * 2)

    calls = []
    monkeypatch.setattr("mnistlab.training.gan.train_gan", lambda *a, **k: calls.append(1))
    half2, full2, snaps2, evals2 = both()                            # read back: nothing trains
    assert not calls and full2.steps == 6
    assert [s for s, _ in snaps2.frames] == [0, 2, 3, 4, 6]
    assert all(torch.equal(a, b) for (_, a), (_, b) in zip(snaps.frames, snaps2.frames))
    pd.testing.assert_frame_equal(evals2.table, evals.table)
    assert np.isnan(evals2.table["cond_accuracy"]).sum() == 0    # conditional: computed, not NaN

    other = gs.EvaluationRecorder(judge, every=3, n=21, seed=0, frechet=frechet)   # other settings: no artifact
    assert other.artifact_name != evals.artifact_name
    with pytest.raises(FileNotFoundError, match="names no checkpoint file"):
        ex.run_gan(cfg.but(steps=8), data, device="cpu", progress=False, resume_from=tmp_path / "missing.pt")


def test_run_gans_trains_jobs_side_by_side_and_fills_their_recorders(tmp_path, monkeypatch, judge):
    """experiments.run_gans: each job's configs in order in one worker (the later resuming the earlier); the
    recorders come back through the cache; two workers of one thread equal one process of one thread exactly."""
    from mnistlab import experiments as ex

    data, cfg = blobs(96), CFG.but(steps=6)
    frechet = gs.FrechetDistance(judge, blobs(64, seed=1))
    jobs = {"u": [cfg], "c": [cfg.but(gan="cdcgan", steps=3), cfg.but(gan="cdcgan")]}

    def side_by_side(cache, **kw):
        monkeypatch.setenv("MNISTLAB_CACHE", str(tmp_path / cache))
        rec = {"u": [GANSampleRecorder(every=2, n=10, seed=0)],
               "c": [GANSampleRecorder(every=2, n=10, seed=0), gs.EvaluationRecorder(judge, every=3, n=20, seed=0,
                                                                                      frechet=frechet)]}
        return ex.run_gans(jobs, data, callbacks=rec, device="cpu", progress=False, **kw), rec

    runs, rec = side_by_side("two", workers=2, threads=1)
    (u,), (half, full) = runs["u"], runs["c"]
    assert (u.steps, half.steps, full.steps) == (6, 3, 6) and full.checkpoint.parent == tmp_path / "two"
    assert [s for s, _ in rec["u"][0].frames] == [0, 2, 4, 6]
    assert [s for s, _ in rec["c"][0].frames] == [0, 2, 3, 4, 6] and list(rec["c"][1].table["step"]) == [3, 6]
    assert load_checkpoint(half.checkpoint).state["step"] == 3
    here, rec1 = side_by_side("one", workers=1, threads=1)
    for a, b in zip([u, half, full], here["u"] + here["c"]):
        assert all(torch.equal(x, y) for x, y in zip(a.gan.state_dict().values(), b.gan.state_dict().values()))
    assert all(torch.equal(a, b) for (_, a), (_, b) in zip(rec["c"][0].frames, rec1["c"][0].frames))
    timeless = lambda t: t.drop(columns=[c for c in t.columns if "elapsed" in c or "seconds" in c])
    pd.testing.assert_frame_equal(timeless(rec["c"][1].table), timeless(rec1["c"][1].table))
    # a job with a run missing goes back to a worker, which reads what is cached and trains the rest from there
    full.checkpoint.unlink()
    again, rec2 = side_by_side("two", workers=2, threads=1)
    assert all(torch.equal(x, y) for x, y in zip(again["c"][1].gan.state_dict().values(), full.gan.state_dict().values()))
    assert [s for s, _ in rec2["c"][0].frames] == [0, 2, 3, 4, 6]

    with pytest.raises(ValueError, match="no artifact_name"):
        ex.run_gans(jobs, data, callbacks={"u": [object()]}, workers=2, progress=False)
    with pytest.raises(ValueError, match="not in jobs"):
        ex.run_gans(jobs, data, callbacks={"x": []}, progress=False)
    with pytest.raises(ValueError, match="no configs"):
        ex.run_gans({"u": []}, data, progress=False)
    with pytest.raises(ValueError, match="non-empty"):
        ex.run_gans({}, data, progress=False)
