"""This machine's floor: what an engine's epoch and start-up are measured against, side by side.

An engine's own overhead figure (transfer, averaging, scheduling) cannot show that its workers'
``partial_fit`` runs slower than it would in a plain process, or that it starts slower than
the framework it builds on. The floor can:

``floor_epoch``
    W plain 1-thread Python processes, each training its own shard of the job (the same
    shards, model and seed the engines get) with ``MLPClassifier.partial_fit``, all at once:
    the fastest a W-worker epoch can be on this machine.
``bare_startup``
    a bare ``LocalCluster`` of W one-thread worker processes, or a bare ``SparkSession``
    ``local[W]``, up and through a first trivial task, in a fresh interpreter; with
    ``training_stack=True`` its workers (Spark: its Python daemon) also import what a worker
    must have to train (numpy, scikit-learn), as the engines' own do at start-up.
``floor_placement``
    the job's shards cut as the engines cut them, sent as uint8 over loopback TCP to W plain
    processes at once (started and connected beforehand), each scaling its shard to float32
    features and answering: the least a placement has to do. Floor processes run with the
    engines' worker environment (``trainer.WORKER_ENV``).
``engine_run``
    one engine's whole job (``run_job``) in a fresh interpreter, so its start-up is timed
    from the same point as the bare one (the framework imported, nothing started).

Every function measures; none returns a remembered figure. On a shared machine only ratios
taken in one sitting mean anything, which is why the benchmarks call these back to back.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time

from nncompare.sockets import recv_exactly, recv_into

#: What the child interpreters print their result after, on their last line.
RESULT_MARK = "NNCOMPARE-FLOOR "
BLAS_ENV = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def _plain_worker(spec_json: str, data_dir, shard: int, epochs: int, barrier, results) -> None:
    """One plain process: its own shard, one BLAS thread, warm-up epoch, then ``epochs`` timed ones."""
    import warnings

    import numpy as np

    from nncompare.clocks import Reading, Span
    from nncompare.data import load_dataset
    from nncompare.job import JobSpec
    from nncompare.model import make_model
    from nncompare.partition import make_shards
    from nncompare.trainer import blas_threads
    from nncompare.training import training_data

    spec = JobSpec.from_dict(json.loads(spec_json))
    dataset = load_dataset(spec.dataset, data_dir=data_dir)
    x, y, pixels = training_data(spec, dataset)
    part = make_shards(x, y, spec.topology.workers, spec.partition, spec.model.seed, pixels=pixels)[shard]
    x, y, classes = np.ascontiguousarray(part.x), part.y, dataset.classes
    del dataset
    model = make_model(spec.model)
    spans = []
    with warnings.catch_warnings(), blas_threads(1):
        warnings.simplefilter("ignore")
        model.partial_fit(x, y, classes=classes)
        barrier.wait()  # every process starts its timed epochs together: they share the machine as workers do
        for _ in range(epochs):
            start = Reading.now()
            model.partial_fit(x, y)
            span = Span.between(start, Reading.now())
            spans.append({"wall_s": span.wall_s, "cpu_s": span.cpu_s, "runqueue_s": span.runqueue_s})
    results.put((shard, spans))


def floor_epoch(spec, data_dir=None, epochs: int = 4) -> dict:
    """W plain processes train their shards at once; the floor epoch is the slowest one's median epoch.

    Returns ``epoch_s`` (that floor), ``cpu_s`` and ``runqueue_s`` of the same process's
    median epoch, and ``per_process`` (each process's epochs).
    """
    from multiprocessing import get_context

    from nncompare.trainer import WORKER_ENV

    ctx = get_context("spawn")
    workers = spec.topology.workers
    barrier, results = ctx.Barrier(workers), ctx.Queue()
    saved = {k: os.environ.get(k) for k in (*BLAS_ENV, *WORKER_ENV)}
    # spawned children read these as they import numpy: one BLAS thread, the engines' worker environment
    os.environ.update({**dict.fromkeys(BLAS_ENV, "1"), **WORKER_ENV})
    try:
        procs = [
            ctx.Process(target=_plain_worker, args=(json.dumps(spec.to_dict()), data_dir, i, epochs, barrier, results))
            for i in range(workers)
        ]
        for p in procs:
            p.start()
        spans = dict(results.get(timeout=900) for _ in procs)
        for p in procs:
            p.join()
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    medians = {}
    for shard, rows in spans.items():
        ordered = sorted(rows, key=lambda r: r["wall_s"])
        medians[shard] = ordered[len(ordered) // 2]
    slowest = max(medians.values(), key=lambda r: r["wall_s"])
    return {
        "epoch_s": slowest["wall_s"],
        "cpu_s": slowest["cpu_s"],
        "runqueue_s": slowest["runqueue_s"],
        "per_process": [[r["wall_s"] for r in spans[i]] for i in sorted(spans)],
    }


def _placement_receiver(port: int) -> None:
    """A plain process's side of :func:`floor_placement`: receive a uint8 shard, scale it, answer."""
    import socket
    import struct

    import numpy as np

    from nncompare.idx import scale_pixels

    with socket.create_connection(("127.0.0.1", port)) as sock:
        rows, cols = struct.unpack("!QQ", recv_exactly(sock, 16))
        pixels = np.empty((rows, cols), dtype=np.uint8)
        recv_into(sock, memoryview(pixels).cast("B"))
        features = scale_pixels(pixels)
        sock.sendall(struct.pack("!d", float(features[-1, -1])))


def floor_placement(spec, data_dir=None, timeout: float = 120) -> dict:
    """Cut the shards, send each to its own plain process over loopback, and wait until all have scaled theirs.

    The clock starts where an engine's placement starts (the training rows in hand, shards not
    yet cut) and stops when the last process has its float32 features: ``placement_s``. The
    processes are started and connected before the clock starts, as an engine's workers are.
    """
    import socket
    import struct
    import threading

    from nncompare.data import load_dataset
    from nncompare.partition import make_shards
    from nncompare.trainer import WORKER_ENV
    from nncompare.training import training_data

    x, y, pixels = training_data(spec, load_dataset(spec.dataset, data_dir=data_dir))
    if pixels is None:
        raise ValueError(f"{spec.dataset} has no uint8 pixels to place")
    workers = spec.topology.workers
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        code = f"import nncompare.floor as f; f._placement_receiver({port})"
        env = {**os.environ, **WORKER_ENV}  # as the engines' workers have it
        procs = [
            subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.DEVNULL, env=env) for _ in range(workers)
        ]
        server.settimeout(timeout)
        try:
            conns = [server.accept()[0] for _ in procs]
            start = time.perf_counter()
            shards = make_shards(x, y, workers, spec.partition, spec.model.seed, pixels=pixels)
            cut_s = time.perf_counter() - start

            answers = {}

            def place(conn, shard) -> None:
                conn.sendall(struct.pack("!QQ", *shard.pixels.shape))
                conn.sendall(memoryview(shard.pixels).cast("B"))
                answers[shard.index] = struct.unpack("!d", recv_exactly(conn, 8))[0]

            threads = [threading.Thread(target=place, args=(c, s)) for c, s in zip(conns, shards)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            placement_s = time.perf_counter() - start
            if any(answers.get(s.index) != float(s.x[-1, -1]) for s in shards):  # each scaled what it was sent
                raise RuntimeError("a floor placement process did not get its shard whole")
            for conn in conns:
                conn.close()
        finally:
            for proc in procs:
                try:
                    proc.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    proc.kill()
    return {"placement_s": placement_s, "cut_s": cut_s, "bytes": int(sum(s.pixels.nbytes for s in shards))}


def _bare_dask(workers: int, training_stack: bool) -> dict:
    from distributed import Client, LocalCluster

    preload = ["nncompare.engines.dask.worker"] if training_stack else []
    t0 = time.perf_counter()
    cluster = LocalCluster(
        n_workers=workers,
        threads_per_worker=1,
        processes=True,
        dashboard_address=None,
        host="127.0.0.1",
        preload=preload,
    )
    client = Client(cluster, set_as_default=False)
    client.submit(lambda: 1).result()
    up = time.perf_counter() - t0
    client.close()
    cluster.close()
    return {"startup_s": up}


def _bare_spark(workers: int, training_stack: bool) -> dict:
    from pyspark.sql import SparkSession

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
    return {"startup_s": up}


def _engine_child(spec_json: str, data_dir) -> dict:
    from nncompare.job import JobSpec
    from nncompare.training import run_job

    return run_job(JobSpec.from_dict(json.loads(spec_json)), data_dir=data_dir)


def _in_child(call: str, timeout: float, prelude: str = "pass") -> dict:
    """Run ``prelude``, then ``call`` (an expression on this module), in a fresh interpreter; its JSON result."""
    code = (
        f"import json, nncompare.floor as f; {prelude}; r = f.{call}; "
        f"print(); print({RESULT_MARK!r} + json.dumps(r), flush=True)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith(RESULT_MARK)]
    if done.returncode != 0 or not lines:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        raise RuntimeError(f"{call} failed (exit {done.returncode}): {' | '.join(tail)}")
    return json.loads(lines[-1][len(RESULT_MARK) :])


def bare_startup(engine: str, workers: int, training_stack: bool = False, timeout: float = 600) -> dict:
    """A bare LocalCluster / SparkSession of ``workers`` one-core workers, up and through a first task."""
    if engine not in ("dask", "spark"):
        raise ValueError(f"no bare start-up for engine {engine!r}")
    # the framework is imported before the clock starts, as it is before an engine's start()
    prelude = "import distributed" if engine == "dask" else "import pyspark.sql"
    return _in_child(f"_bare_{engine}({int(workers)}, {bool(training_stack)})", timeout, prelude)


def engine_run(spec, data_dir=None, timeout: float = 900) -> dict:
    """The result record of ``spec`` run in a fresh interpreter (its engine module imported before start)."""
    data = "None" if data_dir is None else repr(os.fspath(data_dir))
    prelude = f"from nncompare.engines import engine_class; engine_class({spec.engine!r})"
    return _in_child(f"_engine_child({json.dumps(spec.to_dict())!r}, {data})", timeout, prelude)


def median(values) -> float:
    return float(statistics.median(values))
