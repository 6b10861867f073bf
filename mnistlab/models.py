"""Model registry: ``create_model(name, **kwargs)`` and ``list_models()``.

Every model is a :class:`Classifier`: ``features(x)`` returns the penultimate representation
(used by the embedding and transfer-learning notebooks) and ``head`` maps it to logits.
Inputs are normalised float batches (B, 1, 28, 28). This module knows nothing of data files
or training.
"""
from __future__ import annotations

from typing import Callable

import pandas as pd
import torch
from torch import nn

__all__ = ["Classifier", "register_model", "create_model", "list_models", "count_parameters", "count_macs"]

_REGISTRY: dict[str, tuple[Callable[..., "Classifier"], str]] = {}


class Classifier(nn.Module):
    """Base class: ``body`` gives features, ``head`` gives logits.

    ``config`` holds the registry name and constructor arguments so checkpoints can rebuild
    the model.
    """

    def __init__(self, body: nn.Module, head: nn.Module):
        super().__init__()
        self.body = body
        self.head = head
        self.config: dict = {}

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate features, shape (B, D)."""
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


def register_model(name: str, description: str = ""):
    """Decorator adding a model constructor to the registry under ``name``."""

    def wrap(fn):
        if name in _REGISTRY:
            raise ValueError(f"model {name!r} is already registered")
        _REGISTRY[name] = (fn, description or (fn.__doc__ or "").strip().splitlines()[0])
        return fn

    return wrap


def create_model(name: str, seed: int | None = None, **kwargs) -> Classifier:
    """Build a registered model.

    Parameters
    ----------
    name : str
        One of ``list_models().index``.
    seed : int, optional
        Seed for the initial weights (the global RNG is left untouched).
    **kwargs
        Passed to the model's constructor (e.g. ``activation="relu"`` for ``lenet5``).
    """
    if name not in _REGISTRY:
        raise ValueError(f"Unknown model {name!r}; available: {', '.join(sorted(_REGISTRY))}.")
    fn = _REGISTRY[name][0]
    if seed is None:
        model = fn(**kwargs)
    else:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = fn(**kwargs)
    model.config = {"name": name, "kwargs": dict(kwargs)}
    return model


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
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(torch.zeros(input_shape, device=next(model.parameters()).device))
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    return macs


def list_models() -> pd.DataFrame:
    """Table of registered models: description, parameters and MACs per image."""
    rows = []
    for name, (fn, desc) in _REGISTRY.items():
        m = create_model(name, seed=0)
        rows.append({"model": name, "parameters": count_parameters(m), "macs": count_macs(m), "description": desc})
    return pd.DataFrame(rows).set_index("model")


def _act(name: str) -> nn.Module:
    acts = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "gelu": nn.GELU}
    if name not in acts:
        raise ValueError(f"activation must be one of {sorted(acts)}, not {name!r}")
    return acts[name]()


def _pool(name: str) -> nn.Module:
    if name not in ("avg", "max"):
        raise ValueError(f"pool must be 'avg' or 'max', not {name!r}")
    return nn.AvgPool2d(2) if name == "avg" else nn.MaxPool2d(2)


@register_model("logreg")
def logreg(num_classes: int = 10) -> Classifier:
    """Multinomial logistic regression on the 784 pixels."""
    return Classifier(nn.Flatten(), nn.Linear(784, num_classes))


@register_model("mlp")
def mlp(hidden: tuple[int, ...] = (256, 128), dropout: float = 0.0, num_classes: int = 10) -> Classifier:
    """Fully connected network with ReLU hidden layers."""
    layers: list[nn.Module] = [nn.Flatten()]
    width = 784
    for h in hidden:
        layers += [nn.Linear(width, h), nn.ReLU()]
        if dropout:
            layers.append(nn.Dropout(dropout))
        width = h
    return Classifier(nn.Sequential(*layers), nn.Linear(width, num_classes))


@register_model("lenet5")
def lenet5(activation: str = "tanh", pool: str = "avg", batchnorm: bool = False, num_classes: int = 10) -> Classifier:
    """LeNet-5 (LeCun et al. 1998): conv6-pool-conv16-pool-conv120-fc84; tanh/avg-pool by default."""
    bn = (lambda c: nn.BatchNorm2d(c)) if batchnorm else (lambda c: nn.Identity())
    body = nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2), bn(6), _act(activation), _pool(pool),   # 28 -> 14
        nn.Conv2d(6, 16, 5), bn(16), _act(activation), _pool(pool),            # 14 -> 10 -> 5
        nn.Conv2d(16, 120, 5), _act(activation), nn.Flatten(),                 # 5 -> 1
        nn.Linear(120, 84), _act(activation),
    )
    return Classifier(body, nn.Linear(84, num_classes))


@register_model("deeper")
def deeper(batchnorm: bool = False, dropout: float = 0.0, num_classes: int = 10) -> Classifier:
    """conv32-maxpool-conv64-conv64-maxpool-fc100 with ReLU: the end of the LeNet progression."""
    bn = (lambda c: nn.BatchNorm2d(c)) if batchnorm else (lambda c: nn.Identity())
    body = nn.Sequential(
        nn.Conv2d(1, 32, 3), bn(32), nn.ReLU(), nn.MaxPool2d(2),        # 28 -> 26 -> 13
        nn.Conv2d(32, 64, 3), bn(64), nn.ReLU(),                        # 13 -> 11
        nn.Conv2d(64, 64, 3), bn(64), nn.ReLU(), nn.MaxPool2d(2),       # 11 -> 9 -> 4
        nn.Flatten(), nn.Dropout(dropout), nn.Linear(64 * 4 * 4, 100), nn.ReLU(),
    )
    return Classifier(body, nn.Linear(100, num_classes))


@register_model("conv_fc")
def conv_fc(channels: int = 10, num_classes: int = 10) -> Classifier:
    """One 5x5 conv layer (ReLU, max-pool) and one fully connected layer."""
    body = nn.Sequential(nn.Conv2d(1, channels, 5), nn.MaxPool2d(2), nn.ReLU(), nn.Flatten())  # 28 -> 24 -> 12
    return Classifier(body, nn.Linear(channels * 12 * 12, num_classes))


@register_model("conv2_fc2")
def conv2_fc2(dropout: float = 0.5, num_classes: int = 10) -> Classifier:
    """Two conv and two fully connected layers (PyTorch's original MNIST example)."""
    body = nn.Sequential(
        nn.Conv2d(1, 10, 5), nn.MaxPool2d(2), nn.ReLU(),                        # 28 -> 24 -> 12
        nn.Conv2d(10, 20, 5), nn.Dropout2d(dropout), nn.MaxPool2d(2), nn.ReLU(),  # 12 -> 8 -> 4
        nn.Flatten(), nn.Linear(320, 50), nn.ReLU(), nn.Dropout(dropout),
    )
    return Classifier(body, nn.Linear(50, num_classes))


@register_model("pt_example")
def pt_example(num_classes: int = 10) -> Classifier:
    """The network of pytorch/examples' mnist (conv32-conv64-maxpool-fc128): the speed reference."""
    body = nn.Sequential(
        nn.Conv2d(1, 32, 3), nn.ReLU(), nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Dropout(0.25), nn.Flatten(), nn.Linear(9216, 128), nn.ReLU(), nn.Dropout(0.5),
    )
    return Classifier(body, nn.Linear(128, num_classes))


def _conv_bn(cin: int, cout: int) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]


@register_model("fast")
def fast(width: int = 16, num_classes: int = 10) -> Classifier:
    """Small conv-BN net for time-to-accuracy on a CPU: three 3x3 stages with max-pool, global pool."""
    w = width
    body = nn.Sequential(
        *_conv_bn(1, w), nn.MaxPool2d(2),            # 28 -> 14
        *_conv_bn(w, 2 * w), nn.MaxPool2d(2),        # 14 -> 7
        *_conv_bn(2 * w, 4 * w), nn.MaxPool2d(2),    # 7 -> 3
        nn.Flatten(),
    )
    return Classifier(body, nn.Linear(4 * w * 9, num_classes))


@register_model("best")
def best(width: int = 32, dropout: float = 0.3, num_classes: int = 10) -> Classifier:
    """Conv-BN network for top accuracy (train with augmentation and a one-cycle schedule)."""
    w = width
    body = nn.Sequential(
        *_conv_bn(1, w), *_conv_bn(w, w), nn.MaxPool2d(2),              # 28 -> 14
        *_conv_bn(w, 2 * w), *_conv_bn(2 * w, 2 * w), nn.MaxPool2d(2),  # 14 -> 7
        *_conv_bn(2 * w, 4 * w), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        nn.Dropout(dropout), nn.Linear(4 * w, 128), nn.BatchNorm1d(128), nn.ReLU(inplace=True),
    )
    return Classifier(body, nn.Sequential(nn.Dropout(dropout), nn.Linear(128, num_classes)))
