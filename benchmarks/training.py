"""Training time on each engine: cluster start-up, a whole job of E epochs, one steady-state epoch.

Each benchmark starts its cluster in ``setup``, so the timed part is training alone. asv
(asv_runner >= 0.3) re-runs setup and teardown around every sample and ends each benchmark's
process with ``os._exit``, so a cluster is closed in teardown after every sample (nothing
left open would ever be closed); engines whose shards train side by side take fewer samples,
their setup being the slow part. An engine that trains in this process holds no processes or
ports: its placed trainers are kept for the whole process, so re-running setup costs nothing.

``version``: asv keeps a benchmark's points on one line only while its version stays the same.
Raise it when what a benchmark measures changes (not for a cosmetic edit); "2" marks the
restructuring around ``TrainingRun`` and the dataset parameter.

``TrainCPU`` and ``EpochCPU`` time the local engine in CPU seconds of the benchmark process
(all of its training work is in that process): unlike wall time, that hardly moves when other
programs load the machine, for graphs of the local engine's compute alone. ``nncompare gate``
does not compare them (CPU time misses sleeps, locks and waits, and covers one engine): it
compares ``benchmarks/gate.py``, every engine in floor epochs.
"""

from __future__ import annotations

import time

from . import common

_IN_PROCESS_RUNS = {}  # (engine, workers, cores, memory, dataset) -> a placed TrainingRun of an in-process engine


class ClusterStartup(common.EngineBenchmark):
    """Bringing the engine up (``Engine.start``): the cost every job pays before its first epoch."""

    rounds = 1
    repeat = (1, 3, 30.0)
    min_run_count = 1

    def build(self, engine, workers, cores_per_worker, memory_per_worker, dataset):
        from nncompare.engines import create_engine

        spec = common.job_spec(engine, workers, cores_per_worker, memory_per_worker)
        return create_engine(spec, common.cluster_address(engine))

    def time_start(self, engine, workers, cores, memory, dataset):
        self.built.start()


class Train(common.EngineBenchmark):
    """A whole job as ``nncompare.training.run_job`` runs it: place, E epochs (or fewer, when
    scikit-learn's stopping rule ends it), evaluation; the cluster is already up."""

    params = common.JOB_PARAMS
    param_names = common.JOB_NAMES
    repeat = (2, 5, 30.0)
    cluster_samples = (1, 2, 20.0)

    def build(self, engine, workers, cores_per_worker, memory_per_worker, epochs, dataset):
        return common.training_run(common.job_spec(engine, workers, cores_per_worker, memory_per_worker, epochs))

    def time_train(self, engine, workers, cores, memory, epochs, dataset):
        if self.built.placed:
            if common.side_by_side(engine):
                # a started cluster places its shards once; asv_runner >= 0.3 re-runs setup (a
                # fresh run) before every sample, older ones would reuse this one
                raise RuntimeError("a training run trains once per sample; upgrade asv_runner to 0.3 or newer")
            self.built = common.training_run(self.built.spec)  # an in-process engine starts at no cost
        self.built.train()


class Epoch(common.EngineBenchmark):
    """One epoch once training is under way: the engine's rounds plus the driver's averaging.

    Setup places the shards and trains one epoch first, so the timed epoch starts from
    averaged weights with warm trainers, as every epoch after the first does in a real run.
    """

    repeat = (3, 10, 20.0)
    cluster_samples = (1, 2, 20.0)

    def build(self, engine, workers, cores_per_worker, memory_per_worker, dataset):
        key = (engine, workers, cores_per_worker, memory_per_worker, dataset)
        if key in _IN_PROCESS_RUNS:
            return _IN_PROCESS_RUNS[key]
        run = common.training_run(common.job_spec(engine, workers, cores_per_worker, memory_per_worker))
        run.epoch(evaluate=False)  # the first epoch: initialisation, first partial_fit calls
        if not common.side_by_side(engine):
            _IN_PROCESS_RUNS[key] = run  # closing it releases nothing, so it serves every sample
        return run

    def time_epoch(self, engine, workers, cores, memory, dataset):
        self.built.epoch(evaluate=False)


class TrainCPU(Train):
    """``Train`` on the in-process engines in CPU seconds of this process (compute alone; not the gate's)."""

    params = [common.IN_PROCESS_ENGINES, *common.JOB_PARAMS[1:]]
    timer = time.process_time


class EpochCPU(Epoch):
    """``Epoch`` on the in-process engines in CPU seconds of this process (compute alone; not the gate's)."""

    params = [common.IN_PROCESS_ENGINES, *common.TOPOLOGY_PARAMS[1:]]
    timer = time.process_time
