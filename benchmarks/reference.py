"""A floor measured beside each timed epoch, so a gate sample is a ratio and not seconds.

Load-corrected seconds (wall time less run-queue delay) still move with a busy machine: with
two CPU-spinning processes beside it, a steady local epoch took 1.28x its quiet time here and a
Dask one 1.06x, and blocks of four quiet epochs of one Dask run varied by 25 % (host noise, the
workers' caches). Asv's paired samples of two commits are a minute apart, often one in a busy
spell and one not. :class:`FloorReference` runs plain 1-thread ``MLPClassifier.partial_fit``
passes in W processes at once, right after each epoch, on the machine as the epoch found it;
the epoch's load-corrected time over that pass's is what the gate compares
(docs/benchmarks.md, "The floor-relative measure").

The reference is this suite's own code (numpy, scikit-learn, fixed hyperparameters), never the
commit's: a commit cannot speed up or slow down what it is measured against. Each process runs
this file as a script (asv imports benchmark modules through its own importer, which a
multiprocessing child would not have), reads its chunk from a file, and waits on its stdin
while the engine trains, so it takes no CPU from it.
"""

from __future__ import annotations

import os
import select
import subprocess
import sys
import tempfile
import time

import numpy as np

#: rows of each process's chunk at most: a third of a 2-worker Fashion-MNIST shard, about 0.13 s here
CHUNK_ROWS = 10_000
HIDDEN, BATCH = (100,), 200  # the quick grid's model, fixed here so that no commit moves the floor
ANSWER_TIMEOUT_S = 300
#: the floor processes' environment: one BLAS thread, and small pages as the engines' workers have
FLOOR_ENV = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "NUMPY_MADVISE_HUGEPAGE": "0"}


def _thread_runqueue_s() -> float:
    """This thread's run-queue delay (schedstat field 2, ns), read here and not through the commit's clocks."""
    try:
        with open("/proc/thread-self/schedstat", "rb") as stat:
            return int(stat.read().split()[1]) / 1e9
    except (OSError, IndexError, ValueError):
        return 0.0


def serve(chunk_path: str) -> None:
    """The floor process: train on the chunk once per ``go`` line, answer its load-corrected seconds."""
    import warnings

    from sklearn.neural_network import MLPClassifier
    from threadpoolctl import threadpool_limits

    with np.load(chunk_path) as chunk:
        x, y, classes = chunk["x"], chunk["y"], chunk["classes"]
    warnings.simplefilter("ignore")  # partial_fit's convergence warnings
    model = MLPClassifier(hidden_layer_sizes=HIDDEN, batch_size=BATCH, random_state=0)
    with threadpool_limits(1):
        model.partial_fit(x, y, classes=classes)  # initialisation, first-touch pages: not timed
        print("ready", flush=True)
        for line in sys.stdin:
            if line.strip() != "go":
                break
            wall, waited = time.perf_counter(), _thread_runqueue_s()
            model.partial_fit(x, y)
            print((time.perf_counter() - wall) - (_thread_runqueue_s() - waited), flush=True)


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
        self._dir = tempfile.TemporaryDirectory(prefix="nncompare-floor-")
        self._procs: list[subprocess.Popen] = []
        self._started = False
        env = dict(os.environ, **FLOOR_ENV)
        for i in range(processes):
            rows = slice(i * self.chunk_rows, (i + 1) * self.chunk_rows)
            path = os.path.join(self._dir.name, f"chunk{i}.npz")
            np.savez(path, x=np.ascontiguousarray(x[rows], dtype=np.float32), y=y[rows], classes=classes)
            self._procs.append(
                subprocess.Popen(
                    [sys.executable, __file__, path], env=env, text=True, stdin=subprocess.PIPE, stdout=subprocess.PIPE
                )
            )

    def _answer(self, proc: subprocess.Popen) -> str:
        ready, _, _ = select.select([proc.stdout], [], [], ANSWER_TIMEOUT_S)
        line = proc.stdout.readline() if ready else None
        if line is None:
            raise RuntimeError(f"the gate's floor process did not answer in {ANSWER_TIMEOUT_S} s")
        if not line:
            raise RuntimeError(f"the gate's floor process died (exit code {proc.wait()})")
        return line.strip()

    def wait_ready(self) -> None:
        """Block until every process has initialised its model (call after the engine's own start)."""
        for proc in self._procs:
            if self._answer(proc) != "ready":
                raise RuntimeError("the gate's floor process did not start")
        self._started = True

    def pass_s(self) -> float:
        """One chunk on every process at once; the slowest one's load-corrected seconds, scaled to a shard."""
        if not self._started:
            self.wait_ready()
        try:
            for proc in self._procs:
                proc.stdin.write("go\n")
                proc.stdin.flush()
        except BrokenPipeError:
            raise RuntimeError(f"the gate's floor process died (exit code {proc.wait()})") from None
        return max(float(self._answer(proc)) for proc in self._procs) * self.scale

    def close(self) -> None:
        for proc in self._procs:
            try:
                proc.stdin.close()  # end of input: the process leaves its loop
            except BrokenPipeError:
                pass
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            proc.stdout.close()
        self._procs = []
        self._dir.cleanup()


if __name__ == "__main__":
    serve(sys.argv[1])
