"""GAN training: the losses, the loop, the moving average of the generator, resuming, the sample recorder.

:func:`train_gan` receives a :class:`~mnistlab.training.gan_config.GANConfig` (the one description of a
GAN run) and the training images, and reads the config in one place. Two Adam optimizers, the
non-saturating or hinge loss, an exponential moving average (EMA) of the generator's weights that
sampling uses by default, bfloat16 autocast on CUDA, the callback hooks of :func:`mnistlab.fit`
(:class:`~mnistlab.training.callbacks.Callback`), NaN detection naming the step, and checkpoints in
the one format (:func:`~mnistlab.training.checkpoint.save_checkpoint`: both nets, the config, and as
training state both optimizers, the EMA, the step and the noise RNG; read with ``weights_only=True``),
so a resumed run takes exactly the step the uninterrupted run would have.

Example
-------
>>> import mnistlab as ml                                                  # doctest: +SKIP
>>> cfg = ml.GAN_RECIPES["sngan"].but(gan="cdcgan", steps=3000)
>>> run = ml.train_gan(cfg, ml.load_dataset("mnist", "train"))
>>> images = ml.sample_gan(run, 16)                                        # uint8 (16, 28, 28)
"""
from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from ..data import ImageSet, as_imageset
from ..models.gan import GAN
from .callbacks import Callback
from .checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from .gan_config import RECIPES, GANConfig, as_gan_config
from .loop import TrainingError, resolve_device

__all__ = ["LOSSES", "RECIPES", "GANConfig", "GANState", "GANRun", "train_gan", "load_gan", "GANSampleRecorder",
           "record_steps", "to_unit", "sample", "equilibrium"]


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
"""GAN losses by name, as (discriminator loss(real logits, fake logits), generator loss(fake logits)):
``"ns"`` (non-saturating, Goodfellow et al. 2014) and ``"hinge"`` (Lim & Ye 2017)."""


def equilibrium(loss: str) -> tuple[float, float]:
    """(loss_D, loss_G) where the discriminator cannot tell real from fake: every logit 0, so D = 0.5.

    Parameters
    ----------
    loss : "ns" or "hinge"

    Returns
    -------
    (float, float)
        Non-saturating: (2 ln 2, ln 2); hinge: (2, 0).

    Raises
    ------
    ValueError
        Unknown loss.
    """
    if loss not in LOSSES:
        raise ValueError(f"loss must be one of {sorted(LOSSES)}, not {loss!r}.")
    d_loss, g_loss = LOSSES[loss]
    zero = torch.zeros(1)
    return float(d_loss(zero, zero)), float(g_loss(zero))


# ------------------------------------------------------------------------------------ train state

class _Sampling:
    """``sampler()`` for what holds a ``gan``, its ``ema`` and a ``device``: :class:`GANState` and :class:`GANRun`."""

    def sampler(self, use_ema: bool = True) -> nn.Module:
        """The generator to sample from now: a recalibrated EMA copy (default) or the raw generator.

        Parameters
        ----------
        use_ema : bool
            The EMA of the generator's weights (its batch-norm statistics recalibrated on a copy),
            where the run keeps one; else the raw generator.

        Returns
        -------
        nn.Module
            In eval mode; training is not disturbed.
        """
        return _sampler(self.gan, self.ema, use_ema, self.device)


@dataclass
class GANState(_Sampling):
    """What GAN callbacks see (the hook names are those of :func:`mnistlab.fit`).

    ``step`` counts finished training steps (one discriminator and one generator update); in
    ``on_batch_end`` it includes the current one. ``logs`` holds the last step's numbers
    (``loss_d``, ``loss_g``, ``d_real``, ``d_fake``, ``seconds``, ``elapsed``). ``model`` is the
    GAN, as :class:`~mnistlab.training.callbacks.TrainState` names it.
    """

    gan: GAN
    config: GANConfig
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
        """The GAN (the name :func:`mnistlab.fit`'s callbacks expect)."""
        return self.gan


@dataclass
class GANRun(_Sampling):
    """A trained GAN: the pair, its config, the EMA generator, the per-step history.

    Attributes
    ----------
    gan : GAN
    config : GANConfig
        What was trained.
    ema : AveragedModel or None
        Exponential moving average of the generator's weights.
    history : pandas.DataFrame
        One row per step: step, epoch, loss_d, loss_g, d_real, d_fake (mean discriminator
        probability that a real / generated batch is real, before the step's update), seconds,
        elapsed (cumulative training seconds, evaluation and checkpoints not counted).
    device : torch.device
    seed : int
    n_train : int
        Images trained on.
    checkpoint : pathlib.Path or None
        The checkpoint file the run was saved to or loaded from (with its training state: it can
        be resumed, ``train_gan(..., checkpoint=..., resume=True)``); ``None`` if it was not saved.
    """

    gan: GAN
    config: GANConfig
    ema: Any
    history: pd.DataFrame
    device: torch.device
    seed: int = 0
    n_train: int = 0
    checkpoint: Path | None = None

    @property
    def train_seconds(self) -> float:
        """Training time in seconds (the last ``elapsed``)."""
        return float(self.history["elapsed"].iloc[-1]) if len(self.history) else 0.0

    @property
    def steps(self) -> int:
        """Number of finished training steps."""
        return int(self.history["step"].iloc[-1]) if len(self.history) else 0

    @property
    def steps_per_second(self) -> float:
        """Training steps per second of training time (NaN before the first step)."""
        return self.steps / self.train_seconds if self.train_seconds > 0 else float("nan")


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

def _training_state(state: GANState) -> dict:
    return {"ema": state.ema.state_dict() if state.ema is not None else None,
            "opt_g": state.opt_g.state_dict(), "opt_d": state.opt_d.state_dict(), "step": int(state.step),
            "noise_rng": state.noise.get_state() if state.noise is not None else None}


def _save(path, state: GANState, seed: int, n_train: int) -> Path:
    return save_checkpoint(path, state.gan, config=state.config, history=pd.DataFrame(state.history),
                           state=_training_state(state), seed=seed, n_train=n_train)


def _read(path, device="cpu"):
    ckpt = load_checkpoint(path, device=device)
    if ckpt.kind != "gan":
        raise CheckpointError(f"{path} holds a classifier ({ckpt.name!r}), not a GAN.")
    if ckpt.config is None:
        raise CheckpointError(f"{path} holds a GAN without its GANConfig; it cannot be resumed or sampled as a run.")
    return ckpt


def load_gan(path, device="cpu") -> GANRun:
    """Load a GAN checkpoint written by :func:`train_gan` (``load_checkpoint``, ``weights_only=True``) for sampling.

    Parameters
    ----------
    path : path
    device : str or torch.device

    Returns
    -------
    GANRun
        The GAN and its EMA in eval mode, the config, and the history up to the saved step.

    Raises
    ------
    FileNotFoundError
        No file at ``path``.
    CheckpointError
        Truncated, corrupt, a classifier's checkpoint, or a GAN saved without its config.
    """
    ckpt = _read(path, device)
    gan, config = ckpt.model, ckpt.config
    ema = _make_ema(gan.generator, config.ema_decay)
    if ema is not None and ckpt.state.get("ema") is not None:
        ema.load_state_dict(ckpt.state["ema"])
    dev = torch.device(device)
    if ema is not None:
        ema.to(dev)
    return GANRun(gan, config, ema, ckpt.history, dev, seed=int(ckpt.extra.get("seed", 0)),
                  n_train=int(ckpt.extra.get("n_train", 0)), checkpoint=Path(path))


def _restore(state: GANState, path, seed: int, n_train: int) -> None:
    ckpt = _read(path, state.device)
    saved = {**ckpt.config.recipe(), "seed": ckpt.extra.get("seed"), "n_train": ckpt.extra.get("n_train")}
    now = {**state.config.recipe(), "seed": seed, "n_train": n_train}
    diff = {k: (saved.get(k), now[k]) for k in now if k not in ("steps", "epochs") and saved.get(k) != now[k]}
    if diff:
        raise ValueError(f"Cannot resume from {path}: it was trained with other settings "
                         + ", ".join(f"{k}={a!r} (now {b!r})" for k, (a, b) in diff.items())
                         + ". Use the same settings or another checkpoint path.")
    s = ckpt.state
    state.gan.load_state_dict(ckpt.model.state_dict())
    if state.ema is not None:
        state.ema.load_state_dict(s["ema"])
    state.opt_g.load_state_dict(s["opt_g"])
    state.opt_d.load_state_dict(s["opt_d"])
    state.noise.set_state(s["noise_rng"].cpu())
    state.step = int(s["step"])
    state.history = ckpt.history.to_dict(orient="records")


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


def _training_images(config: GANConfig, data) -> ImageSet:
    """The images the config asks for, or a clear error when the data handed in cannot give them."""
    given = getattr(data, "dataset", None) if isinstance(data, ImageSet) else None
    if given is not None and given != config.dataset:
        raise ValueError(f"The config says dataset={config.dataset!r} but the images handed in are {given!r}: "
                         f"load them with ml.load_dataset({config.dataset!r}, 'train') or set dataset={given!r}.")
    data = as_imageset(data, dataset=config.dataset)
    if config.train_limit is not None:
        if len(data) < config.train_limit:
            raise ValueError(f"The config says train_limit={config.train_limit} but only {len(data)} images were "
                             "handed in; hand in more images or lower train_limit.")
        data = ImageSet(data.images[:config.train_limit], data.labels[:config.train_limit], data.dataset)
    if len(data) < config.batch_size:
        raise ValueError(f"train_gan needs at least batch_size={config.batch_size} images, got {len(data)}; "
                         "lower batch_size.")
    return data


def train_gan(config, data, *, gan: GAN | None = None, callbacks: Iterable = (), device="auto",
              amp: bool | None = None, seed: int = 0, progress: bool = True, checkpoint=None,
              checkpoint_every: int | None = None, resume: bool = False) -> GANRun:
    """Train the GAN a :class:`GANConfig` describes; return the trained pair, its EMA and the per-step history.

    Parameters
    ----------
    config : GANConfig or dict of its fields
        The run: nets, length, batch size, optimizers, loss, EMA, dataset and ``train_limit``.
    data : ImageSet, (images, labels) or uint8 tensor (N, 28, 28)
        Training images (labels are used by a conditional GAN); an ImageSet must be of
        ``config.dataset``; with ``train_limit`` its first ``train_limit`` images are used.
    gan : GAN, optional
        The pair to train (default ``config.build_gan(seed)``); it must be what the config describes.
    callbacks : list
        :class:`~mnistlab.training.callbacks.Callback` objects (or any object with some of
        ``on_train_begin``, ``on_epoch_begin``, ``on_after_backward`` (after the generator's
        backward pass, before its optimizer step), ``on_batch_end``, ``on_epoch_end``,
        ``on_train_end`` (also called when training raises)); each receives the :class:`GANState`.
        Setting ``state.stop = True`` ends training after the step.
    device : "auto", "cpu", "cuda", ...
    amp : bool, optional
        bfloat16 autocast; default on for CUDA, off elsewhere.
    seed : int
        Seeds the initial weights (when ``gan`` is not given), the data order and the noise (the
        global RNG is not touched): the same seed gives the same numbers on the CPU.
    progress : bool
        tqdm progress bar over steps.
    checkpoint : path, optional
        Where to write checkpoints (atomically, :func:`save_checkpoint`): every ``checkpoint_every``
        steps and at the end.
    checkpoint_every : int, optional
    resume : bool
        Continue from ``checkpoint`` if the file exists (same config but for its length, same seed
        and number of images required).

    Returns
    -------
    GANRun

    Raises
    ------
    TrainingError
        A loss became NaN or infinite (the message names the step and what to change).
    ValueError
        Bad arguments, data that disagree with the config, a ``gan`` that is not the config's, or
        ``resume`` with a checkpoint of other settings.
    """
    config = as_gan_config(config)
    if resume and checkpoint is None:
        raise ValueError("resume=True needs checkpoint=PATH (the file to continue from).")
    data = _training_images(config, data)
    gan = gan if gan is not None else config.build_gan(seed)
    spec = getattr(gan, "config", {}) or {}
    if spec.get("name") != config.gan or {**config.gan_kwargs, **spec.get("kwargs", {})} != config.gan_kwargs:
        raise ValueError(f"The GAN handed in ({spec.get('name')!r} {spec.get('kwargs')}) is not the one the config "
                         f"describes ({config.gan!r} {config.gan_kwargs}); build it with config.build_gan(seed).")
    n = len(data)
    bs = config.batch_size
    steps_per_epoch = n // bs  # drop_last: every batch is full (batch norm, fixed shapes)
    total = config.total_steps(n)
    dev = resolve_device(device)
    use_amp = (dev.type == "cuda") if amp is None else bool(amp)
    if use_amp and dev.type != "cuda":
        raise ValueError("amp=True needs a CUDA device (bfloat16 autocast); use amp=None or False on the CPU.")
    lr_d = config.lr if config.lr_d is None else config.lr_d
    images, labels = data.images.to(dev), data.labels.to(dev)
    gan.to(dev).train()
    g, d = gan.generator, gan.discriminator
    opt_g = torch.optim.Adam(g.parameters(), lr=config.lr, betas=config.betas)
    opt_d = torch.optim.Adam(d.parameters(), lr=lr_d, betas=config.betas)
    ema = _make_ema(g, config.ema_decay)
    noise = torch.Generator().manual_seed(seed)
    state = GANState(gan=gan, config=config, ema=ema, opt_g=opt_g, opt_d=opt_d, device=dev, steps=total,
                     steps_per_epoch=steps_per_epoch, noise=noise)
    if resume and Path(checkpoint).is_file():
        _restore(state, checkpoint, seed, n)
    d_loss_fn, g_loss_fn = LOSSES[config.loss]
    autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=use_amp) if dev.type == "cuda" else _Null()
    callbacks = list(callbacks)
    elapsed = float(state.history[-1]["elapsed"]) if state.history else 0.0
    bar = tqdm(total=total, initial=state.step, desc=f"train {config.name}", unit="step", disable=not progress,
               leave=True)
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
            idx = order[pos * bs:(pos + 1) * bs]
            real = images[idx].unsqueeze(1).float().div_(127.5).sub_(1.0)  # uint8 -> [-1, 1]
            y_real = labels[idx] if gan.conditional else None
            z = torch.randn(bs, gan.nz, generator=noise).to(dev)
            y_fake = torch.randint(0, gan.num_classes, (bs,), generator=noise).to(dev) if gan.conditional else None
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
                    f"{values[0] if bad == 'discriminator' else values[1]}. Lower the learning rates (lr={config.lr}, "
                    f"lr_d={lr_d}), try loss='hinge' or spectral_norm=True, or resume from the last checkpoint.")
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
                _save(checkpoint, state, seed, n)
            if (state.step % steps_per_epoch == 0) or state.step == total:
                _call(callbacks, "on_epoch_end", state)
        if checkpoint is not None:
            _save(checkpoint, state, seed, n)
    finally:
        bar.close()
        _call(callbacks, "on_train_end", state)
    gan.eval()
    return GANRun(gan, config, ema, pd.DataFrame(state.history), dev, seed=seed, n_train=n,
                  checkpoint=None if checkpoint is None else Path(checkpoint))


class _Null:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


# -------------------------------------------------------------------------------------- sampling

def to_unit(images: torch.Tensor) -> torch.Tensor:
    """Generator output in [-1, 1] (B, 1, 28, 28) -> uint8 images (B, 28, 28).

    Parameters
    ----------
    images : tensor (B, 1, 28, 28)

    Returns
    -------
    uint8 tensor (B, 28, 28)
    """
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
    source : GANRun, GANState, GAN or generator module
        A run samples its EMA generator unless ``use_ema=False``.
    n : int
    labels : int array (n,), optional
        Requested classes (conditional generators only; default ``arange(n) % num_classes``).
    seed : int
        Seed of the noise (ignored when ``z`` is given).
    z : tensor (n, nz), optional
    batch_size : int
    device : optional
        Default: where the generator's weights are.
    use_ema : bool

    Returns
    -------
    uint8 tensor (n, 28, 28)

    Raises
    ------
    ValueError
        Labels for an unconditional generator, or as many labels as samples missing.
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


# ------------------------------------------------------------------------------------- recorder

def record_steps(total: int, every: int) -> set:
    """The steps a recorder acts at: 0, every ``every`` steps, and the last.

    Parameters
    ----------
    total, every : int

    Returns
    -------
    set of int
    """
    return {s for s in range(0, total + 1, max(1, every))} | {total}


class GANSampleRecorder(Callback):
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
        (step, images) pairs. A resumed run appends to the frames already held.

    Notes
    -----
    Like the classifiers' recorders it has an ``artifact_name`` and ``save_artifact`` /
    ``load_artifact``, so :func:`mnistlab.experiments.run_gan` keeps its frames beside the
    cached run and a cache hit fills it without training.
    """

    def __init__(self, every: int = 200, n: int = 64, seed: int = 0, use_ema: bool = True):
        self.every, self.n, self.seed, self.use_ema = every, n, seed, use_ema
        self.frames: list[tuple[int, torch.Tensor]] = []

    @property
    def artifact_name(self) -> str:
        """``gan-samples-<hash of every, n, seed, use_ema>``: the name of its file beside a cached run."""
        from .recorder import _settings_hash

        return "gan-samples-" + _settings_hash({"every": self.every, "n": self.n, "seed": self.seed,
                                                "use_ema": self.use_ema})

    def save_artifact(self, path) -> Path:
        """Write the frames to one ``.npz`` file at ``path`` (atomically); return the path."""
        import numpy as np

        from .recorder import _write_npz

        steps = np.asarray([s for s, _ in self.frames], dtype=np.int64)
        images = (torch.stack([f for _, f in self.frames]).numpy() if self.frames
                  else np.zeros((0, self.n, 28, 28), dtype=np.uint8))
        return _write_npz(Path(path), {"steps": steps, "images": images})

    def load_artifact(self, path) -> "GANSampleRecorder":
        """Replace the frames with those :meth:`save_artifact` wrote to ``path``; return the recorder."""
        import numpy as np

        with np.load(Path(path), allow_pickle=False) as z:
            if not {"steps", "images"} <= set(z.files):
                raise ValueError(f"{path} was not written by GANSampleRecorder.save_artifact (no steps/images).")
            self.frames = [(int(s), torch.from_numpy(im.copy())) for s, im in zip(z["steps"], z["images"])]
        return self

    def _take(self, state: GANState) -> None:
        labels = torch.arange(self.n) % state.gan.num_classes if state.gan.conditional else None
        self.frames.append((state.step, sample(state.sampler(self.use_ema), self.n, labels=labels, seed=self.seed,
                                               device=state.device)))

    def on_train_begin(self, state):
        """Plan the recording steps; take the first frame (step 0, or the step a resumed run starts at)."""
        self._steps = record_steps(state.steps, self.every)
        if state.step in self._steps and not any(s == state.step for s, _ in self.frames):
            self._take(state)

    def on_batch_end(self, state):
        """Take a frame at the planned steps."""
        if state.step in self._steps:
            self._take(state)
