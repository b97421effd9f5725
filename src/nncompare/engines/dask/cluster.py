"""Getting a Dask cluster to train on: start our own, or connect to one and check it is the one asked for.

Kept apart from the driver because none of it is about rounds: it is what makes the
measurements comparable. Our own ``LocalCluster`` runs its workers without the nanny's
``MALLOC_TRIM_THRESHOLD_``, with BLAS threads = cores, and without the worker profiler
unless the dashboard is on; a remote cluster cannot be
chosen, so its topology is checked against the flags and its workers' environment is
reported (and, when asked, their malloc thresholds pinned).
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import os
import signal
import socket
from dataclasses import dataclass, field

import dask
from distributed import Client, LocalCluster

from nncompare.engines.dask import forkserver
from nncompare.engines.dask.capacity import check_local_resources
from nncompare.engines.dask.worker import pin_malloc_thresholds, quiet_for_shutdown
from nncompare.errors import EngineError, UsageError
from nncompare.interrupts import SIGNALS, deferred
from nncompare.job import Topology, format_memory
from nncompare.trainer import WORKER_ENV

logger = logging.getLogger(__name__)

#: What the nanny sets by default (``distributed.yaml``); kept only to measure what it costs.
NANNY_MALLOC_TRIM_THRESHOLD = 65536
#: The module our workers preload: it makes Ctrl-C the driver's to handle (``worker.dask_setup``).
WORKER_PRELOAD = "nncompare.engines.dask.worker"
#: Seconds a TCP connect to a remote scheduler may take before it counts as unreachable: a
#: Client against a closed port retries until its whole timeout is spent (20 s by default).
REACH_S = 5.0
#: Seconds a port that accepted the connection has to answer Dask's handshake: an HTTP server
#: waiting for a request line, or a silent port, would otherwise hold the run for ever.
HANDSHAKE_S = 10.0


def worker_environ(cores: int, keep_malloc_trim: bool = False) -> dict:
    """``distributed.nanny.pre-spawn-environ`` for our workers: BLAS threads = cores, no malloc trim,
    small pages for numpy (``trainer.WORKER_ENV``).

    ``None`` makes the nanny drop a variable (``distributed.nanny._get_env_variables``).
    """
    trim = NANNY_MALLOC_TRIM_THRESHOLD if keep_malloc_trim else None
    return {
        "MALLOC_TRIM_THRESHOLD_": trim,
        "OMP_NUM_THREADS": cores,
        "OPENBLAS_NUM_THREADS": cores,
        "MKL_NUM_THREADS": cores,
        **WORKER_ENV,
    }


@dataclass
class Cluster:
    """A client on a running cluster, and what to undo when the run ends."""

    client: Client | None = None
    local: LocalCluster | None = None
    dashboard_url: str | None = None
    warnings: list[str] = field(default_factory=list)
    #: how our own cluster's workers were started: ``forkserver`` or ``spawn`` (None: a remote cluster)
    worker_start_method: str | None = None
    _saved_environ: dict | None = None

    def close(self) -> None:
        """Close the client, then (ours only) the cluster, and restore this process's environment.

        A signal during the close is recorded, not raised: raised inside distributed's ``sync``
        wait it would leave the nannies half closed, and they would restart their workers.
        """
        with deferred():
            self._close()

    def _close(self) -> None:
        try:
            if self.client is not None and self.local is not None:
                # our own workers: their logs about the shutdown we start are noise (worker.py says why)
                try:
                    self.client.run(quiet_for_shutdown, on_error="ignore")
                except Exception as exc:  # noqa: BLE001 - a worker already gone only costs the silence
                    logger.debug("quieting the Dask workers: %s", exc)
            if self.client is not None:
                self.client.close(timeout=10)
        except Exception as exc:  # closing must go on to the cluster whatever the client did
            logger.debug("closing the Dask client: %s", exc)
        finally:
            if self.local is not None:
                try:
                    self.local.close(timeout=30)
                except Exception as exc:
                    logger.warning("closing the local Dask cluster: %s", exc)
            if self.worker_start_method == "forkserver":
                forkserver.stop()  # after the cluster: it reports its workers' exits
                self.worker_start_method = None
            if self._saved_environ is not None:
                for key in set(os.environ) - set(self._saved_environ):
                    del os.environ[key]
                os.environ.update(self._saved_environ)
                self._saved_environ = None


#: Periodic callbacks of our own cluster's event loops, made rarer. The scheduler and both
#: nannies share the driver's loop thread, and each worker has its own; by default every one of
#: them wakes every 20 ms (the blocked-loop tick), the workers every 100 ms (memory monitor) and
#: the scheduler every second (work stealing, which actors pinned to workers never need). On a
#: busy machine every wake-up takes a core from the training and makes the driver's own threads
#: wait for a CPU.
QUIET_LOOPS = {
    "distributed.admin.tick.interval": "1s",
    "distributed.admin.system-monitor.interval": "2s",
    "distributed.worker.memory.monitor-interval": "500ms",
    "distributed.scheduler.work-stealing": False,
}


def start_local(topology: Topology, settings, dashboard: bool = False) -> Cluster:
    """Our own cluster on 127.0.0.1: W worker processes (each under a nanny), C threads, memory M."""
    topology.check_fits_this_machine()
    check_local_resources(topology)
    env = worker_environ(topology.cores_per_worker, settings.keep_malloc_trim)
    # The nanny prefers the parent's own environment over its config and spawned workers
    # inherit it: take these variables out of this process for the cluster's lifetime.
    # The nanny and Dask also write into os.environ; Cluster.close() restores it as it was.
    saved = dict(os.environ)
    for key in env:
        os.environ.pop(key, None)
    memory = topology.memory_per_worker_bytes or "auto"
    # the dashboard (with the scheduler's other HTTP routes) on a free loopback port, never 8787;
    # without it the HTTP routes still need a port, so they get a free one too
    http = (
        {"dashboard_address": "127.0.0.1:0"}
        if dashboard
        else {"dashboard_address": None, "scheduler_kwargs": {"dashboard": False, "dashboard_address": "127.0.0.1:0"}}
    )
    cluster = Cluster(_saved_environ=saved)
    try:
        # the workers forked from one server that imports the training stack once (forkserver.py)
        cluster.worker_start_method = forkserver.prepare(settings.keep_malloc_trim)
        # the statistical profiler samples every thread's stack every 10 ms for the dashboard's
        # profile page, on the worker's event loop: it cost each worker 0.24-0.28 s of event-loop
        # CPU over 4 epochs here against 0.09-0.17 s without, from the cores the workers train on
        with dask.config.set(
            {
                "distributed.nanny.pre-spawn-environ": env,
                "distributed.worker.profile.enabled": dashboard,
                **forkserver.worker_start_config(cluster.worker_start_method),
                **QUIET_LOOPS,
            }
        ):
            # start the scheduler alone, then the workers: an interrupt while workers start
            # then finds the cluster already ours to close
            cluster.local = LocalCluster(
                n_workers=0,
                threads_per_worker=topology.cores_per_worker,
                processes=True,
                memory_limit=memory,
                host="127.0.0.1",
                scheduler_port=0,
                silence_logs=logging.ERROR,
                preload=[WORKER_PRELOAD],
                **http,
            )
            cluster.local.sync(_block_interrupts_in_loop_thread)
            cluster.local.scale(topology.workers)
            cluster.client = Client(cluster.local, set_as_default=False, direct_to_workers=True)
            # scale() creates the nannies asynchronously and each reads the config as it is
            # created: stay inside the config block until every worker is up
            cluster.client.wait_for_workers(topology.workers, timeout=max(settings.timeout_s, 120.0))
    except BaseException as exc:  # Ctrl-C too: no worker process or port may outlive a failed start
        cluster.close()
        if not isinstance(exc, Exception):
            raise
        raise EngineError(
            f"could not start a local Dask cluster of {topology.workers} workers: {type(exc).__name__}: {exc}"
        ) from exc
    if dashboard:
        cluster.dashboard_url = cluster.local.dashboard_link or None
        if importlib.util.find_spec("bokeh") is None:
            cluster.warnings.append(
                f"the Dask dashboard at {cluster.dashboard_url} shows only a notice: it needs bokeh (pip install bokeh)"
            )
    return cluster


async def _block_interrupts_in_loop_thread() -> None:
    """Block SIGINT and SIGTERM in the cluster's event-loop thread, before any worker is spawned.

    A terminal's Ctrl-C reaches the whole process group. A worker process still starting has
    not yet run our preload (``worker.dask_setup``), so asyncio's own SIGINT handler cancelled
    its start, its nanny failed, and the cluster's close then failed too (a cancelled
    ``_correct_state`` task: "cannot access local variable 'result'"), leaving workers behind.
    Threads inherit the mask of the thread that creates them, and processes that of the thread
    that spawns them: nannies spawn from threads this loop creates, so every worker is born
    with both signals blocked and leaves them to the driver, which closes the cluster in order.
    The driver still gets them: the kernel delivers them to its main thread, which has them open.
    multiprocessing's resource tracker is started first, because starting it (bpo-33613) ends by
    unblocking exactly these two signals in the thread that starts it.
    """
    from multiprocessing import resource_tracker

    resource_tracker.ensure_running()
    signal.pthread_sigmask(signal.SIG_BLOCK, SIGNALS)


def connect(address: str, topology: Topology, settings, dashboard: bool = False) -> Cluster:
    """A client on the scheduler at ``address``, once its workers match ``topology``."""
    limit = settings.timeout_s
    check_reachable(address, min(REACH_S, limit))
    try:
        client = Client(address, timeout=limit, set_as_default=False, direct_to_workers=True)
    except (OSError, TimeoutError) as exc:
        raise EngineError(
            f"cannot reach the Dask scheduler at {address} within {limit:g} s "
            f"({type(exc).__name__}); start one with 'dask scheduler' or fix --cluster"
        ) from None
    except ValueError as exc:
        raise UsageError(f"--cluster {address}: {exc}") from None
    except Exception as exc:  # it passed the handshake, then refused us: still one line
        raise EngineError(
            f"the Dask scheduler at {address} refused a client: {type(exc).__name__}: "
            f"{str(exc).splitlines()[0][:200] if str(exc) else ''}"
        ) from None
    cluster = Cluster(client=client, dashboard_url=(client.dashboard_link or None) if dashboard else None)
    try:
        check_topology(client, address, topology, limit)
    except BaseException:
        cluster.close()
        raise
    return cluster


def check_reachable(address: str, limit_s: float) -> None:
    """A TCP connect, then Dask's handshake, before any Client exists: a closed port, a dead host or
    a service that is not a scheduler is one line in seconds. A Client that fails to start instead
    retries for its whole timeout, and its ``__del__`` then waits 40 s more and prints a traceback."""
    from distributed.comm.addressing import parse_address, parse_host_port

    logger.info("checking the Dask scheduler at %s", address)
    try:
        scheme, location = parse_address(address)
        if scheme not in ("tcp", "tls"):
            return  # inproc, ucx, ws: the Client's own timeout applies
        host, port = parse_host_port(location)
    except (ValueError, TypeError) as exc:
        raise UsageError(f"--cluster {address}: {exc}; write the scheduler's address as tcp://HOST:PORT") from None
    try:
        socket.create_connection((host, port), timeout=limit_s).close()
    except OSError as exc:
        reason = "no answer" if isinstance(exc, TimeoutError) else (exc.strerror or type(exc).__name__).lower()
        raise EngineError(
            f"cannot reach the Dask scheduler at {address} within {limit_s:g} s ({reason}); "
            "start one with 'dask scheduler' or fix --cluster"
        ) from None
    if scheme != "tcp":
        return  # a TLS handshake needs the cluster's certificates, which only the Client is given
    try:
        asyncio.run(_handshake(address, limit_s, HANDSHAKE_S))
    except TimeoutError:
        why = f"it gave no Dask handshake within {HANDSHAKE_S:g} s"
    except (MemoryError, OverflowError, ValueError):  # its first bytes read as an absurd message size
        why = "it sent bytes no Dask scheduler sends"
    except Exception as exc:  # noqa: BLE001 - a closed or reset connection, or a message that is not Dask's
        detail = str(exc).splitlines()[0][:120] if str(exc) else "no detail"
        why = f"{type(exc).__name__}: {detail}"
    else:
        return
    raise EngineError(f"{address} answers, but not as a Dask scheduler ({why}); fix --cluster")


async def _handshake(address: str, connect_s: float, answer_s: float) -> None:
    from distributed.comm import connect as comm_connect

    comm = await asyncio.wait_for(comm_connect(address, timeout=connect_s), answer_s)
    await comm.close()


def check_topology(client: Client, address: str, topology: Topology, limit: float) -> None:
    """The flags describe the cluster we expect; refuse to measure a different one."""
    workers = client.scheduler_info(n_workers=-1)["workers"]
    if len(workers) < topology.workers:
        try:
            client.wait_for_workers(topology.workers, timeout=limit)
        except TimeoutError:
            pass
        workers = client.scheduler_info(n_workers=-1)["workers"]
    threads = sorted({w["nthreads"] for w in workers.values()})
    memories = sorted({int(w.get("memory_limit") or 0) for w in workers.values()})
    problems = []
    if len(workers) != topology.workers:
        problems.append(f"{len(workers)} workers, not --workers {topology.workers}")
    if threads and threads != [topology.cores_per_worker]:
        problems.append(f"{'/'.join(map(str, threads))} threads per worker, not --cores {topology.cores_per_worker}")
    want = topology.memory_per_worker_bytes
    if want and any(abs(m - want) > 0.01 * want for m in memories):
        have = "/".join(format_memory(m) if m else "no limit" for m in memories)
        problems.append(f"{have} memory per worker, not --memory {format_memory(want)}")
    if problems:
        raise UsageError(
            f"the Dask cluster at {address} has {'; '.join(problems)}: "
            "pass the cluster's own figures or start matching workers "
            "(dask worker ADDRESS --nworkers W --nthreads C --memory-limit M)"
        )


def check_worker_environment(client: Client, facts: dict, cores: int, pin: bool) -> tuple[list[str], list[str]]:
    """Warnings about workers whose environment slows training, and the workers pinned (``pin``).

    ``facts`` is ``worker.worker_facts`` per address. Returns ``(warnings, pinned addresses)``.
    """
    warnings, pinned = [], []
    trimmed = sorted(a for a, f in facts.items() if f["env"].get("MALLOC_TRIM_THRESHOLD_"))
    if trimmed and pin:
        pinned = sorted(a for a, ok in client.run(pin_malloc_thresholds, workers=trimmed).items() if ok)
    for address in trimmed:
        trim = facts[address]["env"]["MALLOC_TRIM_THRESHOLD_"]
        if address in pinned:
            warnings.append(
                f"Dask worker {address} runs with MALLOC_TRIM_THRESHOLD_={trim}; pinned its malloc "
                "thresholds instead (NNCOMPARE_DASK_PIN_MALLOC=1)"
            )
        else:
            warnings.append(
                f"Dask worker {address} runs with MALLOC_TRIM_THRESHOLD_={trim}, which made training "
                "over 2x slower in our measurements; start 'dask worker' with a Dask config that sets "
                "distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_ to null, or set "
                "NNCOMPARE_DASK_PIN_MALLOC=1 (see docs/dask.md)"
            )
    for address, worker in sorted(facts.items()):
        omp = worker["env"].get("OMP_NUM_THREADS")
        if omp is not None and omp != str(cores):
            # threadpoolctl still limits BLAS to --cores inside each round; OpenMP pools elsewhere may not follow
            warnings.append(
                f"Dask worker {address} has OMP_NUM_THREADS={omp} but --cores {cores}; "
                "the trainer limits BLAS to --cores with threadpoolctl"
            )
    return warnings, pinned
