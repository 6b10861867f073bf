"""Small helpers every layer shares: one JSON conversion, one eval-mode switch, one way to find folders.

Imports nothing else of the package, so any module may use it.
"""
from __future__ import annotations

import math
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Mapping

__all__ = ["to_jsonable", "eval_mode", "project_root", "cache_root", "figures_root"]


def to_jsonable(value: Any, strict: bool = False) -> Any:
    """Convert ``value`` to plain JSON values, recursively.

    Tuples become lists, NumPy and torch scalars become Python numbers, dict keys become
    strings, and NaN or infinite floats become ``None`` (JSON has no NaN; ``None`` reads back as
    NaN in pandas).

    Parameters
    ----------
    value : any
    strict : bool
        Raise ``TypeError`` on anything that is not a plain JSON value (used where the value
        must hash reproducibly, e.g. a training config). Otherwise such values pass through.
    """
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v, strict) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v, strict) for v in value]
    if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if strict and not (isinstance(value, (str, int, float, bool)) or value is None):
        raise TypeError(f"Expected a plain JSON value (str, number, bool, list, dict or None), not {value!r}.")
    return value


@contextmanager
def eval_mode(model):
    """Put ``model`` in eval mode for the block and restore its previous mode afterwards (also on errors)."""
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)


def project_root() -> Path | None:
    """The source checkout (the folder with ``pyproject.toml`` and ``mnistlab/``), or ``None`` when installed.

    Looks above the package first, then above the working directory.
    """
    here = Path(__file__).resolve().parent.parent
    for folder in (here, Path.cwd().resolve(), *Path.cwd().resolve().parents):
        if (folder / "pyproject.toml").is_file() and (folder / "mnistlab").is_dir():
            return folder
    return None


def _user_cache() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "mnistlab"


def cache_root(create: bool = True) -> Path:
    """The experiment cache: ``$MNISTLAB_CACHE``, else ``<project>/.mnistlab-cache``, else ``~/.cache/mnistlab/experiments``."""
    env = os.environ.get("MNISTLAB_CACHE")
    root = project_root()
    path = Path(env).expanduser() if env else root / ".mnistlab-cache" if root else _user_cache() / "experiments"
    if create:
        path.mkdir(parents=True, exist_ok=True)
    return path


def figures_root() -> Path:
    """Where figures go: ``$MNISTLAB_FIGURES``, else ``<project>/figures``, else ``./figures``."""
    env = os.environ.get("MNISTLAB_FIGURES")
    if env:
        return Path(env).expanduser()
    root = project_root()
    return root / "figures" if root else Path.cwd() / "figures"
