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
from ..data.loader import TensorLoader
from ..models.registry import Preprocessing, preprocessing_of
from .callbacks import Callback, TrainState
from .optim import make_optimizer, make_scheduler

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


def _resolve_preprocessing(model: nn.Module, data: ImageSet, normalize) -> Preprocessing:
    """The preprocessing ``fit`` trains with, declared on the model afterwards.

    An explicit ``normalize`` wins; a "standard" model trained on another dataset takes that
    dataset's constants (its own are meaningless there).
    """
    if normalize is not None:
        return Preprocessing.create(normalize, data.dataset)
    pre = preprocessing_of(model, data.dataset)
    if pre.dataset != data.dataset and pre.spec == "standard":
        return Preprocessing.create("standard", data.dataset, pre.input_size)
    return pre


def _rng_fork(device: torch.device):
    """Keep the caller's global RNG state: dropout draws from it inside ``fit``."""
    devices = [device.index or 0] if device.type == "cuda" else []
    return torch.random.fork_rng(devices=devices)


def fit(model: nn.Module, train, val=None, *, epochs: int = 5, optimizer="adam", lr: float | None = None,
        batch_size: int = 128, scheduler=None, gamma: float = 0.7, weight_decay: float = 0.0,
        momentum: float | None = None, label_smoothing: float = 0.0, augment=None, normalize=None,
        param_groups: list[dict] | None = None, loss_fn: Callable | None = None,
        metrics: Mapping[str, Callable] | None = None, callbacks: Iterable[Callback] = (), device="auto",
        seed: int = 0, progress: bool = True, eval_batch_size: int = 2000) -> pd.DataFrame:
    """Train ``model`` and return its history.

    Parameters
    ----------
    model : nn.Module
        Any classifier taking (B, 1, 28, 28); typically from :func:`mnistlab.create_model`.
    train, val : ImageSet, (images, labels) or TensorLoader
        Training data and optional validation data (evaluated after every epoch). Bare images
        (without labels) are refused.
    epochs : int
    optimizer : str or torch.optim.Optimizer
        sgd, momentum, nesterov, adam, adamw, rmsprop, adagrad, adadelta, or an instance.
    lr : float, optional
        Learning rate (peak rate for "onecycle"); defaults per optimizer (:data:`DEFAULT_LR`).
    batch_size : int
    scheduler : str or scheduler, optional
        "step", "steplr" (x ``gamma`` per epoch), "cosine", "onecycle" or an instance.
    weight_decay, momentum, label_smoothing : float
    augment : Augment or callable, optional
        Batch augmentation applied on the device to training batches only.
    normalize : "standard", "unit", "symmetric" or (mean, std), optional
        Overrides the model's declared ``preprocessing`` (which is updated to match).
    param_groups : list of dict, optional
        Parameter groups for the named optimizer (e.g. a smaller ``lr`` for pretrained
        features); by default every parameter with ``requires_grad``.
    loss_fn : callable, optional
        ``loss_fn(logits, y) -> scalar``; default cross-entropy with ``label_smoothing``.
    metrics : dict of name -> callable, optional
        ``metric(logits, y)`` returns the batch's *sum* (e.g. correct predictions); logged per
        epoch as ``train_<name>`` / ``val_<name>`` divided by the number of examples. Default
        ``{"acc": accuracy}``.
    callbacks : list of Callback
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
        Data that is not labelled images (see :func:`mnistlab.as_imageset`), or no images at all.
    """
    if not isinstance(epochs, int) or isinstance(epochs, bool) or epochs < 1:
        raise ValueError(f"epochs must be a positive integer, not {epochs!r}.")
    dev = resolve_device(device)
    metrics = {"acc": accuracy} if metrics is None else dict(metrics)
    val_loss_fn = loss_fn  # validation reports plain cross-entropy unless a loss was given
    if loss_fn is None:
        def loss_fn(logits, y):
            return F.cross_entropy(logits, y, label_smoothing=label_smoothing)
    train_set = train if isinstance(train, TensorLoader) else _imageset(train, "mnist", need_labels=True)
    pre = (Preprocessing.create((train.mean, train.std), train.dataset) if isinstance(train, TensorLoader)
           else _resolve_preprocessing(model, train_set, normalize))
    loader = train if isinstance(train, TensorLoader) else TensorLoader(
        train_set, batch_size=batch_size, shuffle=True, normalize=(pre.mean, pre.std), augment=augment, device=dev,
        seed=seed)
    model.to(dev)
    model.preprocessing = pre
    amp = torch.autocast("cuda", dtype=torch.bfloat16) if dev.type == "cuda" else contextlib.nullcontext()
    params = param_groups if param_groups is not None else [p for p in model.parameters() if p.requires_grad]
    opt = make_optimizer(optimizer, params, lr=lr, weight_decay=weight_decay, momentum=momentum)
    sched, per_step = make_scheduler(scheduler, opt, epochs, len(loader), gamma=gamma)
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
                    use_cl, progress, eval_batch_size)
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


def evaluate(model: nn.Module, data, batch_size: int = 2000, device=None, loss_fn: Callable | None = None,
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


def predict(model: nn.Module, data, batch_size: int = 2000, device=None) -> np.ndarray:
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


def predict_classes(model: nn.Module, data, batch_size: int = 2000, device=None) -> np.ndarray:
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
def features(model: nn.Module, data, batch_size: int = 1000, device=None) -> np.ndarray:
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
    with eval_mode(model):
        return torch.cat([model.features(x).float().flatten(1).cpu() for x, _ in loader]).numpy()
