"""Studies: the computations behind the notebooks (never matplotlib). One module per topic."""
from . import claims, datastats, dynamics, embed, gan, handwriting, interpret, transfer

__all__ = ["claims", "datastats", "dynamics", "embed", "gan", "handwriting", "interpret", "transfer"]
