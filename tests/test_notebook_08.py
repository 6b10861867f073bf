"""Notebook 08 (transfer learning) runs in QUICK mode, every section included, and writes sane figures and numbers.

The ImageNet section needs ResNet-18 weights in the torch hub cache; the test puts a randomly initialised
ResNet-18's weights into a temporary TORCH_HOME (inherited by the kernel) so that path runs too.
"""
from __future__ import annotations

import pandas as pd
import pytest
import torch

from conftest import check_written, requires_data

NAME = "08_transfer_learning"
FIGURES = ["digits_accuracy_vs_labels", "digits_gains", "learning_curves", "tsne_before_after",
           "cross_accuracy_vs_labels", "cross_gains", "sklearn_digits_conversion", "sklearn_accuracy_vs_labels",
           "imagenet_accuracy_vs_labels"]
TASKS = ["digits 0-4 → 5-9", "Fashion-MNIST → MNIST", "MNIST → Fashion-MNIST", "MNIST → scikit-learn digits"]

pytestmark = [pytest.mark.notebook, requires_data]


@pytest.fixture(scope="module")
def entry(quick_notebook, tmp_path_factory):
    import torchvision
    from torchvision.models import ResNet18_Weights

    home = tmp_path_factory.mktemp("torch-home")
    path = home / "hub" / "checkpoints" / ResNet18_Weights.IMAGENET1K_V1.url.rsplit("/", 1)[-1]
    path.parent.mkdir(parents=True)
    torch.manual_seed(0)
    torch.save(torchvision.models.resnet18().state_dict(), path)
    mp = pytest.MonkeyPatch()
    mp.setenv("TORCH_HOME", str(home))
    try:
        return quick_notebook(NAME)
    finally:
        mp.undo()


def test_every_figure_and_table_written(entry):
    numbers = check_written(entry, FIGURES, ["summary", "gains"])
    assert numbers["quick"] is True and numbers["seeds"] == 2 and numbers["imagenet_section_ran"] is True


def test_summary_covers_every_task_strategy_and_label_count(entry):
    summary = pd.read_csv(entry["dir"] / "summary.csv", index_col=0)
    assert list(dict.fromkeys(summary["task"])) == TASKS + ["ImageNet ResNet-18 → MNIST"]
    assert (summary["n"] == 2).all()
    assert (summary["ci_low"] <= summary["mean"]).all() and (summary["mean"] <= summary["ci_high"]).all()
    by_task = summary.groupby("task")["strategy"].agg(set)
    assert by_task["digits 0-4 → 5-9"] == {"frozen", "fine-tune", "scratch"}
    assert by_task["Fashion-MNIST → MNIST"] == {"frozen", "fine-tune", "scratch", "linear probe"}
    assert by_task["MNIST → scikit-learn digits"] == {"frozen", "fine-tune", "scratch", "linear probe", "zero-shot"}
    assert by_task["ImageNet ResNet-18 → MNIST"] == {"linear probe", "frozen"}          # CPU: no backprop through it
    assert set(summary.loc[summary["task"] == "MNIST → scikit-learn digits", "labels"].astype(str)) == {"0", "1", "all"}
    # far above chance (0.1 or 0.2) with all labels even after QUICK's 15 steps: a broken transfer or training
    # loop would not be
    full = summary[(summary["labels"].astype(str) == "all") & (summary["strategy"] == "fine-tune")].set_index("task")
    assert (full["mean"] > 0.45).all(), full["mean"]
    # a logistic regression on the source network's features reads every target well (QUICK: 0.76 to 0.99)
    probe = summary[(summary["labels"].astype(str) == "all") & (summary["strategy"] == "linear probe")]
    assert len(probe) == 4 and (probe["mean"] > 0.6).all(), probe[["task", "mean"]]


def test_numbers_and_gains(entry):
    n = entry["numbers"]
    assert n["digits_source_acc"] > 0.6
    # the shipped MNIST network reads most of scikit-learn's converted digits as they are
    assert n["sklearn_zero_shot_acc"] > 0.6
    assert n["tsne_probe_after"] > 0.5 and n["tsne_probe_before"] > 0.5
    assert n["tsne_probe_after"] <= 1.0 and n["tsne_probe_before"] <= 1.0
    gains = pd.read_csv(entry["dir"] / "gains.csv", index_col=0)
    assert set(gains["task"]) == set(TASKS) and (gains["baseline"] == "scratch").all()
    assert (gains["diff"] - (gains["mean_strategy"] - gains["mean_baseline"])).abs().max() < 1e-4
    assert (gains["ci_low"] <= gains["diff"] + 1e-9).all() and (gains["diff"] <= gains["ci_high"] + 1e-9).all()
    for slug in ("digits", "fashion_to_mnist", "mnist_to_fashion", "mnist_to_sklearn"):
        assert n[f"{slug}_strategy"] in ("frozen", "fine-tune", "linear probe")
        assert n[f"{slug}_diff"] == pytest.approx(n[f"{slug}_mean_strategy"] - n[f"{slug}_mean_baseline"], abs=1e-6)
    # with a single label per class, the pretrained MNIST network beats the same network trained from scratch
    assert n["mnist_to_sklearn_labels"] == 1 and n["mnist_to_sklearn_diff"] > 0.1


def test_all_labels_means_every_label(entry):
    """The bug of issue 17: "all" was capped at 400 steps. Every "all" run now sees its whole pool, and training
    from scratch on all labels does at least as well as on the fewest (it fell on scikit-learn's digits before)."""
    n = entry["numbers"]
    summary = pd.read_csv(entry["dir"] / "summary.csv", index_col=0)
    scratch = summary[summary["strategy"] == "scratch"].copy()
    scratch["labels"] = scratch["labels"].astype(str)
    for task, g in scratch.groupby("task"):
        by = g.set_index("labels")["mean"]
        fewest = g.sort_values("per_class")["labels"].iloc[0]
        assert by["all"] >= by[fewest] - 0.02, (task, by.to_dict())
    # scratch on all labels reads MNIST's digits well above chance (0.1 / 0.2) even in QUICK's short runs
    for slug in ("digits", "fashion_to_mnist"):
        assert n[f"{slug}_scratch_all_acc"] > 0.6, (slug, n[f"{slug}_scratch_all_acc"])
    assert n["mnist_to_fashion_scratch_all_acc"] > 0.4 and n["mnist_to_sklearn_scratch_all_acc"] > 0.2
