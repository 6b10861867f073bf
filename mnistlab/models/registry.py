"""Model registry: ``create_model(name, **kwargs)`` and ``list_models()`` (after timm's registry).

A model built here declares its preprocessing (:class:`Preprocessing`: the normalisation
constants, the dataset they come from and the input size); training, prediction and checkpoints
read it from ``model.preprocessing`` instead of guessing. This layer knows nothing of data files
or training.
"""
from __future__ import annotations

import math
import numbers
import warnings
from dataclasses import asdict, dataclass
from typing import Callable

import numpy as np
import pandas as pd
import torch
from torch import nn

from .._util import eval_mode
from ..data.datasets import dataset_info, normalization

__all__ = ["Preprocessing", "register_model", "create_model", "list_models", "count_parameters", "count_macs",
           "preprocessing_of", "MAX_PARAMETERS"]

_REGISTRY: dict[str, tuple[Callable[..., nn.Module], str]] = {}

MAX_PARAMETERS = 200_000_000
"""Models with more parameters than this are refused before any memory is allocated (by :func:`create_model`,
and so by the command line, configs and checkpoints)."""


@dataclass(frozen=True)
class Preprocessing:
    """What a model expects: pixels in [0, 1] normalised as ``(x - mean) / std``, from ``dataset``.

    Parameters
    ----------
    mean, std : float
        Normalisation constants (``std`` > 0).
    dataset : str
        The dataset the model is for (fixes class names).
    spec : str
        How the constants were chosen: "standard" (the dataset's own), "unit", "symmetric" or
        "custom"; a "standard" model trained on another dataset takes that dataset's constants.
    input_size : tuple of int
        (channels, height, width) of one input.
    """

    mean: float
    std: float
    dataset: str = "mnist"
    spec: str = "standard"
    input_size: tuple = (1, 28, 28)

    def __post_init__(self):
        mean, std = float(self.mean), float(self.std)
        if not (math.isfinite(mean) and math.isfinite(std) and std > 0):
            raise ValueError(f"Preprocessing needs a finite mean and a positive, finite std; got mean={self.mean!r}, "
                             f"std={self.std!r}.")
        dataset_info(self.dataset)  # raises on an unknown dataset
        object.__setattr__(self, "mean", mean)
        object.__setattr__(self, "std", std)
        object.__setattr__(self, "input_size", tuple(int(v) for v in self.input_size))

    @classmethod
    def create(cls, normalize="standard", dataset: str = "mnist", input_size=(1, 28, 28)) -> "Preprocessing":
        """From a ``normalize`` spec ("standard", "unit", "symmetric" or (mean, std)) and a dataset."""
        mean, std = normalization(normalize, dataset)
        spec = normalize if isinstance(normalize, str) else "custom"
        return cls(mean, std, dataset_info(dataset).name, spec, tuple(input_size))

    def to_dict(self) -> dict:
        """Plain values (for checkpoints)."""
        d = asdict(self)
        d["input_size"] = list(self.input_size)
        return d


def preprocessing_of(model: nn.Module, dataset: str = "mnist") -> Preprocessing:
    """The model's declared :class:`Preprocessing`; for a model from outside the registry, the dataset's standard one."""
    pre = getattr(model, "preprocessing", None)
    return pre if isinstance(pre, Preprocessing) else Preprocessing.create("standard", dataset)


def _registrar(table: dict, kind: str, name: str, description: str):
    """Decorator adding a constructor to ``table`` under ``name``, described by ``description`` or its docstring's
    first line; ``kind`` ("model", "GAN") names it in the error for a name already taken. Serves
    :func:`register_model` and :func:`mnistlab.models.gan.register_gan`."""

    def wrap(fn):
        if name in table:
            raise ValueError(f"{kind} {name!r} is already registered")
        table[name] = (fn, description or (fn.__doc__ or "").strip().splitlines()[0])
        return fn

    return wrap


def _build_seeded(fn, seed: int | None, kwargs: dict):
    """``fn(**kwargs)``; with a ``seed``, its initial weights come from that seed and the global RNG is left as it was."""
    if seed is None:
        return fn(**kwargs)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return fn(**kwargs)


def register_model(name: str, description: str = ""):
    """Decorator adding a model constructor to the registry under ``name``."""
    return _registrar(_REGISTRY, "model", name, description)


def create_model(name: str, seed: int | None = None, *, dataset: str = "mnist", normalize="standard",
                 **kwargs) -> nn.Module:
    """Build a registered model.

    Parameters
    ----------
    name : str
        One of ``list_models().index``.
    seed : int, optional
        Seed for the initial weights (the global RNG is left untouched).
    dataset : str
        The dataset the model is for: fixes the normalisation constants of ``"standard"``.
    normalize : "standard", "unit", "symmetric" or (mean, std)
        Declared as ``model.preprocessing``; :func:`mnistlab.fit`, :func:`mnistlab.predict` and
        checkpoints use it.
    **kwargs
        Passed to the model's constructor (e.g. ``activation="relu"`` for ``lenet5``).

    Returns
    -------
    nn.Module
        The model, with ``config`` (name and arguments) and ``preprocessing`` set.

    Raises
    ------
    ValueError
        An unknown model or argument, an argument of the wrong type (compared with the
        constructor's default), or arguments that do not build a model: an empty layer (a width
        of 0), a negative size, more than :data:`MAX_PARAMETERS` parameters. Checked on PyTorch's
        meta device, before any memory is allocated.
    """
    if name not in _REGISTRY:
        raise ValueError(f"Unknown model {name!r}; available: {', '.join(sorted(_REGISTRY))}.")
    fn = _REGISTRY[name][0]
    preprocessing = Preprocessing.create(normalize, dataset)
    _check_kwargs(name, fn, kwargs)
    _check_shell(name, fn, kwargs)
    model = _build_seeded(fn, seed, kwargs)
    model.config = {"name": name, "kwargs": dict(kwargs)}
    model.preprocessing = preprocessing
    return model


_KINDS = {bool: ((bool, np.bool_), "true or false"), int: (numbers.Integral, "a whole number"),
          float: (numbers.Real, "a number"), str: (str, "a string")}


def _check_kwargs(name: str, fn, kwargs: dict) -> None:
    """A clear error for constructor arguments the model does not take, or of another type than their defaults."""
    import inspect

    params = inspect.signature(fn).parameters
    unknown = sorted(set(kwargs) - set(params))
    if unknown:
        raise ValueError(f"Model {name!r} takes no argument {', '.join(map(repr, unknown))}; it takes "
                         f"{sorted(params) or 'none'}.")
    for key, value in kwargs.items():
        default = params[key].default
        if type(default) not in _KINDS:
            continue
        kinds, words = _KINDS[type(default)]
        if not isinstance(value, kinds) or (type(default) is not bool and isinstance(value, (bool, np.bool_))):
            raise ValueError(f"create_model({name!r}): {key}={value!r} is not allowed: {words} (the default is "
                             f"{default!r}).")
        if isinstance(value, numbers.Real) and not math.isfinite(value):
            raise ValueError(f"create_model({name!r}): {key}={value!r} is not allowed: a finite number.")


def _check_shell(name: str, fn, kwargs: dict) -> None:
    """Build the model on the meta device (shapes only, no memory): the size cap, no empty layer."""
    try:
        with torch.device("meta"), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "Initializing zero-element tensors is a no-op"
            shell = fn(**kwargs)
            n = sum(p.numel() for p in shell.parameters())
            if n > MAX_PARAMETERS:
                raise ValueError(f"{n:,} parameters, more than the limit of {MAX_PARAMETERS:,}")
            if any(p.numel() == 0 for p in shell.parameters()):
                raise ValueError("a layer would be empty (a width or size of 0)")
    except (ValueError, TypeError, RuntimeError, ZeroDivisionError) as exc:
        args = ", ".join(f"{k}={v!r}" for k, v in kwargs.items())
        raise ValueError(f"create_model({name!r}, {args}) does not build a model: {' '.join(str(exc).split())}") \
            from None


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def count_macs(model: nn.Module, input_shape=(1, 1, 28, 28)) -> int:
    """Multiply-accumulates of one forward pass of one image (conv and linear layers)."""
    macs = 0

    def conv_hook(m: nn.Conv2d, inp, out):
        nonlocal macs
        k = m.kernel_size[0] * m.kernel_size[1] * (m.in_channels // m.groups)
        macs += out[0].numel() * k

    def linear_hook(m: nn.Linear, inp, out):
        nonlocal macs
        macs += out[0].numel() * m.in_features

    hooks = []
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            hooks.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, nn.Linear):
            hooks.append(m.register_forward_hook(linear_hook))
    try:
        with eval_mode(model), torch.no_grad():
            model(torch.zeros(input_shape, device=next(model.parameters()).device))
    finally:
        for h in hooks:
            h.remove()
    return macs


def list_models() -> pd.DataFrame:
    """Table of registered models: description, parameters and MACs per image."""
    rows = []
    for name, (fn, desc) in _REGISTRY.items():
        m = create_model(name, seed=0)
        rows.append({"model": name, "parameters": count_parameters(m), "macs": count_macs(m), "description": desc})
    return pd.DataFrame(rows).set_index("model")


