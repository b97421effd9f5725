"""The result record: one JSON object per run, the interface every other tool reads.

Stable top-level keys (documented in the README): engine, dataset, workers,
cores_per_worker, memory_per_worker_bytes, epochs, epochs_run, wall_s, startup_s,
epoch_s, phases_s, test_accuracy, peak_rss_bytes, versions, machine, commit.
"""

from __future__ import annotations

import functools
import json
import os
import platform
import socket
import subprocess
import time
from importlib import metadata
from pathlib import Path

from nncompare.engines.registry import record_packages
from nncompare.outfile import append_jsonl, check_appendable, check_writable_dir, save_record  # noqa: F401
from nncompare.steady import steady_seconds

PHASES = ("place", "compute", "transfer", "average", "evaluate", "other")
RECORD_KEYS = (
    "engine",
    "dataset",
    "workers",
    "cores_per_worker",
    "memory_per_worker_bytes",
    "epochs",
    "epochs_run",
    "wall_s",
    "startup_s",
    "epoch_s",
    "phases_s",
    "test_accuracy",
    "peak_rss_bytes",
    "versions",
    "machine",
    "commit",
)
#: The distributions every run depends on; each engine's plugin adds its own (``packages``).
_PACKAGES = ("nncompare", "numpy", "scipy", "scikit-learn", "threadpoolctl")


@functools.cache
def versions() -> dict:
    found = {"python": platform.python_version()}
    for name in (*_PACKAGES, *record_packages()):
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    try:
        from threadpoolctl import threadpool_info

        found["blas"] = sorted(
            {f"{i.get('internal_api')} {i.get('version')}" for i in threadpool_info() if i.get("user_api") == "blas"}
        )
    except Exception:  # threadpoolctl is informative only here
        pass
    return found


@functools.cache
def machine() -> dict:
    import psutil

    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "hostname": socket.gethostname(),
        "cores": os.cpu_count(),
        "memory_bytes": psutil.virtual_memory().total,
        "cpu": cpu,
        "platform": platform.platform(),
    }


@functools.cache
def commit() -> str | None:
    """The git commit of the nncompare source being run, '+dirty' when it has local edits."""
    here = Path(__file__).resolve().parent
    try:
        sha = subprocess.run(["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
        if sha.returncode != 0:
            return None
        dirty = subprocess.run(
            ["git", "-C", str(here), "status", "--porcelain", "--", "."], capture_output=True, text=True, timeout=5
        )
        return sha.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.TimeoutExpired):
        return None


def steady_epoch(epoch_s: list[float], epoch_clocks: list[dict]) -> dict | None:
    """The steady epoch (:func:`nncompare.steady.steady_seconds`) in wall, driver CPU and load-corrected seconds.

    ``active_s`` is wall time less the run-queue delay on the driver and on each round's
    critical worker (``clocks.load_corrected_s``): the figure ``nncompare gate`` compares.
    """
    if not epoch_s:
        return None
    return {
        "wall_s": steady_seconds(epoch_s),
        "cpu_s": steady_seconds([c["cpu_s"] for c in epoch_clocks]),
        "active_s": steady_seconds([c["active_s"] for c in epoch_clocks]),
    }


def build_record(run, *, phases: dict, idle_s: list[float], load_s: float) -> dict:
    """The record of a finished :class:`~nncompare.training.TrainingRun` (keys as in the README)."""
    from nncompare.trainer import peak_rss_bytes, worker_id

    spec, topo = run.spec, run.spec.topology
    # the local engine trains in this process: its "worker" peak is the driver's, counted once
    workers = {w: b for w, b in run.worker_peaks.items() if w != worker_id()}
    return {
        "engine": spec.engine,
        "dataset": spec.dataset,
        "workers": topo.workers,
        "cores_per_worker": topo.cores_per_worker,
        "memory_per_worker_bytes": topo.memory_per_worker_bytes,
        "epochs": spec.epochs,
        "epochs_run": len(run.epoch_s),
        "wall_s": run.wall_s,
        "startup_s": run.startup_s,
        "epoch_s": list(run.epoch_s),
        "epoch_clocks": list(run.epoch_clocks),
        "steady_epoch": steady_epoch(run.epoch_s, run.epoch_clocks),
        "phases_s": phases,
        "test_accuracy": run.accuracies[-1] if run.accuracies else None,
        "peak_rss_bytes": {"driver": peak_rss_bytes(), "workers": sum(workers.values()), "per_worker": workers},
        "versions": versions(),
        "machine": machine(),
        "commit": commit(),
        "spec": spec.to_dict(),
        "spec_key": spec.key(),
        "cluster": run.cluster,
        "engine_info": run.engine_info,
        "stopped_early": run.stopped_early,
        "accuracy_curve": list(run.accuracies),
        "loss_curve": list(run.losses),
        "idle_s": idle_s,
        "rounds": list(run.rounds),
        "rounds_per_epoch": run.rounds_per_epoch,
        "load_s": load_s,
        "shutdown_s": run.shutdown_s,
        "train_samples": run.train_samples,
        "test_samples": int(len(run.dataset.y_test)),
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def read_jsonl(path: str | os.PathLike) -> list[dict]:
    """Every complete record in a results file; a torn last line (killed writer) is skipped."""
    records = []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            line = line.strip()
            if not line:
                continue
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return records
