"""Ctrl-C and SIGTERM with real processes and real signals: one line, exit 130/143, nothing recorded or left."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import psutil
import pytest
from conftest import loopback_server

from nncompare.data import fetch
from nncompare.engines import EngineOptions
from nncompare.errors import DataError
from nncompare.interrupts import Interrupted, handled
from nncompare.job import JobSpec, ModelSpec, Topology
from nncompare.training import run_job

CLI = [sys.executable, "-c", "from nncompare.cli import main; main()"]
EXIT = {signal.SIGINT: 130, signal.SIGTERM: 143}
LONG_DIGITS_RUN = ["--dataset", "digits", "--hidden", "64", "--epochs", "100000", "--no-convergence-stop", "-q"]


def start(args, env=None):
    return subprocess.Popen(
        [*CLI, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, **(env or {})}
    )


def wait_for_line(proc, fragment: str, limit_s: float = 120) -> list[str]:
    """Read stderr until a line containing ``fragment``; the lines read so far."""
    seen, deadline = [], time.monotonic() + limit_s
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            break
        seen.append(line)
        if fragment in line:
            return seen
    raise AssertionError(f"never saw {fragment!r}: {''.join(seen)}")


def assert_interrupted(proc, sig, earlier: list[str], limit_s: float = 30) -> None:
    _, err = proc.communicate(timeout=limit_s)
    lines = [line for line in [*earlier, *err.splitlines()] if line.strip() and not line.startswith("nncompare: round")]
    lines = [line for line in lines if "engine started" not in line and "placed" not in line]
    assert proc.returncode == EXIT[sig], err
    assert len(lines) == 1 and lines[0].startswith(f"nncompare: error: interrupted by {sig.name}"), lines
    assert "Traceback" not in err


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_mid_training_stops_the_run_within_a_round_and_records_nothing(sig, tmp_path):
    out = tmp_path / "results.jsonl"
    proc = start(["run", *LONG_DIGITS_RUN, "-v", "--out", str(out)])
    earlier = wait_for_line(proc, "round 3 ")  # inside partial_fit most of the time from here on
    proc.send_signal(sig)
    assert_interrupted(proc, sig, earlier, limit_s=10)  # a digits round takes milliseconds
    assert not out.exists()


class SwallowEverything:
    """A round hook that, like scikit-learn's partial_fit, swallows whatever a signal raises inside it."""

    def __init__(self, at_round: int):
        self.at_round = at_round
        self.rounds_seen = 0

    def __call__(self, shard, position):
        if shard != 0:
            return
        self.rounds_seen = position.number
        if position.number == self.at_round:
            try:
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(0.5)  # the handler runs here and raises; we swallow it
            except BaseException:  # noqa: BLE001 - that is the point of this hook
                pass


def test_an_interrupt_a_library_swallowed_still_stops_the_run_after_that_round():
    hook = SwallowEverything(at_round=2)
    spec = JobSpec(
        dataset="digits",
        epochs=50,
        convergence_stop=False,
        model=ModelSpec(hidden_layer_sizes=(16,)),
        topology=Topology(workers=2),
    )
    with handled(), pytest.raises(Interrupted) as info:
        run_job(spec, options=EngineOptions(before_round=hook))
    assert info.value.exit_code == 130
    assert hook.rounds_seen == 2  # no third round started


def _descendants(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def _alive(proc: psutil.Process) -> bool:
    try:
        return proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_to_the_sweep_alone_ends_its_configuration_process(sig, tmp_path):
    out = tmp_path / "sweep.jsonl"
    proc = start(["sweep", "--out", str(out), *LONG_DIGITS_RUN[:-1]])
    deadline = time.monotonic() + 60
    children = []
    while time.monotonic() < deadline and not children:
        children = _descendants(proc.pid)
        time.sleep(0.1)
    assert children, "the sweep started no configuration process"
    time.sleep(2)  # the configuration is importing or training
    proc.send_signal(sig)  # the parent only: a supervisor's SIGTERM, not the terminal's group-wide Ctrl-C
    assert_interrupted(proc, sig, [])
    assert not [c for c in children if _alive(c)], "a configuration's process outlived the sweep"
    assert not out.exists()


def _trickle(conn, stop) -> None:
    conn.recv(65536)
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 10000000\r\n\r\n")
    while not stop.is_set():
        try:
            conn.sendall(b"\x1f")
        except OSError:
            break
        time.sleep(0.2)


@pytest.fixture
def trickle_server():
    """An HTTP server that promises a large file and sends one byte every 0.2 s."""
    with loopback_server(_trickle) as port:
        yield f"http://127.0.0.1:{port}/"


def test_a_stalled_download_stops_at_its_deadline_and_leaves_nothing(trickle_server, tmp_path, monkeypatch):
    monkeypatch.setenv("NNCOMPARE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("NNCOMPARE_BASE_URL", trickle_server)
    monkeypatch.setenv("NNCOMPARE_DOWNLOAD_TIMEOUT", "2")
    started = time.monotonic()
    with pytest.raises(DataError, match="took more than 2 s") as info:
        fetch("mnist", splits=("test",))
    assert time.monotonic() - started < 10
    assert "\n" not in str(info.value)
    assert list((tmp_path / "cache" / "mnist").iterdir()) == []


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_mid_download_leaves_no_partial_file(sig, trickle_server, tmp_path):
    cache = tmp_path / "cache"
    proc = start(
        ["data", "fetch", "--dataset", "mnist", "--split", "test"],
        env={"NNCOMPARE_CACHE_DIR": str(cache), "NNCOMPARE_BASE_URL": trickle_server},
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (cache / "mnist").is_dir() or not any((cache / "mnist").iterdir()):
        assert time.monotonic() < deadline, "the download never started"
        time.sleep(0.1)
    time.sleep(0.5)  # bytes are arriving
    proc.send_signal(sig)
    assert_interrupted(proc, sig, [])
    assert list((cache / "mnist").iterdir()) == []
