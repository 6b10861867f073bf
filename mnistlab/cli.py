"""The ``mnistlab`` command: train, evaluate, predict, data, models, figures."""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

__all__ = ["main", "build_parser"]


def _cmd_train(args) -> int:
    import mnistlab as ml

    train = ml.load_dataset(args.dataset, "train", limit=args.limit)
    test = ml.load_dataset(args.dataset, "test", limit=args.test_limit)
    kwargs = json.loads(args.model_kwargs) if args.model_kwargs else {}
    model = ml.create_model(args.model, seed=args.seed, **kwargs)
    augment = ml.Augment() if args.augment else None
    print(f"Training {args.model} ({ml.count_parameters(model):,} parameters) on {len(train):,} "
          f"{args.dataset} images for {args.epochs} epochs on {ml.resolve_device(args.device)}")
    history = ml.fit(model, train, test, epochs=args.epochs, optimizer=args.optimizer, lr=args.learning_rate,
                     batch_size=args.batch_size, scheduler=args.scheduler, weight_decay=args.weight_decay,
                     label_smoothing=args.label_smoothing, augment=augment, device=args.device, seed=args.seed,
                     progress=not args.quiet)
    result = ml.evaluate(model, test)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    history.to_csv(out / "history.csv", index=False)
    ckpt = ml.save_checkpoint(out / "model.pt", model, dataset=args.dataset, history=history,
                              metrics={"test_acc": result["acc"], "test_loss": result["loss"]},
                              command=" ".join(["mnistlab", *args.argv]))
    print(history.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    print(f"test accuracy {result['acc']:.4f}  test loss {result['loss']:.4f}  "
          f"training time {history['seconds'].sum():.1f} s")
    print(f"saved {ckpt} and {out / 'history.csv'}")
    return 0


def _cmd_evaluate(args) -> int:
    import mnistlab as ml

    ckpt = ml.load_checkpoint(args.checkpoint)
    data = ml.load_dataset(args.dataset or ckpt.dataset, args.split, limit=args.limit)
    result = ml.evaluate(ckpt.model, data)
    print(f"{args.checkpoint}: {ckpt.name} on {len(data):,} {data.dataset} {args.split} images: "
          f"accuracy {result['acc']:.4f}, loss {result['loss']:.4f}")
    return 0


def _cmd_predict(args) -> int:
    import mnistlab as ml
    from mnistlab.images import load_images

    paths = list(args.inputs)
    checkpoint = args.checkpoint
    if checkpoint is None and paths and Path(paths[0]).suffix in (".pt", ".pth", ".ckpt"):
        checkpoint, paths = paths[0], paths[1:]  # `mnistlab predict CKPT IMAGE...`
    if not paths:
        print("error: give at least one image", file=sys.stderr)
        return 2
    if checkpoint is None:
        from mnistlab.pretrained import load_pretrained

        model = load_pretrained()
    else:
        model = ml.load_checkpoint(checkpoint).model
    classes = ml.dataset_info(getattr(model, "dataset", "mnist")).classes
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
    from mnistlab.figures import NotebookError, run_notebooks

    try:
        manifest = run_notebooks(only=args.only, quick=args.quick, dataset=args.dataset, seed=args.seed,
                                 device=args.device, figures_dir=args.out)
    except NotebookError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for name, entry in manifest["notebooks"].items():
        print(f"{name}: {len(entry['figures'])} files in {entry['seconds']:.0f} s")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``mnistlab`` command."""
    p = argparse.ArgumentParser(prog="mnistlab", description="MNIST experiments from the command line.")
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train a model and save its checkpoint and history")
    t.add_argument("--model", default="fast")
    t.add_argument("--model-kwargs", default=None, help='JSON, e.g. \'{"activation": "relu"}\'')
    t.add_argument("--dataset", default="mnist")
    t.add_argument("--epochs", "--num-epochs", dest="epochs", type=int, default=2)
    t.add_argument("--batch-size", type=int, default=128)
    t.add_argument("--learning-rate", "--lr", dest="learning_rate", type=float, default=None)
    t.add_argument("--optimizer", default="nesterov")
    t.add_argument("--scheduler", default="onecycle", type=lambda s: None if s.lower() == "none" else s)
    t.add_argument("--weight-decay", type=float, default=0.0)
    t.add_argument("--label-smoothing", type=float, default=0.0)
    t.add_argument("--augment", action="store_true", help="random affine augmentation on whole batches")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--device", default="auto")
    t.add_argument("--limit", type=int, default=None, help="train on the first N images only")
    t.add_argument("--test-limit", type=int, default=None)
    t.add_argument("--out", default="runs/latest")
    t.add_argument("--quiet", action="store_true")
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
    """Entry point of the ``mnistlab`` console script."""
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    args.argv = argv
    from mnistlab.checkpoint import CheckpointError
    from mnistlab.data import DataError

    try:
        return args.func(args)
    except (DataError, CheckpointError, FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
