"""Datasets as in-memory uint8 tensors, deterministic splits, and a fast batch loader.

Everything downstream works on :class:`ImageSet` (uint8 images ``(N, 28, 28)`` and int64
labels ``(N,)``). :class:`TensorLoader` cuts batches straight from those tensors, normalises
them and augments whole batches on the target device, which is far faster than a
per-sample ``torch.utils.data.DataLoader`` pipeline.

This module imports no other module of the package.
"""
from __future__ import annotations

import gzip
import math
import os
import struct
import tempfile
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from .._util import file_kind

__all__ = [
    "DATASETS",
    "DatasetInfo",
    "DataError",
    "ImageSet",
    "data_root",
    "load_dataset",
    "dataset_info",
    "train_val_split",
    "kfold_indices",
    "normalization",
    "check_files",
    "as_imageset",
    "sample_indices",
    "pixels_to_uint8",
    "not_a_regular_file",
]


class DataError(RuntimeError):
    """Raised when dataset files are missing, truncated or corrupt."""


@dataclass(frozen=True)
class DatasetInfo:
    """Static facts about one dataset: its torchvision class, constants and class names."""

    name: str
    folder: str  # torchvision's class name, also its folder under the root
    mean: float  # of the training pixels scaled to [0, 1]; recomputed in notebook 01
    std: float
    classes: tuple[str, ...]


DATASETS: dict[str, DatasetInfo] = {
    "mnist": DatasetInfo("mnist", "MNIST", 0.1307, 0.3081, tuple(str(i) for i in range(10))),
    "fashion-mnist": DatasetInfo(
        "fashion-mnist", "FashionMNIST", 0.2860, 0.3530,
        ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
         "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
    ),
    "kmnist": DatasetInfo(
        "kmnist", "KMNIST", 0.1918, 0.3483,
        ("o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo"),
    ),
    # scikit-learn's bundled 8x8 digits brought to MNIST style (mnistlab.data.sklearn_digits); no files:
    # mean/std of the converted training pixels of the default split
    "sklearn-digits": DatasetInfo("sklearn-digits", "sklearn-digits", 0.1566, 0.2945,
                                  tuple(str(i) for i in range(10))),
}
FILE_DATASETS = ("mnist", "fashion-mnist", "kmnist")
"""The datasets read from IDX files in torchvision's layout (``mnistlab data`` checks these)."""
_ALIASES = {"fashion": "fashion-mnist", "fashionmnist": "fashion-mnist", "fashion_mnist": "fashion-mnist"}

# File names inside <root>/<Folder>/raw/, as torchvision expects them.
_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
_EXPECTED_COUNT = {"train": 60000, "test": 10000}
_MAX_RECORDS = max(_EXPECTED_COUNT.values())  # no file of these datasets holds more: caps what a header may claim


def dataset_info(name: str) -> DatasetInfo:
    """Return the :class:`DatasetInfo` for ``name`` ("mnist", "fashion-mnist" or "kmnist")."""
    key = _ALIASES.get(name.lower(), name.lower())
    if key not in DATASETS:
        raise ValueError(f"Unknown dataset {name!r}; choose one of {sorted(DATASETS)}.")
    return DATASETS[key]


def data_root(root: str | os.PathLike | None = None) -> Path:
    """Resolve the data folder: ``root`` if given, else ``$MNISTLAB_DATA``, else a per-user default.

    Parameters
    ----------
    root : path, optional
        An explicit folder; wins over the environment.

    Returns
    -------
    pathlib.Path
        ``$MNISTLAB_DATA`` is read without surrounding whitespace (a trailing newline from a shell
        or a ``.env`` file is not part of the path); a relative value is resolved against the
        working directory at once, so the folder does not change when the directory does.

    Raises
    ------
    DataError
        ``$MNISTLAB_DATA`` is a relative path that does not exist from the working directory, or
        the folder named is something else (a file, a FIFO, a device).
    """
    if root is not None:
        return _a_folder(Path(root).expanduser(), f"root={root}")
    env = os.environ.get("MNISTLAB_DATA", "").strip()
    if not env:
        return _default_root()
    path = Path(env).expanduser()
    if path.is_absolute():
        return _a_folder(path, f"MNISTLAB_DATA={env}")
    if not path.exists():
        raise DataError(f"MNISTLAB_DATA={env} is relative and was resolved against {Path.cwd()}; set an absolute "
                        "path.")
    return _a_folder(path.resolve(), f"MNISTLAB_DATA={env}")


def _a_folder(path: Path, named: str) -> Path:
    """``path``, unless it exists as something other than a folder (``named`` says where it was given)."""
    if path.exists() and not path.is_dir():
        raise DataError(f"{named} is {not_a_regular_file(path) or 'a file'}, not a folder; point it at the folder "
                        "that holds MNIST/raw/ (torchvision's layout).")
    return path


def _default_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "mnistlab" / "data"


def not_a_regular_file(path: str | os.PathLike) -> str | None:
    """What ``path`` is when it exists but is no regular file, e.g. "a FIFO (a named pipe)"; else ``None``.

    Reading a FIFO or a device never ends (or blocks in ``open``), so readers ask first.

    Parameters
    ----------
    path : path
        Followed if it is a symbolic link.

    Returns
    -------
    str or None
        "a folder", "a FIFO (a named pipe)", "a character device (like /dev/zero)", "a block device
        (a disk)", "a socket" or "not a regular file"; ``None`` for a regular file or a path that
        cannot be looked at (absent, no permission: the caller's ``open`` says why).
    """
    try:
        kind = file_kind(path)
    except ValueError:  # e.g. a NUL byte in the path: the caller's open says why
        return None
    return None if kind is None or kind == "a file" or kind.startswith("unreachable") else kind


def _check_regular(path: Path) -> None:
    what = not_a_regular_file(path)
    if what:
        raise DataError(f"{path} is {what}, not a data file; remove it and put the file there.")


def _read_idx_header(path: Path, kind: str) -> tuple[int, ...]:
    """Validate an IDX file's magic number and size; return its dimensions.

    torchvision's reader would either fail with an obscure error or silently return a
    wrong shape on a truncated file, so we check before handing the file to it.
    """
    expected_ndim = 3 if kind == "images" else 1
    _check_regular(path)
    try:
        size = path.stat().st_size
        with open(path, "rb") as fh:
            head = fh.read(4 + 4 * expected_ndim)
    except OSError as exc:
        raise _unreadable(path, exc) from None
    return _check_idx(path, head, size, kind)


def _unreadable(path: Path, exc: OSError) -> DataError:
    if isinstance(exc, IsADirectoryError) or path.is_dir():
        return DataError(f"{path} is a folder, not a data file; remove it and put the file there.")
    if isinstance(exc, PermissionError):
        return DataError(f"{path} cannot be read: permission denied (check the owner and mode of the file "
                         "and of its folders).")
    return DataError(f"{path} cannot be read: {exc.strerror or exc}.")


def _check_idx(path: Path, head: bytes, size: int, kind: str) -> tuple[int, ...]:
    """The header checks of :func:`_read_idx_header` on bytes already read, and the size the header implies."""
    dims = _idx_dims(path, head, size, kind)
    expected = 4 + 4 * len(dims) + math.prod(dims)
    if size != expected:
        raise DataError(
            f"{path} has {size} bytes but its header {tuple(dims)} needs {expected}: the file is "
            f"{'truncated' if size < expected else 'corrupt (trailing bytes)'}. Delete it and download again."
        )
    return dims


def _idx_dims(path: Path, head: bytes, size: int, kind: str) -> tuple[int, ...]:
    """The dimensions an IDX header claims, checked against what the datasets hold (nothing read beyond it)."""
    expected_ndim = 3 if kind == "images" else 1
    if len(head) < 4:
        raise DataError(f"{path} is truncated ({size} bytes): it has no IDX header. Delete it and download again.")
    zero, dtype, ndim = struct.unpack(">HBB", head[:4])
    if zero != 0 or dtype != 0x08 or ndim != expected_ndim:
        packed = " It is gzip-compressed: name it with .gz or unpack it." if head[:2] == b"\x1f\x8b" else ""
        raise DataError(
            f"{path} is not an IDX {kind} file (magic {head[:4].hex()}, expected 0000080{expected_ndim}). "
            f"It may be compressed, corrupt or the wrong file; replace it with the official one.{packed}"
        )
    if len(head) < 4 + 4 * ndim:
        raise DataError(f"{path} is truncated ({size} bytes): its header is incomplete.")
    dims = struct.unpack(">" + "I" * ndim, head[4:4 + 4 * ndim])
    if kind == "images" and tuple(dims[1:]) != (28, 28):
        raise DataError(f"{path} holds images of shape {tuple(dims[1:])}, expected (28, 28).")
    if dims[0] > _MAX_RECORDS:
        raise DataError(f"{path} claims {dims[0]} records, but these datasets hold at most {_MAX_RECORDS}: the file "
                        "is corrupt or not the official one. Delete it and download again.")
    return tuple(dims)


def _read_gz(path: Path, kind: str) -> tuple[bytes, tuple[int, ...]]:
    """The decompressed content of a ``.gz`` IDX file and its dimensions, or a :class:`DataError` naming it.

    The header is read and checked first, and no more is decompressed than it declares (plus one
    byte, to tell a stream that goes on): a small archive that would unpack to gigabytes costs
    nothing.
    """
    _check_regular(path)
    header = 4 + 4 * (3 if kind == "images" else 1)
    try:
        with gzip.open(path, "rb") as fh:
            head = fh.read(header)
            dims = _idx_dims(path, head, len(head), kind)
            rest = fh.read(math.prod(dims) + 1)
    except OSError as exc:  # includes gzip.BadGzipFile and EOFError's cousin for truncated streams
        if isinstance(exc, (PermissionError, IsADirectoryError)):
            raise _unreadable(path, exc) from None
        raise DataError(f"{path} is not a readable gzip file ({exc}); delete it and download again.") from None
    except EOFError:
        raise DataError(f"{path} is truncated (the gzip stream ends early); delete it and download again.") from None
    if len(rest) > math.prod(dims):
        raise DataError(f"{path} unpacks to more than its header {dims} declares ({header + math.prod(dims)} "
                        "bytes): the file is corrupt (trailing bytes). Delete it and download again.")
    data = head + rest
    _check_idx(path, head, len(data), kind)  # a stream that ends early
    return data, dims


def _unpack(gz: Path, target: Path) -> None:
    """Unpack ``gz`` (as torchvision downloads it) to ``target`` atomically, after checking its content."""
    data, _ = _read_gz(gz, "images" if "images" in target.name else "labels")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.chmod(tmp, 0o644)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise DataError(f"{gz} is there but cannot be unpacked beside it ({exc.strerror or exc}); unpack it "
                        f"yourself with `gunzip -k {gz}`, or point MNISTLAB_DATA at a writable copy.") from None


def check_files(name: str = "mnist", root: str | os.PathLike | None = None) -> "list[dict]":
    """Report on every raw file of a dataset: path, whether present, and whether sound.

    Checks everything :func:`load_dataset` checks: the IDX header and size, the record count,
    that images and labels agree, and that every label is a class of the dataset. A file
    present only as the ``.gz`` torchvision downloads is checked inside the archive (it is
    unpacked on first use).

    Parameters
    ----------
    name : str
        Dataset name.
    root : path, optional
        Data folder (default: :func:`data_root`).

    Returns
    -------
    list of dict
        Keys ``split``, ``file``, ``path``, ``present``, ``ok`` and ``problem`` (``None``
        when the file is sound). Used by ``mnistlab data``.
    """
    info = dataset_info(name)
    if info.name not in FILE_DATASETS:
        raise ValueError(f"{info.name} is not read from files (it comes with scikit-learn); nothing to check.")
    raw = data_root(root) / info.folder / "raw"
    report = []
    for split, (img, lbl) in _FILES.items():
        counts = {}
        for fname, kind in ((img, "images"), (lbl, "labels")):
            path = raw / fname
            gz = raw / (fname + ".gz")
            packed = not path.exists() and gz.exists()
            shown = gz if packed else path
            row = {"split": split, "file": fname, "path": str(shown), "present": path.exists() or packed,
                   "ok": False, "problem": None}
            try:
                if not row["present"]:
                    raise DataError("missing")
                if packed:
                    data, dims = _read_gz(gz, kind)
                else:
                    dims = _read_idx_header(path, kind)
                    data = None
                if dims[0] != _EXPECTED_COUNT[split]:
                    raise DataError(f"{dims[0]} records, expected {_EXPECTED_COUNT[split]}")
                counts[kind] = dims[0]
                if kind == "labels":
                    if data is None:
                        data = path.read_bytes()
                    labels = np.frombuffer(data, dtype=np.uint8, offset=8)
                    if labels.size and labels.max() >= len(info.classes):
                        raise DataError(f"{int((labels >= len(info.classes)).sum())} labels outside "
                                        f"0..{len(info.classes) - 1} (e.g. {int(labels.max())}); the file is corrupt")
                    if counts.get("images", dims[0]) != dims[0]:
                        raise DataError(f"{dims[0]} labels for {counts['images']} images")
                row["ok"] = True
            except DataError as exc:
                row["problem"] = str(exc)
            except OSError as exc:
                row["problem"] = str(_unreadable(path, exc))
            report.append(row)
    return report


def _missing_error(info: DatasetInfo, root: Path, missing: list[Path], cause: Exception | None = None) -> DataError:
    names = ", ".join(p.name for p in missing)
    msg = (
        f"{info.folder} files not found: {names} in {root / info.folder / 'raw'}. "
        f"Point the environment variable MNISTLAB_DATA at a folder that holds {info.folder}/raw/ "
        f"(torchvision's layout), pass root=..., or go online so torchvision can download them "
        f"into the default folder {_default_root()}."
    )
    name = missing[0].name
    for inner, up in ((root / "raw", root.parent), (root, root.parent.parent)):  # root is MNIST/ or MNIST/raw/
        if (inner / name).exists() or (inner / (name + ".gz")).exists():
            msg = (f"{info.folder} files not found in {root / info.folder / 'raw'}, but {inner} holds them: point "
                   f"MNISTLAB_DATA (or root=) at {up}, the folder that holds {info.folder}/raw/.")
            break
    if cause is not None:
        msg += f" (The download failed: {' '.join(str(cause).split())})"
    return DataError(msg)


#: ``{dataset name: loader(split) -> ImageSet}`` for datasets that are not IDX files; the module that knows
#: such a dataset registers its loader here (``data/sklearn_digits.py``), so this module imports none of them.
LOADERS: dict = {}


@dataclass(frozen=True)
class ImageSet:
    """A split held in memory: uint8 ``images`` (N, 28, 28) and int64 ``labels`` (N,).

    Parameters
    ----------
    images : torch.Tensor or numpy.ndarray
        uint8 images of shape (N, 28, 28) (other pixel types: :func:`as_imageset`).
    labels : torch.Tensor or array-like
        Integer labels of shape (N,); kept as int64.
    dataset : str
        Name of the dataset the images come from (fixes normalisation constants and class names).
    """

    images: torch.Tensor
    labels: torch.Tensor
    dataset: str = "mnist"
    info: DatasetInfo = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        images, labels = _tensor(self.images, "ImageSet.images"), _tensor(self.labels, "ImageSet.labels")
        if images.dtype != torch.uint8:
            raise TypeError(f"ImageSet.images must be uint8 (N, 28, 28), not {images.dtype}; convert other pixel "
                            "types with ml.as_imageset((images, labels)).")
        if images.ndim != 3 or tuple(images.shape[1:]) != (28, 28):
            raise ValueError(
                f"ImageSet.images has shape {tuple(images.shape)}; expected (N, 28, 28). One image: add the "
                "batch axis (images[None]); other sizes or photos: convert each with ml.to_mnist."
            )
        if labels.ndim != 1 or len(labels) != len(images):
            raise ValueError(f"labels has shape {tuple(labels.shape)}; expected ({len(images)},).")
        object.__setattr__(self, "images", images)
        object.__setattr__(self, "labels", labels.long())
        object.__setattr__(self, "info", dataset_info(self.dataset))

    def __repr__(self) -> str:
        labels = f"{int(self.labels.min())}-{int(self.labels.max())}" if len(self) else "none"
        device = f", device='{self.images.device}'" if self.images.device.type != "cpu" else ""
        return (f"ImageSet(dataset={self.dataset!r}, n={len(self)}, images={str(self.images.dtype)[6:]} "
                f"{tuple(self.images.shape)}, labels={labels}{device})")

    def __len__(self) -> int:
        return len(self.images)

    @property
    def classes(self) -> tuple[str, ...]:
        """Class names of the dataset."""
        return self.info.classes

    def subset(self, index) -> "ImageSet":
        """Return the images and labels at ``index`` (indices, a slice or a boolean mask)."""
        if isinstance(index, np.ndarray):
            index = torch.as_tensor(np.array(index))  # a copy: pandas hands out read-only arrays
        return ImageSet(self.images[index], self.labels[index], self.dataset)

    def head(self, n: int) -> "ImageSet":
        """Return the first ``n`` examples."""
        return self.subset(slice(0, n))

    def to(self, device) -> "ImageSet":
        """Return a copy whose tensors live on ``device``."""
        return ImageSet(self.images.to(device), self.labels.to(device), self.dataset)

    def float(self) -> np.ndarray:
        """Images as a float32 NumPy array (N, 784) scaled to [0, 1], for scikit-learn and t-SNE."""
        return self.images.reshape(len(self), -1).cpu().numpy().astype(np.float32) / 255.0


def load_dataset(
    name: str = "mnist",
    split: str = "train",
    root: str | os.PathLike | None = None,
    download: bool | None = None,
    limit: int | None = None,
) -> ImageSet:
    """Load a whole split into memory through torchvision's dataset classes.

    Parameters
    ----------
    name : {"mnist", "fashion-mnist", "kmnist"}
    split : {"train", "test", "all"}
        "all" concatenates train then test (70,000 images).
    root : path, optional
        Folder in torchvision's layout (``<root>/MNIST/raw/...``). Defaults to
        ``$MNISTLAB_DATA``, else ``~/.cache/mnistlab/data``.
    download : bool, optional
        Allow torchvision to download missing files. Default: only into the per-user default
        folder, never into an explicit root or ``$MNISTLAB_DATA``.
    limit : int, optional
        Keep only the first ``limit`` examples (handy for quick runs).

    Returns
    -------
    ImageSet
        uint8 images (N, 28, 28) and int64 labels: a fresh copy on every call, safe to edit (the files
        are read once per process and kept in memory).

    Raises
    ------
    DataError
        Files missing (offline), truncated or corrupt; the message names the file and the fix.
    """
    info = dataset_info(name)
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ValueError(f"limit must be a positive number of images (or None for all), not {limit!r}.")
    if info.name in LOADERS:  # a dataset without IDX files (scikit-learn's digits): its module registered a loader
        out = LOADERS[info.name](split)
        return out.head(limit) if limit is not None else out
    if split == "all":
        tr, te = load_dataset(name, "train", root, download), load_dataset(name, "test", root, download)
        out = ImageSet(torch.cat([tr.images, te.images]), torch.cat([tr.labels, te.labels]), info.name)
    elif split in _FILES:
        resolved = data_root(root).resolve()
        if download is None:
            download = root is None and not os.environ.get("MNISTLAB_DATA", "").strip()
        images, labels = _load_cached(info.name, split, str(resolved), bool(download))
        # hand out copies: the cached tensors are shared by every later call in this process, so an
        # in-place edit by a caller must not reach them (a copy of all 60,000 images costs ~10 ms)
        n = len(images) if limit is None else max(0, min(int(limit), len(images)))
        return ImageSet(images[:n].clone(), labels[:n].clone(), info.name)
    else:
        raise ValueError(f"split must be 'train', 'test' or 'all', not {split!r}.")
    return out.head(limit) if limit is not None else out


@lru_cache(maxsize=8)
def _load_cached(name: str, split: str, root: str, download: bool) -> tuple[torch.Tensor, torch.Tensor]:
    import torchvision.datasets as tvd

    info = DATASETS[name]
    raw = Path(root) / info.folder / "raw"
    paths = [raw / f for f in _FILES[split]]
    for p in paths:  # the .gz files torchvision downloads, without the unpacked ones: unpack them
        if not p.exists() and (p.parent / (p.name + ".gz")).exists():
            _unpack(p.parent / (p.name + ".gz"), p)
    missing = [p for p in paths if not p.exists()]
    if missing:
        if not download:
            raise _missing_error(info, Path(root), missing)
        try:  # torchvision fetches both splits; it needs the network
            getattr(tvd, info.folder)(root, train=(split == "train"), download=True)
        except Exception as exc:  # offline, proxy, mirror down...
            raise _missing_error(info, Path(root), missing, exc) from exc
    dims_img = _read_idx_header(paths[0], "images")
    dims_lbl = _read_idx_header(paths[1], "labels")
    if dims_img[0] != dims_lbl[0]:
        raise DataError(f"{paths[0]} has {dims_img[0]} images but {paths[1]} has {dims_lbl[0]} labels; one of them is wrong.")
    from torchvision.datasets.mnist import read_image_file, read_label_file

    try:  # torchvision's own readers (what its dataset classes call), on this split's two files only
        images, labels = read_image_file(str(paths[0])).contiguous(), read_label_file(str(paths[1])).long().contiguous()
    except OSError as exc:
        raise _unreadable(Path(exc.filename) if exc.filename else raw, exc) from None
    if labels.numel() and (labels.min() < 0 or labels.max() >= len(info.classes)):
        raise DataError(f"{paths[1]} holds labels outside 0..{len(info.classes) - 1}; the file is corrupt.")
    return images, labels


def train_val_split(data: ImageSet, val_size: float | int = 0.1, seed: int = 0) -> tuple[ImageSet, ImageSet]:
    """Split deterministically into train and validation parts.

    Parameters
    ----------
    val_size : float or int
        Fraction (0 < f < 1) or number of examples for validation.
    seed : int
        The same seed always gives the same split.
    """
    n = len(data)
    n_val = int(round(val_size * n)) if isinstance(val_size, float) else int(val_size)
    if not 0 < n_val < n:
        raise ValueError(f"val_size={val_size!r} leaves no training or no validation data for {n} examples.")
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return data.subset(perm[n_val:].sort().values), data.subset(perm[:n_val].sort().values)


def kfold_indices(n: int, k: int = 5, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """Shuffled k-fold (train_index, val_index) pairs, identical for the same seed.

    Thin wrapper over :class:`sklearn.model_selection.KFold` so folds are reproducible
    from a single integer.
    """
    from sklearn.model_selection import KFold

    if not 2 <= k <= n:
        raise ValueError(f"k must be between 2 and n={n}, got {k}.")
    return list(KFold(n_splits=k, shuffle=True, random_state=seed).split(np.arange(n)))


def normalization(spec="standard", dataset: str = "mnist") -> tuple[float, float]:
    """Return ``(mean, std)`` applied to pixels in [0, 1].

    ``"standard"``: the dataset's constants (0.1307, 0.3081 for MNIST); ``"unit"``: pixels
    left in [0, 1]; ``"symmetric"``: pixels mapped to [-1, 1]; or an explicit pair.
    """
    if isinstance(spec, (tuple, list)) and len(spec) == 2:
        return float(spec[0]), float(spec[1])
    if spec == "standard":
        info = dataset_info(dataset)
        return info.mean, info.std
    if spec == "unit":
        return 0.0, 1.0
    if spec == "symmetric":
        return 0.5, 0.5
    raise ValueError(f"normalize must be 'standard', 'unit', 'symmetric' or (mean, std), not {spec!r}.")


def _tensor(value, what: str) -> torch.Tensor:
    """``value`` as a tensor (arrays, lists and tensors), or a TypeError naming ``what`` it should have been."""
    if isinstance(value, torch.Tensor):
        return value
    try:
        return torch.as_tensor(np.asarray(value))
    except (TypeError, ValueError, RuntimeError):
        raise TypeError(f"{what} must be an array or a tensor, not {type(value).__name__}.") from None


def pixels_to_uint8(images: torch.Tensor) -> torch.Tensor:
    """Pixels as uint8 0-255, refusing what is not a raw image.

    Parameters
    ----------
    images : torch.Tensor
        uint8 (kept as it is), other integers in 0-255, or floats in [0, 1] (scaled by 255). The
        first axis counts the images.

    Returns
    -------
    torch.Tensor
        uint8, same shape.

    Raises
    ------
    ValueError
        NaN or infinite pixels (naming how many images hold them), or pixels outside the range,
        e.g. images normalised already (the model normalises them itself, as its ``preprocessing``
        declares).
    TypeError
        Boolean or complex pixels.
    """
    if images.dtype == torch.uint8:
        return images
    if images.dtype == torch.bool or images.is_complex():
        raise TypeError(f"Pixels must be uint8 0-255 or floats in [0, 1], not {images.dtype}.")
    if images.numel() == 0:
        return images.to(torch.uint8)
    per_image = images.reshape(len(images), -1) if images.ndim > 1 else images.reshape(1, -1)
    if images.is_floating_point():
        bad = int((~torch.isfinite(per_image)).any(1).sum())
        if bad:
            raise ValueError(f"{bad} of {len(per_image)} images hold NaN or infinite pixels; drop or repair them "
                             "(e.g. np.nan_to_num) first.")
    lo, hi = float(images.min()), float(images.max())
    if images.is_floating_point() and not (0.0 <= lo and hi <= 1.0):
        why = ("they look normalised already: pass the raw images, the model normalises them itself" if lo < 0
               else "divide them by 255, or pass them as uint8")
        raise ValueError(f"Pixels must be uint8 0-255 or floats in [0, 1]; these floats run from {lo:.3g} to "
                         f"{hi:.3g}: {why}.")
    if not images.is_floating_point() and not (0 <= lo and hi <= 255):
        raise ValueError(f"Pixels must be uint8 0-255 or floats in [0, 1]; these integers run from {lo:.0f} to "
                         f"{hi:.0f}, outside 0-255.")
    return (images * 255.0).round().to(torch.uint8) if images.is_floating_point() else images.to(torch.uint8)


def as_imageset(data, dataset: str = "mnist", *, need_labels: bool = False) -> ImageSet:
    """Accept an :class:`ImageSet`, an ``(images, labels)`` pair or bare images.

    Parameters
    ----------
    data : ImageSet, (images, labels) or images
        Images as a tensor, an array or a list of images: uint8 0-255, other integers in 0-255 or
        floats in [0, 1] (see :func:`pixels_to_uint8`), shaped (N, 28, 28), (N, 1, 28, 28) or one
        image (28, 28).
    dataset : str
        The dataset of bare images (fixes class names and normalisation constants).
    need_labels : bool
        Refuse bare images (anything that trains or scores needs labels). Otherwise they get
        placeholder labels 0, for prediction.

    Returns
    -------
    ImageSet

    Raises
    ------
    TypeError
        ``data`` is a path or string, or not images at all.
    ValueError
        Images without labels where ``need_labels``; NaN, infinite or out-of-range pixels;
        a wrong shape.
    """
    if isinstance(data, ImageSet):
        return data
    if isinstance(data, (str, bytes, os.PathLike)):
        raise TypeError(f"Expected images (an ImageSet, (images, labels) or an array (N, 28, 28)), not the "
                        f"{'path' if isinstance(data, os.PathLike) else 'string'} {str(data)!r}: read image files "
                        "with ml.to_mnist(path), a dataset with ml.load_dataset(name).")
    pair = isinstance(data, (tuple, list)) and len(data) == 2 and np.ndim(data[0]) >= 2 and np.ndim(data[1]) <= 1
    images, labels = data if pair else (data, None)
    images = _tensor(images, "images")
    if images.ndim == 4 and images.shape[1] == 1:
        images = images[:, 0]
    if images.ndim == 2:  # one image
        images = images[None]
    images = pixels_to_uint8(images)
    if labels is None:
        if need_labels:
            raise ValueError("These images come without labels, and training or scoring needs them: pass an ImageSet "
                             "(ml.load_dataset(...) or ml.ImageSet(images, labels)) or a pair (images, labels); "
                             "only predict, predict_classes and features take bare images.")
        labels = torch.zeros(len(images), dtype=torch.long)
    return ImageSet(images, _tensor(labels, "labels").reshape(-1), dataset)


def sample_indices(labels: Sequence[int] | torch.Tensor, per_class: int, seed: int = 0) -> torch.Tensor:
    """Up to ``per_class`` random indices of every class, sorted (a stratified subset)."""
    labels = torch.as_tensor(labels)
    g = torch.Generator().manual_seed(seed)
    picks = []
    for c in labels.unique():
        idx = (labels == c).nonzero().flatten()
        picks.append(idx[torch.randperm(len(idx), generator=g)[:per_class]])
    return torch.cat(picks).sort().values
