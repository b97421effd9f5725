"""The local engine: every shard's trainer in this process, one after another.

It is the reference the distributed engines must reproduce weight for weight, and the
embedded default: plain scikit-learn with ``cores`` BLAS threads (threadpoolctl).
"""

from __future__ import annotations

import time

import numpy as np

from nncompare.engines.base import Engine, RoundPosition, RoundResult
from nncompare.trainer import ShardTrainer, worker_id


class LocalEngine(Engine):
    def __init__(self, spec, cluster=None, options=None):
        super().__init__(spec, cluster, options)
        self.trainers: list[ShardTrainer] = []
        self._placement: dict[str, dict] = {}

    def start(self) -> None:
        self.spec.topology.check_fits_this_machine()

    def place(self, shards, classes):
        cores = self.spec.topology.cores_per_worker
        for s in shards:
            started = time.perf_counter()
            trainer = ShardTrainer(s.index, s.x, s.y, classes, self.spec.model, cores, self.options.before_round)
            self.trainers.append(trainer)
            self._placement[str(s.index)] = {
                "worker": worker_id(),
                "bytes": int(s.nbytes),
                "seconds": time.perf_counter() - started,
            }

    def run_round(self, weights: np.ndarray | None, position: RoundPosition) -> RoundResult:
        return RoundResult([trainer.train_round(weights, position) for trainer in self.trainers])

    def describe(self) -> dict:
        return {"mode": "in-process, shards one after another", "placement": dict(self._placement), "recoveries": []}
