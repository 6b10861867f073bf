import numpy as np
import pytest
import torch

import mnistlab as ml
from mnistlab.data.datasets import DataError
from conftest import requires_data, write_idx


def test_load_synthetic_split(synthetic_root):
    tr = ml.load_dataset("mnist", "train", root=synthetic_root)
    te = ml.load_dataset("mnist", "test", root=synthetic_root)
    assert tr.images.shape == (60, 28, 28) and tr.images.dtype == torch.uint8
    assert tr.labels.dtype == torch.int64 and tr.labels.tolist()[:12] == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1]
    assert len(te) == 20
    both = ml.load_dataset("mnist", "all", root=synthetic_root)
    assert len(both) == 80 and torch.equal(both.images[60:], te.images)
    assert len(ml.load_dataset("mnist", "train", root=synthetic_root, limit=7)) == 7


def test_missing_files_error_names_files_folder_and_env(tmp_path):
    with pytest.raises(DataError) as err:
        ml.load_dataset("mnist", "train", root=tmp_path)
    msg = str(err.value)
    assert "train-images-idx3-ubyte" in msg and str(tmp_path) in msg and "MNISTLAB_DATA" in msg


def test_env_var_sets_root(synthetic_root, monkeypatch):
    monkeypatch.setenv("MNISTLAB_DATA", str(synthetic_root))
    assert ml.data_root() == synthetic_root
    assert len(ml.load_dataset("mnist", "test")) == 20
    assert ml.data_root("/elsewhere") == ml.data_root("/elsewhere")


def test_truncated_file_is_named(synthetic_root):
    path = synthetic_root / "MNIST" / "raw" / "t10k-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(DataError, match="t10k-images-idx3-ubyte.*truncated"):
        ml.load_dataset("mnist", "test", root=synthetic_root)


def test_corrupt_magic_and_wrong_shape(synthetic_root):
    raw = synthetic_root / "MNIST" / "raw"
    (raw / "t10k-labels-idx1-ubyte").write_bytes(b"\x1f\x8b\x08\x00garbage")  # a gzip header
    with pytest.raises(DataError, match="not an IDX labels file"):
        ml.load_dataset("mnist", "test", root=synthetic_root)
    write_idx(raw / "train-images-idx3-ubyte", np.zeros((60, 32, 32)))
    with pytest.raises(DataError, match=r"\(32, 32\)"):
        ml.load_dataset("mnist", "train", root=synthetic_root)


def test_label_count_mismatch(synthetic_root):
    write_idx(synthetic_root / "MNIST" / "raw" / "t10k-labels-idx1-ubyte", np.zeros(19))
    with pytest.raises(DataError, match="20 images but .* 19 labels"):
        ml.load_dataset("mnist", "test", root=synthetic_root)


def test_check_files_reports_each_file(synthetic_root):
    report = ml.check_files("mnist", synthetic_root)
    assert len(report) == 4 and all(r["present"] for r in report)
    assert not any(r["ok"] for r in report)  # synthetic counts are not 60000/10000
    assert "records" in report[0]["problem"]
    assert all(r["problem"] == "missing" for r in ml.check_files("kmnist", synthetic_root))


@requires_data
def test_real_mnist_files_are_sound():
    assert all(r["ok"] for r in ml.check_files("mnist"))
    te = ml.load_dataset("mnist", "test")
    assert te.images.shape == (10000, 28, 28)
    assert torch.bincount(te.labels).tolist()[:2] == [980, 1135]


def test_unknown_dataset_and_split():
    with pytest.raises(ValueError, match="Unknown dataset"):
        ml.dataset_info("cifar")
    with pytest.raises(ValueError, match="split"):
        ml.load_dataset("mnist", "val")
    assert ml.dataset_info("Fashion").name == "fashion-mnist"


def test_imageset_validates_shapes():
    with pytest.raises(ValueError, match=r"\(N, 28, 28\)"):
        ml.ImageSet(torch.zeros(3, 32, 32, dtype=torch.uint8), torch.zeros(3))
    with pytest.raises(TypeError, match="uint8"):
        ml.ImageSet(torch.zeros(3, 28, 28), torch.zeros(3))
    with pytest.raises(ValueError, match="labels"):
        ml.ImageSet(torch.zeros(3, 28, 28, dtype=torch.uint8), torch.zeros(4))


def test_split_and_kfold_are_deterministic(synthetic_root):
    data = ml.load_dataset("mnist", "train", root=synthetic_root)
    a_tr, a_va = ml.train_val_split(data, 0.25, seed=3)
    b_tr, b_va = ml.train_val_split(data, 0.25, seed=3)
    c_tr, _ = ml.train_val_split(data, 0.25, seed=4)
    assert len(a_va) == 15 and len(a_tr) == 45
    assert torch.equal(a_va.images, b_va.images) and not torch.equal(a_tr.images, c_tr.images)
    folds = ml.kfold_indices(60, k=5, seed=1)
    assert len(folds) == 5
    assert sorted(np.concatenate([v for _, v in folds]).tolist()) == list(range(60))
    assert all(np.array_equal(f[1], g[1]) for f, g in zip(folds, ml.kfold_indices(60, k=5, seed=1)))
    with pytest.raises(ValueError):
        ml.train_val_split(data, 0)
    with pytest.raises(ValueError):
        ml.kfold_indices(5, k=1)


def test_normalization_specs():
    assert ml.normalization("standard", "mnist") == (0.1307, 0.3081)
    assert ml.normalization("unit") == (0.0, 1.0)
    assert ml.normalization("symmetric") == (0.5, 0.5)
    assert ml.normalization((0.2, 0.4)) == (0.2, 0.4)
    with pytest.raises(ValueError):
        ml.normalization("zscore")


def test_loader_batches_normalise_and_cover_epoch(synthetic_root):
    data = ml.load_dataset("mnist", "train", root=synthetic_root)
    loader = ml.TensorLoader(data, batch_size=16, shuffle=True, seed=0)
    batches = list(loader)
    assert len(loader) == len(batches) == 4
    x, y = batches[0]
    assert x.shape == (16, 1, 28, 28) and x.dtype == torch.float32 and y.dtype == torch.int64
    assert sorted(torch.cat([b[1] for b in batches]).tolist()) == sorted(data.labels.tolist())
    expected = (data.images[0].float() / 255 - 0.1307) / 0.3081
    x0, _ = next(iter(ml.TensorLoader(data, batch_size=4, shuffle=False)))
    assert torch.allclose(x0[0, 0], expected, atol=1e-6)
    assert len(ml.TensorLoader(data, batch_size=16, drop_last=True)) == 3
    # same seed -> same order; the order changes between epochs
    l1, l2 = ml.TensorLoader(data, 16, seed=5), ml.TensorLoader(data, 16, seed=5)
    e1, e2 = [b[1] for b in l1], [b[1] for b in l2]
    assert all(torch.equal(a, b) for a, b in zip(e1, e2))
    assert not all(torch.equal(a, b) for a, b in zip(e1, [b[1] for b in l1]))


def test_augment_is_random_but_seeded_and_identity_when_zero():
    x = torch.rand(8, 1, 28, 28)
    ident = ml.Augment(rotation=0, translate=0, scale=(1, 1))
    assert torch.allclose(ident(x), x, atol=1e-5)
    aug = ml.Augment(rotation=30, translate=3)
    a = aug(x, torch.Generator().manual_seed(0))
    b = aug(x, torch.Generator().manual_seed(0))
    assert torch.equal(a, b) and not torch.allclose(a, x, atol=1e-3)
    flip = ml.Augment(rotation=0, translate=0, scale=(1, 1), hflip=1.0)
    assert torch.allclose(flip(x), x.flip(-1), atol=1e-5)
    shift = ml.Augment(rotation=0, translate=0, scale=(1, 1))
    assert shift(x).shape == x.shape


def test_as_imageset_accepts_tensors_and_floats():
    imgs = torch.rand(5, 1, 28, 28)
    ds = ml.as_imageset(imgs)
    assert ds.images.dtype == torch.uint8 and ds.images.shape == (5, 28, 28) and len(ds.labels) == 5
    assert ml.as_imageset(ds) is ds
    pair = ml.as_imageset((torch.zeros(2, 28, 28, dtype=torch.uint8), [3, 4]))
    assert pair.labels.tolist() == [3, 4]


def test_sample_indices_stratified():
    labels = torch.tensor([0] * 10 + [1] * 3 + [2] * 7)
    idx = ml.sample_indices(labels, per_class=4, seed=0)
    counts = torch.bincount(labels[idx]).tolist()
    assert counts == [4, 3, 4]
    assert torch.equal(idx, ml.sample_indices(labels, per_class=4, seed=0))


def test_imageset_helpers(synthetic_root):
    ds = ml.load_dataset("mnist", "test", root=synthetic_root)
    assert ds.classes[3] == "3"
    sub = ds.subset(np.array([1, 2]))
    assert len(sub) == 2 and torch.equal(sub.images[0], ds.images[1])
    flat = ds.float()
    assert flat.shape == (20, 784) and flat.dtype == np.float32 and 0 <= flat.min() and flat.max() <= 1
    assert ds.to("cpu").images.device.type == "cpu"


def test_a_split_loads_without_the_other_splits_files(synthetic_root):
    raw = synthetic_root / "MNIST" / "raw"
    for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"):
        (raw / name).unlink()
    assert len(ml.load_dataset("mnist", "test", root=synthetic_root)) == 20
    with pytest.raises(DataError, match="train-images-idx3-ubyte"):
        ml.load_dataset("mnist", "train", root=synthetic_root)


def test_gz_files_are_unpacked_atomically_and_checked(synthetic_root):
    import gzip

    raw = synthetic_root / "MNIST" / "raw"
    original = (raw / "t10k-images-idx3-ubyte").read_bytes()
    for name in ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        (raw / (name + ".gz")).write_bytes(gzip.compress((raw / name).read_bytes()))
        (raw / name).unlink()
    rows = [r for r in ml.check_files("mnist", synthetic_root) if r["split"] == "test"]
    assert all(r["path"].endswith(".gz") and r["present"] for r in rows)
    test = ml.load_dataset("mnist", "test", root=synthetic_root)
    assert len(test) == 20 and (raw / "t10k-images-idx3-ubyte").read_bytes() == original
    assert not list(raw.glob(".*.tmp"))


def test_check_files_finds_bad_labels_and_disagreeing_counts(tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    labels = np.arange(10000) % 10
    labels[5] = 200
    write_idx(raw / "t10k-images-idx3-ubyte", np.zeros((10000, 28, 28)))
    write_idx(raw / "t10k-labels-idx1-ubyte", labels)
    rows = {r["file"]: r for r in ml.check_files("mnist", tmp_path)}
    assert rows["t10k-images-idx3-ubyte"]["ok"]
    assert "outside 0..9 (e.g. 200)" in rows["t10k-labels-idx1-ubyte"]["problem"]
    assert rows["train-images-idx3-ubyte"]["problem"] == "missing"

