"""Notebook 09 (your own digits) runs in QUICK mode and writes sane figures, tables and numbers."""
from __future__ import annotations

import pandas as pd
import pytest

from conftest import check_written, requires_data

NAME = "09_your_own_digits"
FIGURES = ["steps_photo", "least_sure_photos", "accuracy_by_setting", "steps_number", "numbers_wrong"]
TABLES = ["photos", "accuracy_by_setting", "numbers"]

pytestmark = [pytest.mark.notebook, requires_data]


def test_every_figure_and_table_written(entry):
    numbers = check_written(entry, FIGURES, TABLES)
    assert numbers["quick"] is True and numbers["photos"] == 24 and numbers["numbers"] == 8
    assert numbers["clean_test_acc"] > 0.99


def test_the_numbers_are_the_tables(entry):
    n = entry["numbers"]
    photos = pd.read_csv(entry["dir"] / "photos.csv", index_col=0)
    assert len(photos) == 24
    assert n["photo_acc"] == pytest.approx((photos["pred_shipped"] == photos["label"]).mean())
    assert n["photo_acc_mnist_steps"] == pytest.approx((photos["old_shipped"] == photos["label"]).mean())
    # the photo path reads nearly all of them; MNIST's steps alone far fewer (a broken path would read ~10%)
    assert n["photo_acc"] >= 0.9 and n["photo_acc_mnist_steps"] < n["photo_acc"] - 0.3
    numbers = pd.read_csv(entry["dir"] / "numbers.csv", index_col=0, dtype={"number": str, "read": str})
    assert len(numbers) == 8 and n["numbers_exact"] == pytest.approx((numbers["number"] == numbers["read"]).mean())
    assert n["numbers_exact"] >= 0.75


def test_accuracy_by_setting_has_intervals_inside_0_1(entry):
    by = pd.read_csv(entry["dir"] / "accuracy_by_setting.csv", index_col=0)
    assert set(by["setting"]) == {"paper", "pen width (x MNIST's)", "ink"}
    assert set(by["reading"]) == {"photo (find_digits)", "MNIST steps only"}
    assert ((0 <= by["ci_low"]) & (by["ci_low"] <= by["accuracy"]) & (by["accuracy"] <= by["ci_high"])
            & (by["ci_high"] <= 1)).all()
    assert by.groupby(["setting", "reading"])["photos"].sum().eq(24).all()
