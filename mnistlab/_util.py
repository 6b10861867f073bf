"""Small helpers every layer shares: one JSON conversion, one eval-mode switch, one way to find folders
(one project-root finder), one atomic file write, one way to name what a path is and to count things in words.

Imports nothing else of the package (and nothing heavy), so any module may use it, the command line
included before it has parsed its arguments.
"""
from __future__ import annotations

import glob
import math
import os
import stat
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Mapping

__all__ = ["to_jsonable", "eval_mode", "project_root", "cache_root", "figures_root", "file_kind", "plural",
           "atomic_write", "clean_stale_temporaries"]


def to_jsonable(value: Any, strict: bool = False) -> Any:
    """Convert ``value`` to plain JSON values, recursively.

    Tuples become lists, NumPy and torch scalars become Python numbers, dict keys become
    strings, and NaN or infinite floats become ``None`` (JSON has no NaN; ``None`` reads back as
    NaN in pandas).

    Parameters
    ----------
    value : any
    strict : bool
        Raise ``TypeError`` on anything that is not a plain JSON value (used where the value
        must hash reproducibly, e.g. a training config). Otherwise such values pass through.
    """
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v, strict) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v, strict) for v in value]
    if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if strict and not (isinstance(value, (str, int, float, bool)) or value is None):
        raise TypeError(f"Expected a plain JSON value (str, number, bool, list, dict or None), not {value!r}.")
    return value


@contextmanager
def eval_mode(model):
    """Put ``model`` in eval mode for the block and restore its previous mode afterwards (also on errors)."""
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)


def project_root(required: bool = False) -> Path | None:
    """The source checkout (the folder with ``pyproject.toml`` and ``mnistlab/``), or ``None`` when installed.

    Looks above the package first, then above the working directory. With ``required=True`` a missing
    checkout raises ``FileNotFoundError`` (the runner needs ``notebooks/``) instead of returning ``None``.
    """
    here = Path(__file__).resolve().parent.parent
    for folder in (here, Path.cwd().resolve(), *Path.cwd().resolve().parents):
        if (folder / "pyproject.toml").is_file() and (folder / "mnistlab").is_dir():
            return folder
    if required:
        raise FileNotFoundError("Cannot find the mnistlab checkout (a folder with notebooks/ and pyproject.toml); "
                                "run from inside it.")
    return None


def _user_cache() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "mnistlab"


def cache_root(create: bool = True) -> Path:
    """The experiment cache: ``$MNISTLAB_CACHE``, else ``<project>/.mnistlab-cache``, else ``~/.cache/mnistlab/experiments``."""
    env = os.environ.get("MNISTLAB_CACHE")
    root = project_root()
    path = Path(env).expanduser() if env else root / ".mnistlab-cache" if root else _user_cache() / "experiments"
    if create:
        path.mkdir(parents=True, exist_ok=True)
    return path


def figures_root() -> Path:
    """Where figures go: ``$MNISTLAB_FIGURES``, else ``<project>/build/figures``, else ``./build/figures``.

    Only the main job writes the committed gallery ``figures/``: ``mnistlab figures`` (the runner)
    sets ``MNISTLAB_FIGURES`` for every notebook it runs. A notebook run by hand in JupyterLab, or a
    helper called from a notebook of one's own, writes under ``build/`` and leaves ``figures/`` alone.
    """
    env = os.environ.get("MNISTLAB_FIGURES", "").strip()
    if env:
        return Path(env).expanduser()
    root = project_root()
    return (root if root else Path.cwd()) / "build" / "figures"


_KINDS = ((stat.S_ISREG, "a file"), (stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO (a named pipe)"),
          (stat.S_ISCHR, "a character device (like /dev/zero)"), (stat.S_ISBLK, "a block device (a disk)"),
          (stat.S_ISSOCK, "a socket"))


def file_kind(path) -> str | None:
    """What ``path`` is, in words: "a file", "a folder", "a FIFO (named pipe)", "a character device" ...

    Follows symbolic links (a link to a file is "a file"); ``None`` when nothing is there (or a
    link points nowhere). Looks with ``stat`` only, so a FIFO or a device is never opened: reading
    one would block or never end.

    Examples
    --------
    >>> file_kind("/dev/null")
    'a character device (like /dev/zero)'
    """
    try:
        mode = os.stat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as exc:  # e.g. a permission denied on a folder above it: say so rather than "absent"
        return f"unreachable ({exc.strerror or exc})"
    return next((name for test, name in _KINDS if test(mode)), "a special file")


def plural(n: int, singular: str, plural_form: str | None = None) -> str:
    """``n`` and the word, in the right number: ``plural(1, "epoch")`` is "1 epoch", ``plural(2, "epoch")`` "2 epochs".

    Numbers of 1,000 and more get thousands separators ("60,000 images").
    """
    word = singular if n == 1 else plural_form or singular + "s"
    return f"{n:,} {word}"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # exists (another user's) or cannot tell: keep its file
    return True


def clean_stale_temporaries(path) -> list[Path]:
    """Remove temporary files that killed writers of ``path`` left behind; return what was removed.

    :func:`atomic_write` names its temporary file ``.<name>.<pid>.<random>.tmp``; a file whose
    process no longer runs is a leftover of a run killed during its save. Files of live
    processes (a concurrent writer) are left alone.

    Parameters
    ----------
    path : path
        The file whose leftover temporaries to remove (it need not exist).

    Returns
    -------
    list of pathlib.Path
        The temporary files removed.
    """
    path = Path(path)
    removed = []
    if not path.parent.is_dir():
        return removed
    for tmp in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):
        pid = tmp.name[len(path.name) + 2:].split(".", 1)[0]
        if pid.isdigit() and not _pid_alive(int(pid)):
            tmp.unlink(missing_ok=True)
            removed.append(tmp)
    return removed


def atomic_write(path, write) -> Path:
    """Write ``path`` atomically: ``write(fh)`` fills a temporary file beside it, which then replaces it.

    Readers never see half a file and a crash half-way leaves the old file intact: the rename is
    atomic on POSIX and Windows. The temporary file is removed if ``write`` fails; one left by a
    process killed during its save is removed by the next write of the same file
    (:func:`clean_stale_temporaries`). The file gets the usual mode (0644 under the common
    umask), not the temporary file's 0600.

    Parameters
    ----------
    path : path
        The file to write (its folder is created).
    write : callable
        ``write(fh)`` writes the content to the binary file object ``fh``.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_dir():
        raise IsADirectoryError(f"{path} is a folder; cannot write a file there.")
    clean_stale_temporaries(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (Linux), else what ``platform`` knows."""
    import platform

    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() in ("model name", "Model", "cpu model") and value.strip():
                return value.strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def load_average() -> list[float]:
    """The 1, 5 and 15-minute load averages, rounded (empty where the OS has none, e.g. Windows)."""
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except (AttributeError, OSError):
        return []
