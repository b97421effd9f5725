"""This machine's floor: what an engine's epoch, placement and start-up are measured against.

An engine's own overhead figure (transfer, averaging, scheduling) cannot show that its workers'
``partial_fit`` runs slower than it would in a plain process, or that it starts slower than
the framework it builds on. The floor can:

:func:`floor_epoch`
    W plain 1-thread processes (:mod:`nncompare.floor.trainers`), each training its own shard of
    the job (the same shards, model and seed the engines get), all at once: the fastest a
    W-worker epoch can be on this machine. The gate's floor pass is the same code.
:func:`~nncompare.floor.placement.floor_placement`
    the job's shards cut as the engines cut them, sent as uint8 over loopback TCP to W plain
    processes at once, each scaling its shard to float32: the least a placement has to do.
:func:`~nncompare.floor.startup.bare_startup`
    the bare framework an engine builds on (its plugin's ``bare_startup``: a ``LocalCluster``,
    a ``SparkSession``), up and through a first task, in a fresh interpreter.
:func:`~nncompare.floor.startup.engine_run`
    one engine's whole job in a fresh interpreter, its start-up timed from the same point.

Every function measures; none returns a remembered figure. On a shared machine only ratios
taken in one sitting mean anything, which is why the benchmarks call these back to back.
"""

from __future__ import annotations

from nncompare.floor.placement import floor_placement
from nncompare.floor.startup import bare_startup, engine_run
from nncompare.floor.trainers import FloorTrainers
from nncompare.steady import steady_seconds


def floor_epoch(spec, data_dir=None, epochs: int = 4) -> dict:
    """W plain processes train their shards at once, ``epochs`` passes; the floor is the slowest one's steady epoch.

    Each process's steady epoch is :func:`nncompare.steady.steady_seconds` of its passes (the
    first pass after the untimed initialisation is left out, as an engine's first epoch is).
    Returns ``epoch_s`` (that floor), ``cpu_s`` and ``runqueue_s`` of the same process, and
    ``per_process`` (each process's passes, wall seconds).
    """
    from nncompare.data import load_dataset
    from nncompare.partition import make_shards
    from nncompare.training import training_data

    dataset = load_dataset(spec.dataset, data_dir=data_dir)
    x, y, pixels = training_data(spec, dataset)
    shards = make_shards(x, y, spec.topology.workers, spec.partition, spec.model.seed, pixels=pixels)
    m = spec.model
    model = {
        "hidden_layer_sizes": list(m.hidden_layer_sizes),
        "activation": m.activation,
        "solver": m.solver,
        "batch_size": m.batch_size,
        "learning_rate_init": m.learning_rate_init,
        "alpha": m.alpha,
        "random_state": m.seed,
    }
    with FloorTrainers([(s.x, s.y) for s in shards], dataset.classes, model) as trainers:
        passes = [trainers.run_pass() for _ in range(epochs)]
    per_process = [[p[i] for p in passes] for i in range(len(shards))]
    steady = [
        {k: steady_seconds([p[k] for p in rows]) for k in ("wall_s", "cpu_s", "runqueue_s")} for rows in per_process
    ]
    slowest = max(steady, key=lambda s: s["wall_s"])
    return {
        "epoch_s": slowest["wall_s"],
        "cpu_s": slowest["cpu_s"],
        "runqueue_s": slowest["runqueue_s"],
        "per_process": [[p["wall_s"] for p in rows] for rows in per_process],
    }


__all__ = ["FloorTrainers", "bare_startup", "engine_run", "floor_epoch", "floor_placement"]
