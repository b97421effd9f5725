"""What lost parallelism costs a steady round: BLAS on one thread against two, side by side in one process.

    NNCOMPARE_DATA_DIR=/path/to/datasets python tools/lost_parallelism.py --samples 30000 --rounds 6

Two ``ShardTrainer``s on the same Fashion-MNIST shard (the quick grid's 784-100-10 model), one given
1 core and one given 2, train in alternating order (1, 2 then 2, 1, ...). It prints each one's
``partial_fit`` wall times and threads that computed, and the median ratio 1-thread / 2-thread:
how much slower a commit that holds BLAS to one thread would make a worker given two cores. That
figure is why the gate counts idle cores instead of timing them (docs/evidence.md).
"""

from __future__ import annotations

import argparse
import statistics
import sys

import numpy as np

from nncompare.data import locate
from nncompare.errors import NNCompareError
from nncompare.idx import read_images, read_labels
from nncompare.job import ModelSpec
from nncompare.rounds import RoundPosition
from nncompare.trainer import ShardTrainer


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=30000, help="Shard size (a 2-worker shard of the 60k is 30000).")
    parser.add_argument("--rounds", type=int, default=6, help="Timed rounds per trainer.")
    args = parser.parse_args()
    if args.samples < 1 or args.rounds < 1:
        print("lost_parallelism: error: --samples and --rounds must be at least 1", file=sys.stderr)
        return 2  # bad input, as the nncompare CLI answers it
    try:
        files = locate("fashion-mnist", splits=("train",), download=False)
    except NNCompareError as exc:
        print(f"lost_parallelism: error: {exc}", file=sys.stderr)
        return 2
    x = read_images(files["train_images"]).reshape(-1, 784)[: args.samples]
    y = read_labels(files["train_labels"])[: args.samples]
    trainers = {cores: ShardTrainer(0, x, y, np.arange(10), ModelSpec(), cores=cores) for cores in (1, 2)}
    for trainer in trainers.values():
        trainer.train_round(None, RoundPosition.of(1, 1))  # initialisation, left out
    walls, threads = {1: [], 2: []}, {1: [], 2: []}
    for i in range(args.rounds):
        for cores in (2, 1) if i % 2 == 0 else (1, 2):
            update = trainers[cores].train_round(trainers[cores].flat.copy(), RoundPosition.of(i + 2, 1))
            walls[cores].append(update.compute_s)
            threads[cores].append(update.compute_threads)
    for cores in (1, 2):
        print(
            f"BLAS on {cores}: partial_fit {', '.join(f'{w:.3f}' for w in walls[cores])} s; "
            f"threads that computed {threads[cores]}"
        )
    print(f"1 thread / 2 threads (medians): x{statistics.median(walls[1]) / statistics.median(walls[2]):.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
