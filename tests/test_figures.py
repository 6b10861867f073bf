"""The notebook machinery: papermill runner, manifest, and the rules committed notebooks follow."""
import json
import os
from pathlib import Path

import nbformat
import pytest

from mnistlab.runner import NotebookError, list_notebooks, project_root, run_notebook, run_notebooks

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def make_notebook(folder: Path, name: str, body: str) -> Path:
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell('QUICK = False\nDATASET = "mnist"\nSEED = 0\nDEVICE = "auto"')
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell(body)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path = folder / f"{name}.ipynb"
    nbformat.write(nb, path)
    return path


def test_runner_writes_figures_and_manifest(tmp_path):
    nbdir = tmp_path / "notebooks"
    nbdir.mkdir()
    make_notebook(nbdir, "01_demo", (
        "import matplotlib\nmatplotlib.use('Agg')\nimport matplotlib.pyplot as plt\nimport mnistlab as ml\n"
        "figs = ml.Figures('01_demo'); figs.reset()\n"
        "fig, ax = plt.subplots(); ax.plot([1, 2])\nfigs.save(fig, 'line')\n"
        "figs.record(quick=QUICK, seed=SEED, answer=42)"))
    make_notebook(nbdir, "02_other", "x = 1")
    assert [p.stem for p in list_notebooks(notebooks_dir=nbdir)] == ["01_demo", "02_other"]
    assert [p.stem for p in list_notebooks("02", notebooks_dir=nbdir)] == ["02_other"]
    with pytest.raises(ValueError, match="No notebook"):
        list_notebooks("07", notebooks_dir=nbdir)
    figures = tmp_path / "figures"
    (figures / "01_demo").mkdir(parents=True)
    (figures / "01_demo" / "stale.png").write_bytes(b"old")
    manifest = run_notebooks(only="01", quick=True, seed=3, figures_dir=figures, executed_dir=tmp_path / "exec",
                             notebooks_dir=nbdir, progress=False)
    entry = manifest["notebooks"]["01_demo"]
    assert entry["numbers"] == {"quick": True, "seed": 3, "answer": 42}
    assert entry["parameters"] == {"QUICK": True, "DATASET": "mnist", "SEED": 3, "DEVICE": "auto"}
    assert entry["figures"] == ["01_demo/line.png"] and not (figures / "01_demo" / "stale.png").exists()
    assert manifest["figures"]["01_demo/line.png"]["notebook"] == "01_demo"
    assert entry["seconds"] > 0 and entry["version"]
    on_disk = json.loads((figures / "manifest.json").read_text())
    assert on_disk["notebooks"]["01_demo"]["numbers"]["answer"] == 42
    assert (tmp_path / "exec" / "01_demo.ipynb").is_file()


def test_failing_notebook_names_the_cell(tmp_path):
    nbdir = tmp_path / "notebooks"
    nbdir.mkdir()
    make_notebook(nbdir, "01_broken", "raise RuntimeError('boom at cell two')")
    with pytest.raises(NotebookError, match=r"01_broken.ipynb failed in cell \d+ \(RuntimeError: boom at cell two\)"):
        run_notebooks(figures_dir=tmp_path / "f", executed_dir=tmp_path / "e", notebooks_dir=nbdir, progress=False)


def test_run_notebook_injects_parameters_and_returns_its_entry(tmp_path):
    path = make_notebook(tmp_path, "05_params", (
        "import mnistlab as ml\nfigs = ml.Figures('05_params'); figs.reset()\n"
        "figs.record(quick=QUICK, dataset=DATASET, seed=SEED, device=DEVICE)"))
    params = {"QUICK": True, "DATASET": "fashion-mnist", "SEED": 7, "DEVICE": "cpu"}
    entry = run_notebook(path, params, tmp_path / "figs", tmp_path / "exec", progress=False)
    assert entry["notebook"] == "05_params" and entry["parameters"] == params
    assert entry["numbers"] == {"quick": True, "dataset": "fashion-mnist", "seed": 7, "device": "cpu"}
    assert entry["figures"] == [] and (tmp_path / "exec" / "05_params.ipynb").is_file()


def test_project_root_is_the_checkout():
    assert project_root() == ROOT and (project_root() / "pyproject.toml").is_file()


def test_there_are_notebooks():
    assert NOTEBOOKS, "no notebooks in notebooks/"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_committed_notebooks_are_clean_and_parameterised(path):
    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    dirty = [i for i, c in enumerate(code) if c.get("outputs") or c.get("execution_count")]
    assert not dirty, f"{path.name} is committed with outputs in code cells {dirty}; clear them before committing"
    first = code[0]
    assert "parameters" in first.metadata.get("tags", []), f"{path.name}: first code cell is not tagged 'parameters'"
    for name in ("QUICK", "DATASET", "SEED", "DEVICE"):
        assert f"{name} =" in first.source, f"{path.name}: parameters cell lacks {name}"
    assert nb.metadata.get("kernelspec", {}).get("name") == "python3"
    assert any(c.cell_type == "markdown" for c in nb.cells), f"{path.name} has no narrative"


def test_failed_run_keeps_the_old_figures_and_manifest(tmp_path):
    nbdir = tmp_path / "notebooks"
    nbdir.mkdir()
    make_notebook(nbdir, "01_demo", "raise RuntimeError('half-way')")
    figures = tmp_path / "figures"
    (figures / "01_demo").mkdir(parents=True)
    (figures / "01_demo" / "old.png").write_bytes(b"old figure")
    (figures / "manifest.json").write_text('{"notebooks": {"01_demo": {}}, "figures": {}}')
    before = {p: p.read_bytes() for p in figures.rglob("*") if p.is_file()}
    with pytest.raises(NotebookError, match="half-way"):
        run_notebooks(figures_dir=figures, executed_dir=tmp_path / "e", notebooks_dir=nbdir, progress=False)
    assert {p: p.read_bytes() for p in figures.rglob("*") if p.is_file()} == before
    assert not list(figures.glob(".*.tmp"))  # its staging folder is gone


def test_staging_folders_of_killed_runs_are_removed(tmp_path):
    import os
    import subprocess
    import sys

    from mnistlab.runner import _clean_stale_staging

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()
    stale = tmp_path / f".01_demo.{dead}.abc.tmp"
    live = tmp_path / f".01_demo.{os.getpid()}.def.tmp"
    for folder in (stale, live):
        (folder / "01_demo").mkdir(parents=True)
    _clean_stale_staging(tmp_path)
    assert not stale.exists() and live.exists()


def test_a_kill_inside_the_swap_is_repaired(tmp_path):
    import subprocess
    import sys

    from mnistlab.runner import _clean_stale_staging

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()
    # killed after moving the old figures aside, before moving the new ones in
    done = tmp_path / f".01_demo.{dead}.a.tmp"
    (done / "01_demo").mkdir(parents=True)
    (done / "01_demo" / "new.png").write_bytes(b"new")
    (done / "old").mkdir()
    (done / ".complete").touch()
    # a first run killed half-way: its figures are incomplete and must not appear
    half = tmp_path / f".02_other.{dead}.b.tmp"
    (half / "02_other").mkdir(parents=True)
    _clean_stale_staging(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["01_demo"]
    assert [p.name for p in (tmp_path / "01_demo").iterdir()] == ["new.png"]


# ------------------------------------------------------------------- the notebook kernels' environment

def test_kernel_environment_makes_the_folders_absolute(tmp_path, monkeypatch):
    """Notebooks run with notebooks/ as their working folder: relative paths from the user's shell must not break."""
    from mnistlab.runner import kernel_environment

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MNISTLAB_DATA", "  ../shared/data \n")
    monkeypatch.setenv("MNISTLAB_CACHE", "cache")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    cwd = Path(os.getcwd())
    env = kernel_environment(figures="figs/.01.tmp")
    assert env["MNISTLAB_DATA"] == str(cwd.parent / "shared" / "data")
    assert env["MNISTLAB_CACHE"] == str(cwd / "cache")
    assert env["MNISTLAB_FIGURES"] == str(cwd / "figs" / ".01.tmp")
    monkeypatch.setenv("MNISTLAB_DATA", "~/data")
    assert kernel_environment()["MNISTLAB_DATA"] == str(tmp_path / "home" / "data")
    for blank in ("", "   "):  # blank is unset: the kernel uses the default folder
        monkeypatch.setenv("MNISTLAB_DATA", blank)
        assert kernel_environment()["MNISTLAB_DATA"] is None
    monkeypatch.delenv("MNISTLAB_DATA")
    monkeypatch.delenv("MNISTLAB_CACHE")
    assert kernel_environment() == {}


def test_a_relative_data_folder_reaches_the_kernel_absolute(tmp_path, monkeypatch):
    nbdir = tmp_path / "notebooks"
    nbdir.mkdir()
    make_notebook(nbdir, "01_env", (
        "import json, os, pathlib\n"
        "out = pathlib.Path(os.environ['MNISTLAB_FIGURES'], '01_env')\n"
        "out.mkdir(parents=True, exist_ok=True)\n"
        "(out / 'numbers.json').write_text(json.dumps({'data': os.environ.get('MNISTLAB_DATA'), 'cwd': os.getcwd()}))"))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MNISTLAB_DATA", "data ")
    manifest = run_notebooks(figures_dir="figures", executed_dir="executed", notebooks_dir="notebooks", progress=False)
    numbers = manifest["notebooks"]["01_env"]["numbers"]
    assert numbers == {"data": os.path.join(os.getcwd(), "data"), "cwd": str(nbdir.resolve())}
    assert os.environ["MNISTLAB_DATA"] == "data " and "MNISTLAB_FIGURES" not in os.environ  # restored


@pytest.mark.parametrize("only", ["", " ", ",", []])
def test_an_empty_selection_is_refused(only, tmp_path):
    nbdir = tmp_path / "notebooks"
    nbdir.mkdir()
    make_notebook(nbdir, "01_demo", "x = 1")
    with pytest.raises(ValueError, match="01_demo"):
        list_notebooks(only, notebooks_dir=nbdir)
    assert [p.stem for p in list_notebooks(None, notebooks_dir=nbdir)] == ["01_demo"]


def test_figures_dir_that_is_a_file_is_refused(tmp_path):
    nbdir = tmp_path / "notebooks"
    nbdir.mkdir()
    make_notebook(nbdir, "01_demo", "x = 1")
    (tmp_path / "figs").write_text("keep")
    with pytest.raises(ValueError, match="not a folder"):
        run_notebooks(figures_dir=tmp_path / "figs", executed_dir=tmp_path / "e", notebooks_dir=nbdir, progress=False)
    assert (tmp_path / "figs").read_text() == "keep"


def test_only_the_main_job_writes_the_gallery(tmp_path, monkeypatch):
    """A QUICK run without --out lands in build/figures-quick, the full run in figures/; a notebook run by
    hand (no MNISTLAB_FIGURES) writes under build/figures."""
    import mnistlab as ml
    import mnistlab.runner as runner

    nbdir = tmp_path / "notebooks"
    nbdir.mkdir()
    make_notebook(nbdir, "01_demo", "x = 1")
    seen = []
    monkeypatch.setattr(runner, "run_notebook", lambda path, params, figures_dir, executed_dir, progress=True:
                        seen.append(Path(figures_dir)) or {"notebook": path.stem, "figures": []})
    run_notebooks(quick=True, notebooks_dir=nbdir, executed_dir=tmp_path / "exec", progress=False)
    run_notebooks(quick=False, notebooks_dir=nbdir, executed_dir=tmp_path / "exec", progress=False)
    assert seen == [tmp_path / "build" / "figures-quick", tmp_path / "figures"]
    monkeypatch.delenv("MNISTLAB_FIGURES", raising=False)
    assert ml.Figures("01_demo").dir == project_root() / "build" / "figures" / "01_demo"


def _git_repo(folder: Path) -> None:
    import subprocess

    def git(*args):
        subprocess.run(["git", *args], cwd=folder, check=True, capture_output=True)

    git("init", "-q")
    git("-c", "user.email=t@example.com", "-c", "user.name=t", "add", "-A")
    git("-c", "user.email=t@example.com", "-c", "user.name=t", "commit", "-q", "-m", "notebooks")


def test_the_manifest_records_the_commit_and_a_clean_tree(tmp_path):
    """Each entry says at which commit its figures were made and whether the tree was clean (freshness)."""
    import subprocess

    nbdir = tmp_path / "notebooks"
    nbdir.mkdir()
    make_notebook(nbdir, "01_demo", "import mnistlab as ml\nml.Figures('01_demo').record(answer=1)")
    (tmp_path / ".gitignore").write_text("figures/\nexec/\n")
    _git_repo(tmp_path)
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=tmp_path, capture_output=True, text=True).stdout.strip()
    manifest = run_notebooks(figures_dir=tmp_path / "figures", executed_dir=tmp_path / "exec", notebooks_dir=nbdir,
                             progress=False)
    entry = manifest["notebooks"]["01_demo"]
    assert entry["commit"] == head and entry["clean"] is True and entry["parameters"]["QUICK"] is False
    # where the time went: per code cell, the machine, and how warm the experiment cache was
    assert entry["cells"][-1]["code"] == "import mnistlab as ml" and entry["cells"][-1]["seconds"] >= 0
    assert entry["machine"]["cores"] >= 1 and set(entry["cache"]) == {"runs_before", "runs_after"}
    on_disk = json.loads((tmp_path / "figures" / "manifest.json").read_text())
    assert on_disk["notebooks"]["01_demo"]["clean"] is True


def test_the_main_job_refuses_a_dirty_tree_and_quick_mode(tmp_path, monkeypatch):
    import mnistlab.runner as runner

    nbdir = tmp_path / "notebooks"
    nbdir.mkdir()
    make_notebook(nbdir, "01_demo", "x = 1")
    _git_repo(tmp_path)
    seen = []
    monkeypatch.setattr(runner, "run_notebook", lambda path, params, figures_dir, executed_dir, progress=True:
                        seen.append(Path(figures_dir)) or {"notebook": path.stem, "figures": []})
    monkeypatch.delenv("MNISTLAB_ALLOW_DIRTY", raising=False)
    kw = dict(notebooks_dir=nbdir, executed_dir=tmp_path / "exec", progress=False)
    run_notebooks(**kw)                                                  # clean: the main job runs
    with pytest.raises(ValueError, match="QUICK figures never go to the committed gallery"):
        run_notebooks(quick=True, figures_dir=tmp_path / "figures", **kw)
    make_notebook(nbdir, "01_demo", "x = 2")                             # a tracked file edited, not committed
    assert runner.git_state(tmp_path)["clean"] is False
    with pytest.raises(runner.DirtyTreeError, match=r"uncommitted changes \(1 files: notebooks/01_demo.ipynb\)"):
        run_notebooks(**kw)
    run_notebooks(quick=True, **kw)                                      # QUICK goes to build/: no refusal
    run_notebooks(figures_dir=tmp_path / "elsewhere", **kw)              # nor does any other folder
    with pytest.warns(UserWarning, match="records \"clean\": false"):
        run_notebooks(allow_dirty=True, **kw)
    assert seen == [tmp_path / "figures", tmp_path / "build" / "figures-quick", tmp_path / "elsewhere",
                    tmp_path / "figures"]


def test_figures_written_by_the_main_job_do_not_make_the_tree_dirty(tmp_path):
    """The main job writes figures/ notebook after notebook: 02's entry must not call the tree dirty
    because 01's committed figures just changed; any other tracked file still does."""
    import mnistlab.runner as runner

    nbdir = tmp_path / "notebooks"
    nbdir.mkdir()
    make_notebook(nbdir, "01_demo", "x = 1")
    (tmp_path / "figures" / "01_demo").mkdir(parents=True)
    (tmp_path / "figures" / "01_demo" / "a.csv").write_text("a\n1\n")
    _git_repo(tmp_path)                                        # commits the notebook and its figures
    (tmp_path / "figures" / "01_demo" / "a.csv").write_text("a\n2\n")
    assert runner.git_state(nbdir)["clean"] is True           # asked from the notebooks folder, as the runner does
    make_notebook(nbdir, "01_demo", "x = 2")
    state = runner.git_state(nbdir)
    assert state["clean"] is False and state["dirty"] == ["notebooks/01_demo.ipynb"]


def test_git_state_outside_a_checkout(tmp_path):
    from mnistlab.runner import git_state

    assert git_state(tmp_path) == {"commit": None, "clean": None, "dirty": []}


def test_lanes_take_the_longest_notebooks_first_and_balance_the_work():
    from mnistlab.runner import _lane_cores, _lanes

    paths = [Path(f"{n}.ipynb") for n in ("01_a", "02_b", "03_c", "04_d", "05_new")]
    lanes = _lanes(paths, {"01_a": 10.0, "02_b": 60.0, "03_c": 50.0, "04_d": 20.0}, 2)
    # 05_new has no time: counted as the longest known (60 s)
    assert [[p.stem for p in lane] for lane in lanes] == [["02_b", "03_c"], ["05_new", "04_d", "01_a"]]
    assert [[p.stem for p in lane] for lane in _lanes(paths[:1], {}, 2)] == [["01_a"]]
    assert _lane_cores(1) == [[]]
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="jobs must be a whole number >= 1"):
            _lane_cores(bad)
    with pytest.raises(ValueError, match=r"jobs=99 needs a core per lane, but this process may use \d+ core"):
        _lane_cores(99)


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs two cores")
def test_notebooks_run_side_by_side_each_on_its_own_core(tmp_path):
    nbdir = tmp_path / "notebooks"
    nbdir.mkdir()
    body = ("import os, torch, mnistlab as ml\nfigs = ml.Figures('{name}'); figs.reset()\n"
            "figs.record(cores=sorted(os.sched_getaffinity(0)), threads=torch.get_num_threads())")
    for name in ("01_a", "02_b", "03_c"):
        make_notebook(nbdir, name, body.format(name=name))
    kw = dict(quick=True, figures_dir=tmp_path / "f", executed_dir=tmp_path / "e", notebooks_dir=nbdir, progress=False)
    manifest = run_notebooks(jobs=2, **kw)
    numbers = {name: e["numbers"] for name, e in manifest["notebooks"].items()}
    assert sorted(numbers) == ["01_a", "02_b", "03_c"]
    assert all(len(n["cores"]) == len(os.sched_getaffinity(0)) // 2 and n["threads"] == len(n["cores"]) for n in numbers.values())
    assert len({tuple(n["cores"]) for n in numbers.values()}) == 2          # two lanes, two sets of cores
    last = manifest["last_run"]
    assert last["jobs"] == 2 and last["quick"] and sorted(last["notebooks"]) == sorted(numbers)
    # side by side: a notebook of one lane ran while one of the other lane ran (time spans from each entry's end
    # and length; no timing threshold: on a loaded machine kernel start-up can outweigh these tiny notebooks)
    from datetime import datetime, timedelta

    span = {name: (end - timedelta(seconds=e["seconds"]), end) for name, e in manifest["notebooks"].items()
            for end in [datetime.fromisoformat(e["finished"])]}
    lane_of = {name: tuple(n["cores"]) for name, n in numbers.items()}
    assert any(lane_of[a] != lane_of[b] and span[a][0] < span[b][1] and span[b][0] < span[a][1]
               for a in span for b in span)
    assert last["seconds"] > 0
    assert json.loads((tmp_path / "f" / "manifest.json").read_text())["last_run"] == last
    # a failing notebook is named; the other lane's notebooks still finish and enter the manifest
    make_notebook(nbdir, "02_b", "raise RuntimeError('lane boom')")
    (tmp_path / "f" / "manifest.json").unlink()
    with pytest.raises(NotebookError, match=r"02_b.ipynb failed in cell \d+ \(RuntimeError: lane boom\)"):
        run_notebooks(jobs=2, **kw)
    assert {"01_a", "03_c"} <= set(json.loads((tmp_path / "f" / "manifest.json").read_text())["notebooks"])
    # the main job keeps one notebook at a time
    with pytest.raises(ValueError, match="the main job .figures/. runs one notebook at a time"):
        run_notebooks(jobs=2, notebooks_dir=nbdir, executed_dir=tmp_path / "e", progress=False)
