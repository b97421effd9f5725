"""Tests that drive a real browser: Debian's ``chromium`` with ``chromium-driver``, through Selenium.

They are marked ``browser`` and left out of a plain ``pytest`` run (they need the browser,
which the README's install does not bring); ``pytest -m browser`` runs them, as CI does after
installing it (.ci/run, .github/workflows/tests.yml). There a missing browser fails them, with
how to install it: they are never skipped.
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import tempfile
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

# Debian's chromium and chromium-driver; a CI runner that ships another build of Chromium (GitHub's
# ubuntu images carry Google Chrome and its driver) names its own in these two variables.
CHROMIUM = os.environ.get("NNCOMPARE_TEST_CHROMIUM", "/usr/bin/chromium")
DRIVER = os.environ.get("NNCOMPARE_TEST_CHROMEDRIVER", "/usr/bin/chromedriver")
INSTALL = "apt-get install -y chromium chromium-driver, and pip install selenium"


def pytest_collection_modifyitems(config, items):
    """Leave the browser tests out unless the run asked for them by marker (``-m browser``)."""
    if "browser" in (config.option.markexpr or ""):
        return
    kept = [item for item in items if item.get_closest_marker("browser") is None]
    if len(kept) < len(items):
        config.hook.pytest_deselected(items=[item for item in items if item not in kept])
        items[:] = kept


@pytest.fixture
def browser(tmp_path):
    """Headless Chromium with no network but this machine: any other host fails to resolve, as offline."""
    webdriver = _selenium()
    for path in (CHROMIUM, DRIVER):
        if not Path(path).exists():
            pytest.fail(f"{path} is missing: {INSTALL}", pytrace=False)
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    profile = tempfile.mkdtemp(dir=tmp_path, prefix="chromium-")
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--no-first-run",
        f"--user-data-dir={profile}",
        "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
        "--window-size=1300,900",
    ):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=webdriver.ChromeService(DRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def _selenium():
    try:
        from selenium import webdriver
    except ModuleNotFoundError:
        pytest.fail(f"selenium is not installed: {INSTALL}", pytrace=False)
    return webdriver


@pytest.fixture
def serve():
    """``serve(folder)``: a context that serves ``folder`` on 127.0.0.1 and yields its address."""
    return served


@pytest.fixture
def console_errors():
    """``console_errors(driver)``: the browser console's errors since the last call."""
    return errors_in_console


@contextlib.contextmanager
def served(folder: Path):
    """``folder`` over HTTP on 127.0.0.1 (a free port), as a local web server would; yields its address."""
    handler = functools.partial(_Quiet, directory=str(folder))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def errors_in_console(driver) -> list[str]:
    """The browser console's errors since the last call (failed loads, script errors)."""
    return [entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
