"""Experiment harness: repeated training runs, their statistics, cross-validation and a disk cache.

A *config* describes one training recipe as plain, JSON-serialisable values (a :class:`Config`
or a dict with the same keys). :func:`run` trains it once for one seed and returns a tidy
DataFrame (one row per epoch); :func:`run_many` and :func:`run_grid` repeat it over seeds and
configs; :func:`summarize` gives mean, standard deviation and a 95% t-interval per config, and
:func:`compare` tells whether two configs differ beyond seed-to-seed noise (paired t-test over
matching seeds). :func:`cross_validate` runs k-fold cross-validation on the training set.

Every run is cached on disk under the SHA-256 of its canonical JSON recipe, the seed and the
cache format version, in ``$MNISTLAB_CACHE`` (default ``<project>/.mnistlab-cache``): re-running a
notebook after a kernel restart reads results instead of retraining. Entries carry a checksum and
are written atomically; a corrupt or truncated entry is detected, discarded and recomputed.

This is a study module: it uses ``data``, ``models``, ``train``, ``checkpoint`` and matplotlib.

Examples
--------
>>> import mnistlab.experiments as ex                                          # doctest: +SKIP
>>> base = ex.Config("lenet5 vanilla", model="lenet5", optimizer="adam", lr=2e-4, normalize="unit")
>>> df = ex.run_many(base, seeds=range(5))                                     # doctest: +SKIP
>>> ex.summarize(df)                                                           # doctest: +SKIP
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from .checkpoint import CheckpointError, atomic_write, load_checkpoint, save_checkpoint
from .data import Augment, ImageSet, kfold_indices, load_dataset, train_val_split
from .models import create_model
from .train import EarlyStopping, TrainingError, evaluate, fit, predict, resolve_device

__all__ = [
    "CACHE_VERSION", "Config", "as_config", "from_recipe", "config_hash", "cache_dir", "clear_cache",
    "run", "run_many", "run_grid", "final_rows", "summarize", "compare", "compare_steps",
    "cross_validate", "load_model", "ensemble", "lr_sweep", "best_lrs",
    "plot_summary", "plot_differences", "plot_curves", "plot_train_vs_val", "plot_fold_curves", "plot_fold_box", "plot_lr_sweep",
]

CACHE_VERSION = 1
"""Bump when the meaning of a cached result changes (training loop, metrics, file layout)."""

_FINAL_ORDER = ["val_loss", "val_acc", "test_loss", "test_acc", "test_n", "train_seconds", "run_seconds",
                "best_epoch", "stopped_epoch", "fold_loss", "fold_acc", "diverged"]
_HISTORY_COLUMNS = ["epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr", "seconds", "elapsed"]


# --------------------------------------------------------------------------------------------
# Configs
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Config:
    """One training recipe, as plain values (so it hashes and caches reproducibly).

    Parameters
    ----------
    name : str
        Label shown in tables and plots. It is *not* part of the cache key, so two names for
        the same recipe share their cached runs.
    model : str
        Registry name for :func:`mnistlab.create_model`; ``model_kwargs`` go to its constructor.
    epochs : int
        0 gives the untrained baseline (the model is only evaluated).
    optimizer, lr, momentum, weight_decay, batch_size, scheduler, label_smoothing, normalize
        As in :func:`mnistlab.fit`.
    augment : dict, optional
        Keyword arguments of :class:`mnistlab.Augment` (an ``Augment`` instance is accepted
        and converted); ``None`` for no augmentation.
    dataset : str
        "mnist", "fashion-mnist" or "kmnist".
    train_limit, test_limit : int, optional
        Use only the first ``train_limit`` training / ``test_limit`` test images.
    val : "test", float, int or None
        Per-epoch validation data: ``"test"`` evaluates the test set after every epoch; a
        fraction or count holds out part of the training set (:func:`mnistlab.train_val_split`,
        split seed ``split_seed``); ``None`` skips per-epoch validation (faster).
    early_stopping : dict, optional
        Keyword arguments of :class:`mnistlab.EarlyStopping` (needs ``val``), e.g.
        ``{"patience": 3, "monitor": "val_loss"}``.
    """

    name: str = "run"
    model: str = "lenet5"
    model_kwargs: Mapping[str, Any] = field(default_factory=dict)
    epochs: int = 10
    optimizer: str = "adam"
    lr: float | None = None
    momentum: float | None = None
    weight_decay: float = 0.0
    batch_size: int = 128
    scheduler: str | None = None
    label_smoothing: float = 0.0
    normalize: Any = "standard"
    augment: Mapping[str, Any] | None = None
    dataset: str = "mnist"
    train_limit: int | None = None
    test_limit: int | None = None
    val: Any = "test"
    split_seed: int = 0
    early_stopping: Mapping[str, Any] | None = None

    def __post_init__(self):
        aug = self.augment
        if isinstance(aug, Augment):
            aug = dataclasses.asdict(aug)
        if aug is not None and not isinstance(aug, Mapping):
            raise TypeError(f"augment must be None, a dict of Augment arguments or an Augment, not {type(aug).__name__}.")
        object.__setattr__(self, "augment", None if aug is None else _canonical(dict(aug)))
        object.__setattr__(self, "model_kwargs", _canonical(dict(self.model_kwargs or {})))
        if self.early_stopping is not None:
            object.__setattr__(self, "early_stopping", _canonical(dict(self.early_stopping)))
        if isinstance(self.normalize, (list, tuple)):
            object.__setattr__(self, "normalize", [float(v) for v in self.normalize])
        if not isinstance(self.epochs, int) or self.epochs < 0:
            raise ValueError(f"epochs must be a non-negative integer, got {self.epochs!r}.")
        if not isinstance(self.batch_size, int) or self.batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {self.batch_size!r}.")
        v = self.val
        if not (v is None or v == "test" or (isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0)):
            raise ValueError(f"val must be 'test', None, a fraction or a count of training images, not {v!r}.")
        if self.early_stopping is not None and v is None:
            raise ValueError("early_stopping needs per-epoch validation: set val='test' or a fraction.")

    def recipe(self) -> dict:
        """The config as a plain dict without its ``name`` (what the cache key is built from)."""
        d = self.to_dict()
        d.pop("name")
        return d

    def to_dict(self) -> dict:
        """All fields as a plain, JSON-serialisable dict."""
        return _canonical({f.name: getattr(self, f.name) for f in dataclasses.fields(self)})

    def but(self, **changes) -> "Config":
        """A copy with some fields changed, e.g. ``base.but(name="batch 64", batch_size=64)``."""
        return as_config({**self.to_dict(), **changes})

    def make_augment(self) -> Augment | None:
        """The :class:`mnistlab.Augment` described by ``augment`` (``None`` if none)."""
        if self.augment is None:
            return None
        kw = dict(self.augment)
        if "scale" in kw:
            kw["scale"] = tuple(kw["scale"])
        return Augment(**kw)


_FIELDS = {f.name for f in dataclasses.fields(Config)}


def from_recipe(recipe: str, name: str | None = None, **changes) -> Config:
    """A :class:`Config` holding a named recipe of :mod:`mnistlab.recipes` ("fast", "best", ...).

    ``changes`` override config fields (e.g. ``train_limit=2000`` or
    ``epochs=2``). Recipes with a scheduler instance built at training time ("steplr") are not
    expressible as a config and raise ``ValueError``.
    """
    from .recipes import get_recipe

    rec = get_recipe(recipe)
    if rec.get("scheduler") not in (None, "step", "cosine", "onecycle"):
        raise ValueError(f"Recipe {recipe!r} uses scheduler {rec['scheduler']!r}, which a Config cannot express.")
    fields = {k: v for k, v in rec.items() if k in _FIELDS and k != "name"}
    return as_config({**fields, "name": name or f"{recipe} recipe", **changes})


def as_config(config) -> Config:
    """Accept a :class:`Config` or a dict of its fields; raise a clear error on unknown keys."""
    if isinstance(config, Config):
        return config
    if not isinstance(config, Mapping):
        raise TypeError(f"A config is a mnistlab.experiments.Config or a dict, not {type(config).__name__}.")
    unknown = sorted(set(config) - _FIELDS)
    if unknown:
        raise ValueError(f"Unknown config keys {unknown}; allowed keys: {sorted(_FIELDS)}.")
    return Config(**config)


def _canonical(value):
    """Tuples -> lists, NumPy scalars -> Python, dict keys -> str; recursively (JSON-ready)."""
    if isinstance(value, Mapping):
        return {str(k): _canonical(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_canonical(v) for v in value]
    if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
        return value.item()
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    raise TypeError(f"Config values must be plain JSON values (str, number, list, dict, None), not {value!r}.")


def _canonical_json(obj) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)


def config_hash(config, seed: int, kind: str = "run", **extra) -> str:
    """Stable SHA-256 (hex) of the recipe (config without its name), the seed and the cache version.

    ``kind`` and ``extra`` separate other uses of the same recipe (e.g. a cross-validation fold).
    """
    from . import __version__

    cfg = as_config(config)
    key = {"kind": kind, "recipe": cfg.recipe(), "seed": int(seed), "cache_version": CACHE_VERSION,
           "package_version": __version__, **_canonical(extra)}
    return hashlib.sha256(_canonical_json(key).encode()).hexdigest()


# --------------------------------------------------------------------------------------------
# Disk cache
# --------------------------------------------------------------------------------------------

def cache_dir(create: bool = True) -> Path:
    """The cache folder: ``$MNISTLAB_CACHE`` if set, else ``<project>/.mnistlab-cache`` in a source
    checkout, else ``~/.cache/mnistlab/experiments``."""
    env = os.environ.get("MNISTLAB_CACHE")
    if env:
        path = Path(env).expanduser()
    else:
        project = Path(__file__).resolve().parent.parent
        if (project / "pyproject.toml").is_file():
            path = project / ".mnistlab-cache"
        else:
            path = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "mnistlab" / "experiments"
    if create:
        path.mkdir(parents=True, exist_ok=True)
    return path


def clear_cache() -> int:
    """Delete every cached result and model in :func:`cache_dir`; return how many files went."""
    n = 0
    folder = cache_dir(create=False)
    for p in folder.glob("*") if folder.is_dir() else []:
        if p.suffix in (".json", ".pt") and p.is_file():
            p.unlink()
            n += 1
    return n


def _cache_write(key: str, body: dict) -> Path:
    """Write ``{"sha256": ..., "body": body}`` atomically; the checksum covers the body's canonical JSON."""
    path = cache_dir() / f"{key}.json"
    text = json.dumps(body, sort_keys=True, separators=(",", ":"))  # NaN written as NaN (Python reads it)
    payload = json.dumps({"format": "mnistlab-result", "sha256": hashlib.sha256(text.encode()).hexdigest(),
                          "body": text})
    atomic_write(path, lambda fh: fh.write(payload.encode()))
    return path


def _cache_read(key: str) -> dict | None:
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


# --------------------------------------------------------------------------------------------
# Training runs
# --------------------------------------------------------------------------------------------

def _datasets(cfg: Config) -> tuple[ImageSet, ImageSet | None, ImageSet]:
    """(train, per-epoch validation or None, test) for a config."""
    train = load_dataset(cfg.dataset, "train", limit=cfg.train_limit)
    test = load_dataset(cfg.dataset, "test", limit=cfg.test_limit)
    if cfg.val is None:
        return train, None, test
    if cfg.val == "test":
        return train, test, test
    train, val = train_val_split(train, cfg.val, seed=cfg.split_seed)
    return train, val, test


def _train(cfg: Config, train: ImageSet, val: ImageSet | None, seed: int, device, progress: bool):
    """Train one model; return (model, history, early-stopping callback or None)."""
    model = create_model(cfg.model, seed=seed, **cfg.model_kwargs)
    stopper = EarlyStopping(**cfg.early_stopping) if cfg.early_stopping else None
    normalize = tuple(cfg.normalize) if isinstance(cfg.normalize, list) else cfg.normalize
    if cfg.epochs == 0:
        model.to(resolve_device(device))
        from .data import normalization
        model.normalization = normalization(normalize, cfg.dataset)
        model.dataset = cfg.dataset
        return model, pd.DataFrame(columns=_HISTORY_COLUMNS), None
    history = fit(model, train, val, epochs=cfg.epochs, optimizer=cfg.optimizer, lr=cfg.lr,
                  batch_size=cfg.batch_size, scheduler=cfg.scheduler, weight_decay=cfg.weight_decay,
                  momentum=cfg.momentum, label_smoothing=cfg.label_smoothing, augment=cfg.make_augment(),
                  normalize=normalize, callbacks=[stopper] if stopper else [], device=device, seed=seed,
                  progress=progress)
    return model, history, stopper


def _tidy(body: dict, name: str, cached: bool) -> pd.DataFrame:
    hist = pd.DataFrame(body["history"], columns=_HISTORY_COLUMNS)
    if hist.empty:  # untrained baseline (or a diverged run): one row at epoch 0
        hist = pd.DataFrame([{c: np.nan for c in _HISTORY_COLUMNS} | {"epoch": 0, "seconds": 0.0, "elapsed": 0.0}],
                            columns=_HISTORY_COLUMNS)
    hist = hist.astype({c: float for c in _HISTORY_COLUMNS}).astype({"epoch": int})
    out = pd.DataFrame({"config": name, "seed": int(body["seed"])}, index=hist.index)
    out = pd.concat([out, hist], axis=1)
    final = body["final"]  # per-run values; val_* there only for the untrained baseline
    for k in [k for k in _FINAL_ORDER if k in final] + sorted(k for k in final if k not in _FINAL_ORDER):
        out[k] = final[k]
    out["cached"] = cached
    out["hash"] = body["key"][:12]
    return out


def run(config, seed: int = 0, *, device="auto", cache: bool = True, keep_model: bool = False,
        progress: bool = False) -> pd.DataFrame:
    """Train ``config`` once with ``seed`` (weights, data order, augmentation, dropout) and evaluate it.

    Parameters
    ----------
    config : Config or dict
    seed : int
    device : str
        "auto" (GPU when present), "cpu", "cuda", ...
    cache : bool
        Read and write the disk cache (see :func:`cache_dir`). A cache hit does not train.
    keep_model : bool
        Also store the trained weights (a checkpoint next to the result) for :func:`load_model`.
    progress : bool
        Show per-epoch progress bars.

    Returns
    -------
    pandas.DataFrame
        One row per epoch (one row at epoch 0 for an untrained model) with ``config``, ``seed``,
        ``epoch``, ``train_loss``, ``train_acc``, ``val_loss``, ``val_acc``, ``lr``, ``seconds``,
        ``elapsed``, and per run (repeated on every row): ``test_loss``, ``test_acc``, ``test_n``,
        ``train_seconds`` (training time), ``run_seconds`` (training plus evaluation),
        ``best_epoch`` and ``stopped_epoch`` (early stopping; NaN otherwise), ``diverged``, ``cached``
        and ``hash``. A run whose loss became NaN/infinite (:class:`mnistlab.TrainingError`) is
        not an error here: it gives one row with ``diverged=True``, NaN metrics and the message in
        ``error``, and is cached like any other result.
    """
    cfg = as_config(config)
    key = config_hash(cfg, seed)
    if cache:
        body = _cache_read(key)
        if body is not None and (not keep_model or body["final"].get("diverged") or (cache_dir() / f"{key}.pt").is_file()):
            return _tidy(body, cfg.name, cached=True)
    t0 = time.perf_counter()
    train, val, test = _datasets(cfg)
    try:
        model, history, stopper = _train(cfg, train, val, seed, device, progress)
    except TrainingError as exc:  # diverged (NaN/inf loss): a result too, recorded as such
        final = {"test_loss": np.nan, "test_acc": np.nan, "test_n": len(test), "train_seconds": np.nan,
                 "run_seconds": time.perf_counter() - t0, "best_epoch": np.nan, "stopped_epoch": np.nan,
                 "diverged": True, "error": str(exc)}
        body = {"key": key, "seed": int(seed), "recipe": cfg.recipe(), "history": {}, "final": final}
        if cache:
            _cache_write(key, body)
        return _tidy(body, cfg.name, cached=False)
    if cfg.val == "test" and stopper is None and not history.empty:
        test_metrics = {"loss": float(history["val_loss"].iloc[-1]), "acc": float(history["val_acc"].iloc[-1]),
                        "n": len(test)}
    else:
        test_metrics = evaluate(model, test)
    final = {"test_loss": test_metrics["loss"], "test_acc": test_metrics["acc"], "test_n": int(test_metrics["n"]),
             "train_seconds": float(history["seconds"].sum()) if not history.empty else 0.0,
             "best_epoch": float(stopper.best_epoch) if stopper and stopper.best_epoch is not None else np.nan,
             "stopped_epoch": float(stopper.stopped_epoch) if stopper and stopper.stopped_epoch is not None else np.nan,
             "diverged": False}
    if cfg.epochs == 0 and val is not None:  # the untrained baseline still reports its validation metrics
        v = test_metrics if val is test else evaluate(model, val)
        final.update(val_loss=v["loss"], val_acc=v["acc"])
    final["run_seconds"] = time.perf_counter() - t0
    body = {"key": key, "seed": int(seed), "recipe": cfg.recipe(), "history": history.to_dict(orient="list"),
            "final": final}
    if cache:
        if keep_model:
            save_checkpoint(cache_dir() / f"{key}.pt", model, metrics={"test_acc": final["test_acc"]}, history=history)
        _cache_write(key, body)
    return _tidy(body, cfg.name, cached=False)


def _tidy_order(columns) -> list[str]:
    first = ["config", "seed", *_HISTORY_COLUMNS]
    return [c for c in first if c in columns] + [c for c in columns if c not in first]


def run_many(config, seeds: Iterable[int] = range(5), *, device="auto", cache: bool = True, keep_model: bool = False,
             progress: bool = True) -> pd.DataFrame:
    """:func:`run` for every seed; one tidy DataFrame (tqdm bar over seeds)."""
    cfg = as_config(config)
    seeds = [int(s) for s in seeds]
    if not seeds:
        raise ValueError("run_many needs at least one seed.")
    frames = [run(cfg, s, device=device, cache=cache, keep_model=keep_model)
              for s in tqdm(seeds, desc=cfg.name, unit="seed", disable=not progress, leave=False)]
    return pd.concat(frames, ignore_index=True)


def run_grid(configs: Sequence, seeds: Iterable[int] = range(5), *, device="auto", cache: bool = True,
             keep_model: bool = False, progress: bool = True) -> pd.DataFrame:
    """:func:`run_many` for every config (names must be distinct); one tidy DataFrame in config order."""
    configs = [as_config(c) for c in configs]
    names = [c.name for c in configs]
    if len(set(names)) != len(names):
        raise ValueError(f"Config names must be distinct, got {names}.")
    seeds = [int(s) for s in seeds]
    frames = [run_many(c, seeds, device=device, cache=cache, keep_model=keep_model, progress=False)
              for c in tqdm(configs, desc="configs", unit="config", disable=not progress)]
    return pd.concat(frames, ignore_index=True)


# --------------------------------------------------------------------------------------------
# Statistics
# --------------------------------------------------------------------------------------------

def final_rows(df: pd.DataFrame, by: Sequence[str] = ("config", "seed")) -> pd.DataFrame:
    """The last epoch's row of every run (one row per config and seed, or per ``by`` group)."""
    by = [b for b in by if b in df.columns]
    missing = {"epoch"} - set(df.columns)
    if missing or not by:
        raise ValueError("final_rows needs a tidy DataFrame from run/run_many (columns config, seed, epoch).")
    df = df.reset_index(drop=True)
    last = df.sort_values("epoch", kind="stable").groupby(by, sort=False).tail(1).index
    return df.loc[sorted(last)].reset_index(drop=True)  # runs in their order of appearance


def _t_interval(values: np.ndarray, confidence: float = 0.95) -> tuple[float, float, float, float]:
    """(mean, std, half-width, n) of a Student-t confidence interval for the mean."""
    from scipy import stats

    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    n = len(values)
    if n == 0:
        return np.nan, np.nan, np.nan, 0
    mean = float(values.mean())
    if n == 1:
        return mean, np.nan, np.nan, 1
    std = float(values.std(ddof=1))
    half = float(stats.t.ppf(0.5 + confidence / 2, n - 1) * std / math.sqrt(n))
    return mean, std, half, n


def summarize(df: pd.DataFrame, metric: str = "test_acc", confidence: float = 0.95,
              by: str = "config") -> pd.DataFrame:
    """Per config: mean, std, 95% t-interval and n of ``metric`` over seeds (last epoch of each run).

    Returns
    -------
    pandas.DataFrame
        Indexed by config (first-appearance order), columns ``mean``, ``std``, ``ci_low``,
        ``ci_high``, ``ci_half`` and ``n``. With one seed, std and the interval are NaN.
    """
    if metric not in df.columns:
        raise KeyError(f"{metric!r} is not a column; available: {sorted(df.columns)}.")
    per_run = final_rows(df, (by, "seed")) if "epoch" in df.columns else df
    rows = []
    for name, g in per_run.groupby(by, sort=False):
        mean, std, half, n = _t_interval(g[metric].to_numpy(), confidence)
        rows.append({by: name, "mean": mean, "std": std, "ci_low": mean - half, "ci_high": mean + half,
                     "ci_half": half, "n": n})
    return pd.DataFrame(rows).set_index(by)


def _per_seed(df: pd.DataFrame, metric: str) -> pd.Series:
    if metric not in df.columns:
        raise KeyError(f"{metric!r} is not a column; available: {sorted(df.columns)}.")
    if "config" in df.columns and df["config"].nunique() > 1:
        raise ValueError(f"compare takes one config per DataFrame; this one holds {sorted(df['config'].unique())}.")
    last = final_rows(df) if "epoch" in df.columns else df
    return last.groupby("seed")[metric].last()


def compare(df_a: pd.DataFrame, df_b: pd.DataFrame, metric: str = "test_acc", alpha: float = 0.05) -> dict:
    """Paired comparison of two configs over the seeds they share (b minus a).

    The same seed gives both runs the same data order and (for equal models) initial weights,
    so a paired t-test (:func:`scipy.stats.ttest_rel`) removes that shared noise.

    Returns
    -------
    dict
        ``a``, ``b`` (config names), ``n`` (shared seeds), ``mean_a``, ``mean_b``, ``diff``
        (mean of b - a), ``ci_low``, ``ci_high`` (95% t-interval of the difference), ``p_value``
        and ``verdict``: "differs beyond noise" (p < alpha), "within noise", or
        "too few seeds" (fewer than 2 shared seeds).
    """
    from scipy import stats

    a, b = _per_seed(df_a, metric), _per_seed(df_b, metric)
    seeds = a.index.intersection(b.index)
    name_a = str(df_a["config"].iloc[0]) if "config" in df_a.columns else "a"
    name_b = str(df_b["config"].iloc[0]) if "config" in df_b.columns else "b"
    out = {"a": name_a, "b": name_b, "metric": metric, "n": len(seeds),
           "mean_a": float(a.loc[seeds].mean()) if len(seeds) else np.nan,
           "mean_b": float(b.loc[seeds].mean()) if len(seeds) else np.nan}
    d = (b.loc[seeds] - a.loc[seeds]).to_numpy(dtype=float)
    mean, std, half, n = _t_interval(d, 1 - alpha)
    out.update(diff=mean, ci_low=mean - half, ci_high=mean + half)
    if n < 2:
        out.update(p_value=np.nan, verdict="too few seeds")
        return out
    if std == 0:  # identical differences on every seed: the t statistic is undefined
        p = 1.0 if mean == 0 else 0.0
    else:
        p = float(stats.ttest_rel(b.loc[seeds].to_numpy(float), a.loc[seeds].to_numpy(float)).pvalue)
    out.update(p_value=p, verdict="differs beyond noise" if p < alpha else "within noise")
    return out


def compare_steps(df: pd.DataFrame, metric: str = "test_acc", baseline: str | None = None,
                  alpha: float = 0.05) -> pd.DataFrame:
    """:func:`compare` each config with the one before it (or with ``baseline``), in order of appearance.

    Returns one row per comparison with the columns of :func:`compare`.
    """
    names = list(dict.fromkeys(df["config"]))
    if baseline is not None and baseline not in names:
        raise ValueError(f"baseline {baseline!r} is not among the configs {names}.")
    rows = []
    for prev, name in zip(names, names[1:]) if baseline is None else ((baseline, n) for n in names if n != baseline):
        rows.append(compare(df[df["config"] == prev], df[df["config"] == name], metric, alpha))
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------------------------
# Cross-validation, saved models, ensembles, learning-rate sweeps
# --------------------------------------------------------------------------------------------

def cross_validate(config, k: int = 5, seed: int = 0, *, device="auto", cache: bool = True,
                   progress: bool = True) -> pd.DataFrame:
    """k-fold cross-validation on the training set (``train_limit`` applies; ``val`` is ignored).

    Fold ``i`` trains on the other k-1 folds with seed ``seed`` and is validated after every
    epoch on fold ``i`` (:func:`mnistlab.kfold_indices`, shuffled with ``seed``).

    Returns
    -------
    pandas.DataFrame
        Tidy per-epoch histories with columns ``config``, ``fold``, ``seed``, ``epoch``,
        ``train_loss``, ``train_acc``, ``val_loss``, ``val_acc``, ``seconds``, ..., and
        ``fold_acc`` (the fold's final validation accuracy, repeated on its rows).
    """
    cfg = as_config(config)
    if cfg.epochs < 1:
        raise ValueError("cross_validate needs epochs >= 1.")
    train = load_dataset(cfg.dataset, "train", limit=cfg.train_limit)
    folds = kfold_indices(len(train), k=k, seed=seed)
    recipe = cfg.but(val=None, early_stopping=None)
    frames = []
    for i, (tr_idx, va_idx) in enumerate(tqdm(folds, desc=f"{cfg.name} CV", unit="fold", disable=not progress)):
        key = config_hash(recipe, seed, kind="cv", k=k, fold=i)
        body = _cache_read(key) if cache else None
        if body is None:
            t0 = time.perf_counter()
            tr, va = train.subset(tr_idx), train.subset(va_idx)
            model, history, _ = _train(recipe, tr, va, seed, device, progress=False)
            final = {"fold_acc": float(history["val_acc"].iloc[-1]), "fold_loss": float(history["val_loss"].iloc[-1]),
                     "train_seconds": float(history["seconds"].sum()), "run_seconds": time.perf_counter() - t0}
            body = {"key": key, "seed": int(seed), "recipe": recipe.recipe(),
                    "history": history.to_dict(orient="list"), "final": final}
            if cache:
                _cache_write(key, body)
            cached = False
        else:
            cached = True
        df = _tidy(body, cfg.name, cached)
        df.insert(1, "fold", i)
        frames.append(df)
    return pd.concat(frames, ignore_index=True)


def load_model(config, seed: int = 0, *, device="auto"):
    """The trained model of ``run(config, seed)``, from the cache (trained and stored if absent).

    Returns a model in eval mode on ``device`` with its ``normalization`` set, ready for
    :func:`mnistlab.predict`.
    """
    cfg = as_config(config)
    key = config_hash(cfg, seed)
    path = cache_dir() / f"{key}.pt"
    for attempt in range(2):
        if not path.is_file():
            run(cfg, seed, device=device, keep_model=True)  # trains (and stores weights) unless already there
        try:
            return load_checkpoint(path, device=resolve_device(device)).model
        except CheckpointError as exc:
            warnings.warn(f"Cached model {path.name} is damaged ({exc}); retraining.", RuntimeWarning, stacklevel=2)
            path.unlink(missing_ok=True)
    raise CheckpointError(f"Could not store and reload the model for {cfg.name!r}, seed {seed}.")


def ensemble(config, seeds: Iterable[int], *, device="auto") -> dict:
    """Average the predicted probabilities of the models of ``seeds`` on the test set.

    Returns
    -------
    dict
        ``members`` (list of each model's test accuracy), ``member_mean``, ``ensemble_acc``,
        ``ensemble_errors`` (count of misclassified test images), ``n`` and ``probs`` (the
        averaged probabilities, N x classes).
    """
    cfg = as_config(config)
    seeds = [int(s) for s in seeds]
    if not seeds:
        raise ValueError("ensemble needs at least one seed.")
    test = load_dataset(cfg.dataset, "test", limit=cfg.test_limit)
    y = test.labels.numpy()
    probs, members = [], []
    for s in seeds:
        p = predict(load_model(cfg, s, device=device), test)
        probs.append(p)
        members.append(float((p.argmax(1) == y).mean()))
    mean_p = np.mean(probs, axis=0)
    correct = mean_p.argmax(1) == y
    return {"members": members, "member_mean": float(np.mean(members)), "ensemble_acc": float(correct.mean()),
            "ensemble_errors": int((~correct).sum()), "n": len(y), "probs": mean_p}


def lr_sweep(config, optimizers: Sequence[str], lrs: Mapping[str, Sequence[float]] | Sequence[float],
             seeds: Iterable[int] = (0,), *, device="auto", cache: bool = True, progress: bool = True) -> pd.DataFrame:
    """Train ``config`` with every optimizer at every learning rate; tidy DataFrame with
    ``optimizer`` and ``lr_value`` columns (``lrs`` is one grid for all or a dict per optimizer)."""
    cfg = as_config(config)
    jobs = []
    for opt in optimizers:
        grid = lrs[opt] if isinstance(lrs, Mapping) else lrs
        for lr in grid:
            jobs.append(cfg.but(name=f"{opt} lr={lr:g}", optimizer=opt, lr=float(lr)))
    df = run_grid(jobs, seeds, device=device, cache=cache, progress=progress)
    meta = pd.DataFrame([{"config": j.name, "optimizer": j.optimizer, "lr_value": j.lr} for j in jobs])
    return df.merge(meta, on="config", how="left")


def best_lrs(sweep: pd.DataFrame, metric: str = "val_acc", mode: str = "max") -> pd.Series:
    """Best learning rate per optimizer from :func:`lr_sweep` (mean of ``metric`` over seeds, last epoch).

    Runs whose metric is NaN (diverged) never win.
    """
    last = final_rows(sweep)
    means = last.groupby(["optimizer", "lr_value"], sort=False)[metric].mean().dropna()
    pick = means.groupby(level=0, sort=False).idxmax() if mode == "max" else means.groupby(level=0, sort=False).idxmin()
    return pd.Series({opt: lr for opt, lr in pick.values}, name="best_lr")


# --------------------------------------------------------------------------------------------
# Plots (take DataFrames, return figures)
# --------------------------------------------------------------------------------------------

def _row_chart(n_rows: int, ax=None):
    """(figure, axes, y positions top to bottom) for a chart with one horizontal row per item."""
    if ax is None:
        fig, ax = plt.subplots(figsize=(7.5, 0.45 * n_rows + 1.4))
    else:
        fig = ax.figure
    return fig, ax, np.arange(n_rows)[::-1]


def plot_summary(summary: pd.DataFrame, title: str | None = None, published: Mapping[str, float] | None = None,
                 xlabel: str = "test accuracy", percent: bool = True, ax=None):
    """Horizontal chart of config means with 95% CI error bars (from :func:`summarize`).

    ``published`` maps config names to a reference value drawn as a red cross.
    """
    scale = 100.0 if percent else 1.0
    fig, ax, y = _row_chart(len(summary), ax)
    err = summary["ci_half"].fillna(0).to_numpy() * scale
    ax.errorbar(summary["mean"] * scale, y, xerr=err, fmt="o", color="C0", capsize=4, label="mean, 95% CI")
    if published:
        pts = [(y[i], published[n]) for i, n in enumerate(summary.index) if n in published and published[n] is not None]
        if pts:
            ax.plot([p[1] * scale for p in pts], [p[0] for p in pts], "x", color="C3", ms=8, mew=2, label="published")
    ax.set_yticks(y, summary.index)
    ax.set_xlabel(xlabel + (" (%)" if percent else ""))
    lo, hi = ax.get_xlim()  # an interval may reach past the possible range with few seeds; show the range only
    ax.set_xlim(max(lo, 0.0), min(hi, 1.005 * scale))
    ax.grid(alpha=0.3, axis="x")
    ax.legend(loc="best", fontsize=8)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig


def plot_differences(comparisons: pd.DataFrame, title: str | None = None, percent: bool = True, ax=None):
    """Paired differences (b - a) with their 95% intervals from :func:`compare_steps`, one row per
    comparison, coloured by verdict (green: gain beyond noise, red: loss beyond noise, grey: within noise)."""
    scale = 100.0 if percent else 1.0
    fig, ax, y = _row_chart(len(comparisons), ax)
    for yi, (_, r) in zip(y, comparisons.iterrows()):
        beyond = r["verdict"] == "differs beyond noise"
        color = ("C2" if r["diff"] > 0 else "C3") if beyond else "0.5"
        lo, hi = r["ci_low"], r["ci_high"]
        err = [[(r["diff"] - lo) * scale], [(hi - r["diff"]) * scale]] if np.isfinite(lo) else None
        ax.errorbar([r["diff"] * scale], [yi], xerr=err, fmt="o", color=color, capsize=4)
    ax.axvline(0, color="k", lw=0.8)
    ax.set_yticks(y, [f"{a}  ->  {b}" if a else b for a, b in zip(comparisons["a"], comparisons["b"])], fontsize=8)
    ax.set_xlabel("paired difference" + (" (percentage points)" if percent else "") + ", 95% CI")
    ax.grid(alpha=0.3, axis="x")
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig


def plot_curves(df: pd.DataFrame, metrics: Sequence[str] = ("train_loss", "val_acc"), configs=None,
                band: str = "minmax", title: str | None = None, logy: Sequence[str] = ("train_loss",)):
    """Per-epoch curves, one line per config: mean over seeds and a spread band.

    ``band`` is "minmax" (range over seeds) or "std" (mean +- one standard deviation).
    """
    configs = list(dict.fromkeys(df["config"])) if configs is None else list(configs)
    metrics = list(metrics)
    fig, axes = plt.subplots(1, len(metrics), figsize=(5.2 * len(metrics), 3.8), squeeze=False)
    for ax, metric in zip(axes.flat, metrics):
        for i, name in enumerate(configs):
            g = df[(df["config"] == name) & (df["epoch"] > 0)].groupby("epoch")[metric]
            mean = g.mean()
            if mean.isna().all():
                continue
            lo, hi = (g.min(), g.max()) if band == "minmax" else (mean - g.std().fillna(0), mean + g.std().fillna(0))
            color = f"C{i % 10}"
            ax.plot(mean.index, mean.values, marker=".", color=color, label=name)
            ax.fill_between(mean.index, lo.values, hi.values, color=color, alpha=0.2, lw=0)
        ax.set(xlabel="epoch", ylabel=metric.replace("_", " "))
        if metric in logy:
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
    axes.flat[0].legend(fontsize=7)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_train_vs_val(df: pd.DataFrame, configs=None, title: str | None = None, val_label: str = "test"):
    """Train and validation accuracy per epoch for each config (mean over seeds, min-max band)."""
    configs = list(dict.fromkeys(df["config"])) if configs is None else list(configs)
    fig, axes = plt.subplots(1, len(configs), figsize=(4.8 * len(configs), 3.6), squeeze=False, sharey=True)
    for ax, name in zip(axes.flat, configs):
        g = df[(df["config"] == name) & (df["epoch"] > 0)].groupby("epoch")
        for col, label, color in (("train_acc", "train", "C0"), ("val_acc", val_label, "C1")):
            m = g[col].mean()
            ax.plot(m.index, m.values * 100, marker="o", color=color, label=label)
            ax.fill_between(m.index, g[col].min() * 100, g[col].max() * 100, color=color, alpha=0.2, lw=0)
        ax.set(title=name, xlabel="epoch")
        ax.grid(alpha=0.3)
        ax.legend()
    axes.flat[0].set_ylabel("accuracy (%)")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_fold_curves(cv: pd.DataFrame, title: str | None = None):
    """Learning curves of every fold of :func:`cross_validate`: loss and accuracy, train (dashed) and validation."""
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10.5, 3.8))
    for fold, g in cv.groupby("fold"):
        c = f"C{int(fold) % 10}"
        ax1.plot(g["epoch"], g["train_loss"], "--", color=c, alpha=0.8)
        ax1.plot(g["epoch"], g["val_loss"], "-", color=c, label=f"fold {fold}")
        ax2.plot(g["epoch"], g["train_acc"] * 100, "--", color=c, alpha=0.8)
        ax2.plot(g["epoch"], g["val_acc"] * 100, "-", color=c, label=f"fold {fold}")
    ax1.set(xlabel="epoch", ylabel="cross-entropy", title="loss (dashed: train, solid: validation)")
    ax2.set(xlabel="epoch", ylabel="accuracy (%)", title="accuracy (dashed: train, solid: validation)")
    for ax in (ax1, ax2):
        ax.grid(alpha=0.3)
    ax2.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_fold_box(cv: pd.DataFrame, column: str = "fold_acc", title: str | None = None, ax=None):
    """Box plot of the folds' final validation accuracy (one point per fold, per config)."""
    last = cv.groupby(["config", "fold"], sort=False)[column].last().reset_index()
    names = list(dict.fromkeys(last["config"]))
    if ax is None:
        fig, ax = plt.subplots(figsize=(1.8 + 1.6 * len(names), 3.8))
    else:
        fig = ax.figure
    data = [last.loc[last["config"] == n, column].to_numpy() * 100 for n in names]
    ax.boxplot(data, widths=0.5)
    ax.set_xticks(range(1, len(names) + 1), names)
    for i, d in enumerate(data, start=1):
        ax.scatter(np.full(len(d), i) + np.linspace(-0.08, 0.08, len(d)), d, color="C1", zorder=3, s=18)
    ax.set_ylabel("fold validation accuracy (%)")
    ax.grid(alpha=0.3, axis="y")
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig


def plot_lr_sweep(sweep: pd.DataFrame, metric: str = "val_acc", title: str | None = None, percent: bool = True):
    """Final ``metric`` against learning rate (log axis), one line per optimizer; error bars span seeds."""
    last = final_rows(sweep)
    scale = 100.0 if percent and metric.endswith("acc") else 1.0
    fig, ax = plt.subplots(figsize=(7.5, 4.2))
    for i, (opt, g) in enumerate(last.groupby("optimizer", sort=False)):
        s = g.groupby("lr_value")[metric].agg(["mean", "min", "max"]).sort_index()
        ax.errorbar(s.index, s["mean"] * scale, yerr=[(s["mean"] - s["min"]) * scale, (s["max"] - s["mean"]) * scale],
                    marker="o", capsize=3, color=f"C{i % 10}", label=opt)
    ax.set_xscale("log")
    ax.set(xlabel="learning rate", ylabel=metric.replace("_", " ") + (" (%)" if scale == 100 else ""))
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8, ncol=2)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig
