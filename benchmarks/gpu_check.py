"""One prepared GPU check (``make gpu-check``): everything that needs a GPU, in under 8 minutes on one GPU.

Steps, each a subprocess with its own time limit (the whole check is capped at ``--budget`` seconds,
460 by default, so it ends within 8 minutes even when every step runs into its limit):

1. every notebook in QUICK mode with ``DEVICE="cuda"``, through papermill the way ``mnistlab figures``
   runs them (``mnistlab.runner.run_notebooks``), all at once, each with an empty experiment cache of its
   own so it really trains on the GPU; figures, manifest and executed copies go under
   ``<out>/figures`` and ``<out>/executed``, never ``figures/``;
2. notebook 07's full GAN: ``benchmarks/gan_gpu.py`` (6,000 steps per GAN, judged on 10,000 samples);
3. the transfer benchmark: ``benchmarks/transfer_gpu.py`` (ResNet-18 at 112 px, bfloat16);
4. time to 99% test accuracy on the GPU: ``benchmarks/time_to_accuracy.py --device cuda``.

The benchmarks run one at a time after the notebooks, alone on the GPU, and write their JSON under
``<out>/results/``. The check writes ``<out>/report.json`` and ``<out>/report.md`` (per step: ok or the
error, seconds, the limit; the tail of the log of each failure) and each step's full log under
``<out>/logs/``, then exits 1 if any step failed, timed out or was not reached. On a machine without a
CUDA GPU it prints one line saying so and exits 0 (``--require-gpu``: exits 1).

Usage::

    make gpu-check                                         # with .venv (installs it when missing)
    MNISTLAB_DATA=/path/to/data python benchmarks/gpu_check.py [--out build/gpu-check] [--only gan,transfer]
    python benchmarks/gpu_check.py --list                  # the steps and their limits, on any machine
"""
from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from _common import BENCH_DIR, ROOT, machine_info, write_json

DEFAULT_OUT = ROOT / "build" / "gpu-check"
BUDGET_S = 460.0
"""The whole check's cap in seconds: under 8 minutes with room for starting Python and writing the report."""
NOTEBOOK_LIMIT_S = 140.0
GAN_LIMIT_S = 140.0
TRANSFER_LIMIT_S = 100.0
TIME_TO_ACCURACY_LIMIT_S = 80.0
MIN_START_S = 10.0
"""A step is not started with less than this left of the budget (it is reported as not run)."""
TAIL_LINES = 20

_NOTEBOOK_CODE = """\
import sys
from mnistlab.runner import run_notebooks
stem, figures, executed = sys.argv[1:4]
manifest = run_notebooks(only=[stem], quick=True, device="cuda", figures_dir=figures, executed_dir=executed,
                         progress=False)
entry = manifest["notebooks"][stem]
print(f"{stem}: QUICK on cuda, {len(entry['figures'])} files in {entry['seconds']:.0f} s")
"""


@dataclass
class Step:
    """One command of the check: ``argv`` run from the repository root, killed after ``limit`` seconds.

    Consecutive steps with ``parallel=True`` run at the same time (up to ``jobs``)."""

    name: str
    argv: list
    limit: float
    parallel: bool = False
    env: dict = field(default_factory=dict)


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


def _tail(path: Path, lines: int = TAIL_LINES) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.rstrip().splitlines()[-lines:])


def _kill(proc: subprocess.Popen) -> None:
    """End a step's whole process group (it was started in a session of its own)."""
    for sig, wait in ((signal.SIGTERM, 5), (signal.SIGKILL, 5)):
        try:
            os.killpg(proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            return
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


class _Running:
    def __init__(self, step: Step, limit: float, log: Path, env: dict):
        self.step, self.limit, self.log = step, limit, log
        self.t0 = time.perf_counter()
        self.fh = open(log, "w")
        try:
            self.proc = subprocess.Popen([str(a) for a in step.argv], cwd=ROOT, stdout=self.fh,
                                         stderr=subprocess.STDOUT, env=env, start_new_session=True)
            self.error = None
        except OSError as exc:
            self.proc, self.error = None, f"could not start: {exc}"

    def result(self, ok: bool, error: str | None) -> dict:
        self.fh.close()
        seconds = time.perf_counter() - self.t0
        out = {"step": self.step.name, "ok": ok, "error": error, "seconds": round(seconds, 1),
               "limit": round(self.limit, 1), "log": str(self.log)}
        if not ok:
            out["tail"] = _tail(self.log)
        return out

    def poll(self) -> dict | None:
        """The step's result once it has ended (or been killed at its limit), else None."""
        if self.proc is None:
            return self.result(False, self.error)
        rc = self.proc.poll()
        if rc is None and time.perf_counter() - self.t0 > self.limit:
            _kill(self.proc)
            return self.result(False, f"timed out after {self.limit:.0f} s")
        if rc is None:
            return None
        if rc == 0:
            return self.result(True, None)
        last = next((ln for ln in reversed(_tail(self.log).splitlines()) if ln.strip()), "")
        return self.result(False, f"exit code {rc}" + (f": {last.strip()}" if last else ""))


def run_steps(steps: list[Step], out: Path, budget: float = BUDGET_S, jobs: int = 4, env: dict | None = None,
              say=print) -> list[dict]:
    """Run the steps (consecutive ``parallel`` ones together, up to ``jobs`` at a time), each killed at its limit
    and none started with less than :data:`MIN_START_S` of ``budget`` left; one result dict per step:
    ``{"step", "ok", "error" (None when ok), "seconds", "limit", "log"}`` (+ ``"tail"`` of the log on failure)."""
    out = Path(out)
    logs = out / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    base_env = dict(os.environ if env is None else env)
    deadline = time.perf_counter() + budget
    results: dict[int, dict] = {}
    i = 0
    while i < len(steps):
        j = i + 1
        if steps[i].parallel:
            while j < len(steps) and steps[j].parallel:
                j += 1
        batch = list(range(i, j))
        running: dict[int, _Running] = {}
        try:
            while batch or running:
                while batch and len(running) < max(1, jobs):
                    k = batch.pop(0)
                    left = deadline - time.perf_counter()
                    if left < MIN_START_S:
                        results[k] = {"step": steps[k].name, "ok": False, "seconds": 0.0,
                                      "error": f"not run: the check's {budget:.0f} s budget was spent",
                                      "limit": steps[k].limit, "log": None}
                        say(f"[not run] {steps[k].name}: budget spent")
                        continue
                    limit = min(steps[k].limit, left)
                    say(f"[start] {steps[k].name} (limit {limit:.0f} s)")
                    running[k] = _Running(steps[k], limit, logs / f"{_slug(steps[k].name)}.log",
                                          {**base_env, **steps[k].env})
                for k, r in list(running.items()):
                    res = r.poll()
                    if res is not None:
                        results[k] = res
                        del running[k]
                        say(f"[{'ok' if res['ok'] else 'FAILED'}] {res['step']}: {res['seconds']:.1f} s"
                            + ("" if res["ok"] else f" - {res['error']}"))
                if running:
                    time.sleep(0.1)
        finally:
            for k, r in running.items():  # interrupted: end what this check started
                if r.proc is not None:
                    _kill(r.proc)
                results.setdefault(k, r.result(False, "interrupted"))
        i = j
    return [results[k] for k in sorted(results)]


def write_report(results: list[dict], out: Path, meta: dict | None = None) -> tuple[Path, Path]:
    """``<out>/report.json`` and ``<out>/report.md`` from the step results; returns both paths."""
    out = Path(out)
    ok = all(r["ok"] for r in results)
    meta = dict(meta or {})
    report = {"ok": ok, "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
              "wall_seconds": meta.pop("wall_seconds", round(sum(r["seconds"] for r in results), 1)),
              "failed": [r["step"] for r in results if not r["ok"]], **meta, "steps": results}
    json_path = write_json(out / "report.json", report)
    verdict = "all ok" if ok else f"{len(report['failed'])} of {len(results)} steps FAILED"
    lines = [f"# GPU check: {verdict}", ""]
    m = report.get("machine") or {}
    if m:
        lines += [f"{m.get('gpu') or 'no GPU'}; {m.get('cpu')}, {m.get('cores')} cores; torch {report.get('torch')}; "
                  f"{report['date']}; wall time {report['wall_seconds']} s "
                  f"(budget {report.get('budget', '?')} s)", ""]
    lines += ["| step | result | seconds | limit |", "| --- | --- | --- | --- |"]
    for r in results:
        err = (r["error"] or "").replace("|", "\\|").replace("\n", " ")
        lines.append(f"| {r['step']} | {'ok' if r['ok'] else err} | {r['seconds']:.1f} | {r['limit']:.0f} |")
    for r in results:
        if not r["ok"] and r.get("log"):
            lines += ["", f"## {r['step']}: {r['error']}", "", f"The end of `{r['log']}`:", "", "```",
                      r.get("tail") or "(the step printed nothing)", "```"]
    md_path = out / "report.md"
    md_path.write_text("\n".join(lines) + "\n")
    return json_path, md_path


def build_steps(out: Path, python: str = sys.executable, jobs: int | None = None) -> list[Step]:
    """The check's steps: every notebook (QUICK, cuda; in parallel), then the three GPU benchmarks, one by one."""
    sys.path.insert(0, str(ROOT))
    from mnistlab.runner import list_notebooks

    notebooks = list_notebooks(notebooks_dir=ROOT / "notebooks")
    threads = str(max(1, (os.cpu_count() or 1) // max(1, jobs or len(notebooks))))
    steps = [Step(f"notebook {nb.stem}", [python, "-c", _NOTEBOOK_CODE, nb.stem, out / "figures", out / "executed"],
                  NOTEBOOK_LIMIT_S, parallel=True,
                  env={"MNISTLAB_CACHE": str(out / "cache" / nb.stem), "OMP_NUM_THREADS": threads,
                       "MKL_NUM_THREADS": threads})
             for nb in notebooks]
    results = out / "results"
    steps += [
        Step("gan_gpu (notebook 07's full GAN)",
             [python, BENCH_DIR / "gan_gpu.py", "--device", "cuda", "--json", results / "gan_gpu.json"], GAN_LIMIT_S),
        Step("transfer_gpu",
             [python, BENCH_DIR / "transfer_gpu.py", "--device", "cuda", "--seeds", "2", "--budget", "30",
              "--json", results / "transfer_gpu.json"], TRANSFER_LIMIT_S),
        Step("time_to_accuracy --device cuda",
             [python, BENCH_DIR / "time_to_accuracy.py", "--device", "cuda", "--fast-seeds", "0", "1", "2",
              "--json", results / "time_to_accuracy_cuda.json"], TIME_TO_ACCURACY_LIMIT_S),
    ]
    return steps


def check(steps: list[Step], out: Path, budget: float = BUDGET_S, jobs: int = 4, meta: dict | None = None,
          say=print) -> int:
    """Run the steps, write the report; 0 when every step is ok, else 1."""
    t0 = time.perf_counter()
    results = run_steps(steps, out, budget=budget, jobs=jobs, say=say)
    json_path, md_path = write_report(results, out, {**(meta or {}), "budget": budget,
                                                     "wall_seconds": round(time.perf_counter() - t0, 1)})
    failed = [r["step"] for r in results if not r["ok"]]
    say(f"gpu_check: {'all ok' if not failed else 'FAILED: ' + ', '.join(failed)} in "
        f"{time.perf_counter() - t0:.0f} s; report {md_path} and {json_path.name}")
    return 1 if failed else 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0], epilog="\n".join(__doc__.splitlines()[1:]),
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default=str(DEFAULT_OUT), help="report, logs, figures and results (default build/gpu-check)")
    p.add_argument("--require-gpu", action="store_true", help="exit 1 (not 0) on a machine without a CUDA GPU")
    p.add_argument("--budget", type=float, default=BUDGET_S, help=f"cap on the whole check in seconds ({BUDGET_S:.0f})")
    p.add_argument("--jobs", type=int, default=None, help="notebooks run at once (default: all of them)")
    p.add_argument("--only", default=None, help="comma-separated parts of step names, e.g. 'notebook 07,gan'")
    p.add_argument("--list", action="store_true", help="print the steps and their limits; run nothing")
    args = p.parse_args(argv)
    out = Path(args.out).resolve()

    steps = build_steps(out, jobs=args.jobs)
    if args.only:
        wanted = [w.strip() for w in args.only.split(",") if w.strip()]
        steps = [s for s in steps if any(w in s.name for w in wanted)]
        if not steps:
            p.error(f"--only {args.only!r} matches no step")
    if args.list:
        for s in steps:
            print(f"{s.limit:5.0f} s  {'(parallel) ' if s.parallel else ''}{s.name}")
        print(f"budget {args.budget:.0f} s")
        return 0

    import torch

    if not torch.cuda.is_available():
        print(f"gpu_check: no CUDA GPU on this machine (torch {torch.__version__}); nothing checked"
              + (" (--require-gpu: failing)" if args.require_gpu else ""), file=sys.stderr if args.require_gpu else
              sys.stdout)
        return 1 if args.require_gpu else 0

    import shutil

    for sub in ("figures", "executed", "cache", "logs", "results"):  # only what an earlier check wrote
        shutil.rmtree(out / sub, ignore_errors=True)
    os.environ["PYTHONPATH"] = os.pathsep.join([str(ROOT)] + [v for v in [os.environ.get("PYTHONPATH")] if v])
    os.environ.setdefault("MPLBACKEND", "Agg")
    for shared in (ROOT.parent / "shared" / "data", ROOT / "shared" / "data"):  # this project's machines
        if "MNISTLAB_DATA" not in os.environ and (shared / "MNIST" / "raw").is_dir():
            os.environ["MNISTLAB_DATA"] = str(shared)
    meta = {"machine": machine_info(), "torch": torch.__version__, "out": str(out)}
    print(f"gpu_check: {meta['machine']['gpu']}, {meta['machine']['cores']} cores; {len(steps)} steps, budget "
          f"{args.budget:.0f} s; writing {out}", flush=True)
    jobs = args.jobs or sum(s.parallel for s in steps) or 1
    return check(steps, out, budget=args.budget, jobs=jobs, meta=meta, say=lambda m: print(m, flush=True))


if __name__ == "__main__":
    sys.exit(main())
