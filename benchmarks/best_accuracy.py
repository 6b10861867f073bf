"""Test accuracy of the ``best`` recipe over several seeds: per seed, mean, std and seconds.

Usage::

    MNISTLAB_DATA=/path/to/data python benchmarks/best_accuracy.py [--seeds 0 1 2] [--epochs N]
        [--width W] [--threads T] [--device cpu]

Seconds are training time only (per-epoch test evaluation, done for the log, is excluded).
"""
from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np
import torch


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--recipe", default="best")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--epochs", type=int, default=None, help="override the recipe's epochs")
    p.add_argument("--width", type=int, default=None, help="override the model width")
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's choice)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--limit", type=int, default=None, help="train on the first N images (smoke test)")
    p.add_argument("--json", default=None, help="also write the results to this JSON file")
    args = p.parse_args(argv)

    import mnistlab as ml
    from mnistlab.training.recipes import get_recipe, train_model

    if args.threads:
        torch.set_num_threads(args.threads)
    overrides = {}
    if args.epochs is not None:
        overrides["epochs"] = args.epochs
    if args.width is not None:
        overrides["model_kwargs"] = {**get_recipe(args.recipe)["model_kwargs"], "width": args.width}
    recipe = get_recipe(args.recipe, **overrides)
    train = ml.load_dataset("mnist", "train", limit=args.limit)
    test = ml.load_dataset("mnist", "test")
    load0 = os.getloadavg()
    print(f"recipe {args.recipe}: {json.dumps({k: v for k, v in recipe.items() if k != 'description'})}")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {args.device}, "
          f"load average {load0[0]:.2f} {load0[1]:.2f} {load0[2]:.2f}", flush=True)
    rows = []
    for seed in args.seeds:
        t0 = time.perf_counter()
        model, hist = train_model(get_recipe(args.recipe, **overrides), train, test, seed=seed, device=args.device)
        wall = time.perf_counter() - t0
        acc = ml.evaluate(model, test)["acc"]
        rows.append({"seed": seed, "test_acc": acc, "train_seconds": float(hist["seconds"].sum()), "wall_seconds": wall,
                     "per_epoch_test_acc": [round(v, 4) for v in hist["val_acc"]]})
        print(f"seed {seed}: test accuracy {acc:.4f}  training {rows[-1]['train_seconds']:.0f} s "
              f"(wall {wall:.0f} s)  per-epoch test acc {rows[-1]['per_epoch_test_acc']}  "
              f"load {os.getloadavg()[0]:.2f}", flush=True)
    accs = np.array([r["test_acc"] for r in rows])
    secs = np.array([r["train_seconds"] for r in rows])
    load1 = os.getloadavg()
    print()
    print(f"{'seed':>6} {'test acc':>9} {'train s':>8}")
    for r in rows:
        print(f"{r['seed']:>6} {r['test_acc']:>9.4f} {r['train_seconds']:>8.0f}")
    std = accs.std(ddof=1) if len(accs) > 1 else 0.0
    print(f"{'mean':>6} {accs.mean():>9.4f} {secs.mean():>8.0f}")
    print(f"{'std':>6} {std:>9.4f} {secs.std(ddof=1) if len(secs) > 1 else 0.0:>8.0f}")
    print(f"target >= 0.9950 mean test accuracy: {'met' if accs.mean() >= 0.995 else 'NOT met'}  "
          f"(min {accs.min():.4f}); load average {load0[0]:.2f} at start, {load1[0]:.2f} at end")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"recipe": {k: v for k, v in recipe.items()}, "runs": rows, "mean": float(accs.mean()),
                       "std": float(std), "torch": torch.__version__, "threads": torch.get_num_threads(),
                       "load_start": load0, "load_end": load1}, fh, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
