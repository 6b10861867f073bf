"""Plots of the dimensionality-reduction study (notebook 02)."""
from __future__ import annotations

import math
from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from ..studies.embed import _as_2d, _labels, components_for_variance

__all__ = ["plot_scatter", "plot_scatter_3d", "plot_explained_variance", "plot_reconstructions",
           "plot_class_highlights", "plot_axis_distributions", "plot_backends", "plot_representations"]



def _class_names(labels: np.ndarray, classes) -> list[str]:
    n = int(labels.max()) + 1 if len(labels) else 0
    if classes is None:
        return [str(i) for i in range(n)]
    classes = list(classes)
    if len(classes) < n:
        raise ValueError(f"labels go up to {n - 1} but only {len(classes)} class names were given.")
    return [str(c) for c in classes]


def _colors(n: int):
    cmap = plt.get_cmap("tab10" if n <= 10 else "tab20")
    return [cmap(i % cmap.N) for i in range(n)]


def _point_size(n: int) -> float:
    return float(np.clip(4000.0 / max(n, 1), 0.3, 12.0))


def plot_scatter(Y, labels, classes=None, ax=None, title: str | None = None, s: float | None = None,
                 alpha: float = 0.7, legend: bool = True):
    """2-D scatter of ``Y`` coloured by class, with a legend of class names.

    Parameters
    ----------
    Y : array (n, >=2)
        Only the first two columns are drawn.
    labels : array (n,) of int
    classes : sequence of str, optional
        Class names for the legend (e.g. ``ImageSet.classes``).
    ax : matplotlib Axes, optional
        Draw into it; by default a new figure.
    title : str, optional
    s, alpha : marker size (default scales with the number of points) and opacity.
    legend : bool

    Returns
    -------
    matplotlib.figure.Figure
    """
    Y = _as_2d(Y, "Y")
    y = _labels(labels, len(Y)).astype(int)
    if Y.shape[1] < 2:
        raise ValueError("plot_scatter needs at least two columns in Y.")
    names = _class_names(y, classes)
    fig = ax.figure if ax is not None else plt.figure(figsize=(6.5, 5.5))
    ax = ax if ax is not None else fig.add_subplot(111)
    s = _point_size(len(Y)) if s is None else s
    order = np.random.default_rng(0).permutation(len(Y))  # no class painted last on top of all others
    colors = np.array(_colors(len(names)))
    ax.scatter(Y[order, 0], Y[order, 1], c=colors[y[order]], s=s, alpha=alpha, linewidths=0, rasterized=True)
    if legend:
        handles = [plt.Line2D([], [], marker="o", ls="", color=colors[i], label=names[i]) for i in np.unique(y)]
        ax.legend(handles=handles, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False, fontsize=8)
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title)
    return fig


def plot_scatter_3d(Y, labels, classes=None, title: str | None = None, s: float | None = None,
                    elev: float = 20, azim: float = -60):
    """3-D scatter of the first three columns of ``Y`` coloured by class, with a legend.

    Returns
    -------
    matplotlib.figure.Figure
    """
    Y = _as_2d(Y, "Y")
    y = _labels(labels, len(Y)).astype(int)
    if Y.shape[1] < 3:
        raise ValueError("plot_scatter_3d needs at least three columns in Y.")
    names = _class_names(y, classes)
    colors = np.array(_colors(len(names)))
    fig = plt.figure(figsize=(7, 6))
    ax = fig.add_subplot(111, projection="3d")
    order = np.random.default_rng(0).permutation(len(Y))
    s = _point_size(len(Y)) if s is None else s
    ax.scatter(Y[order, 0], Y[order, 1], Y[order, 2], c=colors[y[order]], s=s, alpha=0.6, linewidths=0)
    ax.view_init(elev=elev, azim=azim)
    ax.set(xlabel="PC 1", ylabel="PC 2", zlabel="PC 3")
    handles = [plt.Line2D([], [], marker="o", ls="", color=colors[i], label=names[i]) for i in np.unique(y)]
    ax.legend(handles=handles, loc="center left", bbox_to_anchor=(1.05, 0.5), frameon=False, fontsize=8)
    if title:
        ax.set_title(title)
    return fig


def plot_explained_variance(model, thresholds: Sequence[float] = (0.9, 0.95, 0.99), title: str | None = None):
    """Cumulative explained variance against the number of components, marking ``thresholds``.

    Parameters
    ----------
    model : fitted sklearn PCA or array of explained-variance ratios
    thresholds : fractions to mark (each with its number of components)

    Returns
    -------
    matplotlib.figure.Figure
    """
    ratios = np.asarray(getattr(model, "explained_variance_ratio_", model), dtype=np.float64)
    cumulative = np.cumsum(ratios)
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(np.arange(1, len(cumulative) + 1), cumulative, color="k", lw=1.5)
    reach = {t: k for t, k in components_for_variance(ratios, [t for t in thresholds if t <= cumulative[-1] + 1e-12]).items()}
    for (t, k), c in zip(reach.items(), _colors(len(reach))):
        ax.axhline(t, color=c, ls=":", lw=1)
        ax.axvline(k, color=c, ls="--", lw=1, label=f"{t:.0%}: {k} components")
        ax.plot([k], [cumulative[k - 1]], "o", color=c)
    ax.set(xlabel="number of principal components", ylabel="cumulative explained variance",
           title=title or "PCA: cumulative explained variance", ylim=(0, 1.01))
    ax.set_xscale("log")
    ax.grid(alpha=0.3, which="both")
    ax.legend(loc="lower right")
    return fig


def plot_reconstructions(originals, reconstructions: dict, title: str | None = None, size: float = 1.2):
    """Grid of images: one row per example, the original then its reconstruction for each ``k``.

    Parameters
    ----------
    originals : array (n, 784) or (n, 28, 28)
    reconstructions : dict ``{k: array (n, 784)}`` from :func:`pca_reconstruct`

    Returns
    -------
    matplotlib.figure.Figure
    """
    orig = _as_2d(originals)
    side = int(round(math.sqrt(orig.shape[1])))
    cols = [("original", orig)] + [(f"k = {k}", _as_2d(r)) for k, r in reconstructions.items()]
    for name, arr in cols:
        if arr.shape != orig.shape:
            raise ValueError(f"reconstruction {name} has shape {arr.shape}, expected {orig.shape}.")
    n = len(orig)
    fig, axes = plt.subplots(n, len(cols), figsize=(len(cols) * size, n * size), squeeze=False)
    for j, (name, arr) in enumerate(cols):
        for i in range(n):
            ax = axes[i, j]
            ax.imshow(arr[i].reshape(side, side), cmap="gray", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(name, fontsize=9)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_class_highlights(Y, labels, classes=None, ncols: int = 5, size: float = 2.6, title: str | None = None):
    """One panel per class: that class in colour over all other points in grey.

    Returns
    -------
    matplotlib.figure.Figure
        A grid of ``ceil(n_classes / ncols)`` x ``ncols`` panels (2 x 5 for ten classes).
    """
    Y = _as_2d(Y, "Y")
    y = _labels(labels, len(Y)).astype(int)
    names = _class_names(y, classes)
    present = np.unique(y)
    nrows = max(1, math.ceil(len(present) / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(ncols * size, nrows * size), squeeze=False)
    colors = _colors(len(names))
    s = _point_size(len(Y))
    for ax in axes.flat:
        ax.axis("off")
    for ax, c in zip(axes.flat, present):
        ax.scatter(Y[:, 0], Y[:, 1], c="0.85", s=s, linewidths=0, rasterized=True)
        m = y == c
        ax.scatter(Y[m, 0], Y[m, 1], color=colors[c], s=s * 1.5, linewidths=0, rasterized=True)
        ax.set_title(f"{names[c]} (n={int(m.sum())})", fontsize=9)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_axis_distributions(Y, labels, classes=None, axis_names: Sequence[str] | None = None,
                            title: str | None = None):
    """Distribution of each embedding axis per class (violins), one panel per axis.

    Returns
    -------
    matplotlib.figure.Figure
    """
    Y = _as_2d(Y, "Y")
    y = _labels(labels, len(Y)).astype(int)
    names = _class_names(y, classes)
    present = np.unique(y)
    dims = Y.shape[1]
    axis_names = list(axis_names) if axis_names is not None else [f"t-SNE {i + 1}" for i in range(dims)]
    fig, axes = plt.subplots(dims, 1, figsize=(max(7, 0.7 * len(present)), 2.8 * dims), squeeze=False)
    colors = _colors(len(names))
    for d, ax in enumerate(axes[:, 0]):
        parts = ax.violinplot([Y[y == c, d] for c in present], positions=np.arange(len(present)),
                              showmedians=True, widths=0.85)
        for body, c in zip(parts["bodies"], present):
            body.set_facecolor(colors[c])
            body.set_alpha(0.7)
        ax.set_xticks(np.arange(len(present)), [names[c] for c in present], fontsize=8,
                      rotation=30 if max(len(names[c]) for c in present) > 3 else 0)
        ax.set_ylabel(axis_names[d])
        ax.grid(alpha=0.3, axis="y")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_backends(df: pd.DataFrame, title: str | None = None):
    """Bar charts of a :func:`compare_backends` table: seconds, k-NN accuracy, trustworthiness.

    Returns
    -------
    matplotlib.figure.Figure
    """
    missing = {"backend", "seconds", "knn_acc", "trustworthiness"} - set(df.columns)
    if missing:
        raise ValueError(f"plot_backends needs the columns of compare_backends; missing {sorted(missing)}.")
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.6))
    colors = _colors(len(df))
    for ax, col, label in zip(axes, ("seconds", "knn_acc", "trustworthiness"),
                              ("wall-clock seconds", "10-NN accuracy (2-D)", "trustworthiness")):
        bars = ax.bar(df["backend"].astype(str), df[col], color=colors)
        ax.bar_label(bars, fmt="%.1f" if col == "seconds" else "%.3f", fontsize=8)
        ax.set_title(label)
        if col != "seconds":
            lo = float(df[col].min())
            ax.set_ylim(max(0.0, lo - 0.1), 1.0)
        ax.grid(alpha=0.3, axis="y")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_representations(embeddings: dict, labels, scores: dict | None = None, classes=None, size: float = 4.0,
                         title: str | None = None):
    """Side-by-side 2-D embeddings of several representations of the same points.

    Parameters
    ----------
    embeddings : dict ``{name: array (n, 2)}``
    labels : array (n,)
    scores : dict ``{name: {"silhouette": ..., "knn_acc": ...}}``, optional
        Shown under each panel's title (e.g. from :func:`class_separation`).
    classes : class names for the legend (on the last panel)

    Returns
    -------
    matplotlib.figure.Figure
    """
    if not embeddings:
        raise ValueError("plot_representations needs at least one embedding.")
    fig, axes = plt.subplots(1, len(embeddings), figsize=(size * len(embeddings) + 1.2, size), squeeze=False)
    for j, (ax, (name, Y)) in enumerate(zip(axes[0], embeddings.items())):
        label = name
        if scores and name in scores:
            sc = scores[name]
            parts = [f"{key.replace('_', ' ')} {sc[key]:.3f}" for key in ("silhouette", "knn_acc") if key in sc]
            label += "\n" + ", ".join(parts)
        plot_scatter(Y, labels, classes=classes, ax=ax, title=label, legend=j == len(embeddings) - 1)
        ax.title.set_fontsize(10)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig
