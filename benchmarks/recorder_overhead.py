"""Cost of recording training dynamics: the same run with and without ``HistogramRecorder``, and GIF rendering.

1. Overhead. The source's run (``conv2_fc2``, RMSprop lr 1e-3, batch 64, no validation) on
   ``--train`` training images, trained ``--repeats`` times without and with a
   ``HistogramRecorder(every=--every)`` (weights, gradients, updates, activation hooks), the two
   interleaved (without, with, without, with...) so that load on a shared machine hits both
   alike. Same seed, so both runs see the same batches; the ratio of the median training times
   is printed. Target: at most 1.10 at the default interval (every 50 steps).
2. Rendering. A 100-frame GIF of 8 histogram panels (synthetic counts) rendered with
   :func:`mnistlab.viz.dynamics.histogram_gif_frames` and written with ``Figures.save_gif``;
   target under 20 s in all and under 3 MB. Also the weight GIF of the recording from step 1.

Usage::

    MNISTLAB_DATA=/path/to/data python benchmarks/recorder_overhead.py [--train 60000] [--epochs 1]
        [--every 50] [--repeats 3] [--threads 2]
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch


def train_once(train, epochs: int, recorder) -> float:
    """Training seconds of one run of the source's recipe (the recorder's work included)."""
    import mnistlab as ml

    model = ml.create_model("conv2_fc2", seed=0)
    hist = ml.fit(model, train, None, epochs=epochs, optimizer="rmsprop", lr=1e-3, batch_size=64, seed=0,
                  callbacks=[recorder] if recorder is not None else [], progress=False)
    return float(hist["seconds"].sum())


def synthetic_frames(frames: int = 100, layers: int = 8, bins: int = 64, seed: int = 0):
    """Histogram counts that widen over the frames, like weights during training."""
    from mnistlab.training.recorder import HistogramFrames

    rng = np.random.default_rng(seed)
    edges = np.stack([np.linspace(-1, 1, bins + 1) * (l + 1) for l in range(layers)])
    counts = np.stack([[np.histogram(np.clip(rng.normal(0, 0.2 + f / (2 * frames), 20_000) * (l + 1), -(l + 1), l + 1),
                                     edges[l])[0] for l in range(layers)] for f in range(frames)])
    return HistogramFrames("weights", [f"layer{l + 1}" for l in range(layers)], np.arange(frames) * 50,
                           np.arange(frames) * 5 // frames + 1, edges, counts)


def time_gif(data, quantity: str, folder: Path, name: str) -> tuple[float, float, float, int]:
    """(render seconds, write seconds, MB, frames) of one histogram GIF."""
    import mnistlab as ml
    from mnistlab.viz import dynamics as vd

    t0 = time.perf_counter()
    frames = vd.histogram_gif_frames(data, quantity, progress=False)
    t1 = time.perf_counter()
    path = ml.Figures("bench", root=folder).save_gif(frames, name, fps=8)
    return t1 - t0, time.perf_counter() - t1, path.stat().st_size / 1e6, len(frames)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=int, default=60_000, help="training images")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--every", type=int, default=50, help="the recorder's interval in steps")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each variant (interleaved)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    import mnistlab as ml
    from mnistlab.training.recorder import HistogramRecorder

    train = ml.load_dataset("mnist", "train", limit=args.train)
    steps = args.epochs * -(-len(train) // 64)
    print(f"conv2_fc2, RMSprop, batch 64: {len(train):,} images x {args.epochs} epoch(s) = {steps:,} steps, "
          f"{args.threads} thread(s); recorder every {args.every} steps")
    train_once(ml.load_dataset("mnist", "train", limit=640), 1, None)   # warm-up (allocator, kernels)
    plain, recorded, rec = [], [], None
    for r in range(args.repeats):
        plain.append(train_once(train, args.epochs, None))
        rec = HistogramRecorder(every=args.every)
        recorded.append(train_once(train, args.epochs, rec))
        print(f"  repeat {r + 1}: without {plain[-1]:.2f} s, with {recorded[-1]:.2f} s")
    ratio = statistics.median(recorded) / statistics.median(plain)
    print(f"training seconds, median of {args.repeats}: without {statistics.median(plain):.2f}, "
          f"with recorder {statistics.median(recorded):.2f}  ->  ratio {ratio:.3f} (target <= 1.10)")
    print(f"recorded {len(rec)} steps x {len(rec.layers)} layers in {rec.memory_bytes / 1e6:.2f} MB")

    with tempfile.TemporaryDirectory() as tmp:
        render, write, mb, n = time_gif(synthetic_frames(), "weights", Path(tmp), "synthetic")
        print(f"GIF, {n} frames x 8 panels (synthetic): render {render:.1f} s + write {write:.1f} s = "
              f"{render + write:.1f} s (target < 20 s), {mb:.2f} MB (target < 3 MB)")
        render, write, mb, n = time_gif(rec, "weights", Path(tmp), "weights")
        print(f"GIF of the recorded weights, {n} frames x {len(rec.layers)} panels: render {render:.1f} s + "
              f"write {write:.1f} s, {mb:.2f} MB")


if __name__ == "__main__":
    main()
