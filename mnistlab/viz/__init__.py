"""Drawing: one module per study, ``style`` (palettes), ``store`` (figures/ files, GIFs, numbers).

Every public plot function takes the data it draws and ``ax=None`` (one Axes, an array of Axes,
or a Figure / SubFigure to lay out its panels in: :func:`mnistlab.viz.common.panels`), draws into
the caller's axes when given, and returns the figure; it lays out only figures it created.
"""
from . import (common, datastats, dynamics, embed, experiments, gan, handwriting, interpret, store, style, transfer,
               widgets)
from .common import image_grid
from .store import DPI, Figures, figure_to_array

__all__ = ["common", "datastats", "dynamics", "embed", "experiments", "gan", "handwriting", "interpret", "store", "style", "transfer",
           "widgets", "image_grid", "DPI",
           "Figures", "figure_to_array"]
