"""A report directory: the figures (:mod:`nncompare.plots`), report.md and report.html showing them.

The writers depend on :mod:`nncompare.results` and not on each other; this is where they meet.
"""

from __future__ import annotations

import os
from pathlib import Path

from nncompare.document import markdown
from nncompare.page import page, write_atomically
from nncompare.report import report_blocks


def write_report(
    records: list[dict],
    out_dir: str | os.PathLike,
    *,
    title: str,
    results_path: str,
    preamble: list[str] | None = None,
    plots: bool = True,
) -> Path:
    """Write report.md and report.html (and the plots, PNG and SVG) into ``out_dir``; return report.md's path.

    The page embeds the figures, so it stands alone; each file is written whole or not at all.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    figures, not_drawn = [], []
    if plots:
        from nncompare.plots import make_plots  # matplotlib, only when drawing

        figures, not_drawn = make_plots(records, out)
    blocks = report_blocks(
        records, title=title, results_path=results_path, preamble=preamble, figures=figures, not_drawn=not_drawn
    )
    write_atomically(out / "report.html", page(blocks, out))
    return write_atomically(out / "report.md", markdown(blocks))
