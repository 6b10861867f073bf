"""Data statistics study (notebook 01): class balance, mean images, pixel statistics, typical examples.

Every function takes an :class:`~mnistlab.data.ImageSet` (uint8 images ``(N, 28, 28)``, int64
labels) and works on the in-memory tensors, one vectorised pass per class at most, so the whole
of MNIST's training set is summarised in about a second on a CPU. Pixel statistics are exact:
they come from integer histograms of the 256 grey levels, not from float sums over 47 million
pixels.

Conventions:

* intensities are reported on the scale ``[0, 1]`` (``pixel / 255``) except in
  :func:`pixel_histograms`, whose bins are in raw grey levels ``0..255``;
* standard deviations are population ones (``ddof=0``);
* tables are :class:`pandas.DataFrame` indexed by the integer ``label`` with the class name in
  a ``class`` column (names come from ``data.classes``, so Fashion-MNIST works unchanged).

This module computes only; :mod:`mnistlab.viz.datastats` draws the results.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import torch

from ..data.datasets import ImageSet
from ..data.loader import TensorLoader

__all__ = [
    "class_counts", "class_balance", "class_means", "pixel_std", "pixel_histograms", "mean_intensity",
    "normalization_constants", "distances_to_class_mean", "typical_examples", "sample_batch", "class_spread",
    "MNIST_SIZES", "pixel_shares", "source_claims",
]

_LEVELS = torch.arange(256, dtype=torch.float64) / 255.0  # grey level -> intensity in [0, 1]


# --------------------------------------------------------------------------------------------
# helpers


def _check(data) -> ImageSet:
    if not isinstance(data, ImageSet):
        raise TypeError(f"expected an ImageSet (see mnistlab.load_dataset / as_imageset), got {type(data).__name__}.")
    return data


def _n_classes(data: ImageSet) -> int:
    return len(data.classes)


def _class_frame(data: ImageSet) -> pd.DataFrame:
    classes = list(data.classes)
    return pd.DataFrame({"class": classes}, index=pd.RangeIndex(len(classes), name="label"))


def _per_class(data: ImageSet):
    """Yield ``(label, uint8 images of that class)`` for every class of the dataset (possibly empty)."""
    labels = data.labels.to(data.images.device)
    for c in range(_n_classes(data)):
        yield c, data.images[labels == c]


def _grey_histograms(data: ImageSet) -> torch.Tensor:
    """(C, 256) int64 counts of every grey level among the pixels of each class."""
    return torch.stack([torch.bincount(imgs.flatten().cpu(), minlength=256) for _, imgs in _per_class(data)])


# --------------------------------------------------------------------------------------------
# class balance


def class_counts(train: ImageSet, test: ImageSet | None = None) -> pd.DataFrame:
    """Count the examples of every class in the training (and test) split.

    Parameters
    ----------
    train : ImageSet
        Training split.
    test : ImageSet, optional
        Test split of the same dataset.

    Returns
    -------
    pandas.DataFrame
        One row per class (index ``label``) with columns ``class``, ``train``, ``train_frac``
        and, if ``test`` is given, ``test`` and ``test_frac``. Fractions sum to 1 per split;
        classes absent from a split have count 0.
    """
    out = _class_frame(_check(train))
    splits = {"train": train} if test is None else {"train": train, "test": _check(test)}
    for name, data in splits.items():
        counts = torch.bincount(data.labels.cpu(), minlength=_n_classes(train))[: _n_classes(train)].numpy()
        out[name] = counts.astype(np.int64)
        out[f"{name}_frac"] = counts / max(int(counts.sum()), 1)
    return out


def class_balance(counts) -> dict:
    """Summarise how balanced the classes are.

    Parameters
    ----------
    counts : ImageSet, pandas.Series or array-like
        A split, or its per-class counts (e.g. ``class_counts(train)["train"]``).

    Returns
    -------
    dict
        ``n`` (examples), ``n_classes``, ``min`` and ``max`` (smallest and largest class count),
        ``smallest`` and ``largest`` (their labels), ``ratio`` (``max / min``; 1 is perfectly
        balanced, ``inf`` if a class is empty) and ``entropy_ratio`` (entropy of the class
        distribution divided by that of the uniform one, ``log C``; 1 is perfectly balanced).
    """
    if isinstance(counts, ImageSet):
        counts = torch.bincount(counts.labels.cpu(), minlength=_n_classes(counts)).numpy()
    c = np.asarray(counts, dtype=np.float64).ravel()
    if c.size == 0 or c.sum() <= 0 or (c < 0).any():
        raise ValueError("class_balance needs non-negative counts with a positive total.")
    p = c / c.sum()
    nz = p[p > 0]
    entropy = float(-(nz * np.log(nz)).sum())
    return {
        "n": int(c.sum()),
        "n_classes": int(c.size),
        "min": int(c.min()),
        "max": int(c.max()),
        "smallest": int(c.argmin()),
        "largest": int(c.argmax()),
        "ratio": float(c.max() / c.min()) if c.min() > 0 else math.inf,
        "entropy_ratio": entropy / math.log(c.size) if c.size > 1 else 1.0,
    }


# --------------------------------------------------------------------------------------------
# pixel statistics


def class_means(data: ImageSet) -> np.ndarray:
    """Mean image of every class.

    Returns
    -------
    numpy.ndarray
        float64 array ``(C, 28, 28)`` of intensities in ``[0, 1]``; row ``c`` is the mean of
        the images labelled ``c`` (NaN where a class has no example).
    """
    out = np.full((_n_classes(_check(data)), 28, 28), np.nan)
    for c, imgs in _per_class(data):
        if len(imgs):
            out[c] = imgs.cpu().sum(0, dtype=torch.int64).numpy() / (255.0 * len(imgs))  # exact integer sums
    return out


def pixel_std(data: ImageSet, chunk: int = 10_000) -> np.ndarray:
    """Per-pixel standard deviation over all images (every class together).

    Parameters
    ----------
    data : ImageSet
    chunk : int
        Images converted to float at a time (bounds the memory used).

    Returns
    -------
    numpy.ndarray
        float64 array ``(28, 28)``: the population standard deviation of each pixel's
        intensity (in ``[0, 1]``) across the images. Border pixels that are always 0 give 0.
    """
    images = _check(data).images.cpu()
    if len(images) == 0:
        raise ValueError("pixel_std needs at least one image.")
    s = torch.zeros(28, 28, dtype=torch.float64)
    q = torch.zeros(28, 28, dtype=torch.float64)
    for start in range(0, len(images), chunk):
        x = images[start:start + chunk].to(torch.float64)
        s += x.sum(0)
        q += (x * x).sum(0)
    n = len(images)
    var = (q / n - (s / n) ** 2).clamp_min(0.0)
    return var.sqrt().numpy() / 255.0


def pixel_histograms(data: ImageSet, bins: int = 32, density: bool = True) -> pd.DataFrame:
    """Histogram of the intensities of all pixels of each class.

    Parameters
    ----------
    data : ImageSet
    bins : int
        Number of equal-width bins over the grey levels ``0..255`` (1 to 256). Bin ``k`` holds
        the levels ``v`` with ``floor(v * bins / 256) == k``.
    density : bool
        If True, each column is the fraction of that class's pixels in each bin (sums to 1);
        otherwise raw pixel counts.

    Returns
    -------
    pandas.DataFrame
        ``bins`` rows indexed by the left edge of the bin (``intensity``, in grey levels) and one
        column per class name. The bin edges are ``numpy.linspace(0, 256, bins + 1)``.
    """
    if not 1 <= int(bins) <= 256:
        raise ValueError(f"bins must be between 1 and 256, got {bins}.")
    bins = int(bins)
    grey = _grey_histograms(_check(data))  # (C, 256)
    bucket = torch.arange(256) * bins // 256
    hist = torch.zeros(grey.shape[0], bins, dtype=torch.int64).index_add_(1, bucket, grey).numpy()
    if density:
        total = hist.sum(1, keepdims=True)
        hist = np.divide(hist, total, out=np.full(hist.shape, np.nan), where=total > 0)
    index = pd.Index(np.linspace(0, 256, bins + 1)[:-1], name="intensity")
    return pd.DataFrame(hist.T, index=index, columns=list(data.classes))


def mean_intensity(data: ImageSet, threshold: float = 0.5) -> pd.DataFrame:
    """How much ink each class carries.

    Parameters
    ----------
    data : ImageSet
    threshold : float
        Intensity (in ``[0, 1]``) above which a pixel counts as "ink" for ``ink_fraction``.

    Returns
    -------
    pandas.DataFrame
        One row per class (index ``label``) with columns ``class``, ``n`` (images), ``mean``
        (mean pixel intensity in ``[0, 1]``), ``std`` (standard deviation across images of the
        per-image mean intensity), ``nonzero_fraction`` (fraction of pixels > 0) and
        ``ink_fraction`` (fraction of pixels > ``threshold``). NaN for an empty class. The class
        with the least ink is ``df.loc[df["mean"].idxmin(), "class"]``.
    """
    out = _class_frame(_check(data))
    cols = {k: np.full(len(out), np.nan) for k in ("mean", "std", "nonzero_fraction", "ink_fraction")}
    n = np.zeros(len(out), dtype=np.int64)
    cut = int(math.floor(threshold * 255))
    for c, imgs in _per_class(data):
        n[c] = len(imgs)
        if not len(imgs):
            continue
        per_image = imgs.cpu().reshape(len(imgs), -1).sum(1, dtype=torch.int64).double() / (784 * 255.0)
        grey = torch.bincount(imgs.flatten().cpu(), minlength=256)
        total = grey.sum().item()
        cols["mean"][c] = per_image.mean().item()
        cols["std"][c] = per_image.std(unbiased=False).item()
        cols["nonzero_fraction"][c] = grey[1:].sum().item() / total
        cols["ink_fraction"][c] = grey[cut + 1:].sum().item() / total
    out["n"] = n
    for k, v in cols.items():
        out[k] = v
    return out


def normalization_constants(data: ImageSet) -> tuple[float, float]:
    """Mean and standard deviation of all pixels of a split, scaled to ``[0, 1]``.

    These are the constants a loader subtracts and divides by (0.1307 and 0.3081 for the MNIST
    training set). Computed exactly from the histogram of the 256 grey levels.

    Returns
    -------
    (float, float)
        ``(mean, std)``; ``std`` is the population standard deviation over every pixel of every
        image.
    """
    images = _check(data).images
    if len(images) == 0:
        raise ValueError("normalization_constants needs at least one image.")
    grey = torch.bincount(images.flatten().cpu(), minlength=256).to(torch.float64)
    n = grey.sum()
    mean = (grey * _LEVELS).sum() / n
    var = (grey * (_LEVELS - mean) ** 2).sum() / n
    return float(mean), float(var.sqrt())


# --------------------------------------------------------------------------------------------
# typical examples


def distances_to_class_mean(data: ImageSet, means: np.ndarray | None = None) -> np.ndarray:
    """Euclidean distance of every image to the mean image of its own class.

    Parameters
    ----------
    data : ImageSet
    means : numpy.ndarray, optional
        ``(C, 28, 28)`` class means in ``[0, 1]``; default :func:`class_means` of ``data``.

    Returns
    -------
    numpy.ndarray
        ``(N,)`` distances (float64 array, computed in float32) in intensity units (pixels in ``[0, 1]``, 784 dimensions).
    """
    means = torch.as_tensor(class_means(_check(data)) if means is None else np.asarray(means), dtype=torch.float32)
    labels = data.labels.cpu()
    out = torch.empty(len(data), dtype=torch.float64)
    for c, imgs in _per_class(data):
        if len(imgs):  # float32 is ample for distances of order 1-10 and twice as fast
            diff = imgs.cpu().to(torch.float32) / 255.0 - means[c]
            out[labels == c] = diff.reshape(len(imgs), -1).norm(dim=1).double()
    return out.numpy()


def typical_examples(data: ImageSet, n: int = 8, distances: np.ndarray | None = None) -> pd.DataFrame:
    """The most and the least typical examples of each class: nearest to / farthest from its mean.

    Parameters
    ----------
    data : ImageSet
    n : int
        Examples of each kind per class (fewer if a class is smaller).
    distances : numpy.ndarray, optional
        Precomputed :func:`distances_to_class_mean`.

    Returns
    -------
    pandas.DataFrame
        Columns ``label``, ``class``, ``kind`` (``"most"`` or ``"least"`` typical), ``rank``
        (0 = the most extreme), ``index`` (position in ``data``) and ``distance``. "Most" rows
        are in increasing distance, "least" rows in decreasing distance.
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}.")
    d = torch.as_tensor(distances_to_class_mean(data) if distances is None else np.asarray(distances))
    labels = data.labels.cpu()
    rows = []
    for c, name in enumerate(data.classes):
        idx = (labels == c).nonzero().flatten()
        if not len(idx):
            continue
        order = idx[torch.argsort(d[idx], stable=True)]
        k = min(n, len(idx))
        for kind, picks in (("most", order[:k]), ("least", order.flip(0)[:k])):
            for rank, i in enumerate(picks.tolist()):
                rows.append({"label": c, "class": name, "kind": kind, "rank": rank, "index": i,
                             "distance": float(d[i])})
    return pd.DataFrame(rows, columns=["label", "class", "kind", "rank", "index", "distance"])


def sample_batch(data: ImageSet, n: int = 25, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """The first ``n`` images of a shuffled :class:`~mnistlab.data.TensorLoader` batch.

    Returns
    -------
    (torch.Tensor, torch.Tensor)
        float images ``(n, 28, 28)`` in ``[0, 1]`` (no normalisation, no augmentation) and their
        int64 labels; the same ``seed`` gives the same batch.
    """
    loader = TensorLoader(_check(data), batch_size=n, shuffle=True, normalize="unit", seed=seed)
    x, y = next(iter(loader))
    return x[:, 0].cpu(), y.cpu()


def class_spread(data: ImageSet, distances: np.ndarray | None = None) -> pd.DataFrame:
    """How tightly each class gathers around its mean image.

    Parameters
    ----------
    data : ImageSet
    distances : numpy.ndarray, optional
        Precomputed :func:`distances_to_class_mean`.

    Returns
    -------
    pandas.DataFrame
        One row per class (index ``label``): ``class``, ``n``, ``median_distance`` and
        ``p90_distance`` (median and 90th percentile of the distances to the class mean; NaN for an
        empty class). The tightest class is ``df["median_distance"].idxmin()``.
    """
    d = distances_to_class_mean(_check(data)) if distances is None else np.asarray(distances)
    if len(d) != len(data):
        raise ValueError(f"{len(d)} distances for {len(data)} images; pass distances_to_class_mean(data).")
    labels = data.labels.cpu().numpy()
    out = _class_frame(data)
    out["n"] = np.bincount(labels, minlength=len(out))[: len(out)]
    out["median_distance"] = [float(np.median(d[labels == c])) if (labels == c).any() else np.nan for c in out.index]
    out["p90_distance"] = [float(np.quantile(d[labels == c], 0.9)) if (labels == c).any() else np.nan
                           for c in out.index]
    return out


# --------------------------------------------------------------------------------------------
# the source's claims, checked

#: MNIST's split sizes, as the Medium article (003) states them.
MNIST_SIZES = (60_000, 10_000)


def pixel_shares(data: ImageSet, bins: int = 10) -> pd.DataFrame:
    """Share of each class's pixels in the lowest, the highest and the fullest middle bin of its histogram.

    With ``bins=10`` (matplotlib's default) this is what a per-class pixel histogram shows at a
    glance: how many pixels are black (the lowest bin), white (the highest) and in between.

    Returns
    -------
    pandas.DataFrame
        Indexed like :func:`class_counts`: ``class``, ``lowest``, ``highest``, ``middle_max`` (the
        fullest bin between them) and ``middle`` (all bins between them), fractions of the class's pixels.
    """
    hist = pixel_histograms(data, bins=bins, density=True).to_numpy().T  # (C, bins)
    out = _class_frame(data)
    out["lowest"], out["highest"] = hist[:, 0], hist[:, -1]
    out["middle_max"], out["middle"] = hist[:, 1:-1].max(1), hist[:, 1:-1].sum(1)
    return out


def source_claims(train: ImageSet, test: ImageSet, ink: pd.DataFrame, *, subset: bool = False) -> pd.DataFrame:
    """The Medium article's (003) claims about the data, each with what was measured here and a computed verdict.

    Rows (see :mod:`mnistlab.studies.claims` for the columns and verdicts):

    * "It contains 60,000 training images and 10,000 testing images": the split sizes, equal;
    * "class 1 takes the least number of white pixels": the class with the least mean ink is 1;
    * "most pixels values are ZERO(black), some are ONE(white), few between 0 and 1 for all the
      classes": in a 10-bin histogram of every class, the lowest bin holds most pixels and the
      highest bin more than any bin between them (all classes: reproduced; some: partly).

    The article describes MNIST: on another dataset every verdict is "not applicable" (the numbers
    are still shown), and so are the split sizes when ``subset`` (a QUICK run) is true.

    Parameters
    ----------
    train, test : ImageSet
        The splits the numbers come from.
    ink : pandas.DataFrame
        :func:`mean_intensity` of ``train``.
    subset : bool
        True when the splits are subsets (the sizes then say nothing about the source's claim).

    Returns
    -------
    pandas.DataFrame
        A :func:`mnistlab.studies.claims.claims_table`.
    """
    from . import claims as C

    mnist = _check(train).dataset == "mnist"
    sizes = (len(train), len(_check(test)))
    rows = [C.check("medium.size", f"{sizes[0]:,} training and {sizes[1]:,} test images", sizes == MNIST_SIZES,
                    rule="both split sizes equal the published ones", applicable=mnist and not subset,
                    reason="the splits are subsets (QUICK)" if mnist else C.NOT_MNIST)]
    least = str(ink.loc[ink["mean"].idxmin(), "class"])
    measured = f"least mean ink: class {least} ({ink['mean'].min():.4f}); most: class " \
               f"{ink.loc[ink['mean'].idxmax(), 'class']} ({ink['mean'].max():.4f})"
    rows.append(C.check("medium.least_ink", measured, least == "1", rule="the class with the least mean ink is 1",
                        applicable=mnist))
    sh = pixel_shares(train)
    ok = (sh["lowest"] > 0.5) & (sh["highest"] > sh["middle_max"])
    measured = (f"10-bin histograms: lowest bin {sh['lowest'].min():.1%} to {sh['lowest'].max():.1%} of a class's pixels, "
                f"highest {sh['highest'].min():.1%} to {sh['highest'].max():.1%}, fullest bin between "
                f"{sh['middle_max'].max():.1%} at most; {int(ok.sum())} of {len(sh)} classes fit")
    rows.append(C.check("medium.pixels", measured, bool(ok.all()), partly=bool(ok.any()), applicable=mnist,
                        rule="in every class the lowest of 10 bins holds over half the pixels and the highest bin "
                             "more than any bin between"))
    return C.claims_table(rows)
