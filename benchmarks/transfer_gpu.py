"""Time notebook 08's ImageNet ResNet-18 -> MNIST section with its GPU settings (every strategy, 112-pixel inputs,
bfloat16 autocast) and print the timings and accuracies. Runs unattended::

    MNISTLAB_DATA=/path/to/data PYTHONPATH=. python benchmarks/transfer_gpu.py          # device "auto" (CUDA if present)
    PYTHONPATH=. python benchmarks/transfer_gpu.py --device cpu --size 32 --seeds 1 --labels 10 --budget 60   # anywhere

The ImageNet weights are taken from the torch hub cache only. When they are not there (the usual case on a lent
machine, which cannot download), the script writes a randomly initialised ResNet-18's weights under the file name
torchvision expects into a temporary ``TORCH_HOME`` and says so: the timings are then real, the accuracies are
those of random features. MNIST comes from ``$MNISTLAB_DATA``; without it the script falls back to scikit-learn's
bundled digits (converted to MNIST style), again saying so. Seeds run one after the other until ``--budget``
seconds have passed (default 270), so the whole script stays well under 6 minutes.

The reference measured in the same run is training from scratch: the ratio is fine-tuning's mean test
accuracy over scratch's at the fewest labels. ``--smoke``: 32-pixel inputs, one seed, 10 labels per
class from a pool of 500, 200 test images, 5 steps per run. Writes benchmarks/results/transfer_gpu.json.
"""
from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

import torch

from _common import Bench, fmt_s, parser, row


def _ensure_weights() -> str:
    """Use cached ImageNet weights, or put random ones in a temporary TORCH_HOME; return what was used."""
    from mnistlab.studies import transfer as tr

    if tr.imagenet_weights_available():
        return f"ImageNet weights from {tr.imagenet_weights_path()}"
    import torchvision

    home = Path(tempfile.mkdtemp(prefix="torch-home-"))
    os.environ["TORCH_HOME"] = str(home)
    path = tr.imagenet_weights_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    torch.save(torchvision.models.resnet18().state_dict(), path)
    return (f"RANDOM weights written to {path} (no ImageNet weights cached): timings are real, accuracies are "
            f"those of random features")


def _data(test_images: int, pool: int | None = None):
    from mnistlab.data import DataError, load_dataset

    try:
        return (load_dataset("mnist", "train", limit=pool), load_dataset("mnist", "test", limit=test_images),
                "MNIST")
    except DataError as exc:
        from mnistlab.data.sklearn_digits import load_sklearn_digits

        print(f"MNIST not found ({str(exc)[:120]}...); using scikit-learn's digits instead", flush=True)
        return load_sklearn_digits("train"), load_sklearn_digits("test"), "scikit-learn digits"


def main(argv=None) -> int:
    p = parser(__doc__, device="auto")
    p.add_argument("--size", type=int, default=112, help="ResNet input side in pixels (notebook: 112 on a GPU)")
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--labels", default="10,100,1000,all", help="labels per class, comma-separated ('all' = pool)")
    p.add_argument("--test-images", type=int, default=2000)
    p.add_argument("--budget", type=float, default=270.0, help="start no new seed after this many seconds")
    p.add_argument("--steps", type=int, default=None, help="steps per run (default: the notebook's recipe)")
    p.add_argument("--pool", type=int, default=None, help="the first N training images as the pool (default all)")
    args = p.parse_args(argv)
    if args.smoke:
        args.size, args.seeds, args.labels, args.test_images, args.steps, args.pool = 32, 1, "10", 200, 5, 500

    import pandas as pd

    from mnistlab.studies import transfer as tr
    from mnistlab.training.loop import resolve_device

    t0 = time.perf_counter()
    device = resolve_device(args.device)
    bench = Bench("transfer_gpu", args, device=device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    weights = _ensure_weights()
    print(weights, flush=True)
    train, test, data_name = _data(args.test_images, args.pool)
    labels = [None if v.strip() == "all" else int(v) for v in args.labels.split(",")]
    # the notebook's full-mode recipe (the defaults) and its GPU strategies; on a GPU, fit runs under bfloat16
    # autocast with channels-last
    config = tr.TRANSFER
    if args.steps is not None:
        config = config.but(min_steps=args.steps)
    strategies = [tr.LINEAR_PROBE, tr.FROZEN, tr.FINE_TUNE, tr.SCRATCH]
    resnet = tr.imagenet_resnet18(10, size=args.size, seed=0)
    print(f"{data_name}: pool {len(train):,}, test {len(test):,}; ResNet-18 at {args.size}x{args.size}; "
          f"labels per class {args.labels}; config {config}", flush=True)

    warm = time.perf_counter()
    tr.run_transfer(resnet, tr.few_labels(train, 2, 0), test.head(256), task="warm-up", strategies=[tr.FINE_TUNE],
                    labels_per_class=[None], seeds=[0], config=config.but(min_steps=5), device=device,
                    cache=False, progress=False)
    warm_s = time.perf_counter() - warm
    print(f"warm-up (cuDNN autotuning, first kernels): {warm_s:.1f} s", flush=True)

    frames, seed_seconds = [], []
    for seed in range(args.seeds):
        if seed and time.perf_counter() - t0 > args.budget:
            print(f"budget of {args.budget:.0f} s reached: stopping after {seed} seed(s)", flush=True)
            break
        ts = time.perf_counter()
        df = tr.run_transfer(resnet, train, test, task=f"ImageNet ResNet-18 -> {data_name}", strategies=strategies,
                             labels_per_class=labels, seeds=[seed], config=config, device=device, cache=False,
                             progress=False)
        frames.append(df)
        seed_seconds.append(time.perf_counter() - ts)
        print(f"seed {seed}: {seed_seconds[-1]:.1f} s wall for {len(df)} runs", flush=True)
    if not frames:
        print("no seed finished within the budget", flush=True)
        return 1
    runs = pd.concat(frames, ignore_index=True)
    table = runs.groupby(["strategy", "labels"], sort=False).agg(
        runs=("seed", "size"), test_acc=("test_acc", "mean"), train_s=("train_seconds", "mean"),
        steps=("steps", "mean")).reset_index()
    table["ms_per_step"] = 1000 * table["train_s"] / table["steps"].where(table["steps"] > 0)
    pd.set_option("display.width", 140)
    print(table.round(4).to_string(index=False))
    if runs["seed"].nunique() > 1:
        summary = tr.summarize_transfer(runs)
        print(summary[["strategy", "labels", "mean", "ci_low", "ci_high", "n"]].round(4).to_string(index=False))
    total = time.perf_counter() - t0
    print(f"total: {total:.1f} s (training {runs['train_seconds'].sum():.1f} s)", flush=True)

    fewest = str(min((v for v in labels if v is not None), default=None) or "all")
    acc = table.set_index(["strategy", "labels"])["test_acc"]
    fine, scratch = float(acc[(tr.FINE_TUNE, fewest)]), float(acc[(tr.SCRATCH, fewest)])
    ratio = fine / max(scratch, 1e-9)
    where = torch.cuda.get_device_name(0) if device.type == "cuda" else "CPU"
    random_weights = weights.startswith("RANDOM")
    readme = [row(f"notebook 08's ImageNet ResNet-18 -> {data_name} ({len(strategies)} strategies x "
                  f"{len(labels)} label counts, {args.size} px, {runs['seed'].nunique()} seed(s)) on {where}"
                  f"{' (random weights: no ImageNet weights cached)' if random_weights else ''}",
                  ours=f"fine-tuning at {fewest} labels per class: {fine:.2%}; {fmt_s(total)} in all "
                       f"({fmt_s(float(runs['train_seconds'].sum()))} of training)",
                  reference=f"training from scratch at {fewest} labels per class: {scratch:.2%}",
                  ratio=f"{ratio:.2f}x the accuracy")]
    bench.finish(measured={"data": data_name, "weights": weights, "random_weights": random_weights, "size": args.size,
                           "warmup_seconds": warm_s, "seed_seconds": seed_seconds, "total_seconds": total,
                           "train_seconds": float(runs["train_seconds"].sum()),
                           "table": table.to_dict(orient="records")},
                 ratio=ratio, ratio_means=f"fine-tuning's mean test accuracy / training from scratch's at {fewest} "
                                          "labels per class, same run; higher: transfer helps", table=readme)
    return 0


if __name__ == "__main__":
    sys.exit(main())
