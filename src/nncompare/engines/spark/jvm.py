"""The JVM pyspark launched for a session, stopped so that nothing it started outlives the run.

pyspark leaves the JVM running when a signal cuts its start short, and its Python daemon and
workers when the JVM is killed rather than stopped; these functions end both, in order.
"""

from __future__ import annotations

import logging
import os
import subprocess

from nncompare import processes
from nncompare.engines.spark.output import first_line
from nncompare.interrupts import deferred

log = logging.getLogger(__name__)


def children() -> set[int]:
    """The pids under this process now: what a start that fails is compared against."""
    return {p.pid for p in processes.descendants(os.getpid())}


def end_started_jvm(children_before: set[int] | None = None) -> None:
    """Kill the JVM a failed or interrupted start left (pyspark's gateway process, and every process
    started since ``children_before``), and forget it, so nothing outlives the run.

    A signal during ``getOrCreate`` lands in pyspark's wait for the gateway or in a py4j call;
    pyspark then has no session to stop, and the JVM, which only watches its stdin once it is
    up, went on running with no parent.
    """
    import psutil
    from pyspark import SparkContext

    with deferred():  # a second signal must not cut the killing short
        doomed = []
        gateway = SparkContext._gateway
        proc = getattr(gateway, "proc", None) if gateway is not None else None
        if proc is not None:
            doomed.append(proc.pid)
        if children_before is not None:
            doomed += [p.pid for p in processes.descendants(os.getpid()) if p.pid not in children_before]
        found = []
        for pid in dict.fromkeys(doomed):
            try:
                found += [psutil.Process(pid), *processes.descendants(pid)]
            except psutil.NoSuchProcess:
                continue
        processes.end(found, grace_s=0)
        if proc is not None:
            proc.poll()  # reap it
        if gateway is not None:
            try:
                gateway.shutdown()
            except Exception:  # noqa: BLE001 - its JVM is gone; only the Python side is left to drop
                pass
        SparkContext._gateway = None
        SparkContext._jvm = None
        SparkContext._active_spark_context = None


def stop_session(session) -> None:
    """Stop the session and the JVM pyspark launched for it, so no process outlives the run."""
    from pyspark import SparkContext

    gateway = SparkContext._gateway
    proc = getattr(gateway, "proc", None) if gateway is not None else None
    descendants = processes.descendants(proc.pid) if proc is not None else []  # its Python daemon and workers
    try:
        session.stop()
    except Exception as exc:  # a dying JVM must not hide the error that brought us here
        log.warning("stopping Spark failed: %s", first_line(exc))
    if gateway is None:
        return
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
        processes.end(descendants, grace_s=5)
