"""An unreachable, malformed or wrong remote cluster: one line, in seconds, nothing left behind (issue 15, group 7).

Real CLI processes against real sockets: a closed port, and a local server that answers
with bytes no Dask scheduler would send. Nothing here needs a running cluster.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import pytest
from conftest import loopback_server

NNCOMPARE = [sys.executable, "-c", "from nncompare.cli import main; main()"]
#: A Client (or a JVM) that fails to connect takes 20 s to 110 s; the checks before it take seconds.
QUICK_S = 20


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_cli(*args, timeout=90):
    env = {k: v for k, v in os.environ.items() if not k.startswith("NNCOMPARE_DASK_")}  # default timeouts
    start = time.monotonic()
    result = subprocess.run([*NNCOMPARE, *args], capture_output=True, text=True, timeout=timeout, env=env)
    return result, time.monotonic() - start


def assert_one_line(result, code: int, says: str) -> None:
    assert result.returncode == code, result.stderr
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("nncompare: error:"), result.stderr
    assert says in result.stderr, result.stderr


@pytest.fixture
def not_a_scheduler():
    """A TCP server that answers every connection with an HTTP error, which no Dask scheduler would send, then
    hangs up."""
    with loopback_server(lambda conn, stop: conn.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n")) as port:
        yield f"tcp://127.0.0.1:{port}"


def test_a_closed_dask_scheduler_port_is_one_line_in_seconds_with_the_default_timeout():
    address = f"tcp://127.0.0.1:{closed_port()}"
    result, took = run_cli("run", "--engine", "dask", "--cluster", address, "--dataset", "digits")
    assert_one_line(result, 1, f"cannot reach the Dask scheduler at {address}")
    assert "connection refused" in result.stderr
    assert took < QUICK_S, took  # the Client's own 20 s timeout is never entered


def test_a_service_that_is_not_a_dask_scheduler_is_one_line(not_a_scheduler):
    result, took = run_cli("run", "--engine", "dask", "--cluster", not_a_scheduler, "--dataset", "digits")
    assert_one_line(result, 1, "answers, but not as a Dask scheduler")
    assert "Client.__del__" not in result.stderr
    assert took < QUICK_S, took


@pytest.mark.parametrize(
    "master, code, says",
    [
        ("spark://127.0.0.1:{port}", 1, "cannot reach a Spark master at spark://127.0.0.1:"),
        ("spark://127.0.0.1:{port},127.0.0.1:{port}", 1, "connection refused; 127.0.0.1:"),
        ("spark://nonsense", 2, "write a standalone master as spark://HOST:PORT"),
        ("spark://host:notaport", 2, "write a standalone master as spark://HOST:PORT"),
    ],
)
def test_an_unreachable_or_malformed_spark_master_is_one_line_without_java(master, code, says):
    master = master.format(port=closed_port())
    result, took = run_cli("run", "--engine", "spark", "--cluster", master, "--dataset", "digits")
    assert_one_line(result, code, says)
    assert "at org.apache" not in result.stderr and "WARN" not in result.stderr  # no JVM was started
    assert took < QUICK_S, took


def test_sweep_reports_why_its_configuration_failed(tmp_path):
    address = f"tcp://127.0.0.1:{closed_port()}"
    out = tmp_path / "sweep.jsonl"
    result, took = run_cli(
        "sweep", "--engines", "dask", "--cluster", address, "--dataset", "digits", "--epochs", "1", "--out", str(out)
    )
    assert result.returncode == 1, result.stderr
    failed = [line for line in result.stderr.splitlines() if "FAILED" in line]
    assert len(failed) == 1 and f"cannot reach the Dask scheduler at {address}" in failed[0], result.stderr
    assert "Traceback" not in result.stderr and "timed out" not in result.stderr
    assert not out.exists()
    assert took < 2 * QUICK_S, took
