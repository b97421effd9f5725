"""Checks before work, and a deadline on every wait for a cluster (issue 26, items 4 and 5).

Real CLI processes: a cluster address where something answers that is not the engine's (an HTTP
server, an SSH banner, a port that accepts and says nothing, a closed port) must fail within 30 s
with one line, for Dask and for Spark; a local cluster this machine cannot hold, and what Spark
would refuse only inside its JVM, are refused before any worker or JVM starts.
"""

from __future__ import annotations

import os
import socket
import struct
import subprocess
import sys
import time

import psutil
import pytest
from conftest import loopback_server

from nncompare.engines.dask.capacity import WORKER_PROCESS_BYTES, check_local_resources
from nncompare.engines.spark.checks import _not_spark
from nncompare.errors import UsageError
from nncompare.job import Topology

CLI = [sys.executable, "-c", "from nncompare.cli import main; main()"]
DEADLINE_S = 30
DIGITS = ["--dataset", "digits", "--epochs", "1", "--hidden", "8", "-q"]


def run_cli(*args, env=None) -> tuple[subprocess.CompletedProcess, float]:
    start = time.monotonic()
    result = subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=120, env=env)
    return result, time.monotonic() - start


def _http_waiting_for_a_request(conn, stop):
    """Like ``python -m http.server``: reads until a blank line that never comes from a Dask or Spark client."""
    data = b""
    while b"\r\n\r\n" not in data and not stop.is_set():
        try:
            chunk = conn.recv(65536)
        except OSError:
            return
        if not chunk:
            return
        data += chunk


def _ssh_banner(conn, stop):
    conn.sendall(b"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n")
    stop.wait(60)


def _silent(conn, stop):
    stop.wait(60)


FAKES = {"http": _http_waiting_for_a_request, "ssh": _ssh_banner, "silent": _silent}
ADDRESS = {"dask": "tcp://127.0.0.1:{port}", "spark": "spark://127.0.0.1:{port}"}
SAYS = {"dask": "answers, but not as a Dask scheduler", "spark": "answers, but not as a Spark master"}


@pytest.mark.parametrize("engine", ["dask", "spark"])
@pytest.mark.parametrize("kind", FAKES)
def test_an_address_that_answers_but_not_as_the_engine_fails_in_one_line_within_30_s(engine, kind):
    with loopback_server(FAKES[kind], concurrent=True) as port:  # the checks connect more than once
        result, took = run_cli("run", "--engine", engine, "--cluster", ADDRESS[engine].format(port=port), *DIGITS)
    lines = result.stderr.splitlines()
    assert (result.returncode, len(lines), SAYS[engine] in result.stderr, took < DEADLINE_S) == (1, 1, True, True), (
        result.stderr,
        took,
    )


@pytest.mark.parametrize("engine", ["dask", "spark"])
def test_a_closed_port_fails_in_one_line_within_30_s(engine):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result, took = run_cli("run", "--engine", engine, "--cluster", ADDRESS[engine].format(port=port), *DIGITS)
    assert (result.returncode, result.stderr.count("\n"), "connection refused" in result.stderr, took < 30) == (
        1,
        1,
        True,
        True,
    ), (result.stderr, took)


def _answers_like_spark(conn, stop):
    """What a Spark endpoint answers to a StreamRequest for a file it does not serve: a StreamFailure frame."""
    conn.recv(65536)
    stream, error = b"/files/nncompare-probe", b"Stream '/files/nncompare-probe' was not found."
    body = struct.pack(">i", len(stream)) + stream + struct.pack(">i", len(error)) + error
    conn.sendall(struct.pack(">qb", 8 + 1 + len(body), 8) + body)


def test_the_probe_takes_what_a_spark_endpoint_answers_for_spark():
    with loopback_server(_answers_like_spark) as port, socket.create_connection(("127.0.0.1", port)) as sock:
        assert _not_spark(sock) is None


# -- item 5: what the machine or Spark cannot run, refused before any worker or JVM starts --------------


def test_more_dask_worker_processes_than_free_memory_holds_are_refused():
    one_too_many = psutil.virtual_memory().available // WORKER_PROCESS_BYTES + 1
    with pytest.raises(UsageError, match=f"^--workers {one_too_many}: each Dask worker process needs about"):
        check_local_resources(Topology(workers=one_too_many))


def test_a_local_dask_cluster_beyond_this_machines_memory_is_refused_in_one_line():
    result, took = run_cli("run", "--engine", "dask", *DIGITS, "--workers", "4", "--memory", "100TiB")
    says = "more than this machine's"
    assert (result.returncode, result.stderr.count("\n"), says in result.stderr, took < 30) == (2, 1, True, True), (
        result.stderr,
        took,
    )


SPARK_REFUSALS = {
    "executor-memory": (["--memory", "100m"], "below Spark's minimum of 450 MiB per executor"),
    "driver-memory": (["--spark-conf", "spark.driver.memory=200m"], "below Spark's minimum of 450 MiB for the driver"),
    "yarn": (["--cluster", "yarn"], "needs HADOOP_CONF_DIR or YARN_CONF_DIR"),
    "k8s-image": (["--cluster", "k8s://https://127.0.0.1:6443"], "needs the executors' image"),
    "mesos": (["--cluster", "mesos://127.0.0.1:5050"], "no longer on Mesos"),
}


@pytest.mark.parametrize("args, says", SPARK_REFUSALS.values(), ids=SPARK_REFUSALS)
def test_what_spark_would_refuse_in_its_jvm_is_one_line_before_it_starts(args, says):
    env = {k: v for k, v in os.environ.items() if k not in ("HADOOP_CONF_DIR", "YARN_CONF_DIR")}
    result, _ = run_cli("run", "--engine", "spark", *DIGITS, *args, env=env)
    assert (result.returncode, result.stderr.count("\n"), says in result.stderr) == (2, 1, True), result.stderr
