"""The one way every plot in :mod:`mnistlab.viz` gets its axes, and a grid of digits.

The rule of every public plot function in :mod:`mnistlab.viz`: it takes ``ax=None`` and returns
the :class:`~matplotlib.figure.Figure` it drew into. ``ax`` is what matplotlib users pass:

- one :class:`~matplotlib.axes.Axes` for a one-panel plot;
- an array or list of Axes (``fig.subplots(1, 2)``) for a plot of several panels;
- a :class:`~matplotlib.figure.Figure` or :class:`~matplotlib.figure.SubFigure`
  (``fig.subfigures(2, 1)[0]``): the plot adds its own grid of panels to it. Every plot
  accepts this; it is the way to place a plot with a layout of its own (a grid of digits
  with a row of bar charts under it) inside a larger figure.

Given any of them, the plot draws there and leaves the caller's layout alone (no
``tight_layout``, no ``subplots_adjust``); given nothing, it creates a figure, lays it out and
returns it. :func:`panels` and :func:`finish` implement that rule, so each module writes it once.
"""
from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import FigureBase

__all__ = ["image_grid", "panels", "one_panel", "finish"]


def panels(ax=None, nrows: int = 1, ncols: int = 1, *, figsize=None, count: int | None = None, **subplot_kw):
    """The axes a plot draws into: the caller's (``ax``) or a new figure's. The one "open axes" helper.

    Parameters
    ----------
    ax : None, Axes, sequence or array of Axes, Figure or SubFigure
        What the plot received as ``ax=``. None: a new figure with an ``nrows x ncols`` grid.
        A Figure or SubFigure: that grid is added to it. Axes: at least ``nrows * ncols`` of
        them (``count`` with ``count``), all of one figure.
    nrows, ncols : int
        The grid the plot needs (and the grid of a new figure).
    figsize : (float, float), optional
        Size of a new figure (default: 3.2 x 2.8 inches per panel).
    count : int, optional
        For a plot of ``count`` equal panels (a grid of digits) laid out ``nrows x ncols``: the
        caller may pass any ``count`` or more axes, in any shape, and every panel after the first
        ``count`` (of the caller's or of a new grid) is switched off.
    **subplot_kw
        Passed to ``subplots`` for a new grid (e.g. ``sharex=True``, ``gridspec_kw``).

    Returns
    -------
    (Figure or SubFigure, numpy.ndarray of Axes, bool)
        Where the axes live (draw figure-wide things such as a suptitle there), the axes as a 2-D
        array (``nrows x ncols``; with ``count`` and the caller's axes, one row of all of them), and
        whether the figure was created here (only then may the plot lay it out, see :func:`finish`).

    Raises
    ------
    ValueError
        If the caller passed fewer axes than the plot needs, or axes of several figures.
    """
    if ax is None or isinstance(ax, FigureBase):
        if ax is None:
            figsize = figsize or (3.2 * ncols, 2.8 * nrows)
            fig, grid = plt.subplots(nrows, ncols, figsize=figsize, squeeze=False, **subplot_kw)
        else:
            fig, grid = ax, ax.subplots(nrows, ncols, squeeze=False, **subplot_kw)
        if count is not None:
            for extra in grid.ravel()[count:]:
                extra.axis("off")
        return fig, grid, ax is None
    flat = list(np.ravel(np.asarray(ax, dtype=object)))
    need = nrows * ncols if count is None else count
    if len(flat) < need:
        shape = f"{nrows} x {ncols}" if count is None else "any shape"
        raise ValueError(f"this plot needs {need} axes ({shape}); {len(flat)} were given. "
                         f"Pass e.g. ax=fig.subplots({nrows}, {ncols}), or a Figure or SubFigure to draw in.")
    figures = {id(a.figure) for a in flat}
    if len(figures) > 1:
        raise ValueError("the axes passed belong to several figures; pass axes of one figure.")
    if count is not None:
        for extra in flat[count:]:
            extra.axis("off")
        return flat[0].figure, np.asarray(flat, dtype=object).reshape(1, -1), False
    return flat[0].figure, np.asarray(flat[:need], dtype=object).reshape(nrows, ncols), False


def _grid_shape(n: int, ncols: int) -> tuple[int, int]:
    """(rows, columns) of a grid of ``n`` panels at most ``ncols`` wide (no empty column for a small ``n``)."""
    ncols = min(ncols, n)
    return math.ceil(n / ncols), ncols


def one_panel(ax=None, figsize=None):
    """:func:`panels` for a plot of one panel: the one Axes it draws into.

    Parameters
    ----------
    ax : None, Axes, Figure or SubFigure
        What the plot received as ``ax=`` (a sequence of Axes: the first is used).
    figsize : (float, float), optional
        Size of a new figure.

    Returns
    -------
    (Figure or SubFigure, Axes, bool)
        As :func:`panels` returns them, with the grid's one Axes in place of the grid.
    """
    fig, grid, created = panels(ax, figsize=figsize)
    return fig, grid[0, 0], created


def finish(fig, created: bool, title: str | None = None, **layout_kw):
    """Lay out a figure the plot created (suptitle, ``tight_layout``); leave a caller's figure alone.

    Parameters
    ----------
    fig : Figure or SubFigure
        What :func:`panels` returned.
    created : bool
        Whether :func:`panels` created it.
    title : str, optional
        Suptitle of a created figure.
    **layout_kw
        Passed to ``tight_layout`` (e.g. ``h_pad``, ``rect``).

    Returns
    -------
    matplotlib.figure.Figure
        The figure (the top-level one when the plot drew into a SubFigure).
    """
    if created:
        if title:
            fig.suptitle(title)
        fig.tight_layout(**layout_kw)
    return fig.get_figure(root=True) if hasattr(fig, "get_figure") else fig.figure


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
               ax=None):
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
    ax : sequence of Axes, Figure or SubFigure, optional
        At least ``n`` axes of the caller's figure (unused ones are switched off), or a (sub)figure
        to add the grid to (see :func:`panels`).

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
    fig, grid, created = panels(ax, nrows, ncols, figsize=(ncols * size, nrows * size * 1.1), count=n)
    for i, a in enumerate(grid.flat[:n]):
        a.axis("off")
        a.imshow(images[i], cmap=cmap)
        if titles is not None:
            a.set_title(str(titles[i]), fontsize=8)
        elif labels is not None:
            a.set_title(str(int(labels[i])), fontsize=9)
    return finish(fig, created, suptitle)
