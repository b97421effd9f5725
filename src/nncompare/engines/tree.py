"""A round through a tree of workers: the weights go down it and the average comes up, merged on the way.

With the driver as the hub, every round moves W weight buffers out of the driver and W back
in, and the driver merges W updates: its bytes, messages and merges grow with W. Here each
worker is a node of :mod:`nncompare.averaging`'s binomial tree, connected to its parent and
its children by token-checked TCP sockets (frames of :mod:`nncompare.engines.spark.wire`). The
driver sends the round to the root (shard 0) only; a node forwards it to its children, trains
its own shard, then merges its children's partial averages, in the tree's order, into its own
and sends the result to its parent. The driver receives one buffer: the average, bit for bit
the one it would have merged itself. Each node sends and receives at most ``log2 W`` buffers a
round, the driver one each way, and the round's critical path is ``log2 W`` hops deep.

A node that fails or whose peer goes away raises: its parent's receive then fails, and so on
up to the root, so the engine sees a lost round exactly as it would from a lost worker.
"""

from __future__ import annotations

import hmac
import socket
import time
from dataclasses import dataclass, field

import numpy as np

from nncompare.averaging import children, merge
from nncompare.engines.spark.wire import (
    MAX_HELLO_META,
    STOP,
    ProtocolError,
    decode_round,
    expect,
    recv_frame,
    send_frame,
    shard_update,
    update_fields,
)


@dataclass
class Partial:
    """A subtree's average and what its shards measured: the updates (without weights), in shard order."""

    mean: np.ndarray
    n: int
    updates: list = field(default_factory=list)
    #: per shard, what its node measured: ``task_overhead_s`` (its seconds from receiving the round to
    #: having trained it, outside ``partial_fit``) and whatever the trainer adds (``last_notes``)
    notes: list[dict] = field(default_factory=list)
    #: seconds of merging on the subtree's critical path: this node's merges + its slowest child's
    average_s: float = 0.0

    def in_shard_order(self) -> tuple[list, list[dict]]:
        """The updates and their notes, sorted by shard (the tree lists them depth first)."""
        order = sorted(range(len(self.updates)), key=lambda i: self.updates[i].shard)
        return [self.updates[i] for i in order], [self.notes[i] for i in order]


def encode_partial(p: Partial) -> tuple[dict, list]:
    meta = {
        "op": "partial",
        "n": int(p.n),
        "updates": [update_fields(u) for u in p.updates],
        "notes": p.notes,
        "average_s": float(p.average_s),
    }
    return meta, [np.asarray(p.mean, dtype=np.float32)]


def decode_partial(meta: dict, payload: np.ndarray) -> Partial:
    expect(meta, "partial")
    try:
        updates = [shard_update(values, None) for values in meta["updates"]]
        return Partial(
            payload.view(np.float32),
            int(meta["n"]),
            updates,
            [dict(n) for n in meta["notes"]],
            float(meta["average_s"]),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ProtocolError(f"bad partial: {exc}") from None


class TreeNode:
    """One worker's place in the tree: a listener for its parent, sockets to its children."""

    def __init__(self, shard: int, token: str, host: str, timeout_s: float):
        self.shard, self.token, self.timeout_s = shard, token, timeout_s
        self.children: list[int] = []
        self._listener = socket.create_server((host, 0), backlog=8)
        self.address = (host, self._listener.getsockname()[1])
        self.parent: socket.socket | None = None
        self._child_socks: list[socket.socket] = []

    def wire(self, count: int, addresses: dict[int, tuple[str, int]]) -> None:
        """Connect to the children in a tree of ``count`` shards (``addresses``: their nodes' listeners), then,
        below the root, accept the parent."""
        self.children = children(self.shard, count)
        for child in self.children:
            sock = socket.create_connection(tuple(addresses[child]), timeout=self.timeout_s)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            send_frame(sock, {"op": "tree-hello", "token": self.token, "parent": self.shard})
            self._child_socks.append(sock)
        if self.shard != 0:
            self.parent = self._accept_parent()

    def _accept_parent(self) -> socket.socket:
        """The first connection that shows the token: a stranger's is closed and the wait goes on."""
        deadline = time.monotonic() + self.timeout_s
        while True:
            self._listener.settimeout(max(0.01, deadline - time.monotonic()))
            sock, _ = self._listener.accept()  # TimeoutError when no parent came in time
            try:
                sock.settimeout(self.timeout_s)
                meta, _ = recv_frame(sock, max_meta=MAX_HELLO_META, max_payload=0)
                token = meta.get("token")
                if meta.get("op") == "tree-hello" and isinstance(token, str):
                    if hmac.compare_digest(token.encode(), self.token.encode()):
                        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                        return sock
            except (OSError, ProtocolError):
                pass
            sock.close()

    def exchange(self, trainer, meta: dict, payload: np.ndarray) -> Partial:
        """The round ``meta``/``payload`` (a round frame) for this subtree: forward, train, merge children."""
        try:
            return self._exchange(trainer, meta, payload)
        except BaseException:
            self.close()  # the children's receives and the parent's fail at once: the tree breaks as a whole
            raise

    def _exchange(self, trainer, meta: dict, payload: np.ndarray) -> Partial:
        received = time.perf_counter()
        position, weights = decode_round(meta, payload)
        for sock in reversed(self._child_socks):  # the children start before this node trains, the deepest first
            send_frame(sock, meta, payload)
        update = trainer.train_round(weights, position)
        mean, n = update.weights, update.n_samples  # a fresh copy: merged into in place
        update.weights = None
        notes = {"task_overhead_s": time.perf_counter() - received - update.compute_s}
        notes.update(getattr(trainer, "last_notes", None) or {})
        updates, all_notes, merging, slowest = [update], [notes], 0.0, 0.0
        for sock in self._child_socks:
            child = decode_partial(*recv_frame(sock))
            started = time.perf_counter()
            n = merge(mean, n, child.mean, child.n)
            merging += time.perf_counter() - started
            slowest = max(slowest, child.average_s)
            updates += child.updates
            all_notes += child.notes
        return Partial(mean, n, updates, all_notes, merging + slowest)

    def serve(self, trainer) -> int:
        """Below the root: answer the parent's rounds until it says stop; the rounds served."""
        rounds = 0
        while True:
            meta, payload = recv_frame(self.parent)
            if meta.get("op") == "stop":
                self.stop()
                return rounds
            partial = self.exchange(trainer, expect(meta, "round"), payload)
            meta, buffers = encode_partial(partial)
            send_frame(self.parent, meta, *buffers)
            rounds += 1

    def stop(self) -> None:
        """Pass ``stop`` down the tree (the children end their loops)."""
        for sock in self._child_socks:
            try:
                send_frame(sock, STOP)
            except OSError:
                pass

    def set_timeout(self, seconds: float) -> None:
        for sock in [self.parent, *self._child_socks]:
            if sock is not None:
                sock.settimeout(seconds)

    def close(self) -> None:
        for sock in [self._listener, self.parent, *self._child_socks]:
            if sock is not None:
                try:
                    sock.close()
                except OSError:
                    pass
