"""``nncompare run``: one configuration, one record."""

from __future__ import annotations

import json
import sys

import click

from nncompare.cli.options import engine_options, job_options, output_options, spec_from_options
from nncompare.cli.progress import RunBar, events_on_stderr
from nncompare.interrupts import finishing
from nncompare.job import counted, format_memory
from nncompare.outfile import check_appendable, lost_record_error, save_record
from nncompare.steady import steady_epoch_s


def summary(record: dict) -> str:
    phases = record["phases_s"]
    mem = record["peak_rss_bytes"]
    lines = [
        f"{record['engine']} on {record['dataset']}: {counted(record['workers'], 'worker')} x "
        f"{counted(record['cores_per_worker'], 'core')} x {format_memory(record['memory_per_worker_bytes'])}",
        f"  epochs run        {record['epochs_run']} of {record['epochs']}"
        + ("  (converged)" if record.get("stopped_early") else ""),
        f"  test accuracy     {record['test_accuracy']:.4f}",
        f"  wall time         {record['wall_s']:.2f} s (start-up {record['startup_s']:.2f} s)",
        f"  epoch time        {steady_epoch_s(record):.3f} s median after the first "
        f"({record['epoch_s'][0]:.3f} s first)",
        "  phases            " + ", ".join(f"{k} {v:.2f} s" for k, v in phases.items()),
        f"  peak memory       driver {format_memory(mem['driver'])}, workers {format_memory(mem['workers'])}",
    ]
    return "\n".join(lines)


def list_configurations(runs, done: set, as_json: bool) -> None:
    """``--dry-run``: each configuration, done or still to do, as a line or (``--json``) a JSON object."""
    for run in runs:
        if as_json:
            click.echo(json.dumps({"done": run.key in done, "describe": run.describe(), **run.summary()}))
        else:
            click.echo(("done  " if run.key in done else "to do ") + run.describe())


@click.command()
@job_options
@output_options(
    out=click.option(
        "--out", "-o", type=click.Path(dir_okay=False), default=None, help="Append the record to this JSON-lines file."
    ),
    json_help="Print the record alone on stdout.",
    dry_run_help="Check the options, print the configuration that would run, and stop.",
)
def run(out, as_json, dry_run, verbose, quiet, dashboard, **options):
    """Train one configuration and report time, accuracy and where the time went."""
    from nncompare.engines import engine_class
    from nncompare.sweep import Run
    from nncompare.training import run_job

    settings = engine_options(options, dashboard=dashboard)
    spec = spec_from_options(options)
    if out:
        check_appendable(out)
    if dry_run:
        engine_class(spec.engine)  # a missing extra is bad input here too
        list_configurations([Run(spec, cluster=options["cluster"])], set(), as_json)
        return
    bar = RunBar(enabled=not quiet and sys.stderr.isatty())
    try:
        with events_on_stderr(verbose=verbose, dashboard=dashboard):
            record = run_job(
                spec, data_dir=options["data_dir"], cluster=options["cluster"], progress=bar, options=settings
            )
    finally:
        bar.close()
    finish(record, out, as_json)


def finish(record: dict, out, as_json: bool) -> None:
    """The run's one outcome (docs/reliability.md): a signal before the boundary is an interrupted run with
    nothing written; past it the record is written whole and the summary printed, whatever signal comes."""
    with finishing():
        saved = save_record(out, record) if out else None
        lost = saved is not None and saved.path is None
        click.echo(json.dumps(record) if as_json or lost else summary(record))
    if saved is not None and saved.problem:
        raise lost_record_error(out, saved)
