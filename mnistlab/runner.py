"""Execute the notebooks with papermill and regenerate ``figures/`` plus ``figures/manifest.json``.

Each notebook writes its figures through :class:`mnistlab.viz.store.Figures` into
``<figures>/<notebook>/`` and its key numbers into ``numbers.json`` there; this module runs
the notebooks in order, collects both into the manifest, and names the failing cell when a
notebook breaks. Parameters are checked before anything is touched; a notebook writes into a
temporary folder that replaces its old figures only when the run succeeded, and the manifest
is updated under a lock, atomically.
"""
from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from ._util import cpu_model, load_average
from ._util import project_root as _find_root

__all__ = ["NotebookError", "DirtyTreeError", "project_root", "list_notebooks", "check_parameters", "kernel_environment",
           "run_notebook", "run_notebooks", "git_state", "cell_seconds", "run_times", "describe_run_time", "machine",
           "run_times_markdown", "run_time_words", "write_run_times", "results_markdown", "write_results"]


class NotebookError(RuntimeError):
    """A notebook failed; the message names the notebook, the cell and the error."""


class DirtyTreeError(RuntimeError):
    """The main job (``figures/``) was asked to run from a checkout with uncommitted changes."""


def project_root() -> Path:
    """The source checkout (:func:`mnistlab._util.project_root`, the one finder), required here: the runner needs it."""
    return _find_root(required=True)


def check_parameters(parameters: dict) -> dict:
    """Validate the notebook parameters (QUICK, DATASET, SEED, DEVICE) before any work starts.

    Raises ``ValueError`` naming the parameter and what it may be.
    """
    from .data.datasets import dataset_info

    p = dict(parameters)
    if not isinstance(p.get("QUICK", False), bool):
        raise ValueError(f"QUICK must be True or False, not {p['QUICK']!r}.")
    try:
        p["DATASET"] = dataset_info(str(p.get("DATASET", "mnist"))).name
    except ValueError as exc:
        raise ValueError(f"--dataset: {exc}") from None
    seed = p.get("SEED", 0)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"--seed must be a whole number >= 0, not {seed!r}.")
    device = str(p.get("DEVICE", "auto"))
    if device != "auto" and device.split(":")[0] not in ("cpu", "cuda", "mps"):
        raise ValueError(f"--device must be auto, cpu, cuda, cuda:N or mps, not {device!r}.")
    return p


@contextlib.contextmanager
def _locked(path: Path):
    """An exclusive lock on ``path`` (a lock file) while the manifest is read, merged and rewritten."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as fh:
        try:
            import fcntl

            fcntl.flock(fh, fcntl.LOCK_EX)
        except ImportError:  # Windows: no flock; runs there are one at a time anyway
            pass
        yield


def list_notebooks(only=None, notebooks_dir=None) -> list[Path]:
    """Ordered notebook paths; ``only`` filters by number prefix or name (e.g. ``"01,02"`` or ``["01", "02"]``).

    ``only=None`` means every notebook. A selection that is empty or blank (``""``, ``" , "``,
    ``[]``) or matches nothing raises ``ValueError`` naming the notebooks there are.
    """
    folder = Path(notebooks_dir) if notebooks_dir else project_root() / "notebooks"
    paths = sorted(p for p in folder.glob("[0-9][0-9]_*.ipynb"))
    if only is None:
        return paths
    choices = ", ".join(p.stem for p in paths) or f"none: {folder} holds no NN_name.ipynb"
    wanted = [str(o).strip() for o in (only.split(",") if isinstance(only, str) else only) if str(o).strip()]
    if not wanted:
        raise ValueError(f"--only {only!r} selects no notebook; give numbers or names separated by commas, "
                         f"e.g. --only 01,02, or leave it out for all (notebooks: {choices}).")
    paths = [p for p in paths if any(p.stem == w or p.stem.startswith(w + "_") or p.name == w for w in wanted)]
    if not paths:
        raise ValueError(f"No notebook matches {','.join(wanted)} in {folder} (notebooks: {choices}).")
    return paths


#: folders the notebooks read from the environment; the kernel gets them as absolute paths
_FOLDER_VARIABLES = ("MNISTLAB_DATA", "MNISTLAB_CACHE")


def _absolute(value: str) -> str | None:
    value = value.strip()
    return os.path.abspath(os.path.expanduser(value)) if value else None


def kernel_environment(figures=None, environ=None) -> dict:
    """The variables a notebook kernel gets on top of this process's environment.

    The kernels run in ``notebooks/``, not in the user's working folder, so every folder variable
    the user set (``MNISTLAB_DATA``, ``MNISTLAB_CACHE``) is resolved here, once: surrounding
    whitespace stripped, ``~`` expanded and made absolute against the current working folder. A
    blank one maps to ``None`` (removed: the kernel uses the default folder).

    Parameters
    ----------
    figures : path, optional
        The folder this notebook's figures go to (``MNISTLAB_FIGURES``), made absolute the same way.
    environ : mapping, optional
        Default ``os.environ``.

    Returns
    -------
    dict
        ``{name: absolute path or None}``; only the variables that are set (and ``MNISTLAB_FIGURES``).
    """
    environ = os.environ if environ is None else environ
    env = {name: _absolute(environ[name]) for name in _FOLDER_VARIABLES if name in environ}
    if figures is not None:
        env["MNISTLAB_FIGURES"] = _absolute(str(figures))
    return env


@contextlib.contextmanager
def _environment(changes: dict):
    """``os.environ`` with ``changes`` applied (``None`` removes a variable) for the block; restored afterwards.

    papermill starts the kernel as a child of this process, so the kernel inherits them.
    """
    def apply(values: dict) -> None:
        for name, value in values.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value

    saved = {name: os.environ.get(name) for name in changes}
    try:
        apply(changes)
        yield
    finally:
        apply(saved)


def _git(root: Path, *args: str) -> subprocess.CompletedProcess | None:
    try:
        return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None


def git_state(root) -> dict:
    """``{"commit": full hash or None, "clean": bool or None, "dirty": [paths]}`` of the checkout at ``root``.

    ``clean`` is whether no tracked file differs from the commit (untracked files, and the gallery
    ``figures/`` that the main job itself writes, do not count); ``None``
    (and ``commit`` ``None``) outside a git checkout or without git.
    """
    head = _git(Path(root), "rev-parse", "HEAD")
    if head is None or head.returncode != 0 or not head.stdout.strip():
        return {"commit": None, "clean": None, "dirty": []}
    # the gallery is what the main job writes: its own earlier notebooks' figures do not make the tree dirty
    status = _git(Path(root), "status", "--porcelain", "--untracked-files=no", "--", ":(top)", ":(top,exclude)figures")
    dirty = [line[3:] for line in status.stdout.splitlines() if line.strip()] if status and status.returncode == 0 else []
    clean = None if status is None or status.returncode != 0 else not dirty
    return {"commit": head.stdout.strip(), "clean": clean, "dirty": dirty}


def _clean_stale_staging(figures_dir: Path) -> None:
    """Remove the staging folders (``.<notebook>.<pid>.<random>.tmp``) of runs that were killed.

    A run killed between the two renames of its swap left no ``<notebook>/`` folder: the new
    figures (complete: the swap starts only after success), else the old ones, are put back first.
    """
    from ._util import _pid_alive

    for folder in figures_dir.glob(".*.tmp"):
        parts = folder.name.split(".")
        if not (folder.is_dir() and len(parts) >= 5 and parts[-3].isdigit()) or _pid_alive(int(parts[-3])):
            continue
        stem = ".".join(parts[1:-3])
        target = figures_dir / stem
        if stem and not target.exists():
            complete = (folder / ".complete").exists()  # written once the notebook had succeeded
            for candidate in ((folder / stem) if complete else None, folder / "old"):
                if candidate is not None and candidate.is_dir():
                    candidate.rename(target)
                    break
        shutil.rmtree(folder, ignore_errors=True)


def run_notebook(path, parameters: dict, figures_dir, executed_dir, progress: bool = True) -> dict:
    """Execute one notebook with papermill; return its manifest entry.

    Raises
    ------
    NotebookError
        With the notebook name, the failing cell's number and the exception.
    """
    import papermill as pm
    from . import __version__

    path = Path(path)
    parameters = check_parameters(parameters)
    state = git_state(path.parent)  # read before the run: the commit its figures are made at
    figures_dir, executed_dir = Path(figures_dir), Path(executed_dir)
    executed_dir.mkdir(parents=True, exist_ok=True)
    figures_dir.mkdir(parents=True, exist_ok=True)
    out_dir = figures_dir / path.stem
    # the run writes into a fresh folder; the old figures stay until it has succeeded
    _clean_stale_staging(figures_dir)
    staging = Path(tempfile.mkdtemp(prefix=f".{path.stem}.{os.getpid()}.", suffix=".tmp", dir=figures_dir))
    cached_before = _cached_runs()
    t0 = time.perf_counter()
    try:
        with _environment(kernel_environment(figures=staging.resolve())):  # the kernel inherits it
            pm.execute_notebook(str(path), str(executed_dir / path.name), parameters=parameters,
                                cwd=str(path.parent), kernel_name="python3", progress_bar=progress, log_output=False)
    except pm.PapermillExecutionError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise NotebookError(f"{path.name} failed in cell {exc.exec_count} ({exc.ename}: {exc.evalue}). "
                            f"The executed copy with the traceback is {executed_dir / path.name}.") from None
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    seconds = time.perf_counter() - t0
    new_dir = staging / path.stem
    new_dir.mkdir(exist_ok=True)
    (staging / ".complete").touch()
    if out_dir.exists():  # swap: stale figures of a renamed plot must not survive
        trash = staging / "old"
        out_dir.rename(trash)
    new_dir.rename(out_dir)
    shutil.rmtree(staging, ignore_errors=True)
    numbers_file = out_dir / "numbers.json"
    numbers = json.loads(numbers_file.read_text()) if numbers_file.is_file() else {}
    files = sorted(str(p.relative_to(figures_dir)) for p in out_dir.glob("*") if p.suffix in (".png", ".gif", ".csv"))
    return {"notebook": path.stem, "parameters": parameters, "version": __version__,
            "commit": state["commit"], "clean": state["clean"], "seconds": round(seconds, 1),
            "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "machine": machine(), "cache": {"runs_before": cached_before, "runs_after": _cached_runs()},
            "cells": cell_seconds(executed_dir / path.name), "figures": files, "numbers": numbers}


def _cached_runs() -> int:
    """How many results the experiment cache holds: 0 means the run trained everything it shows."""
    from ._util import cache_root

    folder = cache_root(create=False)
    return sum(1 for _ in folder.glob("*.json")) if folder.is_dir() else 0


def machine() -> dict:
    """The machine a run was made on: CPU model, core count, GPU name (None without one), load average."""
    gpu = None
    if "torch" in sys.modules:  # never import torch just to ask
        torch = sys.modules["torch"]
        gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {"cpu": cpu_model(), "cores": os.cpu_count(), "gpu": gpu, "load_average": load_average()}


def cell_seconds(executed_path) -> list[dict]:
    """Per code cell of an executed notebook: its index, seconds (papermill's timing) and first line.

    Parameters
    ----------
    executed_path : path
        A notebook executed by papermill (``metadata.papermill.duration`` on each cell).

    Returns
    -------
    list of dict
        ``{"cell": i, "seconds": float, "code": first line}`` for every code cell that ran.
    """
    nb = json.loads(Path(executed_path).read_text())
    out = []
    for i, cell in enumerate(nb.get("cells", [])):
        duration = cell.get("metadata", {}).get("papermill", {}).get("duration")
        if cell.get("cell_type") != "code" or duration is None:
            continue
        source = "".join(cell.get("source", ""))
        first = next((ln.strip() for ln in source.splitlines() if ln.strip() and not ln.lstrip().startswith("#")), "")
        out.append({"cell": i, "seconds": round(float(duration), 2), "code": first[:100]})
    return out


def run_times(manifest=None, top: int = 3):
    """Where each notebook's last run spent its time, from a manifest: one row per notebook.

    Parameters
    ----------
    manifest : path or dict, optional
        A ``manifest.json`` (default: the checkout's ``figures/manifest.json``) or its loaded dict.
    top : int
        How many of the slowest code cells to list per notebook.

    Returns
    -------
    pandas.DataFrame
        Indexed by notebook: ``seconds``, ``quick``, ``cached_runs_before`` (results in the experiment
        cache when the run started: 0 means it trained everything), ``commit``, ``finished``, ``cpu``, ``cores``,
        ``load_average`` (when the run ended) and ``slowest`` ("cell 5 (1,234 s): first line; ...";
        empty for runs made before cell timings were recorded).
    """
    import pandas as pd

    if manifest is None or not isinstance(manifest, dict):
        manifest = json.loads(Path(manifest or project_root() / "figures" / "manifest.json").read_text())
    rows = {}
    for name, e in sorted(manifest.get("notebooks", {}).items()):
        cells = sorted(e.get("cells") or [], key=lambda c: -c["seconds"])[:top]
        m = e.get("machine") or {}
        cache = e.get("cache") or {}
        rows[name] = {"seconds": e.get("seconds"), "quick": bool(e.get("parameters", {}).get("QUICK")),
                      "cached_runs_before": cache.get("runs_before"),
                      "commit": (e.get("commit") or "")[:9] or None, "finished": e.get("finished"),
                      "cpu": m.get("cpu"), "cores": m.get("cores"), "load_average": m.get("load_average"),
                      "slowest": "; ".join(f"cell {c['cell']} ({c['seconds']:,.0f} s): {c['code']}" for c in cells)}
    return pd.DataFrame.from_dict(rows, orient="index",
                                  columns=["seconds", "quick", "cached_runs_before", "commit", "finished", "cpu",
                                           "cores", "load_average", "slowest"])


def describe_run_time(notebook: str, root=None) -> str:
    """One line for a notebook's opening cell: how long its last full run and its last QUICK run took.

    Read from ``figures/manifest.json`` (the main job) and ``build/figures-quick/manifest.json``
    (``make figures-quick``), never typed. A run not on record says so.

    Parameters
    ----------
    notebook : str
        The notebook's name, e.g. ``"03_model_search"``.
    root : path, optional
        The checkout (default: found from here).
    """
    root = Path(root) if root else _find_root()
    parts = []
    for what, rel in (("full run", "figures/manifest.json"), ("QUICK run", "build/figures-quick/manifest.json")):
        entry = None
        if root is not None and (root / rel).is_file():
            try:
                entry = json.loads((root / rel).read_text()).get("notebooks", {}).get(notebook)
            except (OSError, ValueError):
                entry = None
        if not entry or entry.get("seconds") is None:
            parts.append(f"{what}: not on record here ({'make figures' if what == 'full run' else 'make figures-quick'})")
            continue
        s, m = float(entry["seconds"]), entry.get("machine") or {}
        took = f"{s:.0f} s" if s < 100 else f"{s / 60:.0f} min"
        where = f" on {m['cores']} cores" if m.get("cores") else ""
        load = f", load average {m['load_average'][0]:g} at the end" if m.get("load_average") else ""
        parts.append(f"{what}: {took}{where} ({(entry.get('finished') or '')[:10]}{load})")
    return f"{notebook}, last measured " + "; ".join(parts) + "."


def run_notebooks(only=None, quick: bool = False, dataset: str = "mnist", seed: int = 0, device: str = "auto",
                  figures_dir=None, executed_dir=None, notebooks_dir=None, progress: bool = True,
                  extra: dict | None = None, allow_dirty: bool = False, jobs: int = 1) -> dict:
    """Run notebooks in order and update ``<figures_dir>/manifest.json``; return the manifest.

    Parameters
    ----------
    only : str or list, optional
        Notebook numbers or names ("01,02"); default all.
    quick : bool
        Small data, every code path (the QUICK parameter).
    figures_dir : path, optional
        Default ``<project>/figures`` for the main job, ``<project>/build/figures-quick`` with
        ``quick`` (a QUICK run never touches the committed gallery).
    executed_dir : path, optional
        Where executed copies go; default ``<project>/notebooks/executed`` (git-ignored).
    extra : dict, optional
        Further notebook parameters by name (e.g. ``{"RESULTS": "saved"}`` for notebook 03); a
        notebook that has no such parameter ignores it (papermill warns).
    allow_dirty : bool
        The main job (writing the committed ``<project>/figures``) refuses a QUICK run, and a
        checkout whose tracked files differ from its commit (``DirtyTreeError``): its figures must be
        reproducible from the commit the manifest records. ``True`` (or ``MNISTLAB_ALLOW_DIRTY=1``) runs
        anyway, warns, and records ``"clean": false`` in every entry, which the freshness test rejects.
    jobs : int
        Notebooks run at a time (default 1, in order). With ``jobs`` > 1 the cores are split between
        that many lanes: each lane's kernels may use only its cores (the CPU affinity) and as many
        torch threads, and takes the notebooks longest first by their last time in this manifest.
        For QUICK runs, whose small batches gain little from a second thread; the main job runs one
        notebook at a time so that each notebook's time is its own. The manifest's ``last_run``
        records the wall time, ``jobs`` and the notebooks of the run.

    Raises
    ------
    NotebookError
        The first notebook (in order) that failed; with ``jobs`` > 1 the other lanes finish first.
    ValueError
        ``jobs`` below 1 or above the cores this process may use.
    """
    extra = dict(extra or {})
    clash = sorted(set(extra) & {"QUICK", "DATASET", "SEED", "DEVICE"})
    if clash:
        raise ValueError(f"Set {clash} with their own options (--quick, --dataset, --seed, --device), not as extra.")
    params = check_parameters({"QUICK": bool(quick), "DATASET": dataset, "SEED": seed, "DEVICE": device, **extra})
    cores = _lane_cores(jobs)
    paths = list_notebooks(only, notebooks_dir)
    root = Path(notebooks_dir).parent if notebooks_dir else project_root()
    figures_dir = Path(figures_dir) if figures_dir else root / ("build/figures-quick" if quick else "figures")
    if len(cores) > 1 and figures_dir.resolve() == (root / "figures").resolve():
        raise ValueError(f"jobs={jobs}: the main job (figures/) runs one notebook at a time, so that each notebook's "
                         "time in the manifest is its own; use jobs > 1 with --quick or another --out folder.")
    executed_dir = Path(executed_dir) if executed_dir else root / "notebooks" / "executed"
    for what, folder in (("figures", figures_dir), ("executed notebooks", executed_dir)):
        _check_folder(folder, what)
    if figures_dir.resolve() == (root / "figures").resolve():  # the main job: the committed gallery
        _check_main_job(root, quick, allow_dirty or os.environ.get("MNISTLAB_ALLOW_DIRTY", "").strip() == "1")
    figures_dir.mkdir(parents=True, exist_ok=True)
    manifest_path = figures_dir / "manifest.json"
    t0 = time.perf_counter()
    if len(cores) == 1:
        for path in paths:
            entry = run_notebook(path, params, figures_dir, executed_dir, progress=progress)
            _update_manifest(manifest_path, entry)
    else:
        _run_lanes(paths, params, figures_dir, executed_dir, cores)
    return _record_last_run(manifest_path, {"notebooks": [p.stem for p in paths], "jobs": len(cores), "quick": bool(quick),
                                            "seconds": round(time.perf_counter() - t0, 1),
                                            "finished": datetime.now(timezone.utc).isoformat(timespec="seconds")})


def _lane_cores(jobs) -> list[list[int]]:
    """The cores of each of ``jobs`` lanes: this process's cores split into that many groups."""
    from .experiments.executors import cpu_count

    if not isinstance(jobs, int) or isinstance(jobs, bool) or jobs < 1:
        raise ValueError(f"jobs must be a whole number >= 1, not {jobs!r}.")
    if jobs == 1:
        return [[]]
    if jobs > cpu_count():
        raise ValueError(f"jobs={jobs} needs a core per lane, but this process may use {cpu_count()} core(s); "
                         f"pass jobs={cpu_count()} or fewer.")
    mine = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else list(range(cpu_count()))
    return [mine[i::jobs] for i in range(jobs)]


def _lanes(paths, seconds: dict, n: int) -> list[list[Path]]:
    """Notebooks into ``n`` lanes, longest first, each to the lane with the least work so far.

    ``seconds`` holds each notebook's last time; one without a time counts as the longest known.
    """
    guess = max(seconds.values(), default=60.0)
    order = sorted(paths, key=lambda p: -seconds.get(p.stem, guess))
    lanes, load = [[] for _ in range(n)], [0.0] * n
    for path in order:
        i = load.index(min(load))
        lanes[i].append(path)
        load[i] += seconds.get(path.stem, guess)
    return [lane for lane in lanes if lane]


def _run_lane(paths, params, figures_dir, executed_dir, cores) -> str | None:
    """One lane, in a process of its own: its notebooks in turn on ``cores``; the first error's text, or None."""
    if hasattr(os, "sched_setaffinity"):  # Linux; elsewhere the lanes share the cores and keep the thread counts
        os.sched_setaffinity(0, cores)  # the kernels inherit the affinity and the thread counts
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[name] = str(len(cores))
    manifest_path = Path(figures_dir) / "manifest.json"
    for path in paths:
        try:
            entry = run_notebook(path, params, figures_dir, executed_dir, progress=False)
        except NotebookError as exc:
            return str(exc)
        _update_manifest(manifest_path, entry)
        print(f"{path.stem}: done in {entry['seconds']:.0f} s (cores {', '.join(map(str, cores))})", flush=True)
    return None


def _run_lanes(paths, params, figures_dir, executed_dir, cores) -> None:
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    manifest_path = figures_dir / "manifest.json"
    last = json.loads(manifest_path.read_text()).get("notebooks", {}) if manifest_path.is_file() else {}
    seconds = {name: e["seconds"] for name, e in last.items()
               if e.get("seconds") and bool(e.get("parameters", {}).get("QUICK")) == bool(params["QUICK"])}
    lanes = _lanes(paths, seconds, len(cores))
    with ProcessPoolExecutor(len(lanes), mp_context=mp.get_context("spawn")) as pool:
        errors = list(pool.map(_run_lane, lanes, [params] * len(lanes), [figures_dir] * len(lanes),
                               [executed_dir] * len(lanes), cores[:len(lanes)]))
    failed = sorted((e for e in errors if e), key=lambda e: e.split(" ")[0])
    if failed:
        raise NotebookError(failed[0] + (f" ({len(failed) - 1} more failed)" if len(failed) > 1 else ""))


def _record_last_run(manifest_path: Path, run: dict) -> dict:
    """Store what the last :func:`run_notebooks` call did (``last_run``) in the manifest; return the manifest."""
    from ._util import atomic_write

    with _locked(manifest_path.with_name(".manifest.lock")):
        manifest = json.loads(manifest_path.read_text()) if manifest_path.is_file() else {}
        manifest["last_run"] = run
        text = json.dumps(manifest, indent=2, sort_keys=True)
        atomic_write(manifest_path, lambda fh: fh.write(text.encode()))
    return manifest


def _check_main_job(root: Path, quick: bool, allow_dirty: bool) -> None:
    """The committed gallery is made in full (never QUICK) from a clean checkout, or loudly marked otherwise."""
    import warnings

    state = git_state(root)
    if state["commit"] is None:  # not a git checkout: there is no committed gallery to protect
        return
    if quick:
        raise ValueError(f"QUICK figures never go to the committed gallery {root / 'figures'}; "
                         "give another folder (--out), e.g. build/figures-quick.")
    if state["clean"] is False:
        shown = ", ".join(state["dirty"][:8]) + (" ..." if len(state["dirty"]) > 8 else "")
        message = (f"the checkout has uncommitted changes ({len(state['dirty'])} files: {shown}); figures made now "
                   f"could not be reproduced from commit {state['commit'][:12]}.")
        if not allow_dirty:
            raise DirtyTreeError(f"Refusing to write {root / 'figures'}: {message} Commit or stash them, or pass "
                                 "allow_dirty=True (MNISTLAB_ALLOW_DIRTY=1) to record the run as made from a dirty tree.")
        warnings.warn(f"{message} The manifest records \"clean\": false for these notebooks.", stacklevel=3)


def _check_folder(folder: Path, what: str) -> None:
    """``folder`` is a folder or can be made one (nothing above it is a file); ``ValueError`` otherwise."""
    from ._util import file_kind

    if not str(folder).strip():
        raise ValueError(f"The folder for the {what} is empty; give a folder.")
    for above in (folder, *folder.parents):
        kind = file_kind(above)
        if kind is None:
            continue
        if kind != "a folder":
            where = "" if above == folder else f" cannot be created: {above}"
            raise ValueError(f"The folder for the {what}, {folder},{where} is {kind}, not a folder; give another folder.")
        return


def _update_manifest(manifest_path: Path, entry: dict) -> dict:
    """Merge one notebook's entry into the manifest, under a lock and atomically (runs may be concurrent)."""
    from ._util import atomic_write

    with _locked(manifest_path.with_name(".manifest.lock")):
        manifest = json.loads(manifest_path.read_text()) if manifest_path.is_file() else {}
        manifest.setdefault("notebooks", {})[entry["notebook"]] = entry
        # per-figure view, as the README gallery and the tests read it; only files that exist
        folder = manifest_path.parent
        manifest["figures"] = {f: {k: e.get(k) for k in ("notebook", "parameters", "version", "commit", "clean", "seconds",
                                                          "numbers")}
                               for e in manifest["notebooks"].values() for f in e["figures"] if (folder / f).is_file()}
        text = json.dumps(manifest, indent=2, sort_keys=True)
        atomic_write(manifest_path, lambda fh: fh.write(text.encode()))
    return manifest


RUN_TIMES_START, RUN_TIMES_END = "<!-- run-times:start -->", "<!-- run-times:end -->"


def _took(seconds) -> str:
    if seconds is None:
        return "not on record"
    seconds = float(seconds)
    return f"{seconds:.0f} s" if seconds < 100 else f"{seconds / 60:.1f} min"


def _quick_manifest(quick_manifest=None) -> dict | None:
    """The QUICK runs' manifest (default ``build/figures-quick/manifest.json``) as a dict; None without one."""
    if quick_manifest is None:
        root = _find_root()
        quick_manifest = root / "build" / "figures-quick" / "manifest.json" if root else None
    if isinstance(quick_manifest, dict):
        return quick_manifest
    if quick_manifest is None or not Path(quick_manifest).is_file():
        return None
    return json.loads(Path(quick_manifest).read_text())


def _quick_run_times(quick_manifest=None):
    """:func:`run_times` of the last QUICK run (default ``build/figures-quick/manifest.json``); None without one."""
    manifest = _quick_manifest(quick_manifest)
    return None if manifest is None else run_times(manifest)


def _quick_wall(quick_manifest=None) -> tuple[float, int] | None:
    """(wall seconds, notebooks at a time) of the last QUICK run, when it ran every notebook its manifest holds."""
    manifest = _quick_manifest(quick_manifest)
    last = (manifest or {}).get("last_run") or {}
    if not last.get("quick") or not last.get("seconds") or set(manifest.get("notebooks", {})) - set(last.get("notebooks", [])):
        return None
    return float(last["seconds"]), int(last.get("jobs", 1))


def _blocks_present(text: str, keys) -> bool:
    """Whether each ``<!-- KEY:start -->`` and ``<!-- KEY:end -->`` of ``keys`` appears once, in that order."""
    for key in keys:
        start, end = f"<!-- {key}:start -->", f"<!-- {key}:end -->"
        if text.count(start) != 1 or text.count(end) != 1 or text.find(end) < text.find(start):
            return False
    return True


def _fill_markers(text: str, blocks: dict, inline: dict) -> str:
    """``text`` with what stands between each ``<!-- KEY:start -->`` and ``<!-- KEY:end -->`` replaced:
    ``blocks`` on lines of their own, ``inline`` words in place (every pair of their key)."""
    for key, value in [*((k, "\n" + v + "\n") for k, v in blocks.items()), *inline.items()]:
        text = re.sub(rf"(<!-- {re.escape(key)}:start -->).*?(<!-- {re.escape(key)}:end -->)",
                      lambda m: m.group(1) + value + m.group(2), text, flags=re.S)
    return text


def _write_if_changed(path: Path, old: str, new: str) -> None:
    if new != old:
        from ._util import atomic_write

        atomic_write(path, lambda fh: fh.write(new.encode()))


def run_times_markdown(manifest=None, quick_manifest=None) -> str:
    """The README's table of how long each notebook's last full run took, from the manifest (never typed).

    One row per notebook: full-run time, when and at which commit, the machine and its load average at
    the end (what makes a time trustworthy), the slowest cells, and the last QUICK time if
    ``quick_manifest`` (default ``build/figures-quick/manifest.json`` when it exists) has one; then the total.
    """
    full = run_times(manifest)
    quick = _quick_run_times(quick_manifest)
    lines = ["| notebook | full run | experiment cache at the start | made | machine (1-min load average at the end) "
             "| slowest cells | QUICK |", "| --- | --- | --- | --- | --- | --- | --- |"]
    def known(v) -> bool:
        return v is not None and not (isinstance(v, float) and v != v)  # None and NaN: not recorded

    for name, r in full.iterrows():
        day = (r["finished"] if known(r["finished"]) else "")[:10]
        made = f"{day}, `{r['commit']}`" if known(r["commit"]) else f"{day}, no commit recorded"
        load = f" (load {r['load_average'][0]:g})" if known(r["load_average"]) and len(r["load_average"]) else ""
        machine_ = f"{int(r['cores'])} cores, {r['cpu']}{load}" if known(r["cores"]) else "not recorded"
        q = _took(quick.loc[name, "seconds"]) if quick is not None and name in quick.index else "not on record"
        slowest = (r["slowest"] if known(r["slowest"]) and r["slowest"] else "not recorded").replace("|", "\\|")
        before = r["cached_runs_before"]
        cache = ("not recorded" if not known(before) else "empty: everything trained" if int(before) == 0
                 else f"{int(before):,} results already there: cached runs not retrained")
        lines.append(f"| `{name}` | {_took(r['seconds'])} | {cache} | {made} | {machine_} | {slowest} | {q} |")
    total = full["seconds"].fillna(0).sum()
    wall = _quick_wall(quick_manifest)
    if quick is None or not len(quick):
        quick_all = "not on record"
    elif wall is not None and wall[1] > 1:  # notebooks side by side: the wall time, and the notebooks' own sum
        quick_all = f"{_took(wall[0])} ({wall[1]} notebooks at a time; {_took(quick['seconds'].sum())} one after another)"
    else:
        quick_all = _took(quick["seconds"].sum())
    lines.append(f"| all | {_took(total)} | | | | | {quick_all} |")
    return "\n".join(lines)


def _duration_words(seconds: float) -> str:
    if seconds >= 5400:
        return f"{seconds / 3600:.1f} hours"
    return f"{seconds / 60:.0f} minutes" if seconds >= 100 else f"{seconds:.0f} seconds"


def run_time_words(manifest=None, quick_manifest=None) -> dict:
    """The run times the README quotes inline, as words, keyed by their marker name.

    ``run-total``: the summed full-run time ("3.6 hours", "52 minutes"); ``run-range``: the
    quickest and the slowest notebook ("25 seconds to 21 minutes"); ``quick-total``: the QUICK
    time (from ``quick_manifest``, default ``build/figures-quick/manifest.json``; "not on record"
    without one): the last run's wall time when it ran every notebook several at a time
    ("4 minutes, 2 notebooks at a time,"), else the notebooks' summed times.
    """
    full = run_times(manifest)["seconds"].dropna()
    quick = _quick_run_times(quick_manifest)
    quick = [] if quick is None else quick["seconds"].dropna()
    wall = _quick_wall(quick_manifest)
    if not len(quick):
        quick_words = "not on record"
    elif wall is not None and wall[1] > 1:
        quick_words = f"{_duration_words(wall[0])}, {wall[1]} notebooks at a time,"
    else:
        quick_words = _duration_words(quick.sum())
    return {"run-total": _duration_words(full.sum()),
            "run-range": (f"{_duration_words(full.min())} to {_duration_words(full.max())}" if len(full)
                          else "not on record"),
            "quick-total": quick_words}


def write_run_times(path, manifest=None, quick_manifest=None) -> bool:
    """Replace what stands between the run-times markers of ``path`` (the README) with :func:`run_times_markdown`.

    Also replaces the text between each inline pair ``<!-- KEY:start -->`` / ``<!-- KEY:end -->``
    whose KEY is one of :func:`run_time_words` (``run-total``, ``run-range``, ``quick-total``) with
    those words.

    Returns False (and changes nothing) when the file lacks the two markers in order.
    """
    path = Path(path)
    text = path.read_text()
    if not _blocks_present(text, ["run-times"]):  # checked before the manifests are read
        return False
    new = _fill_markers(text, {"run-times": run_times_markdown(manifest, quick_manifest)},
                        run_time_words(manifest, quick_manifest))
    _write_if_changed(path, text, new)
    return True


#: The project's own accuracy targets (README "Project targets"), checked against the main job's numbers.
RESULT_TARGETS = {"best-mean": 0.996, "best-first3": 0.995, "best-ensemble": 0.997}


def _pct(x, digits: int = 2) -> str:
    return f"{100 * float(x):.{digits}f}%"


def _points(x) -> str:
    return f"{100 * float(x):+.1f}"


def results_markdown(figures=None) -> dict:
    """The README's result tables and the numbers its targets table quotes, from the main job's files (never typed).

    Parameters
    ----------
    figures : path, optional
        The gallery the main job wrote (default: the checkout's ``figures/``). Read:
        ``03_model_search/numbers.json``, ``strongest_recipe.csv`` and ``ensemble.csv``;
        ``07_gan/numbers.json``; ``08_transfer_learning/gains.csv``.

    Returns
    -------
    dict
        Keyed by README marker name. Blocks: ``results-best`` (the strongest recipe's table: every
        seed, mean ± std, ensemble, the shipped model) and ``results-transfer`` (per transfer task,
        the best strategy's gain over training from scratch at the fewest and at all labels, with
        its 95% interval and verdict), ``results-gan`` (notebook 07 against its targets, read from
        ``07_gan/numbers.json``). Inline words: ``gan-summary`` and ``gan-summary-status`` (which CPU
        targets it meets), ``best-protocol``, ``best-mean``,
        ``best-first3``, ``best-ensemble`` and, for each, ``<key>-status`` ("met" / "not met in the
        last main job") against :data:`RESULT_TARGETS`.
    """
    import pandas as pd

    from .training.pretrained import pretrained_info

    root = Path(figures) if figures else project_root() / "figures"
    n3 = json.loads((root / "03_model_search" / "numbers.json").read_text())
    runs = pd.read_csv(root / "03_model_search" / "strongest_recipe.csv", index_col=0).sort_values("seed")
    ens = pd.read_csv(root / "03_model_search" / "ensemble.csv", index_col=0).iloc[0]
    acc = runs["test_acc"]
    secs = runs["train_seconds"]
    protocol = (f"{len(runs)} seeds × {n3['strong_epochs']} epochs on all 60,000 training images"
                f" (the main job's {n3.get('protocol', 'short')} protocol)")
    first3 = acc[runs["seed"].isin([0, 1, 2])]
    words = {"best-protocol": protocol,
             "best-mean": f"{_pct(acc.mean())} ± {_pct(acc.std(ddof=1))} ({len(acc)} seeds, {n3['strong_epochs']} epochs)",
             "best-first3": f"{_pct(first3.mean())} ± {_pct(first3.std(ddof=1))}",
             "best-ensemble": f"{_pct(ens['ensemble_acc'])} ({int(ens['ensemble_errors'])} errors in {int(ens['n']):,})"}
    measured = {"best-mean": acc.mean(), "best-first3": first3.mean(), "best-ensemble": ens["ensemble_acc"]}
    for key, target in RESULT_TARGETS.items():
        words[f"{key}-status"] = "met" if measured[key] >= target else "not met in the last main job"
    shipped = pretrained_info("mnist")
    best = ["| | test accuracy | training time per run |", "| --- | --- | --- |",
            f"| {len(acc)} seeds, mean ± std | **{_pct(acc.mean())} ± {_pct(acc.std(ddof=1))}** "
            f"({', '.join(_pct(a) for a in acc)}) | {secs.mean():.0f} s ({secs.min():.0f}-{secs.max():.0f} s; "
            f"{n3.get('workers', 2)} workers of 1 thread each) |",
            f"| ensemble of the {len(acc)} seeds (averaged probabilities) | **{_pct(ens['ensemble_acc'])}** "
            f"({int(ens['ensemble_errors'])} errors in {int(ens['n']):,}) | |",
            f"| the shipped pretrained model (`mnistlab.load_pretrained()`, {shipped['recipe_settings']['epochs']} "
            f"epochs, seed {shipped['seed']}, {shipped['torch_threads']} thread{'' if shipped['torch_threads'] == 1 else 's'}) | {_pct(shipped['test_acc'])} | "
            f"{shipped['train_seconds']:,.0f} s |"]
    gains = pd.read_csv(root / "08_transfer_learning" / "gains.csv", index_col=0)
    gains["labels"] = gains["labels"].astype(str)
    rows = ["| trained on -> transferred to | fewest labels per class | all labels |", "| --- | --- | --- |"]
    for task, g in gains.groupby("task", sort=False):
        cells = []
        for labels in (g["labels"].iloc[0], "all"):
            at = g[g["labels"] == labels]
            top = at.loc[at["diff"].idxmax()]
            cells.append(f"{'all labels' if labels == 'all' else f'{labels} per class'}: {top['strategy']} {_pct(top['mean_strategy'], 1)} against scratch "
                         f"{_pct(top['mean_baseline'], 1)}, {_points(top['diff'])} points "
                         f"({_points(top['ci_low'])} to {_points(top['ci_high'])}), {top['verdict']}")
        rows.append(f"| {task.replace('→', '->')} | {cells[0]} | {cells[1]} |")
    return {"results-best": "\n".join(best), "results-transfer": "\n".join(rows), **_gan_results(root), **words}


def _gan_results(root: Path) -> dict:
    """Notebook 07's targets table, its one-line summary and that summary's verdicts, from ``07_gan/numbers.json``."""
    n = json.loads((root / "07_gan" / "numbers.json").read_text())
    shares = n["shares_dcgan"]
    lo, hi = min(range(10), key=shares.__getitem__), max(range(10), key=shares.__getitem__)
    gap = 100 * n["max_share_deviation"]
    secs = n["train_seconds"]
    cond = n["cond_accuracy"]
    # each CPU target's verdict, read by the table and by the summary's status words
    met = {"95%": cond >= 0.95, "98%": cond >= 0.98, "class shares": gap <= 3,
           "Frechet distance": max(n["ratio_cdcgan"], n["ratio_dcgan"]) <= 5, "10 minutes": secs <= 600}
    said = {k: "met" if v else "not met" for k, v in met.items()}
    rows = ["| target | measured | |", "| --- | --- | --- |",
            f"| conditional samples classified as the requested class >= 95% (stretch goal >= 98%) | {_pct(cond)} | "
            f"{said['95%']}; stretch goal {said['98%']} |",
            f"| every class 10% +- 3% of the unconditional samples | {_pct(shares[lo], 1)} (class {lo}) to "
            f"{_pct(shares[hi], 1)} (class {hi}); KL to uniform {n['kl_uniform_dcgan']:.3f} nats | "
            f"{said['class shares']} (largest gap {gap:.1f} points) |",
            f"| Frechet distance in the classifier's feature space within 5x of train-vs-test ({n['floor']:.4f}) | "
            f"conditional {n['frechet_cdcgan']:.3f} ({n['ratio_cdcgan']:.1f}x), unconditional {n['frechet_dcgan']:.2f} "
            f"({n['ratio_dcgan']:.0f}x); a 1-px blur of the test set scores {n['blurred']:.3f} | "
            f"{said['Frechet distance']} |",
            f"| both GANs trained in <= 10 minutes | {secs:.0f} s = {secs / 60:.1f} min ("
            + (f"side by side, one thread each: {n['train_seconds_dcgan']:.0f} s and {n['train_seconds_cdcgan']:.0f} s"
               if n.get("workers", 1) > 1 else f"{n['train_seconds_dcgan']:.0f} s + {n['train_seconds_cdcgan']:.0f} s")
            + f") | {said['10 minutes']} |",
            "| the same on a GPU in <= 2 minutes | not measured yet (`benchmarks/gan_gpu.py` measures it) | open |",
            "",
            f"Precision / recall in the same feature space (torch-fidelity, k = 3): unconditional "
            f"{n['precision_dcgan']:.2f} / {n['recall_dcgan']:.2f}, conditional {n['precision_cdcgan']:.2f} / "
            f"{n['recall_cdcgan']:.2f}. Median distance of a sample to its nearest training digit: "
            f"{n['median_nn_dcgan']:.2f} (unconditional) and {n['median_nn_cdcgan']:.2f} (conditional), against "
            f"{n['median_nn_test']:.2f} for test digits"
            + (", so neither GAN copies training digits." if min(n['median_nn_dcgan'], n['median_nn_cdcgan'])
               >= n['median_nn_test'] else ".")]
    summary = (f"{_pct(cond)}; {_pct(shares[lo], 1)} to {_pct(shares[hi], 1)}; {n['ratio_cdcgan']:.1f}x / "
               f"{n['ratio_dcgan']:.0f}x; {secs / 60:.1f} min; not measured")
    status = "; ".join(f"{word}: {', '.join(k for k, v in met.items() if v is want)}"
                       for word, want in (("met", True), ("not met", False)) if any(v is want for v in met.values()))
    return {"results-gan": "\n".join(rows), "gan-summary": summary, "gan-summary-status": f"{status}; open: GPU"}


def write_results(path, figures=None) -> bool:
    """Fill the README's result markers with :func:`results_markdown`: ``<!-- KEY:start -->`` ... ``<!-- KEY:end -->``.

    Blocks (``results-best``, ``results-transfer``, ``results-gan``) go on lines of their own; the
    other keys are inline. Returns False (and changes nothing) when a block's markers are missing.
    """
    path = Path(path)
    text = path.read_text()
    parts = results_markdown(figures)
    blocks = {k: v for k, v in parts.items() if k.startswith("results-")}
    if not _blocks_present(text, blocks):
        return False
    _write_if_changed(path, text, _fill_markers(text, blocks, {k: v for k, v in parts.items() if k not in blocks}))
    return True
