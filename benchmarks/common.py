"""What the benchmark classes share: the grid, the dataset, and which combinations can run here.

This module holds no benchmark (asv collects only ``time_``/``track_``/``peakmem_`` names).
Everything expensive it offers (loading the data, starting a cluster, running a whole job in
a child process) is meant for ``setup``/``setup_cache``, never for the timed part.

Environment variables:

``NNCOMPARE_ASV_GRID``
    ``quick`` (default): a grid that fits a 2-core CI machine (one commit in well under
    20 minutes). ``paper``: the seed paper's configurations (cores x workers x memory per
    worker: 4x9x11g, 5x7x13g, 6x5x19g; 10/100/1000/10000 epochs), for a real cluster.
``NNCOMPARE_ASV_<ENGINE>_CLUSTER`` (``NNCOMPARE_ASV_DASK_CLUSTER``, ``NNCOMPARE_ASV_SPARK_CLUSTER``, ...)
    A cluster address for that engine to run on instead of one started on this machine;
    combinations are then not checked against this machine's cores and memory.
``NNCOMPARE_ASV_DATASET``
    Force a dataset. By default Fashion-MNIST, else MNIST, when at hand (``NNCOMPARE_DATA_DIR``,
    the download cache or the system copy, e.g. Debian's ``dataset-fashion-mnist``; never
    downloaded), else scikit-learn's ``digits``. The dataset is every benchmark's last
    parameter: a run on the fallback forms its own series and never joins Fashion-MNIST's line.
``NNCOMPARE_ASV_ENGINES``
    A comma-separated subset of the installed engines to run (default: all); the others are
    skipped. A backfill over many commits uses ``local`` (docs/benchmarks.md).

The engines are the ones registered under the entry-point group ``nncompare.engines``
(:mod:`nncompare.engines.registry`), an engine from another installed package included.
A new benchmark subclasses :class:`EngineBenchmark`.
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys

GRID_ENV = "NNCOMPARE_ASV_GRID"
DATASET_ENV = "NNCOMPARE_ASV_DATASET"
ENGINES_ENV = "NNCOMPARE_ASV_ENGINES"
#: What a backfill meets at commits from before the engine registry: their three engines, of which
#: only ``local`` trained its shards one after another.
BEFORE_REGISTRY = {"local": False, "dask": True, "spark": True}


def registered_engines() -> list[str]:
    """The installed engines, in their declared order."""
    try:
        from nncompare.engines.registry import engine_names
    except ImportError:
        return list(BEFORE_REGISTRY)
    return list(engine_names())


def side_by_side(engine: str) -> bool:
    """Whether ``engine`` trains its shards side by side (its plugin's ``concurrent``)."""
    try:
        from nncompare.engines.registry import plugin
    except ImportError:
        return BEFORE_REGISTRY[engine]
    return plugin(engine).concurrent


ENGINES = registered_engines()
#: The engines that train every shard in the benchmark's own process (their CPU time is all of it).
IN_PROCESS_ENGINES = [e for e in ENGINES if not side_by_side(e)]
DATASET_PREFERENCE = ("fashion-mnist", "mnist")
# Every dataset is a parameter value; the one in use runs, the others are skipped, so each
# dataset keeps its own line in the graphs whichever one a machine had at hand.
DATASETS = [*DATASET_PREFERENCE, "digits"]

# Each grid: the values of each parameter; "configs" limits the cross product to whole
# (cores, workers, memory) configurations; "timeout" bounds one benchmark's process (s).
GRIDS = {
    "quick": {
        "workers": [1, 2],
        "cores": [1],
        "memory": ["2g"],
        "epochs": [5],
        "configs": None,
        "timeout": 900,
    },
    "paper": {
        "workers": [5, 7, 9],
        "cores": [4, 5, 6],
        "memory": ["11g", "13g", "19g"],
        "epochs": [10, 100, 1000, 10000],
        "configs": {(4, 9, "11g"), (5, 7, "13g"), (6, 5, "19g")},
        "timeout": 7 * 24 * 3600,
    },
}


def grid_name() -> str:
    name = os.environ.get(GRID_ENV, "quick") or "quick"
    if name not in GRIDS:
        raise ValueError(f"{GRID_ENV}={name!r}: choose one of {', '.join(GRIDS)}")
    return name


GRID = GRIDS[grid_name()]

# The dataset is the last parameter of every benchmark (``TOPOLOGY_*`` and ``JOB_*`` end with it).
TOPOLOGY_PARAMS = [ENGINES, GRID["workers"], GRID["cores"], GRID["memory"], DATASETS]
TOPOLOGY_NAMES = ["engine", "workers", "cores_per_worker", "memory_per_worker", "dataset"]
JOB_PARAMS = [*TOPOLOGY_PARAMS[:-1], GRID["epochs"], DATASETS]
JOB_NAMES = [*TOPOLOGY_NAMES[:-1], "epochs", "dataset"]


def cluster_env(engine: str) -> str:
    """The variable that points ``engine``'s benchmarks at a running cluster."""
    return f"NNCOMPARE_ASV_{engine.upper()}_CLUSTER"


def cluster_address(engine: str) -> str | None:
    return os.environ.get(cluster_env(engine)) or None


def selected_engines() -> list[str]:
    names = [n.strip() for n in os.environ.get(ENGINES_ENV, "").split(",") if n.strip()] or ENGINES
    unknown = sorted(set(names) - set(ENGINES))
    if unknown:
        raise ValueError(f"{ENGINES_ENV}: unknown engine(s) {', '.join(unknown)}; choose from {', '.join(ENGINES)}")
    return names


def predates_benchmarks() -> str | None:
    """Why the installed nncompare is too old for the in-process benchmarks (None: it is not).

    asv runs today's suite against every commit of a backfill; a commit from before
    ``TrainingRun`` is skipped (asv: n/a), not failed.
    """
    try:
        from nncompare.engines import create_engine  # noqa: F401
        from nncompare.training import TrainingRun  # noqa: F401
    except ImportError:
        return "this commit predates the benchmark: its nncompare has no TrainingRun to drive"
    return None


def skip_reason(engine: str, workers: int, cores: int, memory: str, dataset: str | None = None) -> str | None:
    """Why this combination cannot run here (None: it can). Cheap: no cluster is started."""
    if dataset is not None and dataset != dataset_name():
        return f"this run uses {dataset_name()}, not {dataset} ({DATASET_ENV} or the data at hand decide)"
    if engine not in selected_engines():
        return f"{ENGINES_ENV} leaves out the {engine} engine"
    configs = GRID["configs"]
    if configs is not None and (cores, workers, memory) not in configs:
        return f"{cores} cores x {workers} workers x {memory} is not one of the {grid_name()} grid's configurations"
    from nncompare.engines import engine_class
    from nncompare.errors import UsageError

    try:
        engine_class(engine)
    except UsageError as exc:  # the engine's module or its dependencies are not installed
        return str(exc)
    if cluster_address(engine):
        return None
    have_cores = os.cpu_count() or 1
    need_cores = workers * cores if side_by_side(engine) else cores  # side by side: all at once
    if need_cores > have_cores:
        return (
            f"{engine} with {workers} workers x {cores} cores needs {need_cores} cores; this machine has {have_cores}"
        )
    if side_by_side(engine):
        import psutil

        from nncompare.job import format_memory, parse_memory

        need = workers * parse_memory(memory)
        have = psutil.virtual_memory().total
        if need > have:
            return f"{workers} workers x {memory} need {format_memory(need)}; this machine has {format_memory(have)}"
    return None


def skip_if_cannot_run(engine, workers, cores, memory, dataset) -> None:
    """asv skips a benchmark whose setup raises NotImplementedError."""
    reason = skip_reason(engine, workers, cores, memory, dataset) or predates_benchmarks()
    if reason:
        raise NotImplementedError(reason)


def _at_hand(name: str) -> bool:
    from nncompare.data import locate
    from nncompare.errors import NNCompareError

    try:
        locate(name, download=False)
    except NNCompareError:
        return False
    return True


@functools.cache
def dataset_name() -> str:
    forced = os.environ.get(DATASET_ENV)
    if forced:
        return forced
    return next((name for name in DATASET_PREFERENCE if _at_hand(name)), "digits")


@functools.cache
def dataset():
    """The dataset, loaded once per benchmark process (asv forks one per benchmark)."""
    from nncompare.data import load_dataset

    return load_dataset(dataset_name())


def job_spec(engine: str, workers: int, cores: int, memory: str, epochs: int = 1):
    """The job every benchmark runs: the project's default model, scikit-learn's stopping rule."""
    from nncompare.job import JobSpec, Topology, parse_memory

    topology = Topology(workers=workers, cores_per_worker=cores, memory_per_worker_bytes=parse_memory(memory))
    return JobSpec(dataset=dataset_name(), engine=engine, epochs=epochs, topology=topology)


def training_run(spec):
    """A :class:`~nncompare.training.TrainingRun` of ``spec`` with its engine started (setup's work).

    The caller closes it (``run.close()``) in teardown.
    """
    from nncompare.engines import create_engine
    from nncompare.training import TrainingRun

    run = TrainingRun(
        spec, dataset(), create_engine(spec, cluster_address(spec.engine)), cluster=cluster_address(spec.engine)
    )
    try:
        run.start()
    except BaseException:
        run.close()
        raise
    return run


def run_in_child(
    engine: str, workers: int, cores: int, memory: str, epochs: int, timeout: float, extra: tuple[str, ...] = ()
) -> dict:
    """Run one whole job in a fresh process with the CLI and return its record.

    A fresh process per job, because the driver's peak RSS is a per-process high-water mark:
    jobs run one after another in one process would each report the largest so far.
    Returns ``{"error": ...}`` when the job fails. ``extra``: more ``nncompare run`` options.
    """
    args = [
        sys.executable,
        "-c",
        "from nncompare.cli import main; main()",
        "run",
        "--json",
        "--quiet",
        "--engine",
        engine,
        "--dataset",
        dataset_name(),
        "--epochs",
        str(epochs),
        "--workers",
        str(workers),
        "--cores",
        str(cores),
        "--memory",
        memory,
        *extra,
    ]
    if cluster_address(engine):
        args += ["--cluster", cluster_address(engine)]
    try:
        done = subprocess.run(args, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return {"error": f"{engine} job did not finish in {timeout:.0f} s"}
    if done.returncode != 0:
        tail = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
        return {"error": f"{engine} job failed with exit code {done.returncode}: {tail}"}
    return json.loads(done.stdout.strip().splitlines()[-1])


class EngineBenchmark:
    """The base of every benchmark that trains on an engine: a subclass declares what varies and what it builds.

    A concrete benchmark sets ``params``/``param_names`` (by default the topology grid:
    engine, workers, cores_per_worker, memory_per_worker, dataset) and implements
    ``build(**params)``, which returns what its ``time_``/``track_`` method uses (kept as
    ``self.built`` and closed in teardown when it has a ``close``). Parameters it leaves out take
    the class's ``workers``, ``cores_per_worker`` and ``memory_per_worker``. A combination that
    cannot run here (engine not installed, not enough cores or memory, another dataset in use) is
    skipped before ``build``. ``cluster_samples``, when set, is asv's ``repeat`` for engines whose
    shards train side by side: each of their samples starts a cluster in setup (asv_runner >= 0.3
    re-runs setup and teardown around every sample), so they take fewer.
    """

    params = TOPOLOGY_PARAMS
    param_names = TOPOLOGY_NAMES
    version = "2"
    timeout = GRID["timeout"]
    warmup_time = 0
    workers, cores_per_worker, memory_per_worker = 2, 1, "2g"
    cluster_samples: tuple | None = None

    def parameters(self, args) -> dict:
        fixed = {
            "workers": self.workers,
            "cores_per_worker": self.cores_per_worker,
            "memory_per_worker": self.memory_per_worker,
            "dataset": None,
        }
        return {**fixed, **dict(zip(self.param_names, args))}

    def setup(self, *args):
        p = self.parameters(args)
        skip_if_cannot_run(p["engine"], p["workers"], p["cores_per_worker"], p["memory_per_worker"], p["dataset"])
        if self.cluster_samples and side_by_side(p["engine"]):
            self.repeat, self.min_run_count = self.cluster_samples, 1  # asv reads these after setup
        self.built = self.build(**p)

    def build(self, **params):
        raise TypeError(f"{type(self).__name__} must implement build(**params)")

    def teardown(self, *args):
        built = getattr(self, "built", None)
        if built is not None and hasattr(built, "close"):
            built.close()
