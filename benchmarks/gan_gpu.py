"""Train notebook 07's two GANs with its full-mode settings on one device and judge them; print times and numbers.

The notebook's targets on a GPU: both GANs trained in <= 2 minutes, with the CPU targets (conditional samples
classified as requested >= 95%, every class of the unconditional samples at 10% +- 3%, Frechet distance in the
classifier's feature space within 5x of the train-vs-test floor). Runs unattended and prints everything::

    MNISTLAB_DATA=/path/to/data python benchmarks/gan_gpu.py                 # device "auto" (CUDA if present)
    python benchmarks/gan_gpu.py --device cpu --steps 50 --n-eval 1000       # a quick check anywhere

On a lent GPU machine run it from the repository root with ``PYTHONPATH=.`` (no install needed); MNIST's four
``*-ubyte`` files must be under ``$MNISTLAB_DATA/MNIST/raw``. It finishes in well under 6 minutes on an H100
(training is a few thousand small steps; the judging uses 10,000 samples per GAN).
"""
from __future__ import annotations

import argparse
import json
import sys
import time

import torch


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="auto")
    p.add_argument("--steps", type=int, default=None, help="steps per GAN (default: the notebook's full mode)")
    p.add_argument("--n-eval", type=int, default=10_000, help="samples judged per GAN")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", default=None, help="also write the numbers to this JSON file")
    args = p.parse_args(argv)

    from mnistlab.data import load_dataset
    from mnistlab.models.gan import create_gan
    from mnistlab.studies import gan as gs
    from mnistlab.training.loop import resolve_device
    from mnistlab.training.pretrained import load_pretrained

    steps = args.steps or FULL_STEPS
    device = resolve_device(args.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        print(f"device: {torch.cuda.get_device_name(0)}, torch {torch.__version__}", flush=True)
    else:
        print(f"device: {device} ({torch.get_num_threads()} threads), torch {torch.__version__}", flush=True)
    t0 = time.perf_counter()
    train, test = load_dataset("mnist", "train"), load_dataset("mnist", "test")
    judge = load_pretrained(device=device)
    runs = {}
    for name in ("dcgan", "cdcgan"):
        nets, settings = gs.RECIPES[FULL_RECIPE]
        gan = create_gan(name, seed=args.seed, ngf=FULL_WIDTH, ndf=FULL_WIDTH, **nets)
        runs[name] = gs.train_gan(gan, train, steps=steps, device=device, seed=args.seed, progress=False, **settings)
        print(f"{name}: {steps} steps in {runs[name].train_seconds:.1f} s of training "
              f"({1000 * runs[name].train_seconds / steps:.1f} ms per step)", flush=True)
    train_seconds = sum(r.train_seconds for r in runs.values())
    print(f"both GANs: {train_seconds:.1f} s of training (target on a GPU: <= 120 s)", flush=True)

    frechet = gs.FrechetDistance(judge, test)
    refs = gs.reference_distances(train, test, judge, n=args.n_eval, frechet=frechet, seed=args.seed)
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
    numbers = {"device": str(device), "steps": steps, "train_seconds": train_seconds,
               "train_seconds_dcgan": runs["dcgan"].train_seconds, "train_seconds_cdcgan": runs["cdcgan"].train_seconds,
               "floor": floor, "dcgan": {k: v for k, v in res_u.items()}, "cdcgan": {k: v for k, v in res_c.items()},
               "targets_met": int(targets["met"].sum()), "targets_total": len(targets),
               "wall_seconds": time.perf_counter() - t0}
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(numbers, fh, indent=1, default=float)
    print(f"total wall time {numbers['wall_seconds']:.0f} s", flush=True)
    return 0


FULL_STEPS = 6000
"""Steps per GAN in notebook 07's full mode (keep in step with the notebook's STEPS)."""
FULL_WIDTH = 32
"""ngf = ndf in notebook 07's full mode (its WIDTH)."""
FULL_RECIPE = "sngan"
"""The entry of mnistlab.studies.gan.RECIPES notebook 07 trains with."""

if __name__ == "__main__":
    sys.exit(main())
