"""Options that several commands share: the job's definition and where the data is."""

from __future__ import annotations

import logging
import math
import sys

import click

from nncompare.data import DATASETS
from nncompare.engines.registry import engine_class, engine_names
from nncompare.job import PARTITIONS, JobSpec, ModelSpec, Topology, parse_memory


def _hidden(ctx, param, value):
    try:
        return tuple(int(v) for v in str(value).split(",") if v.strip())
    except ValueError:
        raise click.BadParameter("write hidden layer sizes as integers separated by commas, e.g. 256,128") from None


data_dir_option = click.option(
    "--data-dir",
    type=click.Path(file_okay=False, exists=True),
    envvar="NNCOMPARE_DATA_DIR",
    show_envvar=True,
    help="Folder with the IDX files (or with one sub-folder per dataset). Looked up before the cache.",
)


def job_options(func):
    """The flags that define a JobSpec (see :func:`spec_from_options`)."""
    options = [
        click.option("--engine", type=click.Choice(engine_names()), default="local", show_default=True),
        click.option("--dataset", type=click.Choice(DATASETS), default="mnist", show_default=True),
        click.option(
            "--epochs",
            type=click.IntRange(min=1),
            default=10,
            show_default=True,
            help="Maximum epochs (scikit-learn's max_iter).",
        ),
        click.option("--workers", type=int, default=1, show_default=True, help="Workers (executors), one shard each."),
        click.option("--cores", type=int, default=1, show_default=True, help="Cores (BLAS threads) per worker."),
        click.option("--memory", default=None, help="Memory per worker, e.g. 2g, 11GB, 512MiB."),
        click.option(
            "--cluster",
            default=None,
            help="Dask scheduler address (tcp://host:8786) or Spark master (spark://host:7077, yarn); "
            "default: a cluster started on this machine.",
        ),
        click.option("--hidden", default="100", show_default=True, callback=_hidden, help="Hidden layer sizes."),
        click.option("--activation", default="relu", show_default=True),
        click.option("--solver", default="adam", show_default=True),
        click.option("--batch-size", type=int, default=200, show_default=True),
        click.option("--learning-rate", type=float, default=0.001, show_default=True),
        click.option("--alpha", type=float, default=0.0001, show_default=True, help="L2 penalty."),
        click.option("--seed", type=int, default=0, show_default=True),
        click.option(
            "--sync-every",
            type=int,
            default=None,
            help="Mini-batches between weight averages (default: once per epoch).",
        ),
        click.option("--partition", type=click.Choice(PARTITIONS), default="shuffled", show_default=True),
        click.option(
            "--train-samples",
            type=int,
            default=None,
            help="Train on the first N samples; past the data set's size, on its images and deformed copies of them.",
        ),
        click.option(
            "--convergence-stop/--no-convergence-stop",
            default=True,
            show_default=True,
            help="Stop when the training loss stops improving, as MLPClassifier.fit does.",
        ),
        click.option("--tol", type=float, default=1e-4, show_default=True),
        click.option("--n-iter-no-change", type=int, default=10, show_default=True),
        data_dir_option,
    ]
    for option in reversed(options):
        func = option(func)
    return func


def spec_from_options(o: dict) -> JobSpec:
    """Build (and so validate) the JobSpec the flags describe."""
    model = ModelSpec(
        hidden_layer_sizes=o["hidden"],
        activation=o["activation"],
        solver=o["solver"],
        batch_size=o["batch_size"],
        learning_rate_init=o["learning_rate"],
        alpha=o["alpha"],
        seed=o["seed"],
    )
    topology = Topology(
        workers=o["workers"], cores_per_worker=o["cores"], memory_per_worker_bytes=parse_memory(o["memory"])
    )
    if not o.get("cluster"):
        topology.check_fits_this_machine()
    else:
        engine_class(o["engine"]).check_cluster(o["engine"], o["cluster"])  # before a client or JVM exists
    return JobSpec(
        dataset=o["dataset"],
        engine=o["engine"],
        epochs=o["epochs"],
        model=model,
        topology=topology,
        convergence_stop=o["convergence_stop"],
        tol=o["tol"],
        n_iter_no_change=o["n_iter_no_change"],
        sync_every=o["sync_every"],
        partition=o["partition"],
        train_samples=o["train_samples"],
    )


def finite_seconds(ctx, param, value):
    """click's FloatRange lets nan and inf through; a timeout must be a finite number of seconds."""
    if value is not None and not math.isfinite(value):
        raise click.BadParameter(f"give a finite number of seconds, not {value}")
    return value


def _flagged_settings() -> dict[str, tuple[str, object]]:
    """``ENGINE_SETTING`` (the flag's parameter name) -> (engine, the settings field), for settings with a flag."""
    from nncompare.engines.registry import plugins

    return {
        f"{name}_{f.name}": (name, f)
        for name, plugin in plugins().items()
        for f in plugin.setting_fields()
        if f.metadata.get("flag")
    }


def engine_setting_options(func):
    """Every registered engine's settings that declare a flag (``EnginePlugin.settings``), as options.

    Each engine names its flags once, in its plugin; an engine installed from another package
    brings its flags with it. :func:`engine_options` collects what was given.
    """
    from nncompare.engines.plugin import setting_kind
    from nncompare.engines.registry import plugin

    for param, (name, f) in reversed(list(_flagged_settings().items())):
        flag = f.metadata["flag"]
        kind = setting_kind(plugin(name).settings, f.name)
        help_text = f"{f.metadata['help']} [{name} engine]"
        if kind == "pairs":
            option = click.option(flag, param, multiple=True, metavar="KEY=VALUE", help=help_text)
        elif kind == "flag":
            option = click.option(flag, param, is_flag=True, default=None, help=help_text)
        else:
            option = click.option(flag, param, type=float, default=None, metavar="SECONDS", help=help_text)
        func = option(func)
    return func


def engine_options(params: dict, **common):
    """EngineOptions from the environment and the engine flags in ``params`` (which it removes from them)."""
    from nncompare.engines import EngineOptions
    from nncompare.engines.plugin import parse_setting, setting_kind
    from nncompare.engines.registry import plugin

    values: dict[str, dict] = {}
    for key, (engine, f) in _flagged_settings().items():
        given = params.pop(key, None)
        if given is None or given == ():
            continue
        kind = setting_kind(plugin(engine).settings, f.name)
        value = given if kind == "flag" else parse_setting(kind, f.metadata["flag"], given)
        values.setdefault(engine, {})[f.name] = value
    return EngineOptions.from_environ(values=values, **common)


def show_engine_events(*, verbose: bool, dashboard: bool) -> None:
    """``-v``: engine events on stderr; ``--dashboard``: at least the UI's address."""
    if not (verbose or dashboard):
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("nncompare: %(message)s"))
    for name, wanted in (("nncompare", verbose), ("nncompare.dashboard", dashboard)):
        if wanted:
            logger = logging.getLogger(name)
            logger.setLevel(logging.INFO)
            logger.addHandler(handler)
            break  # "nncompare" includes "nncompare.dashboard"
