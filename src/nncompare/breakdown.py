"""Where each configuration's time goes: start-up, placement and the phases, as shares of its wall time."""

from __future__ import annotations

import math

from nncompare.document import Table
from nncompare.results import COMPONENTS, labels, summarize


def concurrency(records: list[dict]) -> float:
    """The workers' compute (each on its own clock) over the rounds' wall time: 1 when shards take turns."""
    compute = sum(sum(x.get("worker_compute_s", [])) for r in records for x in r.get("rounds", []))
    wall = sum(x.get("wall_s", 0.0) for r in records for x in r.get("rounds", []))
    return compute / wall if wall else math.nan


def breakdown(records: list[dict]) -> list[dict]:
    """Per configuration (its repeats by their medians): each component's share of the wall time.

    Start-up (engine start) and placement (partitioning and placing the shards) happen once per
    run, each its own component (a slow placement must not look like a slow JVM). ``concurrency``
    is :func:`concurrency`: workers that share too few cores are in flight together but wait for
    a core, so on an oversubscribed machine it can exceed the cores while the speed-up cannot.
    """
    sums = summarize(records)
    rows = []
    for label, s in zip(labels(sums), sums):
        seconds = s.components()
        total = sum(seconds.values())
        rows.append(
            {
                "label": label,
                "engine": s.first["engine"],
                "runs": len(s.records),
                "epochs_run": s.epochs_run,
                "wall_s": s.wall_s,
                "steady_epoch_s": s.epoch_s,
                "share": {k: (v / total if total else math.nan) for k, v in seconds.items()},
                "seconds": seconds,
                "concurrency": concurrency(s.records),
            }
        )
    return rows


def breakdown_table(rows: list[dict]) -> Table:
    head = ["configuration", "runs", "epochs run", "steady epoch s", *(f"{k} %" for k in COMPONENTS), "concurrency"]
    return Table(
        head,
        [
            [
                b["label"],
                str(b["runs"]),
                f"{b['epochs_run']:g}",
                f"{b['steady_epoch_s']:.3f}",
                *(f"{100 * b['share'][k]:.1f}" for k in COMPONENTS),
                f"{b['concurrency']:.2f}",
            ]
            for b in rows
        ],
    )
