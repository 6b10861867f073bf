"""Checkpoints: atomic writes, safe loads (``weights_only=True``), clear errors on bad files.

A checkpoint holds the registry name and constructor arguments of the model, its weights, its
declared preprocessing, the :class:`TrainConfig` it was trained with (if known), metrics and the
history. Its metadata is validated before any model is built from it.
"""
from __future__ import annotations

import glob
import math
import os
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import torch
from torch import nn

from .._util import to_jsonable
from ..data.datasets import not_a_regular_file
from ..models.registry import MAX_PARAMETERS, Preprocessing, create_model, preprocessing_of  # noqa: F401 (re-exported)
from .config import check_model

__all__ = ["Checkpoint", "CheckpointError", "atomic_write", "clean_stale_temporaries", "save_checkpoint", "load_checkpoint",
           "is_checkpoint"]

FORMAT = "mnistlab-checkpoint"
VERSION = 2
_ZIP = b"PK\x03\x04"  # torch.save since torch 1.6
_LEGACY = b"\x8a\x0a" + (0x1950A86A20F9469CFC6C).to_bytes(10, "little")  # the magic number opening torch's old format


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


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # exists (another user's) or cannot tell: keep its file
    return True


def clean_stale_temporaries(path) -> list[Path]:
    """Remove temporary files that killed writers of ``path`` left behind; return what was removed.

    :func:`atomic_write` names its temporary file ``.<name>.<pid>.<random>.tmp``; a file whose
    process no longer runs is a leftover of a run killed during its save. Files of live
    processes (a concurrent writer) are left alone.

    Parameters
    ----------
    path : path
        The file whose leftover temporaries to remove (it need not exist).

    Returns
    -------
    list of pathlib.Path
        The temporary files removed.
    """
    path = Path(path)
    removed = []
    if not path.parent.is_dir():
        return removed
    for tmp in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):
        pid = tmp.name[len(path.name) + 2:].split(".", 1)[0]
        if pid.isdigit() and not _pid_alive(int(pid)):
            tmp.unlink(missing_ok=True)
            removed.append(tmp)
    return removed


def atomic_write(path, write) -> Path:
    """Write ``path`` atomically: ``write(fh)`` fills a temporary file beside it, which then replaces it.

    Readers never see half a file and a crash half-way leaves the old file intact: the rename is
    atomic on POSIX and Windows. The temporary file is removed if ``write`` fails; one left by a
    process killed during its save is removed by the next write of the same file
    (:func:`clean_stale_temporaries`). The file gets the usual mode (0644 under the common
    umask), not the temporary file's 0600.

    Parameters
    ----------
    path : path
        The file to write (its folder is created).
    write : callable
        ``write(fh)`` writes the content to the binary file object ``fh``.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_dir():
        raise IsADirectoryError(f"{path} is a folder; cannot write a file there.")
    clean_stale_temporaries(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp", dir=path.parent)
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


def _torch_format(path: Path) -> str | None:
    """``"zip"`` (torch.save since 1.6), ``"legacy"`` (its older pickle format) or ``None``, by the first bytes."""
    with open(path, "rb") as fh:
        head = fh.read(32)
    if head.startswith(_ZIP):
        return "zip"
    if head.startswith(b"\x80") and _LEGACY in head:  # a pickle whose first record is torch's magic number
        return "legacy"
    return None


def is_checkpoint(path) -> bool:
    """Whether ``path`` is a file that looks like a torch checkpoint, whatever its extension.

    Parameters
    ----------
    path : path

    Returns
    -------
    bool
        True for a file starting with the zip signature that ``torch.save`` writes, or with the
        magic number of torch's older format (``_use_new_zipfile_serialization=False``).
    """
    path = Path(path)
    if not path.is_file():  # a FIFO or a device: never opened
        return False
    try:
        return _torch_format(path) is not None
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
    if not isinstance(pre, dict):
        raise CheckpointError(f"{path}: its preprocessing settings are missing or malformed ({type(pre).__name__}).")
    try:
        pre = Preprocessing(**pre)
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{path}: its preprocessing settings are invalid ({exc}).") from None
    if pre.input_size != (1, 28, 28):
        raise CheckpointError(f"{path}: its input size {pre.input_size} is not MNIST's (1, 28, 28).")
    for key, kind in (("history", dict), ("extra", dict), ("metrics", dict)):
        value = payload.get(key)
        if value is not None and not isinstance(value, kind):
            raise CheckpointError(f"{path}: its {key} is malformed (a {type(value).__name__}, expected a dict).")
    history = payload.get("history") or {}
    lengths = {len(v) if isinstance(v, list) else -1 for v in history.values()}
    if history and (len(lengths) != 1 or -1 in lengths):
        raise CheckpointError(f"{path}: its history is malformed (columns of different lengths or not lists).")
    bad = [k for k, v in payload["state_dict"].items()
           if isinstance(v, torch.Tensor) and v.is_floating_point() and not torch.isfinite(v).all()]
    if bad:
        raise CheckpointError(f"{path}: its weights hold NaN or infinite values ({', '.join(bad[:3])}); "
                              "the model it was saved from had diverged, or the file is corrupt.")
    return name, kwargs, pre


def _build(path: Path, name: str, kwargs: dict, state_dict: dict, dataset: str) -> nn.Module:
    """Build the model on the meta device first: settings and shapes are checked before any memory is allocated."""
    try:
        shell = check_model(name, kwargs, dataset)
    except (ValueError, TypeError) as exc:
        raise CheckpointError(f"{path}: its model settings are invalid ({exc})") from None
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

    Files in torch's older format (``torch.save(..., _use_new_zipfile_serialization=False)``) load
    too, through the same safe loader; any other file is refused without being unpickled.

    Parameters
    ----------
    path : path
    device : str
        Where the model is put.

    Returns
    -------
    Checkpoint

    Raises
    ------
    FileNotFoundError
        No file at ``path``.
    CheckpointError
        The file is truncated, corrupt, not an mnistlab checkpoint, or its settings are invalid.
    """
    from .config import as_config

    path = Path(path)
    if path.is_dir():
        hint = f" Did you mean {path / 'model.pt'}?" if (path / "model.pt").is_file() else ""
        raise CheckpointError(f"{path} is a folder, not a checkpoint file.{hint}")
    if not path.exists():
        raise FileNotFoundError(f"No checkpoint at {path}. Train one with `mnistlab train --out DIR`.")
    if not_a_regular_file(path):  # a FIFO or a device would be read forever
        raise CheckpointError(f"{path} is {not_a_regular_file(path)}, not a checkpoint file.")
    kind = None
    try:
        kind = _torch_format(path)  # a file that cannot be opened gets the permission error below
        if kind is None:  # never unpickle anything but torch's own formats
            size = path.stat().st_size
            raise CheckpointError(f"{path} is empty (0 bytes): not an mnistlab checkpoint." if size == 0 else
                                  f"{path} is not an mnistlab checkpoint (it is not a file written by torch.save).")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch's notes on odd pickle protocols would add lines to the error
            payload = torch.load(path, map_location="cpu", weights_only=True)
    except CheckpointError:
        raise
    except PermissionError:
        raise CheckpointError(f"{path} cannot be read: permission denied (check the file's owner and mode).") \
            from None
    except Exception as exc:  # pickle, zip and torch errors: never suggest weights_only=False
        if kind == "legacy":
            raise CheckpointError(f"{path} is in torch's old (non-zip) format and torch could not read it safely "
                                  f"({type(exc).__name__}); it is corrupt, not an mnistlab checkpoint, or written with "
                                  "a pickle protocol above 2: re-save the model with mnistlab.save_checkpoint.") \
                from None
        raise CheckpointError(f"{path} is not an mnistlab checkpoint, or it is truncated or corrupt "
                              f"(torch could not read it safely: {type(exc).__name__}).") from None
    name, kwargs, pre = _validated_meta(path, payload)
    model = _build(path, name, kwargs, payload["state_dict"], pre.dataset)
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
