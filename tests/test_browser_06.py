"""Notebook 06 in a real browser: JupyterLab + headless Chromium (Selenium driving Debian's chromium).

Starts JupyterLab on 127.0.0.1 with a token, opens a QUICK copy of notebook 06, runs all cells
from JupyterLab's command palette (Run All Cells), clicks a cell of the confusion-matrix explorer and checks that the digit
panel changes, is shown at the PNG's natural size (not stretched to the output's width) and that the
clicked cell, and only it, is outlined; then, in the predictions browser, chooses a class and "all"
again in the *true* dropdown (which must show "all" and every row again) and types a page number (the
page box and the status count pages the same way, from 1). Saves screenshots under ``build/``. The
server is stopped at the end, also on failure. Skipped, with the reason, where Chromium, chromedriver or Selenium is missing; nothing is
downloaded at run time (the driver path is given, so Selenium Manager is not used).
"""
from __future__ import annotations

from pathlib import Path
import re
import time

import pytest

from browser_lab import lab_session, wait_for_output
from conftest import requires_data

ROOT = Path(__file__).resolve().parent.parent
SCREENSHOT = ROOT / "build" / "test_browser_06.png"
SCREENSHOT_BROWSER = ROOT / "build" / "test_browser_06_predictions.png"
RUN_TIMEOUT = 900  # seconds for "Run All Cells" in QUICK mode (slow on a busy 2-core machine)

pytestmark = [pytest.mark.notebook, requires_data]


def _quick_copy(folder: Path) -> Path:
    """Notebook 06 with QUICK parameters injected (papermill's own parameterisation)."""
    import nbformat
    from papermill.iorw import load_notebook_node
    from papermill.parameterize import parameterize_notebook

    nb = load_notebook_node(str(ROOT / "notebooks" / "06_inside_the_model.ipynb"))
    nb = parameterize_notebook(nb, {"QUICK": True, "WORKERS": 1, "DEVICE": "cpu"})
    path = folder / "06_quick.ipynb"
    nbformat.write(nb, path)
    return path


IMAGE_SIZE_JS = """
const img = arguments[0], r = img.getBoundingClientRect();
return img.complete && img.naturalWidth ? [img.naturalWidth, img.naturalHeight, r.width, r.height,
                                           img.parentElement.getBoundingClientRect().width] : null;"""
EXPLORER_IMG = ".mnistlab-confusion-explorer img.mnistlab-digits"
STATUS_RE = re.compile(r"([\d,]+) of ([\d,]+) predictions; page (\d+) of (\d+)")


def _image_size(driver, css: str):
    """(natural width, natural height, rendered width, rendered height, parent width) of the image, or
    False while it is not loaded."""
    from selenium.webdriver.common.by import By

    return driver.execute_script(IMAGE_SIZE_JS, driver.find_element(By.CSS_SELECTOR, css)) or False


def _assert_natural_or_fitted(nat_w, nat_h, w, h, parent_w, what: str) -> None:
    """Shown at its natural size where it fits its box, else scaled down to the box, aspect ratio kept."""
    where = f"{what} {nat_w}x{nat_h} px shown at {w:.1f}x{h:.1f} (output {parent_w:.0f} px wide)"
    if nat_w + 8 < parent_w:                        # fits with room to spare (the box has some padding)
        assert (round(w), round(h)) == (nat_w, nat_h), where
    else:
        assert round(w) <= nat_w and abs(w / h - nat_w / nat_h) < 0.02 and parent_w - 8 <= w <= parent_w, where


def _status(text: str) -> tuple[int, int, int, int]:
    """(rows, predictions, page, pages) from the predictions browser's status line."""
    m = STATUS_RE.search(text)
    assert m, f"unexpected status {text!r}"
    return tuple(int(g.replace(",", "")) for g in m.groups())


def test_notebook_06_explorers_in_jupyterlab(tmp_path):
    with lab_session(tmp_path, _quick_copy(tmp_path), SCREENSHOT, window="1500,1100") as lab:
        from selenium.webdriver.common.by import By
        from selenium.webdriver.common.keys import Keys
        from selenium.webdriver.support.ui import Select

        driver, retry = lab.driver, lab.retry
        wait_for_output(driver, ".mnistlab-predictions-browser", RUN_TIMEOUT)

        def explorer_state(d):
            """(status text, digit image src, explorer) read afresh, so re-rendered outputs never go stale."""
            explorer = d.find_element(By.CSS_SELECTOR, ".mnistlab-confusion-explorer")
            return (explorer.find_element(By.CSS_SELECTOR, ".mnistlab-status").text,
                    explorer.find_element(By.CSS_SELECTOR, "img.mnistlab-digits").get_attribute("src"), explorer)

        def selected_cells(d):
            """[(CSS classes, computed border-top width)] of the outlined cells, and the border of an unselected one."""
            cells = d.find_elements(By.CSS_SELECTOR, ".mnistlab-confusion-explorer button.mnistlab-cell-selected")
            other = d.find_element(By.CSS_SELECTOR, ".mnistlab-confusion-explorer "
                                                    "button[class*='mnistlab-cell-']:not(.mnistlab-cell-selected)")
            width = "return getComputedStyle(arguments[0]).borderTopWidth;"
            return ([(c.get_attribute("class"), d.execute_script(width, c)) for c in cells],
                    d.execute_script(width, other))

        before_text, before_src, explorer = retry.until(explorer_state)
        assert "predicted" in before_text and before_src
        # the digit panel at its natural size: one CSS pixel per PNG pixel, not stretched to the output's width
        nat_w, nat_h, w, h, parent_w = retry.until(lambda d: _image_size(d, EXPLORER_IMG))
        assert (round(w), round(h)) == (nat_w, nat_h) and nat_w < parent_w, \
            f"digit panel {nat_w}x{nat_h} px shown at {w:.0f}x{h:.0f} (output {parent_w:.0f} px wide)"
        first = tuple(int(explorer.find_element(By.CSS_SELECTOR, ".mnistlab-selected").get_attribute(a))
                      for a in ("data-true", "data-predicted"))
        cells, other_border = retry.until(selected_cells)
        assert len(cells) == 1 and f"mnistlab-cell-{first[0]}-{first[1]}" in cells[0][0].split(), cells
        assert cells[0][1] == "3px" and other_border == "0px", (cells, other_border)
        target = (3, 3) if first != (3, 3) else (1, 1)
        cell_css = f".mnistlab-confusion-explorer button.mnistlab-cell-{target[0]}-{target[1]}"

        def click_cell(d):
            button = d.find_element(By.CSS_SELECTOR, cell_css)
            d.execute_script("arguments[0].scrollIntoView({block: 'center'});", button)
            count = button.text
            button.click()
            return count

        count = retry.until(click_cell)
        want = f"true {target[0]} → predicted {target[1]}"

        def changed(d):
            text, src, explorer = explorer_state(d)
            if want in text and src != before_src:
                d.execute_script("arguments[0].scrollIntoView({block: 'start'});", explorer)
                return text
            return False

        after_text = retry.until(changed)
        assert f"{count} digit" in after_text        # the button's count is the number of digits shown

        # the clicked cell, and only it, is outlined
        def moved(d):
            cells, other = selected_cells(d)
            mine = len(cells) == 1 and f"mnistlab-cell-{target[0]}-{target[1]}" in cells[0][0].split()
            return (cells, other) if mine else False

        cells, other_border = retry.until(moved)
        assert cells[0][1] == "3px" and other_border == "0px", (cells, other_border)

        # the new panel too: natural size where it fits, else scaled down keeping its aspect ratio (never up)
        nat_w, nat_h, w, h, parent_w = retry.until(lambda d: _image_size(d, EXPLORER_IMG))
        _assert_natural_or_fitted(nat_w, nat_h, w, h, parent_w, "digit panel")
        driver.save_screenshot(str(SCREENSHOT))
        assert SCREENSHOT.stat().st_size > 20_000

        # -- predictions browser -----------------------------------------------------------------
        browser_css = ".mnistlab-predictions-browser"

        def status(d):
            el = d.find_element(By.CSS_SELECTOR, f"{browser_css} .mnistlab-browser-status")
            return _status(el.text) if STATUS_RE.search(el.text) else False

        def true_select(d):
            el = d.find_element(By.CSS_SELECTOR, f"{browser_css} .mnistlab-true select")
            d.execute_script("arguments[0].scrollIntoView({block: 'center'});", el)
            return Select(el)

        rows, total, page, pages = retry.until(status)
        assert rows == total and page == 1 and pages > 1
        assert retry.until(true_select).first_selected_option.text == "all"
        nat_w, nat_h, w, h, parent_w = retry.until(lambda d: _image_size(d, f"{browser_css} img.mnistlab-page-digits"))
        _assert_natural_or_fitted(nat_w, nat_h, w, h, parent_w, "page of digits")

        # a class, then "all" again, in the true dropdown
        retry.until(true_select).select_by_visible_text("3")
        threes = retry.until(lambda d: (s := status(d)) and s[0] < total and s)
        assert threes[2] == 1
        retry.until(true_select).select_by_visible_text("all")
        assert retry.until(lambda d: (s := status(d)) and s[0] == total and s)[:2] == (total, total)
        time.sleep(2)                                   # let any echo from the kernel reach the dropdown
        assert retry.until(lambda d: d.execute_script(
            "const s = arguments[0]; return [s.selectedIndex, s.selectedIndex < 0 ? '' : s.options[s.selectedIndex].text];",
            d.find_element(By.CSS_SELECTOR, f"{browser_css} .mnistlab-true select"))) == [0, "all"], \
            "the true dropdown went blank"
        assert len(driver.find_elements(By.CSS_SELECTOR, f"{browser_css} .mnistlab-table tbody tr")) == 20

        # the page box and the status count pages the same way (from 1)
        def page_input(d):
            el = d.find_element(By.CSS_SELECTOR, f"{browser_css} .mnistlab-page input")
            d.execute_script("arguments[0].scrollIntoView({block: 'center'});", el)
            return el

        assert retry.until(page_input).get_attribute("value") == "1"
        box = retry.until(page_input)
        box.click()
        box.send_keys(Keys.CONTROL, "a")
        box.send_keys("4", Keys.ENTER)
        assert retry.until(lambda d: (s := status(d)) and s[2] != 1 and s)[2:] == (4, pages)
        assert retry.until(page_input).get_attribute("value") == "4"
        driver.execute_script("arguments[0].scrollIntoView({block: 'start'});",
                              driver.find_element(By.CSS_SELECTOR, browser_css))
        driver.save_screenshot(str(SCREENSHOT_BROWSER))
