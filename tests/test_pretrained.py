"""The pretrained model shipped inside the package."""
from __future__ import annotations

import pytest
import torch
from conftest import requires_data

import mnistlab as ml
from mnistlab.training.pretrained import PRETRAINED, load_pretrained, pretrained_info, pretrained_path


def test_shipped_files_exist_and_are_small():
    path = pretrained_path()
    assert path.is_file(), f"{path} missing: run `python -m mnistlab.training.pretrained`"
    assert path.with_suffix(".json").is_file()
    assert path.stat().st_size < 1_000_000


def test_shipped_file_loads_with_weights_only():
    payload = torch.load(pretrained_path(), map_location="cpu", weights_only=True)
    assert payload["format"] == "mnistlab-checkpoint"


def test_load_pretrained_gives_an_eval_model():
    model = load_pretrained()
    assert not model.training
    assert (model.preprocessing.mean, model.preprocessing.std) == pytest.approx((0.1307, 0.3081))
    out = model(torch.zeros(2, 1, 28, 28))
    assert out.shape == (2, 10)


def test_info_records_how_it_was_made():
    info = pretrained_info()
    for key in ("test_acc", "recipe", "recipe_settings", "seed", "date", "torch", "command"):
        assert key in info, key
    assert info["file"] == pretrained_path().name
    assert info["file_bytes"] == pretrained_path().stat().st_size
    assert info["test_acc"] > 0.99
    assert info["command"].startswith("python -m mnistlab.")  # recorded when it was trained (module since moved)


@requires_data
def test_scores_its_recorded_accuracy_on_the_real_test_set():
    info = pretrained_info()
    acc = ml.evaluate(load_pretrained(), ml.load_dataset("mnist", "test"))["acc"]
    assert acc == pytest.approx(info["test_acc"], abs=1e-4)


def test_unknown_name_raises_clearly():
    for fn in (load_pretrained, pretrained_info, pretrained_path):
        with pytest.raises(ValueError, match="Unknown pretrained model 'nope'.*mnist"):
            fn("nope")
    assert "mnist" in PRETRAINED


@requires_data
def test_train_pretrained_writes_a_loadable_model_and_its_record(tmp_path, monkeypatch):
    import json

    from mnistlab.training import pretrained

    # The real entry trains `best` for half an hour; the same code path with the one-epoch `fast` recipe
    # on the first 10,000 images (the recipe's train_limit is honoured: the record says so)
    monkeypatch.setitem(pretrained.PRETRAINED, "tiny", ("mnist_tiny", "fast", {"train_limit": 10_000}, 0))
    info = pretrained.train_pretrained(tmp_path, name="tiny", device="cpu", progress=False, command="test")
    pt, record = tmp_path / "mnist_tiny.pt", tmp_path / "mnist_tiny.json"
    assert pt.is_file() and (pt.stat().st_mode & 0o777) == 0o644
    assert json.loads(record.read_text()) == json.loads(json.dumps(info, default=list))
    assert info["recipe"] == "fast" and info["command"] == "test" and info["file_bytes"] == pt.stat().st_size
    assert info["recipe_settings"]["train_limit"] == 10_000 and info["test_images"] == 10_000
    assert info["test_acc"] > 0.95  # one epoch of `fast` on 10,000 images (99% on all 60,000); chance is 10%
    ckpt = ml.load_checkpoint(pt)
    assert ckpt.name == "fast" and ckpt.metrics["test_acc"] == pytest.approx(info["test_acc"])


def test_missing_shipped_files_name_the_fix(monkeypatch):
    from mnistlab.training import pretrained

    monkeypatch.setitem(pretrained.PRETRAINED, "gone", ("mnist_gone", "best", {}, 0))
    for fn, suffix in ((load_pretrained, ".pt"), (pretrained_info, ".json")):
        with pytest.raises(FileNotFoundError, match=rf"mnist_gone\{suffix} is missing .*python -m mnistlab.training.pretrained"):
            fn("gone")
