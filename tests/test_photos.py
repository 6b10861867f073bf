"""The phone-photo generator (mnistlab.data.photos): reproducible, and the digit is really on the page."""
import numpy as np
import pytest

from mnistlab.data.photos import INKS, make_number_photo, make_number_photos, make_photo, make_photos


def _one():
    digit = np.zeros((28, 28), np.uint8)
    digit[4:24, 12:16] = 255
    return digit


def test_same_seed_same_photo_and_settings():
    a, sa = make_photo(_one(), seed=3)
    b, sb = make_photo(_one(), seed=3)
    c, _ = make_photo(_one(), seed=4)
    assert np.array_equal(a, b) and sa == sb
    assert a.shape != c.shape or not np.array_equal(a, c)


def test_ink_is_darker_than_paper_where_the_digit_is():
    photo, s = make_photo(_one(), seed=0, shadow=0.0, specks=0, blur=0.0, rotation=0.0, tilt=0.0, paper="white",
                          ink="black", jpeg_quality=80)
    gray = photo.mean(2)
    h, w = gray.shape
    # the darkest pixels form a tall thin stroke (the "1"), not scattered noise
    ys, xs = np.nonzero(gray < 100)
    assert len(ys) > 50
    assert np.ptp(ys) > 2.5 * np.ptp(xs)
    assert np.median(gray) > 200  # paper stays light


def test_overrides_are_checked():
    with pytest.raises(ValueError, match="Unknown photo settings"):
        make_photo(_one(), seed=0, colour="red")
    with pytest.raises(ValueError, match="ink='green'"):
        make_photo(_one(), seed=0, ink="green")
    with pytest.raises(ValueError, match=r"\(28, 28\)"):
        make_photo(np.zeros((10, 10)), seed=0)


def test_number_photo_is_wide_enough_for_its_digits():
    photo, s = make_number_photo([_one()] * 4, seed=1, rotation=0.0, tilt=0.0)
    assert photo.shape[1] >= 0.95 * 4 * s["digit_height"]
    assert set(INKS) >= {s["ink"]}


def test_batches_record_labels_and_settings():
    images = np.stack([_one()] * 5)
    labels = np.array([1, 1, 1, 1, 1])
    photos, table = make_photos(images, labels, n=5, seed=0)
    assert len(photos) == 5 and list(table["label"]) == [1] * 5
    assert table["jpeg_quality"].between(25, 80).all() and table["rotation"].abs().le(15).all()
    numbers, ntable = make_number_photos(images, labels, n=2, length=3, seed=0)
    assert list(ntable["number"]) == ["111", "111"] and len(numbers) == 2
    with pytest.raises(ValueError, match="n=9"):
        make_photos(images, labels, n=9)
