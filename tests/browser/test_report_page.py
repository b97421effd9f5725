"""report.html in a real browser: every figure shows, every table is there, the findings carry evidence, no error."""

from __future__ import annotations

import itertools

import pytest

from nncompare.document import Table
from nncompare.job import JobSpec, ModelSpec, Topology
from nncompare.publish import write_report
from nncompare.report import report_blocks
from nncompare.training import run_job

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def records(digits):
    """Real local runs at 1 and 2 workers and 2 and 3 epochs: enough for every figure."""
    model = ModelSpec(hidden_layer_sizes=(16,), batch_size=64, learning_rate_init=0.01)
    out = []
    for w, e in itertools.product((1, 2), (2, 3)):
        spec = JobSpec(dataset="digits", epochs=e, model=model, topology=Topology(workers=w), convergence_stop=False)
        out.append({**run_job(spec, dataset=digits), "repeat": 0})
    return out


def test_the_page_shows_every_figure_and_table_and_no_error(records, tmp_path, browser, console_errors):
    md = write_report(records, tmp_path, title="Report in a browser", results_path="runs.jsonl")
    page = md.with_suffix(".html")
    figures = [line for line in md.read_text().splitlines() if line.startswith("![")]
    assert len(figures) == 5  # every figure these runs support
    browser.get(page.as_uri())
    assert browser.title == "Report in a browser"
    images = browser.execute_script(
        "return [...document.images].map(i => [i.complete, i.naturalWidth, i.naturalHeight, i.alt])"
    )
    assert len(images) == len(figures)
    for complete, width, height, alt in images:
        assert complete and width > 300 and height > 200, alt  # decoded from the page itself
    blocks = report_blocks(records, title="t", results_path="r", figures=[("x", "x", "")])
    tables = sum(isinstance(b, Table) for b in blocks)
    shown = browser.execute_script(
        "return [...document.querySelectorAll('table')].map(t => t.querySelectorAll('tbody tr').length)"
    )
    assert len(shown) == tables and all(rows > 0 for rows in shown)
    headings = browser.execute_script("return [...document.querySelectorAll('h2')].map(h => h.textContent)")
    for section in ("Environment", "Runs", "Engines compared", "Where the time goes", "Plots"):
        assert section in headings
    findings = browser.execute_script(
        "return [...document.querySelectorAll('li > strong')].map(s => s.parentElement.textContent)"
    )
    assert findings and all(" — " in f for f in findings)  # each claim with its verdict
    assert any("run" in f for f in findings)  # and how many runs it rests on
    # nothing was fetched: the page is one file
    assert browser.execute_script("return performance.getEntriesByType('resource').length") == 0
    assert console_errors(browser) == []
