"""What a running command shows on stderr: a bar that names its stage, and one-line events with -v.

The training loop reports its stages through its ``progress`` callback (:mod:`nncompare.training`:
``starting``, ``placing``, ``training``, ``epoch`` after each epoch, and ``stopping``); ``sweep`` and ``paper``
add ``configuration`` before each configuration and relay the events of the configuration's own
process (``nncompare.sweep``), its log lines among them as ``log`` events. Everything printed
while a bar is on screen goes through ``tqdm.write``, so lines never break the bar.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from tqdm import tqdm

from nncompare.sweep import format_duration

#: Seconds between redraws while a stage has no epochs to count (the engine's start, placement).
TICK_S = 1.0
_RUN_FORMAT = "{desc} |{bar}| {n_fmt}/{total_fmt} epochs [{elapsed}{postfix}]"
_SWEEP_FORMAT = "{desc} |{bar}| {n_fmt}/{total_fmt} configurations [{elapsed}<{remaining}]"


def write(line: str) -> None:
    """One line on stderr, above any bar on screen, in one write: a signal between the text and its
    newline (tqdm writes them apart) would leave the error line that follows on the same line."""
    tqdm.write(line + "\n", file=sys.stderr, end="")


class _BarLines(logging.Handler):
    """A logging handler that prints each record as one line above the bars."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            write(self.format(record))
        except Exception:
            self.handleError(record)


@contextmanager
def events_on_stderr(*, verbose: bool, dashboard: bool) -> Iterator[None]:
    """``-v``: nncompare's events as ``nncompare: ...`` lines; ``--dashboard``: at least the UI's address.

    Python warnings raised meanwhile go through the same handler, so they do not break the bar either.
    """
    handler = _BarLines()
    handler.setFormatter(logging.Formatter("nncompare: %(message)s"))
    warning_lines = _BarLines()
    warning_lines.setFormatter(logging.Formatter("%(message)s"))
    chosen = "nncompare" if verbose else "nncompare.dashboard" if dashboard else None
    logger = logging.getLogger(chosen) if chosen else None
    warnings_logger = logging.getLogger("py.warnings")
    if logger is not None:
        previous_level = logger.level
        logger.setLevel(logging.INFO)
        logger.addHandler(handler)
    warnings_logger.addHandler(warning_lines)
    logging.captureWarnings(True)
    try:
        yield
    finally:
        logging.captureWarnings(False)
        warnings_logger.removeHandler(warning_lines)
        if logger is not None:
            logger.removeHandler(handler)
            logger.setLevel(previous_level)


class RunBar:
    """One configuration's bar: the stage it is in (starting the engine, placing, epoch k/N with the
    time left), redrawn every second while a stage has nothing to count. Off the terminal it draws nothing."""

    def __init__(self, *, enabled: bool, position: int = 0):
        self.bar = None
        self.enabled, self.position = enabled, position
        self.training_since: float | None = None
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None

    def _open(self, total: int, desc: str) -> None:
        """The bar appears with the first stage, so it never shows an empty one."""
        self.bar = tqdm(
            total=total,
            desc=desc,
            position=self.position,
            leave=False,
            file=sys.stderr,
            dynamic_ncols=True,
            bar_format=_RUN_FORMAT,
        )
        self._ticker = threading.Thread(target=self._tick, name="nncompare-progress", daemon=True)
        self._ticker.start()

    def _tick(self) -> None:
        while not self._stop.wait(TICK_S):
            bar = self.bar
            if bar is not None:
                bar.refresh()

    def _show(self, stage: str, done: int | None = None, total: int | None = None, postfix: str = "") -> None:
        if not self.enabled:
            return
        if self.bar is None:
            self._open(total or 1, stage)
        if total is not None and self.bar.total != total:
            self.bar.total = total
        if done is not None:
            self.bar.n = done
        self.bar.set_description_str(stage, refresh=False)
        self.bar.set_postfix_str(postfix, refresh=False)
        self.bar.refresh()

    def __call__(self, event: dict) -> None:
        stage = event.get("stage")
        epochs = event.get("epochs")
        if stage == "starting":
            self.training_since = None
            self._show(f"starting the {event['engine']} engine", 0, epochs)
        elif stage == "placing":
            shards = event["shards"]
            self._show(f"placing {shards} shard{'s' if shards != 1 else ''}", 0, epochs)
        elif stage == "training":
            self.training_since = time.perf_counter()
            self._show(f"epoch 1/{epochs}", 0, epochs)
        elif stage == "epoch":
            self._show(*epoch_text(event, self.training_since))
        elif stage == "stopping":
            self._show(f"stopping the {event['engine']} engine")

    def restart(self, stage: str) -> None:
        """A new configuration on the same bar: its clock from zero, at ``stage``."""
        self.training_since = None
        if self.bar is not None:
            self.bar.set_description_str(stage, refresh=False)
            self.bar.set_postfix_str("", refresh=False)
            self.bar.reset(total=1)
        self._show(stage, 0, 1)

    def close(self) -> None:
        self._stop.set()
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def epoch_text(event: dict, training_since: float | None) -> tuple[str, int, int, str]:
    """The bar's words after an epoch: the next epoch, the loss and accuracy, and the time left at this pace."""
    done, total = event["epoch"], event["epochs"]
    parts = [f"loss {event['loss']:.4f}"]
    if event.get("accuracy") is not None:
        parts.append(f"accuracy {event['accuracy']:.4f}")
    if done < total and not event.get("stopping") and training_since is not None:
        left = (time.perf_counter() - training_since) / done * (total - done)
        parts.append(f"about {format_duration(left)} left" if left >= 1 else "less than 1 s left")
    stage = "converged" if event.get("stopping") else f"epoch {min(done + 1, total)}/{total}"
    return stage, done, total, ", ".join(parts)


class SweepDisplay:
    """``sweep`` and ``paper`` on a terminal: the configurations done and the time left on one bar, the
    running configuration's stage on a second; its -v lines and each finished configuration above them.

    ``on_event`` takes the sweep's ``configuration`` events and the events each configuration's process
    relays; ``echo`` the sweep's own lines.
    """

    def __init__(self, *, bars: bool, verbose: bool, quiet: bool, dashboard: bool):
        self.verbose, self.quiet, self.dashboard, self.bars = verbose, quiet, dashboard, bars
        self.overall = None
        self.run: RunBar | None = None
        self.prefix = ""

    def _open_bars(self, total: int, desc: str) -> None:
        """The bars appear with the first configuration, not before: checks that fail leave no bar behind."""
        self.overall = tqdm(
            total=total,
            desc=desc,
            position=0,
            leave=False,
            file=sys.stderr,
            dynamic_ncols=True,
            bar_format=_SWEEP_FORMAT,
        )
        self.overall.smoothing = 0  # the mean pace over the sweep, as the finished lines say
        self.run = RunBar(enabled=True, position=1)

    def echo(self, line: str) -> None:
        if not self.quiet:
            write(line)

    def on_event(self, event: dict) -> None:
        stage = event.get("stage")
        if stage == "configuration":
            self.prefix = f"[{event['index']}/{event['total']}] "
            if self.bars and self.overall is None:
                self._open_bars(event["total"], f"{self.prefix}{event['describe']}")
            if self.overall is not None:
                self.overall.total = event["total"]
                self.overall.n = event["index"] - 1
                self.overall.set_description_str(f"{self.prefix}{event['describe']}", refresh=False)
                self.overall.refresh()
                self.run.restart("starting the configuration's process")
        elif stage == "finished":
            if self.overall is not None:
                self.overall.n = event["index"]
                self.overall.refresh()
        elif stage == "log":
            if self.verbose or (self.dashboard and event.get("logger") == "nncompare.dashboard"):
                write(f"nncompare: {self.prefix}{event['message']}")
        elif self.run is not None:
            self.run(event)

    def close(self) -> None:
        if self.run is not None:
            self.run.close()
        if self.overall is not None:
            self.overall.close()
