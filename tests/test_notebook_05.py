"""Notebook 05 (training dynamics) runs in QUICK mode and writes its GIFs, figures, tables and numbers."""
import importlib.util

import imageio.v3 as iio
import pandas as pd
import pytest

from conftest import check_written, requires_data
from test_claims import assert_quotes_exact

NAME = "05_training_dynamics"
FIGURES = ["distribution_shape", "weights_key_frames", "gradients_key_frames", "updates_key_frames", "gradient_flow",
           "gradient_heatmap", "update_ratios", "healthy_vs_sick", "representation_key_frames", "separation", "loss_line"]
TABLES = ["claims", "init_check", "distribution_shape", "layer_summary", "healthy_vs_sick", "separation", "loss_line"]
GIFS = ["weights_histograms", "gradients_histograms", "updates_histograms", "representation"]
LAYERS = ["conv1", "conv2", "fc1", "fc2"]

pytestmark = [pytest.mark.notebook, requires_data]


def test_figures_tables_and_gifs(entry):
    # every GIF animates (check_written); the lr x20 run diverges, so its accuracies are NaN (recorded as null)
    check_written(entry, FIGURES, TABLES, allow_missing=["sick.lr x20"])
    assert_quotes_exact(pd.read_csv(entry["dir"] / "claims.csv", index_col=0))  # every quote is in its source file
    n = entry["numbers"]
    for name in GIFS:
        path = entry["dir"] / f"{name}.gif"
        assert path.is_file() and f"{NAME}/{name}.gif" in entry["figures"], name
        assert path.stat().st_size < 3e6, name
    frames = iio.imread(entry["dir"] / "gradients_histograms.gif", index=None)
    assert len(frames) == n["frames"] == 10                   # 50 steps recorded every 5
    assert len(iio.imread(entry["dir"] / "weights_histograms.gif", index=None)) == n["frames"] + 1   # + final weights
    assert set(n["gif_mb"]) == {"weights", "gradients", "updates"} and max(n["gif_mb"].values()) < 3
    assert entry["seconds"] < 120, entry["seconds"]          # QUICK: well under a minute on a quiet machine


def test_the_run_and_the_shape_of_its_weights(entry):
    n = entry["numbers"]
    assert n["quick"] is True and n["layers"] == LAYERS and n["test_acc"] > 0.6
    assert n["init_matches_default"] is True                  # PyTorch's kaiming_uniform(a=sqrt(5))
    assert all(-1.35 < v < -1.05 for v in n["kurtosis_init"].values())      # uniform: -1.2
    assert all(n["kurtosis_final"][l] > n["kurtosis_init"][l] for l in ("conv2", "fc1"))   # towards the bell shape
    assert n["widest_layer"] == n["most_near_zero"] == "fc1"
    assert n["near_zero_init"]["fc1"] > n["near_zero_init"]["conv1"] and n["near_zero_init"]["fc1"] > n["near_zero_init"]["fc2"]
    assert n["recorder_mb"] < 1 and n["snapshot_steps"][0] == 0 and n["snapshot_steps"][-1] == 50
    shape = pd.read_csv(entry["dir"] / "distribution_shape.csv", index_col=0)
    assert len(shape) == 2 * len(LAYERS)


def test_gradient_flow_and_update_ratios(entry):
    n = entry["numbers"]
    assert set(n["grad_abs_mean"]) == set(LAYERS) and all(0 < v < 1 for v in n["grad_abs_mean"].values())
    assert set(n["update_ratio"]) == set(LAYERS) and all(1e-5 < v < 1 for v in n["update_ratio"].values())
    assert set(n["dead_frac"]) == {"conv1.relu", "conv2.relu", "fc1.relu"}
    summary = pd.read_csv(entry["dir"] / "layer_summary.csv", index_col=0)
    assert list(summary.index) == LAYERS and summary.loc["fc2", "grad_vs_last"] == 1.0


def test_healthy_against_sick(entry):
    s = entry["numbers"]["sick"]
    assert set(s) == {"healthy", "sigmoid", "sigmoid + batch norm", "lr x20"}
    assert s["sigmoid"]["first_vs_last_grad"] < 1e-3          # vanishing: orders of magnitude
    assert s["healthy"]["first_vs_last_grad"] > 100 * s["sigmoid"]["first_vs_last_grad"]
    assert s["sigmoid + batch norm"]["first_vs_last_grad"] > 100 * s["sigmoid"]["first_vs_last_grad"]
    assert s["lr x20"]["update_ratio"] > 3 * s["healthy"]["update_ratio"]
    assert s["lr x20"]["update_ratio_decades"] > 1            # over ten times the 1e-3 rule of thumb
    assert s["sigmoid"]["val_acc"] < 0.2 < 0.5 < s["healthy"]["val_acc"]
    assert s["sigmoid + batch norm"]["val_acc"] > 0.5
    assert s["lr x20"]["val_acc"] is None or s["lr x20"]["val_acc"] < 0.5   # diverged (NaN) or stuck


def test_representation_and_loss_line(entry):
    n = entry["numbers"]
    assert n["knn_acc_last"] > n["knn_acc_first"] and n["silhouette_last"] > n["silhouette_first"]
    assert n["knn_acc_last"] > 0.6
    for split in ("train", "test"):
        assert n[f"line_{split}_loss_1"] < 0.5 * n[f"line_{split}_loss_0"]
        assert n[f"line_{split}_rises"] == 0
    line = pd.read_csv(entry["dir"] / "loss_line.csv")
    assert set(line["split"]) == {"train", "test"} and line["alpha"].min() == -0.5 and line["alpha"].max() == 1.5


def test_tensorboard_export(entry):
    assert entry["numbers"]["tensorboard_exported"] is (importlib.util.find_spec("tensorboard") is not None)
