"""Transfer learning: what a network trained on one dataset is worth on another when labels are few.

This module computes results from runs of the harness; the pieces it uses live below it:
model surgery (:mod:`mnistlab.models.surgery`: freeze, replace the head, rates per part), the
ImageNet ResNet-18 (:mod:`mnistlab.models.resnet`), few-label subsets (:mod:`mnistlab.data.subsets`),
the run description (:class:`mnistlab.TrainConfig`: ``freeze``, ``head_lr``, ``body_lr``,
``min_steps``), the loop (:func:`mnistlab.fit`), the cache and its content hash
(:mod:`mnistlab.experiments.cache`) and the thread limiter / worker processes
(:mod:`mnistlab.experiments.executors`). Those names are re-exported here for the notebook.

Experiments
    :data:`TRANSFER` is the run every strategy trains with (a :class:`TrainConfig`; its budget is
    at least one pass over the labelled images and ``min_steps * sqrt(images / 100)`` optimizer
    steps, so "all labels" means every label and few labels are not also few updates); :func:`strategy_config` derives
    each strategy's config from it; :func:`run_transfer` runs the strategies (frozen features,
    fine-tuning, training from scratch, linear probe, zero-shot) over labels per class and seeds
    and returns one tidy row per run; :func:`summarize_transfer` gives means with 95%
    t-intervals, :func:`transfer_gains` paired tests against a baseline (the same seed draws the
    same labelled subset and head initialisation for every strategy), and
    :func:`when_transfer_pays` turns those numbers into sentences. :func:`learning_curves` and
    :func:`feature_tsne` give the data of the remaining figures. Source networks are trained by
    :func:`mnistlab.experiments.run_on` (cached like every run).

Every run is cached in the experiment cache under :func:`~mnistlab.experiments.cache.config_hash`
of its config, seed, strategy and the fingerprints of the source weights and the data. On the CPU,
training runs with one torch thread per run by default (``threads=1``): the networks are small and
the batches 32 images, where a second thread gains little; ``workers=2`` runs two at once.

This module computes only; it never imports matplotlib (see :mod:`mnistlab.viz.transfer`).
"""
from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, field
from typing import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn
from tqdm.auto import tqdm

from ..data.datasets import ImageSet
from ..data.subsets import (DIGITS_SOURCE, DIGITS_TARGET, digits_split, few_label_indices, few_labels,  # noqa: F401
                            n_classes, select_classes)
from ..experiments import cache as _cache
from ..experiments.cache import config_hash, fingerprint
from ..experiments.executors import map_tasks
from ..models.registry import create_model, preprocessing_of
from ..models.resnet import (RESNET18, GreyToImageNet, imagenet_resnet18, imagenet_weights_available,  # noqa: F401
                             imagenet_weights_hint, imagenet_weights_path)
from ..models.surgery import (freeze, frozen_layers, head_name, head_outputs, layer_names, param_groups,  # noqa: F401
                              replace_head, unfreeze)
from ..training.config import EVAL_BATCH_SIZE, TrainConfig, as_config
from ..training.loop import evaluate, features, fit, resolve_device

__all__ = [
    "FROZEN", "FINE_TUNE", "SCRATCH", "LINEAR_PROBE", "ZERO_SHOT", "STRATEGIES", "TRANSFER",
    "DIGITS_SOURCE", "DIGITS_TARGET", "RESNET18",
    "layer_names", "head_name", "freeze", "unfreeze", "frozen_layers", "replace_head", "param_groups",
    "few_label_indices", "few_labels", "select_classes", "digits_split", "linear_probe", "zero_shot",
    "strategy_config", "run_budget", "BUDGET_IMAGES", "transfer_model", "run_transfer", "summarize_transfer", "transfer_gains",
    "when_transfer_pays", "learning_curves", "FeatureMaps", "feature_tsne",
    "GreyToImageNet", "imagenet_weights_path", "imagenet_weights_available", "imagenet_weights_hint",
    "imagenet_resnet18",
]

FROZEN = "frozen"
FINE_TUNE = "fine-tune"
SCRATCH = "scratch"
LINEAR_PROBE = "linear probe"
ZERO_SHOT = "zero-shot"
STRATEGIES = (FROZEN, FINE_TUNE, SCRATCH, LINEAR_PROBE)
"""The trained strategies; :data:`ZERO_SHOT` (the source applied as is) needs the same classes."""
_ALL_STRATEGIES = (*STRATEGIES, ZERO_SHOT)
_KIND = "transfer-3"  # cache kind of the runs; 3: TrainConfig runs, a budget that grows with the data

TRANSFER = TrainConfig(
    name="transfer", description="target runs of every strategy: Adam, batches of at most 32, one pass over the "
    "labelled images and about 100 * sqrt(images / 100) steps (at least 100); scratch at lr, a new head at head_lr, pretrained layers at body_lr",
    optimizer="adam", lr=2e-3, head_lr=2e-3, body_lr=5e-4, batch_size=32, epochs=1, min_steps=100, val=None)
"""How every strategy trains on the target (change it with ``TRANSFER.but(...)``).

``epochs`` passes over the labelled images, raised to at least ``min_steps`` optimizer steps and
to the whole epochs that fit in ``min_steps * sqrt(images / 100)`` (:func:`run_budget`): the budget
grows with the data, and "all" labels means every label is seen at least ``epochs`` times. ``lr`` trains from scratch; ``head_lr`` the new head; ``body_lr`` the pretrained
layers when fine-tuning; ``batch_size`` is the largest batch (each epoch is cut into equal batches:
on 100 images, 4 of 25 rather than 32 + 32 + 32 + 4, whose last batch of 4 made BatchNorm's running
statistics so noisy that training from scratch lost up to 25 points)."""


# --------------------------------------------------------------------------------------------
# Baselines without gradient steps: linear probe and zero-shot
# --------------------------------------------------------------------------------------------

def _probe(x_train, y_train, x_test, y_test, C: float, max_iter: int) -> dict:
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import log_loss
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from threadpoolctl import threadpool_limits

    t0 = time.perf_counter()
    clf = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=max_iter))
    # One BLAS thread: these problems are small, and on a busy machine spinning threads made each fit 10x slower.
    with threadpool_limits(limits=1):
        clf.fit(x_train, y_train)
        proba = clf.predict_proba(x_test)
    acc = float((clf.classes_[proba.argmax(1)] == y_test).mean())
    return {"acc": acc, "loss": float(log_loss(y_test, proba, labels=clf.classes_)), "n": int(len(y_test)),
            "seconds": time.perf_counter() - t0}


def linear_probe(model: nn.Module, train: ImageSet, test: ImageSet, *, C: float = 1.0, max_iter: int = 1000,
                 device=None, batch_size: int = EVAL_BATCH_SIZE) -> dict:
    """Accuracy of a logistic regression on the frozen features of ``model`` (a linear probe).

    Features come from ``model.features`` (normalised as the model declares), are standardised,
    and scikit-learn's ``LogisticRegression`` (L-BFGS, deterministic) is fitted on ``train``.

    Parameters
    ----------
    model : nn.Module
        Any model with a ``features`` method; it is not changed.
    train, test : ImageSet
        Labelled training and test images.
    C : float
        Inverse L2 regularisation strength of the logistic regression.
    max_iter : int
    device, batch_size
        Where and in which batches features are computed.

    Returns
    -------
    dict
        ``acc``, ``loss`` (log-loss on ``test``), ``n`` (test images) and ``seconds`` (fit time).
    """
    x_train = features(model, train, batch_size=batch_size, device=device)
    x_test = features(model, test, batch_size=batch_size, device=device)
    return _probe(x_train, train.labels.numpy(), x_test, test.labels.numpy(), C, max_iter)


def zero_shot(model: nn.Module, test: ImageSet, device=None) -> dict:
    """The source model applied as is (no training) to ``test``: ``{"loss", "acc", "n"}``.

    Parameters
    ----------
    model : nn.Module
        Evaluated with the preprocessing it declares (its source's normalisation).
    test : ImageSet
        Labels must be classes of the model.
    device : str, optional

    Raises
    ------
    ValueError
        The test labels go beyond the model's outputs (the tasks do not share their classes).
    """
    n_out = head_outputs(model)
    if len(test) and int(test.labels.max()) >= n_out:
        raise ValueError(f"Zero-shot needs the source's classes: the model has {n_out} outputs but the test labels "
                         f"reach {int(test.labels.max())}.")
    return evaluate(model, test, device=device)


# --------------------------------------------------------------------------------------------
# One transfer run
# --------------------------------------------------------------------------------------------

def _normalize_of(model: nn.Module, dataset: str):
    """The ``normalize`` value of a config that trains ``model`` as it declares (a "standard" one on
    another dataset takes that dataset's constants, what :func:`mnistlab.fit` does with "standard")."""
    pre = preprocessing_of(model, dataset)
    return pre.spec if pre.spec in ("standard", "unit", "symmetric") else [float(pre.mean), float(pre.std)]


BUDGET_IMAGES = 100
"""Runs on up to this many labelled images take ``min_steps`` steps; larger ones ``min_steps * sqrt(n / 100)``."""


def run_budget(config: TrainConfig, n_train: int) -> tuple[int, int, int]:
    """``(epochs, batch_size, steps)`` of a run of ``config`` on ``n_train`` images: a budget that grows with the data.

    Batches are equal and at most ``config.batch_size``. The run takes at least ``config.epochs``
    passes (so "all labels" sees every label), at least ``min_steps`` steps, and as many more whole
    epochs as fit in ``min_steps * sqrt(n_train / 100)`` steps (:data:`BUDGET_IMAGES`): with the
    defaults 100 steps on 100 images, 320 (8 passes) on scikit-learn's 1,257 digits, 939 (3 passes)
    on 10,000 images and one pass (1,875 steps of 32) over MNIST's 60,000. A fixed step count (the
    old cap of 400) left the large pools under-trained, a fixed epoch count the small ones.

    Parameters
    ----------
    config : TrainConfig
    n_train : int

    Returns
    -------
    (int, int, int)
    """
    if n_train < 1:
        raise ValueError("A transfer run needs at least one labelled image.")
    batch = math.ceil(n_train / math.ceil(n_train / config.batch_size))
    per_epoch = math.ceil(n_train / batch)
    least = config.min_steps or 0
    wanted = least * math.sqrt(max(1.0, n_train / BUDGET_IMAGES))
    # at least min_steps (rounded up to whole epochs); the growth beyond it in whole epochs, rounded down
    epochs = max(config.epochs, math.ceil(least / per_epoch), math.floor(wanted / per_epoch))
    return epochs, batch, epochs * per_epoch


def strategy_config(strategy: str, source: nn.Module, train: ImageSet, config: TrainConfig = TRANSFER) -> TrainConfig:
    """The :class:`TrainConfig` one strategy trains with on ``train``, derived from ``config``.

    Parameters
    ----------
    strategy : {"frozen", "fine-tune", "scratch"}
        "frozen": ``freeze="features"`` at ``head_lr``; "fine-tune": every layer, the head at
        ``head_lr`` and the rest at ``body_lr``; "scratch": every layer at ``lr``.
    source : nn.Module
        Its declared normalisation becomes the config's ``normalize``.
    train : ImageSet
        The labelled target images: the config's ``dataset`` and its equal batches.
    config : TrainConfig

    Returns
    -------
    TrainConfig
    """
    if strategy not in (FROZEN, FINE_TUNE, SCRATCH):
        raise ValueError(f"A trained strategy is 'frozen', 'fine-tune' or 'scratch', not {strategy!r} "
                         "(see linear_probe and zero_shot for the others).")
    epochs, batch, _ = run_budget(config, len(train))
    common = dict(name=f"{config.name}: {strategy}", dataset=train.dataset, batch_size=batch, epochs=epochs,
                  min_steps=None,
                  normalize=_normalize_of(source, train.dataset), train_limit=None, init_from=None, keep_head=False)
    if strategy == SCRATCH:
        return config.but(**common, freeze=None, head_lr=None, body_lr=None)
    if strategy == FROZEN:
        return config.but(**common, freeze="features", lr=config.head_lr or config.lr, head_lr=None, body_lr=None)
    return config.but(**common, freeze=None)


def _scratch_model(source: nn.Module, classes: int, seed: int, dataset: str, scratch=None) -> nn.Module:
    """A freshly initialised network for the "scratch" strategy: ``scratch`` or the source's architecture."""
    if callable(scratch):
        return scratch(seed=seed, num_classes=classes)
    if scratch is not None:
        name, kwargs = scratch
        return create_model(name, seed=seed, dataset=dataset, **{**dict(kwargs), "num_classes": classes})
    config = getattr(source, "config", None) or {}
    if config.get("name") == RESNET18:
        kw = config.get("kwargs", {})
        return imagenet_resnet18(classes, size=kw.get("size", 32), pretrained=False, seed=seed, dataset=dataset)
    if "name" not in config:
        raise ValueError("The source model does not say its architecture (no .config from mnistlab.create_model); "
                         "pass scratch=(model_name, kwargs) or a callable(seed=..., num_classes=...).")
    return create_model(config["name"], seed=seed, dataset=dataset,
                        **{**config.get("kwargs", {}), "num_classes": classes})


def _start_model(source: nn.Module, train: ImageSet, strategy: str, seed: int, scratch, keep_head: bool) -> nn.Module:
    """The network a strategy starts from: a copy of the source (new head unless kept), or a fresh one."""
    classes = n_classes(train)
    if strategy == SCRATCH:
        return _scratch_model(source, classes, seed, train.dataset, scratch)
    model = copy.deepcopy(source)
    unfreeze(model)
    if not (strategy == FINE_TUNE and keep_head and head_outputs(model) == classes):
        replace_head(model, classes, seed=seed)
    return model


def transfer_model(source: nn.Module, train: ImageSet, strategy: str, *, seed: int = 0,
                   config: TrainConfig = TRANSFER, val: ImageSet | None = None, epochs: int | None = None,
                   scratch=None, keep_head: bool = False, device="auto",
                   progress: bool = False) -> tuple[nn.Module, pd.DataFrame]:
    """Train one target model with ``strategy`` and return it with its :func:`mnistlab.fit` history.

    Parameters
    ----------
    source : nn.Module
        The trained source network (not changed: strategies work on a copy).
    train : ImageSet
        The labelled target images (labels 0..C-1).
    strategy : {"frozen", "fine-tune", "scratch"}
        See :func:`strategy_config`.
    seed : int
        Seeds the new head, the scratch network, the data order and dropout.
    config : TrainConfig
        The base run (default :data:`TRANSFER`).
    val : ImageSet, optional
        Evaluated after every epoch (learning curves).
    epochs : int, optional
        Exactly this many epochs (no ``min_steps``), e.g. for learning curves.
    scratch : (name, kwargs) or callable, optional
        The architecture trained from scratch; default: the source's.
    keep_head : bool
        Fine-tuning starts from the source's head when it has as many outputs as the target has
        classes (e.g. MNIST -> another digit set); frozen features always get a new head.
    device : str
    progress : bool

    Returns
    -------
    (nn.Module, pandas.DataFrame)
    """
    cfg = strategy_config(strategy, source, train, as_config(config))
    if epochs is not None:
        cfg = cfg.but(epochs=int(epochs), min_steps=None)
    model = _start_model(source, train, strategy, seed, scratch, keep_head)
    history = fit(model, train, val, cfg, device=device, seed=seed, progress=progress)
    return model, history


def _trained_run(source, train, test, strategy, seed, config, scratch, keep_head, device) -> dict:
    """One trained run of :func:`run_transfer` (module level: it may run in a worker process)."""
    t0 = time.perf_counter()
    model, hist = transfer_model(source, train, strategy, seed=seed, config=config, scratch=scratch,
                                 keep_head=keep_head, device=device)
    r = evaluate(model, test, batch_size=config.eval_batch_size)
    _, batch, _ = run_budget(config, len(train))
    return {"test_acc": r["acc"], "test_loss": r["loss"], "train_seconds": float(hist["seconds"].sum()),
            "epochs": len(hist), "steps": len(hist) * math.ceil(len(train) / batch),
            "run_seconds": time.perf_counter() - t0}


# --------------------------------------------------------------------------------------------
# The experiment driver
# --------------------------------------------------------------------------------------------

def _labels_name(per_class) -> str:
    return "all" if per_class is None else str(int(per_class))


def _check_strategies(strategies) -> list[str]:
    strategies = list(strategies)
    unknown = [s for s in strategies if s not in _ALL_STRATEGIES]
    if unknown or not strategies:
        raise ValueError(f"Unknown strategies {unknown or strategies}; choose from {list(_ALL_STRATEGIES)}.")
    return strategies


def _scratch_name(scratch):
    return scratch if not callable(scratch) else getattr(scratch, "__qualname__", repr(scratch))


def run_transfer(source: nn.Module, train: ImageSet, test: ImageSet, *, task: str = "transfer",
                 strategies: Sequence[str] = STRATEGIES, labels_per_class: Sequence[int | None] = (10, 100, 1000, None),
                 seeds: Iterable[int] = range(5), config: TrainConfig = TRANSFER, keep_head: bool = False,
                 scratch=None, device="auto", cache: bool = True, progress: bool = True, workers: int = 1,
                 threads: int | None = 1) -> pd.DataFrame:
    """Every strategy x labels per class x seed on one source -> target pair; one tidy row per run.

    The same seed draws the same labelled subset (:func:`few_labels`) and the same new-head
    initialisation for every strategy, so strategies can be compared seed by seed
    (:func:`transfer_gains`). Runs are cached (see the module docstring).

    Parameters
    ----------
    source : nn.Module
        The trained source network.
    train : ImageSet
        The target's labelled pool (labels 0..C-1); subsets are drawn from it.
    test : ImageSet
        The target's test images.
    task : str
        Name of the pair, e.g. ``"Fashion-MNIST → MNIST"``.
    strategies : sequence of str
        From :data:`STRATEGIES` and :data:`ZERO_SHOT` (the source applied as is: only when the
        classes are the same; it does not depend on labels or seed).
    labels_per_class : sequence of int or None
        ``None`` is the whole pool ("all").
    seeds : iterable of int
    config : TrainConfig
        The base run of the trained strategies (default :data:`TRANSFER`; see :func:`strategy_config`).
    keep_head : bool
        Fine-tuning keeps the source's head when the classes are the same (see :func:`transfer_model`).
    scratch : (name, kwargs) or callable, optional
        The architecture of "scratch"; default: the source's.
    device : str
    cache : bool
    progress : bool
        One tqdm bar over the runs.
    workers : int
        Trained runs in this many worker processes (:func:`mnistlab.experiments.map_tasks`); 1: here.
    threads : int or None
        torch CPU threads of each trained run (restored afterwards); ``None`` leaves torch's
        setting. One by default: these are small networks on batches of 32.

    Returns
    -------
    pandas.DataFrame
        Columns ``task``, ``strategy``, ``labels`` ("10", ..., "all"; "0" for zero-shot),
        ``per_class`` (labels per class as a number; the mean for "all"), ``n_train``, ``seed``,
        ``epochs``, ``steps``, ``test_acc``, ``test_loss``, ``train_seconds``, ``config``
        (``"<strategy> | <labels>"``, what :func:`mnistlab.experiments.stats.summarize` groups by)
        and ``cached``.
    """
    config = as_config(config)
    strategies = _check_strategies(strategies)
    seeds = [int(s) for s in seeds]
    labels_per_class = list(labels_per_class)
    if not seeds or not labels_per_class:
        raise ValueError("run_transfer needs at least one seed and one labels-per-class value.")
    classes = n_classes(train)
    dev_type = resolve_device(device).type
    base = {"source": fingerprint(source), "train": fingerprint(train), "test": fingerprint(test),
            "device": dev_type, "scratch": _scratch_name(scratch), "keep_head": bool(keep_head)}
    rows: list[dict] = []
    if ZERO_SHOT in strategies:
        key = config_hash(config, 0, kind=_KIND, strategy=ZERO_SHOT, **base)
        body = _cache.read(key) if cache else None
        cached = body is not None
        if body is None:
            t0 = time.perf_counter()
            r = zero_shot(source, test, device=device)
            body = {"key": key, "test_acc": r["acc"], "test_loss": r["loss"], "train_seconds": 0.0,
                    "run_seconds": time.perf_counter() - t0}
            if cache:
                _cache.write(key, body)
        for s in seeds:
            rows.append({"strategy": ZERO_SHOT, "labels": "0", "per_class": 0.0, "n_train": 0, "seed": s,
                         "epochs": 0, "steps": 0, **{k: body[k] for k in ("test_acc", "test_loss", "train_seconds")},
                         "cached": cached})
    jobs = [(k, s, st) for k in labels_per_class for s in seeds for st in strategies if st != ZERO_SHOT]
    bodies: dict[int, dict] = {}
    sizes: dict[int, int] = {}
    todo = []
    bar = tqdm(total=len(jobs), desc=task, unit="run", disable=not progress)
    features_of: dict = {}  # the source's features, computed here once per pool; the probes' fits go to the workers
    all_labels_probe, same_probe = None, []  # a probe on all labels is the same for every seed: fitted once
    for i, (per_class, seed, strategy) in enumerate(jobs):
        idx = torch.arange(len(train)) if per_class is None else few_label_indices(train, per_class, seed)
        sizes[i] = len(idx)
        key = config_hash(config, seed, kind=_KIND, strategy=strategy, labels=_labels_name(per_class), **base)
        body = _cache.read(key) if cache else None
        if body is not None:
            bodies[i] = body | {"cached": True}
            bar.update()
        elif strategy == LINEAR_PROBE and per_class is None and all_labels_probe is not None:
            same_probe.append((i, key))
        elif strategy == LINEAR_PROBE:
            if per_class is None:
                all_labels_probe = i
            todo.append((i, key, ("probe", _probe_args(source, train, test, idx, config, device, features_of)), 0))
        else:
            sub = train.subset(idx)
            todo.append((i, key, ("trained", (source, sub, test, strategy, seed, config, scratch, keep_head, device)),
                         run_budget(config, len(sub))[2]))
    bar.close()
    todo.sort(key=lambda t: -t[3])  # the longest runs first; the probes' short fits last fill the workers' idle ends
    outs = map_tasks(_transfer_task, [t[2] for t in todo], workers=workers,
                     threads=threads if dev_type == "cpu" else None, progress=progress, desc=f"{task}: training")
    done = {i: body for (i, *_), body in zip(todo, outs)}
    done.update({i: done[all_labels_probe] for i, _ in same_probe})
    keys = {i: key for i, key, *_ in todo} | dict(same_probe)
    for i, body in done.items():
        body = body | {"key": keys[i]}
        if cache:
            _cache.write(keys[i], body)
        bodies[i] = body | {"cached": False}
    for i, (per_class, seed, strategy) in enumerate(jobs):
        body = bodies[i]
        rows.append({"strategy": strategy, "labels": _labels_name(per_class),
                     "per_class": float(per_class) if per_class is not None else len(train) / max(1, classes),
                     "n_train": sizes[i], "seed": seed, "epochs": int(body["epochs"]), "steps": int(body["steps"]),
                     "test_acc": body["test_acc"], "test_loss": body["test_loss"],
                     "train_seconds": body["train_seconds"], "cached": body["cached"]})
    df = pd.DataFrame(rows)
    df.insert(0, "task", task)
    df["config"] = df["strategy"] + " | " + df["labels"]
    return df[["task", "strategy", "labels", "per_class", "n_train", "seed", "epochs", "steps", "test_acc",
               "test_loss", "train_seconds", "config", "cached"]]


def _probe_args(source, train, test, idx, config, device, memo) -> tuple:
    """The arguments of one linear probe's fit (:func:`_probe`): the source's features, computed once per pool."""
    if "train" not in memo:
        model = copy.deepcopy(source)
        model.preprocessing = _preprocessing_for(source, train.dataset)
        memo["train"] = features(model, train, batch_size=config.eval_batch_size, device=device)
        memo["test"] = features(model, test, batch_size=config.eval_batch_size, device=device)
    # copies, not views of torch's memory: pickling a tensor for a worker moves its storage to shared memory,
    # which would leave a NumPy view of the old storage pointing at freed memory
    return (memo["train"][idx.numpy()], train.labels[idx].numpy().copy(), memo["test"], test.labels.numpy().copy(),
            PROBE_C, PROBE_MAX_ITER)


def _transfer_task(kind: str, args: tuple) -> dict:
    """One run of :func:`run_transfer` (module level: it may run in a worker process): a probe's fit or a trained run."""
    if kind == "trained":
        return _trained_run(*args)
    r = _probe(*args)
    return {"test_acc": r["acc"], "test_loss": r["loss"], "train_seconds": r["seconds"], "epochs": 0, "steps": 0,
            "run_seconds": r["seconds"]}


PROBE_C = 1.0
"""Inverse L2 strength of the linear probe's logistic regression."""
PROBE_MAX_ITER = 1000


def _preprocessing_for(model: nn.Module, dataset: str):
    """The preprocessing the target runs use for ``model`` on ``dataset`` (as :func:`mnistlab.fit` resolves it)."""
    from ..models.registry import Preprocessing

    norm = _normalize_of(model, dataset)
    return Preprocessing.create(tuple(norm) if isinstance(norm, list) else norm, dataset,
                                preprocessing_of(model, dataset).input_size)


def _order(df: pd.DataFrame) -> list[tuple]:
    """(task, strategy, labels) groups in order of appearance."""
    return list(dict.fromkeys(zip(df["task"], df["strategy"], df["labels"])))


def summarize_transfer(df: pd.DataFrame, metric: str = "test_acc", confidence: float = 0.95) -> pd.DataFrame:
    """Mean, std and t-interval of ``metric`` over seeds, per task, strategy and labels per class.

    Parameters
    ----------
    df : pandas.DataFrame
        From :func:`run_transfer` (several tasks may be concatenated).
    metric : str
    confidence : float

    Returns
    -------
    pandas.DataFrame
        Columns ``task``, ``strategy``, ``labels``, ``per_class``, ``mean``, ``std``, ``ci_low``,
        ``ci_high``, ``ci_half``, ``n`` (computed by :func:`mnistlab.experiments.stats.summarize`).
    """
    from ..experiments.stats import summarize

    _check_columns(df, metric)
    out = []
    for task, g in df.groupby("task", sort=False):
        s = summarize(g, metric=metric, confidence=confidence, by="config").reset_index()
        first = g.drop_duplicates("config").set_index("config")
        s.insert(0, "task", task)
        s.insert(1, "strategy", s["config"].map(first["strategy"]))
        s.insert(2, "labels", s["config"].map(first["labels"]))
        s.insert(3, "per_class", s["config"].map(g.groupby("config")["per_class"].mean()))
        out.append(s.drop(columns="config"))
    return pd.concat(out, ignore_index=True)


def _check_columns(df: pd.DataFrame, metric: str) -> None:
    needed = {"task", "strategy", "labels", "per_class", "seed", "config", metric}
    missing = needed - set(df.columns)
    if missing:
        raise ValueError(f"Expected a DataFrame from run_transfer; it lacks the columns {sorted(missing)}.")


def transfer_gains(df: pd.DataFrame, baseline: str = SCRATCH, metric: str = "test_acc",
                   alpha: float = 0.05) -> pd.DataFrame:
    """Paired comparison of every strategy with ``baseline``, per task and labels per class.

    Runs are paired by seed (same labelled subset, same head initialisation), and
    :func:`mnistlab.experiments.stats.compare` gives the mean difference, its t-interval and a
    paired t-test. With ``baseline="zero-shot"`` every labels-per-class value is compared with
    the source applied as is.

    Returns
    -------
    pandas.DataFrame
        Columns ``task``, ``labels``, ``per_class``, ``strategy``, ``baseline``, ``n``,
        ``mean_strategy``, ``mean_baseline``, ``diff`` (strategy minus baseline, in accuracy
        units), ``ci_low``, ``ci_high``, ``p_value``, ``verdict`` (as compare gives it) and
        ``better`` (+1 better beyond noise, -1 worse, 0 within noise).
    """
    from ..experiments.stats import compare

    _check_columns(df, metric)
    rows = []
    for task, g in df.groupby("task", sort=False):
        if baseline not in set(g["strategy"]):
            raise ValueError(f"Task {task!r} has no {baseline!r} runs to compare with; it has "
                             f"{sorted(set(g['strategy']))}.")
        for labels, h in g[g["strategy"] != ZERO_SHOT].groupby("labels", sort=False):
            base = g[g["strategy"] == baseline]
            base = base if baseline == ZERO_SHOT else base[base["labels"] == labels]
            for strategy in dict.fromkeys(h["strategy"]):
                if strategy == baseline:
                    continue
                c = compare(base, h[h["strategy"] == strategy], metric=metric, alpha=alpha)
                lo, hi = c["ci_low"], c["ci_high"]
                better = 0 if not (np.isfinite(lo) and np.isfinite(hi)) else (1 if lo > 0 else -1 if hi < 0 else 0)
                rows.append({"task": task, "labels": labels, "per_class": float(h["per_class"].mean()),
                             "strategy": strategy, "baseline": baseline, "n": c["n"], "mean_strategy": c["mean_b"],
                             "mean_baseline": c["mean_a"], "diff": c["diff"], "ci_low": lo, "ci_high": hi,
                             "p_value": c["p_value"], "verdict": str(getattr(c["verdict"], "value", c["verdict"])),
                             "better": better})
    return pd.DataFrame(rows)


def when_transfer_pays(gains: pd.DataFrame) -> list[str]:
    """Sentences, computed from :func:`transfer_gains`, saying for each task where transfer pays.

    For each task: the best strategy at the fewest labels (its gain over the baseline in points
    with the 95% interval), the same at the most labels, and the fewest labels per class at
    which no strategy beats the baseline beyond noise any more (if there is such a point).

    Returns
    -------
    list of str
    """
    if gains.empty:
        return []
    out = []
    for task, g in gains.groupby("task", sort=False):
        baseline = g["baseline"].iloc[0]
        levels = g.groupby("labels", sort=False)["per_class"].mean().sort_values()
        best = {lab: g[g["labels"] == lab].sort_values("diff", ascending=False).iloc[0] for lab in levels.index}

        def phrase(row) -> str:
            kind = {1: "better beyond noise", -1: "worse beyond noise", 0: "within noise"}[int(row["better"])]
            return (f"{row['strategy']} vs {baseline}: {100 * row['diff']:+.1f} points "
                    f"(95% CI {100 * row['ci_low']:+.1f} to {100 * row['ci_high']:+.1f}, {kind})")

        first, last = levels.index[0], levels.index[-1]
        def per_class(lab) -> str:
            return "all labels" if lab == "all" else f"{lab} label{'' if lab == '1' else 's'} per class"

        text = f"{task}: with {per_class(first)}, {phrase(best[first])}"
        if last != first:
            text += f"; with {per_class(last)}, {phrase(best[last])}"
        stops = [lab for lab in levels.index if int(best[lab]["better"]) <= 0]
        if len(stops) == len(levels):
            text += f"; no strategy beats {baseline} beyond noise at any label count tried"
        elif stops and stops[0] != first:
            text += f"; from {per_class(stops[0])} on, no strategy beats {baseline} beyond noise"
        elif not stops:
            text += f"; transfer beats {baseline} beyond noise at every label count tried"
        out.append(text + ".")
    return out


# --------------------------------------------------------------------------------------------
# Learning curves and feature maps
# --------------------------------------------------------------------------------------------

def learning_curves(source: nn.Module, train: ImageSet, val: ImageSet, *, task: str = "transfer",
                    per_class: int | None = 100, strategies: Sequence[str] = (FROZEN, FINE_TUNE, SCRATCH),
                    seeds: Iterable[int] = range(3), epochs: int = 10, config: TrainConfig = TRANSFER,
                    scratch=None, device="auto", cache: bool = True, progress: bool = True,
                    threads: int | None = 1) -> pd.DataFrame:
    """Per-epoch training and validation curves of the trained strategies on one labelled subset.

    Parameters
    ----------
    source, train, config, scratch, device, cache, progress, threads
        As in :func:`run_transfer`.
    val : ImageSet
        Evaluated after every epoch.
    task : str
    per_class : int or None
        Labels per class of the subset (drawn per seed with :func:`few_labels`).
    strategies : sequence of str
        Among "frozen", "fine-tune" and "scratch".
    seeds : iterable of int
    epochs : int
        The same number of epochs for every strategy.

    Returns
    -------
    pandas.DataFrame
        One row per epoch: ``task``, ``strategy``, ``labels``, ``seed``, ``epoch``, ``step``
        (optimizer steps so far), ``train_loss``, ``train_acc``, ``val_loss``, ``val_acc``,
        ``elapsed``.
    """
    config = as_config(config)
    strategies = _check_strategies(strategies)
    bad = [s for s in strategies if s not in (FROZEN, FINE_TUNE, SCRATCH)]
    if bad:
        raise ValueError(f"learning_curves trains 'frozen', 'fine-tune' and 'scratch'; not {bad}.")
    seeds = [int(s) for s in seeds]
    base = {"source": fingerprint(source), "train": fingerprint(train), "val": fingerprint(val),
            "epochs": int(epochs), "device": resolve_device(device).type, "labels": _labels_name(per_class),
            "scratch": _scratch_name(scratch)}
    frames = []
    for seed, strategy in tqdm([(s, st) for s in seeds for st in strategies], desc=f"{task}: curves", unit="run",
                               disable=not progress):
        key = config_hash(config, seed, kind=_KIND + "-curve", strategy=strategy, **base)
        body = _cache.read(key) if cache else None
        if body is None:
            subset = few_labels(train, per_class, seed)
            hist = map_tasks(transfer_model_history, [(source, subset, strategy, seed, config, val, epochs, scratch,
                                                       device)], threads=threads, progress=False)[0]
            body = {"key": key, "history": hist.to_dict(orient="list")}
            if cache:
                _cache.write(key, body)
        h = pd.DataFrame(body["history"])
        h.insert(0, "seed", seed)
        h.insert(0, "labels", _labels_name(per_class))
        h.insert(0, "strategy", strategy)
        h.insert(0, "task", task)
        frames.append(h)
    cols = ["task", "strategy", "labels", "seed", "epoch", "step", "train_loss", "train_acc", "val_loss", "val_acc",
            "elapsed"]
    return pd.concat(frames, ignore_index=True)[cols]


def transfer_model_history(source, subset, strategy, seed, config, val, epochs, scratch, device) -> pd.DataFrame:
    """The history of :func:`transfer_model` with a ``step`` column (optimizer steps so far).

    Parameters
    ----------
    source, subset, strategy, seed, config, val, epochs, scratch, device
        As in :func:`transfer_model` (``subset`` is its ``train``).

    Returns
    -------
    pandas.DataFrame
    """
    _, hist = transfer_model(source, subset, strategy, seed=seed, config=config, val=val, epochs=epochs,
                             scratch=scratch, device=device)
    _, batch, _ = run_budget(as_config(config), len(subset))
    return hist.assign(step=hist["epoch"] * math.ceil(len(subset) / batch))


@dataclass
class FeatureMaps:
    """t-SNE maps of one set of images seen through several networks.

    Attributes
    ----------
    points : pandas.DataFrame
        ``panel``, ``x``, ``y``, ``label`` (one row per image and panel, panels in order).
    scores : pandas.DataFrame
        Per panel: ``knn_acc`` (10-NN accuracy in the 2-D map, cross-validated) and
        ``probe_acc`` (cross-validated logistic-regression accuracy on the features themselves).
    classes : list of str
        Name of each label.
    """

    points: pd.DataFrame
    scores: pd.DataFrame
    classes: list = field(default_factory=list)


def feature_tsne(models: Mapping[str, nn.Module], data: ImageSet, *, classes: Sequence[str] | None = None,
                 seed: int = 0, pca_dims: int = 50, device=None, **tsne_kwargs) -> FeatureMaps:
    """t-SNE of ``data``'s features under each model (e.g. before and after fine-tuning).

    Parameters
    ----------
    models : dict of name -> nn.Module
        Each needs a ``features`` method; panels keep this order.
    data : ImageSet
        The images to map (a few hundred to a few thousand).
    classes : sequence of str, optional
        Names of the labels (default: the dataset's class names).
    seed : int
        Seeds PCA, t-SNE and the cross-validation folds.
    pca_dims : int
        Features are reduced to this many principal components before t-SNE.
    device
    **tsne_kwargs
        Passed to :func:`mnistlab.studies.embed.tsne`.

    Returns
    -------
    FeatureMaps
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from .embed import knn_accuracy, pca, tsne

    if not models:
        raise ValueError("feature_tsne needs at least one model.")
    labels = data.labels.numpy()
    frames, scores = [], []
    for name, model in models.items():
        x = features(model, data, device=device)
        reduced = x
        if x.shape[1] > pca_dims:
            reduced = pca(x, n_components=min(pca_dims, len(x) - 1), seed=seed)[0]
        y2 = tsne(reduced, seed=seed, **tsne_kwargs)
        frames.append(pd.DataFrame({"panel": name, "x": y2[:, 0], "y": y2[:, 1], "label": labels}))
        folds = StratifiedKFold(int(min(5, np.bincount(labels).min())), shuffle=True, random_state=seed)
        probe = cross_val_score(make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)), x, labels,
                                cv=folds).mean()
        scores.append({"panel": name, "knn_acc": knn_accuracy(y2, labels, seed=seed), "probe_acc": float(probe)})
    names = list(classes) if classes is not None else list(data.classes)
    return FeatureMaps(pd.concat(frames, ignore_index=True), pd.DataFrame(scores), names)
