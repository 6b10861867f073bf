"""Notebook 06 (inside the model) runs in QUICK mode on the shipped model and writes sane figures and numbers."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

import mnistlab as ml
from conftest import check_written, requires_data
from test_claims import assert_quotes_exact

NAME = "06_inside_the_model"
FIGURES = ["misclassified", "confusion", "most_confused", "class_report", "saliency_per_class",
           "saliency_misclassified", "saliency_questions", "sanity_check", "sanity_maps", "feature_maps", "filters",
           "channel_class_means", "top_activating", "class_maximization", "confidence_extremes", "calibration",
           "label_issues", "robustness", "explorer_cell", "browser_least_confident"]
TABLES = ["claims", "misclassified", "most_confused", "class_report", "predictions_errors", "label_issues", "robustness"]

pytestmark = [pytest.mark.notebook, requires_data]


def test_every_figure_and_table_written(entry):
    check_written(entry, FIGURES, TABLES)
    assert_quotes_exact(pd.read_csv(entry["dir"] / "claims.csv", index_col=0))  # every quote is in its source file
    assert entry["parameters"]["QUICK"] is True


def test_model_numbers(entry):
    n = entry["numbers"]
    assert n["model"] == "pretrained" and n["quick"] is True and n["n_test"] == 2000
    # the shipped model (99.64% on all 10,000) on the first 2,000 test digits
    expected = ml.evaluate(ml.load_pretrained(), ml.load_dataset("mnist", "test", limit=2000))["acc"]
    assert n["test_acc"] == pytest.approx(expected) and n["test_acc"] > 0.99
    assert n["n_errors"] == round((1 - n["test_acc"]) * 2000) == sum(n["errors_per_class"])
    wrong = pd.read_csv(entry["dir"] / "misclassified.csv")
    assert len(wrong) == n["n_errors"] and (wrong["true"] != wrong["predicted"]).all()
    report = pd.read_csv(entry["dir"] / "class_report.csv", index_col=0)
    assert report.loc["accuracy", "f1"] == pytest.approx(n["test_acc"])


def test_attribution_numbers(entry):
    n = entry["numbers"]
    assert n["ig_delta_median"] < 0.2                        # Integrated Gradients nearly complete (QUICK: 0.03)
    # maps decorrelate once the weights are random, more with every layer randomised than with the top one only
    # (QUICK: 0.06 and 0.36); a check that never randomised would read about 1 for both
    assert n["sanity_corr_all"] < 0.3 and n["sanity_corr_top"] > n["sanity_corr_all"] + 0.1
    regions = {f"{r}-{c}" for r in ("top", "middle", "bottom") for c in ("left", "centre", "right")}
    assert {n["q_1_2_strokes"], n["q_1_2_added_ink"], n["q_7_9_strokes"], n["q_7_9_added_ink"]} <= regions
    # a channel's top 8 images mostly share one class (QUICK: 0.98); 8 images drawn at random would share
    # about 0.3, so a broken ranking stays far below 0.6
    assert n["top_activating_purity"] > 0.6 and n["maximization_hits"] >= 5


def test_calibration_and_label_numbers(entry):
    n = entry["numbers"]
    assert n["ece_after"] < n["ece_before"] and n["nll_after"] <= n["nll_before"]
    # the shipped model was trained with label smoothing 0.1: under-confident, so T < 1
    assert n["temperature"] < 1
    assert n["n_train_checked"] == 3000 and 0 < n["n_label_issues"] < 300 and n["oof_acc"] > 0.8
    assert n["n_flipped"] == 75 and n["flipped_recall"] >= 0.4
    issues = pd.read_csv(entry["dir"] / "label_issues.csv")
    assert len(issues) == n["n_label_issues"] and (issues["given"] != issues["predicted"]).mean() > 0.8


def test_robustness_numbers(entry):
    rob = pd.read_csv(entry["dir"] / "robustness.csv")
    assert set(rob["perturbation"]) == {"rotation", "shift", "noise", "blur"}
    assert set(rob["model"]) == {"this model", "LeNet-5 (plain)"}
    clean = rob[rob["level"] == 0].groupby("model")["acc"].mean()
    assert clean["this model"] > 0.98 and clean["LeNet-5 (plain)"] > 0.5
    mine = rob[rob["model"] == "this model"].groupby("perturbation")["acc"]
    assert (mine.first() >= mine.last()).all()               # the strongest level never helps
    # on clean digits no class takes more than a fifth of the answers (a model stuck on one answer: 1.0)
    assert (rob[rob["level"] == 0]["top_share"] < 0.2).all() and rob["top_share"].le(1).all()
    assert set(entry["numbers"]["robustness_top_share"]) == {f"{k} {m}" for k in set(rob["perturbation"]) for m in set(rob["model"])}


def test_notebook_is_committed_without_outputs_and_thin():
    nb = json.loads((Path(__file__).resolve().parent.parent / "notebooks" / f"{NAME}.ipynb").read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert "parameters" in code[0]["metadata"].get("tags", [])
    assert all(not c["outputs"] and c["execution_count"] is None for c in code)
    lines = [line for c in code for line in "".join(c["source"]).splitlines()]
    assert not [line for line in lines if line.lstrip().startswith(("def ", "class "))]
