"""Run a command as a user at a terminal would: stderr on a pseudo-terminal of a given size, stdout apart."""

from __future__ import annotations

import errno
import fcntl
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
import time
from dataclasses import dataclass

NNCOMPARE = [sys.executable, "-m", "nncompare"]


@dataclass
class Seen:
    returncode: int
    screen: str  # what reached the terminal (stderr), raw
    stdout: str
    cols: int = 120

    def frames(self) -> list[str]:
        """Each redraw of a line (split at carriage returns) and each printed line, in order, without blanks."""
        text = re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", self.screen)
        found = []
        for line in text.replace("\r\n", "\n").split("\n"):
            found += [frame.rstrip() for frame in line.split("\r") if frame.strip()]
        return found

    def lines(self) -> list[str]:
        """What stays on the screen at the end (bars gone), as a terminal emulator (pyte) draws it."""
        import pyte

        screen = pyte.Screen(self.cols, 500)
        pyte.Stream(screen).feed(self.screen)
        return [line.rstrip() for line in screen.display if line.strip()]


def run_on_terminal(*args: str, env: dict | None = None, cols: int = 120, timeout: float = 300) -> Seen:
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, cols, 0, 0))
    proc = subprocess.Popen(
        [*NNCOMPARE, *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=slave,
        env={**os.environ, **(env or {})},
    )
    os.close(slave)
    chunks, deadline = [], time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.5)
            if not ready:
                if proc.poll() is not None:
                    break
                continue
            try:
                data = os.read(master, 65536)
            except OSError as exc:  # EIO: every holder of the terminal's other side has closed it
                if exc.errno != errno.EIO:
                    raise
                break
            if not data:
                break
            chunks.append(data)
        stdout = proc.communicate(timeout=max(1.0, deadline - time.monotonic()))[0]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
    return Seen(proc.returncode, b"".join(chunks).decode(errors="replace"), stdout.decode(), cols)
