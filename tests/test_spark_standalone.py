"""The remote path: the CLI against a real Spark standalone master and worker on 127.0.0.1.

The master and worker are pyspark's own (``$SPARK_HOME/bin/spark-class``, SPARK_HOME
being the pyspark package); without SPARK_HOME the worker cannot launch executors.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import psutil
import pytest

pyspark = pytest.importorskip("pyspark")

from nncompare.errors import EngineError  # noqa: E402
from nncompare.java import require_java  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_line(log: Path, text: str, proc: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if log.exists() and text in log.read_text(errors="replace"):
            return
        if proc.poll() is not None:
            break
        time.sleep(0.3)
    tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
    raise RuntimeError(f"{text!r} not in {log.name} after {timeout:.0f} s:\n{tail}")


def stop_group(proc: subprocess.Popen) -> None:
    """Stop a daemon and everything it started (its process group)."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=20)
    except ProcessLookupError:
        return
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


@pytest.fixture(scope="module")
def standalone(tmp_path_factory):
    """A master and one 2-core worker; yields (master URL, worker process)."""
    try:
        require_java()
    except EngineError as exc:
        pytest.skip(str(exc))
    home = Path(pyspark.__file__).parent
    tmp = tmp_path_factory.mktemp("spark-standalone")
    # SPARK_LOCAL_IP keeps every daemon and its web UI on loopback
    env = {**os.environ, "SPARK_HOME": str(home), "SPARK_LOCAL_IP": "127.0.0.1", "SPARK_LOG_DIR": str(tmp)}
    port = free_port()
    url = f"spark://127.0.0.1:{port}"
    spark_class = str(home / "bin" / "spark-class")
    procs = []
    try:
        master_log = tmp / "master.log"
        with open(master_log, "wb") as out:
            procs.append(
                subprocess.Popen(
                    [
                        spark_class,
                        "org.apache.spark.deploy.master.Master",
                        "--host",
                        "127.0.0.1",
                        "--port",
                        str(port),
                        "--webui-port",
                        str(free_port()),
                    ],
                    env=env,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )
        wait_for_line(master_log, "I have been elected leader", procs[0], 120)
        worker_log = tmp / "worker.log"
        with open(worker_log, "wb") as out:
            procs.append(
                subprocess.Popen(
                    [
                        spark_class,
                        "org.apache.spark.deploy.worker.Worker",
                        url,
                        "--host",
                        "127.0.0.1",
                        "--cores",
                        "2",
                        "--memory",
                        "2g",
                        "--webui-port",
                        str(free_port()),
                        "--work-dir",
                        str(tmp / "work"),
                    ],
                    env=env,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )
        wait_for_line(worker_log, "Successfully registered with master", procs[1], 120)
        yield url, procs
    finally:
        for proc in reversed(procs):
            stop_group(proc)


def executors_of(worker: subprocess.Popen) -> list[psutil.Process]:
    found = []
    for child in psutil.Process(worker.pid).children(recursive=True):
        try:
            if child.status() != psutil.STATUS_ZOMBIE and "CoarseGrainedExecutorBackend" in " ".join(child.cmdline()):
                found.append(child)
        except psutil.NoSuchProcess:
            pass
    return found


@pytest.mark.slow
def test_cli_trains_on_a_standalone_cluster_and_leaves_nothing_running(standalone, tmp_path, capsys):
    from nncompare.cli import main

    url, daemons = standalone
    worker = daemons[-1]
    out = tmp_path / "runs.jsonl"
    # children from earlier tests in this process (e.g. multiprocessing's resource tracker) are not ours
    before = {p.pid for p in psutil.Process().children()}
    main(
        [
            "run",
            "--engine",
            "spark",
            "--cluster",
            url,
            "--dataset",
            "digits",
            "--workers",
            "2",
            "--cores",
            "1",
            "--memory",
            "512m",
            "--epochs",
            "3",
            "--hidden",
            "32",
            "--batch-size",
            "64",
            "--learning-rate",
            "0.01",
            "--out",
            str(out),
            "-q",
        ]
    )
    assert "spark on digits: 2 workers x 1 core x " in capsys.readouterr().out
    record = json.loads(out.read_text().splitlines()[-1])
    info = record["engine_info"]
    assert record["cluster"] == url and info["master"] == url
    assert info["settings"]["spark.executor.memory"] == "512m" and info["memory_honoured"]
    assert record["epochs_run"] == 3 and record["test_accuracy"] > 0.8
    assert len(record["peak_rss_bytes"]["per_worker"]) == 2
    assert record["startup_s"] > 0 and info["barrier_stage_attempts"] == 1

    # the driver's JVM is gone with the session, and the worker has shut its executors down
    daemon_pids = {d.pid for d in daemons} | before
    assert not [
        p for p in psutil.Process().children() if p.pid not in daemon_pids and p.status() != psutil.STATUS_ZOMBIE
    ]
    deadline = time.monotonic() + 60
    while executors_of(worker) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not executors_of(worker)
