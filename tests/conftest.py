"""Shared fixtures: real-data location, small synthetic IDX folders, QUICK notebook runs."""
from __future__ import annotations

import gzip
import json
import os
import struct
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
    figures, ``entry["numbers"]`` its recorded key numbers. Each run gets an empty experiment cache
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
            try:
                manifest = run_notebooks(only=[name[:2]], quick=True, figures_dir=figures_dir,
                                         executed_dir=figures_dir / "executed", progress=False, **params)
            finally:
                mp.undo()
            entry = dict(manifest["notebooks"][name])
            entry["dir"] = figures_dir / name
            entry["manifest"] = json.loads((figures_dir / "manifest.json").read_text())
            cache[key] = entry
        return cache[key]

    return run


def check_written(entry: dict, figures=(), tables=()) -> dict:
    """Assert a notebook run wrote every named figure and table; return its recorded numbers.

    A figure must be a real picture (over 300x200 pixels and 5 kB) listed in the manifest, and
    ``numbers.json`` must hold exactly what the manifest recorded.
    """
    from PIL import Image

    folder, notebook = entry["dir"], entry["dir"].name
    for name in figures:
        path = folder / f"{name}.png"
        assert path.is_file(), f"missing figure {name}"
        w, h = Image.open(path).size
        assert w > 300 and h > 200 and path.stat().st_size > 5000, f"{name}.png is (nearly) empty"
        assert f"{notebook}/{name}.png" in entry["figures"]
        assert f"{notebook}/{name}.png" in entry["manifest"]["figures"]
    for name in tables:
        assert (folder / f"{name}.csv").is_file(), f"missing table {name}"
    assert entry["numbers"] == json.loads((folder / "numbers.json").read_text())
    return entry["numbers"]
