import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from mnistlab.data.images import load_images, to_mnist


def drawing(size=(240, 320), color="white", ink="black", offset=(0, 0)):
    img = Image.new("RGB", size, color)
    d = ImageDraw.Draw(img)
    ox, oy = offset
    d.ellipse([60 + ox, 60 + oy, 180 + ox, 260 + oy], outline=ink, width=20)  # a zero
    return img


def test_dark_on_light_is_inverted_fitted_and_centred():
    out = to_mnist(drawing())
    assert out.shape == (28, 28) and out.dtype == torch.uint8
    arr = out.numpy().astype(float)
    assert arr[0].max() == 0 and arr[:, 0].max() == 0  # background black, as in MNIST
    rows, cols = np.nonzero(arr > 30)
    assert rows.max() - rows.min() + 1 <= 21 and cols.max() - cols.min() + 1 <= 21  # fits 20x20
    assert rows.max() - rows.min() + 1 >= 19  # the long side fills the box
    ys, xs = np.indices(arr.shape)
    cy, cx = (ys * arr).sum() / arr.sum(), (xs * arr).sum() / arr.sum()
    assert abs(cy - 13.5) < 1 and abs(cx - 13.5) < 1


def test_position_and_colour_do_not_matter():
    a = to_mnist(drawing()).float()
    b = to_mnist(drawing(offset=(40, -30), color=(250, 240, 200), ink=(20, 20, 120))).float()
    c = to_mnist(drawing(color="black", ink="white")).float()  # already light on dark
    assert (a - b).abs().mean() < 12
    assert (a - c).abs().mean() < 12


def test_inputs_arrays_tensors_rgba_and_paths(tmp_path):
    img = drawing()
    arr = np.asarray(img)
    assert torch.equal(to_mnist(arr), to_mnist(img))
    assert torch.equal(to_mnist(torch.from_numpy(arr.copy())), to_mnist(img))
    rgba = Image.new("RGBA", (100, 100), (0, 0, 0, 0))
    ImageDraw.Draw(rgba).line([(50, 10), (50, 90)], fill=(0, 0, 0, 255), width=10)  # a one on transparent paper
    one = to_mnist(rgba)
    assert one[:, 14].sum() > one[:, 4].sum()
    path = tmp_path / "zero.png"
    img.save(path)
    stack = load_images([path, path])
    assert stack.shape == (2, 28, 28) and torch.equal(stack[0], to_mnist(img))


def test_errors():
    with pytest.raises(ValueError, match="blank"):
        to_mnist(Image.new("L", (50, 50), 255))
    with pytest.raises(FileNotFoundError):
        to_mnist("/no/such/file.png")
    with pytest.raises(TypeError):
        to_mnist(42)
    with pytest.raises(ValueError, match="shape"):
        to_mnist(np.zeros((2, 3, 4, 5)))


def test_not_readable_image(tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_text("not a png")
    with pytest.raises(ValueError, match="not a readable image"):
        to_mnist(bad)
