"""Figure helpers: turn arrays, tensors and DataFrames into matplotlib figures, and save them.

:class:`Figures` is what notebooks use to write ``figures/<notebook>/<name>.png`` (fixed DPI)
and GIFs (imageio), and to record the key numbers that ``mnistlab figures`` puts in the
manifest. This module never trains or loads data.
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path

import matplotlib

if not os.environ.get("DISPLAY") and "ipykernel" not in os.environ.get("MPLBACKEND", "") and matplotlib.get_backend().lower() in ("tkagg", "qtagg"):
    matplotlib.use("Agg")  # headless machines (CI) have no window system
import matplotlib.pyplot as plt
import numpy as np

__all__ = ["DPI", "Figures", "figures_root", "image_grid", "learning_curves", "figure_to_array"]

DPI = 110


def figures_root() -> Path:
    """Where figures go: ``$MNISTLAB_FIGURES``, else ``figures/`` of the project above the cwd, else ``./figures``."""
    env = os.environ.get("MNISTLAB_FIGURES")
    if env:
        return Path(env)
    here = Path.cwd().resolve()
    for folder in (here, *here.parents):
        if (folder / "pyproject.toml").is_file() and (folder / "mnistlab").is_dir():
            return folder / "figures"
    return here / "figures"


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


class Figures:
    """Save one notebook's figures under stable names and record its key numbers.

    Parameters
    ----------
    notebook : str
        Subfolder name, e.g. ``"01_data_statistics"``.
    root : path, optional
        Defaults to :func:`figures_root`.

    Examples
    --------
    >>> figs = Figures("01_data_statistics")          # doctest: +SKIP
    >>> figs.save(fig, "class_means")                  # figures/01_data_statistics/class_means.png
    >>> figs.record(mean=0.1307, std=0.3081)           # figures/01_data_statistics/numbers.json
    """

    def __init__(self, notebook: str, root=None):
        self.notebook = notebook
        self.dir = Path(root) if root is not None else figures_root() / notebook
        self.dir.mkdir(parents=True, exist_ok=True)
        self.numbers_path = self.dir / "numbers.json"

    def save(self, fig, name: str, close: bool = False) -> Path:
        """Save a matplotlib figure as ``<name>.png`` at :data:`DPI`; return its path."""
        path = self.dir / f"{name}.png"
        fig.savefig(path, dpi=DPI, bbox_inches="tight", metadata={"Software": None})
        if close:
            plt.close(fig)
        return path

    def save_gif(self, frames, name: str, fps: float = 4.0, loop: int = 0) -> Path:
        """Write frames (RGB uint8 arrays or matplotlib figures) as ``<name>.gif`` with imageio."""
        import imageio.v3 as iio

        arrays = [figure_to_array(f) if hasattr(f, "savefig") else np.asarray(f) for f in frames]
        if not arrays:
            raise ValueError("save_gif needs at least one frame")
        shapes = {a.shape for a in arrays}
        if len(shapes) > 1:
            raise ValueError(f"GIF frames must all have one shape, got {sorted(shapes)}; draw every frame "
                             "on a figure of the same size.")
        path = self.dir / f"{name}.gif"
        iio.imwrite(path, np.stack(arrays), duration=1000.0 / fps, loop=loop)
        return path

    def save_table(self, df, name: str) -> Path:
        """Write a DataFrame as ``<name>.csv`` (tables the notebook computed)."""
        path = self.dir / f"{name}.csv"
        df.to_csv(path)
        return path

    def record(self, **numbers) -> dict:
        """Merge key numbers into ``numbers.json`` (read by the manifest); return all numbers so far."""
        current = json.loads(self.numbers_path.read_text()) if self.numbers_path.is_file() else {}
        current.update(_jsonable(numbers))
        self.numbers_path.write_text(json.dumps(current, indent=2, sort_keys=True))
        return current

    def reset(self) -> None:
        """Forget recorded numbers (called at the top of a notebook so a re-run starts clean)."""
        self.numbers_path.unlink(missing_ok=True)


def figure_to_array(fig) -> np.ndarray:
    """Render a matplotlib figure to an RGB uint8 array (for GIF frames)."""
    fig.canvas.draw()
    return np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()


def image_grid(images, labels=None, ncols: int = 5, titles=None, cmap="gray", size: float = 1.4, suptitle=None):
    """Grid of 28x28 images with optional labels/titles; returns the figure."""
    images = np.asarray(images.cpu() if hasattr(images, "cpu") else images)
    if images.ndim == 4:
        images = images[:, 0]
    n = len(images)
    nrows = max(1, math.ceil(n / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(ncols * size, nrows * size * 1.1), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i >= n:
            continue
        ax.imshow(images[i], cmap=cmap)
        if titles is not None:
            ax.set_title(str(titles[i]), fontsize=8)
        elif labels is not None:
            ax.set_title(str(int(labels[i])), fontsize=9)
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    return fig


def learning_curves(history, title: str | None = None):
    """Loss and accuracy per epoch (train and, if present, validation) from a ``fit`` history."""
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.6))
    for split in ("train", "val"):
        if f"{split}_loss" in history and history[f"{split}_loss"].notna().any():
            ax1.plot(history["epoch"], history[f"{split}_loss"], marker="o", label=split)
            ax2.plot(history["epoch"], history[f"{split}_acc"], marker="o", label=split)
    ax1.set(xlabel="epoch", ylabel="cross-entropy", title="loss")
    ax2.set(xlabel="epoch", ylabel="accuracy", title="accuracy")
    for ax in (ax1, ax2):
        ax.grid(alpha=0.3)
        ax.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig
