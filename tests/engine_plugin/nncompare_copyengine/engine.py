"""Every shard's trainer in this process, one after another: what the local engine does."""

from __future__ import annotations

from nncompare.engines import Engine, RoundResult
from nncompare.trainer import ShardTrainer


class CopyEngine(Engine):
    def place(self, shards, classes):
        cores = self.spec.topology.cores_per_worker
        self.trainers = [
            ShardTrainer(s.index, s.x, s.y, classes, self.spec.model, cores, self.options.before_round) for s in shards
        ]

    def run_round(self, weights, position):
        return RoundResult([trainer.train_round(weights, position) for trainer in self.trainers])

    def describe(self) -> dict:
        info = {"mode": "in-process, shards one after another (a plug-in)", "recoveries": []}
        if self.settings.label:
            info["label"] = "the copy engine ran"
        return info
