"""Studies: the computations behind the notebooks (never matplotlib). One module per topic."""
from . import datastats, dynamics, embed, gan, handwriting, interpret, transfer

__all__ = ["datastats", "dynamics", "embed", "gan", "handwriting", "interpret", "transfer"]
