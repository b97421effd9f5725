"""A floor measured beside each timed epoch, so a gate sample is a ratio and not seconds.

Load-corrected seconds (wall time less run-queue delay) still move with a busy machine: with
two CPU-spinning processes beside it, a steady local epoch took 1.28x its quiet time here and a
Dask one 1.06x, and blocks of four quiet epochs of one Dask run varied by 25 % (host noise, the
workers' caches). Asv's paired samples of two commits are a minute apart, often one in a busy
spell and one not. :class:`FloorReference` runs plain 1-thread ``MLPClassifier.partial_fit``
passes in W processes at once, right after each epoch, on the machine as the epoch found it;
the epoch's load-corrected time over that pass's is what the gate compares
(docs/benchmarks.md, "The gate's measure").

The reference is this suite's own code (numpy, scikit-learn, fixed hyperparameters), never the
commit's: a commit cannot speed up or slow down what it is measured against. Its processes wait
on a pipe while the engine trains, so they take no CPU from it.
"""

from __future__ import annotations

import multiprocessing
import os
import time

import numpy as np

#: rows of each process's chunk at most: a third of a 2-worker Fashion-MNIST shard, about 0.13 s here
CHUNK_ROWS = 10_000
HIDDEN, BATCH = (100,), 200  # the quick grid's model, fixed here so that no commit moves the floor
START_TIMEOUT_S = 300


def _thread_runqueue_s() -> float:
    """This thread's run-queue delay (schedstat field 2, ns), read here and not through the commit's clocks."""
    try:
        with open("/proc/thread-self/schedstat", "rb") as stat:
            return int(stat.read().split()[1]) / 1e9
    except (OSError, IndexError, ValueError):
        return 0.0


def _floor_process(conn, x, y, classes) -> None:
    """Train a plain classifier on ``x`` once per "go", answering its load-corrected seconds."""
    import warnings

    from sklearn.neural_network import MLPClassifier
    from threadpoolctl import threadpool_limits

    warnings.simplefilter("ignore")  # partial_fit's convergence warnings
    model = MLPClassifier(hidden_layer_sizes=HIDDEN, batch_size=BATCH, random_state=0)
    with threadpool_limits(1):
        model.partial_fit(x, y, classes=classes)  # initialisation, first-touch pages: not timed
        conn.send("ready")
        while _told_to_go(conn):
            wall, waited = time.perf_counter(), _thread_runqueue_s()
            model.partial_fit(x, y)
            conn.send((time.perf_counter() - wall) - (_thread_runqueue_s() - waited))


def _told_to_go(conn) -> bool:
    try:
        return conn.recv() == "go"
    except EOFError:  # the benchmark process is gone
        return False


#: the floor processes' environment: one BLAS thread, and small pages as the engines' workers have
FLOOR_ENV = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
             "NUMPY_MADVISE_HUGEPAGE": "0"}


class FloorReference:
    """``processes`` plain trainers that run one chunk each, at once, whenever :meth:`pass_s` asks.

    ``processes`` is the number of workers that train side by side in the engine (1 for the
    local engine, which trains its shards in turn), so the floor shares the machine as they do.
    ``shard_rows``: the rows of one worker's shard; a pass is scaled from its chunk to that.
    """

    def __init__(self, x, y, classes, processes: int, shard_rows: int):
        if processes < 1 or shard_rows < 1:
            raise ValueError("a floor needs at least one process and one row per shard")
        self.chunk_rows = min(CHUNK_ROWS, shard_rows, len(x) // processes)
        self.scale = shard_rows / self.chunk_rows
        ctx = multiprocessing.get_context("spawn")  # no inherited threads, no inherited BLAS pool
        self._pipes, self._procs = [], []
        saved = {name: os.environ.get(name) for name in FLOOR_ENV}
        os.environ.update(FLOOR_ENV)  # a spawned child reads these as it imports numpy
        try:
            self._spawn(ctx, x, y, classes, processes)
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
        self._started = False

    def _spawn(self, ctx, x, y, classes, processes: int) -> None:
        for i in range(processes):
            rows = slice(i * self.chunk_rows, (i + 1) * self.chunk_rows)
            ours, theirs = ctx.Pipe()
            proc = ctx.Process(target=_floor_process, daemon=True, name=f"gate-floor-{i}",
                               args=(theirs, np.ascontiguousarray(x[rows], dtype=np.float32), y[rows], classes))
            proc.start()
            theirs.close()
            self._pipes.append(ours)
            self._procs.append(proc)

    def _receive(self, pipe, timeout: float):
        try:
            if pipe.poll(timeout):
                return pipe.recv()
        except EOFError:
            raise RuntimeError("the gate's floor process died") from None
        raise RuntimeError(f"the gate's floor process did not answer in {timeout:.0f} s")

    def wait_ready(self) -> None:
        """Block until every process has initialised its model (call after the engine's own start)."""
        for pipe in self._pipes:
            if self._receive(pipe, START_TIMEOUT_S) != "ready":
                raise RuntimeError("the gate's floor process failed to start")
        self._started = True

    def pass_s(self) -> float:
        """One chunk on every process at once; the slowest one's load-corrected seconds, scaled to a shard."""
        if not self._started:
            self.wait_ready()
        try:
            for pipe in self._pipes:
                pipe.send("go")
        except OSError:  # a broken pipe: the process is gone
            raise RuntimeError("the gate's floor process died") from None
        slowest = max(self._receive(pipe, START_TIMEOUT_S) for pipe in self._pipes)
        return slowest * self.scale

    def close(self) -> None:
        for pipe in self._pipes:
            try:
                pipe.send("stop")
            except OSError:
                pass
            pipe.close()
        for proc in self._procs:
            proc.join(timeout=10)
            if proc.is_alive():
                proc.kill()
                proc.join()
        self._pipes, self._procs = [], []
