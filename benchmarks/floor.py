"""Efficiency against this machine's floor: each engine's steady epoch over the floor epoch.

Seconds move with the machine (its CPU, its load); the ratio of an engine's steady epoch to
the floor epoch measured in the same benchmark process (W plain 1-thread processes training
their shards at once, ``nncompare.floor``) does not, so its history shows the engine's own
efficiency. 1.0 is the floor; issue 13's target is 1.10 or less.

One ``setup_cache`` measures the floor and runs every engine (each in a fresh interpreter),
so all the ratios of one commit come from one sitting.
"""

from __future__ import annotations

from . import common

WORKERS, EPOCHS, FLOOR_EPOCHS = 2, 4, 4
FLOOR_ENGINES = [e for e in common.ENGINES if common.side_by_side(e)]  # the floor is W processes at once


def _spec(engine: str):
    from nncompare.job import JobSpec, ModelSpec, Topology

    return JobSpec(
        dataset=common.dataset_name(),
        engine=engine,
        epochs=EPOCHS,
        convergence_stop=False,
        model=ModelSpec(hidden_layer_sizes=(100,), batch_size=200),
        topology=Topology(workers=WORKERS, cores_per_worker=1),
    )


class EpochOverFloor:
    """An engine's steady epoch (median after the first) over the floor epoch of the same process."""

    params = [FLOOR_ENGINES]
    param_names = ["engine"]
    unit = "ratio"
    timeout = 1800

    def setup_cache(self):
        from nncompare import floor
        from nncompare.steady import steady_epoch_s

        out = {"floor_epoch_s": floor.floor_epoch(_spec("local"), epochs=FLOOR_EPOCHS)["epoch_s"]}
        for engine in FLOOR_ENGINES:
            if common.skip_reason(engine, WORKERS, 1, "2g"):
                continue
            out[engine] = steady_epoch_s(floor.engine_run(_spec(engine)))
        return out

    def setup(self, cache, engine):
        common.skip_if_cannot_run(engine, WORKERS, 1, "2g", None)

    def track_epoch_over_floor(self, cache, engine):
        return cache[engine] / cache["floor_epoch_s"]
