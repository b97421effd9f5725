"""SparkEngine: one barrier stage of W long-lived tasks, weights over the driver's own sockets.

Why this shape: a cached RDD trained by one ``mapPartitions`` per epoch re-sends every
shard from the JVM each epoch (0.57-0.90 s per Fashion-MNIST epoch against 0.175 s of
compute), and Spark's barrier ``allGather`` costs about a second per call. So Spark only
starts W tasks together (one barrier stage, run by a background thread) and retries them;
each task connects to the :class:`~nncompare.engines.spark.service.WeightService`, gets its
shard once and trains round after round on the weights the driver sends it.

Recovery, in this order:

1. a task fails: every task of that stage attempt fails with it (the worker treats a dropped
   connection as a failure), Spark retries the barrier stage (it is a shuffle-map stage so
   that Spark may), the new tasks connect, and the round is run again from the weights
   the driver holds; the new tasks join the epoch at ``position.index``;
2. a retried attempt that does not bring all W tasks within ``connect_timeout_s`` (or that
   Spark launched with fewer than W tasks) is abandoned: its job group is cancelled and a
   fresh barrier stage (a new job) is started, up to :data:`MAX_JOBS` jobs per run;
3. Spark giving up on the stage, or the job limit, stops the run with one line.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from dataclasses import dataclass

import numpy as np

from nncompare.engines.base import Engine, RoundPosition, RoundResult
from nncompare.engines.spark.jvm import end_started_jvm, stop_session
from nncompare.engines.spark.output import first_line
from nncompare.engines.spark.service import WeightService
from nncompare.engines.spark.session import (
    active_session,
    build_session,
    is_local_master,
    session_facts,
    wait_for_executors,
)
from nncompare.engines.spark.tasks import TaskLost
from nncompare.engines.spark.wire import Placement, encode_placement, encode_round
from nncompare.engines.spark.worker import barrier_task
from nncompare.errors import EngineError
from nncompare.interrupts import deferred

log = logging.getLogger(__name__)

#: Barrier jobs one run may start: the first, and fresh ones after retries that never connected.
MAX_JOBS = 3
#: How often the driver looks at Spark while it waits for tasks to connect.
POLL_S = 0.5


@dataclass
class _Stage:
    """One barrier job: its generation (1, 2, ...), its job group, and how its ``collect`` ended."""

    generation: int
    group: str
    thread: threading.Thread | None = None
    error: BaseException | None = None
    done: bool = False


class SparkEngine(Engine):
    """Data-parallel training on Spark; see the module docstring for the design.

    It runs on the SparkSession already active in this thread when there is one (and then
    leaves it running), otherwise it starts its own from the job's topology, applying
    its ``conf`` setting after its own settings, and stops it in :meth:`close`.
    """

    def __init__(self, spec, cluster: str | None = None, options=None):
        super().__init__(spec, cluster, options)
        self.session = None
        self.owns_session = False
        self.service: WeightService | None = None
        self.java = None
        self.driver_host = None
        self._conns = []
        self._stage: _Stage | None = None
        self._attempts = 0
        self._recoveries: list[dict] = []
        self._abandoned: list[str] = []
        self._shard_bytes: dict[int, int] = {}
        self._closed = False
        self._starting = False

    # --- life cycle -----------------------------------------------------------------------
    def start(self) -> None:
        self.session = active_session()
        if self.session is None:
            from nncompare.java import require_java

            self.java = require_java()
            if not self.cluster:
                self.spec.topology.check_fits_this_machine()
            self._starting = True  # from here a JVM may exist before self.session does: close() ends it
            self.session = build_session(
                self.spec, self.cluster, self.settings.conf, dashboard=self.options.dashboard, check_java=False
            )
            self.owns_session = True
        sc = self.session.sparkContext
        if not is_local_master(sc.master):
            wait_for_executors(sc, self.spec.topology.workers, self.settings.executor_timeout_s)
        self.driver_host = sc.getConf().get("spark.driver.host")
        # The barrier stage starts with the engine: its tasks (Python workers forked from the
        # daemon that has scikit-learn loaded) connect now and wait for their shards, so that
        # placement only moves data.
        self.service = WeightService(
            self.driver_host, dict.fromkeys(range(self.spec.topology.workers)), io_timeout=self.settings.round_timeout_s
        )
        self._launch()
        self._await_tasks("starting the training tasks", may_restart=False, placed=False)

    def place(self, shards, classes):
        if self.service is None:
            raise EngineError("start the Spark engine before placing shards")
        w = self.spec.topology.workers
        if sorted(s.index for s in shards) != list(range(w)):
            raise EngineError(f"{len(shards)} shards for {w} workers")
        idle_s = max(self.settings.round_timeout_s, 60.0)  # a task waits this long for the next round
        # uint8 pixels where the shard has them (the task's trainer scales them): a quarter of the bytes
        placements = {
            s.index: encode_placement(
                Placement(
                    s.index,
                    s.wire_x,
                    s.y,
                    np.asarray(classes),
                    self.spec.model,
                    self.spec.topology.cores_per_worker,
                    idle_s,
                    "tree" if self.settings.tree_exchange else "driver",
                )
            )
            for s in shards
        }
        self._shard_bytes = {s.index: s.nbytes for s in shards}
        self.service.set_placements(placements)
        self._conns = self._await_tasks("placing the shards", may_restart=False)
        if self.settings.tree_exchange:
            try:
                self.service.wire_tree(self._conns)
            except TaskLost as exc:
                raise EngineError(f"Spark tasks could not connect to each other: {exc}") from None

    def _launch(self) -> None:
        """Start a barrier job (generation g) in a background thread; only its tasks are admitted from now on."""
        generation = self._stage.generation + 1 if self._stage else 1
        stage = _Stage(generation, f"nncompare-{self.service.token[:12]}-{generation}")
        self.service.admit_generation(generation)
        sc = self.session.sparkContext
        task = functools.partial(
            barrier_task,
            self.service.address,
            self.service.token,
            generation,
            self.settings.connect_timeout_s,
            self.options.before_round,
        )
        # The shuffle after the barrier stage makes it a shuffle-map stage, which Spark may
        # retry after a task failure; a barrier *result* stage is aborted instead.
        rdd = (
            sc.parallelize(range(self.spec.topology.workers), self.spec.topology.workers).barrier().mapPartitions(task)
        )
        rdd = rdd.coalesce(1, shuffle=True)
        stage.thread = threading.Thread(
            target=self._collect, args=(stage, rdd), name=f"nncompare-barrier-{generation}", daemon=True
        )
        self._stage = stage
        self._attempts += 1
        stage.thread.start()

    def _collect(self, stage: _Stage, rdd) -> None:
        self.session.sparkContext.setJobGroup(
            stage.group, "nncompare: long-lived training tasks", interruptOnCancel=True
        )
        try:
            rdd.collect()
        except BaseException as exc:  # noqa: BLE001 - the driver thread reads it and raises one line
            stage.error = exc
        finally:
            stage.done = True

    def _short_attempt(self) -> str | None:
        """Why the live barrier attempt cannot bring all W tasks, read from Spark's status tracker; None if it can."""
        tracker, w = self.session.sparkContext.statusTracker(), self.spec.topology.workers
        for job_id in tracker.getJobIdsForGroup(self._stage.group):
            job = tracker.getJobInfo(job_id)
            info = tracker.getStageInfo(min(job.stageIds)) if job and job.stageIds else None
            if info is not None and info.currentAttemptId > 0 and 0 < info.numTasks < w:
                attempt = info.currentAttemptId
                return f"Spark retried the barrier stage (attempt {attempt}) with {info.numTasks} of {w} tasks"
        return None

    def _await_tasks(self, what: str, may_restart: bool, placed: bool = True):
        """Wait until every shard has a placed task of the live barrier job (``placed=False``: a connected
        one); restart the job when a retry stalls."""
        timeout = self.settings.connect_timeout_s
        deadline = time.monotonic() + timeout
        wait = self.service.wait_ready if placed else self.service.wait_hello
        while True:
            try:
                return wait(max(0.0, min(POLL_S, deadline - time.monotonic())))
            except TimeoutError as exc:
                waiting = str(exc)
            stage = self._stage
            if stage.done:
                if stage.error is not None:
                    raise EngineError(f"Spark gave up on the training stage: {first_line(stage.error)}")
                raise EngineError("the Spark training stage ended before training did")
            stalled = self._short_attempt() if may_restart else None
            if stalled is None and time.monotonic() < deadline:
                continue
            if not may_restart:
                raise EngineError(
                    f"Spark tasks did not connect while {what}: {waiting} in {timeout:.0f} s "
                    f"(connect_timeout_s); can the executors reach {self.service.host}:{self.service.port}?"
                )
            reason = stalled or f"{waiting} in {timeout:.0f} s"
            if stage.generation >= MAX_JOBS:
                raise EngineError(
                    f"Spark could not bring back the training tasks while {what}: {reason}; "
                    f"gave up after {MAX_JOBS} barrier jobs"
                )
            self._restart(reason)
            deadline = time.monotonic() + timeout

    def _restart(self, reason: str) -> None:
        """Abandon the live barrier job (cancel its group, let its slots free up) and start a fresh one."""
        old = self._stage
        self._abandoned.append(f"barrier job {old.generation}: {reason}")
        log.warning("abandoning Spark barrier job %d (%s); starting a fresh one", old.generation, reason)
        self.session.sparkContext.cancelJobGroup(old.group)
        old.thread.join(timeout=60)  # a new gang needs the slots the old one holds
        self._launch()

    # --- rounds ---------------------------------------------------------------------------
    def run_round(self, weights: np.ndarray | None, position: RoundPosition) -> RoundResult:
        if not self._conns:
            raise EngineError("place the shards before running rounds")
        frame = encode_round(position, weights)
        lost = False
        recovery_s = 0.0
        while True:
            try:
                if self.settings.tree_exchange:
                    partial, rtt = self.service.run_tree_round(self._conns[0], frame)
                else:
                    replies = self.service.run_round(self._conns, frame)
                break
            except TaskLost as exc:
                noticed = time.perf_counter()  # recovery starts here (engines.base): the wait that noticed is not in it
                log.warning(
                    "Spark task lost in round %d (%s); waiting for Spark to retry the stage", position.number, exc
                )
                self.service.drop(self._conns)
                self._conns = []
                self._attempts += 1
                self._conns = self._await_tasks(f"resuming round {position.number}", may_restart=True)
                if self.settings.tree_exchange:
                    try:
                        self.service.wire_tree(self._conns)
                    except TaskLost as again:  # the retry lost a task too: wait for the next one
                        log.warning("Spark tasks lost while wiring the tree (%s)", again)
                seconds = time.perf_counter() - noticed
                recovery_s += seconds
                lost = True
                # a barrier retry replaces every task of the stage, so every shard is recovered
                self._recoveries.append(
                    {
                        "round": position.number,
                        "epoch": position.epoch,
                        "shards": sorted(c.partition for c in self._conns),
                        "seconds": seconds,
                        "reason": str(exc),
                    }
                )
        recovered = sorted(c.partition for c in self._conns) if lost else []
        if self.settings.tree_exchange:
            updates, notes = partial.in_shard_order()
            extra = {"task_overhead_s": [n["task_overhead_s"] for n in notes], "root_round_trip_s": rtt}
            return RoundResult(updates, recovered, recovery_s, extra, average=partial.mean, average_s=partial.average_s)
        replies.sort(key=lambda r: r.update.shard)
        extra = {
            "wire_s": [r.rtt_s - r.update.compute_s for r in replies],
            "task_overhead_s": [r.task_overhead_s for r in replies],
        }
        return RoundResult([r.update for r in replies], recovered_shards=recovered, recovery_s=recovery_s, extra=extra)

    # --- shutdown -------------------------------------------------------------------------
    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        with deferred():  # a signal meanwhile is recorded: the close runs to its end, the JVM included
            try:
                if self.service is not None:
                    stage = self._stage
                    if self._conns and stage is not None:  # healthy tasks: ask them to finish (a clean stage end)
                        self.service.stop_tasks()
                        stage.thread.join(timeout=30)
                    if stage is not None and stage.thread.is_alive() and self.session is not None:
                        self.session.sparkContext.cancelJobGroup(stage.group)
                        stage.thread.join(timeout=15)
                    self.service.close()
            finally:
                if self.owns_session and self.session is not None:
                    stop_session(self.session)
                elif self._starting:  # a signal came before build_session returned, or before its result was kept
                    end_started_jvm()
                self.session = None

    def describe(self) -> dict:
        info = {
            "mode": "one barrier stage of long-lived tasks; weights over the driver's socket service",
            "owns_session": self.owns_session,
            "warnings": [],
        }
        if self.session is not None:
            info.update(session_facts(self.session, dashboard=self.options.dashboard))
        if self.java is not None:
            info["java"] = self.java.version_line
        if self.service is not None:
            stats = self.service.stats
            info.update(
                exchange="tree" if self.settings.tree_exchange else "driver",
                service=f"{self.service.host}:{self.service.port}",
                barrier_stage_attempts=self._attempts,
                barrier_jobs=self._stage.generation if self._stage else 0,
                barrier_jobs_abandoned=list(self._abandoned),
                recoveries=list(self._recoveries),
                connections_accepted=stats.accepted,
                connections_rejected=stats.rejected,
                rejections=list(stats.rejections),
                stale_connections=stats.stale,
                placement={
                    str(c.partition): {
                        "worker": c.worker,
                        "bytes": self._shard_bytes.get(c.partition),
                        "seconds": c.place_s,
                    }
                    for c in sorted(self._conns, key=lambda c: c.partition)
                },
            )
        return info
