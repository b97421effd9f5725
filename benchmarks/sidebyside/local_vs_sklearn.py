"""Local engine vs plain ``MLPClassifier.partial_fit``, side by side in one process.

The local engine adds sharding, weight copies, averaging and bookkeeping around the same
``partial_fit``; this prints what that costs per epoch. Runs alternate (engine, plain,
engine, ...) so drift on a shared machine hits both alike.

    python benchmarks/sidebyside/local_vs_sklearn.py --data-dir /path/to/datasets --epochs 5
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np
from sklearn.neural_network import MLPClassifier
from threadpoolctl import threadpool_limits

from nncompare.data import load_dataset
from nncompare.job import JobSpec, Topology
from nncompare.steady import steady_epoch_s, steady_seconds
from nncompare.training import run_job


def plain_epochs(ds, epochs: int, cores: int) -> tuple[list[float], float]:
    model = MLPClassifier(hidden_layer_sizes=(100,), batch_size=200, random_state=np.random.RandomState(0))
    times = []
    with threadpool_limits(cores, user_api="blas"):
        for _ in range(epochs):
            t = time.perf_counter()
            model.partial_fit(ds.x_train, ds.y_train, classes=ds.classes)
            times.append(time.perf_counter() - t)
    return times, float(model.score(ds.x_test, ds.y_test))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="fashion-mnist")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default=None, help="write the figures as JSON here")
    args = parser.parse_args(argv)

    ds = load_dataset(args.dataset, data_dir=args.data_dir)
    spec = JobSpec(
        dataset=args.dataset,
        epochs=args.epochs,
        topology=Topology(1, args.cores),
        partition="contiguous",
        convergence_stop=False,
    )
    engine_epoch, plain_epoch, engine_acc, plain_acc = [], [], [], []
    for _ in range(args.repeats):
        record = run_job(spec, dataset=ds)
        engine_epoch.append(steady_epoch_s(record))
        engine_acc.append(record["test_accuracy"])
        times, acc = plain_epochs(ds, args.epochs, args.cores)
        plain_epoch.append(steady_seconds(times))
        plain_acc.append(acc)

    engine_s, plain_s = statistics.median(engine_epoch), statistics.median(plain_epoch)
    ratio = engine_s / plain_s
    figures = {
        "dataset": args.dataset,
        "epochs": args.epochs,
        "cores": args.cores,
        "repeats": args.repeats,
        "local_engine_epoch_s": engine_s,
        "plain_partial_fit_epoch_s": plain_s,
        "ratio": ratio,
        "local_engine_accuracy": statistics.mean(engine_acc),
        "plain_accuracy": statistics.mean(plain_acc),
        "criterion_ratio_le_1_05": ratio <= 1.05,
    }
    print(f"{'':32s}{'s/epoch (steady, median of runs)':>36s}{'test accuracy':>16s}")
    print(f"{'local engine, 1 worker':32s}{engine_s:>36.4f}{figures['local_engine_accuracy']:>16.4f}")
    print(f"{'MLPClassifier.partial_fit':32s}{plain_s:>36.4f}{figures['plain_accuracy']:>16.4f}")
    print(f"ratio engine / plain = {ratio:.3f}  (target <= 1.05: {'PASS' if ratio <= 1.05 else 'FAIL'})")
    if args.out:
        with open(args.out, "w") as fh:
            json.dump(figures, fh, indent=2)
    return 0 if ratio <= 1.05 else 1


if __name__ == "__main__":
    raise SystemExit(main())
