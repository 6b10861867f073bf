"""mnistlab.viz.widgets driven from Python, no browser, no data: what a click, a dropdown choice or a
page number typed in JupyterLab does to the widgets' state (issue 21; the same checks run in a real
browser in tests/test_browser_06.py).

The frontend of an ``ipywidgets.Dropdown`` sends the chosen *index*, so the dropdowns are driven
through ``index`` here, as the browser drives them.
"""
from __future__ import annotations

import io

import matplotlib
import numpy as np
import pytest
import torch

from mnistlab.studies.interpret import Interpretation
from mnistlab.viz.widgets import SELECTED_BORDER, ConfusionExplorer, PredictionsBrowser, png_size

matplotlib.use("Agg")

N_PER_CLASS = 12
CONFUSIONS = {(4, 9): 3, (3, 5): 2, (7, 1): 1}   # (true, predicted): how many of that class are mistaken


@pytest.fixture(scope="module")
def interp():
    """120 random 28x28 'digits', 12 per class, all right but for the CONFUSIONS."""
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(10), N_PER_CLASS)
    predicted = labels.copy()
    for (t, p), k in CONFUSIONS.items():
        predicted[np.flatnonzero(labels == t)[:k]] = p
    logits = rng.normal(0, 0.3, (len(labels), 10))
    logits[np.arange(len(labels)), predicted] += 4 + rng.random(len(labels))
    images = torch.as_tensor(rng.integers(0, 256, (len(labels), 28, 28), dtype=np.uint8))
    return Interpretation.from_logits(logits, labels, images=images)


def _rendered_width(image) -> int:
    assert image.layout.width and image.layout.width.endswith("px"), image.layout.width
    return int(image.layout.width[:-2])


# --------------------------------------------------------------------------------------------
# PNG size
# --------------------------------------------------------------------------------------------

def test_png_size_reads_the_header():
    buf = io.BytesIO()
    matplotlib.image.imsave(buf, np.zeros((7, 13)), format="png")
    assert png_size(buf.getvalue()) == (13, 7)
    with pytest.raises(ValueError, match="not PNG"):
        png_size(b"GIF89a and more bytes than a header")


# --------------------------------------------------------------------------------------------
# Confusion explorer
# --------------------------------------------------------------------------------------------

def test_explorer_digit_panel_is_shown_at_the_pngs_natural_size(interp):
    ex = ConfusionExplorer(interp, max_digits=8)
    assert ex.selected == (4, 9)                                      # the most confused pair
    for cell in [(4, 9), (2, 2), (7, 1)]:                             # 3, 12 (8 drawn) and 1 digit(s): widths differ
        ex.buttons[cell].click()
        width, _ = png_size(ex.image.value)
        assert _rendered_width(ex.image) == width                     # not stretched to the output's width
        assert ex.image.layout.height == "auto"                       # scaled down proportionally if it must
        assert ex.image.layout.display != "none"
    widths = set()
    for cell in [(4, 9), (2, 2), (7, 1)]:
        ex.select(*cell)
        widths.add(_rendered_width(ex.image))
    assert len(widths) == 3


def test_explorer_highlights_exactly_the_selected_cell(interp):
    ex = ConfusionExplorer(interp)

    def highlighted():
        outlined = {cell for cell, b in ex.buttons.items() if b.layout.border}
        classed = {cell for cell, b in ex.buttons.items() if "mnistlab-cell-selected" in b._dom_classes}
        assert outlined == classed
        return outlined

    assert highlighted() == {ex.selected} == {(4, 9)}
    assert ex.buttons[(4, 9)].layout.border == SELECTED_BORDER
    ex.buttons[(3, 5)].click()                                        # a click moves the outline
    assert highlighted() == {(3, 5)}
    ex.true_box.index, ex.pred_box.index = 6, 6                       # so do the dropdowns
    assert ex.selected == (6, 6) and highlighted() == {(6, 6)}
    ex.select(6, 6)                                                   # selecting it again keeps it
    assert highlighted() == {(6, 6)}
    assert ex.buttons[(3, 5)].layout.border is None


# --------------------------------------------------------------------------------------------
# Predictions browser
# --------------------------------------------------------------------------------------------

def test_browser_true_dropdown_shows_all_again_after_a_class(interp):
    br = PredictionsBrowser(interp, page_size=10)
    n = len(interp)
    for box in (br.true_box, br.pred_box):
        assert (box.index, box.label) == (0, "all")
        box.index = 1 + 4                                             # class 4, as the browser sends it
        assert box.label == "4" and 0 < len(br.rows) < n
        box.index = 0                                                 # "all" again
        assert (box.index, box.label) == (0, "all"), "the dropdown went blank"
        assert len(br.rows) == n and br.status.value.startswith(f"{n:,} of {n:,} predictions")
    br.set_filter(true=4, predicted=9)
    assert (br.true_box.label, br.pred_box.label) == ("4", "9") and len(br.rows) == CONFUSIONS[(4, 9)]
    br.set_filter()                                                   # None: all, shown as "all"
    assert (br.true_box.label, br.pred_box.label) == ("all", "all") and len(br.rows) == n


def test_browser_page_box_counts_from_one_like_the_status(interp):
    br = PredictionsBrowser(interp, page_size=10)
    pages = len(interp) // 10
    assert (br.page_box.value, br.page_box.min, br.page_box.max) == (1, 1, pages)
    assert br.status.value.endswith(f"page 1 of {pages}") and br.page == 1
    br.page_box.value = 4                                             # typed in the page box
    assert br.status.value.endswith(f"page 4 of {pages}") and br.page == 4
    assert br.page_rows.index.tolist() == br.rows.index[30:40].tolist()
    br.page_box.value = pages
    assert br.page_rows.index.tolist() == br.rows.index[-10:].tolist()
    br.true_box.index = 1 + 3                                         # a new filter starts again at page 1
    assert br.page_box.value == 1 and br.page_box.max == 2 and br.status.value.endswith("page 1 of 2")
    br.page_box.value = 2
    assert br.page_rows.index.tolist() == br.rows.index[10:].tolist()


def test_browser_digits_at_natural_size_and_hidden_when_empty(interp):
    br = PredictionsBrowser(interp, page_size=20)
    assert _rendered_width(br.image) == png_size(br.image.value)[0]
    rows = br.set_filter(true=0, predicted=1)                         # an empty cell
    assert len(rows) == 0 and br.image.value == b"" and br.image.layout.display == "none"
    assert br.status.value.endswith("page 1 of 1") and br.page_box.value == 1
    br.set_filter(true=7, predicted=1)
    assert br.image.layout.display != "none" and _rendered_width(br.image) == png_size(br.image.value)[0]
