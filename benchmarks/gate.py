"""What ``nncompare gate`` compares: steady epochs over this machine's floor, and test error.

``SteadyEpochs.time_epochs`` runs ``EPOCHS`` steady epochs on each engine (quick grid, 2 workers
x 1 core) on one started cluster, so a sample pays one cluster start, not one per epoch. Its
clock is not the wall clock. Each epoch's load-corrected seconds (``training.load_corrected_s``:
wall time less the run-queue delay of the driver and of each round's critical worker) are
divided by a floor pass run right after it (``reference.FloorReference``: plain 1-thread
``partial_fit`` in as many processes as the engine trains side by side), so a sample is the
epochs' cost in **floor epochs**. asv labels it seconds; it is a ratio. A busy machine or a slow
spell of the host slows the floor as much as the epoch, while a sleep, a lock, a slow transfer or
more CPU in the commit slows only the epoch. One sample per round; asv interleaves the rounds
of the two commits (base, head, head, base, ...), and the gate pairs them round by round.

``GateAccuracy.track_test_error`` is the quick grid's 5-epoch job of the engine, once per commit:
an error rate, so that bigger is worse, as asv assumes.

``GateParallelism.track_unused_cores`` counts the cores a worker was given that its
``partial_fit`` left idle: lost parallelism, which a timed verdict cannot be trusted to see here.
"""

from __future__ import annotations

from . import common
from .reference import FloorReference

ENGINES = common.ENGINES
WORKERS, CORES, MEMORY = 2, 1, "2g"
EPOCHS = 8  # timed per sample, after one warm-up epoch: cheap next to the sample's start-up
# Samples per commit, one per round. Four pairs: with the median of an even count the load must
# land on the head's samples and not the base's in three pairs of four to raise a false alarm, and
# a slowdown is missed only if the load favours it in three of four (docs/benchmarks.md). Each
# sample pays a process, a cluster start and a placement epoch: the default gate took 8 min with
# 3 rounds of 5 epochs on this machine when quiet (docs/benchmarks.md has the figures for 4 x 8).
ROUNDS = 4

_RUN = None  # the sample's TrainingRun
_FLOOR = None  # its FloorReference
_IN_FLOORS: list[float] = []  # each timed epoch's load-corrected seconds over the floor pass after it


def floor_epochs_clock() -> float:
    """Floor epochs trained so far by this process's run (asv reads it around a sample)."""
    return sum(_IN_FLOORS)


class SteadyEpochs:
    """``EPOCHS`` steady epochs (rounds + averaging) after a warm-up epoch, in floor epochs."""

    params = [ENGINES, [WORKERS], [CORES], [MEMORY]]
    param_names = common.TOPOLOGY_NAMES
    timeout = common.GRID["timeout"]
    timer = staticmethod(floor_epochs_clock)
    rounds = ROUNDS
    repeat = 1
    number = 1
    min_run_count = 1
    warmup_time = 0

    def setup(self, engine, workers, cores, memory):
        global _RUN, _FLOOR
        common.skip_if_cannot_run(engine, workers, cores, memory, None)  # the gate pairs commits within one run
        from nncompare.engines import engine_class

        data = common.dataset()
        # as many floor processes as the engine trains shards side by side (``Engine.concurrent``);
        # started first: they import scikit-learn while the engine starts
        side_by_side = workers if engine_class(engine).concurrent else 1
        _FLOOR = FloorReference(
            data.x_train, data.y_train, data.classes, side_by_side, shard_rows=len(data.x_train) // workers
        )
        _RUN = common.training_run(common.job_spec(engine, workers, cores, memory, epochs=EPOCHS + 1))
        _RUN.epoch(evaluate=False)  # placement, initialisation, the first partial_fit calls
        _FLOOR.wait_ready()

    def time_epochs(self, engine, workers, cores, memory):
        for _ in range(EPOCHS):
            _RUN.epoch(evaluate=False)
            _IN_FLOORS.append(_RUN.epoch_clocks[-1]["active_s"] / _FLOOR.pass_s())

    def teardown(self, engine, workers, cores, memory):
        if _RUN is not None:
            _RUN.close()
        if _FLOOR is not None:
            _FLOOR.close()


class GateAccuracy:
    """Test error after the quick grid's job; the gate fails a rise of more than 1 point.

    Each engine's job runs in its parameter's own setup (a fresh child process), not in a
    ``setup_cache`` shared by the class: that ran every engine's job whatever ``--bench``
    selected, so a one-engine gate (CI's) paid for the other two as well.
    """

    params = [ENGINES]
    param_names = ["engine"]
    timeout = common.GRID["timeout"]
    rounds = 1

    def setup(self, engine):
        common.skip_if_cannot_run(engine, WORKERS, CORES, MEMORY, None)
        record = common.run_in_child(engine, WORKERS, CORES, MEMORY, common.GRID["epochs"][0], common.GRID["timeout"])
        if "error" in record:
            raise RuntimeError(record["error"])
        self.error = 1.0 - record["test_accuracy"]

    def track_test_error(self, engine):
        return self.error

    track_test_error.unit = "fraction"


PARALLEL_CORES = 2  # one worker with two cores: the smallest case where BLAS can leave a core idle
PARALLEL_EPOCHS, PARALLEL_SAMPLES = 3, 30000  # rounds of ~0.35 s: see clocks.BUSY_SHARE


def unused_cores(record: dict, cores: int) -> int:
    """Cores given to a worker that its ``partial_fit`` did not use, at worst over the steady rounds.

    A round's count of computing threads is the worker's own reading
    (``ShardUpdate.compute_threads``); the first round is left out, as it includes the
    model's initialisation.
    """
    steady = record["rounds"][1:] or record["rounds"]
    fewest = min(min(r["worker_compute_threads"]) for r in steady)
    return max(0, cores - fewest)


class GateParallelism:
    """Cores that BLAS left idle in a worker given ``PARALLEL_CORES``; the gate fails any rise.

    Why a count, not a time: holding BLAS to one thread of two costs this quick-grid model
    (784-100-10, batches of 200) only a few per cent of an epoch on a 2-core machine
    (docs/benchmarks.md), well inside the timed verdict's noise, yet on the seed paper's 4-6
    core executors it is the whole point of ``--cores``. The threads that computed during each
    ``partial_fit`` are counted by the worker itself, so the count holds on a busy machine.
    """

    params = [ENGINES]
    param_names = ["engine"]
    timeout = common.GRID["timeout"]
    rounds = 1

    def setup(self, engine):
        common.skip_if_cannot_run(engine, 1, PARALLEL_CORES, MEMORY, None)
        record = common.run_in_child(
            engine,
            1,
            PARALLEL_CORES,
            MEMORY,
            PARALLEL_EPOCHS,
            common.GRID["timeout"],
            extra=("--train-samples", str(PARALLEL_SAMPLES)),
        )
        if "error" in record:
            raise RuntimeError(record["error"])
        self.unused = unused_cores(record, PARALLEL_CORES)

    def track_unused_cores(self, engine):
        return self.unused

    track_unused_cores.unit = "cores"
