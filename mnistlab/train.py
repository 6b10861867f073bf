"""Training: ``fit`` / ``evaluate`` / ``predict`` and callbacks.

``fit`` returns the history as a pandas DataFrame, one row per epoch. Callbacks see a
:class:`TrainState` at fixed points (after backward, after each batch, after each epoch),
which is how early stopping, checkpointing and the weight/gradient recorder of the
training-dynamics notebook hook in.
"""
from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, field
from typing import Any, Iterable

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from .data import ImageSet, TensorLoader, as_imageset, normalization

__all__ = [
    "TrainingError", "TrainState", "Callback", "EarlyStopping", "ModelCheckpoint", "LambdaCallback",
    "resolve_device", "make_optimizer", "make_scheduler", "fit", "evaluate", "predict", "predict_classes",
    "DEFAULT_LR",
]

DEFAULT_LR = {
    "sgd": 0.01, "momentum": 0.01, "nesterov": 0.01, "adam": 1e-3, "adamw": 1e-3,
    "rmsprop": 1e-3, "adagrad": 1e-2, "adadelta": 1.0,
}


class TrainingError(RuntimeError):
    """Raised when training cannot go on (e.g. the loss became NaN or infinite)."""


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` picks CUDA, then Apple MPS, then the CPU; anything else is passed to ``torch.device``."""
    if device is None or str(device) == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device='cuda' was asked for but no CUDA GPU is available; use device='auto' or 'cpu'.")
    return dev


def make_optimizer(name_or_opt, params, lr: float | None = None, weight_decay: float = 0.0,
                   momentum: float | None = None) -> torch.optim.Optimizer:
    """Build an optimizer by name (sgd, momentum, nesterov, adam, adamw, rmsprop, adagrad, adadelta).

    An existing ``torch.optim.Optimizer`` is returned unchanged. ``lr`` defaults to
    :data:`DEFAULT_LR` for the name; ``momentum`` defaults to 0.9 for "momentum"/"nesterov".
    """
    if isinstance(name_or_opt, torch.optim.Optimizer):
        return name_or_opt
    name = str(name_or_opt).lower()
    if name not in DEFAULT_LR:
        raise ValueError(f"Unknown optimizer {name_or_opt!r}; choose one of {sorted(DEFAULT_LR)} or pass an instance.")
    lr = DEFAULT_LR[name] if lr is None else lr
    wd = weight_decay
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=momentum or 0.0, weight_decay=wd)
    if name in ("momentum", "nesterov"):
        return torch.optim.SGD(params, lr=lr, momentum=0.9 if momentum is None else momentum,
                               nesterov=name == "nesterov", weight_decay=wd)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=wd)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=wd or 0.01)
    if name == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr, weight_decay=wd, momentum=momentum or 0.0)
    if name == "adagrad":
        return torch.optim.Adagrad(params, lr=lr, weight_decay=wd)
    return torch.optim.Adadelta(params, lr=lr, weight_decay=wd)


def make_scheduler(name_or_sched, optimizer, epochs: int, steps_per_epoch: int):
    """Build a learning-rate scheduler; return ``(scheduler, per_step)``.

    Names: ``"step"`` (x0.1 at 1/2 and 3/4 of training, per epoch), ``"cosine"`` (per step, to
    zero), ``"onecycle"`` (per step, peak at the optimizer's lr). An instance is stepped per
    epoch, except ``OneCycleLR`` and ``CyclicLR`` which are stepped per batch. ``None`` gives
    ``(None, False)``.
    """
    if name_or_sched is None:
        return None, False
    S = torch.optim.lr_scheduler
    if not isinstance(name_or_sched, str):
        return name_or_sched, isinstance(name_or_sched, (S.OneCycleLR, S.CyclicLR))
    total = max(1, epochs * steps_per_epoch)
    name = name_or_sched.lower()
    if name == "step":
        milestones = sorted({max(1, epochs // 2), max(1, (3 * epochs) // 4)})
        return S.MultiStepLR(optimizer, milestones=milestones, gamma=0.1), False
    if name == "cosine":
        return S.CosineAnnealingLR(optimizer, T_max=total), True
    if name == "onecycle":
        peak = [g["lr"] for g in optimizer.param_groups]
        return S.OneCycleLR(optimizer, max_lr=peak, total_steps=total, pct_start=0.25), True
    raise ValueError(f"Unknown scheduler {name_or_sched!r}; choose 'step', 'cosine', 'onecycle' or pass an instance.")


@dataclass
class TrainState:
    """What callbacks see: the model, optimizer, counters, last batch loss and epoch logs.

    ``step`` counts finished optimizer steps: in ``on_after_backward`` it is the number of
    steps before the current one (0 for the first batch), in ``on_batch_end`` it includes the
    current one. Recording every N steps: ``if state.step % N == 0`` in ``on_after_backward``.
    """

    model: nn.Module
    optimizer: torch.optim.Optimizer
    device: torch.device
    epochs: int
    steps_per_epoch: int
    epoch: int = 0
    step: int = 0  # global step, counted from 1 after the first batch
    loss: torch.Tensor | None = None
    logs: dict = field(default_factory=dict)
    history: list = field(default_factory=list)
    stop: bool = False
    scheduler: Any = None


class Callback:
    """Base class: override any of the ``on_*`` methods; each receives the :class:`TrainState`."""

    def on_train_begin(self, state: TrainState): ...
    def on_epoch_begin(self, state: TrainState): ...
    def on_after_backward(self, state: TrainState): ...
    def on_batch_end(self, state: TrainState): ...
    def on_epoch_end(self, state: TrainState): ...
    def on_train_end(self, state: TrainState): ...


class LambdaCallback(Callback):
    """Callback from plain functions, e.g. ``LambdaCallback(on_epoch_end=lambda s: print(s.logs))``."""

    def __init__(self, **hooks):
        for name, fn in hooks.items():
            if not hasattr(Callback, name):
                raise ValueError(f"{name!r} is not a callback hook")
            setattr(self, name, fn)


def _better(mode: str, value: float, best: float, min_delta: float) -> bool:
    return value < best - min_delta if mode == "min" else value > best + min_delta


def _mode_for(monitor: str, mode: str) -> str:
    if mode != "auto":
        return mode
    return "max" if monitor.endswith("acc") else "min"


class EarlyStopping(Callback):
    """Stop when ``monitor`` has not improved for ``patience`` epochs.

    Attributes after training: ``best_epoch``, ``best_value``, ``stopped_epoch`` (None if it
    never stopped). With ``restore_best_weights`` the model ends with the best epoch's weights.
    """

    def __init__(self, monitor: str = "val_loss", patience: int = 3, min_delta: float = 0.0,
                 mode: str = "auto", restore_best_weights: bool = True):
        self.monitor, self.patience, self.min_delta = monitor, patience, min_delta
        self.mode = _mode_for(monitor, mode)
        self.restore_best_weights = restore_best_weights

    def on_train_begin(self, state):
        self.best_value = math.inf if self.mode == "min" else -math.inf
        self.best_epoch, self.stopped_epoch, self.wait, self._best_state = None, None, 0, None

    def on_epoch_end(self, state):
        value = state.logs.get(self.monitor)
        if value is None or (isinstance(value, float) and math.isnan(value)):
            raise ValueError(f"EarlyStopping monitors {self.monitor!r}, which is not logged; pass val=... to fit.")
        if _better(self.mode, value, self.best_value, self.min_delta):
            self.best_value, self.best_epoch, self.wait = value, state.epoch, 0
            if self.restore_best_weights:
                self._best_state = copy.deepcopy(state.model.state_dict())
        else:
            self.wait += 1
            if self.wait >= self.patience:
                self.stopped_epoch, state.stop = state.epoch, True

    def on_train_end(self, state):
        if self.restore_best_weights and self._best_state is not None:
            state.model.load_state_dict(self._best_state)


class ModelCheckpoint(Callback):
    """Save a checkpoint after each epoch, or only when ``monitor`` improves."""

    def __init__(self, path, monitor: str = "val_acc", save_best_only: bool = True, mode: str = "auto", **meta):
        self.path, self.monitor, self.save_best_only = path, monitor, save_best_only
        self.mode, self.meta = _mode_for(monitor, mode), meta

    def on_train_begin(self, state):
        self.best = math.inf if self.mode == "min" else -math.inf

    def on_epoch_end(self, state):
        from .checkpoint import save_checkpoint

        value = state.logs.get(self.monitor)
        if self.save_best_only:
            if value is None or not _better(self.mode, value, self.best, 0.0):
                return
            self.best = value
        save_checkpoint(self.path, state.model, history=pd.DataFrame(state.history),
                        metrics={k: v for k, v in state.logs.items() if isinstance(v, (int, float))}, **self.meta)


def _as_loader(data, batch_size, shuffle, normalize, augment, device, seed) -> TensorLoader:
    if isinstance(data, TensorLoader):
        return data
    return TensorLoader(as_imageset(data), batch_size=batch_size, shuffle=shuffle, normalize=normalize,
                        augment=augment, device=device, seed=seed)


def _has_conv(model: nn.Module) -> bool:
    return any(isinstance(m, nn.Conv2d) for m in model.modules())


def fit(model: nn.Module, train, val=None, *, epochs: int = 5, optimizer="adam", lr: float | None = None,
        batch_size: int = 128, scheduler=None, weight_decay: float = 0.0, momentum: float | None = None,
        label_smoothing: float = 0.0, augment=None, normalize="standard", callbacks: Iterable[Callback] = (),
        device="auto", seed: int = 0, progress: bool = True, eval_batch_size: int = 2000) -> pd.DataFrame:
    """Train ``model`` and return its history.

    Parameters
    ----------
    model : nn.Module
        Any classifier taking (B, 1, 28, 28); typically from :func:`mnistlab.create_model`.
    train, val : ImageSet, (images, labels) or TensorLoader
        Training data and optional validation data (evaluated after every epoch).
    epochs : int
    optimizer : str or torch.optim.Optimizer
        sgd, momentum, nesterov, adam, adamw, rmsprop, adagrad, adadelta, or an instance.
    lr : float, optional
        Learning rate (peak rate for "onecycle"); defaults per optimizer (:data:`DEFAULT_LR`).
    batch_size : int
    scheduler : str or scheduler, optional
        "step", "cosine", "onecycle" or an instance (see :func:`make_scheduler`).
    weight_decay, momentum, label_smoothing : float
    augment : Augment or callable, optional
        Batch augmentation applied on the device to training batches only.
    normalize : "standard", "unit", "symmetric" or (mean, std)
        Stored on the model as ``model.normalization`` so ``predict`` reuses it.
    callbacks : list of Callback
    device : "auto", "cpu", "cuda", ...
    seed : int
        Seeds shuffling, augmentation and dropout: the same seed gives the same history on CPU.
    progress : bool
        Show tqdm progress bars.

    Returns
    -------
    pandas.DataFrame
        Columns epoch, train_loss, train_acc, val_loss, val_acc, lr, seconds (training time of
        the epoch) and elapsed (cumulative training seconds).

    Raises
    ------
    TrainingError
        If the loss becomes NaN or infinite; the message names the epoch and step.
    """
    dev = resolve_device(device)
    torch.manual_seed(seed)  # dropout and any other in-model randomness
    dataset = train.dataset if isinstance(train, (ImageSet, TensorLoader)) else "mnist"
    loader = _as_loader(train, batch_size, True, normalize, augment, dev, seed)
    mean_std = (loader.mean, loader.std)
    model.to(dev)
    model.normalization = mean_std
    model.dataset = dataset
    use_cl = dev.type == "cuda" and _has_conv(model)
    if use_cl:
        model.to(memory_format=torch.channels_last)
    amp = torch.autocast("cuda", dtype=torch.bfloat16) if dev.type == "cuda" else _null()
    opt = make_optimizer(optimizer, model.parameters(), lr=lr, weight_decay=weight_decay, momentum=momentum)
    sched, per_step = make_scheduler(scheduler, opt, epochs, len(loader))
    state = TrainState(model=model, optimizer=opt, device=dev, epochs=epochs, steps_per_epoch=len(loader), scheduler=sched)
    callbacks = list(callbacks)
    for cb in callbacks:
        cb.on_train_begin(state)
    elapsed = 0.0
    bar = tqdm(range(1, epochs + 1), desc="epochs", unit="epoch", disable=not progress, leave=True)
    for epoch in bar:
        state.epoch = epoch
        model.train()
        for cb in callbacks:
            cb.on_epoch_begin(state)
        lr_now = opt.param_groups[0]["lr"]
        loss_sum = torch.zeros((), device=dev)
        correct = torch.zeros((), device=dev, dtype=torch.long)
        seen = 0
        t0 = time.perf_counter()
        for i, (x, y) in enumerate(tqdm(loader, desc=f"epoch {epoch}", leave=False, disable=not progress)):
            if use_cl:
                x = x.contiguous(memory_format=torch.channels_last)
            with amp:
                logits = model(x)
                loss = F.cross_entropy(logits.float(), y, label_smoothing=label_smoothing)
            if not torch.isfinite(loss):
                raise TrainingError(
                    f"Loss became {loss.item()} at epoch {epoch}, step {i + 1} (global step {state.step + 1}). "
                    "Lower the learning rate, check the input normalisation, or add gradient clipping."
                )
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
            correct += (logits.argmax(1) == y).sum()
            seen += len(y)
            for cb in callbacks:
                cb.on_batch_end(state)
        if sched is not None and not per_step:
            sched.step()
        seconds = time.perf_counter() - t0
        elapsed += seconds
        logs = {"epoch": epoch, "train_loss": loss_sum.item() / seen, "train_acc": correct.item() / seen,
                "val_loss": np.nan, "val_acc": np.nan, "lr": lr_now, "seconds": seconds, "elapsed": elapsed}
        if val is not None:
            v = evaluate(model, val, batch_size=eval_batch_size, device=dev, normalize=mean_std)
            logs["val_loss"], logs["val_acc"] = v["loss"], v["acc"]
        state.logs = logs
        state.history.append(logs)
        bar.set_postfix({k: round(logs[k], 4) for k in ("train_loss", "train_acc", "val_acc") if not np.isnan(logs[k])})
        for cb in callbacks:
            cb.on_epoch_end(state)
        if state.stop:
            break
    for cb in callbacks:
        cb.on_train_end(state)
    if use_cl:
        model.to(memory_format=torch.contiguous_format)
    return pd.DataFrame(state.history, columns=["epoch", "train_loss", "train_acc", "val_loss", "val_acc",
                                                "lr", "seconds", "elapsed"])


class _null:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def _model_device(model: nn.Module) -> torch.device:
    p = next(model.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


def _eval_loader(model, data, batch_size, device, normalize) -> tuple[TensorLoader, torch.device]:
    dev = _model_device(model) if device is None else resolve_device(device)
    model.to(dev)
    if isinstance(data, TensorLoader):
        return data, dev
    data = as_imageset(data)
    if normalize is None:
        normalize = getattr(model, "normalization", None) or normalization("standard", data.dataset)
    return TensorLoader(data, batch_size=batch_size, shuffle=False, normalize=normalize, device=dev), dev


@torch.no_grad()
def _logits(model, loader) -> tuple[torch.Tensor, torch.Tensor]:
    was_training = model.training
    model.eval()
    outs, ys = [], []
    try:
        for x, y in loader:
            outs.append(model(x).float())
            ys.append(y)
    finally:
        model.train(was_training)
    return torch.cat(outs), torch.cat(ys)


def evaluate(model: nn.Module, data, batch_size: int = 2000, device=None, normalize=None) -> dict:
    """Mean cross-entropy loss and accuracy of ``model`` on labelled ``data``.

    Returns ``{"loss": float, "acc": float, "n": int}``. ``normalize`` defaults to the
    normalisation the model was trained with.
    """
    loader, _ = _eval_loader(model, data, batch_size, device, normalize)
    logits, y = _logits(model, loader)
    return {"loss": F.cross_entropy(logits, y).item(), "acc": (logits.argmax(1) == y).float().mean().item(), "n": len(y)}


def predict(model: nn.Module, data, batch_size: int = 2000, device=None, normalize=None) -> np.ndarray:
    """Class probabilities, a float32 array (N, num_classes).

    ``data`` may be an ImageSet, an (images, labels) pair or a uint8 tensor (N, 28, 28).
    """
    loader, _ = _eval_loader(model, data, batch_size, device, normalize)
    logits, _ = _logits(model, loader)
    return torch.softmax(logits, 1).cpu().numpy()


def predict_classes(model: nn.Module, data, batch_size: int = 2000, device=None, normalize=None) -> np.ndarray:
    """Predicted class of every image, an int64 array (N,)."""
    return predict(model, data, batch_size, device, normalize).argmax(1)
