"""Notebook 06 in a real browser: JupyterLab + headless Chromium (Selenium driving Debian's chromium).

Starts JupyterLab on 127.0.0.1 with a token, opens a QUICK copy of notebook 06, runs all cells
from JupyterLab's command palette (Run All Cells), clicks a cell of the confusion-matrix explorer and checks that the digit
panel changes; saves a screenshot under ``build/``. The server is stopped at the end, also on
failure. Skipped, with the reason, where Chromium, chromedriver or Selenium is missing; nothing is
downloaded at run time (the driver path is given, so Selenium Manager is not used).
"""
from __future__ import annotations

from pathlib import Path

import pytest

from browser_lab import lab_session, wait_for_output
from conftest import requires_data

ROOT = Path(__file__).resolve().parent.parent
SCREENSHOT = ROOT / "build" / "test_browser_06.png"
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


def test_confusion_explorer_click_changes_the_digits_in_jupyterlab(tmp_path):
    with lab_session(tmp_path, _quick_copy(tmp_path), SCREENSHOT, window="1500,1100") as lab:
        from selenium.webdriver.common.by import By

        driver, retry = lab.driver, lab.retry
        wait_for_output(driver, ".mnistlab-predictions-browser", RUN_TIMEOUT)

        def explorer_state(d):
            """(status text, digit image src, explorer) read afresh, so re-rendered outputs never go stale."""
            explorer = d.find_element(By.CSS_SELECTOR, ".mnistlab-confusion-explorer")
            return (explorer.find_element(By.CSS_SELECTOR, ".mnistlab-status").text,
                    explorer.find_element(By.CSS_SELECTOR, "img.mnistlab-digits").get_attribute("src"), explorer)

        before_text, before_src, explorer = retry.until(explorer_state)
        assert "predicted" in before_text and before_src
        target = (3, 3) if "true 3 → predicted 3" not in before_text else (1, 1)
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
        driver.save_screenshot(str(SCREENSHOT))
        assert SCREENSHOT.stat().st_size > 20_000
