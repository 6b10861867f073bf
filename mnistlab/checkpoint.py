"""Checkpoints: atomic writes, safe loads (``weights_only=True``), clear errors on bad files."""
from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import torch
from torch import nn

from .models import create_model

__all__ = ["Checkpoint", "CheckpointError", "atomic_write", "save_checkpoint", "load_checkpoint"]

FORMAT = "mnistlab-checkpoint"
VERSION = 1


class CheckpointError(RuntimeError):
    """Raised when a file is not a readable mnistlab checkpoint."""


@dataclass
class Checkpoint:
    """A loaded checkpoint: the rebuilt ``model`` (in eval mode) and what was saved with it."""

    model: nn.Module
    name: str
    kwargs: dict
    normalization: tuple[float, float]
    dataset: str
    metrics: dict = field(default_factory=dict)
    history: pd.DataFrame = field(default_factory=pd.DataFrame)
    extra: dict = field(default_factory=dict)


def _plain(value):
    """Convert NumPy scalars, tuples and NaN-bearing floats into types weights_only can load."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
        return value.item()
    return value


def atomic_write(path, write) -> Path:
    """Write ``path`` atomically: ``write(fh)`` fills a temporary file beside it, which then replaces it.

    Readers never see half a file and a crash half-way leaves the old file intact: the rename is
    atomic on POSIX and Windows. The temporary file is removed if ``write`` fails.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def save_checkpoint(path, model: nn.Module, *, dataset: str | None = None, metrics: dict | None = None,
                    history: pd.DataFrame | None = None, normalization=None, **extra) -> Path:
    """Write ``model`` and its metadata to ``path`` atomically (temporary file, then rename).

    The model must come from :func:`mnistlab.create_model` (its ``config`` names the
    constructor). Saved: model name and constructor arguments, weights, normalisation
    constants, dataset, ``metrics``, ``history`` and any ``extra`` plain values.
    """
    config = getattr(model, "config", None)
    if not config or "name" not in config:
        raise ValueError("save_checkpoint needs a model built by mnistlab.create_model (it has no .config).")
    path = Path(path)
    norm = normalization or getattr(model, "normalization", None) or (0.0, 1.0)
    payload = {
        "format": FORMAT, "version": VERSION,
        "model": config["name"], "kwargs": _plain(config.get("kwargs", {})),
        "state_dict": {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()},
        "normalization": [float(norm[0]), float(norm[1])],
        "dataset": dataset or getattr(model, "dataset", "mnist"),
        "metrics": _plain(metrics or {}),
        "history": _plain(history.to_dict(orient="list")) if history is not None else {},
        "extra": _plain(extra),
    }
    atomic_write(path, lambda fh: torch.save(payload, fh))
    return path


def load_checkpoint(path, device="cpu") -> Checkpoint:
    """Load a checkpoint written by :func:`save_checkpoint` with ``torch.load(weights_only=True)``.

    Raises
    ------
    FileNotFoundError
        No file at ``path``.
    CheckpointError
        The file is truncated, corrupt, or not an mnistlab checkpoint.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No checkpoint at {path}. Train one with `mnistlab train --out DIR`.")
    try:
        payload = torch.load(path, map_location=device, weights_only=True)
    except Exception as exc:
        raise CheckpointError(f"{path} could not be read as a checkpoint (truncated or corrupt?): {exc}") from exc
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not an mnistlab checkpoint (no '{FORMAT}' marker).")
    if payload.get("version", 0) > VERSION:
        raise CheckpointError(f"{path} was written by a newer mnistlab (format {payload['version']}); upgrade mnistlab.")
    model = create_model(payload["model"], **payload["kwargs"])
    try:
        model.load_state_dict(payload["state_dict"])
    except RuntimeError as exc:
        raise CheckpointError(f"{path}: weights do not fit model {payload['model']!r}: {exc}") from exc
    model.to(device).eval()
    model.normalization = tuple(payload["normalization"])
    model.dataset = payload["dataset"]
    return Checkpoint(model=model, name=payload["model"], kwargs=payload["kwargs"],
                      normalization=tuple(payload["normalization"]), dataset=payload["dataset"],
                      metrics=payload["metrics"], history=pd.DataFrame(payload["history"]), extra=payload["extra"])
