"""The local engine: every shard's trainer in this process, one after another.

It is the reference the distributed engines must reproduce weight for weight, and the
embedded default: plain scikit-learn with ``cores`` BLAS threads (threadpoolctl).
"""

from __future__ import annotations

import numpy as np

from nncompare.engines.base import Engine, RoundPosition, RoundResult
from nncompare.errors import UsageError
from nncompare.trainer import ShardTrainer


class LocalEngine(Engine):
    name = "local"
    concurrent = False  # the shards train one after another: the round's critical path is their sum

    def __init__(self, spec, cluster=None, options=None):
        if cluster:
            raise UsageError("the local engine runs in this process; drop --cluster or choose --engine dask or spark")
        super().__init__(spec, cluster, options)
        self.trainers: list[ShardTrainer] = []

    def start(self) -> None:
        self.spec.topology.check_fits_this_machine()

    def place(self, shards, classes, rounds_per_epoch=1):
        cores = self.spec.topology.cores_per_worker
        self.trainers = [
            ShardTrainer(
                s.index,
                s.x,
                s.y,
                classes,
                self.spec.model,
                cores=cores,
                rounds_per_epoch=rounds_per_epoch,
                before_round=self.options.before_round,
            )
            for s in shards
        ]

    def run_round(self, weights: np.ndarray | None, position: RoundPosition) -> RoundResult:
        return RoundResult([trainer.train_round(weights, position) for trainer in self.trainers])

    def describe(self) -> dict:
        return {"mode": "in-process, shards one after another"}
