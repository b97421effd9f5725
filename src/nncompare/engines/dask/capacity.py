"""What a local Dask cluster needs of this machine, checked before any worker process is spawned.

``--workers 1000`` used to start worker processes until the kernel's out-of-memory killer ended
the run (and disturbed everything else on the machine); W workers x ``--memory`` beyond the
machine's memory was accepted too. Both are one line now, before the cluster starts.
"""

from __future__ import annotations

from nncompare.errors import UsageError
from nncompare.job import Topology, format_memory

#: What one of our worker processes holds before it gets a shard: Python, numpy, scikit-learn and
#: distributed (200 MiB resident measured here with psutil, on two idle workers).
WORKER_PROCESS_BYTES = 200 * 2**20


def check_local_resources(topology: Topology) -> None:
    """Refuse a local cluster this machine cannot hold: W x M beyond its memory, or more worker
    processes than its free memory can start."""
    import psutil

    memory = psutil.virtual_memory()
    w, given = topology.workers, topology.memory_per_worker_bytes
    if given and w * given > memory.total:
        raise UsageError(
            f"--workers {w} x --memory {format_memory(given)} is {format_memory(w * given)}, more than this "
            f"machine's {format_memory(memory.total)}; give fewer workers or less memory, or --cluster for a bigger one"
        )
    fit = memory.available // WORKER_PROCESS_BYTES
    if w > fit:
        raise UsageError(
            f"--workers {w}: each Dask worker process needs about {format_memory(WORKER_PROCESS_BYTES)} before its "
            f"shard, and this machine has {format_memory(memory.available)} free, room for {fit}; give fewer "
            "workers, or --cluster for a bigger cluster"
        )
