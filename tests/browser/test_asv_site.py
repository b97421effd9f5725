"""The published asv history in a real browser, served from this machine with no internet: its graphs draw.

asv publish's pages load jQuery, flot and bootstrap from CDNs; offline, they send the reader to
asv's "external dependencies failed to load" page. tools/asv_offline.py gives the site its own
copies, from npm packages; this test publishes two commits' results of one of our benchmarks,
serves the site on 127.0.0.1 with every other host unreachable, and reads the graph's points.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
TOOL = ROOT / "tools" / "asv_offline.py"
BENCH = r"training\.EpochCPU\.time_epoch\('local', 1,"
GRAPH = "training.EpochCPU.time_epoch"
GIT_ID = ["-c", "user.name=nncompare test", "-c", "user.email=test@nncompare.invalid"]


def run(*args, cwd, env):
    done = subprocess.run(list(args), cwd=cwd, env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, f"{args}: {done.stdout[-2000:]}{done.stderr[-2000:]}"
    return done.stdout


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    """asv's site for two commits of a clone of this project, one point each, as ``asv publish`` wrote it."""
    pytest.importorskip("asv")
    base = tmp_path_factory.mktemp("asv")
    clone = base / "clone"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True)
    run("git", "checkout", "--quiet", "-B", "main", cwd=clone, env=None)
    env = dict(os.environ, HOME=str(base / "home"), NNCOMPARE_ASV_DATASET="digits")
    asv = [sys.executable, "-m", "asv"]
    run(*asv, "machine", "--yes", "--machine", "browser-test", cwd=clone, env=env)
    for n in range(2):
        if n:  # main moves on: a second commit, a second point
            (clone / "CHANGES").write_text("a second commit, for a second point\n")
            run("git", "add", "CHANGES", cwd=clone, env=env)
            run("git", *GIT_ID, "commit", "--quiet", "-m", "second point", cwd=clone, env=env)
        head = run("git", "rev-parse", "HEAD", cwd=clone, env=env).strip()
        run(*asv, "run", "--machine", "browser-test", "--python=same", "--set-commit-hash", head, "-b", BENCH,
            "-a", "rounds=1", "-a", "repeat=3", cwd=clone, env=env)  # fmt: skip
    run(*asv, "publish", cwd=clone, env=env)
    return clone / "html"


def graph_points(browser, address: str) -> list[int] | None:
    """Open the benchmark's graph page; per series drawn, how many points have a value (None: no graph)."""
    browser.get(f"{address}/index.html#{GRAPH}")
    deadline = time.monotonic() + 30
    script = "var p = window.$ && $('#main-graph').data('plot'); return p ? p.getData().map(s => s.data.filter(x => x[1] !== null).length) : null"  # noqa: E501
    while time.monotonic() < deadline:
        if browser.current_url.endswith("error.html"):
            return None
        points = browser.execute_script(script)
        if points and sum(points):
            return points
        time.sleep(0.2)
    return browser.execute_script(script)


def test_the_published_graphs_draw_offline_once_the_site_carries_its_libraries(
    published, tmp_path, browser, serve, console_errors
):
    as_published = tmp_path / "as-published"
    shutil.copytree(published, as_published)
    with serve(as_published) as address:
        assert graph_points(browser, address) is None  # offline, asv's own site shows no graph at all
        assert any("Failed to load resource" in e for e in console_errors(browser))

    offline = tmp_path / "offline"
    shutil.copytree(published, offline)
    done = subprocess.run([sys.executable, str(TOOL), "--html", str(offline)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    page = (offline / "index.html").read_text()
    assert "https://" not in "".join(line for line in page.splitlines() if "<script" in line or "<link" in line)
    with serve(offline) as address:
        points = graph_points(browser, address)
        assert points is not None and max(points) == 2  # the digits series: one point per commit
        assert console_errors(browser) == []
        styled = browser.execute_script(
            "return [...document.styleSheets].some(s => s.href && s.href.includes('vendor/bootstrap'))"
        )
        assert styled  # bootstrap's stylesheet came from the site too
