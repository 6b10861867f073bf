"""t-SNE speed benchmark: MulticoreTSNE (reference) against mnistlab's tuned openTSNE backend.

Both run back to back on the same points (MNIST train+test after PCA to 50 dimensions), so
the ratio is meaningful even on a busy machine. Prints seconds, 10-NN accuracy in 2-D
(5-fold cross-validated) and the speed-up.

Usage::

    MNISTLAB_DATA=/path/to/data python benchmarks/tsne_speed.py            # all 70,000 digits
    python benchmarks/tsne_speed.py --n 20000 --jobs 2                      # a random subset
    python benchmarks/tsne_speed.py --n 20000 --backends opentsne sklearn   # other backends

Target (issue): on a 2-core machine, all 70,000 digits, the tuned backend at least 5x faster
than MulticoreTSNE with a 10-NN accuracy no worse.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

import numpy as np


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=None, help="random subset of this many points (default: all 70,000)")
    p.add_argument("--dataset", default="mnist")
    p.add_argument("--jobs", type=int, default=None, help="threads for every backend (default: all cores)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--pca", type=int, default=50, help="PCA dimensions before t-SNE")
    p.add_argument("--backends", nargs="+", default=["multicore", "opentsne"],
                   help="first one is the reference (default: multicore opentsne)")
    p.add_argument("--json", default=None, help="also write the results to this JSON file")
    args = p.parse_args(argv)

    import mnistlab as ml
    from mnistlab.studies import embed

    jobs = args.jobs or os.cpu_count() or 1
    ds = ml.load_dataset(args.dataset, "all")
    idx = np.arange(len(ds))
    if args.n is not None and args.n < len(ds):
        idx = np.sort(np.random.default_rng(args.seed).choice(len(ds), args.n, replace=False))
    X = ds.float()[idx]
    y = ds.labels.numpy()[idx]
    t0 = time.perf_counter()
    X50, _ = embed.pca(X, args.pca, seed=args.seed)
    print(f"{len(X50):,} points, PCA to {args.pca} dims in {time.perf_counter() - t0:.1f} s; "
          f"{jobs} threads; {os.cpu_count()} CPUs; {platform.processor() or platform.machine()}", flush=True)
    print(f"tuned openTSNE settings: {embed.OPENTSNE_TUNED} (Barnes-Hut instead of FFT below "
          f"{embed.FFT_MIN_POINTS:,} points)", flush=True)

    rows = []
    for backend in args.backends:
        t0, c0 = time.perf_counter(), time.process_time()
        Y = embed.tsne(X50, backend=backend, seed=args.seed, n_jobs=jobs)
        seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
        acc = embed.knn_accuracy(Y, y, k=10, seed=args.seed)
        rows.append({"backend": backend, "seconds": seconds, "cpu_seconds": cpu, "knn_acc": acc})
        print(f"{backend:>10}: {seconds:8.1f} s wall  {cpu:8.1f} s CPU (all threads)   10-NN accuracy {acc:.4f}",
              flush=True)

    ref = rows[0]
    print(f"\nreference: {ref['backend']}  ({len(X50):,} points)")
    for r in rows[1:]:
        r["speedup"] = ref["seconds"] / r["seconds"]
        r["cpu_speedup"] = ref["cpu_seconds"] / r["cpu_seconds"]
        r["acc_delta"] = r["knn_acc"] - ref["knn_acc"]
        print(f"{r['backend']:>10}: {r['speedup']:.2f}x faster (wall clock; {r['cpu_speedup']:.2f}x in CPU time), "
              f"10-NN accuracy {r['acc_delta']:+.4f} vs reference")
    print("On a shared machine the wall-clock ratio is noisy; the CPU-time ratio is the steadier one.")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"n": int(len(X50)), "jobs": jobs, "rows": rows, "settings": embed.OPENTSNE_TUNED}, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
