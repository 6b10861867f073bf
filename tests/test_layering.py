"""The package's layers import only the layers below them.

data < models < training < experiments < studies < viz < runner / cli. Two checks:

* at run time, a fresh interpreter that imports the real package (``mnistlab/__init__.py`` runs:
  it loads viz only on first use), then data, models, training, experiments, studies and every
  module under mnistlab/studies/, has loaded neither matplotlib nor any mnistlab.viz module;
* statically, the ``import`` statements of every module of a layer (read with ``ast``, including
  imports inside functions) name no layer it must not use.
"""
from __future__ import annotations

import ast
import json
import os
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


def _fresh(code: str) -> dict:
    """Run ``code`` in a fresh interpreter that imports the real package; return the JSON it prints last."""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                         cwd=PACKAGE.parent, env={**os.environ, "PYTHONPATH": str(PACKAGE.parent)})
    assert out.returncode == 0, f"the child failed:\n{out.stderr[-3000:]}"
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_layers_load_no_matplotlib_and_no_viz():
    """In a fresh interpreter, the package, the compute layers and every study module load neither matplotlib nor viz.

    The real ``mnistlab/__init__.py`` runs first (no stand-in parent package): it must load ``viz``
    only on first use.
    """
    modules = ["mnistlab", "mnistlab.data", "mnistlab.models", "mnistlab.training", "mnistlab.experiments",
               "mnistlab.studies"]
    modules += _study_modules()
    code = (
        "import importlib, json, sys\n"
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
    culprits = _fresh(code)
    assert not culprits, ("these modules load matplotlib or mnistlab.viz (compute layers must not; import "
                          "plotting in mnistlab.viz only): " + "; ".join(f"{k} -> {v}" for k, v in culprits.items()))


@pytest.mark.parametrize("first", ["import mnistlab", "import mnistlab.training", "import mnistlab.data",
                                   "import mnistlab.data, mnistlab.training", "import mnistlab as ml; ml.fit",
                                   "import mnistlab as ml; ml.studies.embed", "from mnistlab import read_image"])
def test_the_real_package_imports_without_matplotlib(first):
    loaded = _fresh(f"import json, sys\n{first}\n"
                    "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] == 'matplotlib'"
                    " or m.startswith('mnistlab.viz'))))\n")
    assert loaded == [], f"`{first}` loaded {loaded[:5]}"


def test_import_mnistlab_alone_loads_nothing_heavy():
    """``import mnistlab`` is instant: torch and the rest load when a name needs them (the command line relies on it)."""
    heavy = _fresh("import json, sys\nimport mnistlab\n"
                   "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules} & "
                   "{'torch', 'numpy', 'pandas', 'matplotlib', 'PIL', 'scipy'})))\n")
    assert heavy == []


def test_the_lazy_names_resolve():
    """``ml.viz``, ``ml.Figures``, ``ml.image_grid``, ``ml.to_mnist`` ... work; ``__all__`` and ``dir()`` list them."""
    got = _fresh(
        "import json, sys\n"
        "import mnistlab as ml\n"
        "names = list(ml.__all__)\n"
        "missing = [n for n in names if not hasattr(ml, n)]\n"
        "from mnistlab.viz.common import image_grid\n"
        "from mnistlab.viz.store import Figures\n"
        "from mnistlab.data.images import to_mnist\n"
        "from mnistlab.studies.handwriting import Reading, read_image, read_number\n"
        "same = [ml.viz.image_grid is image_grid, ml.Figures is Figures, ml.image_grid is image_grid,\n"
        "        ml.to_mnist is to_mnist, ml.read_image is read_image, ml.Reading is Reading,\n"
        "        ml.read_number is read_number,\n"
        "        ml.studies is sys.modules['mnistlab.studies'], ml.experiments.run is not None]\n"
        "try:\n"
        "    ml.no_such_name\n"
        "    error = None\n"
        "except AttributeError as exc:\n"
        "    error = str(exc)\n"
        "print(json.dumps({'missing': missing, 'same': same, 'dir': sorted(set(names) - set(dir(ml))),\n"
        "                  'error': error, 'all': names}))\n")
    assert got["missing"] == [] and all(got["same"]), got
    assert got["dir"] == [], f"dir(mnistlab) lacks {got['dir']}"
    assert "no_such_name" in got["error"]
    for name in ("to_mnist", "Figures", "image_grid", "Reading", "read_image", "read_number",
                 "viz", "studies", "experiments", "load_dataset", "fit", "TrainConfig"):
        assert name in got["all"], f"{name} missing from mnistlab.__all__"


def test_every_name_the_notebooks_use_is_public():
    """Each ``ml.<name>`` in a notebook (or a test) is in ``mnistlab.__all__``."""
    import re

    import mnistlab as ml

    used = set()
    for path in [*(PACKAGE.parent / "notebooks").glob("*.ipynb"), *(PACKAGE.parent / "tests").glob("*.py")]:
        used |= set(re.findall(r"\bml\.([A-Za-z_][A-Za-z_0-9]*)", path.read_text()))
    used -= {"__all__", "__version__", "__dict__", "no_such_name"}
    assert sorted(used - set(ml.__all__) - {"training", "data", "models", "runner"}) == []
    assert sorted(n for n in used if not hasattr(ml, n)) == []


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


def test_no_import_circle_inside_the_data_layer():
    """``data/datasets`` imports no other data module: ``sklearn_digits`` registers its loader with it (issue 17)."""
    tree = ast.parse((PACKAGE / "data" / "datasets.py").read_text())
    names = [n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.level == 1]
    assert names == [], f"mnistlab/data/datasets.py imports data modules {names}: an import circle"


def test_the_static_check_sees_relative_and_nested_imports(tmp_path, monkeypatch):
    """The import reader catches ``from ..viz import x``, ``from .. import viz`` and imports inside functions."""
    fake = tmp_path / "mnistlab" / "studies"
    fake.mkdir(parents=True)
    (fake / "bad.py").write_text("from ..viz import style\n\ndef f():\n    from .. import runner\n"
                                 "    import mnistlab.cli\n")
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", tmp_path / "mnistlab")
    assert set(imported_parts(fake / "bad.py")) == {"viz", "runner", "cli"}


def test_a_runs_config_walks_straight_down(tmp_path, monkeypatch):
    """Following the TrainConfig of experiments.run to the optimizer: every function that receives it, in order.

    The files they live in, consecutive calls in one file counted once, go straight down: the config
    is parsed and its key settings read in config.py once, hashed in cache.py, the model built and
    trained in recipes.py and loop.py; only the driver (runs.py) is returned to."""
    import mnistlab as ml
    import mnistlab.experiments as ex

    monkeypatch.setenv("MNISTLAB_CACHE", str(tmp_path))
    cfg = ml.TrainConfig("walk", model="logreg", epochs=1, train_limit=64, test_limit=32, batch_size=32)
    files = []

    def profile(frame, event, arg):
        name = frame.f_code.co_filename.replace(os.sep, "/")
        if event == "call" and "/mnistlab/" in name and any(v is cfg for v in frame.f_locals.values()):
            where = name.split("/mnistlab/")[-1]
            if not files or files[-1] != where:
                files.append(where)

    sys.setprofile(profile)
    try:
        ex.run(cfg, 0, device="cpu")
    finally:
        sys.setprofile(None)
    assert files == ["experiments/runs.py", "training/config.py", "experiments/cache.py", "experiments/runs.py",
                     "training/recipes.py", "training/loop.py"], files
