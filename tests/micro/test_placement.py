"""Placing one shard (30,000 x 784 float32 plus labels, 94 MB) where a worker can train on it.

An engine does this once per job, before the first round. Each benchmark times the shard's
way into a task on a worker, and that task reading every byte of it (a CRC-32, ~60 ms of
the figure on this machine, the same in every row), which also proves the bytes arrived:

* ``dask-scatter``: ``client.scatter(shard, direct=True)``, then a task on the scattered
  future (the shard stays in the worker's memory, as the engine keeps it);
* ``spark-parallelize``: ``sc.parallelize([shard], 1)``, the shard being the partition's
  data, unpickled by the task's Python worker;
* ``spark-broadcast``: ``sc.broadcast(shard)`` read by a one-task job;
* ``local-copy``: the in-process floor, one copy of the shard and the same CRC.
"""

from __future__ import annotations

import functools
import os
import zlib

import numpy as np
import pytest

ROUNDS = 3  # each round moves ~94 MB; three are enough for a median on a loaded machine


def probe(shard):
    """What the task sends back: the shapes, a CRC-32 over every byte, and its pid."""
    x, y = shard
    crc = zlib.crc32(
        memoryview(np.ascontiguousarray(y)).cast("B"), zlib.crc32(memoryview(np.ascontiguousarray(x)).cast("B"))
    )
    return x.shape, y.shape, crc, os.getpid()


def probe_broadcast(bc, _):
    return probe(bc.value)


@pytest.fixture
def payload(shard):
    return shard.x, shard.y


def _report(benchmark, payload, train_set, engine):
    benchmark.group = "placement: one 30,000-sample shard"
    benchmark.extra_info.update(data=train_set.source, engine=engine, bytes=int(sum(a.nbytes for a in payload)))


def assert_arrived(result, payload, *, remote=True):
    *seen, pid = result
    assert tuple(seen) == probe(payload)[:-1], "shapes or bytes differ from the shard sent"
    assert (pid != os.getpid()) == remote


@pytest.mark.slow
def test_dask_scatter(benchmark, dask_client, payload, train_set, ship_module_by_value):
    _report(benchmark, payload, train_set, "dask")
    client = dask_client
    placed = []

    def release():
        # drop the previous round's copy so rounds do not pile shards up on the worker
        for fut in placed:
            fut.release()
        placed.clear()

    def place():
        [fut] = client.scatter([payload], direct=True, hash=False)  # a list of one: the tuple stays whole
        placed.append(fut)
        return client.submit(probe, fut, pure=False).result()

    try:
        result = benchmark.pedantic(place, setup=release, rounds=ROUNDS)
        assert client.who_has(placed)[placed[-1].key], "the shard must stay on a worker"
    finally:
        release()
    assert_arrived(result, payload)


@pytest.mark.slow
def test_spark_parallelize(benchmark, spark_context, payload, train_set, ship_module_by_value):
    _report(benchmark, payload, train_set, "spark")
    sc = spark_context

    def place():
        return sc.parallelize([payload], 1).map(probe).collect()[0]

    assert_arrived(benchmark.pedantic(place, rounds=ROUNDS), payload)


@pytest.mark.slow
def test_spark_broadcast(benchmark, spark_context, payload, train_set, ship_module_by_value):
    _report(benchmark, payload, train_set, "spark")
    sc = spark_context

    def place():
        bc = sc.broadcast(payload)
        try:
            return sc.parallelize([0], 1).map(functools.partial(probe_broadcast, bc)).collect()[0]
        finally:
            bc.destroy()

    assert_arrived(benchmark.pedantic(place, rounds=ROUNDS), payload)


def test_local_copy(benchmark, payload, train_set):
    """The in-process floor: one copy of the shard (what the local engine pays at most) and the CRC."""
    _report(benchmark, payload, train_set, "local")

    def place():
        copied = tuple(np.array(a, copy=True) for a in payload)
        assert not any(np.shares_memory(c, a) for c, a in zip(copied, payload, strict=True))
        return probe(copied)

    assert_arrived(benchmark(place), payload, remote=False)
