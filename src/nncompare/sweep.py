"""Sweeps: a grid of configurations, one fresh process each, appended to a results file.

One process per configuration keeps engines' state (a Dask cluster, a JVM, BLAS thread
pools, imported modules' caches) from leaking from one measurement into the next. A
configuration is identified by its spec's key and its repeat index; those already in the
results file are skipped, so a sweep can be interrupted at any point and started again.
A record is appended only once its run has finished, in one locked write
(:func:`nncompare.outfile.append_jsonl`), so an interruption never leaves half a line.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from nncompare import processes
from nncompare.errors import NNCompareError, UsageError
from nncompare.interrupts import (
    Interrupted,
    deferred,
    finishing,
    handled,
    raise_if_interrupted,
    settle,
)
from nncompare.job import JobSpec, Topology, format_memory
from nncompare.outfile import lost_record_error, save_record
from nncompare.record_schema import read_records

RECORD_MARKER = "NNCOMPARE-RECORD "
#: Each line the configuration's process prints with this prefix is one of its progress events (JSON).
EVENT_MARKER = "NNCOMPARE-EVENT "
_CHILD = "from nncompare.sweep import child_main; child_main()"


@dataclass(frozen=True)
class Run:
    """One configuration of a sweep: a spec, its repeat index and where it runs."""

    spec: JobSpec
    repeat: int = 0
    cluster: str | None = None
    tags: dict = field(default_factory=dict, compare=False, hash=False)  # merged into the record

    @property
    def key(self) -> tuple[str, int]:
        return (self.spec.key(), self.repeat)

    def describe(self) -> str:
        t = self.spec.topology
        where = f" on {self.cluster}" if self.cluster else ""
        return (
            f"{self.spec.engine}{where} {self.spec.dataset} {t.workers}w x {t.cores_per_worker}c x "
            f"{format_memory(t.memory_per_worker_bytes)}, {self.spec.epochs} epochs, "
            + (f"{self.spec.train_samples} samples, " if self.spec.train_samples else "")
            + f"repeat {self.repeat}"
        )

    def summary(self) -> dict:
        """The configuration as plain JSON (what ``--dry-run --json`` prints)."""
        return {
            "spec_key": self.spec.key(),
            "repeat": self.repeat,
            "cluster": self.cluster,
            "spec": self.spec.to_dict(),
        }


def grid(
    base: JobSpec,
    *,
    engines: Iterable[str],
    workers: Iterable[int],
    cores: Iterable[int],
    memory: Iterable[int | None],
    epochs: Iterable[int],
    repeats: int = 1,
    cluster: str | None = None,
) -> list[Run]:
    """Every combination, repeats innermost; duplicates (same key) appear once."""
    if repeats < 1:
        raise UsageError("--repeats must be at least 1")
    runs, seen = [], set()
    for engine, w, c, m, e in itertools.product(engines, workers, cores, memory, epochs):
        spec = base.with_(engine=engine, epochs=e, topology=Topology(w, c, m))
        if not cluster:
            spec.topology.check_fits_this_machine()
        for r in range(repeats):
            run = Run(spec, r, cluster)
            if run.key not in seen:
                seen.add(run.key)
                runs.append(run)
    return runs


def completed(path: str | os.PathLike) -> set[tuple[str, int]]:
    """(spec_key, repeat) of every record already in ``path`` (nothing if it does not exist yet).

    Every line is checked first: a bad one stops the sweep, named by file and line.
    """
    if not Path(path).exists():
        return set()
    return {(r["spec_key"], int(r.get("repeat", 0))) for r in read_records(path) if "spec_key" in r}


class RunFailed(NNCompareError):
    """A configuration's process failed; the message is its one-line error."""


class _EventLines(logging.Handler):
    """In a configuration's process: each log record as a ``log`` event for the sweep to print."""

    def emit(self, record: logging.LogRecord) -> None:
        _emit({"stage": "log", "logger": record.name, "message": record.getMessage()})


def _emit(event: dict) -> None:
    print(EVENT_MARKER + json.dumps(event), flush=True)


def child_main() -> None:
    """Body of the per-configuration process: run one job, print its record on one marked line.

    With ``events`` in the payload it also prints its progress events and (``verbose``,
    ``dashboard``) its log lines, each on one marked line, as they happen.
    """
    from nncompare.engines import EngineOptions
    from nncompare.training import run_job

    payload = json.loads(sys.argv[1])
    events = payload.get("events", False)
    chosen = "nncompare" if payload.get("verbose") else "nncompare.dashboard" if payload.get("dashboard") else None
    if events and chosen:
        logger = logging.getLogger(chosen)
        logger.setLevel(logging.INFO)
        logger.addHandler(_EventLines())
    try:
        with handled():
            options = EngineOptions.from_environ(
                values=payload.get("settings"), dashboard=bool(payload.get("dashboard"))
            )
            record = run_job(
                JobSpec.from_dict(payload["spec"]),
                data_dir=payload.get("data_dir"),
                cluster=payload.get("cluster"),
                progress=_emit if events else None,
                options=options,
            )
            with finishing():  # the run's one outcome: interrupted before this line, finished from here on
                print(RECORD_MARKER + json.dumps(record), flush=True)
    except NNCompareError as exc:
        print(f"{type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
        sys.exit(exc.exit_code)
    except Interrupted as exc:
        print(f"interrupted by {exc}", file=sys.stderr, flush=True)
        sys.exit(exc.exit_code)
    finally:
        settle()  # decided: a signal while the interpreter exits must not turn it into death by signal


def run_in_subprocess(
    run: Run,
    *,
    data_dir=None,
    timeout_s: float | None = None,
    on_event: Callable[[dict], None] | None = None,
    settings: dict | None = None,
    dashboard: bool = False,
    verbose: bool = False,
) -> dict:
    """Run one configuration in a fresh Python process (its own process group) and return its record.

    ``settings`` (engine -> {setting: value}, the flags' values) and ``dashboard`` reach the
    process's EngineOptions. With ``on_event``, the process's progress events (and with
    ``verbose`` its log lines, as ``log`` events) are passed to it as they happen.
    """
    payload = json.dumps(
        {
            "spec": run.spec.to_dict(),
            "cluster": run.cluster,
            "data_dir": str(data_dir) if data_dir else None,
            "settings": settings or {},
            "dashboard": dashboard,
            "verbose": verbose,
            "events": on_event is not None,
        }
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", _CHILD, payload],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    lines: queue.Queue = queue.Queue()
    err: list[str] = []
    readers = [threading.Thread(target=lambda: [*map(lines.put, proc.stdout), lines.put(None)], daemon=True)]
    readers.append(threading.Thread(target=err.extend, args=(proc.stderr,), daemon=True))
    for reader in readers:
        reader.start()
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    record_line = None
    try:
        while True:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                raise subprocess.TimeoutExpired(proc.args, timeout_s)
            try:
                line = lines.get(timeout=0.5 if left is None else min(0.5, left))
            except queue.Empty:
                if proc.poll() is not None:
                    processes.end_process_group(proc)  # what it left behind would hold its output open
                continue
            if line is None:
                break
            if line.startswith(RECORD_MARKER):
                record_line = line
            elif line.startswith(EVENT_MARKER) and on_event is not None:
                on_event(json.loads(line[len(EVENT_MARKER) :]))
        proc.wait(timeout=None if deadline is None else max(0.1, deadline - time.monotonic()))
        processes.end_process_group(proc)
        readers[1].join(timeout=5)
    except subprocess.TimeoutExpired:
        processes.stop_process_group(proc)
        raise RunFailed(f"timed out after {timeout_s:g} s") from None
    except BaseException:  # Ctrl-C or anything else: never leave the child running
        processes.stop_process_group(proc)
        raise
    if proc.returncode != 0 or record_line is None:
        last = [line.strip() for line in err if line.strip()]
        raise RunFailed(last[-1] if last else f"the run's process exited with status {proc.returncode}")
    return json.loads(record_line[len(RECORD_MARKER) :])


@dataclass
class SweepOutcome:
    ran: int = 0
    skipped: int = 0
    failed: list[tuple[Run, str]] = field(default_factory=list)
    skipped_engines: dict[str, str] = field(default_factory=dict)


def run_sweep(
    runs: list[Run],
    out: str | os.PathLike,
    *,
    data_dir=None,
    timeout_s: float | None = None,
    echo: Callable[[str], None] = lambda s: None,
    give_up_on_engine: bool = False,
    runner=run_in_subprocess,
    on_event: Callable[[dict], None] | None = None,
    **child,
) -> SweepOutcome:
    """Run every configuration of ``runs`` not yet in ``out``, appending each record as it finishes.

    With ``give_up_on_engine``, an engine whose first attempted run fails is not tried again
    in this sweep (its extra is missing, or its cluster does not start); the reason is kept.
    ``on_event`` gets a ``configuration`` event before each configuration, its own events, then
    ``finished``; ``child`` (``settings``, ``dashboard``, ``verbose``) goes to ``runner``.
    """
    done = completed(out)
    todo = [r for r in runs if r.key not in done]
    outcome = SweepOutcome(skipped=len(runs) - len(todo))
    if outcome.skipped:
        echo(f"{outcome.skipped} of {len(runs)} configurations already in {out}; running the other {len(todo)}")
    worked: set[str] = set()
    eta = TimeLeft(len(todo))
    for i, run in enumerate(todo, 1):
        engine = run.spec.engine
        if engine in outcome.skipped_engines:
            eta.skip()
            continue
        start = time.perf_counter()
        if on_event is not None:
            on_event({"stage": "configuration", "index": i, "total": len(todo), "describe": run.describe()})
            child["on_event"] = on_event
        try:
            record = runner(run, data_dir=data_dir, timeout_s=timeout_s, **child)
        except RunFailed as exc:
            outcome.failed.append((run, str(exc)))
            echo(f"[{i}/{len(todo)}] {run.describe()}: FAILED: {exc}; {eta.step()}")
            if give_up_on_engine and engine not in worked:
                outcome.skipped_engines[engine] = str(exc)
                echo(f"skipping engine {engine}: its first run failed ({exc})")
            continue
        finally:
            if on_event is not None:
                on_event({"stage": "finished", "index": i, "total": len(todo)})
        record = {**record, "repeat": run.repeat, **run.tags}
        with deferred():  # the configuration finished: its line is written whole, then a signal is honoured
            saved = save_record(out, record)
        if saved.problem:  # the file takes no more records: stop here, this one kept elsewhere
            raise lost_record_error(out, saved)
        worked.add(engine)
        outcome.ran += 1
        stop = " (converged)" if record.get("stopped_early") else ""
        echo(
            f"[{i}/{len(todo)}] {run.describe()}: {record['wall_s']:.2f} s, {record['epochs_run']} epochs run{stop}, "
            f"accuracy {record['test_accuracy']:.4f}  ({time.perf_counter() - start:.1f} s with process start); "
            f"{eta.step()}"
        )
        raise_if_interrupted()  # a signal while this record was written: it is kept, the sweep stops here
    return outcome


def format_duration(seconds: float) -> str:
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    return f"{minutes} min {secs:02d} s" if minutes else f"{secs} s"


class TimeLeft:
    """The sweep's progress: runs left and the time they should take at the mean pace so far."""

    def __init__(self, total: int):
        self.total, self.finished, self.started = total, 0, time.perf_counter()

    def skip(self) -> None:
        self.total -= 1

    def step(self) -> str:
        self.finished += 1
        left = self.total - self.finished
        if left <= 0:
            return "all done"
        pace = (time.perf_counter() - self.started) / self.finished
        return f"{left} left, about {format_duration(pace * left)} to go"
