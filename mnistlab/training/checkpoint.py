"""Checkpoints: atomic writes, safe loads (``weights_only=True``), clear errors on bad files.

A checkpoint holds the registry name and constructor arguments of the model, its weights, its
declared preprocessing, the :class:`TrainConfig` it was trained with (if known), metrics and the
history. Its metadata is validated before any model is built from it.

The same format carries a GAN (:class:`mnistlab.models.gan.GAN`: generator and discriminator in
one ``state_dict``) with its :class:`~mnistlab.training.gan_config.GANConfig` (``"kind": "gan"``),
and, for either kind, an optional training ``state`` (optimizers, moving averages, step, RNG
state: tensors and plain values only) so a run can resume; all read with ``weights_only=True``.
"""
from __future__ import annotations

import math
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import torch
from torch import nn

from .._util import _pid_alive, atomic_write, clean_stale_temporaries, to_jsonable  # noqa: F401 (re-exported)
from ..data.datasets import not_a_regular_file
from ..models.registry import MAX_PARAMETERS, Preprocessing, create_model, preprocessing_of  # noqa: F401 (re-exported)
from .config import check_model
from .gan_config import GANConfig, as_gan_config

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
    state: dict = field(default_factory=dict)  # training state for resuming (optimizers, EMA, step, RNG), if saved
    kind: str = "classifier"  # or "gan" (model is a mnistlab.models.gan.GAN, config a GANConfig)

    @property
    def dataset(self) -> str:
        """The dataset the model is for."""
        return self.preprocessing.dataset


def _is_gan(model) -> bool:
    from ..models.gan import GAN

    return isinstance(model, GAN)


def _cpu(value):
    """Tensors (also inside dicts and lists, e.g. an optimizer's state) detached, contiguous, on the CPU."""
    if torch.is_tensor(value):
        return value.detach().cpu().contiguous()
    if isinstance(value, dict):
        return {k: _cpu(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_cpu(v) for v in value)
    return value


def save_checkpoint(path, model: nn.Module, *, config=None, metrics: dict | None = None,
                    history: pd.DataFrame | None = None, state: dict | None = None, **extra) -> Path:
    """Write ``model`` and its metadata to ``path`` atomically (temporary file, then rename).

    Parameters
    ----------
    path : path
    model : nn.Module
        A classifier from :func:`mnistlab.create_model`, or a GAN from :func:`mnistlab.create_gan`
        (its ``config`` names the constructor).
    config : TrainConfig or GANConfig, optional
        The run's description (default ``model.train_config``); a GAN takes a :class:`GANConfig`.
    metrics : dict, optional
        Plain numbers.
    history : DataFrame, optional
    state : dict, optional
        Training state for resuming: optimizers' state dicts, moving averages, step, RNG states
        (tensors, numbers, strings, lists and dicts of them: what ``weights_only=True`` reads).
    **extra
        Any plain values.

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    ValueError
        A model not built by the registries, or a GAN with a config that is not a GANConfig.
    """
    spec = getattr(model, "config", None)
    if not spec or "name" not in spec:
        raise ValueError("save_checkpoint needs a model built by mnistlab.create_model or mnistlab.create_gan "
                         "(it has no .config).")
    config = config if config is not None else getattr(model, "train_config", None)
    gan = _is_gan(model)
    if gan and config is not None and not isinstance(config, GANConfig):
        raise ValueError(f"a GAN is saved with its GANConfig, not a {type(config).__name__}.")
    if gan:  # generator output in [-1, 1] = (x - 0.5) / 0.5 of pixels in [0, 1]
        dataset = config.dataset if config is not None else "mnist"
        pre = Preprocessing(0.5, 0.5, dataset, "symmetric")
    else:
        pre = preprocessing_of(model)
    payload = {
        "format": FORMAT, "version": VERSION, "kind": "gan" if gan else "classifier",
        "model": spec["name"], "kwargs": to_jsonable(spec.get("kwargs", {})),
        "state_dict": {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()},
        "preprocessing": pre.to_dict(),
        "train_config": config.to_dict() if config is not None else None,
        "metrics": to_jsonable(metrics or {}),
        "history": to_jsonable(history.to_dict(orient="list")) if history is not None else {},
        "extra": to_jsonable(extra),
    }
    if state is not None:
        payload["state"] = _cpu(dict(state))
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


def _gan_shell(name: str, kwargs: dict):
    """The GAN on the meta device (shapes only), or ValueError/TypeError for bad settings."""
    import warnings as _warnings

    from ..models.gan import create_gan

    with torch.device("meta"), _warnings.catch_warnings():
        _warnings.simplefilter("ignore")
        return create_gan(name, **kwargs)


def _build(path: Path, name: str, kwargs: dict, state_dict: dict, dataset: str, kind: str = "classifier") -> nn.Module:
    """Build the model on the meta device first: settings and shapes are checked before any memory is allocated."""
    try:
        shell = _gan_shell(name, kwargs) if kind == "gan" else check_model(name, kwargs, dataset)
    except (ValueError, TypeError) as exc:
        raise CheckpointError(f"{path}: its model settings are invalid ({exc})") from None
    expected = {k: tuple(v.shape) for k, v in shell.state_dict().items()}
    got = {k: tuple(v.shape) for k, v in state_dict.items() if isinstance(v, torch.Tensor)}
    if expected != got:
        missing, unexpected = sorted(set(expected) - set(got)), sorted(set(got) - set(expected))
        wrong = sorted(k for k in set(expected) & set(got) if expected[k] != got[k])
        raise CheckpointError(f"{path}: the weights do not fit model {name!r} {kwargs} (missing {missing[:3]}, "
                              f"unexpected {unexpected[:3]}, wrong shapes {wrong[:3]}).")
    if kind == "gan":
        from ..models.gan import create_gan

        model = create_gan(name, **kwargs)
    else:
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
        For a GAN checkpoint (``kind == "gan"``): ``model`` is the :class:`~mnistlab.models.gan.GAN`,
        ``config`` its :class:`GANConfig`, ``state`` the training state saved for resuming.

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
    kind = payload.get("kind", "classifier")
    if kind not in ("classifier", "gan"):
        raise CheckpointError(f"{path}: unknown kind of model {kind!r} (classifier or gan).")
    state = payload.get("state") or {}
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: its training state is malformed (a {type(state).__name__}, expected a dict).")
    model = _build(path, name, kwargs, payload["state_dict"], pre.dataset, kind)
    model.to(device).eval()
    if kind == "classifier":
        model.preprocessing = pre
    config = None
    if payload.get("train_config"):
        try:
            config = (as_gan_config if kind == "gan" else as_config)(payload["train_config"])
        except (TypeError, ValueError) as exc:
            raise CheckpointError(f"{path}: its training config is invalid ({exc}).") from None
        model.train_config = config
    metrics = payload.get("metrics") or {}
    if not isinstance(metrics, dict) or not all(isinstance(v, (int, float, str, type(None))) or
                                                (isinstance(v, float) and math.isnan(v)) for v in metrics.values()):
        raise CheckpointError(f"{path}: its metrics are malformed.")
    return Checkpoint(model=model, name=name, kwargs=kwargs, preprocessing=pre, config=config, metrics=metrics,
                      history=pd.DataFrame(payload.get("history") or {}), extra=payload.get("extra") or {},
                      state=state, kind=kind)
