"""Seconds of training until MNIST test accuracy first reaches 99.0%: the ``fast`` recipe versus PyTorch's example.

Both are measured in the same run, under the same rule: test accuracy is checked every
quarter epoch (``--checks-per-epoch``) and at the end of training; the evaluation time is
excluded from the clock; the clock stops at the first check at or above ``--target``.

* ours: ``mnistlab.train_model(get_recipe("fast"), ...)`` (TensorLoader, one-cycle, ...), over
  ``--fast-seeds`` (default 0-4); the ratio is taken against the slowest of them.
* reference: pytorch/examples ``mnist/main.py`` as it trains: torchvision ``MNIST`` with
  ``ToTensor()`` + ``Normalize((0.1307,), (0.3081,))`` through a ``DataLoader`` (batch 64,
  shuffle), its conv32-conv64-fc128 network (``pt_example``), Adadelta lr 1.0, StepLR gamma
  0.7 per epoch, cross-entropy (= log_softmax + NLL). It stops at the target or after
  ``--ref-epochs`` epochs and reports where it got.

Usage::

    MNISTLAB_DATA=/path/to/data python benchmarks/time_to_accuracy.py [--seed 0] [--ref-epochs 5]
        [--threads 1] [--fast-seeds 0 1 2] [--device cuda] [--smoke] [--json FILE]

Writes benchmarks/results/time_to_accuracy.json (``--device cuda``: time_to_accuracy_cuda.json).
``--smoke``: 1,000 training and 200 test images, one seed, one reference epoch, target 60%.
"""
from __future__ import annotations

import math
import sys
import time

import torch
import torch.nn.functional as F

from _common import Bench, fmt_s, fmt_x, parser, row, sync


class TargetReached(Exception):
    """Raised inside training to stop as soon as the target accuracy is reached."""


class AccuracyClock:
    """Training-time clock that checks test accuracy every ``every`` steps (checks not timed).

    Call :meth:`start` before the first step and :meth:`step` after every optimizer step;
    ``records`` collects ``(step, epoch, seconds, acc)`` at every check; ``hit`` is the first
    record at or above ``target``. With ``stop`` the clock raises :class:`TargetReached` there.
    On a GPU the queued work is waited for before each reading of the clock.
    """

    def __init__(self, model, test, every: int, steps_per_epoch: int, target: float = 0.99, stop: bool = True,
                 total_steps: int | None = None, device=None):
        self.model, self.test, self.every, self.spe = model, test, max(1, every), steps_per_epoch
        self.target, self.stop, self.total_steps, self.device = target, stop, total_steps, device
        self.records: list[tuple[int, float, float, float]] = []
        self.hit = None
        self.seconds = 0.0
        self.steps = 0

    def start(self):
        sync(self.device)
        self._t = time.perf_counter()

    def step(self, force: bool = False):
        self.steps += 1
        last = self.total_steps is not None and self.steps == self.total_steps
        if self.steps % self.every and not (force or last):
            return
        sync(self.device)
        self.seconds += time.perf_counter() - self._t
        import mnistlab as ml

        acc = ml.evaluate(self.model, self.test)["acc"]  # eval mode inside, train mode restored
        self.records.append((self.steps, self.steps / self.spe, self.seconds, acc))
        if self.hit is None and acc >= self.target:
            self.hit = self.records[-1]
            if self.stop:
                raise TargetReached
        self._t = time.perf_counter()

    @property
    def result(self) -> tuple[float, float, float, bool]:
        """(seconds, epochs, test accuracy, reached) at the hit, else at the last check."""
        step, ep, sec, acc = self.hit if self.hit is not None else self.records[-1]
        return sec, ep, acc, self.hit is not None

    def summary(self) -> dict:
        sec, ep, acc, reached = self.result
        return {"seconds": sec, "epochs": ep, "test_acc": acc, "reached": reached,
                "best_acc": max(r[3] for r in self.records),
                "checks": [{"epoch": round(e, 3), "seconds": s, "test_acc": a} for _, e, s, a in self.records]}


def run_fast(train, test, seed: int, target: float, checks: int, recipe: str = "fast", device="cpu",
             **overrides) -> AccuracyClock:
    """Train a recipe with :func:`train_model` under an :class:`AccuracyClock`."""
    import mnistlab as ml
    from mnistlab.training.recipes import get_recipe, train_model

    config = get_recipe(recipe, **overrides)  # a TrainConfig (a frozen dataclass)
    spe = math.ceil(len(train) / config.batch_size)
    holder = {}

    class _CB(ml.Callback):
        def on_train_begin(self, state):
            holder["clock"] = AccuracyClock(state.model, test, math.ceil(spe / checks), spe, target,
                                            total_steps=spe * config.epochs, device=device)
            holder["clock"].start()

        def on_batch_end(self, state):
            holder["clock"].step()

    try:
        train_model(config, train, seed=seed, device=device, callbacks=[_CB()], progress=False)
    except TargetReached:
        pass
    return holder["clock"]


def run_reference(root: str, test, seed: int, target: float, checks: int, epochs: int, device="cpu",
                  limit: int | None = None) -> AccuracyClock:
    """pytorch/examples mnist training loop (torchvision + DataLoader, Adadelta, StepLR)."""
    import torchvision.datasets as tvd
    import torchvision.transforms as T
    from torch.utils.data import DataLoader, Subset

    import mnistlab as ml

    torch.manual_seed(seed)
    tf = T.Compose([T.ToTensor(), T.Normalize((0.1307,), (0.3081,))])
    data = tvd.MNIST(root, train=True, transform=tf, download=False)
    if limit is not None:
        data = Subset(data, range(min(limit, len(data))))
    cuda = str(device).startswith("cuda")
    # the example's own settings: on CUDA it adds num_workers=1, pin_memory=True
    loader = DataLoader(data, batch_size=64, shuffle=True, **({"num_workers": 1, "pin_memory": True} if cuda else {}))
    model = ml.create_model("pt_example", seed=seed).to(device)
    model.normalization = (0.1307, 0.3081)
    opt = torch.optim.Adadelta(model.parameters(), lr=1.0)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.7)
    spe = len(loader)
    clock = AccuracyClock(model, test, math.ceil(spe / checks), spe, target, total_steps=spe * epochs, device=device)
    clock.start()
    try:
        for _ in range(epochs):
            model.train()
            for x, y in loader:
                x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
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
    sec, ep, acc, reached = clock.result
    if reached:
        return f"{sec:.1f}", f"{ep:.2f}", f"{acc:.4f}", "reached"
    return f"> {sec:.1f}", f"{ep:.2f}", f"{acc:.4f}", f"not reached (best {max(r[3] for r in clock.records):.4f})"


def main(argv=None) -> int:
    p = parser(__doc__, device="cpu")
    p.add_argument("--fast-seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4], help="seeds for ours (default 0-4)")
    p.add_argument("--target", type=float, default=0.99)
    p.add_argument("--checks-per-epoch", type=int, default=4)
    p.add_argument("--ref-epochs", type=int, default=5)
    p.add_argument("--recipe", default="fast")
    p.add_argument("--train-limit", type=int, default=None, help="train on the first N images (both)")
    p.add_argument("--test-limit", type=int, default=None, help="check accuracy on the first N test images")
    args = p.parse_args(argv)
    if args.smoke:
        args.train_limit, args.test_limit, args.ref_epochs, args.fast_seeds = 1000, 200, 1, [args.seed]
        args.target, args.checks_per_epoch = 0.6, 2

    import mnistlab as ml
    from mnistlab.training.loop import resolve_device

    device = resolve_device(args.device)
    name = "time_to_accuracy" + ("_cuda" if device.type == "cuda" else "")
    bench = Bench(name, args, device=device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    train = ml.load_dataset("mnist", "train", limit=args.train_limit)
    test = ml.load_dataset("mnist", "test", limit=args.test_limit)
    print(f"device {device}; target {args.target:.4f}, test accuracy on {len(test):,} images checked "
          f"{args.checks_per_epoch}x per epoch (not timed); {len(train):,} training images", flush=True)
    ours = []
    for seed in args.fast_seeds:
        clock = run_fast(train, test, seed, args.target, args.checks_per_epoch, args.recipe, device=device)
        ours.append((seed, clock))
        print(f"  {args.recipe} seed {seed}: {[(round(e, 2), round(s, 1), round(a, 4)) for _, e, s, a in clock.records]}",
              flush=True)
    ref = run_reference(str(ml.data_root()), test, args.seed, args.target, args.checks_per_epoch, args.ref_epochs,
                        device=device, limit=args.train_limit)
    print(f"  reference: {[(round(e, 2), round(s, 1), round(a, 4)) for _, e, s, a in ref.records]}", flush=True)
    print()
    print(f"{'run':<24} {'seed':>4} {'train s to target':>18} {'epochs':>7} {'test acc':>9}  status")
    print("-" * 84)
    for label, seed, clock in [(f"mnistlab {args.recipe}", s, c) for s, c in ours] + [("pytorch example (ref)",
                                                                                        args.seed, ref)]:
        sec, ep, acc, status = _describe(clock)
        print(f"{label:<24} {seed:>4} {sec:>18} {ep:>7} {acc:>9}  {status}")

    slowest = max((c for _, c in ours), key=lambda c: c.result[0])
    ours_s, ref_s = slowest.result[0], ref.result[0]
    ratio = ref_s / ours_s
    all_reached = all(c.result[3] for _, c in ours)
    print(f"\nreference / ours (slowest seed of ours): {'' if ref.result[3] else '> '}{ratio:.1f}x"
          f"{'' if all_reached else ' (ours did not reach the target: the ratio is not a time-to-target ratio)'}")

    secs = [c.result[0] for _, c in ours]
    where = "GPU" if device.type == "cuda" else "CPU"
    spread = f"seeds {', '.join(map(str, args.fast_seeds))}: {fmt_s(min(secs))}-{fmt_s(max(secs))}, " \
        if len(ours) > 1 else ""
    finals = [c.result[2] for _, c in ours]
    ours_text = (f"`{args.recipe}` recipe: **{fmt_s(ours_s)}** ({spread}"
                 f"{'all reach' if all_reached else 'NOT all reach'} {args.target:.1%} within "
                 f"{max(c.result[1] for _, c in ours):.2f} epochs; test accuracy then {min(finals):.2%}"
                 f"{'' if min(finals) == max(finals) else f'-{max(finals):.2%}'})")
    sec, ep, acc, reached = ref.result
    ref_text = (f"pytorch/examples' mnist (`pt_example`, DataLoader, Adadelta lr 1.0, batch 64): "
                f"{'' if reached else '> '}{fmt_s(sec)} ({acc:.2%} after {ep:.2f} epochs"
                f"{'' if reached else ', target not reached'})")
    table = [row(f"{where} training seconds until test accuracy first reaches {args.target:.1%}", ours=ours_text,
                 reference=ref_text, ratio=f"**{'' if reached else '> '}{fmt_x(ratio)}**" +
                 (" (target 10x)" if where == "CPU" else ""))]
    bench.finish(measured={"target": args.target, "train_images": len(train), "test_images": len(test),
                           "ours": {"recipe": args.recipe, "slowest_seconds": ours_s, "all_reached": all_reached,
                                    "runs": [{"seed": s, **c.summary()} for s, c in ours]},
                           "reference": {"seed": args.seed, **ref.summary()}},
                 ratio=ratio, ratio_means="reference seconds to target / ours (slowest seed); higher: ours faster",
                 table=table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
