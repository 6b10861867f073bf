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
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import torch


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


def _data(test_images: int):
    from mnistlab.data import DataError, load_dataset

    try:
        return load_dataset("mnist", "train"), load_dataset("mnist", "test", limit=test_images), "MNIST"
    except DataError as exc:
        from mnistlab.data.sklearn_digits import load_sklearn_digits

        print(f"MNIST not found ({str(exc)[:120]}...); using scikit-learn's digits instead", flush=True)
        return load_sklearn_digits("train"), load_sklearn_digits("test"), "scikit-learn digits"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="auto")
    p.add_argument("--size", type=int, default=112, help="ResNet input side in pixels (notebook: 112 on a GPU)")
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--labels", default="10,100,1000,all", help="labels per class, comma-separated ('all' = pool)")
    p.add_argument("--test-images", type=int, default=2000)
    p.add_argument("--budget", type=float, default=270.0, help="start no new seed after this many seconds")
    args = p.parse_args(argv)

    from mnistlab.studies import transfer as tr
    from mnistlab.training.loop import resolve_device

    t0 = time.perf_counter()
    device = resolve_device(args.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        print(f"device: {torch.cuda.get_device_name(0)}, torch {torch.__version__}", flush=True)
    else:
        print(f"device: {device} ({torch.get_num_threads()} threads), torch {torch.__version__}", flush=True)
    print(_ensure_weights(), flush=True)
    train, test, data_name = _data(args.test_images)
    labels = [None if v.strip() == "all" else int(v) for v in args.labels.split(",")]
    # the notebook's full-mode recipe (the defaults) and its GPU strategies; on a GPU, fit runs under bfloat16
    # autocast with channels-last
    recipe = tr.TransferRecipe()
    strategies = [tr.LINEAR_PROBE, tr.FROZEN, tr.FINE_TUNE, tr.SCRATCH]
    resnet = tr.imagenet_resnet18(10, size=args.size, seed=0)
    print(f"{data_name}: pool {len(train):,}, test {len(test):,}; ResNet-18 at {args.size}x{args.size}; "
          f"labels per class {args.labels}; recipe {recipe}", flush=True)

    warm = time.perf_counter()
    tr.run_transfer(resnet, tr.few_labels(train, 2, 0), test.head(256), task="warm-up", strategies=[tr.FINE_TUNE],
                    labels_per_class=[None], seeds=[0], recipe=recipe.but(steps=5, max_steps=5), device=device,
                    cache=False, progress=False)
    print(f"warm-up (cuDNN autotuning, first kernels): {time.perf_counter() - warm:.1f} s", flush=True)

    frames = []
    import pandas as pd

    for seed in range(args.seeds):
        if seed and time.perf_counter() - t0 > args.budget:
            print(f"budget of {args.budget:.0f} s reached: stopping after {seed} seed(s)", flush=True)
            break
        ts = time.perf_counter()
        df = tr.run_transfer(resnet, train, test, task=f"ImageNet ResNet-18 -> {data_name}", strategies=strategies,
                             labels_per_class=labels, seeds=[seed], recipe=recipe, device=device, cache=False,
                             progress=False)
        frames.append(df)
        print(f"seed {seed}: {time.perf_counter() - ts:.1f} s wall for {len(df)} runs", flush=True)
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
    print(f"total: {time.perf_counter() - t0:.1f} s (training {runs['train_seconds'].sum():.1f} s)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
