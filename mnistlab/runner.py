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
import shutil
import subprocess
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from ._util import project_root as _project_root

__all__ = ["NotebookError", "project_root", "list_notebooks", "check_parameters", "kernel_environment", "run_notebook",
           "run_notebooks"]


class NotebookError(RuntimeError):
    """A notebook failed; the message names the notebook, the cell and the error."""


def project_root() -> Path:
    """The folder holding ``notebooks/`` and ``pyproject.toml`` (the source checkout)."""
    root = _project_root()
    if root is None or not (root / "notebooks").is_dir():
        raise FileNotFoundError("Cannot find the mnistlab checkout (a folder with notebooks/ and pyproject.toml); "
                                "run from inside it.")
    return root


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


def _git_commit(root: Path) -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def _clean_stale_staging(figures_dir: Path) -> None:
    """Remove the staging folders (``.<notebook>.<pid>.<random>.tmp``) of runs that were killed.

    A run killed between the two renames of its swap left no ``<notebook>/`` folder: the new
    figures (complete: the swap starts only after success), else the old ones, are put back first.
    """
    from .training.checkpoint import _pid_alive

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
    figures_dir, executed_dir = Path(figures_dir), Path(executed_dir)
    executed_dir.mkdir(parents=True, exist_ok=True)
    figures_dir.mkdir(parents=True, exist_ok=True)
    out_dir = figures_dir / path.stem
    # the run writes into a fresh folder; the old figures stay until it has succeeded
    _clean_stale_staging(figures_dir)
    staging = Path(tempfile.mkdtemp(prefix=f".{path.stem}.{os.getpid()}.", suffix=".tmp", dir=figures_dir))
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
            "commit": _git_commit(path.parent), "seconds": round(seconds, 1),
            "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "figures": files, "numbers": numbers}


def run_notebooks(only=None, quick: bool = False, dataset: str = "mnist", seed: int = 0, device: str = "auto",
                  figures_dir=None, executed_dir=None, notebooks_dir=None, progress: bool = True,
                  extra: dict | None = None) -> dict:
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
    """
    extra = dict(extra or {})
    clash = sorted(set(extra) & {"QUICK", "DATASET", "SEED", "DEVICE"})
    if clash:
        raise ValueError(f"Set {clash} with their own options (--quick, --dataset, --seed, --device), not as extra.")
    params = check_parameters({"QUICK": bool(quick), "DATASET": dataset, "SEED": seed, "DEVICE": device, **extra})
    paths = list_notebooks(only, notebooks_dir)
    root = Path(notebooks_dir).parent if notebooks_dir else project_root()
    figures_dir = Path(figures_dir) if figures_dir else root / ("build/figures-quick" if quick else "figures")
    executed_dir = Path(executed_dir) if executed_dir else root / "notebooks" / "executed"
    for what, folder in (("figures", figures_dir), ("executed notebooks", executed_dir)):
        _check_folder(folder, what)
    figures_dir.mkdir(parents=True, exist_ok=True)
    manifest_path = figures_dir / "manifest.json"
    manifest = {}
    for path in paths:
        entry = run_notebook(path, params, figures_dir, executed_dir, progress=progress)
        manifest = _update_manifest(manifest_path, entry)
    return manifest


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
    from .training.checkpoint import atomic_write

    with _locked(manifest_path.with_name(".manifest.lock")):
        manifest = json.loads(manifest_path.read_text()) if manifest_path.is_file() else {}
        manifest.setdefault("notebooks", {})[entry["notebook"]] = entry
        # per-figure view, as the README gallery and the tests read it; only files that exist
        folder = manifest_path.parent
        manifest["figures"] = {f: {k: e[k] for k in ("notebook", "parameters", "version", "commit", "seconds", "numbers")}
                               for e in manifest["notebooks"].values() for f in e["figures"] if (folder / f).is_file()}
        text = json.dumps(manifest, indent=2, sort_keys=True)
        atomic_write(manifest_path, lambda fh: fh.write(text.encode()))
    return manifest
