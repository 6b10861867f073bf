"""torchvision's ResNet-18 with ImageNet weights, for grey 28x28 digits (only from the local torch hub cache).

Nothing is ever downloaded: :func:`imagenet_resnet18` loads ``ResNet18_Weights.IMAGENET1K_V1``
only when its file is already where torchvision looks (:func:`imagenet_weights_path`).
"""
from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlparse

import torch
import torch.nn.functional as F
from torch import nn

from .classifiers import Classifier
from .registry import Preprocessing

__all__ = ["RESNET18", "IMAGENET_MEAN", "IMAGENET_STD", "GreyToImageNet", "imagenet_weights_path",
           "imagenet_weights_available", "imagenet_weights_hint", "imagenet_resnet18"]

RESNET18 = "resnet18-imagenet"

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class GreyToImageNet(nn.Module):
    """Grey digits in [0, 1] (B, 1, H, W) -> what an ImageNet network expects: (B, 3, size, size), normalised.

    Bilinear resize to ``size`` (anti-aliasing is irrelevant: digits are only enlarged), the grey
    channel repeated three times, then ImageNet's per-channel mean and std.
    """

    def __init__(self, size: int = 32):
        super().__init__()
        if int(size) < 16:
            raise ValueError(f"size must be at least 16 pixels for ResNet-18, got {size}.")
        self.size = int(size)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-2:] != (self.size, self.size):
            x = F.interpolate(x, size=(self.size, self.size), mode="bilinear", align_corners=False)
        return (x.expand(-1, 3, -1, -1) - self.mean) / self.std

    def extra_repr(self) -> str:
        return f"size={self.size}"


def _resnet18_weights():
    from torchvision.models import ResNet18_Weights

    return ResNet18_Weights.IMAGENET1K_V1


def imagenet_weights_path() -> Path:
    """Where torchvision looks for ResNet-18's ImageNet weights: ``torch.hub.get_dir()/checkpoints/<file>``.

    The folder follows ``$TORCH_HOME`` (default ``~/.cache/torch``); the file name is the last
    part of ``ResNet18_Weights.IMAGENET1K_V1.url`` (``resnet18-f37072fd.pth``).
    """
    name = os.path.basename(urlparse(_resnet18_weights().url).path)
    return Path(torch.hub.get_dir()) / "checkpoints" / name


def imagenet_weights_available() -> bool:
    """Whether the ImageNet ResNet-18 weights file is already in the torch hub cache (nothing is downloaded)."""
    return imagenet_weights_path().is_file()


def imagenet_weights_hint() -> str:
    """One sentence on how to put the ImageNet weights where :func:`imagenet_resnet18` finds them."""
    path = imagenet_weights_path()
    return (f"The ImageNet ResNet-18 weights are not in the torch hub cache, so this section is skipped: copy "
            f"{path.name} (from {_resnet18_weights().url}, or from ~/.cache/torch/hub/checkpoints/ of a machine "
            f"that ran torchvision.models.resnet18(weights='IMAGENET1K_V1')) to {path} "
            f"(or point TORCH_HOME at a folder holding hub/checkpoints/{path.name}) and run it again.")


def imagenet_resnet18(num_classes: int = 10, *, size: int = 32, pretrained: bool = True, seed: int | None = None,
                      dataset: str = "mnist") -> Classifier:
    """torchvision's ResNet-18 as a :class:`Classifier` for grey 28x28 digits.

    ``body`` is :class:`GreyToImageNet` (resize to ``size``, 3 channels, ImageNet constants)
    followed by the ResNet without its 1000-class layer (512 features); ``head`` is a new
    ``nn.Linear(512, num_classes)``. The model declares ``"unit"`` preprocessing (pixels in
    [0, 1]), since the ImageNet normalisation happens inside.

    Parameters
    ----------
    num_classes : int
    size : int
        Input side in pixels (32 keeps a CPU run short; 112 or 224 on a GPU).
    pretrained : bool
        Load ``ResNet18_Weights.IMAGENET1K_V1`` through torchvision's weights API, only from the
        local torch hub cache (:func:`imagenet_weights_path`); ``False``: random initialisation.
    seed : int, optional
        Initialisation of the random parts (the head; everything when not pretrained); the global
        RNG is left untouched.
    dataset : str
        The target dataset (its class names).

    Raises
    ------
    FileNotFoundError
        ``pretrained=True`` and the weights are not in the cache; the message says where to put them.
    """
    from torchvision.models import resnet18

    if pretrained and not imagenet_weights_available():
        raise FileNotFoundError(imagenet_weights_hint())
    with torch.random.fork_rng(devices=[]):
        if seed is not None:
            torch.manual_seed(int(seed))
        net = resnet18(weights=_resnet18_weights() if pretrained else None, progress=False)
        net.fc = nn.Identity()
        head = nn.Linear(512, int(num_classes))
    model = Classifier(nn.Sequential(GreyToImageNet(size), net), head)
    model.config = {"name": RESNET18, "kwargs": {"num_classes": int(num_classes), "size": int(size),
                                                 "pretrained": bool(pretrained)}}
    model.preprocessing = Preprocessing.create("unit", dataset)
    return model
