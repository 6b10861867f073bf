"""Wall time of a fixed slice of notebook 03's LeNet progression: 1 worker x N threads against N workers x 1 thread.

    python benchmarks/parallel_speed.py [--train 10000] [--epochs 2] [--seeds 2] [--json out.json] [--smoke]

Runs the same (config, seed) grid twice with the cache disabled, in one process run so both
settings see the same machine: first serially with every core's torch threads (``workers=1,
threads=cores``), then in ``cores`` worker processes of one thread each (``workers=cores``).
The worker time includes starting the processes (once per session in a notebook). Prints both
times, runs per minute and the ratio, the machine's load average before and after (other jobs
on the machine make the absolute numbers noisy), and checks that both settings agree. The
faster setting is the default of the notebooks: ``mnistlab.experiments.DEFAULT_WORKERS``.

Then the same comparison for notebook 07's two GANs (``experiments.run_gans``: the unconditional and
the conditional DCGAN of the notebook's recipe, ``--gan-steps`` each, each setting in its own
empty temporary cache): one after the other on every core's threads, against side by side in a
worker per GAN. Writes benchmarks/results/parallel_speed.json; ``--smoke``: 640 images, 1 epoch,
1 seed, 4 GAN steps.
"""
from __future__ import annotations

import os
import sys
import tempfile

import mnistlab as ml
import mnistlab.experiments as ex
from mnistlab.experiments.executors import cpu_count, shutdown_workers

from _common import Bench, fmt_s, fmt_x, parser, row, timed


def progression_slice(train: int, epochs: int) -> list:
    """The first LeNet-5 rows of notebook 03's progression (vanilla ... + batch 32), on ``train`` images."""
    vanilla = ml.TrainConfig("vanilla LeNet-5", model="lenet5", epochs=epochs, optimizer="adam", lr=2e-4,
                             batch_size=128, normalize="unit", train_limit=train, test_limit=2000, val=None)
    steps = [vanilla]
    steps.append(steps[-1].but(name="+ inputs in [-1, 1]", normalize="symmetric"))
    steps.append(steps[-1].but(name="+ batch 64", batch_size=64))
    steps.append(steps[-1].but(name="+ batch 32", batch_size=32))
    return steps


def gan_pair(steps: int, cores: int) -> dict:
    """Seconds of notebook 07's two GANs (``steps`` each) one after the other on ``cores`` threads, then side by side."""
    cfg = ml.GAN_RECIPES["sngan"].but(ngf=32, ndf=32, steps=steps)
    jobs = {name: [cfg.but(name=name, gan=name)] for name in ("dcgan", "cdcgan")}
    train = ml.load_dataset("mnist", "train")
    before = os.environ.get("MNISTLAB_CACHE")
    seconds = {}
    try:
        for how, kw in (("serial", dict(workers=1, threads=cores)), ("parallel", dict(workers=cores))):
            with tempfile.TemporaryDirectory() as cache:
                os.environ["MNISTLAB_CACHE"] = cache      # empty: both settings train
                seconds[how], _ = timed(ex.run_gans, jobs, train, device="cpu", progress=False, **kw)
            shutdown_workers()
    finally:
        os.environ.pop("MNISTLAB_CACHE", None) if before is None else os.environ.update(MNISTLAB_CACHE=before)
    return {"gan_steps": steps, "gan_serial_seconds": seconds["serial"], "gan_parallel_seconds": seconds["parallel"],
            "gan_speedup_parallel_over_serial": seconds["serial"] / seconds["parallel"]}


def main(argv=None) -> int:
    p = parser(__doc__, seed=None, threads=False)
    p.add_argument("--train", type=int, default=10_000, help="training images per run (default 10000)")
    p.add_argument("--epochs", type=int, default=2, help="epochs per run (default 2)")
    p.add_argument("--seeds", type=int, default=2, help="seeds per config (default 2)")
    p.add_argument("--gan-steps", type=int, default=600, help="training steps of each GAN (default 600)")
    args = p.parse_args(argv)
    if args.smoke:
        args.train, args.epochs, args.seeds, args.gan_steps = 640, 1, 1, 4
    bench = Bench("parallel_speed", args)
    cores = cpu_count()
    configs, seeds = progression_slice(args.train, args.epochs), list(range(args.seeds))
    ml.load_dataset("mnist", "train")  # read the files once before timing
    serial_s, serial = timed(ex.run_grid, configs, seeds, device="cpu", cache=False, progress=False, workers=1,
                             threads=cores)
    parallel_s, parallel = timed(ex.run_grid, configs, seeds, device="cpu", cache=False, progress=False,
                                 workers=cores)
    shutdown_workers()
    runs = len(configs) * len(seeds)
    diff = float((serial["test_acc"] - parallel["test_acc"]).abs().max())
    out = {"cores": cores, "runs": runs, "train_images": args.train, "epochs": args.epochs,
           "serial_seconds": serial_s, "parallel_seconds": parallel_s,
           "serial_runs_per_min": 60 * runs / serial_s, "parallel_runs_per_min": 60 * runs / parallel_s,
           "speedup_parallel_over_serial": serial_s / parallel_s,
           "faster": "workers" if parallel_s < serial_s else "threads", "max_test_acc_difference": diff}
    gans = gan_pair(args.gan_steps, cores)
    out.update(gans)
    for k, v in out.items():
        print(f"{k:>32}: {round(v, 3) if isinstance(v, float) else v}")
    table = [row(f"{runs} LeNet-5 runs of notebook 03's progression ({args.train:,} images, {args.epochs} epochs), "
                 f"cache off",
                 ours=f"{cores} worker processes x 1 thread: {fmt_s(parallel_s)} ({out['parallel_runs_per_min']:.1f} "
                      f"runs/min)",
                 reference=f"1 process x {cores} threads: {fmt_s(serial_s)} ({out['serial_runs_per_min']:.1f} runs/min)",
                 ratio=f"{fmt_x(serial_s / parallel_s)} (same test accuracies within {diff:.4f})")]
    table.append(row(f"notebook 07's two GANs, {args.gan_steps:,} steps each (dcgan and cdcgan, width 32)",
                     ours=f"side by side, {cores} workers x 1 thread: {fmt_s(gans['gan_parallel_seconds'])}",
                     reference=f"one after the other, {cores} threads: {fmt_s(gans['gan_serial_seconds'])}",
                     ratio=fmt_x(gans["gan_speedup_parallel_over_serial"])))
    bench.finish(measured=out, ratio=serial_s / parallel_s,
                 ratio_means="serial seconds (1 process x all threads) / parallel seconds (a worker per core); "
                             "higher: workers faster", table=table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
