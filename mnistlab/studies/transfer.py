"""Transfer learning: what a network trained on one dataset is worth on another when labels are few.

Building blocks
    :func:`freeze` / :func:`unfreeze` (by layer name or index; frozen BatchNorm layers stay in
    inference mode, like Keras' ``trainable=False``), :func:`replace_head`, :func:`param_groups`
    (discriminative learning rates for :func:`mnistlab.fit`), :func:`few_labels` (balanced,
    deterministic, nested subsets), :func:`linear_probe` (frozen features -> scikit-learn's
    ``LogisticRegression``), :func:`digits_split` (the classic digits 0-4 -> 5-9 task) and the
    ImageNet ResNet-18 backbone (:func:`imagenet_resnet18`, used only when its weights are already
    in the torch hub cache: nothing is ever downloaded).

Experiments
    :func:`train_source` trains (and caches) a source network; :func:`run_transfer` runs the
    strategies (frozen features, fine-tuning, training from scratch, linear probe, zero-shot) over
    labels per class and seeds and returns one tidy row per run; :func:`summarize_transfer` gives
    means with 95% t-intervals, :func:`transfer_gains` paired tests against a baseline (the same
    seed draws the same labelled subset and head initialisation for every strategy), and
    :func:`when_transfer_pays` turns those numbers into sentences. :func:`learning_curves` and
    :func:`feature_tsne` give the data of the remaining figures.

Every run is cached on disk (``<cache_root>/transfer/``) under a hash of everything that decides
its result: the source weights, the data, the strategy, the recipe, the seed and the device type.
On the CPU, training runs with one torch thread by default (``threads=1``, restored afterwards):
the networks are small and the batches 32 images, where a second thread gains little on a quiet
machine and, on a busy one, made 20 steps take 13 s instead of 0.8 s.

This module computes only; it never imports matplotlib (see :mod:`mnistlab.viz.transfer`).
"""
from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import math
import os
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable, Iterable, Mapping, Sequence
from urllib.parse import urlparse

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from .._util import cache_root, eval_mode, to_jsonable
from ..data.datasets import ImageSet, sample_indices
from ..models.classifiers import Classifier
from ..models.registry import Preprocessing, create_model, preprocessing_of
from ..training.checkpoint import atomic_write
from ..training.loop import evaluate, features, fit, resolve_device

__all__ = [
    "FROZEN", "FINE_TUNE", "SCRATCH", "LINEAR_PROBE", "ZERO_SHOT", "STRATEGIES",
    "DIGITS_SOURCE", "DIGITS_TARGET", "RESNET18",
    "layer_names", "head_name", "freeze", "unfreeze", "frozen_layers", "replace_head", "param_groups",
    "few_label_indices", "few_labels", "select_classes", "digits_split", "linear_probe", "zero_shot",
    "TransferRecipe", "train_source", "transfer_model", "run_transfer", "summarize_transfer", "transfer_gains",
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

DIGITS_SOURCE = (0, 1, 2, 3, 4)
DIGITS_TARGET = (5, 6, 7, 8, 9)
RESNET18 = "resnet18-imagenet"
_CACHE_VERSION = 2  # 2: equal-sized batches in transfer_model
_SOURCE_VERSION = 1
_HEAD_NAMES = ("head", "fc", "classifier")


@contextlib.contextmanager
def _threads(n: int | None):
    """Run the block with ``n`` torch CPU threads (``None``: leave torch's setting), restored afterwards.

    The target runs train small networks on batches of 32, where a second thread gains little on a
    quiet machine and, on a busy one, made 20 steps take 13 s instead of 0.8 s (measured here).
    """
    if n is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(int(n))
    try:
        yield
    finally:
        torch.set_num_threads(before)


# --------------------------------------------------------------------------------------------
# Layers: freeze, unfreeze, replace the head, learning rates per part
# --------------------------------------------------------------------------------------------

def _param_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    return [(name, m) for name, m in model.named_modules()
            if name and next(m.parameters(recurse=False), None) is not None]


def layer_names(model: nn.Module) -> list[str]:
    """Names of the layers that hold parameters, in order (what :func:`freeze` counts).

    Parameters
    ----------
    model : nn.Module

    Returns
    -------
    list of str
        E.g. ``["body.0", "body.1", ..., "head"]`` for the ``fast`` network.
    """
    return [name for name, _ in _param_layers(model)]


def _span(model: nn.Module, key) -> tuple[int, int]:
    """(first, last) position in :func:`layer_names` of the layer(s) ``key`` names."""
    names = layer_names(model)
    if isinstance(key, bool) or not isinstance(key, (int, np.integer, str)):
        raise TypeError(f"A layer is named by its name (str) or position (int), not {key!r}.")
    if isinstance(key, (int, np.integer)):
        i = int(key) + len(names) if key < 0 else int(key)
        if not 0 <= i < len(names):
            raise IndexError(f"Layer index {key} is out of range: the model has {len(names)} layers with parameters "
                             f"(-{len(names)}..{len(names) - 1}).")
        return i, i
    hits = [i for i, n in enumerate(names) if n == key or n.startswith(key + ".")]
    if not hits:
        raise ValueError(f"No layer named {key!r}; layers with parameters: {', '.join(names)}.")
    return hits[0], hits[-1]


def head_name(model: nn.Module) -> str:
    """Attribute name of the model's classification head: ``head`` (mnistlab), ``fc`` (ResNet) or ``classifier``.

    Raises
    ------
    ValueError
        The model has none of them.
    """
    for name in _HEAD_NAMES:
        if isinstance(getattr(model, name, None), nn.Module):
            return name
    raise ValueError(f"{type(model).__name__} has no classification head: expected a module attribute "
                     f"{', '.join(_HEAD_NAMES)}. Build it with mnistlab.create_model or wrap it in a Classifier.")


def _in_head(name: str, head: str) -> bool:
    return name == head or name.startswith(head + ".")


def _keep_frozen_norm_in_eval(module: nn.Module, args):
    """Forward pre-hook of norm layers: while their parameters are frozen, use (and keep) their running statistics."""
    if not any(p.requires_grad for p in module.parameters(recurse=False)):
        module.training = False


def freeze(model: nn.Module, until=None) -> list[str]:
    """Freeze the model's layers up to and including ``until``; return the names of the frozen layers.

    Frozen parameters get ``requires_grad=False`` (so :func:`mnistlab.fit` leaves them out of the
    optimizer and their ``.grad`` stays ``None``), and frozen BatchNorm layers stay in inference
    mode even while the model trains: they normalise with, and keep, their running statistics.

    Parameters
    ----------
    model : nn.Module
    until : str or int, optional
        Last layer to freeze: a name from :func:`layer_names`, or a container's name (freezes up
        to its last layer, e.g. ``"body"``), or a position in :func:`layer_names` (negative counts
        from the end: ``-2`` freezes all but the last layer). Default: everything but the head.

    Returns
    -------
    list of str
        The frozen layers, in order.

    Raises
    ------
    ValueError, IndexError, TypeError
        ``until`` names no layer; the message lists the layers.
    """
    layers = _param_layers(model)
    if until is None:
        head = head_name(model)
        chosen = [(n, m) for n, m in layers if not _in_head(n, head)]
    else:
        chosen = layers[: _span(model, until)[1] + 1]
    for _, m in chosen:
        for p in m.parameters(recurse=False):
            p.requires_grad_(False)
        if isinstance(m, nn.modules.batchnorm._NormBase) and not getattr(m, "_mnistlab_freeze_hook", False):
            m.register_forward_pre_hook(_keep_frozen_norm_in_eval)
            m._mnistlab_freeze_hook = True
    return [n for n, _ in chosen]


def unfreeze(model: nn.Module, since=None) -> list[str]:
    """Make layers trainable again from ``since`` to the end (all layers by default); return their names.

    Parameters
    ----------
    model : nn.Module
    since : str or int, optional
        First layer to unfreeze (a name, a container's name or a position, as in :func:`freeze`);
        gradual unfreezing calls this with earlier and earlier layers.

    Returns
    -------
    list of str
        The layers made trainable, in order.
    """
    layers = _param_layers(model)
    chosen = layers if since is None else layers[_span(model, since)[0]:]
    for _, m in chosen:
        for p in m.parameters(recurse=False):
            p.requires_grad_(True)
        if isinstance(m, nn.modules.batchnorm._NormBase):
            m.train(model.training)
    return [n for n, _ in chosen]


def frozen_layers(model: nn.Module) -> list[str]:
    """Names of the layers whose parameters are all frozen (``requires_grad=False``).

    Parameters
    ----------
    model : nn.Module

    Returns
    -------
    list of str
        In the order of :func:`layer_names`.
    """
    return [n for n, m in _param_layers(model) if not any(p.requires_grad for p in m.parameters(recurse=False))]


def _last_linear(model: nn.Module) -> tuple[nn.Module, str, nn.Linear]:
    """(parent module, attribute, layer) of the last ``nn.Linear`` of the head."""
    name = head_name(model)
    head = getattr(model, name)
    if isinstance(head, nn.Linear):
        return model, name, head
    linears = [(n, m) for n, m in head.named_modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise ValueError(f"The head {name!r} of {type(model).__name__} holds no nn.Linear layer to replace.")
    path, layer = linears[-1]
    parent_path, _, attr = path.rpartition(".")
    return (head.get_submodule(parent_path) if parent_path else head), attr, layer


def replace_head(model: nn.Module, n_classes: int, seed: int | None = None) -> nn.Module:
    """Replace the last linear layer of the head by a new one with ``n_classes`` outputs (in place).

    Anything else in the head (dropout, hidden layers) is kept; the new layer is trainable, on the
    old one's device, and initialised from ``seed`` without touching the global RNG.

    Parameters
    ----------
    model : nn.Module
        A :class:`mnistlab.models.classifiers.Classifier` (``head``), a torchvision ResNet
        (``fc``) or a model with a ``classifier``.
    n_classes : int
    seed : int, optional

    Returns
    -------
    nn.Module
        ``model`` itself; ``model.config["kwargs"]["num_classes"]`` is updated when present.
    """
    if isinstance(n_classes, bool) or not isinstance(n_classes, (int, np.integer)) or n_classes < 1:
        raise ValueError(f"n_classes must be a positive integer, not {n_classes!r}.")
    parent, attr, old = _last_linear(model)
    with torch.random.fork_rng(devices=[]):
        if seed is not None:
            torch.manual_seed(int(seed))
        new = nn.Linear(old.in_features, int(n_classes), bias=old.bias is not None)
    setattr(parent, attr, new.to(device=old.weight.device, dtype=old.weight.dtype))
    config = getattr(model, "config", None)
    if isinstance(config, dict) and isinstance(config.get("kwargs"), dict):
        model.config = {**config, "kwargs": {**config["kwargs"], "num_classes": int(n_classes)}}
    return model


def param_groups(model: nn.Module, rates: Mapping[str, float]) -> list[dict]:
    """Parameter groups with their own learning rates, for ``fit(..., param_groups=...)``.

    Parameters
    ----------
    model : nn.Module
    rates : dict
        Learning rate per part. ``"head"``: the classification head (:func:`head_name`);
        ``"features"``: every other parameter; any other key is a module name (``"body.0"``,
        ``"body"``) and wins over ``"features"``/``"head"`` for the parameters inside it (the
        longest matching name wins).

    Returns
    -------
    list of dict
        ``[{"params": [...], "lr": rate, "name": key}, ...]`` for the non-empty groups; frozen
        parameters are left out.

    Raises
    ------
    ValueError
        No rates, a key that names no module, or a trainable parameter that no key covers.

    Examples
    --------
    >>> import mnistlab as ml
    >>> from mnistlab.studies.transfer import param_groups
    >>> groups = param_groups(ml.create_model("fast", seed=0), {"features": 1e-4, "head": 1e-2})
    >>> [(g["name"], g["lr"]) for g in groups]
    [('features', 0.0001), ('head', 0.01)]
    """
    if not rates:
        raise ValueError("param_groups needs at least one rate, e.g. {'features': 1e-4, 'head': 1e-2}.")
    head = head_name(model)
    modules = dict(model.named_modules())
    for key in rates:
        if key not in ("features", "head") and key not in modules:
            raise ValueError(f"{key!r} names no module of {type(model).__name__}; use 'features', 'head' or one of "
                             f"{', '.join(layer_names(model))}.")
    named = [k for k in rates if k not in ("features", "head")]
    groups: dict[str, list] = {k: [] for k in rates}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        specific = [k for k in named if name.startswith(k + ".")]
        if specific:
            key = max(specific, key=len)
        elif _in_head(name, head) and "head" in rates:
            key = "head"
        elif not _in_head(name, head) and "features" in rates:
            key = "features"
        else:
            raise ValueError(f"Parameter {name!r} is covered by none of {list(rates)}; add "
                             f"{'head' if _in_head(name, head) else 'features'!r} or its layer's name.")
        groups[key].append(p)
    return [{"params": ps, "lr": float(rates[k]), "name": k} for k, ps in groups.items() if ps]


# --------------------------------------------------------------------------------------------
# Data: few labels, class subsets
# --------------------------------------------------------------------------------------------

def _n_classes(data: ImageSet) -> int:
    return int(data.labels.max()) + 1 if len(data) else 0


def few_label_indices(dataset: ImageSet, per_class: int, seed: int = 0) -> torch.Tensor:
    """Sorted indices of ``per_class`` images of every class of ``dataset``, drawn with ``seed``.

    Parameters
    ----------
    dataset : ImageSet
    per_class : int
    seed : int

    Returns
    -------
    torch.Tensor
        int64 indices into ``dataset``, sorted.

    Notes
    -----
    The draw is nested: with the same seed, the 10-per-class subset is part of the 100-per-class
    one (each class's images are taken in the order of one seeded permutation).

    Raises
    ------
    ValueError
        ``per_class`` is not a positive integer, or a class has fewer images than that.
    """
    if isinstance(per_class, bool) or not isinstance(per_class, (int, np.integer)) or per_class < 1:
        raise ValueError(f"per_class must be a positive integer (or None for all labels), not {per_class!r}.")
    counts = torch.bincount(dataset.labels)
    short = [(c, int(counts[c])) for c in counts.nonzero().flatten().tolist() if counts[c] < per_class]
    if short:
        c, n = short[0]
        raise ValueError(f"few_labels(per_class={per_class}) needs {per_class} images of every class, but class {c} "
                         f"has only {n} here; lower per_class or pass a larger pool (or per_class=None for all).")
    return sample_indices(dataset.labels, int(per_class), seed=int(seed))


def few_labels(dataset: ImageSet, per_class: int | None, seed: int = 0) -> ImageSet:
    """A balanced labelled subset: ``per_class`` images of every class, the same for the same seed.

    Parameters
    ----------
    dataset : ImageSet
        The pool to draw from.
    per_class : int or None
        Images per class; ``None`` (or ``"all"``) returns ``dataset`` itself.
    seed : int
        Fixes the draw; subsets of one seed are nested (see :func:`few_label_indices`).

    Returns
    -------
    ImageSet
        In the pool's order.

    Examples
    --------
    >>> import torch, mnistlab as ml
    >>> from mnistlab.studies.transfer import few_labels
    >>> pool = ml.ImageSet(torch.zeros(30, 28, 28, dtype=torch.uint8), torch.arange(30) % 3)
    >>> few_labels(pool, 4, seed=0).labels.bincount().tolist()
    [4, 4, 4]
    """
    if per_class is None or per_class == "all":
        return dataset
    return dataset.subset(few_label_indices(dataset, per_class, seed))


def select_classes(data: ImageSet, classes: Sequence[int], relabel: bool = True) -> ImageSet:
    """The images of ``classes`` only, relabelled 0..len(classes)-1 in the order given (unless ``relabel=False``).

    Parameters
    ----------
    data : ImageSet
    classes : sequence of int
        The classes to keep; with ``relabel`` class ``classes[i]`` becomes label ``i``.
    relabel : bool

    Returns
    -------
    ImageSet
        Same dataset name, images in their original order.

    Raises
    ------
    ValueError
        No classes, repeated classes, or none of the images belongs to them.
    """
    classes = [int(c) for c in classes]
    if not classes or len(set(classes)) != len(classes):
        raise ValueError(f"classes must be distinct and non-empty, got {classes}.")
    mask = torch.isin(data.labels, torch.tensor(classes))
    if not bool(mask.any()):
        raise ValueError(f"No image of {data.dataset} belongs to classes {classes}.")
    sub = data.subset(mask)
    if not relabel:
        return sub
    lut = torch.full((int(data.labels.max()) + 1,), -1, dtype=torch.long)
    lut[torch.tensor(classes)] = torch.arange(len(classes))
    return ImageSet(sub.images, lut[sub.labels], data.dataset)


def digits_split(data: ImageSet, source: Sequence[int] = DIGITS_SOURCE,
                 target: Sequence[int] = DIGITS_TARGET) -> tuple[ImageSet, ImageSet]:
    """Split into the source task (digits 0-4) and the target task (5-9), each relabelled from 0.

    Parameters
    ----------
    data : ImageSet
    source, target : sequence of int
        Disjoint class lists (default: 0-4 and 5-9).

    Returns
    -------
    (ImageSet, ImageSet)
        Source images with labels 0..4 for digits 0..4, target images with labels 0..4 for
        digits 5..9 (so label ``i`` of the target is digit ``target[i]``).
    """
    if set(source) & set(target):
        raise ValueError(f"source {tuple(source)} and target {tuple(target)} share classes.")
    return select_classes(data, source), select_classes(data, target)


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
                 device=None, batch_size: int = 1000) -> dict:
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
    n_out = _last_linear(model)[2].out_features
    if len(test) and int(test.labels.max()) >= n_out:
        raise ValueError(f"Zero-shot needs the source's classes: the model has {n_out} outputs but the test labels "
                         f"reach {int(test.labels.max())}.")
    return evaluate(model, test, device=device)


# --------------------------------------------------------------------------------------------
# One transfer run
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class TransferRecipe:
    """How every strategy trains on the target (one description, part of each run's cache key).

    Parameters
    ----------
    steps : int
        Optimizer steps each trained run takes at least (more epochs on smaller subsets), so
        that few labels are not also few updates; at least one epoch, at most ``max_epochs``.
    max_steps : int
        Cap for large pools: when one epoch would take more steps, the run makes one pass over
        a seeded random ``max_steps * batch_size`` of the images (the same as stopping a
        shuffled epoch after ``max_steps`` steps), which keeps "all labels" runs short.
    max_epochs : int
    batch_size : int
        Largest batch: each epoch is cut into equal batches of at most this many images (on 100
        images, 4 batches of 25 rather than 32 + 32 + 32 + 4: a last batch of 4 made BatchNorm's
        running statistics so noisy that training from scratch lost up to 25 points).
    optimizer : str
    lr : float
        Learning rate of training from scratch.
    head_lr : float
        Learning rate of the new head (frozen features and fine-tuning).
    features_lr : float
        Learning rate of the pretrained layers when fine-tuning (discriminative rates).
    keep_head : bool
        Fine-tuning starts from the source's head when source and target share their classes
        (e.g. MNIST -> another digit set); frozen features always get a new head.
    weight_decay : float
    probe_C, probe_max_iter : float, int
        The linear probe's logistic regression.
    eval_batch_size : int
    """

    steps: int = 100
    max_steps: int = 400
    max_epochs: int = 100
    batch_size: int = 32
    optimizer: str = "adam"
    lr: float = 2e-3
    head_lr: float = 2e-3
    features_lr: float = 5e-4
    keep_head: bool = False
    weight_decay: float = 0.0
    probe_C: float = 1.0
    probe_max_iter: int = 1000
    eval_batch_size: int = 1000

    def __post_init__(self):
        for name in ("steps", "max_steps", "max_epochs", "batch_size", "probe_max_iter", "eval_batch_size"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"TransferRecipe.{name} must be a positive integer, got {getattr(self, name)!r}.")

    def but(self, **changes) -> "TransferRecipe":
        """A copy with ``changes`` applied (e.g. ``recipe.but(keep_head=True)``); the values are checked again."""
        return replace(self, **changes)

    def plan(self, n_train: int) -> tuple[int, int]:
        """``(epochs, images)`` of a run on ``n_train`` images.

        ``images`` is ``n_train``, or ``max_steps * batch_size`` when one epoch would exceed
        ``max_steps`` steps (then ``epochs`` is 1); otherwise enough epochs for ``steps`` steps
        (at least 1, at most ``max_epochs``).
        """
        if n_train < 1:
            raise ValueError("A transfer run needs at least one labelled image.")
        cap = self.max_steps * self.batch_size
        if n_train > cap:
            return 1, cap
        per_epoch = math.ceil(n_train / self.batch_size)
        return int(min(self.max_epochs, max(1, math.ceil(self.steps / per_epoch)))), int(n_train)


def _target_preprocessing(model: nn.Module, dataset: str) -> Preprocessing:
    """The rule of :func:`mnistlab.fit`: a "standard" network on another dataset takes that dataset's constants."""
    pre = preprocessing_of(model, dataset)
    if pre.spec == "standard" and pre.dataset != dataset:
        return Preprocessing.create("standard", dataset, pre.input_size)
    if pre.dataset != dataset:
        return replace(pre, dataset=dataset)
    return pre


def _adapted_copy(source: nn.Module, dataset: str) -> nn.Module:
    model = copy.deepcopy(source)
    model.preprocessing = _target_preprocessing(source, dataset)
    return model


def _scratch_model(source: nn.Module, n_classes: int, seed: int, dataset: str, scratch=None) -> nn.Module:
    """A freshly initialised network for the "scratch" strategy: ``scratch`` or the source's architecture."""
    if callable(scratch):
        return scratch(seed=seed, num_classes=n_classes)
    if scratch is not None:
        name, kwargs = scratch
        return create_model(name, seed=seed, dataset=dataset, **{**dict(kwargs), "num_classes": n_classes})
    config = getattr(source, "config", None) or {}
    if config.get("name") == RESNET18:
        kw = config.get("kwargs", {})
        return imagenet_resnet18(n_classes, size=kw.get("size", 32), pretrained=False, seed=seed, dataset=dataset)
    if "name" not in config:
        raise ValueError("The source model does not say its architecture (no .config from mnistlab.create_model); "
                         "pass scratch=(model_name, kwargs) or a callable(seed=..., num_classes=...).")
    kwargs = {**config.get("kwargs", {}), "num_classes": n_classes}
    model = create_model(config["name"], seed=seed, dataset=dataset, **kwargs)
    pre = preprocessing_of(source, dataset)
    if pre.spec != "standard":  # keep a non-standard normalisation of the source ("unit", custom)
        model.preprocessing = _target_preprocessing(source, dataset)
    return model


def transfer_model(source: nn.Module, train: ImageSet, strategy: str, *, seed: int = 0,
                   recipe: TransferRecipe | None = None, val: ImageSet | None = None, epochs: int | None = None,
                   scratch=None, device="auto", progress: bool = False,
                   threads: int | None = 1) -> tuple[nn.Module, pd.DataFrame]:
    """Train one target model with ``strategy`` and return it with its :func:`mnistlab.fit` history.

    Parameters
    ----------
    source : nn.Module
        The trained source network (not changed: strategies work on a copy).
    train : ImageSet
        The labelled target images (labels 0..C-1).
    strategy : {"frozen", "fine-tune", "scratch"}
        ``"frozen"``: new head trained on frozen features; ``"fine-tune"``: new head (or the
        source's, see ``recipe.keep_head``) and every layer trained, the pretrained ones at
        ``recipe.features_lr``; ``"scratch"``: the same architecture, freshly initialised.
    seed : int
        Seeds the new head, the scratch network, the data order and dropout.
    recipe : TransferRecipe, optional
    val : ImageSet, optional
        Evaluated after every epoch (learning curves).
    epochs : int, optional
        Overrides the epochs of ``recipe.plan(len(train))``.
    scratch : (name, kwargs) or callable, optional
        The architecture trained from scratch; default: the source's.
    device : str
    progress : bool
    threads : int or None
        torch CPU threads while training (as in :func:`run_transfer`; one by default); ``None``: torch's setting.

    Returns
    -------
    (nn.Module, pandas.DataFrame)
    """
    recipe = recipe or TransferRecipe()
    if strategy not in (FROZEN, FINE_TUNE, SCRATCH):
        raise ValueError(f"transfer_model trains 'frozen', 'fine-tune' or 'scratch', not {strategy!r} "
                         "(see linear_probe and zero_shot for the others).")
    n_classes = _n_classes(train)
    groups, lr = None, recipe.lr
    if strategy == SCRATCH:
        model = _scratch_model(source, n_classes, seed, train.dataset, scratch)
    else:
        model = _adapted_copy(source, train.dataset)
        keep = strategy == FINE_TUNE and recipe.keep_head and _last_linear(model)[2].out_features == n_classes
        if not keep:
            replace_head(model, n_classes, seed=seed)
        if strategy == FROZEN:
            freeze(model)
            lr = recipe.head_lr
        else:
            unfreeze(model)
            groups = param_groups(model, {"features": recipe.features_lr, "head": recipe.head_lr})
    planned, images = recipe.plan(len(train))
    if images < len(train):  # one pass cut at max_steps steps: a seeded random part of the pool
        perm = torch.randperm(len(train), generator=torch.Generator().manual_seed(int(seed)))
        train = train.subset(perm[:images].sort().values)
    batch_size = math.ceil(len(train) / math.ceil(len(train) / recipe.batch_size))  # equal batches, same count
    with _threads(threads if resolve_device(device).type == "cpu" else None):
        history = fit(model, train, val, epochs=epochs or planned, optimizer=recipe.optimizer,
                      lr=lr, batch_size=batch_size, weight_decay=recipe.weight_decay, param_groups=groups,
                      device=device, seed=seed, progress=progress, eval_batch_size=recipe.eval_batch_size)
    return model, history


# --------------------------------------------------------------------------------------------
# Cache
# --------------------------------------------------------------------------------------------

def _digest(*parts) -> str:
    h = hashlib.sha256()
    for part in parts:
        if isinstance(part, torch.Tensor):
            h.update(str((part.dtype, tuple(part.shape))).encode())
            h.update(part.detach().cpu().contiguous().numpy().tobytes())
        else:
            h.update(json.dumps(to_jsonable(part), sort_keys=True, default=str).encode())
    return h.hexdigest()


def _data_digest(data: ImageSet) -> str:
    return _digest(data.dataset, data.images, data.labels)


def _model_digest(model: nn.Module) -> str:
    pre = preprocessing_of(model)
    parts = [getattr(model, "config", None) or type(model).__name__, pre.to_dict()]
    for name, tensor in model.state_dict().items():
        parts += [name, tensor]
    return _digest(*parts)


def _cache_dir() -> Path:
    return cache_root() / "transfer"


def _cache_get(key: str) -> dict | None:
    path = _cache_dir() / f"{key}.json"
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError):  # damaged entry: recompute and overwrite
        path.unlink(missing_ok=True)
        return None


def _cache_put(key: str, body: dict) -> None:
    text = json.dumps(to_jsonable(body), sort_keys=True).encode()
    atomic_write(_cache_dir() / f"{key}.json", lambda fh: fh.write(text))


# --------------------------------------------------------------------------------------------
# Source networks
# --------------------------------------------------------------------------------------------

def train_source(model: str, train: ImageSet, *, seed: int = 0, epochs: int = 2, model_kwargs: Mapping | None = None,
                 optimizer: str = "adam", lr: float = 1e-3, batch_size: int = 128, device="auto", cache: bool = True,
                 progress: bool = True, threads: int | None = 1) -> nn.Module:
    """Train a source network on ``train`` (all its classes) and return it in eval mode, on the CPU.

    Cached in ``<cache_root>/transfer/`` under a hash of the settings and the data, so a second
    call (or a second run of the notebook) loads the weights instead of training.

    Parameters
    ----------
    model : str
        A registry name (:func:`mnistlab.list_models`).
    train : ImageSet
    seed, epochs, model_kwargs, optimizer, lr, batch_size, device
        As in :func:`mnistlab.create_model` and :func:`mnistlab.fit`.
    cache : bool
    progress : bool
    threads : int or None
        torch CPU threads while training (as in :func:`run_transfer`); ``None``: torch's setting.

    Returns
    -------
    nn.Module
        With ``history`` (the fit history DataFrame) and ``train_seconds`` attributes.
    """
    kwargs = {**dict(model_kwargs or {}), "num_classes": _n_classes(train)}
    settings = {"kind": "source", "version": _SOURCE_VERSION, "model": model, "kwargs": kwargs, "seed": int(seed),
                "epochs": int(epochs), "optimizer": optimizer, "lr": lr, "batch_size": int(batch_size),
                "device": resolve_device(device).type}
    key = "source-" + _digest(settings, _data_digest(train))[:24]
    net = create_model(model, seed=seed, dataset=train.dataset, **kwargs)
    path = _cache_dir() / f"{key}.pt"
    if cache and path.is_file():
        try:
            payload = torch.load(path, map_location="cpu", weights_only=True)
            net.load_state_dict(payload["state_dict"])
            net.history = pd.DataFrame(payload["history"])
            net.train_seconds = float(payload["train_seconds"])
            return net.eval()
        except Exception:  # damaged entry: retrain and overwrite
            path.unlink(missing_ok=True)
    with _threads(threads if resolve_device(device).type == "cpu" else None):
        history = fit(net, train, epochs=epochs, optimizer=optimizer, lr=lr, batch_size=batch_size, device=device,
                      seed=seed, progress=progress)
    net.cpu().eval()
    net.history, net.train_seconds = history, float(history["seconds"].sum())
    if cache:
        payload = {"state_dict": {k: v.detach().cpu() for k, v in net.state_dict().items()},
                   "history": to_jsonable(history.to_dict(orient="list")), "train_seconds": net.train_seconds}
        atomic_write(path, lambda fh: torch.save(payload, fh))
    return net


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


def run_transfer(source: nn.Module, train: ImageSet, test: ImageSet, *, task: str = "transfer",
                 strategies: Sequence[str] = STRATEGIES, labels_per_class: Sequence[int | None] = (10, 100, 1000, None),
                 seeds: Iterable[int] = range(5), recipe: TransferRecipe | None = None, scratch=None,
                 device="auto", cache: bool = True, progress: bool = True, threads: int | None = 1) -> pd.DataFrame:
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
    recipe : TransferRecipe, optional
    scratch : (name, kwargs) or callable, optional
        The architecture of "scratch"; default: the source's.
    device : str
    cache : bool
    progress : bool
        One tqdm bar over the runs.
    threads : int or None
        torch CPU threads while training (restored afterwards); ``None`` leaves torch's setting.
        One by default: these are small networks on batches of 32 (see the module notes).

    Returns
    -------
    pandas.DataFrame
        Columns ``task``, ``strategy``, ``labels`` ("10", ..., "all"; "0" for zero-shot),
        ``per_class`` (labels per class as a number; the mean for "all"), ``n_train``, ``seed``,
        ``epochs``, ``steps``, ``test_acc``, ``test_loss``, ``train_seconds``, ``config``
        (``"<strategy> | <labels>"``, what :func:`mnistlab.experiments.stats.summarize` groups by)
        and ``cached``.
    """
    recipe = recipe or TransferRecipe()
    strategies = _check_strategies(strategies)
    seeds = [int(s) for s in seeds]
    labels_per_class = list(labels_per_class)
    if not seeds or not labels_per_class:
        raise ValueError("run_transfer needs at least one seed and one labels-per-class value.")
    n_classes = _n_classes(train)
    dev_type = resolve_device(device).type
    base = {"version": _CACHE_VERSION, "source": _model_digest(source), "train": _data_digest(train),
            "test": _data_digest(test), "recipe": asdict(recipe), "device": dev_type,
            "scratch": scratch if not callable(scratch) else getattr(scratch, "__qualname__", repr(scratch))}
    jobs = [(k, s, st) for k in labels_per_class for s in seeds for st in strategies if st != ZERO_SHOT]
    rows: list[dict] = []
    if ZERO_SHOT in strategies:
        key = "zero-" + _digest(base, ZERO_SHOT)[:24]
        body = _cache_get(key) if cache else None
        cached = body is not None
        if body is None:
            t0 = time.perf_counter()
            r = zero_shot(source, test, device=device)
            body = {"test_acc": r["acc"], "test_loss": r["loss"], "train_seconds": 0.0,
                    "run_seconds": time.perf_counter() - t0}
            if cache:
                _cache_put(key, body)
        for s in seeds:
            rows.append({"strategy": ZERO_SHOT, "labels": "0", "per_class": 0.0, "n_train": 0, "seed": s,
                         "epochs": 0, "steps": 0, **{k: body[k] for k in ("test_acc", "test_loss", "train_seconds")},
                         "cached": cached})
    with _threads(threads if dev_type == "cpu" else None):
        rows += _run_jobs(jobs, source, train, test, task, base, recipe, scratch, device, cache, progress, n_classes)
    df = pd.DataFrame(rows)
    df.insert(0, "task", task)
    df["config"] = df["strategy"] + " | " + df["labels"]
    return df[["task", "strategy", "labels", "per_class", "n_train", "seed", "epochs", "steps", "test_acc",
               "test_loss", "train_seconds", "config", "cached"]]


def _run_jobs(jobs, source, train, test, task, base, recipe, scratch, device, cache, progress, n_classes) -> list:
    """The trained and probed runs of :func:`run_transfer`, each from the cache or computed."""
    rows: list[dict] = []
    probe_features: dict = {}

    def probe_arrays():
        if "train" not in probe_features:
            model = _adapted_copy(source, train.dataset)
            probe_features["train"] = features(model, train, batch_size=recipe.eval_batch_size, device=device)
            probe_features["test"] = features(model, test, batch_size=recipe.eval_batch_size, device=device)
        return probe_features["train"], probe_features["test"]

    bar = tqdm(jobs, desc=task, unit="run", disable=not progress)
    for per_class, seed, strategy in bar:
        bar.set_postfix_str(f"{strategy} {_labels_name(per_class)}/class seed {seed}", refresh=False)
        idx = (torch.arange(len(train)) if per_class is None else few_label_indices(train, per_class, seed))
        key = "run-" + _digest(base, strategy, _labels_name(per_class), seed)[:24]
        body = _cache_get(key) if cache else None
        cached = body is not None
        if body is None:
            t0 = time.perf_counter()
            if strategy == LINEAR_PROBE:
                x_train, x_test = probe_arrays()
                memo = probe_features.setdefault("all", {}) if per_class is None else {}
                if "r" not in memo:  # with all labels the probe is the same for every seed: fitted once
                    memo["r"] = _probe(x_train[idx.numpy()], train.labels[idx].numpy(), x_test, test.labels.numpy(),
                                       recipe.probe_C, recipe.probe_max_iter)
                r = memo["r"]
                body = {"test_acc": r["acc"], "test_loss": r["loss"], "train_seconds": r["seconds"], "epochs": 0,
                        "steps": 0}
            else:
                subset = train.subset(idx)
                model, hist = transfer_model(source, subset, strategy, seed=seed, recipe=recipe, scratch=scratch,
                                             device=device)
                r = evaluate(model, test, batch_size=recipe.eval_batch_size)
                epochs, images = recipe.plan(len(subset))
                body = {"test_acc": r["acc"], "test_loss": r["loss"], "train_seconds": float(hist["seconds"].sum()),
                        "epochs": len(hist), "steps": len(hist) * math.ceil(images / recipe.batch_size)}
            body["run_seconds"] = time.perf_counter() - t0
            if cache:
                _cache_put(key, body)
        rows.append({"strategy": strategy, "labels": _labels_name(per_class),
                     "per_class": float(per_class) if per_class is not None else len(train) / max(1, n_classes),
                     "n_train": int(len(idx)), "seed": seed, "epochs": int(body["epochs"]), "steps": int(body["steps"]),
                     "test_acc": body["test_acc"], "test_loss": body["test_loss"],
                     "train_seconds": body["train_seconds"], "cached": cached})
    return rows


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
                    seeds: Iterable[int] = range(3), epochs: int = 10, recipe: TransferRecipe | None = None,
                    scratch=None, device="auto", cache: bool = True, progress: bool = True,
                    threads: int | None = 1) -> pd.DataFrame:
    """Per-epoch training and validation curves of the trained strategies on one labelled subset.

    Parameters
    ----------
    source, train, recipe, scratch, device, cache, progress, threads
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
    recipe = recipe or TransferRecipe()
    strategies = [s for s in _check_strategies(strategies)]
    bad = [s for s in strategies if s not in (FROZEN, FINE_TUNE, SCRATCH)]
    if bad:
        raise ValueError(f"learning_curves trains 'frozen', 'fine-tune' and 'scratch'; not {bad}.")
    seeds = [int(s) for s in seeds]
    base = {"version": _CACHE_VERSION, "kind": "curves", "source": _model_digest(source), "train": _data_digest(train),
            "val": _data_digest(val), "recipe": asdict(recipe), "epochs": int(epochs),
            "device": resolve_device(device).type, "labels": _labels_name(per_class),
            "scratch": scratch if not callable(scratch) else getattr(scratch, "__qualname__", repr(scratch))}
    frames = []
    for seed, strategy in tqdm([(s, st) for s in seeds for st in strategies], desc=f"{task}: curves", unit="run",
                               disable=not progress):
        key = "curve-" + _digest(base, strategy, seed)[:24]
        body = _cache_get(key) if cache else None
        if body is None:
            subset = few_labels(train, per_class, seed)
            with _threads(threads if resolve_device(device).type == "cpu" else None):
                _, hist = transfer_model(source, subset, strategy, seed=seed, recipe=recipe, val=val, epochs=epochs,
                                         scratch=scratch, device=device)
            hist = hist.assign(step=hist["epoch"] * math.ceil(recipe.plan(len(subset))[1] / recipe.batch_size))
            body = {"history": hist.to_dict(orient="list")}
            if cache:
                _cache_put(key, body)
        h = pd.DataFrame(body["history"])
        h.insert(0, "seed", seed)
        h.insert(0, "labels", _labels_name(per_class))
        h.insert(0, "strategy", strategy)
        h.insert(0, "task", task)
        frames.append(h)
    cols = ["task", "strategy", "labels", "seed", "epoch", "step", "train_loss", "train_acc", "val_loss", "val_acc",
            "elapsed"]
    return pd.concat(frames, ignore_index=True)[cols]


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


# --------------------------------------------------------------------------------------------
# ImageNet ResNet-18 (only from the local torch hub cache)
# --------------------------------------------------------------------------------------------

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class GreyToImageNet(nn.Module):
    """Grey digits in [0, 1] (B, 1, H, W) -> what an ImageNet network expects: (B, 3, size, size), normalised.

    Bilinear resize to ``size`` (anti-aliasing is irrelevant: digits are only enlarged), the grey
    channel repeated three times, then ImageNet's per-channel mean and std.
    """

    def __init__(self, size: int = 32):
        super().__init__()
        if int(size) < 16:
            raise ValueError(f"size must be at least 16 pixels for ResNet-18, got {size}.")
        self.size = int(size)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-2:] != (self.size, self.size):
            x = F.interpolate(x, size=(self.size, self.size), mode="bilinear", align_corners=False)
        return (x.expand(-1, 3, -1, -1) - self.mean) / self.std

    def extra_repr(self) -> str:
        return f"size={self.size}"


def _resnet18_weights():
    from torchvision.models import ResNet18_Weights

    return ResNet18_Weights.IMAGENET1K_V1


def imagenet_weights_path() -> Path:
    """Where torchvision looks for ResNet-18's ImageNet weights: ``torch.hub.get_dir()/checkpoints/<file>``.

    The folder follows ``$TORCH_HOME`` (default ``~/.cache/torch``); the file name is the last
    part of ``ResNet18_Weights.IMAGENET1K_V1.url`` (``resnet18-f37072fd.pth``).
    """
    name = os.path.basename(urlparse(_resnet18_weights().url).path)
    return Path(torch.hub.get_dir()) / "checkpoints" / name


def imagenet_weights_available() -> bool:
    """Whether the ImageNet ResNet-18 weights file is already in the torch hub cache (nothing is downloaded)."""
    return imagenet_weights_path().is_file()


def imagenet_weights_hint() -> str:
    """One sentence on how to put the ImageNet weights where :func:`imagenet_resnet18` finds them."""
    path = imagenet_weights_path()
    return (f"The ImageNet ResNet-18 weights are not in the torch hub cache, so this section is skipped: copy "
            f"{path.name} (from {_resnet18_weights().url}, or from ~/.cache/torch/hub/checkpoints/ of a machine "
            f"that ran torchvision.models.resnet18(weights='IMAGENET1K_V1')) to {path} "
            f"(or point TORCH_HOME at a folder holding hub/checkpoints/{path.name}) and run it again.")


def imagenet_resnet18(num_classes: int = 10, *, size: int = 32, pretrained: bool = True, seed: int | None = None,
                      dataset: str = "mnist") -> Classifier:
    """torchvision's ResNet-18 as a :class:`Classifier` for grey 28x28 digits.

    ``body`` is :class:`GreyToImageNet` (resize to ``size``, 3 channels, ImageNet constants)
    followed by the ResNet without its 1000-class layer (512 features); ``head`` is a new
    ``nn.Linear(512, num_classes)``. The model declares ``"unit"`` preprocessing (pixels in
    [0, 1]), since the ImageNet normalisation happens inside.

    Parameters
    ----------
    num_classes : int
    size : int
        Input side in pixels (32 keeps a CPU run short; 112 or 224 on a GPU).
    pretrained : bool
        Load ``ResNet18_Weights.IMAGENET1K_V1`` through torchvision's weights API, only from the
        local torch hub cache (:func:`imagenet_weights_path`); ``False``: random initialisation.
    seed : int, optional
        Initialisation of the random parts (the head; everything when not pretrained); the global
        RNG is left untouched.
    dataset : str
        The target dataset (its class names).

    Raises
    ------
    FileNotFoundError
        ``pretrained=True`` and the weights are not in the cache; the message says where to put them.
    """
    from torchvision.models import resnet18

    if pretrained and not imagenet_weights_available():
        raise FileNotFoundError(imagenet_weights_hint())
    with torch.random.fork_rng(devices=[]):
        if seed is not None:
            torch.manual_seed(int(seed))
        net = resnet18(weights=_resnet18_weights() if pretrained else None, progress=False)
        net.fc = nn.Identity()
        head = nn.Linear(512, int(num_classes))
    model = Classifier(nn.Sequential(GreyToImageNet(size), net), head)
    model.config = {"name": RESNET18, "kwargs": {"num_classes": int(num_classes), "size": int(size),
                                                 "pretrained": bool(pretrained)}}
    model.preprocessing = Preprocessing.create("unit", dataset)
    return model
