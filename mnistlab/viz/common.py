"""Plots every notebook uses (a grid of digits, learning curves) and the axes rules all plots follow.

The rule of every public plot function in :mod:`mnistlab.viz`: it takes ``ax=None`` (one panel),
``axes=None`` (several panels) or ``fig=None`` (a layout of its own inside a caller's figure).
Given them, it draws into the caller's axes and returns the caller's figure without touching
its layout (no ``tight_layout``, no ``subplots_adjust``, no suptitle); without them, it creates
a figure, lays it out and returns it. :func:`panels` and :func:`finish` implement that rule so
each module writes it once.
"""
from __future__ import annotations

import math
from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from .style import config_colors

__all__ = ["image_grid", "learning_curves", "panels", "finish"]


def panels(given=None, nrows: int = 1, ncols: int = 1, figsize=None, **subplot_kw):
    """The caller's axes, or a new figure with ``nrows x ncols`` of them.

    Parameters
    ----------
    given : matplotlib Axes, sequence or array of Axes, optional
        The caller's axes (what the plot received as ``ax=`` or ``axes=``). Their number must be at least ``nrows * ncols``.
    nrows, ncols : int
        The panels the plot needs (and the grid of a new figure).
    figsize : (float, float), optional
        Size of a new figure (default: 3.2 x 2.8 inches per panel).
    **subplot_kw
        Passed to :func:`matplotlib.pyplot.subplots` for a new figure (e.g. ``sharex=True``).

    Returns
    -------
    (Figure, numpy.ndarray of Axes, bool)
        The figure, the axes as an ``(nrows, ncols)`` array, and whether the figure was created
        here (only then may the plot lay it out, see :func:`finish`).

    Raises
    ------
    ValueError
        If the caller passed fewer axes than the plot needs, or axes of several figures.
    """
    if given is None:
        figsize = figsize or (3.2 * ncols, 2.8 * nrows)
        fig, grid = plt.subplots(nrows, ncols, figsize=figsize, squeeze=False, **subplot_kw)
        return fig, grid, True
    flat = list(np.ravel(np.asarray(given, dtype=object)))
    if len(flat) < nrows * ncols:
        raise ValueError(f"this plot needs {nrows * ncols} axes ({nrows} x {ncols}); {len(flat)} were given. "
                         f"Pass e.g. axes=fig.subplots({nrows}, {ncols}).")
    figures = {id(a.figure) for a in flat}
    if len(figures) > 1:
        raise ValueError("the axes passed belong to several figures; pass axes of one figure.")
    return flat[0].figure, np.asarray(flat[: nrows * ncols], dtype=object).reshape(nrows, ncols), False


def finish(fig, created: bool, title: str | None = None, **suptitle_kw):
    """Lay out a figure the plot created (suptitle, ``tight_layout``); leave a caller's figure alone.

    Returns
    -------
    matplotlib.figure.Figure
        ``fig``.
    """
    if created:
        if title:
            fig.suptitle(title, **suptitle_kw)
        fig.tight_layout()
    return fig


def _as_images(images) -> np.ndarray:
    images = np.asarray(images.detach().cpu() if hasattr(images, "detach") else images)
    if images.ndim == 4:
        images = images[:, 0]
    if images.ndim == 2:  # flat (n, 784)
        side = int(round(math.sqrt(images.shape[1])))
        images = images.reshape(len(images), side, side)
    if images.ndim != 3:
        raise ValueError(f"images must be (n, 28, 28), (n, 1, 28, 28) or (n, 784); got shape {images.shape}.")
    return images


def image_grid(images, labels=None, ncols: int = 5, titles=None, cmap="gray", size: float = 1.4, suptitle=None,
               axes=None):
    """Grid of images with optional labels or titles.

    Parameters
    ----------
    images : array or tensor ``(n, 28, 28)``, ``(n, 1, 28, 28)`` or ``(n, 784)``
        uint8 (0..255) or float (0..1) pixels; each image keeps its own grey scale.
    labels : sequence of int, optional
        Shown as titles when ``titles`` is not given.
    ncols : int
        Columns of a new figure.
    titles : sequence of str, optional
    cmap : str
    size : float
        Inches per image in a new figure.
    suptitle : str, optional
        Title of a new figure.
    axes : sequence of Axes, optional
        At least ``n`` axes of the caller's figure; unused ones are switched off.

    Returns
    -------
    matplotlib.figure.Figure
    """
    images = _as_images(images)
    n = len(images)
    if n == 0:
        raise ValueError("image_grid needs at least one image.")
    if titles is not None and len(titles) != n:
        raise ValueError(f"{len(titles)} titles for {n} images.")
    nrows = max(1, math.ceil(n / ncols))
    if axes is None:
        fig, grid, created = panels(None, nrows, ncols, figsize=(ncols * size, nrows * size * 1.1))
    else:
        fig, grid, created = panels(axes, 1, n)
        grid = np.ravel(np.asarray(axes, dtype=object))
    for i, ax in enumerate(np.ravel(grid)):
        ax.axis("off")
        if i >= n:
            continue
        ax.imshow(images[i], cmap=cmap)
        if titles is not None:
            ax.set_title(str(titles[i]), fontsize=8)
        elif labels is not None:
            ax.set_title(str(int(labels[i])), fontsize=9)
    return finish(fig, created, suptitle)


_SPLITS = (("train", "--", "train"), ("val", "-", "validation"))


def _t_band(values: np.ndarray, confidence: float = 0.95):
    """Mean and half-width of a Student-t interval along axis 0 (NaN half-width with one run)."""
    from scipy import stats

    n = np.isfinite(values).sum(0)
    mean = np.nanmean(values, 0)
    std = np.nanstd(values, 0, ddof=1) if values.shape[0] > 1 else np.full(values.shape[1], np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        half = stats.t.ppf(0.5 + confidence / 2, np.maximum(n - 1, 1)) * std / np.sqrt(n)
    return mean, np.where(n > 1, half, np.nan)


def learning_curves(history: pd.DataFrame, metrics: Sequence[str] = ("loss", "acc"), hue: str = "config",
                    percent: bool = True, title: str | None = None, axes=None, confidence: float = 0.95):
    """Per-epoch curves of one or many runs: train dashed, validation solid, one colour per config.

    The one learning-curve plotter of the package. With several seeds of a config, every seed is a
    thin line and the mean is drawn with its ``confidence`` Student-t interval as a band.

    Parameters
    ----------
    history : pandas.DataFrame
        A :func:`mnistlab.fit` history (``epoch``, ``train_loss``, ``train_acc``, ``val_loss``,
        ``val_acc``) or the tidy frame of :func:`mnistlab.experiments.run_many` /
        ``run_grid`` (the same columns plus ``config`` and ``seed``).
    metrics : sequence of str
        One panel per metric, e.g. ``("loss", "acc")``; each draws ``train_<m>`` and ``val_<m>``
        where present.
    hue : str
        Column naming the config (absent: one config).
    percent : bool
        Draw accuracies (metrics ending in ``acc``) in percent.
    title : str, optional
        Title of a new figure.
    axes : sequence of Axes, optional
        One per metric, in the caller's figure.
    confidence : float
        Level of the band around the mean over seeds.

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    ValueError
        If ``history`` has no ``epoch`` column or none of the requested metrics.
    """
    if "epoch" not in history.columns:
        raise ValueError(f"learning_curves needs an 'epoch' column; got {list(history.columns)}.")
    metrics = list(metrics)
    present = [m for m in metrics if any(f"{s}_{m}" in history.columns for s, _, _ in _SPLITS)]
    if len(present) != len(metrics):
        missing = sorted(set(metrics) - set(present))
        raise ValueError(f"no train_/val_ column for metric(s) {missing}; columns: {list(history.columns)}.")
    df = history[history["epoch"] > 0] if (history["epoch"] > 0).any() else history
    names = list(dict.fromkeys(df[hue])) if hue in df.columns else [None]
    colors = config_colors(names)
    fig, grid, created = panels(axes, 1, len(metrics), figsize=(5.0 * len(metrics) + 1.6, 3.6))
    for ax, metric in zip(grid.flat, metrics):
        scale = 100.0 if percent and metric.endswith("acc") else 1.0
        for name in names:
            g = df if name is None else df[df[hue] == name]
            seeds = g["seed"] if "seed" in g.columns else pd.Series(0, index=g.index)
            for split, ls, split_label in _SPLITS:
                col = f"{split}_{metric}"
                if col not in g.columns or g[col].isna().all():
                    continue
                wide = g.assign(_seed=seeds).pivot_table(index="_seed", columns="epoch", values=col, aggfunc="last")
                epochs = wide.columns.to_numpy()
                values = wide.to_numpy(dtype=float) * scale
                color = colors[name]
                label = split_label if name is None else f"{name} ({split_label})"
                if len(values) == 1:
                    ax.plot(epochs, values[0], ls=ls, marker="o", ms=3, color=color, label=label)
                    continue
                for row in values:
                    ax.plot(epochs, row, ls=ls, color=color, lw=0.6, alpha=0.35)
                mean, half = _t_band(values, confidence)
                ax.plot(epochs, mean, ls=ls, marker="o", ms=3, color=color, lw=1.8,
                        label=f"{label}: mean of {len(values)}")
                ax.fill_between(epochs, mean - half, mean + half, color=color, alpha=0.18, lw=0)
        unit = " (%)" if scale == 100.0 else ""
        ax.set(xlabel="epoch", ylabel=metric.replace("_", " ") + unit)
        if metric == "loss":
            ax.set_ylabel("cross-entropy loss")
        ax.grid(alpha=0.3)
        ax.xaxis.get_major_locator().set_params(integer=True)
    handles, labels = grid.flat[-1].get_legend_handles_labels()
    if handles:
        several = "seed" in df.columns and (df.groupby(hue)["seed"].nunique().max() if hue in df.columns
                                            else df["seed"].nunique()) > 1
        note = f"thin: seeds; band: {confidence:.0%} CI of the mean" if several else None
        grid.flat[-1].legend(handles, labels, loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=7,
                             frameon=False, title=note, title_fontsize=7)
    return finish(fig, created, title)

