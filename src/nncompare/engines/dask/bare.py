"""A bare ``LocalCluster``: the framework the Dask engine builds on, for the floor's start-up."""

from __future__ import annotations

import time

from distributed import Client, LocalCluster


def bare_startup(workers: int, training_stack: bool) -> float:
    """Seconds to bring up ``workers`` one-thread worker processes and run a first task on them.

    With ``training_stack`` every worker imports the training stack first (the engine's worker
    module, which imports numpy and scikit-learn), as the engine's own workers do.
    """
    preload = ["nncompare.engines.dask.worker"] if training_stack else []
    t0 = time.perf_counter()
    cluster = LocalCluster(
        n_workers=workers,
        threads_per_worker=1,
        processes=True,
        dashboard_address=None,
        host="127.0.0.1",
        preload=preload,
    )
    client = Client(cluster, set_as_default=False)
    client.submit(lambda: 1).result()
    up = time.perf_counter() - t0
    client.close()
    cluster.close()
    return up
