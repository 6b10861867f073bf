"""Figures of the GAN notebook: sample grids, the training GIF, loss and D curves, interpolations,
the conditional class grid, class shares, quality over training and the memorisation check.

Every plot takes the data it draws and one canvas keyword, ``ax=None``: an Axes, an array of Axes
for the plots of several panels (:func:`plot_training_curves`: 2, :func:`plot_quality_over_training`:
3), or a Figure / SubFigure to add its panels to (:func:`mnistlab.viz.common.panels`). It draws into
the caller's canvas when given and returns the (top-level) figure; it lays out only figures it created.
"""
from __future__ import annotations

import math
from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch

from ..training.gan import LOSSES, equilibrium
from .common import finish, one_panel, panels
from .store import figure_to_array
from .style import PALETTE, class_colors, config_colors

__all__ = ["tile", "plot_samples", "gif_frames", "plot_training_curves", "plot_interpolation", "plot_class_grid",
           "plot_class_shares", "plot_quality_over_training", "plot_nearest_neighbours",
           "plot_distance_distributions"]



def _as_tensor(images) -> torch.Tensor:
    """Images as a tensor (a copy for read-only arrays, so torch never wraps memory it may not write)."""
    if torch.is_tensor(images):
        return images
    return torch.as_tensor(np.array(images.images if hasattr(images, "images") else images))


def tile(images, nrow: int | None = None, padding: int = 2) -> np.ndarray:
    """uint8 images (N, 28, 28) -> one grey mosaic (H, W) in [0, 1] with ``nrow`` images per row (torchvision's make_grid)."""
    from torchvision.utils import make_grid

    x = _as_tensor(images)
    if x.ndim == 4:
        x = x[:, 0]
    x = x.float().div(255.0) if x.dtype == torch.uint8 else x.float()
    nrow = nrow or max(1, int(math.ceil(math.sqrt(len(x)))))
    grid = make_grid(x.unsqueeze(1), nrow=nrow, padding=padding, pad_value=0.35)
    return grid[0].numpy()


def plot_samples(images, nrow: int | None = None, title: str | None = None, ax=None):
    """A grid of generated (or real) digits.

    Parameters
    ----------
    images : uint8 array or tensor (N, 28, 28)
    nrow : int, optional
        Images per row (default: a square).
    title : str, optional
    ax : matplotlib Axes, optional
    """
    nrow = nrow or max(1, int(math.ceil(math.sqrt(len(images)))))
    rows = int(math.ceil(len(images) / nrow))
    fig, ax, created = one_panel(ax, figsize=(0.42 * nrow + 0.2, 0.42 * rows + 0.5))
    ax.imshow(tile(images, nrow), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    ax.set_axis_off()
    if title:
        ax.set_title(title, fontsize=10)
    return finish(fig, created)


def gif_frames(frames: Sequence[tuple[int, object]], nrow: int | None = None, size: float = 3.4,
               dpi: int = 80, label: str = "step") -> list[np.ndarray]:
    """RGB frames (same shape) of sample grids, each titled with its training step, for ``Figures.save_gif``.

    Parameters
    ----------
    frames : list of (step, uint8 images (N, 28, 28))
        E.g. ``GANSampleRecorder.frames``.
    nrow : int, optional
    size : float
        Frame width and height in inches.
    dpi : int
    label : str
        Word before the step number on each frame.

    Returns
    -------
    list of uint8 arrays (H, W, 3)
    """
    if not frames:
        raise ValueError("gif_frames needs at least one (step, images) frame; record them with GANSampleRecorder.")
    out = []
    for step, images in frames:
        fig, ax = plt.subplots(figsize=(size, size + 0.3), dpi=dpi)
        plot_samples(images, nrow=nrow, ax=ax)
        ax.set_title(f"{label} {step:,}", fontsize=11, family="monospace")
        fig.subplots_adjust(left=0.02, right=0.98, bottom=0.02, top=0.9)
        out.append(figure_to_array(fig))
        plt.close(fig)
    return out


def plot_training_curves(history: pd.DataFrame, window: int = 50, loss: str = "ns", label: str | None = None,
                         title: str | None = None, ax=None):
    """Both losses and the discriminator's outputs D(x), D(G(z)) per step (rolling mean over ``window`` steps).

    The faint lines are the raw per-step values. The dotted lines mark the equilibrium where D
    cannot tell real from fake (every logit 0, D = 0.5; non-saturating loss: loss_D = 2 ln 2,
    loss_G = ln 2; hinge loss: loss_D = 2, loss_G = 0): a healthy run hovers around it with D(x)
    above D(G(z)); a collapsing one shows loss_D falling to 0 with D(x) -> 1 and D(G(z)) -> 0
    while loss_G climbs.

    Parameters
    ----------
    history : DataFrame
        ``GANRun.history`` (columns step, loss_d, loss_g, d_real, d_fake); a ``gan`` column draws one
        line style per GAN.
    window : int
    loss : "ns" or "hinge"
        The loss the run used (where the equilibrium lines sit).
    label : str, optional
        Prefix of both panel titles (e.g. the GAN's name).
    title : str, optional
        Figure title (only on a figure this function creates).
    ax : two matplotlib Axes (an array or a list), or a Figure / SubFigure, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    if loss not in LOSSES:
        raise ValueError(f"loss must be one of {sorted(LOSSES)}, not {loss!r}.")
    fig, grid, created = panels(ax, 1, 2, figsize=(11, 3.8))
    ax_l, ax_d = grid.ravel()
    groups = list(history.groupby("gan", sort=False)) if "gan" in history else [(None, history)]
    styles = ["-", "--", ":", "-."]
    colors = {"loss_d": PALETTE[3], "loss_g": PALETTE[0], "d_real": PALETTE[2], "d_fake": PALETTE[1]}
    names = {"loss_d": "loss D", "loss_g": "loss G", "d_real": "D(x)", "d_fake": "D(G(z))"}
    top, bottom = 0.0, 0.0
    for (gan, h), ls in zip(groups, styles):
        h = h.sort_values("step")
        suffix = f" ({gan})" if gan is not None else ""
        for ax, cols in ((ax_l, ("loss_d", "loss_g")), (ax_d, ("d_real", "d_fake"))):
            for c in cols:
                smooth = h[c].rolling(window, min_periods=1).mean()
                if ax is ax_l:
                    top, bottom = max(top, float(smooth.max())), min(bottom, float(smooth.min()))
                if len(groups) == 1:
                    ax.plot(h["step"], h[c], color=colors[c], alpha=0.18, lw=0.6)
                ax.plot(h["step"], smooth, color=colors[c], ls=ls, lw=1.5, label=names[c] + suffix)
    balance = equilibrium(loss)
    for v in balance:
        ax_l.axhline(v, color="0.4", ls=":", lw=1)
    ax_d.axhline(0.5, color="0.4", ls=":", lw=1)
    # zoom on the smoothed curves and the equilibrium lines; raw spikes run off the panel
    lo, hi = min(bottom, *balance), max(top, *balance)
    ax_l.set_ylim(lo - 0.15 * (hi - lo) * (lo < 0), hi + 0.15 * (hi - lo))
    pre = f"{label}: " if label else ""
    ax_l.set(xlabel="step", ylabel="loss (nats)" if loss == "ns" else "hinge loss",
             title=f"{pre}losses (rolling mean of {window} steps)")
    ax_d.set(xlabel="step", ylabel="mean D output (probability real)", title=f"{pre}discriminator on real and fake",
             ylim=(0, 1))
    for ax in (ax_l, ax_d):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
    return finish(fig, created, title)


def plot_interpolation(images, title: str | None = None, ax=None):
    """One strip of images along a latent path (left = start, right = end)."""
    fig, ax, created = one_panel(ax, figsize=(0.6 * len(images) + 0.2, 1.1))
    ax.imshow(tile(images, nrow=len(images)), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    ax.set_axis_off()
    if title:
        ax.set_title(title, fontsize=10)
    return finish(fig, created)


def plot_class_grid(images, classes: Sequence[str] | None = None, title: str | None = None, ax=None):
    """The conditional grid: row = requested class, column = one noise vector (its style) for every class.

    Parameters
    ----------
    images : uint8 (C * K, 28, 28), row-major as :func:`mnistlab.studies.gan.class_grid` returns
    classes : list of str, optional
        Row labels (default 0..C-1).
    """
    n = len(images)
    c = len(classes) if classes is not None else 10
    k = n // c
    if k * c != n:
        raise ValueError(f"{n} images do not fill {c} rows; pass classes= with one name per row.")
    classes = list(classes) if classes is not None else [str(i) for i in range(c)]
    fig, ax, created = one_panel(ax, figsize=(0.45 * k + 0.9, 0.45 * c + 0.6))
    pad = 2
    ax.imshow(tile(images, nrow=k, padding=pad), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    ax.set_yticks([pad + (28 + pad) * i + 14 for i in range(c)], classes)
    ax.set_xticks([pad + (28 + pad) * j + 14 for j in range(k)], [str(j + 1) for j in range(k)])
    ax.tick_params(length=0, labelsize=8)
    ax.set(ylabel="requested class", xlabel="noise vector (shared down each column)")
    for s in ax.spines.values():
        s.set_visible(False)
    if title:
        ax.set_title(title, fontsize=10)
    return finish(fig, created)


def plot_class_shares(shares, tolerance: float = 0.03, classes: Sequence[str] | None = None, title: str | None = None,
                      ax=None):
    """Share of samples the classifier assigns to each class, with the uniform share and its ± tolerance band.

    Parameters
    ----------
    shares : sequence of float or DataFrame with a ``share`` column (:func:`~mnistlab.studies.gan.class_histogram`)
    tolerance : float
        Half-width of the band around 1/C (0.03: 10% ± 3% for ten classes).
    """
    shares = np.asarray(shares["share"] if isinstance(shares, pd.DataFrame) else shares, dtype=float)
    k = len(shares)
    classes = list(classes) if classes is not None else [str(i) for i in range(k)]
    fig, ax, created = one_panel(ax, figsize=(5.5, 3.4))
    ax.axhspan(100 * (1 / k - tolerance), 100 * (1 / k + tolerance), color="0.88", zorder=0,
               label=f"target {100 / k:.0f}% ± {100 * tolerance:.0f}%")
    ax.axhline(100 / k, color="0.5", lw=1, ls=":", zorder=1)
    ax.bar(range(k), 100 * shares, color=class_colors(k), zorder=2)
    ax.set_xticks(range(k), classes)
    top = max(100 * shares.max(), 100 * (1 / k + tolerance)) * 1.15
    if not created:  # the caller's axis may share y with a taller panel drawn before: keep its limit
        top = max(top, ax.get_ylim()[1])
    ax.set(xlabel="class assigned by the classifier", ylabel="share of samples (%)", ylim=(0, top))
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
    if title:
        ax.set_title(title, fontsize=10)
    return finish(fig, created)


def plot_quality_over_training(table: pd.DataFrame, floor: float | None = None, accuracy_target: float = 0.95,
                               title: str | None = None, ax=None):
    """Frechet distance (log scale, with the train-vs-test floor and 5x floor) and classifier numbers per step.

    Parameters
    ----------
    table : DataFrame
        Rows of ``EvaluationRecorder.table`` (columns step, frechet, mean_confidence, cond_accuracy,
        max_share_deviation); a ``gan`` column gives one colour per GAN.
    floor : float, optional
        Train-vs-test distance on as many images as each evaluation used.
    accuracy_target : float
    title : str, optional
        Figure title (only on a figure this function creates).
    ax : three matplotlib Axes (an array or a list), or a Figure / SubFigure, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig, grid, created = panels(ax, 1, 3, figsize=(13.5, 3.6))
    axes = grid.ravel()
    groups = list(table.groupby("gan", sort=False)) if "gan" in table else [("gan", table)]
    colors = config_colors([g for g, _ in groups])
    for gan, t in groups:
        t = t.sort_values("step")
        axes[0].plot(t["step"], t["frechet"], marker="o", ms=3, color=colors[gan], label=gan)
        axes[1].plot(t["step"], 100 * t["mean_confidence"], marker="o", ms=3, color=colors[gan], label=f"{gan}: confidence")
        if t["cond_accuracy"].notna().any():
            axes[1].plot(t["step"], 100 * t["cond_accuracy"], marker="s", ms=3, ls="--", color=colors[gan],
                         label=f"{gan}: classified as requested")
        axes[2].plot(t["step"], 100 * t["max_share_deviation"], marker="o", ms=3, color=colors[gan], label=gan)
    if floor is not None and floor > 0:
        axes[0].axhline(floor, color="0.3", ls=":", lw=1, label="train vs test (floor)")
        axes[0].axhline(5 * floor, color="0.3", ls="--", lw=1, label="5 x floor (target)")
    axes[0].set_yscale("log")
    axes[0].set(xlabel="step", ylabel="Frechet distance (classifier features)", title="distance to the test set")
    axes[1].axhline(100 * accuracy_target, color="0.3", ls="--", lw=1, label=f"target {accuracy_target:.0%}")
    axes[1].set(xlabel="step", ylabel="%", title="classifier on the samples")
    axes[2].axhline(3, color="0.3", ls="--", lw=1, label="target 3 points")
    axes[2].set(xlabel="step", ylabel="percentage points", title="largest |class share - 10%|")
    axes[2].set_ylim(bottom=0)
    for a in axes:
        a.grid(alpha=0.3)
        a.legend(fontsize=7, loc="upper left", bbox_to_anchor=(0.0, -0.2), frameon=False, ncol=1)
    return finish(fig, created, title)


def plot_nearest_neighbours(samples, train, table: pd.DataFrame, source: str = "samples", n: int = 10,
                            title: str | None = None, ax=None):
    """Top row: samples; bottom row: the nearest training image of each, with the pixel distance.

    Parameters
    ----------
    samples, train : uint8 images (``samples`` indexed as in ``table``)
    table : DataFrame
        From :func:`mnistlab.studies.gan.nearest_train_distances`.
    source : str
        Which sample set of ``table`` to show.
    n : int
        Pairs shown: the ``n`` samples closest to the training set (the likeliest copies).
    """
    rows = table[table["source"] == source].nsmallest(n, "distance")
    if rows.empty:
        raise ValueError(f"table has no rows with source {source!r}; it has {sorted(table['source'].unique())}.")
    s = _as_tensor(samples)[torch.as_tensor(rows["index"].to_numpy().copy())]
    t = _as_tensor(train)[torch.as_tensor(rows["train_index"].to_numpy().copy())]
    fig, ax, created = one_panel(ax, figsize=(0.75 * len(rows) + 1.2, 2.2))
    pad = 2
    ax.imshow(tile(torch.cat([s, t]), nrow=len(rows), padding=pad), cmap="gray", vmin=0, vmax=1,
              interpolation="nearest")
    ax.set_xticks([pad + (28 + pad) * j + 14 for j in range(len(rows))], [f"{d:.1f}" for d in rows["distance"]])
    ax.set_yticks([pad + 14, pad + 28 + pad + 14], ["sample", "nearest\ntrain"])
    ax.tick_params(length=0, labelsize=8)
    ax.set_xlabel("pixel distance (the samples closest to the training set)")
    for sp in ax.spines.values():
        sp.set_visible(False)
    if title:
        ax.set_title(title, fontsize=10)
    return finish(fig, created)


def plot_distance_distributions(table: pd.DataFrame, title: str | None = None, ax=None):
    """Histograms of the distance to the nearest training image: each sample set vs held-out test digits.

    Samples piling up left of the test distribution would mean the generator copies training digits.
    ``table`` comes from :func:`mnistlab.studies.gan.nearest_train_distances`.
    """
    fig, ax, created = one_panel(ax, figsize=(6, 3.4))
    bins = np.linspace(0, float(table["distance"].max()) * 1.02, 40)
    names = [s for s in dict.fromkeys(table["source"]) if s != "test"]
    colors = config_colors(names)
    for name in ["test", *names]:
        d = table.loc[table["source"] == name, "distance"]
        ax.hist(d, bins=bins, histtype="step", lw=1.8 if name == "test" else 1.4,
                color="0.2" if name == "test" else colors[name], ls="--" if name == "test" else "-",
                label=f"{'test digits' if name == 'test' else name} (median {d.median():.2f})")
    ax.set(xlabel="Euclidean distance to the nearest training image (pixels in [0, 1])", ylabel="images")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
    if title:
        ax.set_title(title, fontsize=10)
    return finish(fig, created)
