"""Train notebook 07's two GANs with its full-mode settings on one device and judge them; print times and numbers.

The notebook's targets on a GPU: both GANs trained in <= 2 minutes, with the CPU targets (conditional samples
classified as requested >= 95%, every class of the unconditional samples at 10% +- 3%, Frechet distance in the
classifier's feature space within 5x of the train-vs-test floor). Runs unattended and prints everything::

    MNISTLAB_DATA=/path/to/data python benchmarks/gan_gpu.py                 # device "auto" (CUDA if present)
    python benchmarks/gan_gpu.py --device cpu --steps 50 --n-eval 1000       # a quick check anywhere
    python benchmarks/gan_gpu.py --smoke                                     # seconds: 4 steps, width 8

On a lent GPU machine run it from the repository root with ``PYTHONPATH=.`` (no install needed); MNIST's four
``*-ubyte`` files must be under ``$MNISTLAB_DATA/MNIST/raw``. It finishes in well under 6 minutes on an H100
(training is a few thousand small steps; the judging uses 10,000 samples per GAN); ``benchmarks/gpu_check.py``
runs it. The reference measured in the same run is the train-vs-test floor of the Frechet distance; the ratio
is the conditional GAN's distance over it. Writes benchmarks/results/gan_gpu.json.
"""
from __future__ import annotations

import sys

import torch

from _common import Bench, Stopwatch, fmt_s, fmt_x, gan_arguments, parser, row

FULL_STEPS = 6000
"""Steps per GAN in notebook 07's full mode (keep in step with the notebook's STEPS)."""
FULL_WIDTH = 32
"""ngf = ndf in notebook 07's full mode (its WIDTH)."""
FULL_RECIPE = "sngan"
"""The entry of mnistlab.GAN_RECIPES (GANConfig instances) notebook 07 trains with."""


def main(argv=None) -> int:
    args = gan_arguments(parser(__doc__, threads=True, device="auto"), argv, steps=FULL_STEPS, width=FULL_WIDTH,
                         n_eval=10_000, steps_help="steps per GAN (default: the notebook's full mode)",
                         width_help="ngf = ndf (default: the notebook's full mode)")

    from mnistlab.data import load_dataset
    from mnistlab.studies import gan as gs
    from mnistlab.training.gan import RECIPES, train_gan
    from mnistlab.training.loop import resolve_device
    from mnistlab.training.pretrained import load_pretrained

    device = resolve_device(args.device)
    bench = Bench("gan_gpu", args, device=device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    with Stopwatch() as total:
        train, test = load_dataset("mnist", "train"), load_dataset("mnist", "test", limit=args.test_limit)
        judge = load_pretrained(device=device)
        runs = {}
        for name in ("dcgan", "cdcgan"):
            cfg = RECIPES[FULL_RECIPE].but(name=name, gan=name, ngf=args.width, ndf=args.width, steps=args.steps)
            runs[name] = train_gan(cfg, train, device=device, seed=args.seed, progress=False)
            print(f"{name}: {args.steps} steps in {runs[name].train_seconds:.1f} s of training "
                  f"({1000 * runs[name].train_seconds / args.steps:.1f} ms per step)", flush=True)
        train_seconds = sum(r.train_seconds for r in runs.values())
        print(f"both GANs: {train_seconds:.1f} s of training (target on a GPU: <= 120 s)", flush=True)

        frechet = gs.FrechetDistance(judge, test)
        refs = gs.reference_distances(train, test, judge, n=min(args.n_eval, len(test)), frechet=frechet,
                                      seed=args.seed)
        floor = float(refs["frechet"].iloc[0])
        print(refs.to_string(index=False), flush=True)
        requested = torch.arange(args.n_eval) % 10
        res_u = gs.evaluate_samples(runs["dcgan"], judge, n=args.n_eval, seed=args.seed + 1, frechet=frechet)
        res_c = gs.evaluate_samples(runs["cdcgan"], judge, n=args.n_eval, seed=args.seed + 1, frechet=frechet,
                                    requested=requested)
    for name, r in (("dcgan", res_u), ("cdcgan", res_c)):
        print(f"{name}: Frechet {r['frechet']:.4f} ({r['frechet'] / floor:.1f}x floor), confidence "
              f"{r['mean_confidence']:.3f}, classified as requested {r['cond_accuracy']:.4f}, coverage {r['coverage']}, "
              f"shares {[round(s, 3) for s in r['shares']]}", flush=True)
    targets = gs.check_targets(res_u, res_c, floor=floor, train_seconds=train_seconds,
                               budget_seconds=120.0 if device.type == "cuda" else 600.0)
    for t in targets.itertuples():
        print(f"[{'met' if t.met else 'NOT met'}] {t.target}: {t.value:.4g} (goal {t.goal})", flush=True)
    where = torch.cuda.get_device_name(0) if device.type == "cuda" else "CPU"
    measured = {"steps": args.steps, "width": args.width, "n_eval": args.n_eval, "train_seconds": train_seconds,
                "train_seconds_dcgan": runs["dcgan"].train_seconds, "train_seconds_cdcgan": runs["cdcgan"].train_seconds,
                "floor": floor, "dcgan": dict(res_u), "cdcgan": dict(res_c),
                "targets": targets.to_dict(orient="records"), "targets_met": int(targets["met"].sum()),
                "targets_total": len(targets), "wall_seconds": total.seconds}
    ratio = res_c["frechet"] / floor
    table = [row(f"notebook 07's two GANs, {args.steps:,} steps each (width {args.width}), on {where}",
                 ours=f"training {fmt_s(train_seconds)} ({fmt_s(runs['dcgan'].train_seconds)} + "
                      f"{fmt_s(runs['cdcgan'].train_seconds)}); conditional samples {res_c['cond_accuracy']:.2%} as "
                      f"requested",
                 reference=f"train-vs-test Frechet floor {floor:.4f} ({min(args.n_eval, len(test)):,} images)",
                 ratio=f"Frechet {fmt_x(ratio)} (conditional) / {fmt_x(res_u['frechet'] / floor)} (unconditional) "
                       f"the floor (target 5x)")]
    bench.finish(measured=measured, ratio=ratio,
                 ratio_means="conditional GAN's Frechet distance / the train-vs-test floor, same run; lower: better",
                 table=table)
    print(f"total wall time {total.seconds:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
