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
    ml.fit(ml.create_model("logreg", seed=0), train.head(256), config=ml.TrainConfig(epochs=1), progress=False, device="cpu")
    assert torch.equal(torch.rand(3), expected)


def test_datasets_are_handed_out_as_copies():
    a = ml.load_dataset("mnist", "test", limit=5)
    a.images[0, 0, 0] = 255
    a.labels[0] = 3
    b = ml.load_dataset("mnist", "test", limit=5)
    c = ml.load_dataset("mnist", "test")
    assert b.images[0, 0, 0] == 0 and c.images[0, 0, 0] == 0 and b.labels[0] == 7


def test_fit_takes_a_loss_metrics_and_rates_per_group(mnist_small):
    train, test = mnist_small
    model = ml.create_model("logreg", seed=0)
    seen = {}

    class Spy(ml.Callback):
        def on_train_begin(self, state):
            seen["lrs"] = {g["name"]: g["lr"] for g in state.optimizer.param_groups}

    def top2(logits, y):
        return (logits.topk(2, 1).indices == y[:, None]).any(1).sum()

    cfg = ml.TrainConfig(epochs=1, optimizer="sgd", head_lr=0.05, body_lr=0.001)
    hist = ml.fit(model, train.head(512), test.head(200), cfg,
                  loss_fn=lambda logits, y: torch.nn.functional.nll_loss(logits.log_softmax(1), y),
                  metrics={"acc": lambda l, y: (l.argmax(1) == y).sum(), "top2": top2}, callbacks=[Spy()],
                  progress=False, device="cpu")
    assert seen["lrs"] == {"head": 0.05}          # logreg is all head: no body group
    assert {"train_top2", "val_top2"} <= set(hist.columns)
    assert hist["val_top2"].iloc[0] >= hist["val_acc"].iloc[0]


def test_fit_refuses_a_config_that_disagrees_with_the_data(mnist_small):
    train, _ = mnist_small
    model = ml.create_model("logreg", seed=0)
    with pytest.raises(ValueError, match=r"train_limit = 100 but 512 training images.*train.head\(100\)"):
        ml.fit(model, train.head(512), config=ml.TrainConfig(train_limit=100, epochs=1), progress=False)
    with pytest.raises(ValueError, match="dataset = 'fashion-mnist' but mnist images"):
        ml.train_model(ml.get_recipe("fast", train_limit=10000, dataset="fashion-mnist"), train.head(512),
                       progress=False)
    with pytest.raises(ValueError, match="init_from = 'abc' but the model handed to fit was not built from it"):
        ml.fit(model, train.head(64), config=ml.TrainConfig(init_from="abc", epochs=1), progress=False)
    with pytest.raises(ValueError, match="freeze = 3.5 is not allowed"):
        ml.TrainConfig(freeze=3.5)
    with pytest.raises(ValueError, match="keep_head = True is not allowed: only with init_from"):
        ml.TrainConfig(keep_head=True)
    # within the limit (a validation split took some) and the same dataset: trains
    hist = ml.fit(model, train.head(90), config=ml.TrainConfig(train_limit=100, epochs=1), progress=False)
    assert len(hist) == 1


def test_new_fields_at_their_defaults_keep_the_cache_key():
    from mnistlab.experiments.cache import config_hash
    from mnistlab.training.config import LATER_FIELDS

    cfg = ml.TrainConfig(model="logreg", epochs=1)
    assert not set(LATER_FIELDS) & set(cfg.recipe())
    assert cfg.but(min_steps=50).recipe()["min_steps"] == 50
    assert config_hash(cfg, 0) != config_hash(cfg.but(head_lr=0.1), 0)


def test_one_evaluation_batch_size_everywhere_and_results_do_not_depend_on_it(mnist_small):
    """The default evaluation batch (256, measured faster on a CPU than the old 2000) is one constant,
    a config at it keeps the cache key it had at 2000, and the score is the same in any batch size."""
    import inspect

    from mnistlab.studies import gan as gs, interpret, transfer
    from mnistlab.training.config import EVAL_BATCH_SIZE

    assert EVAL_BATCH_SIZE == 256 == ml.TrainConfig().eval_batch_size
    for fn in (ml.evaluate, ml.predict, ml.predict_classes, ml.features, interpret.model_logits,
               interpret.robustness, transfer.linear_probe, gs.FrechetDistance.__init__):
        assert inspect.signature(fn).parameters["batch_size"].default == EVAL_BATCH_SIZE, fn
    assert "eval_batch_size" not in ml.TrainConfig().recipe() and "eval_batch_size" not in transfer.TRANSFER.recipe()
    assert ml.TrainConfig(eval_batch_size=2000).recipe()["eval_batch_size"] == 2000
    _, test = mnist_small
    model = ml.create_model("deeper", seed=0)
    a, b = ml.evaluate(model, test, batch_size=2000), ml.evaluate(model, test)
    assert a["n"] == b["n"] == len(test) and a["acc"] == b["acc"] and a["loss"] == pytest.approx(b["loss"], rel=1e-5)
    np.testing.assert_allclose(ml.features(model, test, batch_size=1000), ml.features(model, test), rtol=1e-4, atol=1e-5)


def test_min_steps_freeze_and_init_from(mnist_small, tmp_path):
    train, test = mnist_small
    data = train.head(64)
    cfg = ml.TrainConfig(model="fast", model_kwargs={"width": 4}, epochs=1, batch_size=16, min_steps=10)
    model = cfg.build_model(seed=0)
    hist = ml.fit(model, data, config=cfg, progress=False)
    assert len(hist) == 3                          # 4 steps an epoch: raised to 3 epochs for >= 10 steps
    before = {k: v.clone() for k, v in model.state_dict().items()}
    ml.fit(model, data, config=cfg.but(freeze="features", min_steps=None), progress=False)
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before if not k.startswith("head."))
    assert not torch.equal(before["head.weight"], after["head.weight"])
    path = ml.save_checkpoint(tmp_path / "source.pt", model)
    target = cfg.but(init_from=str(path), epochs=1, min_steps=None)
    start = target.build_model(seed=1)
    assert torch.equal(start.body[0].weight, model.body[0].weight)         # the source's features
    assert not torch.equal(start.head.weight, model.head.weight)           # a new head
    kept = target.but(keep_head=True).build_model(seed=1)
    assert torch.equal(kept.head.weight, model.head.weight)
    ml.fit(start, data, config=target, progress=False)                    # built from init_from: accepted
    with pytest.raises(FileNotFoundError, match="names no checkpoint file"):
        cfg.but(init_from="0123abcd").build_model(0)


def test_on_train_end_runs_when_training_raises(mnist_small):
    train, _ = mnist_small
    ended = []

    class Boom(ml.Callback):
        def on_batch_end(self, state):
            raise RuntimeError("boom")

        def on_train_end(self, state):
            ended.append(True)

    with pytest.raises(RuntimeError, match="boom"):
        ml.fit(ml.create_model("logreg", seed=0), train.head(128), config=ml.TrainConfig(epochs=1), callbacks=[Boom()], progress=False)
    assert ended == [True]


def test_config_check_leaves_the_random_state_and_imports_no_compiler():
    """Validating a config builds its model on the CPU to read the scores per image: the global random state is
    left as it was, and `import mnistlab` does not pull in torch._dynamo (BatchNorm on the meta device did, 1.5 s)."""
    import subprocess
    import sys

    torch.manual_seed(123)
    before = torch.get_rng_state()
    ml.TrainConfig("check", model="best", model_kwargs={"width": 12, "dropout": 0.2})   # a BatchNorm net, not cached yet
    assert torch.equal(torch.get_rng_state(), before)
    code = "import sys, mnistlab, mnistlab.experiments; print('torch._dynamo' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
    with pytest.raises(ValueError, match="scores per image"):
        ml.TrainConfig("wrong", model="best", dataset="mnist", model_kwargs={"num_classes": 3})
