"""Notebook 04 (optimizers) runs in QUICK mode and writes its figures, tables and numbers."""
import pandas as pd
import pytest

from conftest import check_written, requires_data
from mnistlab.training.optim import DEFAULT_LR

OPTIMIZERS = ["sgd", "momentum", "nesterov", "adam", "adamw", "rmsprop", "adagrad", "adadelta"]
NAME = "04_optimizers"
FIGURES = ["default_curves", "lr_sweep", "tuned_curves", "default_vs_tuned", "seconds"]
TABLES = ["default_table", "lr_sweep", "final_table", "comparisons", "seconds"]

pytestmark = [pytest.mark.notebook, requires_data]


@pytest.fixture(scope="module")
def entry(quick_notebook):
    return quick_notebook(NAME)


def test_figures_and_tables(entry):
    check_written(entry, FIGURES, TABLES)


def test_numbers(entry):
    n = entry["numbers"]
    assert n["quick"] is True and n["seeds"] == 2
    assert set(n["best_lr"]) == set(OPTIMIZERS) == set(n["default_acc"]) == set(n["tuned_acc"])
    for opt in OPTIMIZERS:  # the 2-point grid plus the default, widened by x3 where the best was on an edge
        grid = n["lr_grid"][opt]
        assert n["best_lr"][opt] in grid and 3 <= len(grid) <= 5
        assert min(grid) >= DEFAULT_LR[opt] * 0.3 / 9 - 1e-12 and max(grid) <= DEFAULT_LR[opt] * 3.0 * 9 + 1e-12
    assert set(n["best_lr_at_grid_edge"]) <= set(OPTIMIZERS)
    assert all(0 < v <= 1 for v in n["default_acc"].values()) and all(0 < v <= 1 for v in n["tuned_acc"].values())
    assert n["default_leader"] in OPTIMIZERS and n["tuned_leader"] in OPTIMIZERS
    assert n["default_acc"][n["default_leader"]] == max(n["default_acc"].values())
    assert set(n["tuned_beaten"]) | set(n["tuned_within_noise"]) | {n["tuned_leader"]} == set(OPTIMIZERS)
    assert all(v > 0 for v in n["seconds_per_epoch"].values())
    final = pd.read_csv(entry["dir"] / "final_table.csv", index_col=0)
    assert list(final.index) == OPTIMIZERS and (final["tuned_rank"] >= 1).all()
    sweep = pd.read_csv(entry["dir"] / "lr_sweep.csv", index_col=0)
    assert len(sweep) == 8 and sweep.shape[1] >= 3  # 3 rates per optimizer
