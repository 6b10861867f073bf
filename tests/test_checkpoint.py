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
