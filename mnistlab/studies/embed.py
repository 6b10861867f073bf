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
:func:`class_separation` (silhouette and k-NN accuracy). This module computes only; :mod:`mnistlab.viz.embed` draws the results.
"""
from __future__ import annotations

import importlib.util
import math
import os
import time
import warnings
from typing import Iterable, Sequence

import numpy as np
import pandas as pd
import torch

__all__ = [
    "BACKENDS", "OPENTSNE_TUNED", "FFT_MIN_POINTS", "EXACT_NEIGHBORS_MAX_POINTS", "THREADS_MIN_POINTS", "BackendNotInstalled",
    "pca", "components_for_variance", "pca_reconstruct",
    "available_backends", "tsne",
    "knn_accuracy", "trustworthiness", "class_separation", "compare_backends",
    "features",
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


from ..training.loop import features  # noqa: E402  (re-exported: penultimate features of a network)
