"""The pretrained MNIST classifier shipped inside the package.

``mnistlab/pretrained/mnist_<name>.pt`` is an ordinary :func:`mnistlab.save_checkpoint` file
(loaded with ``torch.load(weights_only=True)``), and ``mnist_<name>.json`` beside it records
its test accuracy, the recipe, seed, date, torch version and the command that retrains it::

    python -m mnistlab.training.pretrained   # retrain and overwrite the shipped files

Examples
--------
>>> from mnistlab.pretrained import load_pretrained, pretrained_info
>>> model = load_pretrained()                     # eval mode, on the CPU
>>> pretrained_info()["test_acc"] > 0.99
True
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import sys
from importlib import resources
from pathlib import Path

import torch
from torch import nn

__all__ = ["PRETRAINED", "load_pretrained", "pretrained_info", "pretrained_path", "train_pretrained"]

PRETRAINED = {
    # public name -> (file stem inside mnistlab/pretrained/, recipe, recipe overrides, seed)
    "mnist": ("mnist_best16", "best", {}, 0),
}
"""Shipped models. ``"mnist"``: the ``best`` recipe (width 16, augmentation), seed 0."""

RETRAIN_COMMAND = "python -m mnistlab.training.pretrained --name mnist"


def _entry(name: str):
    if name not in PRETRAINED:
        raise ValueError(f"Unknown pretrained model {name!r}; available: {', '.join(sorted(PRETRAINED))}.")
    return PRETRAINED[name]


def _resource(filename: str):
    return resources.files("mnistlab").joinpath("pretrained", filename)


def _shipped(name: str, suffix: str):
    """The packaged ``<stem><suffix>`` resource of ``name``; a clear error if it is missing."""
    stem = _entry(name)[0]
    res = _resource(stem + suffix)
    if not res.is_file():
        raise FileNotFoundError(f"{stem}{suffix} is missing from the installed mnistlab package; reinstall it "
                                f"or retrain with `{RETRAIN_COMMAND}`.")
    return res


def pretrained_path(name: str = "mnist") -> Path:
    """Path of the shipped checkpoint file of ``name`` (it may not exist if the package is broken).

    Raises
    ------
    ValueError
        Unknown name.
    """
    stem = _entry(name)[0]
    return Path(str(_resource(f"{stem}.pt")))


def pretrained_info(name: str = "mnist") -> dict:
    """The JSON record shipped beside the model: test accuracy, recipe, seed, date, torch version, command.

    Raises
    ------
    ValueError
        Unknown name.
    FileNotFoundError
        The package was installed without its data files.
    """
    return json.loads(_shipped(name, ".json").read_text())


def load_pretrained(name: str = "mnist", device="cpu") -> nn.Module:
    """Load the shipped pretrained model in eval mode.

    Parameters
    ----------
    name : str
        A key of :data:`PRETRAINED` (only ``"mnist"`` for now).
    device : str

    Returns
    -------
    Classifier
        In eval mode, with its declared ``preprocessing``, so :func:`mnistlab.predict`
        applies the right preprocessing.

    Raises
    ------
    ValueError, FileNotFoundError
        An unknown name, or a package installed without its data files (the checkpoint is
        missing); :func:`pretrained_info` raises the same.
    """
    from .checkpoint import load_checkpoint

    with resources.as_file(_shipped(name, ".pt")) as path:
        return load_checkpoint(path, device=device).model.eval()


def train_pretrained(out=None, name: str = "mnist", device="auto", progress: bool = True,
                     command: str | None = None) -> dict:
    """(Re)train the pretrained model ``name`` and write ``<stem>.pt`` and ``<stem>.json`` to ``out``.

    It trains on the data its recipe names: the recipe's ``dataset``, at most ``train_limit``
    training images, and is tested on at most ``test_limit`` test images.

    Parameters
    ----------
    out : path, optional
        Folder to write to; defaults to the package's own ``mnistlab/pretrained/``.
    name : str
    device : str
    progress : bool
    command : str, optional
        The command line that ran this, recorded in the JSON (default: :data:`RETRAIN_COMMAND`).

    Returns
    -------
    dict
        The JSON record that was written.
    """
    from .. import __version__
    from ..data.datasets import load_dataset
    from ..models.registry import count_parameters
    from .checkpoint import save_checkpoint
    from .loop import evaluate, resolve_device
    from .recipes import get_recipe, train_model

    stem, recipe_name, overrides, seed = _entry(name)
    out = Path(out) if out is not None else Path(str(_resource(""))).resolve()
    recipe = get_recipe(recipe_name, **overrides)
    # the data the recipe names: its dataset, at most its train_limit / test_limit images
    train = load_dataset(recipe.dataset, "train", limit=recipe.train_limit)
    test = load_dataset(recipe.dataset, "test", limit=recipe.test_limit)
    model, history = train_model(recipe, train, None, seed=seed, device=device, progress=progress)
    model.cpu().eval()
    result = evaluate(model, test, device="cpu")
    pt = save_checkpoint(out / f"{stem}.pt", model, history=history,
                         metrics={"test_acc": result["acc"], "test_loss": result["loss"]},
                         recipe=recipe_name, seed=seed, command=command or RETRAIN_COMMAND)
    info = {
        "name": name, "file": pt.name, "model": model.config["name"], "model_kwargs": model.config["kwargs"],
        "parameters": count_parameters(model), "file_bytes": pt.stat().st_size,
        "test_acc": result["acc"], "test_loss": result["loss"], "test_images": result["n"],
        "recipe": recipe_name, "recipe_settings": recipe.to_dict(), "seed": seed,
        "train_seconds": float(history["seconds"].sum()), "device": str(resolve_device(device)),
        "torch_threads": torch.get_num_threads(),
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "torch": torch.__version__, "mnistlab": __version__, "command": command or RETRAIN_COMMAND,
        "python_api": f"mnistlab.train_model(mnistlab.get_recipe({recipe_name!r}"
                      + "".join(f", {k}={v!r}" for k, v in overrides.items()) + f"), train, seed={seed})",
    }
    (out / f"{stem}.json").write_text(json.dumps(info, indent=1, default=list) + "\n")
    return info


def main(argv=None) -> int:
    """``python -m mnistlab.training.pretrained``: retrain the shipped model (needs MNIST, see ``mnistlab data``)."""
    p = argparse.ArgumentParser(prog="python -m mnistlab.training.pretrained", description="retrain the shipped model")
    p.add_argument("--name", default="mnist", choices=sorted(PRETRAINED))
    p.add_argument("--out", default=None, help="folder (default: the package's mnistlab/pretrained/)")
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--quiet", action="store_true")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    command = " ".join(["python -m mnistlab.training.pretrained", *(sys.argv[1:] if argv is None else argv)])
    info = train_pretrained(args.out, args.name, args.device, progress=not args.quiet, command=command)
    print(json.dumps(info, indent=1, default=list))
    return 0


if __name__ == "__main__":
    sys.exit(main())
