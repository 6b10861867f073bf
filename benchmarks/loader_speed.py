"""One epoch of MNIST train (60,000 images): mnistlab.TensorLoader versus torchvision + DataLoader.

Both are measured in the same run, so the ratio is meaningful even on a busy machine.
The reference is the pipeline of PyTorch's MNIST example::

    datasets.MNIST(root, transform=Compose([ToTensor(), Normalize((0.1307,), (0.3081,))]))
    DataLoader(dataset, batch_size=64, shuffle=True, num_workers=W)

Each batch is touched (``x.sum()``) so lazy work cannot hide. Times are the best of
``--repeats`` epochs (default 1 for the slow reference, 3 for ours).

Usage::

    MNISTLAB_DATA=/path/to/data python benchmarks/loader_speed.py [--workers 0 2] [--threads 1]
"""
from __future__ import annotations

import argparse
import os
import time

import torch


def _epoch(iterable) -> tuple[float, int]:
    """Seconds to iterate ``iterable`` once, and the number of images seen."""
    n = 0
    acc = 0.0
    t0 = time.perf_counter()
    for x, y in iterable:
        acc += float(x.sum())  # touch the data
        n += len(y)
    return time.perf_counter() - t0, n


def _best_of(make_iter, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        dt, n = _epoch(make_iter())
        assert n == 60000, n
        times.append(dt)
    return min(times)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--workers", type=int, nargs="+", default=[0, 2], help="num_workers values for the reference")
    p.add_argument("--repeats", type=int, default=3, help="epochs per mnistlab configuration (best is kept)")
    p.add_argument("--ref-repeats", type=int, default=1, help="epochs per reference configuration")
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's choice)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)

    import torchvision.datasets as tvd
    import torchvision.transforms as T
    from torch.utils.data import DataLoader

    import mnistlab as ml

    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    root = str(ml.data_root())
    load = os.getloadavg()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs, "
          f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")

    train = ml.load_dataset("mnist", "train")  # read once; the loader measurement starts from memory
    rows = []  # (pipeline, batch, workers/aug, seconds)
    for bs in (64, 128):
        for aug in (None, ml.Augment()):
            loader = ml.TensorLoader(train, batch_size=bs, shuffle=True, normalize="standard", augment=aug,
                                     seed=args.seed)
            rows.append(("mnistlab TensorLoader", bs, "augment" if aug else "-", _best_of(lambda: loader, args.repeats)))
            print(f"  measured {rows[-1]}", flush=True)

    tf = T.Compose([T.ToTensor(), T.Normalize((0.1307,), (0.3081,))])
    ds = tvd.MNIST(root, train=True, transform=tf, download=False)
    ref = {}
    for w in args.workers:
        def make(w=w):
            return DataLoader(ds, batch_size=64, shuffle=True, num_workers=w)
        ref[w] = _best_of(make, args.ref_repeats)
        rows.append(("torchvision + DataLoader", 64, f"workers={w}", ref[w]))
        print(f"  measured {rows[-1]}", flush=True)

    fastest_ref = min(ref.values())
    print()
    print(f"{'pipeline':<26} {'batch':>5} {'options':<10} {'seconds':>8} {'img/s':>10} {'x faster than best ref':>23}")
    print("-" * 87)
    for name, bs, opt, sec in rows:
        print(f"{name:<26} {bs:>5} {opt:<10} {sec:>8.3f} {60000 / sec:>10,.0f} {fastest_ref / sec:>23.1f}")
    ours = [sec for name, _, opt, sec in rows if name.startswith("mnistlab")]
    ours_plain = [sec for name, _, opt, sec in rows if name.startswith("mnistlab") and opt == "-"]
    load = os.getloadavg()
    print(f"\nbest reference (workers={min(ref, key=ref.get)}): {fastest_ref:.2f} s;  "
          f"mnistlab without augmentation is {fastest_ref / max(ours_plain):.0f}x to {fastest_ref / min(ours_plain):.0f}x "
          f"faster, with augmentation {fastest_ref / max(ours):.0f}x or more.")
    ok = fastest_ref / max(ours_plain) >= 20
    print(f"requirement (plain TensorLoader >= 20x faster than the best reference): {'met' if ok else 'NOT met'}")
    print(f"load average at the end {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
