"""The training loop: ``fit`` / ``evaluate`` / ``predict`` / ``features``.

``fit`` reads top to bottom like pytorch/examples' mnist: cut a batch, forward, loss, backward,
callbacks, step. It returns the history as a pandas DataFrame, one row per epoch. Callbacks (see
:mod:`mnistlab.training.callbacks`) are how early stopping, checkpoints and the weight/gradient
recorder hook in. Normalisation comes from the model's declared ``preprocessing``.
"""
from __future__ import annotations

import contextlib
import math
import time
from typing import Callable, Iterable, Mapping

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from .._util import eval_mode
from ..data.datasets import ImageSet, as_imageset
from ..data.loader import Augment, TensorLoader
from ..models.registry import Preprocessing, preprocessing_of
from .callbacks import Callback, TrainState
from .config import EVAL_BATCH_SIZE, TrainConfig, as_config
from .optim import DEFAULT_LR, make_optimizer, make_scheduler

__all__ = ["TrainingError", "resolve_device", "fit", "evaluate", "predict", "predict_classes", "features",
           "accuracy"]


class TrainingError(RuntimeError):
    """Raised when training cannot go on (the loss became NaN or infinite, or exploded: the run diverged)."""


DIVERGED = 100.0
"""A training loss this many times its start (or the loss of a uniform guess, if larger) is divergence."""


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` picks CUDA, then Apple MPS, then the CPU; anything else is checked and passed to ``torch.device``."""
    if device is None or str(device) == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"Unknown device {device!r}; use 'auto', 'cpu', 'cuda' or 'cuda:N'.") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device='cuda' was asked for but no CUDA GPU is available; use device='auto' or 'cpu'.")
    if dev.type not in ("cpu", "cuda", "mps"):
        raise ValueError(f"Unsupported device {device!r}; use 'auto', 'cpu', 'cuda' or 'mps'.")
    return dev


def accuracy(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Number of correct top-1 predictions in the batch (summed; ``fit`` divides by the count)."""
    return (logits.argmax(1) == y).sum()


def _rng_fork(device: torch.device):
    """Keep the caller's global RNG state: dropout draws from it inside ``fit``."""
    devices = [device.index or 0] if device.type == "cuda" else []
    return torch.random.fork_rng(devices=devices)


def _check_data(cfg: TrainConfig, data: ImageSet) -> None:
    """Refuse a config that says one thing about the data while another is handed in."""
    if cfg.dataset != data.dataset:
        raise ValueError(f"dataset = {cfg.dataset!r} but {data.dataset} images were handed in: pass the config's "
                         f"dataset, or set dataset={data.dataset!r} in the config.")
    if cfg.train_limit is not None and len(data) > cfg.train_limit:
        raise ValueError(f"train_limit = {cfg.train_limit} but {len(data):,} training images were handed in: pass "
                         f"train.head({cfg.train_limit}), or set train_limit=None (train_model and experiments.run "
                         "apply it when they load the data).")


def _default_config(model: nn.Module, data) -> TrainConfig:
    """``fit(model, train)`` without a config: the defaults, for the data's dataset and the model's normalisation."""
    pre = getattr(model, "preprocessing", None)
    norm = "standard"
    if isinstance(pre, Preprocessing):
        norm = pre.spec if pre.spec in ("standard", "unit", "symmetric") else [float(pre.mean), float(pre.std)]
    dataset = getattr(data, "dataset", "mnist")
    return TrainConfig(dataset=dataset, normalize=norm, model="logreg")


def _optimizer(model: nn.Module, cfg: TrainConfig):
    """The config's optimizer over the trainable parameters, in head/body groups when their rates differ."""
    if cfg.head_lr is None and cfg.body_lr is None:
        params = [p for p in model.parameters() if p.requires_grad]
    else:
        from ..models.surgery import param_groups

        lr = cfg.lr if cfg.lr is not None else DEFAULT_LR[cfg.optimizer]
        params = param_groups(model, {"features": cfg.body_lr or lr, "head": cfg.head_lr or lr})
    return make_optimizer(cfg.optimizer, params, lr=cfg.lr, weight_decay=cfg.weight_decay, momentum=cfg.momentum)


def fit(model: nn.Module, train, val=None, config: TrainConfig | Mapping | None = None, *,
        callbacks: Iterable[Callback] = (), loss_fn: Callable | None = None,
        metrics: Mapping[str, Callable] | None = None, device="auto", seed: int = 0,
        progress: bool = True) -> pd.DataFrame:
    """Train ``model`` as ``config`` says and return its history.

    Every training setting (epochs, optimizer, lr, batch size, schedule, weight decay, momentum,
    label smoothing, augmentation, normalisation, frozen layers, per-group rates, evaluation
    batch size) is read from ``config`` here, once.

    Parameters
    ----------
    model : nn.Module
        Any classifier taking (B, 1, 28, 28); typically from :func:`mnistlab.create_model` or
        ``config.build_model(seed)``.
    train, val : ImageSet, (images, labels) or TensorLoader
        Training data and optional validation data (evaluated after every epoch). Bare images
        (without labels) are refused.
    config : TrainConfig or dict, optional
        The run (:class:`mnistlab.TrainConfig`). ``None``: its defaults for the data's dataset and
        the model's declared normalisation. Used here: ``epochs`` (raised to reach ``min_steps``),
        ``optimizer``, ``lr``, ``momentum``, ``weight_decay``, ``batch_size``, ``scheduler``,
        ``gamma``, ``label_smoothing``, ``augment``, ``normalize`` (the model is trained with it and
        declares it afterwards; a "standard" normalisation takes the data's dataset constants),
        ``freeze``, ``head_lr``, ``body_lr`` and ``eval_batch_size``. ``dataset`` and
        ``train_limit`` must agree with ``train``; ``init_from`` with how the model was built.
    callbacks : list of Callback
    loss_fn : callable, optional
        ``loss_fn(logits, y) -> scalar``; default cross-entropy with the config's ``label_smoothing``.
    metrics : dict of name -> callable, optional
        ``metric(logits, y)`` returns the batch's *sum* (e.g. correct predictions); logged per
        epoch as ``train_<name>`` / ``val_<name>`` divided by the number of examples. Default
        ``{"acc": accuracy}``.
    device : "auto", "cpu", "cuda", ...
    seed : int
        Seeds shuffling, augmentation and dropout: the same seed gives the same history on the
        CPU. The caller's global RNG state is left as it was.
    progress : bool
        Show tqdm progress bars.

    Returns
    -------
    pandas.DataFrame
        Columns epoch, train_loss, train_<metric>..., val_loss, val_<metric>..., lr, seconds
        (training time of the epoch) and elapsed (cumulative training seconds).

    Raises
    ------
    TrainingError
        If the run diverges: the loss becomes NaN or infinite, or a batch's loss exceeds
        :data:`DIVERGED` (100) times the first batch's (or 100 times the loss of a uniform guess,
        ``log(classes)``, if that is larger). The loss is read where it always was, once per step,
        so the check adds no synchronisation. The message names the epoch and step.
    ValueError, TypeError
        Data that is not labelled images (see :func:`mnistlab.as_imageset`), no images at all, a
        config whose ``dataset``/``train_limit`` disagrees with the data, an ``init_from`` the
        model was not built from, or ``epochs=0`` (nothing to train).
    """
    is_loader = isinstance(train, TensorLoader)
    train_set = train if is_loader else _imageset(
        train, config.dataset if isinstance(config, TrainConfig) else "mnist", need_labels=True)
    # the config is parsed where it enters the package (a TrainConfig is already checked) and read here, once
    cfg = config if isinstance(config, TrainConfig) else (
        _default_config(model, train_set) if config is None else as_config(config))
    if cfg.epochs < 1:
        raise ValueError(f"epochs must be a positive integer, not {cfg.epochs!r} (epochs=0 is the untrained "
                         "baseline of train_model and experiments.run; fit has nothing to do).")
    if cfg.init_from is not None and getattr(model, "init_from", None) != cfg.init_from:
        raise ValueError(f"init_from = {cfg.init_from!r} but the model handed to fit was not built from it: build it "
                         "with config.build_model(seed) (train_model and experiments.run do), or set init_from=None.")
    if not is_loader:
        _check_data(cfg, train_set)
    dev = resolve_device(device)
    metrics = {"acc": accuracy} if metrics is None else dict(metrics)
    val_loss_fn = loss_fn  # validation reports plain cross-entropy unless a loss was given
    if loss_fn is None:
        def loss_fn(logits, y, smoothing=cfg.label_smoothing):
            return F.cross_entropy(logits, y, label_smoothing=smoothing)
    if is_loader:
        pre = Preprocessing.create((train.mean, train.std), train.dataset)
        loader = train
    else:
        norm = tuple(cfg.normalize) if isinstance(cfg.normalize, list) else cfg.normalize
        pre = Preprocessing.create(norm, train_set.dataset, preprocessing_of(model, train_set.dataset).input_size)
        loader = TensorLoader(train_set, batch_size=cfg.batch_size, shuffle=True, normalize=(pre.mean, pre.std),
                              augment=None if cfg.augment is None else Augment.from_dict(cfg.augment), device=dev,
                              seed=seed)
    model.to(dev)
    model.preprocessing = pre
    if cfg.freeze is not None:
        from ..models.surgery import freeze

        freeze(model, None if cfg.freeze == "features" else cfg.freeze)
    epochs = cfg.epochs if cfg.min_steps is None else max(cfg.epochs, math.ceil(cfg.min_steps / len(loader)))
    amp = torch.autocast("cuda", dtype=torch.bfloat16) if dev.type == "cuda" else contextlib.nullcontext()
    opt = _optimizer(model, cfg)
    sched, per_step = make_scheduler(cfg.scheduler, opt, epochs, len(loader), gamma=cfg.gamma)
    state = TrainState(model=model, optimizer=opt, device=dev, epochs=epochs, steps_per_epoch=len(loader),
                       scheduler=sched)
    callbacks = list(callbacks)
    columns = ["epoch", "train_loss", *[f"train_{m}" for m in metrics], "val_loss", *[f"val_{m}" for m in metrics],
               "lr", "seconds", "elapsed"]
    # channels-last convolutions: 1.35-2.4x faster steps on a 2-core CPU (benchmarks/memory_format.py)
    with _rng_fork(dev), channels_last(model) as use_cl:
        torch.manual_seed(seed)  # dropout and any other in-model randomness
        try:
            for cb in callbacks:
                cb.on_train_begin(state)
            _epochs(model, loader, val, opt, sched, per_step, loss_fn, val_loss_fn, metrics, callbacks, state, amp,
                    use_cl, progress, cfg.eval_batch_size)
        finally:
            for cb in callbacks:
                cb.on_train_end(state)
    return pd.DataFrame(state.history, columns=columns)


def _epochs(model, loader, val, opt, sched, per_step, loss_fn, val_loss_fn, metrics, callbacks, state, amp, use_cl,
            progress, eval_batch_size) -> None:
    dev, elapsed, first = state.device, 0.0, None
    bar = tqdm(range(1, state.epochs + 1), desc="epochs", unit="epoch", disable=not progress, leave=True)
    for epoch in bar:
        state.epoch = epoch
        model.train()
        for cb in callbacks:
            cb.on_epoch_begin(state)
        lr_now = opt.param_groups[0]["lr"]
        loss_sum = torch.zeros((), device=dev)
        sums = {m: torch.zeros((), device=dev) for m in metrics}
        seen = 0
        t0 = time.perf_counter()
        for i, (x, y) in enumerate(tqdm(loader, desc=f"epoch {epoch}", leave=False, disable=not progress)):
            if use_cl:
                x = x.contiguous(memory_format=torch.channels_last)
            with amp:
                logits = model(x)
                loss = loss_fn(logits.float(), y)
            value = float(loss.detach())  # the one host sync per step the loop always had
            if first is None:
                first = value
            if not math.isfinite(value) or value > DIVERGED * max(first, math.log(logits.shape[1])):
                how = "" if not math.isfinite(value) else f", over {DIVERGED:g} times its start ({first:.3g})"
                raise TrainingError(
                    f"Loss became {value:.3g} at epoch {epoch}, step {i + 1} (global step {state.step + 1}){how}: "
                    f"training diverged. Lower the learning rate (it was {opt.param_groups[0]['lr']:g}), check the "
                    "input normalisation, or add gradient clipping.")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            state.loss = loss.detach()
            for cb in callbacks:
                cb.on_after_backward(state)
            opt.step()
            if sched is not None and per_step:
                sched.step()
            state.step += 1
            loss_sum += loss.detach() * len(y)
            with torch.no_grad():
                for m, fn in metrics.items():
                    sums[m] += fn(logits.detach().float(), y)
            seen += len(y)
            for cb in callbacks:
                cb.on_batch_end(state)
        if sched is not None and not per_step:
            sched.step()
        seconds = time.perf_counter() - t0
        elapsed += seconds
        logs = {"epoch": epoch, "train_loss": loss_sum.item() / seen,
                **{f"train_{m}": float(v) / seen for m, v in sums.items()},
                "val_loss": np.nan, **{f"val_{m}": np.nan for m in metrics}, "lr": lr_now, "seconds": seconds,
                "elapsed": elapsed}
        if val is not None:
            v = evaluate(model, val, batch_size=eval_batch_size, device=dev, loss_fn=val_loss_fn, metrics=metrics)
            logs["val_loss"] = v["loss"]
            logs.update({f"val_{m}": v[m] for m in metrics})
        state.logs = logs
        state.history.append(logs)
        bar.set_postfix({k: round(v, 4) for k, v in logs.items()
                         if k in ("train_loss", "train_acc", "val_acc") and not np.isnan(v)})
        for cb in callbacks:
            cb.on_epoch_end(state)
        if state.stop:
            break


def _model_device(model: nn.Module) -> torch.device:
    p = next(model.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


def _imageset(data, dataset: str, need_labels: bool) -> ImageSet:
    """``data`` as an ImageSet (:func:`mnistlab.as_imageset`), refusing an empty one."""
    data = as_imageset(data, dataset, need_labels=need_labels)
    if len(data) == 0:
        raise ValueError("There are no images (0 given); pass at least one.")
    return data


def _eval_loader(model, data, batch_size, device, need_labels: bool) -> TensorLoader:
    dev = _model_device(model) if device is None else resolve_device(device)
    model.to(dev)
    if isinstance(data, TensorLoader):
        return data
    data = _imageset(data, getattr(getattr(model, "preprocessing", None), "dataset", "mnist"), need_labels)
    pre = preprocessing_of(model, data.dataset)
    return TensorLoader(data, batch_size=batch_size, shuffle=False, normalize=(pre.mean, pre.std), device=dev)


def uses_conv(model: nn.Module) -> bool:
    """Whether ``model`` has 2-D convolutions, which :func:`fit` and :func:`evaluate` run channels-last."""
    return any(isinstance(m, nn.Conv2d) for m in model.modules())


@contextlib.contextmanager
def channels_last(model: nn.Module):
    """Hold ``model``'s weights channels-last inside the block (if it has convolutions), then restore them.

    Yields whether the format changed; the caller then feeds ``x.contiguous(memory_format=torch.channels_last)``.
    Values are unchanged; only the memory layout differs.
    """
    use = uses_conv(model)
    outer = use and not getattr(model, "_in_channels_last", False)  # nested (fit's validation): leave to the outer
    if outer:
        model.to(memory_format=torch.channels_last)
        model._in_channels_last = True
    try:
        yield use
    finally:
        if outer:
            model.to(memory_format=torch.contiguous_format)
            model._in_channels_last = False


@torch.no_grad()
def _logits(model, loader) -> tuple[torch.Tensor, torch.Tensor]:
    outs, ys = [], []
    with eval_mode(model), channels_last(model) as use_cl:
        for x, y in loader:
            if use_cl:
                x = x.contiguous(memory_format=torch.channels_last)
            outs.append(model(x).float())
            ys.append(y)
    return torch.cat(outs), torch.cat(ys)


def evaluate(model: nn.Module, data, batch_size: int = EVAL_BATCH_SIZE, device=None, loss_fn: Callable | None = None,
             metrics: Mapping[str, Callable] | None = None) -> dict:
    """Mean loss and metrics of ``model`` on labelled ``data``, normalised as the model declares.

    Parameters
    ----------
    model : nn.Module
    data : ImageSet, (images, labels) or TensorLoader
        Labelled images; bare images are refused (there is nothing to score them against).
    batch_size : int
    device : str, optional
        Default: where the model is.
    loss_fn : callable, optional
        ``loss_fn(logits, y)``; default cross-entropy.
    metrics : dict of name -> callable, optional
        As in :func:`fit`; default accuracy.

    Returns
    -------
    dict
        ``{"loss": float, "acc": float, "n": int}`` (one entry per metric).

    Raises
    ------
    ValueError, TypeError
        Images without labels, no images, or not images (see :func:`mnistlab.as_imageset`).
    """
    loader = _eval_loader(model, data, batch_size, device, need_labels=True)
    logits, y = _logits(model, loader)
    metrics = {"acc": accuracy} if metrics is None else metrics
    loss = F.cross_entropy(logits, y) if loss_fn is None else loss_fn(logits, y)
    return {"loss": float(loss), **{m: float(fn(logits, y)) / len(y) for m, fn in metrics.items()}, "n": len(y)}


def predict(model: nn.Module, data, batch_size: int = EVAL_BATCH_SIZE, device=None) -> np.ndarray:
    """Class probabilities, a float32 array (N, num_classes).

    Parameters
    ----------
    model : nn.Module
    data : ImageSet, (images, labels), images or TensorLoader
        Images (no labels needed): uint8 0-255 or floats in [0, 1], shaped (N, 28, 28),
        (N, 1, 28, 28) or one image (28, 28), e.g. ``ml.to_mnist("seven.png")``. They are
        normalised here, as the model's ``preprocessing`` declares. A path is refused: read image
        files with :func:`mnistlab.to_mnist` first (it takes options a file may need, such as
        ``invert`` and ``photo``).
    batch_size : int
    device : str, optional
        Default: where the model is.

    Returns
    -------
    numpy.ndarray
        float32 (N, num_classes); (1, num_classes) for one image.

    Raises
    ------
    ValueError
        Pixels outside 0-255 / [0, 1] (e.g. normalised already), NaN or infinite pixels, a wrong
        shape, or no images.
    TypeError
        A path or anything else that is not images.
    """
    logits, _ = _logits(model, _eval_loader(model, data, batch_size, device, need_labels=False))
    return torch.softmax(logits, 1).cpu().numpy()


def predict_classes(model: nn.Module, data, batch_size: int = EVAL_BATCH_SIZE, device=None) -> np.ndarray:
    """Predicted class of every image, an int64 array (N,).

    Parameters
    ----------
    model, data, batch_size, device
        As for :func:`predict` (one image (28, 28) gives an array of one class).

    Returns
    -------
    numpy.ndarray
        int64 (N,).
    """
    return predict(model, data, batch_size, device).argmax(1)


@torch.no_grad()
def features(model: nn.Module, data, batch_size: int = EVAL_BATCH_SIZE, device=None) -> np.ndarray:
    """Penultimate-layer features ``model.features(x)`` of every image, a float32 array (N, D).

    Works for any model with a ``features`` method (every registry model has one).

    Parameters
    ----------
    model, data, batch_size, device
        As for :func:`predict` (no labels needed; one image (28, 28) gives one row).

    Returns
    -------
    numpy.ndarray
        float32 (N, D).
    """
    if not hasattr(model, "features"):
        raise TypeError(f"{type(model).__name__} has no features() method; build it with mnistlab.create_model.")
    loader = _eval_loader(model, data, batch_size, device, need_labels=False)
    with eval_mode(model), channels_last(model) as use_cl:
        return torch.cat([model.features(x.contiguous(memory_format=torch.channels_last) if use_cl else x).float().flatten(1).cpu()
                          for x, _ in loader]).numpy()
