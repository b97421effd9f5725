"""What runs inside a Dask worker: the long-lived shard actor, probes of the process, the preload.

Worker processes import this module by name (the actor class, ``Client.run`` targets and
``dask_setup``), so it depends on nothing from the driver side (no client, no cluster, no
training run): only the shard trainer, numpy and the standard library.
"""

from __future__ import annotations

import dataclasses
import os
import resource
import threading
import time

import numpy as np

from nncompare.engines.spark.wire import encode_round
from nncompare.engines.tree import Partial, TreeNode
from nncompare.trainer import ShardTrainer

#: Environment variables that decide a worker's speed: glibc's malloc tuning and BLAS threads.
WATCHED_ENV = (
    "MALLOC_TRIM_THRESHOLD_",
    "MALLOC_MMAP_THRESHOLD_",
    "MALLOC_TOP_PAD_",
    "MALLOC_ARENA_MAX",
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "NUMPY_MADVISE_HUGEPAGE",
)


def tcp_traffic() -> dict:
    """Bytes this process has received and sent (acknowledged) on its open TCP connections.

    Read from the kernel's ``TCP_INFO`` of every connected socket (Linux; ``tcpi_bytes_received``
    and ``tcpi_bytes_acked``), so it counts what really crossed the wire, whatever Dask layer
    sent it. Connections closed between two readings drop out of the sum; the engine takes its
    readings on long-lived connections (Dask pools them), which is what makes the delta meaningful.
    Returns ``{"received": None, "sent": None}`` where the kernel does not say.
    """
    import socket
    import struct

    import psutil

    received = sent = 0
    try:
        connections = psutil.Process().net_connections(kind="tcp")
    except (psutil.Error, OSError, AttributeError):
        return {"received": None, "sent": None}
    for conn in connections:
        if conn.fd < 0 or conn.status == psutil.CONN_LISTEN:
            continue
        try:
            with socket.fromfd(conn.fd, conn.family, socket.SOCK_STREAM) as sock:
                info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 256)
        except OSError:  # closed meanwhile
            continue
        if len(info) < 136:
            return {"received": None, "sent": None}
        acked, got = struct.unpack_from("QQ", info, 120)  # struct tcp_info: tcpi_bytes_acked, tcpi_bytes_received
        received += got
        sent += acked
    return {"received": received, "sent": sent}


def tcp_traffic_on_worker(dask_worker=None) -> dict:
    """:func:`tcp_traffic` with the worker's own view of peer transfers (``Client.run`` target)."""
    traffic = tcp_traffic()
    if dask_worker is not None:
        traffic["transfers_in"] = len(dask_worker.transfer_incoming_log)
        traffic["tasks"] = len(dask_worker.state.tasks)
        traffic["actors"] = len(dask_worker.state.actors)
    return traffic


def worker_counters(dask_worker=None) -> dict:
    """The counters read before and after training, in one ``Client.run`` round trip: traffic and thread CPU."""
    return {"traffic": tcp_traffic_on_worker(dask_worker), "threads": thread_cpu(dask_worker)}


def dask_setup(worker) -> None:
    """Worker preload for the engine's own cluster: Ctrl-C is the driver's to handle.

    A terminal sends SIGINT to the whole foreground group, worker processes included; the
    driver then closes the cluster in order, so the workers must not die first, each with
    its own traceback.
    """
    import signal
    import threading

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)


def quiet_for_shutdown(dask_worker=None) -> None:
    """Before the engine closes its own cluster: the workers' complaints about that close are not news.

    Under load a worker's heartbeat can still be in flight while the scheduler it reports to
    closes, and distributed then logs an ERROR with a traceback on the user's terminal after a
    run that ended normally or on Ctrl-C. Set only as the engine begins an orderly shutdown, so
    errors while training still show.
    """
    import logging

    logging.getLogger("distributed").setLevel(logging.CRITICAL)


def thread_cpu(dask_worker=None) -> dict:
    """CPU seconds of each thread of this process so far, by Python thread name (``Client.run`` target).

    The on-CPU time of :func:`nncompare.clocks.thread_clocks`, the reading the trainer takes
    around each round; threads Python did not start (BLAS pools, for one) are summed under
    ``"(native)"``. Shows what besides ``partial_fit`` takes a worker's CPU: the event loop,
    the profiler, the executor threads.
    """
    import threading

    from nncompare.clocks import thread_clocks

    names = {t.native_id: t.name for t in threading.enumerate()}
    out: dict[str, float] = {}
    for tid, (on_cpu, _) in thread_clocks().items():
        name = names.get(tid, "(native)")
        out[name] = round(out.get(name, 0.0) + on_cpu, 3)
    return out


def minor_faults() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def worker_facts(dask_worker=None) -> dict:
    """The worker process as the engine records it (run through ``Client.run``)."""
    from threadpoolctl import threadpool_info

    facts = {
        "pid": os.getpid(),
        "host": os.uname().nodename,
        "env": {k: os.environ.get(k) for k in WATCHED_ENV},
        "blas_threads": sorted({int(p["num_threads"]) for p in threadpool_info() if p.get("user_api") == "blas"}),
    }
    if dask_worker is not None:
        facts["nthreads"] = dask_worker.state.nthreads
        facts["memory_limit"] = dask_worker.memory_manager.memory_limit
        facts["actors"] = len(dask_worker.state.actors)
    return facts


#: Where glibc's dynamic thresholds stop growing on 64-bit Linux (DEFAULT_MMAP_THRESHOLD_MAX; trim = 2 x mmap).
MMAP_THRESHOLD_MAX = 32 * 1024 * 1024
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # <malloc.h>


def pin_malloc_thresholds(dask_worker=None) -> bool:
    """Undo what ``MALLOC_TRIM_THRESHOLD_`` does to a running worker, as far as glibc allows.

    Any malloc threshold set by environment switches off glibc's dynamic mmap threshold, which
    stays at 128 KiB: every large ``partial_fit`` temporary is then mmapped and unmapped again.
    Once a process runs, the dynamic mode cannot be switched back on, but pinning both thresholds
    where it would have taken them (32 MiB, 64 MiB) gives the same allocations. Process-wide and
    lasting: the engine does it on remote workers only when asked (``EngineOptions.pin_malloc``).
    """
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return bool(
            libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_MAX)
            and libc.mallopt(M_TRIM_THRESHOLD, 2 * MMAP_THRESHOLD_MAX)
        )
    except (OSError, AttributeError):  # not glibc
        return False


def scheduler_transitions(dask_scheduler=None) -> int:
    """How many task transitions the scheduler has made so far; flat while actors train."""
    return int(dask_scheduler.transition_counter)


class ShardActor:
    """One shard and its :class:`~nncompare.trainer.ShardTrainer`, alive for the whole run.

    Created once per shard on its worker (``actor=True``) from the scattered shard; after
    that each call carries only the weights and the round's position in, and the
    :class:`ShardUpdate` out, plus the worker's own measurements of the call. A replacement for
    a lost actor is created the same way and joins the epoch at the position it is given.

    With the tree exchange the actor is also a node of :mod:`nncompare.engines.tree`: the root's
    ``train_tree`` is the round's one call from the driver, and every other node trains in a
    thread that answers its parent. A round trained there is remembered (its own weights too),
    so that when the tree breaks the driver can collect it with ``train_round`` instead of
    training the shard twice.
    """

    def __init__(
        self, shard: int, x: np.ndarray, y: np.ndarray, classes: np.ndarray, spec, cores: int, before_round=None
    ):
        self.trainer = ShardTrainer(shard, x, y, classes, spec, cores=cores, before_round=before_round)
        self.nbytes = int(x.nbytes + y.nbytes)
        self._last_end: float | None = None
        self._lock = threading.Lock()  # one round at a time, from the driver's call or the tree's thread
        self._remembered = None  # (round number, its update with the shard's own weights, stats) from the tree
        self._node = None
        self._serving = None

    def pid(self) -> int:
        return os.getpid()

    def train_round(self, weights: np.ndarray | None, position):
        """Train the round at ``position`` (or, if the tree already did, return that); the update and its stats."""
        if self._serving is not None:
            self._serving.join()  # after a broken tree: let its thread finish the round it may be training
        with self._lock:
            if self._remembered is not None and self._remembered[0] == position.number:
                return self._remembered[1], self._remembered[2]
            return self._train(weights, position)

    def _train(self, weights, position):
        start, cpu = time.perf_counter(), time.process_time()
        faults = minor_faults()
        update = self.trainer.train_round(weights, position)
        faults = minor_faults() - faults
        end, cpu = time.perf_counter(), time.process_time() - cpu
        idle = 0.0 if self._last_end is None else start - self._last_end
        self._last_end = end
        return update, {"in_actor_s": end - start, "cpu_s": cpu, "idle_s": idle, "minflt": faults}

    # -- the tree exchange -------------------------------------------------------------------

    def tree_listen(self, token: str, host: str, timeout_s: float) -> tuple[str, int]:
        """Open this shard's tree node (closing an earlier one); where it listens."""
        self.tree_close()
        self._node = TreeNode(self.trainer.shard, token, host, timeout_s)
        return self._node.address

    def tree_wire(self, count: int, addresses: dict) -> None:
        """Connect to the children, accept the parent, and (below the root) serve the parent's rounds in a thread."""
        self._node.wire(count, {int(k): tuple(v) for k, v in addresses.items()})
        if self.trainer.shard != 0:
            self._serving = threading.Thread(target=self._serve, name="nncompare-tree", daemon=True)
            self._serving.start()

    def _serve(self) -> None:
        try:
            self._node.serve(_Remembering(self))
        except Exception:  # noqa: BLE001 - the tree broke (a peer lost, a round failed): the driver collects the round
            self._node.close()

    def train_tree(self, weights: np.ndarray | None, position) -> Partial:
        """The root's round: the whole tree trains it; the average and every shard's update and stats."""
        meta, buffers = encode_round(position, weights)
        payload = buffers[0].view(np.uint8) if buffers else np.empty(0, dtype=np.uint8)
        return self._node.exchange(_Remembering(self), meta, payload)

    def tree_close(self) -> None:
        if self._node is not None:
            self._node.stop()
            self._node.close()
        if self._serving is not None:
            self._serving.join()
        self._node = self._serving = None


class _Remembering:
    """The trainer a tree node calls: the actor's round, remembered, with its stats as the node's notes."""

    def __init__(self, actor: ShardActor):
        self.actor, self.last_notes = actor, None

    def train_round(self, weights, position):
        with self.actor._lock:
            update, stats = self.actor._train(weights, position)
            self.actor._remembered = (
                position.number,
                dataclasses.replace(update, weights=update.weights.copy()),
                stats,
            )
        self.last_notes = stats
        return update
