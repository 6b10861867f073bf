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
        [--every 50] [--repeats 3] [--threads 2] [--smoke]

Writes benchmarks/results/recorder_overhead.json; ``--smoke``: 640 images, one repeat, recorder every
2 steps, a 6-frame GIF.
"""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np

from _common import Bench, Stopwatch, fmt_s, interleaved, median, parser, row


def train_once(train, epochs: int, recorder) -> float:
    """Training seconds of one run of the source's recipe (the recorder's work included)."""
    import mnistlab as ml

    model = ml.create_model("conv2_fc2", seed=0)
    hist = ml.fit(model, train, None, ml.TrainConfig(epochs=epochs, optimizer="rmsprop", lr=1e-3, batch_size=64), seed=0, callbacks=[recorder] if recorder is not None else [], progress=False, device="cpu")
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


def time_gif(data, quantity: str, folder: Path, name: str) -> dict:
    """Render and write one histogram GIF: seconds of each, MB and frames."""
    import mnistlab as ml
    from mnistlab.viz import dynamics as vd

    with Stopwatch() as render:
        frames = vd.histogram_gif_frames(data, quantity, progress=False)
    figs = ml.Figures("bench", root=folder)
    with Stopwatch() as write:
        figs.save_gif(frames, name, fps=8)
    path = figs.dir / f"{name}.gif"
    return {"render_seconds": render.seconds, "write_seconds": write.seconds,
            "mb": path.stat().st_size / 1e6, "frames": len(frames)}


def main(argv=None) -> int:
    p = parser(__doc__, seed=None)
    p.set_defaults(threads=2)
    p.add_argument("--train", type=int, default=60_000, help="training images")
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--every", type=int, default=50, help="the recorder's interval in steps")
    p.add_argument("--repeats", type=int, default=3, help="runs of each variant (interleaved)")
    p.add_argument("--gif-frames", type=int, default=100, help="frames of the synthetic GIF")
    args = p.parse_args(argv)
    if args.smoke:
        args.train, args.repeats, args.every, args.gif_frames = 640, 1, 2, 6

    import mnistlab as ml
    from mnistlab.training.recorder import HistogramRecorder

    bench = Bench("recorder_overhead", args)
    train = ml.load_dataset("mnist", "train", limit=args.train)
    steps = args.epochs * -(-len(train) // 64)
    print(f"conv2_fc2, RMSprop, batch 64: {len(train):,} images x {args.epochs} epoch(s) = {steps:,} steps; "
          f"recorder every {args.every} steps", flush=True)
    train_once(ml.load_dataset("mnist", "train", limit=640), 1, None)   # warm-up (allocator, kernels)
    recorders = []

    def recorded():
        recorders.append(HistogramRecorder(every=args.every))
        return train_once(train, args.epochs, recorders[-1])

    times = interleaved({"without": lambda: train_once(train, args.epochs, None), "with": recorded}, args.repeats,
                        on_repeat=lambda i, t: print(f"  repeat {i + 1}: without {t['without']:.2f} s, "
                                                     f"with {t['with']:.2f} s", flush=True))
    plain_s, rec_s = median(times["without"]), median(times["with"])
    ratio = rec_s / plain_s
    rec = recorders[-1]
    print(f"training seconds, median of {args.repeats}: without {plain_s:.2f}, with recorder {rec_s:.2f}  ->  "
          f"ratio {ratio:.3f} (target <= 1.10)")
    print(f"recorded {len(rec)} steps x {len(rec.layers)} layers in {rec.memory_bytes / 1e6:.2f} MB")

    with tempfile.TemporaryDirectory() as tmp:
        synthetic = time_gif(synthetic_frames(frames=args.gif_frames), "weights", Path(tmp), "synthetic")
        print(f"GIF, {synthetic['frames']} frames x 8 panels (synthetic): render {synthetic['render_seconds']:.1f} s + "
              f"write {synthetic['write_seconds']:.1f} s (target < 20 s for 100 frames), {synthetic['mb']:.2f} MB "
              f"(target < 3 MB)")
        recorded_gif = time_gif(rec, "weights", Path(tmp), "weights")
        print(f"GIF of the recorded weights, {recorded_gif['frames']} frames x {len(rec.layers)} panels: render "
              f"{recorded_gif['render_seconds']:.1f} s + write {recorded_gif['write_seconds']:.1f} s, "
              f"{recorded_gif['mb']:.2f} MB")
    gif_s = synthetic["render_seconds"] + synthetic["write_seconds"]
    import torch

    table = [
        row(f"recording weight/gradient/update histograms every {args.every} steps (`conv2_fc2`, RMSprop, "
            f"{torch.get_num_threads()} torch threads, {len(train):,} images)",
            ours=f"`HistogramRecorder(every={args.every})`: {fmt_s(rec_s)} (median of {args.repeats})",
            reference=f"the same training without the recorder: {fmt_s(plain_s)}",
            ratio=f"**{ratio:.2f}x slower** (target at most 1.10x)"),
        row(f"rendering a {synthetic['frames']}-frame, 8-panel histogram GIF",
            ours=f"{fmt_s(gif_s)} ({fmt_s(synthetic['render_seconds'])} drawing, {fmt_s(synthetic['write_seconds'])} "
                 f"writing), {synthetic['mb']:.2f} MB",
            reference="(target) 20 s, 3 MB", ratio="within both" if gif_s < 20 and synthetic["mb"] < 3 else "NOT within"),
    ]
    bench.finish(measured={"train_images": len(train), "epochs": args.epochs, "steps": steps, "every": args.every,
                           "train_seconds_without": times["without"], "train_seconds_with": times["with"],
                           "median_seconds_without": plain_s, "median_seconds_with": rec_s,
                           "recorded_steps": len(rec), "layers": len(rec.layers), "recorder_mb": rec.memory_bytes / 1e6,
                           "gif_synthetic": synthetic, "gif_recorded": recorded_gif},
                 ratio=ratio, ratio_means="median training seconds with the recorder / without; lower: cheaper",
                 table=table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
