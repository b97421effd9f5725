"""A report directory: the figures (:mod:`nncompare.plots`) and report.md (:mod:`nncompare.report`) showing them.

The two writers depend on :mod:`nncompare.results` and not on each other; this is where they meet.
"""

from __future__ import annotations

import os
from pathlib import Path

from nncompare.report import write_markdown


def write_report(
    records: list[dict],
    out_dir: str | os.PathLike,
    *,
    title: str,
    results_path: str,
    preamble: list[str] | None = None,
    plots: bool = True,
) -> Path:
    """Write report.md (and its plots, PNG and SVG) into ``out_dir``; return the report's path."""
    figures = []
    if plots:
        from nncompare.plots import make_plots  # matplotlib, only when drawing

        figures = make_plots(records, out_dir)
    return write_markdown(records, out_dir, title=title, results_path=results_path, preamble=preamble, figures=figures)
