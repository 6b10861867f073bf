"""Repeated training runs: one run, many seeds, grids, cross-validation, saved models, ensembles, sweeps.

:func:`run` trains a :class:`TrainConfig` once for one seed and returns a tidy DataFrame (one row
per epoch); :func:`run_many` and :func:`run_grid` repeat it over seeds and configs, in ``workers``
processes or on a Ray cluster (:mod:`mnistlab.experiments.executors`). Every run is cached on disk
(:mod:`mnistlab.experiments.cache`): re-running a notebook reads results instead of retraining.

Examples
--------
>>> import mnistlab as ml, mnistlab.experiments as ex                          # doctest: +SKIP
>>> base = ml.TrainConfig("lenet5 vanilla", model="lenet5", optimizer="adam", lr=2e-4, normalize="unit")
>>> df = ex.run_many(base, seeds=range(5), workers=2)                          # doctest: +SKIP
>>> ex.summarize(df)                                                           # doctest: +SKIP
"""
from __future__ import annotations

import math
import time
import warnings
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from ..data.datasets import ImageSet, as_imageset, kfold_indices, load_dataset, train_val_split
from ..training.callbacks import StepProgress
from ..training.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from ..training.config import TrainConfig, as_config
from ..training.loop import TrainingError, evaluate, predict, resolve_device
from ..training.recipes import get_recipe, train_model
from . import cache as _cache
from .cache import cache_dir, config_hash, fingerprint
from .executors import map_tasks, step_progress
from .stats import failed_runs, final_rows

__all__ = ["run", "run_on", "run_gan", "run_gans", "run_many", "run_grid", "run_grids", "estimated_work", "cross_validate", "out_of_fold_probs", "load_model", "ensemble",
           "lr_sweep", "best_lrs", "with_settings", "load_runs"]

_FINAL_ORDER = ["val_loss", "val_acc", "test_loss", "test_acc", "test_n", "train_seconds", "run_seconds",
                "best_epoch", "stopped_epoch", "fold_loss", "fold_acc", "diverged"]
_HISTORY_COLUMNS = ["epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr", "seconds", "elapsed"]


def _datasets(cfg: TrainConfig) -> tuple[ImageSet, ImageSet | None, ImageSet]:
    """(train, per-epoch validation or None, test) for a config."""
    train = load_dataset(cfg.dataset, "train", limit=cfg.train_limit)
    test = load_dataset(cfg.dataset, "test", limit=cfg.test_limit)
    if cfg.val is None:
        return train, None, test
    if cfg.val == "test":
        return train, test, test
    train, val = train_val_split(train, cfg.val, seed=cfg.split_seed)
    return train, val, test


def _train(cfg: TrainConfig, train: ImageSet, val: ImageSet | None, seed: int, device, progress: bool,
           callbacks=()):
    """Train one model; return (model, history); early stopping's epochs are in ``history.attrs``."""
    return train_model(cfg, train, val, seed=seed, device=device, progress=progress, callbacks=list(callbacks))


def _epoch_or_nan(value) -> float:
    return float(value) if value is not None else np.nan


def _tidy(body: dict, name: str, cached: bool) -> pd.DataFrame:
    hist = pd.DataFrame(body["history"], columns=_HISTORY_COLUMNS)
    if hist.empty:  # untrained baseline (or a diverged run): one row at epoch 0
        hist = pd.DataFrame([{c: np.nan for c in _HISTORY_COLUMNS} | {"epoch": 0, "seconds": 0.0, "elapsed": 0.0}],
                            columns=_HISTORY_COLUMNS)
    hist = hist.astype({c: float for c in _HISTORY_COLUMNS}).astype({"epoch": int})
    out = pd.DataFrame({"config": name, "seed": int(body["seed"])}, index=hist.index)
    out = pd.concat([out, hist], axis=1)
    final = {k: (np.nan if v is None else v) for k, v in body["final"].items()}  # JSON null -> NaN
    for k in [k for k in _FINAL_ORDER if k in final] + sorted(k for k in final if k not in _FINAL_ORDER):
        out[k] = final[k]
    out["cached"] = cached
    out["hash"] = body["key"][:12]
    return out


def _artifacts_present(key: str, callbacks) -> bool:
    return all(_cache.artifact_path(key, cb.artifact_name).is_file() for cb in callbacks if cb.artifact_name)


def run(config, seed: int = 0, *, device="auto", cache: bool = True, keep_model: bool = False,
        progress: bool = False, callbacks=()) -> pd.DataFrame:
    """Train ``config`` once with ``seed`` (weights, data order, augmentation, dropout) and evaluate it.

    Parameters
    ----------
    config : TrainConfig or dict
    seed : int
    device : str
        "auto" (GPU when present), "cpu", "cuda", ...
    cache : bool
        Read and write the disk cache (see :func:`cache_dir`). A cache hit does not train.
    keep_model : bool
        Also store the trained weights (a checkpoint next to the result) for :func:`load_model`.
    progress : bool
        Show per-epoch progress bars.
    callbacks : sequence of Callback
        Passed to :func:`mnistlab.fit`; they do not enter the cache key. A callback with an
        ``artifact_name`` (a recorder) has what it gathered saved beside the cached result, and
        loaded back on a cache hit; a hit without the artifact retrains.

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
    recipe = cfg.recipe()
    callbacks = list(callbacks)
    key = config_hash(cfg, seed, recipe=recipe)
    if cache:
        body = _cache.read(key)
        model_ok = not keep_model or body is not None and (body["final"].get("diverged")
                                                           or (cache_dir() / f"{key}.pt").is_file())
        if body is not None and model_ok and (body["final"].get("diverged") or _artifacts_present(key, callbacks)):
            for cb in callbacks:
                if cb.artifact_name and not body["final"].get("diverged"):
                    cb.load_artifact(_cache.artifact_path(key, cb.artifact_name))
            return _tidy(body, cfg.name, cached=True)
    t0 = time.perf_counter()
    train, val, test = _datasets(cfg)
    try:
        model, history = _train(cfg, train, val, seed, device, progress, callbacks)
    except TrainingError as exc:  # diverged (NaN/inf loss): a result too, recorded as such
        final = {"test_loss": np.nan, "test_acc": np.nan, "test_n": len(test), "train_seconds": np.nan,
                 "run_seconds": time.perf_counter() - t0, "best_epoch": np.nan, "stopped_epoch": np.nan,
                 "diverged": True, "error": str(exc)}
        body = {"key": key, "seed": int(seed), "recipe": recipe, "history": {}, "final": final}
        if cache:
            _cache.write(key, body)
        return _tidy(body, cfg.name, cached=False)
    if cfg.val == "test" and not cfg.early_stopping and not history.empty:
        test_metrics = {"loss": float(history["val_loss"].iloc[-1]), "acc": float(history["val_acc"].iloc[-1]),
                        "n": len(test)}
    else:
        test_metrics = evaluate(model, test)
    final = {"test_loss": test_metrics["loss"], "test_acc": test_metrics["acc"], "test_n": int(test_metrics["n"]),
             "train_seconds": float(history["seconds"].sum()) if not history.empty else 0.0,
             "best_epoch": _epoch_or_nan(history.attrs.get("best_epoch")),
             "stopped_epoch": _epoch_or_nan(history.attrs.get("stopped_epoch")),
             "diverged": False}
    if cfg.epochs == 0 and val is not None:  # the untrained baseline still reports its validation metrics
        v = test_metrics if val is test else evaluate(model, val)
        final.update(val_loss=v["loss"], val_acc=v["acc"])
    final["run_seconds"] = time.perf_counter() - t0
    body = {"key": key, "seed": int(seed), "recipe": recipe, "history": history.to_dict(orient="list"),
            "final": final}
    if cache:
        # artifacts and weights first, the result last: a result on disk means its files are complete
        for cb in callbacks:
            if cb.artifact_name:
                cb.save_artifact(_cache.artifact_path(key, cb.artifact_name))
        if keep_model:
            save_checkpoint(cache_dir() / f"{key}.pt", model, config=cfg, metrics={"test_acc": final["test_acc"]},
                            history=history)
        _cache.write(key, body)
    return _tidy(body, cfg.name, cached=False)


def run_on(config, train, seed: int = 0, *, device="auto", cache: bool = True, progress: bool = False):
    """Train ``config`` on the labelled images handed in (not the ones it names), cached with its weights.

    For runs whose data no config field describes (a class subset, a relabelled task, a set
    built in the notebook): the cache key is :func:`config_hash` of the config, the seed and the
    data's :func:`fingerprint`; the trained model is kept as a :func:`mnistlab.save_checkpoint`
    file, so a second call loads it instead of training (and its key serves as ``init_from``).

    Parameters
    ----------
    config : TrainConfig, dict or str
        ``dataset`` and ``train_limit`` must agree with ``train`` (see :func:`mnistlab.fit`).
    train : ImageSet
    seed : int
    device, cache, progress
        As in :func:`run`.

    Returns
    -------
    (nn.Module, pandas.DataFrame, str)
        The trained model in eval mode on the CPU (``train_config`` set), its history, and the
        cache key (the ``init_from`` of runs that start from it).
    """
    cfg = get_recipe(config) if isinstance(config, str) else as_config(config)
    train = as_imageset(train, cfg.dataset, need_labels=True)
    key = config_hash(cfg, seed, kind="data", data=fingerprint(train))
    path = _cache.model_path(key)
    if cache and path.is_file():
        try:
            ckpt = load_checkpoint(path)
            return ckpt.model, ckpt.history, key
        except CheckpointError as exc:
            warnings.warn(f"Cached model {path.name} is damaged ({exc}); retraining.", RuntimeWarning, stacklevel=2)
            path.unlink(missing_ok=True)
    model, history = train_model(cfg, train, seed=seed, device=device, progress=progress)
    model.cpu().eval()
    if cache:
        save_checkpoint(path, model, config=cfg, history=history)
    return model, history, key


def _gan_cached(key: str, callbacks) -> bool:
    """Whether the cache holds GAN run ``key`` and every artifact of ``callbacks``: then :func:`run_gan` trains nothing."""
    return _cache.model_path(key).is_file() and _artifacts_present(key, callbacks)


def run_gan(config, data, *, seed: int = 0, callbacks=(), device="auto", progress: bool = True, cache: bool = True,
            resume_from=None):
    """Train the GAN a :class:`~mnistlab.training.gan_config.GANConfig` describes, or load the finished run.

    The one cache: the key is :func:`config_hash` of the config (kind ``"gan"``), the seed and a
    :func:`fingerprint` of ``data``; the run is kept as one ``save_checkpoint`` file (both nets, the
    EMA, the optimizers, the per-step history), loaded with ``weights_only=True``. Callbacks with an
    ``artifact_name`` (:class:`~mnistlab.GANSampleRecorder`,
    :class:`~mnistlab.studies.gan.EvaluationRecorder`) have what they gathered saved beside it, as
    :func:`run` does for classifiers: a later call loads it instead of training, and a cached run
    without a callback's artifact trains again. The artifacts are written before the checkpoint,
    so a checkpoint in the cache means its files are complete.

    Parameters
    ----------
    config : GANConfig or dict
    data : ImageSet
        Training images (their dataset must match ``config.dataset``).
    seed : int
    callbacks : sequence
        GAN callbacks. Those without an ``artifact_name`` see the training only when it runs.
    device : str
    progress : bool
    cache : bool
        Read and write the cache (default).
    resume_from : path or GANRun, optional
        A checkpoint of the same run stopped earlier (a shorter ``steps``, the same seed and data,
        e.g. the ``checkpoint`` of an earlier ``run_gan``): training continues from its step, and
        the callbacks continue from what they hold. The copy in the cache is trained on; the file
        named here is not changed.

    Returns
    -------
    GANRun
        Its ``checkpoint`` is the cached file (``None`` with ``cache=False``).
    """
    import os
    import shutil

    from ..training.gan import load_gan, train_gan
    from ..training.gan_config import as_gan_config

    config = as_gan_config(config)
    callbacks = list(callbacks)
    key = config_hash(config, seed, kind="gan", data=fingerprint(data))
    path = _cache.model_path(key)
    if cache and _gan_cached(key, callbacks):
        try:
            run = load_gan(path, device=resolve_device(device))
            for cb in callbacks:
                if cb.artifact_name:
                    cb.load_artifact(_cache.artifact_path(key, cb.artifact_name))
            return run
        except CheckpointError:
            warnings.warn(f"Cached GAN {path.name} could not be read; training again.", stacklevel=2)
    source = getattr(resume_from, "checkpoint", resume_from)
    if resume_from is not None and (source is None or not os.path.isfile(source)):
        raise FileNotFoundError(f"resume_from = {resume_from!r} names no checkpoint file: pass the checkpoint of "
                                "an earlier run (run_gan(...).checkpoint) or a path written by train_gan.")
    partial = path.with_name(f"{key}.partial.pt") if cache else None
    if partial is None and source is not None:
        import tempfile

        partial = Path(tempfile.mkdtemp()) / "resume.pt"
    if source is not None:
        shutil.copyfile(source, partial)
    run = train_gan(config, data, seed=seed, callbacks=callbacks, device=device, progress=progress,
                    checkpoint=partial, resume=source is not None)
    if not cache:
        run.checkpoint = None
        return run
    # artifacts first, the checkpoint last: a checkpoint in the cache means its artifacts are complete
    for cb in callbacks:
        if cb.artifact_name:
            cb.save_artifact(_cache.artifact_path(key, cb.artifact_name))
    os.replace(partial, path)
    run.checkpoint = path
    return run


def _gan_job(configs, data, callbacks, seed: int, device, sink) -> int:
    """One job of :func:`run_gans`, as executed by a worker: its configs in order, each resuming the one before."""
    callbacks = list(callbacks) + ([StepProgress(sink, every=20)] if sink is not None else [])
    previous = None
    for cfg in configs:
        previous = run_gan(cfg, data, seed=seed, callbacks=callbacks, device=device, progress=False,
                           resume_from=previous)
    return previous.steps


def run_gans(jobs: Mapping[str, Sequence], data, *, callbacks: Mapping[str, Sequence] | None = None, seed: int = 0,
             device="auto", progress: bool = True, workers: int = 1, threads: int | None = None) -> dict[str, list]:
    """Several :func:`run_gan` jobs side by side, one worker process each; their runs loaded here from the cache.

    A GAN's small batches keep a second torch thread half idle: on 2 cores two GANs of one thread
    each, side by side, finish sooner than one after the other on two threads each
    (``benchmarks/parallel_speed.py`` times both). Each job runs in one process; what its recorders gathered
    travels back through the cache (:func:`run_gan` keeps it beside each run), so after this call
    the ``callbacks`` hold what the last config of their job gathered, as if it had trained here.

    Parameters
    ----------
    jobs : dict of name -> sequence of GANConfig
        Each job's configs run in order, each one resuming from the checkpoint of the one before
        (``[cfg.but(steps=n // 2), cfg]`` stops halfway, checkpoints and resumes; the earlier
        configs must have fewer ``steps``).
    data : ImageSet
        The training images of every job.
    callbacks : dict of name -> sequence, optional
        Callbacks of each job. With ``workers > 1`` every one needs an ``artifact_name`` (the
        recorders of :mod:`mnistlab.training.gan` and :mod:`mnistlab.studies.gan` have one): a
        callback without one would see the training in another process only.
    seed, device
        As in :func:`run_gan`, for every job.
    progress : bool
        One bar over the steps of every job.
    workers : int
        1 trains the jobs here, one after the other. More starts that many worker processes
        (:func:`~mnistlab.experiments.map_tasks`), ``threads`` torch threads each (default
        ``cores // workers``). The thread count moves a GAN's numbers in the low bits, which a GAN
        amplifies: the same ``workers`` and ``threads`` give the same numbers.
    threads : int, optional

    Returns
    -------
    dict of name -> list of GANRun
        One :class:`~mnistlab.training.gan.GANRun` per config of each job, in order.

    Raises
    ------
    ValueError
        An empty ``jobs``, a job without configs, ``callbacks`` for a job that is not in ``jobs``,
        or (with ``workers > 1``) a callback without an ``artifact_name``.

    Examples
    --------
    >>> runs = ex.run_gans({"dcgan": [dcgan], "cdcgan": [cdcgan.but(steps=3000), cdcgan]}, train,
    ...                    callbacks={"dcgan": [snaps_u], "cdcgan": [snaps_c]}, workers=2)  # doctest: +SKIP
    >>> half, full = runs["cdcgan"]                                                        # doctest: +SKIP
    """
    from ..training.gan_config import as_gan_config

    callbacks = dict(callbacks or {})
    if not isinstance(jobs, Mapping) or not jobs:
        raise ValueError("jobs must be a non-empty dict of name -> list of GANConfig.")
    jobs = {name: [as_gan_config(c) for c in configs] for name, configs in jobs.items()}
    for name, configs in jobs.items():
        if not configs:
            raise ValueError(f"jobs[{name!r}] has no configs: give at least one GANConfig.")
    unknown = sorted(set(callbacks) - set(jobs))
    if unknown:
        raise ValueError(f"callbacks name jobs that are not in jobs: {unknown}; the jobs are {sorted(jobs)}.")
    callbacks = {name: list(callbacks.get(name, ())) for name in jobs}
    if workers > 1:
        blind = [type(cb).__name__ for cbs in callbacks.values() for cb in cbs if not getattr(cb, "artifact_name", None)]
        if blind:
            raise ValueError(f"{blind} have no artifact_name, so they cannot come back from a worker process: "
                             "use workers=1, or recorders that save what they gather.")
    data_key = fingerprint(data)

    def cached(cfg, cbs) -> bool:  # run_gan's own test for a hit
        return _gan_cached(config_hash(cfg, seed, kind="gan", data=data_key), cbs)

    # a job with any run missing goes to a worker (its cached runs are read there, not trained again)
    todo = [name for name, configs in jobs.items() if not all(cached(c, callbacks[name]) for c in configs)]
    # the steps to train: each missing run resumes from the run before it in its job
    total = sum(cfg.steps - (jobs[name][i - 1].steps if i else 0) for name in todo
                for i, cfg in enumerate(jobs[name]) if not cached(cfg, callbacks[name]))
    with step_progress(total, "GAN steps", progress and total > 0, workers=min(workers, max(len(todo), 1))) as sink:
        map_tasks(_gan_job, [(jobs[name], data, callbacks[name], seed, device, sink) for name in todo],
                  workers=workers, threads=threads, progress=False)
    # every run is in the cache now: read each job's runs here, in order, filling its callbacks
    return {name: [run_gan(cfg, data, seed=seed, callbacks=callbacks[name], device=device, progress=False)
                   for cfg in configs] for name, configs in jobs.items()}


def _run_task(cfg: TrainConfig, seed: int, device, cache: bool, keep_model: bool) -> pd.DataFrame:
    """One (config, seed) job, as executed by a worker."""
    return run(cfg, seed, device=device, cache=cache, keep_model=keep_model)


def _seeds(seeds) -> list[int]:
    seeds = [int(s) for s in seeds]
    if not seeds:
        raise ValueError("Give at least one seed.")
    return seeds


def run_many(config, seeds: Iterable[int] = range(5), *, device="auto", cache: bool = True, keep_model: bool = False,
             progress: bool = True, workers: int = 1, threads: int | None = None, executor: str = "process",
             address: str | None = None) -> pd.DataFrame:
    """:func:`run` for every seed; one tidy DataFrame (tqdm bar over seeds).

    ``workers``, ``threads``, ``executor`` and ``address`` are those of :func:`run_grid`.
    """
    cfg = as_config(config)
    return run_grid([cfg], seeds, device=device, cache=cache, keep_model=keep_model, progress=progress,
                    workers=workers, threads=threads, executor=executor, address=address)


def run_grid(configs: Sequence, seeds: Iterable[int] = range(5), *, device="auto", cache: bool = True,
             keep_model: bool = False, progress: bool = True, workers: int = 1, threads: int | None = None,
             executor: str = "process", address: str | None = None) -> pd.DataFrame:
    """:func:`run` for every config and seed (names must be distinct); one tidy DataFrame in config order.

    Parameters
    ----------
    configs : sequence of TrainConfig or dict
    seeds : iterable of int
    device, cache, keep_model, progress
        As in :func:`run` (``progress``: one bar over the runs).
    workers : int
        Run the configs x seeds in this many worker processes (torch threads split so that
        workers x threads <= cores; :data:`DEFAULT_WORKERS` is the measured best on 2 cores).
        1 runs in this process. Cached runs are read, not re-run.
    threads : int, optional
        Torch threads per run (see :func:`map_tasks`). Runs with the same ``threads`` give
        bit-identical numbers on any executor; ``workers=1, threads=1`` reproduces
        ``workers=2`` on a 2-core machine exactly.
    executor : "process" or "ray"
        ``"ray"`` sends the same runs to a Ray cluster (``pip install "mnistlab[ray]"``).
    address : str, optional
        Ray cluster address: ``"auto"`` after ``ray start --head``; default a local Ray instance.

    Notes
    -----
    Each cache key (recipe and seed) is trained by exactly one task: two configs that differ
    only in their name share one run (its rows appear under both names), so two workers never
    write the same cache entry. Entries are written atomically (a temporary file, then a rename).
    The workers take the runs longest first (:func:`estimated_work`), which only changes when
    each run finishes, not its numbers. :func:`run_grids` trains several grids in one pool.
    """
    return run_grids({"grid": (configs, seeds)}, device=device, cache=cache, keep_model=keep_model, progress=progress,
                     workers=workers, threads=threads, executor=executor, address=address)["grid"]


def run_grids(grids: Mapping[str, tuple], *, device="auto", cache: bool = True, keep_model: bool = False,
              progress: bool = True, workers: int = 1, threads: int | None = None, executor: str = "process",
              address: str | None = None) -> dict[str, pd.DataFrame]:
    """Several :func:`run_grid` calls trained together, in one pool, longest runs first.

    A grid of few long runs leaves workers idle at its end (three seeds on two workers: one core
    waits through the whole third run); handing the workers the runs of the next grid as well
    fills that gap. The numbers are those of separate :func:`run_grid` calls.

    Parameters
    ----------
    grids : dict of name -> (configs, seeds)
        Each value as the first two arguments of :func:`run_grid` (config names distinct within
        a grid). A run that two grids share is trained once.
    device, cache, keep_model, progress, workers, threads, executor, address
        As in :func:`run_grid`, for every run.

    Returns
    -------
    dict of name -> pandas.DataFrame
        What :func:`run_grid` returns for each grid, under the grid's name.

    Examples
    --------
    >>> out = ex.run_grids({"stopping": ([full, stopped], [0, 1, 2]), "strong": ([best], [0, 1, 2])},
    ...                    workers=2)                                                  # doctest: +SKIP
    >>> out["strong"]                                                                  # doctest: +SKIP
    """
    if not isinstance(grids, Mapping) or not grids:
        raise ValueError("grids must be a non-empty dict of name -> (configs, seeds).")
    owner: dict[str, int] = {}  # cache key -> index of the one task that trains it
    tasks, which = [], {}
    for grid, value in grids.items():
        if not (isinstance(value, tuple) and len(value) == 2):
            raise ValueError(f"grids[{grid!r}] must be a (configs, seeds) pair, not {type(value).__name__}.")
        configs, seeds = [as_config(c) for c in value[0]], _seeds(value[1])
        names = [c.name for c in configs]
        if len(set(names)) != len(names):
            raise ValueError(f"Config names must be distinct, got {names}" + (f" in grid {grid!r}." if len(grids) > 1 else "."))
        which[grid] = []
        for cfg in configs:
            for s in seeds:
                key = config_hash(cfg, s)
                if key not in owner:
                    owner[key] = len(tasks)
                    tasks.append((cfg, s, device, cache, keep_model))
                which[grid].append((owner[key], cfg.name))
    estimate: dict[str, float] = {}  # per config, seeds aside: the estimate builds its model once
    work = []
    for key, i in owner.items():  # in task order
        cfg = tasks[i][0]
        if cache and (cache_dir() / f"{key}.json").is_file():
            work.append(0.0)  # a cached run is only read
        else:
            recipe = config_hash(cfg, 0)
            if recipe not in estimate:
                estimate[recipe] = estimated_work(cfg)
            work.append(estimate[recipe])
    order = sorted(range(len(tasks)), key=lambda i: -work[i])  # stable: ties keep their order
    done = map_tasks(_run_task, [tasks[i] for i in order], workers=workers, threads=threads, executor=executor,
                     address=address, progress=progress, desc="runs")
    frames = [None] * len(tasks)
    for i, frame in zip(order, done):
        frames[i] = frame
    return {grid: pd.concat([frames[i].assign(config=name) for i, name in rows], ignore_index=True)
            for grid, rows in which.items()}


def estimated_work(config) -> float:
    """A run's training cost in forward FLOPs: images x epochs (or ``min_steps`` batches) x FLOPs per image.

    :func:`run_grids` hands the workers the runs in decreasing order of this estimate; nothing
    else uses it.

    Parameters
    ----------
    config : TrainConfig or dict

    Returns
    -------
    float
        0 for an untrained model (``epochs=0``); otherwise the images seen in training times
        (the network's forward FLOPs per image + 1), so a network without multiplications still
        counts its images.
    """
    from torch.utils.flop_counter import FlopCounterMode

    from ..models.registry import create_model

    cfg = as_config(config)
    if cfg.epochs == 0:
        return 0.0
    model = create_model(cfg.model, **dict(cfg.model_kwargs or {})).eval()  # the architecture; no weights needed
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(torch.zeros(2, 1, 28, 28))
    images = cfg.train_limit or 60_000  # every dataset here has 60,000 training images
    passes = max(cfg.epochs * images, (cfg.min_steps or 0) * cfg.batch_size)
    return float(passes) * (counter.get_total_flops() / 2 + 1.0)


def _cv_fold(cfg: TrainConfig, k: int, seed: int, fold: int, device, cache: bool, keep_model: bool, data=None,
             sink=None, steps: int = 0) -> dict:
    """Train fold ``fold`` of a k-fold split; the cached body (with out-of-fold probabilities if asked).

    ``data``: the images to split (default: the config's training set, ``train_limit`` applied);
    ``sink``: where a :class:`StepProgress` reports finished optimizer steps (``steps`` of them
    at once for a cached fold).
    """
    recipe = cfg.but(val=None, early_stopping=None)
    extra = {} if data is None else {"data": fingerprint(data)}
    key = config_hash(recipe, seed, kind="cv", k=k, fold=fold, **extra)
    body = _cache.read(key) if cache else None
    if body is not None and (not keep_model or "oof_probs" in body):
        if sink is not None:
            sink.put(steps)
        return body | {"_cached": True}
    t0 = time.perf_counter()
    train = load_dataset(cfg.dataset, "train", limit=cfg.train_limit) if data is None else data
    tr_idx, va_idx = kfold_indices(len(train), k=k, seed=seed)[fold]
    tr, va = train.subset(tr_idx), train.subset(va_idx)
    if data is not None:
        recipe = recipe.but(train_limit=None)
    callbacks = [] if sink is None else [StepProgress(sink)]
    model, history = _train(recipe, tr, va, seed, device, progress=False, callbacks=callbacks)
    final = {"fold_acc": float(history["val_acc"].iloc[-1]), "fold_loss": float(history["val_loss"].iloc[-1]),
             "train_seconds": float(history["seconds"].sum()), "run_seconds": time.perf_counter() - t0}
    body = {"key": key, "seed": int(seed), "recipe": recipe.recipe(), "history": history.to_dict(orient="list"),
            "final": final}
    if keep_model:  # the fold's predicted probabilities on its held-out part (for out_of_fold_probs)
        body["oof_index"] = [int(i) for i in va_idx]
        body["oof_probs"] = np.round(predict(model, va), 6).tolist()
    if cache:
        _cache.write(key, body)
    return body | {"_cached": False}


def _steps(cfg: TrainConfig, n: int) -> int:
    """Optimizer steps ``fit`` takes for ``cfg`` on ``n`` images (epochs raised to ``min_steps``)."""
    per_epoch = math.ceil(n / cfg.batch_size)
    return per_epoch * max(cfg.epochs, math.ceil((cfg.min_steps or 0) / per_epoch))


def cross_validate(config, k: int = 5, seed: int = 0, *, device="auto", cache: bool = True, progress: bool = True,
                   workers: int = 1, threads: int | None = None, executor: str = "process",
                   address: str | None = None) -> pd.DataFrame:
    """k-fold cross-validation on the training set (``train_limit`` applies; ``val`` is ignored).

    Fold ``i`` trains on the other k-1 folds with seed ``seed`` and is validated after every
    epoch on fold ``i`` (:func:`mnistlab.kfold_indices`, shuffled with ``seed``). ``workers``,
    ``threads``, ``executor`` and ``address`` as in :func:`run_grid`. The progress bar counts
    training steps (also in worker processes; per finished fold on Ray).

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
    bodies = _folds(cfg, k, seed, device, cache, False, progress, workers, threads, executor, address)
    frames = []
    for i, body in enumerate(bodies):
        df = _tidy(body, cfg.name, body["_cached"])
        df.insert(1, "fold", i)
        frames.append(df)
    return pd.concat(frames, ignore_index=True)


def _folds(cfg, k, seed, device, cache, keep, progress, workers, threads, executor, address, data=None) -> list[dict]:
    n = len(data) if data is not None else len(load_dataset(cfg.dataset, "train", limit=cfg.train_limit))
    folds = kfold_indices(n, k=k, seed=seed)
    steps = [_steps(cfg, len(tr)) for tr, _ in folds]
    with step_progress(sum(steps), f"{cfg.name}: {k}-fold CV, training steps", progress, workers, executor) as sink:
        tasks = [(cfg, k, seed, i, device, cache, keep, data, sink, steps[i]) for i in range(k)]
        return map_tasks(_cv_fold, tasks, workers=workers, threads=threads, executor=executor, address=address,
                         progress=progress and sink is None, desc=f"{cfg.name} CV")


def out_of_fold_probs(config, k: int = 5, seed: int = 0, *, data=None, device="auto", cache: bool = True,
                      progress: bool = True, workers: int = 1, threads: int | None = None,
                      executor: str = "process", address: str | None = None) -> np.ndarray:
    """Out-of-fold predicted probabilities of every training image, an array (N_train, classes).

    Image ``i``'s row comes from the model of the fold that held ``i`` out, so no model saw the
    image it scores (what confident learning needs). Folds are cached like
    :func:`cross_validate`'s; the other arguments are the same.

    Parameters
    ----------
    config : TrainConfig, dict or str
        The run of every fold (a recipe name is looked up with :func:`get_recipe`).
    k, seed : int
        Folds (:func:`mnistlab.kfold_indices` shuffled with ``seed``) and the seed of training.
    data : ImageSet, optional
        The labelled images to split, as given (e.g. with labels flipped on purpose); default the
        config's training set (``train_limit`` applied). Cached under a fingerprint of the data.
    device, cache, progress, workers, threads, executor, address
        As in :func:`run_grid`; the bar counts training steps and moves while each fold trains.

    Returns
    -------
    numpy.ndarray
        float32 (N, classes), each row summing to 1.
    """
    cfg = get_recipe(config) if isinstance(config, str) else as_config(config)
    if data is not None:
        data = as_imageset(data, cfg.dataset, need_labels=True)
        cfg = cfg.but(dataset=data.dataset)
    if cfg.epochs < 1:
        raise ValueError("out_of_fold_probs needs epochs >= 1.")
    bodies = _folds(cfg, k, seed, device, cache, True, progress, workers, threads, executor, address, data)
    n = sum(len(b["oof_index"]) for b in bodies)
    probs = None
    for b in bodies:
        p = np.asarray(b["oof_probs"], dtype=np.float32)
        probs = np.zeros((n, p.shape[1]), np.float32) if probs is None else probs
        probs[np.asarray(b["oof_index"])] = p
    return probs


def load_model(config, seed: int = 0, *, device="auto"):
    """The trained model of ``run(config, seed)``, from the cache (trained and stored if absent).

    Returns a model in eval mode on ``device`` with its ``preprocessing`` and ``train_config``
    set, ready for :func:`mnistlab.predict`.
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
    seeds = _seeds(seeds)
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
             seeds: Iterable[int] = (0,), *, widen: int = 0, factor: float = 3.0, metric: str = "val_acc",
             device="auto", cache: bool = True, progress: bool = True, workers: int = 1,
             threads: int | None = None, executor: str = "process", address: str | None = None) -> pd.DataFrame:
    """Train ``config`` with every optimizer at every learning rate; tidy DataFrame with ``optimizer`` and ``lr_value``.

    Parameters
    ----------
    lrs : dict or sequence
        One grid for all optimizers, or a grid per optimizer.
    widen : int
        Up to this many times, an optimizer whose best rate (by ``metric``) lies on the edge of
        its grid gets one more rate beyond that edge (x ``factor`` or / ``factor``); earlier runs
        come from the cache. The final grid of each optimizer is the set of its ``lr_value``s.
    factor : float
    metric : str
        What "best" means for widening (mean over seeds of the last epoch; higher is better).
    seeds, device, cache, progress, workers, threads, executor, address
        As in :func:`run_grid`.
    """
    cfg = as_config(config)
    grids = {opt: sorted(float(v) for v in (lrs[opt] if isinstance(lrs, Mapping) else lrs)) for opt in optimizers}
    for round_ in range(widen + 1):
        jobs = [cfg.but(name=f"{opt} lr={lr:g}", optimizer=opt, lr=lr) for opt in optimizers for lr in grids[opt]]
        df = run_grid(jobs, seeds, device=device, cache=cache, progress=progress, workers=workers, threads=threads,
                      executor=executor, address=address)
        meta = pd.DataFrame([{"config": j.name, "optimizer": j.optimizer, "lr_value": j.lr} for j in jobs])
        df = df.merge(meta, on="config", how="left")
        best = best_lrs(df, metric)
        edges = {o: best[o] for o in optimizers if o in best and best[o] in (grids[o][0], grids[o][-1])}
        if not edges or round_ == widen:
            return df
        for o, b in edges.items():
            grids[o] = sorted(set(grids[o]) | {b * factor if b == grids[o][-1] else b / factor})
    return df


def best_lrs(sweep: pd.DataFrame, metric: str = "val_acc", mode: str = "max", chance: float = 0.1) -> pd.Series:
    """Best learning rate per optimizer from :func:`lr_sweep` (mean of ``metric`` over seeds, last epoch).

    Runs whose metric is NaN (diverged) never win. For an accuracy ``metric``, rates where a run
    failed (ended at chance level, see :func:`failed_runs`) are left out too, unless every rate of
    that optimizer failed (then the best of them is returned, so a grid of failures still names one).
    """
    last = final_rows(sweep)
    if metric.endswith("acc"):
        failed = failed_runs(sweep, metric, chance=chance).to_numpy()
        bad = set(zip(last.loc[failed, "optimizer"], last.loc[failed, "lr_value"]))
        keep = [(o, lr) not in bad or all((o, v) in bad for v in last.loc[last["optimizer"] == o, "lr_value"])
                for o, lr in zip(last["optimizer"], last["lr_value"])]
        last = last[keep]
    means = last.groupby(["optimizer", "lr_value"], sort=False)[metric].mean().dropna()
    pick = means.groupby(level=0, sort=False).idxmax() if mode == "max" else means.groupby(level=0, sort=False).idxmin()
    return pd.Series({opt: lr for opt, lr in pick.values}, name="best_lr")



def with_settings(df: pd.DataFrame, configs: Sequence, fields: Sequence[str]) -> pd.DataFrame:
    """``df`` with columns holding each run's config ``fields`` (looked up by config name).

    Examples
    --------
    >>> runs = ex.with_settings(ex.run_grid(cfgs), cfgs, ["model", "train_limit"])   # doctest: +SKIP
    """
    configs = [as_config(c) for c in configs]
    table = pd.DataFrame([{"config": c.name, **{f: getattr(c, f) for f in fields}} for c in configs])
    unknown = sorted(set(df["config"]) - set(table["config"]))
    if unknown:
        raise ValueError(f"No config given for the runs {unknown}.")
    return df.drop(columns=[f for f in fields if f in df.columns]).merge(table, on="config", how="left")


def load_runs(path) -> pd.DataFrame:
    """Read runs saved as CSV (``Figures.save_table(run_grid(...), name)``) back into the tidy layout.

    The leading index column is dropped and ``seed``/``epoch`` come back as integers and
    ``cached``/``diverged`` as booleans, so :func:`summarize`, :func:`compare` and the plots
    give the same answers as on the frame that was saved.

    Raises
    ------
    FileNotFoundError
        With the path and how to produce it (a full run of the notebook).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No saved runs at {path}: run the notebook once with RESULTS='recompute' "
                                "(`mnistlab figures`) to write them.")
    df = pd.read_csv(path)
    df = df.drop(columns=[c for c in df.columns if c.startswith("Unnamed:")])
    if not {"config", "seed", "epoch"} <= set(df.columns):
        raise ValueError(f"{path} does not hold tidy runs (columns config, seed, epoch); it has {list(df.columns)}.")
    df = df.astype({"seed": int, "epoch": int, "config": str})
    for col in ("cached", "diverged"):
        if col in df.columns:
            df[col] = df[col].map(lambda v: str(v).lower() == "true" if pd.notna(v) else False).astype(bool)
    return df
