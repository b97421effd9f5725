"""The driver-side weight service: one TCP socket per long-lived task, weights as raw bytes.

Why a service of our own: Spark's barrier ``allGather`` costs about one second per call
whatever the payload (the JVM polls for the barrier once a second), which is five times a
Fashion-MNIST epoch. So the barrier stage is used only to start W tasks together and keep
them alive; every round's weights go over these sockets instead, like Horovod's driver
service: the driver listens on ``spark.driver.host`` only, every task proves it belongs to
this run with a random token, and anything else is dropped without touching training.

Wire format: a frame is ``!4sIQ`` (magic, metadata length, payload length), then the
metadata as UTF-8 JSON, then the payload as raw bytes (float32 weights, or a shard's
arrays back to back). Nothing is unpickled, so a peer can at worst send wrong numbers.

Conversation, per task::

    task -> driver   {"op": "hello", token, partition, tid}            (before anything else)
    driver -> task   {"op": "place", shard metadata} + x bytes + y bytes
    task -> driver   {"op": "ready", worker, place_s}
    driver -> task   {"op": "round", round, weights: bool} + float32 weights     (repeated)
    task -> driver   {"op": "update", n_samples, loss, compute_s, ...} + float32 weights
    driver -> task   {"op": "stop"}
"""

from __future__ import annotations

import hmac
import json
import logging
import os
import secrets
import socket
import struct
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field

import numpy as np

log = logging.getLogger(__name__)

MAGIC = b"NNC1"
HEADER = struct.Struct("!4sIQ")
#: Metadata a peer may send before it has shown the token: enough for a hello, not for a flood.
MAX_HELLO_META = 4096
MAX_META = 1 << 20


class ProtocolError(Exception):
    """A peer sent something that is not a frame of this protocol."""


class TaskLost(Exception):
    """A task's connection broke, timed out or misbehaved during a round."""

    def __init__(self, partition: int, reason: str):
        super().__init__(f"task for shard {partition}: {reason}")
        self.partition, self.reason = partition, reason


# --- frames -------------------------------------------------------------------------------


def _as_bytes(buffer) -> memoryview:
    if isinstance(buffer, np.ndarray):
        buffer = np.ascontiguousarray(buffer)
    return memoryview(buffer).cast("B")


def send_frame(sock: socket.socket, meta: dict, *buffers) -> int:
    """Send one frame; the payload is the ``buffers`` back to back, never concatenated in memory."""
    views = [_as_bytes(b) for b in buffers]
    meta_bytes = json.dumps(meta, separators=(",", ":")).encode()
    size = sum(v.nbytes for v in views)
    sock.sendall(HEADER.pack(MAGIC, len(meta_bytes), size) + meta_bytes)
    for view in views:
        if view.nbytes:
            sock.sendall(view)
    return HEADER.size + len(meta_bytes) + size


def _recv_into(sock: socket.socket, view: memoryview) -> None:
    got = 0
    while got < view.nbytes:
        n = sock.recv_into(view[got:])
        if n == 0:
            raise ConnectionError("connection closed by peer")
        got += n


def recv_frame(sock: socket.socket, max_meta: int = MAX_META, max_payload: int | None = None) -> tuple[dict, np.ndarray]:
    """Receive one frame: its metadata and its payload as a uint8 array (empty when none)."""
    header = bytearray(HEADER.size)
    _recv_into(sock, memoryview(header))
    magic, meta_len, size = HEADER.unpack(header)
    if magic != MAGIC:
        raise ProtocolError("bad magic")
    if meta_len > max_meta or (max_payload is not None and size > max_payload):
        raise ProtocolError(f"frame too large ({meta_len} + {size} bytes)")
    meta_bytes = bytearray(meta_len)
    _recv_into(sock, memoryview(meta_bytes))
    try:
        meta = json.loads(meta_bytes)
    except ValueError:
        raise ProtocolError("metadata is not JSON") from None
    if not isinstance(meta, dict):
        raise ProtocolError("metadata is not an object")
    payload = np.empty(size, dtype=np.uint8)
    if size:
        _recv_into(sock, memoryview(payload))
    return meta, payload


# --- driver side ----------------------------------------------------------------------------


@dataclass
class TaskConnection:
    """One task that showed the token and holds its shard."""

    sock: socket.socket
    partition: int
    tid: int
    worker: str = ""
    place_s: float = 0.0

    def close(self) -> None:
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()


@dataclass
class TaskReply:
    """A task's answer to one round, with the driver's own clock around it."""

    partition: int
    meta: dict
    weights: np.ndarray
    rtt_s: float
    done_at: float
    tid: int = 0


@dataclass
class ServiceStats:
    accepted: int = 0
    rejected: int = 0
    stale: int = 0
    rejections: list[str] = field(default_factory=list)


class WeightService:
    """A TCP server on the driver that places shards on tasks and runs rounds on them.

    ``placement(partition)`` returns the ``place`` frame (metadata, buffers) for a shard; it
    is called when a task connects, so a task started again by Spark after a failure gets
    its shard again without the driver doing anything. Tasks are told apart by Spark's
    task attempt id (``tid``), which grows from one stage attempt to the next: after a
    failure, :meth:`invalidate` drops every connection of the failed attempt and ignores
    any late one from it.
    """

    def __init__(self, host: str, n_tasks: int, placement: Callable[[int], tuple[dict, list]], *,
                 token: str | None = None, hello_timeout: float = 10.0, io_timeout: float = 600.0):
        self.host, self.n_tasks, self.placement = host, n_tasks, placement
        self.token = token or secrets.token_hex(32)
        self.hello_timeout, self.io_timeout = hello_timeout, io_timeout
        self.stats = ServiceStats()
        self._cond = threading.Condition()
        self._conns: dict[int, TaskConnection] = {}
        self._min_tid = 0
        self._closed = False
        self._abort_reason: str | None = None
        self._listener = socket.create_server((host, 0), backlog=max(16, 2 * n_tasks))
        self.port = self._listener.getsockname()[1]
        self._pool = ThreadPoolExecutor(max_workers=n_tasks, thread_name_prefix="nncompare-round")
        self._acceptor = threading.Thread(target=self._accept_loop, name="nncompare-accept", daemon=True)
        self._acceptor.start()

    @property
    def address(self) -> tuple[str, int]:
        return self.host, self.port

    # connection set-up, one thread per connecting peer so a slow or hostile one blocks nobody
    def _accept_loop(self) -> None:
        while True:
            try:
                sock, peer = self._listener.accept()
            except OSError:
                return  # listener closed
            threading.Thread(target=self._admit, args=(sock, peer), name="nncompare-admit", daemon=True).start()

    def _reject(self, sock: socket.socket, peer, why: str, stale: bool = False) -> None:
        with self._cond:
            if stale:
                self.stats.stale += 1
            else:
                self.stats.rejected += 1
                if len(self.stats.rejections) < 20:
                    self.stats.rejections.append(f"{peer[0]}:{peer[1]}: {why}")
        log.warning("weight service: dropped connection from %s:%s (%s)", peer[0], peer[1], why)
        sock.close()

    def _admit(self, sock: socket.socket, peer) -> None:
        try:
            sock.settimeout(self.hello_timeout)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            meta, _ = recv_frame(sock, max_meta=MAX_HELLO_META, max_payload=0)
            token = meta.get("token")
            if meta.get("op") != "hello" or not isinstance(token, str) or not hmac.compare_digest(token.encode(), self.token.encode()):
                return self._reject(sock, peer, "wrong token")
            partition, tid = int(meta["partition"]), int(meta["tid"])
            if not 0 <= partition < self.n_tasks:
                return self._reject(sock, peer, f"no shard {partition}")
        except (OSError, ProtocolError, ValueError, KeyError, TypeError) as exc:
            return self._reject(sock, peer, f"bad hello: {exc}")
        with self._cond:
            if tid < self._min_tid or self._closed:
                return self._reject(sock, peer, f"task {tid} belongs to a failed attempt", stale=True)
        conn = TaskConnection(sock, partition, tid)
        try:
            sock.settimeout(self.io_timeout)
            start = time.perf_counter()
            meta, buffers = self.placement(partition)
            send_frame(sock, meta, *buffers)
            ready, _ = recv_frame(sock, max_payload=0)
            if ready.get("op") != "ready":
                raise ProtocolError(f"expected ready, got {ready.get('op')!r}: {ready.get('error', '')}")
            conn.worker, conn.place_s = str(ready.get("worker", "")), time.perf_counter() - start
        except (OSError, ProtocolError) as exc:
            log.warning("weight service: placing shard %d failed: %s", partition, exc)
            conn.close()
            return
        with self._cond:
            old = self._conns.get(partition)
            if self._closed or tid < self._min_tid or (old is not None and old.tid > tid):
                conn.close()
                return
            self._conns[partition] = conn
            self.stats.accepted += 1
            self._cond.notify_all()
        if old is not None:
            old.close()

    def wait_ready(self, timeout: float, check: Callable[[], str | None] = lambda: None) -> list[TaskConnection]:
        """Block until every shard has a placed task of the current attempt; raise TimeoutError or RuntimeError.

        ``check`` is polled while waiting and returns a reason to give up (the stage died).
        """
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                live = [c for c in self._conns.values() if c.tid >= self._min_tid]
                if len(live) == self.n_tasks:
                    return sorted(live, key=lambda c: c.partition)
                if self._abort_reason:
                    raise RuntimeError(self._abort_reason)
                reason = check()
                if reason:
                    raise RuntimeError(reason)
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"{len(live)} of {self.n_tasks} tasks connected and placed in {timeout:.0f} s")
                self._cond.wait(min(left, 0.5))

    def invalidate(self, failed: list[TaskConnection]) -> None:
        """Forget a failed attempt: its connections close, its late comers are refused."""
        with self._cond:
            if failed:
                self._min_tid = max(self._min_tid, max(c.tid for c in failed) + 1)
            dropped = [c for c in self._conns.values() if c.tid < self._min_tid]
            for c in dropped:
                del self._conns[c.partition]
        for c in dropped:
            c.close()

    def abort(self, reason: str) -> None:
        """Wake every waiter with ``reason`` and break every connection (the stage is gone)."""
        with self._cond:
            self._abort_reason = reason
            conns = list(self._conns.values())
            self._cond.notify_all()
        for c in conns:
            c.close()

    # rounds
    def run_round(self, conns: list[TaskConnection], round_no: int, weights: np.ndarray | None) -> list[TaskReply]:
        """Send ``weights`` to every task and gather their updates; raise :class:`TaskLost` on the first failure.

        Each task gets its own thread (sockets release the GIL), so one task's send and
        receive overlap the others'. On a failure every connection of the round is closed,
        which wakes the other threads at once instead of at their timeout.
        """
        meta = {"op": "round", "round": round_no, "weights": weights is not None}
        payload = () if weights is None else (weights,)

        def exchange(conn: TaskConnection) -> TaskReply:
            start = time.perf_counter()
            try:
                send_frame(conn.sock, meta, *payload)
                reply, data = recv_frame(conn.sock)
            except (OSError, ProtocolError) as exc:
                raise TaskLost(conn.partition, f"{type(exc).__name__}: {exc}") from None
            if reply.get("op") != "update":
                raise TaskLost(conn.partition, str(reply.get("error") or f"unexpected {reply.get('op')!r}"))
            done = time.perf_counter()
            return TaskReply(conn.partition, reply, data.view(np.float32), done - start, done, conn.tid)

        futures = [self._pool.submit(exchange, c) for c in conns]
        replies, first_error = [], None
        for future in futures:
            try:
                replies.append(future.result())
            except TaskLost as exc:
                if first_error is None:
                    first_error = exc
                    for c in conns:
                        c.close()
        if first_error is not None:
            raise first_error
        return replies

    def stop_tasks(self, timeout: float = 10.0) -> None:
        """Tell every connected task that training is over, so the barrier stage ends normally."""
        with self._cond:
            conns = list(self._conns.values())
        for c in conns:
            try:
                c.sock.settimeout(timeout)
                send_frame(c.sock, {"op": "stop"})
            except OSError:
                pass

    def close(self) -> None:
        with self._cond:
            self._closed = True
            conns = list(self._conns.values())
            self._conns.clear()
            self._cond.notify_all()
        try:
            # shutdown() wakes the accept thread; close() alone leaves it blocked in accept()
            self._listener.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        try:
            self._listener.close()
        except OSError:
            pass
        for c in conns:
            c.close()
        self._pool.shutdown(wait=False, cancel_futures=True)


def placement_frame(shard, classes: np.ndarray, model_spec, cores: int, rounds_per_epoch: int,
                    round_in_epoch: int = 0, fail_round: int | None = None, idle_timeout: float = 900.0) -> tuple[dict, list]:
    """The ``place`` frame for one shard: its arrays as raw bytes plus what the trainer needs."""
    x, y = np.ascontiguousarray(shard.x), np.ascontiguousarray(shard.y)
    model = asdict(model_spec)
    model["hidden_layer_sizes"] = list(model_spec.hidden_layer_sizes)
    meta = {
        "op": "place", "shard": int(shard.index),
        "x_shape": list(x.shape), "x_dtype": x.dtype.str, "y_shape": list(y.shape), "y_dtype": y.dtype.str,
        "classes": np.asarray(classes).tolist(), "classes_dtype": np.asarray(classes).dtype.str,
        "model": model, "cores": int(cores), "rounds_per_epoch": int(rounds_per_epoch),
        "round_in_epoch": int(round_in_epoch), "fail_round": fail_round, "idle_timeout": float(idle_timeout),
    }
    return meta, [x, y]


# --- task side ------------------------------------------------------------------------------


def serve_shard(address: tuple[str, int], token: str, partition: int, tid: int, connect_timeout: float = 60.0) -> dict:
    """The task's whole life: connect, receive the shard once, train round after round, return a summary.

    Runs inside a Spark barrier task (or anywhere a process can reach the driver). Returns
    when the driver says stop or closes the connection; raises on anything else, so the
    scheduler sees the task fail and can retry the stage.
    """
    from nncompare.job import ModelSpec
    from nncompare.trainer import ShardTrainer

    sock = socket.create_connection(address, timeout=connect_timeout)
    rounds, start = 0, time.perf_counter()
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        send_frame(sock, {"op": "hello", "token": token, "partition": partition, "tid": tid})
        meta, data = recv_frame(sock)
        if meta.get("op") != "place":
            raise ProtocolError(f"expected place, got {meta.get('op')!r}")
        t = time.perf_counter()
        x_dtype, y_dtype = np.dtype(meta["x_dtype"]), np.dtype(meta["y_dtype"])
        x_bytes = int(np.prod(meta["x_shape"])) * x_dtype.itemsize
        x = data[:x_bytes].view(x_dtype).reshape(meta["x_shape"])
        y = data[x_bytes:].view(y_dtype).reshape(meta["y_shape"])
        classes = np.asarray(meta["classes"], dtype=np.dtype(meta["classes_dtype"]))
        trainer = ShardTrainer(meta["shard"], x, y, classes, ModelSpec(**meta["model"]), cores=meta["cores"],
                               rounds_per_epoch=meta["rounds_per_epoch"])
        if meta["round_in_epoch"]:
            trainer.resume_at(meta["round_in_epoch"])
        fail_round = meta.get("fail_round")
        sock.settimeout(meta["idle_timeout"])
        send_frame(sock, {"op": "ready", "worker": trainer.worker, "place_s": time.perf_counter() - t})
        while True:
            try:
                msg, data = recv_frame(sock)
            except ConnectionError:
                break  # the driver went away or dropped this attempt: nothing left to do
            if msg.get("op") == "stop":
                break
            if msg.get("op") != "round":
                raise ProtocolError(f"unexpected {msg.get('op')!r}")
            t_recv = time.perf_counter()
            if fail_round is not None and msg["round"] == fail_round:
                raise RuntimeError(f"injected failure in round {fail_round} of shard {partition} (NNCOMPARE_SPARK_FAIL_ROUND)")
            weights = data.view(np.float32) if msg["weights"] else None
            update = trainer.train_round(weights)
            rounds += 1
            reply = {"op": "update", "shard": update.shard, "n_samples": int(update.n_samples), "loss": float(update.loss),
                     "compute_s": update.compute_s, "peak_rss_bytes": int(update.peak_rss_bytes), "worker": update.worker,
                     "epoch_end": bool(update.epoch_end),
                     "task_overhead_s": time.perf_counter() - t_recv - update.compute_s}
            send_frame(sock, reply, update.weights)
    finally:
        sock.close()
    return {"partition": partition, "tid": tid, "rounds": rounds, "pid": os.getpid(),
            "alive_s": time.perf_counter() - start}
