"""Notebook 01 (data statistics) runs in QUICK mode, for MNIST and Fashion-MNIST, and writes its figures."""
import pandas as pd
import pytest

import mnistlab as ml
from conftest import check_written, requires_data

FIGURES = ["samples", "class_counts", "class_means", "pixel_std", "pixel_histograms", "mean_intensity",
           "most_typical", "least_typical"]
TABLES = ["class_counts", "typical_examples"]

pytestmark = [pytest.mark.notebook, requires_data]


def check_outputs(entry, classes):
    numbers = check_written(entry, FIGURES, TABLES)
    folder = entry["dir"]
    counts = pd.read_csv(folder / "class_counts.csv")
    assert counts["class"].astype(str).tolist() == list(classes)
    assert counts["train"].sum() == numbers["n_train"] and counts["test"].sum() == numbers["n_test"]
    return numbers


def test_notebook_01_quick_mnist(quick_notebook):
    entry = quick_notebook("01_data_statistics")
    assert entry["parameters"]["QUICK"] is True and entry["parameters"]["DATASET"] == "mnist"
    n = check_outputs(entry, ml.dataset_info("mnist").classes)
    assert n["dataset"] == "mnist" and n["quick"] is True
    assert n["n_train"] == 5000 and n["n_test"] == 1000
    assert abs(n["norm_mean"] - 0.1307) < 0.005 and abs(n["norm_std"] - 0.3081) < 0.005
    assert (n["norm_mean_reference"], n["norm_std_reference"]) == (0.1307, 0.3081)
    assert 1.0 < n["balance_ratio_train"] < 1.6 and 0.99 < n["balance_entropy_train"] <= 1.0
    assert n["least_ink_class"] == "1" and n["most_ink_class"] == "0"
    assert 0 < n["least_ink_mean"] < n["most_ink_mean"] < 0.3
    assert 50 < n["constant_pixels"] < 300
    typical = pd.read_csv(entry["dir"] / "typical_examples.csv")
    assert set(typical["kind"]) == {"most", "least"} and typical["label"].nunique() == 10
    assert typical["index"].max() < n["n_train"]


def test_notebook_01_quick_fashion(quick_notebook):
    entry = quick_notebook("01_data_statistics", dataset="fashion-mnist")
    assert entry["parameters"]["DATASET"] == "fashion-mnist"
    classes = ml.dataset_info("fashion-mnist").classes
    n = check_outputs(entry, classes)
    assert n["dataset"] == "fashion-mnist"
    assert abs(n["norm_mean"] - 0.2860) < 0.01 and abs(n["norm_std"] - 0.3530) < 0.01
    assert (n["norm_mean_reference"], n["norm_std_reference"]) == (0.2860, 0.3530)
    assert n["least_ink_class"] in classes and n["most_ink_class"] in classes
    assert n["least_ink_class"] != n["most_ink_class"]
