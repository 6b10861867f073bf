"""Bad input through the Python API (issue 21, round 2): one clear line, nothing lost, nothing ignored.

Each mistake a notebook user can make with ``fit`` / ``evaluate`` / ``predict`` / ``features``,
``create_model``, the data readers and checkpoints ends in one exception whose message names the
problem and the fix, instead of a silent wrong answer, a torch internal or a hang.
"""
from __future__ import annotations

import gzip
import os
import pickle
import struct
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

import mnistlab as ml
from mnistlab.data import datasets
from mnistlab.data.images import to_mnist
from mnistlab.training.checkpoint import save_checkpoint
from conftest import requires_data, write_idx


def one_line(exc_info, *words):
    """The exception's message is one line holding every word (case-insensitive)."""
    msg = str(exc_info.value)
    assert "\n" not in msg.strip(), msg
    for word in words:
        assert word.lower() in msg.lower(), f"{word!r} not in {msg!r}"


@pytest.fixture(scope="module")
def model():
    return ml.create_model("fast", seed=0)


def seven() -> torch.Tensor:
    img = Image.new("L", (120, 160), 255)
    ImageDraw.Draw(img).line([(20, 20), (100, 20), (45, 150)], fill=0, width=12)
    return to_mnist(img)


def digits(n=6) -> torch.Tensor:
    return torch.stack([seven()] * n)


# ------------------------------------------------------------------ 1. images without labels

@pytest.mark.parametrize("images", [digits(), digits().numpy(), digits().float() / 255])
def test_scoring_refuses_images_without_labels(model, images):
    for call in (lambda: ml.evaluate(model, images), lambda: ml.fit(model, images, config=ml.TrainConfig(epochs=1), progress=False)):
        with pytest.raises(ValueError) as err:
            call()
        one_line(err, "labels", "ImageSet", "(images, labels)")
    assert ml.predict(model, images).shape == (6, 10)  # prediction needs no labels
    assert ml.evaluate(model, (images, [7] * 6))["n"] == 6


def test_imageset_takes_arrays_and_label_lists():
    ds = ml.ImageSet(digits(3).numpy(), [7, 7, 1])
    assert ds.images.dtype == torch.uint8 and ds.labels.dtype == torch.int64 and ds.labels.tolist() == [7, 7, 1]


# ------------------------------------------------------------------ 2. pixels out of range

def test_predict_refuses_images_normalised_already(model):
    x = (digits().float() / 255 - 0.1307) / 0.3081  # what a user normalising by hand passes
    with pytest.raises(ValueError) as err:
        ml.predict(model, x)
    one_line(err, "[0, 1]", "-0.42", "2.8", "0-255")
    with pytest.raises(ValueError) as err:
        ml.predict(model, digits().long() * 2)  # integers up to 510
    one_line(err, "0-255", "510")
    a = ml.predict(model, digits())
    assert np.allclose(a, ml.predict(model, digits().float() / 255), atol=1e-4)  # floats in [0, 1] are fine
    assert np.allclose(a, ml.predict(model, digits().numpy().astype(np.int64)))  # so are integers in 0-255


# ------------------------------------------------------------------ 3. NaN / inf

@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_pixels_are_refused(model, bad):
    x = digits(5).float() / 255
    x[1, 3, 3] = bad
    x[4] = bad
    with pytest.raises(ValueError) as err:
        ml.predict(model, x)
    one_line(err, "2 of 5 images", "NaN or infinite")
    with pytest.raises(ValueError, match="2 of 5 images"):
        ml.features(model, x.numpy())


# ------------------------------------------------------------------ 4. one image

def test_one_image_just_works(model):
    one = seven()
    assert one.shape == (28, 28)
    p = ml.predict(model, one)
    assert p.shape == (1, 10) and np.allclose(p, ml.predict(model, one[None]))
    assert ml.predict_classes(model, one.numpy()).shape == (1,)
    assert ml.features(model, one).shape[0] == 1
    assert ml.predict(model, one.float() / 255).shape == (1, 10)


def test_shape_errors_name_the_real_public_path():
    for images in (torch.zeros(28, 28, dtype=torch.uint8), torch.zeros(3, 32, 32, dtype=torch.uint8)):
        with pytest.raises(ValueError) as err:
            ml.ImageSet(images, torch.zeros(3, dtype=torch.long))
        one_line(err, "ml.to_mnist")
        assert "mnistlab.images" not in str(err.value)


# ------------------------------------------------------------------ 5. repr

def test_imageset_repr_is_short():
    ds = ml.ImageSet(torch.zeros(60000, 28, 28, dtype=torch.uint8), torch.arange(60000) % 10)
    assert repr(ds) == "ImageSet(dataset='mnist', n=60000, images=uint8 (60000, 28, 28), labels=0-9)"
    assert str(ds) == repr(ds)
    assert repr(ds.head(0)) == "ImageSet(dataset='mnist', n=0, images=uint8 (0, 28, 28), labels=none)"


# ------------------------------------------------------------------ 6. divergence

@requires_data
def test_divergence_is_caught_and_names_the_epoch(mnist_small):
    train, _ = mnist_small
    with pytest.raises(ml.TrainingError) as err:
        ml.fit(ml.create_model("fast", seed=0), train, config=ml.TrainConfig(epochs=1, optimizer="sgd", lr=100), progress=False)
    one_line(err, "epoch 1", "step", "lower the learning rate")


def test_a_loss_exploding_but_finite_is_divergence():
    """The loss reaching 100x its start (or more) stops training, before it ever becomes NaN."""
    class Blowup(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(784, 10))

        def forward(self, x):
            return x.flatten(1) @ self.w

    data = (digits(64), torch.arange(64) % 10)
    with pytest.raises(ml.TrainingError) as err:
        ml.fit(Blowup(), data, config=ml.TrainConfig(epochs=3, optimizer="sgd", lr=100, batch_size=8), progress=False,
               device="cpu")
    one_line(err, "diverged", "epoch 1", "lower the learning rate")
    assert "nan" not in str(err.value).lower()


@requires_data
def test_normal_runs_never_trigger_the_divergence_check(mnist_small):
    train, test = mnist_small
    model, history = ml.train_model(ml.get_recipe("fast"), train, seed=0, device="cpu", progress=False)
    assert len(history) == 1 and ml.evaluate(model, test)["acc"] > 0.8


@requires_data
def test_lr_sweep_marks_a_diverging_rate_failed():
    from mnistlab import experiments as ex

    cfg = ml.TrainConfig("div", model="logreg", epochs=1, optimizer="sgd", batch_size=64, train_limit=400,
                         test_limit=200, val="test")
    sweep = ex.lr_sweep(cfg, ["sgd"], [0.1, 100.0], seeds=[0], cache=False, progress=False)
    rows = sweep.groupby("lr_value")["diverged"].any()
    assert not rows[0.1] and rows[100.0]
    error = sweep.loc[sweep.lr_value == 100.0, "error"].iloc[0]
    assert "diverged" in error and "learning rate" in error


# ------------------------------------------------------------------ 7. torch internals -> one line

def test_api_mistakes_are_one_clear_line(model, tmp_path):
    with pytest.raises(TypeError) as err:
        ml.predict(model, str(tmp_path / "seven.png"))
    one_line(err, "seven.png", "ml.to_mnist")
    with pytest.raises(TypeError) as err:
        ml.predict(model, tmp_path / "seven.png")
    one_line(err, "ml.to_mnist")
    with pytest.raises(TypeError) as err:
        ml.fit(model, "notdata", progress=False)
    one_line(err, "'notdata'", "ImageSet")
    with pytest.raises(TypeError) as err:
        ml.predict(model, {"images": 1})
    one_line(err, "dict")
    for empty in (np.zeros((0, 28, 28), np.uint8), torch.zeros(0, 28, 28)):
        with pytest.raises(ValueError) as err:
            ml.predict(model, empty)
        one_line(err, "no images")
    with pytest.raises(ValueError) as err:
        ml.fit(model, ml.ImageSet(torch.zeros(0, 28, 28, dtype=torch.uint8), torch.zeros(0)), progress=False)
    one_line(err, "no images")


@pytest.mark.parametrize("kwargs,words", [
    ({"width": "16"}, ["width", "whole number", "'16'"]),
    ({"width": 0}, ["width", "empty"]),
    ({"width": -3}, ["width"]),
    ({"width": 10**6}, ["parameters", "limit"]),
    ({"width": 16.0}, ["width", "whole number"]),
    ({"nope": 1}, ["nope"]),
])
def test_create_model_refuses_bad_arguments_before_allocating(kwargs, words):
    with pytest.raises(ValueError) as err:
        ml.create_model("fast", **kwargs)
    one_line(err, "fast", *words)


def test_create_model_takes_good_arguments():
    assert ml.create_model("fast", width=np.int64(8))(torch.zeros(2, 1, 28, 28)).shape == (2, 10)
    assert ml.create_model("mlp", hidden=[32], dropout=0)(torch.zeros(2, 1, 28, 28)).shape == (2, 10)
    from mnistlab.models.registry import MAX_PARAMETERS

    assert MAX_PARAMETERS == 200_000_000


# ------------------------------------------------------------------ 8. non-regular files

def no_hang(fn, fifo: Path | None = None, timeout: float = 20.0):
    """Run ``fn`` in a thread; fail (instead of hanging) if it does not return in ``timeout`` seconds."""
    out = {}

    def target():
        try:
            out["value"] = fn()
        except BaseException as exc:  # noqa: BLE001 (handed back to the test)
            out["error"] = exc

    t = threading.Thread(target=target, daemon=True)
    t.start()
    t.join(timeout)
    if t.is_alive():
        if fifo is not None:  # unblock the reader stuck in open(): a writer that closes at once
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        pytest.fail(f"hung for {timeout} s")
    if "error" in out:
        raise out["error"]
    return out.get("value")


def test_fifo_or_device_as_an_image_is_named(tmp_path):
    fifo = tmp_path / "seven.png"
    os.mkfifo(fifo)
    with pytest.raises(ValueError) as err:
        no_hang(lambda: to_mnist(fifo), fifo)
    one_line(err, "seven.png", "FIFO")
    assert "folder" not in str(err.value)
    if Path("/dev/zero").exists():
        with pytest.raises(ValueError) as err:
            no_hang(lambda: to_mnist("/dev/zero"))
        one_line(err, "/dev/zero", "device")
        assert "folder" not in str(err.value)
    (tmp_path / "dir.png").mkdir()
    with pytest.raises(FileNotFoundError) as err:  # as before: a folder is no file
        to_mnist(tmp_path / "dir.png")
    one_line(err, "dir.png", "folder")


@pytest.mark.parametrize("which", ["train-images-idx3-ubyte", "train-labels-idx1-ubyte.gz", "/dev/zero"])
def test_fifo_or_device_as_a_dataset_file_is_named(synthetic_root, which):
    raw = synthetic_root / "MNIST" / "raw"
    if which.startswith("/dev"):
        if not Path(which).exists():
            pytest.skip("no /dev/zero")
        target = raw / "train-images-idx3-ubyte"
        target.unlink()
        target.symlink_to(which)
        fifo, words = None, ["train-images-idx3-ubyte", "device"]
    else:
        (raw / which.removesuffix(".gz")).unlink()
        fifo = raw / which
        os.mkfifo(fifo)
        words = [which, "FIFO"]
    with pytest.raises(ml.DataError) as err:
        no_hang(lambda: ml.load_dataset("mnist", "train", root=synthetic_root), fifo)
    one_line(err, *words)
    assert "folder" not in str(err.value)
    report = no_hang(lambda: ml.check_files("mnist", root=synthetic_root), fifo)
    name = "train-images-idx3-ubyte" if which.startswith("/dev") else which.removesuffix(".gz")
    row = [r for r in report if r["file"] == name][0]
    assert not row["ok"] and words[-1].lower() in row["problem"].lower()


# ------------------------------------------------------------------ 9. gzip bombs

def idx_header(*dims) -> bytes:
    return struct.pack(">HBB", 0, 0x08, len(dims)) + struct.pack(">" + "I" * len(dims), *dims)


@pytest.fixture
def gz_folder(tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    write_idx(raw / "train-labels-idx1-ubyte", np.arange(10) % 10)
    for name, n in (("t10k-images-idx3-ubyte", 4), ("t10k-labels-idx1-ubyte", 4)):
        write_idx(raw / name, rng.integers(0, 256, (n, 28, 28)) if "images" in name else np.arange(n))
    return tmp_path, raw / "train-images-idx3-ubyte.gz"


def count_reads(monkeypatch):
    """Bytes handed out by every gzip reader (decompressed)."""
    seen = [0]
    real = gzip.GzipFile.read

    def read(self, size=-1):
        data = real(self, size)
        seen[0] += len(data)
        return data

    monkeypatch.setattr(gzip.GzipFile, "read", read)
    return seen


BIG = 4_000_000  # 4 MB of zeros: compresses to a few kB


@pytest.mark.parametrize("header,words", [
    (b"\x00\x00\x08\x05" + b"\x00" * 12, ["not an IDX images file"]),
    (idx_header(10, 28, 28), ["trailing bytes"]),
    (idx_header(4_000_000, 28, 28), ["4000000 records", "60000"]),
    (idx_header(10, 300, 300), ["(300, 300)"]),
], ids=["wrong magic", "longer than its header", "huge count", "huge images"])
def test_gzip_bomb_is_refused_after_reading_little(gz_folder, monkeypatch, header, words):
    root, gz = gz_folder
    with gzip.open(gz, "wb", compresslevel=1) as fh:
        fh.write(header)
        fh.write(bytes(BIG))
    assert gz.stat().st_size < 100_000
    seen = count_reads(monkeypatch)
    with pytest.raises(ml.DataError) as err:
        ml.load_dataset("mnist", "train", root=root)
    one_line(err, "train-images-idx3-ubyte.gz", *words)
    assert seen[0] <= 16 + 10 * 784 + 1  # never more than the header allows (plus one byte to see the excess)
    assert not (gz.parent / "train-images-idx3-ubyte").exists()  # nothing half-written
    seen[0] = 0
    report = ml.check_files("mnist", root=root)
    row = [r for r in report if r["file"] == "train-images-idx3-ubyte"][0]
    assert not row["ok"] and words[0].lower() in row["problem"].lower() and seen[0] <= 16 + 10 * 784 + 1


def test_sound_gz_still_loads(gz_folder):
    root, gz = gz_folder
    images = np.random.default_rng(1).integers(0, 256, (10, 28, 28)).astype(np.uint8)
    with gzip.open(gz, "wb") as fh:
        fh.write(idx_header(10, 28, 28) + images.tobytes())
    ds = ml.load_dataset("mnist", "train", root=root)
    assert len(ds) == 10 and np.array_equal(ds.images.numpy(), images)
    report = [r for r in ml.check_files("mnist", root=root) if r["split"] == "train"]
    assert [r["problem"] for r in report] == ["10 records, expected 60000"] * 2  # sound, only small


# ------------------------------------------------------------------ 10. MNISTLAB_DATA

def test_data_env_is_stripped(synthetic_root, monkeypatch):
    monkeypatch.setenv("MNISTLAB_DATA", f"  {synthetic_root}\n")
    assert ml.data_root() == synthetic_root
    assert len(ml.load_dataset("mnist", "test")) == 20
    monkeypatch.setenv("MNISTLAB_DATA", " \n")
    assert ml.data_root() == datasets._default_root()


def test_relative_data_env_is_resolved_once_or_named(synthetic_root, monkeypatch, tmp_path):
    monkeypatch.chdir(synthetic_root.parent)
    monkeypatch.setenv("MNISTLAB_DATA", synthetic_root.name)
    assert ml.data_root() == synthetic_root.resolve() and ml.data_root().is_absolute()
    monkeypatch.setenv("MNISTLAB_DATA", "no/such/data")
    with pytest.raises(ml.DataError) as err:
        ml.data_root()
    one_line(err, "MNISTLAB_DATA=no/such/data is relative", str(synthetic_root.parent.resolve()), "absolute path")


def test_data_folder_that_is_no_folder_is_named(tmp_path, monkeypatch):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    monkeypatch.setenv("MNISTLAB_DATA", str(fifo))
    with pytest.raises(ml.DataError) as err:
        no_hang(ml.data_root, fifo)
    one_line(err, f"MNISTLAB_DATA={fifo}", "FIFO", "not a folder")
    with pytest.raises(ml.DataError) as err:
        no_hang(lambda: ml.load_dataset("mnist", "test", root=fifo), fifo)
    one_line(err, f"root={fifo}", "FIFO", "not a folder")


# ------------------------------------------------------------------ 11. legacy checkpoints

def test_legacy_torch_format_checkpoint_loads(tmp_path):
    path = save_checkpoint(tmp_path / "new.pt", ml.create_model("fast", seed=0))
    payload = torch.load(path, weights_only=True)
    legacy = tmp_path / "legacy.pt"
    torch.save(payload, legacy, _use_new_zipfile_serialization=False)
    from mnistlab.training.checkpoint import is_checkpoint

    assert is_checkpoint(legacy)
    ckpt = ml.load_checkpoint(legacy)
    weight = payload["state_dict"]["head.weight"]
    assert ckpt.name == "fast" and torch.equal(ckpt.model.state_dict()["head.weight"], weight)


class _Evil:
    def __reduce__(self):
        return (os.system, (f"touch {_Evil.marker}",))


def test_legacy_format_malicious_pickle_never_runs(tmp_path):
    _Evil.marker = tmp_path / "pwned"
    evil = tmp_path / "evil.pt"
    magic = pickle.dumps(0x1950A86A20F9469CFC6C, protocol=2)  # the legacy format's first record
    evil.write_bytes(magic + pickle.dumps(1001, protocol=2) + pickle.dumps({}, protocol=2) + pickle.dumps(_Evil()))
    with pytest.raises(ml.CheckpointError) as err:
        ml.load_checkpoint(evil)
    one_line(err, "evil.pt")
    assert "weights_only=False" not in str(err.value)
    assert not _Evil.marker.exists()


# ------------------------------------------------------------------ 12. progress bars

def test_train_model_and_fit_show_progress_by_default(capsys):
    data = (digits(64), torch.arange(64) % 10)
    cfg = ml.TrainConfig("tiny", model="logreg", epochs=1, batch_size=32)
    ml.train_model(cfg, data, device="cpu")
    assert "epochs" in capsys.readouterr().err
    ml.fit(ml.create_model("logreg", seed=0), data, config=ml.TrainConfig(epochs=1), device="cpu")
    assert "epochs" in capsys.readouterr().err
    ml.train_model(cfg, data, device="cpu", progress=False)
    ml.fit(ml.create_model("logreg", seed=0), data, config=ml.TrainConfig(epochs=1), device="cpu", progress=False)
    assert capsys.readouterr().err == ""
