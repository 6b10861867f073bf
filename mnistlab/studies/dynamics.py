"""Training dynamics, computed: weight shapes, gradient flow, healthy against sick runs, representations.

Everything here reads what :class:`mnistlab.training.recorder.HistogramRecorder` and
:class:`~mnistlab.training.recorder.SnapshotRecorder` recorded during a run and returns pandas
DataFrames or small result objects; :mod:`mnistlab.viz.dynamics` draws them. No matplotlib here.

- :func:`layer_table`: each recorded layer's fan-in and the bound of PyTorch's default
  initialisation (``kaiming_uniform_(a=sqrt(5))``, i.e. U(-1/sqrt(fan_in), 1/sqrt(fan_in))).
- :func:`distribution_shape`: per layer and moment (init, final): std, excess kurtosis, skewness,
  Kolmogorov-Smirnov distances to a uniform and to a normal distribution, fraction of weights
  near zero; :func:`init_check` tests the initial weights against PyTorch's default scheme.
- :func:`over_training` (a step x layer table of one recorded statistic), :func:`gradient_flow`,
  :func:`layer_summary` and :func:`diagnose` (the numbers that tell a healthy run from a sick one).
- :func:`sick_configs`: a healthy deep MLP and three sick variants (sigmoid: vanishing gradients;
  the same network with batch norm; a learning rate 20x too high).
- :func:`representation_over_training`: penultimate features of fixed digits at each snapshot,
  projected with one PCA fitted on the final features, with kNN accuracy and silhouette per frame.
- :func:`loss_along_line`: loss and accuracy on the straight line from the initial to the final
  weights (Goodfellow, Vinyals & Saxe 2015).
- :func:`to_tensorboard`: the recorded histograms and numbers as TensorBoard event files.
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn
from tqdm.auto import tqdm

from ..training.config import TrainConfig
from ..training.loop import evaluate, features
from ..training.recorder import LAYER_TYPES, HistogramRecorder, SnapshotRecorder, parameterised_layers
from .embed import knn_accuracy

__all__ = [
    "tensorboard_dir",
    "RULE_OF_THUMB", "layer_table", "distribution_shape", "init_check", "over_training", "gradient_flow",
    "layer_summary", "diagnose", "SICK_RUNS", "sick_configs", "run_recorded", "RepresentationFrames",
    "representation_over_training", "interpolate_states", "loss_along_line", "to_tensorboard",
]

RULE_OF_THUMB = 1e-3
"""The update/weight ratio ||dw|| / ||w|| a healthy run roughly keeps per step (Karpathy's rule of thumb)."""


# --------------------------------------------------------------------------------------------
# Layers and the shape of their weight distributions
# --------------------------------------------------------------------------------------------

def layer_table(model: nn.Module, types: Sequence[type] | None = LAYER_TYPES) -> pd.DataFrame:
    """The recorded layers of ``model`` with their fan-in and PyTorch's default initialisation bound.

    Parameters
    ----------
    model : nn.Module
    types : sequence of module classes, optional
        As in :func:`mnistlab.training.recorder.parameterised_layers`.

    Returns
    -------
    pandas.DataFrame
        Index: layer name (``conv1``, ``fc1``...); columns path, kind, shape, weights (count),
        fan_in (inputs per output unit) and init_bound = 1 / sqrt(fan_in), the bound of
        ``nn.init.kaiming_uniform_(w, a=sqrt(5))``, PyTorch's default for linear and
        convolution layers.
    """
    rows = []
    for name, path, module in parameterised_layers(model, types):
        w = module.weight
        fan_in = int(w[0].numel()) if w.ndim > 1 else 1
        rows.append({"layer": name, "path": path, "kind": type(module).__name__, "shape": tuple(w.shape),
                     "weights": int(w.numel()), "fan_in": fan_in, "init_bound": 1.0 / math.sqrt(fan_in)})
    return pd.DataFrame(rows).set_index("layer")


def _weights_of(model: nn.Module, state: Mapping | None, types) -> dict[str, np.ndarray]:
    """Weight arrays per layer name, from ``state`` (a state dict) or from the model itself."""
    out = {}
    for name, path, module in parameterised_layers(model, types):
        key = f"{path}.weight" if path else "weight"
        w = state[key] if state is not None else module.weight
        out[name] = w.detach().cpu().double().numpy().ravel()
    return out


def distribution_shape(model: nn.Module, states: Mapping[str, Mapping | None], band: float = 0.01,
                       types: Sequence[type] | None = LAYER_TYPES) -> pd.DataFrame:
    """How each layer's weight distribution looks at several moments of training.

    Parameters
    ----------
    model : nn.Module
        The architecture (its layers are named as the recorder names them).
    states : dict of label -> state dict
        E.g. ``{"init": snaps.state(0), "final": snaps.state(-1)}``; ``None`` as a value means
        the model's current weights.
    band : float
        Half-width of the band around zero for ``near_zero`` (absolute weight value).
    types : sequence of module classes, optional

    Returns
    -------
    pandas.DataFrame
        One row per (moment, layer) with columns moment, layer, fan_in, std, max_abs,
        kurtosis (excess: 0 for a normal, -1.2 for a uniform distribution), skewness,
        ks_uniform (Kolmogorov-Smirnov distance to U(-m, m) with m = max |w|), ks_normal
        (distance to the normal with the weights' mean and std) and near_zero (fraction of
        weights with |w| < band).
    """
    from scipy import stats as sps
    if not states:
        raise ValueError("distribution_shape needs at least one state, e.g. {'init': snaps.state(0)}.")
    fan_in = layer_table(model, types)["fan_in"]
    rows = []
    for moment, state in states.items():
        for layer, w in _weights_of(model, state, types).items():
            m = float(np.abs(w).max())
            sd = float(w.std())
            rows.append({
                "moment": moment, "layer": layer, "fan_in": int(fan_in[layer]), "std": sd, "max_abs": m,
                "kurtosis": float(sps.kurtosis(w, fisher=True)), "skewness": float(sps.skew(w)),
                "ks_uniform": float(sps.kstest(w, "uniform", args=(-m, 2 * m)).statistic) if m > 0 else np.nan,
                "ks_normal": float(sps.kstest(w, "norm", args=(w.mean(), sd)).statistic) if sd > 0 else np.nan,
                "near_zero": float(np.mean(np.abs(w) < band)),
            })
    df = pd.DataFrame(rows)
    df["moment"] = pd.Categorical(df["moment"], categories=list(states), ordered=True)
    return df


def init_check(model: nn.Module, state: Mapping | None = None, types: Sequence[type] | None = LAYER_TYPES,
               alpha: float = 0.01) -> pd.DataFrame:
    """Test initial weights against PyTorch's default scheme, U(-1/sqrt(fan_in), 1/sqrt(fan_in)).

    Parameters
    ----------
    model : nn.Module
    state : state dict, optional
        The initial weights (default: the model's current weights).
    types : sequence of module classes, optional
    alpha : float
        Significance level of the Kolmogorov-Smirnov test.

    Returns
    -------
    pandas.DataFrame
        Index: layer; columns fan_in, init_bound, max_abs (observed), ks (distance to the
        default's uniform distribution), p_value and matches_default (p_value > alpha).
    """
    from scipy import stats as sps
    table = layer_table(model, types)
    rows = []
    for layer, w in _weights_of(model, state, types).items():
        b = float(table.loc[layer, "init_bound"])
        test = sps.kstest(w, "uniform", args=(-b, 2 * b))
        rows.append({"layer": layer, "fan_in": int(table.loc[layer, "fan_in"]), "init_bound": b,
                     "max_abs": float(np.abs(w).max()), "ks": float(test.statistic), "p_value": float(test.pvalue),
                     "matches_default": bool(test.pvalue > alpha)})
    return pd.DataFrame(rows).set_index("layer")


# --------------------------------------------------------------------------------------------
# Recorded numbers over training
# --------------------------------------------------------------------------------------------

def over_training(rec: HistogramRecorder, quantity: str = "gradients", statistic: str = "abs_mean") -> pd.DataFrame:
    """One recorded statistic as a table: rows = recorded steps, columns = layers in model order.

    Parameters
    ----------
    rec : HistogramRecorder
        After training (or filled by ``load_artifact``).
    quantity : str
        "weights", "gradients", "updates", "activations" or "loss".
    statistic : str
        One of the recorder's statistics for that quantity (e.g. "abs_mean", "abs_max",
        "ratio" for updates, "dead_frac" for activations, "loss").

    Returns
    -------
    pandas.DataFrame
        Index ``step`` (with an ``epoch`` column first), one column per layer.

    Raises
    ------
    ValueError
        If nothing was recorded for that quantity and statistic; the message lists what was.
    """
    s = rec.stats
    sel = s[(s["quantity"] == quantity) & (s["statistic"] == statistic)]
    if sel.empty:
        have = sorted({(str(q), st) for q, st in zip(s["quantity"], s["statistic"])})
        raise ValueError(f"No {quantity!r}/{statistic!r} values recorded; recorded (quantity, statistic): {have}.")
    wide = sel.pivot_table(index="step", columns="layer", values="value", observed=True, sort=True)
    wide = wide[[c for c in sel["layer"].cat.categories if c in wide.columns]]
    wide.columns = wide.columns.astype(str)
    wide.columns.name = None
    epochs = sel.groupby("step")["epoch"].first()
    wide.insert(0, "epoch", epochs.reindex(wide.index).to_numpy())
    return wide


def gradient_flow(rec: HistogramRecorder) -> pd.DataFrame:
    """Mean and max |gradient| per layer and recorded step, as a tidy table ordered last layer to first.

    Returns
    -------
    pandas.DataFrame
        Columns step, epoch, layer, depth (0 = first layer), abs_mean, abs_max; the layer
        column is an ordered categorical from the last layer to the first (how the gradient
        flows backwards).
    """
    parts = []
    for stat in ("abs_mean", "abs_max"):
        wide = over_training(rec, "gradients", stat)
        long = wide.reset_index().melt(id_vars=["step", "epoch"], var_name="layer", value_name=stat)
        parts.append(long.set_index(["step", "epoch", "layer"]))
    df = pd.concat(parts, axis=1).reset_index()
    layers = list(rec.layers)
    df["depth"] = df["layer"].map({name: i for i, name in enumerate(layers)})
    df["layer"] = pd.Categorical(df["layer"], categories=layers[::-1], ordered=True)
    return df.sort_values(["step", "layer"]).reset_index(drop=True)[["step", "epoch", "layer", "depth", "abs_mean", "abs_max"]]


def layer_summary(rec: HistogramRecorder) -> pd.DataFrame:
    """Per layer, the medians over training of the numbers a diagnosis reads.

    Returns
    -------
    pandas.DataFrame
        Index: layer (model order); columns grad_abs_mean, grad_abs_max (median over recorded
        steps), grad_vs_last (grad_abs_mean / that of the last layer), update_ratio (median
        ||dw|| / ||w||), dead_frac (mean over steps of the fraction of dead units of the
        activations that follow the layer; NaN if none), kurtosis_first / kurtosis_last (excess
        kurtosis of the weights at the first and the last record).
    """
    layers = list(rec.layers)
    g = over_training(rec, "gradients", "abs_mean")[layers].median()
    out = pd.DataFrame({"grad_abs_mean": g, "grad_abs_max": over_training(rec, "gradients", "abs_max")[layers].median()})
    out["grad_vs_last"] = out["grad_abs_mean"] / out["grad_abs_mean"].iloc[-1]
    try:
        out["update_ratio"] = over_training(rec, "updates", "ratio")[layers].median()
    except ValueError:
        out["update_ratio"] = np.nan
    dead = {}
    if rec.activation_names:
        d = over_training(rec, "activations", "dead_frac").drop(columns="epoch").mean()
        for layer in layers:
            cols = [c for c in d.index if c.split(".")[0] == layer]
            dead[layer] = float(d[cols].mean()) if cols else np.nan
    out["dead_frac"] = pd.Series(dead, dtype=float).reindex(layers)
    k = over_training(rec, "weights", "kurtosis")[layers]
    out["kurtosis_first"], out["kurtosis_last"] = k.iloc[0], k.iloc[-1]
    out.index.name = "layer"
    return out


def diagnose(rec: HistogramRecorder, history: pd.DataFrame | None = None) -> dict:
    """The few numbers that tell a healthy run from a sick one.

    Parameters
    ----------
    rec : HistogramRecorder
    history : pandas.DataFrame, optional
        The run's history (``fit`` or ``experiments.run``) for the final accuracies.

    Returns
    -------
    dict
        first_vs_last_grad (median mean |g| of the first layer over that of the last: far
        below 1 means vanishing gradients), update_ratio (median over layers and steps),
        update_ratio_decades (|log10(update_ratio / 1e-3)|: distance from the rule of thumb in
        decades), dead_frac_max (largest mean dead-unit fraction of a layer), loss_first /
        loss_last (training-batch loss at the first and last recorded step), nonfinite (any
        NaN/inf weight or gradient recorded), and, with a history, val_acc / train_acc of the
        last epoch (NaN if the run diverged).
    """
    summary = layer_summary(rec)
    loss = over_training(rec, "loss", "loss")["model"]
    s = rec.stats
    nonfinite = bool((s[(s["statistic"] == "nonfinite")]["value"] > 0).any())
    ratio = float(np.nanmedian(over_training(rec, "updates", "ratio")[list(rec.layers)].to_numpy())) \
        if "updates" in rec.quantities else np.nan
    out = {
        "first_vs_last_grad": float(summary["grad_vs_last"].iloc[0]),
        "update_ratio": ratio,
        "update_ratio_decades": float(abs(np.log10(ratio / RULE_OF_THUMB))) if ratio > 0 else np.nan,
        "dead_frac_max": float(summary["dead_frac"].max()) if summary["dead_frac"].notna().any() else np.nan,
        "loss_first": float(loss.iloc[0]), "loss_last": float(loss.iloc[-1]),
        "nonfinite": nonfinite or not np.isfinite(loss.to_numpy()).all(),
    }
    if history is not None:
        last = history.dropna(subset=["train_loss"]).tail(1) if "train_loss" in history else history.tail(0)
        for col in ("train_acc", "val_acc"):
            out[col] = float(last[col].iloc[0]) if len(last) and col in last else np.nan
    return out


# --------------------------------------------------------------------------------------------
# Healthy and sick runs
# --------------------------------------------------------------------------------------------

SICK_RUNS = {
    "healthy": "ReLU MLP, 5 hidden layers of 128, SGD with momentum 0.9 at lr 0.05",
    "sigmoid": "the same network with sigmoid activations: gradients vanish towards the input",
    "sigmoid + batch norm": "the sigmoid network with batch norm after every hidden layer",
    "lr x20": "the healthy network at a learning rate 20 times too high (lr 1.0)",
}
"""The runs of :func:`sick_configs` and what each shows."""


def sick_configs(dataset: str = "mnist", epochs: int = 2, train_limit: int | None = 10_000,
                 test_limit: int | None = 2_000, depth: int = 5, width: int = 128, lr: float = 0.05,
                 lr_factor: float = 20.0) -> dict[str, TrainConfig]:
    """A healthy deep MLP and three sick variants, as configs for :func:`mnistlab.experiments.run`.

    Parameters
    ----------
    dataset : str
    epochs : int
    train_limit, test_limit : int, optional
    depth, width : int
        Hidden layers and their width.
    lr : float
        The healthy learning rate (SGD with momentum 0.9, batch 64).
    lr_factor : float
        How much too high the sick learning rate is.

    Returns
    -------
    dict of name -> TrainConfig
        Keys as in :data:`SICK_RUNS`: "healthy", "sigmoid", "sigmoid + batch norm", "lr x20".
        Each config's ``description`` says what the run shows.
    """
    hidden = [int(width)] * int(depth)
    base = TrainConfig(name="healthy", model="mlp", model_kwargs={"hidden": hidden, "activation": "relu"},
                       epochs=epochs, optimizer="momentum", lr=lr, batch_size=64, dataset=dataset,
                       train_limit=train_limit, test_limit=test_limit, val="test",
                       description=SICK_RUNS["healthy"])
    too_high = f"lr x{lr_factor:g}"
    return {
        "healthy": base,
        "sigmoid": base.but(name="sigmoid", model_kwargs={"hidden": hidden, "activation": "sigmoid"},
                            description=SICK_RUNS["sigmoid"]),
        "sigmoid + batch norm": base.but(name="sigmoid + batch norm",
                                         model_kwargs={"hidden": hidden, "activation": "sigmoid", "batchnorm": True},
                                         description=SICK_RUNS["sigmoid + batch norm"]),
        too_high: base.but(name=too_high, lr=lr * lr_factor,
                           description=f"the healthy network at a learning rate {lr_factor:g} times too high "
                                       f"(lr {lr * lr_factor:g})"),
    }


def run_recorded(config, seed: int = 0, recorders: Sequence = (), *, device="auto", cache: bool = True,
                 keep_model: bool = False) -> pd.DataFrame:
    """:func:`mnistlab.experiments.run` with recorders, also for a run that diverged.

    The experiment cache keeps what recorders gathered beside a finished run, but a run whose
    loss became NaN is cached without it; on such a cache hit the run is trained again without
    the cache so the recorders see how it diverged (that is what a sick run is recorded for).

    Parameters
    ----------
    config : TrainConfig or dict
    seed : int
    recorders : sequence of Callback
        E.g. ``[HistogramRecorder(every=10)]``; filled on return.
    device, cache, keep_model
        As in :func:`mnistlab.experiments.run`.

    Returns
    -------
    pandas.DataFrame
        The run's tidy per-epoch table (one row with ``diverged=True`` for a diverged run).
    """
    from ..experiments import run

    recorders = list(recorders)
    df = run(config, seed, device=device, cache=cache, keep_model=keep_model, callbacks=recorders)
    empty = any(isinstance(r, (HistogramRecorder, SnapshotRecorder)) and len(r) == 0 for r in recorders)
    if empty and bool(df["diverged"].fillna(False).astype(bool).any()):
        df = run(config, seed, device=device, cache=False, keep_model=False, callbacks=recorders)
    return df


# --------------------------------------------------------------------------------------------
# The hidden representation over training
# --------------------------------------------------------------------------------------------

@dataclass
class RepresentationFrames:
    """Penultimate features of fixed digits at several moments of training, in one PCA plane.

    Attributes
    ----------
    steps : numpy.ndarray
        ``(F,)`` optimizer steps of the snapshots.
    epochs : numpy.ndarray
        ``(F,)`` the same in (fractional) epochs.
    coords : numpy.ndarray
        ``(F, N, 2)`` the projection of each frame's features on the first two principal
        components of the final features (one projection for all frames).
    labels : numpy.ndarray
        ``(N,)`` the digits' classes.
    table : pandas.DataFrame
        Per frame: step, epoch, knn_acc (cross-validated k-NN accuracy on the full features),
        silhouette (on the full features), knn_acc_2d (on the 2-D projection).
    explained_variance : numpy.ndarray
        Fraction of the final features' variance on the two components.
    """

    steps: np.ndarray
    epochs: np.ndarray
    coords: np.ndarray
    labels: np.ndarray
    table: pd.DataFrame
    explained_variance: np.ndarray


def representation_over_training(model: nn.Module, snapshots: SnapshotRecorder, data, k: int = 10, folds: int = 5,
                                 seed: int = 0, rescale: bool = True, device=None,
                                 progress: bool = True) -> RepresentationFrames:
    """Features of ``data`` at every snapshot, projected by one PCA, with their class separation.

    Parameters
    ----------
    model : nn.Module
        The architecture (a copy is loaded with each snapshot; ``model`` itself is not changed).
    snapshots : SnapshotRecorder
        Recorded during the run (or loaded from its cached artifact).
    data : ImageSet or (images, labels)
        Fixed labelled digits, e.g. 1,000 test images.
    k, folds : int
        k of the k-NN classifier and the folds of its cross-validated accuracy.
    seed : int
        Seed of the fold split (PCA is deterministic).
    rescale : bool
        Centre each frame's features and divide them by their overall standard deviation before
        the projection, so frames differ in shape and not in size (the features of a freshly
        initialised network are far smaller than trained ones and would collapse to a dot).
        The separation numbers do not depend on it (k-NN accuracy and silhouette are invariant
        to one overall scale).
    device : optional
    progress : bool

    Returns
    -------
    RepresentationFrames

    Raises
    ------
    ValueError
        If there are no snapshots or fewer than ``folds`` digits of some class.
    """
    from sklearn.decomposition import PCA
    from sklearn.metrics import silhouette_score

    if len(snapshots) == 0:
        raise ValueError("The SnapshotRecorder holds no snapshots: pass it to fit / experiments.run first.")
    labels = np.asarray(data.labels if hasattr(data, "labels") else data[1])
    if np.bincount(labels).min() < folds:
        raise ValueError(f"Some class has fewer than folds={folds} digits; use more digits (at least {folds} per class).")
    work = copy.deepcopy(model)
    feats = [features(snapshots.load_into(work, i), data, device=device)
             for i in tqdm(range(len(snapshots)), desc="features per snapshot", disable=not progress)]
    if rescale:
        feats = [(f - f.mean(0)) / max(float(f.std()), 1e-12) for f in feats]
    pca = PCA(2, random_state=0).fit(feats[-1])
    coords = np.stack([pca.transform(f) for f in feats]).astype(np.float32)
    rows = []
    for i, f in enumerate(tqdm(feats, desc="separation per snapshot", disable=not progress)):
        sil = float(silhouette_score(f, labels)) if np.ptp(f) > 0 else np.nan
        rows.append({"step": snapshots.steps[i], "epoch": snapshots.epochs[i],
                     "knn_acc": knn_accuracy(f, labels, k=k, cv=folds, seed=seed), "silhouette": sil,
                     "knn_acc_2d": knn_accuracy(coords[i], labels, k=k, cv=folds, seed=seed)})
    return RepresentationFrames(np.asarray(snapshots.steps), np.asarray(snapshots.epochs), coords, labels,
                                pd.DataFrame(rows), pca.explained_variance_ratio_.copy())


# --------------------------------------------------------------------------------------------
# The loss along the line from the initial to the final weights
# --------------------------------------------------------------------------------------------

def interpolate_states(start: Mapping, end: Mapping, alpha: float) -> dict:
    """``(1 - alpha) * start + alpha * end`` for every floating tensor; other entries (counters) from ``end``.

    Raises
    ------
    ValueError
        If the two states do not have the same keys and shapes.
    """
    if set(start) != set(end):
        raise ValueError(f"The two states differ in their entries: {sorted(set(start) ^ set(end))[:5]}...; "
                         "interpolate states of the same architecture.")
    out = {}
    for key, b in end.items():
        a = start[key]
        if a.shape != b.shape:
            raise ValueError(f"{key}: shapes {tuple(a.shape)} and {tuple(b.shape)} differ.")
        out[key] = torch.lerp(a.float(), b.float(), float(alpha)).to(b.dtype) if b.is_floating_point() else b.clone()
    return out


def loss_along_line(model: nn.Module, start: Mapping, end: Mapping, data: Mapping[str, object],
                    alphas: Sequence[float] | None = None, device=None, progress: bool = True) -> pd.DataFrame:
    """Loss and accuracy of the weights ``(1 - a) * start + a * end`` for a range of ``a``.

    The classic 1-D probe of Goodfellow, Vinyals & Saxe (2015): a = 0 is the initial network,
    a = 1 the trained one; a monotone decrease with no bump means no barrier lies on the straight
    path. Batch-norm statistics (buffers) are interpolated like the weights.

    Parameters
    ----------
    model : nn.Module
        The architecture (a copy is used; ``model`` is not changed).
    start, end : state dicts
        E.g. ``snaps.state(0)`` and ``snaps.state(-1)``.
    data : dict of split name -> ImageSet
        E.g. ``{"train": train_subset, "test": test}``.
    alphas : sequence of float, optional
        Default 41 points from -0.5 to 1.5.
    device : optional
    progress : bool

    Returns
    -------
    pandas.DataFrame
        Columns alpha, split, loss, acc.
    """
    alphas = np.linspace(-0.5, 1.5, 41) if alphas is None else np.asarray(alphas, dtype=float)
    work = copy.deepcopy(model)
    rows = []
    for a in tqdm(alphas, desc="points on the line", disable=not progress):
        work.load_state_dict(interpolate_states(start, end, float(a)))
        for split, d in data.items():
            r = evaluate(work, d, device=device)
            rows.append({"alpha": float(a), "split": split, "loss": r["loss"], "acc": r["acc"]})
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------------------------
# TensorBoard
# --------------------------------------------------------------------------------------------

def tensorboard_dir(name: str) -> Path:
    """``build/tensorboard/<name>`` of the source checkout (git-ignored), or under the working directory when installed.

    Never inside the figures folder: event files are not part of the gallery.
    """
    from .._util import project_root

    return (project_root() or Path.cwd()) / "build" / "tensorboard" / name


def to_tensorboard(rec: HistogramRecorder, logdir, tag_prefix: str = "") -> Path:
    """Write the recorded histograms and numbers as TensorBoard event files under ``logdir``.

    Histograms appear in TensorBoard's histograms and distributions dashboards as
    ``<quantity>/<layer>`` (weights, gradients, updates) at their training step; every summary
    number appears as a scalar ``<quantity>/<layer>/<statistic>``. View with
    ``tensorboard --logdir <logdir>``.

    Parameters
    ----------
    rec : HistogramRecorder
    logdir : path
        Created if missing.
    tag_prefix : str
        Put before every tag (e.g. a run name and "/").

    Returns
    -------
    pathlib.Path
        ``logdir``.

    Raises
    ------
    ImportError
        If the ``tensorboard`` package is not installed (``pip install tensorboard``).
    """
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as exc:  # torch's writer needs the tensorboard package
        raise ImportError("to_tensorboard needs the tensorboard package: pip install tensorboard") from exc
    logdir = Path(logdir)
    logdir.mkdir(parents=True, exist_ok=True)
    stats = rec.stats
    with SummaryWriter(log_dir=str(logdir)) as writer:
        for quantity in rec.quantities:
            h = rec.histograms(quantity)
            sel = stats[stats["quantity"] == quantity]
            moments = {(int(st), str(layer)): grp.set_index("statistic")["value"]
                       for (st, layer), grp in sel.groupby(["step", "layer"], observed=True)}
            for f, step in enumerate(h.steps):
                for l, layer in enumerate(h.layers):
                    counts = h.counts[f, l].astype(float)
                    n = float(counts.sum())
                    m = moments.get((int(step), layer))
                    mean = float(m["mean"]) if m is not None else 0.0
                    std = float(m["std"]) if m is not None else 0.0
                    writer.add_histogram_raw(
                        f"{tag_prefix}{quantity}/{layer}", min=float(h.edges[l, 0]), max=float(h.edges[l, -1]),
                        num=n, sum=mean * n, sum_squares=(std ** 2 + mean ** 2) * n,
                        bucket_limits=h.edges[l, 1:].tolist(), bucket_counts=counts.tolist(), global_step=int(step))
        for row in stats.itertuples(index=False):
            if np.isfinite(row.value):
                writer.add_scalar(f"{tag_prefix}{row.quantity}/{row.layer}/{row.statistic}", float(row.value),
                                  global_step=int(row.step))
    return logdir
