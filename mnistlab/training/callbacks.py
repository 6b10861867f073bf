"""Training callbacks: the hooks of :func:`mnistlab.fit` and the ones shipped with it.

:class:`TrainState` is what every hook sees. ``on_after_backward`` runs after ``backward`` and
before the optimizer step (gradients present), ``on_batch_end`` after the step.
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import torch
from torch import nn

from .checkpoint import save_checkpoint

__all__ = ["TrainState", "Callback", "LambdaCallback", "EarlyStopping", "ModelCheckpoint", "StepProgress", "BarSink"]


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
    """Base class: override any of the ``on_*`` methods; each receives the :class:`TrainState`.

    ``on_train_end`` runs also when training raises, so a callback that installs hooks removes
    them there. A callback that gathers something worth caching (a recorder) sets
    ``artifact_name`` and implements :meth:`save_artifact` / :meth:`load_artifact`:
    :func:`mnistlab.experiments.run` then stores it beside the cached run and, on a later cache
    hit, loads it instead of retraining. Callbacks never enter the cache key.
    """

    artifact_name: str | None = None

    def on_train_begin(self, state: TrainState): ...
    def on_epoch_begin(self, state: TrainState): ...
    def on_after_backward(self, state: TrainState): ...
    def on_batch_end(self, state: TrainState): ...
    def on_epoch_end(self, state: TrainState): ...
    def on_train_end(self, state: TrainState): ...

    def save_artifact(self, path) -> None:
        """Write what the callback gathered to ``path`` (only for callbacks with an ``artifact_name``)."""
        raise NotImplementedError(f"{type(self).__name__} has nothing to save.")

    def load_artifact(self, path) -> None:
        """Read back what :meth:`save_artifact` wrote."""
        raise NotImplementedError(f"{type(self).__name__} has nothing to load.")


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
        value = state.logs.get(self.monitor)
        if self.save_best_only:
            if value is None or not _better(self.mode, value, self.best, 0.0):
                return
            self.best = value
        save_checkpoint(self.path, state.model, history=pd.DataFrame(state.history),
                        metrics={k: v for k, v in state.logs.items() if isinstance(v, (int, float))}, **self.meta)


class StepProgress(Callback):
    """Report finished optimizer steps to ``sink``: ``sink.put(n)`` every ``every`` steps and at the end.

    ``sink`` is anything with a ``put(n)`` method: a bar adapter in this process, or a
    multiprocessing queue read by the parent of a worker process, so one progress bar can move
    per training step across several runs (see :func:`mnistlab.experiments.out_of_fold_probs`).

    Parameters
    ----------
    sink : object with ``put(int)``
    every : int
        Steps gathered before each report (fewer messages between processes).

    Examples
    --------
    >>> from tqdm import tqdm                                           # doctest: +SKIP
    >>> bar = tqdm(total=100)
    >>> ml.fit(model, train, callbacks=[StepProgress(BarSink(bar), every=1)])
    """

    def __init__(self, sink, every: int = 4):
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise ValueError(f"every must be a whole number >= 1, not {every!r}.")
        self.sink, self.every, self.n = sink, every, 0

    def on_batch_end(self, state) -> None:
        self.n += 1
        if self.n >= self.every:
            self._flush()

    def on_train_end(self, state) -> None:
        self._flush()

    def _flush(self) -> None:
        if self.n:
            self.sink.put(self.n)
            self.n = 0


class BarSink:
    """A ``put(n)`` that advances a tqdm bar by ``n`` (the in-process sink of :class:`StepProgress`).

    Parameters
    ----------
    bar : tqdm.tqdm
    """

    def __init__(self, bar):
        self.bar = bar

    def put(self, n: int) -> None:
        """Advance the bar by ``n`` steps."""
        self.bar.update(n)
