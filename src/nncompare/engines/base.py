"""The engine interface: the smallest thing Dask and Spark must provide to run the job.

An engine is started once, places the shards once, then runs rounds: it receives the
averaged weights, has every shard's :class:`~nncompare.trainer.ShardTrainer` train on
them, and returns the new weights with the workers' own timings. The training loop
(:mod:`nncompare.training`) owns everything else: averaging, evaluation, stopping, timing.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field

import numpy as np

from nncompare.job import JobSpec
from nncompare.partition import Shard
from nncompare.trainer import ShardUpdate


@dataclass
class RoundResult:
    """One round's updates and how the engine splits the round's wall time.

    ``compute_s`` is the compute on the round's critical path (the slowest worker's for
    parallel engines, the sum for the sequential local one); ``transfer_s`` is weight
    serialisation and transfer on that path. The training loop books the rest of the
    round's wall time as scheduling/idle.
    """

    updates: list[ShardUpdate]
    compute_s: float
    transfer_s: float
    extra: dict = field(default_factory=dict)


class Engine(abc.ABC):
    """Base class of the engines; use as a context manager so ``close`` always runs."""

    name = "engine"

    def __init__(self, spec: JobSpec, cluster: str | None = None):
        self.spec = spec
        self.cluster = cluster

    def start(self) -> None:
        """Bring up the cluster or session; timed apart from training as ``startup_s``."""

    @abc.abstractmethod
    def place(self, shards: list[Shard], classes: np.ndarray, rounds_per_epoch: int = 1) -> None:
        """Put every shard on its worker, once, with a trainer next to it."""

    @abc.abstractmethod
    def run_round(self, weights: np.ndarray | None) -> RoundResult:
        """Train every shard for one round from ``weights`` (None: the seeded initialisation)."""

    def close(self) -> None:
        """Release workers, processes and ports; safe to call twice."""

    def describe(self) -> dict:
        """Facts about the running engine worth keeping in the record (addresses, settings)."""
        return {}

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.close()
        return False
