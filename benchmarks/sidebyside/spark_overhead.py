"""Spark engine vs its own compute, a naive Spark loop, Spark MLlib and the local engine, side by side.

One run, one SparkSession, one machine, the same data: Fashion-MNIST, 784-100-10, batch 200,
5 epochs, 2 workers x 1 core, the same shards for every engine. Prints a table and a
pass/fail line per criterion; ``--out`` writes everything as JSON.

    NNCOMPARE_DATA_DIR=... python benchmarks/sidebyside/spark_overhead.py --out spark_overhead.json

Contenders:

* ``spark``  - the engine (barrier stage of long-lived tasks, weights over the driver's sockets);
* ``naive``  - benchmark-only baseline: a cached RDD of numpy shards and one ``mapPartitions``
  per epoch (each epoch Spark re-sends every shard from the JVM to a Python worker, and
  the model and its optimiser state are rebuilt from the averaged weights);
* ``mllib``  - ``pyspark.ml.classification.MultilayerPerceptronClassifier([784, 100, 10])``
  at its defaults (L-BFGS, blockSize 128, maxIter 100; ``--mllib-max-iter`` changes it);
* ``local``  - the reference engine, in this process.

Criteria (the issue's done-when): spark's mean epoch after the first <= 1.10 x the slower
task's own compute; >= 2.5x faster per epoch than naive; reaches MLlib's accuracy (within
``--race-epochs`` epochs, in a second engine run when ``--epochs`` is not enough), and
>= 10x faster than MLlib does (time from numpy arrays on the driver:
spark's engine start, shard placement and epochs up to the first one at MLlib's accuracy,
against MLlib's DataFrame load and fit; the session's own start-up, shared by both, is
excluded; the whole 5-epoch run's ratio is printed too); accuracy within 1 point of local.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
import time

import numpy as np
from jobs import side_by_side_job  # beside this script

from nncompare.averaging import average_weights
from nncompare.data import load_dataset
from nncompare.engines.spark.jvm import stop_session
from nncompare.engines.spark.session import build_session
from nncompare.model import Evaluator
from nncompare.partition import make_shards
from nncompare.record import machine, versions
from nncompare.steady import steady_epoch_s, steady_seconds
from nncompare.training import run_job


def time_to_accuracy(record, target):
    """Seconds from engine creation until the first evaluated epoch at or above ``target`` (None: never)."""
    evaluate_per_epoch = record["phases_s"]["evaluate"] / record["epochs_run"]
    elapsed = record["startup_s"] + record["phases_s"]["place"]
    for epoch_s, accuracy in zip(record["epoch_s"], record["accuracy_curve"]):
        elapsed += epoch_s + evaluate_per_epoch
        if accuracy >= target:
            return elapsed
    return None


def run_engine(spec, dataset):
    """One run through ``run_job``; the Spark engine runs on the script's active session and leaves it running."""
    record = run_job(spec, dataset=dataset)
    # one round per epoch; a round's compute is its critical path: the slower task on Spark,
    # the sum for the local engine, which runs its shards one after another
    per_epoch_compute = [r["compute_s"] for r in record["rounds"]]
    return {
        "record": record,
        "wall_s": record["wall_s"],
        "startup_s": record["startup_s"],
        "place_s": record["phases_s"]["place"],
        "epoch_s": record["epoch_s"],
        "slowest_task_compute_s": per_epoch_compute,
        "transfer_s": [r["transfer_s"] for r in record["rounds"]],
        "mean_epoch_s": steady_epoch_s(record),
        "mean_compute_s": steady_seconds(per_epoch_compute),
        "test_accuracy": record["test_accuracy"],
        "accuracy_curve": record["accuracy_curve"],
        "phases_s": record["phases_s"],
    }


def _naive_epoch(classes, model_spec, weights, rows):
    """One epoch of one shard, the naive way: a fresh trainer from the averaged weights."""
    from nncompare.rounds import RoundPosition
    from nncompare.trainer import ShardTrainer

    for index, x, y in rows:
        update = ShardTrainer(index, x, y, classes, model_spec, cores=1).train_round(weights, RoundPosition.of(1, 1))
        yield update.weights, update.n_samples, update.compute_s


def run_naive(session, spec, shards, dataset):
    sc = session.sparkContext
    evaluator = Evaluator(spec.model, dataset.x_test, dataset.y_test, dataset.classes)
    start = time.perf_counter()
    rdd = sc.parallelize([(s.index, s.x, s.y) for s in shards], len(shards)).cache()
    rdd.count()
    place_s = time.perf_counter() - start
    weights, epoch_s, compute = None, [], []
    for _ in range(spec.epochs):
        t = time.perf_counter()
        out = rdd.mapPartitions(functools.partial(_naive_epoch, dataset.classes, spec.model, weights)).collect()
        weights = average_weights([w for w, _, _ in out], [n for _, n, _ in out])
        epoch_s.append(time.perf_counter() - t)
        compute.append(max(c for _, _, c in out))
    wall = time.perf_counter() - start
    rdd.unpersist()
    return {
        "wall_s": wall,
        "place_s": place_s,
        "epoch_s": epoch_s,
        "slowest_task_compute_s": compute,
        "mean_epoch_s": steady_seconds(epoch_s),
        "mean_compute_s": steady_seconds(compute),
        "test_accuracy": evaluator.accuracy(weights),
    }


def _frame(session, x, y):
    """A DataFrame of (label, features vector) built through Arrow, not row by row."""
    import pyarrow as pa
    from pyspark.ml.functions import array_to_vector

    n, d = x.shape
    offsets = pa.array(np.arange(0, n * d + 1, d, dtype=np.int32))
    features = pa.ListArray.from_arrays(offsets, pa.array(x.ravel().astype(np.float64)))
    table = pa.table({"label": pa.array(y.astype(np.float64)), "features": features})
    return session.createDataFrame(table).select("label", array_to_vector("features").alias("features"))


def run_mllib(session, spec, x, y, dataset, max_iter):
    from pyspark.ml.classification import MultilayerPerceptronClassifier
    from pyspark.sql import functions as F

    start = time.perf_counter()
    train = _frame(session, x, y).repartition(spec.topology.workers).cache()
    train.count()
    load_s = time.perf_counter() - start
    layers = [x.shape[1], *spec.model.hidden_layer_sizes, len(dataset.classes)]
    t = time.perf_counter()
    model = MultilayerPerceptronClassifier(layers=layers, maxIter=max_iter, seed=spec.model.seed).fit(train)
    fit_s = time.perf_counter() - t
    wall = time.perf_counter() - start
    test = _frame(session, dataset.x_test, dataset.y_test)
    accuracy = model.transform(test).select(F.avg((F.col("prediction") == F.col("label")).cast("double"))).first()[0]
    train.unpersist()
    return {
        "wall_s": wall,
        "load_s": load_s,
        "fit_s": fit_s,
        "max_iter": max_iter,
        "layers": layers,
        "test_accuracy": float(accuracy),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default=os.environ.get("NNCOMPARE_DATA_DIR"))
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--mllib-max-iter", type=int, default=100, help="MLlib's own default is 100")
    parser.add_argument(
        "--race-epochs",
        type=int,
        default=40,
        help="epochs the Spark engine may take to reach MLlib's accuracy, when --epochs is not enough",
    )
    parser.add_argument("--skip-mllib", action="store_true")
    parser.add_argument("--out", help="write the figures as JSON here")
    args = parser.parse_args(argv)

    load_before = os.getloadavg()
    dataset = load_dataset("fashion-mnist", data_dir=args.data_dir)
    spec = side_by_side_job("spark", dataset="fashion-mnist", epochs=args.epochs, workers=args.workers)
    shards = make_shards(dataset.x_train, dataset.y_train, spec.topology.workers, spec.partition, spec.model.seed)

    t = time.perf_counter()
    session = build_session(spec, extra_conf={"spark.driver.memory": "4g"})  # room for MLlib's cached DataFrame
    session_s = time.perf_counter() - t
    results = {}
    try:
        print(f"session started in {session_s:.1f} s; running spark engine ...", file=sys.stderr)
        results["spark"] = run_engine(spec, dataset)
        print("naive mapPartitions loop ...", file=sys.stderr)
        results["naive"] = run_naive(session, spec, shards, dataset)
        if not args.skip_mllib:
            print(f"MLlib MultilayerPerceptronClassifier (maxIter={args.mllib_max_iter}) ...", file=sys.stderr)
            results["mllib"] = run_mllib(session, spec, dataset.x_train, dataset.y_train, dataset, args.mllib_max_iter)
            target = results["mllib"]["test_accuracy"]
            reach_record = results["spark"]["record"]
            if time_to_accuracy(reach_record, target) is None:
                print(
                    f"spark engine again, up to {args.race_epochs} epochs, to reach MLlib's {target:.4f} ...",
                    file=sys.stderr,
                )
                reach_record = run_engine(spec.with_(epochs=args.race_epochs), dataset)["record"]
            results["spark"]["time_to_mllib_accuracy_s"] = time_to_accuracy(reach_record, target)
            results["spark"]["best_accuracy_in_race"] = max(reach_record["accuracy_curve"])
            results["spark"]["epochs_to_mllib_accuracy"] = next(
                (i + 1 for i, a in enumerate(reach_record["accuracy_curve"]) if a >= target), None
            )
    finally:
        stop_session(session)
    print("local engine ...", file=sys.stderr)
    results["local"] = run_engine(spec.with_(engine="local"), dataset)

    sp, nv, lo = results["spark"], results["naive"], results["local"]
    for r in results.values():
        r.pop("record", None)
    criteria = {
        "spark epoch <= 1.10 x slower task's compute": (sp["mean_epoch_s"] / sp["mean_compute_s"], "<=", 1.10),
        "spark >= 2.5x faster per epoch than naive": (nv["mean_epoch_s"] / sp["mean_epoch_s"], ">=", 2.5),
        "spark accuracy within 1 point of local": (abs(sp["test_accuracy"] - lo["test_accuracy"]) * 100, "<=", 1.0),
    }
    if "mllib" in results:
        ml = results["mllib"]
        criteria["spark reaches MLlib's accuracy"] = (sp["best_accuracy_in_race"] - ml["test_accuracy"], ">=", 0.0)
        reach = sp["time_to_mllib_accuracy_s"]
        criteria["spark reaches MLlib's accuracy >= 10x faster"] = (ml["wall_s"] / reach if reach else 0.0, ">=", 10.0)
    verdicts = {
        name: {"value": v, "op": op, "limit": lim, "pass": bool(v <= lim if op == "<=" else v >= lim)}
        for name, (v, op, lim) in criteria.items()
    }

    print(
        f"\nFashion-MNIST 784-100-10, batch 200, {args.epochs} epochs, {args.workers} workers x 1 core; "
        f"load average {load_before[0]:.1f} before, {os.getloadavg()[0]:.1f} after; Spark session "
        f"start {session_s:.1f} s"
    )

    print(
        f"{'contender':10s} {'wall s':>8s} {'place s':>8s} {'epoch s':>8s} {'compute s':>10s} "
        f"{'epoch/compute':>14s} {'accuracy':>9s}"
    )
    for name, r in results.items():
        epoch = r.get("mean_epoch_s")
        compute = r.get("mean_compute_s")
        place = r.get("place_s", r.get("load_s"))
        ratio = f"{epoch / compute:14.2f}" if epoch and compute else f"{'':14s}"
        print(
            f"{name:10s} {r['wall_s']:8.2f} {place:8.2f} "
            + (f"{epoch:8.3f} " if epoch else f"{'-':>8s} ")
            + (f"{compute:10.3f} " if compute else f"{'-':>10s} ")
            + ratio
            + f" {r['test_accuracy']:9.4f}"
        )
    if "mllib" in results:
        ml = results["mllib"]
        reach = sp["time_to_mllib_accuracy_s"]
        print(
            f"(mllib: maxIter {ml['max_iter']}, data load {ml['load_s']:.2f} s, fit {ml['fit_s']:.2f} s. spark reached "
            f"MLlib's accuracy {ml['test_accuracy']:.4f} after "
            + (f"{reach:.2f} s ({sp['epochs_to_mllib_accuracy']} epochs, placement included)" if reach else "never")
            + f"; whole 5-epoch run {sp['wall_s']:.2f} s = {ml['wall_s'] / sp['wall_s']:.1f}x faster than MLlib)"
        )
    print("(epoch columns: mean after the first; compute: the slower task's own partial_fit, the sum for local)")
    print()
    for name, v in verdicts.items():
        print(f"{'PASS' if v['pass'] else 'FAIL'}  {name}: {v['value']:.3f} {v['op']} {v['limit']}")
    if args.out:
        with open(args.out, "w") as f:
            json.dump(
                {
                    "results": results,
                    "criteria": verdicts,
                    "session_start_s": session_s,
                    "load_average": {"before": load_before, "after": os.getloadavg()},
                    "machine": machine(),
                    "versions": versions(),
                    "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                },
                f,
                indent=1,
            )
    return 0 if all(v["pass"] for v in verdicts.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
