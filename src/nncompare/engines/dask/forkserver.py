"""Our own cluster's workers forked from one process that has already imported the training stack.

A worker process that is spawned imports distributed, numpy and scikit-learn on its own (1-3 s
of CPU each here), so W workers cost W imports: on a machine with fewer cores than workers the
start-up grows with W, not with the cores. With multiprocessing's forkserver, distributed's
nannies ask one server process for each worker; the server imports the stack once, before its
first fork (``set_forkserver_preload``), and every worker starts with it loaded, for the cost of
a fork. distributed picks the start method from ``distributed.worker.multiprocessing-method``
(``distributed.utils.get_mp_context``), which :func:`worker_start_config` sets.

The server starts from the nanny's first ``Process.start()``, after the nanny has put its
``pre-spawn-environ`` into this process's environment, so it (and every worker forked from it)
has BLAS threads = cores and no ``MALLOC_TRIM_THRESHOLD_``, as spawned workers have. glibc reads
its malloc variables when a process starts, so a run that keeps the nanny's malloc setting on
purpose (``keep_malloc_trim``) spawns its workers instead. The server is stopped when the
cluster closes: the next cluster then starts its own, with its own environment, and pays for
its own imports, so no start-up borrows a server warmed by an earlier one.
"""

from __future__ import annotations

import multiprocessing
from multiprocessing import forkserver

#: What the server imports before its first fork: the worker's framework and our worker module
#: (numpy, scikit-learn, threadpoolctl), i.e. everything a worker imports before it can train.
PRELOAD = ("distributed", "nncompare.engines.dask.worker")


def prepare(keep_malloc_trim: bool) -> str:
    """The start method for our cluster's workers, with the forkserver's preload set when it is ``forkserver``.

    ``spawn`` where the workers must read a malloc variable at exec (``keep_malloc_trim``), or
    where a forkserver already runs in this process: its environment and imports are not ours.
    distributed sets its own preload list the first time ``get_mp_context`` meets
    ``forkserver``, and never again, so ours, set right after that call, is the one the server
    starts with.
    """
    if keep_malloc_trim or running():
        return "spawn"
    import dask
    from distributed.utils import get_mp_context

    with dask.config.set(worker_start_config("forkserver")):
        get_mp_context()
    multiprocessing.get_context("forkserver").set_forkserver_preload(list(PRELOAD))
    return "forkserver"


def worker_start_config(method: str) -> dict:
    """The Dask setting that makes distributed's nannies start their workers with ``method``."""
    return {"distributed.worker.multiprocessing-method": method}


def running() -> bool:
    return getattr(forkserver._forkserver, "_forkserver_pid", None) is not None


def stop() -> None:
    """Stop this process's forkserver (after its workers have exited); a no-op when none runs.

    ``ForkServer._stop`` is what the standard library's own tests call: it closes the server's
    "alive" pipe, which makes it exit, and reaps it.
    """
    stop_server = getattr(forkserver._forkserver, "_stop", None)
    if stop_server is not None:
        stop_server()
