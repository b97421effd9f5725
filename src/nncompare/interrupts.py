"""Ctrl-C and SIGTERM: stop within one round, clean up, exit 130 or 143 with one line; or finish whole.

scikit-learn's MLP catches ``KeyboardInterrupt`` inside ``partial_fit`` and only warns, so a
plain Ctrl-C used to let a run finish and record itself. The handler here raises
:class:`Interrupted`, which is not a ``KeyboardInterrupt``, and also records the signal; the
training loop calls :func:`raise_if_interrupted` after every round in case some library
swallowed the exception anyway. Only the first signal raises: later ones are recorded, so
the cleanup they interrupt (ending workers, JVMs and child processes) is not cut short.

A run has one outcome. :func:`finishing` is the boundary between "interrupted" and
"finished": a signal that came before it makes the run interrupted (nothing written); from
the moment it is crossed, signals are honoured as success: the record is written whole, the
summary printed and the command exits 0, even when the signal arrives while the interpreter
shuts down (:func:`settle`).
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(BaseException):
    """The user (SIGINT) or a supervisor (SIGTERM) asked us to stop; a BaseException, like KeyboardInterrupt."""

    def __init__(self, signum: int):
        self.signum = int(signum)
        super().__init__(signal.Signals(self.signum).name)

    @property
    def exit_code(self) -> int:
        """The shell's convention for death by signal: 130 for SIGINT, 143 for SIGTERM."""
        return 128 + self.signum


_received: int | None = None
_deferred = 0
#: True once :func:`finishing` decided that the run finished: later signals are honoured as success.
_finished = False


def _handler(signum, frame) -> None:
    global _received
    if _finished:
        return  # past the boundary: the run has finished, its record and summary are being written
    first = _received is None
    if first:
        _received = signum
    if first and not _deferred:
        raise Interrupted(signum)


@contextmanager
def handled() -> Iterator[None]:
    """Route SIGINT and SIGTERM to :class:`Interrupted` inside the block (a no-op off the main thread)."""
    global _received, _finished
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _received, _finished = None, False
    previous = {s: signal.signal(s, _handler) for s in SIGNALS}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
        _received = None  # what the block was told has been raised; later runs in this process start clean


def install_early() -> None:
    """Until :func:`handled` takes over, and again once it has handed back: a signal during the
    imports (seconds: numpy, click) ends the process at once, with the same one line and exit
    code; nothing has been started or written yet. After a run that finished (:func:`finishing`),
    a signal while the interpreter shuts down ends it with status 0: the run's outcome stands."""

    def end_now(signum, frame):
        if _finished:
            os._exit(0)
        sys.stderr.write(
            f"nncompare: error: interrupted by {signal.Signals(signum).name} while starting; nothing was written\n"
        )
        sys.stderr.flush()
        os._exit(128 + signum)

    if threading.current_thread() is threading.main_thread():
        for s in SIGNALS:
            signal.signal(s, end_now)


def settle() -> None:
    """The command's outcome is decided (its exit status set): from here to the end of the process,
    SIGINT and SIGTERM are ignored. Python restores the default action of the signals it handles
    while the interpreter shuts down, so a signal then used to kill a finished run (status -15)."""
    if threading.current_thread() is threading.main_thread():
        for s in SIGNALS:
            signal.signal(s, signal.SIG_IGN)


def received() -> int | None:
    """The first signal received inside :func:`handled`, if any."""
    return _received


def raise_if_interrupted() -> None:
    """Raise :class:`Interrupted` if a signal came before the run finished, even one that a library swallowed."""
    if _received is not None and not _finished:
        raise Interrupted(_received)


def finished() -> bool:
    """Whether :func:`finishing` has decided that this run finished."""
    return _finished


@contextmanager
def deferred() -> Iterator[None]:
    """Signals inside the block are recorded, not raised: for a write that must be whole, and for cleanup."""
    global _deferred
    _deferred += 1
    try:
        yield
    finally:
        _deferred -= 1


def run_then_close(work: Callable[[], object], close: Callable[[], None]):
    """``work()``, then ``close()`` (which defers signals itself) whatever happened, and returns what ``work`` did.

    A first signal handled in the instant before ``close`` deferred signals would skip it, and
    leave an engine open: ``close`` then runs again, whole, before the interrupt goes on (only the
    first signal raises, so this second close is not cut short). ``close`` must be idempotent.
    """
    try:
        try:
            return work()
        finally:
            close()
    except Interrupted:
        close()
        raise


@contextmanager
def finishing() -> Iterator[None]:
    """The boundary between an interrupted run and a finished one, crossed atomically.

    Entering the block decides: a signal received before it raises :class:`Interrupted` here
    (nothing of the run has been written yet); otherwise the run has finished, and every signal
    from then on, inside the block or after it, is honoured as success. The block writes the
    record and prints the summary; a signal cannot cut either short.
    """
    global _finished, _received
    with deferred():
        if _received is not None:  # the decision: a signal recorded after this test is after the boundary
            raise Interrupted(_received)
        _finished = True
        _received = None  # one that landed between the test and the line above came after the boundary
        yield
