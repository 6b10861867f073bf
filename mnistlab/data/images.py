"""Turn any picture of a digit into a 28x28 uint8 image prepared the way MNIST was.

MNIST digits are light on a dark background, size-normalised to fit a 20x20 box (aspect
ratio kept, anti-aliased) and placed in a 28x28 frame so that their centre of mass is at the
centre. :func:`to_mnist` repeats those steps for photos, scans and drawings of any size or
colour. Part of the data layer: imports nothing else from the package.
"""
from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps

__all__ = ["to_mnist", "load_images"]


_HIGH_DEPTH = ("I", "F", "I;16", "I;16L", "I;16B", "I;16N")


class _MultiFrame(Exception):
    """Raised inside :func:`_open` for an animation or a multi-page file (the argument: its frame count)."""


class _Blank(ValueError):
    """An image with no ink; the message says why (transparent, one flat colour...)."""


def _open(path: Path) -> Image.Image:
    """Open an image file and read its pixels; one clear error for anything Pillow cannot read."""
    if not path.is_file():
        raise FileNotFoundError(f"No image at {path}." if not path.exists() else f"{path} is a folder, not an image.")
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


def to_mnist(image, invert: bool | None = None, threshold: float = 0.2) -> torch.Tensor:
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

    Returns
    -------
    torch.Tensor
        uint8 (28, 28): the digit fitted into 20x20 and centred by its centre of mass.

    Raises
    ------
    ValueError
        If the image holds no ink (blank), or cannot be read.
    """
    where = f"{image}: " if isinstance(image, (str, os.PathLike)) else ""
    try:
        gray = np.asarray(_to_gray(image), dtype=np.float32)
    except _Blank as exc:
        raise ValueError(f"{where}the image is blank: {exc}.") from None
    if invert is None:
        border = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
        invert = float(np.median(border)) > 127
    ink = 255.0 - gray if invert else gray
    ink = ink - np.median(np.concatenate([ink[0], ink[-1], ink[:, 0], ink[:, -1]]))  # paper may be grey
    ink = np.clip(ink, 0, None)
    if ink.max() <= 0:
        flat = gray.min() == gray.max()
        raise ValueError(f"{where}the image is blank: " + (
            f"every pixel has the same value ({gray.min():.0f} of 255)" if flat
            else "no pixel stands out from the background") + "; there is no digit to read.")
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
