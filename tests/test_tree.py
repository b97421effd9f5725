"""The tree exchange on real sockets and real trainers: the root returns the driver's average bit for bit."""

from __future__ import annotations

import socket
import threading

import numpy as np
import pytest

from nncompare.averaging import average_weights
from nncompare.engines.spark.wire import encode_round, send_frame
from nncompare.engines.tree import TreeNode
from nncompare.job import ModelSpec
from nncompare.partition import make_shards
from nncompare.rounds import RoundPosition
from nncompare.trainer import ShardTrainer

MODEL = ModelSpec(hidden_layer_sizes=(16,), batch_size=64, learning_rate_init=0.01)
TOKEN = "t" * 32


def trainers(digits, count):
    shards = make_shards(digits.x_train, digits.y_train, count)
    return [ShardTrainer(s.index, s.x, s.y, digits.classes, MODEL) for s in shards]


def wired_tree(count, strangers=0):
    """``count`` nodes on loopback, wired as the engines wire them (each in its own thread)."""
    nodes = [TreeNode(i, TOKEN, "127.0.0.1", timeout_s=10) for i in range(count)]
    addresses = {i: n.address for i, n in enumerate(nodes)}
    for _ in range(strangers):  # knocks on shard 1's port before its parent does, with the wrong token
        with socket.create_connection(addresses[1]) as sock:
            send_frame(sock, {"op": "tree-hello", "token": "x" * 32, "parent": 0})
    threads = [threading.Thread(target=n.wire, args=(count, addresses)) for n in nodes]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    return nodes


def run_round(root, trainer, weights, position):
    """What the engines' roots do with the driver's round: encode it as a frame and exchange it."""
    meta, buffers = encode_round(position, weights)
    payload = buffers[0].view(np.uint8) if buffers else np.empty(0, dtype=np.uint8)
    return root.exchange(trainer, meta, payload)


@pytest.mark.parametrize("count", [1, 2, 5, 8])
def test_rounds_through_the_tree_give_the_local_average(digits, count):
    mine, reference = trainers(digits, count), trainers(digits, count)
    nodes = wired_tree(count, strangers=1 if count > 1 else 0)
    serving = [threading.Thread(target=n.serve, args=(t,), daemon=True) for n, t in zip(nodes[1:], mine[1:])]
    for t in serving:
        t.start()
    weights, expected = None, None
    try:
        for number in range(1, 4):
            position = RoundPosition.of(number, 1)
            partial = run_round(nodes[0], mine[0], weights, position)
            updates = [t.train_round(expected, position) for t in reference]
            expected = average_weights([u.weights for u in updates], [u.n_samples for u in updates])
            assert np.array_equal(partial.mean, expected), f"round {number}"
            assert [u.shard for u in sorted(partial.updates, key=lambda u: u.shard)] == list(range(count))
            assert partial.n == sum(u.n_samples for u in updates) and len(partial.notes) == count
            weights = partial.mean
        nodes[0].stop()
        for t in serving:
            t.join(10)
            assert not t.is_alive()
    finally:
        for n in nodes:
            n.close()


class Fails:
    """A trainer whose round raises: its node's parent must see the round fail, not wait."""

    def train_round(self, weights, position):
        raise RuntimeError("lost")


def test_a_node_that_fails_breaks_the_round_at_the_root(digits):
    mine = trainers(digits, 4)
    nodes = wired_tree(4)
    for node, trainer in zip(nodes[1:], [mine[1], Fails(), mine[3]]):
        threading.Thread(target=lambda n=node, t=trainer: _quietly(n.serve, t), daemon=True).start()
    try:
        with pytest.raises((OSError, ConnectionError)):
            run_round(nodes[0], mine[0], None, RoundPosition.of(1, 1))
    finally:
        for n in nodes:
            n.close()


def _quietly(serve, trainer):
    try:
        serve(trainer)
    except Exception:  # noqa: BLE001 - the failing node's thread ends with its error; the test reads the root's
        pass
