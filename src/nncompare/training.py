"""One training run: the loop every engine shares, and the only place rounds are counted and timed.

:class:`TrainingRun` drives an engine (transport) through start, placement and epochs of
rounds; it averages, evaluates, applies scikit-learn's stopping rule and books time into
phases that add up to ``wall_s - startup_s`` by construction:

``place``     partitioning the data and placing the shards;
``compute``   the workers' own ``partial_fit`` on each round's critical path
              (the slowest worker's when they run side by side, the sum when one after another);
``transfer``  the rest of each round's wall time but its recovery and its averaging: serialisation,
              the wire both ways, dispatch, and loading and copying weights in the worker;
``average``   merging the shards' weights (:mod:`nncompare.averaging`), on the driver or, where
              the engine's workers merge them, the merging on the round's critical path;
``evaluate``  the driver's;
``other``     recovery from lost workers, loop bookkeeping and anything else.

``run_job``, the asv benchmarks and the tests all train through this class.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable

import numpy as np

from nncompare.clocks import Reading, Span, load_corrected_s, workers_waits_s
from nncompare.data import Dataset, load_dataset
from nncompare.engines import Engine, EngineOptions, RoundPosition, RoundResult, create_engine
from nncompare.interrupts import deferred, raise_if_interrupted, run_then_close
from nncompare.job import JobSpec
from nncompare.model import Evaluator
from nncompare.partition import make_shards
from nncompare.record import PHASES, build_record
from nncompare.trainer import blas_threads, warn_if_batch_clipped

#: Called with each stage's event: ``{"stage", "epoch" (epochs done), "epochs" (the limit), ...}``: ``starting``
#: (``engine``, ``workers``), ``placing`` (``shards``), ``training`` (rounds begin), ``epoch`` after each epoch
#: (``loss``, ``accuracy``, ``epoch_s``, ``stopping``: the stopping rule ended it), ``stopping`` (``engine``).
Progress = Callable[[dict], None]
log = logging.getLogger(__name__)  # engine events, shown by ``nncompare run -v``


class ConvergenceMonitor:
    """scikit-learn's stopping rule on the training loss (``MLPClassifier._update_no_improvement_count``)."""

    def __init__(self, tol: float, n_iter_no_change: int):
        self.tol, self.n_iter_no_change = tol, n_iter_no_change
        self.best_loss = np.inf
        self.no_improvement_count = 0

    def update(self, loss: float) -> bool:
        """Record one epoch's loss; True when training should stop."""
        if loss > self.best_loss - self.tol:
            self.no_improvement_count += 1
        else:
            self.no_improvement_count = 0
        if loss < self.best_loss:
            self.best_loss = loss
        return self.no_improvement_count > self.n_iter_no_change


def rounds_per_epoch(spec: JobSpec, shard_sizes: list[int]) -> int:
    if spec.sync_every is None:
        return 1
    rounds = math.ceil(max(shard_sizes) / (spec.sync_every * spec.model.batch_size))
    return max(1, min(rounds, min(shard_sizes)))


def training_data(spec: JobSpec, dataset: Dataset):
    """Features, labels and (None where the dataset has none) the uint8 pixels of the rows the job trains on.

    Past the data set's size, the images and their deformed copies (:func:`nncompare.augment.grown`,
    kept for the process) and no float32 features: the shards are cut from the pixels.
    """
    x, y, pixels = dataset.x_train, dataset.y_train, dataset.x_train_pixels
    if spec.train_samples is not None and spec.train_samples > len(y):
        from nncompare.augment import grown

        pixels, y = grown(dataset, spec.train_samples)
        return None, y, pixels
    if spec.train_samples is not None:
        x, y = x[: spec.train_samples], y[: spec.train_samples]
        pixels = None if pixels is None else pixels[: spec.train_samples]
    return x, y, pixels


def epoch_loss(updates) -> float:
    """The epoch's training loss: the shards' losses weighted by the samples each saw."""
    ends = [u for u in updates if u.epoch_end]
    return float(np.average([u.loss for u in ends], weights=[max(1, u.n_samples) for u in ends]))


class TrainingRun:
    """One job on one engine: ``start``, ``place``, then ``epoch`` until ``done``; ``record`` at the end.

    Use it as a context manager: leaving the block closes the engine, whatever happened.
    ``train`` does the whole job; the benchmarks call the steps themselves, to time one.
    """

    def __init__(
        self,
        spec: JobSpec,
        dataset: Dataset,
        engine: Engine,
        *,
        cluster: str | None = None,
        progress: Progress | None = None,
    ):
        self.spec, self.dataset, self.engine, self.cluster = spec, dataset, engine, cluster
        self.progress = progress
        self.evaluator = Evaluator(spec.model, dataset.x_test, dataset.y_test, dataset.classes)
        self.phases = dict.fromkeys(PHASES, 0.0)
        self.epoch_s: list[float] = []
        self.epoch_clocks: list[dict] = []
        self.losses: list[float] = []
        self.accuracies: list[float] = []
        self.rounds: list[dict] = []
        self.monitor = ConvergenceMonitor(spec.tol, spec.n_iter_no_change)
        self.weights: np.ndarray | None = None
        self.rounds_per_epoch = 1
        self.train_samples = 0
        self.stopped_early = False
        self.wall_start: float | None = None
        self.startup_s = 0.0
        self.wall_s = 0.0
        self.shutdown_s = 0.0
        self.placed = False
        self.engine_info: dict = {}
        self.worker_peaks: dict[str, int] = {}

    # -- steps -------------------------------------------------------------------------------
    def start(self) -> None:
        """Bring the engine up; its time is ``startup_s`` and the run's wall clock starts here."""
        if self.wall_start is not None:
            return
        self._report("starting", engine=self.engine.name, workers=self.spec.topology.workers)
        self.wall_start = time.perf_counter()
        self.engine.start()
        self.startup_s = time.perf_counter() - self.wall_start
        urls = logging.getLogger("nncompare.dashboard")  # on with -v or --dashboard
        if urls.isEnabledFor(logging.INFO):
            info = self.engine.describe()
            own_log = f"; its log: {info['log_file']}" if info.get("log_file") else ""
            log.info("%s engine started in %.2f s%s", self.engine.name, self.startup_s, own_log)
            for key in (k for k in info if k.endswith("_url") and info[k]):
                urls.info("%s: %s", key.removesuffix("_url").replace("_", " "), info[key])

    def _report(self, stage: str, **facts) -> None:
        if self.progress is not None:
            self.progress({"stage": stage, "epoch": len(self.epoch_s), "epochs": self.spec.epochs, **facts})

    def place(self) -> None:
        """Partition the training data and put each shard on its worker, once."""
        self.start()
        self._report("placing", shards=self.spec.topology.workers)
        start = time.perf_counter()
        x, y, pixels = training_data(self.spec, self.dataset)
        self.train_samples = int(len(y))
        shards = make_shards(x, y, self.spec.topology.workers, self.spec.partition, self.spec.model.seed, pixels=pixels)
        self.rounds_per_epoch = rounds_per_epoch(self.spec, [len(s) for s in shards])
        warn_if_batch_clipped(self.spec.model, [len(s) for s in shards], self.rounds_per_epoch)
        self.engine.place(shards, self.dataset.classes)
        self.placed = True
        self.phases["place"] += time.perf_counter() - start
        log.info(
            "placed %d shards (%s samples) in %.2f s",
            len(shards),
            [len(s) for s in shards],
            time.perf_counter() - start,
        )
        self._report("training")

    @property
    def done(self) -> bool:
        return self.stopped_early or len(self.epoch_s) >= self.spec.epochs

    def epoch(self, evaluate: bool = True) -> bool:
        """Train one epoch (its rounds and their averaging); True when the run should stop."""
        if not self.placed:
            self.place()
        start, first_round = Reading.now(process=True), len(self.rounds)
        for _ in range(self.rounds_per_epoch):
            result = self._round()
        clocks = Span.between(start, Reading.now(process=True))
        self.epoch_s.append(clocks.wall_s)
        # the epoch's driver time (averaging and bookkeeping included), less the driver process's
        # waits for a CPU and each round's critical worker's
        workers_waits = sum(r["workers_waits_s"] for r in self.rounds[first_round:])
        self.epoch_clocks.append(
            {
                "cpu_s": clocks.cpu_s,
                "runqueue_s": clocks.runqueue_s,
                "process_runqueue_s": clocks.process_runqueue_s,
                "active_s": load_corrected_s(clocks, workers_waits, self.engine.concurrent),
            }
        )
        loss = epoch_loss(result.updates)
        self.losses.append(loss)
        if evaluate:
            t = time.perf_counter()
            # one BLAS thread where the workers train beside the driver: an idle OpenBLAS pool spins
            # for about 0.1 s after its last product, on the cores the next round's partial_fit needs
            with blas_threads(1 if self.engine.concurrent else self.spec.topology.cores_per_worker):
                self.accuracies.append(self.evaluator.accuracy(self.weights))
            self.phases["evaluate"] += time.perf_counter() - t
        stop = self.spec.convergence_stop and self.monitor.update(loss)
        self.stopped_early = self.stopped_early or stop
        self._report(
            "epoch",
            loss=loss,
            accuracy=self.accuracies[-1] if evaluate else None,
            epoch_s=clocks.wall_s,
            stopping=bool(stop),
        )
        return self.done

    def _round(self) -> RoundResult:
        position = RoundPosition.of(len(self.rounds) + 1, self.rounds_per_epoch)
        start = Reading.now(process=True)
        result = self.engine.run_round(self.weights, position)
        raise_if_interrupted()  # scikit-learn's partial_fit swallows KeyboardInterrupt; the signal was recorded
        driver = Span.between(start, Reading.now(process=True))
        updates = result.updates
        workers_waits = workers_waits_s(updates)
        compute = [u.compute_s for u in updates]
        critical = max(compute) if self.engine.concurrent else sum(compute)
        transfer = max(0.0, driver.wall_s - result.recovery_s - critical - result.average_s)
        self.phases["compute"] += critical
        self.phases["transfer"] += transfer
        t = time.perf_counter()
        self.weights = result.averaged()
        average = result.average_s + time.perf_counter() - t
        self.phases["average"] += average
        for u in updates:
            self.worker_peaks[u.worker] = max(self.worker_peaks.get(u.worker, 0), u.peak_rss_bytes)
        log.info(
            "round %d (epoch %d): %.3f s, compute %.3f s, transfer %.3f s",
            position.number,
            position.epoch,
            driver.wall_s,
            critical,
            transfer,
        )
        if result.recovered_shards:
            log.info(
                "round %d: recovered shards %s in %.2f s",
                position.number,
                list(result.recovered_shards),
                result.recovery_s,
            )
        self.rounds.append(
            {
                "number": position.number,
                "epoch": position.epoch,
                "index": position.index,
                "wall_s": driver.wall_s,
                "driver_cpu_s": driver.cpu_s,
                "driver_runqueue_s": driver.runqueue_s,
                "driver_process_runqueue_s": driver.process_runqueue_s,
                "workers_waits_s": workers_waits,
                "active_s": load_corrected_s(driver, workers_waits, self.engine.concurrent),
                "compute_s": critical,
                "transfer_s": transfer,
                "average_s": average,
                "worker_compute_s": compute,
                "worker_compute_cpu_s": [u.compute_cpu_s for u in updates],
                "worker_compute_runqueue_s": [u.compute_runqueue_s for u in updates],
                "worker_between_runqueue_s": [u.between_runqueue_s for u in updates],
                "worker_compute_threads": [u.compute_threads for u in updates],
                "recovered_shards": list(result.recovered_shards),
                "recovery_s": result.recovery_s,
                **result.extra,
            }
        )
        return result

    def train(self) -> None:
        """The whole job: start, place, and epochs until the limit or scikit-learn's stopping rule."""
        if not self.placed:
            self.place()
        while not self.done:
            self.epoch()
        self.finish()

    def finish(self) -> None:
        """Stop the wall clock (end of training) and read what the engine says about itself."""
        self.wall_s = time.perf_counter() - self.wall_start
        self.engine_info = self.engine.describe()

    def close(self) -> None:
        with deferred():  # the engine is closed whole: a signal meanwhile is recorded, not raised
            start = time.perf_counter()
            try:
                self._report("stopping", engine=self.engine.name)
            finally:
                try:
                    self.engine.close()
                finally:
                    self.shutdown_s = time.perf_counter() - start

    def __enter__(self) -> TrainingRun:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- the record --------------------------------------------------------------------------
    def record(self, load_s: float = 0.0) -> dict:
        """The result record of a finished run (see the README's table of keys)."""
        booked = sum(v for k, v in self.phases.items() if k != "other")
        phases = {**self.phases, "other": max(0.0, self.wall_s - self.startup_s - booked)}
        idle_s = [float(np.mean([r["wall_s"] - c for c in r["worker_compute_s"]])) for r in self.rounds]
        return build_record(self, phases=phases, idle_s=idle_s, load_s=load_s)


def run_job(
    spec: JobSpec,
    *,
    data_dir=None,
    cluster: str | None = None,
    progress: Progress | None = None,
    dataset: Dataset | None = None,
    options: EngineOptions | None = None,
) -> dict:
    """Train ``spec`` on its engine and return the result record."""
    load_start = time.perf_counter()
    if dataset is None:
        dataset = load_dataset(spec.dataset, data_dir=data_dir)
    training_data(spec, dataset)  # a grown training set is made here, in load_s, not in placement
    load_s = time.perf_counter() - load_start
    engine = create_engine(spec, cluster, options)
    run = TrainingRun(spec, dataset, engine, cluster=cluster, progress=progress)
    run_then_close(run.train, run.close)  # the engine is closed whatever the moment of a signal
    return run.record(load_s=load_s)
