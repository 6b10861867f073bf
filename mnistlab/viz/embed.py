"""Plots of the dimensionality-reduction study (notebook 02); the numbers come from :mod:`mnistlab.studies.embed`.

Every function takes ``ax=None`` (an Axes, an array of Axes, or a Figure / SubFigure: see
:func:`mnistlab.viz.common.panels`): given, it draws into the caller's axes and leaves the
caller's figure layout alone. Classes are coloured with
:func:`mnistlab.viz.style.class_colors`; scatter plots put each class's name at its median.
"""
from __future__ import annotations

import math
from typing import Mapping, Sequence

import matplotlib.patheffects as pe
from matplotlib.colors import to_rgba_array
import matplotlib.ticker as mticker
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from ..studies.embed import _as_2d, _labels, components_for_variance
from .common import finish, one_panel, panels
from .style import PALETTE, class_colors, config_colors

__all__ = ["plot_scatter", "plot_pairs", "tsne_benchmark_file", "plot_explained_variance", "plot_reconstructions", "plot_class_highlights",
           "plot_axis_distributions", "plot_pair_distances", "plot_knn_report", "plot_backends", "plot_tsne_scaling",
           "plot_representations", "MIN_REPEATS", "tsne_benchmark_runs"]

_OUTLINE = [pe.withStroke(linewidth=3, foreground="white")]


def _class_names(labels: np.ndarray, classes) -> list[str]:
    n = int(labels.max()) + 1 if len(labels) else 0
    if classes is None:
        return [str(i) for i in range(n)]
    classes = list(classes)
    if len(classes) < n:
        raise ValueError(f"labels go up to {n - 1} but only {len(classes)} class names were given.")
    return [str(c) for c in classes]


def _classed(Y, labels, classes) -> tuple[np.ndarray, np.ndarray, list[str], np.ndarray]:
    """(points as a 2-D array, labels as ints, a name per label, the labels present) of a per-class plot."""
    Y = _as_2d(Y, "Y")
    y = _labels(labels, len(Y)).astype(int)
    return Y, y, _class_names(y, classes), np.unique(y)


def _point_size(n: int) -> float:
    """Marker area (points^2) that keeps a scatter of ``n`` points readable: 2 for 70,000, 14 for 2,000."""
    return float(np.clip(30_000.0 / max(n, 1), 2.0, 24.0))


def _point_alpha(n: int) -> float:
    return float(np.clip(600.0 / max(n, 1) ** 0.75, 0.25, 0.8))


def _label_centroids(ax, Y: np.ndarray, y: np.ndarray, names: list[str], colors, fontsize: float = 10) -> None:
    for c in np.unique(y):
        cx, cy = np.median(Y[y == c, 0]), np.median(Y[y == c, 1])
        ax.text(cx, cy, names[c], color=colors[c], fontsize=fontsize, fontweight="bold", ha="center", va="center",
                path_effects=_OUTLINE, zorder=5)


def plot_scatter(Y, labels, classes=None, ax=None, title: str | None = None, s: float | None = None,
                 alpha: float | None = None, legend: bool = True, centroids: bool = True,
                 axis_names: Sequence[str] | None = None, colors: Sequence | None = None):
    """2-D scatter of ``Y`` coloured by class, each class's name written at its median.

    Parameters
    ----------
    Y : array (n, >=2)
        Only the first two columns are drawn.
    labels : array (n,) of int
    classes : sequence of str, optional
        Class names indexed by label (e.g. ``ImageSet.classes``).
    ax : Axes, optional
        Draw into it; by default a new figure.
    title : str, optional
    s, alpha : float, optional
        Marker area and opacity (defaults scale with the number of points).
    legend : bool
        A legend of class colours to the right of the axes.
    centroids : bool
        Write each class's name at its median position.
    axis_names : (str, str), optional
        Axis labels (e.g. ``("PC 1", "PC 2")``); without them the axes carry no ticks (t-SNE
        coordinates mean nothing).
    colors : sequence of matplotlib colours, optional
        One per class, indexed by label (default: the project's class palette). Pass the digits'
        own colours when the labels are relabelled digits (e.g. 5-9 as 0-4), so a 5 keeps its colour.

    Returns
    -------
    matplotlib.figure.Figure
    """
    Y = _as_2d(Y, "Y")
    y = _labels(labels, len(Y)).astype(int)
    if Y.shape[1] < 2:
        raise ValueError("plot_scatter needs at least two columns in Y.")
    names = _class_names(y, classes)
    fig, ax, created = one_panel(ax, figsize=(7.0, 5.8))
    s = _point_size(len(Y)) if s is None else s
    alpha = _point_alpha(len(Y)) if alpha is None else alpha
    order = np.random.default_rng(0).permutation(len(Y))  # no class painted last on top of all others
    if colors is not None and len(colors) < len(names):
        raise ValueError(f"colors has {len(colors)} entries for {len(names)} classes: give one colour per class.")
    colors = to_rgba_array(class_colors(len(names)) if colors is None else list(colors))
    ax.scatter(Y[order, 0], Y[order, 1], c=colors[y[order]], s=s, alpha=alpha, linewidths=0, rasterized=True)
    if centroids:
        _label_centroids(ax, Y, y, names, colors)
    if legend:
        handles = [plt.Line2D([], [], marker="o", ls="", color=colors[i], label=names[i]) for i in np.unique(y)]
        ax.legend(handles=handles, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False, fontsize=8)
    if axis_names:
        ax.set(xlabel=axis_names[0], ylabel=axis_names[1])
        ax.grid(alpha=0.2)
    else:
        ax.set_xticks([])
        ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=10)
    return finish(fig, created)


def plot_pairs(Y, labels, classes=None, axis_names: Sequence[str] | None = None, title: str | None = None,
               ax=None, bins: int = 40):
    """Pair plot of the first ``d`` columns of ``Y``: scatters below the diagonal, per-class histograms on it.

    The readable replacement of a 3-D scatter: PC1-PC2, PC1-PC3 and PC2-PC3 side by side, with
    class names at their medians.

    Parameters
    ----------
    Y : array (n, d)
        ``d`` from 2 to 5 columns (e.g. the first three principal components).
    labels : array (n,) of int
    classes : sequence of str, optional
    axis_names : sequence of str, optional
        One per column (default ``dim 1``, ``dim 2``, ...).
    title : str, optional
        Title of a new figure.
    ax : ``d x d`` Axes, Figure or SubFigure, optional
        The caller's grid (e.g. ``fig.subplots(3, 3)``); the panels above the diagonal are switched off.
    bins : int
        Histogram bins on the diagonal.

    Returns
    -------
    matplotlib.figure.Figure
    """
    Y = _as_2d(Y, "Y")
    d = Y.shape[1]
    if not 2 <= d <= 5:
        raise ValueError(f"plot_pairs draws 2 to 5 columns; Y has {d}. Pass e.g. Y[:, :3].")
    y = _labels(labels, len(Y)).astype(int)
    names = _class_names(y, classes)
    axis_names = list(axis_names) if axis_names is not None else [f"dim {i + 1}" for i in range(d)]
    fig, grid, created = panels(ax, d, d, figsize=(3.0 * d + 1.2, 3.0 * d))
    colors = np.array(class_colors(len(names)))
    order = np.random.default_rng(0).permutation(len(Y))
    s, alpha = _point_size(len(Y)) * 0.6, _point_alpha(len(Y))
    for i in range(d):
        for j in range(d):
            a = grid[i, j]
            if j > i:
                a.axis("off")
                continue
            if i == j:
                edges = np.linspace(Y[:, i].min(), Y[:, i].max(), bins + 1)
                for c in np.unique(y):
                    a.hist(Y[y == c, i], bins=edges, histtype="step", color=colors[c], density=True, lw=1.2)
                a.set_yticks([])
            else:
                a.scatter(Y[order, j], Y[order, i], c=colors[y[order]], s=s, alpha=alpha, linewidths=0,
                          rasterized=True)
                _label_centroids(a, Y[:, [j, i]], y, names, colors, fontsize=8)
                a.set_ylabel(axis_names[i])
            if i == d - 1:
                a.set_xlabel(axis_names[j])
            a.tick_params(labelsize=7)
            a.grid(alpha=0.2)
    handles = [plt.Line2D([], [], marker="o", ls="", color=colors[c], label=names[c]) for c in np.unique(y)]
    grid[0, -1].legend(handles=handles, loc="upper right", frameon=False, fontsize=8, ncol=2,
                       title="diagonal: distribution of each class", title_fontsize=8)
    return finish(fig, created, title)


def plot_explained_variance(model, thresholds: Sequence[float] = (0.9, 0.95, 0.99), title: str | None = None,
                            ax=None):
    """Cumulative explained variance against the number of components, marking ``thresholds``.

    Parameters
    ----------
    model : fitted sklearn PCA or array of explained-variance ratios
    thresholds : fractions to mark (each with its number of components)
    title : str, optional
    ax : Axes, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    ratios = np.asarray(getattr(model, "explained_variance_ratio_", model), dtype=np.float64)
    cumulative = np.cumsum(ratios)
    fig, ax, created = one_panel(ax, figsize=(7, 4))
    ax.plot(np.arange(1, len(cumulative) + 1), 100 * cumulative, color="k", lw=1.5)
    reach = components_for_variance(ratios, [t for t in thresholds if t <= cumulative[-1] + 1e-12])
    for (t, k), c in zip(reach.items(), config_colors(list(reach)).values()):
        ax.axhline(100 * t, color=c, ls=":", lw=1)
        ax.axvline(k, color=c, ls="--", lw=1, label=f"{t:.0%}: {k} components")
        ax.plot([k], [100 * cumulative[k - 1]], "o", color=c)
    ax.set(xlabel="number of principal components (log scale)", ylabel="cumulative explained variance (%)",
           title=title or "PCA: cumulative explained variance", ylim=(0, 101))
    ax.set_xscale("log")
    ax.grid(alpha=0.3, which="both")
    ax.legend(loc="lower right")
    return finish(fig, created)


def plot_reconstructions(originals, reconstructions: Mapping, title: str | None = None, size: float = 1.2,
                         ax=None):
    """Grid of images: one row per example, the original then its reconstruction for each ``k``.

    Parameters
    ----------
    originals : array (n, 784) or (n, 28, 28)
    reconstructions : dict ``{k: array (n, 784)}``
        From :func:`mnistlab.studies.embed.pca_reconstruct`.
    title : str, optional
        Title of a new figure.
    size : float
        Inches per image in a new figure.
    ax : ``n x (1 + len(reconstructions))`` Axes, Figure or SubFigure, optional

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
    fig, grid, created = panels(ax, n, len(cols), figsize=(len(cols) * size, n * size))
    for j, (name, arr) in enumerate(cols):
        for i in range(n):
            a = grid[i, j]
            a.imshow(np.clip(arr[i].reshape(side, side), 0, 1), cmap="gray", vmin=0, vmax=1)
            a.set_xticks([])
            a.set_yticks([])
            if i == 0:
                a.set_title(name, fontsize=9)
    return finish(fig, created, title)


def plot_class_highlights(Y, labels, classes=None, ncols: int = 5, size: float = 2.6, title: str | None = None,
                          scores: Mapping | None = None, ax=None):
    """One panel per class: that class in its colour over all other points in grey.

    Parameters
    ----------
    Y : array (n, >=2)
    labels : array (n,) of int
    classes : sequence of str, optional
    ncols : int
        Columns of a new figure.
    size : float
        Inches per panel in a new figure.
    title : str, optional
        Title of a new figure.
    scores : mapping ``{class name: float}``, optional
        A number per class written in its panel's title (e.g. its 10-NN accuracy from
        :func:`~mnistlab.studies.embed.knn_report`).
    ax : sequence of at least C Axes, Figure or SubFigure, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    Y, y, names, present = _classed(Y, labels, classes)
    nrows = max(1, math.ceil(len(present) / ncols))
    fig, grid, created = panels(ax, nrows, ncols, figsize=(ncols * size, nrows * size), count=len(present))
    colors = class_colors(len(names))
    s = _point_size(len(Y))
    for a, c in zip(grid.flat, present):
        a.set_xticks([])
        a.set_yticks([])
        a.scatter(Y[:, 0], Y[:, 1], c="0.85", s=s * 0.5, linewidths=0, rasterized=True)
        m = y == c
        a.scatter(Y[m, 0], Y[m, 1], color=colors[c], s=s, alpha=max(_point_alpha(int(m.sum())), 0.5), linewidths=0,
                  rasterized=True)
        label = f"{names[c]} (n={int(m.sum()):,})"
        if scores is not None and names[c] in scores:
            label += f"\n10-NN acc. {scores[names[c]]:.3f}"
        a.set_title(label, fontsize=9)
    return finish(fig, created, title)


def plot_axis_distributions(Y, labels, classes=None, axis_names: Sequence[str] | None = None,
                            title: str | None = None, ax=None):
    """Per-class box plots of each embedding axis (box: quartiles; whiskers: 1.5 IQR; no outlier dots).

    Parameters
    ----------
    Y : array (n, d)
    labels : array (n,) of int
    classes : sequence of str, optional
    axis_names : sequence of str, optional
        One per column (default ``t-SNE 1``, ``t-SNE 2``...).
    title : str, optional
        Title of a new figure.
    ax : sequence of d Axes, Figure or SubFigure, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    Y, y, names, present = _classed(Y, labels, classes)
    dims = Y.shape[1]
    axis_names = list(axis_names) if axis_names is not None else [f"t-SNE {i + 1}" for i in range(dims)]
    fig, grid, created = panels(ax, 1, dims, figsize=(max(5.0, 0.55 * len(present)) * dims, 3.6))
    colors = class_colors(len(names))
    long = max(len(names[c]) for c in present) > 3
    for d, ax in enumerate(grid.flat):
        parts = ax.boxplot([Y[y == c, d] for c in present], positions=np.arange(len(present)), widths=0.65,
                           whis=1.5, showfliers=False, patch_artist=True, medianprops={"color": "k"})
        for box, c in zip(parts["boxes"], present):
            box.set_facecolor(colors[c])
            box.set_alpha(0.8)
        ax.set_xticks(np.arange(len(present)), [names[c] for c in present], fontsize=8,
                      rotation=30 if long else 0, ha="right" if long else "center")
        ax.set_ylabel(f"{axis_names[d]} coordinate")
        ax.set_title(axis_names[d], fontsize=10)
        ax.grid(alpha=0.3, axis="y")
    return finish(fig, created, title)


def plot_pair_distances(tables: Mapping[str, pd.DataFrame], scores: Mapping[str, float] | None = None,
                        title: str | None = None, ax=None, bins: int = 60):
    """Distances of same-class and different-class pairs in several spaces (e.g. 784-D pixels vs 2-D t-SNE).

    Parameters
    ----------
    tables : mapping ``{space name: DataFrame}``
        From :func:`mnistlab.studies.embed.pair_distances` (columns ``pair``, ``relative``).
    scores : mapping ``{space name: float}``, optional
        Written in each panel's title, e.g. :func:`~mnistlab.studies.embed.same_class_closer`.
    title : str, optional
        Title of a new figure.
    ax : sequence of ``len(tables)`` Axes, Figure or SubFigure, optional
    bins : int

    Returns
    -------
    matplotlib.figure.Figure
        Distances are relative to the median of all pairs of that space, so the panels share one x axis.
    """
    if not tables:
        raise ValueError("plot_pair_distances needs at least one table.")
    fig, grid, created = panels(ax, 1, len(tables), figsize=(4.6 * len(tables) + 1.4, 3.4))
    hi = max(float(df["relative"].quantile(0.995)) for df in tables.values())
    edges = np.linspace(0, hi, bins + 1)
    for ax, (name, df) in zip(grid.flat, tables.items()):
        for kind, color in (("same class", PALETTE[2]), ("different classes", "0.45")):
            values = df.loc[df["pair"] == kind, "relative"]
            ax.hist(values, bins=edges, density=True, histtype="stepfilled", alpha=0.45, color=color,
                    label=f"{kind} ({len(values):,} pairs)")
            ax.axvline(values.median(), color=color, ls="--", lw=1.2)
        label = name if scores is None or name not in scores else \
            f"{name}\n{scores[name]:.0%} of same-class pairs closer than the median other pair"
        ax.set_title(label, fontsize=9)
        ax.set(xlabel="distance / median distance of all pairs", xlim=(0, hi))
        ax.set_yticks([])
        ax.grid(alpha=0.3)
    grid.flat[-1].legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8, frameon=False,
                         title="dashed: medians", title_fontsize=8)
    return finish(fig, created, title)


def plot_knn_report(report, n_pairs: int = 8, title: str | None = None, ax=None):
    """Per-class k-NN accuracy (hardest first) and the most confused class pairs of a :class:`KNNReport`.

    Parameters
    ----------
    report : mnistlab.studies.embed.KNNReport
    n_pairs : int
        Pairs shown in the right panel.
    title : str, optional
        Title of a new figure.
    ax : sequence of 2 Axes, Figure or SubFigure, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig, grid, created = panels(ax, 1, 2, figsize=(11, 3.9))
    ax1, ax2 = grid.flat
    per = report.per_class.sort_values("accuracy", kind="stable")
    colors = class_colors(len(report.per_class))
    x = np.arange(len(per))
    ax1.scatter(x, 100 * per["accuracy"], c=[colors[i] for i in per.index], s=60, zorder=3)
    overall = 100 * report.accuracy
    ax1.axhline(overall, color="k", ls="--", lw=1, label=f"all classes {overall:.2f}%")
    ax1.set_xticks(x, per["class"], fontsize=8, rotation=30 if per["class"].str.len().max() > 3 else 0)
    ax1.set(ylabel=f"{report.k}-NN accuracy (%)", title=f"per class, hardest first ({report.k}-NN, cross-validated)")
    lo = float(100 * per["accuracy"].min())
    ax1.set_ylim(max(0.0, lo - 0.15 * (100 - lo) - 0.5), 100.0)
    ax1.grid(alpha=0.3, axis="y")
    ax1.legend(fontsize=8, loc="lower right")
    pairs = report.pairs.head(n_pairs).iloc[::-1]
    y = np.arange(len(pairs))
    ax2.barh(y, 100 * pairs["rate"], color="0.55")
    for yi, (_, r) in zip(y, pairs.iterrows()):
        ax2.text(100 * r["rate"], yi, f" {int(r['confusions']):,}", va="center", fontsize=8)
    ax2.set_yticks(y, [f"{a} / {b}" for a, b in zip(pairs["a"], pairs["b"])], fontsize=8)
    ax2.set(xlabel="points of the pair predicted as the other class (%)",
            title="most overlapping class pairs (count at bar end)")
    ax2.set_xlim(0, 1.2 * 100 * float(pairs["rate"].max()) if len(pairs) and pairs["rate"].max() > 0 else 1)
    ax2.grid(alpha=0.3, axis="x")
    return finish(fig, created, title)


def plot_backends(df: pd.DataFrame, title: str | None = None, ax=None):
    """Seconds, 10-NN accuracy and trustworthiness of each t-SNE backend (a ``compare_backends`` table).

    Parameters
    ----------
    df : pandas.DataFrame
        ``BackendComparison.table`` (columns ``backend``, ``seconds``, ``knn_acc``, ``trustworthiness``).
    title : str, optional
        Title of a new figure.
    ax : sequence of 3 Axes, Figure or SubFigure, optional

    Returns
    -------
    matplotlib.figure.Figure
        Quality panels are zoomed to the measured range (dots, not bars on a cut axis).
    """
    missing = {"backend", "seconds", "knn_acc", "trustworthiness"} - set(df.columns)
    if missing:
        raise ValueError(f"plot_backends needs the columns of compare_backends; missing {sorted(missing)}.")
    fig, grid, created = panels(ax, 1, 3, figsize=(12, 3.4))
    colors = config_colors(list(df["backend"]))
    names = df["backend"].astype(str).tolist()
    y = np.arange(len(df))[::-1]
    for ax, col, label in zip(grid.flat, ("seconds", "knn_acc", "trustworthiness"),
                              ("wall-clock seconds", "10-NN accuracy in 2-D", "trustworthiness (10 neighbours)")):
        values = df[col].to_numpy(dtype=float)
        if col == "seconds":
            ax.barh(y, values, color=[colors[n] for n in names])
            for yi, v in zip(y, values):
                ax.text(v, yi, f" {v:.1f} s", va="center", fontsize=8)
            ax.set_xlim(0, 1.25 * values.max())
        else:
            ax.scatter(values, y, c=[colors[n] for n in names], s=60, zorder=3)
            for yi, v in zip(y, values):
                ax.annotate(f"{v:.4f}", (v, yi), xytext=(0, 7), textcoords="offset points", ha="center", fontsize=8)
            span = max(values.max() - values.min(), 0.002)
            ax.set_xlim(values.min() - 0.6 * span, min(1.0, values.max() + 0.6 * span) + 1e-9)
        ax.set_yticks(y, names)
        ax.set_ylim(-0.7, len(df) - 0.3)
        ax.set_title(label, fontsize=10)
        ax.grid(alpha=0.3, axis="x")
    return finish(fig, created, title)


MIN_REPEATS = 3
"""Fewest timed runs per backend and size that :func:`plot_tsne_scaling` draws: one run on a shared
machine measures the machine's load as much as the code."""


def tsne_benchmark_file() -> "Path":
    """Where ``benchmarks/tsne_speed.py`` writes its result: ``benchmarks/results/tsne_speed.json`` of the checkout.

    Outside a source checkout (an installed package), the same path under the working directory.
    """
    from pathlib import Path

    from .._util import project_root

    return (project_root() or Path.cwd()) / "benchmarks" / "results" / "tsne_speed.json"


def tsne_benchmark_runs(result) -> pd.DataFrame:
    """The timed runs of a ``benchmarks/tsne_speed.py`` result as a table for :func:`plot_tsne_scaling`.

    Parameters
    ----------
    result : dict or path
        The benchmark's JSON (loaded, or the path of ``benchmarks/results/tsne_speed.json``):
        ``measured.rows`` holds one row per run (``backend``, ``n``, ``repeat``, ``seconds``, ...);
        a result written before the script timed several sizes and repeats has rows without
        ``n`` / ``repeat`` and gets ``measured.n`` and repeat 0. A path that does not exist gives
        an empty table.

    Returns
    -------
    pandas.DataFrame
        ``backend``, ``n``, ``repeat``, ``seconds`` and whatever else the rows hold, the
        benchmark's reference backend (listed first in its rows) last, so that the plot's speed-up
        is of the other backend over it; the benchmark's ``machine`` entry (cores, load average)
        in ``attrs["machine"]``.

    Raises
    ------
    ValueError
        If the result holds no timed runs.
    """
    import json
    from pathlib import Path

    if isinstance(result, (str, Path)):
        if not Path(result).is_file():
            return pd.DataFrame(columns=["backend", "n", "repeat", "seconds"])
        result = json.loads(Path(result).read_text())
    measured = result.get("measured") or {}
    runs = pd.DataFrame(measured.get("rows") or [])
    if runs.empty or not {"backend", "seconds"} <= set(runs.columns):
        raise ValueError("this benchmark result holds no timed runs (measured.rows with backend and seconds).")
    if "n" not in runs.columns:
        runs["n"] = int(measured["n"])
    if "repeat" not in runs.columns:
        runs["repeat"] = 0
    names = list(dict.fromkeys(runs["backend"]))
    order = {b: i for i, b in enumerate(names[1:] + names[:1])}
    runs = runs.sort_values(["n", "repeat"], kind="stable").sort_values("backend", key=lambda c: c.map(order),
                                                                           kind="stable").reset_index(drop=True)
    runs.attrs["machine"] = dict(result.get("machine") or {})
    return runs


def _load_note(machine: Mapping | None) -> str:
    """'2 cores, load average 1.9 at the start, 3.2 at the end' from a benchmark's ``machine`` entry ('' without)."""
    if not machine:
        return ""
    load = machine.get("load_average") or {}
    start, end = ((load.get(k) or [None])[0] for k in ("start", "end")) if isinstance(load, Mapping) else (None, None)
    parts = [f"{machine['cores']} cores"] if machine.get("cores") else []
    if start is not None and end is not None:
        parts.append(f"load average {start:.1f} at the start, {end:.1f} at the end")
    return ", ".join(parts)


def plot_tsne_scaling(scaling: pd.DataFrame, title: str | None = None, ax=None, machine: Mapping | None = None,
                      min_repeats: int = MIN_REPEATS):
    """t-SNE wall-clock seconds against the number of points (log-log), every run and the median, and the speed-up.

    Each timed run is a small dot and the median of the runs at each size a larger marker on a
    line, so the spread of repeated runs is in the picture. Right: the speed-up of the first
    backend listed over each other one, per repeat (runs paired by their ``repeat`` number, which
    ran back to back) and its median.

    Parameters
    ----------
    scaling : pandas.DataFrame
        One row per timed run: ``backend``, ``n``, ``seconds`` and ``repeat`` (as
        ``benchmarks/tsne_speed.py`` writes them under ``measured.rows``, or
        :func:`mnistlab.studies.embed.tsne_scaling` tables of several repeats stacked).
    title : str, optional
        Title of a new figure.
    ax : sequence of 2 Axes, Figure or SubFigure, optional
    machine : dict, optional
        The benchmark's ``machine`` entry (``cores``, ``load_average`` with ``start`` / ``end``): the
        load of the machine goes into the left panel's title.
    min_repeats : int
        Fewest runs per backend and size.

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    ValueError
        If the table lacks the columns, or a backend was timed fewer than ``min_repeats`` times at
        a size: single timings are not drawn as a result.
    """
    if scaling.empty or not {"backend", "n", "seconds"} <= set(scaling.columns):
        raise ValueError("plot_tsne_scaling needs a non-empty table of timed runs (backend, n, seconds, repeat).")
    runs = scaling.groupby(["backend", "n"]).size()
    if runs.min() < min_repeats:
        (b, n), k = runs.idxmin(), int(runs.min())
        raise ValueError(f"{b} was timed {k} time(s) at n={n:,}; plot_tsne_scaling draws only repeated runs "
                         f"(at least {min_repeats} per backend and size): time each {min_repeats} times or more, "
                         "or leave the plot out.")
    fig, grid, created = panels(ax, 1, 2, figsize=(11, 4.0))
    ax1, ax2 = grid.flat
    names = list(dict.fromkeys(scaling["backend"]))
    colors = config_colors(names)
    med = scaling.groupby(["n", "backend"])["seconds"].median().unstack()[names]
    sizes = med.index.to_numpy(dtype=float)
    spread = dict(zip(names, np.linspace(-0.025, 0.025, len(names)))) if len(names) > 1 else {names[0]: 0.0}
    for name in names:
        g = scaling[scaling["backend"] == name]
        k = int(runs[name].min())
        ax1.scatter(g["n"] * 10 ** spread[name], g["seconds"], s=16, color=colors[name], alpha=0.55,
                    edgecolor="none", zorder=5)
        s = med[name].dropna()
        ax1.plot(s.index * 10 ** spread[name], s.values, "o-", color=colors[name], ms=9, mfc="none", mew=1.6,
                 zorder=4, label=f"{name}: median of {k}{'+' if runs[name].max() > k else ''} runs (dots: each run)")
        ax1.annotate(f"{s.values[-1]:.3g} s", (s.index[-1] * 10 ** spread[name], s.values[-1]), xytext=(7, 0),
                     textcoords="offset points", va="center", fontsize=8, color=colors[name])
    ax1.set_xscale("log")
    ax1.set_yscale("log")
    note = _load_note(machine)
    ax1.set(xlabel="points (log scale)", ylabel="wall-clock seconds (log scale)",
            title="time against n" + (f"\n({note})" if note else ""))
    ax1.grid(alpha=0.3, which="both")
    ax1.legend(fontsize=8, loc="upper left")
    fast = names[0]
    top = 2.0
    for name in names[1:]:
        if "repeat" in scaling.columns:
            pairs = scaling[scaling["backend"].isin([fast, name])].pivot_table(index=["n", "repeat"], columns="backend",
                                                                               values="seconds")
            per_run = (pairs[name] / pairs[fast]).dropna()
            ax2.scatter(per_run.index.get_level_values("n"), per_run.values, s=16, color=colors[name], alpha=0.55,
                        edgecolor="none", zorder=5)
            ratio = per_run.groupby(level="n").median()
            top = max(top, float(per_run.max()))
        else:
            ratio = (med[name] / med[fast]).dropna()
        ax2.plot(ratio.index, ratio.values, "o-", color=colors[name], ms=9, mfc="none", mew=1.6, zorder=4,
                 label=f"{name} / {fast}: median" + (" (dots: each repeat)" if "repeat" in scaling.columns else ""))
        for n, r in ratio.items():
            ax2.annotate(f"{r:.1f}x", (n, r), xytext=(11, 0), textcoords="offset points", va="center", fontsize=8)
        top = max(top, float(ratio.max()))
    ax2.axhline(1, color="k", lw=0.8)
    ax2.set_xscale("log")
    ax2.set(xlabel="points (log scale)", ylabel=f"speed-up of {fast} (x)", title=f"how many times faster {fast} is")
    ax2.set_ylim(0, 1.2 * top)
    ax2.grid(alpha=0.3, which="both")
    if len(names) > 1:
        ax2.legend(fontsize=8, loc="upper left")
    plain = mticker.FuncFormatter(lambda v, _: f"{v:g}")
    for ax in (ax1, ax2):  # ticks at the measured sizes, in plain numbers
        ax.xaxis.set_major_locator(mticker.FixedLocator(sizes))
        ax.xaxis.set_major_formatter(mticker.FuncFormatter(lambda v, _: f"{v:,.0f}"))
        ax.xaxis.set_minor_locator(mticker.NullLocator())
        ax.set_xlim(sizes.min() / 1.3, sizes.max() * 1.3)
    ax1.yaxis.set_major_locator(mticker.LogLocator(subs=(1.0, 2.0, 5.0)))
    ax1.yaxis.set_major_formatter(plain)
    ax1.yaxis.set_minor_formatter(mticker.NullFormatter())
    return finish(fig, created, title)


def plot_representations(embeddings: Mapping, labels, scores: Mapping | None = None, classes=None,
                         size: float = 4.0, title: str | None = None, ax=None):
    """Side-by-side 2-D embeddings of several representations of the same points.

    Parameters
    ----------
    embeddings : mapping ``{name: array (n, 2)}``
    labels : array (n,)
    scores : mapping ``{name: {"silhouette": ..., "knn_acc": ...}}``, optional
        Shown under each panel's title (e.g. from :func:`~mnistlab.studies.embed.class_separation`).
    classes : sequence of str, optional
        Class names (legend on the last panel).
    size : float
        Inches per panel in a new figure.
    title : str, optional
        Title of a new figure.
    ax : sequence of ``len(embeddings)`` Axes, Figure or SubFigure, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    if not embeddings:
        raise ValueError("plot_representations needs at least one embedding.")
    fig, grid, created = panels(ax, 1, len(embeddings), figsize=(size * len(embeddings) + 1.2, size))
    for j, (a, (name, Y)) in enumerate(zip(grid.flat, embeddings.items())):
        label = str(name)
        if scores and name in scores:
            sc = scores[name]
            parts = [f"{key.replace('_', ' ')} {sc[key]:.3f}" for key in ("silhouette", "knn_acc") if key in sc]
            label += "\n" + ", ".join(parts)
        plot_scatter(Y, labels, classes=classes, ax=a, title=label, legend=j == len(embeddings) - 1)
    return finish(fig, created, title)
