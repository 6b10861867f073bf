"""Figures of notebook 06 (inside the model), drawn from :mod:`mnistlab.studies.interpret` results.

Every function follows the package's plotting rule: with ``ax=None`` it makes and lays out its
own figure; given ``ax`` (an Axes, an array of Axes, or a Figure / SubFigure for a grid of
panels: :func:`mnistlab.viz.common.panels`) it draws into it, leaves its layout alone, and returns
that figure.
Attribution maps use a diverging colormap centred at zero (red: raises the target's score,
blue: lowers it) with symmetric limits.
"""
from __future__ import annotations

import math
from typing import Mapping, Sequence

import matplotlib as mpl
import numpy as np
import pandas as pd
from matplotlib.colors import LogNorm
from matplotlib.figure import FigureBase

from .common import _grid_shape, finish, one_panel, panels
from .style import DIVERGING_CMAP, PALETTE, class_colors, config_colors

__all__ = [
    "ATTRIBUTION_CMAP", "plot_digits", "plot_misclassified", "plot_confusion", "plot_most_confused",
    "plot_report", "plot_attributions", "plot_class_maps", "plot_randomization", "plot_randomization_maps",
    "plot_feature_maps", "plot_filters", "plot_channel_class_means", "plot_top_activating",
    "plot_class_maximization", "plot_reliability", "plot_label_issues", "plot_robustness", "plot_cell",
]

ATTRIBUTION_CMAP = DIVERGING_CMAP
"""Diverging colormap of attribution maps (the package's one): red positive, blue negative, white zero."""


def _as_array(images) -> np.ndarray:
    a = np.asarray(images.cpu() if hasattr(images, "cpu") else images, dtype=np.float64)
    if a.ndim == 4:
        a = a[:, 0]
    if a.size and a.max() > 1.5:
        a = a / 255.0
    return a


def _sym(m) -> float:
    v = float(np.nanmax(np.abs(m))) if np.size(m) else 0.0
    return v if v > 0 else 1.0


def _show_map(ax, m, image=None, vmax=None):
    """A signed map on the diverging colormap, with the digit's outline."""
    vmax = _sym(m) if vmax is None else vmax
    im = ax.imshow(m, cmap=ATTRIBUTION_CMAP, vmin=-vmax, vmax=vmax)
    if image is not None:
        ax.contour(image, levels=[0.5], colors="k", linewidths=0.6, alpha=0.7)
    ax.set_xticks([])
    ax.set_yticks([])
    return im


def _off(ax):
    ax.set_xticks([])
    ax.set_yticks([])
    for s in ax.spines.values():
        s.set_visible(False)


def plot_digits(images, titles: Sequence[str] | None = None, ncols: int = 10, title: str | None = None,
                ax=None, title_colors: Sequence | None = None):
    """A grid of digits with a title each.

    Parameters
    ----------
    images : array (N, 28, 28) (uint8 or [0, 1])
    titles : sequence of str, optional
    ncols : int
    title : str, optional
        Figure title.
    ax : Axes (one per panel), Figure or SubFigure, optional
    title_colors : sequence of colours, optional

    Returns
    -------
    Figure
    """
    imgs = _as_array(images)
    n = max(len(imgs), 1)
    nrows, ncols = _grid_shape(n, ncols)
    fig, axes, created = panels(ax, nrows, ncols, figsize=(ncols * 1.25, nrows * 1.45), count=len(imgs))
    for i, ax in enumerate(axes.flat):
        _off(ax)
        if i < len(imgs):
            ax.imshow(imgs[i], cmap="gray_r", vmin=0, vmax=1)
            if titles is not None:
                ax.set_title(titles[i], fontsize=8, **({} if title_colors is None else {"color": title_colors[i]}))
    if title:
        fig.suptitle(title)
    return finish(fig, created)


def plot_misclassified(interp, max_per_class: int = 12, ax=None):
    """Every true class in a row, its misclassified digits along it (most confident error first).

    Each digit is titled with the predicted class and its probability; the row label gives the
    true class and the number of errors (with how many are not shown).

    Parameters
    ----------
    interp : Interpretation
        With images.
    max_per_class : int
    ax : Axes (one per panel), Figure or SubFigure, optional

    Returns
    -------
    Figure
    """
    wrong = interp.misclassified_by_class()
    ncols = max(1, min(max_per_class, int(wrong.groupby("true").size().max()) if len(wrong) else 1))
    C = interp.num_classes
    fig, axes, created = panels(ax, C, ncols + 1, figsize=((ncols + 1) * 0.95, C * 1.05))
    colors = class_colors(C)
    for t in range(C):
        rows = wrong[wrong["true"] == t]
        lab = axes[t, 0]
        _off(lab)
        more = f"\n(+{len(rows) - ncols} more)" if len(rows) > ncols else ""
        lab.text(0.95, 0.5, f"true {interp.classes[t]}\n{len(rows)} wrong{more}", ha="right", va="center",
                 fontsize=8, transform=lab.transAxes, color=colors[t], fontweight="bold")
        imgs = interp.images_of(rows.index[:ncols]) if len(rows) else []
        for j in range(ncols):
            ax = axes[t, j + 1]
            _off(ax)
            if j < len(rows):
                r = rows.iloc[j]
                ax.imshow(_as_array(imgs[j:j + 1])[0], cmap="gray_r", vmin=0, vmax=1)
                ax.set_title(f"→{interp.classes[int(r['predicted'])]} {r['confidence']:.2f}", fontsize=7,
                             color=colors[int(r["predicted"])], pad=2)
    fig.suptitle(f"Misclassified digits per true class ({interp.n_errors} of {len(interp):,}; "
                 f"title: predicted class and its probability)", fontsize=10)
    return finish(fig, created, h_pad=0.2, w_pad=0.1)


def plot_confusion(interp, normalize: bool = False, ax=None):
    """Confusion matrix with the diagonal set apart, so the errors are visible.

    Off-diagonal cells are coloured by their count (log scale) or row share; diagonal cells are
    grey with their number written in bold (correct predictions would otherwise swamp the scale).

    Parameters
    ----------
    interp : Interpretation
    normalize : bool
        Row-normalised (share of each true class, in %) instead of counts.
    ax : Axes, optional

    Returns
    -------
    Figure
    """
    fig, ax, created = one_panel(ax, figsize=(6.4, 5.6))
    counts = interp.confusion().to_numpy()
    values = interp.confusion("true").to_numpy() * 100 if normalize else counts.astype(float)
    C = len(values)
    off = np.ma.masked_where(np.eye(C, dtype=bool) | (counts == 0), values)
    norm = None
    if off.count():
        lo, hi = float(off.min()), float(off.max())
        norm = LogNorm(vmin=lo / 2, vmax=max(hi, lo * 1.01))   # the smallest error stays visible, not white
    im = ax.imshow(off, cmap="Reds", norm=norm)
    ax.imshow(np.ma.masked_where(~np.eye(C, dtype=bool), np.ones_like(values)), cmap="Greys", vmin=0, vmax=4)
    for t in range(C):
        for p in range(C):
            if counts[t, p] == 0 and t != p:
                continue
            txt = f"{values[t, p]:.1f}" if normalize else f"{int(counts[t, p])}"
            if normalize and t != p and values[t, p] < 0.1:
                txt = f"{values[t, p]:.2f}"
            dark = t != p and norm is not None and norm(values[t, p]) > 0.65
            ax.text(p, t, txt, ha="center", va="center", fontsize=7 if t == p else 8,
                    fontweight="bold" if t == p else "normal", color="white" if dark else "black")
    names = [str(c) for c in interp.classes]
    long = max(map(len, names)) > 2   # words (Fashion-MNIST's "Ankle boot"): upright text would overlap its neighbours
    ax.set_xticks(range(C), names, rotation=90 if long else 0)
    ax.set_yticks(range(C), names)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(("row-normalised confusion (% of each true class)" if normalize else "confusion counts")
                 + "\ndiagonal (grey) set apart; errors coloured", fontsize=10)
    if norm is not None:
        # an inset colour bar: a caller's axes keep their size and place
        cbar = ax.figure.colorbar(im, cax=ax.inset_axes([1.03, 0.0, 0.04, 1.0]), format="%g",
                                  label="% of the true class (log scale)" if normalize else "errors (log scale)")
        cbar.ax.yaxis.set_minor_formatter(mpl.ticker.FormatStrFormatter("%g"))  # log minor ticks: 0.2, not 2x10^-1
    return finish(fig, created)


def plot_most_confused(table: pd.DataFrame, ax=None):
    """Horizontal bars of the most frequent (true -> predicted) error pairs from ``Interpretation.most_confused``."""
    fig, ax, created = one_panel(ax, figsize=(5.5, 0.32 * max(len(table), 1) + 1.2))
    labels = [f"{a} → {b}" for a, b in zip(table["true_name"], table["predicted_name"])]
    y = np.arange(len(table))[::-1]
    colors = class_colors(max(int(table["true"].max()) + 1, 10) if len(table) else 10)
    ax.barh(y, table["count"], color=[colors[int(t)] for t in table["true"]])
    for yi, c, r in zip(y, table["count"], table["rate"]):
        ax.text(c, yi, f" {int(c)} ({r:.1%})", va="center", fontsize=8)
    ax.set_yticks(y, labels)
    ax.set_xlabel("errors (share of the true class)")
    ax.set_title("most confused pairs (true → predicted)", fontsize=10)
    ax.set_xlim(0, (table["count"].max() if len(table) else 1) * 1.35)
    ax.grid(axis="x", alpha=0.3)
    return finish(fig, created)


def plot_report(report: pd.DataFrame, ax=None):
    """Per-class precision, recall and F1 (``Interpretation.report``) as dots, zoomed to their range."""
    fig, ax, created = one_panel(ax, figsize=(7, 3.2))
    rows = report.drop(index=[i for i in ("accuracy", "macro avg", "weighted avg") if i in report.index])
    x = np.arange(len(rows))
    for k, (col, m) in enumerate((("precision", "o"), ("recall", "s"), ("f1", "^"))):
        ax.plot(x + (k - 1) * 0.18, rows[col] * 100, m, label=col, ms=5)
    ax.set_xticks(x, rows.index)
    ax.set_xlabel("class")
    ax.set_ylabel("%")
    lo = float(rows[["precision", "recall", "f1"]].min().min()) * 100
    ax.set_ylim(max(lo - 0.3 * (100 - lo) - 0.05, 0), 100.02)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8)
    ax.set_title("per-class precision, recall and F1 (scikit-learn)", fontsize=10)
    return finish(fig, created)


def plot_attributions(images, maps: Mapping[str, np.ndarray], row_titles: Sequence[str] | None = None,
                      title: str | None = None, ax=None):
    """One row per image: the digit, then one signed map per method (red raises the target's score).

    Parameters
    ----------
    images : array (N, 28, 28)
    maps : dict
        Method name -> array (N, 28, 28).
    row_titles : sequence of str, optional
        Title of each row's digit.
    title : str, optional
    ax : Axes (one per panel), Figure or SubFigure, optional

    Returns
    -------
    Figure
    """
    imgs = _as_array(images)
    names = list(maps)
    n = len(imgs)
    fig, axes, created = panels(ax, max(n, 1), len(names) + 1, figsize=((len(names) + 1) * 1.55, max(n, 1) * 1.6))
    for i in range(n):
        ax = axes[i, 0]
        ax.imshow(imgs[i], cmap="gray_r", vmin=0, vmax=1)
        _off(ax)
        if row_titles is not None:
            ax.set_title(row_titles[i], fontsize=8)
        for j, name in enumerate(names):
            _show_map(axes[i, j + 1], np.asarray(maps[name][i]), imgs[i])
            if i == 0:
                axes[i, j + 1].set_title(name, fontsize=9)
    fig.suptitle(title or "attributions (red: raises the score, blue: lowers it; each map on its own symmetric "
                          "scale; outline: the digit)", fontsize=10)
    return finish(fig, created)


def plot_class_maps(maps, classes: Sequence[str], mean_images=None, titles: Sequence[str] | None = None,
                    title: str | None = None, ncols: int = 5, shared: bool = True, ax=None):
    """One signed map per class (e.g. the per-class average attribution), on a symmetric scale.

    Parameters
    ----------
    maps : array (K, 28, 28)
    classes : sequence of str
        Panel labels (used when ``titles`` is None).
    mean_images : array (K, 28, 28), optional
        Outlined on each map (e.g. the mean image of the examples).
    titles : sequence of str, optional
    title : str, optional
    ncols : int
    shared : bool
        One colour scale for all panels (with a colour bar); otherwise each panel is scaled to
        its own largest absolute value (for maps of different methods).
    ax : Axes (one per panel), Figure or SubFigure, optional

    Returns
    -------
    Figure
    """
    maps = np.asarray(maps)
    k = len(maps)
    nrows, ncols = _grid_shape(k, ncols)
    fig, axes, created = panels(ax, nrows, ncols, figsize=(ncols * 1.9, nrows * 2.0), count=k)
    vmax = _sym(maps)
    im = None
    for i, a in enumerate(axes.flat):
        _off(a)
        if i < k:
            im = _show_map(a, maps[i], None if mean_images is None else _as_array(mean_images)[i],
                           vmax if shared else None)
            a.set_title(titles[i] if titles is not None else str(classes[i]), fontsize=9)
    if im is not None and shared:
        if ax is None or isinstance(ax, FigureBase):  # panels of its own: the bar takes its room beside them
            fig.colorbar(im, ax=list(axes.flat), fraction=0.025, pad=0.02, label="attribution (shared scale)")
        else:  # the caller's axes keep their size and place: the bar is inset beside the last panel
            fig.colorbar(im, cax=axes.flat[k - 1].inset_axes([1.05, 0.0, 0.06, 1.0]), label="attribution (shared scale)")
    if title:
        fig.suptitle(title, fontsize=10)
    if created:
        fig.set_layout_engine("constrained")
    return fig.get_figure(root=True)


def plot_randomization(check, ax=None):
    """Rank correlation of the maps with the trained model's as layers are randomised from the top.

    Parameters
    ----------
    check : RandomizationCheck
        Its layers are named as the training recorders name them (``fc2``, ``bn6``, ``conv5``...).
    ax : Axes, optional

    Returns
    -------
    Figure
    """
    fig, ax, created = one_panel(ax, figsize=(7.5, 3.6))
    t = check.table
    x = t["step"].to_numpy()
    ax.fill_between(x, t["ci_low"], t["ci_high"], alpha=0.25, color=PALETTE[0], label="95% CI over images")
    ax.plot(x, t["rank_corr_abs"], "o-", color=PALETTE[0], label="|map| (Spearman)")
    ax.plot(x, t["rank_corr_signed"], "s--", color=PALETTE[3], ms=4, label="signed map (Spearman)")
    ax.axhline(0, color="grey", lw=0.8)
    ax.set_xticks(x, [str(v) for v in t["layer"]], rotation=60, ha="right", fontsize=7)
    ax.set_xlabel("last layer randomised (cascading from the output)")
    ax.set_ylabel("rank correlation with\nthe trained model's maps")
    ax.set_ylim(min(-0.1, float(np.nanmin(t["rank_corr_signed"])) - 0.05), 1.05)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    ax.set_title("sanity check (Adebayo et al. 2018): maps must change when the weights do", fontsize=10)
    return finish(fig, created)


def plot_randomization_maps(images, check, n: int = 4, ax=None):
    """Digits, their trained-model maps and their fully-randomised-model maps, side by side."""
    imgs = _as_array(images)[:n]
    n = len(imgs)
    fig, axes, created = panels(ax, 3, max(n, 1), figsize=(max(n, 1) * 1.6, 3 * 1.65))
    for i in range(n):
        axes[0, i].imshow(imgs[i], cmap="gray_r", vmin=0, vmax=1)
        _off(axes[0, i])
        _show_map(axes[1, i], check.trained[i], imgs[i])
        _show_map(axes[2, i], check.randomized[i], imgs[i])
    for r, lab in enumerate(("digit", "trained", "randomised")):
        axes[r, 0].set_ylabel(lab, fontsize=9)
    fig.suptitle("maps of the trained and of the fully randomised network", fontsize=10)
    return finish(fig, created)


def plot_feature_maps(maps: Mapping[str, np.ndarray], image=None, max_channels: int = 16, ax=None):
    """Feature maps of every conv layer for one digit: one row per layer, the most active channels.

    Parameters
    ----------
    maps : dict
        Layer name (``conv1``, ``conv2``..., the names the training recorders use) -> array
        (channels, h, w) (``studies.interpret.feature_maps``).
    image : array (28, 28), optional
        The input, shown in the first column.
    max_channels : int
        Channels per layer, the ones with the largest mean activation.
    ax : Axes (one per panel), Figure or SubFigure, optional

    Returns
    -------
    Figure
    """
    names = list(maps)
    ncols = min(max_channels, max(m.shape[0] for m in maps.values())) + 1
    fig, axes, created = panels(ax, len(names), ncols, figsize=(ncols * 0.85, len(names) * 1.05))
    for r, name in enumerate(names):
        m = maps[name]
        order = np.argsort(-m.mean((1, 2)), kind="stable")[:ncols - 1]
        lab = axes[r, 0]
        _off(lab)
        desc = f"{name}\n{m.shape[0]} ch, {m.shape[1]}×{m.shape[2]}"
        if image is not None and r == 0:
            lab.imshow(_as_array(np.asarray(image)[None])[0], cmap="gray_r", vmin=0, vmax=1)
            lab.set_title("input", fontsize=7, pad=2)
            lab.set_ylabel(desc, fontsize=7)
        else:
            lab.text(0.5, 0.5, desc, ha="center", va="center", fontsize=7, transform=lab.transAxes)
        for j in range(1, ncols):
            ax = axes[r, j]
            _off(ax)
            if j - 1 < len(order):
                ch = order[j - 1]
                ax.imshow(m[ch], cmap="magma")
                ax.set_title(f"ch {ch}", fontsize=6, pad=1.5)
    fig.suptitle("feature maps of every conv layer (after its activation), most active channels first", fontsize=10)
    return finish(fig, created, h_pad=0.6, w_pad=0.2)


def plot_filters(filters, ncols: int = 8, ax=None):
    """First-layer convolution kernels on a diverging scale (red: positive weight)."""
    filters = np.asarray(filters)
    k = len(filters)
    nrows, ncols = _grid_shape(k, ncols)
    fig, axes, created = panels(ax, nrows, ncols, figsize=(ncols * 0.9, nrows * 0.95), count=k)
    vmax = _sym(filters)
    for i, ax in enumerate(axes.flat):
        _off(ax)
        if i < k:
            ax.imshow(filters[i], cmap=ATTRIBUTION_CMAP, vmin=-vmax, vmax=vmax)
            ax.set_title(str(i), fontsize=7, pad=1)
    fig.suptitle(f"first-layer filters ({filters.shape[1]}×{filters.shape[2]}; red positive, blue negative, "
                 "shared scale)", fontsize=10)
    return finish(fig, created)


def plot_channel_class_means(df: pd.DataFrame, ax=None):
    """Which channels fire for which class: mean activation per class, each channel scaled to its maximum.

    Channels are ordered by the class they prefer.

    Parameters
    ----------
    df : DataFrame
        ``studies.interpret.channel_class_means`` (classes x channels).
    ax : Axes, optional

    Returns
    -------
    Figure
    """
    fig, ax, created = one_panel(ax, figsize=(min(2 + 0.16 * df.shape[1], 14), 3.8))
    a = df.to_numpy()
    scaled = a / np.where(np.abs(a).max(0) > 0, np.abs(a).max(0), 1)
    order = np.lexsort((-scaled.max(0), scaled.argmax(0)))
    im = ax.imshow(scaled[:, order], aspect="auto", cmap="viridis", vmin=min(0, scaled.min()), vmax=1)
    ax.set_yticks(range(len(df)), df.index)
    ax.set_xticks(range(df.shape[1]), [str(c) for c in df.columns[order]], fontsize=5, rotation=90)
    ax.set_xlabel("channel (ordered by preferred class)")
    ax.set_ylabel("true class")
    ax.figure.colorbar(im, cax=ax.inset_axes([1.01, 0.0, 0.02, 1.0]), label="mean activation / channel max")
    ax.set_title(f"mean activation of each channel of {df.attrs.get('layer', 'the layer')} per class", fontsize=10)
    return finish(fig, created)


def plot_top_activating(table: pd.DataFrame, images, classes: Sequence[str] | None = None, ax=None):
    """For each channel (a row), the images that activate it most.

    Parameters
    ----------
    table : DataFrame
        ``studies.interpret.top_activating`` (channel, rank, index, true, activation).
    images : array (len(table), 28, 28)
        The images of the table's rows, in order.
    classes : sequence of str, optional
    ax : Axes (one per panel), Figure or SubFigure, optional

    Returns
    -------
    Figure
    """
    imgs = _as_array(images)
    channels = list(dict.fromkeys(table["channel"]))
    k = int(table["rank"].max()) + 1 if len(table) else 1
    fig, axes, created = panels(ax, max(len(channels), 1), k, figsize=(k * 0.95, max(len(channels), 1) * 1.05))
    for r, ch in enumerate(channels):
        rows = np.flatnonzero(table["channel"].to_numpy() == ch)
        for j in range(k):
            ax = axes[r, j]
            _off(ax)
            if j < len(rows):
                i = rows[j]
                ax.imshow(imgs[i], cmap="gray_r", vmin=0, vmax=1)
                lab = classes[int(table["true"].iloc[i])] if classes is not None else int(table["true"].iloc[i])
                ax.set_title(f"{lab}: {table['activation'].iloc[i]:.2f}", fontsize=6, pad=1)
        axes[r, 0].set_ylabel(f"ch {ch}", fontsize=8)
    fig.suptitle(f"images that activate channels of {table.attrs.get('layer', 'the layer')} most "
                 "(title: label and mean activation)", fontsize=10)
    return finish(fig, created, h_pad=0.3)


def plot_class_maximization(images, table: pd.DataFrame, classes: Sequence[str], ncols: int = 5, ax=None):
    """The input each class's score likes best (class activation maximisation), titled with its probability."""
    imgs = np.asarray(images)
    k = len(imgs)
    nrows, ncols = _grid_shape(k, ncols)
    fig, axes, created = panels(ax, nrows, ncols, figsize=(ncols * 1.7, nrows * 1.85), count=k)
    for i, ax in enumerate(axes.flat):
        _off(ax)
        if i < k:
            r = table.iloc[i]
            ax.imshow(imgs[i], cmap="gray_r", vmin=0, vmax=1)
            ax.set_title(f"{classes[int(r['class'])]}: p = {r['prob']:.2f}", fontsize=9)
    fig.suptitle("what each class looks like to the network (gradient ascent on the input, smoothness penalty)",
                 fontsize=10)
    return finish(fig, created)


def plot_reliability(cal, ax=None):
    """Reliability diagram before and after temperature scaling, and the confidence histogram.

    Left: one point per bin of ``cal.diagram`` (equal-width confidence bins, neighbours pooled
    until each holds at least ``cal.min_count`` images), at the bin's mean confidence and
    accuracy, with the 95% Wilson interval of the accuracy as a vertical bar and the bin's
    confidence range as a thin horizontal line; the marker's area grows with the images in the
    bin. Right: images per equal-width bin (those of the ECE), on a log scale, with the
    pooling threshold dashed. The legends sit below the axes, off the data.

    Parameters
    ----------
    cal : Calibration
        ``studies.interpret.calibrate``.
    ax : pair of Axes, Figure or SubFigure, optional
        (diagram, histogram).

    Returns
    -------
    Figure
    """
    fig, grid, created = panels(ax, 1, 2, figsize=(11, 5.2), gridspec_kw={"width_ratios": [1.2, 1]})
    ax, hx = grid.flat
    d = cal.diagram
    nmax = max(1.0, float(d["count"].max())) if len(d) else 1.0

    def area(n):
        return 12 + 180 * np.sqrt(np.asarray(n, dtype=float) / nmax)

    series = (("before", "before", cal.before, cal.ece_before, PALETTE[3]),
              ("after", f"after (T = {cal.temperature:.2f})", cal.after, cal.ece_after, PALETTE[0]))
    lo = 1.0
    for which, name, tab, ece, c in series:
        t = d[d["which"] == which]
        if len(t):
            lo = min(lo, float(t["low"].min()), float(t["ci_low"].min()))
            ax.hlines(t["accuracy"], t["low"], t["high"], color=c, lw=1.0, alpha=0.45, zorder=2)
            ax.errorbar(t["confidence"], t["accuracy"], yerr=[t["accuracy"] - t["ci_low"], t["ci_high"] - t["accuracy"]],
                        fmt="none", ecolor=c, elinewidth=1.4, capsize=3, zorder=3)
        ax.scatter(t["confidence"], t["accuracy"], s=area(t["count"]), color=c, edgecolor="white", linewidth=0.6,
                   zorder=4, label=f"{name}: ECE {ece:.4f}, {len(t)} bin{'s' * (len(t) != 1)}")
        width = (tab["high"] - tab["low"]).iloc[0]
        hx.bar(tab["low"] + width / 2 + (-0.18 if which == "before" else 0.18) * width, tab["count"],
               width=width * 0.36, color=c, label=name)
    lo = max(0.0, math.floor((lo - 0.02) * 20) / 20)
    ax.plot([lo, 1], [lo, 1], "k--", lw=1, label="perfect calibration", zorder=1)
    for n in (10, 100, 1000, 10_000):                         # the size key: empty markers of a few counts
        if cal.min_count <= n <= nmax:
            ax.scatter([], [], s=area(n), facecolor="none", edgecolor="0.4", label=f"{n:,} images")
    ax.set(xlim=(lo, 1.02), ylim=(lo, 1.02), xlabel="mean confidence in the bin", ylabel="accuracy in the bin")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=3, frameon=False,
              title=f"bars: 95% Wilson interval; line: the bin's confidence range (bins of at least "
                    f"{cal.min_count} images)", title_fontsize=7.5)
    ax.set_title(f"reliability diagram (evaluation half, {len(cal.eval_indices):,} images)", fontsize=10)
    hx.set_yscale("log")
    hx.axhline(cal.min_count, color="0.3", lw=1, ls=":", label=f"{cal.min_count} images: fewer are pooled")
    hx.set(xlabel="confidence of the top class", ylabel="images (log)", xlim=(0, 1.02))
    hx.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=3, frameon=False)
    hx.grid(alpha=0.3)
    hx.set_title(f"images per confidence bin ({len(cal.before)} equal bins, those of the ECE)", fontsize=10)
    return finish(fig, created)


def plot_label_issues(issues: pd.DataFrame, images, classes: Sequence[str], ncols: int = 8, title: str | None = None,
                      ax=None):
    """The top suspected label errors: each digit titled with its given label and the predicted one.

    Parameters
    ----------
    issues : DataFrame
        ``studies.interpret.label_issues`` (given, predicted, p_predicted, index, ...), first rows shown.
    images : ImageSet, or array (len(issues), 28, 28)
        The data set the issues were found in (its images at ``issues["index"]`` are shown), or
        the issues' images in their order.
    classes : sequence of str
    ncols : int
    title : str, optional
    ax : Axes (one per panel), Figure or SubFigure, optional

    Returns
    -------
    Figure
    """
    if hasattr(images, "images"):   # the whole set: pick the issues' rows (a copy of the index: pandas' may be read-only)
        imgs = _as_array(images.images.cpu().numpy()[np.array(issues["index"], dtype=np.int64)])
    else:
        imgs = _as_array(images)
    titles = [f"given {classes[g]}\npred {classes[p]} {q:.2f}"
              for g, p, q in zip(issues["given"], issues["predicted"], issues["p_predicted"])][:len(imgs)]
    return plot_digits(imgs, titles, ncols=ncols, title=title or "suspected label errors (cleanlab), most severe first",
                       ax=ax)


def plot_robustness(df: pd.DataFrame, ax=None):
    """Accuracy against the perturbation level, one panel per perturbation, one line per model (95% CI band).

    Parameters
    ----------
    df : DataFrame
        ``studies.interpret.robustness``.
    ax : sequence of Axes, Figure or SubFigure, optional
        One per perturbation.

    Returns
    -------
    Figure
    """
    kinds = list(dict.fromkeys(df["perturbation"]))
    fig, grid, created = panels(ax, 1, len(kinds), figsize=(3.6 * len(kinds), 3.5), sharey=True)
    axes = grid[0]
    models = list(dict.fromkeys(df["model"]))
    colors = config_colors(models)
    for a, kind in zip(axes, kinds):
        d = df[df["perturbation"] == kind]
        for m in models:
            s = d[d["model"] == m].sort_values("level")
            a.fill_between(s["level"], s["ci_low"] * 100, s["ci_high"] * 100, color=colors[m], alpha=0.2)
            a.plot(s["level"], s["acc"] * 100, "o-", color=colors[m], ms=3, label=m)
        a.set_xlabel(d["unit"].iloc[0])
        a.set_title(kind, fontsize=10)
        a.grid(alpha=0.3)
    axes[0].set_ylabel("test accuracy (%)")
    axes[-1].legend(fontsize=8, loc="lower left")
    fig.suptitle("robustness: accuracy on perturbed test digits (band: 95% Wilson interval)", fontsize=10)
    return finish(fig, created)


def plot_cell(interp, true: int, predicted: int, maps=None, max_digits: int = 8, ax=None):
    """The digits of one confusion cell with their probabilities, and their attribution maps below.

    Parameters
    ----------
    interp : Interpretation
        With images.
    true, predicted : int
        The cell.
    maps : array (K, 28, 28), optional
        Attribution maps of the shown digits (same order as ``interp.cell``), drawn in a second row.
    max_digits : int
    ax : Axes (one per panel), Figure or SubFigure, optional

    Returns
    -------
    Figure
    """
    idx = interp.cell(true, predicted)[:max_digits]
    nrows = 1 if maps is None else 2
    fig, axes, created = panels(ax, nrows, max(len(idx), 1), figsize=(max(len(idx), 1) * 1.45, nrows * 1.6))
    preds = interp.predictions
    for j, ax in enumerate(axes[0]):
        _off(ax)
        if j < len(idx):
            r = preds.loc[idx[j]]
            ax.imshow(_as_array(interp.images_of([idx[j]]))[0], cmap="gray_r", vmin=0, vmax=1)
            ax.set_title(f"#{idx[j]}\np{interp.classes[predicted]}={r[f'p{predicted}']:.2f}"
                         + (f" p{interp.classes[true]}={r[f'p{true}']:.2f}" if true != predicted else ""), fontsize=7)
    if maps is not None:
        imgs = _as_array(interp.images_of(idx)) if len(idx) else []
        for j, ax in enumerate(axes[1]):
            _off(ax)
            if j < len(idx):
                _show_map(ax, np.asarray(maps[j]), imgs[j])
    n = len(interp.cell(true, predicted))
    head = (f"true {interp.classes[true]} → predicted {interp.classes[predicted]}: {n} digit{'s' * (n != 1)}"
            + (f" (first {len(idx)})" if n > len(idx) else ""))
    if not len(idx):
        axes[0, 0].text(0.5, 0.5, "empty cell", ha="center", va="center", transform=axes[0, 0].transAxes)
    fig.suptitle(head + ("" if maps is None else "; below: saliency toward the predicted class"), fontsize=9)
    return finish(fig, created)
