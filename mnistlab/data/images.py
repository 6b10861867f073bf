"""Turn any picture of a digit into a 28x28 uint8 image prepared the way MNIST was.

MNIST digits are light on a dark background, size-normalised to fit a 20x20 box (aspect
ratio kept, anti-aliased) and placed in a 28x28 frame so that their centre of mass is at the
centre. :func:`to_mnist` repeats those steps for photos, scans and drawings of any size or
colour. Part of the data layer: imports nothing else from the package.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps

__all__ = ["to_mnist", "load_images"]


def _to_gray(image) -> Image.Image:
    if isinstance(image, (str, os.PathLike)):
        path = Path(image)
        if not path.is_file():
            raise FileNotFoundError(f"No image at {path}.")
        try:
            image = Image.open(path)
            image.load()
        except Exception as exc:
            raise ValueError(f"{path} is not a readable image: {exc}") from exc
    elif isinstance(image, torch.Tensor):
        image = image.detach().cpu().numpy()
    if isinstance(image, np.ndarray):
        arr = image
        if arr.ndim == 3 and arr.shape[0] in (1, 3, 4) and arr.shape[-1] not in (1, 3, 4):
            arr = np.moveaxis(arr, 0, -1)  # CHW -> HWC
        if arr.ndim == 3 and arr.shape[-1] == 1:
            arr = arr[..., 0]
        if arr.ndim not in (2, 3):
            raise ValueError(f"Expected an image array of shape (H, W) or (H, W, C), got {arr.shape}.")
        if arr.dtype != np.uint8:
            scale = 255.0 if arr.size and float(np.nanmax(arr)) <= 1.0 else 1.0
            arr = np.clip(np.nan_to_num(arr.astype(np.float64) * scale), 0, 255).astype(np.uint8)
        image = Image.fromarray(arr)
    if not isinstance(image, Image.Image):
        raise TypeError(f"to_mnist takes a path, PIL image, NumPy array or tensor, not {type(image).__name__}.")
    if image.mode in ("RGBA", "LA", "P"):
        image = image.convert("RGBA")
        background = Image.new("RGBA", image.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, image)  # transparent -> white paper
    return image.convert("L")


def to_mnist(image, invert: bool | None = None, threshold: float = 0.2) -> torch.Tensor:
    """Convert one image to a 28x28 uint8 MNIST-style digit.

    Parameters
    ----------
    image : path, PIL.Image, numpy.ndarray or torch.Tensor
        Any size, grayscale or colour (transparency is treated as white paper).
    invert : bool, optional
        Whether to invert; by default the image is inverted when its border is light
        (dark ink on light paper), because MNIST digits are light on dark.
    threshold : float
        Fraction of the maximum ink below which pixels count as background when the
        digit's bounding box is found.

    Returns
    -------
    torch.Tensor
        uint8 (28, 28): the digit fitted into 20x20 and centred by its centre of mass.

    Raises
    ------
    ValueError
        If the image holds no ink (blank), or cannot be read.
    """
    gray = np.asarray(_to_gray(image), dtype=np.float32)
    if invert is None:
        border = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
        invert = float(np.median(border)) > 127
    ink = 255.0 - gray if invert else gray
    ink = ink - np.median(np.concatenate([ink[0], ink[-1], ink[:, 0], ink[:, -1]]))  # paper may be grey
    ink = np.clip(ink, 0, None)
    if ink.max() <= 0:
        raise ValueError("The image is blank: no ink darker or lighter than its background was found.")
    rows = np.flatnonzero((ink > threshold * ink.max()).any(1))
    cols = np.flatnonzero((ink > threshold * ink.max()).any(0))
    crop = ink[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
    crop = crop / crop.max() * 255.0
    h, w = crop.shape
    scale = 20.0 / max(h, w)
    new_h, new_w = max(1, round(h * scale)), max(1, round(w * scale))
    fitted = np.asarray(Image.fromarray(crop.astype(np.float32), mode="F").resize((new_w, new_h), Image.LANCZOS))
    fitted = np.clip(fitted, 0, 255)
    total = fitted.sum()
    ys, xs = np.indices(fitted.shape)
    cy, cx = (ys * fitted).sum() / total, (xs * fitted).sum() / total
    top = int(np.clip(round(13.5 - cy), 0, 28 - new_h))
    left = int(np.clip(round(13.5 - cx), 0, 28 - new_w))
    canvas = np.zeros((28, 28), dtype=np.float32)
    canvas[top:top + new_h, left:left + new_w] = fitted
    return torch.from_numpy(np.round(canvas).astype(np.uint8))


def load_images(paths, **kwargs) -> torch.Tensor:
    """Apply :func:`to_mnist` to several images; returns uint8 (N, 28, 28)."""
    return torch.stack([to_mnist(p, **kwargs) for p in paths])
