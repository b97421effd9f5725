"""``nncompare report``, ``plot`` and ``explain``: tables, figures and explanations of any results file.

Each checks every record against the documented schema (:mod:`nncompare.record_schema`)
and that its output folder can be written, before it draws or writes anything. On the terminal
they print aligned tables; Markdown only when asked (``--format markdown``) or into files
(``--out``); ``--json`` prints the same content as data.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import click

from nncompare.record import check_writable_dir
from nncompare.record_schema import read_records

_results = click.argument("results", type=click.Path(dir_okay=True, path_type=Path))
_format = click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "markdown"]),
    default="text",
    show_default=True,
    help="How to print: aligned text for a terminal, or Markdown.",
)
_json = click.option("--json", "as_json", is_flag=True, help="Print the content as one JSON object instead.")


def _finite(value):
    """NaN and infinities as null: JSON has no words for them."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def _print(blocks, fmt: str) -> None:
    from nncompare.document import markdown, text

    click.echo(markdown(blocks) if fmt == "markdown" else text(blocks), nl=False)


def _load(results: Path):
    from nncompare.results import load_records

    read_records(results)
    return load_records(results)


@click.command()
@_results
@click.option(
    "--out",
    "-o",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Write DIR/report.md and DIR/report.html (one page, figures embedded) with the plots; "
    "without it, print the report (no plots).",
)
@_format
@_json
def report(results, out, fmt, as_json):
    """Tables, comparisons and findings (and with --out, plots and a page) of RESULTS, a JSON-lines file or folder."""
    if out is not None:
        check_writable_dir(out)
    records = _load(results)
    if as_json:
        from nncompare.report import report_data

        click.echo(json.dumps(_finite(report_data(records, results_path=str(results))), indent=1))
        return
    if out is None:
        from nncompare.report import report_blocks

        _print(report_blocks(records, title=f"nncompare report: {results}", results_path=str(results)), fmt)
        return
    from nncompare.publish import write_report

    path = write_report(records, out, title=f"nncompare report: {results}", results_path=str(results))
    click.echo(f"report written to {path} and {path.with_suffix('.html')}")


@click.command()
@_results
@click.option(
    "--out",
    "-o",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder for the PNG and SVG files (default: beside RESULTS).",
)
def plot(results, out):
    """Draw the report's figures for RESULTS, as PNG and SVG; say which the records cannot support."""
    from nncompare.plots import make_plots

    records = _load(results)
    if out is None:
        out = results if results.is_dir() else results.parent
    check_writable_dir(out)
    drawn, not_drawn = make_plots(records, out)
    for stem, caption, _ in drawn:
        click.echo(f"{out / stem}.png  {caption}")
    for reason in not_drawn:
        click.echo(f"not drawn: {reason}")


@click.command()
@_results
@_format
@_json
def explain(results, fmt, as_json):
    """Where each configuration's time goes, and what that says about the seed paper's observations, with evidence."""
    from nncompare.explain import explanation, explanation_data

    records = _load(results)
    if as_json:
        click.echo(json.dumps(_finite(explanation_data(records)), indent=1))
        return
    _print(explanation(records), fmt)


commands = [report, plot, explain]
