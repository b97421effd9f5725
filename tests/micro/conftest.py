"""Fixtures of the micro-benchmarks: the real data shapes, one Dask cluster, one Spark session.

Every test here is a pytest-benchmark benchmark that also asserts what it measured. In a
plain pytest run (tests/conftest.py disables the timing) each runs its function once, so the
suite stays a fast correctness check; with ``--benchmark-only`` it prints the timing table,
and this file adds a throughput table (bytes per second) and the per-batch synchronisation
arithmetic under it. The data is Fashion-MNIST, obtained as tests/conftest.py says.

Dask and Spark start once per session (a few seconds each) and are shut down at its end.
"""

from __future__ import annotations

import os
import sys
import warnings
from dataclasses import dataclass

import numpy as np
import pytest

from nncompare.job import ModelSpec
from nncompare.model import make_model, n_weights, prime

# Fashion-MNIST's training set and the 784-100-10 model of the paper the project reproduces.
N_TRAIN, N_FEATURES, N_CLASSES = 60_000, 784, 10
MODEL = ModelSpec()
SHARD_SAMPLES = N_TRAIN // 2  # one shard of a two-worker job


@dataclass(frozen=True)
class TrainSet:
    x: np.ndarray
    y: np.ndarray
    classes: np.ndarray
    source: str  # goes into every benchmark's extra_info["data"]


@pytest.fixture(scope="session")
def train_set(fashion) -> TrainSet:
    """Fashion-MNIST's training set, obtained as the other tests obtain it (tests/conftest.py):
    the timings and the per-batch arithmetic are those of the real data, never a stand-in."""
    data = TrainSet(fashion.x_train, fashion.y_train, fashion.classes, f"fashion-mnist ({fashion.source})")
    assert data.x.shape == (N_TRAIN, N_FEATURES) and data.x.dtype == np.float32
    return data


@pytest.fixture(scope="session")
def shard(train_set):
    """One stratified shard of a two-worker job: 30,000 x 784 float32 plus its labels, C-contiguous copies."""
    from nncompare.partition import make_shards

    s = make_shards(train_set.x, train_set.y, 2, how="stratified", seed=0)[0]
    assert len(s) == SHARD_SAMPLES and s.x.flags.c_contiguous
    return s


@pytest.fixture(scope="session")
def weights(train_set) -> np.ndarray:
    """The model's real flat float32 weight buffer (784-100-10: 79,510 values, 318 KB) at its seeded init."""
    flat = prime(make_model(MODEL), train_set.x, train_set.y, train_set.classes)
    assert flat.dtype == np.float32 and flat.size == n_weights(MODEL, N_FEATURES, N_CLASSES) == 79_510
    return flat.copy()


@pytest.fixture(scope="package")
def dask_client():
    """The Dask engine's own LocalCluster (``engines.dask.cluster.start_local``): one worker
    process, one thread, on 127.0.0.1, started as the engine starts it (no nanny malloc trim,
    BLAS threads = cores, direct client-worker comms).

    Package-scoped, so it is gone before the engine tests start theirs; closing it restores
    this process's environment, as the engine's close does.
    """
    from nncompare.engines.dask import DaskSettings
    from nncompare.engines.dask.cluster import start_local
    from nncompare.job import Topology

    cluster = start_local(Topology(workers=1, cores_per_worker=1), DaskSettings())
    try:
        yield cluster.client
    finally:
        cluster.close()


@pytest.fixture(scope="package")
def spark_context():
    """A real local-mode SparkSession; its Python workers run this interpreter.

    Package-scoped: one SparkContext per process, and the Spark engine tests need their own.

    Two task slots, so that a long-lived task (the socket echo) never blocks a one-task job.
    """
    from pyspark.sql import SparkSession

    builder = (
        SparkSession.builder.master("local[2]")
        .appName("nncompare-micro-benchmarks")
        .config("spark.pyspark.python", sys.executable)
        .config("spark.pyspark.driver.python", sys.executable)
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.driver.memory", "1g")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.python.worker.reuse", "true")
    )
    # pyspark takes the workers' interpreter from PYSPARK_PYTHON (else "python3" on PATH), not from
    # spark.pyspark.python, when the session is built inside a running interpreter
    saved = os.environ.get("PYSPARK_PYTHON")
    os.environ["PYSPARK_PYTHON"] = sys.executable
    with warnings.catch_warnings():  # PySpark 4 warns about pandas 3, which these benchmarks do not use through Spark
        warnings.filterwarnings("ignore", "PySpark does not yet fully support pandas", FutureWarning)
        spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    try:
        yield spark.sparkContext
    finally:
        spark.stop()
        if saved is None:
            os.environ.pop("PYSPARK_PYTHON", None)
        else:
            os.environ["PYSPARK_PYTHON"] = saved


@pytest.fixture(scope="module")
def ship_module_by_value(request):
    """Let Dask's and Spark's workers unpickle this test module's functions: they cannot import it."""
    import cloudpickle

    cloudpickle.register_pickle_by_value(request.module)
    try:
        from pyspark import cloudpickle as spark_cloudpickle  # Spark ships its own copy
    except ImportError:
        spark_cloudpickle = None
    if spark_cloudpickle is not None:
        spark_cloudpickle.register_pickle_by_value(request.module)
    yield
    cloudpickle.unregister_pickle_by_value(request.module)
    if spark_cloudpickle is not None:
        spark_cloudpickle.unregister_pickle_by_value(request.module)


@pytest.fixture(scope="session")
def model_spec() -> ModelSpec:
    return MODEL


# --- what the tables do not show: bytes per second, and what per-batch sync would cost ---------

_MEASURED: list[dict] = []


@pytest.fixture(autouse=True)
def _throughput(benchmark, request):
    """After a measured run, turn ``extra_info['bytes']`` into ``extra_info['bytes_per_s']`` (median)."""
    yield
    if benchmark.stats is None:  # --benchmark-disable: the function ran once, untimed
        return
    median = benchmark.stats.stats.median
    info = benchmark.extra_info
    if "bytes" in info and median > 0:
        info["bytes_per_s"] = info["bytes"] / median
    _MEASURED.append({"name": request.node.name, "group": benchmark.group, "median_s": median, **info})


def pytest_terminal_summary(terminalreporter):
    if not _MEASURED:
        return
    tr = terminalreporter
    rows = [m for m in _MEASURED if "bytes_per_s" in m]
    if rows:
        tr.write_sep("-", "micro-benchmarks: throughput (payload bytes / median time)")
        width = max(len(m["name"]) for m in rows)
        tr.write_line(f"{'name':<{width}}  {'payload':>10}  {'median':>11}  {'MB/s':>9}")
        for m in rows:
            note = "  zero-copy: nothing was copied" if m.get("zero_copy") else ""
            tr.write_line(
                f"{m['name']:<{width}}  {m['bytes'] / 1e6:>8.2f}MB  {m['median_s'] * 1e3:>9.3f}ms  "
                f"{m['bytes_per_s'] / 1e6:>9.0f}{note}"
            )
    _per_batch_sync_summary(tr)


def _per_batch_sync_summary(tr) -> None:
    """Set each engine's measured weight round trip against one measured epoch of compute.

    A two-worker epoch over the 60,000 samples is 300 batches of 200: 150 per worker. Syncing
    after every batch is 150 rounds, each one weight round trip per worker, so 300 round trips;
    the driver pays between 150 (the two workers' trips fully overlap) and 300 (one after the other).
    """
    epoch = [m for m in _MEASURED if m.get("role") == "epoch-compute"]
    trips = [m for m in _MEASURED if m.get("role") == "weight-round-trip"]
    if not epoch or not trips:
        return
    ep = epoch[0]
    rounds, workers = ep["batches_per_epoch"], ep["workers"]
    tr.write_sep("-", "micro-benchmarks: per-batch synchronisation, from the medians above")
    tr.write_line(
        f"one epoch of compute on a {ep['samples']:,}-sample shard, 1 core: {ep['median_s']:.3f} s "
        f"({rounds} batches of {ep['batch_size']}; {workers} such shards make the 60,000-sample epoch)"
    )
    tr.write_line(
        f"syncing every batch = {rounds} rounds x {workers} workers = {rounds * workers} weight round trips "
        f"per epoch; added time per epoch, overlapped .. serial, vs that epoch's compute:"
    )
    width = max(len(m["name"]) for m in trips)
    for m in trips:
        low, high = rounds * m["median_s"], rounds * workers * m["median_s"]
        tr.write_line(
            f"  {m['name']:<{width}}  {m['median_s'] * 1e3:7.1f} ms/trip  -> {low:6.2f} .. {high:6.2f} s "
            f"= {low / ep['median_s']:5.1f}x .. {high / ep['median_s']:5.1f}x the compute"
        )
