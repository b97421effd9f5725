"""The local engine: every shard's trainer in this process, one after another.

It is the reference the distributed engines must reproduce weight for weight, and the
embedded default: plain scikit-learn with ``cores`` BLAS threads (threadpoolctl).
"""

from __future__ import annotations

import time

import numpy as np

from nncompare.engines.base import Engine, RoundResult
from nncompare.errors import UsageError
from nncompare.trainer import ShardTrainer


class LocalEngine(Engine):
    name = "local"

    def __init__(self, spec, cluster=None):
        if cluster:
            raise UsageError("the local engine runs in this process; drop --cluster or choose --engine dask or spark")
        super().__init__(spec, cluster)
        self.trainers: list[ShardTrainer] = []

    def start(self) -> None:
        self.spec.topology.check_fits_this_machine()

    def place(self, shards, classes, rounds_per_epoch=1):
        cores = self.spec.topology.cores_per_worker
        self.trainers = [
            ShardTrainer(s.index, s.x, s.y, classes, self.spec.model, cores=cores, rounds_per_epoch=rounds_per_epoch)
            for s in shards
        ]

    def run_round(self, weights: np.ndarray | None) -> RoundResult:
        updates, compute, overhead = [], 0.0, 0.0
        for trainer in self.trainers:
            start = time.perf_counter()
            update = trainer.train_round(weights)
            overhead += time.perf_counter() - start - update.compute_s
            compute += update.compute_s
            updates.append(update)
        # in-process there is no wire: the "transfer" is loading and copying out the weights
        return RoundResult(updates, compute_s=compute, transfer_s=overhead)

    def describe(self) -> dict:
        return {"mode": "in-process, shards one after another"}
