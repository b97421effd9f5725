"""The Dask engine: one long-lived actor per worker holds its shard and trainer for the whole run.

Placement happens once: each shard is scattered straight to one worker and handed to a
:class:`~nncompare.engines.dask_actor.ShardActor` created there. A round is then one actor
call per worker, driver to worker directly: the float32 weights go in, the
:class:`~nncompare.trainer.ShardUpdate` comes back. No task graph, no scheduler work and
no shard bytes per round.

Workers are started without the nanny's ``MALLOC_TRIM_THRESHOLD_=65536``: that setting
switches off glibc's dynamic mmap threshold, so every large temporary of ``partial_fit``
is mmapped and unmapped again, page by page (>2x slower epochs in our measurements; see
``docs/dask.md``). On a remote cluster the engine cannot choose, so it reports what the
workers run with (and, when asked, pins their malloc thresholds with ``mallopt``).

A worker lost mid-run gets its shard re-placed on a restarted or surviving worker (the
driver keeps every shard until :meth:`DaskEngine.close`); the new trainer primes itself
and continues from the last averaged weights.
"""

from __future__ import annotations

import logging
import os
import time
import uuid
from dataclasses import dataclass

import dask  # without the [dask] extra, engines/__init__ turns this ImportError into an install hint
import distributed
import numpy as np
from distributed import Client, LocalCluster

from nncompare.engines.base import Engine, RoundResult
from nncompare.engines.dask_actor import (
    ShardActor,
    pin_malloc_thresholds,
    scheduler_transitions,
    tcp_traffic_on_worker,
    worker_facts,
)
from nncompare.errors import EngineError, UsageError
from nncompare.job import format_memory

logger = logging.getLogger(__name__)

#: Seconds to wait for a scheduler, for the expected workers, or for a replacement worker.
TIMEOUT_ENV = "NNCOMPARE_DASK_TIMEOUT"
DEFAULT_TIMEOUT_S = 20.0
#: Seconds between liveness checks while a round is running.
POLL_S = 1.0
#: Set to 1 to pin glibc's malloc thresholds in remote workers that run with MALLOC_TRIM_THRESHOLD_.
PIN_MALLOC_ENV = "NNCOMPARE_DASK_PIN_MALLOC"
#: How many times one lost shard is re-placed before the run gives up.
MAX_REPLACEMENTS = 3

TRANSFER_DEFINITION = ("driver round-trip wall time of the round minus the slowest worker's in-actor time "
                       "(pickling, network both ways, unpickling and actor dispatch on the critical path)")


def timeout_s() -> float:
    try:
        return float(os.environ.get(TIMEOUT_ENV, DEFAULT_TIMEOUT_S))
    except ValueError:
        raise UsageError(f"{TIMEOUT_ENV} must be a number of seconds") from None


#: What the nanny sets by default (``distributed.yaml``); kept only to measure what it costs.
NANNY_MALLOC_TRIM_THRESHOLD = 65536


def worker_environ(cores: int, keep_malloc_trim: bool = False) -> dict:
    """``distributed.nanny.pre-spawn-environ`` for our workers: BLAS threads = cores, no malloc trim.

    ``None`` makes the nanny drop a variable (``distributed.nanny._get_env_variables``).
    """
    trim = NANNY_MALLOC_TRIM_THRESHOLD if keep_malloc_trim else None
    return {"MALLOC_TRIM_THRESHOLD_": trim, "OMP_NUM_THREADS": cores, "OPENBLAS_NUM_THREADS": cores,
            "MKL_NUM_THREADS": cores}


class WorkerLost(Exception):
    """The worker holding an actor went away (closed connection, or gone from the scheduler)."""


@dataclass
class Placement:
    """One shard's actor: where it lives and the future that keeps it alive."""

    shard: int
    address: str
    future: object
    actor: object


class DaskEngine(Engine):
    name = "dask"

    def __init__(self, spec, cluster: str | None = None, keep_malloc_trim: bool = False):
        """``keep_malloc_trim`` leaves the nanny's ``MALLOC_TRIM_THRESHOLD_`` in place (local cluster
        only): the benchmark uses it to measure the cost the engine avoids."""
        if cluster and cluster.split("://")[0] in ("spark", "yarn", "local", "k8s", "mesos"):
            raise UsageError(f"--cluster {cluster} is a Spark master; the Dask engine needs a scheduler "
                             "address like tcp://host:8786")
        super().__init__(spec, cluster)
        self.keep_malloc_trim = keep_malloc_trim
        self.client: Client | None = None
        self.local_cluster: LocalCluster | None = None
        self.placements: dict[int, Placement] = {}
        self._shards: dict = {}
        self._classes = None
        self._rounds_per_epoch = 1
        self._saved_environ: dict | None = None
        self._workers_at_start: dict = {}
        self._warnings: list[str] = []
        self._malloc_pinned: list[str] = []
        self._recoveries: list[dict] = []
        self._round_stats: list[dict] = []
        self._traffic_after_place: dict = {}
        self._transitions_after_place: int | None = None
        self._placement_s: dict[int, float] = {}

    # -- start -----------------------------------------------------------------------------

    def start(self) -> None:
        if self.cluster:
            self._connect()
        else:
            self._start_local_cluster()
        self._workers_at_start = self.client.run(worker_facts)
        self._check_worker_environment()

    def _start_local_cluster(self) -> None:
        topo = self.spec.topology
        topo.check_fits_this_machine()
        env = worker_environ(topo.cores_per_worker, self.keep_malloc_trim)
        # The nanny prefers the parent's own environment over its config and spawned workers
        # inherit it: take these variables out of this process for the engine's lifetime.
        # The nanny and Dask also write into os.environ; close() restores it as it was.
        self._saved_environ = dict(os.environ)
        for key in env:
            os.environ.pop(key, None)
        memory = topo.memory_per_worker_bytes if topo.memory_per_worker_bytes else "auto"
        try:
            with dask.config.set({"distributed.nanny.pre-spawn-environ": env}):
                # start the scheduler alone, then the workers: an interrupt while workers start
                # then finds the cluster already ours to close
                self.local_cluster = LocalCluster(
                    n_workers=0, threads_per_worker=topo.cores_per_worker, processes=True,
                    memory_limit=memory, host="127.0.0.1", scheduler_port=0, dashboard_address=None,
                    # no dashboard, and the scheduler's remaining HTTP routes on a free port, not 8787
                    scheduler_kwargs={"dashboard": False, "dashboard_address": "127.0.0.1:0"},
                    silence_logs=logging.ERROR, preload=["nncompare.engines.dask_actor"],
                )
                self.local_cluster.scale(topo.workers)
                self.client = Client(self.local_cluster, set_as_default=False, direct_to_workers=True)
                # scale() creates the nannies asynchronously and each reads the config as it is
                # created: stay inside the config block until every worker is up
                self.client.wait_for_workers(topo.workers, timeout=max(timeout_s(), 120.0))
        except Exception as exc:
            raise EngineError(f"could not start a local Dask cluster of {topo.workers} workers: "
                              f"{type(exc).__name__}: {exc}") from exc

    def _connect(self) -> None:
        limit = timeout_s()
        try:
            self.client = Client(self.cluster, timeout=limit, set_as_default=False, direct_to_workers=True)
        except (OSError, TimeoutError) as exc:
            raise EngineError(f"cannot reach the Dask scheduler at {self.cluster} within {limit:g} s "
                              f"({type(exc).__name__}); start one with 'dask scheduler' or fix --cluster") from None
        except ValueError as exc:
            raise UsageError(f"--cluster {self.cluster}: {exc}") from None
        self._check_remote_topology(limit)

    def _check_remote_topology(self, limit: float) -> None:
        """The flags describe the cluster we expect; refuse to measure a different one."""
        topo = self.spec.topology
        workers = self.client.scheduler_info(n_workers=-1)["workers"]
        if len(workers) < topo.workers:
            try:
                self.client.wait_for_workers(topo.workers, timeout=limit)
            except TimeoutError:
                pass
            workers = self.client.scheduler_info(n_workers=-1)["workers"]
        threads = sorted({w["nthreads"] for w in workers.values()})
        memories = sorted({int(w.get("memory_limit") or 0) for w in workers.values()})
        problems = []
        if len(workers) != topo.workers:
            problems.append(f"{len(workers)} workers, not --workers {topo.workers}")
        if threads and threads != [topo.cores_per_worker]:
            problems.append(f"{'/'.join(map(str, threads))} threads per worker, not --cores {topo.cores_per_worker}")
        want = topo.memory_per_worker_bytes
        if want and any(abs(m - want) > 0.01 * want for m in memories):
            have = "/".join(format_memory(m) if m else "no limit" for m in memories)
            problems.append(f"{have} memory per worker, not --memory {format_memory(want)}")
        if problems:
            raise UsageError(f"the Dask cluster at {self.cluster} has {'; '.join(problems)}: "
                             "pass the cluster's own figures or start matching workers "
                             "(dask worker ADDRESS --nworkers W --nthreads C --memory-limit M)")

    def _check_worker_environment(self) -> None:
        cores = str(self.spec.topology.cores_per_worker)
        trimmed = sorted(a for a, f in self._workers_at_start.items() if f["env"].get("MALLOC_TRIM_THRESHOLD_"))
        if trimmed and self.cluster and os.environ.get(PIN_MALLOC_ENV) == "1":
            pinned = self.client.run(pin_malloc_thresholds, workers=trimmed)
            self._malloc_pinned = sorted(a for a, ok in pinned.items() if ok)
        for address in trimmed:
            trim = self._workers_at_start[address]["env"]["MALLOC_TRIM_THRESHOLD_"]
            if address in self._malloc_pinned:
                self._warn(f"Dask worker {address} runs with MALLOC_TRIM_THRESHOLD_={trim}; pinned its malloc "
                           f"thresholds instead ({PIN_MALLOC_ENV}=1)")
            else:
                self._warn(f"Dask worker {address} runs with MALLOC_TRIM_THRESHOLD_={trim}, which made training "
                           "over 2x slower in our measurements; start 'dask worker' with a Dask config that sets "
                           "distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_ to null, or set "
                           f"{PIN_MALLOC_ENV}=1 (see docs/dask.md)")
        for address, facts in sorted(self._workers_at_start.items()):
            omp = facts["env"].get("OMP_NUM_THREADS")
            if omp is not None and omp != cores:
                # threadpoolctl still limits BLAS to --cores inside each round; OpenMP pools elsewhere may not follow
                self._warn(f"Dask worker {address} has OMP_NUM_THREADS={omp} but --cores {cores}; "
                           "the trainer limits BLAS to --cores with threadpoolctl")

    def _warn(self, message: str) -> None:
        self._warnings.append(message)
        logger.warning(message)

    # -- placement ---------------------------------------------------------------------------

    def place(self, shards, classes, rounds_per_epoch=1):
        addresses = self._live_workers()
        if not addresses:
            raise EngineError("the Dask cluster has no workers to place shards on")
        self._classes, self._rounds_per_epoch = classes, rounds_per_epoch
        # the driver keeps every shard until close(), to re-place one whose worker is lost
        self._shards = {s.index: s for s in shards}
        pending = [self._submit_actor(s, addresses[i % len(addresses)]) for i, s in enumerate(shards)]
        for placement, started in pending:
            self._finish_placement(placement, started)
        self._transitions_after_place = self._settled_transitions()
        self._traffic_after_place = self._worker_traffic()

    def _submit_actor(self, shard, address: str) -> tuple[Placement, float]:
        """Scatter the shard to ``address`` (directly, not through the scheduler) and create its actor there."""
        started = time.perf_counter()
        x_future, y_future = self.client.scatter([shard.x, shard.y], workers=[address], direct=True, hash=False)
        future = self.client.submit(
            ShardActor, shard.index, x_future, y_future, self._classes, self.spec.model,
            self.spec.topology.cores_per_worker, self._rounds_per_epoch,
            actor=True, workers=[address], allow_other_workers=False, pure=False,
            key=f"nncompare-shard-{shard.index}-{uuid.uuid4().hex[:8]}",
        )
        return Placement(shard.index, address, future, None), started

    def _finish_placement(self, placement: Placement, started: float) -> None:
        try:
            # the Actor handle binds to the current client as it is unpickled; direct_to_workers
            # then sends every call straight to its worker (no proxy hop through the scheduler)
            with self.client.as_current():
                placement.actor = placement.future.result(timeout=max(timeout_s(), 60.0))
        except Exception as exc:
            raise EngineError(f"could not place shard {placement.shard} on Dask worker {placement.address}: "
                              f"{type(exc).__name__}: {exc}") from None
        # the scattered futures died with _submit_actor's frame, so the worker forgets those keys
        # now: the actor's references are the only ones, and the worker holds one copy of the shard
        self.placements[placement.shard] = placement
        self._placement_s[placement.shard] = time.perf_counter() - started

    # -- rounds ------------------------------------------------------------------------------

    def run_round(self, weights: np.ndarray | None) -> RoundResult:
        if weights is not None:
            weights = np.ascontiguousarray(weights, dtype=np.float32)  # float32 end to end; no copy when it is
        start = time.perf_counter()
        calls = {i: self._call(p, weights) for i, p in sorted(self.placements.items())}
        results, lost = {}, {}
        for i, call in calls.items():
            try:
                results[i] = self._wait(self.placements[i], call)
            except WorkerLost as exc:
                lost[i] = exc
        recovery_start = time.perf_counter()
        for i, exc in lost.items():
            results[i] = self._recover(i, weights, exc)
        recovery_s = time.perf_counter() - recovery_start if lost else 0.0
        wall = time.perf_counter() - start - recovery_s

        order = sorted(results)
        updates = [results[i][0] for i in order]
        stats = [results[i][1] for i in order]
        compute = max(u.compute_s for u in updates)
        in_actor = max(s["in_actor_s"] for s in stats)
        extra = {
            "worker_address": [self.placements[i].address for i in order],
            "worker_in_actor_s": [s["in_actor_s"] for s in stats],
            "worker_cpu_s": [s["cpu_s"] for s in stats],
            "worker_idle_s": [s["idle_s"] for s in stats],
            "worker_minflt": [s["minflt"] for s in stats],
            "weights_bytes": int(weights.nbytes) if weights is not None else 0,
        }
        if lost:
            extra["recovery_s"] = recovery_s
            extra["recovered_shards"] = sorted(lost)
        self._round_stats.append(extra)
        return RoundResult(updates, compute_s=compute, transfer_s=max(0.0, wall - in_actor), extra=extra)

    def _call(self, placement: Placement, weights):
        try:
            return placement.actor.train_round(weights)
        except RuntimeError as exc:  # distributed.Actor: "Worker holding Actor was lost"
            return exc

    def _wait(self, placement: Placement, call):
        """The call's result; raises WorkerLost instead of hanging when its worker goes away."""
        if isinstance(call, Exception):
            raise WorkerLost(str(call))
        while True:
            try:
                return call.result(timeout=POLL_S)
            except TimeoutError:
                if placement.address not in self._live_workers():
                    raise WorkerLost(f"worker {placement.address} left the cluster") from None
            except OSError as exc:  # distributed.Actor: "Unable to contact Actor's worker"
                raise WorkerLost(str(exc)) from None
            except Exception as exc:
                raise EngineError(f"shard {placement.shard} failed on Dask worker {placement.address}: "
                                  f"{type(exc).__name__}: {exc}") from None

    def _recover(self, shard: int, weights, exc: WorkerLost):
        """Re-place a lost shard and train its round from the same weights the others trained from."""
        lost = self.placements.pop(shard)
        dead = {lost.address}
        start = time.perf_counter()
        for _ in range(MAX_REPLACEMENTS):
            address = self._replacement_worker(dead, shard)
            if self._malloc_pinned:  # a restarted remote worker comes back with the nanny's environment
                self.client.run(pin_malloc_thresholds, workers=[address])
            logger.warning("Dask worker %s was lost (%s); re-placing shard %d on %s", lost.address, exc, shard, address)
            placement, started = self._submit_actor(self._shards[shard], address)
            self._finish_placement(placement, started)
            try:
                round_in_epoch = len(self._round_stats) % self._rounds_per_epoch
                if round_in_epoch:
                    placement.actor.resume_at(round_in_epoch).result()
                result = self._wait(placement, self._call(placement, weights))
            except WorkerLost as again:
                dead.add(address)
                self.placements.pop(shard, None)
                exc = again
                continue
            self._recoveries.append({"shard": shard, "lost_worker": lost.address, "new_worker": address,
                                     "round": len(self._round_stats), "seconds": time.perf_counter() - start,
                                     "reason": str(exc)})
            return result
        raise EngineError(f"shard {shard} lost its Dask worker {MAX_REPLACEMENTS} times in a row; last: {exc}")

    def _replacement_worker(self, dead: set, shard: int) -> str:
        """A worker without a shard (a restarted one) if one comes within the timeout, else the least loaded."""
        deadline = time.monotonic() + timeout_s()
        while True:
            live = [a for a in self._live_workers() if a not in dead]
            busy = [p.address for i, p in self.placements.items() if i != shard]
            free = [a for a in live if a not in busy]
            if free:
                return free[0]
            if time.monotonic() >= deadline:
                if not live:
                    raise EngineError(f"lost Dask worker(s) {', '.join(sorted(dead))} and no worker is left "
                                      f"to take shard {shard}")
                return min(live, key=lambda a: (busy.count(a), a))
            time.sleep(0.2)

    def _live_workers(self) -> list[str]:
        try:
            return sorted(self.client.scheduler_info(n_workers=-1)["workers"])
        except (OSError, TimeoutError) as exc:
            raise EngineError(f"lost the Dask scheduler{' at ' + self.cluster if self.cluster else ''}: "
                              f"{type(exc).__name__}: {exc}") from None

    def _worker_traffic(self) -> dict:
        try:
            return self.client.run(tcp_traffic_on_worker)
        except Exception:  # a worker lost meanwhile only costs us this figure
            return {}

    def _settled_transitions(self, limit_s: float = 2.0) -> int | None:
        """The scheduler's transition count once the scattered futures' releases have landed.

        The client releases those keys asynchronously (batched messages), so the count read
        right after placement can still grow by a few forget transitions that belong to it.
        """
        last, deadline = self._scheduler_transitions(), time.monotonic() + limit_s
        while last is not None and time.monotonic() < deadline:
            time.sleep(0.05)
            now = self._scheduler_transitions()
            if now == last:
                break
            last = now
        return last

    def _scheduler_transitions(self) -> int | None:
        try:
            return self.client.run_on_scheduler(scheduler_transitions)
        except Exception:  # a scheduler that refuses run_on_scheduler only costs us this one figure
            return None

    # -- record and shutdown -----------------------------------------------------------------

    def describe(self) -> dict:
        if self.client is None:
            return {"mode": "remote" if self.cluster else "local-cluster"}
        transitions = self._scheduler_transitions()
        traffic = self._worker_traffic()
        workers = {}
        addresses = set(self._workers_at_start) | {p.address for p in self.placements.values()}
        replacements = addresses - set(self._workers_at_start)
        if replacements:  # workers that joined to take a lost shard
            try:
                self._workers_at_start.update(self.client.run(worker_facts, workers=sorted(replacements)))
            except Exception:  # noqa: BLE001 - a worker lost again only costs us its facts
                pass
        for address in sorted(addresses):
            facts = self._workers_at_start.get(address, {})
            workers[address] = {k: facts.get(k) for k in ("pid", "host", "nthreads", "memory_limit", "env",
                                                          "blas_threads")}
            before, after = self._traffic_after_place.get(address, {}), traffic.get(address, {})
            if before.get("received") is not None and after.get("received") is not None:
                workers[address]["tcp_bytes_received_during_training"] = after["received"] - before["received"]
                workers[address]["tcp_bytes_sent_during_training"] = after["sent"] - before["sent"]
            workers[address]["shards"] = sorted(i for i, p in self.placements.items() if p.address == address)
        rpe = max(1, self._rounds_per_epoch)
        epochs = [self._round_stats[k:k + rpe] for k in range(0, len(self._round_stats), rpe)]
        return {
            "mode": "remote" if self.cluster else "local-cluster",
            "scheduler": self.client.scheduler.address,
            "dask_version": dask.__version__,
            "distributed_version": distributed.__version__,
            "workers": workers,
            # read from the workers themselves, for our cluster and a remote one alike
            "malloc_trim_threshold_removed": all(f["env"].get("MALLOC_TRIM_THRESHOLD_") is None
                                                 for f in self._workers_at_start.values()),
            "malloc_thresholds_pinned": list(self._malloc_pinned),
            "warnings": list(self._warnings),
            "placement": {str(i): {"worker": p.address, "bytes": self._shards[i].nbytes if i in self._shards else None,
                                   "seconds": self._placement_s.get(i)}
                          for i, p in sorted(self.placements.items())},
            "scheduler_transitions_during_training": (
                transitions - self._transitions_after_place
                if transitions is not None and self._transitions_after_place is not None else None),
            "worker_idle_s_per_epoch": [list(np.sum([r["worker_idle_s"] for r in e], axis=0).tolist()) for e in epochs],
            "worker_minflt_per_epoch": [list(np.sum([r["worker_minflt"] for r in e], axis=0).tolist()) for e in epochs],
            "recoveries": list(self._recoveries),
            "transfer_s_definition": TRANSFER_DEFINITION,
        }

    def close(self) -> None:
        """Release the actors, then the client, then (ours only) the cluster; restore our environment."""
        client, cluster = self.client, self.local_cluster
        self.client = self.local_cluster = None
        self.placements.clear()
        try:
            if client is not None:
                client.close(timeout=10)
        except Exception as exc:  # closing must go on to the cluster whatever the client did
            logger.debug("closing the Dask client: %s", exc)
        finally:
            if cluster is not None:
                try:
                    cluster.close(timeout=30)
                except Exception as exc:
                    logger.warning("closing the local Dask cluster: %s", exc)
            if self._saved_environ is not None:
                for key in set(os.environ) - set(self._saved_environ):
                    del os.environ[key]
                os.environ.update(self._saved_environ)
                self._saved_environ = None
            self._shards = {}
