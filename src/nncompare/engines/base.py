"""The engine protocol: the smallest thing Dask and Spark must provide to run the job.

An engine is transport. It is started once, places the shards once, then runs rounds: it
receives the averaged weights and the round's position, has every shard's
:class:`~nncompare.trainer.ShardTrainer` train on them, and returns the updates. The
training run (:mod:`nncompare.training`) owns everything else: the round count, averaging,
evaluation, stopping, and the timing of every phase.

What the words mean, the same in every engine:

``ShardUpdate.compute_s`` (and ``compute_cpu_s``, ``compute_runqueue_s``)
    the worker's own ``partial_fit`` for the round, measured by the worker around that call
    on the thread that ran it: wall, on-CPU and waiting-for-a-CPU seconds.
round compute
    the compute on the round's critical path: the slowest worker's when the workers run
    side by side (``Engine.concurrent``), the sum when they run one after another.
round transfer
    the round's wall time on the driver, less its recovery time and its compute: weight
    serialisation, the wire both ways, dispatch, and loading and copying weights in the
    worker. The training run computes it; no engine does.
recovery
    ``RoundResult.recovered_shards`` (shards whose worker or task was lost and replaced in
    this round) and ``RoundResult.recovery_s`` (driver seconds spent on it, part of the
    round's wall time and booked as ``other``).
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field

import numpy as np

from nncompare.engines.options import EngineOptions
from nncompare.job import JobSpec
from nncompare.partition import Shard
from nncompare.trainer import RoundPosition, ShardUpdate

__all__ = ["Engine", "RoundPosition", "RoundResult"]


@dataclass
class RoundResult:
    """One round's updates, sorted by shard, with what the engine did to recover lost workers."""

    updates: list[ShardUpdate]
    recovered_shards: list[int] = field(default_factory=list)
    recovery_s: float = 0.0
    #: Engine-specific facts about the round (lists are indexed like ``updates``); kept in the record.
    extra: dict = field(default_factory=dict)


class Engine(abc.ABC):
    """Base class of the engines; use as a context manager so ``close`` always runs."""

    name = "engine"
    #: True when the workers train side by side (the critical path is the slowest), False
    #: when they train one after another in this process (it is their sum).
    concurrent = True

    def __init__(self, spec: JobSpec, cluster: str | None = None, options: EngineOptions | None = None):
        self.spec = spec
        self.cluster = cluster
        self.options = options or EngineOptions()

    def start(self) -> None:  # noqa: B027 - optional: an engine with nothing to start keeps it
        """Bring up the cluster or session; timed apart from training as ``startup_s``."""

    @abc.abstractmethod
    def place(self, shards: list[Shard], classes: np.ndarray, rounds_per_epoch: int = 1) -> None:
        """Put every shard on its worker, once, with a trainer next to it."""

    @abc.abstractmethod
    def run_round(self, weights: np.ndarray | None, position: RoundPosition) -> RoundResult:
        """Train every shard for the round at ``position`` from ``weights`` (None: the seeded initialisation)."""

    def close(self) -> None:  # noqa: B027 - optional: an engine that holds nothing keeps it
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
