"""The weight service's wire format: frames, and each message's encoding right beside its decoding.

A frame is ``!4sIQ`` (magic, metadata length, payload length), the metadata as UTF-8 JSON,
then the payload as raw bytes (float32 weights, or a shard's arrays back to back). Nothing
is unpickled, so a peer can at worst send wrong numbers. Messages that carry a dataclass
(:class:`~nncompare.trainer.ShardUpdate`, :class:`~nncompare.trainer.RoundPosition`,
:class:`Placement`) are encoded from and decoded into its fields, so a field added to the
dataclass travels without touching the protocol.

Conversation, per task::

    task -> driver   hello   {token, generation, partition, tid}
    driver -> task   place   Placement fields + x bytes + y bytes
    task -> driver   ready   {worker, place_s}
    driver -> task   round   {position, weights?} + float32 weights      (repeated)
    task -> driver   update  {update: ShardUpdate fields, task_overhead_s} + float32 weights
    driver -> task   stop

With the tree exchange (:mod:`nncompare.engines.tree`), ``ready`` also carries the task's tree
address; the driver then sends every task ``tree`` {count, addresses: {shard: address}} and
waits for ``wired``; rounds go to the root only. Each node forwards a round to its children
(connected with a ``tree-hello`` {token}) and answers ``partial`` {n, updates, notes,
average_s} + its subtree's float32 average.
"""

from __future__ import annotations

import json
import socket
import struct
from dataclasses import asdict, dataclass, fields

import numpy as np

from nncompare.job import ModelSpec
from nncompare.rounds import RoundPosition, ShardUpdate
from nncompare.sockets import recv_into

MAGIC = b"NNC2"
HEADER = struct.Struct("!4sIQ")
#: Metadata a peer may send before it has shown the token: enough for a hello, not for a flood.
MAX_HELLO_META = 4096
MAX_META = 1 << 20


class ProtocolError(Exception):
    """A peer sent something that is not a frame (or not the message) of this protocol."""


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


def recv_frame(
    sock: socket.socket, max_meta: int = MAX_META, max_payload: int | None = None
) -> tuple[dict, np.ndarray]:
    """Receive one frame: its metadata and its payload as a uint8 array (empty when none)."""
    header = bytearray(HEADER.size)
    recv_into(sock, memoryview(header))
    magic, meta_len, size = HEADER.unpack(header)
    if magic != MAGIC:
        raise ProtocolError("bad magic")
    if meta_len > max_meta or (max_payload is not None and size > max_payload):
        raise ProtocolError(f"frame too large ({meta_len} + {size} bytes)")
    meta_bytes = bytearray(meta_len)
    recv_into(sock, memoryview(meta_bytes))
    try:
        meta = json.loads(meta_bytes)
    except ValueError:
        raise ProtocolError("metadata is not JSON") from None
    if not isinstance(meta, dict):
        raise ProtocolError("metadata is not an object")
    payload = np.empty(size, dtype=np.uint8)
    if size:
        recv_into(sock, memoryview(payload))
    return meta, payload


def expect(meta: dict, op: str) -> dict:
    """``meta`` if it is the ``op`` message; a task's error report or anything else is a ProtocolError."""
    if meta.get("op") != op:
        raise ProtocolError(
            f"expected {op}, got {meta.get('op')!r}{': ' + str(meta['error']) if meta.get('error') else ''}"
        )
    return meta


def _plain(value):
    """JSON-ready: numpy scalars become Python numbers."""
    return value.item() if isinstance(value, np.generic) else value


def _fields_of(cls, values: dict, what: str) -> dict:
    names = {f.name for f in fields(cls)}
    if not isinstance(values, dict) or not names >= set(values):
        raise ProtocolError(f"{what} has unknown fields")
    return values


# --- round: driver -> task ----------------------------------------------------------------


def encode_round(position: RoundPosition, weights: np.ndarray | None) -> tuple[dict, list]:
    meta = {"op": "round", "position": asdict(position), "weights": weights is not None}
    return meta, ([] if weights is None else [np.asarray(weights, dtype=np.float32)])


def decode_round(meta: dict, payload: np.ndarray) -> tuple[RoundPosition, np.ndarray | None]:
    expect(meta, "round")
    position = RoundPosition(**_fields_of(RoundPosition, meta.get("position"), "round position"))
    return position, (payload.view(np.float32) if meta.get("weights") else None)


# --- update: task -> driver ---------------------------------------------------------------

_UPDATE_FIELDS = tuple(f.name for f in fields(ShardUpdate) if f.name != "weights")


def update_fields(update: ShardUpdate) -> dict:
    """Every field of the update but its weights, JSON-ready."""
    return {name: _plain(getattr(update, name)) for name in _UPDATE_FIELDS}


def shard_update(values, weights: np.ndarray | None) -> ShardUpdate:
    """The update whose other fields :func:`update_fields` encoded."""
    values = _fields_of(ShardUpdate, values, "update")
    try:
        return ShardUpdate(weights=weights, **values)
    except (TypeError, ValueError) as exc:
        raise ProtocolError(f"bad update: {exc}") from None


def encode_update(update: ShardUpdate, task_overhead_s: float = 0.0) -> tuple[dict, list]:
    meta = {"op": "update", "update": update_fields(update), "task_overhead_s": float(task_overhead_s)}
    return meta, [np.asarray(update.weights, dtype=np.float32)]


def decode_update(meta: dict, payload: np.ndarray) -> tuple[ShardUpdate, float]:
    """The update, and the task's own seconds outside ``partial_fit`` between receiving and replying."""
    expect(meta, "update")
    return shard_update(meta.get("update"), payload.view(np.float32)), float(meta.get("task_overhead_s", 0.0))


# --- place: driver -> task ----------------------------------------------------------------


@dataclass
class Placement:
    """Everything a task needs to build its ShardTrainer: the shard's arrays and the job's model."""

    shard: int
    x: np.ndarray
    y: np.ndarray
    classes: np.ndarray
    model: ModelSpec
    cores: int
    #: how long a task waits for the driver's next message before it gives up
    idle_timeout_s: float
    #: how rounds travel: ``driver`` (the driver and every task) or ``tree`` (:mod:`nncompare.engines.tree`)
    exchange: str = "driver"


def encode_placement(p: Placement) -> tuple[dict, list]:
    x, y = np.ascontiguousarray(p.x), np.ascontiguousarray(p.y)
    classes = np.asarray(p.classes)
    model = asdict(p.model)
    model["hidden_layer_sizes"] = list(p.model.hidden_layer_sizes)
    meta = {
        "op": "place",
        "shard": int(p.shard),
        "model": model,
        "cores": int(p.cores),
        "idle_timeout_s": float(p.idle_timeout_s),
        "exchange": p.exchange,
        "x": {"shape": list(x.shape), "dtype": x.dtype.str},
        "y": {"shape": list(y.shape), "dtype": y.dtype.str},
        "classes": {"values": classes.tolist(), "dtype": classes.dtype.str},
    }
    return meta, [x, y]


def decode_placement(meta: dict, payload: np.ndarray) -> Placement:
    expect(meta, "place")
    try:
        x_dtype, y_dtype = np.dtype(meta["x"]["dtype"]), np.dtype(meta["y"]["dtype"])
        x_bytes = int(np.prod(meta["x"]["shape"])) * x_dtype.itemsize
        x = payload[:x_bytes].view(x_dtype).reshape(meta["x"]["shape"])
        y = payload[x_bytes:].view(y_dtype).reshape(meta["y"]["shape"])
        classes = np.asarray(meta["classes"]["values"], dtype=np.dtype(meta["classes"]["dtype"]))
        return Placement(
            int(meta["shard"]),
            x,
            y,
            classes,
            ModelSpec(**meta["model"]),
            int(meta["cores"]),
            float(meta["idle_timeout_s"]),
            str(meta.get("exchange", "driver")),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ProtocolError(f"bad placement: {exc}") from None


# --- hello, ready, stop -------------------------------------------------------------------


@dataclass(frozen=True)
class Hello:
    """Who a connecting task says it is: the run's token, which barrier job, which shard, which Spark task."""

    token: str
    generation: int
    partition: int
    tid: int

    @property
    def key(self) -> tuple[int, int]:
        """Newer tasks have larger keys: a later barrier job, or a later task of the same job."""
        return self.generation, self.tid


def encode_hello(hello: Hello) -> tuple[dict, list]:
    return {"op": "hello", **asdict(hello)}, []


def decode_hello(meta: dict) -> Hello:
    expect(meta, "hello")
    values = {k: v for k, v in meta.items() if k != "op"}
    try:
        hello = Hello(**_fields_of(Hello, values, "hello"))
    except TypeError as exc:
        raise ProtocolError(f"bad hello: {exc}") from None
    if not isinstance(hello.token, str) or not all(
        isinstance(v, int) for v in (hello.generation, hello.partition, hello.tid)
    ):
        raise ProtocolError("bad hello: wrong types")
    return hello


STOP = {"op": "stop"}
