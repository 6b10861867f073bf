"""Recorders of training dynamics: weight / gradient / update histograms, activation statistics, snapshots.

:class:`HistogramRecorder` is a training callback. Every ``every`` optimizer steps it records, for
each parameterised layer (convolutions and linear layers by default), a histogram of the weights,
of the gradients (after ``backward``, before the optimizer step) and of the updates (the change
the step made), over bin edges shared by every frame of a layer and quantity so that frames are
comparable over training. The edges are set at the first record (+- 3 max |x|; +- 30 max |x| for
asinh bins) and doubled whenever a later record holds values beyond them; the frames recorded
before are then merged into the wider bins, which is exact, so the edges always cover the data of
every record.

Weights are binned linearly. Gradients and updates are binned evenly in ``asinh(x / w)`` (``binning``;
``w`` = max |x| of the first record / 1000): linear within +- w, logarithmic beyond, so a frame
whose values are 10 or 100 times smaller than the first record's still spreads over many bins.
That matters for adaptive optimizers: RMSprop's first step moves every weight by exactly +- 10 lr
(its squared-gradient average starts at zero), its later steps by about lr and less, so linear bins
fitted to the first step would squeeze every later frame into a few central bins. Beside the
counts it keeps summary numbers (mean, std, mean and max absolute value, norm, excess kurtosis,
fraction outside the first record's edges; for updates also ``ratio`` = ||dw|| / ||w||), and forward hooks on the
activation modules record the activations' mean, std and the fractions of zero outputs, of dead
units and of saturated outputs.

Counts and numbers stay on the training device and are copied to the CPU in batches of
``sync_every`` records, not at every step. Only counts are kept, never whole tensors, so a
5-epoch run of ``conv2_fc2`` recorded every 50 steps holds well under a megabyte.

:class:`ActivationHooks` is the context manager behind the activation statistics (the hooks are
removed when it exits, also on an exception); :class:`SnapshotRecorder` keeps copies of the
weights at chosen steps (the hidden representation over training and the loss along the line
from the initial to the final weights are computed from them).

Both recorders set ``artifact_name`` and implement ``save_artifact`` / ``load_artifact``, so
``mnistlab.experiments.run(config, seed, callbacks=[rec])`` stores what they recorded beside the
cached run and fills them again on a cache hit instead of retraining.

Examples
--------
>>> import mnistlab as ml                                                     # doctest: +SKIP
>>> rec = ml.HistogramRecorder(every=50)
>>> ml.fit(ml.create_model("conv2_fc2", seed=0), train, test, ml.TrainConfig(epochs=1), callbacks=[rec])
>>> rec.stats.head()                              # step, epoch, layer, quantity, statistic, value
>>> h = rec.histograms("weights")                 # h.counts: (frames, layers, bins), h.edges: (layers, bins + 1)
"""
from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn

from .callbacks import Callback
from .._util import atomic_write

__all__ = [
    "QUANTITIES", "STATISTICS", "ACTIVATION_STATISTICS", "LAYER_TYPES", "ACTIVATION_TYPES",
    "HistogramFrames", "parameterised_layers", "tensor_statistics", "ActivationHooks", "activation_statistics",
    "HistogramRecorder", "SnapshotRecorder", "merge_bins", "layer_names", "BINNINGS",
]

QUANTITIES = ("weights", "gradients", "updates")
"""What :class:`HistogramRecorder` can record per layer."""

STATISTICS = ("mean", "std", "abs_mean", "abs_max", "norm", "kurtosis", "outside", "nonfinite")
"""Summary numbers recorded per layer and quantity (``ratio`` is added for updates)."""

ACTIVATION_STATISTICS = ("mean", "std", "zero_frac", "dead_frac", "saturated_frac")
"""Summary numbers recorded per activation module (``saturated_frac`` only for sigmoid and tanh)."""

LAYER_TYPES = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)
"""Layers recorded by default: those whose weights the training-dynamics story is about."""

ACTIVATION_TYPES = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.ELU, nn.GELU, nn.SiLU, nn.Sigmoid, nn.Tanh, nn.Softplus)
"""Activation modules that :class:`ActivationHooks` hooks by default."""

_PREFIX = {nn.Linear: "fc", nn.Conv1d: "conv", nn.Conv2d: "conv", nn.Conv3d: "conv",
           nn.BatchNorm1d: "bn", nn.BatchNorm2d: "bn", nn.LayerNorm: "ln", nn.Embedding: "emb"}
_DEFAULT_RANGE_FACTOR = {"linear": 3.0, "asinh": 30.0}
"""Default ``range_factor`` by binning: asinh bins are cheap to make wide (a decade costs few bins), so
they leave room for a gradient that grows tenfold before the edges have to double."""
BINNINGS = ("linear", "asinh")
"""How :class:`HistogramRecorder` can space its bins: evenly in x, or evenly in asinh(x / linear width)."""
_DEFAULT_BINNING = {"weights": "linear", "gradients": "asinh", "updates": "asinh"}
_DEFAULT_DECADES = 3.0
"""asinh bins: the linear width is 10**-decades times the first record's max |x|."""
_MAX_DOUBLINGS = 64
"""How often a layer's automatic edges may double (2**64 times the first record's range)."""


def _write_npz(path: Path, arrays: dict) -> Path:
    """Write ``arrays`` as a compressed .npz atomically (the package's one atomic write); return ``path``."""
    atomic_write(path, lambda fh: np.savez_compressed(fh, **arrays))
    return path


# --------------------------------------------------------------------------------------------
# Layers and statistics
# --------------------------------------------------------------------------------------------

def layer_names(model: nn.Module) -> dict[str, str]:
    """Short readable names of every module of ``model`` that owns a ``weight`` parameter, by module path.

    The one naming of layers in the package: the recorders, the training-dynamics figures and
    the interpretation of notebook 06 (feature maps, channel activations, the randomisation
    check) all say ``conv1``, ``fc2``, ``bn1`` for the same module.

    Parameters
    ----------
    model : nn.Module

    Returns
    -------
    dict
        Module path (as in ``model.named_modules()``, e.g. ``"body.0"``) -> name, in definition
        order. Names count per kind: ``conv1``, ``conv2`` (convolutions), ``fc1``, ``fc2`` (linear),
        ``bn1`` (batch norm), ``ln1`` (layer norm), ``emb1`` (embeddings); other modules take
        their lower-case class name (``groupnorm1``).

    Examples
    --------
    >>> layer_names(ml.create_model("fast", seed=0))       # doctest: +SKIP
    {'body.0': 'conv1', 'body.1': 'bn1', 'body.4': 'conv2', ..., 'head': 'fc1'}
    """
    counters: dict[str, int] = {}
    names = {}
    for path, module in model.named_modules():
        if not isinstance(getattr(module, "weight", None), nn.Parameter):
            continue
        prefix = next((p for t, p in _PREFIX.items() if type(module) is t), type(module).__name__.lower())
        counters[prefix] = counters.get(prefix, 0) + 1
        names[path] = f"{prefix}{counters[prefix]}"
    return names


def parameterised_layers(model: nn.Module, types: Sequence[type] | None = LAYER_TYPES) -> list[tuple[str, str, nn.Module]]:
    """The layers with a ``weight`` parameter, in definition order, with short readable names.

    Parameters
    ----------
    model : nn.Module
    types : sequence of module classes, optional
        Which layers to include (default :data:`LAYER_TYPES`: linear and convolution layers);
        ``None`` includes every module that owns a ``weight`` parameter (batch norm too).

    Returns
    -------
    list of (name, path, module)
        ``name`` from :func:`layer_names` (``conv1``, ``conv2``, ``fc1``, ``fc2``, ``bn1``...,
        counted per kind in definition order, the same whatever ``types`` selects), ``path`` is
        the module's path in ``model.named_modules()``.

    Raises
    ------
    ValueError
        If the model has no such layer.
    """
    names = layer_names(model)
    out = [(names[path], path, module) for path, module in model.named_modules()
           if path in names and (types is None or isinstance(module, tuple(types)))]
    if not out:
        kinds = "any module with a weight" if types is None else ", ".join(t.__name__ for t in types)
        raise ValueError(f"{type(model).__name__} has no parameterised layer of the kinds recorded ({kinds}); "
                         "pass layer_types=None to record every module with a weight parameter.")
    return out


def _segment_record(x: torch.Tensor, seg: torch.Tensor, sizes: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor,
                    bins: int, grow: tuple[torch.Tensor, torch.Tensor] | None = None,
                    scale: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Histogram counts and :data:`STATISTICS` of several tensors at once, with no host synchronisation.

    ``x`` is the float32 concatenation of L flattened tensors, ``seg`` (same length) the tensor
    each value belongs to, ``sizes`` (L,) their lengths, ``lo`` / ``hi`` (L,) float32 their edges.
    Binning follows ``torch.histc`` on the CPU: bin = floor((x - lo) / (hi - lo) * bins) of the
    value clamped to [lo, hi], the upper edge in the last bin; non-finite values are left out
    (counted in ``nonfinite``). A handful of kernels for all layers together, so recording on a
    GPU costs little and never waits for the device.

    ``grow = (k, can)`` widens the edges: ``k`` (L,) float32 is the number of times each layer's
    edges were already doubled (about their centre), ``can`` (L,) bool which layers may grow.
    Those layers get the smallest ``k' >= k`` (at most :data:`_MAX_DOUBLINGS`) whose edges
    ``centre +- half * 2**k'`` hold every finite value (for edges centred on 0, which automatic
    edges are), and the counts are taken over those edges. ``outside`` stays relative to
    ``lo`` / ``hi``.

    ``scale`` (L,) float32, optional: layers with ``scale > 0`` are binned by ``u = asinh(x / scale)``
    (the formula above with ``u`` for ``x``) and their ``lo`` / ``hi`` are in ``u``; the
    statistics are always those of ``x``.

    Returns
    -------
    counts : torch.Tensor
        ``(L, bins)`` float32.
    stats : torch.Tensor
        ``(L, len(STATISTICS))`` float32.
    k : torch.Tensor or None
        ``(L,)`` float32 doublings used for the counts (``None`` without ``grow``).
    """
    L = len(sizes)
    finite = torch.isfinite(x)
    w = finite.to(x.dtype)
    xs = torch.where(finite, x, torch.zeros((), dtype=x.dtype, device=x.device))
    lo_s, hi_s = lo[seg], hi[seg]

    def seg_sum(v: torch.Tensor) -> torch.Tensor:
        return torch.zeros(L, dtype=v.dtype, device=v.device).index_add_(0, seg, v)

    n = seg_sum(w)
    mean = seg_sum(xs) / n
    d = (xs - mean[seg]) * w
    d2 = d * d
    m2 = seg_sum(d2) / n
    m4 = seg_sum(d2 * d2) / n
    kurt = torch.where(m2 > 0, m4 / (m2 * m2) - 3.0, torch.full_like(m2, float("nan")))
    a = xs.abs()
    amax = torch.zeros(L, dtype=x.dtype, device=x.device).scatter_reduce_(0, seg, a, reduce="amax")
    vb, amax_b = xs, amax                                   # what is binned: x, or asinh(x / scale)
    if scale is not None:
        logb = scale > 0
        safe = torch.where(logb, scale, torch.ones_like(scale))
        vb = torch.where(logb[seg], torch.asinh(xs / safe[seg]), xs)
        amax_b = torch.where(logb, torch.asinh(amax / safe), amax)
    outside = seg_sum((((vb < lo_s) | (vb > hi_s)) & finite).to(x.dtype)) / n
    stats = torch.stack([mean, m2.sqrt(), seg_sum(a) / n, amax, seg_sum(xs * xs).sqrt(), kurt, outside,
                         1.0 - n / sizes.to(x.dtype)], dim=1)
    k = None
    if grow is not None:
        k_prev, can = grow
        half = (hi - lo) * 0.5
        need = torch.ceil(torch.log2(torch.clamp(amax_b / half, min=1.0))).clamp_(max=_MAX_DOUBLINGS)
        k = torch.where(can, torch.maximum(k_prev, need), k_prev)
        centre, span = (hi + lo) * 0.5, (half * torch.exp2(k)).clamp_(max=1e38)
        lo, hi = centre - span, centre + span
        lo_s, hi_s = lo[seg], hi[seg]
    pos = ((torch.minimum(torch.maximum(vb, lo_s), hi_s) - lo_s) / (hi_s - lo_s) * bins).long().clamp_(0, bins - 1)
    counts = torch.zeros(L * bins, dtype=x.dtype, device=x.device).index_add_(0, seg * bins + pos, w)
    return counts.reshape(L, bins), stats, k


def tensor_statistics(t: torch.Tensor, lo: float, hi: float) -> torch.Tensor:
    """Summary numbers of a tensor, in the order of :data:`STATISTICS`, as one float32 tensor on its device.

    Parameters
    ----------
    t : torch.Tensor
        Any shape; non-finite entries are counted in ``nonfinite`` and left out of the others.
    lo, hi : float
        The histogram's edges: ``outside`` is the fraction of finite values below ``lo`` or above ``hi``.

    Returns
    -------
    torch.Tensor
        ``(len(STATISTICS),)``: mean, std (population), mean |x|, max |x|, L2 norm, excess kurtosis
        (0 for a normal distribution, -1.2 for a uniform one; NaN for a constant tensor), fraction
        outside [lo, hi], fraction non-finite.
    """
    x = t.detach().reshape(-1).float()
    bounds = torch.tensor([lo, hi], dtype=torch.float32, device=x.device)
    _, stats, _ = _segment_record(x, torch.zeros(len(x), dtype=torch.long, device=x.device),
                                  torch.tensor([len(x)], device=x.device), bounds[:1], bounds[1:], 2)
    return stats[0]


def _edge_range(t: torch.Tensor, factor: float) -> tuple[float, float]:
    x = t.detach().reshape(-1).float()
    x = x[torch.isfinite(x)]
    r = float(x.abs().max()) * factor if x.numel() else 0.0
    if not np.isfinite(r) or r <= 0:
        r = 1e-8  # an all-zero tensor (e.g. a gradient that never flows): tiny symmetric range
    return -r, r


# --------------------------------------------------------------------------------------------
# Activation hooks
# --------------------------------------------------------------------------------------------

def _activation_names(model: nn.Module, types) -> list[tuple[str, nn.Module]]:
    """Activation modules named after the parameterised layer before them: ``conv1.relu``, ``fc2.sigmoid``."""
    names, counts, last = [], {}, "input"
    try:
        layer_names = {id(m): n for n, _, m in parameterised_layers(model, LAYER_TYPES)}
    except ValueError:  # no linear or convolution layer: name activations by order only
        layer_names = {}
    for _, module in model.named_modules():
        if id(module) in layer_names:
            last = layer_names[id(module)]
        elif isinstance(module, tuple(types)):
            base = f"{last}.{type(module).__name__.lower()}"
            counts[base] = counts.get(base, 0) + 1
            names.append((base if counts[base] == 1 else f"{base}{counts[base]}", module))
    return names


class ActivationHooks(contextlib.AbstractContextManager):
    """Forward hooks on a model's activation modules that compute statistics of their outputs.

    A context manager: the hooks exist only inside the ``with`` block and are removed when it
    exits, also when the block raises (inside it, :meth:`remove` and :meth:`attach` take them
    off and put them back, so passes that are not recorded run without hooks). Statistics are
    computed only while :attr:`active` is True (and, with ``training_only``, only for forward
    passes in training mode), on the device, in the order of :data:`ACTIVATION_STATISTICS`; the
    last captured pass of every module is in :attr:`results`.

    Parameters
    ----------
    model : nn.Module
    types : sequence of module classes
        Activation modules to hook (default :data:`ACTIVATION_TYPES`). Activations applied as
        functions (``F.relu``) inside ``forward`` are not seen.
    training_only : bool
        Ignore forward passes made in eval mode (validation inside ``fit``).

    Attributes
    ----------
    names : list of str
        One per hooked module, named after the parameterised layer before it (``conv1.relu``).
    active : bool
    results : dict
        name -> float32 tensor of :data:`ACTIVATION_STATISTICS` from the last captured pass.

    Examples
    --------
    >>> with ActivationHooks(model) as hooks:                 # doctest: +SKIP
    ...     model(x)
    >>> hooks.frame()                                          # one row per activation module
    """

    def __init__(self, model: nn.Module, types: Sequence[type] = ACTIVATION_TYPES, training_only: bool = False):
        self.model = model
        self.training_only = training_only
        self._modules = _activation_names(model, types)
        self.names = [n for n, _ in self._modules]
        self.active = True
        self.results: dict[str, torch.Tensor] = {}
        self._handles: list = []
        self._entered = False

    def __enter__(self) -> "ActivationHooks":
        if self._entered:
            raise RuntimeError("ActivationHooks is already entered; use one `with` block at a time.")
        self._entered = True
        self.attach()
        return self

    def attach(self) -> None:
        """Register the hooks if they are not registered (inside the ``with`` block; idempotent).

        A recorder can :meth:`remove` them between the passes it records and attach them again,
        so that the other passes run without hooks; leaving the block removes them for good.
        """
        if not self._entered:
            raise RuntimeError("ActivationHooks.attach() is for use inside its `with` block, which removes the hooks.")
        if not self._handles:
            self._handles = [module.register_forward_hook(self._hook(name, module)) for name, module in self._modules]

    def __exit__(self, *exc) -> bool:
        self.remove()
        self._entered = False
        return False

    def remove(self) -> None:
        """Remove every hook (idempotent)."""
        for h in self._handles:
            h.remove()
        self._handles = []

    @property
    def attached(self) -> bool:
        """Whether the hooks are currently registered."""
        return bool(self._handles)

    def _hook(self, name: str, module: nn.Module):
        bounded = isinstance(module, (nn.Sigmoid, nn.Tanh))
        low = 0.0 if isinstance(module, nn.Sigmoid) else -1.0

        def hook(mod, inputs, output):
            if not self.active or (self.training_only and not mod.training) or not torch.is_tensor(output):
                return
            with torch.no_grad():
                y = output.detach().float()
                units = y.transpose(0, 1).reshape(y.shape[1], -1) if y.ndim > 1 else y.reshape(1, -1)
                if bounded:
                    sat = ((y - low).abs() < 0.01 * (1 - low)) | ((1.0 - y).abs() < 0.01 * (1 - low))
                    saturated = sat.float().mean()
                else:
                    saturated = torch.full((), float("nan"), device=y.device)
                self.results[name] = torch.stack([
                    y.mean(), y.std(unbiased=False), (y == 0).float().mean(),
                    (units <= 0).all(dim=1).float().mean(), saturated])
        return hook

    def frame(self) -> pd.DataFrame:
        """The last captured statistics as a DataFrame: one row per activation, one column per statistic."""
        rows = {n: self.results[n].cpu().numpy() for n in self.names if n in self.results}
        return pd.DataFrame.from_dict(rows, orient="index", columns=list(ACTIVATION_STATISTICS))


def activation_statistics(model: nn.Module, x: torch.Tensor, types: Sequence[type] = ACTIVATION_TYPES) -> pd.DataFrame:
    """Statistics of every activation module's output for one batch ``x`` (the model's mode is kept).

    Parameters
    ----------
    model : nn.Module
    x : torch.Tensor
        A batch the model accepts, already normalised, on the model's device.
    types : sequence of module classes

    Returns
    -------
    pandas.DataFrame
        Index: activation names (``conv1.relu``...); columns :data:`ACTIVATION_STATISTICS`:
        mean, std, zero_frac (outputs exactly 0), dead_frac (units, i.e. channels or features,
        that are <= 0 for the whole batch), saturated_frac (sigmoid/tanh outputs within 1% of a bound).
    """
    with ActivationHooks(model, types) as hooks, torch.no_grad():
        model(x)
    return hooks.frame()


# --------------------------------------------------------------------------------------------
# The histogram recorder
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class HistogramFrames:
    """The histograms of one quantity.

    Attributes
    ----------
    quantity : str
    layers : list of str
    steps, epochs : numpy.ndarray
        ``(F,)``: the optimizer step of each frame (steps finished before it) and its epoch (1-based).
    edges : numpy.ndarray
        ``(L, bins + 1)`` bin edges per layer, the same for every frame; the recorder's automatic
        edges cover the values of every frame (explicit ``ranges`` are kept as given).
    counts : numpy.ndarray
        ``(F, L, bins)`` int64 counts; values outside the edges (only with explicit ``ranges``,
        or beyond 2**64 times the first record's range) are in the first / last bin.
    scale : numpy.ndarray or None
        ``(L,)`` per layer the linear width ``w`` of asinh bins (the edges are evenly spaced in
        ``asinh(x / w)``: linear within +- w, logarithmic beyond), 0 for linear bins; None: all linear.
    """

    quantity: str
    layers: list
    steps: np.ndarray
    epochs: np.ndarray
    edges: np.ndarray
    counts: np.ndarray
    scale: np.ndarray | None = None

    def linear_width(self, layer: int) -> float:
        """The linear width of a layer's asinh bins, 0.0 for linear bins."""
        return 0.0 if self.scale is None else float(self.scale[layer])

    @property
    def centers(self) -> np.ndarray:
        """``(L, bins)`` bin centres (for asinh bins the middle in ``asinh(x / w)``)."""
        mid = 0.5 * (self.edges[:, 1:] + self.edges[:, :-1])
        for l in range(len(self.edges)):
            w = self.linear_width(l)
            if w > 0:
                u = np.arcsinh(self.edges[l] / w)
                mid[l] = w * np.sinh(0.5 * (u[1:] + u[:-1]))
        return mid

    def __len__(self) -> int:
        return len(self.steps)


class HistogramRecorder(Callback):
    """Record weight, gradient and update histograms and activation statistics during training.

    Parameters
    ----------
    every : int
        Record at the steps 0, every, 2 * every, ... (step = optimizer steps finished before the
        batch, so step 0 shows the initial weights and the first gradient). Default 50.
    bins : int
        Bins per histogram.
    quantities : sequence of str
        Any of :data:`QUANTITIES` ("weights", "gradients", "updates").
    activations : bool
        Record activation statistics with forward hooks (:class:`ActivationHooks`) on the
        training batches of the recorded steps.
    range_factor : dict, optional
        Bin edges are set at the first record of each layer and quantity as
        ``+- factor * max|x|``; default 3.0 for linear and 30.0 for asinh bins.
    binning : dict, optional
        Per quantity "linear" (bins evenly spaced in x) or "asinh" (evenly spaced in
        ``asinh(x / w)`` with the linear width ``w = max|x| * 10**-decades`` of the first record:
        linear within +- w, logarithmic beyond). Default: linear for weights, asinh for gradients
        and updates, whose later frames can be orders of magnitude narrower than the first
        (RMSprop's first update is exactly +- 10 lr). Explicit ``ranges`` are always linear.
    decades : float
        For asinh bins: how many decades below the first record's max |x| the logarithmic part
        reaches (default 3).
    ranges : dict, optional
        Explicit edges ``{(quantity, layer): (lo, hi)}`` or ``{quantity: (lo, hi)}`` overriding
        ``range_factor``; they are kept as given (never widened).
    widen : bool
        Double a layer's automatic edges whenever a record holds values beyond them, and merge
        the frames recorded before into the wider bins (exact: each old bin falls inside one new
        bin; needs an even ``bins``), so that the edges cover every record (asinh bins double their
        range in ``asinh(x / w)``, which widens them far more in x). With False the edges
        stay those of the first record and values beyond them are counted in the outermost bins.
    layer_types : sequence of module classes, optional
        Layers to record (default :data:`LAYER_TYPES`); ``None``: every module with a weight.
    sync_every : int
        Records kept on the device before being copied to the CPU in one batch.
    final : bool
        Also record the weights after the last step (a weights-only frame) when training ends.

    Attributes
    ----------
    layers : list of str
        Recorded layers (``conv1``, ``fc1``...; see :func:`parameterised_layers`).
    paths : list of str
        Their module paths.
    activation_names : list of str
    stats : pandas.DataFrame
        Tidy: step, epoch, layer, quantity, statistic, value (quantity "activations" for the
        activation statistics, whose ``layer`` is the activation's name; quantity "loss", layer
        "model", statistic "loss" for the training batch's loss at the recorded steps, so a run
        that diverged still has its loss curve up to the divergence).

    Notes
    -----
    The gradient is read in ``on_after_backward``, i.e. before the optimizer step (and before
    any gradient clipping a later callback might apply); the update is the weights after the step
    minus a copy taken before it, so it includes weight decay, momentum and the learning rate.
    """

    def __init__(self, every: int = 50, bins: int = 64, quantities: Sequence[str] = QUANTITIES,
                 activations: bool = True, range_factor: Mapping[str, float] | None = None,
                 ranges: Mapping | None = None, layer_types: Sequence[type] | None = LAYER_TYPES,
                 sync_every: int = 32, final: bool = True, widen: bool = True,
                 binning: Mapping[str, str] | None = None, decades: float = _DEFAULT_DECADES):
        if int(every) < 1:
            raise ValueError(f"every must be a positive number of steps, got {every!r}.")
        if int(bins) < 2:
            raise ValueError(f"bins must be at least 2, got {bins!r}.")
        if widen and int(bins) % 2:
            raise ValueError(f"bins={bins!r}: widening the edges merges bins exactly only for an even number of bins; "
                             "pass an even bins or widen=False.")
        unknown = [q for q in quantities if q not in QUANTITIES]
        if unknown or not quantities:
            raise ValueError(f"Unknown quantities {unknown}; choose from {QUANTITIES}.")
        self.every, self.bins, self.quantities = int(every), int(bins), tuple(quantities)
        self.record_activations = bool(activations)
        self.binning = {**_DEFAULT_BINNING, **(binning or {})}
        bad = {q: b for q, b in self.binning.items() if q not in QUANTITIES or b not in BINNINGS}
        if bad:
            raise ValueError(f"binning {bad}: give quantities of {QUANTITIES} each one of {BINNINGS}.")
        self.range_factor = {q: float((range_factor or {}).get(q, _DEFAULT_RANGE_FACTOR[self.binning[q]]))
                             for q in QUANTITIES}
        if not float(decades) > 0:
            raise ValueError(f"decades must be positive, got {decades!r}.")
        self.decades = float(decades)
        self.ranges = dict(ranges or {})
        self.layer_types = layer_types
        self.sync_every = max(1, int(sync_every))
        self.final = bool(final)
        self.widen = bool(widen)
        self._reset()

    @property
    def artifact_name(self) -> str:
        """``histograms-<hash of the settings>``: a cached run recorded with other settings is not reused.

        :func:`mnistlab.experiments.run` stores the recording under this name beside the cached
        result; a recorder with another interval, bins, quantities or ranges finds no such file and
        the run is trained again (callbacks are not part of the cache key).
        """
        return f"histograms-{_settings_hash(self._settings())}"

    def _settings(self) -> dict:
        types = None if self.layer_types is None else [t.__name__ for t in self.layer_types]
        return {"every": self.every, "bins": self.bins, "quantities": list(self.quantities),
                "activations": self.record_activations, "range_factor": self.range_factor,
                "ranges": {str(k): list(v) for k, v in self.ranges.items()}, "layer_types": types, "final": self.final,
                "widen": self.widen, "binning": {q: self.binning[q] for q in self.quantities}, "decades": self.decades}

    # ---- state ------------------------------------------------------------------------------
    def _reset(self) -> None:
        self.layers: list[str] = []
        self.paths: list[str] = []
        self.activation_names: list[str] = []
        self._edges: dict[str, np.ndarray] = {}     # current edges (L, bins + 1) of the stored frames
        self._edge_t: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}   # first-record edges on the device
        self._base: dict[str, np.ndarray] = {}      # first-record edges (L, 2) float64 (in asinh(x / w) for asinh bins)
        self._scale: dict[str, np.ndarray] = {}     # (L,) linear width w of asinh bins, 0 for linear bins
        self._scale_t: dict[str, torch.Tensor] = {}  # the same on the device, float32
        self._grow: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}     # (doublings so far, may grow) on the device
        self._doublings: dict[str, np.ndarray] = {}  # (L,) int: doublings of the stored frames' edges
        self._seg: tuple[torch.Tensor, torch.Tensor] | None = None
        self._pending: list[tuple] = []          # (quantity, step, epoch, counts (L,B+1) tensor: bins + doublings, stats (L,S))
        self._frames: dict[str, dict[str, list]] = {q: {"step": [], "epoch": [], "counts": [], "stats": []}
                                                     for q in (*QUANTITIES, "activations", "loss")}
        self._params: list[nn.Parameter] = []
        self._before: torch.Tensor | None = None
        self._before_step = None
        self._hooks: ActivationHooks | None = None
        self._stack: contextlib.ExitStack | None = None
        self._stats_cache: pd.DataFrame | None = None

    # ---- callback hooks ---------------------------------------------------------------------
    def on_train_begin(self, state) -> None:
        self._reset()
        found = parameterised_layers(state.model, self.layer_types)
        self.layers = [n for n, _, _ in found]
        self.paths = [p for _, p, _ in found]
        self._params = [m.weight for _, _, m in found]
        device = self._params[0].device
        sizes = torch.tensor([p.numel() for p in self._params], device=device)
        self._seg = (torch.repeat_interleave(torch.arange(len(self._params), device=device), sizes), sizes)
        self._stack = contextlib.ExitStack()
        if self.record_activations:
            # attached only around the forward passes of recorded steps (no cost on the others)
            self._hooks = self._stack.enter_context(ActivationHooks(state.model, training_only=True))
            self.activation_names = list(self._hooks.names)

    def _flat(self, grads: bool = False) -> torch.Tensor:
        """The recorded layers' weights (or gradients) as one float32 vector."""
        if grads:
            parts = [p.grad.detach() if p.grad is not None else torch.zeros_like(p) for p in self._params]
        else:
            parts = [p.detach() for p in self._params]
        return torch.cat([t.reshape(-1).float() for t in parts])

    def on_after_backward(self, state) -> None:
        step = int(state.step)
        if step % self.every:
            return
        epoch = int(state.epoch)
        if "weights" in self.quantities or "updates" in self.quantities:
            weights = self._flat()
            if "weights" in self.quantities:
                self._record("weights", step, epoch, weights)
            if "updates" in self.quantities:
                self._before, self._before_step = weights, (step, epoch)
        if "gradients" in self.quantities:
            self._record("gradients", step, epoch, self._flat(grads=True))
        if state.loss is not None:
            self._pending.append(("loss", step, epoch, None, state.loss.detach().float().reshape(1, 1)))
        if self._hooks is not None:
            self._hooks.remove()
            if self._hooks.results:
                stats = torch.stack([self._hooks.results.get(n, self._nan_act(state.device)) for n in self.activation_names])
                self._pending.append(("activations", step, epoch, None, stats))
                self._hooks.results = {}
        self._maybe_sync()

    def on_batch_end(self, state) -> None:
        if self._before is not None:
            step, epoch = self._before_step
            before = self._before
            seg, _ = self._seg
            norm_before = torch.zeros(len(self._params), device=before.device).index_add_(0, seg, before * before).sqrt()
            self._record("updates", step, epoch, self._flat() - before, norm_before=norm_before)
            self._before = None
        if self._hooks is not None and int(state.step) % self.every == 0:
            self._hooks.attach()  # the next training forward pass is a recorded step

    def on_train_end(self, state) -> None:
        try:
            self._before = None
            if self.final and "weights" in self.quantities and self._params:
                done = [s for q, s, *_ in self._pending if q == "weights"] + self._frames["weights"]["step"]
                if int(state.step) not in done:
                    self._record("weights", int(state.step), int(state.epoch), self._flat())
            self._sync()
        finally:
            if self._stack is not None:
                self._stack.close()  # removes the forward hooks, also when training raised
            self._stack, self._hooks, self._params = None, None, []

    # ---- recording --------------------------------------------------------------------------
    def _nan_act(self, device) -> torch.Tensor:
        return torch.full((len(ACTIVATION_STATISTICS),), float("nan"), device=device)

    def _edges_for(self, quantity: str, flat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Edges (lo, hi) per layer as float32 device tensors, fixed at the first record of ``quantity``."""
        if quantity not in self._edge_t:
            ranges = []
            parts = flat.split([int(p.numel()) for p in self._params])
            for name, t in zip(self.layers, parts):
                explicit = self.ranges.get((quantity, name), self.ranges.get(quantity))
                w = 0.0
                if explicit is not None:
                    lo, hi = float(explicit[0]), float(explicit[1])
                    if not hi > lo:
                        raise ValueError(f"ranges[{quantity!r}, {name!r}] = {explicit!r}: the upper edge must exceed the lower.")
                else:
                    factor = float(self.range_factor[quantity])
                    lo, hi = _edge_range(t, factor)
                    if self.binning[quantity] == "asinh":   # the same +- factor max|x|, counted in asinh(x / w)
                        w = hi / factor * 10.0 ** -self.decades
                        lo, hi = -float(np.arcsinh(factor * 10.0 ** self.decades)), float(np.arcsinh(factor * 10.0 ** self.decades))
                ranges.append((lo, hi, self.widen and explicit is None, w))
            self._scale[quantity] = np.array([r[3] for r in ranges], dtype=np.float64)
            self._scale_t[quantity] = torch.tensor(self._scale[quantity], dtype=torch.float32, device=flat.device)
            bounds = torch.tensor([r[:2] for r in ranges], dtype=torch.float32, device=flat.device)
            self._edge_t[quantity] = (bounds[:, 0].contiguous(), bounds[:, 1].contiguous())
            self._grow[quantity] = (torch.zeros(len(ranges), dtype=torch.float32, device=flat.device),
                                    torch.tensor([r[2] for r in ranges], dtype=torch.bool, device=flat.device))
            self._base[quantity] = bounds.cpu().double().numpy()
            self._doublings[quantity] = np.zeros(len(ranges), dtype=np.int64)
            self._edges[quantity] = _edges_of(self._base[quantity], self._doublings[quantity], self.bins,
                                              self._scale[quantity])
        return self._edge_t[quantity]

    def _record(self, quantity: str, step: int, epoch: int, flat: torch.Tensor, norm_before=None) -> None:
        """Count and summarise one quantity of every layer (``flat``: the layers' values concatenated)."""
        with torch.no_grad():
            lo, hi = self._edges_for(quantity, flat)
            seg, sizes = self._seg
            scale = self._scale_t[quantity] if self._scale[quantity].any() else None
            counts, stats, k = _segment_record(flat, seg, sizes, lo, hi, self.bins, grow=self._grow[quantity],
                                               scale=scale)
            self._grow[quantity] = (k, self._grow[quantity][1])
            if norm_before is not None:  # updates: ||dw|| / ||w|| per layer
                ratio = stats[:, STATISTICS.index("norm")] / norm_before.clamp_min(1e-12)
                stats = torch.cat([stats, ratio.reshape(-1, 1)], dim=1)
        self._pending.append((quantity, step, epoch, torch.cat([counts, k.reshape(-1, 1)], dim=1), stats))

    def _maybe_sync(self) -> None:
        if len(self._pending) >= self.sync_every * (len(self.quantities) + 1):
            self._sync()

    def _sync(self) -> None:
        """Copy pending records to the CPU (one transfer per tensor kind)."""
        if not self._pending:
            return
        counts = [c for _, _, _, c, _ in self._pending if c is not None]
        counts_cpu = iter(torch.stack(counts).cpu().numpy().round().astype(np.int64)) if counts else iter(())
        stats_cpu = [s.cpu().numpy().astype(np.float64) for s in _batched_cpu([s for *_, s in self._pending])]
        for (quantity, step, epoch, c, _), s in zip(self._pending, stats_cpu):
            frame = self._frames[quantity]
            frame["step"].append(step)
            frame["epoch"].append(epoch)
            frame["stats"].append(s)
            if c is not None:
                both = next(counts_cpu)
                self._store_counts(quantity, both[:, :-1], both[:, -1])
        self._pending = []
        self._stats_cache = None

    def _store_counts(self, quantity: str, counts: np.ndarray, doublings: np.ndarray) -> None:
        """Keep one frame's counts; when its edges are wider than the stored frames', merge those into them."""
        frame, have = self._frames[quantity], self._doublings[quantity]
        target = np.maximum(have, doublings)
        if np.any(target > have):
            frame["counts"] = [merge_bins(c, target - have) for c in frame["counts"]]
            self._doublings[quantity] = target
            self._edges[quantity] = _edges_of(self._base[quantity], target, self.bins, self._scale[quantity])
        frame["counts"].append(merge_bins(counts, target - doublings))

    # ---- results ----------------------------------------------------------------------------
    def histograms(self, quantity: str = "weights") -> HistogramFrames:
        """The recorded histograms of ``quantity`` ("weights", "gradients" or "updates").

        Raises
        ------
        ValueError
            If the quantity is unknown or was not recorded (nothing recorded yet, or left out
            of ``quantities``).
        """
        if quantity not in QUANTITIES:
            raise ValueError(f"Unknown quantity {quantity!r}; choose from {QUANTITIES}.")
        self._sync()
        f = self._frames[quantity]
        if not f["step"]:
            raise ValueError(f"No {quantity} histograms recorded: train with this recorder first "
                             f"(quantities={self.quantities}).")
        return HistogramFrames(quantity, list(self.layers), np.asarray(f["step"], dtype=np.int64),
                               np.asarray(f["epoch"], dtype=np.int64), self._edges[quantity].copy(),
                               np.stack(f["counts"]), self._scale[quantity].copy())

    @property
    def stats(self) -> pd.DataFrame:
        """Tidy DataFrame of the summary numbers: step, epoch, layer, quantity, statistic, value."""
        self._sync()
        if self._stats_cache is not None:
            return self._stats_cache
        parts = []
        for quantity, f in self._frames.items():
            if not f["step"]:
                continue
            names = {"activations": self.activation_names, "loss": ["model"]}.get(quantity, self.layers)
            columns = {"activations": list(ACTIVATION_STATISTICS), "loss": ["loss"],
                       "updates": [*STATISTICS, "ratio"]}.get(quantity, list(STATISTICS))
            arr = np.stack(f["stats"])                                   # (F, L, S)
            F_, L, S = arr.shape
            parts.append(pd.DataFrame({
                "step": np.repeat(f["step"], L * S), "epoch": np.repeat(f["epoch"], L * S),
                "layer": np.tile(np.repeat(names, S), F_), "quantity": quantity,
                "statistic": np.tile(columns, F_ * L), "value": arr.reshape(-1)}))
        if not parts:
            return pd.DataFrame(columns=["step", "epoch", "layer", "quantity", "statistic", "value"])
        df = pd.concat(parts, ignore_index=True).dropna(subset=["value"]).reset_index(drop=True)
        for col, order in (("layer", list(dict.fromkeys([*self.layers, *self.activation_names, "model"]))),
                           ("quantity", [*QUANTITIES, "activations", "loss"])):
            df[col] = pd.Categorical(df[col], categories=order, ordered=True)
        self._stats_cache = df
        return df

    @property
    def memory_bytes(self) -> int:
        """Bytes held by the recorded counts and numbers."""
        self._sync()
        return int(sum(a.nbytes for f in self._frames.values() for key in ("counts", "stats") for a in f[key]))

    def __bool__(self) -> bool:
        return True  # a recorder is a callback, truthy also before it has recorded anything

    def __len__(self) -> int:
        """Number of recorded steps (gradient frames, or weight frames if gradients are not recorded)."""
        self._sync()
        q = "gradients" if "gradients" in self.quantities else self.quantities[0]
        return len(self._frames[q]["step"])

    def __repr__(self) -> str:
        return (f"HistogramRecorder(every={self.every}, bins={self.bins}, quantities={self.quantities}, "
                f"layers={self.layers}, frames={len(self)})")

    # ---- artifact (cached beside an experiments.run entry) ----------------------------------
    def save_artifact(self, path) -> Path:
        """Write everything recorded to one ``.npz`` file at ``path`` (a folder gets ``histograms.npz``)."""
        self._sync()
        path = _artifact_file(path, self.artifact_name)
        meta = {"every": self.every, "bins": self.bins, "quantities": list(self.quantities), "layers": self.layers,
                "paths": self.paths, "activation_names": self.activation_names, "format": 1}
        arrays = {"meta": np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)}
        for q, f in self._frames.items():
            if not f["step"]:
                continue
            arrays[f"{q}/step"] = np.asarray(f["step"], dtype=np.int64)
            arrays[f"{q}/epoch"] = np.asarray(f["epoch"], dtype=np.int64)
            arrays[f"{q}/stats"] = np.stack(f["stats"])
            if f["counts"]:
                arrays[f"{q}/counts"] = np.stack(f["counts"])
                arrays[f"{q}/edges"] = self._edges[q]
                arrays[f"{q}/scale"] = self._scale[q]
        return _write_npz(path, arrays)

    def load_artifact(self, path) -> "HistogramRecorder":
        """Fill this recorder from a file written by :meth:`save_artifact`; return it.

        Raises
        ------
        ValueError
            If the file was not written by a HistogramRecorder, or with other bins.
        """
        path = _artifact_file(path, self.artifact_name)
        with np.load(path, allow_pickle=False) as z:
            if "meta" not in z.files:
                raise ValueError(f"{path} was not written by HistogramRecorder.save_artifact (no 'meta' entry).")
            meta = json.loads(bytes(z["meta"]).decode())
            if int(meta["bins"]) != self.bins:
                raise ValueError(f"{path} holds {meta['bins']}-bin histograms but this recorder has bins={self.bins}; "
                                 "create it with the same bins (bins do not enter the experiment cache key).")
            self._reset()
            self.layers, self.paths = list(meta["layers"]), list(meta["paths"])
            self.activation_names = list(meta["activation_names"])
            for q, f in self._frames.items():
                if f"{q}/step" not in z.files:
                    continue
                f["step"] = [int(s) for s in z[f"{q}/step"]]
                f["epoch"] = [int(e) for e in z[f"{q}/epoch"]]
                f["stats"] = list(z[f"{q}/stats"])
                if f"{q}/counts" in z.files:
                    f["counts"] = list(z[f"{q}/counts"])
                    self._edges[q] = z[f"{q}/edges"]
                    self._doublings[q] = np.zeros(len(self.layers), dtype=np.int64)
                    self._scale[q] = (z[f"{q}/scale"] if f"{q}/scale" in z.files   # files before asinh bins: linear
                                      else np.zeros(len(self.layers), dtype=np.float64))
        return self


def merge_bins(counts: np.ndarray, doublings) -> np.ndarray:
    """Histogram counts over edges ``c +- h`` re-binned onto ``c +- h * 2**doublings`` (same number of bins), exactly.

    With an even number of bins B, old bin ``b`` lies inside new bin ``(b + (2**j - 1) * B / 2) // 2**j``
    after ``j`` doublings, so no count is split and the result equals counting the values over
    the wider edges.

    Parameters
    ----------
    counts : numpy.ndarray
        ``(L, B)`` counts per layer (or ``(B,)`` for one layer).
    doublings : int or sequence of int
        Per layer, how often the range doubles (0: unchanged).

    Returns
    -------
    numpy.ndarray
        Counts of the same shape.
    """
    counts = np.asarray(counts)
    one = counts.ndim == 1
    c2 = counts.reshape(1, -1) if one else counts
    js = np.broadcast_to(np.asarray(doublings, dtype=np.int64), (len(c2),))
    bins = c2.shape[-1]
    if np.any(js < 0):
        raise ValueError(f"doublings must be >= 0, got {list(js)}.")
    if np.any(js > 0) and bins % 2:
        raise ValueError(f"merging bins exactly needs an even number of bins, got {bins}.")
    out = np.zeros_like(c2)
    for l, j in enumerate(js):
        if j == 0:
            out[l] = c2[l]
            continue
        s = 2 ** int(j)
        idx = [(b + (s - 1) * bins // 2) // s for b in range(bins)]
        np.add.at(out[l], idx, c2[l])
    return out[0] if one else out


def _edges_of(base: np.ndarray, doublings: np.ndarray, bins: int, scale: np.ndarray | None = None) -> np.ndarray:
    """Edges ``(L, bins + 1)``: each layer's first-record range ``base[l]`` doubled ``doublings[l]`` times about its centre.

    For a layer with ``scale[l] = w > 0`` the range is in ``asinh(x / w)`` and the edges returned are
    ``w * sinh(u)`` of the evenly spaced ``u`` (capped where float64 overflows).
    """
    out = []
    for l, ((lo, hi), j) in enumerate(zip(base, doublings)):
        if j:
            centre, half = (lo + hi) / 2, (hi - lo) / 2 * 2.0 ** int(j)
            lo, hi = centre - half, centre + half
        e = np.linspace(lo, hi, bins + 1)
        w = 0.0 if scale is None else float(scale[l])
        if w > 0:
            e = w * np.sinh(np.clip(e, -700.0, 700.0))
        out.append(e)
    return np.stack(out)


def _batched_cpu(tensors: list[torch.Tensor]) -> list[torch.Tensor]:
    """Move same-shaped groups of tensors to the CPU with one copy per shape."""
    out: list = [None] * len(tensors)
    groups: dict = {}
    for i, t in enumerate(tensors):
        groups.setdefault((tuple(t.shape), t.device), []).append(i)
    for idx in groups.values():
        cpu = torch.stack([tensors[i] for i in idx]).cpu()
        for j, i in enumerate(idx):
            out[i] = cpu[j]
    return out


def _settings_hash(settings: dict) -> str:
    import hashlib

    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:10]


def _artifact_file(path, name: str) -> Path:
    path = Path(path)
    return path / f"{name}.npz" if path.is_dir() else path


# --------------------------------------------------------------------------------------------
# Weight snapshots
# --------------------------------------------------------------------------------------------

def log_steps(total: int, n: int = 12) -> list[int]:
    """About ``n`` distinct steps from 0 to ``total``, spaced evenly on a log scale (dense early)."""
    if total <= 0:
        return [0]
    raw = np.unique(np.round(np.geomspace(1, total + 1, max(2, n)) - 1).astype(int))
    return sorted(set(int(s) for s in raw) | {0, int(total)})


class SnapshotRecorder(Callback):
    """Keep a CPU copy of the model's state (weights and buffers) at chosen optimizer steps.

    Parameters
    ----------
    steps : sequence of int, optional
        Steps (optimizer steps finished) at which to copy the state; default: about ``n``
        steps spaced on a log scale over the run (see :func:`log_steps`). Step 0 (the initial
        weights) and the final state are always kept.
    n : int
        Number of snapshots when ``steps`` is None.

    Attributes
    ----------
    steps : list of int
        Steps of the kept snapshots, ascending.
    epochs : list of float
        The same as fractional epochs (step / steps per epoch).
    """

    def __init__(self, steps: Iterable[int] | None = None, n: int = 12):
        self.requested = None if steps is None else sorted({int(s) for s in steps})
        self.n = int(n)
        self.steps: list[int] = []
        self.epochs: list[float] = []
        self._states: list[dict] = []

    @property
    def artifact_name(self) -> str:
        """``snapshots-<hash of the settings>`` (see :attr:`HistogramRecorder.artifact_name`)."""
        return f"snapshots-{_settings_hash({'steps': self.requested, 'n': self.n})}"

    def _take(self, state) -> None:
        step = int(state.step)
        if self.steps and self.steps[-1] == step:
            return
        self.steps.append(step)
        self.epochs.append(step / max(1, state.steps_per_epoch))
        self._states.append({k: v.detach().to("cpu", copy=True) for k, v in state.model.state_dict().items()})

    def on_train_begin(self, state) -> None:
        self.steps, self.epochs, self._states = [], [], []
        total = int(state.epochs) * int(state.steps_per_epoch)
        self._wanted = set(self.requested if self.requested is not None else log_steps(total, self.n))
        self._take(state)

    def on_batch_end(self, state) -> None:
        if int(state.step) in self._wanted:
            self._take(state)

    def on_train_end(self, state) -> None:
        self._take(state)

    def state(self, i: int) -> dict:
        """The ``i``-th kept state dict (``-1``: the final one); tensors on the CPU."""
        if not self._states:
            raise ValueError("No snapshots: train with this recorder first.")
        return {k: v.clone() for k, v in self._states[i].items()}

    def load_into(self, model: nn.Module, i: int) -> nn.Module:
        """Load the ``i``-th snapshot into ``model`` (same architecture); return the model."""
        model.load_state_dict(self.state(i))
        return model

    def __bool__(self) -> bool:
        return True  # truthy also before it holds a snapshot

    def __len__(self) -> int:
        """Number of kept snapshots."""
        return len(self._states)

    def save_artifact(self, path) -> Path:
        """Write the snapshots to one ``.npz`` file at ``path`` (a folder gets ``snapshots.npz``)."""
        path = _artifact_file(path, self.artifact_name)
        arrays = {"steps": np.asarray(self.steps, dtype=np.int64), "epochs": np.asarray(self.epochs, dtype=np.float64)}
        keys = list(self._states[0]) if self._states else []
        arrays["keys"] = np.frombuffer(json.dumps(keys).encode(), dtype=np.uint8)
        for i, st in enumerate(self._states):
            for j, k in enumerate(keys):
                arrays[f"{i}/{j}"] = st[k].numpy()
        return _write_npz(path, arrays)

    def load_artifact(self, path) -> "SnapshotRecorder":
        """Fill this recorder from a file written by :meth:`save_artifact`; return it."""
        path = _artifact_file(path, self.artifact_name)
        with np.load(path, allow_pickle=False) as z:
            if "keys" not in z.files:
                raise ValueError(f"{path} was not written by SnapshotRecorder.save_artifact (no 'keys' entry).")
            keys = json.loads(bytes(z["keys"]).decode())
            self.steps = [int(s) for s in z["steps"]]
            self.epochs = [float(e) for e in z["epochs"]]
            self._states = [{k: torch.from_numpy(z[f"{i}/{j}"].copy()) for j, k in enumerate(keys)}
                            for i in range(len(self.steps))]
        return self
