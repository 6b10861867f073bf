"""t-SNE speed benchmark: MulticoreTSNE (reference) against mnistlab's tuned openTSNE backend.

Both run back to back on the same points (MNIST train+test after PCA to 50 dimensions), so
the ratio is meaningful even on a busy machine. Prints seconds, 10-NN accuracy in 2-D
(5-fold cross-validated) and the speed-up.

Usage::

    MNISTLAB_DATA=/path/to/data python benchmarks/tsne_speed.py            # all 70,000 digits
    python benchmarks/tsne_speed.py --n 20000 --jobs 2                      # a random subset
    python benchmarks/tsne_speed.py --n 20000 --backends opentsne sklearn   # other backends

Target (issue): on a 2-core machine, all 70,000 digits, the tuned backend at least 5x faster
than MulticoreTSNE with a 10-NN accuracy no worse. Writes benchmarks/results/tsne_speed.json;
``--smoke``: 600 points.
"""
from __future__ import annotations

import os
import sys

import numpy as np

from _common import Bench, Stopwatch, fmt_s, fmt_x, parser, row


def main(argv=None) -> int:
    p = parser(__doc__, threads=False)
    p.add_argument("--n", type=int, default=None, help="random subset of this many points (default: all 70,000)")
    p.add_argument("--dataset", default="mnist")
    p.add_argument("--jobs", type=int, default=None, help="threads for every backend (default: all cores)")
    p.add_argument("--pca", type=int, default=50, help="PCA dimensions before t-SNE")
    p.add_argument("--backends", nargs="+", default=["multicore", "opentsne"],
                   help="first one is the reference (default: multicore opentsne)")
    args = p.parse_args(argv)
    if args.smoke:
        args.n = 600
    if len(args.backends) < 2:
        p.error("--backends needs the reference and at least one more")

    import mnistlab as ml
    from mnistlab.studies import embed

    bench = Bench("tsne_speed", args)
    jobs = args.jobs or os.cpu_count() or 1
    ds = ml.load_dataset(args.dataset, "all")
    idx = np.arange(len(ds))
    if args.n is not None and args.n < len(ds):
        idx = np.sort(np.random.default_rng(args.seed).choice(len(ds), args.n, replace=False))
    X = ds.float()[idx]
    y = ds.labels.numpy()[idx]
    with Stopwatch() as sw:
        X50, _ = embed.pca(X, args.pca, seed=args.seed)
    print(f"{len(X50):,} points, PCA to {args.pca} dims in {sw.seconds:.1f} s; {jobs} threads", flush=True)
    print(f"tuned openTSNE settings: {embed.OPENTSNE_TUNED} (Barnes-Hut instead of FFT below "
          f"{embed.FFT_MIN_POINTS:,} points)", flush=True)

    rows = []
    for backend in args.backends:
        with Stopwatch() as sw:
            Y = embed.tsne(X50, backend=backend, seed=args.seed, n_jobs=jobs)
        acc = embed.knn_accuracy(Y, y, k=10, seed=args.seed)
        rows.append({"backend": backend, "seconds": sw.seconds, "cpu_seconds": sw.cpu_seconds, "knn_acc": acc})
        print(f"{backend:>10}: {sw.seconds:8.1f} s wall  {sw.cpu_seconds:8.1f} s CPU (all threads)   "
              f"10-NN accuracy {acc:.4f}", flush=True)

    ref = rows[0]
    print(f"\nreference: {ref['backend']}  ({len(X50):,} points)")
    for r in rows[1:]:
        r["speedup"] = ref["seconds"] / r["seconds"]
        r["cpu_speedup"] = ref["cpu_seconds"] / r["cpu_seconds"]
        r["acc_delta"] = r["knn_acc"] - ref["knn_acc"]
        print(f"{r['backend']:>10}: {r['speedup']:.2f}x faster (wall clock; {r['cpu_speedup']:.2f}x in CPU time), "
              f"10-NN accuracy {r['acc_delta']:+.4f} vs reference")
    print("On a shared machine the wall-clock ratio is noisy; the CPU-time ratio is the steadier one.")

    names = {"opentsne": "tuned openTSNE", "multicore": "MulticoreTSNE", "sklearn": "scikit-learn"}
    ours = rows[1]
    table = [row(f"t-SNE of {len(X50):,} digits (PCA-{args.pca}, {jobs} threads)",
                 ours=f"{names.get(ours['backend'], ours['backend'])}: {fmt_s(ours['seconds'])} "
                      f"({fmt_s(ours['cpu_seconds'])} of CPU), 10-NN accuracy in 2-D {ours['knn_acc']:.4f}",
                 reference=f"{names.get(ref['backend'], ref['backend'])}: {fmt_s(ref['seconds'])} "
                           f"({fmt_s(ref['cpu_seconds'])} of CPU), 10-NN accuracy {ref['knn_acc']:.4f}",
                 ratio=f"**{fmt_x(ours['speedup'])}** ({fmt_x(ours['cpu_speedup'])} in CPU time; target 5x, "
                       f"quality at least as high)")]
    bench.finish(measured={"n": int(len(X50)), "jobs": jobs, "rows": rows, "settings": embed.OPENTSNE_TUNED},
                 ratio=ours["speedup"], ratio_means=f"{ref['backend']} wall seconds / {ours['backend']}'s; "
                                                    "higher: ours faster", table=table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
