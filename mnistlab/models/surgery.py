"""Model surgery for transfer learning: freeze and unfreeze layers, replace the head, learning rates per part.

Frozen BatchNorm layers stay in inference mode (like Keras' ``trainable=False``). A
:class:`mnistlab.TrainConfig` says what to do with its ``init_from``, ``keep_head``, ``freeze``,
``head_lr`` and ``body_lr`` fields; :func:`mnistlab.fit` and :func:`mnistlab.training.recipes.build_model` call these.
"""
from __future__ import annotations

from typing import Mapping

import numpy as np
import torch
from torch import nn

__all__ = ["layer_names", "head_name", "head_outputs", "freeze", "unfreeze", "frozen_layers", "replace_head",
           "param_groups"]

_HEAD_NAMES = ("head", "fc", "classifier")


def _param_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    return [(name, m) for name, m in model.named_modules()
            if name and next(m.parameters(recurse=False), None) is not None]


def layer_names(model: nn.Module) -> list[str]:
    """Names of the layers that hold parameters, in order (what :func:`freeze` counts).

    Parameters
    ----------
    model : nn.Module

    Returns
    -------
    list of str
        E.g. ``["body.0", "body.1", ..., "head"]`` for the ``fast`` network.
    """
    return [name for name, _ in _param_layers(model)]


def _span(model: nn.Module, key) -> tuple[int, int]:
    """(first, last) position in :func:`layer_names` of the layer(s) ``key`` names."""
    names = layer_names(model)
    if isinstance(key, bool) or not isinstance(key, (int, np.integer, str)):
        raise TypeError(f"A layer is named by its name (str) or position (int), not {key!r}.")
    if isinstance(key, (int, np.integer)):
        i = int(key) + len(names) if key < 0 else int(key)
        if not 0 <= i < len(names):
            raise IndexError(f"Layer index {key} is out of range: the model has {len(names)} layers with parameters "
                             f"(-{len(names)}..{len(names) - 1}).")
        return i, i
    hits = [i for i, n in enumerate(names) if n == key or n.startswith(key + ".")]
    if not hits:
        raise ValueError(f"No layer named {key!r}; layers with parameters: {', '.join(names)}.")
    return hits[0], hits[-1]


def head_name(model: nn.Module) -> str:
    """Attribute name of the model's classification head: ``head`` (mnistlab), ``fc`` (ResNet) or ``classifier``.

    Raises
    ------
    ValueError
        The model has none of them.
    """
    for name in _HEAD_NAMES:
        if isinstance(getattr(model, name, None), nn.Module):
            return name
    raise ValueError(f"{type(model).__name__} has no classification head: expected a module attribute "
                     f"{', '.join(_HEAD_NAMES)}. Build it with mnistlab.create_model or wrap it in a Classifier.")


def _in_head(name: str, head: str) -> bool:
    return name == head or name.startswith(head + ".")


def _keep_frozen_norm_in_eval(module: nn.Module, args):
    """Forward pre-hook of norm layers: while their parameters are frozen, use (and keep) their running statistics."""
    if not any(p.requires_grad for p in module.parameters(recurse=False)):
        module.training = False


def freeze(model: nn.Module, until=None) -> list[str]:
    """Freeze the model's layers up to and including ``until``; return the names of the frozen layers.

    Frozen parameters get ``requires_grad=False`` (so :func:`mnistlab.fit` leaves them out of the
    optimizer and their ``.grad`` stays ``None``), and frozen BatchNorm layers stay in inference
    mode even while the model trains: they normalise with, and keep, their running statistics.

    Parameters
    ----------
    model : nn.Module
    until : str or int, optional
        Last layer to freeze: a name from :func:`layer_names`, or a container's name (freezes up
        to its last layer, e.g. ``"body"``), or a position in :func:`layer_names` (negative counts
        from the end: ``-2`` freezes all but the last layer). Default: everything but the head.

    Returns
    -------
    list of str
        The frozen layers, in order.

    Raises
    ------
    ValueError, IndexError, TypeError
        ``until`` names no layer; the message lists the layers.
    """
    layers = _param_layers(model)
    if until is None:
        head = head_name(model)
        chosen = [(n, m) for n, m in layers if not _in_head(n, head)]
    else:
        chosen = layers[: _span(model, until)[1] + 1]
    for _, m in chosen:
        for p in m.parameters(recurse=False):
            p.requires_grad_(False)
        if isinstance(m, nn.modules.batchnorm._NormBase) and not getattr(m, "_mnistlab_freeze_hook", False):
            m.register_forward_pre_hook(_keep_frozen_norm_in_eval)
            m._mnistlab_freeze_hook = True
    return [n for n, _ in chosen]


def unfreeze(model: nn.Module, since=None) -> list[str]:
    """Make layers trainable again from ``since`` to the end (all layers by default); return their names.

    Parameters
    ----------
    model : nn.Module
    since : str or int, optional
        First layer to unfreeze (a name, a container's name or a position, as in :func:`freeze`);
        gradual unfreezing calls this with earlier and earlier layers.

    Returns
    -------
    list of str
        The layers made trainable, in order.
    """
    layers = _param_layers(model)
    chosen = layers if since is None else layers[_span(model, since)[0]:]
    for _, m in chosen:
        for p in m.parameters(recurse=False):
            p.requires_grad_(True)
        if isinstance(m, nn.modules.batchnorm._NormBase):
            m.train(model.training)
    return [n for n, _ in chosen]


def frozen_layers(model: nn.Module) -> list[str]:
    """Names of the layers whose parameters are all frozen (``requires_grad=False``).

    Parameters
    ----------
    model : nn.Module
        Typically a network after :func:`freeze`.

    Returns
    -------
    list of str
        In the order of :func:`layer_names`; empty when every layer trains.
    """
    return [n for n, m in _param_layers(model) if not any(p.requires_grad for p in m.parameters(recurse=False))]


def _last_linear(model: nn.Module) -> tuple[nn.Module, str, nn.Linear]:
    """(parent module, attribute, layer) of the last ``nn.Linear`` of the head."""
    name = head_name(model)
    head = getattr(model, name)
    if isinstance(head, nn.Linear):
        return model, name, head
    linears = [(n, m) for n, m in head.named_modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise ValueError(f"The head {name!r} of {type(model).__name__} holds no nn.Linear layer to replace.")
    path, layer = linears[-1]
    parent_path, _, attr = path.rpartition(".")
    return (head.get_submodule(parent_path) if parent_path else head), attr, layer


def replace_head(model: nn.Module, n_classes: int, seed: int | None = None) -> nn.Module:
    """Replace the last linear layer of the head by a new one with ``n_classes`` outputs (in place).

    Anything else in the head (dropout, hidden layers) is kept; the new layer is trainable, on the
    old one's device, and initialised from ``seed`` without touching the global RNG.

    Parameters
    ----------
    model : nn.Module
        A :class:`mnistlab.models.classifiers.Classifier` (``head``), a torchvision ResNet
        (``fc``) or a model with a ``classifier``.
    n_classes : int
    seed : int, optional

    Returns
    -------
    nn.Module
        ``model`` itself; ``model.config["kwargs"]["num_classes"]`` is updated when present.
    """
    if isinstance(n_classes, bool) or not isinstance(n_classes, (int, np.integer)) or n_classes < 1:
        raise ValueError(f"n_classes must be a positive integer, not {n_classes!r}.")
    parent, attr, old = _last_linear(model)
    with torch.random.fork_rng(devices=[]):
        if seed is not None:
            torch.manual_seed(int(seed))
        new = nn.Linear(old.in_features, int(n_classes), bias=old.bias is not None)
    setattr(parent, attr, new.to(device=old.weight.device, dtype=old.weight.dtype))
    config = getattr(model, "config", None)
    if isinstance(config, dict) and isinstance(config.get("kwargs"), dict):
        model.config = {**config, "kwargs": {**config["kwargs"], "num_classes": int(n_classes)}}
    return model


def param_groups(model: nn.Module, rates: Mapping[str, float]) -> list[dict]:
    """Parameter groups with their own learning rates (what :func:`mnistlab.fit` builds from ``head_lr``/``body_lr``).

    Parameters
    ----------
    model : nn.Module
    rates : dict
        Learning rate per part. ``"head"``: the classification head (:func:`head_name`);
        ``"features"``: every other parameter; any other key is a module name (``"body.0"``,
        ``"body"``) and wins over ``"features"``/``"head"`` for the parameters inside it (the
        longest matching name wins).

    Returns
    -------
    list of dict
        ``[{"params": [...], "lr": rate, "name": key}, ...]`` for the non-empty groups; frozen
        parameters are left out.

    Raises
    ------
    ValueError
        No rates, a key that names no module, or a trainable parameter that no key covers.

    Examples
    --------
    >>> import mnistlab as ml
    >>> from mnistlab.models.surgery import param_groups
    >>> groups = param_groups(ml.create_model("fast", seed=0), {"features": 1e-4, "head": 1e-2})
    >>> [(g["name"], g["lr"]) for g in groups]
    [('features', 0.0001), ('head', 0.01)]
    """
    if not rates:
        raise ValueError("param_groups needs at least one rate, e.g. {'features': 1e-4, 'head': 1e-2}.")
    head = head_name(model)
    modules = dict(model.named_modules())
    for key in rates:
        if key not in ("features", "head") and key not in modules:
            raise ValueError(f"{key!r} names no module of {type(model).__name__}; use 'features', 'head' or one of "
                             f"{', '.join(layer_names(model))}.")
    named = [k for k in rates if k not in ("features", "head")]
    groups: dict[str, list] = {k: [] for k in rates}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        specific = [k for k in named if name.startswith(k + ".")]
        if specific:
            key = max(specific, key=len)
        elif _in_head(name, head) and "head" in rates:
            key = "head"
        elif not _in_head(name, head) and "features" in rates:
            key = "features"
        else:
            raise ValueError(f"Parameter {name!r} is covered by none of {list(rates)}; add "
                             f"{'head' if _in_head(name, head) else 'features'!r} or its layer's name.")
        groups[key].append(p)
    return [{"params": ps, "lr": float(rates[k]), "name": k} for k, ps in groups.items() if ps]


def head_outputs(model: nn.Module) -> int:
    """Number of outputs (classes) of the last linear layer of the model's head.

    Parameters
    ----------
    model : nn.Module

    Returns
    -------
    int
    """
    return int(_last_linear(model)[2].out_features)
