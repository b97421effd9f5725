"""How costs grow with the cluster and the data: start-up, a round's transfer and averaging, data size.

The other benchmarks run 2 workers; a change that made the exchange grow with W squared would
pass them. These run W = 2, 4, 8 and 16 one-core workers of every engine that trains its shards
side by side, on small shards (``SAMPLES_PER_WORKER`` each, so compute is small), and two model
sizes, so that the graphs show the growth. On a machine with fewer cores than W the workers are
**oversubscribed** (they share the cores): ``ScalingRounds.track_workers_per_core`` records by
how much, so a graph can be read against it. Every job runs in a fresh process
(``common.run_in_child``), one ``setup_cache`` per class, so one commit's figures come from one
sitting.

``ScalingGrowth.time_transfer_growth`` is the one ``nncompare gate`` can judge: a timed
benchmark whose clock is the transfer per round at ``GROWTH_WORKERS[1]`` workers over that at
``GROWTH_WORKERS[0]``, measured on two clusters side by side in each sample (asv calls it seconds;
it is a ratio, like the gate's floor epochs). A tree exchange keeps it near 2; an exchange
through the driver near W; one that grew with W squared would double it. Add it to the gate's
default selection with ``--bench '^(gate|scaling\\.ScalingGrowth)\\.'`` (docs/scaling.md).

``DataSize.track_epoch_s`` is the data-size axis: the steady epoch at 1 and 2 workers as the
training set grows past the data set's 60,000 images (``nncompare.augment``).
"""

from __future__ import annotations

import os
import statistics

from . import common

WORKERS = [2, 4, 8, 16]
HIDDEN = [100, 1000]
SAMPLES_PER_WORKER, EPOCHS = 800, 6
GROWTH_WORKERS, GROWTH_ROUNDS = (2, 8), 6
DATA_SIZES, DATA_WORKERS, DATA_EPOCHS = [15000, 60000, 240000], [1, 2], 3
ENGINES = [e for e in common.ENGINES if common.side_by_side(e)]


def unavailable(engine: str) -> str | None:
    """Why ``engine`` cannot run here (not installed, left out, another dataset): not the cores, on purpose."""
    if engine not in common.selected_engines():
        return f"{common.ENGINES_ENV} leaves out the {engine} engine"
    from nncompare.engines import engine_class
    from nncompare.errors import UsageError

    try:
        engine_class(engine)
    except UsageError as exc:
        return str(exc)
    return common.predates_benchmarks()


def _job(engine: str, workers: int, hidden: int, samples: int, epochs: int) -> dict:
    extra = ("--train-samples", str(samples), "--hidden", str(hidden), "--no-convergence-stop")
    return common.run_in_child(engine, workers, 1, "2g", epochs, 1800, extra=extra)


def _steady(record: dict, key: str) -> float:
    rounds = record["rounds"][1:] or record["rounds"]
    return statistics.median(r[key] for r in rounds)


class ScalingRounds:
    """Start-up, transfer, averaging and the whole round per round, at W workers (medians after the first)."""

    params = [ENGINES, WORKERS, HIDDEN]
    param_names = ["engine", "workers", "hidden"]
    timeout = 7200

    def setup_cache(self):
        out = {}
        for engine in ENGINES:
            if unavailable(engine):
                continue
            for w in WORKERS:
                for h in HIDDEN:
                    record = _job(engine, w, h, SAMPLES_PER_WORKER * w, EPOCHS)
                    if "error" not in record:
                        out[f"{engine} {w} {h}"] = {
                            "startup_s": record["startup_s"],
                            "transfer_s": _steady(record, "transfer_s"),
                            "average_s": _steady(record, "average_s"),
                            "round_s": _steady(record, "wall_s"),
                        }
        return out

    def setup(self, cache, engine, workers, hidden):
        reason = unavailable(engine)
        if reason:
            raise NotImplementedError(reason)
        if f"{engine} {workers} {hidden}" not in cache:
            raise RuntimeError(f"the {engine} job with {workers} workers and {hidden} hidden units failed")
        self.figures = cache[f"{engine} {workers} {hidden}"]

    def track_startup_s(self, cache, engine, workers, hidden):
        return self.figures["startup_s"]

    def track_transfer_ms(self, cache, engine, workers, hidden):
        return 1e3 * self.figures["transfer_s"]

    def track_average_ms(self, cache, engine, workers, hidden):
        return 1e3 * self.figures["average_s"]

    def track_round_ms(self, cache, engine, workers, hidden):
        return 1e3 * self.figures["round_s"]

    def track_workers_per_core(self, cache, engine, workers, hidden):
        """Above 1, the workers were oversubscribed: they shared this machine's cores."""
        return workers / (os.cpu_count() or 1)

    track_startup_s.unit = "seconds"
    track_transfer_ms.unit = track_average_ms.unit = track_round_ms.unit = "ms"
    track_workers_per_core.unit = "ratio"


_GROWTH: list[float] = []  # each sample's transfer at the larger W over the smaller


def growth_clock() -> float:
    return sum(_GROWTH)


class _Pair:
    def __init__(self, runs):
        self.runs = runs

    def close(self) -> None:
        for run in self.runs:
            run.close()


class ScalingGrowth(common.EngineBenchmark):
    """Transfer per round at 8 workers over 2, on two started clusters side by side; the gate can judge it."""

    params = [ENGINES, HIDDEN]
    param_names = ["engine", "hidden"]
    timer = staticmethod(growth_clock)
    rounds = 4
    repeat = 1
    number = 1
    min_run_count = 1

    def setup(self, engine, hidden):
        reason = unavailable(engine) or (
            None if common.dataset_name() != "digits" else "needs an image data set: 784 inputs"
        )
        if reason:
            raise NotImplementedError(reason)
        from nncompare.job import ModelSpec

        runs = []
        try:
            for w in GROWTH_WORKERS:
                spec = common.job_spec(engine, w, 1, "2g", GROWTH_ROUNDS + 1).with_(
                    train_samples=SAMPLES_PER_WORKER * w, model=ModelSpec(hidden_layer_sizes=(hidden,))
                )
                run = common.training_run(spec)
                runs.append(run)
                run.epoch(evaluate=False)  # placement and the first partial_fit
        except BaseException:
            _Pair(runs).close()
            raise
        self.built = _Pair(runs)

    def build(self, **params):  # setup above starts both clusters itself
        raise NotImplementedError

    def time_transfer_growth(self, engine, hidden):
        transfers = []
        for run in self.built.runs:
            first = len(run.rounds)
            for _ in range(GROWTH_ROUNDS):
                run.epoch(evaluate=False)
            transfers.append(statistics.median(r["transfer_s"] for r in run.rounds[first:]))
        _GROWTH.append(transfers[1] / transfers[0])


class DataSize:
    """The steady epoch as the training set grows past the data set (``nncompare.augment``), at 1 and 2 workers."""

    params = [ENGINES, DATA_WORKERS, DATA_SIZES]
    param_names = ["engine", "workers", "train_samples"]
    timeout = 7200

    def setup_cache(self):
        out = {}
        for engine in ENGINES:
            if unavailable(engine) or common.dataset_name() == "digits":
                continue
            for w in DATA_WORKERS:
                for n in DATA_SIZES:
                    record = _job(engine, w, 100, n, DATA_EPOCHS)
                    if "error" not in record:
                        out[f"{engine} {w} {n}"] = _steady_epoch(record)
        return out

    def setup(self, cache, engine, workers, train_samples):
        reason = unavailable(engine) or ("digits cannot grow" if common.dataset_name() == "digits" else None)
        if reason:
            raise NotImplementedError(reason)
        if f"{engine} {workers} {train_samples}" not in cache:
            raise RuntimeError(f"the {engine} job with {workers} workers on {train_samples} samples failed")

    def track_epoch_s(self, cache, engine, workers, train_samples):
        return cache[f"{engine} {workers} {train_samples}"]

    track_epoch_s.unit = "seconds"


def _steady_epoch(record: dict) -> float:
    from nncompare.steady import steady_epoch_s

    return steady_epoch_s(record)
