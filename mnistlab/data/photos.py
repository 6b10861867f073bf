"""Phone-like photos of MNIST digits: a reproducible test bed for reading handwriting off paper.

A person photographing a digit they wrote gives a picture nothing like MNIST's: coloured ink
on cream or lined paper, a shadow across the page, the page tilted and rotated, a thin pen or a
thick marker, the digit small on a big page, specks of dirt, camera blur and a heavily
compressed JPEG. :func:`make_photo` renders an MNIST digit (the *test* split, so a model
has never seen it) that way, every choice drawn from one seeded generator and returned, so a
failure can be traced to what caused it. :func:`make_number_photo` writes several digits on one
page, left to right. Part of the data layer: imports nothing else from the package.

Examples
--------
>>> import numpy as np
>>> from mnistlab.data.photos import make_photo
>>> digit = np.zeros((28, 28), np.uint8); digit[4:24, 13:16] = 255     # a "1"
>>> photo, settings = make_photo(digit, seed=0)
>>> photo.shape[2], photo.dtype.name
(3, 'uint8')
"""
from __future__ import annotations

import io

import numpy as np
from PIL import Image
from scipy import ndimage as ndi

__all__ = ["INKS", "PAPERS", "make_photo", "make_number_photo", "make_photos", "make_number_photos"]

INKS = {"black": (28, 28, 34), "blue": (25, 45, 150), "red": (175, 30, 35)}
"""Pen colours (RGB) a photo is written in."""

PAPERS = {"white": (244, 244, 238), "cream": (248, 238, 212), "lined": (246, 246, 240)}
"""Paper colours (RGB); ``"lined"`` also gets light blue ruled lines."""

_LINE_RGB = (150, 178, 225)


def _as_digit(digit) -> np.ndarray:
    arr = np.asarray(digit.numpy() if hasattr(digit, "numpy") else digit)
    if arr.shape != (28, 28):
        raise ValueError(f"A digit is a (28, 28) MNIST image, got shape {arr.shape}.")
    return arr.astype(np.float32) / (255.0 if arr.dtype == np.uint8 else max(float(arr.max()), 1e-6))


def _pen(digit: np.ndarray, height: int, stroke: float) -> np.ndarray:
    """The digit as ink coverage in [0, 1], ``height`` pixels tall, its strokes ``stroke`` times MNIST's width."""
    scale = height / 20.0  # MNIST digits fill 20 of their 28 pixels
    size = max(8, int(round(28 * scale)))
    big = np.asarray(Image.fromarray(digit, mode="F").resize((size, size), Image.BICUBIC))
    big = np.clip(big, 0, 1)
    radius = abs(stroke - 1.0) * 1.3 * scale
    if radius >= 0.5:  # thicker (a marker) or thinner (a fine pen) than MNIST's strokes
        r = int(round(radius))
        yy, xx = np.mgrid[-r:r + 1, -r:r + 1]
        disk = xx ** 2 + yy ** 2 <= r * r
        if stroke > 1:
            big = ndi.grey_dilation(big, footprint=disk)
        else:
            # a fine pen follows the whole path, thinner: erosion alone would erase a digit's thin
            # parts (an 8's loops), which no pen does, so the path (the skeleton) is drawn too
            from skimage.morphology import skeletonize

            path = skeletonize(big > 0.5)
            half = max(0.5, 0.5 * stroke * 0.13 * height)
            line = np.clip(half + 0.5 - ndi.distance_transform_edt(~path), 0, 1) * 0.7 + 0.3
            big = np.maximum(ndi.grey_erosion(big, footprint=disk), np.where(path.any(), line, 0))
    ink = np.clip((big - 0.3) / 0.4, 0, 1)  # firm ink with a soft edge
    return ndi.gaussian_filter(ink, 0.6)


def _page(rng, shape, paper: str) -> np.ndarray:
    h, w = shape
    page = np.empty((h, w, 3), np.float32)
    page[:] = np.asarray(PAPERS[paper], np.float32)
    page += rng.normal(0, 1.5, (h, w, 1)).astype(np.float32)  # the paper's grain
    if paper == "lined":
        gap = int(rng.integers(28, 44))
        first = int(rng.integers(0, gap))
        for y in range(first, h, gap):
            page[y:y + 2] = np.asarray(_LINE_RGB, np.float32)
    return page


def _settings(rng, n_digits: int) -> dict:
    return {
        "ink": str(rng.choice(list(INKS))), "paper": str(rng.choice(list(PAPERS))),
        "stroke": float(rng.choice([0.45, 0.7, 1.0, 1.4, 1.9])),  # fine pen ... thick marker
        "digit_height": int(rng.integers(45, 160)), "page": (int(rng.integers(360, 520)),
                                                            int(rng.integers(300, 440)) + 90 * (n_digits - 1)),
        "rotation": float(rng.uniform(-15, 15)), "tilt": float(rng.uniform(0, 0.12)),
        "shadow": float(rng.uniform(0.0, 0.55)), "shadow_angle": float(rng.uniform(0, 360)),
        "specks": int(rng.integers(0, 30)), "blur": float(rng.uniform(0.0, 1.8)),
        "noise": float(rng.uniform(1.0, 6.0)), "jpeg_quality": int(rng.integers(25, 81)),
    }


def _render(digits, rng, settings: dict) -> np.ndarray:
    h, w = settings["page"]
    page = _page(rng, (h, w), settings["paper"])
    coverage = np.zeros((h, w), np.float32)
    pens = [_pen(d, settings["digit_height"], settings["stroke"]) for d in digits]
    gap = int(0.1 * settings["digit_height"])
    widths = [p.shape[1] * 0.72 for p in pens]  # the 28-pixel frame is wider than the digit
    total = sum(widths) + gap * (len(pens) - 1)
    # placed at random inside the part of the page the camera frames, whole
    seen = 0.8 * _zoom(settings)
    seen_w, seen_h = seen * w, seen * h
    tall = 0.72 * pens[0].shape[0]  # the digit's own height inside its 28-pixel frame
    x = (w - total) / 2 + rng.uniform(-0.5, 0.5) * max(seen_w - total, 0)
    y0 = (h - pens[0].shape[0]) / 2 + rng.uniform(-0.5, 0.5) * max(seen_h - tall, 0)
    for pen, width in zip(pens, widths):
        top = int(round(y0 + rng.uniform(-0.04, 0.04) * pen.shape[0]))
        left = int(round(x - (pen.shape[1] - width) / 2))
        t0, l0 = max(top, 0), max(left, 0)
        t1, l1 = min(top + pen.shape[0], h), min(left + pen.shape[1], w)
        coverage[t0:t1, l0:l1] = np.maximum(coverage[t0:t1, l0:l1], pen[t0 - top:t1 - top, l0 - left:l1 - left])
        x += width + gap
    for _ in range(settings["specks"]):  # dirt and dust: small dark dots
        cy, cx, r = rng.integers(0, h), rng.integers(0, w), rng.uniform(0.7, 2.5)
        yy, xx = np.ogrid[:h, :w]
        coverage = np.maximum(coverage, (((yy - cy) ** 2 + (xx - cx) ** 2) <= r * r) * rng.uniform(0.4, 0.9))
    ink = np.asarray(INKS[settings["ink"]], np.float32)
    strength = rng.uniform(0.75, 0.95)
    img = page * (1 - strength * coverage[..., None]) + ink * strength * coverage[..., None]
    yy, xx = np.mgrid[:h, :w].astype(np.float32)
    angle = np.deg2rad(settings["shadow_angle"])
    edge = ((xx - w / 2) * np.cos(angle) + (yy - h / 2) * np.sin(angle)) / (0.08 * max(h, w))
    light = 1 - settings["shadow"] / (1 + np.exp(-edge))  # a soft diagonal shadow over part of the page
    light *= 1 - 0.15 * ((xx / w - 0.5) ** 2 + (yy / h - 0.5) ** 2)  # the lamp's vignette
    img *= light[..., None]
    return np.clip(img, 0, 255)


def _zoom(settings: dict) -> float:
    """The fraction of the page's width and height that the camera frames (about the centre)."""
    return 1.0 / (1.0 + 2 * settings["tilt"] + abs(np.sin(np.deg2rad(settings["rotation"]))) * 1.4)


def _camera(img: np.ndarray, rng, settings: dict) -> np.ndarray:
    from skimage.transform import ProjectiveTransform, warp

    h, w = img.shape[:2]
    tilt = settings["tilt"]
    src = np.array([[0, 0], [w, 0], [w, h], [0, h]], np.float64)
    jitter = rng.uniform(-tilt, tilt, (4, 2)) * [w, h]  # the page seen at an angle
    theta = np.deg2rad(settings["rotation"])
    rot = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    dst = (src - [w / 2, h / 2]) @ rot.T + [w / 2, h / 2] + jitter
    tform = ProjectiveTransform.from_estimate(dst, src)
    # The camera frames the page a little inside its edges, so no table shows.
    zoom = _zoom(settings)
    frame = ProjectiveTransform(matrix=np.array([[zoom, 0, w / 2 * (1 - zoom)], [0, zoom, h / 2 * (1 - zoom)],
                                                 [0, 0, 1]]))
    # output pixel -> zoomed about the centre -> back through the camera's projection onto the page
    page_of = ProjectiveTransform(matrix=tform.params @ frame.params)
    out = warp(img / 255.0, page_of, mode="edge", order=1, output_shape=(h, w))
    out = ndi.gaussian_filter(out, (settings["blur"], settings["blur"], 0)) if settings["blur"] > 0.05 else out
    out = out * 255.0 + rng.normal(0, settings["noise"], out.shape)
    buf = io.BytesIO()
    Image.fromarray(np.clip(out, 0, 255).astype(np.uint8)).save(buf, "JPEG", quality=settings["jpeg_quality"])
    buf.seek(0)
    return np.asarray(Image.open(buf).convert("RGB"))


def make_photo(digit, seed=0, **overrides):
    """Render one MNIST digit as a phone photo of it written on paper.

    Parameters
    ----------
    digit : array-like (28, 28)
        An MNIST image, light on dark (uint8 0-255 or floats).
    seed : int or numpy.random.Generator
        Every random choice comes from it: the same seed gives the same photo.
    **overrides
        Fix any of the drawn settings (the keys of the returned dict), e.g. ``ink="red"``,
        ``stroke=1.9`` (a marker, in multiples of MNIST's stroke width), ``jpeg_quality=25``.

    Returns
    -------
    photo : numpy.ndarray
        uint8 (H, W, 3), dark ink on light paper.
    settings : dict
        What was drawn: ink, paper, stroke, digit_height (px), page (h, w), rotation (degrees),
        tilt, shadow (0-1 darkening), shadow_angle, specks, blur (σ px), noise (σ of 255), jpeg_quality.

    Raises
    ------
    ValueError
        A digit that is not 28x28, or an unknown setting.
    """
    return make_number_photo([digit], seed=seed, **overrides)


def make_number_photo(digits, seed=0, **overrides):
    """Render several MNIST digits side by side, left to right, as one phone photo (a number).

    Parameters
    ----------
    digits : sequence of array-like (28, 28)
    seed : int or numpy.random.Generator
    **overrides
        As for :func:`make_photo`.

    Returns
    -------
    photo : numpy.ndarray
        uint8 (H, W, 3).
    settings : dict
        As for :func:`make_photo`.
    """
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    digits = [_as_digit(d) for d in digits]
    if not digits:
        raise ValueError("make_number_photo needs at least one digit.")
    settings = _settings(rng, len(digits))
    unknown = set(overrides) - set(settings)
    if unknown:
        raise ValueError(f"Unknown photo settings {sorted(unknown)}; known: {sorted(settings)}.")
    settings.update(overrides)
    h, w = settings["page"]
    # the page is large enough for the camera to frame the whole number, turned by the rotation
    wide, tall = settings["digit_height"] * (0.95 * len(digits) + 0.3), settings["digit_height"] * 1.3
    turn = np.deg2rad(settings["rotation"])
    across = wide * abs(np.cos(turn)) + tall * abs(np.sin(turn))
    up = wide * abs(np.sin(turn)) + tall * abs(np.cos(turn))
    seen = 0.8 * _zoom(settings)
    settings["page"] = (max(int(h), int(np.ceil(up / seen))), max(int(w), int(np.ceil(across / seen))))
    for key, table in (("ink", INKS), ("paper", PAPERS)):
        if settings[key] not in table:
            raise ValueError(f"{key}={settings[key]!r} is not one of {sorted(table)}.")
    return _camera(_render(digits, rng, settings), rng, settings), settings


def make_photos(images, labels, n: int = 300, seed: int = 0):
    """Photos of the first ``n`` digits of ``images`` (use MNIST's test split), one seeded generator for all.

    Parameters
    ----------
    images : uint8 tensor or array (N, 28, 28)
    labels : int tensor or array (N,)
    n : int
    seed : int

    Returns
    -------
    photos : list of numpy.ndarray
        uint8 (H, W, 3) each (their sizes differ).
    table : pandas.DataFrame
        One row per photo: ``index`` (into ``images``), ``label`` and every setting of :func:`make_photo`.
    """
    import pandas as pd

    if n < 1 or n > len(images):
        raise ValueError(f"n={n} photos asked for, but there are {len(images)} images (need 1 <= n <= {len(images)}).")
    rng = np.random.default_rng(seed)
    photos, rows = [], []
    for i in range(n):
        photo, settings = make_photo(images[i], seed=rng)
        photos.append(photo)
        rows.append({"index": i, "label": int(labels[i]), **settings})
    return photos, pd.DataFrame(rows)


def make_number_photos(images, labels, n: int = 100, length: int = 4, seed: int = 0):
    """Photos of ``n`` numbers of ``length`` digits, each digit drawn at random from ``images``.

    Parameters
    ----------
    images, labels : the digits to write (use MNIST's test split)
    n : int
    length : int
    seed : int

    Returns
    -------
    photos : list of numpy.ndarray
    table : pandas.DataFrame
        One row per photo: ``number`` (the true string), ``indices`` (into ``images``) and the settings.
    """
    import pandas as pd

    if n < 1 or length < 1:
        raise ValueError(f"n and length must be at least 1, got n={n}, length={length}.")
    rng = np.random.default_rng(seed)
    photos, rows = [], []
    for _ in range(n):
        idx = rng.choice(len(images), size=length, replace=False)
        photo, settings = make_number_photo([images[int(i)] for i in idx], seed=rng)
        photos.append(photo)
        rows.append({"number": "".join(str(int(labels[int(i)])) for i in idx), "indices": [int(i) for i in idx],
                     **settings})
    return photos, pd.DataFrame(rows)
