"""A weight round trip to a real Dask worker and a real Spark task, next to one epoch of compute.

Every data-parallel round ships the averaged weights (318 KB) to each worker and its update
back. These benchmarks time exactly that round trip, through the mechanisms an engine can
use, with the echo running in the worker's own process (asserted by its pid):

* ``dask-submit``: the buffer travels inside the task (client -> scheduler -> worker), the
  result comes back with ``Future.result()``;
* ``dask-scatter``: the buffer is scattered straight to the worker, an identity task runs on
  it, the result comes back;
* ``dask-actor``: a method call on an Actor living on the worker (direct client-worker comms);
* ``spark-map``: ``sc.parallelize([buf], 1).map(echo).collect()``, one Spark job;
* ``spark-broadcast``: ``sc.broadcast(buf)`` read by a one-task job that returns it;
* ``spark-socket``: one long-lived Spark task that connected back to a driver socket echoes
  the buffer (what an engine keeping its tasks alive between rounds could reach).

A ``tiny`` payload (8 bytes) gives each mechanism's fixed latency; ``weights`` its cost for
the real buffer. ``test_epoch_compute`` measures what the round trips compete with: one
epoch of ``ShardTrainer`` on a 30,000-sample shard with one core.
"""

from __future__ import annotations

import functools
import math
import os
import socket
import struct
import threading

import numpy as np
import pytest

from nncompare.rounds import RoundPosition
from nncompare.sockets import recv_into
from nncompare.trainer import ShardTrainer


def echo(buf):
    return buf, os.getpid()


def echo_broadcast(bc, _):
    return bc.value, os.getpid()


class Echo:
    """A Dask actor: state-free, answers with what it got."""

    def echo(self, buf):
        return buf, os.getpid()


@pytest.fixture(scope="module")
def echo_actor(dask_client, ship_module_by_value):
    # as the engine does: the handle binds to the client it is unpickled under, and with
    # direct_to_workers (the engine's client) its calls then go straight to the worker
    with dask_client.as_current():
        return dask_client.submit(Echo, actor=True).result()


def dask_submit(client, buf):
    return client.submit(echo, buf, pure=False).result()


def dask_scatter(client, buf):
    [remote] = client.scatter([buf], direct=True, hash=False)
    return client.submit(echo, remote, pure=False).result()


def dask_actor(actor, buf):
    return actor.echo(buf).result()


def spark_map(sc, buf):
    return sc.parallelize([buf], 1).map(echo).collect()[0]


def spark_broadcast(sc, buf):
    bc = sc.broadcast(buf)
    try:
        return sc.parallelize([0], 1).map(functools.partial(echo_broadcast, bc)).collect()[0]
    finally:
        bc.destroy()


# --- a long-lived Spark task that talks to the driver over its own socket -----------------------
HEADER, HEADER_SIZE = "!Q", 8  # a format string, not a struct.Struct: it travels to the task by value


def _connect(address):
    sock = socket.create_connection(address)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # no Nagle delay between header and body
    return sock


def socket_echo_task(ports):
    """Runs inside one Spark task: connect back to the driver, echo float32 buffers until told to stop."""
    [port] = list(ports)
    echoed = 0
    with _connect(("127.0.0.1", port)) as sock:
        sock.sendall(struct.pack(HEADER, os.getpid()))
        header = bytearray(HEADER_SIZE)
        while True:
            recv_into(sock, memoryview(header))
            (n,) = struct.unpack(HEADER, header)
            if n == 0:
                break
            buf = np.empty(n // 4, dtype=np.float32)  # the worker holds the weights as an array
            recv_into(sock, memoryview(buf).cast("B"))
            sock.sendall(struct.pack(HEADER, buf.nbytes))
            sock.sendall(memoryview(buf).cast("B"))
            echoed += 1
    yield echoed


class SparkSocketEcho:
    """A Spark job whose one task stays up and echoes what the driver sends over a socket.

    This is the floor for a Spark engine that keeps its tasks alive between rounds (a barrier
    stage talking to the driver), rather than launching a job per round.
    """

    def __init__(self, sc, timeout_s: float = 120.0):
        self.server = socket.create_server(("127.0.0.1", 0))
        port = self.server.getsockname()[1]
        self.outcome: list = []
        self.sent = 0
        self.job = threading.Thread(target=self._run, args=(sc, port), daemon=True)
        self.job.start()
        self.conn = self._accept(timeout_s)
        self.conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        pid = bytearray(HEADER_SIZE)
        recv_into(self.conn, memoryview(pid))
        (self.worker_pid,) = struct.unpack(HEADER, pid)

    def _run(self, sc, port):
        try:
            self.outcome.append(sc.parallelize([port], 1).mapPartitions(socket_echo_task).collect())
        except Exception as exc:  # handed to the test thread, which raises it
            self.outcome.append(exc)

    def _accept(self, timeout_s):
        self.server.settimeout(0.5)
        for _ in range(int(timeout_s / 0.5)):
            try:
                conn, _ = self.server.accept()
                return conn
            except TimeoutError:
                if not self.job.is_alive():
                    break
        self.server.close()
        raise RuntimeError(f"the Spark echo task never connected: {self.outcome}")

    def __call__(self, buf: np.ndarray):
        assert buf.dtype == np.float32 and buf.flags.c_contiguous
        self.conn.sendall(struct.pack(HEADER, buf.nbytes))
        self.conn.sendall(memoryview(buf).cast("B"))
        header = bytearray(HEADER_SIZE)
        recv_into(self.conn, memoryview(header))
        out = np.empty(struct.unpack(HEADER, header)[0] // 4, dtype=np.float32)
        recv_into(self.conn, memoryview(out).cast("B"))
        self.sent += 1
        return out.reshape(buf.shape), self.worker_pid

    def close(self) -> int:
        """Stop the task; returns how many buffers it echoed (Spark's own count, from collect)."""
        self.conn.sendall(struct.pack(HEADER, 0))
        self.job.join(timeout=60)
        self.conn.close()
        self.server.close()
        assert not self.job.is_alive(), "the Spark echo job did not finish"
        [result] = self.outcome
        if isinstance(result, Exception):
            raise result
        return result[0]


@pytest.fixture
def spark_socket(spark_context, ship_module_by_value):
    echo_task = SparkSocketEcho(spark_context)
    yield echo_task
    assert echo_task.close() == echo_task.sent


MECHANISMS = ["dask-submit", "dask-scatter", "dask-actor", "spark-map", "spark-broadcast", "spark-socket"]


@pytest.fixture
def round_trip(request, ship_module_by_value):
    """The mechanism's round-trip function, its engine started lazily (Spark only when asked for)."""
    mechanism = request.param
    if mechanism == "dask-actor":
        return functools.partial(dask_actor, request.getfixturevalue("echo_actor"))
    if mechanism.startswith("dask"):
        fn = dask_submit if mechanism == "dask-submit" else dask_scatter
        return functools.partial(fn, request.getfixturevalue("dask_client"))
    if mechanism == "spark-socket":
        return request.getfixturevalue("spark_socket")
    fn = spark_map if mechanism == "spark-map" else spark_broadcast
    return functools.partial(fn, request.getfixturevalue("spark_context"))


@pytest.mark.slow
@pytest.mark.parametrize("payload", ["tiny", "weights"])
@pytest.mark.parametrize("round_trip", MECHANISMS, indirect=True)
def test_round_trip(benchmark, round_trip, payload, weights):
    buf = np.array([1.5, -2.0], dtype=np.float32) if payload == "tiny" else weights
    benchmark.group = f"transfer: {payload} round trip"
    benchmark.extra_info["payload_bytes"] = int(buf.nbytes)
    if payload == "weights":  # a bandwidth of the 8-byte ping would mean nothing
        benchmark.extra_info.update(bytes=int(2 * buf.nbytes), role="weight-round-trip")  # there and back
    got, pid = benchmark(round_trip, buf)

    assert pid != os.getpid(), "the echo must run in a worker process"
    assert got.dtype == buf.dtype and np.array_equal(got, buf)
    assert not np.shares_memory(got, buf), "the result must have come back over the wire"


def test_epoch_compute(benchmark, shard, train_set, model_spec):
    """One epoch of the real trainer (adam, batch 200) on a 30,000-sample shard, one core."""
    trainer = ShardTrainer(0, shard.x, shard.y, train_set.classes, model_spec, cores=1)
    start = trainer.train_round(None, RoundPosition.of(1, 1)).weights  # builds the model and its optimiser, untimed
    benchmark.group = "compute: one epoch"
    benchmark.extra_info.update(
        data=train_set.source,
        role="epoch-compute",
        samples=len(shard),
        workers=len(train_set.y) // len(shard),
        batch_size=model_spec.batch_size,
        batches_per_epoch=math.ceil(len(shard) / model_spec.batch_size),
    )
    update = benchmark.pedantic(trainer.train_round, args=(start, RoundPosition.of(2, 1)), rounds=5, warmup_rounds=0)

    assert update.n_samples == len(shard) and update.epoch_end
    assert np.isfinite(update.weights).all() and not np.array_equal(update.weights, start)
    assert np.isfinite(update.loss)
    if train_set.source.startswith("fashion-mnist"):
        assert update.loss < 0.7 * math.log(len(train_set.classes)), "after a few epochs it must beat chance clearly"
