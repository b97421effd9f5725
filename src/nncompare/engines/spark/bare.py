"""A bare ``SparkSession``: the framework the Spark engine builds on, for the floor's start-up."""

from __future__ import annotations

import os
import sys
import time

from pyspark.sql import SparkSession


def bare_startup(workers: int, training_stack: bool) -> float:
    """Seconds to start a ``local[workers]`` session and run a first task through its Python workers.

    With ``training_stack`` its Python daemon is the engine's, which imports numpy and
    scikit-learn before forking workers.
    """
    t0 = time.perf_counter()
    # as the engine does (session.build_session): the Python workers run this interpreter, and
    # the JVM's servers listen on loopback
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    builder = (
        SparkSession.builder.master(f"local[{workers}]")
        .config("spark.ui.enabled", "false")
        .config("spark.driver.host", "127.0.0.1")
    )
    if training_stack:
        builder = builder.config("spark.python.daemon.module", "nncompare.engines.spark.daemon")
    session = builder.getOrCreate()
    session.sparkContext.parallelize(range(workers), workers).map(lambda x: x).collect()
    up = time.perf_counter() - t0
    session.stop()
    return up
