"""The DigitPad in a real browser: JupyterLab + headless Chromium (Selenium driving Debian's chromium).

Starts JupyterLab on 127.0.0.1 with a token, opens a one-cell notebook that shows a
:class:`mnistlab.viz.draw.DigitPad`, runs it from JupyterLab's command palette (Run All Cells),
draws a 1 with the mouse and checks the prediction, clicks Clear, draws a 7 and checks again; saves a
screenshot under ``build/``. The server is stopped at the end, also on failure. Skipped, with the
reason, where Chromium, chromedriver or Selenium is missing; nothing is downloaded at run time. No
MNIST data is needed (the shipped pretrained model reads the drawing).
"""
from __future__ import annotations

from pathlib import Path
import time

import pytest

from browser_lab import lab_session, wait_for_output

ROOT = Path(__file__).resolve().parent.parent
SCREENSHOT = ROOT / "build" / "test_browser_09.png"
CODE = "from mnistlab.viz.draw import DigitPad\npad = DigitPad()\npad"
RUN_TIMEOUT = 300  # seconds for the cell (importing torch and captum on a busy 2-core machine)

pytestmark = [pytest.mark.notebook]


def _notebook(folder: Path) -> Path:
    import nbformat

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(CODE)])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path = folder / "09_draw.ipynb"
    nbformat.write(nb, path)
    return path


def test_drawing_a_digit_in_jupyterlab_predicts_it(tmp_path):
    with lab_session(tmp_path, _notebook(tmp_path), SCREENSHOT) as lab:
        from selenium.common.exceptions import StaleElementReferenceException
        from selenium.webdriver.common.action_chains import ActionChains
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support.ui import WebDriverWait

        driver, retry = lab.driver, lab.retry
        wait_for_output(driver, ".mnistlab-pad canvas.mnistlab-pad-canvas", RUN_TIMEOUT)

        def canvas(d):
            c = d.find_element(By.CSS_SELECTOR, ".mnistlab-pad-canvas")
            d.execute_script("arguments[0].closest('.mnistlab-pad').scrollIntoView({block: 'center'});", c)
            return c

        c = retry.until(canvas)
        assert (c.size["width"], c.size["height"]) == (280, 280), f"canvas shown at {c.size}, not its natural 280x280"

        def label(d):
            el = d.find_element(By.CSS_SELECTOR, ".mnistlab-pad-prediction")
            return el.text, el.get_attribute("data-prediction")

        assert retry.until(label)[0] == "draw a digit"

        def stroke(start, end, steps=12):
            """Press at ``start``, move to ``end`` in ``steps`` small moves, release (offsets from the centre)."""
            el = retry.until(canvas)
            chain = ActionChains(driver, duration=40).move_to_element_with_offset(el, *start).click_and_hold()
            dx, dy = (end[0] - start[0]) / steps, (end[1] - start[1]) / steps
            for i in range(1, steps + 1):   # integer moves that land exactly on ``end``
                chain.move_by_offset(round(i * dx) - round((i - 1) * dx), round(i * dy) - round((i - 1) * dy))
            chain.release().perform()

        def shows(digit: str):
            def check(d):
                text, pred = label(d)
                return text if pred == digit and text.startswith(f"{digit} (") else False
            text = WebDriverWait(driver, 60, poll_frequency=0.3,
                                 ignored_exceptions=(StaleElementReferenceException,)).until(check)
            time.sleep(1.5)                  # let the last (throttled) update land, then check it still holds
            assert label(driver)[1] == digit, f"the pad settled on {label(driver)}, not {digit}"
            return text

        stroke((0, -100), (0, 100))
        assert shows("1")

        retry.until(lambda d: d.find_element(By.CSS_SELECTOR, ".mnistlab-pad-clear").click() or True)
        retry.until(lambda d: label(d) == ("draw a digit", ""))

        stroke((-70, -90), (70, -90), steps=10)
        stroke((70, -90), (-30, 100), steps=14)
        text = shows("7")
        assert text.endswith("%)")
        # the outputs are drawn: bars of the probabilities, the 28x28 input and its saliency map
        filled = driver.execute_script(
            "const el = document.querySelector('.mnistlab-pad');"
            "const img = (s) => { const c = el.querySelector(s);"
            "  return Array.from(c.getContext('2d').getImageData(0, 0, 28, 28).data).some((v, i) => i % 4 == 3 && v); };"
            "return [el.querySelectorAll('.mnistlab-pad-fill').length, img('.mnistlab-pad-seen'),"
            "        img('.mnistlab-pad-saliency'), el.querySelectorAll('.mnistlab-pad-fill')[7].style.height];")
        assert filled[:3] == [10, True, True] and float(filled[3].rstrip("%")) > 50, filled
        driver.save_screenshot(str(SCREENSHOT))
        assert SCREENSHOT.stat().st_size > 20_000
