"""The ``mnistlab`` command: train, evaluate, predict, read, data, models, figures."""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path

__all__ = ["main", "build_parser"]


def _train_config(args):
    """The run's TrainConfig: the recipe, with every flag the user gave applied on top."""
    from mnistlab.training.recipes import get_recipe

    # flags left out are absent from args (default=SUPPRESS), so an explicit "none" (e.g.
    # `--scheduler none`) overrides the recipe instead of being mistaken for "not given"
    changes = {name: getattr(args, name) for name in _CONFIG_FLAGS if hasattr(args, name)}
    changes.setdefault("name", f"{args.recipe} recipe (cli)" if changes else get_recipe(args.recipe).name)
    return get_recipe(args.recipe, **changes)


def _check_out(out: Path) -> None:
    """The output folder exists (or is created) and is a folder, before any work starts."""
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is a file; give a folder for model.pt and history.csv.")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ValueError(f"--out {out} cannot be created ({exc.strerror or exc}); give another folder.") from None
    if not os.access(out, os.W_OK):
        raise ValueError(f"--out {out} is not writable; give another folder.")


_ONECYCLE_MIN_STEPS = 5
"""torch's OneCycleLR divides by zero unless its warm-up phase (a quarter of the steps here) exceeds one step."""


def _check_steps(cfg, n_train: int) -> None:
    """The one-cycle schedule needs a few optimizer steps (torch divides by zero otherwise)."""
    steps = cfg.epochs * math.ceil(n_train / cfg.batch_size)
    if cfg.scheduler == "onecycle" and steps < _ONECYCLE_MIN_STEPS:
        raise ValueError(f"--scheduler onecycle needs at least {_ONECYCLE_MIN_STEPS} optimizer steps, but "
                         f"{cfg.epochs} epoch(s) of "
                         f"{n_train} images in batches of {cfg.batch_size} make {steps}: raise --limit or --epochs, "
                         "lower --batch-size, or pass --scheduler none.")


def _cmd_train(args) -> int:
    import mnistlab as ml
    from mnistlab.training.checkpoint import atomic_write, clean_stale_temporaries

    cfg = _train_config(args)  # validated here, before any data is read or any file written
    if cfg.epochs < 1:
        raise ValueError(f"--epochs must be a whole number >= 1, not {cfg.epochs}.")
    device = ml.resolve_device(args.device)
    out = Path(args.out)
    _check_out(out)
    for name in ("model.pt", "history.csv"):  # what a run killed during its save left behind
        clean_stale_temporaries(out / name)
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
    print(f"Training {cfg.model} ({ml.count_parameters(model):,} parameters) on {len(train):,} {cfg.dataset} images "
          f"for {cfg.epochs} epochs on {device} (recipe {args.recipe!r})")
    model, history = ml.train_model(cfg, train, val, seed=args.seed, device=device, progress=not args.quiet)
    result = ml.evaluate(model, test)
    # The run's files must agree whenever the process dies: model.pt holds the history too and is
    # the record; the old history.csv goes first, so a kill between the two writes leaves the new
    # model.pt alone, never beside the previous run's history.csv. Each write is atomic.
    (out / "history.csv").unlink(missing_ok=True)
    ckpt = ml.save_checkpoint(out / "model.pt", model, config=cfg, history=history,
                              metrics={"test_acc": result["acc"], "test_loss": result["loss"]},
                              seed=args.seed, command=" ".join(["mnistlab", *args.argv]))
    atomic_write(out / "history.csv", lambda fh: fh.write(history.to_csv(index=False).encode()))
    print(history.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    print(f"test accuracy {result['acc']:.4f}  test loss {result['loss']:.4f}  "
          f"training time {history['seconds'].sum():.1f} s")
    print(f"saved {ckpt} and {out / 'history.csv'}")
    return 0


def _cmd_evaluate(args) -> int:
    import mnistlab as ml

    if args.limit is not None and args.limit < 1:
        raise ValueError(f"--limit must be a whole number >= 1, not {args.limit}.")
    if args.dataset is not None:
        ml.dataset_info(args.dataset)  # an unknown name fails before the checkpoint is read
    ckpt = ml.load_checkpoint(args.checkpoint)
    data = ml.load_dataset(args.dataset or ckpt.dataset, args.split, limit=args.limit)
    result = ml.evaluate(ckpt.model, data)
    print(f"{args.checkpoint}: {ckpt.name} on {len(data):,} {data.dataset} {args.split} images: "
          f"accuracy {result['acc']:.4f}, loss {result['loss']:.4f}")
    return 0


def _model_and_paths(args, usage: str):
    """The model (a checkpoint among the inputs, --checkpoint, or the shipped one) and the image paths."""
    import mnistlab as ml
    from mnistlab.training.checkpoint import is_checkpoint

    paths = list(args.inputs)
    checkpoint = args.checkpoint
    if checkpoint is None:  # `mnistlab predict CKPT IMAGE...`: a checkpoint is recognised by its content
        found = [p for p in paths if is_checkpoint(p)]
        if not found and Path(paths[0]).suffix.lower() in (".pt", ".pth", ".ckpt"):
            found = [paths[0]]  # an unreadable checkpoint still gets the checkpoint's error
        if len(found) > 1:
            raise ValueError(f"several checkpoints given ({', '.join(found)}); use one at a time.")
        if found:
            checkpoint = found[0]
            paths.remove(checkpoint)
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

    from mnistlab.training.checkpoint import atomic_write

    source = Path(path)
    out = source.with_name(f"{source.stem}.28x28.png")
    if out.resolve() == source.resolve():
        raise ValueError(f"{path}: --show would overwrite the input itself; rename it.")
    strip = 255 - np.concatenate([im.numpy() for im in images], axis=1)   # dark ink on white, as written
    atomic_write(out, lambda fh: Image.fromarray(strip.astype(np.uint8)).save(fh, format="PNG"))
    return str(out)


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
        try:
            reading = read(path, model, unsure_below=args.unsure_below)
        except (ValueError, FileNotFoundError, TypeError) as exc:
            failed[path] = " ".join(str(exc).split()).replace(path + ": ", "")
            print(f"{path}\t-\t-\t(not read: {failed[path]})")
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
        sound = sum(r["ok"] for r in report)
        print(f"{name}: {sound}/{len(report)} files sound" + ("" if name in required else " (optional)"))
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
    from mnistlab.runner import NotebookError, run_notebooks

    try:
        manifest = run_notebooks(only=args.only, quick=args.quick, dataset=args.dataset, seed=args.seed,
                                 device=args.device, figures_dir=args.out, extra=dict(args.param or []))
    except NotebookError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for name, entry in manifest["notebooks"].items():
        print(f"{name}: {len(entry['figures'])} files in {entry['seconds']:.0f} s")
    return 0


def _notebook_param(text: str) -> tuple[str, object]:
    """``NAME=VALUE`` -> (NAME, VALUE); VALUE is JSON when it parses (numbers, true/false), else text."""
    name, sep, value = text.partition("=")
    if not sep or not name.isidentifier():
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE with NAME a notebook parameter, got {text!r}")
    try:
        return name, json.loads(value)
    except json.JSONDecodeError:
        return name, value


_CONFIG_FLAGS = ("name", "model", "model_kwargs", "dataset", "epochs", "batch_size", "lr", "optimizer", "scheduler",
                 "gamma", "momentum", "weight_decay", "label_smoothing", "normalize", "augment", "train_limit",
                 "test_limit", "val", "split_seed", "early_stopping")
_ALIASES = {"lr": ("--learning-rate",), "epochs": ("--num-epochs",), "train_limit": ("--limit",)}


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


def _positive_int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None


def _seed(text: str) -> int:
    value = _positive_int(text)
    if not 0 <= value < 2**32:
        raise argparse.ArgumentTypeError(f"expected a whole number from 0 to {2**32 - 1}, got {text!r}")
    return value


def _probability(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"a probability between 0 and 1, got {text!r}")
    return value


def _finite_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if value != value or value in (float("inf"), float("-inf")):
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
               "weight_decay": _finite_float, "label_smoothing": _finite_float}


class _Parser(argparse.ArgumentParser):
    """argparse with a one-line error (the usage text is one ``--help`` away)."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {' '.join(message.split())} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``mnistlab`` command.

    Returns
    -------
    argparse.ArgumentParser
        Sub-commands train, evaluate, predict, read, data, models and figures; a usage error prints
        one line and exits with code 2.
    """
    from mnistlab.training.config import TrainConfig
    from mnistlab.training.recipes import RECIPES

    p = _Parser(prog="mnistlab", description="MNIST experiments from the command line.")
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train a recipe (any setting overridable) and save its checkpoint and history",
                       description="Train a recipe (a named TrainConfig); every flag overrides one of its settings. "
                                   "Defaults shown are the fast recipe's.")
    t.add_argument("--recipe", default="fast", choices=sorted(RECIPES), help="named TrainConfig to start from")
    fields, fast = TrainConfig.fields_help(), RECIPES["fast"].to_dict()
    for name in _CONFIG_FLAGS:
        text = fields[name][1]
        t.add_argument(f"--{name.replace('_', '-')}", *_ALIASES.get(name, ()), dest=name, default=argparse.SUPPRESS,
                       type=_FLAG_TYPES.get(name, _json_or_str(name)), metavar=name.upper(),
                       help=f"{text} (default: the recipe's; fast: {json.dumps(fast[name])})")
    t.add_argument("--seed", type=_seed, default=0, help="seeds weights, data order, augmentation and dropout (default: 0)")
    t.add_argument("--device", default="auto", help="auto, cpu, cuda or mps (default: auto)")
    t.add_argument("--out", default="runs/latest", help="folder for model.pt and history.csv (default: runs/latest)")
    t.add_argument("--quiet", action="store_true", help="no progress bars")
    t.set_defaults(func=_cmd_train)

    e = sub.add_parser("evaluate", help="accuracy and loss of a checkpoint")
    e.add_argument("checkpoint")
    e.add_argument("--dataset", default=None)
    e.add_argument("--split", default="test", choices=["train", "test"])
    e.add_argument("--limit", type=_positive_int, default=None)
    e.set_defaults(func=_cmd_evaluate)

    for name, func, help_, what in (
            ("predict", _cmd_predict, "read one digit per image file (a photo, a scan or a drawing; any size or colour)",
             "the digit, its probability, the top 3"),
            ("read", _cmd_read, "read a number of several digits per image file, left to right",
             "the number, its least sure digit's probability, each digit's")):
        pr = sub.add_parser(name, help=help_, description=(
            f"mnistlab {name} [CKPT] IMAGE...  (without CKPT: the shipped pretrained model). One line per image: "
            f"{what}, and a warning when the model is not sure, finds no digit or finds several."))
        pr.add_argument("inputs", nargs="+", metavar="[CKPT] IMAGE")
        pr.add_argument("--checkpoint", default=None)
        pr.add_argument("--show", action="store_true",
                        help="write what the model saw (28x28 per digit) beside each image, as NAME.28x28.png")
        pr.add_argument("--unsure-below", type=_probability, default=0.8, metavar="P",
                        help="warn when a digit's probability is under P (default 0.8)")
        pr.set_defaults(func=func)

    d = sub.add_parser("data", help="where the data is and whether every file is present and sound")
    d.add_argument("--dataset", default="all")
    d.add_argument("--root", default=None)
    d.set_defaults(func=_cmd_data)

    m = sub.add_parser("models", help="list the model registry")
    m.set_defaults(func=_cmd_models)

    f = sub.add_parser("figures", help="execute the notebooks and regenerate figures/")
    f.add_argument("--quick", action="store_true")
    f.add_argument("--only", default=None, help="e.g. 01,02")
    f.add_argument("--dataset", default="mnist")
    f.add_argument("--seed", type=_seed, default=0)
    f.add_argument("--device", default="auto")
    f.add_argument("--out", default=None, help="figures folder (default: figures/)")
    f.add_argument("--param", "-p", action="append", type=_notebook_param, metavar="NAME=VALUE",
                   help="another notebook parameter, e.g. -p RESULTS=saved (VALUE read as JSON when it parses)")
    f.set_defaults(func=_cmd_figures)
    return p


def main(argv=None) -> int:
    """Entry point of the ``mnistlab`` console script.

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
        traceback instead; 130 when interrupted with Ctrl-C.
    """
    import torch

    argv = sys.argv[1:] if argv is None else list(argv)
    debug = "--debug" in argv or os.environ.get("MNISTLAB_DEBUG", "") not in ("", "0")
    argv = [a for a in argv if a != "--debug"]
    args = build_parser().parse_args(argv)
    args.argv = argv
    from mnistlab.data.datasets import DataError
    from mnistlab.runner import NotebookError
    from mnistlab.training.checkpoint import CheckpointError
    from mnistlab.training.loop import TrainingError

    try:
        return args.func(args)
    except BrokenPipeError:  # `mnistlab models | head`
        return 0
    except KeyboardInterrupt:
        if debug:
            raise
        print("error: interrupted; files already written are complete (every save is atomic).", file=sys.stderr)
        return 130
    except torch.OutOfMemoryError:
        if debug:
            raise
        print("error: out of memory; lower --batch-size or use a smaller model.", file=sys.stderr)
        return 2
    except (DataError, CheckpointError, TrainingError, NotebookError, OSError, ValueError, TypeError) as exc:
        if debug:
            raise
        message = " ".join(str(exc).split())  # one line
        print(f"error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
