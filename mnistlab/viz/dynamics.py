"""Training-dynamics figures: histogram GIFs and key frames, gradient flow, update ratios, diagnoses.

Every function that draws follows the package rule: with ``ax=`` (an Axes, an array of Axes, or
a Figure / SubFigure: :func:`mnistlab.viz.common.panels`) it draws into the caller's axes or
figure and returns that figure without touching its layout; without, it makes its own figure
(and lays it out). The GIF functions return the frames as RGB arrays
for :meth:`mnistlab.viz.store.Figures.save_gif`; they draw each figure once and then only
update the artists' data per frame, so a 100-frame, 8-panel GIF renders in seconds.
:func:`save_histogram_gif` goes from a recorder straight to a GIF file.

Every histogram panel spans the bins that hold values in any recorded frame (the recorder's
edges cover every record, see :class:`~mnistlab.training.recorder.HistogramRecorder`), so no
frame's data falls outside the picture. Layers binned in ``asinh(x / w)`` (by default the
gradients and updates) are drawn on matplotlib's ``asinh`` axis with the same ``w``, on which
their bins are equally wide: linear within +- w, logarithmic beyond, so the height of each bar
is the share of values in an equally wide slice of the axis.

Examples
--------
>>> rec = ml.HistogramRecorder(every=20)                                      # doctest: +SKIP
>>> ml.fit(ml.create_model("conv2_fc2", seed=0), train, config=ml.TrainConfig(epochs=1), callbacks=[rec])
>>> ml.viz.dynamics.save_histogram_gif(rec, "weights.gif", quantity="weights")
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Mapping, Sequence

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from ..studies import dynamics as dyn
from .._util import atomic_write
from ..training.recorder import HistogramFrames, HistogramRecorder
from .common import _grid_shape, finish, one_panel, panels
from .store import figure_to_array
from .style import PALETTE, class_colors

__all__ = [
    "GIF_DPI", "layer_colors", "key_frame_indices", "data_span", "plot_histograms", "histogram_gif_frames",
    "save_histogram_gif", "plot_key_frames",
    "plot_shape", "plot_gradient_flow", "plot_gradient_heatmap", "plot_layer_lines", "plot_update_ratios",
    "plot_diagnosis", "plot_representation", "representation_gif_frames", "plot_representation_key_frames",
    "plot_separation", "plot_loss_line",
]

GIF_DPI = 90
"""Resolution of GIF frames (small files; the PNG key frames are the print version)."""

_QUANTITY_LABEL = {"weights": "weight", "gradients": "gradient", "updates": "update (change made by the step)"}
_GHOST = "0.55"


def layer_colors(n: int) -> list:
    """One colour per layer, first layer dark purple to last layer yellow (viridis), used in every figure."""
    cmap = mpl.colormaps["viridis"]
    return [cmap(0.9 * i / max(1, n - 1)) for i in range(n)]


def key_frame_indices(steps: Sequence[int], n: int = 5) -> list[int]:
    """Indices of about ``n`` frames evenly spaced in steps, always with the first and the last."""
    steps = np.asarray(steps)
    if len(steps) <= n:
        return list(range(len(steps)))
    targets = np.linspace(steps[0], steps[-1], n)
    idx = sorted({int(np.argmin(np.abs(steps - t))) for t in targets} | {0, len(steps) - 1})
    return idx


def data_span(frames: HistogramFrames, layer: int, pad: int = 1) -> tuple[float, float]:
    """The x range of a layer's histograms: from the first to the last bin that holds a value in any frame.

    Computed from every recorded frame, not the first, so each frame's data lies inside it;
    ``pad`` empty bins are kept on each side (within the edges). A layer with no counts at all
    gets its full edges.

    Parameters
    ----------
    frames : HistogramFrames
    layer : int
        Position of the layer in ``frames.layers``.
    pad : int

    Returns
    -------
    (float, float)
    """
    edges = frames.edges[layer]
    used = np.flatnonzero(frames.counts[:, layer].sum(0) > 0) if len(frames) else np.array([], dtype=int)
    if not len(used):
        return float(edges[0]), float(edges[-1])
    lo = max(int(used[0]) - pad, 0)
    hi = min(int(used[-1]) + 1 + pad, len(edges) - 1)
    return float(edges[lo]), float(edges[hi])


def _x_axis(ax, frames: HistogramFrames, layer: int, fontsize: float) -> None:
    """The x axis of a layer's histogram: its data span, on an asinh axis for asinh bins."""
    w = frames.linear_width(layer)
    lo, hi = data_span(frames, layer)
    if w > 0:
        ax.set_xscale("asinh", linear_width=w)
        major, minor = _decade_ticks(lo, hi, w)
        ax.xaxis.set_major_locator(mpl.ticker.FixedLocator(major))
        ax.xaxis.set_minor_locator(mpl.ticker.FixedLocator(minor))
    ax.set_xlim(lo, hi)
    ax.tick_params(labelsize=fontsize)
    if w <= 0:
        ax.ticklabel_format(axis="x", style="sci", scilimits=(-2, 3))
        ax.xaxis.get_offset_text().set_fontsize(fontsize)


def _decade_ticks(lo: float, hi: float, w: float, most: int = 2) -> tuple[list, list]:
    """Ticks of an asinh axis over [lo, hi]: 0 and at most ``most`` labelled powers of ten per side; minor ticks every decade."""
    top = max(abs(lo), abs(hi))
    if not top > w:
        return [0.0], []
    k_hi, k_lo = math.floor(math.log10(top)), math.ceil(math.log10(w))
    decades = list(range(k_hi, k_lo - 1, -1))
    step = max(1, math.ceil(len(decades) / most))
    labelled = decades[::step][:most]
    major, minor = [0.0], []
    for k in decades:
        for sign in (-1.0, 1.0):
            v = sign * 10.0 ** k
            if lo <= v <= hi:
                (major if k in labelled else minor).append(v)
    return sorted(major), sorted(minor)


def _x_label(frames: HistogramFrames) -> str:
    label = _QUANTITY_LABEL[frames.quantity]
    if frames.scale is not None and np.any(np.asarray(frames.scale) > 0):
        label += ",\nlog axis (linear near 0)"
    return label


# --------------------------------------------------------------------------------------------
# Histograms: one frame, GIF frames, key frames
# --------------------------------------------------------------------------------------------

class _HistogramPanels:
    """One panel per layer drawn once; :meth:`show` swaps in another frame's counts."""

    def __init__(self, frames: HistogramFrames, axes, reference: bool, yscale: str):
        self.frames = frames
        counts = frames.counts.astype(float)
        self.frac = counts / np.maximum(counts.sum(-1, keepdims=True), 1)       # (F, L, B) fraction per bin
        colors = layer_colors(len(frames.layers))
        self.patches, self.ghosts = [], []
        for l, ax in enumerate(axes):
            edges = frames.edges[l]
            self.patches.append(ax.stairs(self.frac[0, l], edges, fill=True, color=colors[l], alpha=0.85, zorder=2))
            if reference:  # drawn over the filled histogram so the outline stays visible
                self.ghosts.append(ax.stairs(self.frac[0, l], edges, color=_GHOST, lw=1.0, ls="--", zorder=3))
            top = float(self.frac[:, l].max()) if self.frac.size else 1.0
            _x_axis(ax, frames, l, 7)
            if yscale == "log":
                ax.set_yscale("log")
                ax.set_ylim(0.5 / max(1.0, counts[0, l].sum()), max(top * 1.5, 1e-6))
            else:
                ax.set_ylim(0, max(top * 1.05, 1e-12))
            n = int(counts[0, l].sum())
            ax.set_title(f"{frames.layers[l]} ({n:,} values)", fontsize=9)
            ax.set_xlabel(_x_label(frames), fontsize=8)
        axes[0].set_ylabel("fraction per bin", fontsize=8)

    def show(self, i: int) -> None:
        for l, patch in enumerate(self.patches):
            patch.set_data(values=self.frac[i, l])

    @property
    def artists(self) -> list:
        """What changes between frames, in drawing order."""
        return [*self.patches, *self.ghosts]

    def label(self, i: int) -> str:
        f = self.frames
        return f"{f.quantity} at step {int(f.steps[i]):,} (epoch {int(f.epochs[i])})"


def _frames_of(data, quantity: str) -> HistogramFrames:
    return data.histograms(quantity) if isinstance(data, HistogramRecorder) else data


def plot_histograms(data, quantity: str = "weights", index: int = -1, ax=None, reference: bool = True,
                    yscale: str = "linear", ncols: int = 4):
    """One recorded frame: a histogram panel per layer on fixed axes, the first record dashed.

    Parameters
    ----------
    data : HistogramRecorder or HistogramFrames
    quantity : str
        "weights", "gradients" or "updates" (ignored for HistogramFrames).
    index : int
        Frame to show (default the last).
    ax : sequence of Axes, Figure or SubFigure, optional
        One per layer; default a new figure with ``ncols`` panels per row.
    reference : bool
        Draw the first record as a dashed outline.
    yscale : "linear" or "log"
    ncols : int

    Returns
    -------
    matplotlib.figure.Figure
    """
    frames = _frames_of(data, quantity)
    n = len(frames.layers)
    nrows, ncols = _grid_shape(n, ncols)
    fig, grid, created = panels(ax, nrows, ncols, figsize=(2.6 * ncols, 2.1 * nrows), count=n)
    flat = list(grid.flat[:n])
    hist = _HistogramPanels(frames, flat, reference, yscale)
    hist.show(index)
    if created:
        fig.suptitle(hist.label(index), fontsize=10)
    else:   # the caller's figure: the step goes above the first panel, replacing (not overlapping) its title
        flat[0].set_title(f"{hist.label(index)}\n{flat[0].get_title()}", fontsize=9)
    return finish(fig, created)


def histogram_gif_frames(data, quantity: str = "weights", indices: Sequence[int] | None = None, ax=None,
                         reference: bool = True, yscale: str = "linear", ncols: int = 4, dpi: float = GIF_DPI,
                         blit: bool = True, progress: bool = True) -> list[np.ndarray]:
    """Render every recorded frame of a quantity as an RGB image (for a GIF).

    The panels are drawn once; each frame only swaps the histogram values and the step label,
    so rendering costs one canvas draw per frame.

    Parameters
    ----------
    data : HistogramRecorder or HistogramFrames
    quantity : str
    indices : sequence of int, optional
        Frames to render (default all).
    ax : Figure, SubFigure or sequence of Axes, optional
        Draw into this (empty) figure or these axes (one per layer); default a new figure, closed
        afterwards.
    reference, yscale, ncols
        As in :func:`plot_histograms`.
    dpi : float
        Resolution of a new figure.
    blit : bool
        Draw the static parts once and only the changing artists per frame (fast); False redraws
        the whole figure for every frame (the same pixels, slower).
    progress : bool

    Returns
    -------
    list of numpy.ndarray
        RGB uint8 frames of one shape.
    """
    frames = _frames_of(data, quantity)
    n = len(frames.layers)
    nrows, ncols = _grid_shape(n, ncols)
    fig, grid, created = panels(ax, nrows, ncols, figsize=(2.6 * ncols, 2.1 * nrows + 0.35), count=n)
    if created:
        fig.set_dpi(dpi)
    hist = _HistogramPanels(frames, list(grid.flat[:n]), reference, yscale)
    title = fig.suptitle(hist.label(0), fontsize=10)
    root = finish(fig, created, rect=(0, 0, 1, 0.97))
    order = list(range(len(frames))) if indices is None else list(indices)
    try:
        return _blit_frames(root, [*hist.artists, title], order,
                            lambda i: (hist.show(i), title.set_text(hist.label(i))),
                            desc=f"{quantity} GIF frames", progress=progress, blit=blit)
    finally:
        if created:
            plt.close(root)


def save_histogram_gif(recorder, path, quantity: str = "weights", fps: float = 8.0, yscale: str = "linear",
                       ncols: int = 4, dpi: float = GIF_DPI, reference: bool = True, progress: bool = False) -> Path:
    """Write the recorded histograms of one quantity as an animated GIF: one frame per record, one panel per layer.

    The frames are those of :func:`histogram_gif_frames` (fixed axes per layer spanning the data
    of every frame, the first record dashed, the step and epoch in the title); the file is
    written with imageio, atomically (a reader never sees half a GIF, and a failed write
    leaves the previous file).

    Parameters
    ----------
    recorder : HistogramRecorder or HistogramFrames
        A recorder that was passed to ``fit`` (or ``experiments.run``) as a callback.
    path : path
        The ``.gif`` file to write (its folder is created).
    quantity : str
        "weights", "gradients" or "updates" (ignored for HistogramFrames).
    fps : float
        Frames per second.
    yscale, ncols, dpi, reference
        As in :func:`histogram_gif_frames`; ``yscale="log"`` shows the tails of gradients.
    progress : bool
        A progress bar while rendering.

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    ValueError
        If ``path`` does not end in ``.gif``, ``fps`` is not positive, or nothing was recorded.

    Examples
    --------
    >>> rec = ml.HistogramRecorder(every=20)                                  # doctest: +SKIP
    >>> ml.fit(ml.create_model("conv2_fc2", seed=0), train, config=ml.TrainConfig(epochs=1), callbacks=[rec])
    >>> ml.viz.dynamics.save_histogram_gif(rec, "weights.gif")
    """
    import imageio.v3 as iio

    path = Path(path)
    if path.suffix.lower() != ".gif":
        raise ValueError(f"{path} does not end in .gif; save_histogram_gif writes GIF files only.")
    if not fps > 0:
        raise ValueError(f"fps must be positive, got {fps!r}.")
    images = np.stack(histogram_gif_frames(recorder, quantity, yscale=yscale, ncols=ncols, dpi=dpi,
                                           reference=reference, progress=progress))
    atomic_write(path, lambda fh: iio.imwrite(fh, images, extension=".gif", duration=1000.0 / fps, loop=0))
    return path


def _blit_frames(fig, artists: list, order: Sequence[int], update, desc: str, progress: bool,
                 blit: bool = True) -> list[np.ndarray]:
    """Draw everything static once, then per frame restore it and draw only ``artists`` (blitting).

    The figure must use the Agg canvas (any non-interactive backend's ``savefig`` path uses it;
    for an interactive figure the frames are rendered with full redraws instead).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = fig.canvas
    if not blit or not isinstance(canvas, FigureCanvasAgg) or not hasattr(canvas, "copy_from_bbox"):
        out = []
        for i in tqdm(order, desc=desc, disable=not progress):
            update(i)
            out.append(figure_to_array(fig))
        return out
    for a in artists:
        a.set_animated(True)
    try:
        canvas.draw()                                   # everything but the animated artists
        background = canvas.copy_from_bbox(fig.bbox)
        renderer = canvas.get_renderer()
        out = []
        for i in tqdm(order, desc=desc, disable=not progress):
            update(i)
            canvas.restore_region(background)
            for a in artists:
                a.draw(renderer)
            out.append(np.asarray(canvas.buffer_rgba())[..., :3].copy())
        return out
    finally:
        for a in artists:
            a.set_animated(False)


def plot_key_frames(data, quantity: str = "weights", n: int = 5, ax=None, yscale: str = "linear"):
    """Small multiples of a few key frames: one row per layer, one column per moment, fixed axes per row.

    Parameters
    ----------
    data : HistogramRecorder or HistogramFrames
    quantity : str
    n : int
        About how many frames (the first and the last always; see :func:`key_frame_indices`).
    ax : layers x frames Axes, Figure or SubFigure, optional
    yscale : "linear" or "log"

    Returns
    -------
    matplotlib.figure.Figure
    """
    frames = _frames_of(data, quantity)
    idx = key_frame_indices(frames.steps, n)
    L, K = len(frames.layers), len(idx)
    fig, grid, created = panels(ax, L, K, figsize=(2.0 * K + 0.6, 1.45 * L + 0.6), sharex="row", sharey="row")
    counts = frames.counts.astype(float)
    frac = counts / np.maximum(counts.sum(-1, keepdims=True), 1)
    colors = layer_colors(L)
    for l in range(L):
        top = float(frac[idx, l].max())
        for k, i in enumerate(idx):
            a = grid[l, k]
            if k:
                a.stairs(frac[idx[0], l], frames.edges[l], color=_GHOST, lw=0.8, ls="--")
            a.stairs(frac[i, l], frames.edges[l], fill=True, color=colors[l], alpha=0.85)
            _x_axis(a, frames, l, 6)
            if yscale == "log":
                a.set_yscale("log")
                a.set_ylim(0.5 / max(1.0, counts[i, l].sum()), top * 1.5)
            else:
                a.set_ylim(0, top * 1.05)
            if l == 0:
                a.set_title(f"step {int(frames.steps[i]):,}\n(epoch {int(frames.epochs[i])})", fontsize=8)
            if k == 0:
                a.set_ylabel(frames.layers[l], fontsize=9)
    if created:
        axis = ("; x: log axis, linear near 0" if frames.scale is not None and np.any(np.asarray(frames.scale) > 0)
                else "")
        fig.suptitle(f"{_QUANTITY_LABEL[frames.quantity]} histograms (fraction per bin; dashed: first record{axis})",
                     fontsize=10)
    return finish(fig, created)


def plot_shape(shape: pd.DataFrame, ax=None):
    """Excess kurtosis and the fraction of weights near zero per layer, at each recorded moment.

    Parameters
    ----------
    shape : pandas.DataFrame
        From :func:`mnistlab.studies.dynamics.distribution_shape`.
    ax : two Axes, Figure or SubFigure, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig, grid, created = panels(ax, 1, 2, figsize=(9.2, 3.3))
    a1, a2 = grid.flat
    moments = list(shape["moment"].cat.categories) if hasattr(shape["moment"], "cat") else list(dict.fromkeys(shape["moment"]))
    layers = list(dict.fromkeys(shape["layer"]))
    x = np.arange(len(layers))
    w = 0.8 / len(moments)
    fan = shape.drop_duplicates("layer").set_index("layer")["fan_in"]
    greys = [str(g) for g in np.linspace(0.75, 0.25, len(moments))]
    for j, m in enumerate(moments):
        sub = shape[shape["moment"] == m].set_index("layer").reindex(layers)
        a1.bar(x + (j - (len(moments) - 1) / 2) * w, sub["kurtosis"], w, color=greys[j], label=str(m))
        a2.bar(x + (j - (len(moments) - 1) / 2) * w, sub["near_zero"] * 100, w, color=greys[j], label=str(m))
    a1.axhline(-1.2, color=PALETTE[3], ls="--", lw=1)
    a1.axhline(0.0, color=PALETTE[0], ls=":", lw=1)
    a1.annotate("uniform (-1.2)", (1.0, -1.2), xycoords=("axes fraction", "data"), xytext=(3, 0),
                textcoords="offset points", va="center", fontsize=8, color=PALETTE[3])
    a1.annotate("normal (0)", (1.0, 0.0), xycoords=("axes fraction", "data"), xytext=(3, 0),
                textcoords="offset points", va="center", fontsize=8, color=PALETTE[0])
    a1.set(ylabel="excess kurtosis", title="shape of the weight distribution")
    a2.set(ylabel="weights near zero (%)", title="fraction of weights near zero")
    for a in (a1, a2):
        a.set_xticks(x, [f"{l}\nfan-in {fan[l]:,}" for l in layers], fontsize=8)
        a.grid(axis="y", alpha=0.3)
    a2.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8, frameon=False)
    return finish(fig, created)


# --------------------------------------------------------------------------------------------
# Gradient flow, update ratios, diagnosis
# --------------------------------------------------------------------------------------------

def plot_gradient_flow(flow: pd.DataFrame, ax=None, n_lines: int = 6):
    """Mean (solid) and max (dashed) |gradient| per layer, last layer to first, at a few moments.

    Parameters
    ----------
    flow : pandas.DataFrame
        From :func:`mnistlab.studies.dynamics.gradient_flow`.
    ax : Axes, optional
    n_lines : int
        About how many recorded steps to draw (evenly spaced, first and last included).

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig, ax, created = one_panel(ax, figsize=(7.5, 4.0))
    steps = np.sort(flow["step"].unique())
    chosen = steps[key_frame_indices(steps, n_lines)]
    layers = list(flow["layer"].cat.categories)
    x = np.arange(len(layers))
    cmap = mpl.colormaps["plasma"]
    for j, s in enumerate(chosen):
        sub = flow[flow["step"] == s].set_index("layer").reindex(layers)
        c = cmap(0.85 * j / max(1, len(chosen) - 1))
        ep = int(sub["epoch"].dropna().iloc[0]) if sub["epoch"].notna().any() else 0
        ax.plot(x, sub["abs_mean"], "-o", color=c, ms=4, label=f"step {int(s):,} (epoch {ep})")
        ax.plot(x, sub["abs_max"], "--", color=c, lw=1, alpha=0.7)
    ax.plot([], [], "k-", label="mean |gradient|")
    ax.plot([], [], "k--", lw=1, label="max |gradient|")
    ax.set_yscale("log")
    ax.set_xticks(x, layers)
    ax.set(xlabel="layer (the gradient flows from the output, left, to the input, right)", ylabel="|gradient|",
           title="gradient flow")
    ax.grid(alpha=0.3, which="major")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    return finish(fig, created)


def plot_gradient_heatmap(flow: pd.DataFrame, ax=None, statistic: str = "abs_mean"):
    """log10 of mean (or max) |gradient| as a heatmap: layers (last at the top) by recorded step.

    Parameters
    ----------
    flow : pandas.DataFrame
        From :func:`mnistlab.studies.dynamics.gradient_flow`.
    ax : Axes, optional
    statistic : "abs_mean" or "abs_max"

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig, ax, created = one_panel(ax, figsize=(8.0, 3.2))
    wide = flow.pivot_table(index="layer", columns="step", values=statistic, observed=True, sort=True)
    layers = list(flow["layer"].cat.categories)
    wide = wide.reindex(layers)
    steps = wide.columns.to_numpy()
    with np.errstate(divide="ignore"):
        z = np.log10(wide.to_numpy(dtype=float))
    dx = (steps[1] - steps[0]) if len(steps) > 1 else 1
    im = ax.imshow(z, aspect="auto", cmap="magma", interpolation="nearest",
                   extent=(steps[0] - dx / 2, steps[-1] + dx / 2, len(layers) - 0.5, -0.5))
    ax.set_yticks(range(len(layers)), layers)
    ax.set(xlabel="step", ylabel="layer (output at the top)",
           title=f"log10 {'mean' if statistic == 'abs_mean' else 'max'} |gradient| per layer and step")
    cax = ax.inset_axes([1.015, 0.0, 0.025, 1.0])
    fig.colorbar(im, cax=cax, label="log10 |gradient|")
    return finish(fig, created)


def plot_layer_lines(table: pd.DataFrame, ax=None, ylabel: str = "", title: str | None = None, logy: bool = False,
                     x: str = "step", legend: bool = True):
    """One line per layer over training from a step x layer table (:func:`~mnistlab.studies.dynamics.over_training`).

    Parameters
    ----------
    table : pandas.DataFrame
        Index step, an ``epoch`` column, one column per layer (model order).
    ax : Axes, optional
    ylabel, title : str
    logy : bool
    x : "step" or "epoch"
    legend : bool

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig, ax, created = one_panel(ax, figsize=(7.0, 3.6))
    cols = [c for c in table.columns if c != "epoch"]
    xs = table.index.to_numpy() if x == "step" else table["epoch"].to_numpy()
    for c, color in zip(cols, layer_colors(len(cols))):
        ax.plot(xs, table[c].to_numpy(dtype=float), color=color, lw=1.4, label=c)
    if logy:
        ax.set_yscale("log")
    ax.set(xlabel=x, ylabel=ylabel)
    if title:
        ax.set_title(title)
    ax.grid(alpha=0.3)
    if legend:
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    return finish(fig, created)


def _mark_rule(ax, label: bool = True) -> None:
    ax.axhline(dyn.RULE_OF_THUMB, color="k", ls="--", lw=1)
    if label:
        ax.annotate("1e-3 rule of thumb", (0.01, dyn.RULE_OF_THUMB), xycoords=("axes fraction", "data"),
                    xytext=(0, 3), textcoords="offset points", fontsize=8)


def plot_update_ratios(table: pd.DataFrame, ax=None, title: str | None = "update / weight ratio ||dw|| / ||w|| per step",
                       legend: bool = True):
    """Update/weight ratio per layer over training (log scale) with the ~1e-3 rule of thumb marked.

    Parameters
    ----------
    table : pandas.DataFrame
        ``over_training(rec, "updates", "ratio")``.
    ax : Axes, optional
    title : str, optional
    legend : bool

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig, ax, created = one_panel(ax, figsize=(7.0, 3.6))
    plot_layer_lines(table, ax=ax, ylabel="||dw|| / ||w||", title=title, logy=True, legend=legend)
    _mark_rule(ax)
    return finish(fig, created)


def plot_diagnosis(recorders: Mapping[str, HistogramRecorder], ax=None, histories: Mapping[str, pd.DataFrame] | None = None):
    """Healthy against sick runs side by side: one column per run, one row per diagnostic.

    Rows: the training-batch loss at the recorded steps (with the last validation accuracy),
    the gradient flow (median mean |gradient| per layer over training, last layer to first),
    the update/weight ratio per layer over training with the 1e-3 rule of thumb, and the
    fraction of dead units (outputs <= 0 for a whole batch) per activation. Rows share their
    y axes so columns compare at a glance.

    Parameters
    ----------
    recorders : dict of run name -> HistogramRecorder
    ax : 4 x runs Axes, Figure or SubFigure, optional
    histories : dict of run name -> history DataFrame, optional
        For the final validation accuracy in the loss panel's title.

    Returns
    -------
    matplotlib.figure.Figure
    """
    names = list(recorders)
    fig, grid, created = panels(ax, 4, len(names), figsize=(3.4 * len(names) + 1.2, 10.5), sharey="row")
    for j, name in enumerate(names):
        rec = recorders[name]
        colors = layer_colors(len(rec.layers))
        ax = grid[0, j]
        loss = dyn.over_training(rec, "loss", "loss")["model"]
        finite = np.isfinite(loss.to_numpy())
        ax.plot(loss.index[finite], loss[finite], color="k", lw=1.2)
        title = name
        hist = (histories or {}).get(name)
        if hist is not None and "val_acc" in hist and hist["val_acc"].notna().any():
            title += f"\nlast val acc {hist['val_acc'].dropna().iloc[-1]:.1%}"
        elif hist is not None:
            title += "\n(diverged)"
        if not finite.all():
            ax.axvline(loss.index[~finite][0], color=PALETTE[3], ls=":", lw=1)
            title += f", loss not finite at step {int(loss.index[~finite][0]):,}"
        ax.set_title(title, fontsize=9)
        ax.set_yscale("log")
        ax.set_xlabel("step", fontsize=8)
        summary = dyn.layer_summary(rec)
        ax = grid[1, j]
        order = list(summary.index)[::-1]
        ax.plot(range(len(order)), summary.loc[order, "grad_abs_mean"], "-", color="0.6", lw=1)
        ax.scatter(range(len(order)), summary.loc[order, "grad_abs_mean"], c=colors[::-1], s=30, zorder=3)
        ax.set_yscale("log")
        ax.set_xticks(range(len(order)), order, fontsize=7, rotation=90)
        ratio = dyn.over_training(rec, "updates", "ratio")
        plot_update_ratios(ratio, ax=grid[2, j], title=None, legend=False)
        if rec.activation_names:
            dead = dyn.over_training(rec, "activations", "dead_frac")
            plot_layer_lines(dead, ax=grid[3, j], legend=False)
        grid[3, j].set_ylim(-0.03, 1.03)
        for ax in grid[:, j]:
            ax.tick_params(labelsize=7)
            ax.grid(alpha=0.3)
    grid[0, 0].set_ylabel("training loss (batch)")
    grid[1, 0].set_ylabel("median mean |gradient|\n(output left, input right)")
    grid[2, 0].set_ylabel("||dw|| / ||w||")
    grid[3, 0].set_ylabel("dead units (fraction)")
    last = recorders[names[-1]]
    handles = [mpl.lines.Line2D([], [], color=c, lw=2) for c in layer_colors(len(last.layers))]
    grid[2, -1].legend(handles, list(last.layers), loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=8,
                       frameon=False, title="layer")
    return finish(fig, created)


# --------------------------------------------------------------------------------------------
# The hidden representation over training
# --------------------------------------------------------------------------------------------

def _limits(coords: np.ndarray, pad: float = 0.05) -> tuple[tuple[float, float], tuple[float, float]]:
    lo = np.percentile(coords.reshape(-1, 2), 0.5, axis=0)
    hi = np.percentile(coords.reshape(-1, 2), 99.5, axis=0)
    span = np.maximum(hi - lo, 1e-9)
    return (lo[0] - pad * span[0], hi[0] + pad * span[0]), (lo[1] - pad * span[1], hi[1] + pad * span[1])


class _Scatter:
    def __init__(self, frames: "dyn.RepresentationFrames", ax, legend: bool):
        self.frames = frames
        colors = np.asarray(class_colors(int(frames.labels.max()) + 1))
        self.points = ax.scatter(frames.coords[-1, :, 0], frames.coords[-1, :, 1], c=colors[frames.labels], s=7,
                                 linewidths=0)
        ax.set_xticks([])
        ax.set_yticks([])
        ev = frames.explained_variance
        ax.set_xlabel(f"PC1 of the final features ({ev[0]:.0%} of their variance)", fontsize=8)
        ax.set_ylabel(f"PC2 ({ev[1]:.0%})", fontsize=8)
        if legend:
            handles = [mpl.lines.Line2D([], [], ls="", marker="o", color=colors[k], ms=5) for k in range(len(colors))]
            ax.legend(handles, [str(k) for k in range(len(colors))], loc="upper left", bbox_to_anchor=(1.0, 1.0),
                      fontsize=7, frameon=False, handletextpad=0.1)
        self.ax = ax

    def show(self, i: int) -> str:
        """Move the points to frame ``i`` and zoom the axes to it (the projection stays the same); return its label."""
        self.points.set_offsets(self.frames.coords[i])
        xl, yl = _limits(self.frames.coords[i])
        self.ax.set_xlim(*xl)
        self.ax.set_ylim(*yl)
        row = self.frames.table.iloc[i]
        return (f"step {int(row['step']):,} (epoch {row['epoch']:.2f}): "
                f"kNN acc {row['knn_acc']:.1%}, silhouette {row['silhouette']:.2f}")


def plot_representation(frames: "dyn.RepresentationFrames", index: int = -1, ax=None, legend: bool = True):
    """The fixed digits' features at one snapshot in the PCA plane of the final features (axes zoomed to the frame).

    Parameters
    ----------
    frames : RepresentationFrames
        From :func:`mnistlab.studies.dynamics.representation_over_training`.
    index : int
        Snapshot (default the last).
    ax : Axes, optional
    legend : bool

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig, ax, created = one_panel(ax, figsize=(5.0, 4.2))
    sc = _Scatter(frames, ax, legend)
    ax.set_title(sc.show(index), fontsize=9)
    return finish(fig, created)


def representation_gif_frames(frames: "dyn.RepresentationFrames", ax=None, dpi: float = GIF_DPI,
                              progress: bool = True) -> list[np.ndarray]:
    """Render every snapshot of the representation as an RGB image (scatter drawn once, points moved).

    Parameters
    ----------
    frames : RepresentationFrames
    ax : Axes, Figure or SubFigure, optional
        An empty axes or figure to draw into; default a new figure, closed afterwards.
    dpi : float
    progress : bool

    Returns
    -------
    list of numpy.ndarray
    """
    fig, ax, created = one_panel(ax, figsize=(5.6, 4.6))
    if created:
        fig.set_dpi(dpi)
    sc = _Scatter(frames, ax, legend=True)
    title = ax.set_title(sc.show(0), fontsize=9)
    root = finish(fig, created)
    try:
        return _blit_frames(root, [sc.points, title], range(len(frames.steps)), lambda i: title.set_text(sc.show(i)),
                            desc="representation GIF frames", progress=progress)
    finally:
        if created:
            plt.close(root)


def plot_representation_key_frames(frames: "dyn.RepresentationFrames", n: int = 5, ax=None):
    """Small multiples of the representation at about ``n`` snapshots (first and last included).

    Snapshots are spaced on a log scale of steps when they were recorded that way, so key frames
    are taken evenly by snapshot index.

    Parameters
    ----------
    frames : RepresentationFrames
    n : int
    ax : sequence of Axes (one per key frame), Figure or SubFigure, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    F = len(frames.steps)
    idx = sorted({int(round(v)) for v in np.linspace(0, F - 1, min(n, F))})
    fig, grid, created = panels(ax, 1, len(idx), figsize=(3.0 * len(idx) + 0.6, 3.3))
    for k, (i, a) in enumerate(zip(idx, grid[0])):
        sc = _Scatter(frames, a, legend=k == len(idx) - 1)
        row = frames.table.iloc[i]
        sc.show(i)
        a.set_title(f"step {int(row['step']):,} (epoch {row['epoch']:.2f})\nkNN {row['knn_acc']:.1%}, "
                    f"silhouette {row['silhouette']:.2f}", fontsize=8)
        if k:
            a.set_ylabel("")
    return finish(fig, created)


def plot_separation(table: pd.DataFrame, ax=None):
    """kNN accuracy (full features and 2-D projection) and silhouette per snapshot, step on a symlog axis.

    Parameters
    ----------
    table : pandas.DataFrame
        ``RepresentationFrames.table``.
    ax : Axes, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig, ax, created = one_panel(ax, figsize=(6.4, 3.6))
    ax.plot(table["step"], table["knn_acc"], "-o", ms=4, label="kNN accuracy, all features")
    ax.plot(table["step"], table["knn_acc_2d"], "-s", ms=4, label="kNN accuracy, 2-D PCA plane")
    ax.plot(table["step"], table["silhouette"], "-^", ms=4, label="silhouette (all features)")
    ax.set_xscale("symlog", linthresh=max(1, int(table["step"][table["step"] > 0].min()) if (table["step"] > 0).any() else 1))
    ax.set(xlabel="step (symmetric log scale)", ylabel="score", title="class separation of the hidden representation")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    return finish(fig, created)


# --------------------------------------------------------------------------------------------
# The loss along the line from the initial to the final weights
# --------------------------------------------------------------------------------------------

def plot_loss_line(line: pd.DataFrame, ax=None):
    """Loss (log scale) and accuracy along the straight line from the initial (0) to the final (1) weights.

    Parameters
    ----------
    line : pandas.DataFrame
        From :func:`mnistlab.studies.dynamics.loss_along_line`.
    ax : two Axes, Figure or SubFigure, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig, grid, created = panels(ax, 1, 2, figsize=(9.2, 3.4))
    a1, a2 = grid.flat
    for split, sub in line.groupby("split", sort=False):
        a1.plot(sub["alpha"], sub["loss"], "-", lw=1.6, label=split)
        a2.plot(sub["alpha"], sub["acc"] * 100, "-", lw=1.6, label=split)
    a1.set_yscale("log")
    a1.yaxis.set_major_locator(mpl.ticker.LogLocator(subs=(1.0, 2.0, 5.0)))
    a1.yaxis.set_major_formatter(mpl.ticker.FormatStrFormatter("%g"))
    a1.yaxis.set_minor_formatter(mpl.ticker.NullFormatter())
    a1.set(xlabel="alpha (0 = initial weights, 1 = trained)", ylabel="cross-entropy loss",
           title="loss on the line (1 - alpha) w0 + alpha w1")
    a2.set(xlabel="alpha", ylabel="accuracy (%)", title="accuracy on the same line")
    for a in (a1, a2):
        for v in (0.0, 1.0):
            a.axvline(v, color="0.5", ls=":", lw=1)
        a.grid(alpha=0.3)
    a2.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    return finish(fig, created)
