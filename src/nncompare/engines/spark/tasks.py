"""The driver's view of the long-lived tasks: one connection each, its replies, and how the service fared.

The service (:mod:`nncompare.engines.spark.service`) makes them; the engine reads them (a lost
task, the placement seconds, the counts in its record).
"""

from __future__ import annotations

import socket
from dataclasses import dataclass, field

from nncompare.engines.spark.wire import Hello
from nncompare.trainer import ShardUpdate


class TaskLost(Exception):
    """A task's connection broke, timed out or misbehaved during a round."""

    def __init__(self, partition: int, reason: str):
        super().__init__(f"task for shard {partition}: {reason}")
        self.partition, self.reason = partition, reason


@dataclass
class TaskConnection:
    """One task that showed the token and holds its shard."""

    sock: socket.socket
    hello: Hello
    worker: str = ""
    place_s: float = 0.0
    #: where the task's tree node listens (the tree exchange), as its ``ready`` said
    tree: tuple[str, int] | None = None

    @property
    def partition(self) -> int:
        return self.hello.partition

    def close(self) -> None:
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()


@dataclass
class TaskReply:
    """A task's answer to one round, with the driver's own clock around it."""

    update: ShardUpdate
    task_overhead_s: float
    rtt_s: float


@dataclass
class ServiceStats:
    accepted: int = 0
    rejected: int = 0
    stale: int = 0
    rejections: list[str] = field(default_factory=list)
