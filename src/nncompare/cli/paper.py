"""``nncompare paper``: the seed paper's study, on a cluster or scaled to this machine, with a report."""

from __future__ import annotations

import os
import shlex
import sys
import time
from pathlib import Path

import click

from nncompare.cli.options import AliasedOption, engine_setting_values, engines_option, finite_seconds, output_options
from nncompare.cli.run import list_configurations
from nncompare.cli.sweep import GRID_AXES, base_spec, print_records, run_shown, sweep_display, with_job_params
from nncompare.engines.registry import engine_for_address, engine_names, plugin
from nncompare.errors import UsageError
from nncompare.job import MAX_EPOCHS
from nncompare.record import check_writable_dir


def parse_clusters(values) -> dict[str, str]:
    """``--cluster`` values: ENGINE=ADDRESS, or an address whose scheme names the engine."""
    clusters = {}
    for value in values:
        engine, sep, address = value.partition("=")
        if not sep or engine not in engine_names():
            address = value
            engine = engine_for_address(value)
            if engine is None:
                raise UsageError(
                    f"--cluster {value!r}: write ENGINE=ADDRESS (e.g. dask=tcp://host:8786) or an address whose "
                    "scheme names its engine"
                )
        if not plugin(engine).cluster_schemes:
            raise UsageError(f"the {engine} engine runs in this process and takes no --cluster")
        clusters[engine] = address
    return clusters


def available_engines(names: list[str], echo) -> tuple[list[str], dict[str, str]]:
    """The engines that can be imported; the others with the reason, printed as a note."""
    from nncompare.engines import engine_class

    usable, skipped = [], {}
    for name in names:
        try:
            engine_class(name)
            usable.append(name)
        except UsageError as exc:
            skipped[name] = str(exc)
            echo(f"note: skipping engine {name}: {exc}")
    return usable, skipped


@click.command()
@engines_option(tuple(engine_names()), help="Engines to run; those whose extra is missing are skipped with a note.")
@click.option(
    "--cluster",
    "clusters",
    multiple=True,
    help="Run an engine on a cluster of the paper's size, with the paper's configurations unscaled: "
    "dask=tcp://host:8786 or spark=spark://host:7077 (repeatable).",
)
@click.option(
    "--epochs",
    "--max-epochs",
    "max_epochs",
    cls=AliasedOption,
    hidden_aliases=("--max-epochs",),
    type=click.IntRange(min=1, max=MAX_EPOCHS),
    default=None,
    help="Maximum epochs: cap the paper's epoch counts (10, 100, 1,000, 10,000) at this many.",
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
@with_job_params(exclude=(*GRID_AXES, "cluster"))
@output_options(
    out=click.option(
        "--out",
        "-o",
        type=click.Path(file_okay=False, path_type=Path),
        required=True,
        help="Report directory: report.md, plots, results.jsonl (resumable).",
    ),
    json_help="Print the design's records (those of earlier runs in OUT too) on stdout, one JSON object per line.",
    dry_run_help="List the design's configurations, done or still to do, and stop.",
)
def paper(
    out, engines, clusters, max_epochs, repeats, timeout_s, as_json, dry_run, verbose, quiet, dashboard, **options
):
    """Run the seed paper's design (3 configurations x 10..10,000 epochs) and write a report beside its numbers.

    Without --cluster, the configurations are scaled to this machine: the same worker counts,
    cores and memory per worker shrunk by this machine's share of the paper's cluster.
    Convergence stopping is on by default, as in MLPClassifier.fit.
    """
    import psutil

    from nncompare.data import load_dataset
    from nncompare.job import Topology
    from nncompare.paper import CITATION, paper_epochs, scale_to_machine, unscaled
    from nncompare.publish import write_report
    from nncompare.results import load_records
    from nncompare.sweep import Run, completed

    display = sweep_display(verbose=verbose, quiet=quiet, dashboard=dashboard)
    echo = display.echo
    started = time.perf_counter()
    settings = engine_setting_values(options)
    dataset = options["dataset"]
    cluster_of = parse_clusters(clusters)
    wanted = list(engines)
    if cluster_of and tuple(engines) == tuple(engine_names()):
        # a cluster study: engines that run only in this process cannot run there
        wanted = [name for name in wanted if plugin(name).cluster_schemes]
    usable, skipped = available_engines(wanted, echo)
    if not usable:
        raise UsageError("none of the engines asked for can run here: " + "; ".join(skipped.values()))

    base = base_spec(options)
    check_writable_dir(out)
    done = completed(out / "results.jsonl")  # a bad line in an earlier run's results stops us now, named
    if not dry_run:
        echo(f"checking {dataset} is at hand ...")
        load_dataset(dataset, data_dir=options.get("data_dir"))  # fail early, and download once, not per process

    here = scale_to_machine(os.cpu_count() or 1, psutil.virtual_memory().total)
    preamble = [f"Seed paper: {CITATION}", ""]
    if "paper" in sys.argv:  # the command line as typed, when this process was started by it
        preamble += [f"Command: `nncompare paper {shlex.join(sys.argv[sys.argv.index('paper') + 1 :])}`", ""]
    if any(e not in cluster_of for e in usable):
        echo("scaling the paper's configurations to this machine:")
        for line in here.lines():
            echo("  " + line)
        preamble += ["Configurations scaled to this machine:", "", "```", *here.lines(), "```", ""]
    for engine, address in cluster_of.items():
        preamble += [f"{engine} ran on the cluster {address} with the paper's configurations unscaled.", ""]
    epochs = paper_epochs()
    if max_epochs:
        preamble += [f"Epoch counts capped at --epochs {max_epochs}; a capped count reuses the run of the cap.", ""]

    runs = []
    for engine in usable:
        scaling = unscaled() if engine in cluster_of else here
        for paper_cfg, ours in scaling.configs:
            by_cap: dict[int, list[int]] = {}
            for e in epochs:
                by_cap.setdefault(min(e, max_epochs or e), []).append(e)
            for cap, columns in by_cap.items():
                spec = base.with_(
                    engine=engine, epochs=cap, topology=Topology(ours.workers, ours.cores_per_worker, ours.memory_bytes)
                )
                tag = {
                    "paper": {
                        "config": paper_cfg.label,
                        "columns": columns,
                        "max_epochs": max_epochs,
                        "scaled": engine not in cluster_of,
                    }
                }
                runs += [Run(spec, r, cluster_of.get(engine), tag) for r in range(repeats)]
    results = out / "results.jsonl"
    if dry_run:
        list_configurations(runs, done, as_json)
        return
    echo(
        f"{len(runs)} runs ({', '.join(usable)}; {len(epochs)} epoch counts x 3 configurations"
        + (f" x {repeats} repeats" if repeats > 1 else "")
        + f"), results in {results}"
    )
    outcome = run_shown(
        runs, results, display, options, give_up_on_engine=True, timeout_s=timeout_s, settings=settings, verbose=verbose
    )
    for engine, reason in {**skipped, **outcome.skipped_engines}.items():
        preamble += [f"Engine {engine} was skipped: {reason}", ""]
    if not results.exists():
        raise UsageError("no run finished, so there is no report; see the errors above")
    wanted_keys = {r.key for r in runs}
    records = [r for r in load_records(results) if (r.get("spec_key"), int(r.get("repeat", 0))) in wanted_keys]
    if not records:
        raise UsageError("no run of this design finished, so there is no report; see the errors above")
    path = write_report(
        records, out, title=f"The seed paper's study on {dataset}", results_path=str(results), preamble=preamble
    )
    echo(
        f"{outcome.ran} ran, {outcome.skipped} already done, {len(outcome.failed)} failed "
        f"in {time.perf_counter() - started:.0f} s"
    )
    if as_json:
        print_records(results, runs)
        click.echo(f"report written to {path}", err=True)
    else:
        click.echo(f"report written to {path}")


commands = [paper]
