"""The command starts fast: it parses first and imports the heavy parts only inside the command that needs them.

No timing thresholds (the machines are shared): each check runs a fresh interpreter and looks at
which modules it loaded. ``--help`` of the command and of every sub-command must load none of
torch, matplotlib, pandas, papermill or scipy; Ctrl-C while the heavy imports run is one line
and exit 130; ``python -m mnistlab`` works.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("torch", "matplotlib", "pandas", "papermill", "scipy", "numpy", "PIL")
COMMANDS = ["train", "evaluate", "predict", "read", "data", "models", "figures"]


def run_python(code: str, *args: str, timeout: float = 300, env: dict | None = None):
    env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code), *args], capture_output=True, text=True,
                          timeout=timeout, env=env, cwd=ROOT)


HELP_CHILD = """
    import json, sys
    from mnistlab.cli import main
    argv = json.loads(sys.argv[1])
    try:
        code = main(argv)
    except SystemExit as exc:
        code = exc.code
    heavy = sorted(m for m in sys.modules if m.split(".")[0] in {heavy!r})
    print(json.dumps({{"code": code, "heavy": sorted({{m.split(".")[0] for m in heavy}})}}), file=sys.stderr)
"""


@pytest.mark.parametrize("argv", [["--help"], *[[c, "--help"] for c in COMMANDS]], ids=lambda a: " ".join(a))
def test_help_loads_no_heavy_module(argv):
    res = run_python(HELP_CHILD.format(heavy=set(HEAVY)), json.dumps(argv))
    assert res.returncode == 0, res.stderr[-3000:]
    report = json.loads(res.stderr.strip().splitlines()[-1])
    assert report["code"] == 0 and "usage: mnistlab" in res.stdout
    assert report["heavy"] == [], (f"`mnistlab {' '.join(argv)}` imported {report['heavy']}: parse first, import "
                                   "heavy modules only inside the command that runs")


def test_a_usage_error_loads_no_heavy_module():
    res = run_python(HELP_CHILD.format(heavy=set(HEAVY)), json.dumps(["train", "--epochs", "x"]))
    report = json.loads(res.stderr.strip().splitlines()[-1])
    assert report["code"] == 2 and report["heavy"] == []
    assert "--epochs" in res.stderr.splitlines()[0]


def test_python_dash_m_mnistlab():
    res = subprocess.run([sys.executable, "-m", "mnistlab", "--help"], capture_output=True, text=True, timeout=300,
                         env={**os.environ, "PYTHONPATH": str(ROOT)}, cwd=ROOT)
    assert res.returncode == 0, res.stderr
    assert "usage: mnistlab" in res.stdout and all(c in res.stdout for c in COMMANDS)
    res = subprocess.run([sys.executable, "-m", "mnistlab", "evaluate", "/nonexistent/model.pt"], capture_output=True,
                         text=True, timeout=300, env={**os.environ, "PYTHONPATH": str(ROOT)}, cwd=ROOT)
    assert res.returncode == 2 and len(res.stderr.strip().splitlines()) == 1 and "Traceback" not in res.stderr


INTERRUPT_CHILD = """
    import sys
    from mnistlab.cli import main

    class Interrupt:
        '''Ctrl-C arriving while torch is being imported (the first seconds of every command).'''
        def find_spec(self, name, path=None, target=None):
            if name == "torch":
                raise KeyboardInterrupt
            return None

    sys.meta_path.insert(0, Interrupt())
    sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.parametrize("argv", [["models"], ["evaluate", "x.pt"], ["train", "--epochs", "1"]],
                         ids=lambda a: a[0])
def test_ctrl_c_while_importing_is_one_line(argv):
    res = run_python(INTERRUPT_CHILD, *argv)
    assert res.returncode == 130, res.stderr[-3000:]
    assert "Traceback" not in res.stderr and len(res.stderr.strip().splitlines()) == 1
    assert "interrupted" in res.stderr
