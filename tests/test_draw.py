"""DigitPad without a browser: synthetic drawings through set_drawing (and the synced ``drawing`` bytes)."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw

from mnistlab.viz.draw import DigitPad

SIZE = 280


def drawing(*strokes, width: int = 22) -> np.ndarray:
    """White strokes (polylines of (x, y) points) on a black SIZE x SIZE canvas, as the pad draws them."""
    im = Image.new("L", (SIZE, SIZE), 0)
    pen = ImageDraw.Draw(im)
    for points in strokes:
        pen.line(points, fill=255, width=width, joint="curve")
        for x, y in points:  # round caps, like the canvas' lineCap = "round"
            pen.ellipse((x - width / 2, y - width / 2, x + width / 2, y + width / 2), fill=255)
    return np.asarray(im)


ONE = drawing([(140, 40), (140, 240)])
SEVEN = drawing([(70, 50), (210, 50)], [(210, 50), (110, 240)])


@pytest.fixture(scope="module")
def pad():
    return DigitPad()      # the shipped pretrained model: no data needed


@pytest.mark.parametrize("digit, image", [(1, ONE), (7, SEVEN)], ids=["one", "seven"])
def test_a_drawn_digit_is_read(pad, digit, image):
    assert pad.set_drawing(image) == digit
    assert pad.prediction == digit
    assert pad.probabilities.shape == (10,) and pad.probabilities[digit] > 0.5
    assert pad.probabilities.sum() == pytest.approx(1, abs=1e-5)
    assert pad.image.shape == (28, 28) and pad.image.dtype == np.uint8
    assert pad.saliency.shape == (28, 28) and np.abs(pad.saliency).max() > 0
    assert pad.label.startswith(f"{digit} (") and pad.label.endswith("%)")
    # what the browser draws from
    assert len(pad._image) == len(pad._saliency) == 28 * 28 * 4
    assert len(pad._probabilities) == 10 and pad._prediction == digit


def test_dark_ink_on_white_is_read_too(pad):
    assert pad.set_drawing(255 - SEVEN) == 7


def test_clear_resets_everything(pad):
    pad.set_drawing(ONE)
    pad.clear()
    assert pad.prediction is None and pad.probabilities is None and pad.image is None and pad.saliency is None
    assert pad.label == "draw a digit" and pad._probabilities == [] and pad._prediction == -1


def test_the_browser_path_bytes_in_prediction_out(pad):
    """The canvas sends canvas_size**2 grayscale bytes; an empty message is the Clear button."""
    pad.drawing = ONE.tobytes()
    assert pad.prediction == 1
    pad.drawing = b""
    # as the comm delivers it: the browser's DataView arrives as a memoryview and goes through from_json
    pad.set_state({"drawing": memoryview(ONE.tobytes())})
    assert pad.prediction == 1 and isinstance(pad.drawing, bytes)
    pad.drawing = b""
    assert pad.prediction is None
    pad.drawing = b"\x00" * 10                   # wrong length: said on the pad, nothing predicted
    assert pad.prediction is None and "bytes" in pad.label


def test_a_blank_drawing_clears(pad):
    pad.set_drawing(ONE)
    assert pad.set_drawing(np.zeros((SIZE, SIZE), np.uint8)) is None
    assert pad.prediction is None


@pytest.mark.parametrize("bad", [np.zeros((28, 28, 3)), np.zeros(784), np.zeros((4, 4)), np.array([["a"] * 9] * 9)],
                         ids=["rgb", "flat", "tiny", "strings"])
def test_a_wrong_shape_says_what_it_needs(pad, bad):
    with pytest.raises(ValueError, match=r"2-D grayscale array \(H, W\)"):
        pad.set_drawing(bad)
