"""``nncompare run``: one configuration, one record."""

from __future__ import annotations

import json
import sys

import click

from nncompare.cli.options import (
    engine_options,
    engine_setting_options,
    job_options,
    show_engine_events,
    spec_from_options,
)
from nncompare.interrupts import deferred, raise_if_interrupted
from nncompare.job import format_memory
from nncompare.record import append_jsonl, check_appendable
from nncompare.steady import steady_epoch_s


class EpochBar:
    """A tqdm bar over epochs, shown only on a terminal."""

    def __init__(self, total: int, enabled: bool):
        self.bar = None
        if enabled:
            from tqdm import tqdm

            self.bar = tqdm(total=total, unit="epoch", file=sys.stderr, leave=False, dynamic_ncols=True)

    def __call__(self, info: dict) -> None:
        if self.bar is not None:
            self.bar.set_postfix(loss=f"{info['loss']:.4f}", acc=f"{info['accuracy']:.4f}")
            self.bar.update(1)

    def close(self):
        if self.bar is not None:
            self.bar.close()


def summary(record: dict) -> str:
    phases = record["phases_s"]
    mem = record["peak_rss_bytes"]
    lines = [
        f"{record['engine']} on {record['dataset']}: {record['workers']} workers x {record['cores_per_worker']} cores"
        f" x {format_memory(record['memory_per_worker_bytes'])}",
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


@click.command()
@job_options
@click.option("--out", type=click.Path(dir_okay=False), default=None, help="Append the record to this JSON-lines file.")
@click.option("--json", "as_json", is_flag=True, help="Print the record alone on stdout.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@engine_setting_options
@click.option("--dashboard", is_flag=True, help="Start the engine's own UI (Spark UI, Dask dashboard), print its URL.")
@click.option("--verbose", "-v", is_flag=True, help="Log engine events: start, placement, rounds, recovery.")
def run(out, as_json, quiet, dashboard, verbose, **options):
    """Train one configuration and report time, accuracy and where the time went."""
    from nncompare.training import run_job

    settings = engine_options(options, dashboard=dashboard)
    spec = spec_from_options(options)
    if out:
        check_appendable(out)
    show_engine_events(verbose=verbose, dashboard=dashboard)
    bar = EpochBar(spec.epochs, enabled=not quiet and sys.stderr.isatty())
    try:
        record = run_job(spec, data_dir=options["data_dir"], cluster=options["cluster"], progress=bar, options=settings)
    finally:
        bar.close()
    if out:
        raise_if_interrupted()
        with deferred():  # the line is written whole; a signal during the write is honoured after it
            append_jsonl(out, record)
        raise_if_interrupted()
    click.echo(json.dumps(record) if as_json else summary(record))
