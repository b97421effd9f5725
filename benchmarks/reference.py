"""The gate's floor: plain trainers run right after each timed epoch, from this checkout's own code.

Load-corrected seconds still move with a busy machine: with two CPU-spinning processes beside
it, a steady local epoch took 1.28x its quiet time and a Dask one 1.06x, and blocks of four
quiet Dask epochs of one run varied by 25 % (host noise, the workers' caches). Asv's paired
samples of two commits are a minute apart, often one in a busy spell and one not. So
:class:`FloorReference` runs plain 1-thread ``MLPClassifier.partial_fit`` passes in W processes
at once, right after each epoch, on the machine as the epoch found it; the epoch's
load-corrected time over that pass's is what the gate compares (docs/benchmarks.md, "How to
read a floor ratio").

The floor is ``nncompare.floor.trainers``, the same code as the side-by-side floor, but loaded
from the file in this checkout (the suite's), never from the commit under test: a commit cannot
speed up or slow down what it is measured against.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

#: rows of each process's chunk at most: a third of a 2-worker Fashion-MNIST shard
CHUNK_ROWS = 10_000
TRAINERS_FILE = Path(__file__).resolve().parents[1] / "src" / "nncompare" / "floor" / "trainers.py"


def _suite_trainers():
    """``nncompare/floor/trainers.py`` of this checkout, as a module of its own (not the installed package's)."""
    spec = importlib.util.spec_from_file_location("nncompare_suite_floor_trainers", TRAINERS_FILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class FloorReference:
    """``processes`` plain trainers that run one chunk each, at once, whenever :meth:`pass_s` asks.

    ``processes`` is the number of workers that train side by side in the engine (1 for an
    engine that trains its shards in turn), so the floor shares the machine as they do.
    ``shard_rows``: the rows of one worker's shard; a pass is scaled from its chunk to that.
    """

    def __init__(self, x, y, classes, processes: int, shard_rows: int):
        if processes < 1 or shard_rows < 1:
            raise ValueError("a floor needs at least one process and one row per shard")
        self.chunk_rows = min(CHUNK_ROWS, shard_rows, len(x) // processes)
        self.scale = shard_rows / self.chunk_rows
        parts = [
            (x[i * self.chunk_rows : (i + 1) * self.chunk_rows], y[i * self.chunk_rows : (i + 1) * self.chunk_rows])
            for i in range(processes)
        ]
        self._trainers = _suite_trainers().FloorTrainers(parts, classes)

    @property
    def _procs(self):
        return self._trainers._procs

    def wait_ready(self) -> None:
        """Block until every process has initialised its model (call after the engine's own start)."""
        self._trainers.wait_ready()

    def pass_s(self) -> float:
        """One chunk on every process at once; the slowest one's load-corrected seconds, scaled to a shard."""
        answers = self._trainers.run_pass()
        return max(a["wall_s"] - a["runqueue_s"] for a in answers) * self.scale

    def close(self) -> None:
        self._trainers.close()
