"""The benchmark scripts: every one runs in smoke mode and writes a sound result JSON; the shared helpers;
the README speed table; the GPU check's CPU-only behaviour and its step runner and report.

No test here asserts a timing: the machine running the tests may be slow or shared.
"""
from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from conftest import have_real_data

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "benchmarks"
sys.path.insert(0, str(BENCH))

import _common  # noqa: E402
import gpu_check  # noqa: E402
import speed_table  # noqa: E402

TOOLS = {"speed_table", "gpu_check"}
"""Scripts in benchmarks/ that are not benchmarks (tested on their own below)."""
SCRIPTS = sorted(p for p in BENCH.glob("*.py") if not p.name.startswith("_") and p.stem not in TOOLS)


def _env(**extra) -> dict:
    env = {**os.environ, "MPLBACKEND": "Agg", **extra}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT)] + [v for v in [os.environ.get("PYTHONPATH")] if v])
    return env


def _run(args, timeout=900, **env) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *map(str, args)], cwd=ROOT, env=_env(**env), capture_output=True, text=True,
                          timeout=timeout)


# ------------------------------------------------------------------------------------------- every benchmark

def test_benchmarks_are_found():
    names = {p.stem for p in SCRIPTS}
    assert {"time_to_accuracy", "loader_speed", "gan_gpu", "transfer_gpu"} <= names


def _photo_checks(result):
    m = result["measured"]
    assert m["photos"]["n"] == 12 and m["numbers"]["n"] == 4
    assert m["clean_test_accuracy"] > 0.99
    # a broken photo path reads about a tenth of them (chance); the old way reads few of these photos
    assert m["photos"]["accuracy_photo_preprocessing"] >= 0.75
    assert m["photos"]["accuracy_photo_preprocessing"] > m["photos"]["accuracy_mnist_steps_only"]


def _time_to_accuracy_checks(result):
    m = result["measured"]
    assert m["ours"]["recipe"] == "fast" and m["train_images"] == 1000
    for run in m["ours"]["runs"] + [m["reference"]]:
        assert run["checks"] and all(0 <= c["test_acc"] <= 1 for c in run["checks"])


def _train_step_checks(result):
    from mnistlab.training.config import EVAL_BATCH_SIZE

    case = result["measured"]["cases"]["lenet5:32"]
    assert case["eval_images"] == 500 and case["eval_batch"] == {"old": 2000, "default": EVAL_BATCH_SIZE}
    assert all(v > 0 for v in case["eval_seconds"].values()) and all(v > 0 for v in case["ms_per_step"].values())
    assert [r["what"].split(",")[0] for r in result["table"]] == ["training step", "evaluating 500 test images"]


EXTRA_CHECKS = {"photo_accuracy": _photo_checks, "time_to_accuracy": _time_to_accuracy_checks,
                "train_step": _train_step_checks}


@pytest.fixture(scope="module")
def smoke_runs(tmp_path_factory):
    """Every benchmark's ``--smoke`` run, two at a time (most of a smoke run is one core importing torch):
    ``{script: (process, result path)}``, with the committed results' modification times before."""
    if not have_real_data():
        pytest.skip("real MNIST not found at $MNISTLAB_DATA")
    from concurrent.futures import ThreadPoolExecutor

    folder = tmp_path_factory.mktemp("smoke")
    committed = {p: p.stat().st_mtime_ns for p in (BENCH / "results").glob("*.json")}

    def smoke(script):
        out = folder / f"{script.stem}.json"
        return script, (_run([script, "--smoke", "--json", out]), out)

    with ThreadPoolExecutor(max_workers=2) as pool:
        return dict(pool.map(smoke, SCRIPTS)), committed


@pytest.mark.slow
@pytest.mark.parametrize("script", SCRIPTS, ids=[p.stem for p in SCRIPTS])
def test_smoke_mode_writes_a_sound_result(script, smoke_runs):
    """``--smoke`` runs the script's code paths on tiny sizes and writes the result JSON where it is told."""
    runs, committed = smoke_runs
    proc, out = runs[script]
    assert proc.returncode == 0, f"{script.name} --smoke failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    result = json.loads(out.read_text())
    assert _common.check_result(result) == []
    assert result["benchmark"].startswith(script.stem) and result["smoke"] is True
    assert result["torch"] == torch.__version__
    m = result["machine"]
    assert m["cores"] == os.cpu_count() and m["cpu"] and m["platform"]
    assert datetime.fromisoformat(result["date"]).tzinfo is not None
    assert math.isfinite(result["ratio"]) and result["ratio"] > 0 and result["ratio_means"]
    assert result["seconds"] > 0 and result["measured"]
    assert result["table"] and all(set(_common.TABLE_KEYS) <= set(r) for r in result["table"])
    EXTRA_CHECKS.get(script.stem, lambda r: None)(result)
    # a smoke run never touches the committed results
    assert {p: p.stat().st_mtime_ns for p in (BENCH / "results").glob("*.json")} == committed


def test_make_bench_runs_every_benchmark():
    text = (ROOT / "Makefile").read_text().replace("\\\n", " ")

    def var(name):
        return set(re.search(rf"^{name} \?=(.*)$", text, re.M).group(1).split())

    listed = var("BENCHMARKS") | var("GPU_BENCHMARKS")
    assert listed == {p.stem for p in SCRIPTS}
    bench = text[text.index("\nbench:"):]
    assert "speed_table.py --write README.md" in bench.split("\n\n")[0]


# ------------------------------------------------------------------------------------------- _common

def _args(**kw):
    return SimpleNamespace(**{"smoke": False, "json": None, "seed": 0, "threads": None, **kw})


def test_result_path_keeps_smoke_runs_out_of_the_committed_results(tmp_path):
    assert _common.result_path("x", _args()) == BENCH / "results" / "x.json"
    assert _common.result_path("x", _args(smoke=True)) == ROOT / "build" / "bench-smoke" / "x.json"
    assert _common.result_path("x", _args(smoke=True, json=str(tmp_path / "y.json"))) == tmp_path / "y.json"


def test_bench_result_follows_the_schema(tmp_path, capsys):
    import numpy as np

    bench = _common.Bench("demo", _args(json=str(tmp_path / "demo.json")), device="cpu")
    path = bench.finish(measured={"ours_seconds": np.float64(0.5), "reference_seconds": 2.0, "n": np.int64(3),
                                  "curve": np.arange(3), "nan": float("nan")},
                       ratio=4.0, ratio_means="reference / ours",
                       table=[_common.row("demo", ours="0.5 s", reference="2 s", ratio="4x")])
    result = json.loads(path.read_text())
    assert _common.check_result(result) == []
    assert set(_common.REQUIRED_KEYS) <= set(result) and set(_common.MACHINE_KEYS) <= set(result["machine"])
    assert result["measured"] == {"ours_seconds": 0.5, "reference_seconds": 2.0, "n": 3, "curve": [0, 1, 2],
                                  "nan": None}
    assert result["settings"] == {"smoke": False, "seed": 0, "threads": None}
    assert "wrote" in capsys.readouterr().out
    with pytest.raises(ValueError, match="finite"):
        bench.finish(measured={}, ratio=float("inf"), ratio_means="x")


def test_check_result_names_what_is_wrong():
    good = _common.Bench("demo", _args(), quiet=True).result({"a_seconds": 1.0}, 2.0, "x")
    assert _common.check_result(good) == []
    assert any("ratio" in p for p in _common.check_result({**good, "ratio": float("nan")}))
    assert any("ratio" in p for p in _common.check_result({**good, "ratio": 0}))
    assert any("positive time" in p for p in _common.check_result({**good, "measured": {"runs": [{"seconds": 0}]}}))
    assert any("ISO" in p for p in _common.check_result({**good, "date": "yesterday"}))
    assert _common.check_result({k: v for k, v in good.items() if k != "machine"}) == ["missing key 'machine'"]


def test_cpu_model_comes_from_proc_cpuinfo():
    model = _common.cpu_model()
    assert model and model != "unknown"
    info = Path("/proc/cpuinfo")
    if info.is_file() and "model name" in info.read_text():
        assert model in info.read_text()


# ------------------------------------------------------------------------------------------- speed table

def _result(name, ratio=2.0, smoke=False, cpu="Test CPU"):
    r = _common.Bench(name, _args(smoke=smoke), quiet=True).result(
        {"seconds": 1.0}, ratio, "reference / ours",
        [_common.row(f"{name} row", ours="1 s", reference=f"{ratio} s", ratio=f"**{ratio}x**")])
    r["machine"]["cpu"] = cpu
    return r


README = """# Title

Intro text.

<!-- speed-table:start -->
| old | table |
| --- | --- |
<!-- speed-table:end -->

After the table.
"""


def test_speed_table_replaces_only_what_stands_between_the_markers(tmp_path):
    results = tmp_path / "results"
    for name in ("tsne_speed", "loader_speed", "time_to_accuracy"):
        _common.write_json(results / f"{name}.json", _result(name))
    _common.write_json(results / "smoke.json", _result("smoke_one", smoke=True))
    (results / "broken.json").write_text("{not json")
    _common.write_json(results / "incomplete.json", {"benchmark": "x"})
    table = speed_table.render(speed_table.load_results(results, warn=lambda m: None))
    rows = [ln for ln in table.splitlines() if ln.startswith("| ") and "row" in ln]
    assert [r.split(" row")[0][2:] for r in rows] == ["loader_speed", "time_to_accuracy", "tsne_speed"]  # ORDER
    assert "smoke_one" not in table and "`loader_speed.py`" in table and "Test CPU" in table

    readme = tmp_path / "README.md"
    readme.write_text(README)
    assert speed_table.main(["--results", str(results), "--write", str(readme)]) == 0
    text = readme.read_text()
    assert text.startswith("# Title\n\nIntro text.\n\n<!-- speed-table:start -->\n")
    assert text.endswith("<!-- speed-table:end -->\n\nAfter the table.\n")
    assert "| old | table |" not in text and table.strip() in text
    assert speed_table.write_table(readme, table) is False  # a second run changes nothing
    assert readme.read_text() == text


def test_speed_table_shows_the_machine_per_row_when_they_differ(tmp_path):
    table = speed_table.render([_result("loader_speed"), _result("tsne_speed", cpu="Other CPU")])
    assert "| machine |" in table and "Other CPU" in table


@pytest.mark.parametrize("text", ["no markers at all\n", "<!-- speed-table:end -->\nx\n<!-- speed-table:start -->\n",
                                  "<!-- speed-table:start -->\n<!-- speed-table:start -->\n<!-- speed-table:end -->\n"])
def test_speed_table_leaves_a_file_without_sound_markers_alone(tmp_path, text, capsys):
    results = tmp_path / "results"
    _common.write_json(results / "loader_speed.json", _result("loader_speed"))
    readme = tmp_path / "README.md"
    readme.write_text(text)
    with pytest.raises(speed_table.MarkerError):
        speed_table.replace_between(text, "table")
    assert speed_table.main(["--results", str(results), "--write", str(readme)]) == 1
    assert readme.read_text() == text
    assert "speed-table" in capsys.readouterr().err


def test_speed_table_without_results_fails_and_writes_nothing(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(README)
    assert speed_table.main(["--results", str(tmp_path / "none"), "--write", str(readme)]) == 1
    assert readme.read_text() == README


# ------------------------------------------------------------------------------------------- GPU check

def test_gpu_check_on_a_machine_without_a_gpu_says_so_and_succeeds(tmp_path):
    proc = _run([BENCH / "gpu_check.py", "--out", tmp_path / "gpu"], timeout=300, CUDA_VISIBLE_DEVICES="")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 1 and "no CUDA GPU" in lines[0]
    assert not (tmp_path / "gpu").exists()


def test_gpu_check_require_gpu_fails_without_one(tmp_path):
    proc = _run([BENCH / "gpu_check.py", "--require-gpu", "--out", tmp_path / "gpu"], timeout=300,
                CUDA_VISIBLE_DEVICES="")
    assert proc.returncode != 0
    assert "no CUDA GPU" in proc.stderr and not proc.stdout.strip()


def test_gpu_check_plan_covers_everything_within_eight_minutes(tmp_path):
    out = tmp_path / "gpu"
    steps = gpu_check.build_steps(out)
    notebooks = sorted(p.stem for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    nb_steps = [s for s in steps if s.name.startswith("notebook ")]
    assert [s.name.split(" ", 1)[1] for s in nb_steps] == notebooks and all(s.parallel for s in nb_steps)
    for s in nb_steps:
        assert s.argv[-2:] == [out / "figures", out / "executed"]  # never figures/
        assert "device=\"cuda\"" in s.argv[2] and "quick=True" in s.argv[2]
        assert Path(s.env["MNISTLAB_CACHE"]).is_relative_to(out)
    serial = [s for s in steps if not s.parallel]
    scripts = [Path(s.argv[1]).name for s in serial]
    assert scripts == ["gan_gpu.py", "transfer_gpu.py", "time_to_accuracy.py"]
    assert all("--device" in s.argv and "cuda" in s.argv for s in serial)
    assert all(Path(s.argv[s.argv.index("--json") + 1]).is_relative_to(out) for s in serial)
    # every step has a limit; the worst case (each runs into its limit) and the cap stay under 8 minutes
    assert all(s.limit > 0 for s in steps)
    assert max(s.limit for s in nb_steps) + sum(s.limit for s in serial) <= gpu_check.BUDGET_S < 8 * 60 - 15
    listed = _run([BENCH / "gpu_check.py", "--list", "--out", out], timeout=300)
    assert listed.returncode == 0 and "gan_gpu" in listed.stdout and "notebook 07_gan" in listed.stdout


def _py(code: str) -> list:
    return [sys.executable, "-c", code]


def test_step_runner_reports_ok_errors_timeouts_and_seconds(tmp_path):
    a, b = tmp_path / "a.flag", tmp_path / "b.flag"
    wait_for = ("import pathlib, sys, time\npathlib.Path({mine!r}).touch()\nt = time.time()\n"
                "while not pathlib.Path({other!r}).exists():\n    time.sleep(0.05)\n"
                "    if time.time() - t > 60: sys.exit('the other step never ran alongside')\n")
    steps = [
        gpu_check.Step("fine", _py("print('all good')"), 60),
        gpu_check.Step("broken", _py("import sys; print('step output', flush=True); sys.exit('it went wrong')"), 60),
        gpu_check.Step("hangs", _py("import time; time.sleep(120)"), 1),
        # two parallel steps that each wait for the other: they pass only when run together
        gpu_check.Step("together a", _py(wait_for.format(mine=str(a), other=str(b))), 90, parallel=True),
        gpu_check.Step("together b", _py(wait_for.format(mine=str(b), other=str(a))), 90, parallel=True),
        gpu_check.Step("env", _py("import os, sys; sys.exit(os.environ['STEP_VAR'] != 'x')"), 60, env={"STEP_VAR": "x"}),
    ]
    said = []
    results = gpu_check.run_steps(steps, tmp_path / "out", budget=400, jobs=2, say=said.append)
    by = {r["step"]: r for r in results}
    assert [r["step"] for r in results] == [s.name for s in steps]
    assert by["fine"]["ok"] and by["fine"]["error"] is None
    assert not by["broken"]["ok"] and by["broken"]["error"].startswith("exit code 1")
    assert "it went wrong" in by["broken"]["error"] and "step output" in by["broken"]["tail"]
    assert not by["hangs"]["ok"] and "timed out" in by["hangs"]["error"] and by["hangs"]["seconds"] < 120
    assert by["together a"]["ok"] and by["together b"]["ok"], (by["together a"], by["together b"])
    assert by["env"]["ok"]
    assert all(r["seconds"] >= 0 and r["limit"] > 0 for r in results)
    assert "all good" in Path(by["fine"]["log"]).read_text()
    assert any("[FAILED] broken" in m for m in said)

    json_path, md_path = gpu_check.write_report(results, tmp_path / "out", {"budget": 400})
    report = json.loads(json_path.read_text())
    assert report["ok"] is False and report["failed"] == ["broken", "hangs"]
    assert [s["step"] for s in report["steps"]] == [s.name for s in steps]
    md = md_path.read_text()
    assert md.startswith("# GPU check: 2 of 6 steps FAILED")
    assert "| fine | ok |" in md and re.search(r"\| broken \| exit code 1: it went wrong \| [0-9.]+ \| 60 \|", md)
    assert "## hangs: timed out" in md


def test_step_runner_stops_starting_steps_when_the_budget_is_spent(tmp_path, monkeypatch):
    monkeypatch.setattr(gpu_check, "MIN_START_S", 0.5)
    steps = [gpu_check.Step("first", _py("import time; time.sleep(2)"), 30),
             gpu_check.Step("second", _py("pass"), 30)]
    results = gpu_check.run_steps(steps, tmp_path, budget=1.0, say=lambda m: None)
    assert not results[0]["ok"] and "timed out" in results[0]["error"]  # its limit was cut to the budget
    assert results[1] == {"step": "second", "ok": False, "seconds": 0.0, "limit": 30,
                          "error": "not run: the check's 1 s budget was spent", "log": None}


def test_check_exits_nonzero_on_any_failure_and_zero_when_all_pass(tmp_path):
    ok = [gpu_check.Step("one", _py("pass"), 60), gpu_check.Step("two", _py("pass"), 60)]
    assert gpu_check.check(ok, tmp_path / "ok", say=lambda m: None) == 0
    assert json.loads((tmp_path / "ok" / "report.json").read_text())["ok"] is True
    assert (tmp_path / "ok" / "report.md").read_text().startswith("# GPU check: all ok")
    bad = ok + [gpu_check.Step("three", _py("raise SystemExit(2)"), 60)]
    assert gpu_check.check(bad, tmp_path / "bad", say=lambda m: None) == 1
