"""Options that several commands share: the job's definition and where the data is."""

from __future__ import annotations

import logging
import math
import sys

import click

from nncompare.data import DATASETS
from nncompare.errors import UsageError
from nncompare.job import ENGINES, PARTITIONS, JobSpec, ModelSpec, Topology, parse_memory


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
        click.option("--engine", type=click.Choice(ENGINES), default="local", show_default=True),
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
        click.option("--train-samples", type=int, default=None, help="Use only the first N training samples."),
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
    elif o["engine"] == "dask":
        check_dask_address(o["cluster"])
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


def check_dask_address(address: str) -> None:
    """A malformed scheduler address, refused before a Client exists (a failed Client's __del__ waits 40 s)."""
    try:
        from distributed.comm.addressing import get_address_host_port
    except ModuleNotFoundError:
        return  # the engine says how to install its extra
    try:
        get_address_host_port(address)
    except (ValueError, TypeError) as exc:
        raise UsageError(f"--cluster {address}: {exc}; write the scheduler's address as tcp://HOST:PORT") from None


def finite_seconds(ctx, param, value):
    """click's FloatRange lets nan and inf through; a timeout must be a finite number of seconds."""
    if value is not None and not math.isfinite(value):
        raise click.BadParameter(f"give a finite number of seconds, not {value}")
    return value


def parse_spark_conf(ctx, param, values) -> dict[str, str]:
    """``--spark-conf KEY=VALUE`` (repeatable) as a dict; a later KEY wins, as in spark-submit."""
    conf = {}
    for value in values:
        key, sep, setting = value.partition("=")
        if not sep or not key.strip() or not key.strip().startswith("spark."):
            raise click.BadParameter(
                f"write KEY=VALUE with a Spark key, e.g. spark.sql.shuffle.partitions=4; got {value!r}"
            )
        conf[key.strip()] = setting
    return conf


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
