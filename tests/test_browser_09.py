"""The DigitPad in a real browser: JupyterLab + headless Chromium (Selenium driving Debian's chromium).

Starts JupyterLab on 127.0.0.1 with a token, opens a one-cell notebook that shows a
:class:`mnistlab.viz.draw.DigitPad`, runs it from JupyterLab's command palette (Run All Cells),
draws a 1 with the mouse and checks the prediction, clicks Clear, draws a 7 and checks again; saves a
screenshot under ``build/``. The server is stopped at the end, also on failure. Skipped, with the
reason, where Chromium, chromedriver or Selenium is missing; nothing is downloaded at run time. No
MNIST data is needed (the shipped pretrained model reads the drawing).
"""
from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
from pathlib import Path

import pytest

from test_browser_06 import CHROMEDRIVER, CHROMIUM, _free_port, _missing, _stop, _wait_for_server

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
    reason = _missing()
    if reason:
        pytest.skip(reason)
    from selenium import webdriver
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import WebDriverWait

    nb_path = _notebook(tmp_path)
    port, token = _free_port(), secrets.token_hex(16)
    env = dict(os.environ, MNISTLAB_FIGURES=str(tmp_path / "figures"), MNISTLAB_CACHE=str(tmp_path / "cache"),
               JUPYTER_CONFIG_DIR=str(tmp_path / "jupyter-config"),
               JUPYTERLAB_SETTINGS_DIR=str(tmp_path / "lab-settings"),
               JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"), MPLBACKEND="module://matplotlib_inline.backend_inline")
    log = tmp_path / "jupyterlab.log"
    cmd = [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
           f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={tmp_path}",
           f"--LabApp.workspaces_dir={tmp_path / 'workspaces'}", "--LabApp.news_url=None",
           "--ServerApp.terminals_enabled=False"] + (["--allow-root"] if os.geteuid() == 0 else [])
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    driver = None
    with open(log, "w") as fh:
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_for_server(f"{base}/api/status?token={token}", proc, log)
        opts = webdriver.ChromeOptions()
        opts.binary_location = str(CHROMIUM)
        for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                    "--window-size=1300,900", "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync"):
            opts.add_argument(arg)
        driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=opts)
        driver.get(f"{base}/lab/tree/{nb_path.name}?token={token}")
        wait = WebDriverWait(driver, 120)
        wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, ".jp-NotebookPanel .jp-Cell")))
        wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, ".jp-Notebook-ExecutionIndicator[data-status='idle']")))
        # JupyterLab re-renders cells while it settles: every lookup-and-act below is retried until it lands
        retry = WebDriverWait(driver, 120, ignored_exceptions=(StaleElementReferenceException,))
        retry.until(lambda d: d.find_element(By.CSS_SELECTOR, ".jp-NotebookPanel .jp-Cell").click() or True)
        ActionChains(driver).send_keys(Keys.ESCAPE).key_down(Keys.CONTROL).key_down(Keys.SHIFT).send_keys("c") \
            .key_up(Keys.SHIFT).key_up(Keys.CONTROL).perform()
        palette = wait.until(EC.visibility_of_element_located((By.CSS_SELECTOR, ".lm-CommandPalette-input")))
        palette.send_keys("Run All Cells")
        wait.until(EC.text_to_be_present_in_element((By.CSS_SELECTOR, ".lm-CommandPalette-item.lm-mod-active"),
                                                    "Run All Cells"))
        palette.send_keys(Keys.ENTER)

        def rendered(d):
            errors = d.find_elements(By.CSS_SELECTOR, "[data-mime-type='application/vnd.jupyter.error']")
            if errors:
                raise AssertionError("the cell failed:\n" + errors[0].text[-2000:])
            return d.find_elements(By.CSS_SELECTOR, ".mnistlab-pad canvas.mnistlab-pad-canvas")

        WebDriverWait(driver, RUN_TIMEOUT, poll_frequency=1, ignored_exceptions=(StaleElementReferenceException,)) \
            .until(rendered)

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
    except Exception:
        if driver is not None:
            driver.save_screenshot(str(SCREENSHOT.with_name("test_browser_09_failure.png")))
        raise
    finally:
        if driver is not None:
            driver.quit()
        _stop(proc)
    assert proc.poll() is not None
