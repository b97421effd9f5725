"""Interrupt a real local run on Fashion-MNIST at random moments; every trial must exit non-zero and record nothing.

    python tools/interrupt_trials.py --data-dir ../shared/datasets --trials 10

A first, uninterrupted run measures how long the command takes (and shows that it does
record when left alone); each trial then sends SIGINT or SIGTERM (chosen at random) at a
moment drawn uniformly from that duration, so a trial may land in start-up, data loading,
placement, any epoch or the evaluation. Exit status 0 only when every trial held.
"""

from __future__ import annotations

import argparse
import json
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# the console script, as a user types it (its signal handling starts before the imports)
CLI = [str(Path(sys.executable).with_name("nncompare"))]


def run_command(data_dir: str, out: Path) -> list[str]:
    return [
        *CLI,
        "run",
        "--engine",
        "local",
        "--dataset",
        "fashion-mnist",
        "--epochs",
        "3",
        "--workers",
        "2",
        "--no-convergence-stop",
        "--data-dir",
        data_dir,
        "--out",
        str(out),
        "-q",
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--seed", type=int, default=None, help="Seed for the moments and signals (default: random).")
    args = parser.parse_args()
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**31)
    rng = random.Random(seed)
    with tempfile.TemporaryDirectory() as tmp:
        baseline_out = Path(tmp) / "baseline.jsonl"
        started = time.monotonic()
        done = subprocess.run(run_command(args.data_dir, baseline_out), capture_output=True, text=True)
        duration = time.monotonic() - started
        if done.returncode != 0 or not baseline_out.exists():
            print(f"the uninterrupted run failed (exit {done.returncode}): {done.stderr.strip()}")
            return 1
        print(f"uninterrupted: exit 0 in {duration:.1f} s, 1 record; seed {seed}")
        print(f"{'trial':>5} {'signal':>7} {'at s':>6} {'exit':>4} {'ended s':>7}  record  stderr")
        failures, trial, redrawn = 0, 0, 0
        while trial < args.trials:
            out = Path(tmp) / f"trial-{trial + 1}.jsonl"
            sig = rng.choice([signal.SIGINT, signal.SIGTERM])
            moment = rng.uniform(0.0, duration * 0.9)
            proc = subprocess.Popen(
                run_command(args.data_dir, out), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
            )
            time.sleep(moment)
            if proc.poll() is not None:  # this run was quicker than the baseline: nothing to interrupt
                proc.communicate()
                out.unlink(missing_ok=True)
                redrawn += 1
                print(
                    f"{'-':>5} {sig.name:>7} {moment:6.2f}  the run had finished (exit "
                    f"{proc.returncode}); moment redrawn"
                )
                continue
            trial += 1
            sent = time.monotonic()
            proc.send_signal(sig)
            _, err = proc.communicate(timeout=120)
            ended = time.monotonic() - sent
            lines = [line for line in err.splitlines() if line.strip()]
            held = proc.returncode != 0 and not out.exists() and len(lines) == 1 and "Traceback" not in err
            failures += not held
            print(
                f"{trial:>5} {sig.name:>7} {moment:6.2f} {proc.returncode:>4} {ended:7.2f}  "
                f"{'yes' if out.exists() else 'no':>6}  {json.dumps(lines[-1] if lines else '')}"
                + ("" if held else "  <-- FAILED")
            )
        print(
            f"{args.trials - failures} of {args.trials} trials exited non-zero with one line and no record"
            f" ({redrawn} moments redrawn because the run had already finished)"
        )
        return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
