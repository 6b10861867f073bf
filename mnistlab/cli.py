"""The ``mnistlab`` command: train, evaluate, predict, read, data, models, figures.

It starts fast: this module imports only the standard library and ``mnistlab._util``, the parser is
built from the text below, and each command imports what it needs (torch, pandas, papermill ...)
once the arguments are parsed. So ``mnistlab --help``, ``mnistlab train --help`` and a usage error
answer at once, and Ctrl-C at any moment ends in one line.
"""
from __future__ import annotations

import argparse
import errno
import json
import math
import os
import shutil
import sys
import tempfile
import textwrap
from pathlib import Path

from mnistlab._util import file_kind, plural, project_root

__all__ = ["main", "build_parser"]

# ---------------------------------------------------------------------------------------------------
# What --help says without importing torch. Each table is checked against the package by
# tests/test_cli.py::test_the_train_help_matches_the_config_and_recipes, which prints the new
# value to paste when a field, a recipe or a dataset changes.

_CONFIG_FLAGS = ("name", "model", "model_kwargs", "dataset", "epochs", "batch_size", "lr", "optimizer", "scheduler",
                 "gamma", "momentum", "weight_decay", "label_smoothing", "normalize", "augment", "train_limit",
                 "test_limit", "val", "split_seed", "early_stopping", "min_steps", "eval_batch_size", "init_from",
                 "keep_head", "freeze", "head_lr", "body_lr")
_ALIASES = {"lr": ("--learning-rate",), "epochs": ("--num-epochs",), "train_limit": ("--limit",)}

#: TrainConfig field -> (its help, the fast recipe's value as JSON)
_TRAIN_FIELDS = {
    'name': ('label in tables and plots (not part of the cache key)', '"fast recipe"'),
    'model': ('registry name of the network (see `mnistlab models`)', '"fast"'),
    'model_kwargs': ('constructor arguments of the network, e.g. {"width": 32}', '{}'),
    'dataset': ('mnist, fashion-mnist or kmnist', '"mnist"'),
    'epochs': ('passes over the training set (0: the untrained baseline, only evaluated)', '1'),
    'batch_size': ('training batch size', '64'),
    'lr': ('learning rate (peak rate for onecycle); default per optimizer', '0.05'),
    'optimizer': ('one of sgd, momentum, nesterov, adam, adamw, rmsprop, adagrad, adadelta', '"nesterov"'),
    'scheduler': ('learning-rate schedule: step, steplr, cosine, onecycle or none', '"onecycle"'),
    'gamma': ('learning-rate factor per epoch of the steplr schedule', '0.7'),
    'momentum': ('momentum of sgd/momentum/nesterov/rmsprop; default per optimizer', '0.9'),
    'weight_decay': ('L2 weight decay (>= 0)', '0.0005'),
    'label_smoothing': ('label smoothing of the cross-entropy, in [0, 1)', '0.0'),
    'normalize': ('input normalisation: standard, unit, symmetric or [mean, std]', '"standard"'),
    'augment': ('random affine batch augmentation (Augment arguments) or none', 'null'),
    'train_limit': ('train on the first N training images only', 'null'),
    'test_limit': ('test on the first N test images only', 'null'),
    'val': ('per-epoch validation: test, none, a fraction or a count of held-out training images', '"test"'),
    'split_seed': ('seed of the train/validation split', '0'),
    'early_stopping': ('EarlyStopping arguments (needs val), e.g. {"patience": 3}', 'null'),
    'min_steps': ('train at least this many optimizer steps: a small training set gets more epochs (the budget grows with the data, never below `epochs` passes)', 'null'),
    'eval_batch_size': ('batch size of the per-epoch validation', '256'),
    'init_from': ('start from the weights of a source run: its cache key (a run kept with keep_model) or a checkpoint path; the head is replaced unless keep_head', 'null'),
    'keep_head': ("with init_from: keep the source's head when it has as many classes as the data", 'false'),
    'freeze': ("frozen layers: none, features (all but the head), or the last frozen layer's name or position", 'null'),
    'head_lr': ('learning rate of the classification head; default lr', 'null'),
    'body_lr': ('learning rate of every layer but the head (e.g. pretrained features); default lr', 'null'),
}
_RECIPE_NAMES = ('best', 'fast', 'pt_example')
_FILE_DATASETS = ('mnist', 'fashion-mnist', 'kmnist')

_RUN_FILES = ("model.pt", "history.csv")


# ---------------------------------------------------------------------------------------- checks

def _nearest_existing(path: Path) -> Path:
    """``path`` or the closest folder above it that exists (absolute)."""
    path = Path(os.path.abspath(path))
    while file_kind(path) is None and path.parent != path:
        path = path.parent
    return path


def _folder_arg(text: str, flag: str, what: str) -> Path:
    """A folder argument (``--out``): not blank, a folder or creatable as one, writable. Nothing is created."""
    if not text.strip():
        raise ValueError(f"{flag} is empty; give a folder for {what}.")
    path = Path(text)
    kind = file_kind(path)
    if kind is None:
        above = _nearest_existing(path)
        above_kind = file_kind(above)
        if above_kind != "a folder":
            raise ValueError(f"{flag} {path} cannot be created ({above} is {above_kind}); give another folder.")
        if not os.access(above, os.W_OK | os.X_OK):
            raise ValueError(f"{flag} {path} cannot be created ({above} is not writable); give another folder.")
    elif kind != "a folder":
        raise ValueError(f"{flag} {path} is {kind}; give a folder for {what}.")
    elif not os.access(path, os.W_OK | os.X_OK):
        raise ValueError(f"{flag} {path} is not writable; give another folder.")
    return path


def _check_out(text: str) -> Path:
    """The run folder can take model.pt and history.csv: checked before any data is read or any file written."""
    out = _folder_arg(text, "--out", "model.pt and history.csv (e.g. --out runs/first)")
    for name in _RUN_FILES:
        kind = file_kind(out / name)
        if kind not in (None, "a file"):
            raise ValueError(f"{out / name} is {kind}, where the run's {name} goes; move it away or give "
                             "another --out.")
    return out


def _check_data_root(root: str | None = None) -> None:
    """``--root`` or ``$MNISTLAB_DATA`` is a folder (or absent), never a FIFO or a device, which would be read forever."""
    label, text = ("--root", root) if root is not None else ("MNISTLAB_DATA=", os.environ.get("MNISTLAB_DATA", ""))
    if not text.strip():
        return
    kind = file_kind(Path(text.strip()).expanduser())
    if kind not in (None, "a folder"):
        raise ValueError(f"{label}{'' if label.endswith('=') else ' '}{text} is {kind}, not a folder; give the "
                         "folder that holds MNIST/raw.")


def _is_run_folder(path) -> bool:
    return file_kind(path) == "a folder" and file_kind(Path(path) / "model.pt") == "a file"


def _checkpoint_arg(text: str, flag: str = "") -> str:
    """A checkpoint argument: a run folder stands for its model.pt; a FIFO or a device is refused unread."""
    if _is_run_folder(text):
        return str(Path(text) / "model.pt")
    kind = file_kind(text)
    if kind not in (None, "a file", "a folder"):  # absent and folders get load_checkpoint's own message
        raise ValueError(f"{flag}{text} is {kind}, not a checkpoint file.")
    return text


_ONECYCLE_MIN_STEPS = 5
"""torch's OneCycleLR divides by zero unless its warm-up phase (a quarter of the steps here) exceeds one step."""


def _check_steps(cfg, n_train: int) -> None:
    """The one-cycle schedule needs a few optimizer steps (torch divides by zero otherwise)."""
    steps = cfg.epochs * math.ceil(n_train / cfg.batch_size)
    if cfg.scheduler == "onecycle" and steps < _ONECYCLE_MIN_STEPS:
        raise ValueError(f"--scheduler onecycle needs at least {_ONECYCLE_MIN_STEPS} optimizer steps, but "
                         f"{plural(cfg.epochs, 'epoch')} of {plural(n_train, 'image')} in batches of "
                         f"{cfg.batch_size} make {steps}: raise --limit or --epochs, lower --batch-size, or pass "
                         "--scheduler none.")


def _check_finite(history, test_loss: float) -> None:
    """A run whose loss is NaN or infinite is not a result: refuse it before anything is written."""
    from mnistlab.training.loop import TrainingError

    losses = [float(v) for v in history["train_loss"]] if "train_loss" in history else []
    bad = next((i for i, v in enumerate(losses) if not math.isfinite(v)), None)
    if bad is not None or not math.isfinite(test_loss):
        where = f"at epoch {history['epoch'].iloc[bad]}" if bad is not None and "epoch" in history else "on the test set"
        raise TrainingError(f"training diverged: the loss is not finite (NaN or infinite) {where}; lower the "
                            "learning rate (--learning-rate) or try another --optimizer. Nothing was saved.")


# ------------------------------------------------------------------------------------------ saving

def _make_folders(path: Path) -> list[Path]:
    """Create ``path`` and the missing folders above it; return those created (deepest last)."""
    missing = []
    while file_kind(path) is None and path.parent != path:
        missing.append(path)
        path = path.parent
    created = []
    try:
        for folder in reversed(missing):
            folder.mkdir()
            created.append(folder)
    except OSError:
        _remove_empty(created)
        raise
    return created


def _remove_empty(folders: list[Path]) -> None:
    for folder in reversed(folders):
        try:
            folder.rmdir()
        except OSError:
            break


def _clean_stale_saves(out: Path) -> None:
    """Remove what saves killed half-way left in ``out``: ``.save.<pid>.*.tmp`` folders of dead processes."""
    from mnistlab._util import _pid_alive, clean_stale_temporaries

    for name in _RUN_FILES:  # single temporary files, as earlier versions wrote them
        clean_stale_temporaries(out / name)
    for folder in out.glob(".save.*.tmp"):
        pid = folder.name.split(".")[2]
        if folder.is_dir() and pid.isdigit() and not _pid_alive(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)


def _write_synced(path: Path, data: bytes) -> None:
    with open(path, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def _save_failed(out: Path, name: str, exc: BaseException) -> OSError:
    """One line for a save that failed: which file, which folder, why (a full disk said so), what is kept."""
    cause = exc
    while cause is not None and not isinstance(cause, OSError):  # torch wraps the OSError of its writes
        cause = cause.__cause__ or cause.__context__
    if cause is not None and cause.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):
        why = f"the disk is full ({cause.strerror}); free some space or give another --out"
    elif cause is not None:
        why = f"{cause.strerror or cause}; give another --out"
    else:
        why = " ".join(str(exc).split())
    return OSError(f"could not save the run: writing {name} in {out} failed: {why}. The files already in {out} "
                   "are kept as they were.")


def _save_run(out: Path, save_model, history_csv: bytes) -> None:
    """Write model.pt and history.csv into ``out``, replacing the old ones only once both are fully written.

    Both are written into a private temporary folder inside ``out`` first (same file system); then the
    old history.csv is removed and the two are renamed in. The rename order keeps the folder
    consistent whenever the process dies: model.pt (which holds the history too) is the record,
    and a history.csv beside it is always its own. A failure before the renames (a full disk)
    leaves the old files as they were and removes the temporaries; a kill leaves a
    ``.save.<pid>.*.tmp`` folder that the next save removes.
    """
    created, staging, name = [], None, "model.pt"
    try:
        created = _make_folders(out)
        _clean_stale_saves(out)
        staging = Path(tempfile.mkdtemp(prefix=f".save.{os.getpid()}.", suffix=".tmp", dir=out))
        save_model(staging / "model")
        name = "history.csv"
        _write_synced(staging / "history", history_csv)
        name = "model.pt and history.csv"
        (out / "history.csv").unlink(missing_ok=True)
        os.replace(staging / "model", out / "model.pt")
        os.replace(staging / "history", out / "history.csv")
    except BaseException as exc:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
        _remove_empty(created)
        if isinstance(exc, (OSError, RuntimeError)):
            raise _save_failed(out, name, exc) from None
        raise
    shutil.rmtree(staging, ignore_errors=True)


# ---------------------------------------------------------------------------------------- commands

def _train_config(args):
    """The run's TrainConfig: the recipe, with every flag the user gave applied on top."""
    from mnistlab.training.recipes import get_recipe

    # flags left out are absent from args (default=SUPPRESS), so an explicit "none" (e.g.
    # `--scheduler none`) overrides the recipe instead of being mistaken for "not given"
    changes = {name: getattr(args, name) for name in _CONFIG_FLAGS if hasattr(args, name)}
    changes.setdefault("name", f"{args.recipe} recipe (cli)" if changes else get_recipe(args.recipe).name)
    return get_recipe(args.recipe, **changes)


def _cmd_train(args) -> int:
    import mnistlab as ml

    cfg = _train_config(args)  # validated here, before any data is read or any file written
    if cfg.epochs < 1:
        raise ValueError(f"--epochs must be a whole number >= 1, not {cfg.epochs}.")
    device = ml.resolve_device(args.device)
    out = _check_out(args.out)  # nothing is created before the save
    _check_data_root()
    train = ml.load_dataset(cfg.dataset, "train", limit=cfg.train_limit)
    test = ml.load_dataset(cfg.dataset, "test", limit=cfg.test_limit)
    if cfg.val is None or cfg.val == "test":
        val = test if cfg.val == "test" else None
    else:  # a fraction or a count of the training images, held out
        try:
            train, val = ml.train_val_split(train, cfg.val, seed=cfg.split_seed)
        except ValueError as exc:
            raise ValueError(f"--val {cfg.val}: {exc}") from None
    _check_steps(cfg, len(train))
    model = cfg.build_model(args.seed)
    print(f"Training {cfg.model} ({plural(ml.count_parameters(model), 'parameter')}) on "
          f"{plural(len(train), f'{cfg.dataset} image')} for {plural(cfg.epochs, 'epoch')} on {device} "
          f"(recipe {args.recipe!r})")
    model, history = ml.train_model(cfg, train, val, seed=args.seed, device=device, progress=not args.quiet)
    result = ml.evaluate(model, test)
    _check_finite(history, result["loss"])
    _check_out(args.out)  # still the folder it was (a file put in the way while training is named, not overwritten)
    command = " ".join(["mnistlab", *args.argv])
    _save_run(out, lambda path: ml.save_checkpoint(
        path, model, config=cfg, history=history, metrics={"test_acc": result["acc"], "test_loss": result["loss"]},
        seed=args.seed, command=command), history.to_csv(index=False).encode())
    print(history.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    print(f"test accuracy {result['acc']:.4f}  test loss {result['loss']:.4f}  "
          f"training time {history['seconds'].sum():.1f} s")
    print(f"saved {out / 'model.pt'} and {out / 'history.csv'}")
    return 0


def _cmd_evaluate(args) -> int:
    import mnistlab as ml

    if args.limit is not None and args.limit < 1:
        raise ValueError(f"--limit must be a whole number >= 1, not {args.limit}.")
    path = _checkpoint_arg(args.checkpoint)
    if args.dataset is not None:
        ml.dataset_info(args.dataset)  # an unknown name fails before the checkpoint is read
    ckpt = ml.load_checkpoint(path)
    data = ml.load_dataset(args.dataset or ckpt.dataset, args.split, limit=args.limit)
    result = ml.evaluate(ckpt.model, data)
    print(f"{path}: {ckpt.name} on {plural(len(data), f'{data.dataset} {args.split} image')}: "
          f"accuracy {result['acc']:.4f}, loss {result['loss']:.4f}")
    return 0


def _model_and_paths(args, usage: str):
    """The model (a checkpoint or run folder among the inputs, --checkpoint, or the shipped one) and the image paths."""
    import mnistlab as ml
    from mnistlab.training.checkpoint import is_checkpoint

    paths = list(args.inputs)
    checkpoint = None if args.checkpoint is None else _checkpoint_arg(args.checkpoint, "--checkpoint ")
    if checkpoint is None:  # `mnistlab predict CKPT IMAGE...`: a checkpoint is recognised by its content
        # only regular files are opened: reading a FIFO or a device would block or never end
        found = [p for p in paths if _is_run_folder(p) or (file_kind(p) == "a file" and is_checkpoint(p))]
        if not found and Path(paths[0]).suffix.lower() in (".pt", ".pth", ".ckpt") and \
                file_kind(paths[0]) in (None, "a file"):
            found = [paths[0]]  # an unreadable checkpoint still gets the checkpoint's error
        if len(found) > 1:
            raise ValueError(f"several checkpoints given ({', '.join(found)}); use one at a time.")
        if found:
            paths.remove(found[0])
            checkpoint = _checkpoint_arg(found[0])
    if not paths:
        raise ValueError(f"give at least one image: {usage}")
    if checkpoint is None:
        from mnistlab.training.pretrained import load_pretrained

        return load_pretrained(), paths
    return ml.load_checkpoint(checkpoint).model, paths


def _shown(path: str, images) -> str:
    """Write what the model saw (28 x 28 per digit, side by side) beside ``path``; returns where."""
    import numpy as np
    from PIL import Image

    from mnistlab._util import atomic_write

    source = Path(path)
    out = source.with_name(f"{source.stem}.28x28.png")
    if out.resolve() == source.resolve():
        raise ValueError(f"{path}: --show would overwrite the input itself; rename it.")
    strip = 255 - np.concatenate([im.numpy() for im in images], axis=1)   # dark ink on white, as written
    atomic_write(out, lambda fh: Image.fromarray(strip.astype(np.uint8)).save(fh, format="PNG"))
    return str(out)


def _not_an_image(path: str) -> str | None:
    """Why ``path`` cannot be an image, said before it is opened (a FIFO or a device would hang the reader)."""
    kind = file_kind(path)
    if kind not in (None, "a file", "a folder"):
        return f"is {kind}, not an image file"
    if _is_run_folder(path):
        return "is a run folder, not an image; to predict with its model.pt, give it without --checkpoint"
    return None


def _read_all(args, read, usage: str) -> int:
    """Read every image with ``read`` (read_image or read_number) and print one line per image.

    A picture that cannot be read, or holds no digit, is named on stderr and marked in the output,
    and the others are still read; warnings (not sure, several digits) follow the line.
    """
    import mnistlab as ml

    model, paths = _model_and_paths(args, usage)
    classes = ml.dataset_info(model.preprocessing.dataset).classes
    failed = {}
    for path in paths:
        reason = _not_an_image(path)
        if reason is None:
            try:
                reading = read(path, model, unsure_below=args.unsure_below)
            except (ValueError, FileNotFoundError, TypeError) as exc:
                reason = " ".join(str(exc).split()).replace(path + ": ", "")
        if reason is not None:
            failed[path] = reason
            print(f"{path}\t-\t-\t(not read: {reason})")
            continue
        if not reading.digits:
            failed[path] = reading.warnings[0]
            print(f"{path}\t-\t-\t({reading.warnings[0]})")
            continue
        text = "".join(str(classes[k]) for k in reading.digits)
        if read is ml.read_image:
            p = reading.probabilities[0]
            detail = "top 3: " + ", ".join(f"{classes[j]}:{p[j]:.3f}" for j in p.argsort()[::-1][:3])
            line = f"{path}\t{text}\t{reading.confidence[0]:.4f}\t({detail})"
        else:
            each = " ".join(f"{c:.3f}" for c in reading.confidence)
            line = f"{path}\t{text}\t{min(reading.confidence):.4f}\t(each digit: {each})"
        if args.show:
            line += f"\tshown: {_shown(path, reading.images)}"
        for warning in reading.warnings:
            line += f"\twarning: {warning}"
        print(line)
    for path, reason in failed.items():
        print(f"error: {path}: {reason}", file=sys.stderr)
    if failed:
        sys.stdout.flush()
        return 2 if len(failed) == len(paths) else 1
    return 0


def _cmd_predict(args) -> int:
    """One digit per image: the digit, its probability, the top 3 and any warning."""
    import mnistlab as ml

    return _read_all(args, ml.read_image, "mnistlab predict [CKPT] IMAGE...")


def _cmd_read(args) -> int:
    """A number per image: its digits left to right, the lowest probability, each digit's, warnings."""
    import mnistlab as ml

    return _read_all(args, ml.read_number, "mnistlab read [CKPT] IMAGE...")


def _cmd_data(args) -> int:
    _check_data_root(args.root)
    import mnistlab as ml

    from mnistlab.data.datasets import FILE_DATASETS

    names = list(FILE_DATASETS) if args.dataset == "all" else [args.dataset]
    root = ml.data_root(args.root)
    source = "--root" if args.root else "MNISTLAB_DATA" if os.environ.get("MNISTLAB_DATA") else "the default"
    print(f"data root: {root.resolve()}  (from {source})")
    # With --dataset all only MNIST is required; the other datasets are optional extras.
    required = {"mnist"} if args.dataset == "all" else set(names)
    failed = False
    for name in names:
        report = ml.check_files(name, args.root)
        if name not in required and not any(r["present"] for r in report):
            print(f"{name}: not present (optional)")
            continue
        sound = sum(r["ok"] for r in report)
        print(f"{name}: {sound}/{plural(len(report), 'file')} sound" + ("" if name in required else " (optional)"))
        for r in report:
            print(f"  {'ok ' if r['ok'] else 'BAD'} {r['path']}" + ("" if r["ok"] else f"  ({r['problem']})"))
        failed |= name in required and sound != len(report)
    return 1 if failed else 0


def _cmd_models(args) -> int:
    import pandas as pd

    import mnistlab as ml

    with pd.option_context("display.max_colwidth", 70, "display.width", 160):
        print(ml.list_models())
    return 0


def _cmd_figures(args) -> int:
    from mnistlab.runner import NotebookError, list_notebooks, run_notebooks

    if args.out is not None:
        _folder_arg(args.out, "--out",
                    "the figures and manifest.json (default figures/; with --quick build/figures-quick/)")
    ran = [p.stem for p in list_notebooks(args.only)]  # an empty or unknown --only fails here, naming the choices
    jobs = args.jobs
    if jobs == "auto":
        from mnistlab.experiments.executors import cpu_count

        jobs = max(1, min(cpu_count(), len(ran)))
    try:
        manifest = run_notebooks(only=args.only, quick=args.quick, dataset=args.dataset, seed=args.seed,
                                 device=args.device, figures_dir=args.out, extra=dict(args.param or []), jobs=jobs)
    except NotebookError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for name in ran:  # the manifest also holds the notebooks of earlier runs
        entry = manifest["notebooks"].get(name)
        if entry is not None:
            print(f"{name}: {plural(len(entry['figures']), 'file')} in {entry['seconds']:.0f} s")
    if jobs > 1:
        print(f"all {len(ran)} in {manifest['last_run']['seconds']:.0f} s, {jobs} at a time")
    return 0


# ------------------------------------------------------------------------------------- the parser

def _notebook_param(text: str) -> tuple[str, object]:
    """``NAME=VALUE`` -> (NAME, VALUE); VALUE is JSON when it parses (numbers, true/false), else text."""
    name, sep, value = text.partition("=")
    if not sep or not name.isidentifier():
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE with NAME a notebook parameter, got {text!r}")
    try:
        return name, json.loads(value)
    except json.JSONDecodeError:
        return name, value




def _json_or_str(flag: str):
    """Parse a flag's value as JSON when it looks like JSON ({...}, [...], numbers, null), else keep the text."""
    def parse(text: str):
        if text.strip()[:1] in "{[" or text.strip() in ("null", "none", "None"):
            if text.strip() in ("none", "None"):
                return None
            try:
                return json.loads(text)
            except json.JSONDecodeError as exc:
                raise argparse.ArgumentTypeError(f"not valid JSON ({exc.msg} at character {exc.pos})") from None
        return text
    return parse


def _number(text: str, kind, expected: str):
    """``kind(text)`` (``int`` or ``float``), or the argparse error "{expected}, got {text!r}"."""
    try:
        return kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{expected}, got {text!r}") from None


def _positive_int(text: str) -> int:
    return _number(text, int, "expected a whole number")


def _seed(text: str) -> int:
    value = _positive_int(text)
    if not 0 <= value < 2**32:
        raise argparse.ArgumentTypeError(f"expected a whole number from 0 to {2**32 - 1}, got {text!r}")
    return value


def _jobs(text: str):
    """``--jobs``: a whole number >= 1, or "auto" (one notebook per core)."""
    if text.strip().lower() == "auto":
        return "auto"
    value = _positive_int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1 or auto, got {text!r}")
    return value


def _probability(text: str) -> float:
    value = _number(text, float, "a probability between 0 and 1")
    if not 0 <= value <= 1:  # NaN too
        raise argparse.ArgumentTypeError(f"a probability between 0 and 1, got {text!r}")
    return value


def _finite_float(text: str) -> float:
    value = _number(text, float, "expected a number")
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def _val(text: str):
    """--val: test, none, a fraction or a count."""
    low = text.strip().lower()
    if low in ("none", "null"):
        return None
    for kind in (int, float):
        try:
            return kind(low)
        except ValueError:
            pass
    return low


_FLAG_TYPES = {"name": str, "val": _val, "split_seed": _seed, "epochs": _positive_int, "batch_size": _positive_int, "train_limit": _positive_int,
               "test_limit": _positive_int, "lr": _finite_float, "gamma": _finite_float, "momentum": _finite_float,
               "weight_decay": _finite_float, "label_smoothing": _finite_float, "init_from": str,
               "head_lr": _finite_float, "body_lr": _finite_float, "min_steps": _positive_int,
               "eval_batch_size": _positive_int}


class _Parser(argparse.ArgumentParser):
    """argparse with a one-line error (the usage text is one ``--help`` away)."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {' '.join(message.split())} (see `{self.prog} --help`)\n")


def _notebook_names() -> list[str]:
    """The notebooks of the checkout (for --help; a glob, nothing imported)."""
    root = project_root()
    return sorted(p.stem for p in (root / "notebooks").glob("[0-9][0-9]_*.ipynb")) if root else []


_READ_HELP = {
    "predict": ("read one digit per image file (a photo, a scan or a drawing; any size or colour)", """\
Read one digit per image file: a photo, a scan or a drawing, any size or colour.
The model is CKPT (a checkpoint file, or a run folder holding the model.pt that
`mnistlab train --out FOLDER` wrote), or --checkpoint, or else the shipped
pretrained model.""", """\
output: one tab-separated line per image:
  IMAGE  DIGIT  PROBABILITY  (top 3: d:p, d:p, d:p)  [warning: ...]
  DIGIT is the digit read and PROBABILITY the model's probability for it; the
  top 3 are the three likeliest digits with their probabilities. A warning
  follows when the model is not sure (probability under --unsure-below), finds
  no digit or finds several. An image that cannot be read gets "-  -  (not
  read: why)" and the same reason on stderr.

exit code: 0 every image read, 1 some could not be read, 2 none (or an error).

example: mnistlab predict runs/latest photo.jpg"""),
    "read": ("read a number of several digits per image file, left to right", """\
Read a number of several digits per image file, left to right. The model is
CKPT (a checkpoint file, or a run folder holding model.pt), or --checkpoint,
or else the shipped pretrained model.""", """\
output: one tab-separated line per image:
  IMAGE  NUMBER  PROBABILITY  (each digit: p p p ...)  [warning: ...]
  NUMBER is the digits read left to right, PROBABILITY the lowest of their
  probabilities (the least sure digit), then each digit's probability. A
  warning follows when a digit is not sure (under --unsure-below) or no digit
  is found. An image that cannot be read gets "-  -  (not read: why)" and the
  same reason on stderr.

exit code: 0 every image read, 1 some could not be read, 2 none (or an error).

example: mnistlab read --show house-number.jpg"""),
}


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``mnistlab`` command (built without importing torch or any heavy module).

    Returns
    -------
    argparse.ArgumentParser
        Sub-commands train, evaluate, predict, read, data, models and figures; a usage error prints
        one line and exits with code 2.
    """
    raw = argparse.RawDescriptionHelpFormatter
    p = _Parser(prog="mnistlab", description="MNIST experiments from the command line. "
                                             "`mnistlab COMMAND --help` describes each command.")
    p.add_argument("--debug", action="store_true", help="on an error, show the traceback instead of one line "
                                                         "(also MNISTLAB_DEBUG=1)")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    t = sub.add_parser("train", help="train a recipe (any setting overridable) and save its checkpoint and history",
                       description="Train a recipe (a named TrainConfig); every flag overrides one of its settings. "
                                   "Defaults shown are the fast recipe's. Writes FOLDER/model.pt (the model, its "
                                   "settings and history) and FOLDER/history.csv, replacing a previous run's only "
                                   "once both are written.")
    t.add_argument("--recipe", default="fast", choices=_RECIPE_NAMES,
                   help=f"named TrainConfig to start from: {', '.join(_RECIPE_NAMES)} (default: fast)")
    for name in _CONFIG_FLAGS:
        text, fast = _TRAIN_FIELDS[name]
        t.add_argument(f"--{name.replace('_', '-')}", *_ALIASES.get(name, ()), dest=name, default=argparse.SUPPRESS,
                       type=_FLAG_TYPES.get(name, _json_or_str(name)), metavar=name.upper(),
                       help=f"{text} (default: the recipe's; fast: {fast})".replace("%", "%%"))
    t.add_argument("--seed", type=_seed, default=0, help="seeds weights, data order, augmentation and dropout (default: 0)")
    t.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps (default: auto)")
    t.add_argument("--out", default="runs/latest", metavar="FOLDER",
                   help="folder for model.pt and history.csv (default: runs/latest)")
    t.add_argument("--quiet", action="store_true", help="no progress bars")
    t.set_defaults(func=_cmd_train)

    e = sub.add_parser("evaluate", help="accuracy and loss of a checkpoint",
                       description="Accuracy and loss of a checkpoint on a dataset's test (or train) split.")
    e.add_argument("checkpoint", metavar="CKPT", help="a checkpoint file, or a run folder holding model.pt")
    e.add_argument("--dataset", default=None, help="dataset to evaluate on (default: the one the model was trained on)")
    e.add_argument("--split", default="test", choices=["train", "test"], help="which split (default: test)")
    e.add_argument("--limit", type=_positive_int, default=None, metavar="N", help="the first N images only")
    e.set_defaults(func=_cmd_evaluate)

    for name, func in (("predict", _cmd_predict), ("read", _cmd_read)):
        help_, description, epilog = _READ_HELP[name]
        pr = sub.add_parser(name, help=help_, description=description, epilog=epilog, formatter_class=raw)
        pr.add_argument("inputs", nargs="+", metavar="[CKPT] IMAGE",
                        help="the image files, optionally preceded (or followed) by a checkpoint or run folder")
        pr.add_argument("--checkpoint", default=None, metavar="CKPT",
                        help="the model: a checkpoint file or a run folder (default: CKPT among the inputs, "
                             "else the shipped pretrained model)")
        pr.add_argument("--show", action="store_true",
                        help="write what the model saw (28x28 per digit) beside each image, as NAME.28x28.png")
        pr.add_argument("--unsure-below", type=_probability, default=0.8, metavar="P",
                        help="warn when a digit's probability is under P (default 0.8)")
        pr.set_defaults(func=func)

    d = sub.add_parser("data", help="where the data is and whether every file is present and sound",
                       description="Where the data is (--root, else $MNISTLAB_DATA, else ~/.cache/mnistlab/data) "
                                   "and whether every file is present and sound. Exit code 1 when a required "
                                   "file is missing or bad.")
    d.add_argument("--dataset", default="all", help=f"{', '.join(_FILE_DATASETS)} or all (default: all; with all "
                                                    "only MNIST is required, the others are optional)")
    d.add_argument("--root", default=None, metavar="FOLDER",
                   help="the data folder, holding MNIST/raw/... (default: $MNISTLAB_DATA)")
    d.set_defaults(func=_cmd_data)

    m = sub.add_parser("models", help="list the model registry",
                       description="List the model registry: each network's name, size and description.")
    m.set_defaults(func=_cmd_models)

    notebooks = _notebook_names()
    f = sub.add_parser("figures", help="execute the notebooks and regenerate figures/", formatter_class=raw,
                       description="""\
Execute the notebooks in order with papermill and regenerate their figures:
each notebook's files go to FOLDER/<notebook>/ (replacing the old ones only
when the notebook succeeded) and FOLDER/manifest.json records, per figure, the
notebook, its parameters, the package version, the git commit, the seconds it
took and the key numbers it computed. Executed copies go to notebooks/executed/.
Prints one line per notebook run: its number of files and seconds.""",
                       epilog=textwrap.fill("notebooks: " + (", ".join(notebooks) or "none found (run inside "
                                                                                     "the checkout)"), 79) +
                              "\n\nexample: mnistlab figures --only 01,02 --quick")
    f.add_argument("--quick", action="store_true",
                   help="QUICK mode: small data, every code path, well under a minute per notebook")
    f.add_argument("--only", default=None, metavar="NN[,NN...]",
                   help="run only these notebooks, by number or name, comma-separated (e.g. 01,02; default: all)")
    f.add_argument("--dataset", default="mnist", help="the DATASET parameter: mnist or fashion-mnist (default: mnist)")
    f.add_argument("--seed", type=_seed, default=0, help="the SEED parameter (default: 0)")
    f.add_argument("--device", default="auto", help="the DEVICE parameter: auto, cpu, cuda, cuda:N or mps "
                                                    "(default: auto)")
    f.add_argument("--out", default=None, metavar="FOLDER",
                   help="figures folder (default: figures/ in the checkout; with --quick build/figures-quick/)")
    f.add_argument("--jobs", "-j", type=_jobs, default=1, metavar="N",
                   help="notebooks at a time, each on its own share of the cores (default 1; auto: one per core); "
                        "for QUICK runs and --out folders, never the main job")
    f.add_argument("--param", "-p", action="append", type=_notebook_param, metavar="NAME=VALUE",
                   help="another notebook parameter, e.g. -p RESULTS=saved (VALUE read as JSON when it parses)")
    f.set_defaults(func=_cmd_figures)
    return p


#: error types printed as one line; looked up among the modules already loaded (none is imported to check)
_ONE_LINE_ERRORS = (("mnistlab.data.datasets", "DataError"), ("mnistlab.training.checkpoint", "CheckpointError"),
                    ("mnistlab.training.loop", "TrainingError"), ("mnistlab.runner", "NotebookError"))


def _one_line(exc: Exception) -> str | None:
    """The one-line message for an expected error (bad input, files, a diverging run); ``None`` for a bug."""
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(exc, getattr(torch, "OutOfMemoryError", ())):
        return "out of memory; lower --batch-size or use a smaller model."
    known = [OSError, ValueError, TypeError]
    known += [getattr(sys.modules[m], n) for m, n in _ONE_LINE_ERRORS if hasattr(sys.modules.get(m), n)]
    return " ".join(str(exc).split()) if isinstance(exc, tuple(known)) else None


def main(argv=None) -> int:
    """Entry point of the ``mnistlab`` console script (and of ``python -m mnistlab``).

    Parameters
    ----------
    argv : list of str, optional
        The arguments (default ``sys.argv[1:]``).

    Returns
    -------
    int
        0 on success; 1 when ``data`` finds bad files or ``predict`` could not read some of its
        images (the others are predicted); 2 for an error: the package's own errors (bad data,
        bad checkpoints, a diverging run, invalid settings, files that cannot be read or
        written) print one line to stderr, and ``--debug`` or ``MNISTLAB_DEBUG=1`` shows the
        traceback instead; 130 when interrupted with Ctrl-C (at any moment, imports included).
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    debug = "--debug" in argv or os.environ.get("MNISTLAB_DEBUG", "") not in ("", "0")
    argv = [a for a in argv if a != "--debug"]
    try:
        args = build_parser().parse_args(argv)
        args.argv = argv
        return args.func(args)  # imports what the command needs: Ctrl-C during those seconds lands below
    except BrokenPipeError:  # `mnistlab models | head`
        return 0
    except KeyboardInterrupt:
        if debug:
            raise
        print("error: interrupted; files already written are complete (every save is atomic).", file=sys.stderr)
        return 130
    except Exception as exc:
        message = None if debug else _one_line(exc)
        if message is None:
            raise
        print(f"error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
