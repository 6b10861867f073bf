"""Wall time of a fixed slice of notebook 03's LeNet progression: 1 worker x N threads against N workers x 1 thread.

    python benchmarks/parallel_speed.py [--train 10000] [--epochs 2] [--seeds 2] [--json out.json]

Runs the same (config, seed) grid twice with the cache disabled, in one process run so both
settings see the same machine: first serially with every core's torch threads (``workers=1,
threads=cores``), then in ``cores`` worker processes of one thread each (``workers=cores``).
The worker time includes starting the processes (once per session in a notebook). Prints both
times, runs per minute and the ratio, the machine's load average before and after (other jobs
on the machine make the absolute numbers noisy), and checks that both settings agree. The
faster setting is the default of the notebooks: ``mnistlab.experiments.DEFAULT_WORKERS``.
"""
from __future__ import annotations

import argparse
import json
import os
import time

import mnistlab as ml
import mnistlab.experiments as ex
from mnistlab.experiments.executors import cpu_count, shutdown_workers


def progression_slice(train: int, epochs: int) -> list:
    """The first LeNet-5 rows of notebook 03's progression (vanilla ... + batch 32), on ``train`` images."""
    vanilla = ml.TrainConfig("vanilla LeNet-5", model="lenet5", epochs=epochs, optimizer="adam", lr=2e-4,
                             batch_size=128, normalize="unit", train_limit=train, test_limit=2000, val=None)
    steps = [vanilla]
    steps.append(steps[-1].but(name="+ inputs in [-1, 1]", normalize="symmetric"))
    steps.append(steps[-1].but(name="+ batch 64", batch_size=64))
    steps.append(steps[-1].but(name="+ batch 32", batch_size=32))
    return steps


def timed(configs, seeds, **kw) -> tuple[float, object]:
    t0 = time.perf_counter()
    df = ex.run_grid(configs, seeds, cache=False, progress=False, **kw)
    return time.perf_counter() - t0, df


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--train", type=int, default=10_000, help="training images per run (default 10000)")
    p.add_argument("--epochs", type=int, default=2, help="epochs per run (default 2)")
    p.add_argument("--seeds", type=int, default=2, help="seeds per config (default 2)")
    p.add_argument("--json", help="also write the result to this JSON file")
    args = p.parse_args(argv)
    cores = cpu_count()
    configs, seeds = progression_slice(args.train, args.epochs), list(range(args.seeds))
    ml.load_dataset("mnist", "train")  # read the files once before timing
    load_before = os.getloadavg()
    serial_s, serial = timed(configs, seeds, workers=1, threads=cores)
    parallel_s, parallel = timed(configs, seeds, workers=cores)
    shutdown_workers()
    load_after = os.getloadavg()
    runs = len(configs) * len(seeds)
    diff = (serial["test_acc"] - parallel["test_acc"]).abs().max()
    out = {"cores": cores, "runs": runs, "train_images": args.train, "epochs": args.epochs,
           "serial_seconds": round(serial_s, 1), "parallel_seconds": round(parallel_s, 1),
           f"serial_runs_per_min (1 x {cores} threads)": round(60 * runs / serial_s, 2),
           f"parallel_runs_per_min ({cores} x 1 thread)": round(60 * runs / parallel_s, 2),
           "speedup_parallel_over_serial": round(serial_s / parallel_s, 2),
           "faster": "workers" if parallel_s < serial_s else "threads",
           "max_test_acc_difference": float(diff),
           "load_before": [round(v, 2) for v in load_before], "load_after": [round(v, 2) for v in load_after]}
    for k, v in out.items():
        print(f"{k:>40}: {v}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(out, fh, indent=2)
    return out


if __name__ == "__main__":
    main()
