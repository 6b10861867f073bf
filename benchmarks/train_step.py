"""Seconds per training step: ``mnistlab.fit`` against a bare PyTorch loop over the same batches and model.

For each model of the notebooks (LeNet-5 at batch 32 and 128, the deeper progression net, the
"fast" and "best" recipes' nets, conv + fc), three ways to run ``--steps`` training steps on real
MNIST images, interleaved ``--repeats`` times so load on a shared machine hits all alike:

1. the reference: a bare loop as in pytorch/examples' mnist (forward, cross-entropy, backward,
   step; tensors in PyTorch's default contiguous NCHW layout), batches cut from a tensor in memory;
2. the same bare loop with the weights and batches channels-last;
3. ``mnistlab.fit`` (which runs convolutional models channels-last), one epoch over the same images
   with the same optimizer: its loader, normalisation, metrics, divergence check and callbacks.

Printed per model: milliseconds per step of each (medians), the channels-last speed-up (1 / 2)
and fit's overhead over the bare channels-last loop (3 / 2). The headline ratio is the
geometric mean over the models of (1 / 3): how much faster a step of ``fit`` is than the
reference loop.

Then the score every run ends with: ``mnistlab.evaluate`` on the ``--test`` first test images in
batches of ``mnistlab.training.config.EVAL_BATCH_SIZE`` (256) against batches of 2000 (the old default),
interleaved the same way; the ratio is the seconds at 2000 over the seconds at the default.

Usage::

    MNISTLAB_DATA=/path/to/data python benchmarks/train_step.py [--steps 200] [--repeats 3] [--threads 1]
        [--models lenet5:32 deeper:32 ...] [--test 10000] [--smoke]

Writes benchmarks/results/train_step.json; ``--smoke``: LeNet-5 only, 6 steps, 500 test images, one repeat.
"""
from __future__ import annotations

import math
import sys

from _common import Bench, fmt_x, interleaved, median, parser, row

#: model name, model kwargs, batch size, optimizer: what the notebooks train most
CASES = {
    "lenet5:32": ("lenet5", {}, 32, "adam"),
    "lenet5:128": ("lenet5", {}, 128, "adam"),
    "deeper:32": ("deeper", {}, 32, "momentum"),
    "fast:64": ("fast", {}, 64, "nesterov"),
    "best:128": ("best", {"width": 16, "dropout": 0.1}, 128, "nesterov"),
    "conv_fc:64": ("conv_fc", {}, 64, "momentum"),
}


def bare_loop(model, x, y, batch: int, optimizer: str, channels_last: bool) -> float:
    """Seconds of a bare training loop over ``x`` (already normalised) in batches of ``batch``."""
    import time

    import torch
    import torch.nn.functional as F

    from mnistlab.training.optim import make_optimizer

    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    opt = make_optimizer(optimizer, [p for p in model.parameters()], lr=0.01, momentum=0.9 if optimizer != "adam" else None)
    model.train()
    t0 = time.perf_counter()
    for i in range(0, len(x), batch):
        xb, yb = x[i:i + batch], y[i:i + batch]
        if channels_last:
            xb = xb.contiguous(memory_format=torch.channels_last)
        loss = F.cross_entropy(model(xb), yb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        float(loss.detach())  # pytorch/examples reads the loss every step too
    return time.perf_counter() - t0


def fit_once(model, train, batch: int, optimizer: str) -> float:
    """Training seconds of one epoch of ``mnistlab.fit`` over ``train``."""
    import mnistlab as ml

    cfg = ml.TrainConfig(epochs=1, optimizer=optimizer, lr=0.01, batch_size=batch,
                         momentum=0.9 if optimizer != "adam" else None)
    hist = ml.fit(model, train, None, cfg, device="cpu", seed=0, progress=False)
    return float(hist["seconds"].sum())


#: the evaluation batch the package used before EVAL_BATCH_SIZE
OLD_EVAL_BATCH = 2000


def eval_once(model, test, batch: int) -> float:
    """Seconds of one ``mnistlab.evaluate`` of ``model`` on ``test`` in batches of ``batch``."""
    import time

    import mnistlab as ml

    t0 = time.perf_counter()
    ml.evaluate(model, test, batch_size=batch)
    return time.perf_counter() - t0


def main(argv=None) -> int:
    p = parser(__doc__, device=None)
    p.add_argument("--steps", type=int, default=200, help="training steps per measurement")
    p.add_argument("--repeats", type=int, default=3, help="interleaved measurements of each way (median kept)")
    p.add_argument("--models", nargs="+", default=list(CASES), choices=list(CASES), help="model:batch cases")
    p.add_argument("--test", type=int, default=10_000, help="test images each evaluation scores")
    args = p.parse_args(argv)
    if args.threads is None:
        args.threads = 1  # as the notebooks' parallel workers run: one thread each
    if args.smoke:
        args.steps, args.repeats, args.models, args.test = 6, 1, ["lenet5:32"], 500

    import torch

    import mnistlab as ml
    from mnistlab.training.config import EVAL_BATCH_SIZE

    bench = Bench("train_step", args, device="cpu")
    test = ml.load_dataset("mnist", "test", limit=args.test)
    rows, eval_rows, measured = [], {}, {}  # eval_rows: one per model (LeNet-5 runs at two batch sizes)
    for case in args.models:
        name, kwargs, batch, optimizer = CASES[case]
        train = ml.load_dataset("mnist", "train", limit=args.steps * batch)
        pre = ml.create_model(name, **kwargs).preprocessing
        x = ((train.images.float() / 255 - pre.mean) / pre.std).unsqueeze(1)
        y = train.labels

        def fresh():
            return ml.create_model(name, seed=args.seed, **kwargs)

        times = interleaved({
            "reference": lambda: bare_loop(fresh(), x, y, batch, optimizer, channels_last=False),
            "channels_last": lambda: bare_loop(fresh(), x, y, batch, optimizer, channels_last=True),
            "fit": lambda: fit_once(fresh(), train, batch, optimizer),
        }, args.repeats)
        ms = {k: 1000 * median(v) / args.steps for k, v in times.items()}
        model = fresh()
        evals = interleaved({"old": lambda: eval_once(model, test, OLD_EVAL_BATCH),
                             "default": lambda: eval_once(model, test, EVAL_BATCH_SIZE)}, args.repeats)
        ev = {k: median(v) for k, v in evals.items()}
        measured[case] = {"model": name, "batch": batch, "optimizer": optimizer, "steps": args.steps,
                          "ms_per_step": ms, "seconds": times, "eval_seconds": ev, "eval_images": len(test),
                          "eval_batch": {"old": OLD_EVAL_BATCH, "default": EVAL_BATCH_SIZE}}
        print(f"  {case:<12} reference {ms['reference']:7.2f} ms/step, channels-last {ms['channels_last']:7.2f}, "
              f"fit {ms['fit']:7.2f}: channels-last {ms['reference'] / ms['channels_last']:.2f}x, "
              f"fit / bare channels-last {ms['fit'] / ms['channels_last']:.2f}; evaluate {len(test):,} images: "
              f"{ev['default']:.2f} s in batches of {EVAL_BATCH_SIZE}, {ev['old']:.2f} s in {OLD_EVAL_BATCH}", flush=True)
        rows.append(row(f"training step, {name} batch {batch} ({optimizer})",
                        ours=f"`fit`: {ms['fit']:.1f} ms", reference=f"bare loop, NCHW: {ms['reference']:.1f} ms",
                        ratio=fmt_x(ms["reference"] / ms["fit"])))
        if name not in eval_rows:
            eval_rows[name] = row(
                f"evaluating {len(test):,} test images, {name} (every run's final score)",
                ours=f"`evaluate`, batches of {EVAL_BATCH_SIZE}: {ev['default']:.2f} s",
                reference=f"batches of {OLD_EVAL_BATCH} (the old default): {ev['old']:.2f} s",
                ratio=fmt_x(ev["old"] / ev["default"]))
    ratios = [m["ms_per_step"]["reference"] / m["ms_per_step"]["fit"] for m in measured.values()]
    ratio = math.exp(sum(math.log(r) for r in ratios) / len(ratios))
    bench.finish(measured={"cases": measured, "threads": torch.get_num_threads()}, ratio=ratio,
                 ratio_means="bare NCHW loop's seconds per step / fit's, geometric mean over the models "
                             "(higher: fit faster)",
                 table=rows + list(eval_rows.values()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
