"""One epoch of MNIST train (60,000 images): mnistlab.TensorLoader versus torchvision + DataLoader.

Both are measured in the same run, so the ratio is meaningful even on a busy machine.
The reference is the pipeline of PyTorch's MNIST example::

    datasets.MNIST(root, transform=Compose([ToTensor(), Normalize((0.1307,), (0.3081,))]))
    DataLoader(dataset, batch_size=64, shuffle=True, num_workers=W)

Each batch is touched (``x.sum()``) so lazy work cannot hide. Times are the best of
``--repeats`` epochs (default 1 for the slow reference, 3 for ours).

Usage::

    MNISTLAB_DATA=/path/to/data python benchmarks/loader_speed.py [--workers 0 2] [--threads 1] [--smoke]

Writes benchmarks/results/loader_speed.json. ``--smoke``: 2,000 images, one repeat, workers 0 only.
"""
from __future__ import annotations

import sys

import torch

from _common import Bench, best_of, fmt_s, fmt_x, parser, row


def touch_all(iterable) -> int:
    """Iterate once, touching every batch; the number of images seen."""
    n = 0
    acc = 0.0
    for x, y in iterable:
        acc += float(x.sum())  # touch the data
        n += len(y)
    return n


def main(argv=None) -> int:
    p = parser(__doc__)
    p.add_argument("--workers", type=int, nargs="+", default=[0, 2], help="num_workers values for the reference")
    p.add_argument("--repeats", type=int, default=3, help="epochs per mnistlab configuration (best is kept)")
    p.add_argument("--ref-repeats", type=int, default=1, help="epochs per reference configuration")
    p.add_argument("--limit", type=int, default=None, help="the first N training images (default all 60,000)")
    args = p.parse_args(argv)
    if args.smoke:
        args.limit, args.repeats, args.ref_repeats, args.workers = 2000, 1, 1, [0]

    import torchvision.datasets as tvd
    import torchvision.transforms as T
    from torch.utils.data import DataLoader, Subset

    import mnistlab as ml

    bench = Bench("loader_speed", args)
    torch.manual_seed(args.seed)
    train = ml.load_dataset("mnist", "train", limit=args.limit)  # read once; the measurement starts from memory
    n = len(train)

    def epoch(make_iter):
        def run():
            assert touch_all(make_iter()) == n
        return run

    ours = []  # (batch, augment, seconds)
    for bs in (64, 128):
        for aug in (None, ml.Augment()):
            loader = ml.TensorLoader(train, batch_size=bs, shuffle=True, normalize="standard", augment=aug,
                                     seed=args.seed)
            best, _ = best_of(epoch(lambda loader=loader: loader), args.repeats)
            ours.append({"batch": bs, "augment": aug is not None, "seconds": best})
            print(f"  mnistlab TensorLoader, batch {bs}, {'augment' if aug else 'plain'}: {best:.3f} s", flush=True)

    tf = T.Compose([T.ToTensor(), T.Normalize((0.1307,), (0.3081,))])
    ds = tvd.MNIST(str(ml.data_root()), train=True, transform=tf, download=False)
    if args.limit is not None:
        ds = Subset(ds, range(n))
    ref = []
    for w in args.workers:
        best, _ = best_of(epoch(lambda w=w: DataLoader(ds, batch_size=64, shuffle=True, num_workers=w)),
                          args.ref_repeats)
        ref.append({"batch": 64, "workers": w, "seconds": best})
        print(f"  torchvision + DataLoader, batch 64, workers={w}: {best:.3f} s", flush=True)

    best_ref = min(ref, key=lambda r: r["seconds"])
    plain = [r for r in ours if not r["augment"]]
    augmented = [r for r in ours if r["augment"]]
    print()
    print(f"{'pipeline':<26} {'batch':>5} {'options':<10} {'seconds':>8} {'img/s':>10} {'x faster than best ref':>23}")
    print("-" * 87)
    for r in ours:
        print(f"{'mnistlab TensorLoader':<26} {r['batch']:>5} {'augment' if r['augment'] else '-':<10} "
              f"{r['seconds']:>8.3f} {n / r['seconds']:>10,.0f} {best_ref['seconds'] / r['seconds']:>23.1f}")
    for r in ref:
        print(f"{'torchvision + DataLoader':<26} {r['batch']:>5} {'workers=' + str(r['workers']):<10} "
              f"{r['seconds']:>8.3f} {n / r['seconds']:>10,.0f} {best_ref['seconds'] / r['seconds']:>23.1f}")
    ratio = best_ref["seconds"] / max(r["seconds"] for r in plain)  # the slower plain batch size
    print(f"\nrequirement (plain TensorLoader >= 20x faster than the best reference): {'met' if ratio >= 20 else 'NOT met'}")

    others = ", ".join(f"{fmt_s(r['seconds'])} with {r['workers']} workers" for r in ref if r is not best_ref)
    ref_text = (f"torchvision `MNIST` + `ToTensor` + `Normalize` through a `DataLoader`: {fmt_s(best_ref['seconds'])}"
                f"{' (' + others + ')' if others else ''}")
    table = [
        row(f"one epoch of MNIST batches ({n:,} images; batch 64 / 128)",
            ours="`TensorLoader`: " + " / ".join(fmt_s(r["seconds"]) for r in plain), reference=ref_text,
            ratio="**" + " / ".join(fmt_x(best_ref["seconds"] / r["seconds"]) for r in plain) + "** (target 20x)"),
        row("the same with random-affine augmentation on whole batches",
            ours=" / ".join(fmt_s(r["seconds"]) for r in augmented),
            reference=f"(no augmentation) {fmt_s(best_ref['seconds'])}",
            ratio=" / ".join(fmt_x(best_ref["seconds"] / r["seconds"]) for r in augmented)),
    ]
    bench.finish(measured={"images": n, "ours": ours, "reference": ref, "best_reference_workers": best_ref["workers"]},
                 ratio=ratio, ratio_means="best reference seconds per epoch / plain TensorLoader's (the slower "
                                          "batch size); higher: ours faster", table=table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
