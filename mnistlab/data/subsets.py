"""Labelled subsets: few labels per class (balanced, deterministic, nested), class subsets, the digits 0-4 / 5-9 split."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from .datasets import ImageSet, sample_indices

__all__ = ["DIGITS_SOURCE", "DIGITS_TARGET", "few_label_indices", "few_labels", "select_classes", "digits_split",
           "n_classes"]

DIGITS_SOURCE = (0, 1, 2, 3, 4)
DIGITS_TARGET = (5, 6, 7, 8, 9)


def n_classes(data: ImageSet) -> int:
    """Number of classes of labelled ``data``: its largest label plus one (0 for no images)."""
    return int(data.labels.max()) + 1 if len(data) else 0


def few_label_indices(dataset: ImageSet, per_class: int, seed: int = 0) -> torch.Tensor:
    """Sorted indices of ``per_class`` images of every class of ``dataset``, drawn with ``seed``.

    Parameters
    ----------
    dataset : ImageSet
    per_class : int
    seed : int

    Returns
    -------
    torch.Tensor
        int64 indices into ``dataset``, sorted.

    Notes
    -----
    The draw is nested: with the same seed, the 10-per-class subset is part of the 100-per-class
    one (each class's images are taken in the order of one seeded permutation).

    Raises
    ------
    ValueError
        ``per_class`` is not a positive integer, or a class has fewer images than that.
    """
    if isinstance(per_class, bool) or not isinstance(per_class, (int, np.integer)) or per_class < 1:
        raise ValueError(f"per_class must be a positive integer (or None for all labels), not {per_class!r}.")
    counts = torch.bincount(dataset.labels)
    short = [(c, int(counts[c])) for c in counts.nonzero().flatten().tolist() if counts[c] < per_class]
    if short:
        c, n = short[0]
        raise ValueError(f"few_labels(per_class={per_class}) needs {per_class} images of every class, but class {c} "
                         f"has only {n} here; lower per_class or pass a larger pool (or per_class=None for all).")
    return sample_indices(dataset.labels, int(per_class), seed=int(seed))


def few_labels(dataset: ImageSet, per_class: int | None, seed: int = 0) -> ImageSet:
    """A balanced labelled subset: ``per_class`` images of every class, the same for the same seed.

    Parameters
    ----------
    dataset : ImageSet
        The pool to draw from.
    per_class : int or None
        Images per class; ``None`` (or ``"all"``) returns ``dataset`` itself.
    seed : int
        Fixes the draw; subsets of one seed are nested (see :func:`few_label_indices`).

    Returns
    -------
    ImageSet
        In the pool's order.

    Examples
    --------
    >>> import torch, mnistlab as ml
    >>> from mnistlab.data.subsets import few_labels
    >>> pool = ml.ImageSet(torch.zeros(30, 28, 28, dtype=torch.uint8), torch.arange(30) % 3)
    >>> few_labels(pool, 4, seed=0).labels.bincount().tolist()
    [4, 4, 4]
    """
    if per_class is None or per_class == "all":
        return dataset
    return dataset.subset(few_label_indices(dataset, per_class, seed))


def select_classes(data: ImageSet, classes: Sequence[int], relabel: bool = True) -> ImageSet:
    """The images of ``classes`` only, relabelled 0..len(classes)-1 in the order given (unless ``relabel=False``).

    Parameters
    ----------
    data : ImageSet
    classes : sequence of int
        The classes to keep; with ``relabel`` class ``classes[i]`` becomes label ``i``.
    relabel : bool

    Returns
    -------
    ImageSet
        Same dataset name, images in their original order.

    Raises
    ------
    ValueError
        No classes, repeated classes, or none of the images belongs to them.
    """
    classes = [int(c) for c in classes]
    if not classes or len(set(classes)) != len(classes):
        raise ValueError(f"classes must be distinct and non-empty, got {classes}.")
    mask = torch.isin(data.labels, torch.tensor(classes))
    if not bool(mask.any()):
        raise ValueError(f"No image of {data.dataset} belongs to classes {classes}.")
    sub = data.subset(mask)
    if not relabel:
        return sub
    lut = torch.full((int(data.labels.max()) + 1,), -1, dtype=torch.long)
    lut[torch.tensor(classes)] = torch.arange(len(classes))
    return ImageSet(sub.images, lut[sub.labels], data.dataset)


def digits_split(data: ImageSet, source: Sequence[int] = DIGITS_SOURCE,
                 target: Sequence[int] = DIGITS_TARGET) -> tuple[ImageSet, ImageSet]:
    """Split into the source task (digits 0-4) and the target task (5-9), each relabelled from 0.

    Parameters
    ----------
    data : ImageSet
    source, target : sequence of int
        Disjoint class lists (default: 0-4 and 5-9).

    Returns
    -------
    (ImageSet, ImageSet)
        Source images with labels 0..4 for digits 0..4, target images with labels 0..4 for
        digits 5..9 (so label ``i`` of the target is digit ``target[i]``).
    """
    if set(source) & set(target):
        raise ValueError(f"source {tuple(source)} and target {tuple(target)} share classes.")
    return select_classes(data, source), select_classes(data, target)
