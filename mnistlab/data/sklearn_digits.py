"""scikit-learn's bundled 8x8 handwritten digits, brought to MNIST style.

:func:`sklearn.datasets.load_digits` ships 1,797 digits written by 43 people (UCI "Optical
Recognition of Handwritten Digits"): 32x32 bitmaps counted down to 8x8 blocks with ink levels
0-16. They are a different source, scanner and resolution from MNIST, which makes them a
small, always-available target for transfer learning.

Each image is converted the way MNIST itself was prepared, with
:func:`mnistlab.data.images.to_mnist`: the 8x8 block counts are scaled to 0-255 and upsampled
back to 32x32 (bicubic, the size the counts came from), then the digit is fitted into a 20x20
box (aspect ratio kept) and placed in a 28x28 frame with its centre of mass at the centre.

The split into training and test images is stratified and fixed by ``seed`` and
``test_fraction``; ``split="all"`` returns every image in the original order.

Part of the data layer: imports only ``mnistlab.data.datasets`` (one way: it registers
:func:`load_sklearn_digits` in ``datasets.LOADERS``, so ``load_dataset("sklearn-digits")`` finds it without
``datasets`` importing this module) and, on first use, ``mnistlab.data.images``.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch

from .datasets import DATASETS, LOADERS, ImageSet

__all__ = ["SKLEARN_DIGITS", "DEFAULT_TEST_FRACTION", "load_sklearn_digits", "convert_digit"]

DEFAULT_TEST_FRACTION = 0.3
"""Share of the 1,797 images held out as the test split by default (540 test, 1,257 train)."""

SKLEARN_DIGITS = DATASETS["sklearn-digits"]
"""Constants of the dataset: ``mean`` and ``std`` are those of the converted training pixels in
[0, 1] for the default split (``seed=0``, ``test_fraction=0.3``), checked by the tests.
``folder`` is unused (the images come from scikit-learn, not from files)."""

_UPSAMPLE = 32  # the 8x8 values are counts of ink over 4x4 blocks of the original 32x32 bitmaps


def convert_digit(image8: np.ndarray) -> torch.Tensor:
    """Convert one 8x8 scikit-learn digit (ink 0-16) to a 28x28 uint8 MNIST-style image.

    Parameters
    ----------
    image8 : numpy.ndarray
        Shape (8, 8), values 0-16 (light ink on a dark background, like MNIST).

    Returns
    -------
    torch.Tensor
        uint8 (28, 28): upsampled to 32x32 (bicubic), fitted into 20x20 and centred by mass.

    Raises
    ------
    ValueError
        If the image is not 8x8 or holds no ink.
    """
    image8 = np.asarray(image8, dtype=np.float32)
    if image8.shape != (8, 8):
        raise ValueError(f"Expected an 8x8 scikit-learn digit, got shape {image8.shape}.")
    from PIL import Image

    from .images import to_mnist

    scaled = image8 * (255.0 / 16.0)
    up = Image.fromarray(scaled, mode="F").resize((_UPSAMPLE, _UPSAMPLE), Image.BICUBIC)
    up = np.clip(np.asarray(up), 0, 255).round().astype(np.uint8)
    return to_mnist(up, invert=False)


@lru_cache(maxsize=1)
def _converted() -> tuple[torch.Tensor, torch.Tensor]:
    """All 1,797 digits converted (uint8 (N, 28, 28)) and their labels, computed once per session."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = torch.stack([convert_digit(im) for im in bunch.images])
    labels = torch.as_tensor(bunch.target, dtype=torch.long)
    return images, labels


def load_sklearn_digits(split: str = "train", seed: int = 0,
                        test_fraction: float = DEFAULT_TEST_FRACTION) -> ImageSet:
    """scikit-learn's 1,797 handwritten digits as an MNIST-style :class:`ImageSet`.

    Parameters
    ----------
    split : {"train", "test", "all"}
        A stratified split fixed by ``seed`` and ``test_fraction``; "all" is every image in
        scikit-learn's order.
    seed : int
        Seed of the split: the same seed always gives the same images in the same order.
    test_fraction : float
        Share of the images in the test split (0 < f < 1); every class keeps its share.

    Returns
    -------
    ImageSet
        uint8 images (N, 28, 28), int64 labels 0-9, ``dataset="sklearn-digits"``. With the
        defaults: 1,257 training and 540 test images.

    Raises
    ------
    ValueError
        Unknown split, or a test fraction outside (0, 1).

    Examples
    --------
    >>> from mnistlab.data.sklearn_digits import load_sklearn_digits
    >>> train = load_sklearn_digits("train")
    >>> len(train), tuple(train.images.shape[1:])
    (1257, (28, 28))
    """
    if split not in ("train", "test", "all"):
        raise ValueError(f"split must be 'train', 'test' or 'all', not {split!r}.")
    if not 0.0 < float(test_fraction) < 1.0:
        raise ValueError(f"test_fraction must lie strictly between 0 and 1, got {test_fraction!r}.")
    images, labels = _converted()
    if split == "all":
        return ImageSet(images.clone(), labels.clone(), SKLEARN_DIGITS.name)
    from sklearn.model_selection import train_test_split

    train_idx, test_idx = train_test_split(np.arange(len(labels)), test_size=float(test_fraction),
                                           random_state=int(seed), stratify=labels.numpy())
    idx = torch.from_numpy(np.sort(train_idx if split == "train" else test_idx))
    return ImageSet(images[idx], labels[idx], SKLEARN_DIGITS.name)


LOADERS[SKLEARN_DIGITS.name] = load_sklearn_digits
