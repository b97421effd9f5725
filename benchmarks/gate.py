"""What ``nncompare gate`` compares: steady epochs over this machine's floor, and test error.

``SteadyEpochs.time_epochs`` runs ``EPOCHS`` steady epochs on each engine (quick grid, 2 workers
x 1 core) on one started cluster, so a sample pays one cluster start, not one per epoch. Its
clock is not the wall clock. Each epoch's load-corrected seconds (``clocks.load_corrected_s``:
wall time less the run-queue delay of the driver and of each round's critical worker) are
divided by a floor pass run right after it (``reference.FloorReference``: plain 1-thread
``partial_fit`` in as many processes as the engine trains side by side); the sample is
``EPOCHS`` times the **interquartile mean** of those ratios (the mean of the middle half), the
epochs' cost in **floor epochs**. asv labels it seconds; it is a ratio. A busy machine or a slow
spell of the host slows the floor as much as the epoch, while a sleep, a lock, a slow transfer or
more CPU in the commit slows only the epoch. The middle half, because an epoch or a floor pass
that another program hit, or whose load correction took out more than its waits (it sums the
waits of threads that waited at once, down to 0 s under heavy load), moves a sum of ratios and
not the middle half (docs/evidence.md, "Calibration"). One sample per round; asv interleaves the
rounds of the two commits (base, head, head, base, ...), and the gate pairs them round by round.

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
EPOCHS = 16  # timed per sample, after one warm-up epoch: cheap next to the sample's start-up
# Samples per commit in the gate's first batch, one per round; the gate adds rounds where its
# verdict is inconclusive (nncompare.gate.sequential). Each sample pays a process, a cluster start
# and a placement epoch (docs/evidence.md has the gate's durations and error rates).
ROUNDS = 4

_RUN = None  # the sample's TrainingRun
_FLOOR = None  # its FloorReference
_IN_FLOORS: list[float] = []  # each sample's floor epochs: EPOCHS x the interquartile mean of its ratios
_RATIOS: list[float] = []  # the last sample's per-epoch ratios, in order


def floor_epochs_clock() -> float:
    """Floor epochs trained so far by this process's run (asv reads it around a sample)."""
    return sum(_IN_FLOORS)


def interquartile_mean(values: list[float]) -> float:
    """The mean of the middle half: a quarter (rounded down) left out at each end."""
    ordered = sorted(values)
    cut = len(ordered) // 4
    middle = ordered[cut : len(ordered) - cut]
    return sum(middle) / len(middle)


class _Sample:
    """A sample's started run and its floor, closed together in teardown."""

    def __init__(self, run, floor):
        self.run, self.floor = run, floor

    def close(self) -> None:
        try:
            self.run.close()
        finally:
            self.floor.close()


class SteadyEpochs(common.EngineBenchmark):
    """``EPOCHS`` steady epochs (rounds + averaging) after a warm-up epoch, in floor epochs."""

    version = "3"  # 16 epochs a sample, their interquartile mean (2: 8 epochs, their sum)
    params = [ENGINES, [WORKERS], [CORES], [MEMORY]]
    param_names = common.TOPOLOGY_NAMES[:4]
    timer = staticmethod(floor_epochs_clock)
    rounds = ROUNDS
    repeat = 1
    number = 1
    min_run_count = 1

    def build(self, engine, workers, cores_per_worker, memory_per_worker, dataset):
        global _RUN, _FLOOR
        data = common.dataset()
        # as many floor processes as the engine trains shards side by side; started first: they
        # import scikit-learn while the engine starts
        processes = workers if common.side_by_side(engine) else 1
        _FLOOR = FloorReference(
            data.x_train, data.y_train, data.classes, processes, shard_rows=len(data.x_train) // workers
        )
        try:
            _RUN = common.training_run(
                common.job_spec(engine, workers, cores_per_worker, memory_per_worker, EPOCHS + 1)
            )
        except BaseException:
            _FLOOR.close()
            raise
        sample = _Sample(_RUN, _FLOOR)
        _RUN.epoch(evaluate=False)  # placement, initialisation, the first partial_fit calls
        _FLOOR.wait_ready()
        return sample

    def time_epochs(self, engine, workers, cores, memory):
        _RATIOS.clear()
        for _ in range(EPOCHS):
            _RUN.epoch(evaluate=False)
            _RATIOS.append(_RUN.epoch_clocks[-1]["active_s"] / _FLOOR.pass_s())
        _IN_FLOORS.append(EPOCHS * interquartile_mean(_RATIOS))


class GateAccuracy(common.EngineBenchmark):
    """Test error after the quick grid's job; the gate fails a rise of more than 1 point.

    Each engine's job runs in its parameter's own setup (a fresh child process), not in a
    ``setup_cache`` shared by the class: that ran every engine's job whatever ``--bench``
    selected, so a one-engine gate (CI's) paid for the other two as well.
    """

    params = [ENGINES]
    param_names = ["engine"]
    rounds = 1
    workers, cores_per_worker, memory_per_worker = WORKERS, CORES, MEMORY

    def build(self, engine, workers, cores_per_worker, memory_per_worker, dataset):
        epochs = common.GRID["epochs"][0]
        record = common.run_in_child(engine, workers, cores_per_worker, memory_per_worker, epochs, self.timeout)
        if "error" in record:
            raise RuntimeError(record["error"])
        return 1.0 - record["test_accuracy"]

    def track_test_error(self, engine):
        return self.built

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


class GateParallelism(common.EngineBenchmark):
    """Cores that BLAS left idle in a worker given ``PARALLEL_CORES``; the gate fails any rise.

    Why a count, not a time: holding BLAS to one thread of two costs this quick-grid model
    (784-100-10, batches of 200) only a few per cent of an epoch on a 2-core machine
    (docs/evidence.md), well inside the timed verdict's noise, yet on the seed paper's 4-6
    core executors it is the whole point of ``--cores``. The threads that computed during each
    ``partial_fit`` are counted by the worker itself, so the count holds on a busy machine.
    """

    params = [ENGINES]
    param_names = ["engine"]
    rounds = 1
    workers, cores_per_worker, memory_per_worker = 1, PARALLEL_CORES, MEMORY

    def build(self, engine, workers, cores_per_worker, memory_per_worker, dataset):
        extra = ("--train-samples", str(PARALLEL_SAMPLES))
        record = common.run_in_child(
            engine, workers, cores_per_worker, memory_per_worker, PARALLEL_EPOCHS, self.timeout, extra=extra
        )
        if "error" in record:
            raise RuntimeError(record["error"])
        return unused_cores(record, cores_per_worker)

    def track_unused_cores(self, engine):
        return self.built

    track_unused_cores.unit = "cores"
