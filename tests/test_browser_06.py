"""Notebook 06 in a real browser: JupyterLab + headless Chromium (Selenium driving Debian's chromium).

Starts JupyterLab on 127.0.0.1 with a token, opens a QUICK copy of notebook 06, runs all cells
from JupyterLab's command palette (Run All Cells), clicks a cell of the confusion-matrix explorer and checks that the digit
panel changes; saves a screenshot under ``build/``. The server is stopped at the end, also on
failure. Skipped, with the reason, where Chromium, chromedriver or Selenium is missing; nothing is
downloaded at run time (the driver path is given, so Selenium Manager is not used).
"""
from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import requires_data

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
SCREENSHOT = ROOT / "build" / "test_browser_06.png"
RUN_TIMEOUT = 900  # seconds for "Run All Cells" in QUICK mode (slow on a busy 2-core machine)

pytestmark = [pytest.mark.notebook, requires_data]


def _missing() -> str | None:
    if not (CHROMIUM.is_file() and CHROMEDRIVER.is_file()):
        return (f"no browser: {CHROMIUM} and {CHROMEDRIVER} are needed (Debian packages chromium and "
                "chromium-driver; .ci/run installs them)")
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install selenium)"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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


def _wait_for_server(url: str, proc: subprocess.Popen, log: Path, timeout: float = 120) -> None:
    t0 = time.time()
    while time.time() - t0 < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"JupyterLab exited with code {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(1)
    raise TimeoutError(f"JupyterLab did not answer {url} within {timeout} s:\n{log.read_text()[-3000:]}")


def _stop(proc: subprocess.Popen) -> None:
    """Stop the server we started (SIGTERM to its process group: it shuts its kernels down), then SIGKILL."""
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


def test_confusion_explorer_click_changes_the_digits_in_jupyterlab(tmp_path):
    reason = _missing()
    if reason:
        pytest.skip(reason)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import WebDriverWait

    nb_path = _quick_copy(tmp_path)
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
                    "--window-size=1500,1100", "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync"):
            opts.add_argument(arg)
        driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=opts)
        driver.get(f"{base}/lab/tree/{nb_path.name}?token={token}")
        wait = WebDriverWait(driver, 120)
        wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, ".jp-NotebookPanel .jp-Cell")))
        wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, ".jp-Notebook-ExecutionIndicator[data-status='idle']")))
        # JupyterLab re-renders cells while it settles, so an element found a moment ago can go stale:
        # every lookup-and-act below is retried until it lands
        retry = WebDriverWait(driver, 120, ignored_exceptions=(StaleElementReferenceException,))
        # "Run All Cells", JupyterLab's own command, from its command palette (Ctrl+Shift+C), as a user would
        retry.until(lambda d: d.find_element(By.CSS_SELECTOR, ".jp-NotebookPanel .jp-Cell").click() or True)
        ActionChains(driver).send_keys(Keys.ESCAPE).key_down(Keys.CONTROL).key_down(Keys.SHIFT).send_keys("c") \
            .key_up(Keys.SHIFT).key_up(Keys.CONTROL).perform()
        palette = wait.until(EC.visibility_of_element_located((By.CSS_SELECTOR, ".lm-CommandPalette-input")))
        palette.send_keys("Run All Cells")
        wait.until(EC.text_to_be_present_in_element((By.CSS_SELECTOR, ".lm-CommandPalette-item.lm-mod-active"),
                                                    "Run All Cells"))
        palette.send_keys(Keys.ENTER)

        def finished(d):
            errors = d.find_elements(By.CSS_SELECTOR, "[data-mime-type='application/vnd.jupyter.error']")
            if errors:
                raise AssertionError("a cell failed:\n" + errors[0].text[-2000:])
            return d.find_elements(By.CSS_SELECTOR, ".mnistlab-predictions-browser")

        WebDriverWait(driver, RUN_TIMEOUT, poll_frequency=2, ignored_exceptions=(StaleElementReferenceException,)) \
            .until(finished)

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
    except Exception:
        if driver is not None:
            driver.save_screenshot(str(SCREENSHOT.with_name("test_browser_06_failure.png")))
        raise
    finally:
        if driver is not None:
            driver.quit()
        _stop(proc)
    assert proc.poll() is not None
