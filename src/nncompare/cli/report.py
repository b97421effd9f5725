"""``nncompare report``, ``plot`` and ``explain``: tables, figures and explanations of any results file.

Each checks every record against the documented schema (:mod:`nncompare.record_schema`)
and that its output folder can be written, before it draws or writes anything.
"""

from __future__ import annotations

from pathlib import Path

import click

from nncompare.record import check_writable_dir
from nncompare.record_schema import read_records

_results = click.argument("results", type=click.Path(dir_okay=True, path_type=Path))


@click.command()
@_results
@click.option(
    "--out",
    "-o",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Write DIR/report.md with its plots; without it, print the tables (no plots).",
)
def report(results, out):
    """Tables (and with --out, plots) of RESULTS, a JSON-lines file or a report directory."""
    from nncompare.publish import write_report
    from nncompare.results import load_records

    read_records(results)
    if out is not None:
        check_writable_dir(out)
    records = load_records(results)
    if out is None:
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            path = write_report(
                records, tmp, title=f"nncompare report: {results}", results_path=str(results), plots=False
            )
            click.echo(path.read_text(encoding="utf-8"))
        return
    path = write_report(records, out, title=f"nncompare report: {results}", results_path=str(results))
    click.echo(f"report written to {path}")


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
    """Draw the report's figures for RESULTS, as PNG and SVG."""
    from nncompare.plots import make_plots
    from nncompare.results import load_records

    read_records(results)
    if out is None:
        out = results if results.is_dir() else results.parent
    check_writable_dir(out)
    records = load_records(results)
    for stem, caption in make_plots(records, out):
        click.echo(f"{out / stem}.png  {caption}")


@click.command()
@_results
def explain(results):
    """Per engine, where each epoch's time goes, and what that says about the seed paper's observations."""
    from nncompare.explain import explain_markdown
    from nncompare.results import load_records

    read_records(results)
    click.echo("\n".join(explain_markdown(load_records(results))))


commands = [report, plot, explain]
