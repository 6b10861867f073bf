"""Plots of the experiment harness: every seed with its mean and 95% interval, paired differences,
one family of learning curves, learning-rate sweeps, early stopping, scaling with data, digits.

Rules every function here follows: it draws into the caller's ``ax`` (an Axes, an array of Axes,
or a Figure / SubFigure: :func:`mnistlab.viz.common.panels`) when one is given (and then never
touches that figure's layout), otherwise it makes its own figure; it returns the figure. Accuracies are shown in percent everywhere, axes are zoomed to where the
differences are, legends sit outside the data, and runs that failed (diverged, or ended at chance
level: :func:`mnistlab.experiments.failed_runs`) are marked as such.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.ticker import MaxNLocator

from ..experiments.stats import Verdict, failed_runs, final_rows, summarize, t_interval
from .common import finish, one_panel, panels
from .style import PALETTE, config_colors

__all__ = ["plot_seeds", "plot_differences", "plot_curves", "plot_early_stopping", "plot_lr_sweep", "plot_scaling",
           "plot_predictions", "plot_augmentation"]

_MARKERS = ("o", "s", "^", "v", "D", "P", "X", "*", "<", ">")
_VERDICT_COLORS = {Verdict.HELPS: PALETTE[2], Verdict.HURTS: PALETTE[3], Verdict.WITHIN_NOISE: "0.45", Verdict.TOO_FEW_SEEDS: "0.7"}


def _is_rate(metric: str) -> bool:
    return metric.endswith("acc")


def _scale(metric: str) -> float:
    """Accuracies are drawn in percent; losses and seconds as they are."""
    return 100.0 if _is_rate(metric) else 1.0


def _label(metric: str) -> str:
    words = {"test_acc": "test accuracy", "val_acc": "validation accuracy", "train_acc": "training accuracy",
             "fold_acc": "fold validation accuracy", "test_loss": "test loss", "val_loss": "validation loss",
             "train_loss": "training loss (cross-entropy)", "train_seconds": "training seconds per run"}
    text = words.get(metric, metric.replace("_", " "))
    return text + (" (%)" if _is_rate(metric) else "")


def _titled(fig, created: bool, title: str | None, ax):
    """A one-panel plot titles its axes (in a caller's figure too) and lays out only a figure it created."""
    if title:
        ax.set_title(title)
    return finish(fig, created)


def _zoom(values, pad: float = 0.12, hi_cap: float | None = None, lo_cap: float | None = None):
    """Limits that frame ``values`` with a margin (capped at the possible range)."""
    v = np.asarray([x for x in np.ravel(values) if x is not None and np.isfinite(x)], dtype=float)
    if v.size == 0:
        return None
    lo, hi = float(v.min()), float(v.max())
    span = max(hi - lo, 1e-9 + 0.02 * abs(hi))
    lo, hi = lo - pad * span, hi + pad * span
    if hi_cap is not None:
        hi = min(hi, hi_cap)
    if lo_cap is not None:
        lo = max(lo, lo_cap)
    return lo, hi


def _legend_outside(ax, handles=None, labels=None, where: str = "right", ncol: int = 1, fontsize: float = 8):
    """A legend beside the axes (right) or under them (below), never over the data."""
    if handles is None:
        handles, labels = ax.get_legend_handles_labels()
    if not handles:
        return None
    if where == "below":
        return ax.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=ncol,
                         fontsize=fontsize, frameon=False)
    return ax.legend(handles, labels, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=fontsize,
                     frameon=False, ncol=ncol)


# --------------------------------------------------------------------------------------------
# Every seed, mean and 95% interval
# --------------------------------------------------------------------------------------------

def plot_seeds(runs: pd.DataFrame, metric: str = "test_acc", *, configs: Sequence[str] | None = None,
               unit: str = "seed", published: Mapping[str, float | None] | None = None,
               lines: Mapping[str, float] | None = None, title: str | None = None, ax=None):
    """Dot plot: one row per config, every seed (or fold) as a dot, the mean and its 95% t-interval.

    Parameters
    ----------
    runs : pandas.DataFrame
        Tidy runs (:func:`mnistlab.experiments.run_grid`, :func:`~mnistlab.experiments.cross_validate`);
        the last epoch of each run is used.
    metric : str
        Column to show; accuracies are drawn in percent.
    configs : sequence of str, optional
        Which configs, top to bottom (default: all, in order of appearance).
    unit : str
        The column that tells repeats apart: "seed", or "fold" for cross-validation.
    published : dict, optional
        ``{config: value}`` drawn as a red diamond on the config's row (a source's figure).
    lines : dict, optional
        ``{label: value}`` drawn as vertical reference lines across all rows (targets, an ensemble).
    title : str, optional
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    last = final_rows(runs, ("config", unit))
    configs = list(dict.fromkeys(last["config"])) if configs is None else list(configs)
    missing = [c for c in configs if c not in set(last["config"])]
    if missing:
        raise ValueError(f"configs {missing} are not in the runs; available: {list(dict.fromkeys(last['config']))}.")
    scale = _scale(metric)
    bounds = _possible_range(metric)
    fig, ax, created = one_panel(ax, figsize=(8.0, 0.5 * len(configs) + 1.9))
    summary = summarize(last[last["config"].isin(configs)], metric, unit=unit)
    ys = np.arange(len(configs))[::-1]
    vals = {name: last.loc[last["config"] == name, metric].to_numpy(float) * scale for name in configs}
    means = {name: summary.loc[name, "mean"] * scale for name in configs}
    far = _far_off(means, {name: v.std() if len(v) > 1 else 0.0 for name, v in vals.items()})
    framed = [x for name in configs if name not in far for x in [*vals[name], means[name]]]
    framed += [v * scale for v in (published or {}).values() if v is not None and np.isfinite(v)]
    framed += [v * scale for v in (lines or {}).values()]
    lim = _zoom(framed, hi_cap=bounds[1], lo_cap=bounds[0]) or _zoom(list(means.values()))
    lo_x, hi_x = lim
    first = True
    for y, name in zip(ys, configs):
        v, m, s = vals[name], means[name], summary.loc[name]
        jitter = np.linspace(-0.18, 0.18, len(v)) if len(v) > 1 else np.zeros(len(v))
        inside = (v >= lo_x) & (v <= hi_x)
        ax.scatter(v[inside], (y + jitter)[inside], s=16, color="0.35", alpha=0.75, zorder=3,
                   label=f"one {unit}" if first else None)
        if np.isfinite(s["ci_half"]):  # an interval of few seeds can reach past the possible range: cut there
            lo, hi = max(s["ci_low"] * scale, bounds[0]), min(s["ci_high"] * scale, bounds[1])
            a, b = max(lo, lo_x), min(hi, hi_x)
            if a < b:
                ax.plot([a, b], [y, y], color=PALETTE[0], lw=2.2, zorder=4,
                        label="95% CI of the mean" if first else None)
                for end, cut, marker in ((a, lo < lo_x, "<"), (b, hi > hi_x, ">")):
                    ax.plot(end, y, marker if cut else "|", color=PALETTE[0], ms=7 if cut else 10, mew=2, zorder=4)
        if lo_x <= m <= hi_x:
            ax.plot(m, y, "|", color=PALETTE[0], ms=16, mew=2.5, zorder=5, label="mean" if first else None)
        first = False
        if name in far or not inside.all():
            side_left = m < lo_x or (not lo_x <= m <= hi_x and m < hi_x)
            fmt = (lambda x: f"{x:.1f}%") if scale == 100 else (lambda x: f"{x:.3g}")
            text = f"off scale: mean {fmt(m)}, {unit}s {', '.join(fmt(x) for x in sorted(v))}"
            ax.annotate(text, xy=(0.01 if side_left else 0.99, y), xycoords=("axes fraction", "data"),
                        ha="left" if side_left else "right", va="center", fontsize=8, color=PALETTE[3],
                        bbox=dict(boxstyle="round,pad=0.2", fc="white", ec=PALETTE[3], lw=0.8), zorder=7)
    pub_label = True
    for y, name in zip(ys, configs):
        v = (published or {}).get(name)
        if v is not None and np.isfinite(v):
            ax.plot(v * scale, y, "D", color=PALETTE[3], ms=7, mfc="none", mew=1.8, zorder=6,
                    label="published" if pub_label else None)
            pub_label = False
    for i, (label, v) in enumerate((lines or {}).items()):
        ax.axvline(v * scale, color=PALETTE[(i + 4) % len(PALETTE)], ls="--", lw=1.2, label=label, zorder=2)
    ax.set_xlim(lo_x, hi_x)
    ax.set_yticks(ys, configs)
    ax.set_ylim(ys.min() - 0.6, ys.max() + 0.6)
    ax.set_xlabel(_label(metric))
    ax.grid(alpha=0.3, axis="x")
    _legend_outside(ax, where="right")
    return _titled(fig, created, title, ax)


def _far_off(centres: Mapping[str, float], spreads: Mapping[str, float] | None = None, k: float = 8.0) -> list[str]:
    """Names whose centre lies so far from the others that framing it would hide their differences.

    A centre is far off when its distance from the median of all centres exceeds ``k`` times their
    median absolute deviation, and also four times the typical spread within one name (so a tight
    group of equal configs does not call its ordinary members outliers).

    Parameters
    ----------
    centres : mapping of str to float
        One value per name (e.g. each config's mean accuracy).
    spreads : mapping of str to float, optional
        Spread of the repeats behind each centre (standard deviation over seeds).
    k : float
        How many median absolute deviations count as far.

    Returns
    -------
    list of str
        The far-off names, in the mapping's order; empty with fewer than four names.
    """
    names = list(centres)
    if len(names) < 4:
        return []
    c = np.array([centres[n] for n in names], dtype=float)
    med = np.median(c)
    mad = np.median(np.abs(c - med))
    typical = np.median([spreads[n] for n in names]) if spreads else 0.0
    limit = max(k * mad, 4.0 * typical, 1e-12)
    return [n for n, x in zip(names, c) if abs(x - med) > limit]


def _possible_range(metric: str) -> tuple[float, float]:
    """Where a value of ``metric`` can lie, as drawn: accuracies 0-100%, seconds and losses >= 0."""
    if _is_rate(metric):
        return 0.0, 100.0
    if metric.endswith(("seconds", "loss")):
        return 0.0, np.inf
    return -np.inf, np.inf


def plot_differences(comparisons: pd.DataFrame, *, title: str | None = None, labels: Sequence[str] | None = None,
                     ax=None):
    """Paired differences (b - a, percentage points) with 95% intervals, coloured by verdict.

    Parameters
    ----------
    comparisons : pandas.DataFrame
        Rows of :func:`mnistlab.experiments.compare` / :func:`~mnistlab.experiments.compare_steps`
        (columns ``a``, ``b``, ``diff``, ``ci_low``, ``ci_high``, ``verdict``, ``metric``).
    labels : sequence of str, optional
        Row labels (default "a -> b").
    title : str, optional
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    metric = str(comparisons["metric"].iloc[0]) if "metric" in comparisons and len(comparisons) else "test_acc"
    scale = _scale(metric)
    fig, ax, created = one_panel(ax, figsize=(7.5, 0.5 * len(comparisons) + 1.9))
    ys = np.arange(len(comparisons))[::-1]
    seen = set()
    for y, (_, r) in zip(ys, comparisons.iterrows()):
        verdict = Verdict(r["verdict"])
        color = _VERDICT_COLORS[verdict]
        lo, hi = r["ci_low"], r["ci_high"]
        err = [[(r["diff"] - lo) * scale], [(hi - r["diff"]) * scale]] if np.isfinite(lo) else None
        ax.errorbar([r["diff"] * scale], [y], xerr=err, fmt="o", color=color, capsize=4,
                    label=str(verdict) if verdict not in seen else None)
        seen.add(verdict)
    ax.axvline(0, color="k", lw=0.8)
    if labels is None:
        labels = [f"{a}  ->  {b}" if a else b for a, b in zip(comparisons["a"], comparisons["b"])]
    ax.set_yticks(ys, labels, fontsize=8)
    ax.set_ylim(ys.min() - 0.6, ys.max() + 0.6) if len(ys) else None
    unit = "percentage points" if scale == 100 else metric
    ax.set_xlabel(f"paired difference ({unit}), 95% CI")
    ax.grid(alpha=0.3, axis="x")
    _legend_outside(ax, where="right")
    return _titled(fig, created, title, ax)


# --------------------------------------------------------------------------------------------
# Learning curves: one family
# --------------------------------------------------------------------------------------------

def _band(g: pd.core.groupby.SeriesGroupBy, band: str):
    mean = g.mean()
    if band == "minmax":
        return mean, g.min(), g.max()
    if band == "ci":  # one run: no band (half-width 0)
        half = g.agg(lambda v: t_interval(v.to_numpy()).half).fillna(0.0)
        return mean, mean - half, mean + half
    if band == "none":
        return mean, None, None
    raise ValueError(f'band must be "ci", "minmax" or "none", not {band!r}.')


def plot_curves(df: pd.DataFrame, metrics: Sequence = ("train_loss", "val_acc"), *, configs=None,
                group: str = "config", band: str = "ci", zoom: bool = False, failed: Sequence[str] = (),
                logy: Sequence[str] = ("train_loss",), colors: Mapping | None = None, title: str | None = None,
                ax=None):
    """Per-epoch curves: one panel per metric, one line per group (mean over the other runs, with a band).

    The package's one learning-curve plotter: a single :func:`mnistlab.fit` history, configs over
    seeds, folds of a cross-validation (``group="fold"``), train against validation (a panel
    given as a tuple of metrics, e.g. ``("train_acc", "val_acc")``: the first dashed, the second
    solid).

    Parameters
    ----------
    df : pandas.DataFrame
        Tidy per-epoch runs (columns ``epoch``, ``group`` and the metrics), or one run's history
        from :func:`mnistlab.fit` (no ``group`` column: one line per metric).
    metrics : sequence of str or tuple of str
        One entry per panel.
    configs : sequence, optional
        Which groups, in order (default all).
    group : str
        Column whose values get one line (and one colour) each: "config", "fold" or "seed".
    band : {"ci", "minmax", "none"}
        95% t-interval of the mean over the runs of a group, their range, or no band.
    zoom : bool
        Add a last panel with the first accuracy panel zoomed to its top (the useful runs).
    failed : sequence
        Groups drawn dotted and grey, labelled "(failed)" (runs that ended at chance level).
    logy : sequence of str
        Metrics drawn on a log axis.
    colors : mapping, optional
        ``{group: colour}`` (e.g. :func:`mnistlab.viz.transfer.strategy_colors`); default the
        package's config palette (:func:`mnistlab.viz.style.config_colors`).
    title : str, optional
    ax : sequence of Axes, Figure or SubFigure, optional
        ``len(metrics)`` axes, plus one with ``zoom``.

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    ValueError
        If ``df`` lacks ``epoch`` or a metric, or ``zoom`` has no accuracy panel to zoom.
    """
    if "epoch" not in df.columns:
        raise ValueError(f"plot_curves needs an 'epoch' column; got {list(df.columns)}.")
    absent = sorted({m for p in metrics for m in ((p,) if isinstance(p, str) else p)} - set(df.columns))
    if absent:
        raise ValueError(f"no column for metric(s) {absent}; columns: {list(df.columns)}.")
    if group not in df.columns:  # one run (a fit history): one group
        df = df.assign(**{group: "run"})
    panels_ = [tuple(m) if isinstance(m, (tuple, list)) else (m,) for m in metrics]
    acc_panel = next((i for i, p in enumerate(panels_) if all(_is_rate(m) for m in p)), None)
    if zoom and acc_panel is None:
        raise ValueError("zoom=True needs an accuracy panel among the metrics.")
    n_axes = len(panels_) + (1 if zoom else 0)
    fig, grid, created = panels(ax, 1, n_axes, figsize=(4.6 * n_axes + 1.6, 3.9))
    axs = list(grid.flat)
    names = list(dict.fromkeys(df[group])) if configs is None else list(configs)
    colors = {**config_colors(names), **(colors or {})}
    failed = set(failed)
    data = df[df["epoch"] > 0]
    targets = list(zip(axs, panels_)) + ([(axs[-1], panels_[acc_panel])] if zoom else [])
    top_values = {}
    for k, (ax, panel) in enumerate(targets):
        for name in names:
            g = data[data[group] == name]
            for j, metric in enumerate(panel):
                mean, lo, hi = _band(g.groupby("epoch")[metric], band)
                if mean.isna().all():
                    continue
                s = _scale(metric)
                bad = name in failed
                color = colors[name]
                ls = ":" if bad else ("--" if j < len(panel) - 1 else "-")
                label = f"{group} {name}" if group != "config" and isinstance(name, (int, np.integer)) else str(name)  # "fold 2"
                label += " (failed)" if bad else ""
                if len(panel) > 1:
                    label += f" · {metric.split('_')[0]}"
                # each group its own marker, so two groups with equal curves (Adam, AdamW) both show
                marker = (("x" if ls == "--" else _MARKERS[names.index(name) % len(_MARKERS)])
                          if len(mean) < 30 else None)
                ax.plot(mean.index, mean.values * s, ls=ls, marker=marker, ms=4.5, mfc="none" if names.index(name) % 2
                        else color, color=color, label=label if k == 0 else None, lw=1.6)
                if lo is not None:
                    lo_v, hi_v = lo.values * s, hi.values * s
                    if s == 100:  # a band of few seeds can reach past the possible range
                        lo_v, hi_v = np.clip(lo_v, 0, 100), np.clip(hi_v, 0, 100)
                    if metric in logy:  # a t-interval can reach below zero, which a log axis cannot show
                        lo_v = np.maximum(lo_v, mean.values * s / 3)
                    ax.fill_between(mean.index, lo_v, hi_v, color=color, alpha=0.15, lw=0)
                if k == acc_panel and not bad and j == len(panel) - 1:
                    top_values[name] = mean.values[len(mean) // 2:] * s
        first = panel[-1]
        ax.set(xlabel="epoch", ylabel=_label(first) if len(panel) == 1 else _label(first).replace(
            first.split("_")[0] + " ", "").replace("validation ", ""))
        epochs = sorted(data["epoch"].unique())
        if len(epochs) <= 12:
            ax.set_xticks(epochs)
        else:
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if first in logy and len(panel) == 1:
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
    if zoom:
        _zoom_second_half(axs[-1], top_values, sorted(data["epoch"].unique()))
    handles, labels = axs[0].get_legend_handles_labels()
    _legend_outside(axs[-1], handles, labels, where="right")
    return finish(fig, created, title)


def _zoom_second_half(ax, top_values: dict, epochs: list) -> None:
    """The zoom panel: the second half of the epochs, framed on the groups that are not far below
    the rest (those are named off scale with their last value)."""
    if not top_values:
        return
    far = _far_off({name: v[-1] for name, v in top_values.items()})
    lim = _zoom(np.concatenate([v for name, v in top_values.items() if name not in far]), pad=0.15, hi_cap=100.0)
    if lim:
        ax.set_ylim(*lim)
    start = epochs[len(epochs) // 2]
    ax.set_xlim(start - 0.3, epochs[-1] + 0.3)
    ax.set_xticks([e for e in epochs if e >= start]) if len(epochs) <= 24 else None
    for i, name in enumerate(far):
        ax.text(0.02, 0.04 + 0.07 * i, f"off scale: {name} ({top_values[name][-1]:.1f}% at the end)",
                transform=ax.transAxes, fontsize=8, color=PALETTE[3])
    ax.set_title("zoom: second half of training", fontsize=9)


def plot_early_stopping(runs: pd.DataFrame, full: str, stopped: str, *, title: str | None = None, ax=None):
    """Validation curves of the runs trained without stopping, with each seed's best and stopping epoch.

    Parameters
    ----------
    runs : pandas.DataFrame
        Tidy runs holding config ``full`` (all epochs, no stopping) and ``stopped`` (early
        stopping, with ``best_epoch`` and ``stopped_epoch``), same seeds.
    full, stopped : str
        The two config names.
    title : str, optional
    ax : two Axes, Figure or SubFigure, optional
        Validation loss and validation accuracy.

    Returns
    -------
    matplotlib.figure.Figure
        Circles mark the best epoch (restored weights), crosses the epoch training stopped;
        markers of different seeds are offset so none hides another.
    """
    fig, grid, created = panels(ax, 1, 2, figsize=(11.5, 3.9))
    axs = list(grid.flat)
    stops = final_rows(runs[runs["config"] == stopped])
    seeds = list(stops["seed"])
    colors = config_colors([f"seed {s}" for s in seeds])
    for i, seed in enumerate(seeds):
        h = runs[(runs["config"] == full) & (runs["seed"] == seed)].sort_values("epoch")
        r = stops[stops["seed"] == seed].iloc[0]
        color = colors[f"seed {seed}"]
        for a, col in zip(axs, ("val_loss", "val_acc")):
            s = _scale(col)
            a.plot(h["epoch"], h[col] * s, color=color, lw=1.4, label=f"seed {seed}")
            dx = (i - (len(seeds) - 1) / 2) * 0.08
            for epoch, marker, size in ((r["best_epoch"], "o", 8), (r["stopped_epoch"], "X", 9)):
                if np.isfinite(epoch):
                    y = h.loc[h["epoch"] == int(epoch), col]
                    if len(y):
                        a.plot(epoch + dx, float(y.iloc[0]) * s, marker, color=color, ms=size, mec="k", mew=0.6,
                                zorder=5)
    for a, col in zip(axs, ("val_loss", "val_acc")):
        a.set(xlabel="epoch", ylabel=_label(col))
        a.xaxis.set_major_locator(MaxNLocator(integer=True))
        a.grid(alpha=0.3)
    h = runs[runs["config"] == full]
    late = h[h["epoch"] >= max(2, h["epoch"].max() // 3)]
    for a, col in zip(axs, ("val_loss", "val_acc")):
        lim = _zoom(late[col].to_numpy(float) * _scale(col), pad=0.15)
        if lim:
            a.set_ylim(*lim)
    handles, labels = axs[0].get_legend_handles_labels()
    handles += [plt.Line2D([], [], ls="", marker="o", color="0.5", mec="k", ms=8),
                plt.Line2D([], [], ls="", marker="X", color="0.5", mec="k", ms=9)]
    labels += ["best epoch (weights kept)", "training stopped"]
    _legend_outside(axs[1], handles, labels, where="right")
    return finish(fig, created, title)


# --------------------------------------------------------------------------------------------
# Learning-rate sweeps
# --------------------------------------------------------------------------------------------

def plot_lr_sweep(sweep: pd.DataFrame, metric: str = "val_acc", *, chosen: Mapping[str, float] | None = None,
                  defaults: Mapping[str, float] | None = None, chance: float = 0.1, title: str | None = None,
                  ax=None):
    """Final ``metric`` against the learning rate (log axis), one line per optimizer, full range and zoomed.

    Parameters
    ----------
    sweep : pandas.DataFrame
        From :func:`mnistlab.experiments.lr_sweep` (columns ``optimizer``, ``lr_value``).
    metric : str
    chosen : dict, optional
        ``{optimizer: rate}`` marked with a star (the rate picked on validation data).
    defaults : dict, optional
        ``{optimizer: rate}`` marked with an open square (the library default).
    chance : float
        Accuracy of guessing (failed runs end here); drawn as a line on the full panel.
    title : str, optional
    ax : two Axes, Figure or SubFigure, optional
        Full range and zoom on the runs that learned.

    Returns
    -------
    matplotlib.figure.Figure
        Runs that failed (diverged to NaN or ended at chance level) are red crosses at the
        bottom of the full panel; error bars span the seeds.
    """
    fig, grid, created = panels(ax, 1, 2, figsize=(13.5, 4.4))
    axs = list(grid.flat)
    last = final_rows(sweep)
    bad = failed_runs(sweep, metric if _is_rate(metric) else "val_acc", chance=chance)
    last = last.assign(failed=bad.to_numpy())
    scale = _scale(metric)
    opts = list(dict.fromkeys(last["optimizer"]))
    colors = config_colors(opts)
    ok_values = []
    for ax_i, a in enumerate(axs):
        for opt in opts:
            g = last[last["optimizer"] == opt]
            good = g[~g["failed"]].groupby("lr_value")[metric].agg(["mean", "min", "max"]).sort_index()
            a.errorbar(good.index, good["mean"] * scale, yerr=[(good["mean"] - good["min"]) * scale,
                                                              (good["max"] - good["mean"]) * scale],
                        marker="o", ms=4, capsize=2, color=colors[opt], label=opt if ax_i == 0 else None)
            ok_values += list(good["mean"] * scale)
            for marks, marker, kw in ((chosen, "*", dict(ms=15, mec="k", mew=0.7)),
                                      (defaults, "s", dict(ms=10, mfc="none", mew=1.6))):
                if marks and opt in marks and marks[opt] in good.index:
                    a.plot(marks[opt], good.loc[marks[opt], "mean"] * scale, marker, color=colors[opt], zorder=6,
                            **kw)
            if ax_i == 0:
                f = g[g["failed"]].groupby("lr_value").size()
                if len(f):
                    y = (chance * scale) if scale == 100 else np.nanmin(g[metric])
                    a.plot(f.index, np.full(len(f), y), "x", color=colors[opt], ms=10, mew=2.5, zorder=7)
        a.set_xscale("log")
        a.set(xlabel="learning rate (log scale)", ylabel=_label(metric))
        a.grid(alpha=0.3, which="both")
    if scale == 100:
        axs[0].axhline(chance * 100, color=PALETTE[3], lw=0.8, ls=":")
        axs[0].set_ylim(0, 100.5)
    lim = _zoom(sorted(ok_values)[len(ok_values) // 3:] if ok_values else [], pad=0.1, hi_cap=100.0 + 1e-9)
    if lim:
        axs[1].set_ylim(*lim)
    axs[0].set_title("every rate", fontsize=10)
    axs[1].set_title("zoom: the better two thirds of the runs", fontsize=10)
    handles, labels = axs[0].get_legend_handles_labels()
    handles += [plt.Line2D([], [], ls="", marker="*", color="0.5", mec="k", ms=13),
                plt.Line2D([], [], ls="", marker="s", color="0.4", mfc="none", ms=9, mew=1.5),
                plt.Line2D([], [], ls="", marker="x", color="0.3", ms=9, mew=2.5)]
    labels += ["chosen rate", "default rate", "failed run, at chance level\n(diverged or learned nothing)"]
    _legend_outside(axs[1], handles, labels, where="right")
    return finish(fig, created, title)


# --------------------------------------------------------------------------------------------
# Accuracy against the amount of data
# --------------------------------------------------------------------------------------------

def plot_scaling(runs: pd.DataFrame, x: str = "train_limit", group: str = "model", metric: str = "test_acc", *,
                 xlabel: str = "training images (log scale)", title: str | None = None, ax=None):
    """``metric`` against ``x`` (log axis), one line per ``group``: every seed as a dot, mean and 95% band.

    Parameters
    ----------
    runs : pandas.DataFrame
        Tidy runs with columns ``x`` and ``group`` (e.g. from
        :func:`mnistlab.experiments.with_settings`).
    x, group, metric : str
    xlabel, title : str
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    last = final_rows(runs)
    missing = {x, group, metric} - set(last.columns)
    if missing:
        raise KeyError(f"plot_scaling needs the columns {sorted(missing)} (add them with ex.with_settings).")
    fig, ax, created = one_panel(ax, figsize=(7.5, 4.2))
    scale = _scale(metric)
    names = list(dict.fromkeys(last[group]))
    colors = config_colors(names)
    for name in names:
        g = last[last[group] == name]
        ax.scatter(g[x], g[metric] * scale, s=14, color=colors[name], alpha=0.6, zorder=3)
        mean, lo, hi = _band(g.groupby(x)[metric], "ci")
        ax.plot(mean.index, mean * scale, "-o", ms=4, color=colors[name], label=str(name))
        lo, hi = (np.clip(lo * scale, 0, 100), np.clip(hi * scale, 0, 100)) if scale == 100 else (lo, hi)
        ax.fill_between(mean.index, lo, hi, color=colors[name], alpha=0.2, lw=0)
    lim = _zoom(last[metric].to_numpy(float) * scale, pad=0.1, hi_cap=100.5 if scale == 100 else None)
    if lim:
        ax.set_ylim(*lim)
    ax.set_xscale("log")
    xs = sorted(last[x].unique())
    ax.set_xticks(xs, [f"{v:,.0f}" for v in xs])
    ax.minorticks_off()
    ax.set(xlabel=xlabel, ylabel=_label(metric))
    ax.grid(alpha=0.3)
    _legend_outside(ax, where="right")
    return _titled(fig, created, title, ax)


# --------------------------------------------------------------------------------------------
# Pictures of digits
# --------------------------------------------------------------------------------------------

def plot_predictions(images, probs, truth=None, *, titles: Sequence[str] | None = None, title: str | None = None,
                     ax=None):
    """Each image as the model sees it, its prediction and the bar chart of its 10 probabilities.

    Parameters
    ----------
    images : array (N, 28, 28)
    probs : array (N, classes)
        Predicted probabilities (:func:`mnistlab.predict`).
    truth : sequence of int, optional
        The true digits: correct predictions are titled green, wrong ones red.
    titles : sequence of str, optional
        A caption under each image (e.g. "typed, serif").
    title : str, optional
    ax : 2 x N Axes, Figure or SubFigure, optional
        The images above their probability bars; a (sub)figure gets that grid added to it.

    Returns
    -------
    matplotlib.figure.Figure
    """
    images = np.asarray(images.cpu() if hasattr(images, "cpu") else images)
    probs = np.asarray(probs)
    n = len(images)
    fig, axs, created = panels(ax, 2, n, figsize=(1.45 * n + 0.4, 3.9), gridspec_kw={"height_ratios": [1, 0.75]})
    pred = probs.argmax(1)
    for i in range(n):
        ok = truth is None or pred[i] == truth[i]
        axs[0, i].imshow(images[i], cmap="gray")
        axs[0, i].set_title(f"{pred[i]} ({probs[i, pred[i]] * 100:.0f}%)", color=PALETTE[2] if ok else PALETTE[3], fontsize=9)
        axs[0, i].set_xticks([])
        axs[0, i].set_yticks([])
        if titles is not None:
            axs[0, i].set_xlabel(titles[i], fontsize=7)
        colors = [PALETTE[2] if truth is not None and k == truth[i] else "0.6" for k in range(probs.shape[1])]
        axs[1, i].bar(range(probs.shape[1]), probs[i] * 100, color=colors)
        axs[1, i].set(xticks=range(probs.shape[1]), ylim=(0, 100), yticks=[] if i else [0, 50, 100])
        axs[1, i].tick_params(labelsize=6)
    axs[1, 0].set_ylabel("probability (%)", fontsize=7)
    return finish(fig, created, title)


def plot_augmentation(images, augment, *, versions: int = 4, seed: int = 0, title: str | None = None, ax=None):
    """What a batch augmentation does: each original (top row) and ``versions`` random versions below.

    Parameters
    ----------
    images : array or tensor (N, 28, 28), uint8
    augment : mnistlab.Augment or callable
        Applied to the float batch (B, 1, 28, 28) with a seeded generator.
    versions : int
    seed : int
    title : str, optional
    ax : (versions + 1) x N Axes, Figure or SubFigure, optional
        One row per version (the originals first); a (sub)figure gets that grid added to it.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import torch

    x = torch.as_tensor(np.asarray(images.cpu() if hasattr(images, "cpu") else images), dtype=torch.float32)
    x = x.unsqueeze(1) / 255.0
    gen = torch.Generator().manual_seed(seed)
    rows = [x] + [augment(x, generator=gen) for _ in range(versions)]
    n = len(x)
    fig, axs, created = panels(ax, versions + 1, n, figsize=(1.2 * n + 1.2, 1.25 * (versions + 1) + 0.4))
    for r, batch in enumerate(rows):
        for c in range(n):
            axs[r, c].imshow(batch[c, 0].clamp(0, 1).numpy(), cmap="gray", vmin=0, vmax=1)
            axs[r, c].set_xticks([])
            axs[r, c].set_yticks([])
        axs[r, 0].set_ylabel("original" if r == 0 else f"version {r}", fontsize=8)
    return finish(fig, created, title)
