"""The README's recipes run as written.

Every ```python block under the README's "## Recipes" heading is executed as it stands, in a fresh
temporary folder as the working directory (with a picture of a 7, ``seven.png``, written there
first, for the recipe that reads one). Each file name a recipe writes (a quoted ``*.gif``,
``*.png``, ``*.pt`` ... that was not there before) must then exist and be a valid file of its kind:
a GIF of more than one frame, a PNG figure, a loadable checkpoint. A recipe that breaks, a file
it stops writing, or a README that loses its recipes fails here.
"""
from __future__ import annotations

import io
import re
from contextlib import redirect_stdout
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pytest

import mnistlab as ml
from conftest import have_real_data

README = Path(__file__).resolve().parent.parent / "README.md"
OUTPUT = re.compile(r"""["']([\w./-]+\.(?:gif|png|jpg|pt|csv|json|npz))["']""")
# what the recipes are for (issue: "what users come to do"): each must have a recipe whose title names it
NEEDED = {"GIF": "weight histograms as a GIF", "confus": "confusion matrix and most confused pairs",
          "aliency": "saliency for the worst errors", "picture": "reading a digit from a picture",
          "save": "saving and loading a model"}


def recipes(text: str | None = None) -> list[tuple[str, str]]:
    """(title, code) of every ```python block in the README's "## Recipes" section, in order."""
    text = README.read_text(encoding="utf-8") if text is None else text
    section = re.search(r"^## Recipes[ \t]*\n(.*?)(?=^## |\Z)", text, re.M | re.S)
    if section is None:
        return []
    out, title = [], "(untitled)"
    for m in re.finditer(r"^### (?P<title>.+?)[ \t]*$|^```python[ \t]*\n(?P<code>.*?)^```", section.group(1), re.M | re.S):
        if m.group("title") is not None:
            title = m.group("title")
        else:
            out.append((title, m.group("code")))
    return out


RECIPES = recipes()


def test_recipes_parser_finds_blocks_under_the_heading_only():
    text = ("# t\n```python\nnot_a_recipe()\n```\n## Recipes\nintro\n### One\n```python\na = 1\n```\n"
            "```bash\nls\n```\n### Two\n```python\nb = 2\n```\n## Next\n```python\nc = 3\n```\n")
    assert recipes(text) == [("One", "a = 1\n"), ("Two", "b = 2\n")]
    assert recipes("# no recipes here\n") == []


def test_readme_has_a_short_recipe_for_each_task():
    assert len(RECIPES) >= len(NEEDED), "the README lost its recipes"
    titles = " | ".join(t for t, _ in RECIPES)
    for key, what in NEEDED.items():
        assert key.lower() in titles.lower(), f"no recipe for {what} among: {titles}"
    for title, code in RECIPES:
        lines = [l for l in code.splitlines() if l.strip()]
        assert lines[0] == "import mnistlab as ml", title
        assert len(lines) <= 8, f"recipe {title!r} has {len(lines)} lines; keep it short"


def _write_seven(path: Path) -> None:
    """A 7 drawn in black on white paper, larger than MNIST, like a scan of a drawing."""
    from PIL import Image, ImageDraw

    im = Image.new("L", (200, 260), 255)
    draw = ImageDraw.Draw(im)
    draw.line([(40, 40), (160, 40)], fill=0, width=18)
    draw.line([(160, 40), (80, 230)], fill=0, width=18)
    im.save(path)


def _check_file(path: Path) -> None:
    from PIL import Image

    assert path.is_file() and path.stat().st_size > 0, f"{path.name} was not written"
    suffix = path.suffix.lower()
    if suffix == ".gif":
        with Image.open(path) as im:
            assert im.format == "GIF" and im.n_frames > 1, f"{path.name}: {im.n_frames} frame(s)"
            assert im.size[0] > 200 and im.size[1] > 100
    elif suffix in (".png", ".jpg"):
        with Image.open(path) as im:
            im.verify()
            assert im.size[0] > 200 and im.size[1] > 150, f"{path.name} is {im.size}"
    elif suffix == ".pt":
        ck = ml.load_checkpoint(path)
        assert ck.model is not None and ck.preprocessing is not None
    assert not list(path.parent.glob(f".{path.name}.*.tmp")), "a temporary file was left behind"


@pytest.mark.parametrize("title, code", RECIPES, ids=[t for t, _ in RECIPES])
def test_recipe_runs_and_writes_what_it_says(title, code, tmp_path, monkeypatch):
    if "load_dataset" in code and not have_real_data():
        pytest.skip("real MNIST not found at $MNISTLAB_DATA")
    monkeypatch.chdir(tmp_path)
    _write_seven(tmp_path / "seven.png")
    before = {p.name for p in tmp_path.iterdir()}
    printed = io.StringIO()
    try:
        with redirect_stdout(printed):
            exec(compile(code, f"README.md recipe {title!r}", "exec"), {"__name__": "__readme__"})
    finally:
        plt.close("all")
    written = [name for name in dict.fromkeys(OUTPUT.findall(code)) if name not in before]
    for name in written:
        _check_file(tmp_path / name)
    if not written:          # a recipe that writes nothing must at least print its answer
        assert printed.getvalue().strip(), f"recipe {title!r} writes no file and prints nothing"
    if "seven.png" in code:
        assert printed.getvalue().split()[0] == "7", printed.getvalue()
