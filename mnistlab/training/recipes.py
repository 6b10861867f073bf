"""Named training recipes: :class:`TrainConfig` instances shared by the CLI, the benchmarks and the notebooks.

Keep them here, in one place, so a figure in a notebook, a benchmark and
``mnistlab train --recipe fast`` all mean the same thing by "the fast recipe".

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
>>> from mnistlab.training.recipes import get_recipe
>>> get_recipe("fast").epochs
1
>>> train = ml.load_dataset("mnist", "train")                        # doctest: +SKIP
>>> model, history = train_model(get_recipe("fast"), train, seed=0)  # doctest: +SKIP
"""
from __future__ import annotations

import pandas as pd
from torch import nn

from ..data.datasets import dataset_info
from ..models.registry import create_model
from .callbacks import EarlyStopping
from .config import TrainConfig, as_config, resolve_init_from
from .loop import fit

__all__ = ["RECIPES", "get_recipe", "list_recipes", "build_model", "train_model"]

RECIPES: dict[str, TrainConfig] = {
    "fast": TrainConfig(
        name="fast recipe", description="fastest CPU route to 99% test accuracy: conv-BN net, one epoch, one-cycle",
        model="fast", epochs=1, optimizer="nesterov", lr=0.05, momentum=0.9, weight_decay=5e-4, batch_size=64,
        scheduler="onecycle"),
    "best": TrainConfig(
        name="best recipe", description="top accuracy: conv-BN net, batch augmentation, label smoothing, one-cycle",
        model="best", model_kwargs={"width": 16, "dropout": 0.1}, epochs=8, optimizer="nesterov", lr=0.1,
        momentum=0.9, weight_decay=5e-4, batch_size=128, scheduler="onecycle", label_smoothing=0.1,
        augment=dict(rotation=10.0, translate=2.0, scale=(0.9, 1.1))),
    "pt_example": TrainConfig(
        name="pt_example recipe",
        description="pytorch/examples mnist: its network, Adadelta lr 1.0, StepLR gamma 0.7 per epoch, batch 64",
        model="pt_example", epochs=14, optimizer="adadelta", lr=1.0, batch_size=64, scheduler="steplr", gamma=0.7),
}


def get_recipe(recipe: str, /, **changes) -> TrainConfig:
    """The recipe named ``recipe`` as a :class:`TrainConfig`, with ``changes`` applied (e.g. ``epochs=2``).

    Raises
    ------
    ValueError
        Unknown recipe name or unknown field.
    """
    if recipe not in RECIPES:
        raise ValueError(f"Unknown recipe {recipe!r}; available: {', '.join(sorted(RECIPES))}.")
    return RECIPES[recipe].but(**changes) if changes else RECIPES[recipe]


def list_recipes() -> pd.DataFrame:
    """Table of the recipes: one row per name, one column per setting."""
    return pd.DataFrame.from_dict({k: v.to_dict() for k, v in RECIPES.items()}, orient="index")


def build_model(config: TrainConfig, seed: int | None = None, num_classes: int | None = None) -> nn.Module:
    """The network a run of ``config`` starts from, with ``model.train_config`` set to the config.

    ``config.build_model(seed)`` is the same call.

    Parameters
    ----------
    config : TrainConfig
    seed : int, optional
        Seeds the initial weights (with ``init_from``: the new head's).
    num_classes : int, optional
        Overrides the number of classes of the config's dataset.

    Returns
    -------
    nn.Module
        Without ``init_from``: ``create_model(model, seed, dataset, normalize, **model_kwargs)``.
        With ``init_from``: the source run's checkpoint (:func:`~mnistlab.training.config.resolve_init_from`),
        whose head is replaced by a new one seeded with ``seed`` unless ``keep_head`` and the
        source has as many outputs as there are classes.

    Raises
    ------
    FileNotFoundError
        An ``init_from`` that names no checkpoint and no kept run.
    """
    norm = tuple(config.normalize) if isinstance(config.normalize, list) else config.normalize
    kwargs = dict(config.model_kwargs) | ({} if num_classes is None else {"num_classes": int(num_classes)})
    if config.init_from is None:
        model = create_model(config.model, seed=seed, dataset=config.dataset, normalize=norm, **kwargs)
    else:
        from ..models.surgery import head_outputs, replace_head
        from .checkpoint import load_checkpoint

        model = load_checkpoint(resolve_init_from(config.init_from)).model
        classes = num_classes or len(dataset_info(config.dataset).classes)
        if not (config.keep_head and head_outputs(model) == classes):
            replace_head(model, classes, seed=seed)
        model.init_from = config.init_from
    model.train_config = config
    return model


def train_model(config, train, val=None, *, seed: int = 0, device="auto", callbacks=(),
                progress: bool = True) -> tuple[nn.Module, pd.DataFrame]:
    """Build the config's model and train it with :func:`mnistlab.fit`.

    Parameters
    ----------
    config : TrainConfig, dict or str
        A config, its fields as a dict, or a recipe name.
    train : ImageSet, (images, labels) or TensorLoader
        As the config describes it: its ``dataset``, at most ``train_limit`` images (a config
        that disagrees with the data raises ``ValueError``; :func:`mnistlab.experiments.run`
        loads the data the config names).
    val : ImageSet, optional
        Evaluated after every epoch (its time is not counted in ``seconds``).
    seed : int
        Seeds the initial weights (the new head with ``init_from``), shuffling, augmentation and dropout.
    device : str
    callbacks : sequence of Callback
        The config's ``early_stopping`` adds an :class:`EarlyStopping` unless one is among them
        (pass your own to read its ``best_epoch`` afterwards).
    progress : bool
        Show tqdm progress bars (per epoch and per batch), as :func:`mnistlab.fit` does by default.

    Returns
    -------
    model : Classifier
        The trained model on ``device``; ``model.train_config`` holds the config.
    history : pandas.DataFrame
        One row per epoch, as returned by :func:`mnistlab.fit` (empty for ``epochs=0``).
        ``history.attrs["best_epoch"]`` and ``["stopped_epoch"]`` come from the early stopping
        (``None`` without it).
    """
    cfg = config if isinstance(config, TrainConfig) else get_recipe(config) if isinstance(config, str) \
        else as_config(config)
    model = build_model(cfg, seed)
    cbs = list(callbacks)
    stopper = next((cb for cb in cbs if isinstance(cb, EarlyStopping)), None)
    if cfg.early_stopping and stopper is None:
        stopper = EarlyStopping(**cfg.early_stopping)
        cbs.insert(0, stopper)
    if cfg.epochs == 0:
        from .loop import resolve_device

        model.to(resolve_device(device))
        history = pd.DataFrame(columns=["epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr", "seconds",
                                        "elapsed"])
    else:
        history = fit(model, train, val, cfg, callbacks=cbs, device=device, seed=seed, progress=progress)
    history.attrs["best_epoch"] = getattr(stopper, "best_epoch", None)
    history.attrs["stopped_epoch"] = getattr(stopper, "stopped_epoch", None)
    return model, history
