"""Reading people's own digits: one digit or a whole number from a photo, a scan or a drawing.

:func:`read_number` finds every digit in a picture (:func:`mnistlab.data.images.find_digits`),
left to right, and reads each with a classifier; :func:`read_image` reads the one digit a picture
should hold and says plainly when it is unsure. :func:`photo_accuracy` and :func:`number_accuracy`
measure both on generated phone photos of MNIST test digits (:mod:`mnistlab.data.photos`), with the
old preprocessing (MNIST's steps only) beside the new one.

Examples
--------
>>> import mnistlab as ml                                   # doctest: +SKIP
>>> reading = ml.read_number("house_number.jpg")
>>> reading.text, reading.confidence
('2026', [0.998, 0.991, 0.999, 0.97])
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from tqdm.auto import tqdm

from ..data.images import Digits, _read_gray, find_digits, is_clean, to_mnist
from ..training.loop import predict

__all__ = ["Reading", "read_number", "read_image", "photo_accuracy", "number_accuracy", "accuracy_by", "UNSURE_BELOW"]

UNSURE_BELOW = 0.8
"""A digit read with a lower probability than this gets a warning ("not sure")."""


@dataclass
class Reading:
    """What the model read in one picture.

    Attributes
    ----------
    text : str
        The digits, left to right (``""`` when none was found).
    digits : list of int
    confidence : list of float
        The probability of each digit read.
    probabilities : numpy.ndarray
        float32 (K, 10): every class probability of every digit.
    found : Digits
        The preprocessing steps, boxes and (K, 28, 28) images the model saw.
    warnings : list of str
        Plain-language doubts: no digit found, several digits where one was expected, a digit read
        with a probability under :data:`UNSURE_BELOW`.
    """

    text: str
    digits: list
    confidence: list
    probabilities: np.ndarray
    found: Digits
    warnings: list = field(default_factory=list)

    @property
    def images(self) -> torch.Tensor:
        """uint8 (K, 28, 28): what the model saw, left to right."""
        return self.found.images

    def __repr__(self) -> str:
        conf = ", ".join(f"{c:.3f}" for c in self.confidence)
        return f"Reading(text={self.text!r}, confidence=[{conf}], warnings={self.warnings})"


def _model(model):
    if model is None:
        from ..training.pretrained import load_pretrained

        return load_pretrained()
    return model


def _check_unsure(unsure_below: float) -> None:
    if not 0 <= unsure_below <= 1:
        raise ValueError(f"unsure_below is a probability in [0, 1], got {unsure_below}.")


def _nothing_found(found: Digits) -> Reading:
    return Reading("", [], [], np.zeros((0, 10), np.float32), found,
                   ["no digit found: nothing stands out from the paper"])


def read_number(image, model=None, unsure_below: float = UNSURE_BELOW) -> Reading:
    """Read every digit in a picture, left to right, as one number.

    Parameters
    ----------
    image : path, PIL.Image, numpy.ndarray or torch.Tensor
        A photo, scan or drawing of one or more digits written side by side.
    model : classifier, optional
        Any mnistlab classifier; by default the shipped pretrained model.
    unsure_below : float
        A digit read with a lower probability gets a warning.

    Returns
    -------
    Reading
        ``text`` is ``""`` (with a warning) when no digit stands out from the paper.

    Raises
    ------
    ValueError
        If the picture cannot be read, is blank, or ``unsure_below`` is not in [0, 1].
    """
    _check_unsure(unsure_below)
    model = _model(model)
    found = find_digits(image)
    if not len(found):
        return _nothing_found(found)
    probs = predict(model, found.images)
    digits = [int(k) for k in probs.argmax(1)]
    confidence = [float(p[k]) for p, k in zip(probs, digits)]
    warnings = [f"not sure of digit {i + 1} ({d}): probability {c:.0%}" if len(digits) > 1
                else f"not sure: probability {c:.0%}"
                for i, (d, c) in enumerate(zip(digits, confidence)) if c < unsure_below]
    return Reading("".join(map(str, digits)), digits, confidence, probs, found, warnings)


def read_image(image, model=None, unsure_below: float = UNSURE_BELOW) -> Reading:
    """Read the one digit a picture holds, as ``mnistlab predict`` does.

    A clean picture (a drawing, a render, an MNIST-style image: :func:`mnistlab.data.images.is_clean`)
    goes through MNIST's steps as a whole (with a warning when :func:`find_digits` sees several
    digits in it); a photo through :func:`find_digits`, and the largest digit found is read, with a
    warning when there were several.

    Parameters
    ----------
    image, model, unsure_below
        As for :func:`read_number`.

    Returns
    -------
    Reading
        With at most one digit.

    Raises
    ------
    ValueError
        If the picture cannot be read or is blank.
    """
    _check_unsure(unsure_below)
    model = _model(model)
    gray = _read_gray(image)[0].astype(np.uint8)
    if is_clean(gray):
        digit = to_mnist(gray, photo=False)
        found = Digits({"gray": gray / 255.0}, [(0, 0, *gray.shape)], digit[None], [])
        several = len(find_digits(gray))  # a clean drawing of two digits side by side is no single digit
        warnings = [f"{several} digits found: the picture was read as one digit (use `mnistlab read` for a "
                    "number)"] if several > 1 else []
    else:
        found = find_digits(gray)
        if not len(found):
            return _nothing_found(found)
        warnings = [f"{len(found)} digits found, the largest was read (use `mnistlab read` for a number)"] \
            if len(found) > 1 else []
        k = found.largest()
        found = Digits(found.steps, [found.boxes[k]], found.images[k:k + 1], found.stroke[k:k + 1], found.lines)
    probs = predict(model, found.images)
    digit = int(probs[0].argmax())
    confidence = float(probs[0, digit])
    if confidence < unsure_below:
        warnings.append(f"not sure: probability {confidence:.0%}")
    return Reading(str(digit), [digit], [confidence], probs, found, warnings)


def photo_accuracy(data, models: dict, n: int = 300, seed: int = 0, progress: bool = True):
    """Accuracy on ``n`` generated phone photos of test digits, per model and preprocessing.

    Parameters
    ----------
    data : ImageSet
        The digits to photograph (use MNIST's test split); the first ``n`` are used.
    models : dict of name -> classifier
    n, seed : int
        How many photos, and the generator's seed (:func:`mnistlab.data.photos.make_photos`).
    progress : bool
        Show a progress bar while the photos are made and read.

    Returns
    -------
    table : pandas.DataFrame
        One row per photo: its settings, ``found`` (digits found), and per model ``pred_<name>``
        (new preprocessing) and ``old_<name>`` (MNIST's steps only), with the probability of the
        class read, ``conf_<name>`` and ``oldconf_<name>`` (-1 and 0 in ``pred``/``conf`` columns:
        no digit found).
    summary : pandas.DataFrame
        One row per model and preprocessing: ``correct``, ``photos``, ``accuracy``.
    photos : list of numpy.ndarray
        The photos themselves.
    """
    import pandas as pd

    from ..data.photos import make_photos

    if not models:
        raise ValueError("photo_accuracy needs at least one model, e.g. {'shipped': ml.load_pretrained()}.")
    _check_digits(data)
    photos, table = make_photos(data.images, data.labels, n=n, seed=seed)
    new, old, counts = [], [], []
    for photo in tqdm(photos, desc="reading photos", disable=not progress, leave=False):
        found = find_digits(photo)
        counts.append(len(found))
        new.append(found.images[found.largest()] if len(found) else torch.zeros((28, 28), dtype=torch.uint8))
        old.append(to_mnist(photo, photo=False))  # MNIST's steps alone: how photos were read before
    table["found"] = counts
    rows = []
    for name, model in models.items():
        for way, images in (("new", new), ("old", old)):
            probs = predict(model, torch.stack(images))
            pred = probs.argmax(1)
            if way == "new":
                pred[np.asarray(counts) == 0] = -1  # no digit found: wrong
            column = f"{'pred' if way == 'new' else 'old'}_{name}"
            table[column] = pred
            table[f"{'conf' if way == 'new' else 'oldconf'}_{name}"] = probs.max(1)
            correct = int((pred == table["label"].to_numpy()).sum())
            rows.append({"model": name, "preprocessing": "photo (find_digits)" if way == "new" else "MNIST steps only",
                         "correct": correct, "photos": n, "accuracy": correct / n})
    return table, pd.DataFrame(rows), photos


def number_accuracy(data, model=None, n: int = 100, length: int = 4, seed: int = 0, progress: bool = True):
    """How often :func:`read_number` reads a generated photo of a ``length``-digit number exactly.

    Parameters
    ----------
    data : ImageSet
        Digits to write the numbers with (use MNIST's test split).
    model : classifier, optional
        By default the shipped pretrained model.
    n, length, seed : int
    progress : bool

    Returns
    -------
    table : pandas.DataFrame
        One row per photo: ``number`` (true), ``read``, ``exact`` (bool), ``found`` (digits found),
        ``min_confidence`` and the photo's settings.
    photos : list of numpy.ndarray
    """
    from ..data.photos import make_number_photos

    _check_digits(data)
    model = _model(model)
    photos, table = make_number_photos(data.images, data.labels, n=n, length=length, seed=seed)
    readings = [read_number(p, model) for p in tqdm(photos, desc="reading numbers", disable=not progress,
                                                     leave=False)]
    table.insert(1, "read", [r.text for r in readings])
    table.insert(2, "exact", table["read"] == table["number"])
    table.insert(3, "found", [len(r.digits) for r in readings])
    table.insert(4, "min_confidence", [min(r.confidence, default=0.0) for r in readings])
    return table, photos


def _check_digits(data) -> None:
    dataset = getattr(data, "dataset", "mnist")
    if dataset != "mnist":
        raise ValueError(f"photos of handwriting are written with MNIST's digits, not {dataset}: "
                         f"pass ml.load_dataset('mnist', 'test').")


def accuracy_by(table, by, columns: dict, label: str = "label", confidence: float = 0.95):
    """Accuracy per value of each photo setting, per way of reading, with a Wilson interval.

    Parameters
    ----------
    table : pandas.DataFrame
        From :func:`photo_accuracy` (one row per photo).
    by : str or list of str
        Settings to split by (``"paper"``, ``"stroke"``, ``"ink"``, ``"jpeg_quality"``...).
    columns : dict of name -> column
        The predictions to score, e.g. ``{"photo (find_digits)": "pred_shipped", "MNIST steps only":
        "old_shipped"}``.
    label : str
        The column of true classes.
    confidence : float
        Of the interval (Wilson's score interval for a proportion: never outside 0..1).

    Returns
    -------
    pandas.DataFrame
        One row per setting, value and reading: ``setting``, ``value``, ``reading``, ``correct``,
        ``photos``, ``accuracy``, ``ci_low``, ``ci_high``.
    """
    import pandas as pd

    from ..experiments.stats import wilson_interval

    by = [by] if isinstance(by, str) else list(by)
    missing = [c for c in by + list(columns.values()) + [label] if c not in table]
    if missing:
        raise ValueError(f"accuracy_by: the table has no column {missing}; it has {list(table.columns)}.")
    rows = []
    for setting in by:
        for value, part in table.groupby(setting, sort=True):
            for name, column in columns.items():
                correct, n = int((part[column] == part[label]).sum()), len(part)
                low, high = wilson_interval(correct, n, confidence)
                rows.append({"setting": setting, "value": value, "reading": name, "correct": correct, "photos": n,
                             "accuracy": correct / n, "ci_low": float(low), "ci_high": float(high)})
    return pd.DataFrame(rows)
