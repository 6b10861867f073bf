"""One palette for classes and one for configs, so a class or a config has the same colour in every figure."""
from __future__ import annotations

import matplotlib as mpl

__all__ = ["class_colors", "config_colors", "CLASS_CMAP", "DIVERGING_CMAP", "PALETTE"]

CLASS_CMAP = "tab10"
"""Ten well separated colours: class k is ``class_colors(10)[k]``."""

PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
           "#17becf")
"""The ten colours every plot picks from (matplotlib's tab10, the default cycle): 0 blue for the thing
measured, 2 green for what helps, 3 red for what hurts or is off scale."""

DIVERGING_CMAP = "RdBu_r"
"""Signed maps (attributions, differences): red positive, blue negative, white at zero."""


def class_colors(n: int = 10) -> list:
    """RGBA colours of classes 0..n-1 (tab10, then tab20 for up to 20 classes)."""
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive number of classes, not {n!r}.")
    cmap = mpl.colormaps["tab10" if n <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(n)]


def config_colors(names) -> dict:
    """``{name: colour}`` for configs/strategies in their order (matplotlib's default cycle)."""
    cycle = mpl.rcParams["axes.prop_cycle"].by_key()["color"]
    return {name: cycle[i % len(cycle)] for i, name in enumerate(names)}
