"""No typed number in a notebook's markdown: every figure a reader sees is computed and printed by a code cell.

A number typed into the narrative ("about 30 s", "99.6%", "64 steps") stays when the run that it
described changes, so it goes stale silently. This test scans the markdown cells of every notebook for
digits and fails on any that is not covered by the allow-list below. Each entry of the allow-list says
why a number there cannot go stale:

* ``section``   section and list numbers: the heading ``## 3 · ...`` and a list item ``2. ...``;
* ``notebook``  notebook numbers ("01" ... "09", as in ``# 05 · ...`` and ``figures/03_model_search/``);
* ``source``    the source documents' file names (``003_93ba5a5184406ca4.txt``, see ``../shared/seeds``);
* ``code``      inline code (names, expressions and commands the reader can run: the code is the truth);
* ``name``      names that hold a digit: models and layers (LeNet-5, ResNet-18, fc1, PC1) and types (uint8);
* ``digit``     a digit class named as a digit: in bold ("**7 towards a 9**") or as a plural ("1s");
* ``citation``  the year of a cited paper ("Guo et al., 2017");
* ``dataset``   fixed facts of the datasets (60,000 / 10,000 / 70,000 images, 28 x 28 = 784 pixels,
                ten classes, 256 grey levels, scikit-learn's 1,797 8x8 digits);
* ``notation``  mathematics and fixed conventions, not results: ``[0, 1]``, "1 = perfectly balanced",
                a 95% interval, "α = 0", ``1/sqrt(fan_in)``, "O(n log n)", a box plot's 1.5 IQR
                whiskers, RMSprop's first step of ±10·lr, the 1e-3 rule of thumb for update/weight ratios;
* ``quoted``    a figure quoted from a source: a published figure of :data:`mnistlab.studies.claims.QUOTES`
                written as the quote writes it ("around epoch 15"), and the numbers its quotes write with a
                decimal point, a comma or a percent sign ("99.2%"); each quote is checked against the
                source's file by ``test_claims.py``.

Anything else (a run time, an accuracy, a count of runs or steps, a parameter value that the code may
change) must be printed by a code cell, or the sentence rephrased without it.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))

#: notebooks whose markdown is still being cleaned by their owners (issue 19, item 2): reported, not failed
PENDING: dict[str, str] = {}

# (category, pattern): a match is removed from the text before digits are looked for.
ALLOWED: list[tuple[str, str]] = [
    ("source", r"\b\d{3}_[0-9a-f]{16}\.txt\b"),
    ("code", r"`[^`\n]+`"),
    ("section", r"(?m)^#{1,6}\s+\d+(?:\s*[·.]\s*|\s+(?=\S))"),           # "## 3 · Title", "## 1. PCA"
    ("section", r"(?m)^\s*\d+\.\s"),                                       # "2. A list item"
    ("section", r"\b[Ss]ections?\s+\d+(?:\s*(?:[–-]|and|,)\s*\d+)*"),    # "section 7", "sections 2–5"
    ("notebook", r"(?<![\d.,])0[1-9](?![\d.,%])"),
    ("name", r"\b(?:LeNet-5|ResNet-18|PC[1-9]|[Ff]c[12]|conv[12]|u?int(?:8|16|32|64)|b?float(?:16|32|64))\b"),
    ("digit", r"\*\*\d towards an? \d\*\*|\b\ds\b"),
    ("citation", r"(?:et al\.,?|Saxe)\s*\(?(?:19|20)\d\d\)?"),
    ("dataset", r"\b(?:60|10|70),000\b"),
    ("dataset", r"\b28\s*[x×]\s*28\b|\b784\b|\b1,797\b|\b8\s*[x×]\s*8\b|\b256 grey levels\b"),
    ("dataset", r"\b(?:ten|10) classes\b"),
    ("notation", r"\[-?[01], 1\]"),                                        # pixel ranges [0, 1], [-1, 1]
    ("notation", r"\b0\s*[–-]\s*100\s*%"),                                 # the full percent scale
    ("notation", r"\(1 = perfectly balanced\)"),
    ("notation", r"\b95% (?:confidence |Wilson )?intervals?\b|\bat the 5% level\b"),
    ("notation", r"\(-1 to 1\)"),
    ("notation", r"\b1\s*/\s*C\b|\b1/sqrt\(fan_in\)"),
    ("notation", r"\bO\(n(?: log n)?\)"),
    ("notation", r"\b[Ii]s a 90% prediction right 90% of the time\?"),
    ("notation", r"\bα = [01]\b|\(1 - α\)"),
    ("notation", r"\b(?:1|2|50|784)-D\b"),                                  # 2-D plane, 784-D pixel space
    ("notation", r"\(-?1\.2 for a uniform, 0 for a normal distribution\)"),
    ("notation", r"\b1 − ε \+ ε/10\b"),
    ("notation", r"\bk-1\b|\bslope of 1\b|\b1\.5 times the interquartile\s+range\b|±10·lr\b|~?\b1e-3\b"),
]

_TOKEN = re.compile(r"\d(?:[\d,.]*\d)?%?")


def _quoted_figures() -> set[str]:
    """Numbers the sources' quotes write with a decimal point, a thousands comma or a percent sign."""
    from mnistlab.studies.claims import QUOTES

    found = set()
    for q in QUOTES.values():
        for text in (q.claim, q.published):
            found |= {t for t in _TOKEN.findall(text) if any(ch in t for ch in ".,%")}
    return found


def _published_fragments() -> list[str]:
    """The sources' published figures as their quotes write them ("around epoch 15", "3 and 8")."""
    from mnistlab.studies.claims import QUOTES, fragments

    return sorted({f for q in QUOTES.values() for f in fragments(q.published) if re.search(r"\d", f)}, key=len,
                  reverse=True)


def markdown_number_hits(path: Path, quoted: set[str] | None = None) -> list[str]:
    """Every number in ``path``'s markdown cells that the allow-list does not cover, with its context."""
    quoted = _quoted_figures() if quoted is None else quoted
    nb = json.loads(Path(path).read_text())
    hits = []
    for i, cell in enumerate(nb["cells"]):
        if cell["cell_type"] != "markdown":
            continue
        text = "".join(cell["source"])
        masked = text
        for fragment in _published_fragments():
            masked = masked.replace(fragment, " " * len(fragment))
        for _, pattern in ALLOWED:
            masked = re.sub(pattern, lambda m: " " * len(m.group()), masked)
        for m in _TOKEN.finditer(masked):
            token = m.group().rstrip(".,")
            if token in quoted or token.rstrip("%") + "%" in quoted and token.endswith("%"):
                continue
            context = text[max(0, m.start() - 30): m.end() + 30].replace("\n", " ")
            hits.append(f"{path.stem} cell {i}: {token!r} in ...{context}...")
    return hits


@pytest.mark.parametrize("path", [
    pytest.param(p, id=p.stem[:2], marks=[pytest.mark.xfail(strict=False, reason=PENDING[p.stem])]
                 if p.stem in PENDING else []) for p in NOTEBOOKS])
def test_no_typed_numbers_in_markdown(path):
    hits = markdown_number_hits(path)
    assert not hits, (f"{len(hits)} typed numbers in {path.name}'s markdown: print them from a code cell, or "
                      "rephrase (the allow-list is explained in tests/test_markdown_numbers.py):\n  "
                      + "\n  ".join(hits))


def test_the_scan_catches_typed_numbers(tmp_path):
    """A run time, an accuracy and a count are caught; section numbers, code, quotes and dataset sizes are not."""
    cells = ["# 05 · Title\n\nA full run takes about 30 s; `QUICK = True` uses `limit=5000`.",
             "## 3 · Section\n\n1. one\n2. two\n\nThe model reaches 99.6% after 64 steps.",
             "All 60,000 training images of 28 x 28 pixels in [0, 1] (`003_93ba5a5184406ca4.txt`: 97.25%)."]
    nb = {"cells": [{"cell_type": "markdown", "source": c} for c in cells], "metadata": {}, "nbformat": 4,
          "nbformat_minor": 5}
    path = tmp_path / "99_demo.ipynb"
    path.write_text(json.dumps(nb))
    found = [h.split(": ", 1)[1].split(" in ")[0] for h in markdown_number_hits(path)]
    assert found == ["'30'", "'99.6%'", "'64'"]
