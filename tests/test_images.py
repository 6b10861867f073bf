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


# ---- every mode Pillow can write, as real files: the right digit or a clear error -------------------

def seven_l(size=(120, 160)):
    img = Image.new("L", size, 255)
    ImageDraw.Draw(img).line([(20, 20), (100, 20), (45, 150)], fill=0, width=12)
    return img


def _alpha_only(colour):
    """Ink only in the alpha channel: every pixel has the same colour, the digit is its opacity."""
    arr = np.zeros((160, 120, 4), np.uint8)
    arr[..., :3] = colour
    arr[..., 3] = 255 - np.asarray(seven_l())
    return Image.fromarray(arr, "RGBA")


def _la_white():
    return Image.fromarray(np.stack([np.full((160, 120), 255, np.uint8), 255 - np.asarray(seven_l())], -1), "LA")


MODES = {
    "16-bit png": (lambda: Image.fromarray(np.asarray(seven_l()).astype(np.uint16) * 257), "png"),
    "16-bit png, 12-bit values": (lambda: Image.fromarray(np.asarray(seven_l()).astype(np.uint16) * 16), "png"),
    "16-bit png, grey ink on grey paper": (
        lambda: Image.fromarray(np.asarray(seven_l()).astype(np.uint16) * 200 + 5000), "png"),  # all above 255
    "16-bit tiff": (lambda: Image.fromarray(np.asarray(seven_l()).astype(np.uint16) * 257), "tif"),
    "32-bit integer tiff": (lambda: Image.fromarray(np.asarray(seven_l()).astype(np.int32) * 100_000), "tif"),
    "float tiff in [0, 1]": (lambda: Image.fromarray(np.asarray(seven_l()).astype(np.float32) / 255), "tif"),
    "float tiff, any range": (lambda: Image.fromarray(np.asarray(seven_l()).astype(np.float32) * 1e4 - 7), "tif"),
    "1-bit png": (lambda: seven_l().convert("1"), "png"),
    "palette png": (lambda: seven_l().convert("RGB").convert("P"), "png"),
    "palette gif": (lambda: seven_l().convert("P"), "gif"),
    "CMYK jpeg": (lambda: seven_l().convert("CMYK"), "jpg"),
    "LAB tiff": (lambda: Image.merge("LAB", [seven_l(), Image.new("L", (120, 160), 128),
                                             Image.new("L", (120, 160), 128)]), "tif"),
    "black ink in alpha only": (lambda: _alpha_only(0), "png"),
    "white ink in alpha only": (lambda: _alpha_only(255), "png"),
    "white ink in alpha only, webp": (lambda: _alpha_only(255), "webp"),
    "grey + alpha, white ink": (_la_white, "png"),
    "palette with transparency": (lambda: _la_white().convert("RGBA").convert("P"), "png"),
}


@pytest.mark.parametrize("name", list(MODES))
def test_every_mode_gives_the_same_digit(name, tmp_path):
    make, ext = MODES[name]
    path = tmp_path / f"digit.{ext}"
    make().save(path)
    reference = to_mnist(seven_l()).float()
    got = to_mnist(path).float()
    assert (got - reference).abs().mean() < 6, f"{name}: differs from the 8-bit grey version"


def test_arrays_of_any_depth():
    gray = np.asarray(seven_l())
    reference = to_mnist(gray).float()
    for arr in (gray.astype(np.uint16) * 257, gray.astype(np.uint16) * 200 + 5000, gray.astype(np.float64) / 255,
                gray.astype(np.int64) * 1000, gray > 127):
        assert (to_mnist(arr).float() - reference).abs().mean() < 8, arr.dtype


@pytest.mark.parametrize("make,reason", [
    (lambda: Image.new("L", (40, 40), 255), "same value (255 of 255)"),
    (lambda: Image.new("I;16", (40, 40), 4000), "same value"),
    (lambda: Image.new("RGBA", (40, 40), (255, 255, 255, 0)), "fully transparent"),
], ids=["white page", "flat 16-bit", "fully transparent"])
def test_blank_images_say_why(make, reason, tmp_path):
    path = tmp_path / "blank.png"
    make().save(path)
    with pytest.raises(ValueError, match="blank") as err:
        to_mnist(path)
    assert reason in str(err.value) and str(path) in str(err.value)


def test_multi_frame_and_folders_are_refused(tmp_path):
    anim = tmp_path / "anim.gif"
    seven_l().save(anim, save_all=True, append_images=[seven_l().rotate(30)])
    with pytest.raises(ValueError, match="2 frames"):
        to_mnist(anim)
    (tmp_path / "dir.png").mkdir()
    with pytest.raises(FileNotFoundError, match="is a folder"):
        to_mnist(tmp_path / "dir.png")


def test_photo_orientation_from_exif(tmp_path):
    upright = seven_l()
    stored = upright.transpose(Image.Transpose.ROTATE_90)  # how a phone stores a photo taken sideways
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise to view
    path = tmp_path / "photo.jpg"
    stored.convert("RGB").save(path, exif=exif)
    assert (to_mnist(path).float() - to_mnist(upright).float()).abs().mean() < 6


def test_decompression_bomb_limit_holds(tmp_path, monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 10_000)
    big = tmp_path / "big.png"
    seven_l((200, 300)).save(big)  # 60,000 pixels: over twice the limit
    with pytest.raises(ValueError, match="too large"):
        to_mnist(big)
    fair = tmp_path / "fair.png"
    seven_l((120, 160)).save(fair)  # 19,200 pixels: between the warning and the error, read quietly
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert to_mnist(fair).shape == (28, 28)
