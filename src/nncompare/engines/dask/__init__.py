"""The Dask engine: one long-lived actor per worker holds its shard and trainer for the whole run.

``driver`` runs rounds and recovery, ``cluster`` starts or checks the cluster, ``worker`` is
all that runs inside a worker (imported there by name), and ``bare`` is the floor's bare
cluster. This module only declares the engine; it imports nothing from Dask.
"""

from dataclasses import dataclass

from nncompare.engines.plugin import EnginePlugin, PlotStyle, setting


@dataclass(frozen=True)
class DaskSettings:
    """The Dask engine's own settings (see docs/dask.md)."""

    timeout_s: float = setting(
        20.0,
        env="NNCOMPARE_DASK_TIMEOUT",
        help="Seconds to wait for a scheduler, its workers, or a replacement worker.",
    )
    pin_malloc: bool = setting(
        False,
        env="NNCOMPARE_DASK_PIN_MALLOC",
        help="Remote clusters: pin glibc's malloc thresholds in workers that run with MALLOC_TRIM_THRESHOLD_.",
    )
    tree_exchange: bool = setting(
        True,
        env="NNCOMPARE_DASK_TREE_EXCHANGE",
        help="Rounds travel down and up a binomial tree of the workers, averaged on the way (0: one actor call "
        "per worker).",
    )
    keep_malloc_trim: bool = setting(
        False, help="Own cluster: keep the nanny's MALLOC_TRIM_THRESHOLD_ (only to measure what removing it saves)."
    )


ENGINE = EnginePlugin(
    name="dask",
    engine_class="nncompare.engines.dask.driver:DaskEngine",
    description="one long-lived actor per dask.distributed worker; an in-process LocalCluster by default",
    install="nncompare[dask]",
    cluster_schemes=("tcp://", "tls://", "inproc://", "ucx://", "ws://", "wss://"),
    settings=DaskSettings,
    style=PlotStyle(marker="s", linestyle="--", markersize=6.5),
    packages=("dask", "distributed"),
    bare_startup="nncompare.engines.dask.bare:bare_startup",
    order=1,
)
