"""Seconds of CPU training until MNIST test accuracy first reaches 99.0%: ``fast`` versus PyTorch's example.

Both are measured in the same run, under the same rule: test accuracy is checked every
quarter epoch (``--checks-per-epoch``) and at the end of training; the evaluation time is
excluded from the clock; the clock stops at the first check at or above ``--target``.

* ours: ``mnistlab.train_model(get_recipe("fast"), ...)`` (TensorLoader, one-cycle, ...).
* reference: pytorch/examples ``mnist/main.py`` as it trains: torchvision ``MNIST`` with
  ``ToTensor()`` + ``Normalize((0.1307,), (0.3081,))`` through a ``DataLoader`` (batch 64,
  shuffle), its conv32-conv64-fc128 network (``pt_example``), Adadelta lr 1.0, StepLR gamma
  0.7 per epoch, cross-entropy (= log_softmax + NLL). It stops at the target or after
  ``--ref-epochs`` epochs and reports where it got.

Usage::

    MNISTLAB_DATA=/path/to/data python benchmarks/time_to_accuracy.py [--seed 0] [--ref-epochs 5]
        [--skip-reference] [--threads 1] [--fast-seeds 0 1 2]
"""
from __future__ import annotations

import argparse
import math
import os
import time

import torch
import torch.nn.functional as F


class TargetReached(Exception):
    """Raised inside training to stop as soon as the target accuracy is reached."""


class AccuracyClock:
    """Training-time clock that checks test accuracy every ``every`` steps (checks not timed).

    Call :meth:`start` before the first step and :meth:`step` after every optimizer step;
    ``records`` collects ``(step, epoch, seconds, acc)`` at every check; ``hit`` is the first
    record at or above ``target``. With ``stop`` the clock raises :class:`TargetReached` there.
    """

    def __init__(self, model, test, every: int, steps_per_epoch: int, target: float = 0.99, stop: bool = True,
                 total_steps: int | None = None):
        self.model, self.test, self.every, self.spe = model, test, max(1, every), steps_per_epoch
        self.target, self.stop, self.total_steps = target, stop, total_steps
        self.records: list[tuple[int, float, float, float]] = []
        self.hit = None
        self.seconds = 0.0
        self.steps = 0

    def start(self):
        self._t = time.perf_counter()

    def step(self, force: bool = False):
        self.steps += 1
        last = self.total_steps is not None and self.steps == self.total_steps
        if self.steps % self.every and not (force or last):
            return
        self.seconds += time.perf_counter() - self._t
        import mnistlab as ml

        acc = ml.evaluate(self.model, self.test)["acc"]  # eval mode inside, train mode restored
        self.records.append((self.steps, self.steps / self.spe, self.seconds, acc))
        if self.hit is None and acc >= self.target:
            self.hit = self.records[-1]
            if self.stop:
                raise TargetReached
        self._t = time.perf_counter()


def run_fast(train, test, seed: int, target: float, checks: int, recipe: str = "fast", **overrides) -> AccuracyClock:
    """Train a recipe with :func:`train_model` under an :class:`AccuracyClock`."""
    import mnistlab as ml
    from mnistlab.training.recipes import get_recipe, train_model

    r = get_recipe(recipe, **overrides)
    spe = math.ceil(len(train) / r["batch_size"])
    holder = {}

    class _CB(ml.Callback):
        def on_train_begin(self, state):
            holder["clock"] = AccuracyClock(state.model, test, math.ceil(spe / checks), spe, target,
                                            total_steps=spe * r["epochs"])
            holder["clock"].start()

        def on_batch_end(self, state):
            holder["clock"].step()

    try:
        train_model(get_recipe(recipe, **overrides), train, seed=seed, device="cpu", callbacks=[_CB()])
    except TargetReached:
        pass
    return holder["clock"]


def run_reference(root: str, test, seed: int, target: float, checks: int, epochs: int) -> AccuracyClock:
    """pytorch/examples mnist training loop (torchvision + DataLoader, Adadelta, StepLR)."""
    import torchvision.datasets as tvd
    import torchvision.transforms as T
    from torch.utils.data import DataLoader

    import mnistlab as ml

    torch.manual_seed(seed)
    tf = T.Compose([T.ToTensor(), T.Normalize((0.1307,), (0.3081,))])
    loader = DataLoader(tvd.MNIST(root, train=True, transform=tf, download=False), batch_size=64, shuffle=True)
    model = ml.create_model("pt_example", seed=seed)
    model.normalization = (0.1307, 0.3081)
    opt = torch.optim.Adadelta(model.parameters(), lr=1.0)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.7)
    spe = len(loader)
    clock = AccuracyClock(model, test, math.ceil(spe / checks), spe, target, total_steps=spe * epochs)
    clock.start()
    try:
        for _ in range(epochs):
            model.train()
            for x, y in loader:
                opt.zero_grad()
                loss = F.cross_entropy(model(x), y)  # = F.nll_loss(F.log_softmax(...))
                loss.backward()
                opt.step()
                clock.step()
            sched.step()
    except TargetReached:
        pass
    return clock


def _describe(clock: AccuracyClock) -> tuple[str, str, str, str]:
    if clock.hit is not None:
        step, ep, sec, acc = clock.hit
        return f"{sec:.1f}", f"{ep:.2f}", f"{acc:.4f}", "reached"
    step, ep, sec, acc = clock.records[-1]
    return f"> {sec:.1f}", f"{ep:.2f}", f"{acc:.4f}", f"not reached (best {max(r[3] for r in clock.records):.4f})"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seed", type=int, default=0, help="seed of the reference run (and of ours, unless --fast-seeds)")
    p.add_argument("--fast-seeds", type=int, nargs="+", default=None, help="seeds for ours (default: --seed)")
    p.add_argument("--target", type=float, default=0.99)
    p.add_argument("--checks-per-epoch", type=int, default=4)
    p.add_argument("--ref-epochs", type=int, default=5)
    p.add_argument("--skip-reference", action="store_true")
    p.add_argument("--recipe", default="fast")
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's choice)")
    args = p.parse_args(argv)

    import mnistlab as ml

    if args.threads:
        torch.set_num_threads(args.threads)
    train, test = ml.load_dataset("mnist", "train"), ml.load_dataset("mnist", "test")
    load0 = os.getloadavg()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs, "
          f"load average {load0[0]:.2f} {load0[1]:.2f} {load0[2]:.2f}; target {args.target:.4f}, "
          f"test accuracy checked {args.checks_per_epoch}x per epoch (not timed)", flush=True)
    rows = []
    for seed in args.fast_seeds or [args.seed]:
        clock = run_fast(train, test, seed, args.target, args.checks_per_epoch, args.recipe)
        rows.append((f"mnistlab {args.recipe}", seed, clock))
        print(f"  {args.recipe} seed {seed}: {[(round(e, 2), round(s, 1), round(a, 4)) for _, e, s, a in clock.records]}",
              flush=True)
    if not args.skip_reference:
        clock = run_reference(str(ml.data_root()), test, args.seed, args.target, args.checks_per_epoch, args.ref_epochs)
        rows.append(("pytorch example (ref)", args.seed, clock))
        print(f"  reference: {[(round(e, 2), round(s, 1), round(a, 4)) for _, e, s, a in clock.records]}", flush=True)
    load1 = os.getloadavg()
    print()
    print(f"{'run':<24} {'seed':>4} {'train s to target':>18} {'epochs':>7} {'test acc':>9}  status")
    print("-" * 84)
    for name, seed, clock in rows:
        sec, ep, acc, status = _describe(clock)
        print(f"{name:<24} {seed:>4} {sec:>18} {ep:>7} {acc:>9}  {status}")
    ours = [c for n, _, c in rows if n.startswith("mnistlab")]
    ref = [c for n, _, c in rows if n.startswith("pytorch")]
    if ref and all(c.hit for c in ours):
        worst = max(c.hit[2] for c in ours)
        r = ref[0]
        ref_sec = r.hit[2] if r.hit else r.records[-1][2]
        print(f"\nreference / ours (slowest seed of ours): {'' if r.hit else '> '}{ref_sec / worst:.1f}x")
    print(f"load average {load0[0]:.2f} at start, {load1[0]:.2f} at end")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
