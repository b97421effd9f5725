"""The Spark engine: a barrier stage of long-lived tasks, weights over the driver's own sockets.

``session`` builds and stops the SparkSession, ``wire`` is the socket protocol,
``service`` the driver's server, ``driver`` the engine, ``worker`` the task side and
``daemon`` pyspark's worker daemon with the training stack pre-imported.
"""

from nncompare.engines.spark.driver import MAX_JOBS, SparkEngine
from nncompare.engines.spark.session import (
    STAGE_ATTEMPTS,
    active_session,
    build_session,
    first_line,
    session_conf,
    stop_session,
    wait_for_executors,
)

__all__ = [
    "MAX_JOBS",
    "STAGE_ATTEMPTS",
    "SparkEngine",
    "active_session",
    "build_session",
    "first_line",
    "session_conf",
    "stop_session",
    "wait_for_executors",
]
