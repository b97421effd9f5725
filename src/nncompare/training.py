"""The training loop every engine shares: rounds, averaging, evaluation, stopping, timing.

Time is booked into phases that add up to ``wall_s - startup_s`` by construction:
``place`` (partitioning and placing shards), ``compute`` (the workers' own partial_fit
time on each round's critical path), ``transfer`` (weights' serialisation and transfer),
``average``, ``evaluate`` and ``other`` (scheduling, idle waiting and loop bookkeeping).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import numpy as np

from nncompare.averaging import average_weights
from nncompare.data import Dataset, load_dataset
from nncompare.engines import create_engine
from nncompare.job import JobSpec
from nncompare.model import Evaluator
from nncompare.partition import make_shards
from nncompare.record import PHASES, commit, machine, versions
from nncompare.trainer import peak_rss_bytes, worker_id

Progress = Callable[[dict], None]


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
    x, y = dataset.x_train, dataset.y_train
    if spec.train_samples is not None:
        x, y = x[: spec.train_samples], y[: spec.train_samples]
    return x, y


def run_job(spec: JobSpec, *, data_dir=None, cluster: str | None = None, progress: Progress | None = None,
            dataset: Dataset | None = None, engine_factory=create_engine) -> dict:
    """Train ``spec`` on its engine and return the result record."""
    load_start = time.perf_counter()
    if dataset is None:
        dataset = load_dataset(spec.dataset, data_dir=data_dir)
    x_train, y_train = training_data(spec, dataset)
    evaluator = Evaluator(spec.model, dataset.x_test, dataset.y_test, dataset.classes)
    load_s = time.perf_counter() - load_start

    phases = dict.fromkeys(PHASES, 0.0)
    epoch_s, losses, accuracies, idle_s, rounds = [], [], [], [], []
    monitor = ConvergenceMonitor(spec.tol, spec.n_iter_no_change)
    stopped_early = False
    worker_peaks: dict[str, int] = {}

    wall_start = time.perf_counter()
    engine = engine_factory(spec, cluster)
    try:
        engine.start()
        startup_s = time.perf_counter() - wall_start

        t = time.perf_counter()
        shards = make_shards(x_train, y_train, spec.topology.workers, spec.partition, spec.model.seed)
        n_rounds = rounds_per_epoch(spec, [len(s) for s in shards])
        engine.place(shards, dataset.classes, n_rounds)
        del shards
        phases["place"] = time.perf_counter() - t

        weights = None
        for epoch in range(1, spec.epochs + 1):
            epoch_start = time.perf_counter()
            for _ in range(n_rounds):
                t = time.perf_counter()
                result = engine.run_round(weights)
                round_wall = time.perf_counter() - t
                phases["compute"] += result.compute_s
                phases["transfer"] += result.transfer_s
                idle_s.append(float(np.mean([round_wall - u.compute_s for u in result.updates])))
                rounds.append({"wall_s": round_wall, "compute_s": result.compute_s, "transfer_s": result.transfer_s,
                               "worker_compute_s": [u.compute_s for u in result.updates], **result.extra})
                t = time.perf_counter()
                weights = average_weights([u.weights for u in result.updates], [u.n_samples for u in result.updates])
                phases["average"] += time.perf_counter() - t
                for u in result.updates:
                    worker_peaks[u.worker] = max(worker_peaks.get(u.worker, 0), u.peak_rss_bytes)
            epoch_s.append(time.perf_counter() - epoch_start)
            ends = [u for u in result.updates if u.epoch_end]
            loss = float(np.average([u.loss for u in ends], weights=[len_or_one(u) for u in ends]))
            losses.append(loss)

            t = time.perf_counter()
            accuracies.append(evaluator.accuracy(weights))
            phases["evaluate"] += time.perf_counter() - t

            stop = spec.convergence_stop and monitor.update(loss)
            if progress is not None:
                progress({"epoch": epoch, "epochs": spec.epochs, "loss": loss, "accuracy": accuracies[-1],
                          "epoch_s": epoch_s[-1]})
            if stop:
                stopped_early = True
                break
        wall_s = time.perf_counter() - wall_start
        engine_info = engine.describe()
    finally:
        close_start = time.perf_counter()
        engine.close()
        shutdown_s = time.perf_counter() - close_start

    booked = sum(v for k, v in phases.items() if k != "other")
    phases["other"] = max(0.0, wall_s - startup_s - booked)
    # the local engine trains in this process: its "worker" peak is the driver's, counted once
    workers = {w: b for w, b in worker_peaks.items() if w != worker_id()}
    topo = spec.topology
    return {
        "engine": spec.engine,
        "dataset": spec.dataset,
        "workers": topo.workers,
        "cores_per_worker": topo.cores_per_worker,
        "memory_per_worker_bytes": topo.memory_per_worker_bytes,
        "epochs": spec.epochs,
        "epochs_run": len(epoch_s),
        "wall_s": wall_s,
        "startup_s": startup_s,
        "epoch_s": epoch_s,
        "phases_s": phases,
        "test_accuracy": accuracies[-1],
        "peak_rss_bytes": {"driver": peak_rss_bytes(), "workers": sum(workers.values()), "per_worker": workers},
        "versions": versions(),
        "machine": machine(),
        "commit": commit(),
        "spec": spec.to_dict(),
        "spec_key": spec.key(),
        "cluster": cluster,
        "engine_info": engine_info,
        "stopped_early": stopped_early,
        "accuracy_curve": accuracies,
        "loss_curve": losses,
        "idle_s": idle_s,
        "rounds": rounds,
        "rounds_per_epoch": n_rounds,
        "load_s": load_s,
        "shutdown_s": shutdown_s,
        "train_samples": int(len(y_train)),
        "test_samples": int(len(dataset.y_test)),
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def len_or_one(update) -> int:
    return max(1, update.n_samples)
