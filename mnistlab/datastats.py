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

The ``plot_*`` functions turn those arrays and tables into matplotlib figures and return them;
they know nothing about data files.
"""
from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch

from .data import ImageSet, TensorLoader
from .plots import image_grid

__all__ = [
    "class_counts", "class_balance", "class_means", "pixel_std", "pixel_histograms", "mean_intensity",
    "normalization_constants", "distances_to_class_mean", "typical_examples", "sample_batch",
    "plot_samples", "plot_class_counts", "plot_class_means", "plot_pixel_std", "plot_pixel_histograms",
    "plot_mean_intensity", "plot_typical_examples",
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


# --------------------------------------------------------------------------------------------
# plots


def plot_samples(images, labels, classes=None, ncols: int = 5, title: str | None = None):
    """Grid of images titled with their class names (or label numbers); returns the figure."""
    labels = np.asarray(labels.cpu() if hasattr(labels, "cpu") else labels).astype(int)
    titles = [classes[i] for i in labels] if classes is not None else [str(i) for i in labels]
    return image_grid(images, titles=titles, ncols=ncols, size=1.6, suptitle=title)


def plot_class_counts(counts: pd.DataFrame, title: str | None = None):
    """Bar charts of a :func:`class_counts` table: counts per split, and each class's share vs uniform.

    Returns
    -------
    matplotlib.figure.Figure
    """
    splits = [s for s in ("train", "test") if s in counts]
    x = np.arange(len(counts))
    width = 0.8 / len(splits)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 3.8))
    for i, split in enumerate(splits):
        off = (i - (len(splits) - 1) / 2) * width
        ax1.bar(x + off, counts[split], width, label=split)
        ax2.bar(x + off, 100 * counts[f"{split}_frac"], width, label=split)
    ax2.axhline(100 / len(counts), color="k", ls="--", lw=1, label="uniform")
    ax1.set(ylabel="images", title="examples per class")
    ax1.set_ylim(0, 1.25 * max(counts[s].max() for s in splits))  # room for the legend
    ax2.set(ylabel="% of split", title="share of each class")
    lo = 100 * min(counts[f"{s}_frac"].min() for s in splits)
    hi = 100 * max(counts[f"{s}_frac"].max() for s in splits)
    ax2.set_ylim(max(0.0, lo - 0.3 * (hi - lo) - 0.5), hi + 0.3 * (hi - lo) + 0.5)
    for ax in (ax1, ax2):
        ax.set_xticks(x, counts["class"], rotation=30 if max(map(len, counts["class"])) > 3 else 0, ha="right"
                      if max(map(len, counts["class"])) > 3 else "center")
        ax.grid(axis="y", alpha=0.3)
        ax.legend(fontsize=8, ncol=3, loc="upper center")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_class_means(means, classes, ncols: int = 5, title: str | None = None):
    """The mean image of every class (``(C, 28, 28)`` from :func:`class_means`), on one grey scale."""
    means = np.asarray(means)
    nrows = math.ceil(len(means) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(ncols * 1.8, nrows * 2.2), squeeze=False)
    vmax = np.nanmax(means) if np.isfinite(means).any() else 1.0
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < len(means):
            ax.imshow(means[i], cmap="gray", vmin=0, vmax=vmax)
            ax.set_title(str(classes[i]), fontsize=9)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_pixel_std(std, mean=None, title: str | None = None):
    """Per-pixel standard deviation map (and, if given, the overall mean image) with colour bars."""
    panels = ([("mean intensity", np.asarray(mean), "gray")] if mean is not None else []) + \
             [("per-pixel std", np.asarray(std), "magma")]
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.8), squeeze=False)
    for ax, (name, img, cmap) in zip(axes.flat, panels):
        im = ax.imshow(img, cmap=cmap, vmin=0)
        ax.set_title(name)
        ax.axis("off")
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_pixel_histograms(hist: pd.DataFrame, ncols: int = 5, log: bool = True, title: str | None = None):
    """One panel per class of a :func:`pixel_histograms` table, log y axis by default (most pixels are 0)."""
    edges = np.linspace(0, 256, len(hist) + 1)
    n = hist.shape[1]
    nrows = math.ceil(n / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(ncols * 2.4, nrows * 2.1), sharex=True, sharey=True,
                             squeeze=False)
    colors = plt.get_cmap("tab10")
    for i, ax in enumerate(axes.flat):
        if i >= n:
            ax.axis("off")
            continue
        values = hist.iloc[:, i].to_numpy(dtype=float)
        ax.stairs(values, edges, fill=True, color=colors(i % 10), alpha=0.8)
        ax.set_title(str(hist.columns[i]), fontsize=9)
        if log:
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
    for ax in axes[-1]:
        ax.set_xlabel("grey level")
    for ax in axes[:, 0]:
        ax.set_ylabel("fraction of pixels")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_mean_intensity(table: pd.DataFrame, title: str | None = None):
    """Bar chart of the mean intensity per class (a :func:`mean_intensity` table); least ink in red."""
    fig, ax = plt.subplots(figsize=(8, 3.6))
    x = np.arange(len(table))
    colors = ["tab:blue"] * len(table)
    if table["mean"].notna().any():
        colors[int(np.nanargmin(table["mean"].to_numpy()))] = "tab:red"
    ax.bar(x, table["mean"], yerr=table["std"], color=colors, capsize=3, alpha=0.85)
    overall = np.average(table["mean"].fillna(0), weights=table["n"]) if table["n"].sum() else np.nan
    ax.axhline(overall, color="k", ls="--", lw=1, label=f"all classes ({overall:.3f})")
    long = max(map(len, table["class"])) > 3
    ax.set_xticks(x, table["class"], rotation=30 if long else 0, ha="right" if long else "center")
    ax.set(ylabel="mean pixel intensity", xlabel="error bars: ±1 std of the per-image mean intensity",
           title=title or "ink per class")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_typical_examples(images, table: pd.DataFrame, kind: str = "most", title: str | None = None,
                          size: float = 0.9):
    """One row per class of the ``kind`` ("most" or "least") typical examples of a :func:`typical_examples` table.

    ``images`` are the images the table's ``index`` column refers to (e.g. ``data.images``). The
    examples are tiled into one mosaic (fast to draw even for many classes); the number under
    each image is its distance to the class mean.

    Returns
    -------
    matplotlib.figure.Figure
    """
    if kind not in ("most", "least"):
        raise ValueError(f"kind must be 'most' or 'least', not {kind!r}.")
    images = np.asarray(images.cpu() if hasattr(images, "cpu") else images)
    sel = table[table["kind"] == kind]
    if sel.empty:
        raise ValueError(f"the table has no {kind!r} rows.")
    labels = list(dict.fromkeys(sel["label"]))
    ncols = int(sel["rank"].max()) + 1
    scale = 255.0 if images.dtype == np.uint8 or images.max() > 1.0 else 1.0  # keep dim images dim
    cell, pad = 28, 4
    step = cell + pad
    mosaic = np.full((len(labels) * step + pad, ncols * step + pad), np.nan)
    fig, ax = plt.subplots(figsize=(ncols * size + 1.2, len(labels) * size + 0.6))
    names = []
    for r, label in enumerate(labels):
        rows = sel[sel["label"] == label]
        names.append(str(rows["class"].iloc[0]))
        for rank, index, distance in zip(rows["rank"], rows["index"], rows["distance"]):
            top, left = pad + r * step, pad + int(rank) * step
            mosaic[top:top + cell, left:left + cell] = images[int(index)] / scale
            ax.text(left + cell / 2, top + cell + 0.3, f"{distance:.1f}", ha="center", va="top", fontsize=6,
                    color="0.25")
    cmap = plt.get_cmap("gray").with_extremes(bad="white")
    ax.imshow(np.ma.masked_invalid(mosaic), cmap=cmap, vmin=0, vmax=1, interpolation="nearest")
    ax.set_yticks([pad + r * step + cell / 2 for r in range(len(labels))], names, fontsize=8)
    ax.set_xticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)
    ax.tick_params(length=0)
    ax.set_title(title or f"{kind} typical (distance to class mean)", fontsize=10)
    fig.tight_layout()
    return fig
