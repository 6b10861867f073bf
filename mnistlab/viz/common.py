"""Plots every notebook uses: a grid of digits and the learning curves of one ``fit`` history."""
from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np

__all__ = ["image_grid", "learning_curves"]


def image_grid(images, labels=None, ncols: int = 5, titles=None, cmap="gray", size: float = 1.4, suptitle=None):
    """Grid of 28x28 images with optional labels/titles; returns the figure."""
    images = np.asarray(images.cpu() if hasattr(images, "cpu") else images)
    if images.ndim == 4:
        images = images[:, 0]
    n = len(images)
    nrows = max(1, math.ceil(n / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(ncols * size, nrows * size * 1.1), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i >= n:
            continue
        ax.imshow(images[i], cmap=cmap)
        if titles is not None:
            ax.set_title(str(titles[i]), fontsize=8)
        elif labels is not None:
            ax.set_title(str(int(labels[i])), fontsize=9)
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    return fig


def learning_curves(history, title: str | None = None):
    """Loss and accuracy per epoch (train and, if present, validation) from a ``fit`` history."""
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.6))
    for split in ("train", "val"):
        if f"{split}_loss" in history and history[f"{split}_loss"].notna().any():
            ax1.plot(history["epoch"], history[f"{split}_loss"], marker="o", label=split)
            ax2.plot(history["epoch"], history[f"{split}_acc"], marker="o", label=split)
    ax1.set(xlabel="epoch", ylabel="cross-entropy", title="loss")
    ax2.set(xlabel="epoch", ylabel="accuracy", title="accuracy")
    for ax in (ax1, ax2):
        ax.grid(alpha=0.3)
        ax.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig
