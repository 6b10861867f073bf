"""Test accuracy of the ``best`` recipe over several seeds: per seed, mean, std and seconds.

Usage::

    MNISTLAB_DATA=/path/to/data python benchmarks/best_accuracy.py [--seeds 0 1 2] [--epochs N]
        [--width W] [--threads T] [--device cpu] [--smoke]

Seconds are training time only (per-epoch test evaluation, done for the log, is excluded). The
reference, evaluated in the same run on the same test images, is the shipped pretrained model
(``mnistlab.load_pretrained()``, the ``best`` recipe trained once); the ratio is our mean test
accuracy over its. Writes benchmarks/results/best_accuracy.json; ``--smoke``: 1,000 training and 500
test images, one epoch, one seed.
"""
from __future__ import annotations

import sys

import numpy as np

from _common import Bench, Stopwatch, fmt_s, parser, row


def main(argv=None) -> int:
    p = parser(__doc__, seed=None, device="cpu")
    p.add_argument("--recipe", default="best")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--epochs", type=int, default=None, help="override the recipe's epochs")
    p.add_argument("--width", type=int, default=None, help="override the model width")
    p.add_argument("--limit", type=int, default=None, help="train on the first N images")
    p.add_argument("--test-limit", type=int, default=None, help="test on the first N images")
    args = p.parse_args(argv)
    if args.smoke:
        args.limit, args.test_limit, args.epochs, args.seeds = 1000, 500, 1, [0]

    import mnistlab as ml
    from mnistlab.training.recipes import get_recipe, train_model

    bench = Bench("best_accuracy", args)
    overrides = {}
    if args.epochs is not None:
        overrides["epochs"] = args.epochs
    if args.width is not None:
        overrides["model_kwargs"] = {**get_recipe(args.recipe).model_kwargs, "width": args.width}
    recipe = get_recipe(args.recipe, **overrides)  # a TrainConfig
    train = ml.load_dataset("mnist", "train", limit=args.limit)
    test = ml.load_dataset("mnist", "test", limit=args.test_limit)
    print(f"recipe {args.recipe}: {recipe.recipe()}", flush=True)
    shipped = ml.load_pretrained(device=args.device)
    shipped_acc = float(ml.evaluate(shipped, test)["acc"])
    print(f"reference: the shipped model ({ml.pretrained_info()['file']}): test accuracy {shipped_acc:.4f}", flush=True)
    rows = []
    for seed in args.seeds:
        with Stopwatch(args.device) as sw:
            model, hist = train_model(recipe, train, test, seed=seed, device=args.device, progress=False)
        acc = ml.evaluate(model, test)["acc"]
        rows.append({"seed": seed, "test_acc": acc, "train_seconds": float(hist["seconds"].sum()),
                     "wall_seconds": sw.seconds, "per_epoch_test_acc": [round(v, 4) for v in hist["val_acc"]]})
        print(f"seed {seed}: test accuracy {acc:.4f}  training {rows[-1]['train_seconds']:.0f} s "
              f"(wall {sw.seconds:.0f} s)  per-epoch test acc {rows[-1]['per_epoch_test_acc']}", flush=True)
    accs = np.array([r["test_acc"] for r in rows])
    secs = np.array([r["train_seconds"] for r in rows])
    std = float(accs.std(ddof=1)) if len(accs) > 1 else 0.0
    print()
    print(f"{'seed':>6} {'test acc':>9} {'train s':>8}")
    for r in rows:
        print(f"{r['seed']:>6} {r['test_acc']:>9.4f} {r['train_seconds']:>8.0f}")
    print(f"{'mean':>6} {accs.mean():>9.4f} {secs.mean():>8.0f}")
    print(f"{'std':>6} {std:>9.4f} {secs.std(ddof=1) if len(secs) > 1 else 0.0:>8.0f}")
    print(f"target >= 0.9950 mean test accuracy: {'met' if accs.mean() >= 0.995 else 'NOT met'}  (min {accs.min():.4f})")
    ratio = float(accs.mean()) / shipped_acc
    table = [row(f"test accuracy of the `{args.recipe}` recipe ({recipe.epochs} epochs on {len(train):,} images), "
                 f"seeds {', '.join(map(str, args.seeds))}",
                 ours=f"**{accs.mean():.2%}** ± {std:.2%} ({', '.join(f'{a:.2%}' for a in accs)}); "
                      f"{fmt_s(float(secs.mean()))} of training per seed",
                 reference=f"the shipped pretrained model: {shipped_acc:.2%}",
                 ratio=f"{ratio:.4f} (target: mean >= 99.5%)")]
    bench.finish(measured={"recipe": recipe.to_dict(), "train_images": len(train), "test_images": len(test),
                           "runs": rows, "mean": float(accs.mean()), "std": std,
                           "mean_train_seconds": float(secs.mean()),
                           "reference": {"model": ml.pretrained_info()["file"], "test_acc": shipped_acc}},
                 ratio=ratio, ratio_means="our mean test accuracy / the shipped model's, same test images",
                 table=table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
