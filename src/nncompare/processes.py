"""Ending the processes a run started, found by descent, so that none outlives the command."""

from __future__ import annotations

import psutil


def descendants(pid: int) -> list[psutil.Process]:
    """Every process under ``pid`` now (none when it has gone)."""
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.Error:
        return []


def end(processes: list[psutil.Process], grace_s: float, *, terminate: bool = False, kill_wait_s: float = 10) -> None:
    """Give ``processes`` ``grace_s`` to exit (after a SIGTERM with ``terminate``), then kill what is left.

    Without ``terminate`` they are expected to exit on their own (a daemon does when its stdin closes).
    """
    alive = [p for p in processes if p.is_running()]
    if terminate:
        for p in alive:
            try:
                p.terminate()
            except psutil.Error:
                pass
    _, alive = psutil.wait_procs(alive, timeout=grace_s)
    for p in alive:
        try:
            p.kill()
        except psutil.Error:
            pass
    psutil.wait_procs(alive, timeout=kill_wait_s)
