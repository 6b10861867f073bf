"""Notebook 03 (model search) runs in QUICK mode and writes its figures, tables and numbers."""
import pandas as pd
import pytest

from conftest import check_written, requires_data

NAME = "03_model_search"
FIGURES = ["progression", "small_networks", "failure_ideas", "cv_curves", "cv_box", "early_stopping",
           "strongest_recipe", "new_digits"]
TABLES = ["progression", "small_networks", "failure_ideas", "cv_histories", "strongest_recipe"]
VERDICTS = {"differs beyond noise", "within noise", "too few seeds"}

pytestmark = [pytest.mark.notebook, requires_data]


@pytest.fixture(scope="module")
def entry(quick_notebook):
    return quick_notebook(NAME)


def test_figures_and_tables(entry):
    check_written(entry, FIGURES, TABLES)


def test_progression_table(entry):
    n = entry["numbers"]
    assert n["quick"] is True and n["seeds"] == 2 and n["n_train"] == n["n_train_progression"] == 1500
    assert n["n_test"] == 1000
    table = pd.read_csv(entry["dir"] / "progression.csv", index_col=0)
    assert list(table.index) == ["untrained", "vanilla LeNet-5", "+ inputs in [-1, 1]", "+ batch 64", "+ batch 32",
                                 "+ lr 5e-4", "+ deeper ReLU/max-pool net", "+ SGD momentum 0.9, lr 1e-3"]
    assert (table["n"] == 2).all() and (table["ci_low"] <= table["mean"]).all() and (table["mean"] <= table["ci_high"]).all()
    assert table.loc["vanilla LeNet-5", "published"] == 0.9725
    assert set(table["step vs previous"].dropna()) <= VERDICTS
    assert 0.03 < n["untrained_acc"] < 0.25  # chance is 10%
    assert n["vanilla_acc"] > n["untrained_acc"] and 0 < n["progression_final_acc"] <= 1
    steps = n["progression_real_gains"] + n["progression_real_losses"] + n["progression_within_noise"]
    assert sorted(steps) == sorted(table.index[2:])  # every step after vanilla gets exactly one verdict


def test_sections_numbers(entry):
    n = entry["numbers"]
    ideas = pd.read_csv(entry["dir"] / "failure_ideas.csv", index_col=0)
    assert len(ideas) == 8 and set(ideas["verdict"].dropna()) <= VERDICTS
    assert len(n["ideas_help"]) + len(n["ideas_hurt"]) + len(n["ideas_within_noise"]) == 7
    assert 0.1 < n["conv_fc_acc"] <= 1 and 0.1 < n["conv2_fc2_acc"] <= 1
    assert 0 <= n["cv_min_acc"] <= n["cv_mean_acc"] <= n["cv_max_acc"] <= 1 and n["cv_folds"] == 2
    cv = pd.read_csv(entry["dir"] / "cv_histories.csv")
    assert sorted(cv["fold"].unique()) == [0, 1]
    assert 1 <= n["es_best_epoch_mean"] <= n["es_stop_epoch_mean"] <= n["es_max_epochs"]
    assert n["es_verdict"] in VERDICTS
    assert n["strong_model"] == "best" and n["strong_seeds"] == 2 and n["strong_train_seconds"] > 0
    assert 0.1 < n["strong_acc"] <= 1 and 0.1 < n["strong_ensemble_acc"] <= 1
    strong = pd.read_csv(entry["dir"] / "strongest_recipe.csv")
    assert len(strong) == 2 and strong["test_acc"].mean() == pytest.approx(n["strong_acc"])
    assert n["final_checkpoint_ok"] is True and n["drawn_digits"] == 9 and 0 <= n["drawn_correct_fraction"] <= 1
