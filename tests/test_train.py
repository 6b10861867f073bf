import math

import numpy as np
import pandas as pd
import pytest
import torch

import mnistlab as ml


def tiny(n=256, seed=0):
    """Separable synthetic digits: class k lights up row band k."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % 10
    images = torch.randint(0, 40, (n, 28, 28), generator=g, dtype=torch.uint8)
    for k in range(10):
        images[labels == k, 2 * k + 4:2 * k + 6, 4:24] = 255
    return ml.ImageSet(images, labels)


def test_fit_returns_history_and_learns():
    data = tiny()
    model = ml.create_model("logreg", seed=0)
    hist = ml.fit(model, data, data, ml.TrainConfig(epochs=3, optimizer="adam", lr=0.01, batch_size=32), progress=False)
    assert isinstance(hist, pd.DataFrame)
    assert list(hist.columns) == ["epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr", "seconds", "elapsed"]
    assert hist["epoch"].tolist() == [1, 2, 3]
    assert hist["train_loss"].iloc[-1] < hist["train_loss"].iloc[0]
    assert hist["val_acc"].iloc[-1] > 0.9
    assert ml.evaluate(model, data)["acc"] == pytest.approx(hist["val_acc"].iloc[-1])


def test_same_seed_same_history_on_cpu():
    data = tiny()
    runs = []
    for _ in range(2):
        model = ml.create_model("conv2_fc2", seed=1)  # has dropout: exercises the fit seed
        runs.append(ml.fit(model, data, data, ml.TrainConfig(epochs=2, optimizer="momentum", lr=0.05, batch_size=32, augment=ml.Augment()), seed=3, progress=False, device="cpu"))
    cols = ["train_loss", "train_acc", "val_loss", "val_acc"]
    pd.testing.assert_frame_equal(runs[0][cols], runs[1][cols])
    other = ml.fit(ml.create_model("conv2_fc2", seed=1), data, data, ml.TrainConfig(epochs=2, optimizer="momentum", lr=0.05, batch_size=32, augment=ml.Augment()), seed=4, progress=False)
    assert not np.allclose(other["train_loss"], runs[0]["train_loss"])


def test_nan_loss_stops_with_epoch_and_step():
    data = tiny(64)
    model = ml.create_model("logreg", seed=0)
    with pytest.raises(ml.TrainingError, match=r"epoch 1, step \d+ .*learning rate"):
        ml.fit(model, data, config=ml.TrainConfig(epochs=1, batch_size=8), progress=False,
               loss_fn=lambda logits, y: torch.nn.functional.cross_entropy(logits, y) * float("nan"))
    with pytest.raises(ValueError, match=r"normalize = \[0.0, 0.0\] is not allowed"):  # caught before training
        ml.fit(model, data, config=ml.TrainConfig(epochs=1, normalize=(0.0, 0.0)), progress=False)


@pytest.mark.parametrize("name", sorted(ml.training.DEFAULT_LR))
def test_optimizers_by_name(name):
    opt = ml.make_optimizer(name, ml.create_model("logreg").parameters())
    assert opt.param_groups[0]["lr"] == ml.training.DEFAULT_LR[name]
    if name == "nesterov":
        assert opt.param_groups[0]["nesterov"] and opt.param_groups[0]["momentum"] == 0.9


def test_optimizer_instance_and_unknown():
    params = list(ml.create_model("logreg").parameters())
    inst = torch.optim.SGD(params, lr=0.3)
    assert ml.make_optimizer(inst, params) is inst
    with pytest.raises(ValueError, match="Unknown optimizer"):
        ml.make_optimizer("lion", params)


def test_schedulers():
    model = ml.create_model("logreg")
    opt = ml.make_optimizer("sgd", model.parameters(), lr=0.1)
    sched, per_step = ml.make_scheduler("onecycle", opt, epochs=2, steps_per_epoch=5)
    assert per_step and isinstance(sched, torch.optim.lr_scheduler.OneCycleLR)
    assert ml.make_scheduler("step", opt, 4, 5)[1] is False
    assert ml.make_scheduler(None, opt, 4, 5) == (None, False)
    with pytest.raises(ValueError, match="Unknown scheduler"):
        ml.make_scheduler("warmup", opt, 4, 5)
    hist = ml.fit(model, tiny(64), config=ml.TrainConfig(epochs=4, optimizer="sgd", lr=0.1, scheduler="step"), progress=False)
    assert hist["lr"].tolist() == pytest.approx([0.1, 0.1, 0.01, 0.001])


def test_early_stopping_restores_best_weights():
    data = tiny(128)
    val = tiny(64, seed=1)
    model = ml.create_model("logreg", seed=0)
    # demanding a 50-point gain per epoch: patience runs out after the first epoch
    stopper = ml.EarlyStopping(monitor="val_acc", patience=1, min_delta=0.5)
    hist = ml.fit(model, data, val, ml.TrainConfig(epochs=10, optimizer="adam", lr=0.01), callbacks=[stopper], progress=False)
    assert stopper.best_epoch == 1 and stopper.stopped_epoch == 2 and len(hist) == 2
    with pytest.raises(ValueError, match="pass val"):
        ml.fit(model, data, config=ml.TrainConfig(epochs=1), callbacks=[ml.EarlyStopping()], progress=False)


def test_early_stopping_weights_are_those_of_best_epoch():
    data = tiny(128)
    snapshots = []
    keep = ml.LambdaCallback(on_epoch_end=lambda s: snapshots.append(
        {k: v.clone() for k, v in s.model.state_dict().items()}))
    stopper = ml.EarlyStopping(monitor="val_loss", patience=2)
    model = ml.create_model("logreg", seed=0)
    ml.fit(model, data, data, ml.TrainConfig(epochs=6, optimizer="sgd", lr=5.0), callbacks=[keep, stopper], progress=False)
    best = snapshots[stopper.best_epoch - 1]
    assert all(torch.equal(model.state_dict()[k], best[k]) for k in best)


def test_callback_hooks_see_gradients_and_steps():
    seen = {"grad": [], "steps": []}

    class Recorder(ml.Callback):
        def on_after_backward(self, state):
            seen["grad"].append(state.model.head.weight.grad.norm().item())

        def on_batch_end(self, state):
            seen["steps"].append(state.step)

    ml.fit(ml.create_model("logreg"), tiny(64), config=ml.TrainConfig(epochs=2, batch_size=16), callbacks=[Recorder()], progress=False)
    assert seen["steps"] == list(range(1, 9))
    assert len(seen["grad"]) == 8 and all(g > 0 for g in seen["grad"])
    with pytest.raises(ValueError, match="not a callback hook"):
        ml.LambdaCallback(on_lunch=print)


def test_model_checkpoint_callback(tmp_path):
    path = tmp_path / "best.pt"
    data = tiny(64)
    ml.fit(ml.create_model("logreg"), data, data, ml.TrainConfig(epochs=2), callbacks=[ml.ModelCheckpoint(path)], progress=False)
    ckpt = ml.load_checkpoint(path)
    assert ckpt.name == "logreg" and 0 <= ckpt.metrics["val_acc"] <= 1 and len(ckpt.history) >= 1


def test_predict_and_classes():
    data = tiny(64)
    model = ml.create_model("logreg", seed=0)
    ml.fit(model, data, config=ml.TrainConfig(epochs=3, optimizer="adam", lr=0.02), progress=False)
    probs = ml.predict(model, data.images)
    assert probs.shape == (64, 10) and probs.dtype == np.float32
    assert np.allclose(probs.sum(1), 1, atol=1e-5)
    classes = ml.predict_classes(model, data)
    assert classes.dtype == np.int64 and (classes == probs.argmax(1)).all()
    assert (classes == data.labels.numpy()).mean() > 0.9
    assert (model.preprocessing.mean, model.preprocessing.std) == (0.1307, 0.3081)


def test_resolve_device():
    assert ml.resolve_device("cpu").type == "cpu"
    assert ml.resolve_device("auto").type in ("cpu", "cuda", "mps")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA"):
            ml.resolve_device("cuda")


def test_fit_on_real_subset(mnist_small):
    train, test = mnist_small
    model = ml.create_model("fast", seed=0)
    hist = ml.fit(model, train, test, ml.TrainConfig(epochs=1, optimizer="nesterov", lr=0.1, scheduler="onecycle", batch_size=64), progress=False)
    assert hist["val_acc"].iloc[0] > 0.7
    assert math.isfinite(hist["train_loss"].iloc[0])


def test_onecycle_with_too_few_steps_says_so():
    opt = torch.optim.SGD(ml.create_model("logreg").parameters(), lr=0.1)
    with pytest.raises(ValueError, match="at least 5 optimizer steps"):
        ml.make_scheduler("onecycle", opt, epochs=1, steps_per_epoch=3)
