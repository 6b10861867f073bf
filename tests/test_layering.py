"""The package's layers import only the layers below them.

data < models < training < experiments < studies < viz < runner / cli. Two checks:

* at run time, a fresh interpreter that imports data, models, training, experiments, studies and
  every module under mnistlab/studies/ has loaded neither matplotlib nor any mnistlab.viz module
  (``mnistlab/__init__.py`` loads viz, so the check looks at what the layers themselves pull in);
* statically, the ``import`` statements of every module of a layer (read with ``ast``, including
  imports inside functions) name no layer it must not use.
"""
from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "mnistlab"

#: layer -> the parts of the package it must not import (``_util`` is open to all).
FORBIDDEN = {
    "data": {"models", "training", "experiments", "studies", "viz", "runner", "cli"},
    "models": {"training", "experiments", "studies", "viz", "runner", "cli"},
    "training": {"experiments", "studies", "viz", "runner", "cli"},
    "experiments": {"studies", "viz", "runner", "cli"},
    "studies": {"viz", "runner", "cli"},
    "viz": {"runner", "cli"},
}


def _modules(layer: str) -> list[Path]:
    folder = PACKAGE / layer
    return sorted(folder.rglob("*.py")) if folder.is_dir() else [PACKAGE / f"{layer}.py"]


def _dotted(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def imported_parts(path: Path) -> dict[str, int]:
    """``{top-level part of mnistlab imported: line}`` for every import in ``path`` (absolute or relative)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    module = _dotted(path)
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    found: dict[str, int] = {}
    for node in ast.walk(tree):
        targets = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
                # "from .. import viz" names the part in the alias
                targets = [target] if node.module else [f"{target}.{a.name}" for a in node.names]
            else:
                targets = [node.module or ""]
        for target in targets:
            parts = target.split(".")
            if parts[0] == "mnistlab" and len(parts) > 1:
                found.setdefault(parts[1], node.lineno)
    return found


def _study_modules() -> list[str]:
    return [_dotted(p) for p in sorted((PACKAGE / "studies").glob("*.py"))]


def test_layers_load_no_matplotlib_and_no_viz():
    """In a fresh interpreter, the compute layers (and every study module) never load matplotlib or viz."""
    modules = ["mnistlab.data", "mnistlab.models", "mnistlab.training", "mnistlab.experiments", "mnistlab.studies"]
    modules += _study_modules()
    code = (
        "import importlib, json, sys, types\n"
        # import the layers without running mnistlab/__init__.py (which loads viz on purpose)
        f"pkg = types.ModuleType('mnistlab'); pkg.__path__ = [{str(PACKAGE)!r}]; sys.modules['mnistlab'] = pkg\n"
        "culprits = {}\n"
        f"for name in {modules!r}:\n"
        "    before = set(sys.modules)\n"
        "    importlib.import_module(name)\n"
        "    new = sorted(m for m in set(sys.modules) - before\n"
        "                 if m.split('.')[0] == 'matplotlib' or m.startswith('mnistlab.viz'))\n"
        "    if new:\n"
        "        culprits[name] = new[:5]\n"
        "print(json.dumps(culprits))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, f"importing the layers failed:\n{out.stderr[-3000:]}"
    culprits = json.loads(out.stdout.strip().splitlines()[-1])
    assert not culprits, ("these modules load matplotlib or mnistlab.viz (compute layers must not; import "
                          "plotting in mnistlab.viz only): " + "; ".join(f"{k} -> {v}" for k, v in culprits.items()))


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_layer_imports_only_layers_below(layer):
    bad = []
    for path in _modules(layer):
        for part, line in imported_parts(path).items():
            if part in FORBIDDEN[layer]:
                bad.append(f"{path.relative_to(PACKAGE.parent)}:{line} imports mnistlab.{part}")
    assert not bad, (f"the {layer} layer must not import {sorted(FORBIDDEN[layer])}:\n  " + "\n  ".join(bad))


def test_data_imports_nothing_of_the_package_but_util():
    allowed = {"data", "_util"}
    bad = [f"{p.relative_to(PACKAGE.parent)}:{line} imports mnistlab.{part}"
           for p in _modules("data") for part, line in imported_parts(p).items() if part not in allowed]
    assert not bad, "mnistlab.data may import only mnistlab._util:\n  " + "\n  ".join(bad)


def test_the_static_check_sees_relative_and_nested_imports(tmp_path, monkeypatch):
    """The import reader catches ``from ..viz import x``, ``from .. import viz`` and imports inside functions."""
    fake = tmp_path / "mnistlab" / "studies"
    fake.mkdir(parents=True)
    (fake / "bad.py").write_text("from ..viz import style\n\ndef f():\n    from .. import runner\n"
                                 "    import mnistlab.cli\n")
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", tmp_path / "mnistlab")
    assert set(imported_parts(fake / "bad.py")) == {"viz", "runner", "cli"}
