"""Options that several commands share, spelled and meant alike on each: the job, the data, the output.

``run``, ``sweep`` and ``paper`` take the same words: ``--engine`` (``sweep`` and ``paper``: several,
repeated or separated by commas), ``-o/--out``, ``--json``, ``-v/-q``, ``--dashboard``,
``--dry-run``, ``--epochs`` and every engine's settings flags (``--spark-conf``).
"""

from __future__ import annotations

import math

import click

from nncompare.data import DATASETS
from nncompare.engines.registry import engine_class, engine_names
from nncompare.job import ACTIVATIONS, MAX_EPOCHS, PARTITIONS, SOLVERS, JobSpec, ModelSpec, Topology, parse_memory

#: The dataset of a bare ``nncompare run``: the one the README's quick start provides.
DEFAULT_DATASET = "fashion-mnist"


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
        click.option("--dataset", type=click.Choice(DATASETS), default=DEFAULT_DATASET, show_default=True),
        click.option(
            "--epochs",
            type=click.IntRange(min=1, max=MAX_EPOCHS),
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
        click.option("--activation", type=click.Choice(ACTIVATIONS), default="relu", show_default=True),
        click.option(
            "--solver",
            type=click.Choice(SOLVERS),
            default="adam",
            show_default=True,
            help="lbfgs is left out: it has no partial_fit.",
        ),
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


def engine_setting_values(params: dict) -> dict[str, dict]:
    """The engine settings given as flags in ``params`` (removed from them): engine -> {setting: value}.

    Plain JSON, so that ``sweep`` and ``paper`` can hand them to each configuration's process; checked
    here, with the environment's, so that a bad value stops the command before anything runs.
    """
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
    EngineOptions.from_environ(values=values)
    return values


def engine_options(params: dict, **common):
    """EngineOptions from the environment and the engine flags in ``params`` (which it removes from them)."""
    from nncompare.engines import EngineOptions

    return EngineOptions.from_environ(values=engine_setting_values(params), **common)


class AliasedOption(click.Option):
    """An option whose old spellings (``hidden_aliases``) still work but no longer show in --help."""

    def __init__(self, *args, hidden_aliases: tuple[str, ...] = (), **kwargs):
        super().__init__(*args, **kwargs)
        self.hidden_aliases = tuple(hidden_aliases)

    def _shown(self, method, *args):
        saved = self.opts
        self.opts = [o for o in saved if o not in self.hidden_aliases]
        try:
            return method(*args)
        finally:
            self.opts = saved

    def get_help_record(self, ctx):
        return self._shown(super().get_help_record, ctx)

    def get_error_hint(self, ctx):
        return self._shown(super().get_error_hint, ctx)


def _engine_list(ctx, param, values) -> list[str]:
    names = [name.strip() for value in values for name in str(value).split(",")]
    if not names or "" in names:
        raise click.BadParameter(f"name engines separated by commas ({', '.join(engine_names())}), none empty")
    unknown = [name for name in names if name not in engine_names()]
    if unknown:
        raise click.BadParameter(f"unknown engine {unknown[0]!r}; choose from {', '.join(engine_names())}")
    return list(dict.fromkeys(names))


def engines_option(default: tuple[str, ...], help: str):
    """``--engine NAME`` for the commands that run several engines: repeatable, or NAME,NAME (old: --engines)."""
    return click.option(
        "--engine",
        "--engines",
        "engines",
        cls=AliasedOption,
        hidden_aliases=("--engines",),
        multiple=True,
        default=default,
        show_default=True,
        metavar="NAME[,NAME]",
        callback=_engine_list,
        help=f"{help} Repeat it or separate names with commas ({', '.join(engine_names())}).",
    )


def output_options(*, out: click.Option | None = None, json_help: str, dry_run_help: str):
    """The options every command that runs configurations spells alike: -o/--out, --json, --dry-run,
    -v/-q, --dashboard and each engine's settings flags (the values reach every configuration)."""

    def decorate(func):
        options = [
            *([out] if out is not None else []),
            click.option("--json", "as_json", is_flag=True, help=json_help),
            click.option("--dry-run", is_flag=True, help=dry_run_help),
            click.option(
                "--verbose",
                "-v",
                is_flag=True,
                help="Print the run's events, one line each: engine start, placement, rounds, recovery.",
            ),
            click.option(
                "--quiet",
                "-q",
                is_flag=True,
                help="No progress bar: print only the result (and with -v the events, as plain lines).",
            ),
            click.option(
                "--dashboard", is_flag=True, help="Start the engine's own UI (Spark UI, Dask dashboard), print its URL."
            ),
        ]
        for option in reversed(options):
            func = option(func)
        return engine_setting_options(func)

    return decorate
