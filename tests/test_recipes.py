"""Named training recipes (TrainConfigs), overrides, and tiny real training runs."""
from __future__ import annotations

import numpy as np
import pytest

import mnistlab as ml
import torch

from mnistlab.training.recipes import RECIPES, build_model, get_recipe, list_recipes, train_model


def test_recipes_are_trainconfigs_and_build_their_models():
    assert {"fast", "best", "pt_example"} <= set(RECIPES)
    for name, recipe in RECIPES.items():
        assert isinstance(recipe, ml.TrainConfig), name
        model = recipe.build_model(0)
        assert model.config["name"] == recipe.model and model.preprocessing.dataset == recipe.dataset
    assert isinstance(RECIPES["best"].make_augment(), ml.Augment)
    assert RECIPES["fast"].make_augment() is None
    assert list(list_recipes().index) == list(RECIPES)
    assert RECIPES["pt_example"].scheduler == "steplr" and RECIPES["pt_example"].gamma == 0.7


def test_build_model_is_the_configs_model_and_the_method_is_the_same_call():
    cfg = RECIPES["fast"].but(normalize="unit")
    a, b = build_model(cfg, seed=3), cfg.build_model(seed=3)
    assert a.train_config is cfg and a.preprocessing.spec == "unit"
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    assert not torch.equal(a.state_dict()["head.weight"], build_model(cfg, seed=4).state_dict()["head.weight"])
    assert build_model(cfg, seed=0, num_classes=5)(torch.zeros(2, 1, 28, 28)).shape == (2, 5)
    aug = ml.Augment.from_dict({"rotation": 5, "scale": [0.8, 1.2]})
    assert aug == ml.Augment(rotation=5, scale=(0.8, 1.2))
    with pytest.raises(TypeError):
        ml.Augment.from_dict({"spin": 3})


def test_get_recipe_overrides_without_touching_the_table():
    r = get_recipe("best", epochs=1, model_kwargs={"width": 8})
    assert r.epochs == 1 and r.model_kwargs == {"width": 8}
    assert RECIPES["best"].epochs == 8 and RECIPES["best"].model_kwargs == {"width": 16, "dropout": 0.1}


def test_unknown_recipe_or_setting_raises():
    with pytest.raises(ValueError, match="Unknown recipe 'nope'"):
        train_model("nope", None)
    with pytest.raises(ValueError, match="Unknown config keys"):
        get_recipe("fast", epoch=3)


@pytest.mark.parametrize("name", ["fast", "best", "pt_example"])
def test_train_model_tiny_run_gives_sane_history(name, mnist_small):
    train, test = mnist_small
    changes = {"epochs": 1, "batch_size": 64}
    if name == "best":
        changes["model_kwargs"] = {"width": 8, "dropout": 0.1}
    model, hist = train_model(get_recipe(name, **changes), train, test.head(500), seed=0, device="cpu")
    assert list(hist["epoch"]) == [1]
    assert np.isfinite(hist[["train_loss", "val_loss", "seconds"]].to_numpy()).all()
    assert (hist["seconds"] > 0).all()
    assert hist["val_acc"].iloc[-1] > 0.5  # 2,000 images, one epoch: well above chance (0.1)
    assert model.train_config.epochs == 1 and model.config["name"] == RECIPES[name].model


def test_pt_example_uses_steplr_decay(mnist_small):
    train, _ = mnist_small
    _, hist = train_model(get_recipe("pt_example", epochs=3, batch_size=64), train.head(256), seed=0, device="cpu")
    assert np.allclose(hist["lr"], [1.0, 0.7, 0.49])


def test_train_model_is_deterministic(mnist_small):
    train, _ = mnist_small
    cfg = get_recipe("fast", batch_size=64)
    _, h1 = train_model(cfg, train.head(512), seed=3, device="cpu")
    _, h2 = train_model(cfg, train.head(512), seed=3, device="cpu")
    assert h1["train_loss"].tolist() == h2["train_loss"].tolist()
