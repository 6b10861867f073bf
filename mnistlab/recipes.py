"""Named training recipes shared by the CLI, the benchmarks and the notebooks.

A recipe is a plain dict of :func:`mnistlab.fit` settings plus the model to build. Keep them
here, in one place, so a figure in a notebook, a benchmark and ``mnistlab train`` all mean
the same thing by "the fast recipe".

Recipes
-------
fast
    Time to 99% test accuracy on a CPU: the small conv-BN ``fast`` network, one-cycle
    learning rate over a fixed budget of one epoch.
best
    Top accuracy (>= 99.5%): the conv-BN ``best`` network with batch augmentation
    (rotation, shift, zoom), label smoothing and a one-cycle schedule.
pt_example
    The reference of pytorch/examples' ``mnist/main.py``: its network, Adadelta (lr 1.0)
    and StepLR (gamma 0.7 every epoch), batch 64.

Examples
--------
>>> import mnistlab as ml
>>> from mnistlab.recipes import RECIPES, train_recipe
>>> RECIPES["fast"]["epochs"]
1
>>> train = ml.load_dataset("mnist", "train")                        # doctest: +SKIP
>>> model, history = train_recipe("fast", train, seed=0)              # doctest: +SKIP
"""
from __future__ import annotations

import copy
from typing import Any

import pandas as pd
import torch
from torch import nn

from .data import Augment
from .models import create_model
from .train import fit, make_optimizer

__all__ = ["RECIPES", "RECIPE_KEYS", "get_recipe", "list_recipes", "make_augment", "train_recipe"]

RECIPE_KEYS = (
    "model", "model_kwargs", "epochs", "optimizer", "lr", "momentum", "weight_decay", "batch_size",
    "scheduler", "gamma", "label_smoothing", "augment", "normalize", "description",
)
"""Keys a recipe may hold (and :func:`train_recipe` accepts as overrides)."""

RECIPES: dict[str, dict[str, Any]] = {
    "fast": dict(
        description="fastest CPU route to 99% test accuracy: conv-BN net, one epoch, one-cycle",
        model="fast", model_kwargs={}, epochs=1, optimizer="nesterov", lr=0.05, momentum=0.9,
        weight_decay=5e-4, batch_size=64, scheduler="onecycle", label_smoothing=0.0, augment=None,
        normalize="standard",
    ),
    "best": dict(
        description="top accuracy: conv-BN net, batch augmentation, label smoothing, one-cycle",
        model="best", model_kwargs={"width": 16, "dropout": 0.1}, epochs=8, optimizer="nesterov", lr=0.1,
        momentum=0.9, weight_decay=5e-4, batch_size=128, scheduler="onecycle", label_smoothing=0.1,
        augment=dict(rotation=10.0, translate=2.0, scale=(0.9, 1.1)), normalize="standard",
    ),
    "pt_example": dict(
        description="pytorch/examples mnist: its network, Adadelta lr 1.0, StepLR gamma 0.7 per epoch, batch 64",
        model="pt_example", model_kwargs={}, epochs=14, optimizer="adadelta", lr=1.0, momentum=None,
        weight_decay=0.0, batch_size=64, scheduler="steplr", gamma=0.7, label_smoothing=0.0, augment=None,
        normalize="standard",
    ),
}


def get_recipe(name: str, **overrides) -> dict[str, Any]:
    """Return a copy of the recipe ``name`` with ``overrides`` applied.

    Parameters
    ----------
    name : str
        A key of :data:`RECIPES`.
    **overrides
        Any of :data:`RECIPE_KEYS`, e.g. ``epochs=2`` or ``model_kwargs={"width": 32}``.

    Returns
    -------
    dict
        A deep copy; changing it leaves :data:`RECIPES` untouched.

    Raises
    ------
    ValueError
        Unknown recipe name or unknown override key.
    """
    if name not in RECIPES:
        raise ValueError(f"Unknown recipe {name!r}; available: {', '.join(sorted(RECIPES))}.")
    unknown = sorted(set(overrides) - set(RECIPE_KEYS))
    if unknown:
        raise ValueError(f"Unknown recipe setting(s) {unknown}; allowed: {', '.join(RECIPE_KEYS)}.")
    recipe = copy.deepcopy(RECIPES[name])
    recipe.update(copy.deepcopy(overrides))
    return recipe


def list_recipes() -> pd.DataFrame:
    """Table of the recipes: one row per name, one column per setting."""
    return pd.DataFrame.from_dict({k: {**v} for k, v in RECIPES.items()}, orient="index")


def make_augment(spec) -> Augment | None:
    """Build an :class:`mnistlab.Augment` from a recipe's ``augment`` entry.

    Parameters
    ----------
    spec : dict, Augment or None
        Keyword arguments of :class:`Augment` (``scale`` may be a list), an instance, or ``None``.
    """
    if spec is None or isinstance(spec, Augment):
        return spec
    kw = dict(spec)
    if "scale" in kw:
        kw["scale"] = tuple(kw["scale"])
    return Augment(**kw)


def _optimizer_and_scheduler(recipe: dict, model: nn.Module):
    """Optimizer and scheduler arguments for :func:`fit`; ``"steplr"`` is built here as an instance."""
    sched = recipe.get("scheduler")
    if sched != "steplr":
        return recipe["optimizer"], sched
    opt = make_optimizer(recipe["optimizer"], model.parameters(), lr=recipe.get("lr"),
                         weight_decay=recipe.get("weight_decay", 0.0), momentum=recipe.get("momentum"))
    return opt, torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=recipe.get("gamma", 0.7))


def train_recipe(name: str, train, val=None, seed: int = 0, device="auto", *, callbacks=(), progress: bool = False,
                 **overrides) -> tuple[nn.Module, pd.DataFrame]:
    """Build the recipe's model and train it with :func:`mnistlab.fit`.

    Parameters
    ----------
    name : str
        A key of :data:`RECIPES` ("fast", "best", "pt_example").
    train : ImageSet, (images, labels) or TensorLoader
        Training data.
    val : ImageSet, optional
        Evaluated after every epoch (its time is not counted in ``seconds``).
    seed : int
        Seeds the initial weights, shuffling, augmentation and dropout.
    device : str
        "auto", "cpu", "cuda", ...
    callbacks : sequence of Callback
        Passed to :func:`mnistlab.fit`.
    progress : bool
        Show progress bars.
    **overrides
        Recipe settings to change, e.g. ``epochs=2``, ``batch_size=64``, ``augment=None``.

    Returns
    -------
    model : Classifier
        The trained model (left in train mode on ``device``); ``model.recipe`` holds the
        settings it was trained with.
    history : pandas.DataFrame
        One row per epoch, as returned by :func:`mnistlab.fit`.

    Raises
    ------
    ValueError
        Unknown recipe name or setting.
    """
    recipe = get_recipe(name, **overrides)
    model = create_model(recipe["model"], seed=seed, **recipe.get("model_kwargs", {}))
    optimizer, scheduler = _optimizer_and_scheduler(recipe, model)
    history = fit(model, train, val, epochs=recipe["epochs"], optimizer=optimizer, lr=recipe.get("lr"),
                  batch_size=recipe["batch_size"], scheduler=scheduler, weight_decay=recipe.get("weight_decay", 0.0),
                  momentum=recipe.get("momentum"), label_smoothing=recipe.get("label_smoothing", 0.0),
                  augment=make_augment(recipe.get("augment")), normalize=recipe.get("normalize", "standard"),
                  callbacks=callbacks, device=device, seed=seed, progress=progress)
    model.recipe = {"name": name, **recipe}
    return model, history
