"""Where the runs of a grid execute: in this process, in worker processes, or on a Ray cluster.

:func:`map_tasks` applies a module-level function to argument tuples and returns the results in
task order, wherever the tasks ran.

* ``workers=1`` runs here.
* ``workers=N`` (``executor="process"``) starts N *spawned* processes (forking a process that
  already runs torch's thread pool can deadlock) that each run ``threads`` torch threads,
  ``cores // N`` by default, so N x threads never exceeds the cores. A worker lives for the whole
  grid (and for later grids with the same settings) and keeps every dataset it loaded in memory,
  so the data is read once per worker, not once per run.
* ``executor="ray"`` sends the same tasks to a Ray cluster: ``address="auto"`` joins the cluster
  started with ``ray start --head``, a ``ray://host:10001`` address a remote one, and no address
  starts (or reuses) a local instance with ``workers`` CPUs. Each task asks Ray for ``threads``
  CPUs (default 1) and runs that many torch threads.

Same numbers everywhere
-----------------------
Every run seeds its own generators (weights, batch order, augmentation, dropout), so a run gives
the same numbers in any process. The one thing that changes low bits is the number of torch
threads: a float32 sum split over two threads is added in another order than on one thread
(oneDNN/OpenMP split the reductions of convolutions and matrix products by thread), which moves
losses in the 7th significant digit and, very rarely, flips one borderline prediction. Results
are therefore *bit-identical* for the same ``threads``: ``map_tasks(..., workers=1, threads=1)``
equals ``workers=2`` on two cores and a Ray run with one CPU per task. ``threads=None`` in this
process keeps whatever ``torch.get_num_threads()`` is.
"""
from __future__ import annotations

import atexit
import contextlib
import os
from typing import Callable, Sequence

from tqdm.auto import tqdm

__all__ = ["EXECUTORS", "DEFAULT_WORKERS", "map_tasks", "cpu_count", "threads_per_worker", "torch_threads",
           "step_progress", "shutdown_workers"]

EXECUTORS = ("process", "ray")

DEFAULT_WORKERS = 2
"""Worker processes the notebooks use by default (the measured faster setting on 2 cores).

``benchmarks/parallel_speed.py`` on 2 quiet cores (2026-11-26), the first LeNet-5 rows of
notebook 03's progression, 8 runs, cache off, the workers' start-up included: on 20,000 images
x 3 epochs, 2 workers x 1 thread took 20.6 s against 24.4 s for 1 process x 2 threads (1.18x);
on 10,000 images x 2 epochs (runs of about a second) starting the two workers outweighed the gain
(12.6 s against 10.4 s). Notebook runs are longer than both and the workers are kept between
grids, so 2 x 1 is the default. On a 1-core machine each worker still gets 1 thread."""


def cpu_count() -> int:
    """CPU cores this process may use (the affinity mask where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def threads_per_worker(workers: int) -> int:
    """Torch threads for each of ``workers`` workers so that workers x threads <= cores (at least 1)."""
    if not isinstance(workers, int) or isinstance(workers, bool) or workers < 1:
        raise ValueError(f"workers must be a whole number >= 1, not {workers!r}.")
    return max(1, cpu_count() // workers)


@contextlib.contextmanager
def torch_threads(threads: int | None):
    """Run the block with ``torch.set_num_threads(threads)``, then restore the previous count (``None``: unchanged)."""
    import torch

    before = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(int(threads))
    try:
        yield
    finally:
        torch.set_num_threads(before)


@contextlib.contextmanager
def step_progress(total: int, desc: str, progress: bool = True, workers: int = 1, executor: str = "process"):
    """A tqdm bar over ``total`` training steps; yields the sink that runs report finished steps to.

    Give each run a :class:`mnistlab.training.callbacks.StepProgress` with the yielded sink. Runs
    in this process report straight to the bar; runs in worker processes report through a queue
    of a multiprocessing manager that a thread of this process reads, so the bar moves while they
    train. Yields ``None`` (no per-step bar; :func:`map_tasks` then counts finished runs) when
    ``progress`` is False or the runs go to Ray.

    Parameters
    ----------
    total : int
        Training steps of all runs together.
    desc : str
        Label of the bar.
    progress : bool
    workers : int
        As given to :func:`map_tasks`.
    executor : {"process", "ray"}

    Yields
    ------
    object with ``put(n)`` or None
    """
    if not progress or executor == "ray":
        yield None
        return
    import queue as queue_module
    import threading

    from ..training.callbacks import BarSink

    bar = tqdm(total=total, desc=desc, unit="step")
    if workers <= 1:
        try:
            yield BarSink(bar)
        finally:
            bar.close()
        return
    import multiprocessing as mp

    manager = mp.get_context("spawn").Manager()
    q, stop = manager.Queue(), threading.Event()
    bar.set_postfix_str(f"starting {workers} worker processes", refresh=True)   # until the first step arrives

    def pump():
        first = True
        while True:
            try:
                n = q.get(timeout=0.1)
                if first:
                    bar.set_postfix_str("", refresh=False)
                    first = False
                bar.update(n)
            except queue_module.Empty:
                if stop.is_set():
                    return
            except (EOFError, OSError):      # the manager went away
                return

    thread = threading.Thread(target=pump, daemon=True)
    thread.start()
    try:
        yield q
    finally:
        stop.set()
        thread.join()
        manager.shutdown()
        bar.close()


def _init_worker(threads: int, env: dict) -> None:
    import signal

    import torch

    # Ctrl-C and a kernel's shutdown reach the whole process group: the parent handles them (it
    # cancels the pool), so an idle worker must not print a KeyboardInterrupt traceback of its own.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    os.environ.update(env)
    torch.set_num_threads(threads)


def _env() -> dict:
    """The settings a worker needs to find the same data, cache and figures as this process."""
    keys = ("MNISTLAB_DATA", "MNISTLAB_CACHE", "MNISTLAB_FIGURES", "MPLBACKEND")
    return {k: os.environ[k] for k in keys if k in os.environ}


def _check(workers, threads, executor) -> None:
    if not isinstance(workers, int) or isinstance(workers, bool) or workers < 1:
        raise ValueError(f"workers must be a whole number >= 1, not {workers!r}.")
    if threads is not None and (not isinstance(threads, int) or isinstance(threads, bool) or threads < 1):
        raise ValueError(f"threads must be None or a whole number >= 1, not {threads!r}.")
    if executor not in EXECUTORS:
        raise ValueError(f"executor must be one of {EXECUTORS}, not {executor!r}.")


def map_tasks(fn: Callable, tasks: Sequence[tuple], *, workers: int = 1, threads: int | None = None,
              executor: str = "process", address: str | None = None, progress: bool = True,
              desc: str = "tasks") -> list:
    """``[fn(*t) for t in tasks]``, in this process, in ``workers`` processes or on Ray; results in task order.

    Parameters
    ----------
    fn : callable
        A module-level function (workers import it by name).
    tasks : sequence of tuple
        The positional arguments of each call.
    workers : int
        1 runs here. More uses that many spawned processes, started on the first call and kept
        for later calls with the same settings (:func:`shutdown_workers` stops them). With
        ``executor="ray"`` and no ``address``, the CPUs of the local Ray instance.
    threads : int, optional
        Torch threads of each task. Default: ``cores // workers`` in worker processes, 1 per
        Ray task, and the current setting when ``workers=1``. Give the same value to get
        bit-identical numbers from different executors (see the module notes).
    executor : {"process", "ray"}
    address : str, optional
        A Ray cluster address (``"auto"`` after ``ray start --head``, or ``"ray://host:10001"``);
        ``None`` starts or reuses a local Ray instance. Only with ``executor="ray"``.
    progress : bool
        A tqdm bar over the tasks.
    desc : str
        Label of the progress bar.

    Returns
    -------
    list
        ``fn(*task)`` for every task, in task order.

    Raises
    ------
    ValueError
        A bad ``workers``, ``threads`` or ``executor``, or an ``address`` without Ray.
    ImportError
        ``executor="ray"`` without Ray installed.

    Notes
    -----
    Worker processes are *spawned*: a script that calls this at import time must guard its
    main code with ``if __name__ == "__main__":`` (Python re-imports the script in each worker).
    """
    _check(workers, threads, executor)
    if address is not None and executor != "ray":
        raise ValueError(f'address={address!r} names a Ray cluster; pass executor="ray" with it.')
    tasks = list(tasks)
    bar = tqdm(total=len(tasks), desc=desc, unit="run", disable=not progress, leave=False)
    try:
        if executor == "ray":
            return _map_ray(fn, tasks, workers, threads or 1, address, bar)
        if workers == 1 or len(tasks) <= 1:
            out = []
            with torch_threads(threads if workers == 1 else threads or threads_per_worker(workers)):
                for t in tasks:
                    out.append(fn(*t))
                    bar.update()
            return out
        return _map_processes(fn, tasks, workers, threads or threads_per_worker(workers), bar)
    finally:
        bar.close()


_POOL: dict = {}  # {"key": (workers, threads, env), "pool": ProcessPoolExecutor}


def _pool(workers: int, threads: int):
    """The worker pool for these settings, kept between calls so workers keep their loaded data."""
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    key = (workers, threads, tuple(sorted(_env().items())))
    if _POOL.get("key") != key:
        shutdown_workers()
        ctx = mp.get_context("spawn")  # forking a process that already runs torch threads can deadlock
        _POOL.update(key=key, pool=ProcessPoolExecutor(max_workers=workers, mp_context=ctx,
                                                       initializer=_init_worker, initargs=(threads, _env())))
    return _POOL["pool"]


def shutdown_workers() -> None:
    """Stop the worker processes kept by :func:`map_tasks` (they also stop when Python exits)."""
    pool = _POOL.pop("pool", None)
    _POOL.pop("key", None)
    if pool is not None:
        pool.shutdown(wait=True, cancel_futures=True)


atexit.register(shutdown_workers)


def _map_processes(fn, tasks, workers, threads, bar) -> list:
    from concurrent.futures import as_completed
    from concurrent.futures.process import BrokenProcessPool

    pool = _pool(workers, threads)
    results, futures = [None] * len(tasks), {}
    try:
        futures = {pool.submit(_call, fn, threads, *t): i for i, t in enumerate(tasks)}
        for fut in as_completed(futures):
            results[futures[fut]] = fut.result()
            bar.update()
    except BrokenProcessPool as exc:
        shutdown_workers()
        raise RuntimeError("A worker process died (out of memory, or killed); the pool was stopped. "
                           "Run again, or with workers=1 to see the error in this process.") from exc
    except KeyboardInterrupt:  # workers ignore SIGINT (see _init_worker): stop them here, mid-run
        for proc in list((getattr(pool, "_processes", None) or {}).values()):
            proc.terminate()
        _POOL.pop("pool", None), _POOL.pop("key", None)
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    except BaseException:  # a failed task: drop what has not started yet
        for fut in futures:
            fut.cancel()
        raise
    return results


def _map_ray(fn, tasks, workers, threads, address, bar) -> list:
    try:
        import ray
    except ImportError:
        raise ImportError('executor="ray" needs Ray: pip install "mnistlab[ray]" (or `make install`).') from None
    if not ray.is_initialized():
        if address:  # a cluster's workers get this process's data/cache settings through the runtime env
            ray.init(address=address, runtime_env={"env_vars": _env()}, log_to_driver=False)
        else:  # a local instance's workers inherit this process's environment
            ray.init(num_cpus=max(workers, threads), include_dashboard=False, log_to_driver=False)
    remote = ray.remote(num_cpus=threads)(_call)
    refs = [remote.remote(fn, threads, *t) for t in tasks]
    index = {ref: i for i, ref in enumerate(refs)}
    results, pending = [None] * len(refs), list(refs)
    while pending:
        done, pending = ray.wait(pending, num_returns=1)
        results[index[done[0]]] = ray.get(done[0])
        bar.update()
    return results


def _call(fn, threads, *args):
    """Run one task with ``threads`` torch threads (set per task: importing ``fn``'s module may change it)."""
    import torch

    torch.set_num_threads(threads)
    return fn(*args)
