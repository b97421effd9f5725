"""The Spark engine: a barrier stage of long-lived tasks, weights over the driver's own sockets.

``session`` builds and stops the SparkSession, ``wire`` is the socket protocol, ``service``
the driver's server, ``driver`` the engine, ``worker`` the task side, ``daemon`` pyspark's
worker daemon with the training stack pre-imported, and ``bare`` the floor's bare session.
This module only declares the engine; it imports nothing from Spark.
"""

from collections.abc import Mapping
from dataclasses import dataclass

from nncompare.engines.plugin import EnginePlugin, PlotStyle, setting
from nncompare.errors import UsageError


@dataclass(frozen=True)
class SparkSettings:
    """The Spark engine's own settings (see docs/spark.md)."""

    connect_timeout_s: float = setting(
        300.0,
        env="NNCOMPARE_SPARK_CONNECT_TIMEOUT",
        help="Seconds for the barrier tasks to connect to the driver (at placement and after a retry).",
    )
    round_timeout_s: float = setting(
        600.0, env="NNCOMPARE_SPARK_ROUND_TIMEOUT", help="Seconds one round may take before its task counts as lost."
    )
    executor_timeout_s: float = setting(
        180.0,
        env="NNCOMPARE_SPARK_EXECUTOR_TIMEOUT",
        help="Cluster masters: seconds to wait for the executors to register.",
    )
    tree_exchange: bool = setting(
        True,
        env="NNCOMPARE_SPARK_TREE_EXCHANGE",
        help="Rounds travel down and up a binomial tree of the tasks, averaged on the way (0: the driver "
        "exchanges weights with every task).",
    )
    conf: Mapping[str, str] = setting(
        {}, flag="--spark-conf", help="A Spark setting KEY=VALUE, applied after the engine's own (repeatable)."
    )

    def __post_init__(self):
        for key in self.conf:
            if not key.startswith("spark."):
                raise UsageError(f"--spark-conf {key}: write KEY=VALUE with a Spark key, e.g. spark.executor.cores=2")


ENGINE = EnginePlugin(
    name="spark",
    engine_class="nncompare.engines.spark.driver:SparkEngine",
    description="one barrier-mode task per executor, alive for the whole run; local[W*C] by default",
    install="nncompare[spark]",
    cluster_schemes=("spark://", "yarn", "k8s://", "mesos://", "local["),
    settings=SparkSettings,
    style=PlotStyle(marker="^", linestyle=":", markersize=4),
    packages=("pyspark", "pyarrow"),
    bare_startup="nncompare.engines.spark.bare:bare_startup",
    order=2,
)
