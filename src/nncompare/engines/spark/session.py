"""The SparkSession for a job: its settings, its start and stop, and Spark's errors in one line.

Kept apart from the engine so that tests, benchmarks and the engine build the session the
same way, and so that the engine can instead reuse a session someone else started.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from urllib.parse import urlparse

from nncompare.engines.spark import jvm
from nncompare.engines.spark.checks import MASTER, REACH_S, check_master, check_memory  # noqa: F401
from nncompare.engines.spark.output import LOG_FILE_CONF, SparkOutput, first_line
from nncompare.errors import EngineError, UsageError
from nncompare.interrupts import Interrupted
from nncompare.trainer import WORKER_ENV

log = logging.getLogger(__name__)

#: Spark retries a failed barrier stage up to this many attempts in all (its own default is 4).
STAGE_ATTEMPTS = 4
_BLAS_ENV = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS")


def is_local_master(master: str) -> bool:
    return master.startswith("local")


def is_loopback(cluster: str | None) -> bool:
    """True when everything runs on this machine (no master, or a master on loopback)."""
    if not cluster:
        return True
    host = urlparse(cluster).hostname or ""
    return host == "localhost" or host.startswith("127.")


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def session_conf(spec, cluster: str | None = None, *, dashboard: bool = False) -> dict[str, str]:
    """The Spark settings that give the job W executors of C cores and M memory, and one task per executor.

    ``local[W*C,F]`` gives W slots of C cores (``spark.task.cpus=C``) and lets a failed task
    be retried (plain ``local[N]`` aborts the job on the first failure). On a cluster the
    master honours what it knows: standalone reads ``spark.cores.max``/``executor.cores``,
    YARN and Kubernetes ``spark.executor.instances``.
    """
    topo = spec.topology
    w, c = topo.workers, topo.cores_per_worker
    master = cluster or f"local[{w * c},{STAGE_ATTEMPTS}]"
    if not MASTER.match(master):
        raise UsageError(
            f"--cluster {cluster!r} is not a Spark master; write spark://host:7077, yarn or k8s://https://host:port"
        )
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
        "spark.python.daemon.module": "nncompare.engines.spark.daemon",
        "spark.pyspark.python": os.environ.get("PYSPARK_PYTHON", sys.executable),
    }
    for name in _BLAS_ENV:
        conf[f"spark.executorEnv.{name}"] = str(c)
    for name, value in WORKER_ENV.items():
        conf[f"spark.executorEnv.{name}"] = value
    if topo.memory_per_worker_bytes:
        conf["spark.executor.memory"] = f"{max(1, topo.memory_per_worker_bytes // 2**20)}m"
    if is_loopback(cluster):
        # everything on this machine: keep the driver, and so the weight service, on loopback
        conf["spark.driver.host"] = "127.0.0.1"
        conf["spark.driver.bindAddress"] = "127.0.0.1"
    if dashboard:
        conf["spark.ui.enabled"] = "true"
        conf["spark.ui.port"] = str(free_port(conf.get("spark.driver.bindAddress", "0.0.0.0")))
    return conf


def build_session(
    spec,
    cluster: str | None = None,
    extra_conf: Mapping[str, str] | None = None,
    *,
    dashboard: bool = False,
    check_java: bool = True,
):
    """Check what Spark would refuse in its JVM, and Java, then start a SparkSession for ``spec``; the caller
    stops it with :func:`~nncompare.engines.spark.jvm.stop_session`.

    ``extra_conf`` is applied after the engine's own settings, so a user's ``--conf`` wins.
    """
    wanted = {**session_conf(spec, cluster, dashboard=dashboard), **dict(extra_conf or {})}
    check_memory(wanted)
    if cluster:
        check_master(cluster, conf=wanted)
    if check_java:
        from nncompare.java import require_java

        require_java()
    from pyspark import SparkContext
    from pyspark.sql import SparkSession

    if SparkContext._active_spark_context is not None:
        raise EngineError(
            "a SparkContext is already running in this process; the Spark engine reuses its active session instead"
        )
    # pyspark takes the workers' Python from this variable, not from spark.pyspark.python;
    # by default they run this interpreter, which has nncompare installed.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    if is_loopback(cluster):
        # every Spark server this JVM opens (block manager, RPC) then listens on loopback only
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    output = SparkOutput.create()  # Spark's own output goes to this session's log file, not the terminal
    conf = {**session_conf(spec, cluster, dashboard=dashboard), **output.conf, **dict(extra_conf or {})}
    builder = SparkSession.builder
    for key, value in conf.items():
        builder = builder.config(key, str(value))
    # SparkContext replaces the SIGINT handler with one that raises a plain KeyboardInterrupt,
    # which scikit-learn swallows and nncompare.interrupts would not see: keep the one we had
    on_sigint = signal.getsignal(signal.SIGINT) if threading.current_thread() is threading.main_thread() else None
    children_before = jvm.children()
    try:
        with output.routed(), _py4j_tracebacks_silenced():
            _launch_jvm_alone(conf)
            session = builder.getOrCreate()
    except BaseException as exc:  # a signal included: the JVM being started must not outlive us
        jvm.end_started_jvm(children_before)
        if isinstance(exc, KeyboardInterrupt):  # pyspark's own SIGINT handler, installed while it started
            raise Interrupted(signal.SIGINT) from None
        if not isinstance(exc, Exception):
            raise
        raise EngineError(
            f"could not start Spark on {cluster or 'this machine'}: {first_line(exc)} (Spark's log: {output.log_file})"
        ) from None
    finally:
        if on_sigint is not None:
            signal.signal(signal.SIGINT, on_sigint)
    session.sparkContext.setLogLevel("ERROR")
    return session


@contextmanager
def _py4j_tracebacks_silenced() -> Iterator[None]:
    """While Spark starts, py4j's tracebacks for a call a signal cut short stay off the terminal.

    py4j logs them on the root logger (``logging.exception``), which also installs logging's
    default stderr handler; pyspark's own SIGINT handler, active while the SparkContext starts,
    makes a py4j call inside the one it interrupts and so always triggers one. A handler on the
    root logger for that time takes them; the signal's own one line says what happened.
    """
    root, quiet = logging.getLogger(), logging.NullHandler()
    root.addHandler(quiet)
    try:
        yield
    finally:
        root.removeHandler(quiet)


def _launch_jvm_alone(conf: Mapping[str, str]) -> None:
    """Start pyspark's JVM (as ``getOrCreate`` would) in a process group of its own.

    A terminal's Ctrl-C and a service manager's SIGTERM reach a whole process group. The JVM
    then died under a py4j call, which logged a traceback, and our close found no JVM to stop;
    alone in its group, it leaves the signal to this process, which stops it in order
    (:func:`~nncompare.engines.spark.jvm.stop_session`, or ``end_started_jvm`` during start-up).
    """
    from pyspark import SparkConf, SparkContext
    from pyspark.java_gateway import launch_gateway

    if SparkContext._gateway is not None or "PYSPARK_GATEWAY_PORT" in os.environ:
        return  # a JVM is already there (a notebook's, or spark-submit's)
    spark_conf = SparkConf()
    for key, value in conf.items():
        spark_conf.set(key, str(value))
    SparkContext._ensure_initialized(gateway=launch_gateway(spark_conf, popen_kwargs={"process_group": 0}))


def active_session():
    """The SparkSession already active in this thread, or None: the engine then runs on it and leaves it running."""
    try:
        from pyspark.sql import SparkSession
    except ModuleNotFoundError:
        return None
    return SparkSession.getActiveSession()


def wait_for_executors(sc, count: int, timeout: float) -> int:
    """Wait until ``count`` executors registered; a barrier stage cannot start before it has its slots."""
    deadline = time.monotonic() + timeout
    while True:
        have = sc._jsc.sc().getExecutorMemoryStatus().size() - 1  # minus the driver
        if have >= count:
            return have
        if time.monotonic() > deadline:
            raise EngineError(
                f"the cluster gave {have} of {count} executors in {timeout:.0f} s; "
                "does it have enough free cores and memory for --workers x --cores x --memory?"
            )
        time.sleep(0.2)


def session_facts(session, *, dashboard: bool = False) -> dict:
    """What a run's record says of its session: master, application, versions, the settings that size it."""
    sc = session.sparkContext
    conf = sc.getConf()
    facts = dict(
        master=sc.master,
        app_id=sc.applicationId,
        spark_version=sc.version,
        driver_host=conf.get("spark.driver.host"),
        settings={
            k: conf.get(k, None)
            for k in (
                "spark.executor.instances",
                "spark.executor.cores",
                "spark.task.cpus",
                "spark.executor.memory",
                "spark.cores.max",
            )
        },
        memory_honoured=not is_local_master(sc.master),
    )
    if sc.uiWebUrl and dashboard:
        facts["dashboard_url"] = sc.uiWebUrl
    if conf.get(LOG_FILE_CONF, None):
        facts["log_file"] = conf.get(LOG_FILE_CONF)
    return facts
