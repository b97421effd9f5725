"""Ending the processes a run started, by process group or found by descent, so that none outlives the command."""

from __future__ import annotations

import os
import signal
import subprocess

import psutil

from nncompare.interrupts import deferred


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


def stop_process_group(proc: subprocess.Popen, grace_s: float = 5.0) -> None:
    """End a child process and everything it started (workers, a JVM): its group gets TERM, then KILL."""
    with deferred():  # a second Ctrl-C or SIGTERM must not skip the cleanup
        for sig, wait in ((signal.SIGTERM, grace_s), (signal.SIGKILL, None)):
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                proc.wait(timeout=wait)
                end_process_group(proc)
                break
            except subprocess.TimeoutExpired:
                continue


def end_process_group(proc: subprocess.Popen) -> None:
    """Kill what is left of an exited child's process group: nothing outlives it or holds its output."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
