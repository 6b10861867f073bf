"""Shared fixtures: real-data location, small synthetic IDX folders, QUICK notebook runs."""
from __future__ import annotations

import json
import math
import os
import re
import struct
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("MNISTLAB_DATA", str((ROOT.parent / "shared" / "data").resolve()))
os.environ.setdefault("MPLBACKEND", "Agg")
torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


def have_real_data() -> bool:
    return (Path(os.environ["MNISTLAB_DATA"]) / "MNIST" / "raw" / "t10k-images-idx3-ubyte").is_file()


requires_data = pytest.mark.skipif(not have_real_data(), reason="real MNIST not found at $MNISTLAB_DATA")


def write_idx(path: Path, array: np.ndarray) -> None:
    """Write ``array`` (uint8) as an IDX file the way the official files are laid out."""
    array = np.asarray(array, dtype=np.uint8)
    header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(">" + "I" * array.ndim, *array.shape)
    path.write_bytes(header + array.tobytes())


@pytest.fixture
def synthetic_root(tmp_path) -> Path:
    """A torchvision-layout folder with a tiny MNIST (train 60, test 20) of random pixels."""
    rng = np.random.default_rng(0)
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for split, n in (("train", 60), ("t10k", 20)):
        write_idx(raw / f"{split}-images-idx3-ubyte", rng.integers(0, 256, (n, 28, 28)))
        write_idx(raw / f"{split}-labels-idx1-ubyte", np.arange(n) % 10)
    return tmp_path


@pytest.fixture(scope="session")
def mnist_small():
    """Real MNIST: 2,000 training and 1,000 test images (skips if the data is absent)."""
    if not have_real_data():
        pytest.skip("real MNIST not found at $MNISTLAB_DATA")
    import mnistlab as ml

    return ml.load_dataset("mnist", "train", limit=2000), ml.load_dataset("mnist", "test", limit=1000)


@pytest.fixture(scope="session")
def quick_notebook(tmp_path_factory):
    """Run one notebook in QUICK mode into a temporary figures folder; return its manifest entry.

    Usage: ``entry = quick_notebook("01_data_statistics")``; ``entry["dir"]`` is the folder of its
    figures, ``entry["numbers"]`` its recorded key numbers, ``entry["executed"]`` the executed copy of
    the notebook (every cell with its outputs). Each run gets an empty experiment cache
    (``MNISTLAB_CACHE``, inherited by the kernel), so the notebook really trains instead of reading
    results left by an earlier run.
    """
    from mnistlab.runner import run_notebooks

    base = tmp_path_factory.mktemp("quick-figures")
    cache = {}

    def run(name: str, **params) -> dict:
        key = (name, tuple(sorted(params.items())))
        if key not in cache:
            figures_dir = base / f"{name}-{len(cache)}"
            mp = pytest.MonkeyPatch()
            mp.setenv("MNISTLAB_CACHE", str(figures_dir / "cache"))
            if os.environ.get("PYTEST_XDIST_WORKER"):  # another test process shares the cores: one torch thread,
                mp.setenv("OMP_NUM_THREADS", "1")       # so two kernels never wait on each other's spinning threads
                mp.setenv("MKL_NUM_THREADS", "1")
            try:
                manifest = run_notebooks(only=[name[:2]], quick=True, figures_dir=figures_dir,
                                         executed_dir=figures_dir / "executed", progress=False, **params)
            finally:
                mp.undo()
            entry = dict(manifest["notebooks"][name])
            entry["dir"] = figures_dir / name
            entry["executed"] = figures_dir / "executed" / f"{name}.ipynb"
            entry["manifest"] = json.loads((figures_dir / "manifest.json").read_text())
            cache[key] = entry
        return cache[key]

    return run


@pytest.fixture(scope="module")
def entry(request, quick_notebook):
    """The QUICK run of the notebook named by the test module's ``NAME`` (its manifest entry, see :func:`quick_notebook`)."""
    return quick_notebook(request.module.NAME)


def picture_problem(path) -> str | None:
    """Why the PNG at ``path`` is not a real figure (None if it is one).

    Fails a file that does not decode as a PNG, an image under 300x200 (or over 8000) pixels, a flat
    or nearly flat one (pixel standard deviation at most 5 of 255, or at most 16 distinct colours),
    a blank or single-colour one and a figure of empty axes (frame, ticks and text only): at most
    98.5% of the pixels may share the background colour, and beyond it there must be either colour
    (0.5% of the pixels saturated) or a drawn area (3% of the pixels off the background).
    """
    from PIL import Image

    try:
        with Image.open(path) as im:
            fmt = im.format
            im.load()
            img = np.asarray(im.convert("RGB"))
    except Exception as exc:  # noqa: BLE001 - any failure to decode is the finding
        return f"{path} does not decode as an image ({type(exc).__name__}: {exc})"
    if fmt != "PNG":
        return f"{path} is a {fmt}, not a PNG"
    h, w, _ = img.shape
    if w < 300 or h < 200 or w > 8000 or h > 8000:
        return f"{path} is {w}x{h} pixels"
    std = float(img.std())
    codes = (img[..., 0].astype(np.int64) << 16) | (img[..., 1].astype(np.int64) << 8) | img[..., 2]
    values, counts = np.unique(codes, return_counts=True)
    if std <= 5 or len(values) <= 16:
        return f"{path} is flat: pixel std {std:.2f}, {len(values)} distinct colours"
    background = counts.max() / codes.size
    if background > 0.985:
        return f"{path} is {background:.1%} one colour: blank or single-colour"
    saturated = float(((img.max(-1).astype(int) - img.min(-1)) > 40).mean())
    if saturated < 0.005 and 1 - background < 0.03:
        return (f"{path} shows only lines and text ({1 - background:.1%} off the background, {saturated:.2%} "
                f"in colour): empty axes?")
    return None


def assert_picture(path) -> None:
    """Assert that ``path`` is a PNG with something drawn in it (see :func:`picture_problem`)."""
    problem = picture_problem(path)
    assert problem is None, problem


def gif_problem(path) -> str | None:
    """Why the GIF at ``path`` is not a real animation (None if it is one): it must decode, hold more
    than one frame, its first frame must not be flat, and its frames must not all be the same."""
    import imageio.v3 as iio

    try:
        frames = np.asarray(iio.imread(path, index=None))
    except Exception as exc:  # noqa: BLE001
        return f"{path} does not decode as a GIF ({type(exc).__name__}: {exc})"
    if frames.ndim < 3 or len(frames) < 2:
        return f"{path} has {1 if frames.ndim < 4 else len(frames)} frame: not an animation"
    if float(frames[0].std()) <= 5:
        return f"{path}: the first frame is flat (pixel std {float(frames[0].std()):.2f})"
    changes = [float(np.abs(a.astype(np.int16) - b).mean()) for a, b in zip(frames, frames[1:])]
    if max(changes) == 0:
        return f"{path}: all {len(frames)} frames are the same picture"
    return None


def table_problem(path) -> str | None:
    """Why the CSV at ``path`` is not a table (None if it is one): it must parse and hold a row."""
    import pandas as pd

    try:
        df = pd.read_csv(path)
    except Exception as exc:  # noqa: BLE001
        return f"{path} does not parse as CSV ({type(exc).__name__}: {exc})"
    if len(df) == 0:
        return f"{path} holds no row (columns: {list(df.columns)})"
    return None


def number_problems(numbers, allow_missing=()) -> list[str]:
    """Recorded numbers that are not finite: NaN or infinite floats, and nulls (``to_jsonable``
    writes NaN as null) unless their key path starts with one of ``allow_missing`` ("sick.lr x20")."""
    found = []

    def walk(value, path):
        if isinstance(value, dict):
            for k, v in value.items():
                walk(v, f"{path}.{k}" if path else str(k))
        elif isinstance(value, list):
            for i, v in enumerate(value):
                walk(v, f"{path}[{i}]")
        elif value is None:
            if not any(path == p or path.startswith(p + ".") for p in allow_missing):
                found.append(f"{path} is null (NaN when recorded?)")
        elif isinstance(value, float) and not math.isfinite(value):
            found.append(f"{path} = {value}")

    walk(numbers, "")
    return found


STORE_METHODS = ("save", "save_gif", "save_table", "record")
MAX_RESULT_LINES = 20


def _text(value) -> str:
    return "".join(value) if isinstance(value, list) else str(value or "")


def _ends_with_store_call(source: str) -> bool:
    """Whether a cell's last statement is ``<figures>.save/save_gif/save_table/record(...)``."""
    import ast

    try:
        body = ast.parse(source).body
    except SyntaxError:  # IPython syntax (magics): judge the last line
        lines = [line for line in source.splitlines() if line.strip() and not line.lstrip().startswith("#")]
        return bool(lines) and bool(re.match(r"\s*\w+\.(%s)\(" % "|".join(STORE_METHODS), lines[-1]))
    last = body[-1] if body else None
    return (isinstance(last, ast.Expr) and isinstance(last.value, ast.Call)
            and isinstance(last.value.func, ast.Attribute) and last.value.func.attr in STORE_METHODS)


def executed_outputs(path) -> tuple[list[str], list[str]]:
    """Read an executed notebook: ``(problems, warnings)``.

    Problems are stray outputs: any output holding ``PosixPath(`` text, an ``execute_result`` that is
    plain text only (no HTML, image or other rich form, as a DataFrame or figure has) and longer than
    :data:`MAX_RESULT_LINES` lines (a dict of numbers, a long list), and any ``execute_result`` of a
    cell whose last statement is a store call (``figs.save(...)``, ``figs.record(...)``: they return
    None, so nothing may show). Warnings are the stderr stream outputs containing "Warning", with the
    cell that wrote them.
    """
    nb = json.loads(Path(path).read_text())
    problems, warned = [], []
    for i, cell in enumerate(nb["cells"]):
        if cell["cell_type"] != "code":
            continue
        source = _text(cell.get("source"))
        first = next((line for line in source.splitlines() if line.strip()), "")[:60]
        where = f"{Path(path).stem} cell {i} (execution {cell.get('execution_count')}: {first!r})"
        for out in cell.get("outputs", []):
            kind = out.get("output_type")
            data = out.get("data", {})
            texts = [_text(out.get("text"))] + [_text(v) for k, v in data.items() if k.startswith("text/")]
            if any("PosixPath(" in t for t in texts):  # one problem per output: the first found
                problems.append(f"{where} shows a PosixPath: {next(t for t in texts if 'PosixPath(' in t)[:200]!r}")
            elif kind == "execute_result":
                plain = _text(data.get("text/plain"))
                rich = [k for k in data if k != "text/plain"]
                n_lines = len(plain.splitlines())
                if not rich and n_lines > MAX_RESULT_LINES:
                    problems.append(f"{where} ends with a {n_lines}-line plain result: {plain[:200]!r}")
                elif _ends_with_store_call(source):
                    problems.append(f"{where} ends with a store call that displays its return value: {plain[:200]!r}")
            if kind == "stream" and out.get("name") == "stderr" and "Warning" in _text(out.get("text")):
                lines = [line for line in _text(out.get("text")).splitlines() if "Warning" in line]
                warned.append(f"{where}: {' | '.join(lines)[:500]}")
    return problems, warned


class NotebookCellWarning(UserWarning):
    """A notebook cell wrote a warning to stderr (collected by :func:`check_executed`)."""


def check_executed(executed) -> list[str]:
    """Assert an executed notebook ends its cells without stray output; return (and warn about) the
    cells that wrote a warning to stderr. See :func:`executed_outputs`."""
    problems, warned = executed_outputs(executed)
    for w in warned:
        warnings.warn(w, NotebookCellWarning, stacklevel=2)
    assert not problems, "stray cell output:\n" + "\n".join(problems)
    return warned


def check_written(entry: dict, figures=(), tables=(), allow_missing=()) -> dict:
    """Assert a notebook run wrote every named figure and table, all real; return its recorded numbers.

    Every named figure must exist and be listed in the manifest; every PNG in the folder must be a
    real picture (:func:`picture_problem`), every GIF an animation (:func:`gif_problem`), every CSV a
    table with a row (:func:`table_problem`). ``numbers.json`` must parse, hold exactly what the
    manifest recorded, and every number must be finite (nulls only under ``allow_missing``). The
    executed notebook, when the entry names one, must be free of stray outputs (:func:`check_executed`).
    """
    folder, notebook = entry["dir"], entry["dir"].name
    for name in figures:
        assert (folder / f"{name}.png").is_file(), f"missing figure {name}"
        assert f"{notebook}/{name}.png" in entry["figures"]
        assert f"{notebook}/{name}.png" in entry["manifest"]["figures"]
    for name in tables:
        assert (folder / f"{name}.csv").is_file(), f"missing table {name}"
    problems = [picture_problem(p) for p in sorted(folder.glob("*.png"))]
    problems += [gif_problem(p) for p in sorted(folder.glob("*.gif"))]
    problems += [table_problem(p) for p in sorted(folder.glob("*.csv"))]
    problems = [p for p in problems if p]
    assert not problems, "\n".join(problems)
    numbers = json.loads((folder / "numbers.json").read_text())
    assert isinstance(numbers, dict) and numbers, "numbers.json records nothing"
    assert entry["numbers"] == numbers
    bad = number_problems(numbers, allow_missing)
    assert not bad, "numbers.json: " + "; ".join(bad)
    if entry.get("executed") is not None:
        check_executed(entry["executed"])
    return entry["numbers"]
