"""The floor placement: the least a placement has to do, shards sent as uint8 to plain processes.

The job's shards are cut as the engines cut them and sent over loopback TCP to W plain
processes at once (started and connected beforehand, as an engine's workers are), each scaling
its shard to float32 features and answering. Floor processes run with the engines' worker
environment (``trainer.WORKER_ENV``).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

from nncompare.sockets import recv_exactly, recv_into


def _placement_receiver(port: int) -> None:
    """A plain process's side of :func:`floor_placement`: receive a uint8 shard, scale it, answer."""
    import socket
    import struct

    import numpy as np

    from nncompare.idx import scale_pixels

    with socket.create_connection(("127.0.0.1", port)) as sock:
        rows, cols = struct.unpack("!QQ", recv_exactly(sock, 16))
        pixels = np.empty((rows, cols), dtype=np.uint8)
        recv_into(sock, memoryview(pixels).cast("B"))
        features = scale_pixels(pixels)
        sock.sendall(struct.pack("!d", float(features[-1, -1])))


def floor_placement(spec, data_dir=None, timeout: float = 120) -> dict:
    """Cut the shards, send each to its own plain process over loopback, and wait until all have scaled theirs.

    The clock starts where an engine's placement starts (the training rows in hand, shards not
    yet cut) and stops when the last process has its float32 features: ``placement_s``. The
    processes are started and connected before the clock starts, as an engine's workers are.
    """
    import socket
    import struct
    import threading

    from nncompare.data import load_dataset
    from nncompare.partition import make_shards
    from nncompare.trainer import WORKER_ENV
    from nncompare.training import training_data

    x, y, pixels = training_data(spec, load_dataset(spec.dataset, data_dir=data_dir))
    if pixels is None:
        raise ValueError(f"{spec.dataset} has no uint8 pixels to place")
    workers = spec.topology.workers
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        code = f"import nncompare.floor.placement as f; f._placement_receiver({port})"
        env = {**os.environ, **WORKER_ENV}  # as the engines' workers have it
        procs = [
            subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.DEVNULL, env=env) for _ in range(workers)
        ]
        server.settimeout(timeout)
        try:
            conns = [server.accept()[0] for _ in procs]
            start = time.perf_counter()
            shards = make_shards(x, y, workers, spec.partition, spec.model.seed, pixels=pixels)
            cut_s = time.perf_counter() - start

            answers = {}

            def place(conn, shard) -> None:
                conn.sendall(struct.pack("!QQ", *shard.pixels.shape))
                conn.sendall(memoryview(shard.pixels).cast("B"))
                answers[shard.index] = struct.unpack("!d", recv_exactly(conn, 8))[0]

            threads = [threading.Thread(target=place, args=(c, s)) for c, s in zip(conns, shards)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            placement_s = time.perf_counter() - start
            if any(answers.get(s.index) != float(s.x[-1, -1]) for s in shards):  # each scaled what it was sent
                raise RuntimeError("a floor placement process did not get its shard whole")
            for conn in conns:
                conn.close()
        finally:
            for proc in procs:
                try:
                    proc.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    proc.kill()
    return {"placement_s": placement_s, "cut_s": cut_s, "bytes": int(sum(s.pixels.nbytes for s in shards))}
