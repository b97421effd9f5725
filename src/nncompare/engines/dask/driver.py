"""The Dask engine's driver side: placement once, one actor call per worker per round, recovery.

Placement happens once: each shard is scattered straight to one worker and handed to a
:class:`~nncompare.engines.dask.worker.ShardActor` created there. A round is then one actor
call per worker, driver to worker directly: the float32 weights and the round's position go
in, the :class:`~nncompare.trainer.ShardUpdate` comes back. No task graph, no scheduler work
and no shard bytes per round.

A worker lost mid-run gets its shard re-placed on a restarted or surviving worker (the
driver keeps every shard until :meth:`DaskEngine.close`); the new actor joins the epoch at
the round's position, so it ends the epoch with its siblings, and trains that round from
the same averaged weights the others trained from.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass

import dask  # without the [dask] extra, EnginePlugin.load turns this ImportError into an install hint
import distributed
import numpy as np

from nncompare.engines.base import Engine, RoundPosition, RoundResult
from nncompare.engines.dask import cluster as clusters
from nncompare.engines.dask import tree
from nncompare.engines.dask.counters import TrainingCounters
from nncompare.engines.dask.recovery import MAX_REPLACEMENTS, WorkerLost, replacement_worker
from nncompare.engines.dask.worker import (
    ShardActor,
    pin_malloc_thresholds,
    worker_facts,
)
from nncompare.errors import EngineError, UsageError

logger = logging.getLogger(__name__)

#: Seconds between liveness checks while a round is running.
POLL_S = 1.0


@dataclass
class Placement:
    """One shard's actor: where it lives and the future that keeps it alive."""

    shard: int
    address: str
    future: object
    actor: object = None


class DaskEngine(Engine):
    @classmethod
    def check_cluster(cls, name: str, address: str) -> None:
        """A malformed scheduler address, refused before a Client exists (a failed Client's __del__ waits 40 s)."""
        super().check_cluster(name, address)
        from distributed.comm.addressing import get_address_host_port

        try:
            get_address_host_port(address)
        except (ValueError, TypeError) as exc:
            raise UsageError(f"--cluster {address}: {exc}; write the scheduler's address as tcp://HOST:PORT") from None

    def __init__(self, spec, cluster: str | None = None, options=None):
        super().__init__(spec, cluster, options)
        if cluster and self.settings.keep_malloc_trim:
            raise UsageError(
                "keep_malloc_trim applies to the engine's own cluster only; a remote cluster's "
                "workers keep whatever their nannies set"
            )
        self._cluster: clusters.Cluster | None = None
        self.placements: dict[int, Placement] = {}
        self._shards: dict = {}
        self._classes = None
        self._workers_at_start: dict = {}
        self._warnings: list[str] = []
        self._malloc_pinned: list[str] = []
        self._recoveries: list[dict] = []
        self._counters = TrainingCounters()
        self._placement_s: dict[int, float] = {}
        self._tree = False  # rounds go through the wired tree (settings.tree_exchange, one shard per worker)

    @property
    def client(self):
        return self._cluster.client if self._cluster is not None else None

    # -- start -----------------------------------------------------------------------------

    def start(self) -> None:
        topo = self.spec.topology
        if self.cluster:
            self._cluster = clusters.connect(self.cluster, topo, self.settings, self.options.dashboard)
        else:
            self._cluster = clusters.start_local(topo, self.settings, self.options.dashboard)
        self._workers_at_start = self.client.run(worker_facts)
        warnings, self._malloc_pinned = clusters.check_worker_environment(
            self.client,
            self._workers_at_start,
            topo.cores_per_worker,
            pin=bool(self.cluster) and self.settings.pin_malloc,
        )
        for message in self._cluster.warnings + warnings:
            self._warnings.append(message)
            logger.warning(message)

    # -- placement ---------------------------------------------------------------------------

    def place(self, shards, classes):
        addresses = self._live_workers()
        if not addresses:
            raise EngineError("the Dask cluster has no workers to place shards on")
        self._classes = classes
        # the driver keeps every shard until close(), to re-place one whose worker is lost
        self._shards = {s.index: s for s in shards}
        pending = [self._submit_actor(s.index, addresses[i % len(addresses)]) for i, s in enumerate(shards)]
        for placement, started in pending:
            self._finish_placement(placement, started)
        self._rewire()
        self._counters.start(self.client)  # the baselines of what training costs

    def _submit_actor(self, shard: int, address: str) -> tuple[Placement, float]:
        """Scatter the shard to ``address`` (directly, not through the scheduler) and create its actor there."""
        started = time.perf_counter()
        data = self._shards[shard]
        # uint8 pixels where the shard has them (the actor's trainer scales them): a quarter of the bytes
        x_future, y_future = self.client.scatter([data.wire_x, data.y], workers=[address], direct=True, hash=False)
        future = self.client.submit(
            ShardActor,
            shard,
            x_future,
            y_future,
            self._classes,
            self.spec.model,
            self.spec.topology.cores_per_worker,
            self.options.before_round,
            actor=True,
            workers=[address],
            allow_other_workers=False,
            pure=False,
            key=f"nncompare-shard-{shard}-{uuid.uuid4().hex[:8]}",
        )
        return Placement(shard, address, future), started

    def _finish_placement(self, placement: Placement, started: float) -> None:
        try:
            # the Actor handle binds to the current client as it is unpickled; direct_to_workers
            # then sends every call straight to its worker (no proxy hop through the scheduler)
            with self.client.as_current():
                placement.actor = placement.future.result(timeout=max(self.settings.timeout_s, 60.0))
        except Exception as exc:
            raise EngineError(
                f"could not place shard {placement.shard} on Dask worker {placement.address}: "
                f"{type(exc).__name__}: {exc}"
            ) from None
        # the scattered futures died with _submit_actor's frame, so the worker forgets those keys
        # now: the actor's references are the only ones, and the worker holds one copy of the shard
        self.placements[placement.shard] = placement
        self._placement_s[placement.shard] = time.perf_counter() - started

    # -- rounds ------------------------------------------------------------------------------

    def run_round(self, weights: np.ndarray | None, position: RoundPosition) -> RoundResult:
        if weights is not None:
            weights = np.ascontiguousarray(weights, dtype=np.float32)  # float32 end to end; no copy when it is
        broken = False
        if self._tree:
            root = self.placements[0]
            try:
                call = self._call(root, weights, position, method="train_tree")
                return tree.result(self._wait(root, call), self.placements, weights)
            except (WorkerLost, EngineError) as exc:  # the tree broke: collect this round shard by shard
                logger.warning(
                    "round %d through the tree failed (%s); collecting it shard by shard", position.number, exc
                )
                self._tree, broken = False, True
        calls = {i: self._call(p, weights, position) for i, p in sorted(self.placements.items())}
        results, lost = {}, {}
        for i, call in calls.items():
            try:
                results[i] = self._wait(self.placements[i], call)
            except WorkerLost as exc:
                lost[i] = exc
        recovery_s = 0.0
        for i, exc in lost.items():
            results[i], ready_s = self._recover(i, weights, position, exc)
            recovery_s += ready_s

        if lost or broken:
            self._rewire()
        order = sorted(results)
        stats = [results[i][1] for i in order]
        extra = {
            "worker_address": [self.placements[i].address for i in order],
            "worker_in_actor_s": [s["in_actor_s"] for s in stats],
            "worker_cpu_s": [s["cpu_s"] for s in stats],
            "worker_idle_s": [s["idle_s"] for s in stats],
            "worker_minflt": [s["minflt"] for s in stats],
            "weights_bytes": int(weights.nbytes) if weights is not None else 0,
        }
        return RoundResult(
            [results[i][0] for i in order], recovered_shards=sorted(lost), recovery_s=recovery_s, extra=extra
        )

    def _rewire(self) -> None:
        """Wire the tree for the next rounds, where the settings ask for it (``tree.rewire`` says when it can)."""
        self._tree = self.settings.tree_exchange and tree.rewire(self.placements, self.settings.timeout_s)

    def _call(self, placement: Placement, weights, position: RoundPosition, method: str = "train_round"):
        """The actor call's future, or the error its handle raised at once (its worker already lost)."""
        try:
            return getattr(placement.actor, method)(weights, position)
        except RuntimeError as exc:  # distributed.Actor: "Worker holding Actor was lost"
            return exc

    def _wait(self, placement: Placement, call):
        """The call's result; raises WorkerLost instead of hanging when its worker (in a tree round: any) goes away."""
        if isinstance(call, Exception):
            raise WorkerLost(str(call))
        watched = {p.address for p in self.placements.values()} if self._tree else {placement.address}
        while True:
            try:
                return call.result(timeout=POLL_S)
            except TimeoutError:
                gone = watched - set(self._live_workers())
                if gone:
                    raise WorkerLost(f"worker {', '.join(sorted(gone))} left the cluster") from None
            except OSError as exc:  # distributed.Actor: "Unable to contact Actor's worker"
                raise WorkerLost(str(exc)) from None
            except Exception as exc:
                raise EngineError(
                    f"shard {placement.shard} failed on Dask worker {placement.address}: {type(exc).__name__}: {exc}"
                ) from None

    def _recover(self, shard: int, weights, position: RoundPosition, exc: WorkerLost):
        """Re-place a lost shard and train its round from ``weights``, at ``position`` like its siblings.

        Returns the round's result and the recovery seconds (``engines.base``): from noticing the
        loss until the replacement was placed, summed over attempts; its training is not in them.
        """
        lost = self.placements.pop(shard)
        dead = {lost.address}
        ready_s = 0.0
        for _ in range(MAX_REPLACEMENTS):
            start = time.perf_counter()
            address = replacement_worker(self._live_workers, self.placements, dead, shard, self.settings.timeout_s)
            if self._malloc_pinned:  # a restarted remote worker comes back with the nanny's environment
                self.client.run(pin_malloc_thresholds, workers=[address])
            logger.warning("Dask worker %s was lost (%s); re-placing shard %d on %s", lost.address, exc, shard, address)
            placement, started = self._submit_actor(shard, address)
            self._finish_placement(placement, started)
            ready_s += time.perf_counter() - start
            try:
                result = self._wait(placement, self._call(placement, weights, position))
            except WorkerLost as again:
                dead.add(address)
                self.placements.pop(shard, None)
                exc = again
                continue
            self._recoveries.append(
                {
                    "round": position.number,
                    "epoch": position.epoch,
                    "shards": [shard],
                    "seconds": ready_s,
                    "reason": str(exc),
                    "lost_worker": lost.address,
                    "new_worker": address,
                }
            )
            return result, ready_s
        raise EngineError(f"shard {shard} lost its Dask worker {MAX_REPLACEMENTS} times in a row; last: {exc}")

    def _live_workers(self) -> list[str]:
        try:
            return sorted(self.client.scheduler_info(n_workers=-1)["workers"])
        except (OSError, TimeoutError) as exc:
            raise EngineError(
                f"lost the Dask scheduler{' at ' + self.cluster if self.cluster else ''}: {type(exc).__name__}: {exc}"
            ) from None

    # -- record and shutdown -----------------------------------------------------------------

    def describe(self) -> dict:
        mode = "remote" if self.cluster else "local-cluster"
        if self.client is None:
            return {"mode": mode}
        during, transitions = self._counters.during_training(self.client)
        addresses = set(self._workers_at_start) | {p.address for p in self.placements.values()}
        replacements = addresses - set(self._workers_at_start)
        if replacements:  # workers that joined to take a lost shard
            try:
                self._workers_at_start.update(self.client.run(worker_facts, workers=sorted(replacements)))
            except Exception:  # noqa: BLE001 - a worker lost again only costs us its facts
                pass
        workers = {}
        for address in sorted(addresses):
            facts = self._workers_at_start.get(address, {})
            workers[address] = {
                k: facts.get(k) for k in ("pid", "host", "nthreads", "memory_limit", "env", "blas_threads")
            }
            workers[address].update(during.get(address, {}))
            workers[address]["shards"] = sorted(i for i, p in self.placements.items() if p.address == address)
        info = {
            "mode": mode,
            "scheduler": self.client.scheduler.address,
            "dask_version": dask.__version__,
            "distributed_version": distributed.__version__,
            "workers": workers,
            # read from the workers themselves, for our cluster and a remote one alike
            "malloc_trim_threshold_removed": all(
                f["env"].get("MALLOC_TRIM_THRESHOLD_") is None for f in self._workers_at_start.values()
            ),
            "malloc_thresholds_pinned": list(self._malloc_pinned),
            "warnings": list(self._warnings),
            "placement": {
                str(i): {
                    "worker": p.address,
                    "bytes": self._shards[i].nbytes if i in self._shards else None,
                    "seconds": self._placement_s.get(i),
                }
                for i, p in sorted(self.placements.items())
            },
            "scheduler_transitions_during_training": transitions,
            "worker_start_method": self._cluster.worker_start_method,
            "exchange": "tree" if self._tree else "driver",
            "recoveries": list(self._recoveries),
        }
        if self._cluster.dashboard_url:
            info["dashboard_url"] = self._cluster.dashboard_url
        return info

    def close(self) -> None:
        """Release the actors, then the client, then (ours only) the cluster; restore our environment."""
        if self._tree:
            tree.close(self.placements)
            self._tree = False
        cluster, self._cluster = self._cluster, None
        self.placements.clear()
        try:
            if cluster is not None:
                cluster.close()
        finally:
            self._shards = {}
