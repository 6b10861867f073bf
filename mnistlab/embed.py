"""Dimensionality reduction study (notebook 02): PCA, t-SNE backends, embedding quality, plots.

PCA comes from scikit-learn. t-SNE runs on one of three backends behind one function,
:func:`tsne`:

* ``"opentsne"`` - openTSNE with settings tuned for speed on a CPU (FFT-accelerated
  gradients on a coarser grid, exact neighbours, a short exaggeration phase with the
  ``n / 12`` learning rate, 400 steps, PCA initialisation; see :data:`OPENTSNE_TUNED`);
* ``"multicore"`` - MulticoreTSNE (Barnes-Hut, exact neighbours), the reference;
* ``"sklearn"`` - :class:`sklearn.manifold.TSNE` (Barnes-Hut).

``backend="auto"`` takes the fastest one installed, in that order. On all 70,000 MNIST digits
(PCA-50) on a 2-core machine the tuned openTSNE takes about 30 s against about 300 s for
MulticoreTSNE in the same run, with a 10-NN accuracy in 2-D at least as high (0.9764 vs 0.9760);
see ``benchmarks/tsne_speed.py`` and the numbers in README.md.

Quality is measured, never hand-rolled: :func:`knn_accuracy` (cross-validated k-NN
classification in the embedding), :func:`trustworthiness` (scikit-learn's, on a sample) and
:func:`class_separation` (silhouette and k-NN accuracy). The ``plot_*`` functions turn
arrays and DataFrames into figures and know nothing about models or data files.
"""
from __future__ import annotations

import importlib.util
import math
import os
import time
import warnings
from typing import Iterable, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch

__all__ = [
    "BACKENDS", "OPENTSNE_TUNED", "FFT_MIN_POINTS", "EXACT_NEIGHBORS_MAX_POINTS", "THREADS_MIN_POINTS", "BackendNotInstalled",
    "pca", "components_for_variance", "pca_reconstruct",
    "available_backends", "tsne",
    "knn_accuracy", "trustworthiness", "class_separation", "compare_backends",
    "features",
    "plot_scatter", "plot_scatter_3d", "plot_explained_variance", "plot_reconstructions",
    "plot_class_highlights", "plot_axis_distributions", "plot_backends", "plot_representations",
]

#: Backend name -> (importable module, pip package). Order = preference of ``backend="auto"``.
BACKENDS: dict[str, tuple[str, str]] = {
    "opentsne": ("openTSNE", "openTSNE"),
    "multicore": ("MulticoreTSNE", "MulticoreTSNE"),
    "sklearn": ("sklearn", "scikit-learn"),
}

#: The tuned openTSNE settings (measured on MNIST, 2 CPU cores; see benchmarks/tsne_speed.py).
OPENTSNE_TUNED: dict = {
    "neighbors": "exact",                 # scikit-learn's exact kNN: on 70k x 50 faster than Annoy's 50 trees
                                          # here (20 s vs 28 s in all) and worth +0.0005 of 10-NN accuracy
    "negative_gradient_method": "fft",    # FIt-SNE interpolation, O(n); Barnes-Hut below FFT_MIN_POINTS
    "n_interpolation_points": 3,
    "ints_in_interval": 2,                # coarser FFT grid: ~2x faster repulsion, same kNN accuracy
    "early_exaggeration": 12,
    "early_exaggeration_iter": 150,       # with learning rate n/12 the clusters form in ~100 steps; 150 is safe
    "n_iter": 400,                        # 200 already matches MulticoreTSNE; 400 beats it for 8 s more
    "learning_rate": "auto",              # n / exaggeration (Belkina et al. 2019)
    "initialization": "pca",
}
#: Above this many points exact neighbours cost more than they give; the tuned backend uses Annoy.
EXACT_NEIGHBORS_MAX_POINTS = 200_000
#: Below this many points the FFT grid costs more than Barnes-Hut; the tuned backend switches.
FFT_MIN_POINTS = 10_000
#: Below this many points :func:`tsne` runs on one thread unless ``n_jobs`` says otherwise.
THREADS_MIN_POINTS = 5_000


class BackendNotInstalled(ImportError):
    """Raised when a named t-SNE backend is not installed; the message gives the pip command."""


# --------------------------------------------------------------------------------------------
# PCA
# --------------------------------------------------------------------------------------------

def _as_2d(X, name: str = "X") -> np.ndarray:
    if isinstance(X, torch.Tensor):
        X = X.detach().cpu().numpy()
    X = np.asarray(X)
    if X.ndim == 3:  # images (N, 28, 28)
        X = X.reshape(len(X), -1)
    if X.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array (n_samples, n_features); got shape {X.shape}.")
    if len(X) == 0:
        raise ValueError(f"{name} is empty.")
    if not np.issubdtype(X.dtype, np.floating):
        X = X.astype(np.float32)
    return X


def _labels(labels, n: int | None = None) -> np.ndarray:
    if isinstance(labels, torch.Tensor):
        labels = labels.detach().cpu().numpy()
    labels = np.asarray(labels).ravel()
    if n is not None and len(labels) != n:
        raise ValueError(f"labels has {len(labels)} entries but the data has {n} rows.")
    return labels


def pca(X, n_components: int | float | None = 50, seed: int = 0):
    """Fit PCA and project ``X`` onto its leading components.

    Parameters
    ----------
    X : array-like (n_samples, n_features) or images (n_samples, 28, 28)
        Typically ``ImageSet.float()`` (pixels in [0, 1]).
    n_components : int, float or None
        Number of components; a float in (0, 1) keeps enough components for that fraction of
        the variance; ``None`` keeps all (needed for :func:`components_for_variance`).
    seed : int
        Seed of the randomized solver scikit-learn may pick for large inputs.

    Returns
    -------
    embedding : numpy.ndarray (n_samples, n_components), float32
    model : sklearn.decomposition.PCA
        The fitted PCA (``explained_variance_ratio_``, ``components_``, ``transform``...).
    """
    from sklearn.decomposition import PCA

    X = _as_2d(X)
    if isinstance(n_components, (int, np.integer)) and not 1 <= n_components <= min(X.shape):
        raise ValueError(f"n_components={n_components} must be between 1 and min(n_samples, n_features)={min(X.shape)}.")
    model = PCA(n_components=n_components, random_state=seed)
    Z = model.fit_transform(X).astype(np.float32)
    return Z, model


def components_for_variance(model, thresholds: Sequence[float] = (0.9, 0.95, 0.99)) -> dict:
    """Smallest number of principal components explaining each fraction of the variance.

    Parameters
    ----------
    model : fitted sklearn PCA, or an array of explained-variance ratios
        Fit it with all components (``pca(X, None)``) so every threshold can be reached.
    thresholds : sequence of float in (0, 1]

    Returns
    -------
    dict
        ``{threshold: n_components}``, e.g. ``{0.9: 87, 0.95: 154, 0.99: 331}`` for MNIST.

    Raises
    ------
    ValueError
        If a threshold is outside (0, 1] or the fitted components do not reach it.
    """
    ratios = np.asarray(getattr(model, "explained_variance_ratio_", model), dtype=np.float64)
    if ratios.ndim != 1 or len(ratios) == 0:
        raise ValueError("components_for_variance needs a fitted PCA or a 1-D array of explained-variance ratios.")
    cumulative = np.cumsum(ratios)
    out = {}
    for t in np.atleast_1d(thresholds):
        t = float(t)
        if not 0 < t <= 1:
            raise ValueError(f"variance thresholds must lie in (0, 1]; got {t}.")
        k = int(np.searchsorted(cumulative, t - 1e-12) + 1)
        if k > len(cumulative):
            raise ValueError(f"The {len(ratios)} fitted components explain only {cumulative[-1]:.4f} of the variance, "
                             f"less than {t}; fit the PCA with more components (n_components=None keeps all).")
        out[t] = k
    return out


def pca_reconstruct(X, k, model=None, seed: int = 0):
    """Reconstruct ``X`` from its first ``k`` principal components.

    Parameters
    ----------
    X : array-like (n_samples, n_features) or images (n_samples, 28, 28)
    k : int or sequence of int
        Number(s) of components, e.g. ``(2, 10, 50, 150)``.
    model : fitted sklearn PCA, optional
        With at least ``max(k)`` components (e.g. fitted on the training set). By default a
        PCA with ``max(k)`` components is fitted on ``X`` itself.
    seed : int

    Returns
    -------
    numpy.ndarray or dict
        The reconstructions (same shape as the 2-D ``X``) for one ``k``; ``{k: array}`` for a
        sequence.
    """
    X2 = _as_2d(X)
    ks = [int(k)] if np.isscalar(k) else [int(v) for v in k]
    if not ks or min(ks) < 1:
        raise ValueError(f"k must be positive integers; got {k!r}.")
    if model is None:
        _, model = pca(X2, max(ks), seed=seed)
    if max(ks) > model.n_components_:
        raise ValueError(f"k={max(ks)} exceeds the {model.n_components_} components of the fitted PCA.")
    if X2.shape[1] != model.components_.shape[1]:
        raise ValueError(f"X has {X2.shape[1]} features but the PCA was fitted on {model.components_.shape[1]}.")
    scores = (X2 - model.mean_) @ model.components_.T
    out = {kk: (scores[:, :kk] @ model.components_[:kk] + model.mean_).astype(np.float32) for kk in ks}
    return out[ks[0]] if np.isscalar(k) else out


# --------------------------------------------------------------------------------------------
# t-SNE backends
# --------------------------------------------------------------------------------------------

def available_backends() -> list[str]:
    """Installed t-SNE backends, fastest first (the order ``backend="auto"`` tries)."""
    return [name for name, (module, _) in BACKENDS.items() if importlib.util.find_spec(module) is not None]


def _check_backend(backend: str) -> str:
    name = str(backend).lower().replace("-", "").replace("_", "")
    name = {"opentsne": "opentsne", "multicoretsne": "multicore", "multicore": "multicore", "sklearn": "sklearn",
            "scikitlearn": "sklearn", "auto": "auto"}.get(name, name)
    if name == "auto":
        found = available_backends()
        if not found:
            raise BackendNotInstalled("No t-SNE backend is installed; pip install openTSNE (or scikit-learn).")
        return found[0]
    if name not in BACKENDS:
        raise ValueError(f"Unknown t-SNE backend {backend!r}; choose 'auto' or one of {list(BACKENDS)}.")
    module, package = BACKENDS[name]
    if importlib.util.find_spec(module) is None:
        hint = f"pip install {package}"
        if name == "multicore":
            hint += " (built from source: needs cmake<3.20 and --no-build-isolation, or pip install mnistlab[multicore])"
        raise BackendNotInstalled(f"t-SNE backend {name!r} needs the package {package}, which is not installed: {hint}. "
                                  f"Installed backends: {available_backends() or 'none'}.")
    return name


def _tsne_opentsne(X, n_components, perplexity, seed, n_jobs, verbose, kw):
    import openTSNE

    params = dict(OPENTSNE_TUNED)
    if len(X) > EXACT_NEIGHBORS_MAX_POINTS:
        params["neighbors"] = "annoy"
    if len(X) < FFT_MIN_POINTS:
        params["negative_gradient_method"] = "bh"
    if n_components > 2:  # FFT interpolation is only practical up to 2-D
        params["negative_gradient_method"] = "bh"
    params.update(kw)
    model = openTSNE.TSNE(n_components=n_components, perplexity=perplexity, random_state=seed, n_jobs=n_jobs,
                          verbose=verbose, **params)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*perplexity.*")
        return np.asarray(model.fit(np.ascontiguousarray(X, dtype=np.float64)))


def _tsne_multicore(X, n_components, perplexity, seed, n_jobs, verbose, kw):
    from MulticoreTSNE import MulticoreTSNE

    model = MulticoreTSNE(n_components=n_components, perplexity=perplexity, random_state=seed, n_jobs=n_jobs,
                          verbose=int(verbose), **kw)
    return np.asarray(model.fit_transform(np.asarray(X, dtype=np.float64)))


def _tsne_sklearn(X, n_components, perplexity, seed, n_jobs, verbose, kw):
    from sklearn.manifold import TSNE

    from threadpoolctl import threadpool_limits

    params = {"init": "pca", "learning_rate": "auto"}
    params.update(kw)
    model = TSNE(n_components=n_components, perplexity=perplexity, random_state=seed, n_jobs=n_jobs,
                 verbose=int(verbose), **params)
    # scikit-learn's n_jobs only reaches the neighbour search; its gradient uses every OpenMP thread,
    # which on a busy machine made 300 points take 45 s instead of 3.5 s. Cap the threads at n_jobs.
    with threadpool_limits(limits=n_jobs, user_api="openmp"):
        return np.asarray(model.fit_transform(np.asarray(X, dtype=np.float32)))


_RUNNERS = {"opentsne": _tsne_opentsne, "multicore": _tsne_multicore, "sklearn": _tsne_sklearn}


def tsne(X, backend: str = "auto", n_components: int = 2, perplexity: float = 30.0, seed: int = 0,
         n_jobs: int | None = None, verbose: bool = False, **kw) -> np.ndarray:
    """t-SNE embedding of ``X`` with the chosen backend.

    Parameters
    ----------
    X : array-like (n_samples, n_features)
        Usually PCA-reduced data (50 dimensions), see :func:`pca`.
    backend : {"auto", "opentsne", "multicore", "sklearn"}
        ``"auto"`` takes the fastest installed (:func:`available_backends`, first entry):
        the tuned openTSNE when present.
    n_components : int
        Dimensions of the embedding (2 or 3; ``"multicore"`` and ``"sklearn"`` support up to 3).
    perplexity : float
        Lowered (with a warning) to ``(n_samples - 1) / 3`` for tiny inputs, which every
        backend needs.
    seed : int
        Random state of the backend (initialisation, approximate neighbours).
    n_jobs : int, optional
        Threads. Default: all cores (``os.cpu_count()``) from :data:`THREADS_MIN_POINTS` points
        on, one thread below (on small inputs threads cost more than they save, badly so on a
        busy machine).
    verbose : bool
        Let the backend print its own progress (openTSNE prints each phase with timings).
    **kw
        Passed to the backend's constructor, overriding our defaults (for ``"opentsne"``:
        :data:`OPENTSNE_TUNED`; e.g. ``n_iter=750`` or ``neighbors="annoy"``).

    Returns
    -------
    numpy.ndarray (n_samples, n_components)

    Raises
    ------
    ValueError
        Unknown backend, or fewer than 4 points.
    BackendNotInstalled
        The named backend is not installed; the message gives the ``pip install`` fix.
    """
    name = _check_backend(backend)
    X = _as_2d(X)
    n = len(X)
    if n < 4:
        raise ValueError(f"t-SNE needs at least 4 points; got {n}.")
    if n_components < 1:
        raise ValueError(f"n_components must be >= 1, got {n_components}.")
    if name != "opentsne" and n_components > 3:
        raise ValueError(f"backend {name!r} (Barnes-Hut) supports n_components <= 3; got {n_components}.")
    max_perp = (n - 1) / 3.0
    if perplexity > max_perp:
        warnings.warn(f"perplexity={perplexity} is too large for {n} points; using {max_perp:.1f}.", stacklevel=2)
        perplexity = max_perp
    if not n_jobs:
        n_jobs = (os.cpu_count() or 1) if n >= THREADS_MIN_POINTS else 1
    n_jobs = int(n_jobs)
    return _RUNNERS[name](X, int(n_components), float(perplexity), int(seed), n_jobs, verbose, kw)


# --------------------------------------------------------------------------------------------
# Quality of an embedding
# --------------------------------------------------------------------------------------------

def knn_accuracy(Y, labels, k: int = 10, cv: int = 5, seed: int = 0) -> float:
    """Cross-validated k-nearest-neighbour classification accuracy in the embedding ``Y``.

    Parameters
    ----------
    Y : array-like (n_samples, n_dims)
    labels : array-like (n_samples,)
    k : int
        Neighbours of the classifier (10 is the usual t-SNE benchmark).
    cv : int
        Stratified folds (shuffled with ``seed``); fewer when a class has fewer members.

    Returns
    -------
    float
        Mean accuracy over the folds, in [0, 1].
    """
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.neighbors import KNeighborsClassifier

    Y = _as_2d(Y, "Y")
    y = _labels(labels, len(Y))
    smallest = np.unique(y, return_counts=True)[1].min()
    folds = int(min(cv, smallest))
    if folds < 2:
        raise ValueError("knn_accuracy needs at least 2 examples of every class for cross-validation.")
    if k >= len(Y) * (folds - 1) / folds:
        raise ValueError(f"k={k} is too large for {len(Y)} points.")
    splitter = StratifiedKFold(folds, shuffle=True, random_state=seed)
    with _threads(len(Y)):
        return float(cross_val_score(KNeighborsClassifier(n_neighbors=k), Y, y, cv=splitter).mean())


def _threads(n: int):
    """One BLAS/OpenMP thread for small inputs (threads cost more than they save there, and on a
    busy machine OpenMP's spinning threads made a 500-point k-NN score take seconds)."""
    from contextlib import nullcontext

    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1) if n < THREADS_MIN_POINTS else nullcontext()


def _sample(n: int, sample: int | None, seed: int) -> np.ndarray:
    if sample is None or sample >= n:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, int(sample), replace=False))


def trustworthiness(X, Y, n_neighbors: int = 10, sample: int | None = 2000, seed: int = 0) -> float:
    """How well the embedding ``Y`` keeps the neighbourhoods of ``X`` (scikit-learn's trustworthiness).

    Parameters
    ----------
    X : array-like (n_samples, n_features)
        The original (or PCA-reduced) data.
    Y : array-like (n_samples, n_dims)
        Its embedding.
    n_neighbors : int
    sample : int or None
        Evaluate on this many random points (the metric is quadratic in memory); ``None``: all.
    seed : int

    Returns
    -------
    float
        In [0, 1]; 1 means no false neighbours were introduced.
    """
    from sklearn.manifold import trustworthiness as _trust

    X, Y = _as_2d(X), _as_2d(Y, "Y")
    if len(X) != len(Y):
        raise ValueError(f"X has {len(X)} rows but Y has {len(Y)}.")
    idx = _sample(len(X), sample, seed)
    if n_neighbors >= len(idx) / 2:
        raise ValueError(f"n_neighbors={n_neighbors} must be below half the evaluated points ({len(idx)}).")
    with _threads(len(idx)):
        return float(_trust(X[idx], Y[idx], n_neighbors=n_neighbors))


def class_separation(X, labels, k: int = 10, sample: int | None = 5000, seed: int = 0) -> dict:
    """How well the classes separate in a representation: silhouette and k-NN accuracy.

    Parameters
    ----------
    X : array-like (n_samples, n_dims)
        Any representation (pixels, network features, a 2-D embedding).
    labels : array-like (n_samples,)
    k : int
        Neighbours for :func:`knn_accuracy`.
    sample : int or None
        Silhouette is computed on this many random points (it is quadratic).

    Returns
    -------
    dict
        ``{"silhouette": float in [-1, 1], "knn_acc": float in [0, 1]}``.
    """
    from sklearn.metrics import silhouette_score

    X = _as_2d(X)
    y = _labels(labels, len(X))
    if len(np.unique(y)) < 2:
        raise ValueError("class_separation needs at least two classes.")
    idx = _sample(len(X), sample, seed)
    with _threads(len(idx)):
        sil = float(silhouette_score(X[idx], y[idx]))
    return {"silhouette": sil, "knn_acc": knn_accuracy(X, y, k=k, seed=seed)}


def compare_backends(X, labels, backends: Iterable[str] | None = None, n_components: int = 2,
                     perplexity: float = 30.0, seed: int = 0, n_jobs: int | None = None, k: int = 10,
                     trust_sample: int | None = 1000, progress: bool = True) -> pd.DataFrame:
    """Run several t-SNE backends on the same points and measure time and quality.

    Parameters
    ----------
    X : array-like (n_samples, n_features)
    labels : array-like (n_samples,)
    backends : iterable of str, optional
        Default: every installed backend (:func:`available_backends`).
    n_components, perplexity, seed, n_jobs
        As for :func:`tsne`.
    k : int
        Neighbours for the k-NN accuracy and the trustworthiness.
    trust_sample : int or None
        Points on which the trustworthiness is computed.
    progress : bool
        tqdm bar over the backends.

    Returns
    -------
    pandas.DataFrame
        One row per backend: ``backend``, ``seconds`` (wall clock of :func:`tsne`),
        ``knn_acc`` (:func:`knn_accuracy` in the embedding), ``trustworthiness``.
        ``df.attrs["embeddings"]`` maps each backend to its embedding.
    """
    from tqdm.auto import tqdm

    X = _as_2d(X)
    y = _labels(labels, len(X))
    names = available_backends() if backends is None else [_check_backend(b) for b in backends]
    rows, embeddings = [], {}
    for name in tqdm(names, desc="t-SNE backends", disable=not progress):
        t0 = time.perf_counter()
        Y = tsne(X, backend=name, n_components=n_components, perplexity=perplexity, seed=seed, n_jobs=n_jobs)
        seconds = time.perf_counter() - t0
        embeddings[name] = Y
        rows.append({"backend": name, "seconds": seconds, "knn_acc": knn_accuracy(Y, y, k=k, seed=seed),
                     "trustworthiness": trustworthiness(X, Y, n_neighbors=k, sample=trust_sample, seed=seed)})
    df = pd.DataFrame(rows, columns=["backend", "seconds", "knn_acc", "trustworthiness"])
    df.attrs["embeddings"] = embeddings
    df.attrs["n_points"] = len(X)
    return df


# --------------------------------------------------------------------------------------------
# Network features
# --------------------------------------------------------------------------------------------

@torch.no_grad()
def features(model, data, batch_size: int = 1000, device=None, normalize=None) -> np.ndarray:
    """Penultimate features (``model.features``) of every image, as a float32 array.

    Parameters
    ----------
    model : mnistlab.Classifier
        Trained or not; anything with a ``features(x)`` method taking normalised batches.
    data : ImageSet, (images, labels) or uint8 tensor (N, 28, 28)
    batch_size : int
    device : str, optional
        Default: where the model's parameters are.
    normalize : optional
        Input normalisation; default the one the model was trained with (``model.normalization``),
        else the dataset's standard constants - the same rule as :func:`mnistlab.predict`.

    Returns
    -------
    numpy.ndarray (N, D)
        Flattened features, in the order of ``data``.
    """
    from .train import _eval_loader

    if not hasattr(model, "features"):
        raise TypeError(f"{type(model).__name__} has no features() method; use a mnistlab Classifier.")
    loader, _ = _eval_loader(model, data, batch_size, device, normalize)
    was_training = model.training
    model.eval()
    try:
        out = [model.features(x).float().flatten(1).cpu() for x, _ in loader]
    finally:
        model.train(was_training)
    return torch.cat(out).numpy()


# --------------------------------------------------------------------------------------------
# Plots (arrays and DataFrames in, matplotlib figures out)
# --------------------------------------------------------------------------------------------

def _class_names(labels: np.ndarray, classes) -> list[str]:
    n = int(labels.max()) + 1 if len(labels) else 0
    if classes is None:
        return [str(i) for i in range(n)]
    classes = list(classes)
    if len(classes) < n:
        raise ValueError(f"labels go up to {n - 1} but only {len(classes)} class names were given.")
    return [str(c) for c in classes]


def _colors(n: int):
    cmap = plt.get_cmap("tab10" if n <= 10 else "tab20")
    return [cmap(i % cmap.N) for i in range(n)]


def _point_size(n: int) -> float:
    return float(np.clip(4000.0 / max(n, 1), 0.3, 12.0))


def plot_scatter(Y, labels, classes=None, ax=None, title: str | None = None, s: float | None = None,
                 alpha: float = 0.7, legend: bool = True):
    """2-D scatter of ``Y`` coloured by class, with a legend of class names.

    Parameters
    ----------
    Y : array (n, >=2)
        Only the first two columns are drawn.
    labels : array (n,) of int
    classes : sequence of str, optional
        Class names for the legend (e.g. ``ImageSet.classes``).
    ax : matplotlib Axes, optional
        Draw into it; by default a new figure.
    title : str, optional
    s, alpha : marker size (default scales with the number of points) and opacity.
    legend : bool

    Returns
    -------
    matplotlib.figure.Figure
    """
    Y = _as_2d(Y, "Y")
    y = _labels(labels, len(Y)).astype(int)
    if Y.shape[1] < 2:
        raise ValueError("plot_scatter needs at least two columns in Y.")
    names = _class_names(y, classes)
    fig = ax.figure if ax is not None else plt.figure(figsize=(6.5, 5.5))
    ax = ax if ax is not None else fig.add_subplot(111)
    s = _point_size(len(Y)) if s is None else s
    order = np.random.default_rng(0).permutation(len(Y))  # no class painted last on top of all others
    colors = np.array(_colors(len(names)))
    ax.scatter(Y[order, 0], Y[order, 1], c=colors[y[order]], s=s, alpha=alpha, linewidths=0, rasterized=True)
    if legend:
        handles = [plt.Line2D([], [], marker="o", ls="", color=colors[i], label=names[i]) for i in np.unique(y)]
        ax.legend(handles=handles, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False, fontsize=8)
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title)
    return fig


def plot_scatter_3d(Y, labels, classes=None, title: str | None = None, s: float | None = None,
                    elev: float = 20, azim: float = -60):
    """3-D scatter of the first three columns of ``Y`` coloured by class, with a legend.

    Returns
    -------
    matplotlib.figure.Figure
    """
    Y = _as_2d(Y, "Y")
    y = _labels(labels, len(Y)).astype(int)
    if Y.shape[1] < 3:
        raise ValueError("plot_scatter_3d needs at least three columns in Y.")
    names = _class_names(y, classes)
    colors = np.array(_colors(len(names)))
    fig = plt.figure(figsize=(7, 6))
    ax = fig.add_subplot(111, projection="3d")
    order = np.random.default_rng(0).permutation(len(Y))
    s = _point_size(len(Y)) if s is None else s
    ax.scatter(Y[order, 0], Y[order, 1], Y[order, 2], c=colors[y[order]], s=s, alpha=0.6, linewidths=0)
    ax.view_init(elev=elev, azim=azim)
    ax.set(xlabel="PC 1", ylabel="PC 2", zlabel="PC 3")
    handles = [plt.Line2D([], [], marker="o", ls="", color=colors[i], label=names[i]) for i in np.unique(y)]
    ax.legend(handles=handles, loc="center left", bbox_to_anchor=(1.05, 0.5), frameon=False, fontsize=8)
    if title:
        ax.set_title(title)
    return fig


def plot_explained_variance(model, thresholds: Sequence[float] = (0.9, 0.95, 0.99), title: str | None = None):
    """Cumulative explained variance against the number of components, marking ``thresholds``.

    Parameters
    ----------
    model : fitted sklearn PCA or array of explained-variance ratios
    thresholds : fractions to mark (each with its number of components)

    Returns
    -------
    matplotlib.figure.Figure
    """
    ratios = np.asarray(getattr(model, "explained_variance_ratio_", model), dtype=np.float64)
    cumulative = np.cumsum(ratios)
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(np.arange(1, len(cumulative) + 1), cumulative, color="k", lw=1.5)
    reach = {t: k for t, k in components_for_variance(ratios, [t for t in thresholds if t <= cumulative[-1] + 1e-12]).items()}
    for (t, k), c in zip(reach.items(), _colors(len(reach))):
        ax.axhline(t, color=c, ls=":", lw=1)
        ax.axvline(k, color=c, ls="--", lw=1, label=f"{t:.0%}: {k} components")
        ax.plot([k], [cumulative[k - 1]], "o", color=c)
    ax.set(xlabel="number of principal components", ylabel="cumulative explained variance",
           title=title or "PCA: cumulative explained variance", ylim=(0, 1.01))
    ax.set_xscale("log")
    ax.grid(alpha=0.3, which="both")
    ax.legend(loc="lower right")
    return fig


def plot_reconstructions(originals, reconstructions: dict, title: str | None = None, size: float = 1.2):
    """Grid of images: one row per example, the original then its reconstruction for each ``k``.

    Parameters
    ----------
    originals : array (n, 784) or (n, 28, 28)
    reconstructions : dict ``{k: array (n, 784)}`` from :func:`pca_reconstruct`

    Returns
    -------
    matplotlib.figure.Figure
    """
    orig = _as_2d(originals)
    side = int(round(math.sqrt(orig.shape[1])))
    cols = [("original", orig)] + [(f"k = {k}", _as_2d(r)) for k, r in reconstructions.items()]
    for name, arr in cols:
        if arr.shape != orig.shape:
            raise ValueError(f"reconstruction {name} has shape {arr.shape}, expected {orig.shape}.")
    n = len(orig)
    fig, axes = plt.subplots(n, len(cols), figsize=(len(cols) * size, n * size), squeeze=False)
    for j, (name, arr) in enumerate(cols):
        for i in range(n):
            ax = axes[i, j]
            ax.imshow(arr[i].reshape(side, side), cmap="gray", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(name, fontsize=9)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_class_highlights(Y, labels, classes=None, ncols: int = 5, size: float = 2.6, title: str | None = None):
    """One panel per class: that class in colour over all other points in grey.

    Returns
    -------
    matplotlib.figure.Figure
        A grid of ``ceil(n_classes / ncols)`` x ``ncols`` panels (2 x 5 for ten classes).
    """
    Y = _as_2d(Y, "Y")
    y = _labels(labels, len(Y)).astype(int)
    names = _class_names(y, classes)
    present = np.unique(y)
    nrows = max(1, math.ceil(len(present) / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(ncols * size, nrows * size), squeeze=False)
    colors = _colors(len(names))
    s = _point_size(len(Y))
    for ax in axes.flat:
        ax.axis("off")
    for ax, c in zip(axes.flat, present):
        ax.scatter(Y[:, 0], Y[:, 1], c="0.85", s=s, linewidths=0, rasterized=True)
        m = y == c
        ax.scatter(Y[m, 0], Y[m, 1], color=colors[c], s=s * 1.5, linewidths=0, rasterized=True)
        ax.set_title(f"{names[c]} (n={int(m.sum())})", fontsize=9)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_axis_distributions(Y, labels, classes=None, axis_names: Sequence[str] | None = None,
                            title: str | None = None):
    """Distribution of each embedding axis per class (violins), one panel per axis.

    Returns
    -------
    matplotlib.figure.Figure
    """
    Y = _as_2d(Y, "Y")
    y = _labels(labels, len(Y)).astype(int)
    names = _class_names(y, classes)
    present = np.unique(y)
    dims = Y.shape[1]
    axis_names = list(axis_names) if axis_names is not None else [f"t-SNE {i + 1}" for i in range(dims)]
    fig, axes = plt.subplots(dims, 1, figsize=(max(7, 0.7 * len(present)), 2.8 * dims), squeeze=False)
    colors = _colors(len(names))
    for d, ax in enumerate(axes[:, 0]):
        parts = ax.violinplot([Y[y == c, d] for c in present], positions=np.arange(len(present)),
                              showmedians=True, widths=0.85)
        for body, c in zip(parts["bodies"], present):
            body.set_facecolor(colors[c])
            body.set_alpha(0.7)
        ax.set_xticks(np.arange(len(present)), [names[c] for c in present], fontsize=8,
                      rotation=30 if max(len(names[c]) for c in present) > 3 else 0)
        ax.set_ylabel(axis_names[d])
        ax.grid(alpha=0.3, axis="y")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_backends(df: pd.DataFrame, title: str | None = None):
    """Bar charts of a :func:`compare_backends` table: seconds, k-NN accuracy, trustworthiness.

    Returns
    -------
    matplotlib.figure.Figure
    """
    missing = {"backend", "seconds", "knn_acc", "trustworthiness"} - set(df.columns)
    if missing:
        raise ValueError(f"plot_backends needs the columns of compare_backends; missing {sorted(missing)}.")
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.6))
    colors = _colors(len(df))
    for ax, col, label in zip(axes, ("seconds", "knn_acc", "trustworthiness"),
                              ("wall-clock seconds", "10-NN accuracy (2-D)", "trustworthiness")):
        bars = ax.bar(df["backend"].astype(str), df[col], color=colors)
        ax.bar_label(bars, fmt="%.1f" if col == "seconds" else "%.3f", fontsize=8)
        ax.set_title(label)
        if col != "seconds":
            lo = float(df[col].min())
            ax.set_ylim(max(0.0, lo - 0.1), 1.0)
        ax.grid(alpha=0.3, axis="y")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_representations(embeddings: dict, labels, scores: dict | None = None, classes=None, size: float = 4.0,
                         title: str | None = None):
    """Side-by-side 2-D embeddings of several representations of the same points.

    Parameters
    ----------
    embeddings : dict ``{name: array (n, 2)}``
    labels : array (n,)
    scores : dict ``{name: {"silhouette": ..., "knn_acc": ...}}``, optional
        Shown under each panel's title (e.g. from :func:`class_separation`).
    classes : class names for the legend (on the last panel)

    Returns
    -------
    matplotlib.figure.Figure
    """
    if not embeddings:
        raise ValueError("plot_representations needs at least one embedding.")
    fig, axes = plt.subplots(1, len(embeddings), figsize=(size * len(embeddings) + 1.2, size), squeeze=False)
    for j, (ax, (name, Y)) in enumerate(zip(axes[0], embeddings.items())):
        label = name
        if scores and name in scores:
            sc = scores[name]
            parts = [f"{key.replace('_', ' ')} {sc[key]:.3f}" for key in ("silhouette", "knn_acc") if key in sc]
            label += "\n" + ", ".join(parts)
        plot_scatter(Y, labels, classes=classes, ax=ax, title=label, legend=j == len(embeddings) - 1)
        ax.title.set_fontsize(10)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig
