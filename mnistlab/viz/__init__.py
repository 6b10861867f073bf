"""Drawing: one module per study, ``style`` (palettes), ``store`` (figures/ files, GIFs, numbers).

Every public plot function takes the data it draws and ``ax=None`` (or ``axes=``/``fig=``), draws
into the caller's axes when given, and returns the figure; it lays out only figures it created.
"""
from . import (common, datastats, dynamics, embed, experiments, gan, handwriting, interpret, store, style, transfer,
               widgets)
from .common import image_grid, learning_curves
from .store import DPI, Figures, figure_to_array

__all__ = ["common", "datastats", "dynamics", "embed", "experiments", "gan", "handwriting", "interpret", "store", "style", "transfer",
           "widgets", "image_grid", "learning_curves", "DPI",
           "Figures", "figure_to_array"]
