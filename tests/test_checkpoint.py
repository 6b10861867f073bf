import os
import subprocess
import sys

import pandas as pd
import pytest
import torch

import mnistlab as ml


def trained():
    return ml.create_model("lenet5", seed=0, activation="relu", normalize="symmetric")


def test_round_trip(tmp_path):
    model = trained()
    hist = pd.DataFrame({"epoch": [1, 2], "val_acc": [0.9, 0.95]})
    path = ml.save_checkpoint(tmp_path / "sub" / "m.pt", model, metrics={"test_acc": 0.95},
                              history=hist, note="hello")
    ckpt = ml.load_checkpoint(path)
    assert ckpt.name == "lenet5" and ckpt.kwargs == {"activation": "relu"}
    assert ckpt.preprocessing == model.preprocessing == ckpt.model.preprocessing
    assert (ckpt.preprocessing.mean, ckpt.preprocessing.std, ckpt.dataset) == (0.5, 0.5, "mnist")
    assert ckpt.metrics == {"test_acc": 0.95} and ckpt.extra == {"note": "hello"}
    pd.testing.assert_frame_equal(ckpt.history, hist)
    x = torch.randn(2, 1, 28, 28)
    model.eval()
    assert torch.equal(ckpt.model(x), model(x))
    assert not ckpt.model.training
    assert [p.name for p in (tmp_path / "sub").iterdir()] == ["m.pt"]  # no temp files left


def test_loaded_with_weights_only(tmp_path, monkeypatch):
    path = ml.save_checkpoint(tmp_path / "m.pt", trained())
    calls = []
    real = torch.load

    def spy(*args, **kwargs):
        calls.append(kwargs.get("weights_only"))
        return real(*args, **kwargs)

    monkeypatch.setattr(torch, "load", spy)
    ml.load_checkpoint(path)
    assert calls == [True]


def test_truncated_and_foreign_files(tmp_path):
    path = ml.save_checkpoint(tmp_path / "m.pt", trained())
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ml.CheckpointError, match="truncated or corrupt"):
        ml.load_checkpoint(path)
    other = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(3)}, other)
    with pytest.raises(ml.CheckpointError, match="not an mnistlab checkpoint"):
        ml.load_checkpoint(other)
    (tmp_path / "text.pt").write_text("hello")
    with pytest.raises(ml.CheckpointError):
        ml.load_checkpoint(tmp_path / "text.pt")
    with pytest.raises(FileNotFoundError, match="No checkpoint"):
        ml.load_checkpoint(tmp_path / "absent.pt")


def test_failed_write_keeps_old_file(tmp_path, monkeypatch):
    path = ml.save_checkpoint(tmp_path / "m.pt", trained(), metrics={"v": 1})

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", boom)
    with pytest.raises(OSError, match="disk full"):
        ml.save_checkpoint(path, trained(), metrics={"v": 2})
    monkeypatch.undo()
    assert ml.load_checkpoint(path).metrics == {"v": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["m.pt"]


def test_model_without_config_is_refused(tmp_path):
    with pytest.raises(ValueError, match="create_model"):
        ml.save_checkpoint(tmp_path / "m.pt", torch.nn.Linear(2, 2))


def test_atomic_write_replaces_whole_file_or_nothing(tmp_path):
    from mnistlab.training.checkpoint import atomic_write

    path = atomic_write(tmp_path / "sub" / "f.bin", lambda fh: fh.write(b"first"))
    assert path.read_bytes() == b"first"

    def half_then_fail(fh):
        fh.write(b"half")
        raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError, match="interrupted"):
        atomic_write(path, half_then_fail)
    assert path.read_bytes() == b"first" and [p.name for p in path.parent.iterdir()] == ["f.bin"]


def test_atomic_write_gives_the_usual_mode(tmp_path):
    from mnistlab.training.checkpoint import atomic_write

    umask = os.umask(0o022)
    try:
        path = atomic_write(tmp_path / "f.bin", lambda fh: fh.write(b"x"))
        ckpt = ml.save_checkpoint(tmp_path / "m.pt", trained())
    finally:
        os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o644 and ckpt.stat().st_mode & 0o777 == 0o644


def test_temporaries_of_killed_writers_are_removed_live_ones_kept(tmp_path):
    from mnistlab.training.checkpoint import atomic_write, clean_stale_temporaries

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()
    stale = tmp_path / f".m.pt.{dead}.abc123.tmp"
    live = tmp_path / f".m.pt.{os.getpid()}.def456.tmp"
    other = tmp_path / f".n.pt.{dead}.ghi789.tmp"
    for p in (stale, live, other):
        p.write_bytes(b"half")
    assert clean_stale_temporaries(tmp_path / "m.pt") == [stale]
    atomic_write(tmp_path / "n.pt", lambda fh: fh.write(b"x"))
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([live.name, "n.pt"])


def test_check_model_refuses_before_allocating():
    from mnistlab.training.config import check_model

    shell = check_model("fast", {"width": 8})
    assert all(p.device.type == "meta" for p in shell.parameters())
    for kwargs, match in [({"width": 10**6}, "limit"), ({"width": "8"}, "whole number"), ({"width": 0}, "empty"),
                          ({"num_classes": 4}, "10 classes"), ({"nope": 1}, "no argument 'nope'")]:
        with pytest.raises(ValueError, match=match):
            check_model("fast", kwargs)
    with pytest.raises(ValueError, match="model = 'nosuch'"):
        check_model("nosuch", {})


def test_crafted_metadata_is_refused_before_building(tmp_path):
    path = ml.save_checkpoint(tmp_path / "m.pt", trained())
    payload = torch.load(path, weights_only=True)
    for change, match in [({"kwargs": {"activation": "relu", "width": 10**6}}, "takes no argument|limit"),
                          ({"preprocessing": {**payload["preprocessing"], "std": 0.0}}, "std"),
                          ({"state_dict": {k: v.fill_(float("inf")) if v.is_floating_point() else v
                                           for k, v in payload["state_dict"].items()}}, "NaN or infinite"),
                          ({"history": [1, 2]}, "history is malformed")]:
        torch.save({**torch.load(path, weights_only=True), **change}, tmp_path / "bad.pt")
        with pytest.raises(ml.CheckpointError, match=match):
            ml.load_checkpoint(tmp_path / "bad.pt")


def test_random_bytes_never_suggest_unsafe_loading(tmp_path):
    bad = tmp_path / "random.pt"
    bad.write_bytes(bytes(range(256)) * 20)
    with pytest.raises(ml.CheckpointError, match="not an mnistlab checkpoint") as err:
        ml.load_checkpoint(bad)
    assert "weights_only" not in str(err.value)
    from mnistlab.training.checkpoint import is_checkpoint

    assert not is_checkpoint(bad) and is_checkpoint(ml.save_checkpoint(tmp_path / "model.weights", trained()))
