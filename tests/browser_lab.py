"""JupyterLab in headless Chromium for the real-browser tests (Selenium driving Debian's chromium).

:func:`lab_session` starts JupyterLab on 127.0.0.1 with a token in a temporary folder, opens a
notebook there, runs all its cells from JupyterLab's command palette (Run All Cells, as a user
would) and hands the driver to the test; a failure saves a screenshot beside the test's, and the
server is stopped at the end, also on failure. Skips, with the reason, where Chromium, chromedriver
or Selenium is missing; nothing is downloaded at run time (the driver path is given, so Selenium
Manager is not used).
"""
from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace

import pytest

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")


def missing() -> str | None:
    """Why a browser test cannot run here, or None."""
    if not (CHROMIUM.is_file() and CHROMEDRIVER.is_file()):
        return (f"no browser: {CHROMIUM} and {CHROMEDRIVER} are needed (Debian packages chromium and "
                "chromium-driver; .ci/run installs them)")
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install selenium)"
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_server(url: str, proc: subprocess.Popen, log: Path, timeout: float = 120) -> None:
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


def stop(proc: subprocess.Popen) -> None:
    """Stop the server we started (SIGTERM to its process group: it shuts its kernels down), then SIGKILL."""
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


@contextmanager
def lab_session(folder: Path, notebook: Path, screenshot: Path, window: str = "1300,900"):
    """JupyterLab serving ``folder`` with ``notebook`` (inside it) open and Run All Cells pressed.

    Yields a namespace with ``driver``, ``wait`` (120 s) and ``retry`` (120 s, ignoring stale
    elements: JupyterLab re-renders cells while it settles, so every lookup-and-act is retried until
    it lands). On an exception, ``<screenshot stem>_failure.png`` is saved; the browser and the
    server are stopped in every case.
    """
    reason = missing()
    if reason:
        pytest.skip(reason)
    from selenium import webdriver
    from selenium.common.exceptions import ElementNotInteractableException, StaleElementReferenceException
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import WebDriverWait

    port, token = free_port(), secrets.token_hex(16)
    env = dict(os.environ, MNISTLAB_FIGURES=str(folder / "figures"), MNISTLAB_CACHE=str(folder / "cache"),
               JUPYTER_CONFIG_DIR=str(folder / "jupyter-config"), JUPYTERLAB_SETTINGS_DIR=str(folder / "lab-settings"),
               JUPYTER_RUNTIME_DIR=str(folder / "runtime"), MPLBACKEND="module://matplotlib_inline.backend_inline")
    log = folder / "jupyterlab.log"
    cmd = [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
           f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={folder}",
           f"--LabApp.workspaces_dir={folder / 'workspaces'}", "--LabApp.news_url=None",
           "--ServerApp.terminals_enabled=False"] + (["--allow-root"] if os.geteuid() == 0 else [])
    screenshot.parent.mkdir(parents=True, exist_ok=True)
    driver = None
    with open(log, "w") as fh:
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_for_server(f"{base}/api/status?token={token}", proc, log)
        opts = webdriver.ChromeOptions()
        opts.binary_location = str(CHROMIUM)
        for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                    f"--window-size={window}", "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync"):
            opts.add_argument(arg)
        driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=opts)
        driver.get(f"{base}/lab/tree/{notebook.relative_to(folder)}?token={token}")
        wait = WebDriverWait(driver, 120)
        wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, ".jp-NotebookPanel .jp-Cell")))
        wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, ".jp-Notebook-ExecutionIndicator[data-status='idle']")))
        retry = WebDriverWait(driver, 120, ignored_exceptions=(StaleElementReferenceException,))
        # "Run All Cells", JupyterLab's own command, from its command palette (Ctrl+Shift+C)
        retry.until(lambda d: d.find_element(By.CSS_SELECTOR, ".jp-NotebookPanel .jp-Cell").click() or True)

        def type_command(d):
            """Open the palette if it is not open and type the command; retried while JupyterLab still
            re-renders it (a palette shown but not yet interactable)."""
            found = d.find_elements(By.CSS_SELECTOR, ".lm-CommandPalette-input")
            if not (found and found[0].is_displayed()):
                ActionChains(d).send_keys(Keys.ESCAPE).key_down(Keys.CONTROL).key_down(Keys.SHIFT).send_keys("c") \
                    .key_up(Keys.SHIFT).key_up(Keys.CONTROL).perform()
                return False
            found[0].clear()
            found[0].send_keys("Run All Cells")
            return found[0]

        palette = WebDriverWait(driver, 120, poll_frequency=1, ignored_exceptions=(
            StaleElementReferenceException, ElementNotInteractableException)).until(type_command)
        wait.until(EC.text_to_be_present_in_element((By.CSS_SELECTOR, ".lm-CommandPalette-item.lm-mod-active"),
                                                    "Run All Cells"))
        palette.send_keys(Keys.ENTER)
        yield SimpleNamespace(driver=driver, wait=wait, retry=retry)
    except Exception:
        if driver is not None:
            driver.save_screenshot(str(screenshot.with_name(f"{screenshot.stem}_failure.png")))
        raise
    finally:
        if driver is not None:
            driver.quit()
        stop(proc)
    assert proc.poll() is not None


def wait_for_output(driver, selector: str, timeout: float):
    """Wait until an element matching ``selector`` is in the page; a cell's error fails at once, with its text."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    def ready(d):
        errors = d.find_elements(By.CSS_SELECTOR, "[data-mime-type='application/vnd.jupyter.error']")
        if errors:
            raise AssertionError("a cell failed:\n" + errors[0].text[-2000:])
        return d.find_elements(By.CSS_SELECTOR, selector)

    return WebDriverWait(driver, timeout, poll_frequency=1,
                         ignored_exceptions=(StaleElementReferenceException,)).until(ready)
