"""The weight service's messages: each decodes to exactly what was encoded, and strangers' frames are refused."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from nncompare.engines.spark.wire import (
    Hello,
    Placement,
    ProtocolError,
    decode_hello,
    decode_placement,
    decode_round,
    decode_update,
    encode_hello,
    encode_placement,
    encode_round,
    encode_update,
)
from nncompare.job import ModelSpec
from nncompare.rounds import RoundPosition, ShardUpdate


def payload_of(buffers) -> np.ndarray:
    """The payload as the receiver sees it: the buffers' bytes back to back, as uint8."""
    return np.frombuffer(b"".join(np.ascontiguousarray(b).tobytes() for b in buffers), dtype=np.uint8).copy()


def test_an_update_travels_with_every_field_of_shard_update():
    update = ShardUpdate(
        shard=1,
        weights=np.arange(7, dtype=np.float32),
        n_samples=np.int64(898),
        loss=np.float64(0.25),
        compute_s=0.5,
        peak_rss_bytes=123,
        worker="host:42",
        epoch_end=False,
        compute_cpu_s=0.4,
        compute_runqueue_s=0.05,
        between_runqueue_s=0.01,
    )
    meta, buffers = encode_update(update, task_overhead_s=0.002)
    back, overhead = decode_update(meta, payload_of(buffers))
    assert overhead == 0.002 and np.array_equal(back.weights, update.weights)
    for f in dataclasses.fields(ShardUpdate):
        if f.name != "weights":
            assert getattr(back, f.name) == getattr(update, f.name), f.name


def test_an_update_with_unknown_fields_is_refused():
    meta, buffers = encode_update(ShardUpdate(0, np.zeros(2, np.float32), 1, 0.0, 0.0, 0, "w"))
    meta["update"]["shell"] = "rm -rf /"
    with pytest.raises(ProtocolError):
        decode_update(meta, payload_of(buffers))
    with pytest.raises(ProtocolError):
        decode_update({"op": "round"}, payload_of(buffers))


def test_a_round_carries_its_position_and_the_weights_or_none():
    position = RoundPosition.of(9, 6)
    meta, buffers = encode_round(position, np.linspace(0, 1, 5, dtype=np.float32))
    got, weights = decode_round(meta, payload_of(buffers))
    assert got == position and got.index == 2 and np.array_equal(weights, np.linspace(0, 1, 5, dtype=np.float32))
    meta, buffers = encode_round(RoundPosition.of(1, 1), None)
    assert decode_round(meta, payload_of(buffers)) == (RoundPosition.of(1, 1), None)


def test_a_placement_rebuilds_the_shard_and_the_model():
    rng = np.random.RandomState(0)
    p = Placement(
        shard=1,
        x=rng.rand(5, 3).astype(np.float32),
        y=np.array([0, 1, 2, 1, 0], dtype=np.int64),
        classes=np.arange(3),
        model=ModelSpec(hidden_layer_sizes=(8, 4), seed=3),
        cores=2,
        idle_timeout_s=60.0,
    )
    meta, buffers = encode_placement(p)
    back = decode_placement(meta, payload_of(buffers))
    assert np.array_equal(back.x, p.x) and back.x.dtype == p.x.dtype and np.array_equal(back.y, p.y)
    assert np.array_equal(back.classes, p.classes) and back.model == p.model
    assert (back.shard, back.cores, back.idle_timeout_s) == (1, 2, 60.0)


def test_a_hello_is_checked_field_by_field():
    hello = Hello(token="ab" * 32, generation=2, partition=1, tid=17)
    meta, _ = encode_hello(hello)
    assert decode_hello(meta) == hello and hello.key == (2, 17) > Hello("x", 1, 0, 99).key
    with pytest.raises(ProtocolError):
        decode_hello({**meta, "partition": "0"})
    with pytest.raises(ProtocolError):
        decode_hello({"op": "hello", "token": "x"})
