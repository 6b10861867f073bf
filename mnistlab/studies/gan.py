"""Train a GAN on digits and judge it with the trained classifier (compute only: no matplotlib here).

Training (:func:`train_gan`): two Adam optimizers (lr 2e-4, beta1 0.5 by default), the
non-saturating loss (or the hinge loss), an exponential moving average (EMA) of the generator's
weights that sampling uses by default, AMP (bfloat16) on CUDA, the callback hook names of
:func:`mnistlab.fit`, NaN detection naming the step, and checkpoints of both nets, both
optimizers, the EMA, the step and the noise RNG, written atomically and loaded with
``weights_only=True`` so a resumed run takes exactly the step the uninterrupted run would have.

Judging (:func:`evaluate_samples`, :class:`FrechetDistance`, :func:`reference_distances`,
:func:`precision_recall`, :func:`nearest_train_distances`): the class histogram of samples
as the classifier sees them (coverage, KL divergence to uniform), its mean confidence, the
fraction of conditional samples classified as the requested class, and the Frechet distance
between Gaussian fits of the classifier's penultimate features (torchmetrics'
``FrechetInceptionDistance`` with the classifier as its feature extractor: no Inception weights,
which would mean little on 28x28 digits anyway).

Example
-------
>>> import mnistlab as ml                                              # doctest: +SKIP
>>> from mnistlab.studies import gan as gs
>>> run = gs.train_gan(ml.create_gan("cdcgan", seed=0), ml.load_dataset("mnist", "train"), steps=3000)
>>> judge = ml.load_pretrained()
>>> gs.evaluate_run(run, judge, ml.load_dataset("mnist", "test"), n=10000)
"""
from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from ..data import ImageSet, as_imageset
from ..models.gan import GAN, create_gan
from ..models.registry import preprocessing_of
from ..training.callbacks import Callback
from ..training.checkpoint import CheckpointError, atomic_write
from ..training.loop import TrainingError, predict, resolve_device

__all__ = [
    "GANState", "GANRun", "train_gan", "load_gan_checkpoint", "save_gan_checkpoint", "LOSSES", "RECIPES",
    "SnapshotRecorder", "EvaluationRecorder",
    "to_unit", "sample", "slerp", "interpolate", "class_grid",
    "ClassifierFeatures", "FrechetDistance", "frechet_distance", "class_histogram", "evaluate_samples",
    "evaluate_run", "reference_distances", "degrade", "precision_recall", "precision_recall_available",
    "nearest_train_distances", "check_targets", "diagnose",
]

FORMAT = "mnistlab-gan-checkpoint"
VERSION = 1


# ----------------------------------------------------------------------------------------- losses

def _ns_d(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    return F.softplus(-real).mean() + F.softplus(fake).mean()


def _ns_g(fake: torch.Tensor) -> torch.Tensor:
    return F.softplus(-fake).mean()


def _hinge_d(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    return F.relu(1.0 - real).mean() + F.relu(1.0 + fake).mean()


def _hinge_g(fake: torch.Tensor) -> torch.Tensor:
    return -fake.mean()


LOSSES = {"ns": (_ns_d, _ns_g), "hinge": (_hinge_d, _hinge_g)}
"""GAN losses by name: ``"ns"`` (non-saturating, Goodfellow et al. 2014) and ``"hinge"`` (Lim & Ye 2017)."""

RECIPES: dict[str, tuple[dict, dict]] = {
    "dcgan": ({"spectral_norm": False}, {"loss": "ns", "lr": 2e-4, "lr_d": 2e-4, "betas": (0.5, 0.999)}),
    "sngan": ({"spectral_norm": True}, {"loss": "hinge", "lr": 2e-4, "lr_d": 4e-4, "betas": (0.0, 0.9)}),
}
"""Training recipes by name: (keyword arguments of ``create_gan``, keyword arguments of :func:`train_gan`).

``"dcgan"``: Radford et al. 2016 (non-saturating loss, Adam lr 2e-4 for both nets, beta1 0.5).
``"sngan"``: Miyato et al. 2018 (spectral norm in D, hinge loss, Adam betas (0, 0.9)) with D's rate
twice G's (the two time-scale rule, Heusel et al. 2017); notebook 07 trains with it.
"""


# ------------------------------------------------------------------------------------ train state

@dataclass
class GANState:
    """What GAN callbacks see (the hook names are those of :func:`mnistlab.fit`).

    ``step`` counts finished training steps (one discriminator and one generator update); in
    ``on_batch_end`` it includes the current one. ``logs`` holds the last step's numbers
    (``loss_d``, ``loss_g``, ``d_real``, ``d_fake``, ``seconds``, ``elapsed``).
    """

    gan: GAN
    ema: Any  # torch.optim.swa_utils.AveragedModel of the generator, or None
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer
    device: torch.device
    steps: int
    steps_per_epoch: int
    epoch: int = 0
    step: int = 0
    logs: dict = field(default_factory=dict)
    history: list = field(default_factory=list)
    stop: bool = False
    noise: torch.Generator | None = None  # the noise RNG (saved in checkpoints)

    @property
    def model(self) -> GAN:
        """The GAN (the name :class:`mnistlab.fit`'s callbacks expect)."""
        return self.gan

    def sampler(self, use_ema: bool = True) -> nn.Module:
        """The generator to sample from now: a recalibrated EMA copy (default) or the raw generator."""
        return _sampler(self.gan, self.ema, use_ema, self.device)


@dataclass
class GANRun:
    """A trained GAN: the pair, the EMA generator, the per-step history and the training time.

    Attributes
    ----------
    gan : GAN
    ema : AveragedModel or None
        Exponential moving average of the generator's weights.
    history : pandas.DataFrame
        One row per step: step, epoch, loss_d, loss_g, d_real, d_fake (mean discriminator
        probability that a real / generated batch is real, before the step's update), seconds,
        elapsed (cumulative training seconds, evaluation and checkpoints not counted).
    settings : dict
        Loss, learning rates, batch size, seed, EMA decay.
    device : torch.device
    """

    gan: GAN
    ema: Any
    history: pd.DataFrame
    settings: dict
    device: torch.device

    @property
    def train_seconds(self) -> float:
        """Training time in seconds (the last ``elapsed``)."""
        return float(self.history["elapsed"].iloc[-1]) if len(self.history) else 0.0

    @property
    def steps(self) -> int:
        """Number of finished training steps."""
        return int(self.history["step"].iloc[-1]) if len(self.history) else 0

    def sampler(self, use_ema: bool = True) -> nn.Module:
        """The generator to sample from, in eval mode: the EMA (batch-norm statistics recalibrated) or the raw one."""
        return _sampler(self.gan, self.ema, use_ema, self.device)


def _ema_fn(decay: float):
    """EMA average function for ``AveragedModel`` with warm-up: decay min(decay, (1 + n) / (10 + n))."""

    def avg(averaged: torch.Tensor, current: torch.Tensor, num_averaged) -> torch.Tensor:
        n = float(num_averaged)
        d = min(decay, (1.0 + n) / (10.0 + n))
        return averaged * d + current * (1.0 - d)

    return avg


def _make_ema(generator: nn.Module, decay: float | None):
    if not decay:
        return None
    from torch.optim.swa_utils import AveragedModel

    return AveragedModel(generator, avg_fn=_ema_fn(decay), use_buffers=True)


class _LabelledGenerator(nn.Module):
    """Adapter for ``torch.optim.swa_utils.update_bn``: one input tensor holding z and (last column) the label."""

    def __init__(self, generator: nn.Module):
        super().__init__()
        self.generator = generator

    def forward(self, zy: torch.Tensor) -> torch.Tensor:
        if getattr(self.generator, "num_classes", 0):
            return self.generator(zy[:, :-1], zy[:, -1].long())
        return self.generator(zy)


def _sampler(gan: GAN, ema, use_ema: bool, device, batches: int = 4, batch_size: int = 128) -> nn.Module:
    """Generator in eval mode; for the EMA, a copy whose batch-norm statistics are recomputed.

    The EMA's averaged weights never produced the running batch-norm statistics it carries, so a
    copy is re-estimated on ``batches`` x ``batch_size`` fixed noise vectors with
    ``torch.optim.swa_utils.update_bn`` (the EMA itself is left untouched, so training continues
    exactly as without sampling).
    """
    if not use_ema or ema is None:
        return gan.generator.eval() if not gan.generator.training else copy.deepcopy(gan.generator).eval()
    from torch.optim.swa_utils import update_bn

    g = copy.deepcopy(ema.module)
    rng = torch.Generator().manual_seed(12345)
    inputs = []
    for _ in range(batches):
        z = torch.randn(batch_size, g.nz, generator=rng)
        if g.num_classes:
            y = torch.randint(0, g.num_classes, (batch_size, 1), generator=rng).float()
            z = torch.cat([z, y], 1)
        inputs.append(z.to(device))
    with torch.no_grad():
        update_bn(inputs, _LabelledGenerator(g), device=device)
    return g.eval()


# ----------------------------------------------------------------------------------- checkpoints

def save_gan_checkpoint(path, state: GANState, settings: dict) -> Path:
    """Write both nets, both optimizers, the EMA, the step and the noise RNG to ``path`` atomically.

    Parameters
    ----------
    path : path
    state : GANState
    settings : dict
        The run's settings (checked on resume so the continued run is the same run).

    Returns
    -------
    pathlib.Path
    """
    cpu = lambda sd: {k: (v.detach().cpu().contiguous() if torch.is_tensor(v) else v) for k, v in sd.items()}
    payload = {
        "format": FORMAT, "version": VERSION,
        "gan": state.gan.config.get("name"), "kwargs": dict(state.gan.config.get("kwargs", {})),
        "generator": cpu(state.gan.generator.state_dict()),
        "discriminator": cpu(state.gan.discriminator.state_dict()),
        "ema": cpu(state.ema.state_dict()) if state.ema is not None else None,
        "opt_g": state.opt_g.state_dict(), "opt_d": state.opt_d.state_dict(),
        "step": int(state.step), "noise_rng": state.noise.get_state() if state.noise is not None else None,
        "settings": dict(settings),
        "history": pd.DataFrame(state.history).to_dict(orient="list"),
    }
    return atomic_write(path, lambda fh: torch.save(payload, fh))


def _read_checkpoint(path, device="cpu") -> dict:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No GAN checkpoint at {path}; train with train_gan(..., checkpoint={str(path)!r}).")
    try:
        payload = torch.load(path, map_location=device, weights_only=True)
    except Exception as exc:
        raise CheckpointError(f"{path} could not be read as a GAN checkpoint (truncated or corrupt?): {exc}") from exc
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not an mnistlab GAN checkpoint (no '{FORMAT}' marker).")
    if payload.get("version", 0) > VERSION:
        raise CheckpointError(f"{path} was written by a newer mnistlab (format {payload['version']}); upgrade mnistlab.")
    return payload


def load_gan_checkpoint(path, device="cpu") -> GANRun:
    """Load a checkpoint written by :func:`train_gan` (``torch.load(weights_only=True)``) for sampling.

    Returns
    -------
    GANRun
        The GAN and its EMA in eval mode, the history up to the saved step and the settings.

    Raises
    ------
    FileNotFoundError
        No file at ``path``.
    CheckpointError
        Truncated, corrupt, or not a GAN checkpoint.
    """
    payload = _read_checkpoint(path, device)
    gan = create_gan(payload["gan"], **payload["kwargs"])
    gan.generator.load_state_dict(payload["generator"])
    gan.discriminator.load_state_dict(payload["discriminator"])
    ema = _make_ema(gan.generator, payload["settings"].get("ema_decay"))
    if ema is not None and payload["ema"] is not None:
        ema.load_state_dict(payload["ema"])
    dev = torch.device(device)
    gan.to(dev).eval()
    if ema is not None:
        ema.to(dev)
    return GANRun(gan, ema, pd.DataFrame(payload["history"]), payload["settings"], dev)


# -------------------------------------------------------------------------------------- training

def _call(callbacks, hook: str, state: GANState) -> None:
    for cb in callbacks:
        fn = getattr(cb, hook, None)
        if fn is not None:
            fn(state)


def _epoch_order(n: int, seed: int, epoch: int, device) -> torch.Tensor:
    """The shuffled order of epoch ``epoch`` (a function of seed and epoch, so a resumed run finds it again)."""
    g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(n, generator=g).to(device)


def train_gan(gan: GAN, data, *, steps: int | None = None, epochs: float | None = None, batch_size: int = 64,
              lr: float = 2e-4, lr_d: float | None = None, betas=(0.5, 0.999), loss: str = "ns",
              ema_decay: float | None = 0.999, callbacks: Iterable = (), device="auto", amp: bool | None = None,
              seed: int = 0, progress: bool = True, checkpoint=None, checkpoint_every: int | None = None,
              resume: bool = False) -> GANRun:
    """Train a GAN on digits; return the trained pair, its EMA generator and the per-step history.

    Parameters
    ----------
    gan : GAN
        From :func:`mnistlab.models.gan.create_gan` (``"dcgan"`` or ``"cdcgan"``).
    data : ImageSet, (images, labels) or uint8 tensor (N, 28, 28)
        Training images (labels are used by a conditional GAN).
    steps, epochs : int / float
        Length of training: ``steps`` (one discriminator and one generator update each), or
        ``epochs`` passes over ``data``. Exactly one must be given.
    batch_size : int
    lr, lr_d : float
        Adam learning rates of the generator and the discriminator (``lr_d`` defaults to ``lr``).
    betas : (float, float)
        Adam betas of both optimizers (DCGAN: 0.5, 0.999).
    loss : "ns" or "hinge"
        Non-saturating or hinge loss (:data:`LOSSES`).
    ema_decay : float or None
        Decay of the exponential moving average of the generator's weights (None: no EMA).
    callbacks : list
        Objects with any of ``on_train_begin``, ``on_epoch_begin``, ``on_after_backward`` (after
        the generator's backward pass, before its optimizer step), ``on_batch_end``,
        ``on_epoch_end``, ``on_train_end`` (also called when training raises); each receives the
        :class:`GANState`. Setting ``state.stop = True`` ends training after the step.
    device : "auto", "cpu", "cuda", ...
    amp : bool, optional
        bfloat16 autocast; default on for CUDA, off elsewhere.
    seed : int
        Seeds the data order and the noise (the global RNG is not touched): the same seed gives
        the same numbers on the CPU.
    progress : bool
        tqdm progress bar over steps.
    checkpoint : path, optional
        Where to write checkpoints (atomically): every ``checkpoint_every`` steps and at the end.
    checkpoint_every : int, optional
    resume : bool
        Continue from ``checkpoint`` if the file exists (same settings required).

    Returns
    -------
    GANRun

    Raises
    ------
    TrainingError
        A loss became NaN or infinite (the message names the step and what to change).
    ValueError
        Bad arguments, or ``resume`` with a checkpoint of other settings.
    """
    if (steps is None) == (epochs is None):
        raise ValueError("Give exactly one of steps= or epochs= to train_gan.")
    if loss not in LOSSES:
        raise ValueError(f"loss must be one of {sorted(LOSSES)}, not {loss!r}.")
    if resume and checkpoint is None:
        raise ValueError("resume=True needs checkpoint=PATH (the file to continue from).")
    data = as_imageset(data)
    n = len(data)
    if n < batch_size:
        raise ValueError(f"train_gan needs at least batch_size={batch_size} images, got {n}; lower batch_size.")
    steps_per_epoch = n // batch_size  # drop_last: every batch is full (batch norm, fixed shapes)
    total = int(steps) if steps is not None else max(1, round(float(epochs) * steps_per_epoch))
    dev = resolve_device(device)
    use_amp = (dev.type == "cuda") if amp is None else bool(amp)
    if use_amp and dev.type != "cuda":
        raise ValueError("amp=True needs a CUDA device (bfloat16 autocast); use amp=None or False on the CPU.")
    settings = {"gan": gan.config.get("name"), "kwargs": dict(gan.config.get("kwargs", {})), "steps": total,
                "batch_size": batch_size, "lr": lr, "lr_d": lr if lr_d is None else lr_d, "betas": list(betas),
                "loss": loss, "ema_decay": ema_decay, "seed": seed, "n_train": n}
    images = data.images.to(dev)
    labels = data.labels.to(dev)
    gan.to(dev).train()
    g, d = gan.generator, gan.discriminator
    opt_g = torch.optim.Adam(g.parameters(), lr=lr, betas=tuple(betas))
    opt_d = torch.optim.Adam(d.parameters(), lr=settings["lr_d"], betas=tuple(betas))
    ema = _make_ema(g, ema_decay)
    noise = torch.Generator().manual_seed(seed)
    state = GANState(gan=gan, ema=ema, opt_g=opt_g, opt_d=opt_d, device=dev, steps=total,
                     steps_per_epoch=steps_per_epoch, noise=noise)
    if resume and Path(checkpoint).is_file():
        _restore(state, noise, _read_checkpoint(checkpoint, dev), settings, checkpoint)
    d_loss_fn, g_loss_fn = LOSSES[loss]
    autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=use_amp) if dev.type == "cuda" else _Null()
    callbacks = list(callbacks)
    elapsed = float(state.history[-1]["elapsed"]) if state.history else 0.0
    bar = tqdm(total=total, initial=state.step, desc=f"train {settings['gan'] or 'gan'}", unit="step",
               disable=not progress, leave=True)
    order = None
    try:
        _call(callbacks, "on_train_begin", state)
        while state.step < total and not state.stop:
            epoch, pos = divmod(state.step, steps_per_epoch)
            if pos == 0 or order is None:
                order = _epoch_order(n, seed, epoch, dev)
                state.epoch = epoch + 1
                if pos == 0:
                    _call(callbacks, "on_epoch_begin", state)
            t0 = time.perf_counter()
            idx = order[pos * batch_size:(pos + 1) * batch_size]
            real = images[idx].unsqueeze(1).float().div_(127.5).sub_(1.0)  # uint8 -> [-1, 1]
            y_real = labels[idx] if gan.conditional else None
            z = torch.randn(batch_size, gan.nz, generator=noise).to(dev)
            y_fake = (torch.randint(0, gan.num_classes, (batch_size,), generator=noise).to(dev)
                      if gan.conditional else None)
            # discriminator step
            with autocast:
                fake = g(z, y_fake)
                d_real = d(real, y_real).float()
                d_fake = d(fake.detach(), y_fake).float()
                loss_d = d_loss_fn(d_real, d_fake)
            opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            opt_d.step()
            # generator step
            with autocast:
                loss_g = g_loss_fn(d(fake, y_fake).float())
            opt_g.zero_grad(set_to_none=True)
            loss_g.backward()
            _call(callbacks, "on_after_backward", state)
            opt_g.step()
            if ema is not None:
                ema.update_parameters(g)
            values = torch.stack([loss_d.detach(), loss_g.detach(), torch.sigmoid(d_real.detach()).mean(),
                                  torch.sigmoid(d_fake.detach()).mean()]).tolist()  # one device sync per step
            state.step += 1
            if not all(math.isfinite(v) for v in values):
                bad = "discriminator" if not math.isfinite(values[0]) else "generator"
                raise TrainingError(
                    f"GAN training diverged at step {state.step} (epoch {state.epoch}): the {bad} loss became "
                    f"{values[0] if bad == 'discriminator' else values[1]}. Lower the learning rates (lr={lr}, "
                    f"lr_d={settings['lr_d']}), try loss='hinge' or spectral_norm=True, or resume from the last "
                    "checkpoint.")
            seconds = time.perf_counter() - t0
            elapsed += seconds
            state.logs = {"step": state.step, "epoch": state.epoch, "loss_d": values[0], "loss_g": values[1],
                          "d_real": values[2], "d_fake": values[3], "seconds": seconds, "elapsed": elapsed}
            state.history.append(dict(state.logs))
            bar.update(1)
            if state.step % 50 == 0 or state.step == total:
                bar.set_postfix(loss_d=f"{values[0]:.3f}", loss_g=f"{values[1]:.3f}", d_x=f"{values[2]:.2f}",
                                d_gz=f"{values[3]:.2f}", refresh=False)
            _call(callbacks, "on_batch_end", state)
            if checkpoint is not None and checkpoint_every and state.step % checkpoint_every == 0:
                save_gan_checkpoint(checkpoint, state, settings)
            if (state.step % steps_per_epoch == 0) or state.step == total:
                _call(callbacks, "on_epoch_end", state)
        if checkpoint is not None:
            save_gan_checkpoint(checkpoint, state, settings)
    finally:
        bar.close()
        _call(callbacks, "on_train_end", state)
    gan.eval()
    return GANRun(gan, ema, pd.DataFrame(state.history), settings, dev)


class _Null:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


_RESUME_KEYS = ("gan", "kwargs", "batch_size", "lr", "lr_d", "betas", "loss", "ema_decay", "seed", "n_train")


def _restore(state: GANState, noise: torch.Generator, payload: dict, settings: dict, path) -> None:
    saved = payload["settings"]
    diff = {k: (saved.get(k), settings.get(k)) for k in _RESUME_KEYS if saved.get(k) != settings.get(k)}
    if diff:
        raise ValueError(f"Cannot resume from {path}: it was trained with other settings "
                         + ", ".join(f"{k}={a!r} (now {b!r})" for k, (a, b) in diff.items())
                         + ". Use the same settings or another checkpoint path.")
    state.gan.generator.load_state_dict(payload["generator"])
    state.gan.discriminator.load_state_dict(payload["discriminator"])
    if state.ema is not None:
        state.ema.load_state_dict(payload["ema"])
    state.opt_g.load_state_dict(payload["opt_g"])
    state.opt_d.load_state_dict(payload["opt_d"])
    noise.set_state(payload["noise_rng"].cpu())
    state.step = int(payload["step"])
    state.history = pd.DataFrame(payload["history"]).to_dict(orient="records")


# ------------------------------------------------------------------------------------- recorders

def _record_steps(total: int, every: int) -> set:
    return {s for s in range(0, total + 1, max(1, every))} | {total}


class SnapshotRecorder(Callback):
    """Samples of fixed noise every ``every`` steps (and at steps 0 and the last), for the training GIF.

    Parameters
    ----------
    every : int
    n : int
        Images per snapshot (a square number gives a square grid).
    seed : int
        Seed of the fixed noise (and, for a conditional GAN, labels ``i % num_classes``).
    use_ema : bool

    Attributes
    ----------
    frames : list of (int, uint8 tensor (n, 28, 28))
        (step, images) pairs.
    """

    def __init__(self, every: int = 200, n: int = 64, seed: int = 0, use_ema: bool = True):
        self.every, self.n, self.seed, self.use_ema = every, n, seed, use_ema
        self.frames: list[tuple[int, torch.Tensor]] = []

    def _take(self, state: GANState) -> None:
        self.frames.append((state.step, sample(state.sampler(self.use_ema), self.n, labels=self._labels(state),
                                               seed=self.seed, device=state.device)))

    def _labels(self, state):
        return torch.arange(self.n) % state.gan.num_classes if state.gan.conditional else None

    def on_train_begin(self, state):
        """Plan the recording steps; take the first frame (step 0, or the step a resumed run starts at)."""
        self._steps = _record_steps(state.steps, self.every)
        if state.step in self._steps and not any(s == state.step for s, _ in self.frames):
            self._take(state)

    def on_batch_end(self, state):
        """Take a frame at the planned steps."""
        if state.step in self._steps:
            self._take(state)


class EvaluationRecorder(Callback):
    """Evaluate samples every ``every`` steps (and at the last step): the quality table over training.

    Parameters
    ----------
    classifier : nn.Module
        The judge (e.g. :func:`mnistlab.load_pretrained`).
    reference : ImageSet or uint8 tensor
        Real images the Frechet distance compares against (the test set).
    every : int
    n : int
        Samples per evaluation (the Frechet distance depends on ``n``: compare it with a floor
        computed on the same number of images).
    seed : int
    use_ema : bool
    frechet : FrechetDistance, optional
        Reuse one already built on ``reference`` (its statistics are computed once).

    Attributes
    ----------
    rows : list of dict
        One dict of :func:`evaluate_samples` numbers (plus ``step``, ``elapsed``) per evaluation.
    """

    def __init__(self, classifier: nn.Module, reference=None, every: int = 500, n: int = 2000, seed: int = 0,
                 use_ema: bool = True, frechet: FrechetDistance | None = None):
        if reference is None and frechet is None:
            raise ValueError("EvaluationRecorder needs reference images or a FrechetDistance (frechet=).")
        self.classifier, self.every, self.n, self.seed, self.use_ema = classifier, every, n, seed, use_ema
        self.frechet = frechet if frechet is not None else FrechetDistance(classifier, reference)
        self.rows: list[dict] = []

    def on_train_begin(self, state):
        """Plan the evaluation steps (every ``every`` and the last)."""
        self._steps = _record_steps(state.steps, self.every) - {0}

    def on_batch_end(self, state):
        """Judge ``n`` fresh samples at the planned steps."""
        if state.step in self._steps:
            row = evaluate_samples(state.sampler(self.use_ema), self.classifier, n=self.n, seed=self.seed,
                                   frechet=self.frechet, device=state.device)
            self.rows.append({"step": state.step, "elapsed": state.logs.get("elapsed"), **row})

    @property
    def table(self) -> pd.DataFrame:
        """The evaluations as a DataFrame, one row per step."""
        return pd.DataFrame(self.rows)


# -------------------------------------------------------------------------------------- sampling

def to_unit(images: torch.Tensor) -> torch.Tensor:
    """Generator output in [-1, 1] (B, 1, 28, 28) -> uint8 images (B, 28, 28)."""
    return ((images.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)[:, 0]


def _generator_of(source, use_ema: bool = True) -> nn.Module:
    if isinstance(source, (GANRun, GANState)):
        return source.sampler(use_ema)
    if isinstance(source, GAN):
        return source.generator
    return source


@torch.no_grad()
def sample(source, n: int, labels=None, seed: int = 0, z: torch.Tensor | None = None, batch_size: int = 1000,
           device=None, use_ema: bool = True) -> torch.Tensor:
    """Draw ``n`` images as uint8 (n, 28, 28) on the CPU.

    Parameters
    ----------
    source : GANRun, GAN or generator module
        A :class:`GANRun` samples its EMA generator unless ``use_ema=False``.
    n : int
    labels : int array (n,), optional
        Requested classes (conditional generators only; default ``arange(n) % num_classes``).
    seed : int
        Seed of the noise (ignored when ``z`` is given).
    z : tensor (n, nz), optional
    batch_size : int
    device : optional
        Default: where the generator's weights are.
    """
    g = _generator_of(source, use_ema)
    dev = torch.device(device) if device is not None else next(g.parameters()).device
    if z is None:
        z = torch.randn(n, g.nz, generator=torch.Generator().manual_seed(seed))
    if g.num_classes:
        labels = torch.arange(n) % g.num_classes if labels is None else torch.as_tensor(labels).long()
        if len(labels) != n:
            raise ValueError(f"labels has {len(labels)} entries for n={n} samples.")
    elif labels is not None:
        raise ValueError("labels were given but the generator is unconditional.")
    was_training = g.training
    g.eval()
    try:
        out = [to_unit(g(z[i:i + batch_size].to(dev), None if labels is None else labels[i:i + batch_size].to(dev))).cpu()
               for i in range(0, n, batch_size)]
    finally:
        g.train(was_training)
    return torch.cat(out)


def slerp(z0: torch.Tensor, z1: torch.Tensor, steps: int) -> torch.Tensor:
    """Spherical interpolation (Shoemake 1985; White 2016 for GAN latents): ``steps`` points from z0 to z1.

    Gaussian noise concentrates near a sphere, so the straight line between two noise vectors
    passes through unusually short vectors; the great-circle path keeps their length typical.

    Returns
    -------
    tensor (steps, nz)
    """
    z0, z1 = z0.flatten().double(), z1.flatten().double()
    if steps < 2:
        raise ValueError(f"slerp needs steps >= 2, got {steps}.")
    cos = torch.dot(z0 / z0.norm(), z1 / z1.norm()).clamp(-1, 1)
    omega = torch.arccos(cos)
    t = torch.linspace(0, 1, steps, dtype=torch.float64)[:, None]
    if omega.abs() < 1e-6:  # (anti)parallel: fall back to the straight line
        return ((1 - t) * z0 + t * z1).float()
    return ((torch.sin((1 - t) * omega) * z0 + torch.sin(t * omega) * z1) / torch.sin(omega)).float()


def interpolate(source, steps: int = 10, seed: int = 0, label: int | None = None, use_ema: bool = True) -> torch.Tensor:
    """Images along the spherical path between two random noise vectors: uint8 (steps, 28, 28).

    ``label`` fixes the class for a conditional generator (default 0).
    """
    g = _generator_of(source, use_ema)
    z = torch.randn(2, g.nz, generator=torch.Generator().manual_seed(seed))
    labels = torch.full((steps,), 0 if label is None else int(label)) if g.num_classes else None
    return sample(g, steps, labels=labels, z=slerp(z[0], z[1], steps))


def class_grid(source, per_class: int = 10, seed: int = 0, use_ema: bool = True) -> torch.Tensor:
    """Conditional samples, row = class, column = one noise vector shared by the whole column.

    Returns
    -------
    uint8 tensor (num_classes * per_class, 28, 28), row-major (class 0 first).
    """
    g = _generator_of(source, use_ema)
    if not g.num_classes:
        raise ValueError("class_grid needs a class-conditional generator (create_gan('cdcgan')).")
    z = torch.randn(per_class, g.nz, generator=torch.Generator().manual_seed(seed)).repeat(g.num_classes, 1)
    labels = torch.arange(g.num_classes).repeat_interleave(per_class)
    return sample(g, len(z), labels=labels, z=z)


# ------------------------------------------------------------------------------------ evaluation

class ClassifierFeatures(nn.Module):
    """The classifier's penultimate features of images, as a feature extractor for torchmetrics.

    Takes uint8 images (B, 28, 28) or (B, 1, 28, 28), or floats in [0, 1]; normalises them as the
    classifier declares (``preprocessing``) and returns ``classifier.features(x)`` (B, D). Always
    stays in eval mode (batch norm and dropout frozen).
    """

    def __init__(self, classifier: nn.Module):
        super().__init__()
        if not hasattr(classifier, "features"):
            raise TypeError(f"{type(classifier).__name__} has no features() method; use a model from "
                            "mnistlab.create_model or mnistlab.load_pretrained().")
        self.classifier = classifier.eval()
        pre = preprocessing_of(classifier)
        self.mean, self.std = pre.mean, pre.std
        with torch.no_grad():
            self.num_features = int(self.forward(torch.zeros(1, 28, 28, dtype=torch.uint8)).shape[1])

    def train(self, mode: bool = True) -> "ClassifierFeatures":
        """Stay in eval mode whatever is asked (torchmetrics must not switch batch norm to batch statistics)."""
        return super().train(False)

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Features (B, D) of uint8 or [0, 1] float images (B, 28, 28) or (B, 1, 28, 28)."""
        dev = next(self.classifier.parameters()).device
        x = images.to(dev)
        x = x.float().div(255.0) if x.dtype == torch.uint8 else x.float()
        if x.ndim == 3:
            x = x.unsqueeze(1)
        return self.classifier.features((x - self.mean) / self.std).float().flatten(1)


def _u8(images) -> torch.Tensor:
    if isinstance(images, ImageSet):
        return images.images
    t = torch.as_tensor(images)
    return as_imageset(t).images if t.dtype != torch.uint8 or t.ndim == 4 else t


class FrechetDistance:
    """Frechet distance to a fixed reference set in the classifier's feature space (torchmetrics FID).

    The reference statistics are computed once; each call adds one set of images and returns the
    distance ``|mu_r - mu_g|^2 + Tr(S_r + S_g - 2 (S_r S_g)^(1/2))`` between Gaussian fits of the
    two sets' penultimate features. Not comparable to Inception FID values.

    Parameters
    ----------
    classifier : nn.Module
    reference : ImageSet or uint8 tensor (N, 28, 28)
    batch_size : int
    """

    def __init__(self, classifier: nn.Module, reference, batch_size: int = 1000):
        from torchmetrics.image.fid import FrechetInceptionDistance

        self.extractor = ClassifierFeatures(classifier)
        self.batch_size = batch_size
        self.metric = FrechetInceptionDistance(feature=self.extractor, reset_real_features=False)
        self.metric.to(next(classifier.parameters()).device)
        ref = _u8(reference)
        self.n_reference = len(ref)
        for i in range(0, len(ref), batch_size):
            self.metric.update(ref[i:i + batch_size], real=True)

    def __call__(self, images) -> float:
        """Distance between ``images`` (uint8 (N, 28, 28), N >= 2) and the reference set."""
        images = _u8(images)
        if len(images) < 2:
            raise ValueError("The Frechet distance needs at least 2 images (a covariance).")
        self.metric.reset()  # keeps the reference statistics (reset_real_features=False)
        for i in range(0, len(images), self.batch_size):
            self.metric.update(images[i:i + self.batch_size], real=False)
        return float(self.metric.compute())


def frechet_distance(images, reference, classifier: nn.Module) -> float:
    """Frechet distance between two image sets in ``classifier``'s penultimate feature space.

    ≈ 0 for a set against itself; grows as the sets' feature statistics part.
    """
    return FrechetDistance(classifier, reference)(images)


def class_histogram(probs: np.ndarray, num_classes: int | None = None) -> pd.DataFrame:
    """Counts and shares of the classes the classifier assigns (argmax of ``probs`` (N, C))."""
    probs = np.asarray(probs)
    k = num_classes or probs.shape[1]
    counts = np.bincount(probs.argmax(1), minlength=k)
    return pd.DataFrame({"class": np.arange(k), "count": counts, "share": counts / counts.sum()})


def evaluate_samples(source, classifier: nn.Module, n: int = 10000, seed: int = 0, frechet: FrechetDistance | None = None,
                     device=None, use_ema: bool = True, images=None, requested=None) -> dict:
    """Judge ``n`` samples with the classifier.

    Parameters
    ----------
    source : GANRun, GAN or generator, or None with ``images`` given
        A conditional generator is asked for ``i % num_classes`` (balanced classes).
    classifier : nn.Module
    n, seed : int
    frechet : FrechetDistance, optional
        Adds ``frechet`` (distance to its reference set) to the result.
    images, requested : optional
        Judge these uint8 images (and requested labels) instead of sampling.

    Returns
    -------
    dict
        ``n``; ``coverage`` (classes holding at least 1% of the samples); ``kl_uniform`` (KL divergence
        of the class histogram from uniform, nats); ``min_share``, ``max_share``,
        ``max_share_deviation`` (largest |share - 1/C|); ``mean_confidence`` (mean top
        probability); ``cond_accuracy`` (fraction classified as requested, NaN if unconditional);
        ``frechet`` (NaN without ``frechet``); ``shares`` (list of the C class shares).
    """
    if images is None:
        g = _generator_of(source, use_ema)
        if g.num_classes and requested is None:
            requested = torch.arange(n) % g.num_classes
        images = sample(g, n, labels=requested if g.num_classes else None, seed=seed, device=device)
    images = _u8(images)
    probs = predict(classifier, images)
    hist = class_histogram(probs)
    share = hist["share"].to_numpy()
    k = len(share)
    nz = share[share > 0]
    pred = probs.argmax(1)
    return {
        "n": int(len(images)),
        "coverage": int((share >= 0.01).sum()),
        "kl_uniform": float((nz * np.log(nz * k)).sum()),
        "min_share": float(share.min()), "max_share": float(share.max()),
        "max_share_deviation": float(np.abs(share - 1 / k).max()),
        "mean_confidence": float(probs.max(1).mean()),
        "cond_accuracy": float((pred == np.asarray(requested)).mean()) if requested is not None else float("nan"),
        "frechet": frechet(images) if frechet is not None else float("nan"),
        "shares": [float(s) for s in share],
    }


def evaluate_run(run, classifier: nn.Module, reference, n: int = 10000, seed: int = 1, use_ema: bool = True,
                 frechet: FrechetDistance | None = None) -> dict:
    """:func:`evaluate_samples` of ``n`` fresh samples with the Frechet distance to ``reference``.

    ``seed`` defaults to 1 so the final judgement uses other noise than the snapshots (seed 0).
    """
    frechet = frechet or FrechetDistance(classifier, reference)
    return evaluate_samples(run, classifier, n=n, seed=seed, frechet=frechet, use_ema=use_ema)


def degrade(images, kind: str, amount: float, seed: int = 0) -> torch.Tensor:
    """A damaged copy of uint8 images: ``"blur"`` (Gaussian, sigma = amount pixels) or ``"noise"`` (std = amount, pixels in [0, 1]).

    Uses torchvision's ``gaussian_blur``; noise is seeded.
    """
    x = _u8(images).float().div(255.0).unsqueeze(1)
    if kind == "blur":
        from torchvision.transforms.functional import gaussian_blur

        k = 2 * math.ceil(3 * amount) + 1
        x = gaussian_blur(x, [k, k], [amount, amount])
    elif kind == "noise":
        x = x + amount * torch.randn(x.shape, generator=torch.Generator().manual_seed(seed))
    else:
        raise ValueError(f"kind must be 'blur' or 'noise', not {kind!r}.")
    return (x.clamp(0, 1) * 255).round().to(torch.uint8)[:, 0]


def reference_distances(train, test, classifier: nn.Module, n: int | None = None, blur: float = 1.0,
                        noise: float = 0.3, seed: int = 0, frechet: FrechetDistance | None = None) -> pd.DataFrame:
    """Frechet distances of real image sets to the test set: the scale that gives GAN numbers meaning.

    Rows: ``train vs test`` (two independent real samples: the floor a perfect generator reaches
    with the same number of images), ``test blurred vs test`` and ``test + noise vs test``.

    Parameters
    ----------
    train, test : ImageSet or uint8 tensors
    classifier : nn.Module
    n : int, optional
        Images per compared set (default all of ``test``); use the number of samples the GAN is judged on.
    blur, noise : float
        Gaussian blur sigma in pixels; noise std on [0, 1] pixels.
    frechet : FrechetDistance, optional
        Reuse one built on ``test``.

    Returns
    -------
    pandas.DataFrame
        Columns ``reference``, ``n``, ``frechet``.
    """
    test_u8, train_u8 = _u8(test), _u8(train)
    frechet = frechet or FrechetDistance(classifier, test_u8)
    n = min(n or len(test_u8), len(test_u8), len(train_u8))
    rng = torch.Generator().manual_seed(seed)
    pick_train = train_u8[torch.randperm(len(train_u8), generator=rng)[:n]]
    pick_test = test_u8[torch.randperm(len(test_u8), generator=rng)[:n]]
    rows = [("train vs test (floor)", frechet(pick_train)),
            (f"test blurred (sigma {blur:g} px) vs test", frechet(degrade(pick_test, "blur", blur))),
            (f"test + noise (std {noise:g}) vs test", frechet(degrade(pick_test, "noise", noise, seed)))]
    return pd.DataFrame({"reference": [r for r, _ in rows], "n": n, "frechet": [v for _, v in rows]})


def precision_recall_available() -> bool:
    """True if torch-fidelity (the maintained implementation of Kynkaanniemi et al. 2019) is installed."""
    try:
        import torch_fidelity.metric_prc  # noqa: F401
    except ImportError:
        return False
    return True


def precision_recall(real_features, fake_features, k: int = 3) -> dict:
    """Improved precision and recall (Kynkaanniemi et al. 2019) of feature sets, via torch-fidelity.

    Precision: fraction of generated samples inside the k-NN manifold of the real ones (quality);
    recall: fraction of real samples inside the k-NN manifold of the generated ones (diversity).

    Parameters
    ----------
    real_features, fake_features : arrays (N, D)
        E.g. :func:`mnistlab.features` of the judge on test images and on samples.
    k : int
        Neighbourhood size (3 as in the paper).

    Returns
    -------
    dict
        ``precision``, ``recall``, ``f_score``.

    Raises
    ------
    ImportError
        torch-fidelity is not installed (``pip install torch-fidelity``).
    """
    try:
        from torch_fidelity.metric_prc import prc_features_to_metric
    except ImportError as exc:
        raise ImportError("precision_recall needs torch-fidelity (the maintained implementation of "
                          "Kynkaanniemi et al. 2019): pip install torch-fidelity") from exc
    real = torch.as_tensor(np.asarray(real_features), dtype=torch.float32)
    fake = torch.as_tensor(np.asarray(fake_features), dtype=torch.float32)
    # torch-fidelity's order is (generated, real): precision is measured on its first argument
    out = prc_features_to_metric(fake, real, prc_neighborhood=k, prc_batch_size=10000, save_cpu_ram=True,
                                 verbose=False)
    return {key: float(out[key]) for key in ("precision", "recall", "f_score")}


def nearest_train_distances(samples, train, test, n: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Memorisation check: pixel distance of each sample, and of each test image, to its nearest training image.

    A generator that copies training digits puts its samples closer to the training set than
    unseen test digits are; a healthy one gives a distribution like (or above) test -> train.

    Parameters
    ----------
    samples : uint8 images, or dict name -> uint8 images
        One set (source "samples") or several named sets (e.g. one per GAN).
    train, test : uint8 images (ImageSet or tensors)
    n : int
        How many images of each set to query (random subsets).

    Returns
    -------
    pandas.DataFrame
        Columns ``source`` (the set's name, or "test"), ``index`` (in its set), ``distance``
        (Euclidean, pixels in [0, 1]), ``train_index`` (the nearest training image).
    """
    from sklearn.neighbors import NearestNeighbors

    def flat(x):
        x = _u8(x)
        return x.reshape(len(x), -1).float().div(255.0).numpy()

    index = NearestNeighbors(n_neighbors=1).fit(flat(train))
    rng = np.random.default_rng(seed)
    sets = dict(samples) if isinstance(samples, dict) else {"samples": samples}
    if "test" in sets:
        raise ValueError("'test' is reserved for the held-out reference; name the sample sets otherwise.")
    frames = []
    for name, images in (*sets.items(), ("test", test)):
        images = _u8(images)
        pick = np.sort(rng.choice(len(images), size=min(n, len(images)), replace=False))
        dist, idx = index.kneighbors(flat(images[torch.as_tensor(pick)]))
        frames.append(pd.DataFrame({"source": name, "index": pick, "distance": dist[:, 0], "train_index": idx[:, 0]}))
    return pd.concat(frames, ignore_index=True)


def check_targets(unconditional: dict, conditional: dict, floor: float, train_seconds: float,
                  budget_seconds: float = 600.0, share_tolerance: float = 0.03, frechet_factor: float = 5.0,
                  accuracy: float = 0.95, moonshot: float = 0.98) -> pd.DataFrame:
    """The notebook's targets, each met or not from the computed numbers.

    Parameters
    ----------
    unconditional, conditional : dict
        :func:`evaluate_samples` results (with ``frechet``) of the two GANs.
    floor : float
        Train-vs-test Frechet distance on as many images as the samples.
    train_seconds : float
        Training time of both GANs together.

    Returns
    -------
    pandas.DataFrame
        Columns ``target``, ``value``, ``goal``, ``met``.
    """
    worst = unconditional["max_share_deviation"]
    ratio = lambda r: r["frechet"] / floor if floor > 0 else float("inf")
    rows = [
        ("conditional samples classified as requested", conditional["cond_accuracy"], f">= {accuracy:.0%}",
         conditional["cond_accuracy"] >= accuracy),
        ("moonshot: conditional accuracy", conditional["cond_accuracy"], f">= {moonshot:.0%}",
         conditional["cond_accuracy"] >= moonshot),
        ("every class share of unconditional samples: largest |share - 10%|", worst,
         f"<= {share_tolerance:.0%}", worst <= share_tolerance),
        ("unconditional Frechet distance / train-vs-test floor", ratio(unconditional), f"<= {frechet_factor:g}",
         ratio(unconditional) <= frechet_factor),
        ("conditional Frechet distance / train-vs-test floor", ratio(conditional), f"<= {frechet_factor:g}",
         ratio(conditional) <= frechet_factor),
        ("training seconds, both GANs", train_seconds, f"<= {budget_seconds:g}", train_seconds <= budget_seconds),
    ]
    return pd.DataFrame(rows, columns=["target", "value", "goal", "met"])


def diagnose(history: pd.DataFrame, window: int = 200) -> dict:
    """Read the health of a run from the last ``window`` steps of its history.

    Returns
    -------
    dict
        ``d_real``, ``d_fake``, ``loss_d``, ``loss_g`` (means over the window), ``gap``
        (D(x) - D(G(z))) and ``verdict``: ``"discriminator wins"`` (D(G(z)) < 0.05: the generator's
        gradient vanishes, the usual prelude to collapse), ``"generator fools D"`` (D(G(z)) > D(x):
        the discriminator has stopped learning), or ``"healthy"`` (both outputs away from 0 and 1,
        D(x) above D(G(z))), with ``reason`` saying which numbers decided it.
    """
    if history.empty:
        raise ValueError("diagnose needs a history with at least one step.")
    tail = history.tail(window)
    m = {k: float(tail[k].mean()) for k in ("d_real", "d_fake", "loss_d", "loss_g")}
    m["gap"] = m["d_real"] - m["d_fake"]
    m["window"] = int(len(tail))
    if m["d_fake"] < 0.05:
        m["verdict"], m["reason"] = "discriminator wins", f"D(G(z)) = {m['d_fake']:.3f} < 0.05"
    elif m["gap"] < 0:
        m["verdict"], m["reason"] = "generator fools D", f"D(G(z)) = {m['d_fake']:.2f} > D(x) = {m['d_real']:.2f}"
    else:
        m["verdict"] = "healthy"
        m["reason"] = (f"D(x) = {m['d_real']:.2f} and D(G(z)) = {m['d_fake']:.2f} stay away from 0 and 1, "
                       f"D(x) above D(G(z)) by {m['gap']:.2f}")
    return m
