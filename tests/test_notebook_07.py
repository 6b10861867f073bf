"""Notebook 07 (GAN) runs in QUICK mode and writes its figures, GIFs, tables and numbers."""
import math

import imageio.v3 as iio
import numpy as np
import pandas as pd
import pytest

from conftest import check_written, requires_data

NAME = "07_gan"
FIGURES = ["samples", "training_curves", "quality_over_training", "class_shares", "interpolation", "class_grid",
           "distance_distributions", "nearest_neighbours"]
TABLES = ["reference_distances", "quality_over_training", "final_evaluation", "targets"]

pytestmark = [pytest.mark.notebook, requires_data]


def test_notebook_07_quick(entry):
    n = check_written(entry, FIGURES, TABLES)
    folder = entry["dir"]
    assert n["quick"] is True and n["dataset"] == "mnist" and n["n_eval"] == 1000 and n["n_train"] == 4000
    # a frame at step 0 and every SNAP_EVERY steps; the conditional run also at its checkpoint halfway
    planned = set(range(0, n["steps"] + 1, n["snap_every"])) | {n["steps"]}
    for name, count in (("training_dcgan", len(planned)), ("training_cdcgan", len(planned | {n["steps"] // 2}))):
        gif = folder / f"{name}.gif"
        assert gif.is_file() and gif.stat().st_size < 3_000_000
        assert f"07_gan/{name}.gif" in entry["figures"]
        frames = iio.imread(gif)
        assert frames.shape[0] == count and frames.ndim == 4, name
        # training changed the samples: the step-0 and last frames differ by ~50 of 255 per pixel in QUICK;
        # a generator that never updated would differ only in the "step" label (under 1)
        assert np.abs(frames[0].astype(int) - frames[-1]).mean() > 10, name
    # the judge and the scale
    assert n["judge_acc"] > 0.99
    assert 0 < n["floor"] < n["blurred"] and n["floor"] < n["noised"]
    # training happened, both GANs, and was timed
    both = (n["train_seconds_dcgan"], n["train_seconds_cdcgan"])   # QUICK: one process, one GAN after the other
    assert n["workers"] == 1 and n["train_seconds"] == pytest.approx(sum(both))
    assert n["train_seconds_dcgan"] > 0 and n["train_seconds_cdcgan"] > 0
    # the samples are judged. 300 QUICK steps are still in the phase where D wins (the full run learns past it),
    # so the samples are far from real digits: a Frechet distance that compared the test set with itself, or
    # samples that never reached the judge, would sit at the floor
    assert n["frechet_dcgan"] > 10 * n["floor"] and n["frechet_cdcgan"] > 10 * n["floor"]
    assert n["ratio_dcgan"] == pytest.approx(n["frechet_dcgan"] / n["floor"])
    # the class numbers are those of the judged samples (the final table, the shares, the targets); whether
    # they beat chance is test_samples_are_the_requested_digits below
    final = pd.read_csv(folder / "final_evaluation.csv", index_col=0)
    assert n["cond_accuracy"] == pytest.approx(final.loc["cdcgan", "cond_accuracy"])
    assert (n["cond_accuracy"] * n["n_eval"]) == pytest.approx(round(n["cond_accuracy"] * n["n_eval"]))
    assert n["confidence_dcgan"] == pytest.approx(final.loc["dcgan", "mean_confidence"])
    assert n["coverage_dcgan"] == final.loc["dcgan", "coverage"] == sum(s >= 0.01 for s in n["shares_dcgan"])
    assert n["max_share_deviation"] == pytest.approx(max(abs(s - 0.1) for s in n["shares_dcgan"]))
    assert len(n["shares_dcgan"]) == 10 and math.isclose(sum(n["shares_dcgan"]), 1.0, abs_tol=1e-6)
    assert n["kl_uniform_dcgan"] == pytest.approx(
        sum(p * math.log(10 * p) for p in n["shares_dcgan"] if p > 0), abs=1e-6)
    quality = pd.read_csv(folder / "quality_over_training.csv")
    assert set(quality["gan"]) == {"dcgan", "cdcgan"}
    evals = sorted(set(range(n["eval_every"], n["steps"] + 1, n["eval_every"])) | {n["steps"]})
    assert sorted(quality.loc[quality["gan"] == "dcgan", "step"]) == evals
    assert sorted(quality.loc[quality["gan"] == "cdcgan", "step"]) == sorted(set(evals) | {n["steps"] // 2})  # + checkpoint
    targets = pd.read_csv(folder / "targets.csv")
    assert len(targets) == n["targets_total"] == 6 and targets["met"].sum() == n["targets_met"]
    assert targets["value"].iloc[0] == pytest.approx(n["cond_accuracy"])
    refs = pd.read_csv(folder / "reference_distances.csv")
    assert refs["reference"].iloc[0].startswith("train vs test") and (refs["n"] == 1000).all()
    # samples lie further from their nearest training digit than test digits do (QUICK: 8.1 against 5.4):
    # a generator that copied training images would sit below the test digits
    assert n["median_nn_dcgan"] > n["median_nn_test"] > 0
    # the health verdict reads the judge's numbers: QUICK's samples lie far above the floor (asserted above), so
    # neither run can be called healthy, whatever its dynamics; the failed checks name the Frechet distance
    for name in ("dcgan", "cdcgan"):
        assert n[f"verdict_{name}"] != "healthy", name
        if n[f"dynamics_{name}"] == "balanced":
            assert n[f"verdict_{name}"] == "samples not yet real"
            assert any(f.startswith("Frechet distance") and "x the floor" in f for f in n[f"failed_{name}"]), name


def test_samples_are_the_requested_digits(entry):
    """The conditional GAN draws the digit it is asked for and the unconditional one draws every digit;
    a broken generator (ignoring its label, collapsed or untrained) sits at chance: 10%, 1 class.
    Measured in QUICK (800 steps, width 16): 57.7% as requested, 54% of the class grid, 10 classes, largest
    share gap 0.19, precision 0.31 (cdcgan), recall 0.50 (dcgan)."""
    n = entry["numbers"]
    assert n["cond_accuracy"] > 0.4 and n["grid_accuracy"] > 0.3  # four and three times chance
    assert n["coverage_dcgan"] >= 8 and n["max_share_deviation"] < 0.3
    assert n["precision_cdcgan"] > 0.1 and n["recall_dcgan"] > 0.2


def test_training_moved_the_losses(entry):
    """Both runs trained: losses finite everywhere, and the unconditional discriminator's loss moved from its
    first steps (measured in QUICK: 0.77 over the first 100 steps, 1.39 over the last 100, the hinge equilibrium
    being 2); a discriminator that never stepped keeps its first loss. The runs were timed."""
    n = entry["numbers"]
    assert n["losses_finite"] is True
    assert abs(n["loss_d_last_dcgan"] - n["loss_d_first_dcgan"]) > 0.2
    assert n["steps_per_second_dcgan"] > 0 and n["steps_per_second_cdcgan"] > 0
