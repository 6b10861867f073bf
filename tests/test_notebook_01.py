"""Notebook 01 (data statistics) runs in QUICK mode, for MNIST and Fashion-MNIST, and writes real figures and numbers."""
import pandas as pd
import pytest

import mnistlab as ml
from conftest import assert_picture, check_written, requires_data
from mnistlab.studies import claims as C
from test_claims import assert_quotes_exact

FIGURES = ["samples", "class_counts", "class_means", "pixel_std", "pixel_histograms", "mean_intensity",
           "most_typical", "least_typical"]
TABLES = ["class_counts", "typical_examples", "source_claims"]

pytestmark = [pytest.mark.notebook, requires_data]


def check_outputs(entry, classes):
    numbers = check_written(entry, FIGURES, TABLES)  # also: no stray cell output in the executed notebook
    folder = entry["dir"]
    for name in FIGURES:
        assert_picture(folder / f"{name}.png")  # not blank, not one colour, not empty axes
    written = {p.stem for p in folder.glob("*.png")}
    assert written == set(FIGURES), f"figures written but not expected (or the reverse): {written ^ set(FIGURES)}"
    counts = pd.read_csv(folder / "class_counts.csv")
    assert counts["class"].astype(str).tolist() == list(classes)
    assert counts["train"].sum() == numbers["n_train"] and counts["test"].sum() == numbers["n_test"]
    claims = pd.read_csv(folder / "source_claims.csv", index_col=0)
    assert list(claims.columns) == C.COLUMNS and len(claims) == 3 and (claims["source"] == C.MEDIUM).all()
    assert claims["verdict"].tolist() == numbers["claim_verdicts"]
    assert_quotes_exact(claims)  # the Medium article's words and figures, exactly as in its file
    # the numbers are those of the data the notebook read: recomputed here from the same images
    info = ml.dataset_info(numbers["dataset"])
    train = ml.load_dataset(numbers["dataset"], "train", limit=numbers["n_train"])
    pixels = train.images.double() / 255
    assert numbers["norm_mean"] == pytest.approx(pixels.mean().item(), abs=2e-6)
    assert numbers["norm_std"] == pytest.approx(pixels.std().item(), abs=1e-4)
    # the gap is measured against the constants the package normalises with
    assert numbers["norm_gap"] == pytest.approx(max(abs(numbers["norm_mean"] - info.mean),
                                                    abs(numbers["norm_std"] - info.std)), abs=2e-6)
    ink = {c: pixels[train.labels == i].mean().item() for i, c in enumerate(info.classes)}
    assert numbers["least_ink_class"] == min(ink, key=ink.get) and numbers["most_ink_class"] == max(ink, key=ink.get)
    assert numbers["least_ink_mean"] == pytest.approx(ink[numbers["least_ink_class"]], abs=1e-6)
    assert numbers["most_ink_mean"] == pytest.approx(ink[numbers["most_ink_class"]], abs=1e-6)
    return numbers


def test_notebook_01_quick_mnist(quick_notebook):
    entry = quick_notebook("01_data_statistics")
    assert entry["parameters"]["QUICK"] is True and entry["parameters"]["DATASET"] == "mnist"
    n = check_outputs(entry, ml.dataset_info("mnist").classes)
    assert n["dataset"] == "mnist" and n["quick"] is True
    assert n["n_train"] == 5000 and n["n_test"] == 1000
    # 5,000 images: within 0.005 of the published constants, but not equal to 4 decimals
    assert abs(n["norm_mean"] - 0.1307) < 0.005 and abs(n["norm_std"] - 0.3081) < 0.005
    assert 0 < n["norm_gap"] < 0.005
    assert 1.0 < n["balance_ratio_train"] < 1.6 and 0.99 < n["balance_entropy_train"] <= 1.0
    assert n["least_ink_class"] == "1" and n["most_ink_class"] == "0"
    assert 0.05 < n["least_ink_mean"] < 0.1 and 0.15 < n["most_ink_mean"] < 0.25
    assert 50 < n["constant_pixels"] < 300 and n["constant_pixels_in_frame"] > 0.8 * n["constant_pixels"]
    assert n["tightest_class"] == "1"
    # a QUICK subset says nothing about the split sizes; the 1s carry the least ink; the pixels are mostly black
    assert n["claim_verdicts"] == ["not applicable", "reproduced", "reproduced"]
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
    assert 0 < n["norm_gap"] < 0.01
    assert n["least_ink_mean"] < 0.4 * n["most_ink_mean"]  # the lightest class has about a third of the heaviest's ink
    # the article describes MNIST: its claims do not apply to clothes; the table says so rather than a verdict
    assert n["claim_verdicts"] == ["not applicable"] * 3
