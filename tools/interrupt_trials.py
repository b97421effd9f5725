"""Interrupt real runs at random moments on every engine; count exits, records and processes left behind.

    python tools/interrupt_trials.py --engines local,dask,spark --trials 10
    python tools/interrupt_trials.py --dataset fashion-mnist --data-dir DIR --epochs 3 --trials 10

For each engine a first, uninterrupted run measures how long the command takes (and shows
that it records when left alone). Each trial then starts the same command as a terminal does
(the leader of its own process group) and, at a moment drawn uniformly from 0 to 105 % of
that duration, sends one of: Ctrl-C (SIGINT to the group), SIGTERM to the command alone (a
supervisor), SIGTERM to the group (a service manager). A moment can so land in start-up,
placement, any round, the evaluation, the engine's close, the record's writing or the
interpreter's exit; the table names where, from the run's ``-v`` events.

Every trial must have exactly one outcome (docs/reliability.md, "One outcome per run"):

finished     exit 0, one record, the summary printed, no error line;
interrupted  exit 130 (SIGINT) or 143 (SIGTERM), one ``nncompare: error: interrupted`` line, no record;

and nothing the command started (JVM, Python daemon, workers, nannies, resource tracker) may
outlive it: every descendant seen while it ran, and every process carrying the trial's
environment tag, is looked for 2 s after it exits (survivors are then killed). The last lines
give the counts per engine: tries, exits, records, survivors. Exit status 0 only when every
trial had one outcome and nothing survived.
"""

from __future__ import annotations

import argparse
import collections
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import psutil

# the console script, as a user types it (its signal handling starts before the imports)
CLI = [str(Path(sys.executable).with_name("nncompare"))]
TAG = "INTERRUPT_TRIAL_TAG"  # not an NNCOMPARE_ variable: nothing in nncompare reads it
#: (signal, to the whole group): Ctrl-C, a supervisor's SIGTERM, a service manager's SIGTERM.
SENDS = ((signal.SIGINT, True), (signal.SIGTERM, False), (signal.SIGTERM, True))
#: ``-v`` events in the order a run passes them, and the phase each starts.
PHASES = (("engine started", "placement"), ("placed", "rounds"))


def run_command(args, engine: str, out: Path) -> list[str]:
    command = [*CLI, "run", "--engine", engine, "--dataset", args.dataset, "--epochs", str(args.epochs)]
    command += ["--workers", "2", "--hidden", "64", "--no-convergence-stop", "--out", str(out), "-v"]
    return command + (["--data-dir", args.data_dir] if args.data_dir else [])


class Trial:
    """One command: started in its own group, its descendants watched, its stderr read as it comes."""

    def __init__(self, command: list[str]):
        self.tag = uuid.uuid4().hex
        self.proc = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
            env={**os.environ, TAG: self.tag},
        )
        self.started = time.monotonic()
        self.seen: dict[int, psutil.Process] = {}
        self.events: list[tuple[float, str]] = []
        self.stdout = ""
        self._watch = threading.Thread(target=self._watch_family, daemon=True)
        self._read = threading.Thread(target=self._read_stderr, daemon=True)
        self._out = threading.Thread(target=self._read_stdout, daemon=True)
        for thread in (self._watch, self._read, self._out):
            thread.start()

    def _watch_family(self) -> None:
        root = psutil.Process(self.proc.pid)
        while self.proc.poll() is None:
            try:
                for child in root.children(recursive=True):
                    self.seen.setdefault(child.pid, child)
            except psutil.NoSuchProcess:
                break
            time.sleep(0.05)

    def _read_stderr(self) -> None:
        for line in self.proc.stderr:
            self.events.append((time.monotonic() - self.started, line.rstrip("\n")))

    def _read_stdout(self) -> None:
        self.stdout = self.proc.stdout.read()

    def wait(self, limit_s: float) -> int:
        try:
            self.proc.wait(timeout=limit_s)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        for thread in (self._watch, self._read, self._out):
            thread.join(5)
        return self.proc.returncode

    def phase_at(self, moment: float, last_round: int) -> str:
        """Where the run was at ``moment``: start-up, placement, a round, or the end (the last round's
        evaluation, the engine's close, the record's writing, the exit)."""
        phase = "start-up"
        for at, line in self.events:
            if at > moment:
                break
            for event, name in PHASES:
                if line.startswith("nncompare: ") and event in line:
                    phase = name
            if line.startswith("nncompare: round "):
                number = int(line.split()[2])
                phase = "end" if number >= last_round else f"round {number + 1}"
        return phase

    def survivors(self, grace_s: float = 2.0) -> list[str]:
        """What the command started that is still alive ``grace_s`` after it exited; they are killed."""
        deadline = time.monotonic() + grace_s
        while True:
            alive = {p.pid: p for p in self.seen.values() if _alive(p)}
            for p in psutil.process_iter():
                try:
                    if p.pid not in alive and p.environ().get(TAG) == self.tag and _alive(p):
                        alive[p.pid] = p
                except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                    continue
            if not alive or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        names = []
        for p in alive.values():
            try:
                names.append(" ".join(p.cmdline())[:100])
                p.kill()
            except psutil.NoSuchProcess:
                pass
        return names


def _alive(p: psutil.Process) -> bool:
    try:
        return p.is_running() and p.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def outcome(trial: Trial, code: int, out: Path, sig: int | None) -> str:
    """``finished``, ``interrupted`` or what was inconsistent about it."""
    errors = [line for _, line in trial.events if line.startswith("nncompare: error:")]
    traced = any("Traceback" in line or line.startswith("Exception in thread") for _, line in trial.events)
    records = len(out.read_text().splitlines()) if out.exists() else 0
    if code == 0 and records == 1 and "test accuracy" in trial.stdout and not errors and not traced:
        return "finished"
    wanted = 128 + sig if sig is not None else None
    if code == wanted and records == 0 and len(errors) == 1 and "interrupted by" in errors[0] and not traced:
        return "interrupted"
    return f"INCONSISTENT (exit {code}, {records} records, {len(errors)} error lines{', a trace' if traced else ''})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engines", default="local,dask,spark")
    parser.add_argument("--trials", type=int, default=10, help="Interrupted runs per engine.")
    parser.add_argument("--dataset", default="digits")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--epochs", type=int, default=300)
    parser.add_argument("--seed", type=int, default=None, help="Seed for the moments and signals (default: random).")
    parser.add_argument("--show", action="store_true", help="Print the stderr of every trial that failed.")
    args = parser.parse_args()
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**31)
    rng = random.Random(seed)
    print(f"seed {seed}; {args.dataset}, {args.epochs} epochs, 2 workers")
    totals, bad = {}, 0
    with tempfile.TemporaryDirectory() as tmp:
        for engine in args.engines.split(","):
            baseline_out = Path(tmp) / f"{engine}-baseline.jsonl"
            baseline = Trial(run_command(args, engine, baseline_out))
            code = baseline.wait(600)
            duration = time.monotonic() - baseline.started
            left = baseline.survivors()
            if outcome(baseline, code, baseline_out, None) != "finished" or left:
                tail = [line for _, line in baseline.events][-3:]
                print(f"{engine}: the uninterrupted run failed (exit {code}, survivors {left}): {tail}")
                return 1
            print(f"\n{engine}: uninterrupted exit 0 in {duration:.1f} s, 1 record, nothing left")
            header = ("trial", "signal", "to", "at s", "phase", "exit", "rec", "left")
            print(" ".join(f"{h:>{w}}" for h, w in zip(header, (5, 7, 7, 6, 14, 4, 3, 4))) + "  outcome")
            counts = collections.Counter()
            exits = collections.Counter()
            for number in range(1, args.trials + 1):
                out = Path(tmp) / f"{engine}-{number}.jsonl"
                sig, group = rng.choice(SENDS)
                moment = rng.uniform(0.0, 1.05 * duration)
                trial = Trial(run_command(args, engine, out))
                time.sleep(max(0.0, moment - (time.monotonic() - trial.started)))
                sent = trial.proc.poll() is None
                if sent:
                    try:
                        os.killpg(trial.proc.pid, sig) if group else trial.proc.send_signal(sig)
                    except ProcessLookupError:
                        sent = False
                code = trial.wait(300)
                left = trial.survivors()
                result = outcome(trial, code, out, sig if sent else None)
                exits[code] += 1
                counts["tries"] += 1
                counts["records"] += out.exists()
                counts["survivors"] += len(left)
                counts[result.split(" ")[0].lower()] += 1
                counts["after exit"] += not sent
                bad += result.startswith("INCONSISTENT") or bool(left)
                phase = trial.phase_at(moment, args.epochs) if sent else "after exit"
                print(
                    f"{number:>5} {signal.Signals(sig).name:>7} {'group' if group else 'process':>7} {moment:6.2f} "
                    f"{phase:>14} {code:>4} {int(out.exists()):>3} {len(left):>4}  {result}"
                    + (f"  left: {left}" if left else "")
                )
                if args.show and (result.startswith("INCONSISTENT") or left):
                    print("\n".join(f"      {at:7.2f} {line}" for at, line in trial.events))
            totals[engine] = (counts, exits)
    print()
    for engine, (counts, exits) in totals.items():
        print(
            f"{engine}: {counts['tries']} tries; exits {dict(sorted(exits.items()))}; {counts['records']} records; "
            f"{counts['finished']} finished, {counts['interrupted']} interrupted, "
            f"{counts['inconsistent']} inconsistent; {counts['survivors']} survivors"
            + (f" ({counts['after exit']} signals came after the command had exited)" if counts["after exit"] else "")
        )
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
