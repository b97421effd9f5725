"""Where a gate sample's noise comes from: steady epochs and floor passes of one engine, sample after sample.

    python tools/gate_noise.py ENGINE --samples 8 --epochs 16 --out noise-ENGINE.jsonl
    python tools/gate_noise.py --report docs/data/gate-noise/quiet.json   # the samples kept

Each sample is a fresh process, as asv runs one: the gate's own ``SteadyEpochs`` set-up (the
engine started, its shards placed, the floor processes ready), then ``--epochs`` steady epochs,
each followed by a floor pass, as ``time_epochs`` does. It writes one JSON line per sample: every
epoch's load-corrected seconds and the floor pass after it, and the seconds that set-up, the
epochs and teardown took. ``--report`` reads such files and prints, per engine, the spread of the
log ratio of consecutive samples (the unchanged pairs a gate would see) for samples of 1, 2, 4,
... epochs, and the spread within a sample, so that what more epochs per sample buy is measured,
not assumed. ``--report`` also reads a JSON list of such samples (``docs/data/gate-noise/``).
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

SAMPLE = """
import json, sys, time
sys.path.insert(0, {root!r})
t0 = time.perf_counter()
from benchmarks import common, gate
gate.EPOCHS = {epochs}
bench = gate.SteadyEpochs()
bench.setup({engine!r}, 2, 1, "2g")
t1 = time.perf_counter()
epochs, floors = [], []
for _ in range({epochs}):
    gate._RUN.epoch(evaluate=False)
    epochs.append(gate._RUN.epoch_clocks[-1]["active_s"])
    floors.append(gate._FLOOR.pass_s())
t2 = time.perf_counter()
bench.teardown({engine!r}, 2, 1, "2g")
t3 = time.perf_counter()
print(json.dumps({{"engine": {engine!r}, "epochs_s": epochs, "floors_s": floors,
                  "setup_s": t1 - t0, "timed_s": t2 - t1, "teardown_s": t3 - t2}}))
"""


def run_samples(engine: str, samples: int, epochs: int, out: Path) -> None:
    with out.open("a") as sink:
        for i in range(samples):
            start = time.perf_counter()
            done = subprocess.run(
                [sys.executable, "-c", SAMPLE.format(root=str(ROOT), engine=engine, epochs=epochs)],
                capture_output=True,
                text=True,
                check=False,
            )
            if done.returncode != 0:
                sys.exit(f"sample {i} failed: {done.stderr[-2000:]}")
            line = json.loads(done.stdout.strip().splitlines()[-1])
            line["process_s"] = time.perf_counter() - start
            line["at"] = time.time()
            sink.write(json.dumps(line) + "\n")
            sink.flush()
            ratios = [e / f for e, f in zip(line["epochs_s"], line["floors_s"])]
            print(
                f"{engine} sample {i}: {sum(ratios) / len(ratios):.3f} floor epochs per epoch, "
                f"process {line['process_s']:.1f} s (set-up {line['setup_s']:.1f}, timed {line['timed_s']:.1f})"
            )


def sd(values):
    return statistics.stdev(values) if len(values) > 1 else float("nan")


def report(paths: list[Path]) -> None:
    by_engine: dict[str, list[dict]] = {}
    for path in paths:
        text = path.read_text()
        samples = json.loads(text) if text.lstrip().startswith("[") else [json.loads(x) for x in text.splitlines()]
        for sample in samples:
            by_engine.setdefault(sample["engine"], []).append(sample)
    for engine, samples in by_engine.items():
        n = min(len(s["epochs_s"]) for s in samples)
        print(
            f"{engine}: {len(samples)} samples of {n} epochs; "
            f"process {statistics.median(s['process_s'] for s in samples):.1f} s, "
            f"set-up {statistics.median(s['setup_s'] for s in samples):.1f} s, "
            f"timed {statistics.median(s['timed_s'] for s in samples):.1f} s (medians)"
        )
        within = [sd([math.log(e / f) for e, f in zip(s["epochs_s"], s["floors_s"]) if e > 0]) for s in samples]
        within_e = [sd([math.log(e) for e in s["epochs_s"] if e > 0]) for s in samples]
        zeros = sum(e <= 0 for s in samples for e in s["epochs_s"])
        within_f = [sd([math.log(f) for f in s["floors_s"]]) for s in samples]
        print(
            f"  within a sample, SD of log per epoch: ratio {statistics.median(within):.3f}, "
            f"epoch {statistics.median(within_e):.3f}, floor {statistics.median(within_f):.3f}; "
            f"epochs whose load-corrected seconds came out 0: {zeros}"
        )
        k = 1
        while k <= n:
            for label in MEASURES:
                values = [measure(label, s, k, n) for s in samples]
                pairs = [math.log(b / a) for a, b in zip(values[::2], values[1::2])]
                adjacent = [math.log(b / a) for a, b in zip(values, values[1:])]
                print(
                    f"  {k:2d} epochs, {label:20s}: SD of log pair ratio {sd(pairs):.3f} "
                    f"({len(pairs)} disjoint pairs), {sd(adjacent):.3f} ({len(adjacent)} adjacent)"
                )
            k *= 2


MEASURES = (
    "sum of ratios",
    "median of ratios",
    "iq-mean of ratios",
    "epochs/floors",
    "epochs/median floor",
    "iq-mean epoch/floor",
    "epochs alone",
)


def iq_mean(values) -> float:
    ordered = sorted(values)
    cut = len(ordered) // 4
    middle = ordered[cut : len(ordered) - cut]
    return sum(middle) / len(middle)


def measure(label: str, sample: dict, k: int, n: int) -> float:
    """A sample's figure from its first ``k`` epochs (of ``n``): the gate's, or an alternative."""
    epochs, floors = sample["epochs_s"][:k], sample["floors_s"][:k]
    if label == "sum of ratios":
        return sum(e / f for e, f in zip(epochs, floors))
    if label == "median of ratios":
        return k * statistics.median(e / f for e, f in zip(epochs, floors))
    if label == "iq-mean of ratios":  # the gate's (benchmarks/gate.py)
        return k * iq_mean([e / f for e, f in zip(epochs, floors)])
    if label == "iq-mean epoch/floor":
        return k * iq_mean(epochs) / iq_mean(floors)
    if label == "epochs/floors":
        return sum(epochs) / sum(floors)
    if label == "epochs/median floor":
        return sum(epochs) / statistics.median(sample["floors_s"][:n])
    return sum(epochs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("engine", nargs="?")
    parser.add_argument("--samples", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=16)
    parser.add_argument("--out", type=Path, default=Path("gate-noise.jsonl"))
    parser.add_argument("--report", nargs="+", type=Path, help="Print the spreads from these files instead.")
    args = parser.parse_args()
    if args.report:
        report(args.report)
    else:
        run_samples(args.engine, args.samples, args.epochs, args.out)


if __name__ == "__main__":
    main()
