"""Plain trainers in their own processes: the floor an engine's epoch is measured against.

W processes (W = the workers an engine trains side by side), each holding its rows as float32
features and a plain scikit-learn ``MLPClassifier`` on one BLAS thread, run one ``partial_fit``
pass each time they are told to, all at once, and answer what the pass cost them: wall, CPU,
and the seconds they waited for a CPU. Nothing here imports nncompare: ``nncompare gate`` runs
this file from its own checkout (``benchmarks/reference.py``), so a commit under test cannot
move what it is measured against, while the side-by-side floor (``nncompare.floor.floor_epoch``)
runs the same code from the installed package.

Each process runs this file as a script (asv imports benchmark modules through its own importer,
which a multiprocessing child would not have), reads its rows from an ``.npz`` file, and waits on
its stdin between passes, so it takes no CPU from the engine beside it.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import tempfile
import time

import numpy as np

#: The floor processes' environment: one BLAS thread, and small pages as the engines' workers have.
FLOOR_ENV = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "NUMPY_MADVISE_HUGEPAGE": "0"}
ANSWER_TIMEOUT_S = 900
#: The model the floor trains unless told otherwise: the project's default job (784-100-10, adam, batch 200).
DEFAULT_MODEL = {"hidden_layer_sizes": [100], "batch_size": 200, "random_state": 0}


def _thread_runqueue_s() -> float:
    """This thread's run-queue delay (schedstat field 2, ns); 0.0 where the kernel does not say."""
    try:
        with open("/proc/thread-self/schedstat", "rb") as stat:
            return int(stat.read().split()[1]) / 1e9
    except (OSError, IndexError, ValueError):
        return 0.0


def serve(rows_path: str, model_json: str) -> None:
    """The floor process: train on its rows once per ``go`` line; answer the pass's seconds as JSON."""
    import warnings

    from sklearn.neural_network import MLPClassifier
    from threadpoolctl import threadpool_limits

    with np.load(rows_path) as rows:
        x, y, classes = rows["x"], rows["y"], rows["classes"]
    params = json.loads(model_json)
    params["hidden_layer_sizes"] = tuple(params["hidden_layer_sizes"])
    warnings.simplefilter("ignore")  # partial_fit's convergence and batch-size warnings
    model = MLPClassifier(**params)
    with threadpool_limits(1):
        model.partial_fit(x, y, classes=classes)  # initialisation, first-touch pages: not timed
        print("ready", flush=True)
        for line in sys.stdin:
            if line.strip() != "go":
                break
            # the wall clock encloses the run-queue readings (nncompare.clocks.Reading says why)
            wall, cpu, waited = time.perf_counter(), time.thread_time(), _thread_runqueue_s()
            model.partial_fit(x, y)
            waited, cpu = _thread_runqueue_s() - waited, time.thread_time() - cpu
            answer = {"wall_s": time.perf_counter() - wall, "cpu_s": cpu, "runqueue_s": waited}
            print(json.dumps(answer), flush=True)


class FloorTrainers:
    """One plain trainer process per entry of ``parts`` (``(x, y)`` rows each), trained at once by :meth:`run_pass`.

    ``model`` holds ``MLPClassifier`` keyword arguments (:data:`DEFAULT_MODEL` if None). The
    processes start at once and initialise while the caller does other work (an engine's start);
    :meth:`wait_ready` blocks until all have. Use as a context manager, or call :meth:`close`.
    """

    def __init__(self, parts, classes, model: dict | None = None):
        if not parts:
            raise ValueError("a floor needs at least one process")
        self._dir = tempfile.TemporaryDirectory(prefix="nncompare-floor-")
        self._procs: list[subprocess.Popen] = []
        self._ready = False
        env = dict(os.environ, **FLOOR_ENV)
        model_json = json.dumps(model or DEFAULT_MODEL)
        try:
            for i, (x, y) in enumerate(parts):
                path = os.path.join(self._dir.name, f"rows{i}.npz")
                np.savez(path, x=np.ascontiguousarray(x, dtype=np.float32), y=np.asarray(y), classes=classes)
                self._procs.append(
                    subprocess.Popen(
                        [sys.executable, os.path.abspath(__file__), path, model_json],
                        env=env,
                        text=True,
                        stdin=subprocess.PIPE,
                        stdout=subprocess.PIPE,
                    )
                )
        except BaseException:
            self.close()
            raise

    def _answer(self, proc: subprocess.Popen) -> str:
        ready, _, _ = select.select([proc.stdout], [], [], ANSWER_TIMEOUT_S)
        line = proc.stdout.readline() if ready else None
        if line is None:
            raise RuntimeError(f"a floor process did not answer in {ANSWER_TIMEOUT_S} s")
        if not line:
            raise RuntimeError(f"a floor process died (exit code {proc.wait()})")
        return line.strip()

    def wait_ready(self) -> None:
        """Block until every process has initialised its model."""
        if not self._ready:
            for proc in self._procs:
                if self._answer(proc) != "ready":
                    raise RuntimeError("a floor process did not start")
            self._ready = True

    def run_pass(self) -> list[dict]:
        """One ``partial_fit`` pass on every process at once; each one's ``wall_s``, ``cpu_s`` and ``runqueue_s``."""
        self.wait_ready()
        try:
            for proc in self._procs:
                proc.stdin.write("go\n")
                proc.stdin.flush()
        except BrokenPipeError:
            raise RuntimeError(f"a floor process died (exit code {proc.wait()})") from None
        return [json.loads(self._answer(proc)) for proc in self._procs]

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

    def __enter__(self) -> FloorTrainers:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


if __name__ == "__main__":
    serve(sys.argv[1], sys.argv[2])
