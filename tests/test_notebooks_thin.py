"""Every notebook is thin: parameters first, no definitions, short code cells, no committed outputs."""
import ast
import json
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("[0-9][0-9]_*.ipynb"))
MAX_LINES = 15
REQUIRED = {"QUICK", "DATASET", "SEED", "DEVICE"}


def test_there_are_notebooks():
    assert len(NOTEBOOKS) >= 4, NOTEBOOKS


def _cells(path):
    nb = json.loads(path.read_text())
    return [c for c in nb["cells"]], nb


def _source(cell) -> str:
    src = cell["source"]
    return "".join(src) if isinstance(src, list) else src


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_first_code_cell_is_tagged_parameters(path):
    cells, _ = _cells(path)
    code = [c for c in cells if c["cell_type"] == "code"]
    assert code, f"{path.name} has no code cell"
    first = code[0]
    assert "parameters" in first.get("metadata", {}).get("tags", []), (
        f"{path.name}: the first code cell must carry the papermill tag 'parameters'.")
    names = {t.id for node in ast.parse(_source(first)).body if isinstance(node, ast.Assign)
             for t in node.targets if isinstance(t, ast.Name)}
    assert REQUIRED <= names, f"{path.name}: the parameters cell lacks {sorted(REQUIRED - names)}."


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_no_definitions_in_notebooks(path):
    cells, _ = _cells(path)
    for i, cell in enumerate(cells):
        if cell["cell_type"] != "code":
            continue
        src = _source(cell)
        tree = ast.parse("\n".join(l for l in src.splitlines() if not l.lstrip().startswith(("%", "!"))))
        defs = [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))]
        assert not defs, (f"{path.name} cell {i} defines {[d.name for d in defs]}: move it into the package "
                          "and call it from the notebook.")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_code_cells_are_short(path):
    cells, _ = _cells(path)
    long = [(i, len(_source(c).strip().splitlines())) for i, c in enumerate(cells)
            if c["cell_type"] == "code" and len(_source(c).strip().splitlines()) > MAX_LINES]
    assert not long, f"{path.name}: code cells longer than {MAX_LINES} lines (cell, lines): {long}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_no_outputs_committed(path):
    cells, _ = _cells(path)
    dirty = [i for i, c in enumerate(cells) if c["cell_type"] == "code" and (c.get("outputs") or c.get("execution_count"))]
    assert not dirty, f"{path.name}: cells {dirty} carry outputs or execution counts; clear them before committing."


def test_the_checks_catch_a_fat_notebook(tmp_path):
    """The rules above fail on a notebook with a def, a long cell, outputs and no parameters tag."""
    fat = {"cells": [{"cell_type": "code", "metadata": {}, "execution_count": 3, "outputs": [{"output_type": "stream"}],
                      "source": "def f():\n    return 1\n" + "x = 1\n" * 20}], "metadata": {}, "nbformat": 4,
           "nbformat_minor": 5}
    path = tmp_path / "99_fat.ipynb"
    path.write_text(json.dumps(fat))
    for check in (test_first_code_cell_is_tagged_parameters, test_no_definitions_in_notebooks,
                  test_code_cells_are_short, test_no_outputs_committed):
        with pytest.raises(AssertionError):
            check(path)
