"""``TrainConfig``: the one description of a training run (after nanoGPT's config dataclass).

The experiment harness caches runs under a hash of it, the command line builds one from its
flags (every field is a flag), recipes are named instances, and a checkpoint stores the config
its model was trained with. Values are plain JSON, so a config hashes and saves reproducibly.

Examples
--------
>>> from mnistlab.training.config import TrainConfig
>>> base = TrainConfig("lenet5 vanilla", model="lenet5", optimizer="adam", lr=2e-4, normalize="unit")
>>> base.but(name="batch 64", batch_size=64).batch_size
64
"""
from __future__ import annotations

import dataclasses
import functools
import math
from dataclasses import dataclass, field
from typing import Any, Mapping

from .._util import to_jsonable
from ..data.datasets import dataset_info
from ..data.loader import Augment
from ..models.registry import _REGISTRY, MAX_PARAMETERS, create_model  # noqa: F401 (the one cap, re-exported)
from .optim import OPTIMIZERS, SCHEDULERS

__all__ = ["TrainConfig", "as_config", "check_model", "resolve_init_from", "MAX_PARAMETERS"]


def _help(text: str, default=None, factory=None):
    if factory is not None:
        return field(default_factory=factory, metadata={"help": text})
    return field(default=default, metadata={"help": text})


#: batch size of :func:`mnistlab.evaluate`, :func:`~mnistlab.predict`, :func:`~mnistlab.features` and the
#: per-epoch validation. On a CPU a batch of 256 keeps a conv net's activations in the processor's cache:
#: evaluating 10,000 test images took 1.9 s against 4.5 s in batches of 2000 (the old default) for the deeper
#: LeNet-progression net, and 6.0 s against 11.5 s for the ``best`` net, on 1 thread of a 2-core AMD EPYC
#: (benchmarks/train_step.py measures it).
EVAL_BATCH_SIZE = 256


@dataclass(frozen=True)
class TrainConfig:
    """One training run, as plain values.

    ``name`` and ``description`` label tables and plots and are *not* part of the cache key, so
    two names for the same settings share their cached runs. Every other field is. Invalid
    values raise ``ValueError`` naming the field and the allowed range, before any work starts.
    """

    name: str = _help("label in tables and plots (not part of the cache key)", "run")
    model: str = _help("registry name of the network (see `mnistlab models`)", "lenet5")
    model_kwargs: Mapping[str, Any] = _help("constructor arguments of the network, e.g. {\"width\": 32}",
                                            factory=dict)
    epochs: int = _help("passes over the training set (0: the untrained baseline, only evaluated)", 10)
    optimizer: str = _help(f"one of {', '.join(OPTIMIZERS)}", "adam")
    lr: float | None = _help("learning rate (peak rate for onecycle); default per optimizer", None)
    momentum: float | None = _help("momentum of sgd/momentum/nesterov/rmsprop; default per optimizer", None)
    weight_decay: float = _help("L2 weight decay (>= 0)", 0.0)
    batch_size: int = _help("training batch size", 128)
    scheduler: str | None = _help(f"learning-rate schedule: {', '.join(SCHEDULERS)} or none", None)
    gamma: float = _help("learning-rate factor per epoch of the steplr schedule", 0.7)
    label_smoothing: float = _help("label smoothing of the cross-entropy, in [0, 1)", 0.0)
    normalize: Any = _help("input normalisation: standard, unit, symmetric or [mean, std]", "standard")
    augment: Mapping[str, Any] | None = _help("random affine batch augmentation (Augment arguments) or none", None)
    dataset: str = _help("mnist, fashion-mnist or kmnist", "mnist")
    train_limit: int | None = _help("train on the first N training images only", None)
    test_limit: int | None = _help("test on the first N test images only", None)
    val: Any = _help("per-epoch validation: test, none, a fraction or a count of held-out training images", "test")
    split_seed: int = _help("seed of the train/validation split", 0)
    early_stopping: Mapping[str, Any] | None = _help("EarlyStopping arguments (needs val), e.g. {\"patience\": 3}",
                                                      None)
    min_steps: int | None = _help("train at least this many optimizer steps: a small training set gets more epochs "
                                  "(the budget grows with the data, never below `epochs` passes)", None)
    eval_batch_size: int = _help("batch size of the per-epoch validation", EVAL_BATCH_SIZE)
    init_from: str | None = _help("start from the weights of a source run: its cache key (a run kept with "
                                  "keep_model) or a checkpoint path; the head is replaced unless keep_head", None)
    keep_head: bool = _help("with init_from: keep the source's head when it has as many classes as the data", False)
    freeze: Any = _help("frozen layers: none, features (all but the head), or the last frozen layer's name or "
                        "position", None)
    head_lr: float | None = _help("learning rate of the classification head; default lr", None)
    body_lr: float | None = _help("learning rate of every layer but the head (e.g. pretrained features); "
                                  "default lr", None)
    description: str = _help("one line on what the config is for (not part of the cache key)", "")

    def __post_init__(self):
        aug = self.augment
        if isinstance(aug, Augment):
            aug = dataclasses.asdict(aug)
        if aug is not None and not isinstance(aug, Mapping):
            raise ValueError(f"augment must be None, a dict of Augment arguments or an Augment, not {aug!r}.")
        if aug is not None:
            _check_augment(aug)
            try:
                Augment.from_dict(aug)
            except TypeError as exc:
                raise ValueError(f"augment: {exc}; allowed keys: {[f.name for f in dataclasses.fields(Augment)]}.") \
                    from None
        set_ = lambda k, v: object.__setattr__(self, k, v)  # noqa: E731 (frozen dataclass)
        set_("augment", None if aug is None else to_jsonable(dict(aug), strict=True))
        if not isinstance(self.model_kwargs or {}, Mapping):
            raise ValueError(f"model_kwargs must be a dict of constructor arguments, not {self.model_kwargs!r}.")
        set_("model_kwargs", to_jsonable(dict(self.model_kwargs or {}), strict=True))
        if self.early_stopping is not None:
            if not isinstance(self.early_stopping, Mapping):
                raise ValueError(f"early_stopping must be a dict of EarlyStopping arguments, not {self.early_stopping!r}.")
            set_("early_stopping", to_jsonable(dict(self.early_stopping), strict=True))
        if isinstance(self.normalize, (list, tuple)):
            try:
                set_("normalize", [float(v) for v in self.normalize])
            except (TypeError, ValueError):
                raise ValueError(f"normalize = {self.normalize!r} is not allowed: standard, unit, symmetric or "
                                 "[mean, std] with two numbers, std > 0.") from None
        if isinstance(self.scheduler, str) and self.scheduler.lower() == "none":
            set_("scheduler", None)
        self._validate()

    def _validate(self) -> None:
        def bad(field_name, value, allowed):
            raise ValueError(f"{field_name} = {value!r} is not allowed: {allowed}.")

        def is_int(v):
            return isinstance(v, int) and not isinstance(v, bool)

        def is_num(v):
            return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)

        if self.model not in _REGISTRY:
            bad("model", self.model, f"choose one of {', '.join(sorted(_REGISTRY))}")
        if not is_int(self.epochs) or self.epochs < 0:
            bad("epochs", self.epochs, "a whole number >= 1 (0 for the untrained baseline)")
        if self.optimizer not in OPTIMIZERS:
            bad("optimizer", self.optimizer, f"choose one of {', '.join(OPTIMIZERS)}")
        if self.lr is not None and not (is_num(self.lr) and 0 < self.lr <= 100):
            bad("lr", self.lr, "a learning rate in (0, 100]")
        if self.momentum is not None and not (is_num(self.momentum) and 0 <= self.momentum < 1):
            bad("momentum", self.momentum, "a number in [0, 1)")
        if not (is_num(self.weight_decay) and 0 <= self.weight_decay < 1):
            bad("weight_decay", self.weight_decay, "a number in [0, 1)")
        if not is_int(self.batch_size) or not 1 <= self.batch_size <= 65536:
            bad("batch_size", self.batch_size, "a whole number from 1 to 65536")
        if self.scheduler is not None and self.scheduler not in SCHEDULERS:
            bad("scheduler", self.scheduler, f"choose one of {', '.join(SCHEDULERS)} or none")
        if not (is_num(self.gamma) and 0 < self.gamma <= 1):
            bad("gamma", self.gamma, "a factor in (0, 1]")
        if not (is_num(self.label_smoothing) and 0 <= self.label_smoothing < 1):
            bad("label_smoothing", self.label_smoothing, "a number in [0, 1)")
        norm = self.normalize
        if not (norm in ("standard", "unit", "symmetric") or (isinstance(norm, list) and len(norm) == 2
                                                               and all(is_num(v) for v in norm) and norm[1] > 0)):
            bad("normalize", norm, "standard, unit, symmetric or [mean, std] with std > 0")
        try:
            dataset_info(self.dataset)
        except ValueError as exc:
            raise ValueError(f"dataset: {exc}") from None
        for name in ("train_limit", "test_limit"):
            v = getattr(self, name)
            if v is not None and (not is_int(v) or v < 1):
                bad(name, v, "a whole number of images >= 1, or none for all")
        v = self.val
        if not (v is None or v == "test" or (is_num(v) and (0 < v < 1 or (is_int(v) and v >= 1)))):
            bad("val", v, "test, none, a fraction in (0, 1) or a count of training images")
        if self.early_stopping is not None and v is None:
            raise ValueError("early_stopping needs per-epoch validation: set val='test' or a fraction.")
        if is_int(v) and self.train_limit is not None and v >= self.train_limit:
            bad("val", v, f"fewer held-out images than train_limit ({self.train_limit}), or training gets none")
        if not isinstance(self.name, str) or not self.name.strip():
            bad("name", self.name, "a non-empty label")
        if not isinstance(self.description, str):
            bad("description", self.description, "a string")
        if not is_int(self.split_seed) or self.split_seed < 0:
            bad("split_seed", self.split_seed, "a whole number >= 0")
        if self.early_stopping is not None:
            _check_early_stopping(self.early_stopping)
        if self.min_steps is not None and (not is_int(self.min_steps) or self.min_steps < 1):
            bad("min_steps", self.min_steps, "a whole number of steps >= 1, or none")
        if not is_int(self.eval_batch_size) or self.eval_batch_size < 1:
            bad("eval_batch_size", self.eval_batch_size, "a whole number >= 1")
        if self.init_from is not None and (not isinstance(self.init_from, str) or not self.init_from.strip()):
            bad("init_from", self.init_from, "a cache key or a checkpoint path, or none")
        if not isinstance(self.keep_head, bool):
            bad("keep_head", self.keep_head, "true or false")
        if self.keep_head and self.init_from is None:
            bad("keep_head", self.keep_head, "only with init_from (a fresh model has no source head to keep)")
        if not (self.freeze is None or self.freeze == "features" or isinstance(self.freeze, str)
                or is_int(self.freeze)):
            bad("freeze", self.freeze, "none, features, or a layer's name or position")
        for name in ("head_lr", "body_lr"):
            v = getattr(self, name)
            if v is not None and not (is_num(v) and 0 < v <= 100):
                bad(name, v, "a learning rate in (0, 100], or none for lr")
        check_model(self.model, self.model_kwargs, self.dataset)

    def recipe(self) -> dict:
        """The settings that define the run: :meth:`to_dict` without ``name`` and ``description`` (the cache key).

        Fields added after the cache began (:data:`LATER_FIELDS`) enter only when they differ from
        their defaults, so a config that does not use them keeps its cached results.
        """
        d = self.to_dict()
        d.pop("name")
        d.pop("description")
        for name, default in LATER_FIELDS.items():
            if d[name] == default:
                d.pop(name)
        return d

    def to_dict(self) -> dict:
        """All fields as a plain, JSON-serialisable dict."""
        return to_jsonable({f.name: getattr(self, f.name) for f in dataclasses.fields(self)}, strict=True)

    def but(self, **changes) -> "TrainConfig":
        """A copy with some fields changed, e.g. ``base.but(name="batch 64", batch_size=64)``."""
        return as_config({**self.to_dict(), **changes})

    def make_augment(self) -> Augment | None:
        """The :class:`mnistlab.Augment` described by ``augment`` (``None`` if none)."""
        return None if self.augment is None else Augment.from_dict(self.augment)

    def build_model(self, seed: int | None = None, num_classes: int | None = None):
        """The network the run starts from: :func:`mnistlab.training.recipes.build_model` of this config."""
        from .recipes import build_model

        return build_model(self, seed, num_classes)

    @classmethod
    def fields_help(cls) -> dict[str, tuple[Any, str]]:
        """``{field: (default, one-line help)}`` (the command line's ``--help`` reads it)."""
        out = {}
        for f in dataclasses.fields(cls):
            default = f.default_factory() if f.default is dataclasses.MISSING else f.default
            out[f.name] = (default, f.metadata.get("help", ""))
        return out




def _check_augment(aug: Mapping) -> None:
    """Types and ranges of the augmentation settings (the Augment class itself takes anything)."""
    def num(v):
        return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)

    rules = {"rotation": (lambda v: num(v) and 0 <= v <= 180, "degrees in [0, 180]"),
             "translate": (lambda v: num(v) and 0 <= v <= 14, "pixels in [0, 14]"),
             "shear": (lambda v: num(v) and 0 <= v <= 60, "degrees in [0, 60]"),
             "hflip": (lambda v: num(v) and 0 <= v <= 1, "a probability in [0, 1]"),
             "scale": (lambda v: isinstance(v, (list, tuple)) and len(v) == 2 and all(num(x) for x in v)
                       and 0 < v[0] <= v[1] <= 4, "a range [low, high] with 0 < low <= high <= 4")}
    for key, value in aug.items():
        ok, allowed = rules.get(key, (lambda v: True, ""))
        if not ok(value):
            raise ValueError(f"augment {key} = {value!r} is not allowed: {allowed}.")


def _check_early_stopping(settings: Mapping) -> None:
    """Keys and values of the EarlyStopping arguments (a typo would otherwise fail only when training starts)."""
    def num(v):
        return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)

    rules = {"monitor": (lambda v: isinstance(v, str) and bool(v), "the name of a history column, e.g. val_loss"),
             "patience": (lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0, "a whole number >= 0"),
             "min_delta": (lambda v: num(v) and v >= 0, "a number >= 0"),
             "mode": (lambda v: v in ("auto", "min", "max"), "auto, min or max"),
             "restore_best_weights": (lambda v: isinstance(v, bool), "true or false")}
    for key, value in settings.items():
        if key not in rules:
            raise ValueError(f"early_stopping has no setting {key!r}; allowed: {', '.join(rules)}.")
        ok, allowed = rules[key]
        if not ok(value):
            raise ValueError(f"early_stopping {key} = {value!r} is not allowed: {allowed}.")


def check_model(name: str, kwargs: Mapping, dataset: str = "mnist"):
    """Check that ``create_model(name, **kwargs)`` builds a sound classifier for ``dataset``, allocating nothing.

    The model is built on PyTorch's meta device (shapes only): argument types are compared with
    the constructor's defaults, the parameter count is capped at :data:`MAX_PARAMETERS`, no
    layer may be empty, and one forward pass must give one score per class of ``dataset``.

    Parameters
    ----------
    name : str
        Registry name of the model.
    kwargs : mapping
        Constructor arguments.
    dataset : str
        The dataset whose number of classes the output must match.

    Returns
    -------
    torch.nn.Module
        The model on the meta device (no memory behind its parameters).

    Raises
    ------
    ValueError
        Naming the argument and what is wrong with it.
    """
    import json

    return _check_model(name, json.dumps(to_jsonable(dict(kwargs), strict=True), sort_keys=True), dataset)


@functools.lru_cache(maxsize=256)
def _check_model(name: str, kwargs_json: str, dataset: str):
    import json
    import warnings

    import torch

    kwargs = json.loads(kwargs_json)
    if name not in _REGISTRY:
        raise ValueError(f"model = {name!r} is not allowed: choose one of {', '.join(sorted(_REGISTRY))}.")
    try:  # create_model checks the arguments' types, the size cap and empty layers on the meta device
        with torch.device("meta"), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "Initializing zero-element tensors is a no-op"
            shell = create_model(name, dataset=dataset, **kwargs)
        # the scores per image from two blank images on the CPU (within the size cap): on the meta device
        # BatchNorm runs a Python decomposition that imports torch._dynamo, 1.5 s of every `import mnistlab`;
        # the global random state is left as it was
        with torch.random.fork_rng(devices=[]), torch.no_grad():
            out = create_model(name, dataset=dataset, **kwargs).eval()(torch.zeros((2, *shell.preprocessing.input_size)))
    except ValueError as exc:
        raise ValueError(f"model_kwargs: {exc}") from None
    except (TypeError, RuntimeError, ZeroDivisionError) as exc:
        raise ValueError(f"model_kwargs {dict(kwargs)} do not build model {name!r}: "
                         f"{' '.join(str(exc).split())}") from None
    classes = len(dataset_info(dataset).classes)
    if tuple(out.shape) != (2, classes):
        raise ValueError(f"model_kwargs {dict(kwargs)}: model {name!r} gives {tuple(out.shape[1:])} scores per "
                         f"image, but {dataset} has {classes} classes.")
    return shell


FIELDS = frozenset(f.name for f in dataclasses.fields(TrainConfig))

LATER_FIELDS = {"min_steps": None, "eval_batch_size": EVAL_BATCH_SIZE, "init_from": None, "keep_head": False, "freeze": None,
                "head_lr": None, "body_lr": None}
"""Fields added after results were cached, with their defaults (left out of :meth:`TrainConfig.recipe` at them).

``eval_batch_size``'s default went from 2000 to 256 (:data:`EVAL_BATCH_SIZE`): a
config at the default keeps its key, and a result cached before evaluated in batches of 2000, which
changes a validation loss only in its last float digits."""


def resolve_init_from(init_from: str):
    """The checkpoint file an ``init_from`` value names: an existing path, or ``<cache root>/<key>.pt``.

    Parameters
    ----------
    init_from : str
        A checkpoint path, or the cache key (``hash`` column, 12 or 64 hex digits) of a run kept
        with ``keep_model=True``.

    Returns
    -------
    pathlib.Path

    Raises
    ------
    FileNotFoundError
        Neither a file nor a kept run; the message says how to keep one.
    """
    from pathlib import Path

    from .._util import cache_root

    path = Path(init_from).expanduser()
    if path.is_file():
        return path
    root = cache_root(create=False)
    hits = sorted(root.glob(f"{init_from}*.pt")) if root.is_dir() and init_from.isalnum() else []
    hits = [p for p in hits if "." not in p.stem]
    if len(hits) == 1:
        return hits[0]
    raise FileNotFoundError(f"init_from = {init_from!r} names no checkpoint file and no kept run in {root}: pass a "
                            "checkpoint path, or the hash of a run trained with experiments.run(..., keep_model=True).")


def as_config(config) -> TrainConfig:
    """Accept a :class:`TrainConfig` or a dict of its fields; raise a clear error on unknown keys."""
    return _config_of(config, TrainConfig, FIELDS, "config")


def _config_of(config, cls: type, fields: frozenset, what: str):
    """``config`` if it is a ``cls`` already, else ``cls(**config)`` from a mapping of its ``fields``.

    Serves :func:`as_config` and :func:`mnistlab.training.gan_config.as_gan_config`; ``what``
    names the kind of config in the errors (a TypeError for a value that is no mapping, a
    ValueError for unknown keys).
    """
    if isinstance(config, cls):
        return config
    if not isinstance(config, Mapping):
        raise TypeError(f"A {what} is a mnistlab.{cls.__name__} or a dict, not {type(config).__name__}.")
    unknown = sorted(set(config) - fields)
    if unknown:
        raise ValueError(f"Unknown {what} keys {unknown}; allowed keys: {sorted(fields)}.")
    return cls(**config)
