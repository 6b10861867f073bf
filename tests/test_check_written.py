"""The checks the notebook tests rely on fail on broken output: a flat PNG, a one-frame or frozen GIF, an
empty table, NaN numbers, and cells that end with a stray PosixPath or a long dict."""
from __future__ import annotations

import json
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from PIL import Image

import mnistlab as ml
from conftest import NotebookCellWarning, check_executed, check_written, executed_outputs

NB = "99_check"


def good_png(path: Path) -> None:
    rng = np.random.default_rng(0)
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.scatter(*rng.normal(size=(2, 300)), c=rng.integers(0, 10, 300), cmap="tab10", s=20)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def good_gif(path: Path, n: int = 3) -> None:
    import imageio.v3 as iio

    rng = np.random.default_rng(1)
    iio.imwrite(path, rng.integers(0, 256, (n, 40, 60, 3), dtype=np.uint8), duration=250, loop=0)


def written(tmp_path, numbers=None, figures=("plot",), gifs=("anim",), tables=("tbl",)) -> dict:
    """A notebook entry as ``quick_notebook`` returns it, over a folder of good files."""
    folder = tmp_path / NB
    folder.mkdir(parents=True, exist_ok=True)
    for name in figures:
        good_png(folder / f"{name}.png")
    for name in gifs:
        good_gif(folder / f"{name}.gif")
    for name in tables:
        pd.DataFrame({"a": [1, 2], "b": [0.5, 0.25]}).to_csv(folder / f"{name}.csv")
    numbers = {"acc": 0.9, "n": 3, "per_class": {"0": 0.8, "1": [0.1, 0.2]}} if numbers is None else numbers
    (folder / "numbers.json").write_text(json.dumps(numbers))
    files = [f"{NB}/{p.name}" for p in sorted(folder.iterdir()) if p.suffix in (".png", ".gif", ".csv")]
    return {"dir": folder, "figures": files, "manifest": {"figures": dict.fromkeys(files)},
            "numbers": json.loads((folder / "numbers.json").read_text())}


def test_good_files_pass(tmp_path):
    entry = written(tmp_path)
    assert check_written(entry, ["plot"], ["tbl"]) == entry["numbers"]


@pytest.mark.parametrize("make, message", [
    (lambda p: Image.new("RGB", (640, 480), "white").save(p), "flat"),
    (lambda p: Image.new("RGB", (640, 480), (40, 90, 200)).save(p), "flat"),
    # two flat halves: a high pixel std, but only two colours
    (lambda p: Image.fromarray(np.repeat(np.array([[0], [255]], np.uint8), 240, 0).repeat(640, 1)).save(p), "flat"),
    (lambda p: Image.fromarray(np.random.default_rng(0).integers(0, 256, (100, 150, 3), np.uint8)).save(p),
     "100 pixels"),
    (lambda p: p.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 6000), "does not decode"),
    (lambda p: Image.fromarray(np.random.default_rng(0).integers(0, 256, (480, 640, 3), np.uint8)).save(p,
                                                                                                      format="JPEG"),
     "not a PNG"),
])
def test_broken_png_fails(tmp_path, make, message):
    entry = written(tmp_path)
    make(entry["dir"] / "plot.png")
    with pytest.raises(AssertionError, match=message):
        check_written(entry, ["plot"], ["tbl"])


def test_empty_axes_fail(tmp_path):
    entry = written(tmp_path)
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.set_title("nothing drawn")
    fig.savefig(entry["dir"] / "plot.png", dpi=110)
    plt.close(fig)
    with pytest.raises(AssertionError, match="empty axes"):
        check_written(entry, ["plot"], ["tbl"])


def test_missing_or_unlisted_figure_fails(tmp_path):
    entry = written(tmp_path)
    with pytest.raises(AssertionError, match="missing figure other"):
        check_written(entry, ["other"])
    entry["figures"].remove(f"{NB}/plot.png")
    with pytest.raises(AssertionError):
        check_written(entry, ["plot"])


def test_one_frame_and_frozen_gifs_fail(tmp_path):
    import imageio.v3 as iio

    entry = written(tmp_path)
    good_gif(entry["dir"] / "anim.gif", n=1)
    with pytest.raises(AssertionError, match="1 frame: not an animation"):
        check_written(entry)
    frame = np.random.default_rng(2).integers(0, 256, (40, 60, 3), dtype=np.uint8)
    iio.imwrite(entry["dir"] / "anim.gif", np.stack([frame] * 4), duration=250, loop=0)
    # Pillow folds repeated frames into one; another writer keeps them: either way it fails
    with pytest.raises(AssertionError, match="1 frame: not an animation|all 4 frames are the same"):
        check_written(entry)
    iio.imwrite(entry["dir"] / "anim.gif", np.stack([np.full((40, 60, 3), v, np.uint8) for v in (0, 0, 9)]),
                duration=250, loop=0)
    with pytest.raises(AssertionError, match="first frame is flat"):
        check_written(entry)


def test_empty_or_broken_table_fails(tmp_path):
    entry = written(tmp_path)
    pd.DataFrame({"a": [], "b": []}).to_csv(entry["dir"] / "tbl.csv")
    with pytest.raises(AssertionError, match="holds no row"):
        check_written(entry, tables=["tbl"])
    (entry["dir"] / "tbl.csv").write_text("")
    with pytest.raises(AssertionError, match="does not parse"):
        check_written(entry, tables=["tbl"])
    (entry["dir"] / "tbl.csv").unlink()
    with pytest.raises(AssertionError, match="missing table tbl"):
        check_written(entry, tables=["tbl"])


@pytest.mark.parametrize("numbers, message", [
    ({"acc": float("nan")}, "acc = nan"),
    ({"per_class": {"3": float("inf")}}, r"per_class.3 = inf"),
    ({"acc": None}, "acc is null"),                                  # Figures.record writes NaN as null
    ({"curve": [0.1, None]}, r"curve\[1\] is null"),
    ({}, "records nothing"),
])
def test_non_finite_numbers_fail(tmp_path, numbers, message):
    entry = written(tmp_path, numbers=numbers)
    with pytest.raises(AssertionError, match=message):
        check_written(entry)


def test_allowed_missing_numbers_and_mismatch_with_manifest(tmp_path):
    entry = written(tmp_path, numbers={"sick": {"lr x20": {"acc": None}, "healthy": {"acc": 0.9}}})
    check_written(entry, allow_missing=["sick.lr x20"])
    with pytest.raises(AssertionError, match="sick.lr x20.acc is null"):
        check_written(entry)
    entry["numbers"] = {"other": 1}
    with pytest.raises(AssertionError):
        check_written(entry, allow_missing=["sick.lr x20"])


def test_real_figures_store_output_passes(tmp_path):
    """What :class:`mnistlab.Figures` writes passes the checks; what it writes from a blank figure does not."""
    figs = ml.Figures(NB, root=tmp_path / NB)
    fig = ml.image_grid(np.random.default_rng(0).integers(0, 255, (12, 28, 28)), labels=list(range(12)), ncols=6)
    assert figs.save(fig, "grid") is None
    frames = [ml.image_grid(np.random.default_rng(s).integers(0, 255, (6, 28, 28)), ncols=3) for s in (0, 1)]
    assert figs.save_gif(frames, "anim", fps=2) is None
    assert figs.save_table(pd.DataFrame({"a": [1]}), "tbl") is None
    assert figs.record(acc=0.5) is None
    files = [f"{NB}/{n}" for n in ("grid.png", "anim.gif", "tbl.csv")]
    entry = {"dir": figs.dir, "figures": files, "manifest": {"figures": files}, "numbers": {"acc": 0.5}}
    check_written(entry, ["grid"], ["tbl"])
    figs.save(plt.figure(figsize=(6, 4)), "blank", close=True)
    with pytest.raises(AssertionError, match="blank.png is flat"):
        check_written(entry, ["grid"], ["tbl"])


# ------------------------------------------------------------------------ executed notebooks

def notebook(path: Path, cells) -> Path:
    """Write an executed notebook of code cells given as ``(source, outputs)``."""
    nb = {"nbformat": 4, "nbformat_minor": 5, "metadata": {},
          "cells": [{"cell_type": "code", "execution_count": i + 1, "id": f"c{i}", "metadata": {}, "source": src,
                     "outputs": outs} for i, (src, outs) in enumerate(cells)]}
    path.write_text(json.dumps(nb))
    return path


def result(text, **rich):
    return {"output_type": "execute_result", "execution_count": 1, "metadata": {},
            "data": {"text/plain": text, **rich}}


def stream(name, text):
    return {"output_type": "stream", "name": name, "text": text}


def test_clean_notebook_passes(tmp_path):
    table = "\n".join(f"{i}  {i * i}" for i in range(40))       # a long DataFrame shows as HTML too: intended
    path = notebook(tmp_path / "clean.ipynb", [
        ("figs.record(acc=0.5)", []),
        ("print('hello')\nfigs.save(fig, 'x')", [stream("stdout", "hello\n")]),
        ("df", [result(table, **{"text/html": "<table></table>"})]),
        ("x = 1\nx", [result("1")]),
        ("for step in range(3):\n    pass", [stream("stderr", "100%|##########| 3/3 [00:01<00:00]\n")]),
    ])
    assert executed_outputs(path) == ([], [])
    assert check_executed(path) == []


def test_stray_path_and_dict_fail(tmp_path):
    numbers = "{" + ",\n ".join(f"'key_{i}': {i}" for i in range(35)) + "}"
    path = notebook(tmp_path / "stray.ipynb", [
        ("fig = plot()\nfigs.save(fig, 'samples')", [result("PosixPath('/figures/07_gan/samples.png')")]),
        ("figs.record(**numbers)", [result(numbers)]),
        ("figs.record(quick=True)", [result("{'quick': True}")]),          # short, but a store call's value
        ("print([path])", [stream("stdout", "[PosixPath('/tmp/a.gif')]\n")]),
        ("numbers", [result(numbers)]),                                   # any long plain-text result
    ])
    problems, _ = executed_outputs(path)
    assert len(problems) == 5, problems
    assert "cell 0" in problems[0] and "PosixPath" in problems[0]
    assert "35-line plain result" in problems[1] and "35-line plain result" in problems[4]
    assert "store call" in problems[2] and "PosixPath" in problems[3]
    with pytest.raises(AssertionError, match="stray cell output"):
        check_executed(path)


def test_cells_writing_warnings_are_collected(tmp_path):
    text = "/venv/lib/python3.11/site-packages/x.py:12: UserWarning: something is off\n  warnings.warn(\n"
    path = notebook(tmp_path / "warn.ipynb", [("import x", []), ("x.run()", [stream("stderr", text)])])
    with pytest.warns(NotebookCellWarning, match="warn cell 1 .*UserWarning: something is off"):
        warned = check_executed(path)
    assert len(warned) == 1 and "'x.run()'" in warned[0]


def test_check_written_reads_the_executed_notebook(tmp_path):
    entry = written(tmp_path)
    entry["executed"] = notebook(tmp_path / "nb.ipynb", [("figs.save(fig, 'x')", [result("PosixPath('x.png')")])])
    with pytest.raises(AssertionError, match="PosixPath"):
        check_written(entry, ["plot"], ["tbl"])
