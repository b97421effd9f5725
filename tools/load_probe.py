"""How much a busy machine moves each clock of a training run: wall, the old and the current load-corrected seconds.

    NNCOMPARE_DATA_DIR=/path/to/datasets python tools/load_probe.py dask --blocks 8 --epochs 4

One engine (Fashion-MNIST, 2 workers x 1 core) trains ``blocks x epochs`` steady epochs in one
process; every second block runs two spinning processes beside it. Per epoch it prints the wall
time, the first measure (driver thread and ``partial_fit`` threads only), the current one
(``epoch_clocks[].active_s``: whole processes), then each clock's median over the busy epochs
against the quiet ones'. A measure a gate can use stays near x1.00 while wall time doubles.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks import common  # noqa: E402


def thread_only_measure(run, epoch: int, first_round: int) -> float:
    """The first load-corrected measure: the driver thread's and the critical ``partial_fit`` thread's delay out."""
    seconds = run.epoch_s[epoch] - run.epoch_clocks[epoch]["runqueue_s"]
    if run.engine.concurrent:
        for r in run.rounds[first_round:]:
            active = [w - q for w, q in zip(r["worker_compute_s"], r["worker_compute_runqueue_s"])]
            seconds -= max(r["worker_compute_s"]) - max(active)
    return seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("engine", choices=common.ENGINES)
    parser.add_argument("--blocks", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=4, help="Epochs per block.")
    args = parser.parse_args()
    run = common.training_run(common.job_spec(args.engine, 2, 1, "2g", epochs=args.blocks * args.epochs + 1))
    rows = []
    with run:
        run.place()
        run.epoch(evaluate=False)  # placement and initialisation: not a steady epoch
        for block in range(args.blocks):
            busy = block % 2 == 1
            spinners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(2 if busy else 0)]
            time.sleep(0.5 if busy else 0.0)
            try:
                for _ in range(args.epochs):
                    first = len(run.rounds)
                    run.epoch(evaluate=False)
                    e = len(run.epoch_s) - 1
                    rows.append(
                        (busy, run.epoch_s[e], thread_only_measure(run, e, first), run.epoch_clocks[e]["active_s"])
                    )
            finally:
                for proc in spinners:
                    proc.kill()
                    proc.wait()
    print("state  wall_s  threads_only_s  active_s")
    for busy, *values in rows:
        print(("busy " if busy else "quiet"), "  ".join(f"{v:.3f}" for v in values))
    for i, name in ((1, "wall"), (2, "threads only"), (3, "active (current)")):
        quiet = statistics.median(r[i] for r in rows if not r[0])
        loaded = statistics.median(r[i] for r in rows if r[0])
        print(f"{args.engine} {name}: quiet {quiet:.3f} s, busy {loaded:.3f} s, x{loaded / quiet:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
