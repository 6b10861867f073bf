"""Studies: the computations behind the notebooks (never matplotlib). One module per topic."""
from . import datastats, embed

__all__ = ["datastats", "embed"]
