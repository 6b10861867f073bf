"""Named training recipes: shapes of the dicts, overrides, and a tiny real training run."""
from __future__ import annotations

import numpy as np
import pytest

import mnistlab as ml
from mnistlab.recipes import RECIPE_KEYS, RECIPES, get_recipe, list_recipes, make_augment, train_recipe


def test_recipes_are_complete_and_build_their_models():
    assert {"fast", "best", "pt_example"} <= set(RECIPES)
    for name, recipe in RECIPES.items():
        assert set(recipe) <= set(RECIPE_KEYS), name
        for key in ("model", "epochs", "optimizer", "batch_size"):
            assert key in recipe, (name, key)
        ml.create_model(recipe["model"], seed=0, **recipe.get("model_kwargs", {}))
    assert isinstance(make_augment(RECIPES["best"]["augment"]), ml.Augment)
    assert make_augment(None) is None
    assert list(list_recipes().index) == list(RECIPES)


def test_get_recipe_copies_and_overrides():
    r = get_recipe("best", epochs=1, model_kwargs={"width": 8})
    assert r["epochs"] == 1 and r["model_kwargs"] == {"width": 8}
    r["augment"]["rotation"] = 99.0
    assert RECIPES["best"]["augment"]["rotation"] != 99.0 and RECIPES["best"]["epochs"] != 1


def test_unknown_recipe_or_setting_raises():
    with pytest.raises(ValueError, match="Unknown recipe 'nope'"):
        train_recipe("nope", None)
    with pytest.raises(ValueError, match="Unknown recipe setting"):
        get_recipe("fast", epoch=3)


@pytest.mark.parametrize("name", ["fast", "best", "pt_example"])
def test_train_recipe_tiny_run_gives_sane_history(name, mnist_small):
    train, test = mnist_small
    overrides = {"epochs": 1, "batch_size": 64}
    if name == "best":
        overrides["model_kwargs"] = {"width": 8, "dropout": 0.1}
    model, hist = train_recipe(name, train, test.head(500), seed=0, device="cpu", **overrides)
    assert list(hist["epoch"]) == [1]
    assert np.isfinite(hist[["train_loss", "val_loss", "seconds"]].to_numpy()).all()
    assert (hist["seconds"] > 0).all()
    assert 0.0 <= hist["train_acc"].iloc[0] <= 1.0
    assert hist["val_acc"].iloc[-1] > 0.5  # 2,000 images, one epoch: well above chance (0.1)
    assert model.recipe["name"] == name and model.recipe["epochs"] == 1
    assert model.config["name"] == RECIPES[name]["model"]


def test_pt_example_uses_steplr_decay(mnist_small):
    train, _ = mnist_small
    _, hist = train_recipe("pt_example", train.head(256), seed=0, device="cpu", epochs=3, batch_size=64)
    assert np.allclose(hist["lr"], [1.0, 0.7, 0.49])


def test_train_recipe_is_deterministic(mnist_small):
    train, _ = mnist_small
    _, h1 = train_recipe("fast", train.head(512), seed=3, device="cpu", batch_size=64)
    _, h2 = train_recipe("fast", train.head(512), seed=3, device="cpu", batch_size=64)
    assert h1["train_loss"].tolist() == h2["train_loss"].tolist()
