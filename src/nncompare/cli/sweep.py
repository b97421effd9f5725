"""``nncompare sweep``: a grid of configurations, one process each, resumable."""

from __future__ import annotations

from pathlib import Path

import click

from nncompare.cli.options import (
    engine_setting_values,
    engines_option,
    finite_seconds,
    job_options,
    output_options,
    spec_from_options,
)
from nncompare.cli.run import list_configurations
from nncompare.engines.registry import plugin
from nncompare.errors import UsageError
from nncompare.job import parse_memory
from nncompare.record import check_appendable

GRID_AXES = ("engine", "workers", "cores", "memory", "epochs")


def shared_job_params(exclude=GRID_AXES):
    """The job flags of ``nncompare run`` (cli/options.py) except those a command sets itself."""

    def holder():
        pass

    job_options(holder)
    return [p for p in holder.__click_params__ if p.name not in exclude]


def with_job_params(exclude=GRID_AXES):
    """Decorator: add the shared job flags to a command, so every command spells them alike."""

    def decorate(func):
        func.__click_params__ = getattr(func, "__click_params__", []) + shared_job_params(exclude)
        return func

    return decorate


def split_list(text: str, convert, what: str) -> list:
    items = [t.strip() for t in str(text).split(",") if t.strip()]
    if not items:
        raise UsageError(f"{what}: give at least one value")
    try:
        return [convert(t) for t in items]
    except ValueError:
        raise UsageError(f"{what}: cannot read {text!r}; write values separated by commas, e.g. 1,2,4") from None


def positive_ints(text: str, what: str) -> list[int]:
    values = split_list(text, int, what)
    if min(values) < 1:
        raise UsageError(f"{what}: values must be at least 1")
    return values


def base_spec(options: dict, **axes):
    """A JobSpec from the shared flags plus the grid axes given."""
    o = {"engine": "local", "workers": 1, "cores": 1, "memory": None, "epochs": 1, "cluster": None}
    o = {"train_samples": None, **o, **options, **axes}
    return spec_from_options(o)


def sweep_display(*, verbose: bool, quiet: bool, dashboard: bool):
    """The bars on a terminal (none with -q), the lines otherwise; see :class:`~nncompare.cli.progress.SweepDisplay`."""
    import sys

    from nncompare.cli.progress import SweepDisplay

    return SweepDisplay(bars=not quiet and sys.stderr.isatty(), verbose=verbose, quiet=quiet, dashboard=dashboard)


def run_shown(runs, out, display, options: dict, *, give_up_on_engine: bool = False, **run_options):
    """:func:`nncompare.sweep.run_sweep` with the display's lines and bars, closed however it ends.

    ``run_options``: ``timeout_s``, ``settings`` and ``verbose``; the dashboard flag is the display's.
    """
    from nncompare.sweep import run_sweep

    try:
        return run_sweep(
            runs,
            out,
            data_dir=options.get("data_dir"),
            echo=display.echo,
            on_event=display.on_event,
            give_up_on_engine=give_up_on_engine,
            dashboard=display.dashboard,
            **run_options,
        )
    finally:
        display.close()


def print_records(path, runs) -> None:
    """``--json``: the records of ``runs`` found in ``path``, one JSON object per line on stdout."""
    import json

    from nncompare.record_schema import read_records

    wanted = {run.key for run in runs}
    for record in read_records(path) if Path(path).exists() else ():
        if (record.get("spec_key"), int(record.get("repeat", 0))) in wanted:
            click.echo(json.dumps(record))


@click.command()
@engines_option(("local",), help="Engines to run.")
@click.option("--workers", default="1", show_default=True, help="Worker counts, comma separated.")
@click.option("--cores", default="1", show_default=True, help="Cores per worker, comma separated.")
@click.option("--memory", default="", help="Memory per worker, comma separated (e.g. 1g,2g); default: engine's choice.")
@click.option("--epochs", default="10", show_default=True, help="Maximum epochs, comma separated.")
@click.option(
    "--train-samples",
    "train_samples",
    default="",
    help="Training set sizes, comma separated; past the data set's size its images grow (nncompare.augment).",
)
@click.option("--repeats", type=click.IntRange(min=1), default=1, show_default=True)
@click.option(
    "--timeout",
    "timeout_s",
    type=click.FloatRange(min=1),
    default=None,
    callback=finite_seconds,
    help="Seconds before one configuration is stopped and counted as failed.",
)
@click.option("--cluster", default=None, help="Dask scheduler or Spark master every configuration runs on.")
@with_job_params(exclude=(*GRID_AXES, "cluster", "train_samples"))
@output_options(
    out=click.option(
        "--out",
        "-o",
        type=click.Path(dir_okay=False),
        required=True,
        help="JSON-lines results file; configurations already in it are skipped.",
    ),
    json_help="Print the grid's records (those already in OUT too) on stdout, one JSON object per line.",
    dry_run_help="List the configurations, done or still to do, and stop.",
)
def sweep(
    out, engines, workers, cores, memory, epochs, train_samples, repeats, timeout_s, cluster, as_json, dry_run,
    verbose, quiet, dashboard, **options
):  # fmt: skip
    """Run every combination of engines x workers x cores x memory x epochs (x training set sizes), REPEATS times.

    Each configuration runs in its own process; its record is appended to OUT when it
    finishes. Interrupt at any time (Ctrl-C) and run the same command again to finish the grid.
    """
    from nncompare.engines import engine_class
    from nncompare.sweep import completed, grid

    settings = engine_setting_values(options)
    for name in engines if cluster else ():
        if not plugin(name).cluster_schemes:
            raise UsageError(f"the {name} engine runs in this process and takes no --cluster; leave it out of --engine")
    memories = split_list(memory, parse_memory, "--memory") if memory.strip() else [None]
    sizes = positive_ints(train_samples, "--train-samples") if train_samples.strip() else [None]
    runs = []
    for size in sizes:
        base = base_spec(options, cluster=cluster, engine=engines[0], train_samples=size)
        runs += grid(
            base,
            engines=engines,
            workers=positive_ints(workers, "--workers"),
            cores=positive_ints(cores, "--cores"),
            memory=memories,
            epochs=positive_ints(epochs, "--epochs"),
            repeats=repeats,
            cluster=cluster,
        )
    for name in engines:
        engine_class(name)  # a missing extra is bad input: say so before running anything
    check_appendable(out)
    if dry_run:
        list_configurations(runs, completed(out), as_json)
        return
    display = sweep_display(verbose=verbose, quiet=quiet, dashboard=dashboard)
    outcome = run_shown(runs, out, display, options, timeout_s=timeout_s, settings=settings, verbose=verbose)
    if as_json:
        print_records(out, runs)
    click.echo(
        f"{outcome.ran} ran, {outcome.skipped} already done, {len(outcome.failed)} failed; results in {out}", err=True
    )
    if outcome.failed:
        from nncompare.errors import EngineError

        raise EngineError(
            f"{len(outcome.failed)} configurations failed (first: {outcome.failed[0][1]}); "
            "run the same command again to retry them"
        )


commands = [sweep]
