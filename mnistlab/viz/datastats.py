"""Plots of the data-statistics study (notebook 01); the numbers come from :mod:`mnistlab.studies.datastats`.

Every function takes ``ax=None`` (an Axes, an array of Axes, or a Figure / SubFigure: see
:func:`mnistlab.viz.common.panels`): given, it draws into the caller's axes and leaves the
caller's figure layout alone; classes are coloured with :func:`mnistlab.viz.style.class_colors`.
"""
from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from .common import finish, image_grid, one_panel, panels
from .style import PALETTE, class_colors

__all__ = ["plot_samples", "plot_class_counts", "plot_class_means", "plot_pixel_std", "plot_pixel_histograms",
           "plot_mean_intensity", "plot_typical_examples"]


def _tick_labels(ax, x, names) -> None:
    long = max(map(len, map(str, names))) > 3
    ax.set_xticks(x, [str(n) for n in names], rotation=30 if long else 0, ha="right" if long else "center",
                  fontsize=8 if long else 9)


def plot_samples(images, labels, classes=None, ncols: int = 5, title: str | None = None, ax=None):
    """Grid of images titled with their class names (or label numbers).

    Parameters
    ----------
    images : array or tensor ``(n, 28, 28)``
    labels : sequence of int ``(n,)``
    classes : sequence of str, optional
        Class names indexed by label (e.g. ``ImageSet.classes``).
    ncols : int
        Columns of a new figure.
    title : str, optional
        Title of a new figure.
    ax : sequence of Axes, Figure or SubFigure, optional
        At least ``n`` axes of the caller's figure.

    Returns
    -------
    matplotlib.figure.Figure
    """
    labels = np.asarray(labels.cpu() if hasattr(labels, "cpu") else labels).astype(int)
    titles = [classes[i] for i in labels] if classes is not None else [str(i) for i in labels]
    return image_grid(images, titles=titles, ncols=ncols, size=1.6, suptitle=title, ax=ax)


def plot_class_counts(counts: pd.DataFrame, title: str | None = None, ax=None):
    """Examples per class in each split, and each class's share of its split against the uniform share.

    Parameters
    ----------
    counts : pandas.DataFrame
        A :func:`mnistlab.studies.datastats.class_counts` table (``class``, ``train``,
        ``train_frac`` and optionally ``test``, ``test_frac``).
    title : str, optional
        Title of a new figure.
    ax : sequence of 2 Axes, Figure or SubFigure, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    splits = [s for s in ("train", "test") if s in counts]
    if not splits:
        raise ValueError("plot_class_counts needs a 'train' (and optionally 'test') column from class_counts.")
    x = np.arange(len(counts))
    width = 0.8 / len(splits)
    fig, grid, created = panels(ax, 1, 2, figsize=(12, 3.8))
    ax1, ax2 = grid.flat
    for i, split in enumerate(splits):
        off = (i - (len(splits) - 1) / 2) * width
        ax1.bar(x + off, counts[split], width, label=split, color=PALETTE[i])
        ax2.plot(x + off, 100 * counts[f"{split}_frac"], "o", color=PALETTE[i], label=split)
        ax2.vlines(x + off, 100 / len(counts), 100 * counts[f"{split}_frac"], color=PALETTE[i], lw=1.5)
    ax2.axhline(100 / len(counts), color="k", ls="--", lw=1, label=f"uniform ({100 / len(counts):.1f}%)")
    ax1.set(ylabel="images", title="examples per class")
    ax1.set_ylim(0, 1.12 * max(counts[s].max() for s in splits))
    ax2.set(ylabel="share of the split (%)", title="share of each class against uniform")
    for a in (ax1, ax2):
        _tick_labels(a, x, counts["class"])
        a.grid(axis="y", alpha=0.3)
    ax2.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False,
               title="both panels", title_fontsize=8)
    return finish(fig, created, title)


def plot_class_means(means, classes, ncols: int = 5, title: str | None = None, ax=None):
    """The mean image of every class on one grey scale.

    Parameters
    ----------
    means : array ``(C, 28, 28)``
        From :func:`mnistlab.studies.datastats.class_means` (intensities in [0, 1]).
    classes : sequence of str
    ncols : int
        Columns of a new figure.
    title : str, optional
        Title of a new figure.
    ax : sequence of at least C Axes, Figure or SubFigure, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    means = np.asarray(means)
    nrows = math.ceil(len(means) / ncols)
    fig, grid, created = panels(ax, nrows, ncols, figsize=(ncols * 1.8, nrows * 2.25 + 0.4), count=len(means))
    vmax = np.nanmax(means) if np.isfinite(means).any() else 1.0
    for i, a in enumerate(grid.flat[:len(means)]):
        a.axis("off")
        a.imshow(means[i], cmap="gray", vmin=0, vmax=vmax)
        a.set_title(str(classes[i]), fontsize=9)
    return finish(fig, created, title)


def plot_pixel_std(std, mean=None, title: str | None = None, ax=None):
    """Per-pixel standard deviation map (and, if given, the mean image), each with a colour bar.

    Parameters
    ----------
    std : array ``(28, 28)``
        From :func:`mnistlab.studies.datastats.pixel_std`.
    mean : array ``(28, 28)``, optional
        The mean image, drawn first.
    title : str, optional
        Title of a new figure.
    ax : Axes (or 2 with ``mean``), Figure or SubFigure, optional
        The colour bars are inset to the right of each axes, so the caller's layout is kept.

    Returns
    -------
    matplotlib.figure.Figure
    """
    items = ([("mean intensity", np.asarray(mean), "gray")] if mean is not None else []) + \
        [("per-pixel std (0 = constant pixel)", np.asarray(std), "magma")]
    fig, grid, created = panels(ax, 1, len(items), figsize=(4.4 * len(items), 3.9))
    for a, (name, img, cmap) in zip(grid.flat, items):
        im = a.imshow(img, cmap=cmap, vmin=0)
        a.set_title(name, fontsize=10)
        a.set_xticks([])
        a.set_yticks([])
        cax = a.inset_axes([1.03, 0.0, 0.05, 1.0])
        fig.colorbar(im, cax=cax)
    return finish(fig, created, title)


def plot_pixel_histograms(hist: pd.DataFrame, ncols: int = 5, log: bool = True, title: str | None = None,
                          ax=None):
    """One panel per class of a :func:`~mnistlab.studies.datastats.pixel_histograms` table.

    Parameters
    ----------
    hist : pandas.DataFrame
        Bins (rows, indexed by the left edge in grey levels) by classes (columns).
    ncols : int
        Columns of a new figure.
    log : bool
        Log y axis (most pixels are background, in the first bin).
    title : str, optional
        Title of a new figure.
    ax : sequence of at least C Axes, Figure or SubFigure, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    edges = np.linspace(0, 256, len(hist) + 1)
    n = hist.shape[1]
    nrows = math.ceil(n / ncols)
    fig, grid, created = panels(ax, nrows, ncols, figsize=(ncols * 2.4, nrows * 2.1), count=n, sharex=True,
                                sharey=True)
    colors = class_colors(max(n, 1))
    for i, a in enumerate(grid.flat[:n]):
        values = hist.iloc[:, i].to_numpy(dtype=float)
        a.stairs(values, edges, fill=True, color=colors[i], alpha=0.85)
        a.set_title(str(hist.columns[i]), fontsize=9)
        if log:
            a.set_yscale("log")
        a.grid(alpha=0.3)
    if grid.shape == (nrows, ncols):  # a grid of its own: labels on its outer panels
        for a in grid[-1]:
            a.set_xlabel("grey level")
        for a in grid[:, 0]:
            a.set_ylabel("fraction of pixels")
    else:
        grid.flat[0].set_ylabel("fraction of pixels")
    return finish(fig, created, title)


def plot_mean_intensity(table: pd.DataFrame, title: str | None = None, ax=None):
    """Mean pixel intensity per class (± one std of the per-image mean), least and most ink labelled.

    Parameters
    ----------
    table : pandas.DataFrame
        A :func:`~mnistlab.studies.datastats.mean_intensity` table (``class``, ``n``, ``mean``, ``std``).
    title : str, optional
        Axes title (default "ink per class").
    ax : Axes, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig, ax, created = one_panel(ax, figsize=(8, 3.8))
    x = np.arange(len(table))
    ax.bar(x, table["mean"], yerr=table["std"], color=class_colors(len(table)), capsize=3, alpha=0.85,
           error_kw={"lw": 1})
    overall = np.average(table["mean"].fillna(0), weights=table["n"]) if table["n"].sum() else np.nan
    ax.axhline(overall, color="k", ls="--", lw=1, label=f"all classes ({overall:.3f})")
    if table["mean"].notna().any():
        values = table["mean"].to_numpy(dtype=float)
        tops = values + table["std"].fillna(0).to_numpy(dtype=float)
        for which, i in (("least ink", int(np.nanargmin(values))), ("most ink", int(np.nanargmax(values)))):
            ax.annotate(which, (x[i], tops[i]), xytext=(0, 4), textcoords="offset points", ha="center",
                        va="bottom", fontsize=8, fontweight="bold")
    _tick_labels(ax, x, table["class"])
    ax.set(ylabel="mean pixel intensity (0-1)", xlabel="error bars: ±1 std of the per-image mean intensity",
           title=title or "ink per class")
    top = float(np.nanmax(table["mean"] + table["std"])) if table["mean"].notna().any() else 1.0
    ax.set_ylim(0, 1.15 * top)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
    return finish(fig, created)


def plot_typical_examples(images, table: pd.DataFrame, kind: str = "most", title: str | None = None,
                          size: float = 0.9, ax=None):
    """One row per class of the ``kind`` ("most" or "least") typical examples, tiled into one mosaic.

    Parameters
    ----------
    images : array or tensor ``(N, 28, 28)``
        The images the table's ``index`` column refers to (e.g. ``data.images``).
    table : pandas.DataFrame
        From :func:`~mnistlab.studies.datastats.typical_examples`.
    kind : {"most", "least"}
    title : str, optional
        Axes title.
    size : float
        Inches per image in a new figure.
    ax : Axes, optional

    Returns
    -------
    matplotlib.figure.Figure
        The number under each image is its distance to the class mean.
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
    fig, ax, created = one_panel(ax, figsize=(ncols * size + 1.2, len(labels) * size + 0.6))
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
    return finish(fig, created)
