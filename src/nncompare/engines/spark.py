"""The Spark engine: one barrier stage of W long-lived tasks, weights over the driver's own sockets.

Why this shape. A cached RDD of shards trained by one ``mapPartitions`` per epoch re-sends
every shard from the JVM to a Python worker each epoch (0.57-0.90 s per Fashion-MNIST
epoch against 0.175 s of compute), and Spark's barrier ``allGather`` costs about one
second per call whatever its payload. So:

* ``start()`` brings up the SparkSession (timed apart as ``startup_s``);
* ``place()`` starts ONE barrier stage of W tasks (gang-scheduled, one per shard) in a
  background thread; each task connects to :class:`~nncompare.engines.weight_service.WeightService`
  on ``spark.driver.host``, shows this run's random token, receives its shard once and
  builds its :class:`~nncompare.trainer.ShardTrainer`, then stays alive;
* ``run_round()`` sends the averaged weights (raw float32) to the W tasks and gathers their
  updates over those sockets: a few milliseconds instead of a second;
* a failed task makes Spark retry the barrier stage (it is a shuffle-map stage so that
  Spark may retry it, up to ``spark.stage.maxConsecutiveAttempts``); the new tasks
  connect, get their shards again and resume from the last averaged weights the driver
  holds. If Spark gives up, the run stops with one line.

``RoundResult.compute_s`` is the slowest task's own ``partial_fit`` time;
``transfer_s`` is the rest of the round's critical path as the driver measures it: from
the moment it starts sending the weights to the moment the last update is decoded, minus
``compute_s`` (sends, receives, (de)serialisation on both sides, and any wait for a task
that was late to start computing). Per-task wire time is in ``RoundResult.extra``.
"""

from __future__ import annotations

import functools
import logging
import os
import re
import subprocess
import sys
import threading
import time
from urllib.parse import urlparse

import numpy as np

from nncompare.engines.base import Engine, RoundResult
from nncompare.engines.weight_service import TaskLost, WeightService, placement_frame, serve_shard
from nncompare.errors import EngineError, UsageError
from nncompare.trainer import ShardUpdate

log = logging.getLogger(__name__)

#: Spark retries a failed barrier stage up to this many attempts in all (its own default is 4).
STAGE_ATTEMPTS = 4
FAIL_ROUND_ENV = "NNCOMPARE_SPARK_FAIL_ROUND"
FAIL_SHARD_ENV = "NNCOMPARE_SPARK_FAIL_SHARD"
FAIL_TIMES_ENV = "NNCOMPARE_SPARK_FAIL_TIMES"
_BLAS_ENV = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS")
_MASTER = re.compile(r"^(local(\[.*\])?|spark://.+|yarn|k8s://.+|mesos://.+)$")


def _env_float(name: str, default: float) -> float:
    try:
        return float(os.environ.get(name, default))
    except ValueError:
        raise UsageError(f"{name} must be a number of seconds, got {os.environ[name]!r}") from None


def is_local_master(master: str) -> bool:
    return master.startswith("local")


def _loopback(cluster: str | None) -> bool:
    if not cluster:
        return True
    host = urlparse(cluster).hostname or ""
    return host == "localhost" or host.startswith("127.")


def session_conf(spec, cluster: str | None = None) -> dict[str, str]:
    """The Spark settings that give the job W executors of C cores and M memory, and one task per executor.

    ``local[W*C,F]`` gives W slots of C cores (``spark.task.cpus=C``) and lets a failed task
    be retried (plain ``local[N]`` aborts the job on the first failure). On a cluster the
    master honours what it knows: standalone reads ``spark.cores.max``/``executor.cores``,
    YARN and Kubernetes ``spark.executor.instances``.
    """
    topo = spec.topology
    w, c = topo.workers, topo.cores_per_worker
    master = cluster or f"local[{w * c},{STAGE_ATTEMPTS}]"
    if not _MASTER.match(master):
        raise UsageError(f"--cluster {cluster!r} is not a Spark master; write spark://host:7077, yarn or k8s://https://host:port")
    conf = {
        "spark.master": master,
        "spark.app.name": f"nncompare {spec.dataset} {w}x{c}",
        "spark.executor.instances": str(w),
        "spark.executor.cores": str(c),
        "spark.task.cpus": str(c),
        "spark.cores.max": str(w * c),
        "spark.dynamicAllocation.enabled": "false",  # barrier stages need a fixed set of slots
        "spark.task.maxFailures": str(STAGE_ATTEMPTS),
        "spark.stage.maxConsecutiveAttempts": str(STAGE_ATTEMPTS),
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.python.worker.reuse": "true",
        "spark.python.daemon.module": "nncompare.engines.spark_daemon",
        "spark.pyspark.python": os.environ.get("PYSPARK_PYTHON", sys.executable),
    }
    for name in _BLAS_ENV:
        conf[f"spark.executorEnv.{name}"] = str(c)
    if topo.memory_per_worker_bytes:
        conf["spark.executor.memory"] = f"{max(1, topo.memory_per_worker_bytes // 2**20)}m"
    if _loopback(cluster):
        # everything on this machine: keep the driver, and so the weight service, on loopback
        conf["spark.driver.host"] = "127.0.0.1"
        conf["spark.driver.bindAddress"] = "127.0.0.1"
    return conf


def build_session(spec, cluster: str | None = None, extra_conf: dict | None = None, check_java: bool = True):
    """Check Java, then start a SparkSession for ``spec``; the caller stops it with :func:`stop_session`."""
    if check_java:
        from nncompare.java import require_java

        require_java()
    from pyspark import SparkContext
    from pyspark.sql import SparkSession

    if SparkContext._active_spark_context is not None:
        raise EngineError("a SparkContext is already running in this process; pass its session to SparkEngine(session=...)")
    # pyspark takes the workers' Python from this variable, not from spark.pyspark.python;
    # by default they run this interpreter, which has nncompare installed.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    if _loopback(cluster):
        # every Spark server this JVM opens (block manager, RPC) then listens on loopback only
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    builder = SparkSession.builder
    for key, value in {**session_conf(spec, cluster), **(extra_conf or {})}.items():
        builder = builder.config(key, value)
    try:
        session = builder.getOrCreate()
    except Exception as exc:
        raise EngineError(f"could not start Spark on {cluster or 'this machine'}: {_first_line(exc)}") from None
    session.sparkContext.setLogLevel("ERROR")
    return session


def stop_session(session) -> None:
    """Stop the session and the JVM pyspark launched for it, so no process outlives the run."""
    from pyspark import SparkContext

    gateway = SparkContext._gateway
    try:
        session.stop()
    except Exception as exc:  # a dying JVM must not hide the error that brought us here
        log.warning("stopping Spark failed: %s", _first_line(exc))
    if gateway is None:
        return
    proc = getattr(gateway, "proc", None)
    try:
        gateway.shutdown()
    except Exception:
        pass
    SparkContext._gateway = None
    SparkContext._jvm = None
    if proc is not None:
        try:
            proc.stdin.close()  # the JVM exits when its stdin closes
            proc.wait(timeout=20)
        except (OSError, subprocess.TimeoutExpired):
            proc.kill()
            proc.wait(timeout=10)


def wait_for_executors(sc, count: int, timeout: float) -> int:
    """Wait until ``count`` executors registered; a barrier stage cannot start before it has its slots."""
    deadline = time.monotonic() + timeout
    while True:
        have = sc._jsc.sc().getExecutorMemoryStatus().size() - 1  # minus the driver
        if have >= count:
            return have
        if time.monotonic() > deadline:
            raise EngineError(f"the cluster gave {have} of {count} executors in {timeout:.0f} s; "
                              "does it have enough free cores and memory for --workers x --cores x --memory?")
        time.sleep(0.2)


def _first_line(exc: BaseException) -> str:
    """The line of a (Java-wrapped) Python error that says what happened, not the 200 lines around it."""
    text = str(exc)
    for pattern in (r"^\s*(\w+(?:Error|Exception): .+)$", r"(Job aborted due to stage failure: [^\n]+?)(?:\.|$)"):
        found = re.findall(pattern, text, flags=re.MULTILINE)
        if found:
            return found[-1].strip()[:300]
    return (text.strip().splitlines() or [type(exc).__name__])[0][:300]


def _barrier_task(address: tuple[str, int], token: str, connect_timeout: float, _rows):
    """What each barrier task runs: ``serve_shard`` for its partition, for the whole training."""
    from pyspark import BarrierTaskContext

    ctx = BarrierTaskContext.get()
    yield serve_shard(address, token, ctx.partitionId(), ctx.taskAttemptId(), connect_timeout)


class SparkEngine(Engine):
    """Data-parallel training on Spark; see the module docstring for the design."""

    name = "spark"

    def __init__(self, spec, cluster: str | None = None, session=None):
        super().__init__(spec, cluster)
        self.session = session
        self.owns_session = session is None
        self.service: WeightService | None = None
        self.java = None
        self.connect_timeout = _env_float("NNCOMPARE_SPARK_CONNECT_TIMEOUT", 300.0)
        self.round_timeout = _env_float("NNCOMPARE_SPARK_ROUND_TIMEOUT", 600.0)
        self._conns = []
        self._stage_thread: threading.Thread | None = None
        self._stage_error: BaseException | None = None
        self._stage_result: list | None = None
        self._rounds_done = 0
        self._attempts = 0
        self._failures: list[str] = []
        self._fail_round: int | None = None
        self._fail_shard = 0
        self._fail_left = 0
        self._job_group = None
        self._closed = False

    # --- life cycle -----------------------------------------------------------------------
    def start(self) -> None:
        if self.session is None:
            from nncompare.java import require_java

            self.java = require_java()
            if not self.cluster:
                self.spec.topology.check_fits_this_machine()
            self.session = build_session(self.spec, self.cluster, check_java=False)
        sc = self.session.sparkContext
        if not is_local_master(sc.master):
            wait_for_executors(sc, self.spec.topology.workers, _env_float("NNCOMPARE_SPARK_EXECUTOR_TIMEOUT", 180.0))
        self.driver_host = sc.getConf().get("spark.driver.host")

    def place(self, shards, classes, rounds_per_epoch=1):
        if self.session is None:
            raise EngineError("start the Spark engine before placing shards")
        w = self.spec.topology.workers
        if len(shards) != w:
            raise EngineError(f"{len(shards)} shards for {w} workers")
        self.shards = {s.index: s for s in shards}
        self.classes, self.rounds_per_epoch = np.asarray(classes), rounds_per_epoch
        fail = os.environ.get(FAIL_ROUND_ENV)
        self._fail_round = int(fail) if fail else None
        self._fail_shard = int(os.environ.get(FAIL_SHARD_ENV, "0"))
        self._fail_left = int(os.environ.get(FAIL_TIMES_ENV, "1")) if fail else 0
        self.service = WeightService(self.driver_host, w, self._placement, io_timeout=self.round_timeout)
        self._job_group = f"nncompare-{self.service.token[:12]}"

        sc = self.session.sparkContext
        task = functools.partial(_barrier_task, self.service.address, self.service.token, self.connect_timeout)
        # The shuffle after the barrier stage makes it a shuffle-map stage, which Spark may
        # retry after a task failure; a barrier *result* stage is aborted instead.
        stage = sc.parallelize(range(w), w).barrier().mapPartitions(task).coalesce(1, shuffle=True)
        self._attempts = 1
        self._stage_thread = threading.Thread(target=self._run_stage, args=(stage,), name="nncompare-barrier-stage", daemon=True)
        self._stage_thread.start()
        self._conns = self._wait_ready("placing the shards")

    def _placement(self, partition: int):
        """Called by the service when a task connects: its shard, and where in the epoch it joins."""
        fail = None
        if self._fail_left > 0 and partition == self._fail_shard:
            fail, self._fail_left = self._fail_round, self._fail_left - 1
        return placement_frame(self.shards[partition], self.classes, self.spec.model, self.spec.topology.cores_per_worker,
                               self.rounds_per_epoch, round_in_epoch=self._rounds_done % self.rounds_per_epoch,
                               fail_round=fail, idle_timeout=max(self.round_timeout, 60.0))

    def _run_stage(self, stage) -> None:
        sc = self.session.sparkContext
        sc.setJobGroup(self._job_group, "nncompare: barrier stage of long-lived training tasks", interruptOnCancel=True)
        try:
            self._stage_result = stage.collect()
        except BaseException as exc:  # noqa: BLE001 - reported to the driver thread, which raises it as one line
            self._stage_error = exc
            if self.service is not None:
                self.service.abort(self._stage_failure())

    def _stage_failure(self) -> str | None:
        if self._stage_error is not None:
            return f"Spark gave up on the training stage: {_first_line(self._stage_error)}"
        if self._stage_thread is not None and not self._stage_thread.is_alive() and not self._closed:
            return "the Spark training stage ended before training did"
        return None

    def _wait_ready(self, what: str):
        try:
            return self.service.wait_ready(self.connect_timeout, check=self._stage_failure)
        except RuntimeError as exc:
            raise EngineError(str(exc)) from None
        except TimeoutError as exc:
            raise EngineError(f"Spark tasks did not connect while {what}: {exc} "
                              f"(NNCOMPARE_SPARK_CONNECT_TIMEOUT={self.connect_timeout:.0f}); can the executors reach "
                              f"{self.service.host}:{self.service.port}?") from None

    # --- rounds ---------------------------------------------------------------------------
    def run_round(self, weights: np.ndarray | None) -> RoundResult:
        if not self._conns:
            raise EngineError("place the shards before running rounds")
        round_no = self._rounds_done + 1
        resumed, resume_s = 0, 0.0
        while True:
            start = time.perf_counter()
            try:
                replies = self.service.run_round(self._conns, round_no, weights)
                break
            except TaskLost as lost:
                t = time.perf_counter()
                self._failures.append(f"round {round_no}: {lost}")
                log.warning("Spark task lost in round %d (%s); waiting for Spark to retry the stage", round_no, lost)
                self.service.invalidate(self._conns)
                self._conns = []
                resumed += 1
                self._attempts += 1
                if self._attempts > 2 * STAGE_ATTEMPTS:  # a safety net: Spark gives up first, with its reason
                    raise EngineError(f"Spark training tasks failed {self._attempts - 1} times, last in round {round_no}: {lost}") from None
                self._conns = self._wait_ready(f"resuming round {round_no}")
                resume_s += time.perf_counter() - t
        self._rounds_done = round_no

        replies.sort(key=lambda r: r.partition)
        updates = [ShardUpdate(int(r.meta["shard"]), r.weights, int(r.meta["n_samples"]), float(r.meta["loss"]),
                               float(r.meta["compute_s"]), int(r.meta["peak_rss_bytes"]), str(r.meta["worker"]),
                               bool(r.meta["epoch_end"])) for r in replies]
        compute = max(u.compute_s for u in updates)
        span = max(r.done_at for r in replies) - start
        extra = {"wire_s": [r.rtt_s - u.compute_s for r, u in zip(replies, updates)],
                 "task_overhead_s": [float(r.meta.get("task_overhead_s", 0.0)) for r in replies]}
        if resumed:
            extra.update(resumed=resumed, resume_s=resume_s)
        return RoundResult(updates, compute_s=compute, transfer_s=max(0.0, span - compute), extra=extra)

    # --- shutdown -------------------------------------------------------------------------
    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            if self.service is not None:
                if self._conns:  # healthy tasks: ask them to finish, so the stage ends cleanly
                    self.service.stop_tasks()
                    if self._stage_thread is not None:
                        self._stage_thread.join(timeout=30)
                if self._stage_thread is not None and self._stage_thread.is_alive() and self.session is not None:
                    self.session.sparkContext.cancelJobGroup(self._job_group)
                    self._stage_thread.join(timeout=15)
                self.service.close()
        finally:
            if self.owns_session and self.session is not None:
                stop_session(self.session)
                self.session = None

    def describe(self) -> dict:
        info = {"mode": "one barrier stage of long-lived tasks; weights over the driver's socket service",
                "transfer_s": "round span on the driver (first weight byte sent to last update decoded) minus the slowest task's compute"}
        if self.session is not None:
            sc = self.session.sparkContext
            conf = sc.getConf()
            info.update(master=sc.master, app_id=sc.applicationId, spark_version=sc.version,
                        driver_host=conf.get("spark.driver.host"),
                        settings={k: conf.get(k, None) for k in ("spark.executor.instances", "spark.executor.cores",
                                                                   "spark.task.cpus", "spark.executor.memory", "spark.cores.max")},
                        memory_honoured=not is_local_master(sc.master))
        if self.java is not None:
            info["java"] = self.java.version_line
        if self.service is not None:
            stats = self.service.stats
            info.update(service=f"{self.service.host}:{self.service.port}", barrier_stage_attempts=self._attempts,
                        task_failures=list(self._failures), connections_accepted=stats.accepted,
                        connections_rejected=stats.rejected, stale_connections=stats.stale,
                        tasks=[{"shard": c.partition, "worker": c.worker, "place_s": c.place_s} for c in self._conns])
        return info
