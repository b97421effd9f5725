"""Time to a trained model against this machine's floor, for Dask and Spark, in one run.

Measures, one after another in one sitting (so the load is shared), on Fashion-MNIST
(784-100-10, batch 200, W workers x 1 core):

* the floor epoch: W plain 1-thread processes training their shards at once, before the
  first engine and after each one; each engine's epoch is taken against the mean of the two
  floors measured right before and right after it (this VM's speed drifts by up to 10 % over
  minutes, so a floor taken at the other end of the run would say more about the drift);
* the floor placement: the shards cut and sent as uint8 over loopback to W plain processes,
  each scaling its own, before and after the engines (``floor.floor_placement``);
* per engine: a bare ``LocalCluster`` / ``SparkSession`` start-up (through a first task),
  the same with the training stack (numpy, scikit-learn) imported by its workers as the
  engine's are, then the engine's whole job, then both bare start-ups again, each in a fresh
  interpreter (a bare figure is the mean of the two around the engine: a JVM's start-up
  alone varies by 15 % from one try to the next here);

and prints each engine's steady epoch, placement, start-up and whole run against the floor,
with the worker's own ``partial_fit`` (wall and CPU) to tell slower compute from overhead,
and the pass/fail of issue 13's targets. ``--out`` writes everything as JSON.

    NNCOMPARE_DATA_DIR=/path/to/datasets python benchmarks/sidebyside/floor.py
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys

from jobs import side_by_side_job  # beside this script

#: Issue 13's targets: steady epoch over the floor epoch, placement seconds, start-up over bare.
EPOCH_TARGET = 1.10
PLACE_TARGET_S = 0.5
STARTUP_TARGET = {"dask": 1.30, "spark": 1.15}


def load_1min() -> float:
    return os.getloadavg()[0]


def spec_for(engine: str, args):
    return side_by_side_job(engine, dataset=args.dataset, epochs=args.epochs, workers=args.workers)


def engine_figures(record: dict) -> dict:
    """What the table shows of one engine's record; steady = median after the first epoch/round."""
    from nncompare.steady import steady_epoch_s, steady_seconds

    rounds = record["rounds"]
    slowest = [max(range(len(r["worker_compute_s"])), key=lambda i: r["worker_compute_s"][i]) for r in rounds]
    return {
        "epoch_s": steady_epoch_s(record),
        "compute_s": steady_seconds([r["worker_compute_s"][i] for r, i in zip(rounds, slowest)]),
        "compute_cpu_s": steady_seconds([r["worker_compute_cpu_s"][i] for r, i in zip(rounds, slowest)]),
        "epoch_active_s": record["steady_epoch"]["active_s"],
        "place_s": record["phases_s"]["place"],
        "startup_s": record["startup_s"],
        "wall_s": record["wall_s"],
        "epochs": len(record["epoch_s"]),
        "test_accuracy": record["test_accuracy"],
    }


def verdicts(engine: str, fig: dict, floor_s: float, bare_s: float) -> dict:
    return {
        "epoch": (fig["epoch_s"] / floor_s, EPOCH_TARGET),
        "placement": (fig["place_s"], PLACE_TARGET_S),
        "start-up": (fig["startup_s"] / bare_s, STARTUP_TARGET[engine]),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="fashion-mnist")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--epochs", type=int, default=9, help="The engines' epochs (the first is not steady).")
    parser.add_argument("--floor-epochs", type=int, default=6, help="The floor's timed epochs, after a warm-up one.")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--engines", default="dask,spark")
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)

    from nncompare import floor

    engines = [e for e in args.engines.split(",") if e]
    loads = [load_1min()]
    floors = [floor.floor_epoch(spec_for("local", args), args.data_dir, epochs=args.floor_epochs)]
    placed = [floor.floor_placement(spec_for("local", args), args.data_dir)]
    runs = {}
    for engine in engines:
        bare = [floor.bare_startup(engine, args.workers)["startup_s"]]
        stack = [floor.bare_startup(engine, args.workers, training_stack=True)["startup_s"]]
        record = floor.engine_run(spec_for(engine, args), args.data_dir)
        stack.append(floor.bare_startup(engine, args.workers, training_stack=True)["startup_s"])
        bare.append(floor.bare_startup(engine, args.workers)["startup_s"])
        floors.append(floor.floor_epoch(spec_for("local", args), args.data_dir, epochs=args.floor_epochs))
        runs[engine] = {
            "bare_startup_s": statistics.mean(bare),
            "bare_stack_startup_s": statistics.mean(stack),
            "bare_startups_s": bare,
            "bare_stack_startups_s": stack,
            **engine_figures(record),
            "floor_epoch_s": statistics.mean(f["epoch_s"] for f in floors[-2:]),
            "floor_cpu_s": statistics.mean(f["cpu_s"] for f in floors[-2:]),
            "floor_active_s": statistics.mean(f["epoch_s"] - f["runqueue_s"] for f in floors[-2:]),
            "engine_info": record["engine_info"],
        }
        loads.append(load_1min())
    placed.append(floor.floor_placement(spec_for("local", args), args.data_dir))
    loads.append(load_1min())
    floor_place_s = statistics.mean(p["placement_s"] for p in placed)
    floor_s = statistics.mean(f["epoch_s"] for f in floors)
    floor_cpu = statistics.mean(f["cpu_s"] for f in floors)

    print(f"load (1-min average) through the run: {' -> '.join(f'{v:.2f}' for v in loads)} on {os.cpu_count()} cores")
    shown = " -> ".join(f"{f['epoch_s']:.3f}" for f in floors)
    print(
        f"floor epoch ({args.workers} plain 1-thread processes at once, {args.floor_epochs} epochs, slowest median): "
        f"{shown} s, first and after each engine; CPU {floor_cpu:.3f} s"
    )
    print(
        f"floor placement (the shards cut, sent as uint8 over loopback to {args.workers} plain processes that "
        f"scale them): {floor_place_s:.3f} s (before {placed[0]['placement_s']:.3f}, after "
        f"{placed[1]['placement_s']:.3f})"
    )
    for engine in engines:
        name = "LocalCluster" if engine == "dask" else "SparkSession local"
        fig = runs[engine]
        print(
            f"floor start-up ({engine}: bare {name} of {args.workers} x 1 core, through a first task, before and "
            f"after the engine): {' / '.join(f'{v:.2f}' for v in fig['bare_startups_s'])} s; with its workers "
            f"importing numpy and scikit-learn: {' / '.join(f'{v:.2f}' for v in fig['bare_stack_startups_s'])} s"
        )
    print()
    print(
        f"{'engine':7} {'epoch s':>8} {'/floor':>7} {'compute s':>10} {'/floor':>7} {'CPU s':>6} {'/floor':>7} "
        f"{'place s':>8} {'start s':>8} {'/bare':>6} {'/+stack':>7} {'whole s':>8} {'floor whole':>12}"
    )
    failures = 0
    for engine in engines:
        fig = runs[engine]
        near, near_cpu = fig["floor_epoch_s"], fig["floor_cpu_s"]  # the floors right before and after it
        floor_whole = fig["bare_startup_s"] + fig["epochs"] * near
        print(
            f"{engine:7} {fig['epoch_s']:8.3f} {fig['epoch_s'] / near:7.2f} {fig['compute_s']:10.3f} "
            f"{fig['compute_s'] / near:7.2f} {fig['compute_cpu_s']:6.3f} {fig['compute_cpu_s'] / near_cpu:7.2f} "
            f"{fig['place_s']:8.3f} {fig['startup_s']:8.2f} {fig['startup_s'] / fig['bare_startup_s']:6.2f} "
            f"{fig['startup_s'] / fig['bare_stack_startup_s']:7.2f} "
            f"{fig['wall_s']:8.2f} {floor_whole:12.2f}"
        )
    print()
    for engine in engines:
        fig = runs[engine]
        print(
            f"{engine:7} load-corrected epoch {fig['epoch_active_s']:.3f} s = "
            f"{fig['epoch_active_s'] / fig['floor_active_s']:.2f}x the floor's {fig['floor_active_s']:.3f} s "
            f"(every wait for a CPU out, our own threads' too); "
            f"placement {fig['place_s'] / floor_place_s:.2f}x the floor placement"
        )
    print(
        "(compute: the slowest worker's own partial_fit per round, wall and CPU, against the floor's; "
        "/+stack: start-up over the bare one whose workers import the training stack; "
        "floor whole: bare start-up + the epochs at the floor epoch)"
    )
    print()
    for engine in engines:
        fig = runs[engine]
        results = verdicts(engine, fig, fig["floor_epoch_s"], fig["bare_startup_s"])
        fig["verdicts"] = {k: {"value": v, "target": t, "pass": v <= t} for k, (v, t) in results.items()}
        for what, (value, target) in results.items():
            unit = " s" if what == "placement" else "x"
            ok = value <= target
            failures += not ok
            print(f"{'PASS' if ok else 'FAIL'}  {engine:5} {what:9} {value:6.2f}{unit} (target <= {target:.2f}{unit})")
    if args.out:
        with open(args.out, "w") as fh:
            json.dump(
                {
                    "loads": loads,
                    "floor": {
                        "epoch_s": floor_s,
                        "cpu_s": floor_cpu,
                        "placement_s": floor_place_s,
                        "placements": placed,
                        "epochs": floors,
                    },
                    "engines": runs,
                },
                fh,
                indent=1,
                default=str,
            )
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
