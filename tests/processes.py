"""Recognising the processes a run starts, by what they are rather than by how they were started."""

from __future__ import annotations

import psutil


def command_line(p: psutil.Process) -> str:
    try:
        return " ".join(p.cmdline())
    except psutil.Error:
        return ""


def is_dask_worker(p: psutil.Process) -> bool:
    """A worker process of our own Dask cluster: forked by the forkserver (the default), or spawned.

    A forked worker carries its server's command line, so it is told from the server by its parent.
    """
    line = command_line(p)
    if "spawn_main" in line:
        return True
    if "multiprocessing.forkserver" not in line:
        return False
    try:
        return "multiprocessing.forkserver" in command_line(p.parent())
    except (psutil.Error, AttributeError):
        return False
