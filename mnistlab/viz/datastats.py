"""Plots of the data-statistics study (notebook 01)."""
from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from .common import image_grid

__all__ = ["plot_samples", "plot_class_counts", "plot_class_means", "plot_pixel_std", "plot_pixel_histograms",
           "plot_mean_intensity", "plot_typical_examples"]



def plot_samples(images, labels, classes=None, ncols: int = 5, title: str | None = None):
    """Grid of images titled with their class names (or label numbers); returns the figure."""
    labels = np.asarray(labels.cpu() if hasattr(labels, "cpu") else labels).astype(int)
    titles = [classes[i] for i in labels] if classes is not None else [str(i) for i in labels]
    return image_grid(images, titles=titles, ncols=ncols, size=1.6, suptitle=title)


def plot_class_counts(counts: pd.DataFrame, title: str | None = None):
    """Bar charts of a :func:`class_counts` table: counts per split, and each class's share vs uniform.

    Returns
    -------
    matplotlib.figure.Figure
    """
    splits = [s for s in ("train", "test") if s in counts]
    x = np.arange(len(counts))
    width = 0.8 / len(splits)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 3.8))
    for i, split in enumerate(splits):
        off = (i - (len(splits) - 1) / 2) * width
        ax1.bar(x + off, counts[split], width, label=split)
        ax2.bar(x + off, 100 * counts[f"{split}_frac"], width, label=split)
    ax2.axhline(100 / len(counts), color="k", ls="--", lw=1, label="uniform")
    ax1.set(ylabel="images", title="examples per class")
    ax1.set_ylim(0, 1.25 * max(counts[s].max() for s in splits))  # room for the legend
    ax2.set(ylabel="% of split", title="share of each class")
    lo = 100 * min(counts[f"{s}_frac"].min() for s in splits)
    hi = 100 * max(counts[f"{s}_frac"].max() for s in splits)
    ax2.set_ylim(max(0.0, lo - 0.3 * (hi - lo) - 0.5), hi + 0.3 * (hi - lo) + 0.5)
    for ax in (ax1, ax2):
        ax.set_xticks(x, counts["class"], rotation=30 if max(map(len, counts["class"])) > 3 else 0, ha="right"
                      if max(map(len, counts["class"])) > 3 else "center")
        ax.grid(axis="y", alpha=0.3)
        ax.legend(fontsize=8, ncol=3, loc="upper center")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_class_means(means, classes, ncols: int = 5, title: str | None = None):
    """The mean image of every class (``(C, 28, 28)`` from :func:`class_means`), on one grey scale."""
    means = np.asarray(means)
    nrows = math.ceil(len(means) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(ncols * 1.8, nrows * 2.2), squeeze=False)
    vmax = np.nanmax(means) if np.isfinite(means).any() else 1.0
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < len(means):
            ax.imshow(means[i], cmap="gray", vmin=0, vmax=vmax)
            ax.set_title(str(classes[i]), fontsize=9)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_pixel_std(std, mean=None, title: str | None = None):
    """Per-pixel standard deviation map (and, if given, the overall mean image) with colour bars."""
    panels = ([("mean intensity", np.asarray(mean), "gray")] if mean is not None else []) + \
             [("per-pixel std", np.asarray(std), "magma")]
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.8), squeeze=False)
    for ax, (name, img, cmap) in zip(axes.flat, panels):
        im = ax.imshow(img, cmap=cmap, vmin=0)
        ax.set_title(name)
        ax.axis("off")
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_pixel_histograms(hist: pd.DataFrame, ncols: int = 5, log: bool = True, title: str | None = None):
    """One panel per class of a :func:`pixel_histograms` table, log y axis by default (most pixels are 0)."""
    edges = np.linspace(0, 256, len(hist) + 1)
    n = hist.shape[1]
    nrows = math.ceil(n / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(ncols * 2.4, nrows * 2.1), sharex=True, sharey=True,
                             squeeze=False)
    colors = plt.get_cmap("tab10")
    for i, ax in enumerate(axes.flat):
        if i >= n:
            ax.axis("off")
            continue
        values = hist.iloc[:, i].to_numpy(dtype=float)
        ax.stairs(values, edges, fill=True, color=colors(i % 10), alpha=0.8)
        ax.set_title(str(hist.columns[i]), fontsize=9)
        if log:
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
    for ax in axes[-1]:
        ax.set_xlabel("grey level")
    for ax in axes[:, 0]:
        ax.set_ylabel("fraction of pixels")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_mean_intensity(table: pd.DataFrame, title: str | None = None):
    """Bar chart of the mean intensity per class (a :func:`mean_intensity` table); least ink in red."""
    fig, ax = plt.subplots(figsize=(8, 3.6))
    x = np.arange(len(table))
    colors = ["tab:blue"] * len(table)
    if table["mean"].notna().any():
        colors[int(np.nanargmin(table["mean"].to_numpy()))] = "tab:red"
    ax.bar(x, table["mean"], yerr=table["std"], color=colors, capsize=3, alpha=0.85)
    overall = np.average(table["mean"].fillna(0), weights=table["n"]) if table["n"].sum() else np.nan
    ax.axhline(overall, color="k", ls="--", lw=1, label=f"all classes ({overall:.3f})")
    long = max(map(len, table["class"])) > 3
    ax.set_xticks(x, table["class"], rotation=30 if long else 0, ha="right" if long else "center")
    ax.set(ylabel="mean pixel intensity", xlabel="error bars: ±1 std of the per-image mean intensity",
           title=title or "ink per class")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_typical_examples(images, table: pd.DataFrame, kind: str = "most", title: str | None = None,
                          size: float = 0.9):
    """One row per class of the ``kind`` ("most" or "least") typical examples of a :func:`typical_examples` table.

    ``images`` are the images the table's ``index`` column refers to (e.g. ``data.images``). The
    examples are tiled into one mosaic (fast to draw even for many classes); the number under
    each image is its distance to the class mean.

    Returns
    -------
    matplotlib.figure.Figure
    """
    if kind not in ("most", "least"):
        raise ValueError(f"kind must be 'most' or 'least', not {kind!r}.")
    images = np.asarray(images.cpu() if hasattr(images, "cpu") else images)
    sel = table[table["kind"] == kind]
    if sel.empty:
        raise ValueError(f"the table has no {kind!r} rows.")
    labels = list(dict.fromkeys(sel["label"]))
    ncols = int(sel["rank"].max()) + 1
    scale = 255.0 if images.dtype == np.uint8 or images.max() > 1.0 else 1.0  # keep dim images dim
    cell, pad = 28, 4
    step = cell + pad
    mosaic = np.full((len(labels) * step + pad, ncols * step + pad), np.nan)
    fig, ax = plt.subplots(figsize=(ncols * size + 1.2, len(labels) * size + 0.6))
    names = []
    for r, label in enumerate(labels):
        rows = sel[sel["label"] == label]
        names.append(str(rows["class"].iloc[0]))
        for rank, index, distance in zip(rows["rank"], rows["index"], rows["distance"]):
            top, left = pad + r * step, pad + int(rank) * step
            mosaic[top:top + cell, left:left + cell] = images[int(index)] / scale
            ax.text(left + cell / 2, top + cell + 0.3, f"{distance:.1f}", ha="center", va="top", fontsize=6,
                    color="0.25")
    cmap = plt.get_cmap("gray").with_extremes(bad="white")
    ax.imshow(np.ma.masked_invalid(mosaic), cmap=cmap, vmin=0, vmax=1, interpolation="nearest")
    ax.set_yticks([pad + r * step + cell / 2 for r in range(len(labels))], names, fontsize=8)
    ax.set_xticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)
    ax.tick_params(length=0)
    ax.set_title(title or f"{kind} typical (distance to class mean)", fontsize=10)
    fig.tight_layout()
    return fig
