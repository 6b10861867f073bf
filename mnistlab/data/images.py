"""Turn any picture of a digit into a 28x28 uint8 image prepared the way MNIST was.

MNIST digits are light on a dark background, size-normalised to fit a 20x20 box (aspect
ratio kept, anti-aliased) and placed in a 28x28 frame so that their centre of mass is at the
centre. :func:`to_mnist` repeats those steps for photos, scans and drawings of any size or
colour. Part of the data layer: imports nothing else from the package but the file check of
:mod:`mnistlab.data.datasets`.
"""
from __future__ import annotations

import os
import warnings
from typing import NamedTuple
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from scipy import ndimage as ndi
from PIL import Image, ImageOps

from .datasets import not_a_regular_file

__all__ = ["to_mnist", "load_images"]


_HIGH_DEPTH = ("I", "F", "I;16", "I;16L", "I;16B", "I;16N")


class _MultiFrame(Exception):
    """Raised inside :func:`_open` for an animation or a multi-page file (the argument: its frame count)."""


class _Blank(ValueError):
    """An image with no ink; the message says why (transparent, one flat colour...)."""


def _open(path: Path) -> Image.Image:
    """Open an image file and read its pixels; one clear error for anything Pillow cannot read."""
    what = not_a_regular_file(path)  # a FIFO or a device would be read forever
    if what == "a folder" or not path.exists():
        raise FileNotFoundError(f"No image at {path}." if not path.exists() else f"{path} is a folder, not an image.")
    if what:
        raise ValueError(f"{path} is {what}, not an image file; save the picture to a file and give that.")
    try:
        with warnings.catch_warnings():
            # between Pillow's warning and error limits a large photo is fine: it is shrunk to 28x28
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as source:
                frames = getattr(source, "n_frames", 1)
                if frames > 1:
                    raise _MultiFrame(frames)
                source.load()
                image = ImageOps.exif_transpose(source)  # phone photos: upright as the camera saw them (a copy)
    except _MultiFrame as exc:
        raise ValueError(f"{path} holds {exc.args[0]} frames (an animation or a multi-page file); save the one "
                         "digit you mean as a single-frame image.") from None
    except Image.DecompressionBombError as exc:
        raise ValueError(f"{path} is too large to be a digit ({exc})") from None
    except OSError as exc:
        if isinstance(exc, PermissionError):
            raise ValueError(f"{path} cannot be read: permission denied.") from None
        raise ValueError(f"{path} is not a readable image ({exc}).") from None
    except Exception as exc:  # Pillow raises many kinds on corrupt files
        raise ValueError(f"{path} is not a readable image ({type(exc).__name__}: {exc}).") from None
    return image


def _stretch(arr: np.ndarray) -> np.ndarray:
    """High bit-depth or float pixels -> uint8, keeping their order (the digit's contrast is normalised later)."""
    arr = np.nan_to_num(arr.astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    if arr.size and arr.min() >= 0 and arr.max() <= 1.0 and arr.dtype.kind == "f":
        return np.round(arr * 255.0).astype(np.uint8)  # floats in [0, 1]
    lo, hi = (float(arr.min()), float(arr.max())) if arr.size else (0.0, 0.0)
    if lo >= 0 and hi <= 255:
        return np.round(arr).astype(np.uint8)
    if hi == lo:
        return np.zeros(arr.shape, np.uint8)
    return np.round((arr - lo) / (hi - lo) * 255.0).astype(np.uint8)


def _flatten_alpha(image: Image.Image) -> Image.Image:
    """Composite a transparent image onto paper that contrasts with its ink.

    Ink drawn only in the alpha channel (one colour, varying opacity) is put on paper of the
    opposite brightness, so black and white ink on a transparent background both survive;
    a drawing whose opaque pixels vary in colour goes on white paper.
    """
    rgba = image.convert("RGBA")
    arr = np.asarray(rgba, dtype=np.float32)
    alpha = arr[..., 3]
    if alpha.max() == 0:
        raise _Blank("every pixel is fully transparent")
    if alpha.min() == 255:
        return rgba.convert("RGB")
    lum = np.asarray(rgba.convert("RGB").convert("L"), dtype=np.float32)
    seen = alpha > 127 if (alpha > 127).any() else alpha > 0
    ink = float(np.median(lum[seen]))
    paper = 255 if ink < 128 else 0
    if float(lum[seen].std()) > 32:  # a coloured drawing with transparent margins: white paper
        paper = 255
    background = Image.new("RGBA", rgba.size, (paper, paper, paper, 255))
    return Image.alpha_composite(background, rgba).convert("RGB")


def _to_gray(image) -> Image.Image:
    if isinstance(image, (str, os.PathLike)):
        image = _open(Path(image))
    elif isinstance(image, torch.Tensor):
        image = image.detach().cpu().numpy()
    if isinstance(image, np.ndarray):
        arr = image
        if arr.ndim == 3 and arr.shape[0] in (1, 3, 4) and arr.shape[-1] not in (1, 3, 4):
            arr = np.moveaxis(arr, 0, -1)  # CHW -> HWC
        if arr.ndim == 3 and arr.shape[-1] == 1:
            arr = arr[..., 0]
        if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[-1] not in (3, 4)):
            raise ValueError(f"Expected an image array of shape (H, W), (H, W, 3) or (H, W, 4), got {arr.shape}.")
        if arr.dtype == bool:
            arr = arr.astype(np.uint8) * 255
        if arr.dtype != np.uint8:
            arr = _stretch(arr)
        image = Image.fromarray(arr)
    if not isinstance(image, Image.Image):
        raise TypeError(f"to_mnist takes a path, PIL image, NumPy array or tensor, not {type(image).__name__}.")
    if image.width < 1 or image.height < 1:
        raise ValueError(f"The image is empty ({image.width}x{image.height} pixels).")
    if image.mode in _HIGH_DEPTH:  # 16-bit, 32-bit and float pixels: Pillow's convert("L") would clip them
        return Image.fromarray(_stretch(np.asarray(image)))
    if image.mode == "LAB":
        return image.getchannel("L")
    if image.mode in ("RGBA", "LA", "PA", "La", "RGBa") or (image.mode in ("P", "L", "RGB", "1")
                                                            and "transparency" in image.info):
        image = _flatten_alpha(image.convert("RGBA") if image.mode in ("La", "RGBa") else image)
    try:
        return image.convert("L")
    except ValueError:
        return image.convert("RGB").convert("L")


def _read_gray(image) -> tuple[np.ndarray, str]:
    """The picture as float32 grey levels 0-255, and the prefix naming it in errors (its path, or "")."""
    where = f"{image}: " if isinstance(image, (str, os.PathLike)) else ""
    try:
        return np.asarray(_to_gray(image), dtype=np.float32), where
    except _Blank as exc:
        raise ValueError(f"{where}the image is blank: {exc}.") from None


def _border(a: np.ndarray) -> np.ndarray:
    """The pixels along the picture's four edges."""
    return np.concatenate([a[0], a[-1], a[:, 0], a[:, -1]])


def _light_border(gray: np.ndarray) -> bool:
    """Whether the picture's border is light (dark ink on light paper, to be inverted for MNIST)."""
    return float(np.median(_border(gray))) > 127


def is_clean(gray: np.ndarray) -> bool:
    """Whether a grayscale picture is clean: small (at most 64 px a side), or on paper of one exact value.

    Drawings, renders, screenshots and MNIST-style images have a background of one grey value (at
    least half the pixels share it); a photo or a scan has grain, noise and shading, so no value
    covers that much.

    Parameters
    ----------
    gray : numpy.ndarray (H, W)
        uint8 pixels.

    Returns
    -------
    bool
    """
    gray = np.asarray(gray)
    if max(gray.shape) <= 64:
        return True
    values = np.round(gray).astype(np.int64).clip(0, 255).ravel()
    return bool(np.bincount(values, minlength=256).max() >= 0.5 * values.size)


def to_mnist(image, invert: bool | None = None, threshold: float = 0.2, photo: bool | None = None) -> torch.Tensor:
    """Convert one image to a 28x28 uint8 MNIST-style digit.

    Parameters
    ----------
    image : path, PIL.Image, numpy.ndarray or torch.Tensor
        Any size, grayscale or colour, 1 to 32 bits per pixel or float. Transparent images are put on
        paper that contrasts with their ink (ink drawn only in the alpha channel works in black or white).
    invert : bool, optional
        Whether to invert; by default the image is inverted when its border is light
        (dark ink on light paper), because MNIST digits are light on dark.
    threshold : float
        Fraction of the maximum ink below which pixels count as background when the
        digit's bounding box is found.
    photo : bool, optional
        ``True``: treat the picture as a photo (paper divided out, ruled lines, specks and other
        marks removed, strokes brought to MNIST's width: :func:`find_digits`; the largest digit
        found is returned). ``False``: MNIST's steps only (crop to the ink, fit 20x20, centre of
        mass at the centre). By default a photo unless the picture is clean (:func:`is_clean`).

    Returns
    -------
    torch.Tensor
        uint8 (28, 28): the digit fitted into 20x20 and centred by its centre of mass.

    Raises
    ------
    ValueError
        If the image holds no ink (blank), no digit can be found in a photo, or it cannot be read.
    """
    gray, where = _read_gray(image)
    if photo is None:
        photo = not is_clean(gray)
    if photo:
        found = find_digits(gray.astype(np.uint8), invert=invert, threshold=threshold)
        if not len(found):
            raise ValueError(f"{where}no digit found: nothing stands out from the paper (the ink is too faint, "
                             "or the picture holds only paper); photograph the digit larger and in focus.")
        return found.images[found.largest()]
    if invert is None:
        invert = _light_border(gray)
    ink = 255.0 - gray if invert else gray
    ink = ink - np.median(_border(ink))  # paper may be grey
    ink = np.clip(ink, 0, None)
    if ink.max() <= 0:
        flat = gray.min() == gray.max()
        raise ValueError(f"{where}the image is blank: " + (
            f"every pixel has the same value ({gray.min():.0f} of 255)" if flat
            else "no pixel stands out from the background") + "; there is no digit to read.")
    return _frame(ink, threshold)


def _frame(ink: np.ndarray, threshold: float) -> torch.Tensor:
    """MNIST's own steps: crop to the ink, fit into 20x20 keeping the aspect ratio, centre of mass at the centre."""
    rows = np.flatnonzero((ink > threshold * ink.max()).any(1))
    cols = np.flatnonzero((ink > threshold * ink.max()).any(0))
    crop = ink[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
    crop = crop / crop.max() * 255.0
    h, w = crop.shape
    scale = 20.0 / max(h, w)
    new_h, new_w = max(1, round(h * scale)), max(1, round(w * scale))
    fitted = np.asarray(Image.fromarray(crop.astype(np.float32), mode="F").resize((new_w, new_h), Image.LANCZOS))
    fitted = np.clip(fitted, 0, 255)
    total = fitted.sum()
    ys, xs = np.indices(fitted.shape)
    cy, cx = (ys * fitted).sum() / total, (xs * fitted).sum() / total
    top = int(np.clip(round(13.5 - cy), 0, 28 - new_h))
    left = int(np.clip(round(13.5 - cx), 0, 28 - new_w))
    canvas = np.zeros((28, 28), dtype=np.float32)
    canvas[top:top + new_h, left:left + new_w] = fitted
    return torch.from_numpy(np.round(canvas).astype(np.uint8))


def load_images(paths, **kwargs) -> torch.Tensor:
    """Apply :func:`to_mnist` to several images.

    Parameters
    ----------
    paths : sequence of path, PIL.Image, numpy.ndarray or torch.Tensor
    **kwargs
        Passed to :func:`to_mnist` (``invert``, ``threshold``).

    Returns
    -------
    torch.Tensor
        uint8 (N, 28, 28).

    Raises
    ------
    ValueError
        On the first image that is blank or unreadable; the message names it (``mnistlab predict``
        converts images one by one instead, so one bad file does not stop the others).
    """
    return torch.stack([to_mnist(p, **kwargs) for p in paths])


# --------------------------------------------------------------------------------------------
# Synthetic digits: typed in fonts and drawn as strokes (new test material for a trained model)
# --------------------------------------------------------------------------------------------

TYPED_DIGITS = ((2, "DejaVuSans", 0), (3, "DejaVuSerif", 8), (5, "DejaVuSansMono", -6), (6, "DejaVuSans", 5),
                (8, "DejaVuSerif", 0))
"""(digit, font, rotation in degrees) of the typed digits of :func:`render_digits`."""

DRAWN_DIGITS = {0: [("ellipse", (40, 20, 100, 130))], 1: [("line", [(60, 30), (80, 18), (80, 135)])],
                4: [("line", [(90, 135), (90, 20), (30, 100), (115, 100)])],
                7: [("line", [(30, 25), (110, 25), (60, 135)])]}
"""Pen strokes (PIL ``ImageDraw`` shapes on a 140x150 page) of the drawn digits of :func:`render_digits`."""


def _font_path(name: str) -> Path:
    """A DejaVu TrueType file: matplotlib ships the family (found without importing matplotlib)."""
    import importlib.util

    candidates = []
    spec = importlib.util.find_spec("matplotlib")
    if spec is not None and spec.origin:
        candidates.append(Path(spec.origin).parent / "mpl-data" / "fonts" / "ttf" / f"{name}.ttf")
    candidates.append(Path("/usr/share/fonts/truetype/dejavu") / f"{name}.ttf")
    for path in candidates:
        if path.is_file():
            return path
    raise FileNotFoundError(f"Font {name}.ttf not found (looked in {[str(c.parent) for c in candidates]}); "
                            "install matplotlib or the DejaVu fonts.")


def render_digits(typed=TYPED_DIGITS, drawn=DRAWN_DIGITS, stroke: int = 12):
    """Digits typed in fonts and drawn as pen strokes, converted to MNIST style with :func:`to_mnist`.

    Parameters
    ----------
    typed : sequence of (digit, font name, rotation in degrees)
        Black text on white paper, rendered with PIL from the DejaVu TrueType fonts.
    drawn : dict of digit -> list of ("line", points) or ("ellipse", box)
        Strokes on a 140x150 white page.
    stroke : int
        Pen width in pixels of the drawn digits.

    Returns
    -------
    images : torch.Tensor
        uint8 (N, 28, 28), light digits on dark, prepared as MNIST was.
    labels : torch.Tensor
        int64 (N,), the true digits.
    captions : list of str
        How each was made, e.g. "typed, DejaVuSerif, 8°" or "drawn".
    """
    from PIL import ImageDraw, ImageFont

    pages, labels, captions = [], [], []
    for digit, font, angle in typed:
        page = Image.new("L", (120, 120), 255)
        ImageDraw.Draw(page).text((60, 60), str(digit), fill=0, anchor="mm",
                                  font=ImageFont.truetype(str(_font_path(font)), 80))
        pages.append(page.rotate(angle, resample=Image.BICUBIC, fillcolor=255))
        labels.append(int(digit))
        captions.append(f"typed, {font}" + (f", {angle:+d}°" if angle else ""))
    for digit, shapes in drawn.items():
        page = Image.new("L", (140, 150), 255)
        pen = ImageDraw.Draw(page)
        for kind, xy in shapes:
            if kind == "ellipse":
                pen.ellipse(xy, outline=0, width=stroke)
            elif kind == "line":
                pen.line(xy, fill=0, width=stroke, joint="curve")
            else:
                raise ValueError(f"A stroke is ('line', points) or ('ellipse', box), not {kind!r}.")
        pages.append(page)
        labels.append(int(digit))
        captions.append("drawn")
    if not pages:
        raise ValueError("render_digits needs at least one typed or drawn digit.")
    return torch.stack([to_mnist(p) for p in pages]), torch.tensor(labels, dtype=torch.int64), captions


__all__ += ["render_digits", "TYPED_DIGITS", "DRAWN_DIGITS"]


# --------------------------------------------------------------------------------------------
# Photos: divide out the paper, threshold, drop ruled lines and specks, group strokes into digits
# --------------------------------------------------------------------------------------------

_WORK = 400
"""Photos are reduced to at most this many pixels on their longer side before they are segmented."""

MNIST_STROKE = 0.13
"""MNIST's median stroke width as a fraction of the digit's longer side (measured on its test split)."""


@dataclass
class Digits:
    """What :func:`find_digits` saw in a picture: each preprocessing step, and the digits left to right.

    Attributes
    ----------
    steps : dict of str -> numpy.ndarray
        ``"gray"`` (the picture, 0-1), ``"paper"`` (the estimated paper, shadows included),
        ``"ink"`` (ink with the paper divided out, 0-1), ``"mask"`` (thresholded ink),
        ``"cleaned"`` (ruled lines and specks removed), ``"digits"`` (an int label per pixel: 0 none, k the k-th digit).
    boxes : list of (top, left, bottom, right)
        Each digit's bounding box in the working image, left to right.
    images : torch.Tensor
        uint8 (K, 28, 28): each digit prepared as MNIST was.
    stroke : list of float
        Each digit's stroke width before normalisation, as a fraction of its longer side (MNIST: 0.13).
    lines : int
        How many ruled lines were found and removed.
    """

    steps: dict
    boxes: list
    images: torch.Tensor
    stroke: list
    lines: int = 0

    def __len__(self) -> int:
        return len(self.boxes)

    def largest(self) -> int:
        """Index of the digit with the largest bounding box (the one :func:`to_mnist` returns).

        Raises
        ------
        ValueError
            If no digit was found.
        """
        if not self.boxes:
            raise ValueError("no digit was found, so there is no largest one.")
        return int(np.argmax([(b - t) * (r - l) for t, l, b, r in self.boxes]))

    def __repr__(self) -> str:
        return f"Digits({len(self)} found, boxes={self.boxes}, ruled lines removed={self.lines})"


def _work_gray(gray: np.ndarray) -> np.ndarray:
    h, w = gray.shape
    scale = _WORK / max(h, w)
    if scale < 1:
        gray = np.asarray(Image.fromarray(gray.astype(np.float32), mode="F").resize(
            (max(1, round(w * scale)), max(1, round(h * scale))), Image.BOX))
    return np.clip(gray / 255.0, 0, 1)


def _remove_lines(ink: np.ndarray) -> tuple[np.ndarray, int]:
    """Find ruled lines (thin straight lines crossing the whole picture) and subtract them from the ink.

    Thin structures (what a grey opening with a disk of radius 3 removes) are thresholded and
    near-horizontal lines (within 30 degrees) found with a Hough transform; one counts when it has
    votes from at least 45% of the picture's width. Each line's own ink profile across it (the
    median over its length, so the few columns a digit crosses do not count) is subtracted, and the
    rest rescaled, so a digit's stroke that crosses a line keeps its ink.
    """
    from skimage.filters import threshold_otsu
    from skimage.morphology import disk
    from skimage.transform import hough_line, hough_line_peaks

    h, w = ink.shape
    if w < 64 or h < 16:
        return ink, 0
    thin = ink - ndi.grey_opening(ink, footprint=disk(3))
    if float(thin.max()) <= 0.05:
        return ink, 0
    found = thin > max(float(threshold_otsu(thin)), 0.05)
    angles = np.deg2rad(np.concatenate([np.linspace(-90, -60, 61), np.linspace(60, 89.5, 60)]))
    accumulator, thetas, dists = hough_line(found, theta=angles)
    _, thetas, dists = hough_line_peaks(accumulator, thetas, dists, min_distance=8, threshold=0.45 * w,
                                        num_peaks=80)
    out = ink.copy()
    ys, xs = np.mgrid[:h, :w]
    for theta, d in zip(thetas, dists):
        offset = np.rint(xs * np.cos(theta) + ys * np.sin(theta) - d).astype(int)
        near = np.abs(offset) <= 5
        bins = offset[near] + 5
        profile = np.array([np.median(ink[near][bins == k]) if (bins == k).any() else 0.0 for k in range(11)])
        level = np.clip(profile[bins], 0, 0.95)
        out[near] = np.clip((out[near] - level) / (1 - level), 0, 1)
    return out, len(thetas)


def _stroke_width(mask: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """The median stroke width of a mask (twice the distance to the edge along its skeleton), the skeleton and that distance."""
    from skimage.morphology import skeletonize

    skeleton = skeletonize(mask)
    inside = ndi.distance_transform_edt(mask)
    if not skeleton.any():
        return 1.0, skeleton, inside
    return float(2 * np.median(inside[skeleton]) - 1), skeleton, inside


class _Piece(NamedTuple):
    """A connected component of the ink mask: its label, bounding box (top, left, bottom, right), area,
    and whether it is a stray piece of ruled line (thin, within 30 degrees of horizontal, running
    off the edge of the picture, as the end of a line the Hough transform did not count does)."""
    label: int
    bbox: tuple
    area: int
    ruled: bool = False


def _pieces(labels: np.ndarray) -> list[_Piece]:
    from skimage.measure import regionprops

    h, w = labels.shape
    out = []
    for r in regionprops(labels):
        top, left, bottom, right = (int(v) for v in r.bbox)
        ruled = bool(r.axis_minor_length < 0.2 * r.axis_major_length and abs(r.orientation) > np.pi / 3
                     and (top == 0 or left == 0 or bottom == h or right == w))
        out.append(_Piece(r.label, (top, left, bottom, right), int(r.area), ruled))
    return out


def _box(group) -> tuple[int, int, int, int]:
    """(top, left, bottom, right) around a group of pieces."""
    return (min(x.bbox[0] for x in group), min(x.bbox[1] for x in group),
            max(x.bbox[2] for x in group), max(x.bbox[3] for x in group))


def _digit_groups(pieces: list[_Piece]) -> list[list[_Piece]]:
    """Drop specks and stray pieces of ruled line, and group the rest into digits.

    A piece counts if it is at least a fifth the extent of the largest, or if it is a piece of stroke
    inside (or just beside) one that counts. Pieces whose columns overlap by 40% and that sit above
    or below each other (a gap under 30% of the taller) form one digit (a 5's bar, a 4's open top).
    Groups under 12% of the largest group's area or 35% of the tallest's height are dropped.
    """
    pieces = [r for r in pieces if not r.ruled]
    extent = {r.label: max(r.bbox[2] - r.bbox[0], r.bbox[3] - r.bbox[1]) for r in pieces}
    largest = max(extent.values(), default=0)
    big = [r for r in pieces if extent[r.label] >= 0.2 * largest]

    def beside(r) -> bool:
        for b in big:
            m = 0.15 * extent[b.label]
            if (r.bbox[0] >= b.bbox[0] - m and r.bbox[2] <= b.bbox[2] + m and r.bbox[1] >= b.bbox[1] - m
                    and r.bbox[3] <= b.bbox[3] + m):
                return True
        return False

    pieces = big + [r for r in pieces if extent[r.label] < 0.2 * largest and r.area >= 6 and beside(r)]
    pieces.sort(key=lambda r: r.bbox[1])
    groups: list[list[_Piece]] = []
    for r in pieces:
        for grp in groups:
            top, left, bottom, right = _box(grp)
            overlap = min(right, r.bbox[3]) - max(left, r.bbox[1])
            gap = max(r.bbox[0] - bottom, top - r.bbox[2])  # above or below the group, not beside it
            if (overlap >= 0.4 * min(right - left, r.bbox[3] - r.bbox[1])
                    and gap <= 0.3 * max(bottom - top, r.bbox[2] - r.bbox[0])):
                grp.append(r)
                break
        else:
            groups.append([r])
    if not groups:
        return []
    areas = [sum(x.area for x in grp) for grp in groups]
    heights = [_box(grp)[2] - _box(grp)[0] for grp in groups]
    tall = max(heights)
    return [grp for grp, a, hh in zip(groups, areas, heights) if a >= 0.12 * max(areas) and hh >= 0.35 * tall]


def _faint_digits(smooth: np.ndarray, masks: list[np.ndarray], high: float) -> list[np.ndarray]:
    """Digits on the row of those found that are too faint for the first threshold (a thin pen, blurred).

    The row is the line through the found digits' centres. Away from them, the ink is thresholded
    again at half the first threshold and pieces closer than an eighth of a digit's height are
    joined; a cluster counts as a digit when its centre lies within half a digit's height of the
    row, it is at least 60% as tall as the found digits and at most twice as wide, and it is no
    further than two digit heights from them. Its strokes are then thresholded on their own (Otsu's
    threshold of the ink around them), so a faint digit gets a threshold of its own. Returns one
    mask per digit found.
    """
    from skimage.filters import apply_hysteresis_threshold, threshold_otsu
    from skimage.measure import label, regionprops
    from skimage.morphology import disk

    boxes = np.array([_mask_box(m) for m in masks], float)
    height = float(np.median(boxes[:, 2] - boxes[:, 0]))
    cy, cx = (boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2
    slope, intercept = np.polyfit(cx, cy, 1) if np.ptp(cx) > 0 else (0.0, float(cy.mean()))
    taken = ndi.binary_dilation(np.logical_or.reduce(masks), iterations=max(2, int(0.1 * height)))
    rest = np.where(taken, 0, smooth)
    mask = apply_hysteresis_threshold(rest, 0.25 * high, 0.5 * high)
    if not mask.any():
        return []
    reach = max(1, int(0.125 * height))
    clusters = label(ndi.binary_dilation(mask, disk(reach)), connectivity=2)
    found = []
    for region in regionprops(clusters):
        near = clusters == region.label
        ys, xs = np.nonzero(near & mask)
        if ys.size < 6:
            continue
        top, left, bottom, right = ys.min(), xs.min(), ys.max() + 1, xs.max() + 1
        x, y = (left + right) / 2, (top + bottom) / 2
        if not (abs(y - (slope * x + intercept)) <= 0.5 * height and bottom - top >= 0.6 * height
                and right - left <= 2 * height
                and boxes[:, 1].min() - 2 * height <= x <= boxes[:, 3].max() + 2 * height):
            continue
        values = rest[near]
        t = float(threshold_otsu(values)) if np.ptp(values) > 0 else 0.5 * high
        strokes = apply_hysteresis_threshold(np.where(near, rest, 0), 0.5 * t, t) | (mask & near)
        pieces = label(strokes, connectivity=2)
        big = np.bincount(pieces.ravel()) >= 6
        big[0] = False
        strokes = big[pieces]
        if strokes.any():
            found.append(strokes)
    return found


def _mask_box(m: np.ndarray) -> tuple[int, int, int, int]:
    """(top, left, bottom, right) around the True pixels of a mask."""
    rows, cols = np.flatnonzero(m.any(1)), np.flatnonzero(m.any(0))
    return int(rows[0]), int(cols[0]), int(rows[-1]) + 1, int(cols[-1]) + 1


def _split_touching(m: np.ndarray, height: float) -> list[np.ndarray]:
    """Split a digit's mask wider than 1.5 times ``height`` (the digits' median height): two digits
    touching, as a marker's thick strokes do. The cut is the column with the least ink in the middle
    40% of the mask, and the parts are split again while they are that wide."""
    top, left, bottom, right = _mask_box(m)
    if right - left <= 1.5 * height or bottom - top < 0.6 * height or right - left < 8:
        return [m]
    ink = m[:, left:right].sum(0).astype(float)
    lo, hi = int(0.3 * (right - left)), int(0.7 * (right - left))
    middle = np.arange(lo, hi + 1)
    cut = left + int(middle[np.lexsort((np.abs(middle - (right - left) / 2), ink[middle]))[0]])
    cols = np.arange(m.shape[1])
    return [part for side in (m & (cols < cut), m & (cols >= cut)) if side.any()
            for part in _split_touching(side, height)]


def _merge_stacked(masks: list[np.ndarray]) -> list[np.ndarray]:
    """Join neighbouring pieces that are each under 75% of the digits' median height and sit one
    above the other (rows overlapping by under 30% of the shorter), when together they are no taller
    than 1.3 and no wider than 1.2 median heights: a digit whose strokes broke apart (an 8's loops,
    a 3's halves). Needs three or more digits, so that the median is a whole digit's height."""
    if len(masks) < 3:
        return masks
    boxes = [_mask_box(m) for m in masks]
    height = float(np.median([b[2] - b[0] for b in boxes]))
    out, i = [], 0
    while i < len(masks):
        if i + 1 < len(masks):
            (t1, l1, b1, r1), (t2, l2, b2, r2) = boxes[i], boxes[i + 1]
            rows = min(b1, b2) - max(t1, t2)
            if (max(b1 - t1, b2 - t2) < 0.75 * height and rows < 0.3 * min(b1 - t1, b2 - t2)
                    and max(b1, b2) - min(t1, t2) <= 1.3 * height and max(r1, r2) - min(l1, l2) <= 1.2 * height):
                out.append(masks[i] | masks[i + 1])
                i += 2
                continue
        out.append(masks[i])
        i += 1
    return out


def find_digits(image, invert: bool | None = None, threshold: float = 0.2) -> Digits:
    """Find every digit in a picture (a photo of paper, a scan, a drawing), left to right.

    The paper is estimated by a grey closing larger than any stroke and divided out (shadows,
    tint and gradients go), the ink is thresholded with hysteresis relative to its strongest
    strokes, ruled lines are found with a Hough transform and erased, specks are dropped, and
    the remaining connected components are grouped into digits by overlapping columns (a 5's
    bar stays with its body). Strokes far thinner or thicker than MNIST's are redrawn at
    MNIST's width along their skeleton; then each digit gets MNIST's own steps.

    Parameters
    ----------
    image : path, PIL.Image, numpy.ndarray or torch.Tensor
    invert : bool, optional
        As for :func:`to_mnist`.
    threshold : float
        As for :func:`to_mnist` (the bounding box of each digit's ink).

    Returns
    -------
    Digits
        The steps, boxes and (K, 28, 28) images; K is 0 when nothing stands out from the paper.

    Raises
    ------
    ValueError
        If the image cannot be read or is blank.
    """
    from skimage.filters import apply_hysteresis_threshold, threshold_otsu
    from skimage.measure import label

    gray, where = _read_gray(image)
    if invert is None:
        invert = _light_border(gray)
    g = _work_gray(gray if invert else 255.0 - gray)  # dark ink on light paper from here on
    h, w = g.shape
    size = max(7, int(min(h, w) / 5)) | 1
    paper = ndi.uniform_filter(ndi.grey_closing(g, size=(size, size)), size)
    ink = np.clip(1.0 - g / np.maximum(paper, 1e-3), 0, 1)
    steps = {"gray": g, "paper": paper, "ink": ink}
    ink, lines = _remove_lines(ink)
    steps["unlined"] = ink
    smooth = ndi.gaussian_filter(ink, 1.0)
    strongest = float(np.percentile(smooth, 99.9))
    if strongest < 0.04:  # nothing darker than the paper by 4%
        steps.update(mask=np.zeros_like(ink, bool), cleaned=np.zeros_like(ink, bool), digits=np.zeros(ink.shape, int))
        return Digits(steps, [], torch.zeros((0, 28, 28), dtype=torch.uint8), [], lines)
    high = max(threshold_otsu(smooth), 0.35 * strongest)
    mask = apply_hysteresis_threshold(smooth, 0.5 * high, high)
    labels = label(mask, connectivity=2)
    groups = _digit_groups(_pieces(labels))
    masks = [np.isin(labels, [x.label for x in grp]) for grp in groups]
    if len(masks) >= 2:
        masks += _faint_digits(smooth, masks, high)
    if len(masks) >= 2:  # one digit alone has nothing to be compared with
        height = float(np.median([b[2] - b[0] for b in map(_mask_box, masks)]))
        masks = [part for m in masks for part in _split_touching(m, height)]
    masks.sort(key=lambda m: _mask_box(m)[1])
    masks = _merge_stacked(masks)
    digit_map = np.zeros(ink.shape, int)
    boxes, images, strokes = [], [], []
    for k, m in enumerate(masks, start=1):
        digit_map[m] = k
        top, left, bottom, right = _mask_box(m)
        side = max(bottom - top, right - left)
        width, skeleton, inside = _stroke_width(m)
        strokes.append(width / side)
        if not 0.6 * MNIST_STROKE <= width / side <= 1.6 * MNIST_STROKE:
            # eroded or dilated to MNIST's width (the signed distance to the stroke's edge, shifted);
            # the skeleton, drawn at half that width, keeps the parts thinner than the median
            signed = inside - ndi.distance_transform_edt(~m)
            target = MNIST_STROKE * side
            digit = np.clip(signed - (width - target) / 2 + 0.5, 0, 1)
            digit = np.maximum(digit, np.clip(target / 4 + 0.5 - ndi.distance_transform_edt(~skeleton), 0, 1))
        else:
            near = ndi.binary_dilation(m, iterations=2)
            digit = np.where(near, ink, 0.0)
            digit = np.clip(digit / max(float(np.percentile(digit[m], 90)), 1e-3), 0, 1)
        boxes.append((int(top), int(left), int(bottom), int(right)))
        pad = int(0.3 * side)
        crop = digit[max(top - pad, 0):bottom + pad, max(left - pad, 0):right + pad]
        images.append(_frame(crop, threshold))
    steps.update(mask=mask, cleaned=digit_map > 0, digits=digit_map)
    stack = torch.stack(images) if images else torch.zeros((0, 28, 28), dtype=torch.uint8)
    return Digits(steps, boxes, stack, strokes, lines)


__all__ += ["find_digits", "Digits", "MNIST_STROKE", "is_clean"]
