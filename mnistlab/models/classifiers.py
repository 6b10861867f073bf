"""The classifiers of the registry: from logistic regression to the conv-BN ``best`` network.

Every model is a :class:`Classifier`: ``features(x)`` returns the penultimate representation
(used by the embedding and transfer-learning notebooks) and ``head`` maps it to logits.
Inputs are normalised float batches (B, 1, 28, 28).
"""
from __future__ import annotations

import torch
from torch import nn

from .registry import register_model

__all__ = ["Classifier", "logreg", "mlp", "lenet5", "deeper", "conv_fc", "conv2_fc2", "pt_example", "fast", "best"]


class Classifier(nn.Module):
    """Base class: ``body`` gives features, ``head`` gives logits.

    :func:`mnistlab.create_model` sets ``config`` (the registry name and constructor arguments, so
    checkpoints can rebuild the model) and ``preprocessing`` (what the model expects its inputs
    normalised with).
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
def mlp(hidden: tuple[int, ...] = (256, 128), dropout: float = 0.0, activation: str = "relu", batchnorm: bool = False,
        num_classes: int = 10) -> Classifier:
    """Fully connected network (ReLU hidden layers by default; a deep sigmoid one shows vanishing gradients)."""
    layers: list[nn.Module] = [nn.Flatten()]
    width = 784
    for h in hidden:
        layers += [nn.Linear(width, h), *([nn.BatchNorm1d(h)] if batchnorm else []), _act(activation)]
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
