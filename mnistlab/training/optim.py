"""Optimizers and learning-rate schedules by name, described as tables (after timm's optimizer factory)."""
from __future__ import annotations

from typing import Iterable

import torch

__all__ = ["OPTIMIZERS", "DEFAULT_LR", "SCHEDULERS", "make_optimizer", "make_scheduler"]

_O = torch.optim
# name -> (class, default learning rate, fixed arguments, default momentum or None if it takes none)
OPTIMIZERS: dict[str, tuple[type, float, dict, float | None]] = {
    "sgd": (_O.SGD, 0.01, {}, 0.0),
    "momentum": (_O.SGD, 0.01, {}, 0.9),
    "nesterov": (_O.SGD, 0.01, {"nesterov": True}, 0.9),
    "adam": (_O.Adam, 1e-3, {}, None),
    "adamw": (_O.AdamW, 1e-3, {}, None),
    "rmsprop": (_O.RMSprop, 1e-3, {}, 0.0),
    "adagrad": (_O.Adagrad, 1e-2, {}, None),
    "adadelta": (_O.Adadelta, 1.0, {}, None),
}
"""The optimizers known by name: class, default learning rate, fixed arguments, default momentum."""

DEFAULT_LR = {name: row[1] for name, row in OPTIMIZERS.items()}
"""Default learning rate per optimizer name (PyTorch's defaults; 0.01 for the SGD family)."""

SCHEDULERS = ("step", "steplr", "cosine", "onecycle")
"""Scheduler names :func:`make_scheduler` knows."""


def make_optimizer(name_or_opt, params: Iterable, lr: float | None = None, weight_decay: float = 0.0,
                   momentum: float | None = None) -> torch.optim.Optimizer:
    """Build an optimizer by name (see :data:`OPTIMIZERS`) over ``params``.

    Parameters
    ----------
    name_or_opt : str or torch.optim.Optimizer
        A name, or an existing optimizer, which is returned unchanged.
    params : iterable of tensors or of parameter-group dicts
        Parameter groups may carry their own ``lr`` (discriminative learning rates).
    lr : float, optional
        Defaults to :data:`DEFAULT_LR` of the name.
    weight_decay : float
        AdamW uses 0.01 when this is 0 (its usual default).
    momentum : float, optional
        For sgd, momentum, nesterov and rmsprop; defaults to the table's value.
    """
    if isinstance(name_or_opt, torch.optim.Optimizer):
        return name_or_opt
    name = str(name_or_opt).lower()
    if name not in OPTIMIZERS:
        raise ValueError(f"Unknown optimizer {name_or_opt!r}; choose one of {sorted(OPTIMIZERS)} or pass an instance.")
    cls, default_lr, fixed, default_momentum = OPTIMIZERS[name]
    kwargs = {"lr": default_lr if lr is None else lr, "weight_decay": weight_decay, **fixed}
    if name == "adamw" and not weight_decay:
        kwargs["weight_decay"] = 0.01
    if default_momentum is not None:
        # "sgd" and "rmsprop" treat momentum=None as none; "momentum"/"nesterov" as 0.9
        kwargs["momentum"] = (momentum or 0.0) if default_momentum == 0.0 else (default_momentum if momentum is None
                                                                                else momentum)
    return cls(params, **kwargs)


def make_scheduler(name_or_sched, optimizer: torch.optim.Optimizer, epochs: int, steps_per_epoch: int,
                   gamma: float = 0.7):
    """Build a learning-rate scheduler; return ``(scheduler, per_step)``.

    Names: ``"step"`` (x0.1 at 1/2 and 3/4 of training, per epoch), ``"steplr"`` (x``gamma``
    every epoch, as in pytorch/examples' mnist), ``"cosine"`` (per step, to zero), ``"onecycle"``
    (per step, peak at the optimizer's lr). An instance is stepped per epoch, except
    ``OneCycleLR`` and ``CyclicLR`` which are stepped per batch. ``None`` gives ``(None, False)``.
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
    if name == "steplr":
        return S.StepLR(optimizer, step_size=1, gamma=gamma), False
    if name == "cosine":
        return S.CosineAnnealingLR(optimizer, T_max=total), True
    if name == "onecycle":
        if total < 5:  # OneCycleLR's warm-up and decay phases need a few steps each (else a division by zero)
            raise ValueError(f"The onecycle schedule needs at least 5 optimizer steps, got {total} "
                             f"({epochs} epochs x {steps_per_epoch} batches); train longer or on more data, use "
                             "smaller batches, or another schedule.")
        peak = [g["lr"] for g in optimizer.param_groups]
        return S.OneCycleLR(optimizer, max_lr=peak, total_steps=total, pct_start=0.25), True
    raise ValueError(f"Unknown scheduler {name_or_sched!r}; choose one of {SCHEDULERS}, None, or pass an instance.")
