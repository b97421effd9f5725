"""Clocks that tell working from waiting: wall time, thread CPU time and run-queue delay.

A thread's run-queue delay (time it was ready to run but had no CPU) is the second field of
``/proc/thread-self/schedstat``, in nanoseconds. Wall time minus that delay is almost as
steady under load as CPU time, yet it still counts sleeps, locks and socket waits; that is
what makes it the measure a gate can trust on a busy machine (``docs/evidence.md``).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass


def runqueue_s() -> float:
    """Seconds this thread has spent waiting for a CPU since it started (0.0 where Linux does not say)."""
    try:
        with open("/proc/thread-self/schedstat", "rb") as stat:
            return int(stat.read().split()[1]) / 1e9
    except (OSError, IndexError, ValueError):
        return 0.0


def each_thread(name: str):
    """(tid, bytes of ``/proc/self/task/<tid>/<name>``) for every thread of this process alive now."""
    try:
        tids = os.listdir("/proc/self/task")
    except OSError:
        return
    for tid in tids:
        try:
            with open(f"/proc/self/task/{tid}/{name}", "rb") as stat:
                yield int(tid), stat.read()
        except OSError:  # the thread ended meanwhile
            continue


def thread_clocks() -> dict[int, tuple[float, float]]:
    """Seconds on a CPU and waiting for one, by thread id, for every thread of this process alive now.

    The first two fields of ``/proc/self/task/<tid>/schedstat`` (nanoseconds); an empty dict
    where Linux does not say.
    """
    clocks = {}
    for tid, stat in each_thread("schedstat"):
        try:
            on_cpu, waiting = stat.split()[:2]
            clocks[tid] = (int(on_cpu) / 1e9, int(waiting) / 1e9)
        except ValueError:
            continue
    return clocks


def process_runqueue_s(clocks: dict[int, tuple[float, float]] | None = None) -> float:
    """Seconds all threads of this process alive now have waited for a CPU (0.0 where Linux does not say).

    A round's critical path crosses threads besides the one that trains: Dask's event loops
    and Spark's socket threads receive and send the weights. Their waits for a CPU are load,
    not work, and only a process-wide reading sees them. A thread that ends takes its share
    with it, so a difference of two readings is clamped at zero by its users. ``clocks``: a
    :func:`thread_clocks` reading already taken.
    """
    clocks = thread_clocks() if clocks is None else clocks
    return sum(waiting for _, waiting in clocks.values())


#: A thread computed alongside the busiest one when it wanted a CPU for at least this share of its time.
#: A BLAS pool's threads split a product evenly (0.9-1.0 of the calling thread's time, measured
#: on 30k-sample rounds); half keeps out OpenBLAS's idle threads, which spin for about 0.1 s after
#: the last product they shared (0.27 of such a round).
BUSY_SHARE = 0.5


def busy_threads(before: dict[int, tuple[float, float]], after: dict[int, tuple[float, float]]) -> int:
    """How many threads wanted a CPU (ran on one, or waited for one) for at least ``BUSY_SHARE`` of
    the busiest one's time between two readings.

    The parallelism a call got: 1 when BLAS ran on the calling thread alone, ``cores`` when its
    pool took a real share. Waiting counts with running because load is rarely even: with another
    program on one of two CPUs, the pool thread that lands there runs for a fraction of the time
    the calling thread spins waiting for it, and a count of CPU time alone read 1 in about a third
    of such rounds (docs/evidence.md, "Lost parallelism").
    """
    wanted = [sum(after[tid]) - sum(before.get(tid, (0.0, 0.0))) for tid in after]
    busiest = max(wanted, default=0.0)
    if busiest <= 0:
        return 0
    return sum(w >= BUSY_SHARE * busiest for w in wanted)


@dataclass(frozen=True)
class Reading:
    """The clocks of the calling thread read at one moment; with ``process=True`` also the run-queue
    delay of all this process's threads (a dozen files to read, so only where needed).

    The wall clock is read twice, before and after the others (``wall``, ``wall_after``), so that a
    span's wall time encloses its run-queue readings: Linux adds a wait for a CPU to the delay only
    once the thread is back on one, so a preemption while the clocks are read lands in the delay
    of the reading after it. Were that moment outside the span's wall time, a short span could wait
    longer than it lasted, and its load-corrected time would come out negative.
    """

    wall: float
    cpu: float
    runqueue: float
    process_runqueue: float | None = None
    wall_after: float | None = None

    @classmethod
    def now(cls, process: bool = False) -> Reading:
        wall, cpu, waited = time.perf_counter(), time.thread_time(), runqueue_s()
        process_waited = process_runqueue_s() if process else None
        return cls(wall, cpu, waited, process_waited, time.perf_counter())


@dataclass(frozen=True)
class Span:
    """What a thread did between two readings: wall, on-CPU and waiting-for-a-CPU seconds."""

    wall_s: float
    cpu_s: float
    runqueue_s: float
    #: every thread of the process, where both readings took it (else None)
    process_runqueue_s: float | None = None

    @classmethod
    def between(cls, start: Reading, end: Reading) -> Span:
        process = None
        if start.process_runqueue is not None and end.process_runqueue is not None:
            process = max(0.0, end.process_runqueue - start.process_runqueue)
        # from the start's first wall reading to the end's last: every run-queue reading is inside
        wall = (end.wall_after if end.wall_after is not None else end.wall) - start.wall
        return cls(wall, end.cpu - start.cpu, max(0.0, end.runqueue - start.runqueue), process)

    @property
    def active_s(self) -> float:
        """Wall time less run-queue delay: what the span took had it had a CPU whenever it wanted one."""
        return max(0.0, self.wall_s - self.runqueue_s)


class Stopwatch:
    """``with Stopwatch() as sw: ...`` then ``sw.span``."""

    span: Span

    def __enter__(self) -> Stopwatch:
        self._start = Reading.now()
        return self

    def __exit__(self, *exc) -> None:
        self.span = Span.between(self._start, Reading.now())


def load_corrected_s(driver: Span, workers_waits: float, concurrent: bool) -> float:
    """A round's (or an epoch's) seconds with every wait for a CPU taken out, on the driver and on the critical path.

    What the span would have taken had each thread on its critical path had a CPU whenever it
    wanted one: the driver's wall time, less what the driver process's threads waited for a CPU
    meanwhile (``driver``, read with ``process=True``: its own thread and the ones that move the
    weights), less the critical worker's waits (``workers_waits``: :func:`workers_waits_s`, summed
    over an epoch's rounds). Sleeps, locks, socket waits and extra CPU all still count; contention
    from other programs does not. Where the shards train in the driver's own thread
    (``concurrent`` False) the driver's waits already hold the workers'.
    """
    active = driver.wall_s - (driver.process_runqueue_s or 0.0)
    if concurrent:
        active -= workers_waits
    return max(0.0, active)


def workers_waits_s(updates) -> float:
    """The run-queue delay on the round's critical worker: the most any worker waited for a CPU.

    A worker's waits are its ``partial_fit`` thread's while it trained and its whole process's
    between its previous round and this one (the weights going out and coming in). The most of
    any worker stands for the critical one's: the same whether or not that worker was the last
    to answer, and never more than one worker's share.
    """
    return max((u.compute_runqueue_s + u.between_runqueue_s for u in updates), default=0.0)
