"""Transfer learning: freezing, heads, parameter groups, few labels, scikit-learn's digits, the ImageNet
weights from a local torch cache, and the experiment driver (mnistlab.studies.transfer)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

import mnistlab as ml
from mnistlab.data.sklearn_digits import SKLEARN_DIGITS, convert_digit, load_sklearn_digits
from mnistlab.studies import transfer as tr


def blocks(n: int, n_classes: int = 4, seed: int = 0, dataset: str = "mnist") -> ml.ImageSet:
    """Synthetic digits: class c is a bright 8x8 block at its own place, plus noise (easy to learn)."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % n_classes
    images = torch.randint(0, 40, (n, 28, 28), generator=g)
    for c in range(n_classes):
        r, q = divmod(c, 3)
        images[labels == c, 2 + 8 * r:10 + 8 * r, 2 + 8 * q:10 + 8 * q] = 230
    return ml.ImageSet(images.to(torch.uint8), labels, dataset)


@pytest.fixture(autouse=True)
def _own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MNISTLAB_CACHE", str(tmp_path / "cache"))


# ---------------------------------------------------------------------------------------------
# freeze / unfreeze / replace_head / param_groups
# ---------------------------------------------------------------------------------------------

def test_layer_names_and_freeze_by_name_and_index():
    model = ml.create_model("fast", seed=0, width=4)
    names = tr.layer_names(model)
    assert names == ["body.0", "body.1", "body.4", "body.5", "body.8", "body.9", "head"]
    assert tr.freeze(model, until="body.5") == names[:4]
    assert tr.frozen_layers(model) == names[:4]
    assert all(p.requires_grad for p in model.body[8].parameters())
    tr.unfreeze(model)
    assert tr.frozen_layers(model) == []
    assert tr.freeze(model, until=-2) == names[:-1]           # all but the last layer
    tr.unfreeze(model, since="body.8")
    assert tr.frozen_layers(model) == names[:4]
    tr.unfreeze(model)
    assert tr.freeze(model, until="body") == names[:-1]       # a container: up to its last layer
    tr.unfreeze(model)
    assert tr.freeze(model) == names[:-1]                     # default: everything but the head
    with pytest.raises(ValueError, match="No layer named 'body.7'.*body.0, body.1"):
        tr.freeze(model, until="body.7")
    with pytest.raises(IndexError, match="out of range"):
        tr.freeze(model, until=7)


def test_frozen_parameters_and_batchnorm_statistics_unchanged_after_training():
    model = ml.create_model("fast", seed=0, width=4)
    tr.freeze(model)
    frozen = {k: v.clone() for k, v in model.body.state_dict().items()}   # weights and BN running statistics
    head = model.head.weight.detach().clone()
    grads = {}
    spy = ml.LambdaCallback(on_after_backward=lambda s: grads.update(
        {n: p.grad for n, p in s.model.named_parameters()}))
    ml.fit(model, blocks(64), config=ml.TrainConfig(epochs=1, batch_size=16, lr=1e-2), progress=False, callbacks=[spy])
    for k, v in model.body.state_dict().items():
        assert torch.equal(v, frozen[k]), f"{k} changed although frozen"
    assert all(grads[n] is None for n in grads if n.startswith("body.")), "frozen parameters got gradients"
    assert all(p.grad is None for p in model.body.parameters())
    assert grads["head.weight"] is not None and not torch.equal(model.head.weight, head)
    tr.unfreeze(model)                       # trainable again: BatchNorm follows the model's mode
    ml.fit(model, blocks(64), config=ml.TrainConfig(epochs=1, batch_size=16, lr=1e-2), progress=False)
    assert not torch.equal(model.body[1].running_mean, frozen["1.running_mean"])


def test_replace_head_linear_and_sequential():
    model = ml.create_model("fast", seed=0, width=4)
    before = model.head.weight.detach().clone()
    tr.replace_head(model, 5, seed=3)
    assert model.head.out_features == 5 and model.config["kwargs"]["num_classes"] == 5
    assert model(torch.zeros(2, 1, 28, 28)).shape == (2, 5)
    again = tr.replace_head(ml.create_model("fast", seed=0, width=4), 5, seed=3)
    assert torch.equal(again.head.weight, model.head.weight)           # seeded, global RNG untouched
    assert before.shape[0] == 10
    best = ml.create_model("best", seed=0, width=4)
    tr.replace_head(best, 3)
    assert isinstance(best.head[0], nn.Dropout) and best.head[-1].out_features == 3
    with pytest.raises(ValueError, match="positive integer"):
        tr.replace_head(best, 0)
    with pytest.raises(ValueError, match="no classification head"):
        tr.replace_head(nn.Sequential(nn.Linear(2, 2)), 3)


def test_param_groups_reach_the_optimizer_with_their_rates():
    model = ml.create_model("fast", seed=0, width=4)
    groups = tr.param_groups(model, {"features": 1e-4, "head": 1e-2})
    assert [(g["name"], g["lr"]) for g in groups] == [("features", 1e-4), ("head", 1e-2)]
    seen = {}
    spy = ml.LambdaCallback(on_train_begin=lambda s: seen.update(
        {id(p): g["lr"] for g in s.optimizer.param_groups for p in g["params"]}))
    ml.fit(model, blocks(32), config=ml.TrainConfig(epochs=1, batch_size=16, optimizer="adam", lr=0.5, head_lr=1e-2,
                                                   body_lr=1e-4), progress=False, callbacks=[spy])
    for name, p in model.named_parameters():
        assert seen[id(p)] == (1e-2 if name.startswith("head.") else 1e-4), name
    # a named layer wins over "features"; frozen parameters are left out
    tr.freeze(model, until="body.1")
    groups = tr.param_groups(model, {"features": 1e-4, "head": 1e-2, "body.8": 1e-3})
    by_name = {g["name"]: g for g in groups}
    assert {id(p) for p in by_name["body.8"]["params"]} == {id(p) for p in model.body[8].parameters()}
    assert all(p.requires_grad for g in groups for p in g["params"])
    with pytest.raises(ValueError, match="names no module"):
        tr.param_groups(model, {"backbone": 1e-3})
    with pytest.raises(ValueError, match="covered by none"):
        tr.param_groups(model, {"head": 1e-3})


# ---------------------------------------------------------------------------------------------
# Data: few labels, classes, scikit-learn's digits
# ---------------------------------------------------------------------------------------------

def test_few_labels_is_balanced_deterministic_and_nested():
    pool = blocks(400, n_classes=4)
    a = tr.few_labels(pool, 7, seed=1)
    assert a.labels.bincount().tolist() == [7, 7, 7, 7]
    assert torch.equal(a.images, tr.few_labels(pool, 7, seed=1).images)
    assert not torch.equal(tr.few_label_indices(pool, 7, 1), tr.few_label_indices(pool, 7, 2))
    small, large = tr.few_label_indices(pool, 3, 5), tr.few_label_indices(pool, 30, 5)
    assert set(small.tolist()) <= set(large.tolist())
    assert tr.few_labels(pool, None) is pool
    with pytest.raises(ValueError, match="class 0 has only 100"):
        tr.few_labels(pool, 101)
    with pytest.raises(ValueError, match="positive integer"):
        tr.few_labels(pool, 0)


def test_digits_split_relabels():
    data = ml.ImageSet(torch.zeros(20, 28, 28, dtype=torch.uint8), torch.arange(20) % 10)
    source, target = tr.digits_split(data)
    assert source.labels.tolist() == [0, 1, 2, 3, 4] * 2 and target.labels.tolist() == [0, 1, 2, 3, 4] * 2
    assert len(tr.select_classes(data, [7, 2], relabel=False)) == 4
    assert sorted(set(tr.select_classes(data, [7, 2]).labels.tolist())) == [0, 1]
    with pytest.raises(ValueError, match="share classes"):
        tr.digits_split(data, source=(0, 1), target=(1, 2))


def test_sklearn_digits_conversion():
    train, test, everything = (load_sklearn_digits(s) for s in ("train", "test", "all"))
    assert (len(train), len(test), len(everything)) == (1257, 540, 1797)
    assert train.images.dtype == torch.uint8 and tuple(train.images.shape[1:]) == (28, 28)
    assert train.dataset == "sklearn-digits" and train.classes == tuple(str(i) for i in range(10))
    x = everything.images.float()
    assert x.min() == 0 and x.amax(dim=(1, 2)).min() > 200            # every digit has full-strength ink
    ys, xs = torch.meshgrid(torch.arange(28.0), torch.arange(28.0), indexing="ij")
    mass = x.sum(dim=(1, 2))
    cy, cx = (x * ys).sum(dim=(1, 2)) / mass, (x * xs).sum(dim=(1, 2)) / mass
    assert (cy - 13.5).abs().max() < 1.0 and (cx - 13.5).abs().max() < 1.0   # centred by mass, like MNIST
    ink = everything.images > 0
    rows, cols = ink.any(2), ink.any(1)
    height = 28 - rows.int().argmax(1) - rows.flip(1).int().argmax(1)
    width = 28 - cols.int().argmax(1) - cols.flip(1).int().argmax(1)
    assert height.max() <= 20 and width.max() <= 20 and torch.maximum(height, width).min() >= 19  # fitted into 20x20
    assert train.labels.bincount().min() >= 120 and test.labels.bincount().min() >= 50   # stratified
    # deterministic, disjoint splits; the seed changes them
    assert torch.equal(load_sklearn_digits("train").images, train.images)
    assert len(torch.cat([train.images, test.images]).unique(dim=0)) == len(everything.images.unique(dim=0))
    assert not torch.equal(load_sklearn_digits("train", seed=1).labels, train.labels)
    assert len(load_sklearn_digits("test", test_fraction=0.5)) in (898, 899)
    # the declared constants are those of the converted training images
    pixels = train.images.float() / 255
    assert abs(pixels.mean().item() - SKLEARN_DIGITS.mean) < 5e-4 and abs(pixels.std().item() - SKLEARN_DIGITS.std) < 5e-4
    assert ml.dataset_info("sklearn-digits").mean == SKLEARN_DIGITS.mean
    with pytest.raises(ValueError, match="split must be"):
        load_sklearn_digits("validation")
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        load_sklearn_digits("test", test_fraction=1.0)
    with pytest.raises(ValueError, match="8x8"):
        convert_digit(np.zeros((9, 9)))


# ---------------------------------------------------------------------------------------------
# Baselines and the experiment driver
# ---------------------------------------------------------------------------------------------

def test_linear_probe_and_zero_shot():
    train, test = blocks(200, seed=0), blocks(100, seed=1)
    model = ml.create_model("fast", seed=0, width=4, num_classes=4)
    probe = tr.linear_probe(model, train, test)
    assert probe["acc"] > 0.9 and probe["n"] == 100 and probe["loss"] > 0
    # zero-shot is the model as it is, scored on the test images: the share it predicts right
    zero = tr.zero_shot(model, test)
    assert zero["n"] == 100 and zero["acc"] == pytest.approx((ml.predict_classes(model, test) == test.labels.numpy()).mean())
    trained = ml.create_model("fast", seed=0, width=4, num_classes=4)
    ml.fit(trained, train, config=ml.TrainConfig(epochs=3, batch_size=16, optimizer="adam", lr=1e-2), progress=False)
    assert tr.zero_shot(trained, test)["acc"] > 0.9 and zero["acc"] < 0.5    # untrained: near chance (0.25)
    with pytest.raises(ValueError, match="Zero-shot needs the source's classes"):
        tr.zero_shot(ml.create_model("fast", seed=0, width=4, num_classes=2), test)


def test_run_budget_grows_with_the_data():
    cfg = tr.TRANSFER.but(min_steps=100, batch_size=10, epochs=1)
    assert tr.run_budget(cfg, 20) == (50, 10, 100)          # 2 steps per epoch -> 50 epochs for 100 steps
    assert tr.run_budget(cfg, 100) == (10, 10, 100)         # up to 100 images: min_steps
    assert tr.run_budget(cfg, 400) == (5, 10, 200)          # 4x the images: 2x the steps
    assert tr.run_budget(cfg, 100_000) == (1, 10, 10_000)   # all of it at least once: no cap on large pools
    assert tr.run_budget(cfg, 30) == (34, 10, 102)          # min_steps in whole epochs (3 steps each): never fewer
    assert tr.TRANSFER.min_steps == 100 and tr.run_budget(tr.TRANSFER, 1257)[2] == 320      # scikit-learn's digits
    assert tr.run_budget(tr.TRANSFER, 60_000) == (1, 32, 1875)                              # all of MNIST, once
    assert tr.run_budget(cfg.but(batch_size=32), 100) == (25, 25, 100)   # equal batches of 25, not 32+32+32+4
    with pytest.raises(ValueError, match="at least one labelled image"):
        tr.run_budget(cfg, 0)
    frozen = tr.strategy_config(tr.FROZEN, ml.create_model("fast", seed=0, width=4), blocks(40))
    assert frozen.freeze == "features" and frozen.lr == tr.TRANSFER.head_lr and frozen.batch_size == 20
    assert (frozen.epochs, frozen.min_steps) == (50, None)                # 2 steps an epoch, 100 steps
    tuned = tr.strategy_config(tr.FINE_TUNE, ml.create_model("fast", seed=0, width=4), blocks(40))
    assert (tuned.head_lr, tuned.body_lr, tuned.freeze) == (tr.TRANSFER.head_lr, tr.TRANSFER.body_lr, None)


@pytest.fixture(scope="module")
def small_runs(tmp_path_factory):
    import mnistlab.experiments as ex

    mp = pytest.MonkeyPatch()
    mp.setenv("MNISTLAB_CACHE", str(tmp_path_factory.mktemp("cache")))
    source_cfg = ml.TrainConfig(model="fast", model_kwargs={"width": 4}, epochs=2, optimizer="adam", lr=1e-3, val=None)
    source, _, key = ex.run_on(source_cfg, blocks(240, seed=0), seed=0)
    again, _, key2 = ex.run_on(source_cfg, blocks(240, seed=0), seed=0)   # from the cache
    assert key2 == key and all(torch.equal(a, b) for a, b in zip(source.state_dict().values(),
                                                                  again.state_dict().values()))
    pool, test = blocks(200, seed=1), blocks(80, seed=2)
    config = tr.TRANSFER.but(min_steps=6, batch_size=16)
    kw = dict(task="blocks", strategies=[*tr.STRATEGIES, tr.ZERO_SHOT], labels_per_class=[2, 10, None],
              seeds=[0, 1], config=config, device="cpu", progress=False)
    first = tr.run_transfer(source, pool, test, **kw)
    second = tr.run_transfer(source, pool, test, **kw)
    yield source, pool, test, config, first, second
    mp.undo()


def test_run_transfer_is_tidy_deterministic_and_cached(small_runs):
    source, pool, test, config, first, second = small_runs
    assert list(first.columns) == ["task", "strategy", "labels", "per_class", "n_train", "seed", "epochs", "steps",
                                   "test_acc", "test_loss", "train_seconds", "config", "cached"]
    assert len(first) == 2 + 3 * 2 * 4                     # zero-shot once per seed + labels x seeds x strategies
    assert not first["cached"].any() and second["cached"].all()
    pd.testing.assert_frame_equal(first.drop(columns=["cached", "train_seconds"]),
                                  second.drop(columns=["cached", "train_seconds"]))
    trained = first[first["strategy"].isin([tr.FROZEN, tr.FINE_TUNE, tr.SCRATCH])]
    assert set(trained["n_train"]) == {8, 40, 200} and (trained["steps"] >= 6).all()
    # "all" is every label: 200 images in 13 equal batches, over 1 epoch for 6 * sqrt(2) = 9 steps
    assert (trained[trained["labels"] == "all"]["steps"] == 13).all()
    assert (trained[trained["labels"] == "all"]["epochs"] == 1).all()
    assert (trained[trained["labels"] == "2"]["epochs"] == 6).all()         # 1 step an epoch: 6 epochs for 6 steps
    # every accuracy is a count of the 80 test images; zero-shot is the source itself on them
    assert ((first["test_acc"] * len(test)).round(6) % 1 == 0).all()
    zero = first.loc[first["strategy"] == tr.ZERO_SHOT, "test_acc"]
    assert (zero == tr.zero_shot(source, test)["acc"]).all()
    # the block classes are easy: a probe on the source's features and fine-tuning on all labels read them;
    # a head trained on shuffled labels, or a transfer that lost the weights, would sit near chance (0.25)
    full = first[first["labels"] == "all"].groupby("strategy")["test_acc"].mean()
    assert full[tr.LINEAR_PROBE] > 0.9 and full[tr.FINE_TUNE] > 0.9 and full[tr.SCRATCH] > 0.9
    assert full[tr.SCRATCH] >= first[first["labels"] == "2"].groupby("strategy")["test_acc"].mean()[tr.SCRATCH]
    # a fresh computation without the cache gives the same numbers (same seed -> same result on CPU);
    # it trains with one torch thread and gives the caller's setting back
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        again = tr.run_transfer(source, pool, test, task="blocks", strategies=[tr.FINE_TUNE], labels_per_class=[2],
                                seeds=[1], config=config, device="cpu", cache=False, progress=False)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(threads)
    row = first[(first["strategy"] == tr.FINE_TUNE) & (first["labels"] == "2") & (first["seed"] == 1)]
    assert again["test_acc"].iloc[0] == row["test_acc"].iloc[0]
    # in two worker processes (the longest runs first, the probes' fits beside them) the same numbers, row for row;
    # the probe on all labels is one fit, the same for every seed
    two = tr.run_transfer(source, pool, test, task="blocks", strategies=[*tr.STRATEGIES, tr.ZERO_SHOT],
                          labels_per_class=[2, 10, None], seeds=[0, 1], config=config, device="cpu", cache=False,
                          progress=False, workers=2)
    pd.testing.assert_frame_equal(two.drop(columns=["cached", "train_seconds"]), first.drop(columns=["cached", "train_seconds"]))
    probe_all = first[(first["strategy"] == tr.LINEAR_PROBE) & (first["labels"] == "all")]
    assert len(probe_all) == 2 and probe_all["test_loss"].nunique() == 1
    with pytest.raises(ValueError, match="Unknown strategies"):
        tr.run_transfer(source, pool, test, strategies=["distill"], progress=False)


def test_summaries_gains_and_sentences(small_runs):
    *_, first, _ = small_runs
    summary = tr.summarize_transfer(first)
    assert len(summary) == 1 + 3 * 4 and (summary["n"] == 2).all()
    assert (summary["ci_low"] <= summary["mean"]).all() and (summary["mean"] <= summary["ci_high"]).all()
    gains = tr.transfer_gains(first)
    assert set(gains["strategy"]) == {tr.FROZEN, tr.FINE_TUNE, tr.LINEAR_PROBE} and len(gains) == 9
    g = gains.iloc[0]
    per_seed = first[(first["labels"] == g["labels"])].pivot_table(index="seed", columns="strategy", values="test_acc")
    assert g["diff"] == pytest.approx((per_seed[g["strategy"]] - per_seed[tr.SCRATCH]).mean())
    zero = tr.transfer_gains(first, baseline=tr.ZERO_SHOT)
    assert set(zero["strategy"]) == set(tr.STRATEGIES) and len(zero) == 12
    sentences = tr.when_transfer_pays(gains)
    assert len(sentences) == 1 and sentences[0].startswith("blocks: with 2 labels per class, ")
    with pytest.raises(ValueError, match="has no 'scratch' runs"):
        tr.transfer_gains(first[first["strategy"] != tr.SCRATCH])


def test_learning_curves_and_feature_tsne(small_runs):
    source, pool, test, config, *_ = small_runs
    curves = tr.learning_curves(source, pool, test, task="blocks", per_class=10, seeds=[0], epochs=2, config=config,
                                device="cpu", progress=False)
    assert len(curves) == 3 * 2 and curves["val_acc"].notna().all()
    assert (curves.groupby("strategy")["step"].max() == 2 * 3).all()      # 40 images, batch 16
    tuned, history = tr.transfer_model(source, tr.few_labels(pool, 10, 0), tr.FINE_TUNE, seed=0, config=config,
                                       device="cpu")
    maps = tr.feature_tsne({"before": source, "after": tuned}, test.head(60), classes=list("abcd"), seed=0,
                           perplexity=15)
    assert list(dict.fromkeys(maps.points["panel"])) == ["before", "after"] and len(maps.points) == 120
    # the block classes separate in any network's features: a probe that is broken or fed constant
    # features would read chance (0.25)
    assert (maps.scores["probe_acc"] > 0.9).all() and (maps.scores["knn_acc"] > 0.9).all()
    assert maps.classes == list("abcd")
    from matplotlib.colors import to_rgba
    from mnistlab.viz import transfer as draw_tr
    from mnistlab.viz.style import class_colors
    maps.classes = ["5", "6", "7", "8"]   # relabelled digits keep their own colours, not those of 0-3
    legend = draw_tr.plot_feature_maps(maps).axes[-1].get_legend()
    assert [to_rgba(h.get_color()) for h in legend.legend_handles] == [to_rgba(c) for c in class_colors(10)[5:9]]


# ---------------------------------------------------------------------------------------------
# ImageNet ResNet-18 from the local torch hub cache only
# ---------------------------------------------------------------------------------------------

def test_imagenet_weights_load_from_a_temporary_torch_home(tmp_path, monkeypatch):
    import torchvision
    from torchvision.models import ResNet18_Weights

    def no_download(*args, **kwargs):
        raise AssertionError("tried to download")

    monkeypatch.setattr(torch.hub, "download_url_to_file", no_download)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    assert not tr.imagenet_weights_available()
    with pytest.raises(FileNotFoundError, match="resnet18-f37072fd.pth.*TORCH_HOME"):
        tr.imagenet_resnet18()
    assert "skipped" in tr.imagenet_weights_hint()

    torch.manual_seed(123)
    random_net = torchvision.models.resnet18()
    path = tmp_path / "torch" / "hub" / "checkpoints" / ResNet18_Weights.IMAGENET1K_V1.url.rsplit("/", 1)[-1]
    path.parent.mkdir(parents=True)
    torch.save(random_net.state_dict(), path)
    assert tr.imagenet_weights_path() == path and tr.imagenet_weights_available()
    loaded = ResNet18_Weights.IMAGENET1K_V1.get_state_dict(progress=False)   # the ordinary weights API reads our file
    assert torch.equal(loaded["conv1.weight"], random_net.conv1.weight)

    model = tr.imagenet_resnet18(4, size=32, seed=0)
    resnet = model.body[1]
    assert torch.equal(resnet.conv1.weight, random_net.conv1.weight)
    assert torch.equal(resnet.layer4[1].bn2.running_var, random_net.layer4[1].bn2.running_var)
    assert model(torch.rand(2, 1, 28, 28)).shape == (2, 4) and model.features(torch.rand(2, 1, 28, 28)).shape == (2, 512)
    assert model.preprocessing.spec == "unit"
    scratch = tr.imagenet_resnet18(4, pretrained=False, seed=0)
    assert not torch.equal(scratch.body[1].conv1.weight, random_net.conv1.weight)
    tr.freeze(model)
    assert tr.frozen_layers(model)[-1] == "body.1.layer4.1.bn2" and model.head.weight.requires_grad


def test_sklearn_digits_load_like_any_dataset():
    import mnistlab as ml
    from mnistlab.data.datasets import FILE_DATASETS

    train, test = ml.load_dataset("sklearn-digits", "train"), ml.load_dataset("sklearn-digits", "test", limit=7)
    assert len(train) == 1257 and len(test) == 7 and train.dataset == "sklearn-digits"
    assert train.classes == tuple(str(i) for i in range(10)) and "sklearn-digits" not in FILE_DATASETS
    model = ml.create_model("fast", dataset="sklearn-digits")
    assert model.preprocessing.mean == ml.dataset_info("sklearn-digits").mean
