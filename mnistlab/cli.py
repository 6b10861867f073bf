"""The ``mnistlab`` command: train, evaluate, predict, data, models, figures."""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

__all__ = ["main", "build_parser"]


def _train_config(args):
    """The run's TrainConfig: the recipe, with every flag the user gave applied on top."""
    from mnistlab.training.recipes import get_recipe

    changes = {}
    for name in _CONFIG_FLAGS:
        value = getattr(args, name, None)
        if value is not None:
            changes[name] = value
    changes.setdefault("name", f"{args.recipe} recipe (cli)" if changes else get_recipe(args.recipe).name)
    return get_recipe(args.recipe, **changes)


def _cmd_train(args) -> int:
    import mnistlab as ml

    cfg = _train_config(args)  # validated here, before any data is read or any file written
    if cfg.epochs < 1:
        raise ValueError(f"--epochs must be a whole number >= 1, not {cfg.epochs}.")
    device = ml.resolve_device(args.device)
    train = ml.load_dataset(cfg.dataset, "train", limit=cfg.train_limit)
    test = ml.load_dataset(cfg.dataset, "test", limit=cfg.test_limit)
    model = cfg.build_model(args.seed)
    print(f"Training {cfg.model} ({ml.count_parameters(model):,} parameters) on {len(train):,} {cfg.dataset} images "
          f"for {cfg.epochs} epochs on {device} (recipe {args.recipe!r})")
    model, history = ml.train_model(cfg, train, test, seed=args.seed, device=device, progress=not args.quiet)
    result = ml.evaluate(model, test)
    out = Path(args.out)
    # the checkpoint holds the history too, so its files always agree; history.csv is written after it
    ckpt = ml.save_checkpoint(out / "model.pt", model, config=cfg, history=history,
                              metrics={"test_acc": result["acc"], "test_loss": result["loss"]},
                              seed=args.seed, command=" ".join(["mnistlab", *args.argv]))
    from mnistlab.training.checkpoint import atomic_write

    atomic_write(out / "history.csv", lambda fh: fh.write(history.to_csv(index=False).encode()))
    print(history.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    print(f"test accuracy {result['acc']:.4f}  test loss {result['loss']:.4f}  "
          f"training time {history['seconds'].sum():.1f} s")
    print(f"saved {ckpt} and {out / 'history.csv'}")
    return 0


def _cmd_evaluate(args) -> int:
    import mnistlab as ml

    ckpt = ml.load_checkpoint(args.checkpoint)
    if args.limit is not None and args.limit < 1:
        raise ValueError(f"--limit must be a whole number >= 1, not {args.limit}.")
    data = ml.load_dataset(args.dataset or ckpt.dataset, args.split, limit=args.limit)
    result = ml.evaluate(ckpt.model, data)
    print(f"{args.checkpoint}: {ckpt.name} on {len(data):,} {data.dataset} {args.split} images: "
          f"accuracy {result['acc']:.4f}, loss {result['loss']:.4f}")
    return 0


def _cmd_predict(args) -> int:
    import mnistlab as ml
    from mnistlab.data.images import load_images
    from mnistlab.training.checkpoint import is_checkpoint

    paths = list(args.inputs)
    checkpoint = args.checkpoint
    if checkpoint is None and paths and (Path(paths[0]).suffix.lower() in (".pt", ".pth", ".ckpt")
                                         or is_checkpoint(paths[0])):
        checkpoint, paths = paths[0], paths[1:]  # `mnistlab predict CKPT IMAGE...`
    if not paths:
        print("error: give at least one image", file=sys.stderr)
        return 2
    if checkpoint is None:
        from mnistlab.training.pretrained import load_pretrained

        model = load_pretrained()
    else:
        model = ml.load_checkpoint(checkpoint).model
    classes = ml.dataset_info(model.preprocessing.dataset).classes
    images = ml.as_imageset(load_images(paths))
    probs = ml.predict(model, images)
    for path, p in zip(paths, probs):
        k = int(p.argmax())
        top = ", ".join(f"{classes[j]}:{p[j]:.3f}" for j in p.argsort()[::-1][:3])
        print(f"{path}\t{classes[k]}\t{p[k]:.4f}\t(top 3: {top})")
    return 0


def _cmd_data(args) -> int:
    import mnistlab as ml

    names = list(ml.DATASETS) if args.dataset == "all" else [args.dataset]
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
                                 device=args.device, figures_dir=args.out)
    except NotebookError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for name, entry in manifest["notebooks"].items():
        print(f"{name}: {len(entry['figures'])} files in {entry['seconds']:.0f} s")
    return 0


_CONFIG_FLAGS = ("model", "model_kwargs", "dataset", "epochs", "batch_size", "lr", "optimizer", "scheduler", "gamma",
                 "momentum", "weight_decay", "label_smoothing", "normalize", "augment", "train_limit", "test_limit")
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


def _finite_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


_FLAG_TYPES = {"epochs": _positive_int, "batch_size": _positive_int, "train_limit": _positive_int,
               "test_limit": _positive_int, "lr": _finite_float, "gamma": _finite_float, "momentum": _finite_float,
               "weight_decay": _finite_float, "label_smoothing": _finite_float}


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``mnistlab`` command."""
    from mnistlab.training.config import TrainConfig
    from mnistlab.training.recipes import RECIPES

    p = argparse.ArgumentParser(prog="mnistlab", description="MNIST experiments from the command line.")
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train a recipe (any setting overridable) and save its checkpoint and history",
                       description="Train a recipe (a named TrainConfig); every flag overrides one of its settings. "
                                   "Defaults shown are the fast recipe's.")
    t.add_argument("--recipe", default="fast", choices=sorted(RECIPES), help="named TrainConfig to start from")
    fields, fast = TrainConfig.fields_help(), RECIPES["fast"].to_dict()
    for name in _CONFIG_FLAGS:
        text = fields[name][1]
        t.add_argument(f"--{name.replace('_', '-')}", *_ALIASES.get(name, ()), dest=name, default=None,
                       type=_FLAG_TYPES.get(name, _json_or_str(name)), metavar=name.upper(),
                       help=f"{text} (default: the recipe's; fast: {json.dumps(fast[name])})")
    t.add_argument("--seed", type=int, default=0, help="seeds weights, data order, augmentation and dropout (default: 0)")
    t.add_argument("--device", default="auto", help="auto, cpu, cuda or mps (default: auto)")
    t.add_argument("--out", default="runs/latest", help="folder for model.pt and history.csv (default: runs/latest)")
    t.add_argument("--quiet", action="store_true", help="no progress bars")
    t.set_defaults(func=_cmd_train)

    e = sub.add_parser("evaluate", help="accuracy and loss of a checkpoint")
    e.add_argument("checkpoint")
    e.add_argument("--dataset", default=None)
    e.add_argument("--split", default="test", choices=["train", "test"])
    e.add_argument("--limit", type=int, default=None)
    e.set_defaults(func=_cmd_evaluate)

    pr = sub.add_parser("predict", help="classify image files (any size or colour)",
                        description="mnistlab predict [CKPT] IMAGE...  (without CKPT: the shipped pretrained model)")
    pr.add_argument("inputs", nargs="+", metavar="[CKPT] IMAGE")
    pr.add_argument("--checkpoint", default=None)
    pr.set_defaults(func=_cmd_predict)

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
    f.add_argument("--seed", type=int, default=0)
    f.add_argument("--device", default="auto")
    f.add_argument("--out", default=None, help="figures folder (default: figures/)")
    f.set_defaults(func=_cmd_figures)
    return p


def main(argv=None) -> int:
    """Entry point of the ``mnistlab`` console script.

    The package's own errors (bad data, bad checkpoints, a diverging run, invalid settings) print
    one line to stderr and exit with code 2; ``--debug`` or ``MNISTLAB_DEBUG=1`` shows the traceback.
    """
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
    except (DataError, CheckpointError, TrainingError, NotebookError, FileNotFoundError, PermissionError, ValueError,
            TypeError) as exc:
        if debug:
            raise
        message = " ".join(str(exc).split())  # one line
        print(f"error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
