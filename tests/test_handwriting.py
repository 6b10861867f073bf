"""Reading people's own digits: find_digits / is_clean / to_mnist on photos, mnistlab.studies.handwriting,
and `mnistlab predict` / `mnistlab read` on photo files.

The photos come from mnistlab.data.photos (seeded), written with MNIST *test* digits; the model is the
shipped pretrained one, so no training happens here.
"""
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import mnistlab as ml
from mnistlab.data.images import find_digits, is_clean, render_digits, to_mnist
from mnistlab.data.photos import make_number_photo, make_photo
from mnistlab.studies.handwriting import number_accuracy, photo_accuracy, read_image, read_number

FIXTURE = Path(__file__).parent / "fixtures" / "to_mnist_clean_before.npz"


@pytest.fixture(scope="module")
def test_digits():
    from conftest import have_real_data

    if not have_real_data():
        pytest.skip("real MNIST not found at $MNISTLAB_DATA")
    return ml.load_dataset("mnist", "test", limit=400)


@pytest.fixture(scope="module")
def model():
    return ml.load_pretrained()


# --- the preprocessing -----------------------------------------------------------------------------------

def test_clean_renders_come_out_as_before_byte_for_byte():
    """Clean scans and drawings take MNIST's steps exactly as before the photo path existed."""
    before = np.load(FIXTURE)
    rendered, labels, _ = render_digits()
    assert np.array_equal(rendered.numpy(), before["rendered"])
    assert np.array_equal(labels.numpy(), before["labels"])


def test_is_clean_tells_drawings_from_photos(test_digits):
    drawing = np.zeros((280, 280), np.uint8)
    drawing[40:240, 130:150] = 255
    assert is_clean(drawing) and is_clean(test_digits.images[0].numpy())
    photo, _ = make_photo(test_digits.images[0], seed=0)
    assert not is_clean(np.asarray(Image.fromarray(photo).convert("L")))


def test_to_mnist_reads_a_photo_the_old_steps_do_not(test_digits, model):
    """The digit fills MNIST's 20x20 box; MNIST's steps alone crop the page and shrink the digit."""
    photo, settings = make_photo(test_digits.images[0], seed=0, paper="lined", shadow=0.5)
    new, old = to_mnist(photo), to_mnist(photo, photo=False)
    rows = np.flatnonzero((new.numpy() > 50).any(1))
    assert 16 <= rows[-1] - rows[0] + 1 <= 21
    probs = ml.predict(model, torch.stack([new, old]))
    assert probs[0].argmax() == test_digits.labels[0] and probs[0].max() > 0.5


def test_find_digits_reads_a_number_left_to_right(test_digits):
    idx = [1, 2, 3, 4]
    photo, _ = make_number_photo(test_digits.images[idx], seed=2)
    found = find_digits(photo)
    assert len(found) == 4
    lefts = [b[1] for b in found.boxes]
    assert lefts == sorted(lefts)
    assert found.images.shape == (4, 28, 28) and found.images.dtype == torch.uint8
    assert set(found.steps) >= {"gray", "paper", "ink", "unlined", "mask", "cleaned", "digits"}
    assert found.steps["digits"].max() == 4


def test_a_faint_digit_beside_dark_ones_is_still_found():
    """Three dark bars and one at a third of their contrast: the second, local threshold finds it."""
    page = np.full((160, 400), 230.0)
    for k, x in enumerate([60, 140, 220, 300]):
        page[40:120, x:x + 10] = 170 if k == 2 else 30
    found = find_digits(page.astype(np.uint8))
    assert len(found) == 4, found.boxes
    assert np.allclose([(b[1] + b[3]) / 2 for b in found.boxes], [65, 145, 225, 305], atol=3)


def test_touching_digits_are_split():
    """Two round digits written so thick that they touch: one component 1.6 digit heights wide."""
    page = np.full((160, 560), 235, np.uint8)
    for x in (50, 120, 450, 500):
        page[40:120, x:x + 10] = 20                # four 1s
    for x in (200, 263):
        page[40:120, x:x + 65] = 20                # two 0s (squares with holes) that touch
        page[55:105, x + 15:x + 50] = 235
    found = find_digits(page)
    assert len(found) == 6, found.boxes
    assert max(b[3] - b[1] for b in found.boxes) < 80


def test_a_digit_broken_in_stacked_halves_is_one_digit():
    page = np.full((160, 500), 235, np.uint8)
    for x in (50, 150, 350):
        page[40:120, x:x + 10] = 20
    page[40:72, 240:280] = 20                      # top half ...
    page[90:120, 240:280] = 20                     # ... and bottom half of one digit, 18 px apart
    page[50:62, 250:270] = 235
    page[100:110, 250:270] = 235
    found = find_digits(page)
    assert len(found) == 4, found.boxes


def test_a_stray_end_of_ruled_line_is_not_a_digit():
    """A line 14 degrees off horizontal, running off the picture's left edge, tall enough to pass for a digit."""
    page = np.full((240, 400), 235, np.uint8)
    for x in (150, 230, 310):
        page[40:120, x:x + 10] = 20
    cols = np.arange(0, 140)
    for dy in range(3):
        page[150 + dy + cols // 4, cols] = 60
    found = find_digits(page)
    assert len(found) == 3, found.boxes


def test_a_page_with_nothing_on_it_finds_nothing():
    rng = np.random.default_rng(0)
    page = np.clip(rng.normal(220, 2, (200, 300)), 0, 255).astype(np.uint8)
    assert len(find_digits(page)) == 0
    with pytest.raises(ValueError, match="no digit"):
        to_mnist(page, photo=True)


# --- reading -------------------------------------------------------------------------------------------

def test_read_number_reads_four_digit_photos(test_digits, model):
    table, photos = number_accuracy(test_digits, model, n=12, seed=0, progress=False)
    assert len(photos) == 12 and table["exact"].mean() >= 10 / 12, table[["number", "read"]]
    assert (table["read"].str.len() == table["found"]).all()
    reading = read_number(photos[0], model)
    assert len(reading.confidence) == len(reading.digits) == len(reading.text)
    assert reading.probabilities.shape == (len(reading.digits), 10)
    assert np.allclose(reading.probabilities.sum(1), 1, atol=1e-4)
    assert reading.images.shape[0] == len(reading.digits)


def test_read_image_warns_plainly(test_digits, model):
    photo, _ = make_number_photo(test_digits.images[[1, 2, 3, 4]], seed=2)
    reading = read_image(photo, model)
    assert len(reading.digits) == 1 and "4 digits found" in reading.warnings[0]
    one, _ = make_photo(test_digits.images[0], seed=1)
    assert read_image(one, model).warnings == []
    assert any("not sure" in w for w in read_image(one, model, unsure_below=1.0).warnings)
    page = np.full((100, 100), 200, np.uint8)
    page[::7, ::5] = 198
    assert read_image(page, model).text == "" or read_image(page, model).warnings
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        read_image(one, model, unsure_below=1.5)


def test_read_image_of_a_clean_drawing_is_mnist_steps(model):
    drawing = np.zeros((280, 280), np.uint8)
    drawing[40:240, 130:152] = 255
    reading = read_image(drawing, model)
    assert reading.text == "1"
    assert torch.equal(reading.images[0], to_mnist(drawing, photo=False))


def test_a_clean_drawing_of_two_digits_is_no_confident_single_digit(test_digits, model):
    """Two MNIST digits side by side on white (a clean picture, read whole): the reading warns that it
    saw two digits; each digit alone, drawn the same way, gets no such warning."""
    from PIL import Image

    def drawn(images):
        return 255 - np.array(Image.fromarray(np.concatenate(images, axis=1)).resize((112 * len(images), 112)))

    a, b = test_digits.images[0].numpy(), test_digits.images[1].numpy()
    pair = drawn([a, b])
    assert is_clean(pair)
    assert any("2 digits found" in w for w in read_image(pair, model).warnings)
    for one in (a, b):
        assert not any("digits found" in w for w in read_image(drawn([one]), model).warnings)


def test_photo_accuracy_new_beats_old(test_digits, model):
    table, summary, photos = photo_accuracy(test_digits, {"shipped": model}, n=40, seed=0, progress=False)
    acc = summary.set_index("preprocessing")["accuracy"]
    assert acc["photo (find_digits)"] >= 0.9 and acc["MNIST steps only"] < acc["photo (find_digits)"] - 0.3
    assert len(table) == len(photos) == 40 and {"pred_shipped", "old_shipped", "found"} <= set(table)
    with pytest.raises(ValueError, match="at least one model"):
        photo_accuracy(test_digits, {}, n=2)


# --- the command line ----------------------------------------------------------------------------------

def test_cli_predict_and_read_say_what_they_saw(test_digits, tmp_path, capsys):
    from mnistlab.cli import main

    one, _ = make_photo(test_digits.images[0], seed=1)
    number, _ = make_number_photo(test_digits.images[[1, 2, 3, 4]], seed=2)
    Image.fromarray(one).save(tmp_path / "one.jpg")
    Image.fromarray(number).save(tmp_path / "number.jpg")
    Image.fromarray(np.full((40, 40), 200, np.uint8)).save(tmp_path / "blank.png")

    assert main(["predict", str(tmp_path / "one.jpg"), str(tmp_path / "number.jpg"), "--show"]) == 0
    out = capsys.readouterr().out.splitlines()
    first = out[0].split("\t")
    assert first[1] == str(int(test_digits.labels[0])) and 0 < float(first[2]) <= 1 and "top 3" in first[3]
    assert "warning: 4 digits found" in out[1]
    shown = np.asarray(Image.open(tmp_path / "one.28x28.png"))
    assert shown.shape == (28, 28) and shown.min() < 50 and np.median(shown) > 200   # dark ink on white

    assert main(["read", str(tmp_path / "number.jpg"), "--show"]) == 0
    line = capsys.readouterr().out.strip().split("\t")
    assert line[1] == "".join(str(int(k)) for k in test_digits.labels[[1, 2, 3, 4]])
    assert len(line[3].split(":")[1].split()) == 4
    assert np.asarray(Image.open(tmp_path / "number.28x28.png")).shape == (28, 4 * 28)

    # one unreadable picture: named on stderr, the others still read, exit code 1
    assert main(["predict", str(tmp_path / "one.jpg"), str(tmp_path / "blank.png")]) == 1
    captured = capsys.readouterr()
    assert "blank.png\t-\t-\t(not read: the image is blank" in captured.out
    assert "error:" in captured.err and "blank.png" in captured.err
    with pytest.raises(SystemExit) as exit_:
        main(["read", str(tmp_path / "one.jpg"), "--unsure-below", "2"])
    assert exit_.value.code == 2
    assert "probability between 0 and 1" in capsys.readouterr().err
