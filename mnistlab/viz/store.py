"""Saving figures: :class:`Figures` writes ``figures/<notebook>/<name>.png`` (fixed DPI), GIFs
(imageio), tables (CSV) and the key numbers that ``mnistlab figures`` puts in the manifest.

This module never trains or loads data, and never switches the matplotlib backend: a headless
run sets ``MPLBACKEND=Agg`` (the Makefile and the runner do), a notebook keeps its inline one.
"""
from __future__ import annotations

import json
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from .._util import atomic_write, figures_root, to_jsonable

__all__ = ["DPI", "Figures", "figures_root", "figure_to_array"]

DPI = 110


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

    Every method returns None, so a notebook cell that ends with one shows nothing after it; a
    written file is ``figs.dir / "class_means.png"``.
    """

    def __init__(self, notebook: str, root=None):
        self.notebook = notebook
        self.dir = Path(root) if root is not None else figures_root() / notebook
        self.dir.mkdir(parents=True, exist_ok=True)
        self.numbers_path = self.dir / "numbers.json"

    def save(self, fig, name: str, close: bool = False) -> None:
        """Save a matplotlib figure as ``<name>.png`` at :data:`DPI` (returns None: nothing to display)."""
        fig.savefig(self.dir / f"{name}.png", dpi=DPI, bbox_inches="tight", metadata={"Software": None})
        if close:
            plt.close(fig)

    def save_gif(self, frames, name: str, fps: float = 4.0, loop: int = 0) -> None:
        """Write frames (RGB uint8 arrays or matplotlib figures) as ``<name>.gif`` with imageio (returns None)."""
        import imageio.v3 as iio

        arrays = [figure_to_array(f) if hasattr(f, "savefig") else np.asarray(f) for f in frames]
        if not arrays:
            raise ValueError("save_gif needs at least one frame")
        shapes = {a.shape for a in arrays}
        if len(shapes) > 1:
            raise ValueError(f"GIF frames must all have one shape, got {sorted(shapes)}; draw every frame "
                             "on a figure of the same size.")
        iio.imwrite(self.dir / f"{name}.gif", np.stack(arrays), duration=1000.0 / fps, loop=loop)

    def save_table(self, df, name: str) -> None:
        """Write a DataFrame as ``<name>.csv`` (tables the notebook computed; returns None)."""
        df.to_csv(self.dir / f"{name}.csv")

    def record(self, **numbers) -> None:
        """Merge key numbers into ``numbers.json`` (read by the manifest; returns None)."""
        current = json.loads(self.numbers_path.read_text()) if self.numbers_path.is_file() else {}
        current.update(to_jsonable(numbers))
        atomic_write(self.numbers_path, lambda fh: fh.write(json.dumps(current, indent=2, sort_keys=True).encode()))

    def reset(self) -> None:
        """Forget recorded numbers (called at the top of a notebook so a re-run starts clean)."""
        self.numbers_path.unlink(missing_ok=True)


def figure_to_array(fig) -> np.ndarray:
    """Render a matplotlib figure to an RGB uint8 array (for GIF frames)."""
    fig.canvas.draw()
    return np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()


