"""The clocks behind the gate's load-corrected seconds: waiting for a CPU is told apart from working and sleeping.

Contention is made certain, not hoped for: the measured thread and a spinning child are pinned to
one CPU, so whatever the machine's load, the thread must wait for that CPU about as long as it runs.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from nncompare.clocks import (
    Reading,
    Span,
    busy_threads,
    load_corrected_s,
    process_runqueue_s,
    runqueue_s,
    thread_clocks,
    workers_waits_s,
)
from nncompare.rounds import RoundPosition, ShardUpdate

pytestmark = pytest.mark.skipif(
    not os.path.exists("/proc/thread-self/schedstat"), reason="run-queue delay is read from Linux's schedstat"
)


def spin(seconds: float) -> None:
    until = time.thread_time() + seconds
    while time.thread_time() < until:
        pass


def spinner_on(cpu: int) -> subprocess.Popen:
    """A child process that spins on ``cpu`` alone until it is killed."""
    return subprocess.Popen([sys.executable, "-c", f"import os; os.sched_setaffinity(0, {{{cpu}}})\nwhile True: pass"])


def primed_trainer(cores: int):
    """A trainer of 2000 random rows whose first round (the model's initialisation) is behind it."""
    from nncompare.job import ModelSpec
    from nncompare.trainer import ShardTrainer

    rng = np.random.default_rng(0)
    x, y = rng.random((2000, 784), dtype=np.float32), rng.integers(0, 10, 2000)
    trainer = ShardTrainer(0, x, y, np.arange(10), ModelSpec(), cores=cores)
    trainer.train_round(None, RoundPosition.of(1, 1))
    return trainer


def counted_threads(trainer, rounds: int) -> list[int]:
    """The count of the threads that computed each of the primed trainer's next ``rounds`` rounds."""
    return [
        trainer.train_round(trainer.flat.copy(), RoundPosition.of(number, 1)).compute_threads
        for number in range(2, 2 + rounds)
    ]


@pytest.fixture
def one_cpu_shared_with_a_spinner():
    """This process and a spinning child, both held to one CPU (this process's affinity restored after)."""
    cpu = min(os.sched_getaffinity(0))
    saved = os.sched_getaffinity(0)
    child = spinner_on(cpu)
    os.sched_setaffinity(0, {cpu})
    try:
        time.sleep(0.2)  # the child is spinning on that CPU
        yield
    finally:
        os.sched_setaffinity(0, saved)
        child.kill()
        child.wait()


def test_a_sleep_is_wall_time_but_neither_cpu_nor_waiting_for_one():
    start = Reading.now()
    time.sleep(0.3)
    span = Span.between(start, Reading.now())
    assert span.wall_s >= 0.3 and span.cpu_s < 0.05 and span.runqueue_s < 0.05
    assert span.active_s >= 0.25  # a sleep is never taken out


def test_sharing_a_cpu_shows_as_run_queue_delay_and_is_taken_out(one_cpu_shared_with_a_spinner):
    start = Reading.now()
    spin(0.3)
    span = Span.between(start, Reading.now())
    # the spinner held the CPU about half the time: wall ~0.6 s, of which ~0.3 s waiting
    assert span.wall_s > 0.45 and span.runqueue_s > 0.15
    assert span.active_s < span.wall_s - 0.15 and span.active_s >= span.cpu_s - 0.01


def test_the_process_reading_holds_the_waits_of_its_other_threads(one_cpu_shared_with_a_spinner):
    spun, release = threading.Event(), threading.Event()

    def helper():
        spin(0.3)
        spun.set()
        release.wait()  # alive until read: a thread that ends takes its schedstat with it

    thread_before, process_before = runqueue_s(), process_runqueue_s()
    worker = threading.Thread(target=helper)
    worker.start()
    spun.wait()
    process_waited, thread_waited = process_runqueue_s() - process_before, runqueue_s() - thread_before
    release.set()
    worker.join()
    assert thread_waited < 0.05  # this thread slept while the helper span
    assert process_waited > 0.15  # the helper's waits: about as long as it ran


def test_a_thread_that_computed_alongside_counts_and_one_that_slept_does_not():
    def count_while(work):
        ready, release = threading.Event(), threading.Event()

        def helper():
            work()
            ready.set()
            release.wait()  # alive until read: a thread that ends takes its schedstat with it

        before = thread_clocks()
        thread = threading.Thread(target=helper)
        thread.start()
        spin(0.2)  # this thread computes meanwhile
        ready.wait()
        after = thread_clocks()
        release.set()
        thread.join()
        # only these two threads: others that earlier tests left in this process are not under test
        ours = {threading.get_native_id(), thread.native_id}
        return busy_threads(
            {t: c for t, c in before.items() if t in ours}, {t: c for t, c in after.items() if t in ours}
        )

    assert count_while(lambda: spin(0.2)) == 2
    assert count_while(lambda: time.sleep(0.2)) == 1
    assert busy_threads({}, {}) == 0


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="a BLAS pool of two threads needs two CPUs")
@pytest.mark.parametrize("cores", [1, 2])
def test_a_trainer_counts_the_blas_threads_that_computed_its_round(cores):
    """What the gate's unused-cores track reads: BLAS given two cores computes on two threads."""
    assert counted_threads(primed_trainer(cores), 1) == [cores]


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="uneven load needs two CPUs")
def test_the_count_holds_while_another_program_holds_one_of_the_cpus():
    """The pool thread that lands on the busy CPU waits while the calling thread spins for it: it still counts.

    Counted by CPU time alone, about a third to a half of these rounds read 1 (tools/busy_threads_probe.py).
    """
    spinner = spinner_on(min(os.sched_getaffinity(0)))
    try:
        time.sleep(0.3)  # the spinner holds that CPU
        counts = counted_threads(primed_trainer(cores=2), 12)
    finally:
        spinner.kill()
        spinner.wait()
    assert counts == [2] * 12


def update(compute_s, compute_runqueue_s, between_runqueue_s):
    return ShardUpdate(
        0,
        np.zeros(1, np.float32),
        1,
        0.0,
        compute_s,
        0,
        "w",
        compute_runqueue_s=compute_runqueue_s,
        between_runqueue_s=between_runqueue_s,
    )


def test_load_corrected_round_takes_out_driver_and_critical_worker_waits_only():
    driver = Span(wall_s=1.0, cpu_s=0.1, runqueue_s=0.05, process_runqueue_s=0.08)
    updates = [update(0.8, 0.30, 0.05), update(0.7, 0.10, 0.02)]
    assert workers_waits_s(updates) == pytest.approx(0.35)
    assert load_corrected_s(driver, workers_waits_s(updates), concurrent=True) == pytest.approx(1.0 - 0.08 - 0.35)
    # shards trained in the driver's own thread: the driver's waits already hold theirs
    assert load_corrected_s(driver, workers_waits_s(updates), concurrent=False) == pytest.approx(0.92)
    assert load_corrected_s(Span(1.0, 0.1, 0.05, 2.0), workers_waits_s(updates), concurrent=True) == 0.0
