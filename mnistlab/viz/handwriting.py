"""Drawing what the reading of people's own digits computed (:mod:`mnistlab.studies.handwriting`).

:func:`plot_steps` shows one photo through every preprocessing step to what the model saw,
:func:`plot_readings` a grid of photos titled with what was read (red: wrong), and
:func:`plot_accuracy_by` the accuracy per photo setting with its interval.
"""
from __future__ import annotations

import numpy as np
from matplotlib.colors import ListedColormap

from .common import finish, panels
from .style import class_colors

__all__ = ["plot_steps", "plot_readings", "plot_accuracy_by"]

RIGHT, WRONG = "#1a7f37", "#cf222e"

_STEPS = (("gray", "grey, ink dark", "gray"), ("ink", "paper divided out", "gray_r"),
          ("unlined", "ruled lines removed", "gray_r"), ("mask", "thresholded", "gray_r"),
          ("digits", "digits found", None))


def plot_steps(photo, found, title: str | None = None, ax=None):
    """One picture through every step of :func:`mnistlab.data.images.find_digits`, to what the model saw.

    Parameters
    ----------
    photo : numpy.ndarray (H, W, 3) or (H, W)
        The picture as given.
    found : Digits
        ``find_digits(photo)`` (or ``Reading.found``).
    title : str, optional
        Title of a new figure.
    ax : sequence of 7 Axes, Figure or SubFigure, optional
        The photo, the five steps (grey, paper divided out, ruled lines removed, thresholded,
        digits found, each in its own colour with its box) and the 28 x 28 images side by side.

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig, grid, created = panels(ax, 1, 7, figsize=(17, 2.9))
    ax = grid.ravel()
    ax[0].imshow(photo, cmap=None if np.ndim(photo) == 3 else "gray")
    ax[0].set_title("photo", fontsize=9)
    for a, (key, name, cmap) in zip(ax[1:6], _STEPS):
        image = found.steps.get(key)
        if image is None:
            a.text(0.5, 0.5, "(clean picture:\nMNIST's steps)", ha="center", va="center", fontsize=8,
                   transform=a.transAxes)
        elif key == "digits":
            colours = ListedColormap(["white"] + [tuple(c) for c in class_colors(10)])
            a.imshow(np.where(image > 0, (image - 1) % 10 + 1, 0), cmap=colours, vmin=0, vmax=10,
                     interpolation="nearest")
            for (top, left, bottom, right) in found.boxes:
                a.add_patch(_box(top, left, bottom, right))
        else:
            a.imshow(image, cmap=cmap, vmin=0, vmax=1 if key != "gray" else None, interpolation="nearest")
        extra = f" ({found.lines} lines)" if key == "unlined" else f" ({len(found)})" if key == "digits" else ""
        a.set_title(name + extra, fontsize=9)
    if len(found):
        strip = np.concatenate([np.pad(im.numpy(), ((0, 0), (0, 2)), constant_values=0) for im in found.images], 1)
        ax[6].imshow(strip[:, :-2], cmap="gray", vmin=0, vmax=255, interpolation="nearest")
    else:
        ax[6].text(0.5, 0.5, "no digit found", ha="center", va="center", fontsize=9, transform=ax[6].transAxes)
    ax[6].set_title("what the model sees (28x28)", fontsize=9)
    for a in ax:
        a.set_xticks([])
        a.set_yticks([])
    return finish(fig, created, title)


def _box(top, left, bottom, right):
    from matplotlib.patches import Rectangle

    return Rectangle((left - 0.5, top - 0.5), right - left, bottom - top, fill=False, lw=1, ec="black")


def plot_readings(photos, titles, correct, ncols: int = 4, title: str | None = None, ax=None):
    """Photos in a grid, each titled with what was read; a wrong reading is titled in red.

    Parameters
    ----------
    photos : sequence of numpy.ndarray
    titles : sequence of str
        One per photo, e.g. ``"7 → 9 (0.61)"``.
    correct : sequence of bool
    ncols : int
        Columns of a new figure.
    title : str, optional
        Title of a new figure.
    ax : sequence of Axes, Figure or SubFigure, optional
        At least one per photo; unused ones are switched off.

    Returns
    -------
    matplotlib.figure.Figure
    """
    n = len(photos)
    if n == 0 or len(titles) != n or len(correct) != n:
        raise ValueError(f"plot_readings needs at least one photo and one title and one correct flag per photo; "
                         f"got {n} photos, {len(titles)} titles, {len(correct)} flags.")
    nrows = int(np.ceil(n / ncols))
    fig, grid, created = panels(ax, nrows, ncols, figsize=(3.0 * ncols, 2.3 * nrows), count=n)
    for i, a in enumerate(grid.flat[:n]):
        a.set_xticks([])
        a.set_yticks([])
        a.imshow(photos[i], cmap=None if np.ndim(photos[i]) == 3 else "gray")
        a.set_title(str(titles[i]), fontsize=9, color=RIGHT if correct[i] else WRONG)
        for side in a.spines.values():
            side.set_edgecolor(RIGHT if correct[i] else WRONG)
            side.set_linewidth(2)
    return finish(fig, created, title)


def plot_accuracy_by(table, title: str | None = None, ax=None):
    """Accuracy per value of each photo setting, one panel per setting, one bar per way of reading.

    Parameters
    ----------
    table : pandas.DataFrame
        From :func:`mnistlab.studies.handwriting.accuracy_by` (``setting``, ``value``, ``reading``,
        ``accuracy``, ``ci_low``, ``ci_high``, ``photos``). Each bar carries its 95% Wilson interval
        and the number of photos under it.
    title : str, optional
    ax : sequence of Axes, Figure or SubFigure, optional
        One per setting.

    Returns
    -------
    matplotlib.figure.Figure
    """
    settings = list(dict.fromkeys(table["setting"]))
    readings = list(dict.fromkeys(table["reading"]))
    if not settings:
        raise ValueError("plot_accuracy_by needs a table from accuracy_by with at least one row.")
    fig, grid, created = panels(ax, 1, len(settings), figsize=(4.2 * len(settings), 3.4))
    colours = ["#0969da", "#bf8700", "#8250df", "#57606a"]
    width = 0.8 / len(readings)
    for a, setting in zip(grid.ravel(), settings):
        part = table[table["setting"] == setting]
        values = list(dict.fromkeys(part["value"]))
        x = np.arange(len(values))
        for j, reading in enumerate(readings):
            rows = part[part["reading"] == reading].set_index("value").reindex(values)
            pos = x - 0.4 + width * (j + 0.5)
            a.bar(pos, rows["accuracy"], width, color=colours[j % len(colours)], label=reading)
            a.errorbar(pos, rows["accuracy"], yerr=[rows["accuracy"] - rows["ci_low"], rows["ci_high"] - rows["accuracy"]],
                       fmt="none", ecolor="black", elinewidth=1, capsize=2)
        counts = part.drop_duplicates("value").set_index("value")["photos"].reindex(values)
        a.set_xticks(x, [f"{v}\n(n={int(c)})" for v, c in zip(values, counts)], fontsize=8)
        a.set_ylim(0, 1.02)
        a.set_title(setting, fontsize=10)
        a.set_ylabel("accuracy")
        a.grid(axis="y", alpha=0.3)
    grid.ravel()[0].legend(fontsize=8, loc="upper left", bbox_to_anchor=(0, -0.2), ncol=len(readings), frameon=False)
    return finish(fig, created, title)
