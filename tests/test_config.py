"""TrainConfig: validation with clear messages, copies, the cache key, checkpoints carrying it."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import mnistlab as ml
from mnistlab.experiments.cache import config_hash


@pytest.mark.parametrize("field, value, words", [
    ("epochs", -1, "epochs"), ("batch_size", 0, "batch_size"), ("lr", float("nan"), "lr"), ("lr", 1e6, "lr"),
    ("label_smoothing", 2.0, "label_smoothing"), ("optimizer", "sgdd", "optimizer"), ("model", "nope", "model"),
    ("scheduler", "linear", "scheduler"), ("train_limit", 0, "train_limit"), ("train_limit", -5, "train_limit"),
    ("normalize", [0.1, 0.0], "normalize"), ("dataset", "nosuch", "dataset"), ("val", -1, "val"),
])
def test_invalid_settings_name_the_field(field, value, words):
    with pytest.raises(ValueError, match=words):
        ml.TrainConfig(**{field: value})


def test_but_changes_one_field_and_name_is_not_in_the_key():
    a = ml.TrainConfig("a", model="fast", epochs=1)
    b = a.but(name="b")
    assert b.epochs == 1 and b.name == "b" and a.name == "a"
    assert config_hash(a, 0) == config_hash(b, 0) != config_hash(a, 1)
    assert config_hash(a, 0) != config_hash(a.but(lr=0.5), 0)


def test_cache_key_does_not_depend_on_the_package_version(monkeypatch):
    cfg = ml.TrainConfig(model="fast")
    before = config_hash(cfg, 0)
    monkeypatch.setattr(ml, "__version__", "99.0")
    assert config_hash(cfg, 0) == before


def test_fields_help_covers_every_field():
    help_ = ml.TrainConfig.fields_help()
    assert set(help_) == set(ml.TrainConfig().to_dict())
    assert all(text for _, text in help_.values())


def test_predict_is_the_same_after_a_checkpoint_round_trip(tmp_path):
    model = ml.create_model("fast", seed=0, normalize="unit")  # untrained, unusual preprocessing
    images = torch.randint(0, 256, (16, 28, 28), dtype=torch.uint8)
    before = ml.predict(model, images)
    path = ml.save_checkpoint(tmp_path / "m.pt", model, config=ml.get_recipe("fast"))
    ck = ml.load_checkpoint(path)
    assert ck.preprocessing == model.preprocessing and ck.config == ml.get_recipe("fast")
    np.testing.assert_allclose(ml.predict(ck.model, images), before, atol=1e-6)


def test_fit_leaves_the_global_rng_alone(mnist_small):
    train, _ = mnist_small
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    ml.fit(ml.create_model("logreg", seed=0), train.head(256), epochs=1, progress=False, device="cpu")
    assert torch.equal(torch.rand(3), expected)


def test_datasets_are_handed_out_as_copies():
    a = ml.load_dataset("mnist", "test", limit=5)
    a.images[0, 0, 0] = 255
    a.labels[0] = 3
    b = ml.load_dataset("mnist", "test", limit=5)
    c = ml.load_dataset("mnist", "test")
    assert b.images[0, 0, 0] == 0 and c.images[0, 0, 0] == 0 and b.labels[0] == 7


def test_fit_takes_a_loss_metrics_and_parameter_groups(mnist_small):
    train, test = mnist_small
    model = ml.create_model("logreg", seed=0)
    groups = [{"params": [model.head.weight], "lr": 0.05}, {"params": [model.head.bias], "lr": 0.001}]
    seen = {}

    class Spy(ml.Callback):
        def on_train_begin(self, state):
            seen["lrs"] = [g["lr"] for g in state.optimizer.param_groups]

    hist = ml.fit(model, train.head(512), test.head(200), epochs=1, optimizer="sgd", param_groups=groups,
                  loss_fn=lambda logits, y: torch.nn.functional.nll_loss(logits.log_softmax(1), y),
                  metrics={"acc": lambda l, y: (l.argmax(1) == y).sum(), "top2": lambda l, y:
                           (l.topk(2, 1).indices == y[:, None]).any(1).sum()},
                  callbacks=[Spy()], progress=False, device="cpu")
    assert seen["lrs"] == [0.05, 0.001]
    assert {"train_top2", "val_top2"} <= set(hist.columns)
    assert hist["val_top2"].iloc[0] >= hist["val_acc"].iloc[0]


def test_on_train_end_runs_when_training_raises(mnist_small):
    train, _ = mnist_small
    ended = []

    class Boom(ml.Callback):
        def on_batch_end(self, state):
            raise RuntimeError("boom")

        def on_train_end(self, state):
            ended.append(True)

    with pytest.raises(RuntimeError, match="boom"):
        ml.fit(ml.create_model("logreg", seed=0), train.head(128), epochs=1, callbacks=[Boom()], progress=False)
    assert ended == [True]
