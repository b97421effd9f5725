"""Training time on each engine: cluster start-up, a whole job of E epochs, one steady-state epoch.

Each benchmark starts its cluster in ``setup``; asv (asv_runner >= 0.3) re-runs setup and
teardown around every sample, so samples never share a half-used cluster, and the timed part
is training alone. Distributed engines take fewer samples (their setup is the slow part).
"""

from __future__ import annotations

from . import common


def _fewer_samples_for_clusters(bench, engine):
    # asv reads repeat again after setup; (min, max, seconds) samples per process
    if engine != "local":
        bench.repeat = (1, 2, 60.0)


class ClusterStartup:
    """Bringing the engine up (``Engine.start``): the cost every job pays before its first epoch."""

    params = common.TOPOLOGY_PARAMS
    param_names = common.TOPOLOGY_NAMES
    timeout = common.GRID["timeout"]
    rounds = 1
    repeat = (1, 3, 60.0)
    min_run_count = 1
    warmup_time = 0  # a warm-up call would start the already started engine again

    def setup(self, engine, workers, cores, memory):
        common.skip_if_cannot_run(engine, workers, cores, memory)
        from nncompare.engines import create_engine

        spec = common.job_spec(engine, workers, cores, memory)
        self.engine = create_engine(spec, common.cluster_address(engine))

    def time_start(self, engine, workers, cores, memory):
        self.engine.start()

    def teardown(self, engine, workers, cores, memory):
        engine_obj = getattr(self, "engine", None)
        if engine_obj is not None:
            engine_obj.close()


class Train:
    """A whole job as ``nncompare.training.run_job`` runs it: place, E epochs (or fewer, when
    scikit-learn's stopping rule ends it), evaluation; the cluster is already up."""

    params = common.JOB_PARAMS
    param_names = common.JOB_NAMES
    timeout = common.GRID["timeout"]
    repeat = (2, 5, 30.0)
    warmup_time = 0

    def setup(self, engine, workers, cores, memory, epochs):
        common.skip_if_cannot_run(engine, workers, cores, memory)
        _fewer_samples_for_clusters(self, engine)
        self.data = common.dataset()
        self.spec = common.job_spec(engine, workers, cores, memory, epochs)
        self.engine = common.started_engine(self.spec)
        self.factory = common.reuse(self.engine)

    def time_train(self, engine, workers, cores, memory, epochs):
        from nncompare.training import run_job

        run_job(self.spec, dataset=self.data, engine_factory=self.factory)

    def teardown(self, engine, workers, cores, memory, epochs):
        engine_obj = getattr(self, "engine", None)
        if engine_obj is not None:
            engine_obj.close()


class Epoch:
    """One epoch once training is under way: the engine's rounds plus the driver's averaging.

    Setup places the shards and trains one epoch first, so the timed epoch starts from
    averaged weights with warm trainers, as every epoch after the first does in a real run.
    """

    params = common.TOPOLOGY_PARAMS
    param_names = common.TOPOLOGY_NAMES
    timeout = common.GRID["timeout"]
    repeat = (3, 10, 20.0)
    warmup_time = 0

    def setup(self, engine, workers, cores, memory):
        common.skip_if_cannot_run(engine, workers, cores, memory)
        _fewer_samples_for_clusters(self, engine)
        from nncompare.partition import make_shards
        from nncompare.training import rounds_per_epoch, training_data

        data = common.dataset()
        spec = common.job_spec(engine, workers, cores, memory)
        self.engine = common.started_engine(spec)
        x, y = training_data(spec, data)
        shards = make_shards(x, y, workers, spec.partition, spec.model.seed)
        self.n_rounds = rounds_per_epoch(spec, [len(s) for s in shards])
        self.engine.place(shards, data.classes, self.n_rounds)
        self.weights = None
        self._epoch()

    def _epoch(self):
        from nncompare.averaging import average_weights

        for _ in range(self.n_rounds):
            updates = self.engine.run_round(self.weights).updates
            self.weights = average_weights([u.weights for u in updates], [u.n_samples for u in updates])

    def time_epoch(self, engine, workers, cores, memory):
        self._epoch()

    def teardown(self, engine, workers, cores, memory):
        engine_obj = getattr(self, "engine", None)
        if engine_obj is not None:
            engine_obj.close()
