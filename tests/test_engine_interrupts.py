"""Ctrl-C and SIGTERM during ``run`` on the Dask and Spark engines, with real processes and signals.

Each run must stop within one round, end every process it started (Dask's worker processes,
Spark's JVM and its Python workers), write no record and exit 130/143 with one line. The
pids are collected while the run is alive, so a process that outlives it is found by psutil.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
import uuid

import psutil
import pytest
from processes import is_dask_worker
from test_interrupts import CLI, EXIT, wait_for_line

DIGITS_FOREVER = [
    "--dataset",
    "digits",
    "--hidden",
    "64",
    "--epochs",
    "100000",
    "--no-convergence-stop",
    "-v",
    "--workers",
    "2",
]


#: Every process a test's command starts carries this variable (children inherit it): one that outlives
#: the command is found by it even when it was never seen as a descendant (started and orphaned in between).
TAG = "INTERRUPT_TEST_TAG"


def start_group(args: list[str], command: list[str] = CLI) -> subprocess.Popen:
    """The CLI as a terminal starts it: the leader of its own process group."""
    return subprocess.Popen(
        [*command, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        env={**os.environ, TAG: str(uuid.uuid4())},
    )


class Family:
    """Every process descended from the run, as seen while it runs (psutil objects remember their start time)."""

    def __init__(self, pid: int):
        self.root = psutil.Process(pid)
        self.tag = self.root.environ().get(TAG)
        self.seen: dict[int, psutil.Process] = {}

    @contextlib.contextmanager
    def watching(self, every_s: float):
        """Look every ``every_s`` in a thread of its own while the block runs, so no short-lived child is missed."""
        stop = threading.Event()

        def watch():
            while not stop.is_set():
                self.look()
                time.sleep(every_s)

        thread = threading.Thread(target=watch, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            stop.set()
            thread.join()

    def look(self) -> int:
        try:
            for child in self.root.children(recursive=True):
                self.seen.setdefault(child.pid, child)
        except psutil.NoSuchProcess:
            pass
        return len(self.seen)

    def tagged(self) -> list[psutil.Process]:
        """Processes alive now that carry this run's tag, whoever their parent is."""
        found = []
        for p in psutil.process_iter():
            try:
                if p.pid != self.root.pid and self.tag and p.environ().get(TAG) == self.tag:
                    found.append(p)
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                continue
        return found

    def alive_after(self, limit_s: float = 15) -> list[str]:
        deadline = time.monotonic() + limit_s
        while True:
            candidates = {p.pid: p for p in [*self.seen.values(), *self.tagged()]}
            alive = [p for p in candidates.values() if _running(p)]
            if not alive or time.monotonic() > deadline:
                return [" ".join(p.cmdline())[:120] for p in alive]
            time.sleep(0.2)


def _running(p: psutil.Process) -> bool:
    try:
        return p.is_running() and p.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def signal_mid_training(
    proc: subprocess.Popen, sig: int, whole_group: bool, after: str = "round 3 "
) -> tuple[Family, list[str]]:
    family = Family(proc.pid)
    with family.watching(every_s=0.1):
        earlier = wait_for_line(proc, after, limit_s=180)
    family.look()
    if whole_group:
        os.killpg(proc.pid, sig)  # a terminal's Ctrl-C, or a service manager stopping the whole group
    else:
        proc.send_signal(sig)  # a supervisor's SIGTERM to the command alone
    return family, earlier


def finish(proc, family, sig, earlier, tmp_path, limit_s):
    try:
        _, err = proc.communicate(timeout=limit_s)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    # -v logs engine events as "nncompare: ..." lines; anything else is noise
    lines = [
        line
        for line in [*earlier, *err.splitlines()]
        if line.strip() and (line.startswith("nncompare: error:") or not line.startswith("nncompare: "))
    ]
    assert proc.returncode == EXIT[sig], err
    assert len(lines) == 1 and lines[0].startswith(f"nncompare: error: interrupted by {sig.name}"), err
    assert family.seen, "the run started no process"
    assert family.alive_after() == [], "processes outlived the run"
    assert not (tmp_path / "out.jsonl").exists()


@pytest.mark.parametrize("sig, whole_group", [(signal.SIGINT, True), (signal.SIGTERM, False), (signal.SIGTERM, True)])
def test_a_signal_mid_training_on_dask_ends_every_worker(sig, whole_group, tmp_path):
    proc = start_group(["run", "--engine", "dask", *DIGITS_FOREVER, "--out", str(tmp_path / "out.jsonl")])
    family, earlier = signal_mid_training(proc, sig, whole_group)
    finish(proc, family, sig, earlier, tmp_path, limit_s=60)


def test_ctrl_c_while_the_dask_workers_start_ends_them(tmp_path):
    """The moment the flaky Ctrl-C test hit: worker processes spawned but not yet registered."""
    proc = start_group(["run", "--engine", "dask", *DIGITS_FOREVER, "--out", str(tmp_path / "out.jsonl")])
    family = Family(proc.pid)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        workers = [p for p in family.seen.values() if is_dask_worker(p)]
        if len(workers) >= 2:
            break
        family.look()
        time.sleep(0.05)
    assert len(workers) >= 2, "never saw the two Dask worker processes start"
    os.killpg(proc.pid, signal.SIGINT)
    finish(proc, family, signal.SIGINT, [], tmp_path, limit_s=60)


@pytest.mark.parametrize("sig, whole_group", [(signal.SIGINT, True), (signal.SIGTERM, False)])
def test_a_signal_mid_training_on_spark_ends_the_jvm_and_its_workers(sig, whole_group, tmp_path):
    proc = start_group(["run", "--engine", "spark", *DIGITS_FOREVER, "--out", str(tmp_path / "out.jsonl")])
    family, earlier = signal_mid_training(proc, sig, whole_group)
    assert any("java" in " ".join(p.cmdline()) for p in family.seen.values() if p.is_running())
    # what the JVM prints as it starts (log4j, pyspark's pandas warning) is not the interrupt's to judge
    finish(proc, family, sig, [], tmp_path, limit_s=90)


# -- a signal at each moment of a run, on every engine that starts processes (issue 26, item 1) ---------------

#: Run first in the command's own process: wrap one function so that the run's process group gets ``SIG`` at
#: the ``NTH`` call of it (after ``DELAY`` s, from a timer, when given: the moment then lands inside the call).
SIGNAL_AT = """
import importlib, os, signal, threading, time

def signal_group():
    os.killpg(0, signal.{sig})  # the whole group, as a terminal's Ctrl-C or a service manager does

owner_path, _, name = {target!r}.rpartition(".")
module_name, _, cls = owner_path.partition(":")
owner = importlib.import_module(module_name)
owner = getattr(owner, cls) if cls else owner
original, calls = getattr(owner, name), []

def wrapper(*args, **kwargs):
    calls.append(1)
    if len(calls) == {nth}:
        if {delay}:
            threading.Timer({delay}, signal_group).start()
        else:
            signal_group()
            time.sleep(0.3)
    return original(*args, **kwargs)

if __name__ == "__main__":  # Dask's worker processes import this module again (spawn)
    setattr(owner, name, wrapper)
    from nncompare.__main__ import main

    main()
"""
#: moment -> (the function whose call it is, which call, delay): start-up to the record's writing.
MOMENTS = {
    "placement": ("nncompare.training.make_shards", 1, 0),  # after the engine started
    "evaluation": ("nncompare.model:Evaluator.accuracy", 2, 0),
    "close at the end": ("nncompare.training:TrainingRun.close", 1, 0),
    "record writing": ("nncompare.outfile.append_jsonl", 1, 0),
}
SPARK_START = {
    "jvm launching": ("pyspark.java_gateway.launch_gateway", 1, 1.0, signal.SIGTERM),
    "spark context starting": ("pyspark.core.context:SparkContext._do_init", 1, 0.5, signal.SIGTERM),
    # pyspark's own SIGINT handler is active here; it used to make py4j print two tracebacks
    "spark session starting": ("pyspark.sql.session:SparkSession.__init__", 1, 0.05, signal.SIGINT),
}
SHORT_RUN = ["--dataset", "digits", "--hidden", "16", "--epochs", "4", "--no-convergence-stop", "--workers", "2", "-q"]


def signal_at(tmp_path, engine: str, target: str, nth: int, delay: float, sig=signal.SIGTERM):
    """Run ``engine`` on a short job with ``sig`` sent to its group at the moment; returns (outcome, survivors)."""
    script = tmp_path / "signal_at.py"
    script.write_text(SIGNAL_AT.format(sig=sig.name, target=target, nth=nth, delay=delay))
    out = tmp_path / "out.jsonl"
    proc = start_group(["run", "--engine", engine, *SHORT_RUN, "--out", str(out)], [sys.executable, str(script)])
    family = Family(proc.pid)
    try:
        with family.watching(every_s=0.05):
            stdout, stderr = proc.communicate(timeout=240)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    errors = [line for line in stderr.splitlines() if line.startswith("nncompare: error:")]
    if proc.returncode == 0 and out.exists() and "test accuracy" in stdout and not errors:
        outcome = "finished"
    elif proc.returncode == EXIT[sig] and not out.exists() and len(errors) == 1 and "Traceback" not in stderr:
        outcome = "interrupted"
    else:
        outcome = f"exit {proc.returncode}, record {out.exists()}, stderr {stderr[-600:]!r}"
    return outcome, family.alive_after(limit_s=5)


@pytest.mark.slow
@pytest.mark.parametrize("engine", ["dask", "spark"])
@pytest.mark.parametrize("moment", MOMENTS)
def test_a_signal_at_any_moment_has_one_outcome_and_leaves_nothing(engine, moment, tmp_path):
    expected = "finished" if moment == "record writing" else "interrupted"
    assert signal_at(tmp_path, engine, *MOMENTS[moment]) == (expected, [])


@pytest.mark.slow
@pytest.mark.parametrize("moment", SPARK_START)
def test_a_signal_while_spark_starts_ends_its_jvm(moment, tmp_path):
    assert signal_at(tmp_path, "spark", *SPARK_START[moment]) == ("interrupted", [])
