"""The engine protocol: the smallest thing an engine must provide to run the job.

An engine is transport. It is started once, places the shards once, then runs rounds: it
receives the averaged weights and the round's position, has every shard's
:class:`~nncompare.trainer.ShardTrainer` train on them at that position, and returns the
updates. The training run (:mod:`nncompare.training`) owns everything else: the round count
and positions, averaging, evaluation, stopping, and the timing of every phase.

What the words mean, the same in every engine:

``ShardUpdate.compute_s`` (and ``compute_cpu_s``, ``compute_runqueue_s``)
    the worker's own ``partial_fit`` for the round, measured by the worker around that call
    on the thread that ran it: wall, on-CPU and waiting-for-a-CPU seconds.
round compute
    the compute on the round's critical path: the slowest worker's when the workers run
    side by side (the plugin's ``concurrent``), the sum when they run one after another.
round transfer
    the round's wall time on the driver, less its recovery time, its compute and its
    averaging in the workers: weight serialisation, the wire both ways (and from worker to
    worker where the workers reduce), dispatch, and loading and copying weights in the worker.
    The training run computes it; no engine does.
round average
    the sample-weighted average of the shards' weights (:mod:`nncompare.averaging`'s tree).
    An engine may merge it in its workers (``RoundResult.average``, with ``average_s`` the
    merging on the round's critical path, as the workers measured it); otherwise the training
    run merges the updates' weights on the driver. Either way it is booked as ``average``.
recovery
    ``RoundResult.recovered_shards``: the shards whose worker or task was lost in this round
    and replaced. ``RoundResult.recovery_s``: driver seconds from the moment the engine
    noticed the loss until every replacement was placed and ready to train. The wait that
    noticed the loss is not in it (it counts as the round's transfer, like any wait for a
    reply), nor is the replacement's training of the round (compute and transfer, as in any
    round). Booked as ``other``. A replacement joins the epoch at the round's position, like
    any trainer (``ShardTrainer.train_round``).

Keys of :meth:`Engine.describe` that more than one engine gives, with one meaning:

``mode``
    one line: where the engine runs the shards.
``placement``
    ``{shard: {"worker": where its trainer lives, "bytes": the shard as sent, "seconds": from
    the start of placing it until its trainer was ready}}`` (as strings of the shard index).
``recoveries``
    one entry per replaced shard or task set: ``{"round", "epoch", "shards", "seconds"
    (its recovery_s), "reason"}`` plus engine facts (``lost_worker``, ``new_worker``).
``dashboard_url``
    the engine's own UI when ``--dashboard`` asked for it; absent otherwise.
``warnings``
    what the engine found that slows or skews the measurement (also logged).
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from nncompare.averaging import average_weights
from nncompare.engines.options import EngineOptions
from nncompare.errors import UsageError
from nncompare.rounds import RoundPosition, ShardUpdate

if TYPE_CHECKING:
    from nncompare.engines.plugin import EnginePlugin
    from nncompare.job import JobSpec
    from nncompare.partition import Shard

__all__ = ["Engine", "RoundPosition", "RoundResult"]


@dataclass
class RoundResult:
    """One round's updates, sorted by shard, with what the engine did to recover lost workers."""

    updates: list[ShardUpdate]
    recovered_shards: list[int] = field(default_factory=list)
    recovery_s: float = 0.0
    #: Engine-specific facts about the round (lists are indexed like ``updates``); kept in the record.
    extra: dict = field(default_factory=dict)
    #: The round's average where the engine's workers merged it (the updates then carry no
    #: weights), and the seconds of merging on the round's critical path; None: the driver averages.
    average: np.ndarray | None = None
    average_s: float = 0.0

    def averaged(self) -> np.ndarray:
        """The round's sample-weighted average: the workers' where they merged it, else merged here, the same way."""
        if self.average is not None:
            return self.average
        return average_weights([u.weights for u in self.updates], [u.n_samples for u in self.updates])


class Engine(abc.ABC):
    """Base class of the engines; use as a context manager so ``close`` always runs.

    The engine is the one the job names (``spec.engine``): its name, whether its shards train
    side by side and its settings all come from that engine's plugin, declared once.
    """

    def __init__(self, spec: JobSpec, cluster: str | None = None, options: EngineOptions | None = None):
        if cluster:
            type(self).check_cluster(spec.engine, cluster)
        self.spec = spec
        self.cluster = cluster
        self.options = options or EngineOptions()
        #: this engine's own settings (its plugin's dataclass), from the options or its defaults
        self.settings = self.options.settings_for(spec.engine)

    @property
    def name(self) -> str:
        return self.spec.engine

    @property
    def plugin(self) -> EnginePlugin:
        from nncompare.engines.registry import plugin

        return plugin(self.name)

    @property
    def concurrent(self) -> bool:
        """True when the workers train side by side (the critical path is the slowest), False when
        they train one after another in this process (it is their sum)."""
        return self.plugin.concurrent

    @classmethod
    def check_cluster(cls, name: str, address: str) -> None:
        """Refuse a ``--cluster`` address this engine cannot use, before anything starts.

        The base class refuses an address for an engine that takes none, and one that belongs to
        another engine (by the plugins' ``cluster_schemes``); an engine adds its own checks.
        """
        from nncompare.engines.registry import engine_for_address, plugin

        me = plugin(name)
        if not me.cluster_schemes:
            raise UsageError(f"the {name} engine runs in this process and takes no --cluster; drop --cluster")
        owner = engine_for_address(address)
        if owner is not None and owner != name:
            raise UsageError(
                f"--cluster {address} is a {owner} address; the {name} engine takes "
                f"{' or '.join(s + '...' for s in me.cluster_schemes[:3])}"
            )

    def start(self) -> None:  # noqa: B027 - optional: an engine with nothing to start keeps it
        """Bring up the cluster or session; timed apart from training as ``startup_s``."""

    @abc.abstractmethod
    def place(self, shards: list[Shard], classes: np.ndarray) -> None:
        """Put every shard on its worker, once, with a trainer next to it."""

    @abc.abstractmethod
    def run_round(self, weights: np.ndarray | None, position: RoundPosition) -> RoundResult:
        """Train every shard for the round at ``position`` from ``weights`` (None: the seeded initialisation)."""

    def close(self) -> None:  # noqa: B027 - optional: an engine that holds nothing keeps it
        """Release workers, processes and ports; safe to call twice."""

    def describe(self) -> dict:
        """Facts about the running engine worth keeping in the record (the shared keys: module docstring)."""
        return {}

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.close()
        return False
