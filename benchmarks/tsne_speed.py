"""t-SNE speed benchmark: MulticoreTSNE (reference) against mnistlab's tuned openTSNE backend.

At every size the backends run alternately on the same points (MNIST train+test after PCA to 50
dimensions), ``--repeats`` times each, so load on a shared machine hits both alike; the ratio is the
median of the paired runs at the largest size. Prints seconds, 10-NN accuracy in 2-D (5-fold
cross-validated) and the speed-up; notebook 02 draws its speed figure from the JSON.

Usage::

    MNISTLAB_DATA=/path/to/data python benchmarks/tsne_speed.py                  # 5k, 10k, 20k and all 70k, 3 runs each
    python benchmarks/tsne_speed.py --sizes 20000 --repeats 5 --jobs 2            # one size
    python benchmarks/tsne_speed.py --sizes 20000 --backends multicore sklearn    # other backends

Target (issue): on a 2-core machine, all 70,000 digits, the tuned backend at least 5x faster
than MulticoreTSNE with a 10-NN accuracy no worse. Writes benchmarks/results/tsne_speed.json;
``--smoke``: 300 points, 2 runs each.
"""
from __future__ import annotations

import os
import sys

import numpy as np

from _common import Bench, Stopwatch, fmt_s, fmt_x, interleaved, median, parser, row


def main(argv=None) -> int:
    p = parser(__doc__, threads=False)
    p.add_argument("--sizes", type=int, nargs="+", default=[5000, 10000, 20000, 70000],
                   help="numbers of points, each a random subset (70,000: all digits; default 5000 10000 20000 70000)")
    p.add_argument("--repeats", type=int, default=3, help="timed runs of every backend at every size (default 3)")
    p.add_argument("--dataset", default="mnist")
    p.add_argument("--jobs", type=int, default=None, help="threads for every backend (default: all cores)")
    p.add_argument("--pca", type=int, default=50, help="PCA dimensions before t-SNE")
    p.add_argument("--backends", nargs="+", default=["multicore", "opentsne"],
                   help="first one is the reference (default: multicore opentsne)")
    args = p.parse_args(argv)
    if args.smoke:
        args.sizes, args.repeats = [300], 2
    if len(args.backends) < 2:
        p.error("--backends needs the reference and at least one more")
    if args.repeats < 1 or min(args.sizes) < 100:
        p.error("--repeats must be >= 1 and every size >= 100")

    import mnistlab as ml
    from mnistlab.studies import embed

    bench = Bench("tsne_speed", args)
    jobs = args.jobs or os.cpu_count() or 1
    ds = ml.load_dataset(args.dataset, "all")
    print(f"tuned openTSNE settings: {embed.OPENTSNE_TUNED} (Barnes-Hut instead of FFT below "
          f"{embed.FFT_MIN_POINTS:,} points); {jobs} threads; {args.repeats} runs of each backend per size, "
          "alternating", flush=True)
    rows = []
    for n in sorted(set(args.sizes)):
        idx = np.arange(len(ds))
        if n < len(ds):
            idx = np.sort(np.random.default_rng(args.seed).choice(len(ds), n, replace=False))
        X50, _ = embed.pca(ds.float()[idx], args.pca, seed=args.seed)
        y = ds.labels.numpy()[idx]

        def timed(backend, X50=X50, y=y):
            with Stopwatch() as sw:
                Y = embed.tsne(X50, backend=backend, seed=args.seed, n_jobs=jobs)
            return {"seconds": sw.seconds, "cpu_seconds": sw.cpu_seconds,
                    "knn_acc": embed.knn_accuracy(Y, y, k=10, seed=args.seed)}

        def report(i, got, n=len(X50)):
            print(f"{n:>7,} points, run {i + 1}: " + "   ".join(
                f"{b} {r['seconds']:7.1f} s (10-NN {r['knn_acc']:.4f})" for b, r in got.items()), flush=True)

        runs = interleaved({b: (lambda b=b: timed(b)) for b in args.backends}, args.repeats, report)
        rows += [{"backend": b, "n": int(len(X50)), "repeat": i, **r}
                 for b, results in runs.items() for i, r in enumerate(results)]

    ref_name, ours_name = args.backends[0], args.backends[1]
    n_max = max(r["n"] for r in rows)

    def at(backend, key, n=n_max):
        return [r[key] for r in rows if r["backend"] == backend and r["n"] == n]

    # paired ratios: run i of the reference over run i of ours (timed back to back)
    ratios = [a / b for a, b in zip(at(ref_name, "seconds"), at(ours_name, "seconds"))]
    cpu_ratios = [a / b for a, b in zip(at(ref_name, "cpu_seconds"), at(ours_name, "cpu_seconds"))]
    print(f"\nat {n_max:,} points: {ours_name} {fmt_x(median(ratios))} faster than {ref_name} (median of "
          f"{len(ratios)} paired runs; {fmt_x(median(cpu_ratios))} in CPU time)")
    names = {"opentsne": "tuned openTSNE", "multicore": "MulticoreTSNE", "sklearn": "scikit-learn"}

    def side(backend):
        return (f"{names.get(backend, backend)}: {fmt_s(median(at(backend, 'seconds')))} median of "
                f"{len(at(backend, 'seconds'))} runs, 10-NN accuracy in 2-D {median(at(backend, 'knn_acc')):.4f}")

    table = [row(f"t-SNE of {n_max:,} digits (PCA-{args.pca}, {jobs} threads)", ours=side(ours_name),
                 reference=side(ref_name),
                 ratio=f"**{fmt_x(median(ratios))}** (median of paired runs; {fmt_x(median(cpu_ratios))} in CPU time)")]
    bench.finish(measured={"sizes": sorted(set(args.sizes)), "repeats": args.repeats, "jobs": jobs, "rows": rows,
                           "settings": embed.OPENTSNE_TUNED, "ratios": ratios, "cpu_ratios": cpu_ratios},
                 ratio=median(ratios), ratio_means=f"median over paired runs at {n_max:,} points of {ref_name} wall "
                                                   f"seconds / {ours_name}'s; higher: ours faster", table=table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
