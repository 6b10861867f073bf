import json

import numpy as np
import pandas as pd
import matplotlib.pyplot as plt
import pytest
from PIL import Image

import mnistlab as ml
from conftest import assert_picture, picture_problem  # noqa: F401 - shared with the notebook tests
from mnistlab.viz.store import figure_to_array, figures_root


def test_figures_save_png_gif_table_and_numbers(tmp_path):
    figs = ml.Figures("99_test", root=tmp_path / "99_test")
    fig = ml.image_grid(np.random.randint(0, 255, (7, 28, 28)), labels=list(range(7)), ncols=4)
    # every method returns None: a notebook cell ending with one shows no PosixPath or dict after it
    assert figs.save(fig, "grid") is None
    png = tmp_path / "99_test" / "grid.png"
    w, h = Image.open(png).size
    assert w > 200 and h > 100
    frames = [np.full((20, 30, 3), v, dtype=np.uint8) for v in (0, 128, 255)]
    assert figs.save_gif(frames, "anim", fps=2) is None
    assert Image.open(figs.dir / "anim.gif").n_frames == 3
    other = ml.image_grid(np.zeros((7, 28, 28)), ncols=4)
    figs.save_gif([fig, other], "figs")
    assert Image.open(figs.dir / "figs.gif").n_frames == 2
    with pytest.raises(ValueError, match="one shape"):
        figs.save_gif(frames + [fig], "mixed")
    assert figs.save_table(pd.DataFrame({"a": [1, 2]}), "tbl") is None
    assert (tmp_path / "99_test" / "tbl.csv").read_text().startswith(",a")
    assert figs.record(acc=np.float32(0.5), bad=float("nan")) is None
    assert figs.record(n=3) is None
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

    # a notebook run by hand writes under the checkout's build/, wherever it runs from: only the main job
    # (which sets MNISTLAB_FIGURES) writes the committed figures/
    assert figures_root() == project_root() / "build" / "figures"
    assert ml.Figures("01_x").dir == project_root() / "build" / "figures" / "01_x"


def test_picture_check_fails_blank_single_colour_and_empty_axes(tmp_path):
    from PIL import Image

    Image.new("RGB", (640, 480), "white").save(tmp_path / "blank.png")
    Image.new("RGB", (640, 480), (200, 30, 30)).save(tmp_path / "red.png")
    fig, ax = plt.subplots(figsize=(6, 4))
    fig.savefig(tmp_path / "empty_axes.png", dpi=110)
    rng = np.random.default_rng(0)
    ax.scatter(*rng.normal(size=(2, 500)), c=rng.integers(0, 10, 500), cmap="tab10", s=20)
    fig.savefig(tmp_path / "scatter.png", dpi=110)
    for bad in ("blank", "red", "empty_axes"):
        assert picture_problem(tmp_path / f"{bad}.png") is not None, bad
    assert picture_problem(tmp_path / "scatter.png") is None


def _runs(seeds=(0, 1, 2)):
    rows = [{"config": c, "seed": s, "epoch": e, "train_loss": 1 / e + 0.01 * s, "val_loss": 1.1 / e + 0.02 * s,
             "train_acc": 0.9 + 0.02 * e + 0.003 * s, "val_acc": 0.88 + 0.02 * e + 0.004 * s}
            for c in ("a", "b") for s in seeds for e in (1, 2, 3)]
    return pd.DataFrame(rows)


def test_plot_curves_of_one_fit_history():
    from mnistlab.viz.experiments import plot_curves

    hist = pd.DataFrame({"epoch": [1, 2], "train_loss": [1.0, 0.5], "train_acc": [0.6, 0.8],
                         "val_loss": [1.1, 0.7], "val_acc": [0.55, 0.75]})
    fig = plot_curves(hist, [("train_loss", "val_loss"), ("train_acc", "val_acc")], title="t")
    loss, acc = fig.axes
    assert len(loss.lines) == 2 and len(acc.lines) == 2
    np.testing.assert_allclose(acc.lines[1].get_ydata(), [55.0, 75.0])  # accuracy in percent
    assert acc.get_ylabel() == "accuracy (%)" and loss.get_ylabel().startswith("loss")
    assert fig._suptitle.get_text() == "t"
    arr = figure_to_array(fig)
    assert arr.ndim == 3 and arr.shape[2] == 3 and arr.dtype == np.uint8


def test_plot_curves_of_many_seeds_show_the_mean_and_its_t_interval():
    from mnistlab.experiments.stats import t_interval
    from mnistlab.viz.experiments import plot_curves

    df = _runs()
    fig = plot_curves(df, metrics=["val_acc"])
    ax = fig.axes[0]
    assert len(ax.lines) == 2 and len(ax.collections) == 2   # one mean line and one band per config
    mean = [l for l in ax.lines if l.get_label() == "a"][0]
    vals = df[(df.config == "a") & (df.epoch == 2)]["val_acc"].to_numpy() * 100
    assert mean.get_ydata()[1] == pytest.approx(vals.mean())
    band = ax.collections[0].get_paths()[0].vertices[:, 1]
    from scipy import stats
    half = stats.t.ppf(0.975, 2) * vals.std(ddof=1) / np.sqrt(3)
    assert t_interval(vals).half == pytest.approx(half)
    top = [df[(df.config == "a") & (df.epoch == e)]["val_acc"].to_numpy() * 100 for e in (1, 2, 3)]
    assert band.max() == pytest.approx(max(t_interval(v).high for v in top), rel=1e-6)
    with pytest.raises(ValueError, match="metric"):
        plot_curves(df, metrics=["f1"])
    with pytest.raises(ValueError, match="epoch"):
        plot_curves(df.drop(columns="epoch"))


def test_panels_takes_axes_an_array_or_a_subfigure():
    from mnistlab.viz.common import finish, panels

    fig, grid, created = panels(None, 2, 3)
    assert created and grid.shape == (2, 3) and fig.axes == list(grid.ravel())
    caller = plt.figure()
    one = caller.add_subplot(121)
    f, g, c = panels(one)
    assert f is caller and g[0, 0] is one and not c
    with pytest.raises(ValueError, match="needs 2 axes"):
        panels(one, 1, 2)
    sub = caller.subfigures(1, 2)[1]
    f, g, c = panels(sub, 2, 2, count=3)
    assert f is sub and g.shape == (2, 2) and not c and not g[1, 1].axison
    assert finish(f, c) is caller                     # a plot drawn into a subfigure returns the top-level figure
    f, g, c = panels(caller.subplots(1, 4), count=3)
    assert g.shape == (1, 4) and not g[0, 3].axison
    with pytest.raises(ValueError, match="several figures"):
        panels([one, plt.figure().add_subplot()], 1, 2)


def test_image_grid_into_callers_axes_and_errors():
    import matplotlib.pyplot as plt

    fig = plt.figure()
    axes = fig.subplots(2, 4)
    out = ml.image_grid(np.zeros((6, 28, 28)), labels=list(range(6)), ax=axes)
    assert out is fig and sum(bool(a.images) for a in fig.axes) == 6
    with pytest.raises(ValueError, match="needs 6 axes"):
        ml.image_grid(np.zeros((6, 28, 28)), ax=fig.subplots(1, 2))
    with pytest.raises(ValueError, match="titles"):
        ml.image_grid(np.zeros((2, 784)), titles=["a"])


def test_t_interval_is_the_one_student_t_interval():
    from scipy import stats

    from mnistlab.experiments.stats import t_interval

    x = np.array([0.97, 0.98, 0.995, np.nan])
    ci = t_interval(x)
    lo, hi = stats.t.interval(0.95, 2, loc=np.nanmean(x), scale=stats.sem(x[:3]))
    assert ci.n == 3 and (ci.low, ci.high) == (pytest.approx(lo), pytest.approx(hi))
    cols = t_interval(np.array([[1.0, 2.0, 5.0], [3.0, 2.0, np.nan], [5.0, 2.0, np.nan]]), axis=0)
    np.testing.assert_allclose(cols.mean, [3.0, 2.0, 5.0])
    assert cols.half[0] == pytest.approx(t_interval([1.0, 3.0, 5.0]).half) and cols.half[1] == 0.0
    assert np.isnan(cols.half[2]) and list(cols.n) == [3, 3, 1]
    assert np.isnan(t_interval([]).mean) and np.isnan(t_interval([2.0]).half)
