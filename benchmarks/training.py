"""Training time on each engine: cluster start-up, a whole job of E epochs, one steady-state epoch.

Each benchmark starts its cluster in ``setup``, so the timed part is training alone. asv
(asv_runner >= 0.3) re-runs setup and teardown around every sample and ends each benchmark's
process with ``os._exit``, so a cluster is closed in teardown after every sample (nothing
left open would ever be closed); distributed engines take fewer samples, their setup being
the slow part. The local engine holds no processes or ports: its placed trainers are kept for
the whole process, so re-running setup costs nothing.

``version``: asv keeps a benchmark's points on one line only while its version stays the same.
Raise it when what a benchmark measures changes (not for a cosmetic edit); "2" marks the
restructuring around ``TrainingRun`` and the dataset parameter.

``TrainCPU`` and ``EpochCPU`` time the local engine in CPU seconds of the benchmark process
(all of its training work is in that process): unlike wall time, that hardly moves when other
programs load the machine, for graphs of the local engine's compute alone. ``nncompare gate``
does not compare them (CPU time misses sleeps, locks and waits, and covers one engine): it
compares ``benchmarks/gate.py``, every engine in load-corrected seconds.
"""

from __future__ import annotations

import time

from . import common

_LOCAL_RUNS = {}  # (workers, cores, memory) -> a placed TrainingRun, for the local engine only


def _fewer_samples_for_clusters(bench, engine):
    # asv reads these again after setup. Each sample of a cluster engine starts its cluster
    # (Spark: ~10 s here), so take a second sample in a round only when the first was quick;
    # rounds still give every parameter two samples, in two processes.
    if engine != "local":
        bench.repeat = (1, 2, 20.0)
        bench.min_run_count = 1


class ClusterStartup:
    """Bringing the engine up (``Engine.start``): the cost every job pays before its first epoch."""

    params = common.TOPOLOGY_PARAMS
    param_names = common.TOPOLOGY_NAMES
    version = "2"
    timeout = common.GRID["timeout"]
    rounds = 1
    repeat = (1, 3, 30.0)
    min_run_count = 1
    warmup_time = 0  # a warm-up call would start the already started engine again

    def setup(self, engine, workers, cores, memory, dataset):
        common.skip_if_cannot_run(engine, workers, cores, memory, dataset)
        from nncompare.engines import create_engine

        spec = common.job_spec(engine, workers, cores, memory)
        self.engine = create_engine(spec, common.cluster_address(engine))

    def time_start(self, engine, workers, cores, memory, dataset):
        self.engine.start()

    def teardown(self, engine, workers, cores, memory, dataset):
        engine_obj = getattr(self, "engine", None)
        if engine_obj is not None:
            engine_obj.close()


class Train:
    """A whole job as ``nncompare.training.run_job`` runs it: place, E epochs (or fewer, when
    scikit-learn's stopping rule ends it), evaluation; the cluster is already up."""

    params = common.JOB_PARAMS
    param_names = common.JOB_NAMES
    version = "2"
    timeout = common.GRID["timeout"]
    repeat = (2, 5, 30.0)
    warmup_time = 0

    def setup(self, engine, workers, cores, memory, epochs, dataset):
        common.skip_if_cannot_run(engine, workers, cores, memory, dataset)
        _fewer_samples_for_clusters(self, engine)
        self.run = common.training_run(common.job_spec(engine, workers, cores, memory, epochs))

    def time_train(self, engine, workers, cores, memory, epochs, dataset):
        if self.run.placed:
            if engine != "local":
                # a started cluster places its shards once; asv_runner >= 0.3 re-runs setup (a
                # fresh run) before every sample, older ones would reuse this one
                raise RuntimeError("a training run trains once per sample; upgrade asv_runner to 0.3 or newer")
            self.run = common.training_run(self.run.spec)  # the local engine starts at no cost
        self.run.train()

    def teardown(self, engine, workers, cores, memory, epochs, dataset):
        run = getattr(self, "run", None)
        if run is not None:
            run.close()


class Epoch:
    """One epoch once training is under way: the engine's rounds plus the driver's averaging.

    Setup places the shards and trains one epoch first, so the timed epoch starts from
    averaged weights with warm trainers, as every epoch after the first does in a real run.
    """

    params = common.TOPOLOGY_PARAMS
    param_names = common.TOPOLOGY_NAMES
    version = "2"
    timeout = common.GRID["timeout"]
    repeat = (3, 10, 20.0)
    warmup_time = 0

    def setup(self, engine, workers, cores, memory, dataset):
        common.skip_if_cannot_run(engine, workers, cores, memory, dataset)
        _fewer_samples_for_clusters(self, engine)
        key = (workers, cores, memory, dataset)
        if engine == "local" and key in _LOCAL_RUNS:
            self.run = _LOCAL_RUNS[key]
            return
        self.run = common.training_run(common.job_spec(engine, workers, cores, memory))
        self.run.epoch(evaluate=False)  # the first epoch: initialisation, first partial_fit calls
        if engine == "local":
            _LOCAL_RUNS[key] = self.run

    def time_epoch(self, engine, workers, cores, memory, dataset):
        self.run.epoch(evaluate=False)

    def teardown(self, engine, workers, cores, memory, dataset):
        run = getattr(self, "run", None)
        if run is not None and engine != "local":
            run.close()


class TrainCPU(Train):
    """``Train`` on the local engine in CPU seconds of this process (compute alone; not the gate's)."""

    params = [["local"], *common.JOB_PARAMS[1:]]
    timer = time.process_time


class EpochCPU(Epoch):
    """``Epoch`` on the local engine in CPU seconds of this process (compute alone; not the gate's)."""

    params = [["local"], *common.TOPOLOGY_PARAMS[1:]]
    timer = time.process_time
