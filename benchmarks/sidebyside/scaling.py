"""How start-up and a round's exchange grow with the workers, for Dask and Spark, in one sitting.

Runs ``nncompare run --json`` in fresh processes on small shards (``--samples`` a worker, so
compute is small and oversubscribing this machine's cores matters little), W workers x 1
core, for each engine x workers x hidden units, and prints the issue 28 table: start-up,
transfer per round (784-H-10 for each ``--hidden``), averaging per round (the largest model),
and where a round's time goes (compute, transfer, average; medians over the rounds after the
first). Then the ratios the issue's targets are about: start-up at the largest W over the
smallest (Dask, target <= 2x), Spark's start-up over a bare session whose Python workers
import the same stack (``nncompare.floor.bare_startup``, target <= 1.15x), and transfer at 8
workers over 2 (target <= 3x). ``--exchange star`` runs the engines the way they exchanged
weights before the tree (driver to every worker); ``--exchange both`` runs every configuration
both ways, one right after the other, and prints both tables: the comparison side by side.

Workers beyond the machine's cores are oversubscribed: the table marks them with ``*``.

    NNCOMPARE_DATA_DIR=DIR python benchmarks/sidebyside/scaling.py --workers 2,4,8 --out scaling.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

#: Issue 28's targets.
DASK_STARTUP_GROWTH, SPARK_STARTUP_OVER_BARE, TRANSFER_GROWTH = 2.0, 1.15, 3.0
EXCHANGE_ENV = {"dask": "NNCOMPARE_DASK_TREE_EXCHANGE", "spark": "NNCOMPARE_SPARK_TREE_EXCHANGE"}


def run(engine: str, workers: int, hidden: int, args, exchange: str) -> dict:
    cmd = [sys.executable, "-c", "from nncompare.cli import main; main()", "run", "--json", "--quiet"]
    cmd += ["--engine", engine, "--dataset", args.dataset, "--workers", str(workers), "--cores", "1"]
    cmd += ["--train-samples", str(args.samples * workers), "--epochs", str(args.epochs), "--hidden", str(hidden)]
    cmd += ["--no-convergence-stop"] + (["--data-dir", args.data_dir] if args.data_dir else [])
    env = dict(os.environ)
    env[EXCHANGE_ENV[engine]] = "0" if exchange == "star" else "1"
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL, timeout=900)
    if done.returncode:
        return {"error": (done.stderr.strip().splitlines() or ["?"])[-1]}
    record = json.loads(done.stdout.strip().splitlines()[-1])
    if args.records:  # whole records, for nncompare report / explain and the what-if model
        with open(args.records, "a") as fh:
            fh.write(json.dumps(record) + "\n")
    rounds = record["rounds"][1:] or record["rounds"]

    def median(key):
        return statistics.median(r[key] for r in rounds)

    average = median("average_s") if "average_s" in rounds[0] else record["phases_s"]["average"] / len(record["rounds"])
    return {
        "startup_s": record["startup_s"],
        "round_s": median("wall_s"),
        "compute_s": median("compute_s"),
        "transfer_s": median("transfer_s"),
        "average_s": average,
        "exchange": record["engine_info"].get("exchange", "driver"),
        "test_accuracy": record["test_accuracy"],
    }


def report(results: dict, exchange: str, engines, workers, hidden, args, load) -> int:
    """Print one exchange's table and the targets' verdicts; how many verdicts failed."""
    cores = os.cpu_count() or 1

    def cell(engine, w, h, key, scale=1.0, fmt="{:.1f}"):
        r = results.get(f"{engine} {w} {h}", {})
        return fmt.format(r[key] * scale) if key in r else "error"

    big = max(hidden)
    print(
        f"{args.dataset}, {args.samples} samples a worker, {args.epochs} epochs, W x 1 core, "
        f"exchange: {exchange}; "
        f"load {load[0]:.1f} -> {load[1]:.1f} on {cores} cores; * = more workers than cores (oversubscribed); "
        f"medians over the rounds after the first"
    )
    heads = [f"{e} W={w}{'*' if w > cores else ''}" for e in engines for w in workers]
    print("| | " + " | ".join(heads) + " |")
    print("| --- |" + " --- |" * len(heads))
    rows = [("start-up (s)", hidden[0], "startup_s", 1.0, "{:.2f}")]
    for h in hidden:
        mb = 4 * (784 * h + h + 10 * h + 10) / 1e6
        rows.append((f"transfer per round, 784-{h}-10 ({mb:.2f} MB) (ms)", h, "transfer_s", 1e3, "{:.1f}"))
    mb = 4 * (784 * big + big + 10 * big + 10) / 1e6
    rows += [
        (f"averaging per round, {mb:.1f} MB (ms)", big, "average_s", 1e3, "{:.2f}"),
        (f"round, 784-{big}-10 (ms)", big, "round_s", 1e3, "{:.1f}"),
        (f"compute per round, 784-{big}-10 (ms)", big, "compute_s", 1e3, "{:.1f}"),
    ]
    for name, h, key, scale, fmt in rows:
        print(f"| {name} | " + " | ".join(cell(e, w, h, key, scale, fmt) for e in engines for w in workers) + " |")
    if "spark" in engines and not args.no_bare:
        bare = " | ".join(f"{results[f'spark {w} bare']['startup_s']:.2f}" for w in workers)
        print(f"| bare SparkSession + stack, start-up (s) | {bare} |")

    print()
    failures = 0

    def verdict(what, value, target):
        nonlocal failures
        ok = value <= target
        failures += not ok
        print(f"{'PASS' if ok else 'FAIL'}  {what}: {value:.2f}x (target <= {target:.2f}x)")

    lo, hi = min(workers), max(workers)
    for engine in engines:
        try:
            if engine == "dask":
                growth = results[f"dask {hi} {hidden[0]}"]["startup_s"] / results[f"dask {lo} {hidden[0]}"]["startup_s"]
                verdict(f"dask start-up, W={hi} over W={lo}", growth, DASK_STARTUP_GROWTH)
            if engine == "spark" and not args.no_bare:
                for w in workers:
                    ratio = results[f"spark {w} {hidden[0]}"]["startup_s"] / results[f"spark {w} bare"]["startup_s"]
                    verdict(f"spark start-up over a bare session with the stack, W={w}", ratio, SPARK_STARTUP_OVER_BARE)
            if 2 in workers and 8 in workers:
                for h in hidden:
                    growth = results[f"{engine} 8 {h}"]["transfer_s"] / results[f"{engine} 2 {h}"]["transfer_s"]
                    verdict(f"{engine} transfer per round, 784-{h}-10, W=8 over W=2", growth, TRANSFER_GROWTH)
        except KeyError as exc:
            print(f"FAIL  {engine}: a run failed ({exc})")
            failures += 1
    print()
    return failures


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engines", default="dask,spark")
    parser.add_argument("--workers", default="2,4,8")
    parser.add_argument("--hidden", default="100,1000")
    parser.add_argument("--samples", type=int, default=800, help="Training samples per worker.")
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--dataset", default="fashion-mnist")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--exchange", choices=("tree", "star", "both"), default="tree")
    parser.add_argument("--no-bare", action="store_true", help="Leave out Spark's bare start-ups.")
    parser.add_argument("--out", default=None)
    parser.add_argument("--records", default=None, help="Append every run's whole record to this JSON-lines file.")
    args = parser.parse_args(argv)
    engines = [e for e in args.engines.split(",") if e]
    workers = [int(w) for w in args.workers.split(",")]
    hidden = [int(h) for h in args.hidden.split(",")]

    exchanges = ["tree", "star"] if args.exchange == "both" else [args.exchange]
    load = [os.getloadavg()[0]]
    results: dict = {x: {} for x in exchanges}
    for engine in engines:
        for w in workers:
            for h in hidden:
                for x in exchanges:  # side by side: each configuration both ways, one right after the other
                    results[x][f"{engine} {w} {h}"] = run(engine, w, h, args, x)
            if engine == "spark" and not args.no_bare:
                from nncompare.floor import bare_startup

                bare = bare_startup("spark", w, training_stack=True)
                for x in exchanges:
                    results[x][f"spark {w} bare"] = bare
    load.append(os.getloadavg()[0])
    failures = sum(report(results[x], x, engines, workers, hidden, args, load) for x in exchanges)
    if args.out:
        with open(args.out, "w") as fh:
            json.dump({"args": vars(args), "load": load, "time": time.time(), "results": results}, fh, indent=1)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
