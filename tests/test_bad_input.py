"""Bad input, as a new user would give it: every mistake ends in one clear line, nothing is lost.

Each CLI case asserts the exit code, that stderr is one line naming the problem, that no
traceback is printed and that the files already there are intact. The kill tests run
``mnistlab train`` as a subprocess and kill it before, during and after its save.
"""
from __future__ import annotations

import gzip
import hashlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image, ImageDraw

import mnistlab as ml
from mnistlab.cli import main
from mnistlab.training.checkpoint import save_checkpoint
from conftest import write_idx

ROOT = Path(__file__).resolve().parent.parent


# ----------------------------------------------------------------------------------------- helpers

def cli(capsys, *argv):
    """Run ``mnistlab ARGV`` in-process; return (exit code, stdout, stderr).

    Warnings count as stderr lines, as they would in a terminal.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            rc = main([str(a) for a in argv])
        except SystemExit as exc:  # argparse usage errors
            rc = exc.code
    out, err = capsys.readouterr()
    err += "".join(warnings.formatwarning(w.message, w.category, w.filename, w.lineno) for w in caught)
    return rc, out, err


def assert_one_line_error(rc, err, *words, code=2):
    """Exit ``code``, exactly one line on stderr holding every word (case-insensitive), no traceback."""
    assert rc == code, f"exit code {rc}, expected {code}; stderr: {err!r}"
    lines = err.strip().splitlines()
    assert len(lines) == 1, f"stderr has {len(lines)} lines: {err!r}"
    assert "Traceback" not in err and "weights_only=False" not in err
    for word in words:
        assert word.lower() in err.lower(), f"{word!r} not in {err!r}"


def snapshot(folder: Path) -> dict:
    """Every file under ``folder`` with its content hash and mode (to prove nothing was touched)."""
    return {str(p.relative_to(folder)): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mode)
            for p in sorted(folder.rglob("*")) if p.is_file()}


def make_root(folder: Path, n_train=60, n_test=20, labels=None) -> Path:
    """A torchvision-layout MNIST of random pixels (labels 0..9 in turn unless given)."""
    rng = np.random.default_rng(0)
    raw = folder / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for split, n in (("train", n_train), ("t10k", n_test)):
        write_idx(raw / f"{split}-images-idx3-ubyte", rng.integers(0, 256, (n, 28, 28)))
        write_idx(raw / f"{split}-labels-idx1-ubyte", np.arange(n) % 10 if labels is None else labels[:n])
    return folder


@pytest.fixture
def data(tmp_path, monkeypatch):
    """MNISTLAB_DATA at a tiny synthetic MNIST."""
    root = make_root(tmp_path / "data")
    monkeypatch.setenv("MNISTLAB_DATA", str(root))
    return root


@pytest.fixture
def existing_run(tmp_path):
    """A run folder holding a previous run's model.pt and history.csv, and its snapshot."""
    out = tmp_path / "run"
    history = pd.DataFrame({"epoch": [1], "train_loss": [0.5], "val_acc": [0.9]})
    save_checkpoint(out / "model.pt", ml.create_model("logreg", seed=0), history=history, metrics={"test_acc": 0.9})
    (out / "history.csv").write_text(history.to_csv(index=False))
    return out, snapshot(out)


FAST = ("--batch-size", "16", "--scheduler", "none", "--quiet")


# ------------------------------------------------------------------------------- train: settings

SETTINGS = [
    (["--epochs", "0"], ["--epochs", ">= 1"]),
    (["--epochs", "-1"], ["epochs", ">= 1"]),
    (["--epochs", "x"], ["--epochs", "whole number"]),
    (["--epochs", "2.5"], ["--epochs", "whole number"]),
    (["--limit", "-5"], ["train_limit", ">= 1"]),
    (["--limit", "0"], ["train_limit", ">= 1"]),
    (["--test-limit", "0"], ["test_limit", ">= 1"]),
    (["--batch-size", "0"], ["batch_size", "1 to 65536"]),
    (["--learning-rate", "1e6"], ["lr", "(0, 100]"]),
    (["--learning-rate", "-1"], ["lr", "(0, 100]"]),
    (["--learning-rate", "nan"], ["--learning-rate", "finite"]),
    (["--learning-rate", "inf"], ["--learning-rate", "finite"]),
    (["--momentum", "2"], ["momentum", "[0, 1)"]),
    (["--weight-decay", "-1"], ["weight_decay", "[0, 1)"]),
    (["--gamma", "0"], ["gamma", "(0, 1]"]),
    (["--label-smoothing", "2"], ["label_smoothing", "[0, 1)"]),
    (["--device", "tpu"], ["tpu", "cpu"]),
    (["--device", "cuda:99"] if not torch.cuda.is_available() else ["--device", "nosuch"], ["device"]),
    (["--model", "nosuch"], ["model", "lenet5"]),
    (["--optimizer", "nosuch"], ["optimizer", "adam"]),
    (["--scheduler", "nosuch"], ["scheduler", "cosine"]),
    (["--dataset", "nosuch"], ["dataset", "mnist"]),
    (["--recipe", "nosuch"], ["--recipe", "invalid choice"]),
    (["--normalize", "[0.5, 0]"], ["normalize", "std > 0"]),
    (["--normalize", "bogus"], ["normalize", "standard"]),
    (["--model-kwargs", '{"bogus": 1}'], ["model_kwargs", "bogus"]),
    (["--model-kwargs", "[1]"], ["model_kwargs", "dict"]),
    (["--model-kwargs", "{bad json"], ["--model-kwargs", "JSON"]),
    (["--model-kwargs", '{"width": -3}'], ["model_kwargs", "negative"]),
    (["--model-kwargs", '{"width": 0}'], ["model_kwargs", "empty"]),
    (["--model-kwargs", '{"width": "x"}'], ["width", "whole number"]),
    (["--model-kwargs", '{"width": 2.5}'], ["width", "whole number"]),
    (["--model-kwargs", '{"width": 100000}'], ["model_kwargs", "parameters", "limit"]),
    (["--model", "logreg", "--model-kwargs", '{"num_classes": 3}'], ["3", "10 classes"]),
    (["--augment", '{"nosuch": 1}'], ["augment", "nosuch"]),
    (["--augment", '{"rotation": "x"}'], ["augment rotation", "degrees"]),
    (["--augment", '{"scale": 5}'], ["augment scale", "range"]),
    (["--augment", "[1]"], ["augment", "dict"]),
    (["--out", "/etc/passwd"], ["--out", "is a file"]),
    (["--out", "/etc/passwd/sub"], ["--out", "cannot be created"]),
    (["--bogus-flag"], ["unrecognized arguments", "--bogus-flag"]),
    (["--normalize", '[0.5, "x"]'], ["normalize", "two numbers"]),
    (["--normalize", "[null, 1]"], ["normalize", "two numbers"]),
    (["--seed", "99999999999999999999"], ["--seed", "0 to 4294967295"]),
    (["--seed", "-5"], ["--seed", "0 to 4294967295"]),
    (["--split-seed", "-1"], ["--split-seed", "0 to"]),
    (["--val", "abc"], ["val", "a fraction"]),
    (["--val", "0"], ["val", "a fraction"]),
    (["--val", "none", "--early-stopping", '{"patience": 2}'], ["early_stopping needs"]),
    (["--early-stopping", '{"bogus": 1}'], ["early_stopping", "bogus"]),
    (["--early-stopping", "5"], ["early_stopping", "dict"]),
    (["--name", ""], ["name", "non-empty"]),
]


@pytest.mark.parametrize("extra,words", SETTINGS, ids=[" ".join(a) for a, _ in SETTINGS])
def test_train_rejects_bad_settings_before_any_work(extra, words, capsys, data, existing_run, monkeypatch):
    out, before = existing_run
    loads = []
    monkeypatch.setattr(ml, "load_dataset", lambda *a, **k: loads.append(a) or pytest.fail("data was read"))
    args = ["train", "--out", out, *FAST, *extra]
    rc, stdout, err = cli(capsys, *args)
    assert_one_line_error(rc, err, *words)
    assert snapshot(out) == before and not loads


def test_held_out_count_larger_than_the_data_names_the_flag(capsys, data, existing_run):
    out, before = existing_run
    rc, _, err = cli(capsys, "train", "--out", out, *FAST, "--val", "60")
    assert_one_line_error(rc, err, "--val 60", "no training")
    assert snapshot(out) == before


def test_onecycle_with_too_few_steps_is_refused_before_training(capsys, data, existing_run):
    out, before = existing_run  # 60 images in batches of 16: 4 steps, one-cycle needs 5
    rc, _, err = cli(capsys, "train", "--out", out, "--batch-size", "16", "--scheduler", "onecycle", "--quiet")
    assert_one_line_error(rc, err, "onecycle", "4", "--batch-size")
    assert snapshot(out) == before


def test_diverging_run_is_one_line_and_saves_nothing(capsys, data, existing_run):
    out, before = existing_run
    rc, _, err = cli(capsys, "train", "--out", out, *FAST, "--model", "mlp", "--optimizer", "sgd",
                     "--learning-rate", "100", "--normalize", "[0, 0.001]", "--epochs", "2")
    assert_one_line_error(rc, err, "learning rate")  # the loss explodes (huge, then NaN): fit stops at either
    assert "nan" in err.lower() or "diverged" in err.lower(), err
    assert snapshot(out) == before


def test_interrupt_and_out_of_memory_are_one_line(capsys, data, existing_run, monkeypatch):
    out, before = existing_run
    for exc, code, words in ((KeyboardInterrupt(), 130, ["interrupted"]),
                             (torch.OutOfMemoryError("CUDA out of memory"), 2, ["out of memory", "--batch-size"])):
        def boom(*a, exc=exc, **k):
            raise exc

        monkeypatch.setattr(ml, "train_model", boom)
        rc, _, err = cli(capsys, "train", "--out", out, *FAST)
        assert_one_line_error(rc, err, *words, code=code)
        assert snapshot(out) == before


def test_a_huge_but_finite_loss_is_one_line_and_leaves_nothing(capsys, data, existing_run, tmp_path, monkeypatch):
    """fit raises TrainingError when the loss explodes (NaN or huge but finite): one line, no result, no folder."""
    out, before = existing_run

    def explode(*a, **k):
        raise ml.TrainingError("training diverged: the loss reached 3.2e+12 at epoch 1 (it started at 2.3); "
                               "lower the learning rate.")

    monkeypatch.setattr(ml, "train_model", explode)
    for folder in (out, tmp_path / "fresh" / "run"):
        rc, _, err = cli(capsys, "train", "--out", folder, *FAST, "--optimizer", "sgd", "--learning-rate", "100")
        assert_one_line_error(rc, err, "diverged", "3.2e+12", "learning rate")
    assert snapshot(out) == before
    assert not (tmp_path / "fresh").exists(), "a run that failed must not leave an empty run folder behind"


def test_a_non_finite_history_is_never_saved(capsys, data, existing_run, monkeypatch):
    """Whatever the trainer returns, a training loss that is NaN or infinite is refused, not saved."""
    out, before = existing_run

    def nan_run(config, train, val=None, **k):
        model = ml.create_model("logreg", seed=0)
        return model, pd.DataFrame({"epoch": [1, 2], "train_loss": [2.3, float("nan")], "seconds": [0.1, 0.1]})

    monkeypatch.setattr(ml, "train_model", nan_run)
    rc, _, err = cli(capsys, "train", "--out", out, *FAST, "--model", "logreg")
    assert_one_line_error(rc, err, "not finite", "learning rate")
    assert snapshot(out) == before


# ---------------------------------------------------------------------------- train: saving

@pytest.mark.parametrize("blocker", ["model.pt", "history.csv"])
def test_a_folder_in_the_way_is_refused_before_training(blocker, capsys, data, existing_run, monkeypatch):
    out, _ = existing_run
    (out / blocker).unlink()
    (out / blocker).mkdir()
    (out / blocker / "inside.txt").write_text("x")
    before = snapshot(out)
    monkeypatch.setattr(ml, "train_model", lambda *a, **k: pytest.fail("trained although the save must fail"))
    rc, _, err = cli(capsys, "train", "--out", out, *FAST, "--model", "logreg")
    assert_one_line_error(rc, err, str(out / blocker), "folder")
    assert snapshot(out) == before


def test_a_fifo_in_the_way_is_refused_before_training(capsys, data, existing_run, monkeypatch):
    out, _ = existing_run
    (out / "history.csv").unlink()
    os.mkfifo(out / "history.csv")
    monkeypatch.setattr(ml, "train_model", lambda *a, **k: pytest.fail("trained although the save must fail"))
    rc, _, err = cli(capsys, "train", "--out", out, *FAST, "--model", "logreg")
    assert_one_line_error(rc, err, "history.csv", "FIFO")


def _disk_full_at(monkeypatch, call: int):
    """The ``call``-th fsync (1: model.pt's temporary file, 2: history.csv's) fails: the disk is full."""
    import errno

    real, count = os.fsync, []

    def fsync(fd):
        count.append(fd)
        if len(count) == call:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(fd)

    monkeypatch.setattr(os, "fsync", fsync)


def _torch_disk_full(monkeypatch):
    """torch.save's own write fails half-way, as on a full disk (torch wraps the OSError in a RuntimeError)."""
    import errno

    real = torch.save

    class Full:
        def __init__(self, fh):
            self.fh, self.n = fh, 0

        def write(self, b):
            self.n += len(b)
            if self.n > 2000:
                raise OSError(errno.ENOSPC, "No space left on device")
            return self.fh.write(b)

        def __getattr__(self, name):
            return getattr(self.fh, name)

    monkeypatch.setattr(torch, "save", lambda obj, fh, *a, **k: real(obj, Full(fh), *a, **k))


@pytest.mark.parametrize("where", ["torch.save", "model.pt fsync", "history.csv fsync"])
def test_disk_full_while_saving_keeps_the_old_run(where, capsys, data, existing_run, monkeypatch):
    out, before = existing_run
    real_train = ml.train_model

    def train_then_fill_the_disk(*a, **k):
        result = real_train(*a, **k)
        if where == "torch.save":
            _torch_disk_full(monkeypatch)
        else:
            _disk_full_at(monkeypatch, 1 if where.startswith("model") else 2)
        return result

    monkeypatch.setattr(ml, "train_model", train_then_fill_the_disk)
    rc, _, err = cli(capsys, "train", "--out", out, *FAST, "--model", "logreg")
    assert_one_line_error(rc, err, "disk is full", str(out), "model.pt" if where != "history.csv fsync" else "history.csv")
    assert snapshot(out) == before, "the previous run's files must be kept"
    assert sorted(p.name for p in out.iterdir()) == ["history.csv", "model.pt"], "temporaries left behind"


def test_a_save_into_a_new_folder_that_fails_leaves_no_folder(capsys, data, tmp_path, monkeypatch):
    real_train = ml.train_model
    monkeypatch.setattr(ml, "train_model", lambda *a, **k: (_disk_full_at(monkeypatch, 1), real_train(*a, **k))[1])
    rc, _, err = cli(capsys, "train", "--out", tmp_path / "new" / "run", *FAST, "--model", "logreg")
    assert_one_line_error(rc, err, "disk is full")
    assert not (tmp_path / "new").exists()


# -------------------------------------------------------------- FIFOs and devices as arguments

def cli_subprocess(*argv, env=None, timeout=180):
    """``mnistlab ARGV`` in a child with a timeout, so that a regression (a read that blocks) cannot hang the suite."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    try:
        res = subprocess.run([sys.executable, "-m", "mnistlab.cli", *map(str, argv)], capture_output=True,
                             text=True, env=env, timeout=timeout)
    except subprocess.TimeoutExpired:
        pytest.fail(f"`mnistlab {' '.join(map(str, argv))}` hung (a FIFO or device was read)")
    return res.returncode, res.stdout, res.stderr


def special_files(tmp_path):
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    yield fifo, "FIFO"
    if Path("/dev/zero").exists():
        yield Path("/dev/zero"), "character device"


def test_predict_names_a_fifo_or_device(tmp_path):
    img = tmp_path / "seven.png"
    seven().save(img)
    for path, kind in special_files(tmp_path):
        rc, out, err = cli_subprocess("predict", path, img)
        assert_one_line_error(rc, err, str(path), kind, code=1)
        assert out.strip().splitlines()[1].split("\t")[:2] == [str(img), "7"]
        rc, out, err = cli_subprocess("predict", "--checkpoint", path, img)
        assert_one_line_error(rc, err, "--checkpoint", str(path), kind)
        rc, out, err = cli_subprocess("evaluate", path)
        assert_one_line_error(rc, err, str(path), kind)


def test_data_and_train_name_a_fifo_or_device(tmp_path):
    for path, kind in special_files(tmp_path):
        rc, _, err = cli_subprocess("data", "--root", path)
        assert_one_line_error(rc, err, "--root", str(path), kind)
        rc, _, err = cli_subprocess("data", env={"MNISTLAB_DATA": str(path)})
        assert_one_line_error(rc, err, "MNISTLAB_DATA", str(path), kind)
        rc, _, err = cli_subprocess("train", "--out", path, "--quiet")
        assert_one_line_error(rc, err, "--out", str(path), kind)
        rc, _, err = cli_subprocess("train", "--out", tmp_path / "r", "--quiet", env={"MNISTLAB_DATA": str(path)})
        assert_one_line_error(rc, err, "MNISTLAB_DATA", str(path), kind)
        assert not (tmp_path / "r").exists()


LIBRARY_SETTINGS = [
    (dict(split_seed="x"), "split_seed"), (dict(split_seed=-1), "split_seed"), (dict(name=3), "name"),
    (dict(early_stopping={"bogus": 1}), "early_stopping has no setting 'bogus'"),
    (dict(early_stopping={"patience": -1}), "early_stopping patience"), (dict(val=0), "val"),
    (dict(val=1.5), "val"), (dict(val=100, train_limit=50), "val = 100"), (dict(lr=True), "lr"),
    (dict(epochs=True), "epochs"), (dict(batch_size=2.0), "batch_size"), (dict(description=None), "description"),
    (dict(early_stopping={"patience": 2}, val=None), "early_stopping needs"),
]


@pytest.mark.parametrize("changes,match", LIBRARY_SETTINGS, ids=[str(c) for c, _ in LIBRARY_SETTINGS])
def test_train_config_names_the_field(changes, match):
    with pytest.raises(ValueError, match=match.replace("(", r"\(")):
        ml.TrainConfig(**changes)


def test_debug_flag_and_env_show_the_traceback(capsys, data, monkeypatch):
    with pytest.raises(ValueError, match="epochs"):
        main(["train", "--epochs", "0", "--debug"])
    monkeypatch.setenv("MNISTLAB_DEBUG", "1")
    with pytest.raises(ValueError, match="train_limit"):
        main(["train", "--limit", "0"])


def test_a_good_run_writes_agreeing_files_with_the_usual_mode(capsys, data, tmp_path):
    out = tmp_path / "fresh"
    rc, stdout, err = cli(capsys, "train", "--out", out, *FAST, "--model", "logreg", "--epochs", "2")
    assert rc == 0, err
    ckpt = ml.load_checkpoint(out / "model.pt")
    pd.testing.assert_frame_equal(pd.read_csv(out / "history.csv"), ckpt.history, check_dtype=False)
    umask = os.umask(0)
    os.umask(umask)
    for name in ("model.pt", "history.csv"):
        assert (out / name).stat().st_mode & 0o777 == 0o666 & ~umask
    assert sorted(p.name for p in out.iterdir()) == ["history.csv", "model.pt"]


# --------------------------------------------------------------------------------------- data

def test_gz_only_folder_is_read(capsys, tmp_path, monkeypatch):
    root = make_root(tmp_path / "gz")
    raw = root / "MNIST" / "raw"
    for f in list(raw.iterdir()):
        (raw / (f.name + ".gz")).write_bytes(gzip.compress(f.read_bytes()))
        f.unlink()
    report = ml.check_files("mnist", root)
    assert all(r["present"] and r["path"].endswith(".gz") for r in report)
    assert {r["problem"] for r in report} == {"60 records, expected 60000", "20 records, expected 10000"}
    train = ml.load_dataset("mnist", "train", root=root)
    assert len(train) == 60 and train.labels.tolist()[:3] == [0, 1, 2]
    monkeypatch.setenv("MNISTLAB_DATA", str(root))
    rc, out, err = cli(capsys, "train", "--out", tmp_path / "r", *FAST, "--model", "logreg")
    assert rc == 0, err


@pytest.mark.parametrize("content,words", [
    (gzip.compress(b"x" * 5000)[:40], ["not an IDX images file"]),       # cut short: garbage inside
    (b"plain text, not gzip", ["not a readable gzip file", "download again"]),
    (gzip.compress(np.zeros(20, np.uint8).tobytes()), ["not an IDX images file"]),
], ids=["truncated", "not gzip", "wrong content"])
def test_broken_gz_is_named(content, words, capsys, tmp_path, monkeypatch):
    root = make_root(tmp_path / "gz")
    raw = root / "MNIST" / "raw"
    (raw / "t10k-images-idx3-ubyte").unlink()
    (raw / "t10k-images-idx3-ubyte.gz").write_bytes(content)
    monkeypatch.setenv("MNISTLAB_DATA", str(root))
    rc, _, err = cli(capsys, "evaluate", ROOT / "mnistlab" / "pretrained" / "mnist_best16.pt")
    assert_one_line_error(rc, err, "t10k-images-idx3-ubyte.gz", *words)
    assert not (raw / "t10k-images-idx3-ubyte").exists()  # nothing half-unpacked


def test_env_pointing_inside_the_layout_says_where_to_point(capsys, tmp_path, monkeypatch):
    root = make_root(tmp_path / "d")
    for inner in (root / "MNIST", root / "MNIST" / "raw"):
        monkeypatch.setenv("MNISTLAB_DATA", str(inner))
        rc, _, err = cli(capsys, "train", "--out", tmp_path / "r", *FAST)
        assert_one_line_error(rc, err, "MNISTLAB_DATA", f"at {root}")


def test_a_folder_where_a_file_should_be(capsys, tmp_path, monkeypatch):
    root = make_root(tmp_path / "d")
    raw = root / "MNIST" / "raw"
    (raw / "train-labels-idx1-ubyte").unlink()
    (raw / "train-labels-idx1-ubyte").mkdir()
    report = {r["file"]: r for r in ml.check_files("mnist", root)}
    assert "is a folder" in report["train-labels-idx1-ubyte"]["problem"]
    monkeypatch.setenv("MNISTLAB_DATA", str(root))
    rc, _, err = cli(capsys, "train", "--out", tmp_path / "r", *FAST)
    assert_one_line_error(rc, err, "train-labels-idx1-ubyte", "is a folder")


def test_unreadable_file_names_the_file_and_why(capsys, tmp_path, monkeypatch):
    # tests run as root, which reads any file whatever its mode: make open() refuse instead
    import builtins

    root = make_root(tmp_path / "d")
    locked = root / "MNIST" / "raw" / "train-images-idx3-ubyte"
    real_open = builtins.open

    def guarded_open(file, *args, **kwargs):
        if str(file) == str(locked):
            raise PermissionError(13, "Permission denied", str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", guarded_open)
    report = {r["file"]: r for r in ml.check_files("mnist", root)}
    assert "permission denied" in report["train-images-idx3-ubyte"]["problem"]
    monkeypatch.setenv("MNISTLAB_DATA", str(root))
    rc, _, err = cli(capsys, "train", "--out", tmp_path / "r", *FAST)
    assert_one_line_error(rc, err, str(locked), "permission denied")


def test_data_command_checks_labels_like_train_does(capsys, tmp_path, monkeypatch):
    labels = np.arange(60000) % 10
    labels[123] = 11
    root = tmp_path / "d"
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    write_idx(raw / "train-images-idx3-ubyte", np.zeros((60000, 28, 28)))
    write_idx(raw / "train-labels-idx1-ubyte", labels)
    write_idx(raw / "t10k-images-idx3-ubyte", np.zeros((10000, 28, 28)))
    write_idx(raw / "t10k-labels-idx1-ubyte", np.arange(10000) % 10)
    rc, out, _ = cli(capsys, "data", "--dataset", "mnist", "--root", root)
    assert rc == 1 and "3/4 files sound" in out and "labels outside 0..9" in out
    monkeypatch.setenv("MNISTLAB_DATA", str(root))
    rc, _, err = cli(capsys, "train", "--out", tmp_path / "r", *FAST, "--limit", "100")
    assert_one_line_error(rc, err, "train-labels-idx1-ubyte", "outside 0..9")


def test_data_command_bad_names(capsys, tmp_path):
    rc, _, err = cli(capsys, "data", "--dataset", "nosuch")
    assert_one_line_error(rc, err, "nosuch", "mnist")
    rc, out, _ = cli(capsys, "data", "--dataset", "mnist", "--root", tmp_path / "absent")
    assert rc == 1 and "0/4 files sound" in out and "missing" in out


def test_handed_out_data_is_a_copy(data):
    first = ml.load_dataset("mnist", "train")
    first.images[0, 0, 0] = 255 - int(first.images[0, 0, 0])
    view = ml.load_dataset("mnist", "train", limit=5)
    view.labels[1] = 7
    again = ml.load_dataset("mnist", "train")
    assert int(again.images[0, 0, 0]) != int(first.images[0, 0, 0]) and int(again.labels[1]) == 1


# -------------------------------------------------------------------------------- checkpoints

def crafted(tmp_path, name, **changes) -> Path:
    """A real checkpoint with some of its payload replaced (None removes the key)."""
    good = save_checkpoint(tmp_path / "good.pt", ml.create_model("fast", seed=0))
    payload = torch.load(good, weights_only=True)
    for key, value in changes.items():
        if callable(value):
            value = value(payload)
        if value is None:
            payload.pop(key)
        else:
            payload[key] = value
    path = tmp_path / name
    torch.save(payload, path)
    return path


def nan_weights(payload):
    return {k: v * float("nan") if v.is_floating_point() else v for k, v in payload["state_dict"].items()}


CHECKPOINTS = {
    "random bytes": (lambda t: _write(t / "random.pt", os.urandom(4096)), ["not an mnistlab checkpoint"]),
    "empty file": (lambda t: _write(t / "empty.pt", b""), ["empty", "not an mnistlab checkpoint"]),
    "text file": (lambda t: _write(t / "text.pt", b"hello"), ["not an mnistlab checkpoint"]),
    "truncated": (lambda t: _write(t / "half.pt", (lambda b: b[:len(b) // 2])(
        save_checkpoint(t / "full.pt", ml.create_model("fast", seed=0)).read_bytes())), ["truncated or corrupt"]),
    "a bare tensor": (lambda t: (torch.save(torch.zeros(3), t / "tensor.pt"), t / "tensor.pt")[1],
                      ["not an mnistlab checkpoint"]),
    "a folder": (lambda t: (t / "folder").mkdir() or t / "folder", ["is a folder"]),
    "absent": (lambda t: t / "absent.pt", ["No checkpoint at"]),
    "no weights": (lambda t: crafted(t, "a.pt", state_dict=None), ["holds no weights"]),
    "unknown argument": (lambda t: crafted(t, "b.pt", kwargs={"bogus": 1}), ["b.pt", "bogus"]),
    "string width": (lambda t: crafted(t, "c.pt", kwargs={"width": "x"}), ["c.pt", "width", "whole number"]),
    "huge width": (lambda t: crafted(t, "d.pt", kwargs={"width": 100000}), ["d.pt", "parameters", "limit"]),
    "weights of another width": (lambda t: crafted(t, "e.pt", kwargs={"width": 8}), ["e.pt", "do not fit"]),
    "std 0": (lambda t: crafted(t, "f.pt", preprocessing=lambda p: {**p["preprocessing"], "std": 0.0}),
              ["f.pt", "std"]),
    "unknown dataset": (lambda t: crafted(t, "g.pt", preprocessing=lambda p: {**p["preprocessing"], "dataset": "x"}),
                        ["g.pt", "Unknown dataset"]),
    "input size": (lambda t: crafted(t, "h.pt", preprocessing=lambda p: {**p["preprocessing"],
                                                                        "input_size": [3, 1000, 1000]}),
                   ["h.pt", "input size"]),
    "NaN weights": (lambda t: crafted(t, "i.pt", state_dict=nan_weights), ["i.pt", "NaN"]),
    "history a string": (lambda t: crafted(t, "j.pt", history="x"), ["j.pt", "history"]),
    "ragged history": (lambda t: crafted(t, "k.pt", history={"a": [1, 2], "b": [1]}), ["k.pt", "history"]),
    "extra a list": (lambda t: crafted(t, "l.pt", extra=[1]), ["l.pt", "extra"]),
    "newer format": (lambda t: crafted(t, "m.pt", version=99), ["m.pt", "newer mnistlab"]),
    "bad training config": (lambda t: crafted(t, "n.pt", train_config={"epochs": "x"}), ["n.pt", "epochs"]),
    "unknown model": (lambda t: crafted(t, "o.pt", model="nosuch"), ["o.pt", "nosuch"]),
}


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("case", list(CHECKPOINTS))
def test_bad_checkpoints_are_one_line(case, tmp_path, capsys, data):
    make, words = CHECKPOINTS[case]
    path = make(tmp_path)
    before = snapshot(tmp_path)
    rc, _, err = cli(capsys, "evaluate", path, "--limit", "10")
    assert_one_line_error(rc, err, *words)
    img = tmp_path / "seven.png"
    seven().save(img)
    rc, _, err = cli(capsys, "predict", "--checkpoint", path, img)
    assert_one_line_error(rc, err, *words)
    assert {k: v for k, v in snapshot(tmp_path).items() if k != "seven.png"} == before


def test_checkpoint_is_recognised_by_content(tmp_path, capsys):
    model = ml.load_pretrained()
    img = tmp_path / "seven.png"
    seven().save(img)
    for name in ("MODEL.PT", "model.weights", "model"):
        path = save_checkpoint(tmp_path / name, model)
        rc, out, err = cli(capsys, "predict", path, img)
        assert rc == 0, err
        assert out.strip().split("\t")[:2] == [str(img), "7"]
    rc, out, err = cli(capsys, "predict", img, tmp_path / "model")  # the checkpoint need not come first
    assert rc == 0 and out.strip().split("\t")[1] == "7"
    rc, _, err = cli(capsys, "predict", tmp_path / "model", tmp_path / "MODEL.PT", img)
    assert_one_line_error(rc, err, "several checkpoints")
    rc, _, err = cli(capsys, "predict", tmp_path / "model")
    assert_one_line_error(rc, err, "at least one image")


# ------------------------------------------------------------------------------------ predict

def seven(size=(120, 160), paper=255, ink=0, mode="L") -> Image.Image:
    img = Image.new(mode, size, paper)
    ImageDraw.Draw(img).line([(20, 20), (100, 20), (45, 150)], fill=ink, width=12)
    return img


def test_predict_names_the_blank_image_and_predicts_the_others(tmp_path, capsys):
    paths = [tmp_path / "a.png", tmp_path / "blank.png", tmp_path / "c.jpg"]
    seven().save(paths[0])
    Image.new("L", (60, 60), 255).save(paths[1])
    seven().convert("RGB").save(paths[2])
    rc, out, err = cli(capsys, "predict", *paths)
    assert_one_line_error(rc, err, "blank.png", "blank", "same value", code=1)
    rows = [line.split("\t") for line in out.strip().splitlines()]
    assert [r[0] for r in rows] == [str(p) for p in paths]
    assert rows[0][1] == rows[2][1] == "7" and rows[1][1] == "-" and "not read" in rows[1][3]


@pytest.mark.parametrize("make,words", [
    (lambda t: _write(t / "x.png", b"not an image"), ["x.png", "not a readable image"]),
    (lambda t: t / "absent.png", ["No image at"]),
    (lambda t: (t / "dir.png").mkdir() or t / "dir.png", ["dir.png", "is a folder"]),
    (lambda t: (Image.new("RGBA", (40, 40), (0, 0, 0, 0)).save(t / "clear.png"), t / "clear.png")[1],
     ["clear.png", "fully transparent"]),
    (lambda t: (seven().save(t / "anim.gif", save_all=True, append_images=[seven(ink=90)]), t / "anim.gif")[1],
     ["anim.gif", "2 frames"]),
], ids=["not an image", "absent", "folder", "fully transparent", "animation"])
def test_predict_unreadable_images(make, words, tmp_path, capsys):
    path = make(tmp_path)
    rc, out, err = cli(capsys, "predict", path)
    assert_one_line_error(rc, err, *words)
    assert out.strip().split("\t")[:3] == [str(path), "-", "-"]


# --------------------------------------------------------------------------------------- kill

CHILD = textwrap.dedent("""
    import os, pathlib, sys, time
    import mnistlab as ml
    import mnistlab.cli as cli
    point = sys.argv[1]

    def pause():
        print("PAUSED", flush=True)
        time.sleep(120)

    if point == "training":
        real_train = ml.train_model
        ml.train_model = lambda *a, **k: (pause(), real_train(*a, **k))[1]
    if point in ("before save", "model.pt rename", "history.csv rename"):
        real_unlink, real_replace = pathlib.Path.unlink, os.replace
        def unlink(self, *a, **k):
            if point == "before save" and self.name == "history.csv":
                pause()
            return real_unlink(self, *a, **k)
        def replace(src, dst, *a, **k):
            if os.path.basename(dst) == point.split()[0]:
                pause()
            return real_replace(src, dst, *a, **k)
        pathlib.Path.unlink, os.replace = unlink, replace
    if point == "model.pt write":
        real_fsync = os.fsync
        os.fsync = lambda fd: (pause(), real_fsync(fd))[1]  # the temporary file is written, not yet synced
    sys.exit(cli.main(sys.argv[2:]))
""")


def agree(out: Path) -> None:
    """The run folder holds no empty file, its model.pt loads, and a history.csv beside it is its own."""
    for p in out.iterdir():
        assert p.stat().st_size > 0, f"{p.name} is empty"
    ckpt = ml.load_checkpoint(out / "model.pt")
    if (out / "history.csv").exists():
        pd.testing.assert_frame_equal(pd.read_csv(out / "history.csv"), ckpt.history, check_dtype=False)


@pytest.mark.slow
@pytest.mark.parametrize("point", ["training", "before save", "model.pt write", "model.pt rename",
                                   "history.csv rename", "after"])
def test_kill_at_any_point_leaves_agreeing_files(point, tmp_path, existing_run, monkeypatch, capsys):
    out, before = existing_run
    root = make_root(tmp_path / "data", n_train=200)
    env = {**os.environ, "MNISTLAB_DATA": str(root), "PYTHONPATH": str(ROOT)}
    args = ["train", "--out", str(out), "--model", "logreg", "--batch-size", "16", "--scheduler", "none",
            "--epochs", "2", "--quiet"]
    proc = subprocess.Popen([sys.executable, "-c", CHILD, point, *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path)
    try:
        if point == "after":
            proc.wait(timeout=240)
            assert proc.returncode == 0, proc.stderr.read()
        else:
            deadline = time.time() + 240
            for line in proc.stdout:
                if line.startswith("PAUSED") or time.time() > deadline:
                    break
            assert proc.poll() is None, proc.stderr.read()
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    agree(out)
    new = ml.load_checkpoint(out / "model.pt")
    if point in ("training", "before save", "model.pt write", "model.pt rename"):
        assert new.name == "logreg" and "command" not in new.extra  # still the previous run's model
        assert snapshot(out).get("model.pt") == before["model.pt"]
    else:
        assert "command" in new.extra and len(new.history) == 2  # the new run's model
    leftovers = sorted(p.name for p in out.iterdir() if p.suffix == ".tmp")
    if point in ("model.pt write", "model.pt rename", "history.csv rename"):
        assert leftovers, "the kill should have left the temporary file of the interrupted save"
    # the next run into the folder removes what the killed one left behind
    monkeypatch.setenv("MNISTLAB_DATA", str(root))
    assert main(args) == 0
    assert sorted(p.name for p in out.iterdir()) == ["history.csv", "model.pt"]
    agree(out)


# ------------------------------------------------------------------------------------ figures

def test_figures_with_bad_parameters_touch_nothing(tmp_path, capsys):
    figures = tmp_path / "figures"
    (figures / "01_data_statistics").mkdir(parents=True)
    (figures / "01_data_statistics" / "old.png").write_bytes(b"png")
    (figures / "manifest.json").write_text(json.dumps({"notebooks": {}, "figures": {}}))
    before = snapshot(figures)
    for args, words in ((["--dataset", "nosuch"], ["--dataset", "nosuch"]), (["--seed", "-1"], ["--seed"]),
                        (["--device", "tpu"], ["--device", "tpu"]), (["--only", "99"], ["No notebook", "99"])):
        rc, _, err = cli(capsys, "figures", "--only", "01", "--out", figures, *args)
        assert_one_line_error(rc, err, *words)
        assert snapshot(figures) == before


# ------------------------------------------------------------------------------ the console

def test_console_script_error_has_no_traceback(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    res = subprocess.run([sys.executable, "-m", "mnistlab.cli", "evaluate", str(tmp_path / "nope.pt")],
                         capture_output=True, text=True, env=env)
    assert_one_line_error(res.returncode, res.stderr, "No checkpoint")
