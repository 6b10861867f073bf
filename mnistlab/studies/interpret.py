"""Inside a trained classifier: errors, attributions, hidden layers, calibration, label errors, robustness.

Compute only (no matplotlib; the figures are in :mod:`mnistlab.viz.interpret`). Everything starts
from :class:`Interpretation`, which runs the model once over a labelled set and answers the
questions about its errors from the stored log-probabilities (after fastai's ``Interpretation``).
The other functions take the model itself:

- attributions through Captum (:func:`attribute`): vanilla gradient saliency, SmoothGrad
  (``NoiseTunnel``), Integrated Gradients with its convergence delta, Grad-CAM on the last conv
  layer; per-class average maps, contrasts between two classes, and the randomised-weights
  sanity check of Adebayo et al. (2018) (:func:`randomization_check`);
- hidden layers: feature maps (Captum ``LayerActivation``), first-layer filters, mean channel
  activation per class, top-activating images, class activation maximisation;
- calibration: expected calibration error (torchmetrics), reliability tables, temperature scaling
  fitted on a validation split (:func:`calibrate`);
- suspected label errors with cleanlab's confident learning (:func:`label_issues`) and a check
  on labels flipped on purpose (:func:`flipped_label_check`);
- robustness to rotation, shift, Gaussian noise and blur (:func:`robustness`).

Every model argument may be a single classifier or a list of them (an ensemble: probabilities
averaged). Models take normalised inputs as their ``preprocessing`` declares; here they are
wrapped in :class:`PixelModel`, which takes pixels in [0, 1], so attributions live in pixel space
and an all-black image is the natural Integrated Gradients baseline.

Examples
--------
>>> import mnistlab as ml
>>> from mnistlab.studies import interpret
>>> test = ml.load_dataset("mnist", "test")                         # doctest: +SKIP
>>> interp = interpret.Interpretation.from_model(ml.load_pretrained(), test)   # doctest: +SKIP
>>> interp.most_confused(5)                                        # doctest: +SKIP
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from .._util import eval_mode
from ..data.datasets import ImageSet, as_imageset, dataset_info
from ..experiments.stats import t_interval
from ..experiments.stats import wilson_interval  # noqa: F401 (re-exported: the calibration tables use it)
from ..models.registry import preprocessing_of
from ..training.config import EVAL_BATCH_SIZE
from ..training.recorder import layer_names

__all__ = [
    "load_subject", "Interpretation", "PixelModel", "pixel_model", "model_logits", "as_pixels",
    "METHODS", "Attribution", "attribute", "contrast", "class_average_maps", "region_shares",
    "randomization_check", "RandomizationCheck",
    "conv_layers", "feature_maps", "first_layer_filters", "channel_class_means", "top_activating",
    "class_maximization",
    "expected_calibration_error", "reliability_table", "merge_sparse_bins", "wilson_interval", "fit_temperature",
    "calibrate", "Calibration",
    "label_issues", "flip_labels", "flipped_label_check",
    "PERTURBATIONS", "perturb", "robustness",
]

_ACTIVATIONS = (nn.ReLU, nn.Tanh, nn.Sigmoid, nn.GELU, nn.ELU, nn.LeakyReLU, nn.SiLU)


# --------------------------------------------------------------------------------------------
# Models in pixel space
# --------------------------------------------------------------------------------------------

class PixelModel(nn.Module):
    """A classifier, or an ensemble of classifiers, that takes pixels in [0, 1].

    Each member normalises its input as its own ``preprocessing`` declares. One member returns
    its logits; several return ``log(mean(softmax))`` of the members (the averaged probabilities,
    as log-probabilities, so ``softmax`` of the output is the ensemble's prediction).

    Parameters
    ----------
    models : nn.Module or sequence of nn.Module
        Classifiers taking normalised (B, 1, 28, 28) batches. They are kept by reference (not
        copied), so their layers can be hooked (Grad-CAM, feature maps).
    """

    def __init__(self, models):
        super().__init__()
        models = list(models) if isinstance(models, (list, tuple)) else [models]
        if not models or not all(isinstance(m, nn.Module) for m in models):
            raise TypeError("PixelModel needs a classifier (nn.Module) or a non-empty list of them.")
        self.members = nn.ModuleList(models)
        pres = [preprocessing_of(m) for m in models]
        self.register_buffer("mean", torch.tensor([p.mean for p in pres]).view(-1, 1, 1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor([p.std for p in pres]).view(-1, 1, 1, 1, 1), persistent=False)
        self.dataset = pres[0].dataset

    @property
    def is_ensemble(self) -> bool:
        """True when the model averages several members."""
        return len(self.members) > 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (one member) or log of the averaged probabilities (ensemble) of pixels ``x`` in [0, 1]."""
        if len(self.members) == 1:
            return self.members[0]((x - self.mean[0]) / self.std[0])
        logp = torch.stack([F.log_softmax(m((x - mu) / sd), dim=1)
                            for m, mu, sd in zip(self.members, self.mean, self.std)])
        return torch.logsumexp(logp, dim=0) - math.log(len(self.members))


def pixel_model(model) -> PixelModel:
    """Wrap ``model`` (a classifier, a list of classifiers or a :class:`PixelModel`) as a :class:`PixelModel` in eval mode."""
    pm = model if isinstance(model, PixelModel) else PixelModel(model)
    return pm.eval()


def as_pixels(images) -> torch.Tensor:
    """Images as a float batch (N, 1, 28, 28) in [0, 1].

    Parameters
    ----------
    images : ImageSet, uint8 tensor (N, 28, 28), float tensor in [0, 1] (N, 28, 28) or (N, 1, 28, 28)
    """
    if isinstance(images, ImageSet):
        images = images.images
    images = torch.as_tensor(images)
    if images.dtype == torch.uint8:
        images = images.float().div(255.0)
    images = images.float()
    if images.ndim == 3:
        images = images.unsqueeze(1)
    if images.ndim != 4 or images.shape[1] != 1:
        raise ValueError(f"Expected images of shape (N, 28, 28) or (N, 1, 28, 28), got {tuple(images.shape)}.")
    return images


@torch.no_grad()
def model_logits(model, images, batch_size: int = EVAL_BATCH_SIZE, progress: bool = False) -> np.ndarray:
    """Logits (log-probabilities for an ensemble) of every image, a float32 array (N, C).

    Parameters
    ----------
    model : classifier, list of classifiers or PixelModel
    images : ImageSet or image tensor (see :func:`as_pixels`)
    batch_size : int
    progress : bool
    """
    pm = pixel_model(model)
    x = as_pixels(images)
    dev = next(pm.parameters()).device
    outs = []
    with eval_mode(pm):
        for i in tqdm(range(0, len(x), batch_size), desc="predicting", unit="batch", disable=not progress,
                      leave=False):
            outs.append(pm(x[i:i + batch_size].to(dev)).float().cpu())
    return torch.cat(outs).numpy() if outs else np.zeros((0, 0), np.float32)


def load_subject(spec="pretrained", *, dataset: str = "mnist", ensemble=None, seeds=range(5), device="cpu"):
    """The model a notebook looks inside: the shipped one, a checkpoint, or an ensemble.

    Parameters
    ----------
    spec : "pretrained", "ensemble" or a checkpoint path
        ``"pretrained"``: :func:`mnistlab.load_pretrained` (MNIST only). ``"ensemble"``: the
        models of ``ensemble`` (a TrainConfig; default the ``best`` recipe) for ``seeds``, from
        the experiment cache (trained once if absent). A path: any :func:`mnistlab.save_checkpoint`
        file.
    dataset : str
    ensemble : TrainConfig, optional
    seeds : iterable of int
    device : str

    Returns
    -------
    model : nn.Module or list of nn.Module
        In eval mode (a list for an ensemble: every function here averages its probabilities).
    description : str
        One line naming the model, for the notebook's first sentence.

    Raises
    ------
    ValueError
        ``"pretrained"`` with a dataset other than MNIST.
    FileNotFoundError
        ``spec`` is none of the names and no such file exists.
    """
    from pathlib import Path

    if spec == "pretrained":
        from ..training.pretrained import load_pretrained, pretrained_info

        if dataset_info(dataset).name != "mnist":
            raise ValueError(f"The shipped pretrained model is for MNIST, not {dataset!r}: set MODEL to a checkpoint "
                             f"trained on {dataset} or to 'ensemble'.")
        info = pretrained_info()
        return load_pretrained(device=device), (f"the shipped pretrained model ('{info['recipe']}' recipe, seed "
                                                f"{info['seed']}, {info['parameters']:,} parameters)")
    if spec == "ensemble":
        from ..experiments import load_model
        from ..training.recipes import get_recipe

        cfg = get_recipe("best").but(dataset=dataset) if ensemble is None else ensemble
        seeds = [int(s) for s in seeds]
        models = [load_model(cfg, seed=s, device=device).eval() for s in tqdm(seeds, desc="ensemble", unit="model")]
        return models, f"an ensemble of {len(models)} '{cfg.name}' models (seeds {seeds}), probabilities averaged"
    path = Path(str(spec)).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"MODEL={spec!r} is neither 'pretrained', 'ensemble' nor an existing checkpoint file.")
    from ..training.checkpoint import load_checkpoint

    ck = load_checkpoint(path, device=device)
    return ck.model.eval(), f"checkpoint {path.name} ('{ck.name}' model)"


# --------------------------------------------------------------------------------------------
# Interpretation: predictions computed once
# --------------------------------------------------------------------------------------------

class Interpretation:
    """Predictions of a classifier on a labelled set, computed once, and the questions they answer.

    Build it with :meth:`from_model` (runs the model) or :meth:`from_probs` / :meth:`from_logits`.

    Parameters
    ----------
    log_probs : array (N, C)
        Log-probabilities of every class.
    labels : array (N,)
        True classes.
    images : uint8 tensor (N, 28, 28), optional
        The images, for the figures and widgets.
    indices : array (N,), optional
        Each row's index in its dataset (default ``0..N-1``); the index of :attr:`predictions`.
    classes : sequence of str, optional
        Class names (default the dataset's, else "0".."C-1").
    logits : array (N, C), optional
        Raw logits when known (temperature scaling needs them); defaults to ``log_probs``,
        which give the same softmax.
    dataset : str

    Attributes
    ----------
    probs : ndarray (N, C)
    predicted : ndarray (N,)
    losses : ndarray (N,)
        Cross-entropy of each example, ``-log p(true)``.
    """

    def __init__(self, log_probs, labels, *, images=None, indices=None, classes=None, logits=None,
                 dataset: str = "mnist"):
        log_probs = np.asarray(log_probs, dtype=np.float64)
        labels = np.asarray(labels).astype(np.int64)
        if log_probs.ndim != 2 or len(log_probs) != len(labels):
            raise ValueError(f"log_probs must be (N, C) with N = len(labels) = {len(labels)}; got {log_probs.shape}.")
        n, c = log_probs.shape
        if len(labels) and (labels.min() < 0 or labels.max() >= c):
            raise ValueError(f"labels must lie in 0..{c - 1} for {c} classes; got {labels.min()}..{labels.max()}.")
        self.log_probs = log_probs
        self.labels = labels
        self.logits = log_probs if logits is None else np.asarray(logits, dtype=np.float64)
        self.probs = np.exp(log_probs)
        self.predicted = log_probs.argmax(1)
        self.losses = -log_probs[np.arange(n), labels]
        self.indices = np.arange(n) if indices is None else np.asarray(indices).astype(np.int64)
        if len(self.indices) != n:
            raise ValueError(f"indices has {len(self.indices)} entries for {n} predictions.")
        if images is not None:
            images = torch.as_tensor(images)
            if len(images) != n:
                raise ValueError(f"images has {len(images)} entries for {n} predictions.")
        self.images = images
        self.dataset = dataset
        if classes is None:
            try:
                classes = dataset_info(dataset).classes
            except ValueError:
                classes = None
            if classes is None or len(classes) != c:
                classes = tuple(str(i) for i in range(c))
        if len(classes) != c:
            raise ValueError(f"{len(classes)} class names for {c} classes.")
        self.classes = tuple(str(k) for k in classes)
        self._pos = pd.Index(self.indices)

    # -- constructors ------------------------------------------------------------------------
    @classmethod
    def from_model(cls, model, data, *, batch_size: int = EVAL_BATCH_SIZE, progress: bool = False) -> "Interpretation":
        """Run ``model`` once over labelled ``data``.

        Parameters
        ----------
        model : classifier, list of classifiers (ensemble: averaged probabilities) or PixelModel
            A registry model, :func:`mnistlab.load_pretrained`, a checkpoint's model, ...
        data : ImageSet or (images, labels)
        batch_size : int
        progress : bool

        Returns
        -------
        Interpretation
        """
        pm = pixel_model(model)
        data = as_imageset(data, pm.dataset, need_labels=True)
        logits = model_logits(pm, data, batch_size=batch_size, progress=progress).astype(np.float64)
        log_probs = logits - _logsumexp(logits)
        return cls(log_probs, data.labels.numpy(), images=data.images, logits=logits, dataset=data.dataset)

    @classmethod
    def from_logits(cls, logits, labels, **kwargs) -> "Interpretation":
        """From logits (N, C) and labels; ``kwargs`` as in the constructor."""
        logits = np.asarray(logits, dtype=np.float64)
        return cls(logits - _logsumexp(logits), labels, logits=logits, **kwargs)

    @classmethod
    def from_probs(cls, probs, labels, **kwargs) -> "Interpretation":
        """From probabilities (N, C) (e.g. an ensemble's averaged ones) and labels.

        Rows must sum to 1 (within 1e-3); zeros are clipped to the smallest positive float so
        losses stay finite.
        """
        probs = np.asarray(probs, dtype=np.float64)
        if probs.ndim != 2 or np.any(probs < 0) or not np.allclose(probs.sum(1), 1.0, atol=1e-3):
            raise ValueError("probs must be an (N, C) array of non-negative rows summing to 1; pass logits to "
                             "Interpretation.from_logits instead.")
        return cls(np.log(np.clip(probs, np.finfo(np.float64).tiny, None)), labels, **kwargs)

    def subset(self, positions) -> "Interpretation":
        """A new Interpretation of the rows at ``positions`` (0-based positions, not dataset indices)."""
        pos = np.asarray(positions)
        return Interpretation(self.log_probs[pos], self.labels[pos],
                              images=None if self.images is None else self.images[torch.as_tensor(pos)],
                              indices=self.indices[pos], classes=self.classes, logits=self.logits[pos],
                              dataset=self.dataset)

    # -- basic numbers -----------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.labels)

    @property
    def num_classes(self) -> int:
        """Number of classes C."""
        return self.log_probs.shape[1]

    @property
    def correct(self) -> np.ndarray:
        """Boolean array: prediction equals the label."""
        return self.predicted == self.labels

    @property
    def accuracy(self) -> float:
        """Share of correct predictions."""
        return float(self.correct.mean()) if len(self) else float("nan")

    @property
    def n_errors(self) -> int:
        """Number of misclassified examples."""
        return int((~self.correct).sum())

    @property
    def mean_loss(self) -> float:
        """Mean cross-entropy."""
        return float(self.losses.mean())

    def positions(self, indices) -> np.ndarray:
        """Positions (rows) of dataset ``indices``; raises ``KeyError`` for an index not in this set."""
        pos = self._pos.get_indexer(np.atleast_1d(np.asarray(indices)))
        if np.any(pos < 0):
            raise KeyError(f"indices {np.asarray(indices)[pos < 0][:5].tolist()} are not in this Interpretation.")
        return pos

    def images_of(self, indices) -> torch.Tensor:
        """The uint8 images (K, 28, 28) of dataset ``indices``."""
        if self.images is None:
            raise ValueError("This Interpretation was built without images; pass images= or use from_model.")
        return self.images[torch.as_tensor(self.positions(indices))]

    # -- tables ------------------------------------------------------------------------------
    @property
    def predictions(self) -> pd.DataFrame:
        """One row per example, indexed by dataset ``index``.

        Columns: ``true``, ``predicted``, ``confidence`` (probability of the predicted class),
        ``correct``, ``loss``, ``p_true`` and one probability column per class (``p0`` ...).
        """
        n = np.arange(len(self))
        df = pd.DataFrame({"true": self.labels, "predicted": self.predicted,
                           "confidence": self.probs[n, self.predicted], "correct": self.correct,
                           "loss": self.losses, "p_true": self.probs[n, self.labels]},
                          index=pd.Index(self.indices, name="index"))
        probs = pd.DataFrame(self.probs, columns=[f"p{k}" for k in range(self.num_classes)], index=df.index)
        return pd.concat([df, probs], axis=1)

    def confusion(self, normalize: str | None = None) -> pd.DataFrame:
        """Confusion matrix from scikit-learn: rows true class, columns predicted class.

        Parameters
        ----------
        normalize : None, "true", "pred" or "all"
            ``None``: counts (they sum to N); ``"true"``: each row sums to 1 (recall on the
            diagonal).
        """
        from sklearn.metrics import confusion_matrix

        cm = confusion_matrix(self.labels, self.predicted, labels=np.arange(self.num_classes), normalize=normalize)
        return pd.DataFrame(cm, index=pd.Index(self.classes, name="true"),
                            columns=pd.Index(self.classes, name="predicted"))

    def most_confused(self, k: int = 10, min_count: int = 1) -> pd.DataFrame:
        """The ``k`` most frequent (true, predicted) error pairs.

        Returns
        -------
        DataFrame
            Columns ``true``, ``predicted`` (class indices), ``true_name``, ``predicted_name``,
            ``count`` and ``rate`` (count / number of examples of the true class), most frequent
            first (ties by true then predicted class).
        """
        cm = self.confusion().to_numpy()
        support = cm.sum(1)
        rows = [{"true": t, "predicted": p, "true_name": self.classes[t], "predicted_name": self.classes[p],
                 "count": int(cm[t, p]), "rate": cm[t, p] / support[t] if support[t] else np.nan}
                for t in range(self.num_classes) for p in range(self.num_classes) if t != p and cm[t, p] >= min_count]
        df = pd.DataFrame(rows, columns=["true", "predicted", "true_name", "predicted_name", "count", "rate"])
        return df.sort_values(["count", "true", "predicted"], ascending=[False, True, True],
                              kind="stable").head(k).reset_index(drop=True)

    def top_losses(self, k: int = 9, which: str = "all") -> pd.DataFrame:
        """The ``k`` examples with the largest loss (``which``: "all", "wrong" or "correct").

        Returns
        -------
        DataFrame
            Indexed by dataset ``index``, largest loss first, with the columns of
            :attr:`predictions`; see :meth:`most_confident_wrong`.
        """
        df = self._which(which)
        return df.sort_values("loss", ascending=False, kind="stable").head(k)

    def _which(self, which: str) -> pd.DataFrame:
        df = self.predictions
        if which == "all":
            return df
        if which == "wrong":
            return df[~df["correct"]]
        if which == "correct":
            return df[df["correct"]]
        raise ValueError(f"which must be 'all', 'wrong' or 'correct', not {which!r}.")

    def misclassified_by_class(self) -> pd.DataFrame:
        """Every misclassified example, grouped by true class, most confident error first.

        Returns
        -------
        DataFrame
            Indexed by dataset ``index``; columns ``true``, ``predicted``, ``confidence``,
            ``p_true``, ``loss`` and ``rank`` (0 = the most confident error of its true class).
        """
        df = self._which("wrong")[["true", "predicted", "confidence", "p_true", "loss"]]
        df = df.sort_values(["true", "confidence"], ascending=[True, False], kind="stable")
        return df.assign(rank=df.groupby("true").cumcount())

    def report(self) -> pd.DataFrame:
        """Per-class precision, recall, F1 and support from scikit-learn's ``classification_report``.

        One row per class, then ``macro avg`` and ``weighted avg`` (and ``accuracy`` in its own row).
        """
        from sklearn.metrics import classification_report

        rep = classification_report(self.labels, self.predicted, labels=np.arange(self.num_classes),
                                    target_names=list(self.classes), output_dict=True, zero_division=0)
        acc = rep.pop("accuracy", None)
        df = pd.DataFrame(rep).T.rename(columns={"f1-score": "f1"})
        df["support"] = df["support"].astype(int)
        if acc is not None:
            df.loc["accuracy"] = [np.nan, np.nan, acc, len(self)]
        return df

    def grouped(self) -> pd.DataFrame:
        """:attr:`predictions` grouped by true then predicted class (MultiIndex true, predicted, index),
        most confident first inside each group."""
        df = self.predictions.reset_index()
        df = df.sort_values(["true", "predicted", "confidence"], ascending=[True, True, False], kind="stable")
        return df.set_index(["true", "predicted", "index"])

    def least_confident_correct(self, k: int = 10) -> pd.DataFrame:
        """The ``k`` correctly classified examples with the lowest confidence.

        Returns
        -------
        DataFrame
            Indexed by dataset ``index``, least confident first, with the columns of
            :attr:`predictions` (``true``, ``predicted``, ``confidence``, ``correct``, ``loss``,
            ``p_true``, ``p0`` ...); see :meth:`most_confident_wrong`.
        """
        return self._which("correct").sort_values("confidence", kind="stable").head(k)

    def most_confident_wrong(self, k: int = 10) -> pd.DataFrame:
        """The ``k`` misclassified examples with the highest confidence (the model's surest mistakes).

        Parameters
        ----------
        k : int
            How many rows (fewer when there are fewer errors).

        Returns
        -------
        DataFrame
            Indexed by dataset ``index`` (the image's position in the dataset), most confident
            first, with the columns of :attr:`predictions`:

            - ``true`` : int, the label;
            - ``predicted`` : int, the predicted class;
            - ``confidence`` : float, the probability of the predicted class;
            - ``correct`` : bool, always False here;
            - ``loss`` : float, the cross-entropy ``-log p_true``;
            - ``p_true`` : float, the probability given to the label;
            - ``p0`` ... ``p9`` : float, the probability of each class (one per class).

        Examples
        --------
        >>> wrong = interp.most_confident_wrong(16)                 # doctest: +SKIP
        >>> images = interp.images_of(wrong.index)                   # their pictures
        """
        return self._which("wrong").sort_values("confidence", ascending=False, kind="stable").head(k)

    def cell(self, true: int, predicted: int) -> np.ndarray:
        """Dataset indices of the examples of confusion cell (``true``, ``predicted``), most confident first."""
        for name, v in (("true", true), ("predicted", predicted)):
            if not 0 <= int(v) < self.num_classes:
                raise ValueError(f"{name}={v} is not a class index (0..{self.num_classes - 1}).")
        pos = np.flatnonzero((self.labels == int(true)) & (self.predicted == int(predicted)))
        conf = self.probs[pos, int(predicted)]
        return self.indices[pos[np.argsort(-conf, kind="stable")]]

    def filter(self, true: int | None = None, predicted: int | None = None, sort: str = "confidence",
               ascending: bool = False, errors_only: bool = False) -> pd.DataFrame:
        """Rows of :attr:`predictions` with the given true and/or predicted class, sorted by ``sort``.

        Parameters
        ----------
        true, predicted : int, optional
            Class indices to keep (``None``: all).
        sort : "confidence", "loss", "p_true" or "index"
        ascending : bool
        errors_only : bool
        """
        df = self.predictions
        if sort not in ("confidence", "loss", "p_true", "index"):
            raise ValueError(f"sort must be 'confidence', 'loss', 'p_true' or 'index', not {sort!r}.")
        mask = np.ones(len(df), bool)
        if true is not None:
            mask &= df["true"].to_numpy() == int(true)
        if predicted is not None:
            mask &= df["predicted"].to_numpy() == int(predicted)
        if errors_only:
            mask &= ~df["correct"].to_numpy()
        df = df[mask]
        return df.sort_index(ascending=ascending) if sort == "index" else df.sort_values(sort, ascending=ascending,
                                                                                           kind="stable")


def _logsumexp(a: np.ndarray) -> np.ndarray:
    from scipy.special import logsumexp

    return logsumexp(a, axis=1, keepdims=True)


# --------------------------------------------------------------------------------------------
# Attributions (Captum)
# --------------------------------------------------------------------------------------------

METHODS = ("saliency", "smoothgrad", "integrated_gradients", "gradcam")
"""Attribution methods of :func:`attribute`."""


@dataclass
class Attribution:
    """Attribution maps of one method.

    Attributes
    ----------
    method : str
    maps : ndarray (N, 28, 28)
        Signed attributions in pixel space (positive: raises the target's score).
    targets : ndarray (N,)
    delta : ndarray (N,) or None
        Integrated Gradients' convergence delta: sum of attributions minus
        ``F(x) - F(baseline)`` (``None`` for the other methods).
    steps : int or None
        Integrated Gradients' number of steps (``None`` for the other methods).
    resolution : (int, int) or None
        Grad-CAM: the height and width of the last conv layer's maps the attribution was computed
        on before it was upsampled to 28 x 28 (``None`` for the other methods).
    """

    method: str
    maps: np.ndarray
    targets: np.ndarray
    delta: np.ndarray | None = None
    steps: int | None = None
    resolution: tuple | None = None


def conv_layers(model) -> list[tuple[str, nn.Conv2d]]:
    """The ``Conv2d`` layers of ``model`` (first member of an ensemble) in definition order, with their names.

    Names are those of :func:`mnistlab.training.recorder.layer_names` (``conv1``, ``conv2``...),
    the names the training recorders and notebook 05 use, not module paths like ``body.0``.
    """
    net = pixel_model(model).members[0]
    names = layer_names(net)
    layers = [(names[path], m) for path, m in net.named_modules() if isinstance(m, nn.Conv2d)]
    if not layers:
        raise ValueError(f"{type(net).__name__} has no Conv2d layer; Grad-CAM and feature maps need a convolutional "
                         "model (e.g. 'lenet5', 'fast', 'best').")
    return layers


def _activation_after(net: nn.Module, conv: nn.Module) -> nn.Module:
    """The first activation module after ``conv`` (before the next conv), else ``conv`` itself."""
    mods = list(net.modules())
    i = mods.index(conv)
    for m in mods[i + 1:]:
        if isinstance(m, nn.Conv2d):
            break
        if isinstance(m, _ACTIVATIONS):
            return m
    return conv


class _Contrast(nn.Module):
    """Output ``logit[towards] - logit[away]`` as a (B, 1) tensor."""

    def __init__(self, pm: PixelModel, towards: int, away: int):
        super().__init__()
        self.pm, self.towards, self.away = pm, int(towards), int(away)

    def forward(self, x):
        out = self.pm(x)
        return (out[:, self.towards] - out[:, self.away]).unsqueeze(1)


def _targets(targets, n: int) -> np.ndarray:
    t = np.full(n, int(targets)) if np.ndim(targets) == 0 else np.asarray(targets).astype(np.int64)
    if len(t) != n:
        raise ValueError(f"{len(t)} targets for {n} images.")
    return t


def attribute(model, images, targets, method: str = "saliency", *, batch_size: int = 64, n_steps: int = 64,
              nt_samples: int = 32, stdev: float = 0.15, seed: int = 0, progress: bool = False,
              _forward: nn.Module | None = None) -> Attribution:
    """Attribution maps of ``images`` for ``targets`` with Captum.

    Parameters
    ----------
    model : classifier, list of classifiers (ensemble) or PixelModel
    images : ImageSet, uint8 (N, 28, 28) or float tensor in [0, 1]
    targets : int or array (N,)
        Class whose score is explained, per image.
    method : "saliency", "smoothgrad", "integrated_gradients" or "gradcam"
        - ``saliency``: the signed gradient of the target's logit (Captum ``Saliency``, ``abs=False``).
        - ``smoothgrad``: the same averaged over ``nt_samples`` noisy copies (Captum ``NoiseTunnel``,
          noise std ``stdev`` in pixel units).
        - ``integrated_gradients``: from an all-black baseline in ``n_steps`` steps (Captum
          ``IntegratedGradients``); the convergence delta is returned in ``Attribution.delta``.
        - ``gradcam``: Captum ``LayerGradCam`` on the last conv layer, upsampled bilinearly to
          28 x 28 (signed, not ReLU-ed). For an ensemble, the members' maps are averaged.
    batch_size : int
    n_steps, nt_samples, stdev : Integrated Gradients steps; SmoothGrad samples and noise.
    seed : int
        Seeds SmoothGrad's noise (same seed, same maps).
    progress : bool

    Returns
    -------
    Attribution
    """
    from captum.attr import IntegratedGradients, LayerAttribution, LayerGradCam, NoiseTunnel, Saliency

    if method not in METHODS:
        raise ValueError(f"Unknown attribution method {method!r}; choose one of {METHODS}.")
    pm = pixel_model(model)
    fwd = pm if _forward is None else _forward
    x_all = as_pixels(images)
    t_all = _targets(targets, len(x_all))
    dev = next(pm.parameters()).device
    maps, deltas, resolution = [], [], None
    with eval_mode(pm), torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for i in tqdm(range(0, len(x_all), batch_size), desc=method, unit="batch", disable=not progress, leave=False):
            x = x_all[i:i + batch_size].to(dev).requires_grad_(True)
            t = torch.as_tensor(t_all[i:i + batch_size], device=dev)
            if method == "saliency":
                a = Saliency(fwd).attribute(x, target=t, abs=False)
            elif method == "smoothgrad":
                a = NoiseTunnel(Saliency(fwd)).attribute(x, nt_type="smoothgrad", nt_samples=nt_samples,
                                                         nt_samples_batch_size=nt_samples * len(x),
                                                         stdevs=float(stdev), target=t, abs=False)
            elif method == "integrated_gradients":
                a, d = IntegratedGradients(fwd).attribute(x, baselines=torch.zeros_like(x), target=t, n_steps=n_steps,
                                                          internal_batch_size=max(len(x) * 4, 1),
                                                          return_convergence_delta=True)
                deltas.append(d.detach().cpu())
            else:
                members = [(fwd, pm.members[0])] if len(pm.members) == 1 else [(PixelModel([m]), m) for m in pm.members]
                if _forward is not None and len(pm.members) > 1:
                    raise ValueError("Grad-CAM contrasts of an ensemble are not supported; use one member.")
                acc = 0
                for f, net in members:
                    layer = conv_layers(net)[-1][1]
                    g = LayerGradCam(f, layer).attribute(x, target=t, relu_attributions=False)
                    resolution = tuple(int(v) for v in g.shape[-2:])
                    acc = acc + LayerAttribution.interpolate(g, tuple(x.shape[-2:]), interpolate_mode="bilinear")
                a = acc / len(members)
            maps.append(a.detach().float().cpu()[:, 0])
    out = torch.cat(maps).numpy() if maps else np.zeros((0, 28, 28), np.float32)
    delta = torch.cat(deltas).numpy() if deltas else None
    return Attribution(method, out, t_all, delta, steps=int(n_steps) if method == "integrated_gradients" else None,
                       resolution=resolution)


def contrast(model, images, towards: int, away: int, method: str = "integrated_gradients", **kwargs) -> Attribution:
    """Attributions of ``logit[towards] - logit[away]``: which pixels push the images from ``away`` to ``towards``.

    With Integrated Gradients, positive values on the ink are strokes that make the digit look
    more like ``towards`` than ``away``; with saliency, positive values anywhere are where added
    ink would. ``kwargs`` as in :func:`attribute` (not ``gradcam`` for an ensemble).
    """
    pm = pixel_model(model)
    n = len(as_pixels(images))
    res = attribute(pm, images, np.zeros(n, np.int64), method, _forward=_Contrast(pm, towards, away), **kwargs)
    res.targets = np.full(n, int(towards))
    return res


def class_average_maps(model, interp: Interpretation, method: str = "integrated_gradients", per_class: int = 16,
                       seed: int = 0, **kwargs) -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
    """Mean attribution map of each class over up to ``per_class`` correctly classified examples.

    Parameters
    ----------
    model : classifier, ensemble or PixelModel
    interp : Interpretation
        With images (from :meth:`Interpretation.from_model`).
    method : str
        See :func:`attribute`; the target is each example's class.
    per_class : int
    seed : int
        Which examples are drawn.
    **kwargs
        Passed to :func:`attribute`.

    Returns
    -------
    maps : ndarray (C, 28, 28)
        Mean map per class.
    mean_images : ndarray (C, 28, 28)
        Mean image (pixels in [0, 1]) of the examples used, per class (to outline the maps).
    used : DataFrame
        The examples used: dataset ``index`` and ``true``.
    """
    rng = np.random.default_rng(seed)
    picks = []
    for c in range(interp.num_classes):
        pos = np.flatnonzero((interp.labels == c) & interp.correct)
        picks.append(np.sort(rng.permutation(pos)[:per_class]))
    pos = np.concatenate(picks)
    images = interp.images[torch.as_tensor(pos)]
    res = attribute(model, images, interp.labels[pos], method, seed=seed, **kwargs)
    pix = as_pixels(images)[:, 0].numpy()
    maps, means = [], []
    for c in range(interp.num_classes):
        sel = interp.labels[pos] == c
        maps.append(res.maps[sel].mean(0) if sel.any() else np.zeros((28, 28), np.float32))
        means.append(pix[sel].mean(0) if sel.any() else np.zeros((28, 28), np.float32))
    return np.stack(maps), np.stack(means), pd.DataFrame({"index": interp.indices[pos], "true": interp.labels[pos]})


def region_shares(maps, sign: str = "positive") -> pd.Series:
    """Share of the (positive or negative) attribution mass in each of nine regions of the image.

    Parameters
    ----------
    maps : array (28, 28) or (N, 28, 28)
        Summed over N first.
    sign : "positive" or "negative"

    Returns
    -------
    Series
        Index like ``"top-left"``, ..., ``"bottom-right"`` (rows top/middle/bottom by thirds,
        columns left/centre/right), values summing to 1 (all zero if there is no such mass).
    """
    m = np.asarray(maps, dtype=np.float64)
    m = m.sum(0) if m.ndim == 3 else m
    if sign not in ("positive", "negative"):
        raise ValueError(f"sign must be 'positive' or 'negative', not {sign!r}.")
    mass = np.clip(m if sign == "positive" else -m, 0, None)
    total = mass.sum()
    cuts = np.array_split(np.arange(m.shape[0]), 3), np.array_split(np.arange(m.shape[1]), 3)
    out = {}
    for rn, rows in zip(("top", "middle", "bottom"), cuts[0]):
        for cn, cols in zip(("left", "centre", "right"), cuts[1]):
            out[f"{rn}-{cn}"] = mass[np.ix_(rows, cols)].sum() / total if total > 0 else 0.0
    return pd.Series(out, name=f"{sign} share")


# --------------------------------------------------------------------------------------------
# Sanity check: randomised weights (Adebayo et al. 2018)
# --------------------------------------------------------------------------------------------

@dataclass
class RandomizationCheck:
    """Result of :func:`randomization_check`.

    Attributes
    ----------
    table : DataFrame
        One row per cascade step: ``step`` (0 = trained model), ``layer`` (the layer randomised
        at this step, named as the recorders name it: ``fc2``, ``bn3``, ``conv2``...), ``layers_randomized``, and over the images the mean Spearman rank
        correlation with the trained model's maps of the absolute maps (``rank_corr_abs``, with
        ``ci_low``/``ci_high``, a 95% t-interval) and of the signed maps (``rank_corr_signed``).
    trained : ndarray (N, 28, 28)
        Maps of the trained model.
    randomized : ndarray (N, 28, 28)
        Maps of the fully randomised model.
    per_image : DataFrame
        ``step``, ``image``, ``rank_corr_abs``, ``rank_corr_signed``.
    """

    table: pd.DataFrame
    trained: np.ndarray
    randomized: np.ndarray
    per_image: pd.DataFrame


_RANDOMIZED = (nn.Conv2d, nn.Linear, nn.BatchNorm1d, nn.BatchNorm2d)


def _weight_layers(net: nn.Module) -> list[tuple[str, nn.Module]]:
    """(name, module) of every Conv2d, Linear and BatchNorm layer, in definition order.

    Names from :func:`mnistlab.training.recorder.layer_names`: ``conv1``, ``bn1``, ``fc1``...
    """
    names = layer_names(net)
    return [(names[p], m) for p, m in net.named_modules() if type(m) in _RANDOMIZED]


def randomization_check(model, images, targets, method: str = "saliency", seed: int = 0, progress: bool = False,
                        **kwargs) -> RandomizationCheck:
    """Cascading randomisation of the weights, from the output layer down (Adebayo et al. 2018).

    At each step one more layer (Conv2d, Linear or BatchNorm, from the last to the first) gets
    fresh random weights (its ``reset_parameters``, seeded), and the maps are recomputed. If the
    maps depended only on the input (an edge detector), they would barely change; maps that
    explain what the network learnt lose their rank correlation with the trained model's maps.

    Parameters
    ----------
    model : classifier or PixelModel (for an ensemble, the first member is checked)
    images : image tensor or ImageSet
    targets : int or array
    method : str
        See :func:`attribute`.
    seed : int
    progress : bool
    **kwargs
        Passed to :func:`attribute`.

    Returns
    -------
    RandomizationCheck
    """
    from scipy.stats import spearmanr

    pm = pixel_model(model)
    net = copy.deepcopy(pm.members[0])
    trained = attribute(PixelModel([net]), images, targets, method, seed=seed, **kwargs).maps
    layers = _weight_layers(net)[::-1]
    rows, per_image = [], []

    def record(step, name, maps):
        ra = [spearmanr(np.abs(a).ravel(), np.abs(b).ravel())[0] for a, b in zip(trained, maps)]
        rs = [spearmanr(a.ravel(), b.ravel())[0] for a, b in zip(trained, maps)]
        ci = t_interval(ra)
        mean, lo, hi = ci.mean, ci.low, ci.high
        rows.append({"step": step, "layer": name, "layers_randomized": step, "rank_corr_abs": mean,
                     "ci_low": lo, "ci_high": hi, "rank_corr_signed": float(np.nanmean(rs))})
        per_image.extend({"step": step, "image": i, "rank_corr_abs": a, "rank_corr_signed": s}
                         for i, (a, s) in enumerate(zip(ra, rs)))

    record(0, "none (trained)", trained)
    maps = trained
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for step, (name, layer) in enumerate(tqdm(layers, desc="randomising", unit="layer", disable=not progress), 1):
            layer.reset_parameters()
            if isinstance(layer, (nn.BatchNorm1d, nn.BatchNorm2d)):
                with torch.no_grad():  # random affine parameters, not the identity reset_parameters gives
                    layer.weight.normal_(1.0, 0.5)
                    layer.bias.normal_(0.0, 0.5)
            maps = attribute(PixelModel([net]), images, targets, method, seed=seed, **kwargs).maps
            record(step, name, maps)
    return RandomizationCheck(pd.DataFrame(rows), trained, maps, pd.DataFrame(per_image))


# --------------------------------------------------------------------------------------------
# Hidden layers
# --------------------------------------------------------------------------------------------

def _block_outputs(model) -> list[tuple[str, nn.Module]]:
    """(conv name, module whose output is the conv block's feature maps) for every conv layer."""
    net = pixel_model(model).members[0]
    return [(name, _activation_after(net, conv)) for name, conv in conv_layers(net)]


def feature_maps(model, image) -> dict[str, np.ndarray]:
    """Feature maps of every conv layer for one image (Captum ``LayerActivation``).

    Each conv layer's maps are taken after its activation function (after batch norm and
    ReLU where the network has them), so they are what the next layer sees.

    Parameters
    ----------
    model : classifier or PixelModel (first member of an ensemble)
    image : uint8 (28, 28) or float tensor in [0, 1]

    Returns
    -------
    dict
        Conv layer name (``conv1``, ``conv2``...; see :func:`conv_layers`) -> array (channels,
        height, width), in forward order.
    """
    from captum.attr import LayerActivation

    pm = pixel_model(model)
    single = PixelModel([pm.members[0]]).eval()
    x = as_pixels(torch.as_tensor(image).reshape(1, 28, 28) if torch.as_tensor(image).numel() == 784 else image)
    blocks = _block_outputs(single)
    with torch.no_grad():
        acts = LayerActivation(single, [m for _, m in blocks]).attribute(x.to(next(single.parameters()).device))
    return {name: a[0].detach().float().cpu().numpy() for (name, _), a in zip(blocks, acts)}


def first_layer_filters(model) -> np.ndarray:
    """Weights of the first conv layer, an array (out_channels, kh, kw) (input channel 0)."""
    return conv_layers(model)[0][1].weight.detach().float().cpu().numpy()[:, 0]


def _layer_module(model, layer: str | None) -> tuple[str, nn.Module]:
    blocks = _block_outputs(model)
    if layer is None:
        return blocks[-1]
    for name, m in blocks:
        if name == layer:
            return name, m
    raise ValueError(f"No conv layer named {layer!r}; the conv layers are {[n for n, _ in blocks]}.")


@torch.no_grad()
def _channel_means(model, images, layer: str | None, batch_size: int, progress: bool) -> tuple[str, np.ndarray]:
    """Spatial mean of every channel of ``layer``'s feature maps, an array (N, channels)."""
    from captum.attr import LayerActivation

    pm = pixel_model(model)
    single = PixelModel([pm.members[0]]).eval()
    name, module = _layer_module(single, layer)
    x = as_pixels(images)
    dev = next(single.parameters()).device
    la = LayerActivation(single, module)
    out = [la.attribute(x[i:i + batch_size].to(dev)).float().mean((2, 3)).cpu()
           for i in tqdm(range(0, len(x), batch_size), desc=f"activations of {name}", unit="batch",
                         disable=not progress, leave=False)]
    return name, torch.cat(out).numpy()


def channel_class_means(model, interp: Interpretation, layer: str | None = None, batch_size: int = 500,
                        progress: bool = False) -> pd.DataFrame:
    """Mean activation of each channel of a conv layer, per true class.

    Parameters
    ----------
    model : classifier or PixelModel
    interp : Interpretation
        With images.
    layer : str, optional
        Conv layer name (see :func:`conv_layers`); default the last.

    Returns
    -------
    DataFrame
        Rows: class names (index ``class``); columns: channel numbers; values: mean over the
        class's images of the channel's spatially averaged activation. ``df.attrs["layer"]``
        names the layer.
    """
    name, acts = _channel_means(model, interp.images, layer, batch_size, progress)
    df = pd.DataFrame(acts).groupby(interp.labels).mean()
    df.index = pd.Index([interp.classes[i] for i in df.index], name="class")
    df.columns.name = "channel"
    df.attrs["layer"] = name
    return df


def top_activating(model, interp: Interpretation, channels: Sequence[int] | None = None, k: int = 8,
                   layer: str | None = None, n_channels: int = 6, batch_size: int = 500,
                   progress: bool = False) -> pd.DataFrame:
    """The images that activate chosen channels of a conv layer most.

    Parameters
    ----------
    model, interp, layer, batch_size, progress
        As in :func:`channel_class_means`.
    channels : sequence of int, optional
        Default: the ``n_channels`` most class-selective channels (largest gap between the
        top class's mean activation and the mean over the other classes, in units of the
        channel's standard deviation over images), in that order.
    k : int
        Images per channel.

    Returns
    -------
    DataFrame
        Columns ``channel``, ``rank``, ``index`` (dataset index), ``true``, ``activation``;
        ``df.attrs["layer"]`` names the layer.
    """
    name, acts = _channel_means(model, interp.images, layer, batch_size, progress)
    if channels is None:
        means = pd.DataFrame(acts).groupby(interp.labels).mean().to_numpy()  # (C, channels)
        top = means.max(0)
        rest = (means.sum(0) - top) / max(means.shape[0] - 1, 1)
        selectivity = (top - rest) / (acts.std(0) + 1e-8)
        channels = np.argsort(-selectivity, kind="stable")[:n_channels]
    rows = []
    for ch in channels:
        if not 0 <= int(ch) < acts.shape[1]:
            raise ValueError(f"channel {ch} does not exist; layer {name} has {acts.shape[1]} channels.")
        order = np.argsort(-acts[:, ch], kind="stable")[:k]
        rows += [{"channel": int(ch), "rank": r, "index": int(interp.indices[p]), "true": int(interp.labels[p]),
                  "activation": float(acts[p, ch])} for r, p in enumerate(order)]
    df = pd.DataFrame(rows)
    df.attrs["layer"] = name
    return df


def class_maximization(model, classes: Sequence[int] | None = None, steps: int = 300, lr: float = 0.1,
                       tv_weight: float = 0.1, l2_weight: float = 0.05, jitter: int = 1, seed: int = 0,
                       progress: bool = False) -> tuple[np.ndarray, pd.DataFrame]:
    """Class activation maximisation: the input each class's logit likes best, with a smoothness penalty.

    Gradient ascent (Adam) on an image ``x = sigmoid(z)`` in [0, 1], maximising
    ``logit_c(x) - tv_weight * TV(x) - l2_weight * mean(x**2)`` where TV is the mean absolute
    difference of neighbouring pixels; each step the image is shifted by up to ``jitter`` pixels
    (random, seeded) so the result does not rely on single-pixel patterns.

    Parameters
    ----------
    model : classifier, ensemble or PixelModel
    classes : sequence of int, optional
        Default all classes.
    steps, lr, tv_weight, l2_weight, jitter, seed : optimisation settings.
    progress : bool

    Returns
    -------
    images : ndarray (len(classes), 28, 28) in [0, 1]
    table : DataFrame
        ``class``, ``logit``, ``prob`` (softmax of the target class for the final image),
        ``predicted`` (the class the model assigns to it).
    """
    pm = pixel_model(model)
    for p in pm.parameters():
        p.requires_grad_(False)
    try:
        n_classes = model_logits(pm, torch.zeros(1, 28, 28)).shape[1]
        classes = list(range(n_classes)) if classes is None else [int(c) for c in classes]
        dev = next(pm.parameters()).device
        g = torch.Generator().manual_seed(seed)
        z = (torch.randn(len(classes), 1, 28, 28, generator=g) * 0.1 - 2.0).to(dev).requires_grad_(True)
        target = torch.as_tensor(classes, device=dev)
        opt = torch.optim.Adam([z], lr=lr)
        with eval_mode(pm):
            for _ in tqdm(range(steps), desc="maximising classes", unit="step", disable=not progress, leave=False):
                x = torch.sigmoid(z)
                if jitter:
                    dx, dy = torch.randint(-jitter, jitter + 1, (2,), generator=g).tolist()
                    x = torch.roll(x, shifts=(dy, dx), dims=(2, 3))
                logit = pm(x).gather(1, target[:, None])[:, 0]
                tv = (x[..., 1:, :] - x[..., :-1, :]).abs().mean((1, 2, 3)) + (x[..., 1:] - x[..., :-1]).abs().mean((1, 2, 3))
                loss = (-logit + tv_weight * tv * 100 + l2_weight * (x ** 2).mean((1, 2, 3)) * 100).sum()
                opt.zero_grad()
                loss.backward()
                opt.step()
            with torch.no_grad():
                x = torch.sigmoid(z)
                out = pm(x)
                prob = out.softmax(1)
    finally:
        for p in pm.parameters():
            p.requires_grad_(True)
    table = pd.DataFrame({"class": classes, "logit": out.gather(1, target[:, None])[:, 0].cpu().numpy(),
                          "prob": prob.gather(1, target[:, None])[:, 0].cpu().numpy(),
                          "predicted": out.argmax(1).cpu().numpy()})
    return x[:, 0].detach().cpu().numpy(), table


# --------------------------------------------------------------------------------------------
# Calibration
# --------------------------------------------------------------------------------------------

def expected_calibration_error(probs, labels, n_bins: int = 15) -> float:
    """Top-label expected calibration error (L1, ``n_bins`` equal-width bins), from torchmetrics.

    Parameters
    ----------
    probs : array (N, C)
    labels : array (N,)
    n_bins : int
    """
    from torchmetrics.functional.classification import multiclass_calibration_error

    p = torch.as_tensor(np.asarray(probs), dtype=torch.float32)
    y = torch.as_tensor(np.asarray(labels), dtype=torch.long)
    return float(multiclass_calibration_error(p, y, num_classes=p.shape[1], n_bins=n_bins, norm="l1"))


def reliability_table(probs, labels, n_bins: int = 15) -> pd.DataFrame:
    """Reliability diagram data: confidence of the top class against accuracy, per confidence bin.

    Bins are the equal-width bins ``(k/n_bins, (k+1)/n_bins]`` torchmetrics uses for the ECE,
    so ``sum(count * |accuracy - confidence|) / N`` equals :func:`expected_calibration_error`.
    Bins with a handful of images have wide intervals; :func:`merge_sparse_bins` joins them for
    a diagram.

    Returns
    -------
    DataFrame
        One row per bin: ``low``, ``high``, ``count``, ``correct`` (images classified correctly),
        ``confidence`` (mean), ``accuracy`` (NaN in empty bins), ``ci_low``, ``ci_high`` (95%
        Wilson interval of the accuracy, NaN in empty bins), ``gap`` (accuracy - confidence).
    """
    probs = np.asarray(probs, dtype=np.float64)
    labels = np.asarray(labels)
    conf, pred = probs.max(1), probs.argmax(1)
    edges = np.linspace(0, 1, n_bins + 1)
    b = np.clip(np.searchsorted(edges, conf, side="left") - 1, 0, n_bins - 1)
    df = pd.DataFrame({"bin": b, "confidence": conf, "accuracy": (pred == labels).astype(float)})
    agg = df.groupby("bin").agg(count=("confidence", "size"), correct=("accuracy", "sum"),
                                confidence=("confidence", "mean"), accuracy=("accuracy", "mean")).reindex(range(n_bins))
    agg["count"] = agg["count"].fillna(0).astype(int)
    agg["correct"] = agg["correct"].fillna(0).astype(int)
    agg.insert(0, "low", edges[:-1])
    agg.insert(1, "high", edges[1:])
    agg["ci_low"], agg["ci_high"] = wilson_interval(agg["correct"].to_numpy(), agg["count"].to_numpy())
    agg["gap"] = agg["accuracy"] - agg["confidence"]
    return agg.reset_index(drop=True)


def merge_sparse_bins(table: pd.DataFrame, min_count: int = 30) -> pd.DataFrame:
    """Join neighbouring bins of a :func:`reliability_table` until each holds at least ``min_count`` images.

    Going from low to high confidence, non-empty bins are pooled until the pool holds
    ``min_count`` images; a remainder at the high end joins the last pool. The accuracy of a
    bin of ten images moves by 10 points with one image, so such bins make a reliability
    diagram zig-zag; pooled bins carry fewer, sturdier points. With fewer than ``min_count``
    images in all, nothing is left.

    Parameters
    ----------
    table : DataFrame
        :func:`reliability_table` (``low``, ``high``, ``count``, ``correct``, ``confidence``).
    min_count : int

    Returns
    -------
    DataFrame
        The columns of :func:`reliability_table` (the pooled bin's range, images, correct ones,
        mean confidence, accuracy with its 95% Wilson interval, gap) plus ``bins``, the number
        of non-empty input bins pooled.
    """
    if int(min_count) < 1:
        raise ValueError(f"min_count must be at least 1, got {min_count!r}.")
    pools, cur = [], None
    for r in table[table["count"] > 0].itertuples(index=False):
        row = {"low": r.low, "high": r.high, "count": int(r.count), "correct": int(r.correct),
               "conf_sum": r.confidence * r.count, "bins": 1}
        cur = row if cur is None else {"low": cur["low"], "high": row["high"], "count": cur["count"] + row["count"],
                                       "correct": cur["correct"] + row["correct"],
                                       "conf_sum": cur["conf_sum"] + row["conf_sum"], "bins": cur["bins"] + 1}
        if cur["count"] >= min_count:
            pools.append(cur)
            cur = None
    if cur is not None and pools:
        last = pools.pop()
        pools.append({"low": last["low"], "high": cur["high"], "count": last["count"] + cur["count"],
                      "correct": last["correct"] + cur["correct"], "conf_sum": last["conf_sum"] + cur["conf_sum"],
                      "bins": last["bins"] + cur["bins"]})
    cols = ["low", "high", "count", "correct", "confidence", "accuracy", "ci_low", "ci_high", "gap", "bins"]
    if not pools:
        return pd.DataFrame(columns=cols)
    out = pd.DataFrame(pools)
    out["confidence"] = out.pop("conf_sum") / out["count"]
    out["accuracy"] = out["correct"] / out["count"]
    out["ci_low"], out["ci_high"] = wilson_interval(out["correct"].to_numpy(), out["count"].to_numpy())
    out["gap"] = out["accuracy"] - out["confidence"]
    return out[cols]


def fit_temperature(logits, labels, bounds: tuple[float, float] = (0.05, 20.0)) -> float:
    """The temperature ``T`` minimising the cross-entropy of ``softmax(logits / T)`` (Guo et al. 2017).

    A one-dimensional bounded minimisation over ``log T`` (SciPy ``minimize_scalar``).

    Parameters
    ----------
    logits : array (N, C)
        Fit on a validation split, never on the data you report on.
    labels : array (N,)
    bounds : (float, float)
        Range of ``T``.

    Returns
    -------
    float
        ``T > 1`` softens an over-confident model, ``T < 1`` sharpens an under-confident one.
    """
    from scipy.optimize import minimize_scalar

    z = torch.as_tensor(np.asarray(logits), dtype=torch.float64)
    y = torch.as_tensor(np.asarray(labels), dtype=torch.long)
    if len(z) == 0:
        raise ValueError("fit_temperature needs at least one example.")

    def nll(log_t: float) -> float:
        return float(F.cross_entropy(z / math.exp(log_t), y))

    res = minimize_scalar(nll, bounds=(math.log(bounds[0]), math.log(bounds[1])), method="bounded",
                          options={"xatol": 1e-5})
    return float(math.exp(res.x))


@dataclass
class Calibration:
    """Result of :func:`calibrate`.

    Attributes
    ----------
    temperature : float
        Fitted on the validation split.
    summary : DataFrame
        Rows ``before`` / ``after`` (on the evaluation split): ``ece``, ``nll``, ``accuracy``,
        ``mean_confidence``.
    before, after : DataFrame
        :func:`reliability_table` on the evaluation split (equal-width bins, those of the ECE).
    val_indices, eval_indices : ndarray
        Dataset indices of the two splits.
    diagram : DataFrame
        What a reliability diagram draws: ``before`` and ``after`` pooled by
        :func:`merge_sparse_bins` to at least ``min_count`` images a bin, stacked with a column
        ``which`` ("before" / "after").
    min_count : int
    """

    temperature: float
    summary: pd.DataFrame
    before: pd.DataFrame
    after: pd.DataFrame
    val_indices: np.ndarray
    eval_indices: np.ndarray = field(repr=False)
    diagram: pd.DataFrame | None = field(default=None, repr=False)
    min_count: int = 30

    def __post_init__(self):
        if self.diagram is None:
            self.diagram = pd.concat([merge_sparse_bins(t, self.min_count).assign(which=w)
                                      for w, t in (("before", self.before), ("after", self.after))], ignore_index=True)

    @property
    def ece_before(self) -> float:
        """ECE on the evaluation split before temperature scaling."""
        return float(self.summary.loc["before", "ece"])

    @property
    def ece_after(self) -> float:
        """ECE on the evaluation split after temperature scaling."""
        return float(self.summary.loc["after", "ece"])


def calibrate(interp: Interpretation, val_fraction: float = 0.5, seed: int = 0, n_bins: int = 15,
              min_count: int = 30) -> Calibration:
    """Temperature scaling fitted on a stratified validation split, judged on the rest.

    Parameters
    ----------
    interp : Interpretation
        Its logits are split into a validation part (fits ``T``) and an evaluation part
        (reports ECE and NLL before and after).
    val_fraction : float
    seed : int
        The split.
    n_bins : int
        Equal-width confidence bins of the ECE and the reliability tables.
    min_count : int
        Fewest images a bin of the diagram holds (:func:`merge_sparse_bins`).

    Returns
    -------
    Calibration
    """
    from sklearn.model_selection import train_test_split

    pos = np.arange(len(interp))
    counts = np.bincount(interp.labels, minlength=interp.num_classes)
    strat = interp.labels if counts[counts > 0].min() >= 2 else None
    val, ev = train_test_split(pos, train_size=val_fraction, random_state=seed, stratify=strat)
    val, ev = np.sort(val), np.sort(ev)
    t = fit_temperature(interp.logits[val], interp.labels[val])
    rows, tables = {}, {}
    for name, temp in (("before", 1.0), ("after", t)):
        z = torch.as_tensor(interp.logits[ev] / temp)
        p = torch.softmax(z, 1).numpy()
        y = interp.labels[ev]
        rows[name] = {"ece": expected_calibration_error(p, y, n_bins),
                      "nll": float(F.cross_entropy(z, torch.as_tensor(y))),
                      "accuracy": float((p.argmax(1) == y).mean()), "mean_confidence": float(p.max(1).mean())}
        tables[name] = reliability_table(p, y, n_bins)
    summary = pd.DataFrame(rows).T
    summary.index.name = f"T = {t:.3f}"
    return Calibration(t, summary, tables["before"], tables["after"], interp.indices[val], interp.indices[ev],
                       min_count=int(min_count))


# --------------------------------------------------------------------------------------------
# Suspected label errors (cleanlab)
# --------------------------------------------------------------------------------------------

def label_issues(labels, probs, *, filter_by: str = "prune_by_noise_rate", classes: Sequence[str] | None = None,
                 indices=None) -> pd.DataFrame:
    """Suspected label errors by confident learning (``cleanlab.filter.find_label_issues``).

    Parameters
    ----------
    labels : array (N,)
        The given labels.
    probs : array (N, C)
        Out-of-fold predicted probabilities (each example predicted by a model that never saw it).
    filter_by : str
        cleanlab's rule (default its own default, ``"prune_by_noise_rate"``).
    classes : sequence of str, optional
    indices : array (N,), optional
        Dataset index of each row (default ``0..N-1``).

    Returns
    -------
    DataFrame
        One row per suspected error, most severe first (cleanlab's ``self_confidence`` ranking):
        ``index``, ``given``, ``predicted``, ``p_given``, ``p_predicted``, ``rank``.
    """
    from cleanlab.filter import find_label_issues

    labels = np.asarray(labels).astype(np.int64)
    probs = np.asarray(probs, dtype=np.float64)
    if probs.shape != (len(labels), probs.shape[1] if probs.ndim == 2 else -1):
        raise ValueError(f"probs must be (N, C) with N = {len(labels)}; got {probs.shape}.")
    idx = find_label_issues(labels, probs, filter_by=filter_by, return_indices_ranked_by="self_confidence",
                            n_jobs=1)
    idx = np.asarray(idx, dtype=np.int64)
    pred = probs[idx].argmax(1) if len(idx) else np.zeros(0, np.int64)
    rows = np.arange(len(labels)) if indices is None else np.asarray(indices)
    df = pd.DataFrame({"index": rows[idx], "given": labels[idx], "predicted": pred,
                       "p_given": probs[idx, labels[idx]], "p_predicted": probs[idx, pred], "rank": np.arange(len(idx))})
    if classes is not None:
        df["given_name"] = [classes[k] for k in df["given"]]
        df["predicted_name"] = [classes[k] for k in df["predicted"]]
    return df


def flip_labels(labels, fraction: float = 0.05, num_classes: int | None = None, seed: int = 0
                ) -> tuple[np.ndarray, np.ndarray]:
    """Flip a random ``fraction`` of labels to another (random, different) class.

    Returns
    -------
    noisy : ndarray (N,)
        The labels with the flips.
    flipped : ndarray
        Sorted positions of the flipped labels.
    """
    labels = np.asarray(labels).astype(np.int64)
    if not 0 <= fraction <= 1:
        raise ValueError(f"fraction must lie in [0, 1], not {fraction}.")
    c = int(num_classes or labels.max() + 1)
    rng = np.random.default_rng(seed)
    flipped = np.sort(rng.choice(len(labels), size=int(round(fraction * len(labels))), replace=False))
    noisy = labels.copy()
    noisy[flipped] = (labels[flipped] + rng.integers(1, c, size=len(flipped))) % c
    return noisy, flipped


def flipped_label_check(data, fraction: float = 0.05, k: int = 5, seed: int = 0, recipe: str = "fast",
                        device="cpu", workers: int = 1, progress: bool = True, **changes) -> dict:
    """Flip ``fraction`` of the labels on purpose and measure how many :func:`label_issues` finds.

    Parameters
    ----------
    data : ImageSet
        A (small) labelled set whose labels are taken as clean.
    fraction, seed : which labels are flipped.
    k, recipe, device, workers, progress, **changes
        Out-of-fold probabilities (:func:`mnistlab.experiments.out_of_fold_probs` on the
        flipped set, with ``get_recipe(recipe, **changes)``).

    Returns
    -------
    dict
        ``n``, ``n_flipped``, ``n_flagged``, ``n_found`` (flipped and flagged), ``recall``
        (``n_found / n_flipped``), ``precision`` (``n_found / n_flagged``; flagged clean labels
        may be real label errors of the data), ``recall_top`` (share of the flipped found in the
        ``n_flipped`` highest-ranked issues), ``flipped`` (positions), ``issues`` (DataFrame of
        :func:`label_issues` with a ``flipped`` column).
    """
    data = as_imageset(data, need_labels=True)
    noisy, flipped = flip_labels(data.labels.numpy(), fraction, seed=seed)
    noisy_set = ImageSet(data.images, torch.as_tensor(noisy), data.dataset)
    from ..experiments.runs import out_of_fold_probs
    from ..training.recipes import get_recipe

    probs = out_of_fold_probs(get_recipe(recipe, **changes), k=k, seed=seed, data=noisy_set, device=device,
                              workers=workers, progress=progress)
    issues = label_issues(noisy, probs)
    issues["flipped"] = np.isin(issues["index"].to_numpy(), flipped)
    found = int(issues["flipped"].sum())
    top = int(issues["flipped"].head(len(flipped)).sum())
    return {"n": len(noisy), "n_flipped": len(flipped), "n_flagged": len(issues), "n_found": found,
            "recall": found / len(flipped) if len(flipped) else float("nan"),
            "precision": found / len(issues) if len(issues) else float("nan"),
            "recall_top": top / len(flipped) if len(flipped) else float("nan"),
            "flipped": flipped, "issues": issues}


# --------------------------------------------------------------------------------------------
# Robustness
# --------------------------------------------------------------------------------------------

PERTURBATIONS = {
    "rotation": ("degrees", (0, 10, 20, 30, 40, 50, 60)),
    "shift": ("pixels", (0, 1, 2, 3, 4, 5, 6)),
    "noise": ("noise std (pixel range 0-1)", (0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3)),
    "blur": ("Gaussian blur sigma (pixels)", (0.0, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0)),
}
"""Perturbation name -> (unit, default levels)."""


def perturb(images, kind: str, level: float, seed: int = 0) -> torch.Tensor:
    """A perturbed copy of uint8 ``images`` (N, 28, 28).

    Parameters
    ----------
    kind : "rotation", "shift", "noise" or "blur"
        - rotation: by ``level`` degrees about the centre, clockwise or anticlockwise at random;
        - shift: by ``level`` pixels in a random direction (bilinear, zeros shifted in);
        - noise: additive Gaussian noise of std ``level`` on pixels in [0, 1], clipped;
        - blur: Gaussian blur of std ``level`` pixels (torchvision ``gaussian_blur``).
    level : float
        0 returns the images unchanged.
    seed : int
        Directions and noise (same seed, same images).

    Returns
    -------
    uint8 tensor (N, 28, 28)
    """
    if kind not in PERTURBATIONS:
        raise ValueError(f"Unknown perturbation {kind!r}; choose one of {sorted(PERTURBATIONS)}.")
    images = ImageSet(images, torch.zeros(len(images), dtype=torch.long)).images if not isinstance(images, ImageSet) \
        else images.images
    if level == 0:
        return images.clone()
    x = images.float().div(255).unsqueeze(1)
    g = torch.Generator().manual_seed(seed)
    n = len(x)
    if kind in ("rotation", "shift"):
        theta = torch.zeros(n, 2, 3)
        if kind == "rotation":
            sign = torch.randint(0, 2, (n,), generator=g).float() * 2 - 1
            a = torch.deg2rad(torch.tensor(float(level))) * sign
            theta[:, 0, 0], theta[:, 0, 1], theta[:, 1, 0], theta[:, 1, 1] = a.cos(), -a.sin(), a.sin(), a.cos()
        else:
            phi = torch.rand(n, generator=g) * 2 * math.pi
            theta[:, 0, 0] = theta[:, 1, 1] = 1.0
            # affine_grid works in [-1, 1] coordinates: one pixel is 2 / 28 (align_corners=False)
            theta[:, 0, 2] = -float(level) * phi.cos() * 2 / x.shape[-1]
            theta[:, 1, 2] = -float(level) * phi.sin() * 2 / x.shape[-2]
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        x = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    elif kind == "noise":
        x = (x + torch.randn(x.shape, generator=g) * float(level)).clamp(0, 1)
    else:
        from torchvision.transforms.v2.functional import gaussian_blur

        ks = 2 * math.ceil(3 * float(level)) + 1
        x = gaussian_blur(x, kernel_size=[ks, ks], sigma=[float(level), float(level)])
    return x[:, 0].mul(255).round().clamp(0, 255).to(torch.uint8)


def robustness(models: Mapping[str, object], data, levels: Mapping[str, Sequence[float]] | None = None,
               seed: int = 0, batch_size: int = EVAL_BATCH_SIZE, progress: bool = True) -> pd.DataFrame:
    """Accuracy of each model on perturbed copies of ``data``, for every perturbation and level.

    Parameters
    ----------
    models : dict
        Display name -> classifier (or ensemble / PixelModel).
    data : ImageSet
    levels : dict, optional
        Perturbation -> levels; default :data:`PERTURBATIONS`' levels. Every model sees the same
        perturbed images.
    seed : int
    batch_size : int
    progress : bool

    Returns
    -------
    DataFrame
        Columns ``model``, ``perturbation``, ``unit``, ``level``, ``acc``, ``ci_low``,
        ``ci_high`` (95% Wilson interval of the accuracy, SciPy ``binomtest``), ``n``, and
        ``top_class`` / ``top_share``: the class the model predicts most often on these images and
        the share of them it gets (near 1: the model has collapsed onto one answer; near 0.1:
        its errors are spread over the classes).
    """
    data = as_imageset(data, need_labels=True)
    levels = {k: v[1] for k, v in PERTURBATIONS.items()} if levels is None else dict(levels)
    pms = {name: pixel_model(m) for name, m in models.items()}
    y = data.labels.numpy()
    jobs = [(kind, float(lv)) for kind, lvs in levels.items() for lv in lvs]
    rows = []
    for kind, lv in tqdm(jobs, desc="perturbations", unit="level", disable=not progress):
        imgs = perturb(data.images, kind, lv, seed=seed)
        for name, pm in pms.items():
            logits = model_logits(pm, imgs, batch_size)
            pred = logits.argmax(1)
            correct = int((pred == y).sum())
            ci_low, ci_high = wilson_interval(correct, len(y))
            counts = np.bincount(pred, minlength=logits.shape[1])
            rows.append({"model": name, "perturbation": kind, "unit": PERTURBATIONS[kind][0], "level": lv,
                         "acc": correct / len(y), "ci_low": float(ci_low), "ci_high": float(ci_high), "n": len(y),
                         "top_class": int(counts.argmax()), "top_share": float(counts.max() / len(y))})
    return pd.DataFrame(rows)
