"""Checkpoints: atomic writes, safe loads (``weights_only=True``), clear errors on bad files.

A checkpoint holds the registry name and constructor arguments of the model, its weights, its
declared preprocessing, the :class:`TrainConfig` it was trained with (if known), metrics and the
history. Its metadata is validated before any model is built from it.
"""
from __future__ import annotations

import math
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import torch
from torch import nn

from .._util import to_jsonable
from ..models.registry import Preprocessing, create_model, preprocessing_of

__all__ = ["Checkpoint", "CheckpointError", "atomic_write", "save_checkpoint", "load_checkpoint", "is_checkpoint"]

FORMAT = "mnistlab-checkpoint"
VERSION = 2
MAX_PARAMETERS = 200_000_000
"""A checkpoint whose model would need more parameters than this is refused before anything is allocated."""


class CheckpointError(RuntimeError):
    """Raised when a file is not a readable mnistlab checkpoint."""


@dataclass
class Checkpoint:
    """A loaded checkpoint: the rebuilt ``model`` (in eval mode) and what was saved with it."""

    model: nn.Module
    name: str
    kwargs: dict
    preprocessing: Preprocessing
    config: object = None  # the TrainConfig, when the checkpoint recorded one
    metrics: dict = field(default_factory=dict)
    history: pd.DataFrame = field(default_factory=pd.DataFrame)
    extra: dict = field(default_factory=dict)

    @property
    def dataset(self) -> str:
        """The dataset the model is for."""
        return self.preprocessing.dataset


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write(path, write) -> Path:
    """Write ``path`` atomically: ``write(fh)`` fills a temporary file beside it, which then replaces it.

    Readers never see half a file and a crash half-way leaves the old file intact: the rename is
    atomic on POSIX and Windows. The temporary file is removed if ``write`` fails, and the file
    gets the usual mode (0644 under the common umask), not the temporary file's 0600.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix="." + path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def save_checkpoint(path, model: nn.Module, *, config=None, metrics: dict | None = None,
                    history: pd.DataFrame | None = None, **extra) -> Path:
    """Write ``model`` and its metadata to ``path`` atomically (temporary file, then rename).

    The model must come from :func:`mnistlab.create_model` (its ``config`` names the
    constructor). Saved: model name and constructor arguments, weights, the model's declared
    preprocessing, the :class:`TrainConfig` (``config``, default ``model.train_config``),
    ``metrics``, ``history`` and any ``extra`` plain values.
    """
    spec = getattr(model, "config", None)
    if not spec or "name" not in spec:
        raise ValueError("save_checkpoint needs a model built by mnistlab.create_model (it has no .config).")
    config = config if config is not None else getattr(model, "train_config", None)
    payload = {
        "format": FORMAT, "version": VERSION,
        "model": spec["name"], "kwargs": to_jsonable(spec.get("kwargs", {})),
        "state_dict": {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()},
        "preprocessing": preprocessing_of(model).to_dict(),
        "train_config": config.to_dict() if config is not None else None,
        "metrics": to_jsonable(metrics or {}),
        "history": to_jsonable(history.to_dict(orient="list")) if history is not None else {},
        "extra": to_jsonable(extra),
    }
    atomic_write(path, lambda fh: torch.save(payload, fh))
    return Path(path)


def is_checkpoint(path) -> bool:
    """Whether ``path`` is a file that looks like a torch checkpoint (a zip archive), whatever its extension."""
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            return fh.read(4) == b"PK\x03\x04"
    except OSError:
        return False


def _validated_meta(path: Path, payload) -> tuple[str, dict, Preprocessing]:
    """Check the metadata's types and ranges before any model is built from it."""
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not an mnistlab checkpoint (no '{FORMAT}' marker).")
    version = payload.get("version", 0)
    if not isinstance(version, int) or version > VERSION:
        raise CheckpointError(f"{path} was written by a newer mnistlab (format {version!r}); upgrade mnistlab.")
    name, kwargs = payload.get("model"), payload.get("kwargs")
    if not isinstance(name, str) or not isinstance(kwargs, dict):
        raise CheckpointError(f"{path}: the model name or its arguments are missing or malformed.")
    if not isinstance(payload.get("state_dict"), dict) or not payload["state_dict"]:
        raise CheckpointError(f"{path} holds no weights (its state_dict is missing or empty).")
    pre = payload.get("preprocessing")
    if pre is None and "normalization" in payload:  # format 1
        pre = {"mean": payload["normalization"][0], "std": payload["normalization"][1],
               "dataset": payload.get("dataset", "mnist"), "spec": "custom"}
    try:
        pre = Preprocessing(**pre)
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{path}: its preprocessing settings are invalid ({exc}).") from None
    return name, kwargs, pre


def _build(path: Path, name: str, kwargs: dict, state_dict: dict) -> nn.Module:
    """Build the model on the meta device first: shapes are checked before any memory is allocated."""
    try:
        with torch.device("meta"):
            shell = create_model(name, **kwargs)
    except (ValueError, TypeError) as exc:
        raise CheckpointError(f"{path}: cannot build model {name!r} with {kwargs}: {exc}") from None
    n = sum(p.numel() for p in shell.parameters())
    if n > MAX_PARAMETERS:
        raise CheckpointError(f"{path}: model {name!r} with {kwargs} would have {n:,} parameters "
                              f"(limit {MAX_PARAMETERS:,}); the checkpoint is corrupt or crafted.")
    expected = {k: tuple(v.shape) for k, v in shell.state_dict().items()}
    got = {k: tuple(v.shape) for k, v in state_dict.items() if isinstance(v, torch.Tensor)}
    if expected != got:
        missing, unexpected = sorted(set(expected) - set(got)), sorted(set(got) - set(expected))
        wrong = sorted(k for k in set(expected) & set(got) if expected[k] != got[k])
        raise CheckpointError(f"{path}: the weights do not fit model {name!r} {kwargs} (missing {missing[:3]}, "
                              f"unexpected {unexpected[:3]}, wrong shapes {wrong[:3]}).")
    model = create_model(name, **kwargs)
    model.load_state_dict(state_dict)
    return model


def load_checkpoint(path, device="cpu") -> Checkpoint:
    """Load a checkpoint written by :func:`save_checkpoint` with ``torch.load(weights_only=True)``.

    Raises
    ------
    FileNotFoundError
        No file at ``path``.
    CheckpointError
        The file is truncated, corrupt, not an mnistlab checkpoint, or its settings are invalid.
    """
    from .config import as_config

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No checkpoint at {path}. Train one with `mnistlab train --out DIR`.")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle, zip and torch errors: never suggest weights_only=False
        kind = type(exc).__name__
        raise CheckpointError(f"{path} is not an mnistlab checkpoint, or it is truncated or corrupt "
                              f"(torch could not read it safely: {kind}).") from None
    name, kwargs, pre = _validated_meta(path, payload)
    model = _build(path, name, kwargs, payload["state_dict"])
    model.to(device).eval()
    model.preprocessing = pre
    config = None
    if payload.get("train_config"):
        try:
            config = as_config(payload["train_config"])
        except (TypeError, ValueError) as exc:
            raise CheckpointError(f"{path}: its training config is invalid ({exc}).") from None
        model.train_config = config
    metrics = payload.get("metrics") or {}
    if not isinstance(metrics, dict) or not all(isinstance(v, (int, float, str, type(None))) or
                                                (isinstance(v, float) and math.isnan(v)) for v in metrics.values()):
        raise CheckpointError(f"{path}: its metrics are malformed.")
    return Checkpoint(model=model, name=name, kwargs=kwargs, preprocessing=pre, config=config, metrics=metrics,
                      history=pd.DataFrame(payload.get("history") or {}), extra=payload.get("extra") or {})
