"""The task side: what each long-lived barrier task runs for the whole training.

A task connects to the driver's weight service, receives its shard once, builds its
:class:`~nncompare.trainer.ShardTrainer` (with the run's ``before_round`` hook, which
reached this process inside the task closure, cloudpickled by Spark) and trains one round
per ``round`` frame until the driver says ``stop``.

A task whose connection the driver closes without ``stop`` *fails*: the driver has dropped
its stage attempt. Returning normally instead would let Spark record a late success of
the failed attempt as that partition's output, and retry the barrier stage with the
other partitions only (see docs/spark.md, "Faults").
"""

from __future__ import annotations

import os
import socket
import time

from nncompare.engines.spark.wire import (
    Hello,
    decode_placement,
    decode_round,
    encode_hello,
    encode_update,
    expect,
    recv_frame,
    send_frame,
)
from nncompare.engines.tree import TreeNode, encode_partial


class DroppedByDriver(ConnectionError):
    """The driver closed this task's connection without ``stop``: its stage attempt was dropped."""


def serve_shard(address: tuple[str, int], hello: Hello, connect_timeout: float = 60.0, before_round=None) -> dict:
    """The task's whole life: connect, receive the shard once, train round after round, return a summary.

    Returns when the driver says stop; raises on anything else (a dropped connection
    included), so the scheduler sees the task fail and retries the whole barrier stage.
    """
    from nncompare.trainer import ShardTrainer

    sock = socket.create_connection(address, timeout=connect_timeout)
    rounds, start = 0, time.perf_counter()
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        meta, buffers = encode_hello(hello)
        send_frame(sock, meta, *buffers)
        t = time.perf_counter()
        place = decode_placement(*recv_frame(sock))
        trainer = ShardTrainer(
            place.shard,
            place.x,
            place.y,
            place.classes,
            place.model,
            cores=place.cores,
            before_round=before_round,
        )
        sock.settimeout(place.idle_timeout_s)
        node = None
        if place.exchange == "tree":
            # peers reach this task on the address it reaches the driver from
            node = TreeNode(place.shard, hello.token, sock.getsockname()[0], connect_timeout)
        ready = {"op": "ready", "worker": trainer.worker, "place_s": time.perf_counter() - t}
        send_frame(sock, {**ready, "tree": list(node.address)} if node else ready)
        try:
            if node is not None:
                rounds = _serve_tree(sock, node, trainer, hello, place.idle_timeout_s)
            else:
                rounds = _serve_star(sock, trainer, hello)
        finally:
            if node is not None:
                node.close()
    finally:
        sock.close()
    return {
        "partition": hello.partition,
        "tid": hello.tid,
        "rounds": rounds,
        "pid": os.getpid(),
        "alive_s": time.perf_counter() - start,
    }


def _receive(sock, hello: Hello, rounds: int):
    """The driver's next frame; a closed connection means the driver dropped this task's attempt."""
    try:
        return recv_frame(sock)
    except ConnectionError:
        raise DroppedByDriver(
            f"the driver dropped the task for shard {hello.partition} (Spark task {hello.tid}) after {rounds} rounds"
        ) from None


def _serve_star(sock, trainer, hello: Hello) -> int:
    """Every round from the driver, every update back to it, until ``stop``; the rounds trained."""
    rounds = 0
    while True:
        meta, data = _receive(sock, hello, rounds)
        if meta.get("op") == "stop":
            return rounds
        t_recv = time.perf_counter()
        position, weights = decode_round(expect(meta, "round"), data)
        update = trainer.train_round(weights, position)
        rounds += 1
        meta, buffers = encode_update(update, time.perf_counter() - t_recv - update.compute_s)
        send_frame(sock, meta, *buffers)


def _serve_tree(sock, node: TreeNode, trainer, hello: Hello, idle_timeout_s: float) -> int:
    """Wire the tree the driver describes, then serve rounds: the root for the driver, the others for their parent."""
    wiring = expect(_receive(sock, hello, 0)[0], "tree")
    node.wire(int(wiring["count"]), {int(k): tuple(v) for k, v in wiring["addresses"].items()})
    node.set_timeout(idle_timeout_s)
    send_frame(sock, {"op": "wired"})
    if node.shard != 0:
        return node.serve(trainer)
    rounds = 0
    while True:
        meta, data = _receive(sock, hello, rounds)
        if meta.get("op") == "stop":
            node.stop()
            return rounds
        meta, buffers = encode_partial(node.exchange(trainer, expect(meta, "round"), data))
        send_frame(sock, meta, *buffers)
        rounds += 1


def barrier_task(address: tuple[str, int], token: str, generation: int, connect_timeout: float, before_round, _rows):
    """The function of the barrier stage's ``mapPartitions``: :func:`serve_shard` for this task's partition."""
    from pyspark import BarrierTaskContext

    ctx = BarrierTaskContext.get()
    hello = Hello(token, generation, ctx.partitionId(), ctx.taskAttemptId())
    yield serve_shard(address, hello, connect_timeout, before_round)
