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
distances). :func:`source_claims` turns the numbers into verdicts on the source's claims. This
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
    "same_class_closer", "HOLDS", "PARTLY", "FAILS", "NOT_APPLICABLE", "source_claims", "features",
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
    wide = scaling.pivot_table(index="n", columns="backend", values=["seconds", "knn_acc"])
    cols = [f"{fast}_seconds", f"{reference}_seconds", "speedup", "knn_acc_diff"]
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
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.neighbors import KNeighborsClassifier

    Y = _as_2d(Y, "Y")
    y = _labels(labels, len(Y)).astype(int)
    n_classes = int(y.max()) + 1
    names = [str(c) for c in (classes if classes is not None else range(n_classes))]
    if len(names) < n_classes:
        raise ValueError(f"labels go up to {n_classes - 1} but only {len(names)} class names were given.")
    folds = int(min(cv, np.unique(y, return_counts=True)[1].min()))
    if folds < 2:
        raise ValueError("knn_report needs at least 2 examples of every class for cross-validation.")
    if k >= len(Y) * (folds - 1) / folds:
        raise ValueError(f"k={k} is too large for {len(Y)} points.")
    splitter = StratifiedKFold(folds, shuffle=True, random_state=seed)
    with _threads(len(Y)):
        pred = cross_val_predict(KNeighborsClassifier(n_neighbors=k), Y, y, cv=splitter)
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
# The source's claims, checked against the numbers
# --------------------------------------------------------------------------------------------

HOLDS, PARTLY, FAILS, NOT_APPLICABLE = "holds", "partly", "does not hold", "not applicable"


def _claim(claim: str, measured: str, verdict: str) -> dict:
    return {"source claim": claim, "measured here": measured, "verdict": verdict}


def source_claims(classes: Sequence[str], *, tsne_knn: float, pca50_knn: float, n_points: int,
                  report: KNNReport, pc1: pd.DataFrame, speed: pd.DataFrame,
                  separation: dict | None = None) -> pd.DataFrame:
    """The claims of the notebook's source, each with what this run measured and a verdict.

    Parameters
    ----------
    classes : sequence of str
        Class names of the dataset (claims about digits do not apply to Fashion-MNIST).
    tsne_knn, pca50_knn : float
        10-NN accuracy in the 2-D t-SNE plane and in the 50-D PCA space, on the same ``n_points``.
    report : KNNReport
        :func:`knn_report` of the t-SNE plane.
    pc1 : pandas.DataFrame
        :func:`class_centroids` of the first principal component (column ``dim_1``).
    speed : pandas.DataFrame
        :func:`speedups` of the tuned openTSNE over MulticoreTSNE (may be empty).
    separation : dict, optional
        ``{"raw pixels"|"untrained network"|"trained network": class_separation(...)}``.

    Returns
    -------
    pandas.DataFrame
        Columns ``source claim``, ``measured here``, ``verdict`` (one of ``"holds"``,
        ``"partly"``, ``"does not hold"``, ``"not applicable"``).
    """
    names = [str(c) for c in classes]
    digits = all(n.isdigit() for n in names)
    rows = []
    gap = tsne_knn - pca50_knn
    rows.append(_claim("10-NN accuracy in the t-SNE plane is nearly as high as in the 50-D PCA space",
                       f"2-D {tsne_knn:.4f} vs 50-D {pca50_knn:.4f} on the same {n_points:,} points ({gap:+.4f})",
                       HOLDS if gap >= -0.01 else FAILS))
    if speed.empty:
        rows.append(_claim("the tuned openTSNE is about 10x faster than MulticoreTSNE",
                           "MulticoreTSNE or openTSNE not installed", NOT_APPLICABLE))
    else:
        ratios = ", ".join(f"{r:.1f}x at {n:,}" for n, r in speed["speedup"].items())
        top = float(speed["speedup"].iloc[-1])
        verdict = HOLDS if top >= 8 else (PARTLY if top > speed["speedup"].iloc[0] and top > 1 else FAILS)
        rows.append(_claim("the tuned openTSNE is about 10x faster than MulticoreTSNE", ratios, verdict))
    hardest = report.hardest(2)
    per = report.per_class.set_index("class")["accuracy"]
    measured = "hardest in 2-D: " + ", ".join(f"{c} ({per[c]:.3f})" for c in hardest)
    if digits and {"3", "8"} <= set(names):
        verdict = HOLDS if set(hardest) == {"3", "8"} else (PARTLY if set(hardest) & {"3", "8"} else FAILS)
        rows.append(_claim("3 and 8 are the hardest classes", measured + f"; 3: {per['3']:.3f}, 8: {per['8']:.3f}",
                           verdict))
    else:
        rows.append(_claim("3 and 8 are the hardest classes", measured, NOT_APPLICABLE))
    order = pc1.sort_values("dim_1")["class"].tolist()
    ends = {order[0], order[-1]}
    measured = f"ends of PC1: {order[0]} (low) and {order[-1]} (high)"
    rows.append(_claim("0 and 1 sit apart at the two ends of the first principal component", measured,
                       (HOLDS if ends == {"0", "1"} else PARTLY if ends & {"0", "1"} else FAILS)
                       if digits else NOT_APPLICABLE))
    claimed = [{"4", "9"}, {"4", "7"}, {"7", "9"}, {"3", "5"}, {"3", "8"}, {"5", "8"}]
    top = [set(p) for p in report.top_pairs(len(claimed))]
    found = sum(p in top for p in claimed)
    measured = "most overlapping pairs (10-NN): " + ", ".join("-".join(p) for p in report.top_pairs(len(claimed)))
    rows.append(_claim("4-9-7 and 3-5-8 are the groups of neighbouring, confusable clusters",
                       measured + f"; {found} of the 6 claimed pairs among them",
                       (HOLDS if found >= 4 else PARTLY if found else FAILS) if digits else NOT_APPLICABLE))
    if separation:
        sil = {k: v["silhouette"] for k, v in separation.items()}
        trained = sil.get("trained network", np.nan)
        others = [v for k, v in sil.items() if k != "trained network"]
        rows.append(_claim("training (not the architecture) separates the classes",
                           ", ".join(f"{k}: silhouette {v:.3f}" for k, v in sil.items()),
                           HOLDS if others and trained > max(others) else FAILS))
    return pd.DataFrame(rows, columns=["source claim", "measured here", "verdict"])


from ..training.loop import features  # noqa: E402  (re-exported: penultimate features of a network)
