"""Does the count of computing BLAS threads hold under uneven load? CPU time alone against CPU plus waits.

Trains one ``ShardTrainer`` on random data, round after round, with BLAS given 1 and 2 cores,
while N programs spin on the first CPU only (the uneven load a machine shared with other jobs
has). For each round it prints the trainer's own count (``ShardUpdate.compute_threads``) and
the count from the threads' CPU time alone, the measure used before::

    python tools/busy_threads_probe.py --spinners 0,1,2 --rows 2000,30000
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

import numpy as np

from nncompare.clocks import BUSY_SHARE, thread_clocks
from nncompare.job import ModelSpec
from nncompare.rounds import RoundPosition
from nncompare.trainer import ShardTrainer


def cpu_only_count(before: dict, after: dict) -> int:
    ran = [after[t][0] - before.get(t, (0.0, 0.0))[0] for t in after]
    busiest = max(ran, default=0.0)
    return sum(r >= BUSY_SHARE * busiest for r in ran) if busiest > 0 else 0


def rounds(rows: int, cores: int, count: int) -> list[tuple[int, int]]:
    rng = np.random.default_rng(0)
    x, y = rng.random((rows, 784), dtype=np.float32), rng.integers(0, 10, rows)
    trainer = ShardTrainer(0, x, y, np.arange(10), ModelSpec(), cores=cores)
    trainer.train_round(None, RoundPosition.of(1, 1))
    counts = []
    for number in range(2, count + 2):
        before = thread_clocks()
        update = trainer.train_round(trainer.flat.copy(), RoundPosition.of(number, 1))
        counts.append((update.compute_threads, cpu_only_count(before, thread_clocks())))
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spinners", default="0,1,2", help="programs spinning on the first CPU, comma-separated")
    parser.add_argument("--rows", default="2000,30000", help="rows per round, comma-separated")
    parser.add_argument("--rounds", type=int, default=12)
    args = parser.parse_args()
    first_cpu = min(os.sched_getaffinity(0))
    spin = f"import os; os.sched_setaffinity(0, {{{first_cpu}}})\nwhile True: pass"
    print("spinners   rows  cores  rounds  read `cores` now (CPU + waits)  with CPU time alone")
    for spinners in [int(s) for s in args.spinners.split(",")]:
        procs = [subprocess.Popen([sys.executable, "-c", spin]) for _ in range(spinners)]
        time.sleep(0.3)
        try:
            for rows in [int(r) for r in args.rows.split(",")]:
                for cores in (1, 2):
                    counts = rounds(rows, cores, args.rounds)
                    now = sum(c == cores for c, _ in counts)
                    alone = sum(c == cores for _, c in counts)
                    row = f"{spinners:8d}  {rows:5d}  {cores:5d}  {len(counts):6d}"
                    print(f"{row}  {now:30d}  {alone:19d}", flush=True)
        finally:
            for p in procs:
                p.kill()
                p.wait()


if __name__ == "__main__":
    main()
