"""What every benchmark script shares: the common flags, timing helpers, the machine description and the result JSON.

A benchmark script does::

    from _common import Bench, parser

    p = parser(__doc__, device="cpu")          # --smoke, --json, --seed, --threads (and --device)
    args = p.parse_args(argv)
    bench = Bench("loader_speed", args)        # sets torch threads, notes the start (time, load average)
    ...                                        # measure ours and the reference in the same run
    bench.finish(measured={...}, ratio=ref_s / ours_s, ratio_means="reference seconds / ours",
                 table=[row("one epoch", ours="0.05 s", reference="2.2 s", ratio="45x")])

``finish`` writes ``benchmarks/results/<name>.json`` (``make bench``), or the ``--json`` path; a
``--smoke`` run (tiny sizes, a few seconds, the same code paths) writes ``build/bench-smoke/<name>.json``
instead, so a test never overwrites the committed results. The JSON (``SCHEMA``)::

    {"benchmark": "loader_speed", "schema": 1, "smoke": false, "date": "2025-01-31T12:00:00+00:00",
     "seconds": 41.2,                                   # wall time of the whole script
     "machine": {"platform": ..., "cpu": "AMD EPYC 7B13", "cores": 2, "gpu": null,
                 "load_average": {"start": [..3 numbers..], "end": [...]}},
     "torch": "2.5.1", "torch_threads": 2, "device": "cpu",
     "settings": {...the script's arguments...},
     "measured": {...every figure the script measured, ours and the reference...},
     "ratio": 45.3, "ratio_means": "reference seconds / ours (higher: ours faster)",
     "table": [{"what": ..., "ours": ..., "reference": ..., "ratio": ...}]}   # rows of the README speed table

``ratio`` is always a finite number: ours against the reference measured in the same run, so it
holds when the absolute seconds move with the machine's load.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from mnistlab._util import cpu_model, load_average  # noqa: F401 (the package's one reader; cpu_model re-exported here)

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"
SMOKE_DIR = ROOT / "build" / "bench-smoke"
SCHEMA = 1
REQUIRED_KEYS = ("benchmark", "schema", "smoke", "date", "seconds", "machine", "torch", "torch_threads", "device",
                 "settings", "measured", "ratio", "ratio_means", "table")
MACHINE_KEYS = ("platform", "cpu", "cores", "gpu", "load_average")
TABLE_KEYS = ("what", "ours", "reference", "ratio")


# --------------------------------------------------------------------------------------------- flags

def parser(doc: str, *, seed: int | None = 0, threads: bool = True, device: str | None = None,
           smoke_help: str = "tiny sizes, a few seconds, the same code paths") -> argparse.ArgumentParser:
    """An ArgumentParser with the flags every benchmark has: ``--smoke``, ``--json`` (and ``--seed``,
    ``--threads``, ``--device`` unless turned off); the description is the docstring's first line."""
    p = argparse.ArgumentParser(description=doc.strip().splitlines()[0], epilog="\n".join(doc.strip().splitlines()[1:]),
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--smoke", action="store_true",
                   help=f"{smoke_help}; writes {SMOKE_DIR.relative_to(ROOT)}/<name>.json unless --json")
    p.add_argument("--json", default=None,
                   help=f"write the result here (default {RESULTS_DIR.relative_to(ROOT)}/<name>.json)")
    if seed is not None:
        p.add_argument("--seed", type=int, default=seed)
    if threads:
        p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's choice)")
    if device is not None:
        p.add_argument("--device", default=device, help=f"cpu, cuda or auto (default {device})")
    return p


def gan_arguments(p: argparse.ArgumentParser, argv, *, steps: int, width: int, n_eval: int, steps_help: str,
                  width_help: str):
    """Parse the flags the two GAN benchmarks share (``--steps``, ``--width``, ``--n-eval``, ``--test-limit``).

    ``--smoke`` sets them to 4 steps, width 8, 200 samples judged against the first 1,000 test images.
    Returns the parsed arguments.
    """
    p.add_argument("--steps", type=int, default=steps, help=steps_help)
    p.add_argument("--width", type=int, default=width, help=width_help)
    p.add_argument("--n-eval", type=int, default=n_eval, help="samples judged per GAN")
    p.add_argument("--test-limit", type=int, default=None, help="the first N test images as the judges' reference")
    args = p.parse_args(argv)
    if args.smoke:
        args.steps, args.width, args.n_eval, args.test_limit = 4, 8, 200, 1000
    return args


def result_path(name: str, args) -> Path:
    """Where a run writes its JSON: ``--json``, else build/bench-smoke/ for smoke runs, else benchmarks/results/."""
    if getattr(args, "json", None):
        return Path(args.json)
    return (SMOKE_DIR if getattr(args, "smoke", False) else RESULTS_DIR) / f"{name}.json"


# --------------------------------------------------------------------------------------------- machine

def gpu_name() -> str | None:
    try:
        import torch

        return torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    except Exception:  # noqa: BLE001 (a broken driver must not break a CPU benchmark)
        return None


def machine_info() -> dict:
    """Platform, CPU model, core count and GPU (None without one) of this machine."""
    return {"platform": platform.platform(), "cpu": cpu_model(), "cores": os.cpu_count(), "gpu": gpu_name(),
            "python": platform.python_version()}


# --------------------------------------------------------------------------------------------- timing

def sync(device=None) -> None:
    """Wait for queued GPU work so a clock read means something (a no-op on the CPU)."""
    import torch

    if device is not None and str(device).startswith("cuda") and torch.cuda.is_available():
        torch.cuda.synchronize()


class Stopwatch:
    """``with Stopwatch() as sw: ...`` then ``sw.seconds`` (wall) and ``sw.cpu_seconds`` (this process, all threads)."""

    def __init__(self, device=None):
        self.device, self.seconds, self.cpu_seconds = device, 0.0, 0.0

    def __enter__(self):
        sync(self.device)
        self._t, self._c = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc):
        sync(self.device)
        self.seconds = time.perf_counter() - self._t
        self.cpu_seconds = time.process_time() - self._c
        return False


def timed(fn, *args, **kwargs):
    """``(seconds, fn(*args, **kwargs))``."""
    with Stopwatch() as sw:
        out = fn(*args, **kwargs)
    return sw.seconds, out


def best_of(fn, repeats: int) -> tuple[float, list[float]]:
    """Run ``fn()`` ``repeats`` times; (fastest seconds, every time)."""
    times = [timed(fn)[0] for _ in range(max(1, repeats))]
    return min(times), times


def interleaved(fns: dict, repeats: int, on_repeat=None) -> dict[str, list]:
    """Run every ``fns[name]()`` once per repeat, alternating (a, b, a, b...), so load on a shared machine
    hits all alike; returns ``{name: [what each call returned]}``. ``on_repeat(i, {name: value})`` reports."""
    out = {name: [] for name in fns}
    for i in range(max(1, repeats)):
        for name, fn in fns.items():
            out[name].append(fn())
        if on_repeat is not None:
            on_repeat(i, {name: values[-1] for name, values in out.items()})
    return out


def median(values) -> float:
    return float(statistics.median(values))


# --------------------------------------------------------------------------------------------- result

def row(what: str, *, ours: str, reference: str, ratio: str) -> dict:
    """One row of the README speed table (text as it should appear)."""
    return {"what": what, "ours": ours, "reference": reference, "ratio": ratio}


def jsonable(value):
    """numpy / torch scalars and arrays, tuples, Paths -> plain JSON values."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [jsonable(v) for v in value]
    if isinstance(value, (str, bool, int)) or value is None:
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "tolist"):  # numpy / torch
        return jsonable(value.tolist())
    if hasattr(value, "item"):
        return jsonable(value.item())
    try:
        return jsonable(float(value))
    except (TypeError, ValueError):
        return str(value)


class Bench:
    """One benchmark run: applies ``--threads``, notes the start, prints a banner; :meth:`finish` writes the JSON."""

    def __init__(self, name: str, args, device=None, quiet: bool = False):
        import torch

        self.name, self.args = name, args
        if getattr(args, "threads", None):
            torch.set_num_threads(args.threads)
        self.device = str(device if device is not None else getattr(args, "device", "cpu"))
        self.date = datetime.now(timezone.utc).isoformat(timespec="seconds")
        self.load_start = load_average()
        self.t0 = time.perf_counter()
        self.machine = machine_info()
        if not quiet:
            m = self.machine
            print(f"{name}{' (smoke)' if getattr(args, 'smoke', False) else ''}: {m['cpu']}, {m['cores']} cores"
                  f"{', GPU ' + m['gpu'] if m['gpu'] else ''}; torch {torch.__version__}, {torch.get_num_threads()} "
                  f"threads; load average {' '.join(f'{v:.2f}' for v in self.load_start)}", flush=True)

    def result(self, measured: dict, ratio: float, ratio_means: str, table=(), **extra) -> dict:
        import torch

        ratio = float(ratio)
        if not math.isfinite(ratio):
            raise ValueError(f"{self.name}: the ratio must be a finite number, got {ratio}")
        settings = {k: v for k, v in vars(self.args).items() if k != "json"}
        return jsonable({
            "benchmark": self.name, "schema": SCHEMA, "smoke": bool(getattr(self.args, "smoke", False)),
            "date": self.date, "seconds": time.perf_counter() - self.t0,
            "machine": {**self.machine, "load_average": {"start": self.load_start, "end": load_average()}},
            "torch": torch.__version__, "torch_threads": torch.get_num_threads(), "device": self.device,
            "settings": settings, "measured": measured, "ratio": ratio, "ratio_means": ratio_means,
            "table": [dict(r) for r in table], **extra})

    def finish(self, measured: dict, ratio: float, ratio_means: str, table=(), **extra) -> Path:
        """Write the result JSON (atomically) and say where; returns the path."""
        result = self.result(measured, ratio, ratio_means, table, **extra)
        path = result_path(self.name, self.args)
        write_json(path, result)
        print(f"ratio ({ratio_means}): {result['ratio']:.3g}; load average at the end "
              f"{' '.join(f'{v:.2f}' for v in result['machine']['load_average']['end'])}; wrote {_show(path)}",
              flush=True)
        return path


def write_json(path, data) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(jsonable(data), indent=2) + "\n")
    os.replace(tmp, path)
    return path


def _show(path: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


def check_result(result: dict) -> list[str]:
    """Problems with a result dict against the schema (empty when sound); the tests and speed_table use it."""
    problems = [f"missing key {k!r}" for k in REQUIRED_KEYS if k not in result]
    if problems:
        return problems
    problems += [f"machine lacks {k!r}" for k in MACHINE_KEYS if k not in result["machine"]]
    if not isinstance(result["ratio"], (int, float)) or isinstance(result["ratio"], bool) \
            or not math.isfinite(result["ratio"]) or result["ratio"] <= 0:
        problems.append(f"ratio {result['ratio']!r} is not a finite positive number")
    if not (isinstance(result["seconds"], (int, float)) and result["seconds"] > 0):
        problems.append(f"seconds {result['seconds']!r} is not positive")
    try:
        datetime.fromisoformat(result["date"])
    except (TypeError, ValueError):
        problems.append(f"date {result['date']!r} is not ISO 8601")
    for r in result["table"]:
        problems += [f"table row {r} lacks {k!r}" for k in TABLE_KEYS if k not in r]
    for key, value in _walk(result["measured"]):
        if "seconds" in key.rsplit(".", 1)[-1] and not (isinstance(value, (int, float)) and value > 0):
            problems.append(f"measured {key} = {value!r} is not a positive time")
    return problems


def _walk(value, prefix=""):
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _walk(v, f"{prefix}.{k}" if prefix else str(k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _walk(v, f"{prefix}[{i}]")
    else:
        yield prefix, value


def fmt_s(seconds: float) -> str:
    """Seconds as the README writes them: 0.049 s, 8.4 s, 93 s, 5.5 min."""
    if seconds < 1:
        return f"{seconds:.3f} s"
    if seconds < 100:
        return f"{seconds:.1f} s"
    if seconds < 600:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.1f} min"


def fmt_x(ratio: float) -> str:
    return f"{ratio:.1f}x" if ratio < 100 else f"{ratio:.0f}x"


if __name__ == "__main__":
    sys.exit("benchmarks/_common.py is a helper module; run one of the benchmark scripts.")
