"""The committed gallery is fresh: every notebook's figures were made in full, from a clean tree, at a commit
after which the notebook did not change.

``figures/manifest.json`` (written by ``make figures``: :func:`mnistlab.runner.run_notebooks`) records, per
notebook, the commit its figures were made at, whether the tree was clean and the parameters (QUICK or not).
A notebook edited after that commit shows figures the notebook no longer makes.
"""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MANIFEST = ROOT / "figures" / "manifest.json"
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def _entries() -> dict:
    return json.loads(MANIFEST.read_text()).get("notebooks", {}) if MANIFEST.is_file() else {}


def _git(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=60)


def _in_git_checkout() -> bool:
    try:
        return _git("rev-parse", "--is-inside-work-tree").stdout.strip() == "true"
    except (OSError, subprocess.SubprocessError):
        return False


ENTRIES = _entries()
#: the condition the freshness check is expected to fail under today: the committed figures were not all made
#: at one commit (issue 19: the full ``make figures`` that re-runs every notebook at one commit comes later)
MIXED_COMMITS = len({e.get("commit") for e in ENTRIES.values()}) > 1
#: entries written before the manifest recorded whether the tree was clean
UNRECORDED_CLEAN = any("clean" not in e for e in ENTRIES.values())


def _entry(path: Path) -> dict:
    assert MANIFEST.is_file(), f"{MANIFEST} is missing: run `make figures`"
    assert path.stem in ENTRIES, f"{MANIFEST.name} has no entry for {path.stem}: run `make figures`"
    return ENTRIES[path.stem]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem[:2] for p in NOTEBOOKS])
def test_committed_figures_are_not_quick(path):
    entry = _entry(path)
    assert entry["parameters"]["QUICK"] is False, (f"{path.stem}'s committed figures come from a QUICK run; "
                                                   "only the full `make figures` writes figures/")


@pytest.mark.xfail(UNRECORDED_CLEAN, strict=False,
                   reason="figures/manifest.json predates the 'clean' record (issue 19): its entries do not say "
                          "whether the tree was clean; the full `make figures` writes it")
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem[:2] for p in NOTEBOOKS])
def test_committed_figures_come_from_a_clean_tree(path):
    entry = _entry(path)
    assert entry.get("clean") is True, (f"{path.stem}'s figures were made from a tree with uncommitted changes "
                                        f"(clean: {entry.get('clean')!r}); they cannot be reproduced from "
                                        f"commit {entry.get('commit')}")


@pytest.mark.xfail(MIXED_COMMITS, strict=False,
                   reason="the committed figures were made at several commits and notebooks changed since (issue 19: "
                          "the full `make figures` at one commit comes later); strict again once they share one")
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem[:2] for p in NOTEBOOKS])
def test_notebook_unchanged_since_its_figures(path):
    if not _in_git_checkout():
        pytest.skip("not a git checkout: the commit the figures were made at cannot be compared")
    entry = _entry(path)
    commit = entry.get("commit")
    assert commit, f"{path.stem}'s manifest entry records no commit: its figures cannot be traced to a version"
    if _git("cat-file", "-e", f"{commit}^{{commit}}").returncode != 0:
        if _git("rev-parse", "--is-shallow-repository").stdout.strip() == "true":
            pytest.skip(f"commit {commit} is not in this shallow clone's history")
        pytest.fail(f"{path.stem}'s figures were made at commit {commit}, which this repository does not have")
    rel = path.relative_to(ROOT).as_posix()
    changed = _git("diff", "--quiet", commit, "HEAD", "--", rel).returncode
    if changed:
        log = _git("log", "--format=%h %s", f"{commit}..HEAD", "--", rel).stdout.splitlines()
        pytest.fail(f"{rel} changed after commit {commit}, at which its committed figures were made "
                    f"({len(log)} commits since, latest: {log[0][:100] if log else '?'}); re-run `make figures`")
