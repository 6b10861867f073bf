"""Plots of the experiment harness: summaries with intervals, paired differences, curves, folds, sweeps."""
from __future__ import annotations

from typing import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from ..experiments.stats import Verdict, final_rows

__all__ = ["plot_summary", "plot_differences", "plot_curves", "plot_train_vs_val", "plot_fold_curves", "plot_fold_box",
           "plot_lr_sweep"]


def _row_chart(n_rows: int, ax=None):
    """(figure, axes, y positions top to bottom) for a chart with one horizontal row per item."""
    if ax is None:
        fig, ax = plt.subplots(figsize=(7.5, 0.45 * n_rows + 1.4))
    else:
        fig = ax.figure
    return fig, ax, np.arange(n_rows)[::-1]


def plot_summary(summary: pd.DataFrame, title: str | None = None, published: Mapping[str, float] | None = None,
                 xlabel: str = "test accuracy", percent: bool = True, ax=None):
    """Horizontal chart of config means with 95% CI error bars (from :func:`summarize`).

    ``published`` maps config names to a reference value drawn as a red cross.
    """
    scale = 100.0 if percent else 1.0
    fig, ax, y = _row_chart(len(summary), ax)
    err = summary["ci_half"].fillna(0).to_numpy() * scale
    ax.errorbar(summary["mean"] * scale, y, xerr=err, fmt="o", color="C0", capsize=4, label="mean, 95% CI")
    if published:
        pts = [(y[i], published[n]) for i, n in enumerate(summary.index) if n in published and published[n] is not None]
        if pts:
            ax.plot([p[1] * scale for p in pts], [p[0] for p in pts], "x", color="C3", ms=8, mew=2, label="published")
    ax.set_yticks(y, summary.index)
    ax.set_xlabel(xlabel + (" (%)" if percent else ""))
    lo, hi = ax.get_xlim()  # an interval may reach past the possible range with few seeds; show the range only
    ax.set_xlim(max(lo, 0.0), min(hi, 1.005 * scale))
    ax.grid(alpha=0.3, axis="x")
    ax.legend(loc="best", fontsize=8)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig


def plot_differences(comparisons: pd.DataFrame, title: str | None = None, percent: bool = True, ax=None):
    """Paired differences (b - a) with their 95% intervals from :func:`compare_steps`, one row per
    comparison, coloured by verdict (green: gain beyond noise, red: loss beyond noise, grey: within noise)."""
    scale = 100.0 if percent else 1.0
    fig, ax, y = _row_chart(len(comparisons), ax)
    for yi, (_, r) in zip(y, comparisons.iterrows()):
        beyond = Verdict(r["verdict"]).beyond_noise
        color = ("C2" if r["diff"] > 0 else "C3") if beyond else "0.5"
        lo, hi = r["ci_low"], r["ci_high"]
        err = [[(r["diff"] - lo) * scale], [(hi - r["diff"]) * scale]] if np.isfinite(lo) else None
        ax.errorbar([r["diff"] * scale], [yi], xerr=err, fmt="o", color=color, capsize=4)
    ax.axvline(0, color="k", lw=0.8)
    ax.set_yticks(y, [f"{a}  ->  {b}" if a else b for a, b in zip(comparisons["a"], comparisons["b"])], fontsize=8)
    ax.set_xlabel("paired difference" + (" (percentage points)" if percent else "") + ", 95% CI")
    ax.grid(alpha=0.3, axis="x")
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig


def plot_curves(df: pd.DataFrame, metrics: Sequence[str] = ("train_loss", "val_acc"), configs=None,
                band: str = "minmax", title: str | None = None, logy: Sequence[str] = ("train_loss",)):
    """Per-epoch curves, one line per config: mean over seeds and a spread band.

    ``band`` is "minmax" (range over seeds) or "std" (mean +- one standard deviation).
    """
    configs = list(dict.fromkeys(df["config"])) if configs is None else list(configs)
    metrics = list(metrics)
    fig, axes = plt.subplots(1, len(metrics), figsize=(5.2 * len(metrics), 3.8), squeeze=False)
    for ax, metric in zip(axes.flat, metrics):
        for i, name in enumerate(configs):
            g = df[(df["config"] == name) & (df["epoch"] > 0)].groupby("epoch")[metric]
            mean = g.mean()
            if mean.isna().all():
                continue
            lo, hi = (g.min(), g.max()) if band == "minmax" else (mean - g.std().fillna(0), mean + g.std().fillna(0))
            color = f"C{i % 10}"
            ax.plot(mean.index, mean.values, marker=".", color=color, label=name)
            ax.fill_between(mean.index, lo.values, hi.values, color=color, alpha=0.2, lw=0)
        ax.set(xlabel="epoch", ylabel=metric.replace("_", " "))
        if metric in logy:
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
    axes.flat[0].legend(fontsize=7)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_train_vs_val(df: pd.DataFrame, configs=None, title: str | None = None, val_label: str = "test"):
    """Train and validation accuracy per epoch for each config (mean over seeds, min-max band)."""
    configs = list(dict.fromkeys(df["config"])) if configs is None else list(configs)
    fig, axes = plt.subplots(1, len(configs), figsize=(4.8 * len(configs), 3.6), squeeze=False, sharey=True)
    for ax, name in zip(axes.flat, configs):
        g = df[(df["config"] == name) & (df["epoch"] > 0)].groupby("epoch")
        for col, label, color in (("train_acc", "train", "C0"), ("val_acc", val_label, "C1")):
            m = g[col].mean()
            ax.plot(m.index, m.values * 100, marker="o", color=color, label=label)
            ax.fill_between(m.index, g[col].min() * 100, g[col].max() * 100, color=color, alpha=0.2, lw=0)
        ax.set(title=name, xlabel="epoch")
        ax.grid(alpha=0.3)
        ax.legend()
    axes.flat[0].set_ylabel("accuracy (%)")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_fold_curves(cv: pd.DataFrame, title: str | None = None):
    """Learning curves of every fold of :func:`cross_validate`: loss and accuracy, train (dashed) and validation."""
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10.5, 3.8))
    for fold, g in cv.groupby("fold"):
        c = f"C{int(fold) % 10}"
        ax1.plot(g["epoch"], g["train_loss"], "--", color=c, alpha=0.8)
        ax1.plot(g["epoch"], g["val_loss"], "-", color=c, label=f"fold {fold}")
        ax2.plot(g["epoch"], g["train_acc"] * 100, "--", color=c, alpha=0.8)
        ax2.plot(g["epoch"], g["val_acc"] * 100, "-", color=c, label=f"fold {fold}")
    ax1.set(xlabel="epoch", ylabel="cross-entropy", title="loss (dashed: train, solid: validation)")
    ax2.set(xlabel="epoch", ylabel="accuracy (%)", title="accuracy (dashed: train, solid: validation)")
    for ax in (ax1, ax2):
        ax.grid(alpha=0.3)
    ax2.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_fold_box(cv: pd.DataFrame, column: str = "fold_acc", title: str | None = None, ax=None):
    """Box plot of the folds' final validation accuracy (one point per fold, per config)."""
    last = cv.groupby(["config", "fold"], sort=False)[column].last().reset_index()
    names = list(dict.fromkeys(last["config"]))
    if ax is None:
        fig, ax = plt.subplots(figsize=(1.8 + 1.6 * len(names), 3.8))
    else:
        fig = ax.figure
    data = [last.loc[last["config"] == n, column].to_numpy() * 100 for n in names]
    ax.boxplot(data, widths=0.5)
    ax.set_xticks(range(1, len(names) + 1), names)
    for i, d in enumerate(data, start=1):
        ax.scatter(np.full(len(d), i) + np.linspace(-0.08, 0.08, len(d)), d, color="C1", zorder=3, s=18)
    ax.set_ylabel("fold validation accuracy (%)")
    ax.grid(alpha=0.3, axis="y")
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig


def plot_lr_sweep(sweep: pd.DataFrame, metric: str = "val_acc", title: str | None = None, percent: bool = True):
    """Final ``metric`` against learning rate (log axis), one line per optimizer; error bars span seeds."""
    last = final_rows(sweep)
    scale = 100.0 if percent and metric.endswith("acc") else 1.0
    fig, ax = plt.subplots(figsize=(7.5, 4.2))
    for i, (opt, g) in enumerate(last.groupby("optimizer", sort=False)):
        s = g.groupby("lr_value")[metric].agg(["mean", "min", "max"]).sort_index()
        ax.errorbar(s.index, s["mean"] * scale, yerr=[(s["mean"] - s["min"]) * scale, (s["max"] - s["mean"]) * scale],
                    marker="o", capsize=3, color=f"C{i % 10}", label=opt)
    ax.set_xscale("log")
    ax.set(xlabel="learning rate", ylabel=metric.replace("_", " ") + (" (%)" if scale == 100 else ""))
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8, ncol=2)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig
