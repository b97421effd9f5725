"""The driver's weight service: one token-checked TCP socket per long-lived task, weights as raw bytes.

Why a service of our own: Spark's barrier ``allGather`` costs about one second per call
whatever the payload (the JVM polls for the barrier once a second), which is five times a
Fashion-MNIST epoch. So the barrier stage only starts W tasks together and keeps them
alive; every round's weights go over these sockets instead, like Horovod's driver service.
The service listens on ``spark.driver.host`` only, every task proves it belongs to this run
with a random token, and anything else is dropped without touching training.

The service knows nothing of Spark or of the engine: it is given the placement frames as
data (possibly after the tasks have connected: a task that says hello before its shard is
known waits for it, so the engine can start the barrier stage while Spark starts and only
move data at placement), and the engine tells it which tasks are current (:meth:`WeightService.admit_generation`,
:meth:`WeightService.drop`).
"""

from __future__ import annotations

import hmac
import logging
import secrets
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from nncompare.engines.spark.tasks import ServiceStats, TaskConnection, TaskLost, TaskReply
from nncompare.engines.spark.wire import (
    MAX_HELLO_META,
    STOP,
    Hello,
    ProtocolError,
    decode_hello,
    decode_update,
    expect,
    recv_frame,
    send_frame,
)
from nncompare.engines.tree import Partial, decode_partial

log = logging.getLogger(__name__)
#: How many rejection reasons the service keeps for ``describe()``.
KEEP_REJECTIONS = 20


class WeightService:
    """A TCP server on the driver that places shards on tasks and runs rounds on them.

    A task that connects gets its shard's placement frame at once (or as soon as
    :meth:`set_placements` gives it), so a task started again by Spark after a failure is
    placed without the driver doing anything. ``placements`` maps every shard to its frame,
    or to None while the frames are not known yet. Tasks are ordered
    by :attr:`Hello.key` (barrier job, then Spark task id, which grows from one stage
    attempt to the next): :meth:`drop` forgets a failed attempt and refuses its late comers.
    """

    def __init__(
        self,
        host: str,
        placements: dict[int, tuple[dict, list] | None],
        *,
        token: str | None = None,
        hello_timeout: float = 10.0,
        io_timeout: float = 600.0,
    ):
        self.host, self.placements = host, dict(placements)
        self.n_tasks = len(self.placements)
        self.token = token or secrets.token_hex(32)
        self.hello_timeout, self.io_timeout = hello_timeout, io_timeout
        self.stats = ServiceStats()
        self._cond = threading.Condition()
        self._conns: dict[int, TaskConnection] = {}
        self._hellos: dict[int, Hello] = {}
        self._min_key = (0, 0)
        self._closed = False
        self._listener = socket.create_server((host, 0), backlog=max(16, 2 * self.n_tasks))
        self.port = self._listener.getsockname()[1]
        self._pool = ThreadPoolExecutor(max_workers=self.n_tasks, thread_name_prefix="nncompare-round")
        self._acceptor = threading.Thread(target=self._accept_loop, name="nncompare-accept", daemon=True)
        self._acceptor.start()

    @property
    def address(self) -> tuple[str, int]:
        return self.host, self.port

    # --- admission: one thread per connecting peer, so a slow or hostile one blocks nobody ---
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
                if len(self.stats.rejections) < KEEP_REJECTIONS:
                    self.stats.rejections.append(f"{peer[0]}:{peer[1]}: {why}")
            first = self.stats.rejected + self.stats.stale == 1
        # the first drop is shown; a flood of them (a port scanner, a misconfigured job) only counts
        # (connections_rejected, stale_connections and the first reasons are in the record)
        log.log(
            logging.WARNING if first else logging.DEBUG,
            "weight service: dropped connection from %s:%s (%s)%s",
            peer[0],
            peer[1],
            why,
            "; further drops are counted in the record, not shown" if first else "",
        )
        sock.close()

    def _current(self, hello: Hello) -> bool:
        return not self._closed and hello.key >= self._min_key

    def _admit(self, sock: socket.socket, peer) -> None:
        try:
            sock.settimeout(self.hello_timeout)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            meta, _ = recv_frame(sock, max_meta=MAX_HELLO_META, max_payload=0)
            token = meta.get("token")
            if not isinstance(token, str) or not hmac.compare_digest(token.encode(), self.token.encode()):
                return self._reject(sock, peer, "wrong token")
            hello = decode_hello(meta)
            if hello.partition not in self.placements:
                return self._reject(sock, peer, f"no shard {hello.partition}")
        except (OSError, ProtocolError) as exc:
            return self._reject(sock, peer, f"bad hello: {exc}")
        with self._cond:
            if not self._current(hello):
                return self._reject(sock, peer, f"task {hello.tid} belongs to a dropped attempt", stale=True)
        conn = TaskConnection(sock, hello)
        with self._cond:
            old_hello = self._hellos.get(hello.partition)
            if old_hello is None or old_hello.key < hello.key:
                self._hellos[hello.partition] = hello
            self._cond.notify_all()
            while self.placements[hello.partition] is None and self._current(hello):
                self._cond.wait()
            if not self._current(hello):
                conn.close()
                return
        try:
            sock.settimeout(self.io_timeout)
            start = time.perf_counter()
            meta, buffers = self.placements[hello.partition]
            send_frame(sock, meta, *buffers)
            ready = expect(recv_frame(sock, max_payload=0)[0], "ready")
            conn.worker, conn.place_s = str(ready.get("worker", "")), time.perf_counter() - start
            if isinstance(ready.get("tree"), list) and len(ready["tree"]) == 2:
                conn.tree = (str(ready["tree"][0]), int(ready["tree"][1]))
        except (OSError, ProtocolError) as exc:
            log.warning("weight service: placing shard %d failed: %s", hello.partition, exc)
            conn.close()
            return
        with self._cond:
            old = self._conns.get(hello.partition)
            if not self._current(hello) or (old is not None and old.hello.key > hello.key):
                conn.close()
                return
            self._conns[hello.partition] = conn
            self.stats.accepted += 1
            self._cond.notify_all()
        if old is not None:
            old.close()

    def wait_ready(self, timeout: float) -> list[TaskConnection]:
        """Every shard's current task, sorted by shard, once all are placed; TimeoutError if not within ``timeout``."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                live = [c for c in self._conns.values() if c.hello.key >= self._min_key]
                if len(live) == self.n_tasks:
                    return sorted(live, key=lambda c: c.partition)
                left = deadline - time.monotonic()
                if left <= 0 or self._closed:
                    raise TimeoutError(f"{len(live)} of {self.n_tasks} tasks connected and placed")
                self._cond.wait(left)

    def set_placements(self, placements: dict[int, tuple[dict, list]]) -> None:
        """The shards' frames: the tasks already waiting for theirs get them now."""
        with self._cond:
            self.placements.update(placements)
            self._cond.notify_all()

    def wait_hello(self, timeout: float) -> None:
        """Return once every shard has a current task connected (placed or waiting for its shard)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                said = sum(h.key >= self._min_key for h in self._hellos.values())
                if said == self.n_tasks:
                    return
                left = deadline - time.monotonic()
                if left <= 0 or self._closed:
                    raise TimeoutError(f"{said} of {self.n_tasks} tasks connected")
                self._cond.wait(left)

    def connected(self) -> int:
        """How many shards have a current task now."""
        with self._cond:
            return sum(c.hello.key >= self._min_key for c in self._conns.values())

    def _forget_below(self, key: tuple[int, int]) -> None:
        with self._cond:
            self._min_key = max(self._min_key, key)
            self._cond.notify_all()  # tasks of a dropped attempt that wait for their shard give up
            dropped = [c for c in self._conns.values() if c.hello.key < self._min_key]
            for c in dropped:
                del self._conns[c.partition]
        for c in dropped:
            c.close()

    def drop(self, failed: list[TaskConnection]) -> None:
        """Forget a failed attempt: its connections close, its late comers are refused."""
        if failed:
            newest = max(c.hello.key for c in failed)
            self._forget_below((newest[0], newest[1] + 1))

    def admit_generation(self, generation: int) -> None:
        """From now on only tasks of barrier job ``generation`` (or later) are placed; older ones are closed."""
        self._forget_below((generation, 0))

    # --- rounds ----------------------------------------------------------------------------
    def run_round(self, conns: list[TaskConnection], frame: tuple[dict, list]) -> list[TaskReply]:
        """Send the round ``frame`` to every task and gather their updates; :class:`TaskLost` on the first failure.

        Each task gets its own thread (sockets release the GIL), so one task's send and
        receive overlap the others'. On a failure every connection of the round is closed,
        which wakes the other threads at once instead of at their timeout.
        """
        meta, buffers = frame

        def exchange(conn: TaskConnection) -> TaskReply:
            start = time.perf_counter()
            try:
                send_frame(conn.sock, meta, *buffers)
                update, overhead = decode_update(*recv_frame(conn.sock))
            except (OSError, ProtocolError) as exc:
                raise TaskLost(conn.partition, f"{type(exc).__name__}: {exc}") from None
            return TaskReply(update, overhead, time.perf_counter() - start)

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

    def wire_tree(self, conns: list[TaskConnection]) -> None:
        """Tell every task where its tree's nodes listen, and wait until each has connected to its peers."""
        addresses = {str(c.partition): list(c.tree) for c in conns if c.tree is not None}
        if len(addresses) != len(conns):
            raise TaskLost(conns[0].partition if conns else 0, "a task did not say where its tree node listens")
        wiring = {"op": "tree", "count": len(conns), "addresses": addresses}
        for c in conns:
            try:
                send_frame(c.sock, wiring)
            except OSError as exc:
                raise TaskLost(c.partition, f"wiring the tree: {type(exc).__name__}: {exc}") from None
        for c in conns:
            try:
                expect(recv_frame(c.sock, max_payload=0)[0], "wired")
            except (OSError, ProtocolError) as exc:
                raise TaskLost(c.partition, f"wiring the tree: {type(exc).__name__}: {exc}") from None

    def run_tree_round(self, root: TaskConnection, frame: tuple[dict, list]) -> tuple[Partial, float]:
        """Send the round ``frame`` to the tree's root and receive the average; with the root's round trip."""
        start = time.perf_counter()
        try:
            send_frame(root.sock, frame[0], *frame[1])
            partial = decode_partial(*recv_frame(root.sock))
        except (OSError, ProtocolError) as exc:
            raise TaskLost(root.partition, f"{type(exc).__name__}: {exc}") from None
        return partial, time.perf_counter() - start

    def stop_tasks(self, timeout: float = 10.0) -> None:
        """Tell every connected task that training is over, so the barrier stage ends normally."""
        with self._cond:
            conns = list(self._conns.values())
        for c in conns:
            try:
                c.sock.settimeout(timeout)
                send_frame(c.sock, STOP)
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
