"""Parallel runs: worker processes and Ray give the serial numbers; the cache stays sound with two writers."""
import json
import os

import pandas as pd
import pytest
import torch

import mnistlab as ml
import mnistlab.experiments as ex
from conftest import requires_data
from mnistlab.experiments import executors

pytestmark = requires_data

NUMBERS = ["epoch", "train_loss", "train_acc", "val_loss", "val_acc", "test_loss", "test_acc"]


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    folder = tmp_path / "cache"
    monkeypatch.setenv("MNISTLAB_CACHE", str(folder))
    yield folder
    executors.shutdown_workers()


def grid():
    """Two small convolutional configs (conv layers are where thread counts could change low bits)."""
    base = ml.TrainConfig("lenet adam", model="lenet5", epochs=1, optimizer="adam", lr=1e-3, batch_size=64,
                          train_limit=600, test_limit=300, val="test")
    return [base, base.but(name="conv+fc sgd", model="conv_fc", optimizer="sgd", lr=0.05)]


def numbers(df):
    return df[["config", "seed", *NUMBERS]].reset_index(drop=True)


def _square(x):
    return x * x


def _threads(_):
    return torch.get_num_threads(), os.environ.get("MNISTLAB_CACHE")


def test_map_tasks_keeps_order_and_checks_arguments():
    assert executors.map_tasks(_square, [(i,) for i in range(5)], workers=2, progress=False) == [0, 1, 4, 9, 16]
    with pytest.raises(ValueError, match="workers"):
        executors.map_tasks(_square, [(1,)], workers=0)
    with pytest.raises(ValueError, match="executor"):
        executors.map_tasks(_square, [(1,)], executor="threads")
    with pytest.raises(ValueError, match="threads"):
        executors.map_tasks(_square, [(1,)], threads=0)
    with pytest.raises(ValueError, match='executor="ray"'):
        executors.map_tasks(_square, [(1,)], address="auto")


def test_workers_get_split_threads_and_the_environment(cache):
    got = executors.map_tasks(_threads, [(i,) for i in range(4)], workers=2, progress=False)
    assert {g[0] for g in got} == {executors.threads_per_worker(2)}
    assert {g[1] for g in got} == {str(cache)}  # workers read and write the caller's cache
    got = executors.map_tasks(_threads, [(0,)], workers=2, threads=1, progress=False)
    assert got[0][0] == 1
    before = torch.get_num_threads()
    assert executors.map_tasks(_threads, [(0,)], threads=1, progress=False)[0][0] == 1
    assert torch.get_num_threads() == before  # the serial path restores the caller's thread count


def _sigint_handler(_):
    import signal
    return signal.getsignal(signal.SIGINT) == signal.SIG_IGN


def _sleep(seconds):
    import time
    time.sleep(seconds)
    return seconds


CTRL_C_SCRIPT = """
import os, signal, threading, time
signal.signal(signal.SIGINT, signal.default_int_handler)   # Ctrl-C raises, as in a shell or a Jupyter kernel
from mnistlab.experiments import executors
assert executors.map_tasks(abs, [(-1,), (-2,)], workers=2, progress=False) == [1, 2]   # the pool is up
threading.Timer(1.0, lambda: os.kill(os.getpid(), signal.SIGINT)).start()
t0 = time.perf_counter()
try:
    executors.map_tasks(time.sleep, [(30,), (30,), (30,)], workers=2, progress=False)
    print("not interrupted")
except KeyboardInterrupt:
    print(f"interrupted after {time.perf_counter() - t0:.1f} s; pool closed: {executors._POOL == {}}")
print("new pool:", executors.map_tasks(abs, [(-3,)], workers=2, progress=False))
"""


def test_ctrl_c_stops_the_workers_at_once_and_they_print_nothing():
    """Workers ignore SIGINT (a kernel shutdown reaches the whole process group); the parent stops them.

    Run in a process of its own: under pytest-xdist the test's process is a worker whose signal
    handling belongs to xdist, and whose children inherit SIGINT ignored (the script restores
    Python's handler, the one a shell or a Jupyter kernel has)."""
    import re
    import subprocess
    import sys

    assert executors.map_tasks(_sigint_handler, [(0,), (1,)], workers=2, progress=False) == [True, True]
    out = subprocess.run([sys.executable, "-c", CTRL_C_SCRIPT], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    m = re.search(r"interrupted after ([0-9.]+) s; pool closed: True", out.stdout)
    assert m, out.stdout
    assert float(m.group(1)) < 15  # not the 30 s a worker would need to finish its task
    assert "new pool: [3]" in out.stdout                            # a new pool works
    assert "Traceback" not in out.stderr, out.stderr[-2000:]        # the workers print nothing


def test_threads_per_worker_never_oversubscribes():
    cores = executors.cpu_count()
    for w in (1, 2, 3, cores, cores + 5):
        t = executors.threads_per_worker(w)
        assert t >= 1 and (w * t <= cores or t == 1)
    with pytest.raises(ValueError):
        executors.threads_per_worker(0)


def test_worker_processes_equal_serial():
    threads = executors.threads_per_worker(2)
    serial = ex.run_grid(grid(), [0, 1], workers=1, threads=threads, progress=False, cache=False)
    parallel = ex.run_grid(grid(), [0, 1], workers=2, progress=False, cache=False)
    pd.testing.assert_frame_equal(numbers(serial), numbers(parallel))  # bit for bit
    assert serial["test_acc"].min() > 0.3  # chance is 0.1: they learned something: the equality is not of two failures


def test_thread_count_moves_only_low_bits():
    """1 vs 2 torch threads: float sums in another order; the numbers agree to ~1e-5, not bit for bit."""
    one = ex.run_grid(grid(), [0], threads=1, progress=False, cache=False)
    two = ex.run_grid(grid(), [0], threads=2, progress=False, cache=False)
    pd.testing.assert_frame_equal(numbers(one), numbers(two), check_exact=False, rtol=1e-4, atol=2e-3)


def test_cache_with_two_writers_has_one_owner_per_key(cache, monkeypatch):
    """Two names for one recipe share one run; every entry is whole; a second pass trains nothing."""
    cfgs = grid() + [grid()[0].but(name="same recipe, other name")]
    df = ex.run_grid(cfgs, [0, 1, 2], workers=2, progress=False)
    entries = sorted(cache.glob("*.json"))
    assert len(entries) == 2 * 3  # 3 configs x 3 seeds, but only 2 distinct recipes
    assert not list(cache.glob("*.tmp"))  # no half-written temporary file left behind
    for path in entries:  # every entry parses and passes its checksum
        body = json.loads(path.read_text())
        assert body["format"] == "mnistlab-result"
        assert ex.cache.read(path.stem) is not None
    a, b = (numbers(df[df["config"] == n]).drop(columns="config") for n in ("lenet adam", "same recipe, other name"))
    pd.testing.assert_frame_equal(a, b)
    import mnistlab.experiments.runs as runs

    monkeypatch.setattr(runs, "train_model", lambda *a, **k: pytest.fail("a cached run was retrained"))
    again = ex.run_grid(cfgs, [0, 1, 2], workers=1, progress=False)
    assert again["cached"].all()
    pd.testing.assert_frame_equal(numbers(df), numbers(again))


def test_cross_validate_in_workers_equals_serial():
    cfg = grid()[0].but(name="cv", train_limit=400)
    serial = ex.cross_validate(cfg, k=2, workers=1, threads=executors.threads_per_worker(2), progress=False,
                               cache=False)
    parallel = ex.cross_validate(cfg, k=2, workers=2, progress=False, cache=False)
    cols = ["fold", "epoch", "train_loss", "val_acc", "fold_acc"]
    pd.testing.assert_frame_equal(serial[cols], parallel[cols])


def test_ray_local_instance_equals_serial():
    ray = pytest.importorskip("ray", reason="the ray extra is not installed (pip install 'mnistlab[ray]')")
    serial = ex.run_grid(grid(), [0, 1], workers=1, threads=1, progress=False, cache=False)
    try:
        for attempt in range(3):  # Ray gives its node 30 s to start; a busy shared machine can need a retry
            try:
                ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
                break
            except Exception:
                ray.shutdown()
                if attempt == 2:
                    raise
        on_ray = ex.run_grid(grid(), [0, 1], workers=2, executor="ray", progress=False, cache=False)
        # a Ray instance that is already running is joined, not restarted; each task runs 1 torch thread
        # (a package-level function: Ray's workers cannot import this test module)
        assert executors.map_tasks(torch.get_num_threads, [(), ()], executor="ray", progress=False) == [1, 1]
    finally:
        ray.shutdown()
    pd.testing.assert_frame_equal(numbers(serial), numbers(on_ray))
