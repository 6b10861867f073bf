"""Notebook 07 (GAN) runs in QUICK mode and writes its figures, GIFs, tables and numbers."""
import math

import imageio.v3 as iio
import pandas as pd
import pytest

from conftest import check_written, requires_data

FIGURES = ["samples", "training_curves", "quality_over_training", "class_shares", "interpolation", "class_grid",
           "distance_distributions", "nearest_neighbours"]
TABLES = ["reference_distances", "quality_over_training", "final_evaluation", "targets"]

pytestmark = [pytest.mark.notebook, requires_data]


def test_notebook_07_quick(quick_notebook):
    entry = quick_notebook("07_gan")
    n = check_written(entry, FIGURES, TABLES)
    folder = entry["dir"]
    assert n["quick"] is True and n["dataset"] == "mnist" and n["n_eval"] == 1000 and n["n_train"] == 4000
    # a frame at step 0 and every 100 steps; the conditional run also at its checkpoint halfway (step 150)
    for name, count in (("training_dcgan", n["steps"] // 100 + 1), ("training_cdcgan", n["steps"] // 100 + 2)):
        gif = folder / f"{name}.gif"
        assert gif.is_file() and gif.stat().st_size < 3_000_000
        assert f"07_gan/{name}.gif" in entry["figures"]
        frames = iio.imread(gif)
        assert frames.shape[0] == count and frames.ndim == 4, name
        assert frames[0].std() != frames[-1].std()  # the samples changed over training
    # the judge and the scale
    assert n["judge_acc"] > 0.99
    assert 0 < n["floor"] < n["blurred"] and n["floor"] < n["noised"]
    # training happened, both GANs, and was timed
    assert n["train_seconds"] == pytest.approx(n["train_seconds_dcgan"] + n["train_seconds_cdcgan"])
    assert 0 < n["train_seconds_dcgan"] < 120
    # the samples are judged. 300 QUICK steps are still in the phase where D wins (the full run learns past it),
    # so the samples are far from real digits: a Frechet distance that compared the test set with itself, or
    # samples that never reached the judge, would sit at the floor
    assert n["frechet_dcgan"] > 10 * n["floor"] and n["frechet_cdcgan"] > 10 * n["floor"]
    assert n["ratio_dcgan"] == pytest.approx(n["frechet_dcgan"] / n["floor"])
    assert 1 <= n["coverage_dcgan"] <= 10 and 0 <= n["max_share_deviation"] <= 0.9
    assert 0 <= n["cond_accuracy"] <= 1 and 0.1 < n["confidence_dcgan"] <= 1
    assert len(n["shares_dcgan"]) == 10 and math.isclose(sum(n["shares_dcgan"]), 1.0, abs_tol=1e-6)
    assert n["kl_uniform_dcgan"] == pytest.approx(
        sum(p * math.log(10 * p) for p in n["shares_dcgan"] if p > 0), abs=1e-6)
    quality = pd.read_csv(folder / "quality_over_training.csv")
    assert set(quality["gan"]) == {"dcgan", "cdcgan"}
    assert sorted(quality.loc[quality["gan"] == "dcgan", "step"]) == [100, 200, 300]
    assert sorted(quality.loc[quality["gan"] == "cdcgan", "step"]) == [100, 150, 200, 300]  # also at the checkpoint
    targets = pd.read_csv(folder / "targets.csv")
    assert len(targets) == n["targets_total"] == 6 and targets["met"].sum() == n["targets_met"]
    refs = pd.read_csv(folder / "reference_distances.csv")
    assert refs["reference"].iloc[0].startswith("train vs test") and (refs["n"] == 1000).all()
    assert n["median_nn_test"] > 0 and n["median_nn_dcgan"] > 0
    assert n["verdict_dcgan"] in ("healthy", "discriminator wins", "generator fools D")
