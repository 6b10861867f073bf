"""Dimensionality reduction study (notebook 02): PCA, t-SNE backends, and what an embedding separates.

PCA comes from scikit-learn. t-SNE runs on one of three backends behind one function,
:func:`tsne`:

* ``"opentsne"`` - openTSNE with settings tuned for speed on a CPU (FFT-accelerated
  gradients on a coarser grid, exact neighbours, a short exaggeration phase with the
  ``n / 12`` learning rate, 400 steps, PCA initialisation; see :data:`OPENTSNE_TUNED`);
* ``"multicore"`` - MulticoreTSNE (Barnes-Hut, exact neighbours), the reference;
* ``"sklearn"`` - :class:`sklearn.manifold.TSNE` (Barnes-Hut).

``backend="auto"`` takes the fastest one installed, in that order. :func:`compare_backends` and
:func:`tsne_scaling` measure their time and quality on the same points (``benchmarks/tsne_speed.py``
runs the comparison on all 70,000 digits).

Quality is measured with maintained tools, never hand-rolled: :func:`knn_accuracy` and
:func:`knn_report` (cross-validated k-NN classification in the embedding, per class and per pair
of classes), :func:`trustworthiness` (scikit-learn's, on a sample), :func:`class_separation`
(silhouette and k-NN accuracy) and :func:`pair_distances` (same-class against different-class
distances). :func:`source_claims` turns the numbers into verdicts on the sources' claims. This
module computes only; :mod:`mnistlab.viz.embed` draws the results.
"""
from __future__ import annotations

import importlib.util
import math
import os
import time
import warnings
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np
import pandas as pd
import torch

__all__ = [
    "BACKENDS", "OPENTSNE_TUNED", "FFT_MIN_POINTS", "EXACT_NEIGHBORS_MAX_POINTS", "THREADS_MIN_POINTS", "BackendNotInstalled",
    "pca", "components_for_variance", "pca_reconstruct",
    "available_backends", "tsne",
    "knn_accuracy", "trustworthiness", "class_separation", "BackendComparison", "compare_backends",
    "tsne_scaling", "speedups", "time_exponents", "KNNReport", "knn_report", "class_centroids", "pair_distances",
    "same_class_closer", "CLUSTER_MIN", "SEPARATED_MIN", "extrapolated_seconds", "source_claims", "features",
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


def pca_reconstruct(X, ks, model=None, seed: int = 0) -> dict:
    """Reconstruct ``X`` from its first ``k`` principal components, for each ``k`` in ``ks``.

    Parameters
    ----------
    X : array-like (n_samples, n_features) or images (n_samples, 28, 28)
    ks : int or sequence of int
        Number(s) of components, e.g. ``(2, 10, 50, 150)``.
    model : fitted sklearn PCA, optional
        With at least ``max(ks)`` components (e.g. fitted on the training set). By default a
        PCA with ``max(ks)`` components is fitted on ``X`` itself.
    seed : int

    Returns
    -------
    dict
        ``{k: float32 array}`` of reconstructions (same shape as the 2-D ``X``), one per ``k``,
        in the order given (a single ``k`` gives a one-entry dict).
    """
    X2 = _as_2d(X)
    ks = [int(ks)] if np.isscalar(ks) else [int(v) for v in ks]
    if not ks or min(ks) < 1:
        raise ValueError(f"ks must be positive integers; got {ks!r}.")
    if model is None:
        _, model = pca(X2, max(ks), seed=seed)
    if max(ks) > model.n_components_:
        raise ValueError(f"k={max(ks)} exceeds the {model.n_components_} components of the fitted PCA; "
                         "fit it with more components.")
    if X2.shape[1] != model.components_.shape[1]:
        raise ValueError(f"X has {X2.shape[1]} features but the PCA was fitted on {model.components_.shape[1]}.")
    scores = (X2 - model.mean_) @ model.components_.T
    return {k: (scores[:, :k] @ model.components_[:k] + model.mean_).astype(np.float32) for k in ks}


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

    Notes
    -----
    The package's one cross-validated k-NN accuracy: :func:`knn_report` and
    :func:`mnistlab.studies.dynamics.representation_over_training` use the same folds and classifier.
    """
    Y = _as_2d(Y, "Y")
    y = _labels(labels, len(Y))
    _, scores = _knn_cross_validation(Y, y, k, cv, seed, "knn_accuracy")
    return float(np.mean(scores))


def _knn_cross_validation(Y: np.ndarray, y: np.ndarray, k: int, cv: int, seed: int, caller: str):
    """Out-of-fold k-NN predictions and per-fold accuracies: stratified, shuffled ``cv`` folds (fewer when a class is small).

    Every point is predicted by the ``k`` nearest neighbours among the points of the other folds.
    """
    from sklearn.model_selection import StratifiedKFold
    from sklearn.neighbors import KNeighborsClassifier

    folds = int(min(cv, np.unique(y, return_counts=True)[1].min()))
    if folds < 2:
        raise ValueError(f"{caller} needs at least 2 examples of every class for cross-validation.")
    if k >= len(Y) * (folds - 1) / folds:
        raise ValueError(f"k={k} is too large for {len(Y)} points.")
    pred = np.empty_like(y)
    scores = []
    with _threads(len(Y)):
        for train, test in StratifiedKFold(folds, shuffle=True, random_state=seed).split(Y, y):
            pred[test] = KNeighborsClassifier(n_neighbors=k).fit(Y[train], y[train]).predict(Y[test])
            scores.append(float((pred[test] == y[test]).mean()))
    return pred, scores


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


@dataclass
class BackendComparison:
    """What :func:`compare_backends` measured: the table and each backend's embedding.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per backend: ``backend``, ``n`` (points), ``seconds`` (wall clock of :func:`tsne`),
        ``knn_acc`` (:func:`knn_accuracy` in the embedding), ``trustworthiness``.
    embeddings : dict
        ``{backend: (n, n_components) array}``.
    """

    table: pd.DataFrame
    embeddings: dict


def compare_backends(X, labels, backends: Iterable[str] | None = None, n_components: int = 2,
                     perplexity: float = 30.0, seed: int = 0, n_jobs: int | None = None, k: int = 10,
                     trust_sample: int | None = 1000, progress: bool = True) -> BackendComparison:
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
    BackendComparison
        ``.table`` (one row per backend) and ``.embeddings``.
    """
    from tqdm.auto import tqdm

    X = _as_2d(X)
    y = _labels(labels, len(X))
    names = available_backends() if backends is None else [_check_backend(b) for b in backends]
    rows, embeddings = [], {}
    for name in tqdm(names, desc=f"t-SNE backends on {len(X):,} points", disable=not progress):
        t0 = time.perf_counter()
        Y = tsne(X, backend=name, n_components=n_components, perplexity=perplexity, seed=seed, n_jobs=n_jobs)
        seconds = time.perf_counter() - t0
        embeddings[name] = Y
        rows.append({"backend": name, "n": len(X), "seconds": seconds, "knn_acc": knn_accuracy(Y, y, k=k, seed=seed),
                     "trustworthiness": trustworthiness(X, Y, n_neighbors=k, sample=trust_sample, seed=seed)})
    table = pd.DataFrame(rows, columns=["backend", "n", "seconds", "knn_acc", "trustworthiness"])
    return BackendComparison(table=table, embeddings=embeddings)


def tsne_scaling(X, labels, sizes: Sequence[int], backends: Sequence[str] = ("opentsne", "multicore"),
                 seed: int = 0, n_jobs: int | None = None, k: int = 10, trust_sample: int | None = 1000,
                 progress: bool = True) -> pd.DataFrame:
    """Time t-SNE backends on growing random subsets of the same points.

    The subsets are nested (the first ``n`` points of one seeded permutation), so a larger size
    contains every smaller one.

    Parameters
    ----------
    X : array-like (n_samples, n_features)
    labels : array-like (n_samples,)
    sizes : sequence of int
        Numbers of points, each at most ``len(X)``.
    backends : sequence of str
        Backends to time (the installed ones of these; at least one must be installed).
    seed, n_jobs, k, trust_sample
        As for :func:`compare_backends`.
    progress : bool
        tqdm bar over the sizes.

    Returns
    -------
    pandas.DataFrame
        The rows of :func:`compare_backends` for every size, sorted by ``n`` then backend order.
    """
    from tqdm.auto import tqdm

    X = _as_2d(X)
    y = _labels(labels, len(X))
    sizes = sorted({int(n) for n in sizes})
    if not sizes or sizes[0] < 4 or sizes[-1] > len(X):
        raise ValueError(f"sizes must lie between 4 and the {len(X)} points given; got {sizes}.")
    installed = [b for b in (_check_backend_name(b) for b in backends) if b in available_backends()]
    if not installed:
        raise BackendNotInstalled(f"none of the backends {list(backends)} is installed; installed: "
                                  f"{available_backends()}.")
    order = np.random.default_rng(seed).permutation(len(X))
    tables = []
    for n in tqdm(sizes, desc="t-SNE time against n", disable=not progress):
        idx = np.sort(order[:n])
        tables.append(compare_backends(X[idx], y[idx], backends=installed, seed=seed, n_jobs=n_jobs, k=k,
                                       trust_sample=trust_sample, progress=False).table)
    return pd.concat(tables, ignore_index=True)


def _check_backend_name(backend: str) -> str:
    """Canonical backend name without requiring it to be installed."""
    try:
        return _check_backend(backend)
    except BackendNotInstalled:
        name = str(backend).lower().replace("-", "").replace("_", "")
        return {"multicoretsne": "multicore", "scikitlearn": "sklearn"}.get(name, name)


def speedups(scaling: pd.DataFrame, fast: str = "opentsne", reference: str = "multicore") -> pd.DataFrame:
    """Speed-up of one backend over another at every size of a :func:`tsne_scaling` table.

    Returns
    -------
    pandas.DataFrame
        Indexed by ``n``: ``<fast>_seconds``, ``<reference>_seconds``, ``speedup`` (reference
        seconds / fast seconds) and ``knn_acc_diff`` (fast minus reference 10-NN accuracy). Empty
        when either backend is missing.
    """
    cols = [f"{fast}_seconds", f"{reference}_seconds", "speedup", "knn_acc_diff"]
    if scaling.empty:
        return pd.DataFrame(columns=cols, index=pd.Index([], name="n"))
    wide = scaling.pivot_table(index="n", columns="backend", values=["seconds", "knn_acc"])
    if fast not in wide["seconds"].columns or reference not in wide["seconds"].columns:
        return pd.DataFrame(columns=cols, index=pd.Index([], name="n"))
    out = pd.DataFrame({cols[0]: wide["seconds"][fast], cols[1]: wide["seconds"][reference]})
    out["speedup"] = out[cols[1]] / out[cols[0]]
    out["knn_acc_diff"] = wide["knn_acc"][fast] - wide["knn_acc"][reference]
    return out


def time_exponents(scaling: pd.DataFrame) -> pd.Series:
    """How each backend's time grows with n: the slope ``a`` of ``seconds ~ n**a`` (least squares on logs).

    Returns
    -------
    pandas.Series
        ``{backend: a}``; NaN for a backend timed at fewer than two sizes. ``a`` near 1 is linear
        (openTSNE's FFT gradient), larger ``a`` grows faster (Barnes-Hut is ``n log n`` per step).
    """
    out = {}
    for name, g in scaling.groupby("backend", sort=False):
        g = g[g["seconds"] > 0]
        out[name] = float(np.polyfit(np.log(g["n"]), np.log(g["seconds"]), 1)[0]) if g["n"].nunique() > 1 else np.nan
    return pd.Series(out, name="exponent", dtype=float)


# --------------------------------------------------------------------------------------------
# Which classes an embedding separates
# --------------------------------------------------------------------------------------------

@dataclass
class KNNReport:
    """Cross-validated k-NN predictions in an embedding, read three ways (computed once).

    Attributes
    ----------
    confusion : pandas.DataFrame
        Counts: rows true class, columns predicted class (class names).
    per_class : pandas.DataFrame
        Indexed by label: ``class``, ``n``, ``accuracy`` (share of the class's points whose k
        neighbours vote for it), ``rank`` (1 = hardest).
    pairs : pandas.DataFrame
        Every pair of classes, most confused first: ``a``, ``b`` (class names), ``confusions``
        (a predicted as b plus b as a) and ``rate`` (confusions / points of a and b).
    accuracy : float
        Overall k-NN accuracy (same as :func:`knn_accuracy` up to fold averaging).
    k : int
    """

    confusion: pd.DataFrame
    per_class: pd.DataFrame
    pairs: pd.DataFrame
    accuracy: float
    k: int

    def hardest(self, n: int = 2) -> list[str]:
        """Names of the ``n`` classes with the lowest k-NN accuracy, hardest first."""
        return self.per_class.sort_values("accuracy", kind="stable")["class"].head(n).tolist()

    def top_pairs(self, n: int = 5) -> list[tuple[str, str]]:
        """The ``n`` most confused class pairs as ``(a, b)`` name tuples."""
        return list(zip(self.pairs["a"].head(n), self.pairs["b"].head(n)))


def knn_report(Y, labels, classes: Sequence[str] | None = None, k: int = 10, cv: int = 5,
               seed: int = 0) -> KNNReport:
    """Per-class k-NN accuracy and the most overlapping class pairs in an embedding.

    Every point is classified by the vote of its ``k`` nearest neighbours among the points of
    the other folds (stratified ``cv``-fold cross-validation, scikit-learn's
    ``cross_val_predict``), so no point votes for itself.

    Parameters
    ----------
    Y : array-like (n_samples, n_dims)
    labels : array-like (n_samples,) of int in ``0..C-1``
    classes : sequence of str, optional
        Class names indexed by label (default: the label numbers).
    k, cv, seed
        As for :func:`knn_accuracy`.

    Returns
    -------
    KNNReport
    """
    from sklearn.metrics import confusion_matrix

    Y = _as_2d(Y, "Y")
    y = _labels(labels, len(Y)).astype(int)
    n_classes = int(y.max()) + 1
    names = [str(c) for c in (classes if classes is not None else range(n_classes))]
    if len(names) < n_classes:
        raise ValueError(f"labels go up to {n_classes - 1} but only {len(names)} class names were given.")
    pred, _ = _knn_cross_validation(Y, y, k, cv, seed, "knn_report")
    cm = confusion_matrix(y, pred, labels=np.arange(len(names)))
    confusion = pd.DataFrame(cm, index=pd.Index(names, name="true"), columns=pd.Index(names, name="predicted"))
    n = cm.sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        acc = np.diag(cm) / n
    per_class = pd.DataFrame({"class": names, "n": n, "accuracy": acc}, index=pd.RangeIndex(len(names), name="label"))
    per_class["rank"] = per_class["accuracy"].rank(method="first").astype(int)
    rows = []
    for a in range(len(names)):
        for b in range(a + 1, len(names)):
            both = n[a] + n[b]
            if both == 0:
                continue
            conf = int(cm[a, b] + cm[b, a])
            rows.append({"a": names[a], "b": names[b], "confusions": conf, "rate": conf / both})
    pairs = pd.DataFrame(rows, columns=["a", "b", "confusions", "rate"])
    pairs = pairs.sort_values(["rate", "confusions"], ascending=False, kind="stable").reset_index(drop=True)
    return KNNReport(confusion=confusion, per_class=per_class, pairs=pairs, accuracy=float((pred == y).mean()), k=k)


def class_centroids(Y, labels, classes: Sequence[str] | None = None) -> pd.DataFrame:
    """Median position of every class in an embedding (robust to stray points).

    Returns
    -------
    pandas.DataFrame
        Indexed by label: ``class`` and one column per dimension (``dim_1``, ``dim_2``, ...).
    """
    Y = _as_2d(Y, "Y")
    y = _labels(labels, len(Y)).astype(int)
    present = np.unique(y)
    names = [str(c) for c in (classes if classes is not None else range(int(y.max()) + 1))]
    med = np.stack([np.median(Y[y == c], axis=0) for c in present])
    out = pd.DataFrame(med, columns=[f"dim_{i + 1}" for i in range(Y.shape[1])], index=pd.Index(present, name="label"))
    out.insert(0, "class", [names[c] for c in present])
    return out


def pair_distances(X, labels, n_pairs: int = 20_000, seed: int = 0) -> pd.DataFrame:
    """Euclidean distances of random pairs of points, split into same-class and different-class pairs.

    Compares how a representation spreads a class against how far apart classes are: in 784-D
    pixel space both kinds of distance overlap heavily; t-SNE pulls a class together.

    Parameters
    ----------
    X : array-like (n_samples, n_dims)
    labels : array-like (n_samples,)
    n_pairs : int
        Random pairs of distinct points drawn (with a generator seeded by ``seed``).

    Returns
    -------
    pandas.DataFrame
        ``pair`` ("same class" / "different classes"), ``distance`` and ``relative`` (distance
        divided by the median distance of all drawn pairs, so spaces of different scale compare).
    """
    X = _as_2d(X)
    y = _labels(labels, len(X))
    if len(X) < 2:
        raise ValueError("pair_distances needs at least two points.")
    rng = np.random.default_rng(seed)
    i = rng.integers(0, len(X), n_pairs)
    j = (i + rng.integers(1, len(X), n_pairs)) % len(X)  # never the same point
    d = np.linalg.norm(X[i].astype(np.float64) - X[j], axis=1)
    same = y[i] == y[j]
    return pd.DataFrame({"pair": np.where(same, "same class", "different classes"), "distance": d,
                         "relative": d / np.median(d)})


def same_class_closer(distances: pd.DataFrame) -> float:
    """Share of same-class pairs closer than the median different-class pair (from :func:`pair_distances`).

    0.5 means a class is no tighter than the data as a whole; near 1, classes are compact and apart.
    """
    same = distances.loc[distances["pair"] == "same class", "distance"]
    other = distances.loc[distances["pair"] == "different classes", "distance"]
    if same.empty or other.empty:
        raise ValueError("same_class_closer needs pairs of both kinds; draw more pairs.")
    return float((same < other.median()).mean())


# --------------------------------------------------------------------------------------------
# The sources' claims, checked against the numbers
# --------------------------------------------------------------------------------------------

#: A class "forms a cluster of its own" in a map when most of its points' 10 nearest neighbours there
#: are of its class, and "is separated" when at least 90% are (cross-validated 10-NN accuracy).
CLUSTER_MIN, SEPARATED_MIN = 0.5, 0.9


def extrapolated_seconds(scaling: pd.DataFrame, backend: str, n: int) -> tuple[float, bool]:
    """A backend's seconds for ``n`` points from a :func:`tsne_scaling` table.

    Returns ``(seconds, extrapolated)``: the median of the times measured at ``n`` if the table has
    any (several repeats may be stacked), else the least-squares line of ``log seconds`` on ``log n``
    evaluated at ``n`` (NaN with fewer than two sizes).
    """
    g = scaling[(scaling["backend"] == backend) & (scaling["seconds"] > 0)]
    if (g["n"] == n).any():
        return float(g.loc[g["n"] == n, "seconds"].median()), False
    if g["n"].nunique() < 2:
        return math.nan, True
    slope, intercept = np.polyfit(np.log(g["n"]), np.log(g["seconds"]), 1)
    return float(np.exp(intercept + slope * math.log(n))), True


def source_claims(dataset: str, *, pca: KNNReport, tsne: KNNReport, n_points: int, scaling: pd.DataFrame,
                  separation: dict | None = None) -> pd.DataFrame:
    """The sources' claims about PCA and t-SNE of MNIST, each with what this run measured and a computed verdict.

    Rows (see :mod:`mnistlab.studies.claims` for the columns and verdicts), from the Medium
    article (003): PCA's plane shows "10 different clusters/groups" (every class forms a cluster of
    its own: :data:`CLUSTER_MIN`) yet is "not enough to separate the classes" (not every class is
    separated: :data:`SEPARATED_MIN`); in the t-SNE plane "the classes have been split well" (every
    class separated); "the classes 3 and 8 have some tough time" (the two hardest), "others are
    pretty good especially (0,1,6)" (the three easiest); MulticoreTSNE "took around 10–15 mins"
    (its time for ``n_points``, extrapolated from ``scaling`` when not timed there). From the
    PyTorch repository's README (002), when ``separation`` is given: an untrained network's features
    separate the classes "a bit more" than the pixels (higher silhouette), and a trained network's
    "almost completely ... in tight clusters" (the highest silhouette and 10-NN accuracy of at
    least 95%).

    Parameters
    ----------
    dataset : str
        The dataset of the run; the sources describe MNIST, so on another one every verdict is
        "not applicable" (the numbers are still shown).
    pca, tsne : KNNReport
        :func:`knn_report` of the PC1-PC2 plane and of the t-SNE plane.
    n_points : int
        Points in the t-SNE (the time claim is checked only on all of MNIST, at least 60,000).
    scaling : pandas.DataFrame
        :func:`tsne_scaling` with the ``"multicore"`` backend (otherwise the time claim is not
        applicable), repeats stacked or not; ``scaling.attrs["machine"]`` (a benchmark's machine
        entry: ``cpu``, ``cores``), when set, names where it ran.
    separation : dict, optional
        ``{"raw pixels"|"untrained network"|"trained network": class_separation(...)}``.

    Returns
    -------
    pandas.DataFrame
        A :func:`mnistlab.studies.claims.claims_table`.
    """
    from . import claims as C

    mnist = dataset == "mnist"
    rows = []
    pca_acc = pca.per_class.set_index("class")["accuracy"]
    tsne_acc = tsne.per_class.set_index("class")["accuracy"]
    k = len(pca_acc)
    clusters, sep_pca, sep_tsne = (int((pca_acc > CLUSTER_MIN).sum()), int((pca_acc >= SEPARATED_MIN).sum()),
                                   int((tsne_acc >= SEPARATED_MIN).sum()))
    plane = f"10-NN accuracy in the PC1-PC2 plane {pca.accuracy:.1%}, by class {pca_acc.min():.1%} to {pca_acc.max():.1%}"
    rows.append(C.check("medium.pca_clusters", f"{plane}; {clusters} of {k} classes above {CLUSTER_MIN:.0%}",
                        clusters == k, applicable=mnist,
                        rule=f"every class forms a cluster of its own: over {CLUSTER_MIN:.0%} of its points' 10 nearest "
                             "neighbours in the plane are of its class"))
    rows.append(C.check("medium.pca_not_enough", f"{plane}; {sep_pca} of {k} classes at {SEPARATED_MIN:.0%} or more",
                        sep_pca < k, applicable=mnist,
                        rule=f"not every class is separated in the plane (10-NN accuracy of {SEPARATED_MIN:.0%} or more)"))
    rows.append(C.check("medium.tsne_split",
                        f"10-NN accuracy in the t-SNE plane of {n_points:,} points {tsne.accuracy:.1%}, by class "
                        f"{tsne_acc.min():.1%} to {tsne_acc.max():.1%}; {sep_tsne} of {k} classes at {SEPARATED_MIN:.0%} or more",
                        sep_tsne == k, applicable=mnist,
                        rule=f"every class is separated in the t-SNE plane (10-NN accuracy of {SEPARATED_MIN:.0%} or more)"))
    hardest, easiest = tsne.hardest(2), tsne.per_class.sort_values("accuracy", kind="stable")["class"].tail(3).tolist()[::-1]
    rows.append(C.check("medium.hardest", "hardest in the t-SNE plane: " + ", ".join(f"{c} ({tsne_acc[c]:.1%})" for c in hardest),
                        set(hardest) == {"3", "8"}, partly=bool(set(hardest) & {"3", "8"}), applicable=mnist,
                        rule="3 and 8 are the two classes with the lowest 10-NN accuracy in the t-SNE plane (one of them: partly)"))
    rows.append(C.check("medium.easiest", "easiest in the t-SNE plane: " + ", ".join(f"{c} ({tsne_acc[c]:.1%})" for c in easiest),
                        set(easiest) == {"0", "1", "6"}, partly=bool(set(easiest) & {"0", "1", "6"}), applicable=mnist,
                        rule="0, 1 and 6 are the three classes with the highest 10-NN accuracy in the t-SNE plane "
                             "(some of them: partly)"))
    has_multicore = "backend" in scaling.columns and (scaling["backend"] == "multicore").any()
    seconds, extrapolated = extrapolated_seconds(scaling, "multicore", n_points) if has_multicore else (math.nan, True)
    timed = sorted(scaling.loc[scaling["backend"] == "multicore", "n"].unique()) if has_multicore else []
    how = f"extrapolated from {', '.join(f'{n:,}' for n in timed)} points" if extrapolated else "timed"
    machine = scaling.attrs.get("machine") or {}   # a benchmark's machine entry: cpu, cores, ...
    machine = (", ".join(str(machine[k]) for k in ("cpu", "cores") if machine.get(k)) + " cores" if machine.get("cores")
               else f"{os.cpu_count()} CPU cores here")
    if np.isfinite(seconds):
        rows.append(C.value("medium.tsne_minutes", seconds, subject=f"MulticoreTSNE on {n_points:,} points ({how}; "
                            f"{machine})", scale=1 / 60, unit=" min", digits=1,
                            applicable=mnist and n_points >= 60_000,
                            reason=C.NOT_MNIST if not mnist else f"t-SNE of a subset ({n_points:,} points)"))
    else:
        rows.append(C.check("medium.tsne_minutes", "MulticoreTSNE not timed at two sizes", False, applicable=False,
                            reason="MulticoreTSNE not installed or not timed", rule="its time on all of MNIST"))
    if separation:
        sil = {name: float(v["silhouette"]) for name, v in separation.items()}
        knn = {name: float(v["knn_acc"]) for name, v in separation.items()}
        words = "; ".join(f"{name}: silhouette {sil[name]:.3f}, 10-NN {knn[name]:.1%}" for name in sil)
        raw, untrained, trained = (sil.get(n, math.nan) for n in ("raw pixels", "untrained network", "trained network"))
        rows.append(C.check("lenet.tsne_untrained", words, untrained > raw, applicable=mnist,
                            rule="an untrained network's features have a higher silhouette than the raw pixels"))
        rows.append(C.check("lenet.tsne_trained", words,
                            trained > max(raw, untrained) and knn.get("trained network", 0.0) >= 0.95, applicable=mnist,
                            rule="the trained network's features have the highest silhouette and a 10-NN accuracy "
                                 "of 95% or more"))
    return C.claims_table(rows)


from ..training.loop import features  # noqa: E402  (re-exported: penultimate features of a network)
