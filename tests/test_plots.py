import json

import numpy as np
import pandas as pd
import pytest
from PIL import Image

import mnistlab as ml
from mnistlab.viz.store import figure_to_array, figures_root


def test_figures_save_png_gif_table_and_numbers(tmp_path):
    figs = ml.Figures("99_test", root=tmp_path / "99_test")
    fig = ml.image_grid(np.random.randint(0, 255, (7, 28, 28)), labels=list(range(7)), ncols=4)
    png = figs.save(fig, "grid")
    assert png == tmp_path / "99_test" / "grid.png"
    w, h = Image.open(png).size
    assert w > 200 and h > 100
    frames = [np.full((20, 30, 3), v, dtype=np.uint8) for v in (0, 128, 255)]
    gif = figs.save_gif(frames, "anim", fps=2)
    assert Image.open(gif).n_frames == 3
    other = ml.image_grid(np.zeros((7, 28, 28)), ncols=4)
    assert Image.open(figs.save_gif([fig, other], "figs")).n_frames == 2
    with pytest.raises(ValueError, match="one shape"):
        figs.save_gif(frames + [fig], "mixed")
    figs.save_table(pd.DataFrame({"a": [1, 2]}), "tbl")
    assert (tmp_path / "99_test" / "tbl.csv").read_text().startswith(",a")
    figs.record(acc=np.float32(0.5), bad=float("nan"))
    figs.record(n=3)
    assert json.loads(figs.numbers_path.read_text()) == {"acc": 0.5, "bad": None, "n": 3}
    figs.reset()
    assert not figs.numbers_path.exists()
    with pytest.raises(ValueError):
        figs.save_gif([], "empty")


def test_figures_root_env(monkeypatch, tmp_path):
    monkeypatch.setenv("MNISTLAB_FIGURES", str(tmp_path))
    assert figures_root() == tmp_path
    assert ml.Figures("01_x").dir == tmp_path / "01_x"
    monkeypatch.delenv("MNISTLAB_FIGURES")
    from mnistlab._util import project_root

    assert figures_root() == project_root() / "figures"  # the checkout's, wherever the notebook runs from


def test_learning_curves_and_figure_to_array():
    hist = pd.DataFrame({"epoch": [1, 2], "train_loss": [1.0, 0.5], "train_acc": [0.6, 0.8],
                         "val_loss": [1.1, 0.7], "val_acc": [0.55, 0.75]})
    fig = ml.learning_curves(hist, title="t")
    assert len(fig.axes) == 2 and len(fig.axes[0].lines) == 2
    arr = figure_to_array(fig)
    assert arr.ndim == 3 and arr.shape[2] == 3 and arr.dtype == np.uint8
