"""The experiment cache: one JSON file per training run, keyed by the config, the seed and a format number.

A key is the SHA-256 of the canonical JSON of the run's settings (:meth:`TrainConfig.recipe`:
the config without its name), the seed and :data:`CACHE_VERSION`, nothing else: bumping the
package version for a docstring keeps every result. Entries carry a checksum and are written
atomically; a corrupt or truncated entry is detected, discarded and recomputed. Two workers
writing the same key write the same bytes, and the rename makes the last one win whole.
"""
from __future__ import annotations

import hashlib
import json
import warnings
from pathlib import Path

from .._util import cache_root, to_jsonable
from .._util import atomic_write
from ..training.config import as_config

__all__ = ["CACHE_VERSION", "config_hash", "fingerprint", "cache_dir", "clear_cache", "read", "write",
           "artifact_path", "model_path"]

CACHE_VERSION = 2
"""Bump when the meaning of a cached result changes (training loop, metrics, file layout)."""


def _canonical_json(obj) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)


def config_hash(config, seed: int, kind: str = "run", *, recipe: dict | None = None, **extra) -> str:
    """Stable SHA-256 (hex) of the run's settings (config without its name), the seed and the cache version.

    ``kind`` and ``extra`` separate other uses of the same recipe (e.g. a cross-validation fold).
    ``config`` is a :class:`~mnistlab.training.config.TrainConfig` (or a dict of its fields) or a
    :class:`~mnistlab.training.gan_config.GANConfig`: anything with a ``recipe()``. ``recipe``:
    ``config.recipe()`` when the caller has it already (it is not computed again).
    """
    if recipe is None:
        cfg = config if hasattr(config, "recipe") and not isinstance(config, dict) else as_config(config)
        recipe = cfg.recipe()
    key = {"kind": kind, "recipe": recipe, "seed": int(seed), "cache_version": CACHE_VERSION,
           **to_jsonable(extra, strict=True)}
    return hashlib.sha256(_canonical_json(key).encode()).hexdigest()



def fingerprint(obj) -> str:
    """SHA-256 (hex) of what data or a model holds, for :func:`config_hash`'s ``extra`` when a run is handed them.

    Parameters
    ----------
    obj : ImageSet, torch.Tensor, nn.Module, or plain JSON values
        An ImageSet: its dataset name, images and labels. A module: its ``config`` (or class
        name), declared preprocessing and every tensor of its ``state_dict``. Anything else: its
        canonical JSON.

    Returns
    -------
    str
        64 hex digits; equal contents give equal fingerprints.
    """
    import torch

    h = hashlib.sha256()

    def add(part):
        if isinstance(part, torch.Tensor):
            h.update(str((part.dtype, tuple(part.shape))).encode())
            h.update(part.detach().cpu().contiguous().numpy().tobytes())
        else:
            h.update(_canonical_json(to_jsonable(part)).encode())

    if isinstance(obj, torch.nn.Module):
        pre = getattr(obj, "preprocessing", None)
        add(getattr(obj, "config", None) or type(obj).__name__)
        add(pre.to_dict() if hasattr(pre, "to_dict") else None)
        for name, tensor in obj.state_dict().items():
            add(name)
            add(tensor)
    elif hasattr(obj, "images") and hasattr(obj, "labels"):
        add(getattr(obj, "dataset", ""))
        add(obj.images)
        add(obj.labels)
    else:
        add(obj)
    return h.hexdigest()


def model_path(key: str) -> Path:
    """Where the weights of the run ``key`` are kept (``<key>.pt``, a :func:`mnistlab.save_checkpoint` file)."""
    return cache_dir() / f"{key}.pt"


def cache_dir(create: bool = True) -> Path:
    """The cache folder: ``$MNISTLAB_CACHE`` if set, else ``<project>/.mnistlab-cache`` in a source
    checkout, else ``~/.cache/mnistlab/experiments``."""
    return cache_root(create)


def clear_cache() -> int:
    """Delete every cached result and model in :func:`cache_dir`; return how many files went."""
    n = 0
    folder = cache_dir(create=False)
    for p in folder.glob("*") if folder.is_dir() else []:
        if p.is_file() and (p.suffix in (".json", ".pt", ".npz") or p.name.endswith(".tmp")):
            p.unlink()
            n += 1
    return n


def write(key: str, body: dict) -> Path:
    """Write ``{"sha256": ..., "body": body}`` atomically; the checksum covers the body's canonical JSON."""
    path = cache_dir() / f"{key}.json"
    text = json.dumps(to_jsonable(body), sort_keys=True, separators=(",", ":"), allow_nan=False)
    payload = json.dumps({"format": "mnistlab-result", "sha256": hashlib.sha256(text.encode()).hexdigest(),
                          "body": text})
    atomic_write(path, lambda fh: fh.write(payload.encode()))
    return path


def read(key: str) -> dict | None:
    """The cached body for ``key``, or ``None`` if absent. A damaged entry is deleted (with a warning)."""
    path = cache_dir() / f"{key}.json"
    if not path.is_file():
        return None
    try:
        outer = json.loads(path.read_text())
        text = outer["body"]
        if outer.get("format") != "mnistlab-result" or hashlib.sha256(text.encode()).hexdigest() != outer["sha256"]:
            raise ValueError("checksum mismatch")
        body = json.loads(text)
        if body.get("key") != key:
            raise ValueError("entry belongs to another key")
        return body
    except Exception as exc:  # truncated, edited, not JSON, wrong layout...
        warnings.warn(f"Cache entry {path.name} is damaged ({exc}); it is discarded and the run is recomputed.",
                      RuntimeWarning, stacklevel=3)
        path.unlink(missing_ok=True)
        (path.with_suffix(".pt")).unlink(missing_ok=True)
        return None


def artifact_path(key: str, name: str) -> Path:
    """Where a callback's artifact of the run ``key`` lives (``<key>.<name>.npz``, beside the result)."""
    return cache_dir() / f"{key}.{name}.npz"


