"""Plots of the transfer-learning study (notebook 08).

Every plot takes one canvas keyword, ``ax=None``: an Axes, an array of Axes for the plots of
several panels, or a Figure / SubFigure to add its panels to (:func:`mnistlab.viz.common.panels`).
It draws into the caller's canvas when given (and then leaves its layout alone) or makes its own
figure; each returns the (top-level) figure. Strategies keep one colour in every figure
(:func:`strategy_colors`), every seed is drawn, and means come with their 95% intervals. The
learning curves of the strategies are drawn by the package's one learning-curve plotter,
:func:`mnistlab.viz.experiments.plot_curves` (``group="strategy", colors=strategy_colors()``).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from ..studies.transfer import (FINE_TUNE, FROZEN, LINEAR_PROBE, SCRATCH, ZERO_SHOT, FeatureMaps,
                                summarize_transfer)
from .common import finish, one_panel, panels
from .embed import plot_scatter
from .style import class_colors, config_colors

__all__ = ["strategy_colors", "plot_accuracy_vs_labels", "plot_transfer_overview", "plot_gains",
           "plot_feature_maps", "plot_digit_conversion"]

_ORDER = (FINE_TUNE, FROZEN, LINEAR_PROBE, SCRATCH, ZERO_SHOT)
_MARKERS = {FINE_TUNE: "o", FROZEN: "s", LINEAR_PROBE: "D", SCRATCH: "^", ZERO_SHOT: ""}


def strategy_colors() -> dict:
    """``{strategy: colour}``, the same in every figure of the notebook."""
    return config_colors(_ORDER)


def _one_task(df: pd.DataFrame, task: str | None, what: str) -> pd.DataFrame:
    tasks = list(dict.fromkeys(df["task"]))
    if task is None:
        if len(tasks) != 1:
            raise ValueError(f"{what} draws one task; pass task= one of {tasks}.")
        return df
    if task not in tasks:
        raise ValueError(f"No task {task!r}; the data holds {tasks}.")
    return df[df["task"] == task]


def _strategies(names) -> list[str]:
    names = list(dict.fromkeys(names))
    return [s for s in _ORDER if s in names] + [s for s in names if s not in _ORDER]


def _jitter(strategies: Sequence[str]) -> dict:
    """Small multiplicative x offsets so the seeds of different strategies do not overlap on a log axis."""
    k = len(strategies)
    return {s: 10 ** (0.035 * (i - (k - 1) / 2)) for i, s in enumerate(strategies)}


def _level_ticks(ax, levels: pd.DataFrame) -> None:
    """x ticks at the labels-per-class levels, "all" with its mean count."""
    ax.set_xscale("log")
    ax.set_xticks(levels["per_class"].to_numpy())
    ax.set_xticklabels([f"all\n({pc:,.0f})" if lab == "all" else lab
                        for lab, pc in zip(levels["labels"], levels["per_class"])])
    ax.minorticks_off()
    lo, hi = levels["per_class"].min(), levels["per_class"].max()
    ax.set_xlim(lo / 1.6, hi * 1.6)


def plot_accuracy_vs_labels(runs: pd.DataFrame, task: str | None = None, metric: str = "test_acc",
                            title: str | None = None, legend: bool = True, ax=None):
    """Accuracy against labels per class (log x), one line per strategy with its 95% band and every seed.

    Parameters
    ----------
    runs : pandas.DataFrame
        From :func:`mnistlab.studies.transfer.run_transfer`.
    task : str, optional
        Which task to draw when ``runs`` holds several.
    metric : str
    title : str, optional
        Default: the task's name.
    legend : bool
        Legend to the right of the axes.
    ax : Axes, Figure or SubFigure, optional
        Where to draw (:func:`mnistlab.viz.common.panels`); default a new figure.

    Returns
    -------
    matplotlib.figure.Figure
    """
    runs = _one_task(runs, task, "plot_accuracy_vs_labels")
    summary = summarize_transfer(runs, metric=metric)
    colors = strategy_colors()
    fig, ax, created = one_panel(ax, figsize=(7.5, 4.4))
    trained = [s for s in _strategies(runs["strategy"]) if s != ZERO_SHOT]
    jitter = _jitter(trained)
    for strategy in trained:
        s = summary[summary["strategy"] == strategy].sort_values("per_class")
        r = runs[runs["strategy"] == strategy]
        c = colors.get(strategy, "k")
        x = s["per_class"].to_numpy() * jitter[strategy]
        ax.fill_between(x, 100 * s["ci_low"], 100 * s["ci_high"], color=c, alpha=0.18, linewidth=0)
        ax.plot(x, 100 * s["mean"], color=c, marker=_MARKERS.get(strategy, "o"), lw=2, ms=5, label=strategy)
        ax.scatter(r["per_class"] * jitter[strategy], 100 * r[metric], color=c, s=9, alpha=0.55, linewidths=0,
                   zorder=3)
    if ZERO_SHOT in set(runs["strategy"]):
        z = summary[summary["strategy"] == ZERO_SHOT].iloc[0]
        ax.axhline(100 * z["mean"], color=colors[ZERO_SHOT], ls="--", lw=1.5, label="zero-shot (no labels)")
    levels = summary[summary["strategy"] != ZERO_SHOT].groupby("labels", sort=False)["per_class"].mean()
    _level_ticks(ax, levels.reset_index().sort_values("per_class"))
    values = 100 * pd.concat([runs[metric], summary["ci_low"], summary["ci_high"]]).dropna()
    span = max(values.max() - values.min(), 1.0)
    ax.set_ylim(values.min() - 0.05 * span, min(100.0, values.max() + 0.05 * span) + 0.02 * span)
    ax.set_xlabel("labelled images per class (log scale)")
    ax.set_ylabel("test accuracy (%)")
    ax.grid(alpha=0.3)
    ax.set_title(title if title is not None else str(runs["task"].iloc[0]))
    if legend:
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False, fontsize=9)
    return finish(fig, created)


def plot_transfer_overview(runs: pd.DataFrame, tasks: Sequence[str] | None = None, metric: str = "test_acc",
                           ncols: int = 2, title: str | None = None, ax=None):
    """:func:`plot_accuracy_vs_labels` for several tasks side by side, one shared legend.

    Parameters
    ----------
    runs : pandas.DataFrame
        Several :func:`run_transfer` results concatenated.
    tasks : sequence of str, optional
        Panels in this order (default: every task in order of appearance).
    metric : str
    ncols : int
        Columns of the grid of panels (a new figure, a Figure or a SubFigure).
    title : str, optional
        Suptitle of a new figure.
    ax : sequence of Axes, Figure or SubFigure, optional
        At least one Axes per task (unused ones are switched off; the legend then goes to the
        right of the last panel), or a (sub)figure to add the grid to.

    Returns
    -------
    matplotlib.figure.Figure
    """
    tasks = list(tasks) if tasks is not None else list(dict.fromkeys(runs["task"]))
    if not tasks:
        raise ValueError("plot_transfer_overview needs at least one task.")
    nrows = int(np.ceil(len(tasks) / ncols))
    fig, grid, created = panels(ax, nrows, ncols, figsize=(6.0 * ncols, 4.0 * nrows + 0.6), count=len(tasks))
    axs = list(grid.flat)[:len(tasks)]
    for i, (task, a) in enumerate(zip(tasks, axs)):
        plot_accuracy_vs_labels(runs, task=task, metric=metric, legend=not created and i == len(tasks) - 1, ax=a)
    if not created:
        return finish(fig, created)
    handles = {}
    for a in axs:
        for h, lab in zip(*a.get_legend_handles_labels()):
            handles.setdefault(lab, h)
    fig.legend(list(handles.values()), list(handles), loc="lower center", ncol=len(handles), frameon=False)
    return finish(fig, created, title, rect=(0, 0.06, 1, 1))


def plot_gains(gains: pd.DataFrame, task: str | None = None, title: str | None = None, legend: bool = True,
               ax=None):
    """Gain of each strategy over the baseline (points of accuracy) against labels per class, with 95% intervals.

    Parameters
    ----------
    gains : pandas.DataFrame
        From :func:`mnistlab.studies.transfer.transfer_gains`.
    task : str, optional
    title : str, optional
    legend : bool
    ax : Axes, Figure or SubFigure, optional
        Where to draw (:func:`mnistlab.viz.common.panels`); default a new figure.

    Returns
    -------
    matplotlib.figure.Figure
    """
    gains = _one_task(gains, task, "plot_gains")
    colors = strategy_colors()
    fig, ax, created = one_panel(ax, figsize=(7.5, 4.0))
    strategies = _strategies(gains["strategy"])
    jitter = _jitter(strategies)
    for strategy in strategies:
        g = gains[gains["strategy"] == strategy].sort_values("per_class")
        x = g["per_class"].to_numpy() * jitter[strategy]
        y = 100 * g["diff"].to_numpy()
        err = np.vstack([y - 100 * g["ci_low"].to_numpy(), 100 * g["ci_high"].to_numpy() - y])
        ax.errorbar(x, y, yerr=err, color=colors.get(strategy, "k"), marker=_MARKERS.get(strategy, "o"), ms=5,
                    capsize=3, lw=1.5, label=strategy)
    ax.axhline(0, color="0.3", lw=1)
    _level_ticks(ax, gains.groupby("labels", sort=False)["per_class"].mean().reset_index().sort_values("per_class"))
    baseline = gains["baseline"].iloc[0]
    ax.set_xlabel("labelled images per class (log scale)")
    ax.set_ylabel(f"accuracy minus {baseline} (points)")
    ax.grid(alpha=0.3)
    ax.set_title(title if title is not None else f"{gains['task'].iloc[0]}: gain over {baseline} (95% CI)")
    if legend:
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False, fontsize=9)
    return finish(fig, created)


def plot_feature_maps(maps: FeatureMaps, title: str | None = None, ax=None):
    """t-SNE maps side by side (e.g. target features before and after fine-tuning), scores in the titles.

    Parameters
    ----------
    maps : FeatureMaps
        From :func:`mnistlab.studies.transfer.feature_tsne`.
    title : str, optional
        Suptitle of a new figure.
    ax : sequence of Axes, Figure or SubFigure, optional
        One Axes per map, or a (sub)figure to add a row of them to; the class legend goes beside the last.

    Returns
    -------
    matplotlib.figure.Figure
    """
    names = list(dict.fromkeys(maps.points["panel"]))
    digits = [int(c) for c in maps.classes if str(c).isdigit()]
    # relabelled digits (5-9 as 0-4) keep the colours they have in every other figure
    colors = [class_colors(10)[d] for d in digits] if len(digits) == len(maps.classes) and max(digits) < 10 else None
    fig, grid, created = panels(ax, 1, len(names), figsize=(4.6 * len(names) + 1.0, 4.6))
    scores = maps.scores.set_index("panel")
    for i, (name, a) in enumerate(zip(names, grid.flat)):
        p = maps.points[maps.points["panel"] == name]
        s = scores.loc[name]
        plot_scatter(p[["x", "y"]].to_numpy(), p["label"].to_numpy(), classes=maps.classes, ax=a,
                     legend=i == len(names) - 1, colors=colors,
                     title=f"{name}\n10-NN in map {100 * s['knn_acc']:.1f}%, "
                           f"linear probe {100 * s['probe_acc']:.1f}%")
        a.title.set_fontsize(10)
    return finish(fig, created, title)


def plot_digit_conversion(raw, converted, labels=None, n: int = 10, title: str | None = None, ax=None):
    """Original images above their MNIST-style conversions (e.g. scikit-learn's 8x8 digits above 28x28).

    Parameters
    ----------
    raw : array-like (N, h, w)
        The originals, any size.
    converted : array-like (N, 28, 28)
    labels : array-like (N,), optional
        Shown above each original.
    n : int
        How many pairs to draw (the first ``n``).
    title : str, optional
        Suptitle of a new figure.
    ax : array of Axes, Figure or SubFigure, optional
        Shape (2, n) or a flat sequence of ``2 * n`` (originals first, then conversions), or a
        (sub)figure to add that grid to.

    Returns
    -------
    matplotlib.figure.Figure
    """
    raw = np.asarray(raw.cpu() if hasattr(raw, "cpu") else raw)
    converted = np.asarray(converted.cpu() if hasattr(converted, "cpu") else converted)
    n = int(min(n, len(raw), len(converted)))
    if n < 1:
        raise ValueError("plot_digit_conversion needs at least one image.")
    fig, grid, created = panels(ax, 2, n, figsize=(1.1 * n + 0.8, 2.7))
    flat = list(grid.flat)
    for i in range(n):
        top, bottom = flat[i], flat[n + i]
        top.imshow(raw[i], cmap="gray", interpolation="nearest")
        bottom.imshow(converted[i], cmap="gray", interpolation="nearest")
        top.set_xticks([]), top.set_yticks([]), bottom.set_xticks([]), bottom.set_yticks([])
        if labels is not None:
            top.set_title(str(int(np.asarray(labels)[i])), fontsize=9)
    flat[0].set_ylabel(f"{raw.shape[1]}x{raw.shape[2]}", fontsize=9)
    flat[n].set_ylabel(f"{converted.shape[1]}x{converted.shape[2]}", fontsize=9)
    return finish(fig, created, title)
