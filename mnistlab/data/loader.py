"""Batches cut straight from in-memory uint8 tensors, normalised and augmented on their device.

:class:`TensorLoader` is far faster than a per-sample ``torch.utils.data.DataLoader`` pipeline
(see ``benchmarks/loader_speed.py``); :class:`Augment` applies a random affine map to a whole
batch at once.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterator

import torch
import torch.nn.functional as F

from .datasets import ImageSet, normalization

__all__ = ["Augment", "TensorLoader"]


@dataclass(frozen=True)
class Augment:
    """Random augmentation applied to whole batches on their device.

    Parameters
    ----------
    rotation : float
        Maximum rotation in degrees (uniform in [-rotation, rotation]).
    translate : float
        Maximum shift in pixels along each axis.
    scale : (float, float)
        Range of the zoom factor.
    shear : float
        Maximum shear in degrees.
    hflip : float
        Probability of a horizontal flip (hurts digits; here to test that claim).
    """

    rotation: float = 10.0
    translate: float = 2.0
    scale: tuple[float, float] = (0.9, 1.1)
    shear: float = 0.0
    hflip: float = 0.0

    @classmethod
    def from_dict(cls, settings) -> "Augment":
        """An Augment from plain values, e.g. a ``TrainConfig.augment`` read from JSON (``scale`` as a list).

        Raises
        ------
        TypeError
            An unknown setting.
        """
        return cls(**{k: tuple(v) if k == "scale" else v for k, v in dict(settings).items()})

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Augment a float batch ``x`` of shape (B, C, H, W); returns a new tensor."""
        b, _, h, w = x.shape
        dev = x.device

        def uniform(lo, hi):
            r = torch.rand(b, generator=generator, device=generator.device if generator is not None else "cpu")
            return (lo + (hi - lo) * r).to(dev)

        angle = uniform(-self.rotation, self.rotation) * (math.pi / 180)
        shear = uniform(-self.shear, self.shear) * (math.pi / 180)
        zoom = uniform(*self.scale)
        tx = uniform(-self.translate, self.translate) * (2.0 / w)
        ty = uniform(-self.translate, self.translate) * (2.0 / h)
        flip = torch.where(uniform(0, 1) < self.hflip, -1.0, 1.0)
        cos, sin = torch.cos(angle), torch.sin(angle)
        # affine_grid maps output -> input coordinates, so we build the inverse transform
        theta = torch.zeros(b, 2, 3, device=dev)
        theta[:, 0, 0] = cos / zoom * flip
        theta[:, 0, 1] = (-sin + torch.tan(shear) * cos) / zoom
        theta[:, 1, 0] = sin / zoom * flip
        theta[:, 1, 1] = (cos + torch.tan(shear) * sin) / zoom
        theta[:, 0, 2] = tx
        theta[:, 1, 2] = ty
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


class TensorLoader:
    """Iterate normalised batches cut directly from in-memory uint8 tensors.

    Parameters
    ----------
    data : ImageSet
    batch_size : int
    shuffle : bool
        Reshuffle every epoch with the loader's own generator (seeded by ``seed``).
    normalize : "standard", "unit", "symmetric" or (mean, std)
    augment : Augment or callable, optional
        Applied to each whole float batch in [0, 1] before normalisation.
    device : str or torch.device
        Where the images are kept and the batches are produced.
    drop_last : bool
    seed : int

    Yields
    ------
    (x, y)
        ``x`` float32 (B, 1, 28, 28), normalised, on ``device``; ``y`` int64 (B,).
    """

    def __init__(self, data: ImageSet, batch_size: int = 128, shuffle: bool = True, normalize="standard",
                 augment=None, device="cpu", drop_last: bool = False, seed: int = 0):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}.")
        self.device = torch.device(device)
        self.images = data.images.to(self.device)
        self.labels = data.labels.to(self.device)
        self.dataset = data.dataset
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.mean, self.std = normalization(normalize, data.dataset)
        self.augment = augment
        self.drop_last = drop_last
        self.generator = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        n = len(self.images)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def transform(self, images_u8: torch.Tensor, train: bool = True) -> torch.Tensor:
        """uint8 (B, 28, 28) -> normalised float (B, 1, 28, 28), augmented if ``train``."""
        x = images_u8.unsqueeze(1).float().div_(255.0)
        if train and self.augment is not None:
            x = self.augment(x, self.generator)
        return (x - self.mean) / self.std

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        n = len(self.images)
        order = torch.randperm(n, generator=self.generator).to(self.device) if self.shuffle else None
        stop = n - n % self.batch_size if self.drop_last else n
        for start in range(0, stop, self.batch_size):
            if order is None:
                imgs, ys = self.images[start:start + self.batch_size], self.labels[start:start + self.batch_size]
            else:
                idx = order[start:start + self.batch_size]
                imgs, ys = self.images[idx], self.labels[idx]
            yield self.transform(imgs), ys
