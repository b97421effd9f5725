"""The what-if model's prediction for the seed paper's clusters, beside the paper's own figures.

Fits :mod:`nncompare.whatif` on records (``scaling.py --records FILE``, ``nncompare sweep --out``),
then, for each engine model of the 784-100-10 job, predicts the paper's configurations
(9 executors of 4 cores, 7 of 5, 5 of 6, on 2 nodes of 24 cores: every worker has its cores,
so all shards run side by side) on MNIST's 60,000 training images for 10 and 100 epochs:
``start-up + epochs x epoch(W, 60,000)``. The start-up is the largest one measured in the records
(the paper's clusters start more workers than this machine ran). The model's compute is
fitted on one-core workers; a worker with 4-6 cores runs ``partial_fit`` at most 1.24x faster
on this model (docs/evidence.md, "Lost parallelism"), so the printed range divides compute by 1
and by 1.24. Exchange seconds are this machine's loopback: a real network adds its own.

Then, per model, the exchange (transfer + averaging) per round at 8 to 1,000 workers and the
fastest worker count for 60k, 480k and 10M samples when every worker has cores of its own.

    python benchmarks/sidebyside/whatif_paper.py scaling.jsonl
"""

from __future__ import annotations

import argparse
import math
import sys

BLAS_SPEEDUP = 1.24  # 2 BLAS threads over 1, the best measured (docs/evidence.md, "Lost parallelism")
MNIST_TRAIN = 60_000
BIG_CLUSTERS = (8, 64, 256, 1000)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("records")
    parser.add_argument("--hidden", type=int, default=100, help="The model the paper trained: 784-H-10.")
    args = parser.parse_args(argv)

    from nncompare.paper import load_seed_paper
    from nncompare.results import load_records
    from nncompare.whatif import TERMS, fit

    records = [r for r in load_records(args.records) if r["spec"]["model"]["hidden_layer_sizes"] == [args.hidden]]
    models = [m for m in fit(records) if m.engine in ("dask", "spark")]
    if not models:
        print(f"no dask or spark model of 784-{args.hidden}-10 at two worker counts in {args.records}")
        return 1
    paper = load_seed_paper()
    print(
        f"784-{args.hidden}-10 on {MNIST_TRAIN:,} images; model fitted on this machine's records; "
        f"compute range: 1 to {BLAS_SPEEDUP}x faster per worker with the paper's cores"
    )
    print(
        f"{'engine':6} {'exchange':8} {'config':8} {'epochs':>6} {'start-up s':>10} {'epoch s':>14} "
        f"{'predicted s':>14} {'paper s':>8}"
    )
    for m in models:
        startup = max(r["startup_s"] for r in records if r["engine"] == m.engine)
        for row in sorted((p for p in paper if p.engine == m.engine), key=lambda p: (p.workers, p.epochs)):
            if row.epochs > 100:
                continue
            terms = {t: float(m.term(t, row.workers, MNIST_TRAIN, slots=math.inf)) for t in TERMS}
            slow = sum(terms.values())
            fast = slow - terms["compute"] * (1 - 1 / BLAS_SPEEDUP)
            print(
                f"{m.engine:6} {m.exchange:8} {row.config:8} {row.epochs:6d} {startup:10.1f} {fast:6.3f}-{slow:<7.3f} "
                f"{startup + row.epochs * fast:6.1f}-{startup + row.epochs * slow:<7.1f} {row.wall_s:8.1f}"
            )
    print()
    print("past this machine (every worker with its own cores, this machine's per-hop costs): exchange per round")
    print(
        f"{'engine':6} {'exchange':8} " + " ".join(f"{'W=' + str(w):>9}" for w in BIG_CLUSTERS) + "   fastest W at N ="
    )
    for m in models:
        exchange = [1e3 * float(m.term("transfer", w) + m.term("average", w)) for w in BIG_CLUSTERS]
        best = [_fastest(m, n) for n in (MNIST_TRAIN, 480_000, 10_000_000)]
        print(
            f"{m.engine:6} {m.exchange:8} "
            + " ".join(f"{e:7.1f}ms" for e in exchange)
            + f"   60k: {best[0]}, 480k: {best[1]}, 10M: {best[2]}"
        )
    return 0


def _fastest(model, samples: int, limit: int = 4096) -> int:
    """The fastest worker count when every worker has its own cores (no limit P)."""
    import numpy as np

    w = np.arange(1, limit + 1)
    return int(w[np.argmin(model.predict(w, samples, slots=math.inf))])


if __name__ == "__main__":
    sys.exit(main())
