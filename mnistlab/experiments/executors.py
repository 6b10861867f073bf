"""Where the runs of a grid execute: in this process, in worker processes, or on a Ray cluster.

:func:`map_tasks` applies a top-level function to argument tuples and returns the results in
order. With ``workers=N`` the tasks go to N processes (spawned, so no thread pool is forked)
that each set ``torch.set_num_threads(cores // N)``: N x threads never exceeds the cores. A
worker lives for the whole grid, so it loads each dataset once (the loader keeps it in memory).
``executor="ray"`` sends the same tasks to a Ray cluster: ``address`` names it, or a local
instance starts. Results do not depend on where a task ran: every run seeds its own generators.
"""
from __future__ import annotations

import os
from typing import Callable, Sequence

from tqdm.auto import tqdm

__all__ = ["EXECUTORS", "map_tasks", "cpu_count", "threads_per_worker"]

EXECUTORS = ("process", "ray")


def cpu_count() -> int:
    """CPU cores this process may use (the affinity mask where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def threads_per_worker(workers: int) -> int:
    """Torch threads for each of ``workers`` workers so that workers x threads <= cores (at least 1)."""
    return max(1, cpu_count() // max(1, workers))


def _init_worker(threads: int, env: dict) -> None:
    import torch

    os.environ.update(env)
    torch.set_num_threads(threads)


def _env() -> dict:
    """The settings a worker needs to find the same data, cache and figures as this process."""
    keys = ("MNISTLAB_DATA", "MNISTLAB_CACHE", "MNISTLAB_FIGURES", "MPLBACKEND")
    return {k: os.environ[k] for k in keys if k in os.environ}


def map_tasks(fn: Callable, tasks: Sequence[tuple], *, workers: int = 1, executor: str = "process",
              address: str | None = None, progress: bool = True, desc: str = "tasks") -> list:
    """``[fn(*t) for t in tasks]``, in this process, in ``workers`` processes or on Ray; results in task order.

    Parameters
    ----------
    fn : callable
        A module-level function (it is pickled by name).
    tasks : sequence of tuple
        The positional arguments of each call.
    workers : int
        1 runs here. More starts that many processes (or, with Ray, asks for that many tasks
        at once on a local instance).
    executor : "process" or "ray"
    address : str, optional
        A Ray cluster address; ``None`` starts (or reuses) a local Ray instance.
    progress : bool
    desc : str
        Label of the progress bar.
    """
    if not isinstance(workers, int) or isinstance(workers, bool) or workers < 1:
        raise ValueError(f"workers must be a whole number >= 1, not {workers!r}.")
    if executor not in EXECUTORS:
        raise ValueError(f"executor must be one of {EXECUTORS}, not {executor!r}.")
    tasks = list(tasks)
    bar = tqdm(total=len(tasks), desc=desc, unit="run", disable=not progress, leave=False)
    try:
        if executor == "ray":
            return _map_ray(fn, tasks, workers, address, bar)
        if workers == 1 or len(tasks) <= 1:
            out = []
            for t in tasks:
                out.append(fn(*t))
                bar.update()
            return out
        return _map_processes(fn, tasks, workers, bar)
    finally:
        bar.close()


def _map_processes(fn, tasks, workers, bar) -> list:
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor, as_completed

    workers = min(workers, len(tasks))
    ctx = mp.get_context("spawn")  # forking a process that already runs torch threads can deadlock
    results = [None] * len(tasks)
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_init_worker,
                             initargs=(threads_per_worker(workers), _env())) as pool:
        futures = {pool.submit(fn, *t): i for i, t in enumerate(tasks)}
        for fut in as_completed(futures):
            results[futures[fut]] = fut.result()
            bar.update()
    return results


def _map_ray(fn, tasks, workers, address, bar) -> list:
    try:
        import ray
    except ImportError:
        raise ImportError('executor="ray" needs Ray: pip install "ray[default]" (or `make install`).') from None
    if not ray.is_initialized():
        kwargs = {"address": address} if address else {"num_cpus": max(workers, 1)}
        ray.init(**kwargs, runtime_env={"env_vars": _env()}, ignore_reinit_error=True, include_dashboard=False,
                 log_to_driver=False)
    threads = 1 if address is None else threads_per_worker(1)
    remote = ray.remote(num_cpus=1)(_ray_call)
    refs = [remote.remote(fn, threads, *t) for t in tasks]
    index = {ref: i for i, ref in enumerate(refs)}
    results, pending = [None] * len(refs), list(refs)
    while pending:
        done, pending = ray.wait(pending, num_returns=1)
        results[index[done[0]]] = ray.get(done[0])
        bar.update()
    return results


def _ray_call(fn, threads, *args):
    import torch

    torch.set_num_threads(threads)
    return fn(*args)
