"""The results file a run appends to: its path checked before any work, one whole line per record, and a
finished run's record kept somewhere safe when the file cannot take it.

Why each piece:

- ``--out`` naming a FIFO hung the run for ever after training (an ``open`` for writing blocks
  until a reader comes, and SIGTERM cannot end it), a device swallowed the record or made the
  write fail, and a name longer than the file system allows failed only after training.
  :func:`check_appendable` refuses all of them before the work; :func:`append_jsonl` opens
  without blocking and writes only to a regular file, in case the path changed meanwhile.
- The lock is ``flock`` on the results file itself, with a deadline: no lock file is ever
  created beside the target (there used to be ``PATH.lock``, beside ``/dev/null`` too).
- A last line without its newline that is not JSON is a write some other process cut short;
  it is moved aside (into the rescue folder) before the append, so the append never turns
  it into a bad line in the middle of the file that every reader refuses.
- When the file still cannot take the record after training (a full disk, a file size limit,
  the path replaced by a FIFO), :func:`save_record` writes it to the rescue folder instead and
  says where: a finished run's result is never lost.
"""

from __future__ import annotations

import errno
import fcntl
import json
import logging
import os
import stat
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from nncompare.errors import NNCompareError, UsageError

log = logging.getLogger(__name__)

#: Seconds an append waits for another writer's lock on the same file before it gives up.
LOCK_WAIT_S = 30.0
_KINDS = {
    stat.S_IFIFO: "a FIFO (named pipe)",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFSOCK: "a socket",
    stat.S_IFDIR: "a folder",
}


class RecordNotWritten(NNCompareError):
    """The run finished, but its record could not be written where asked; it was saved elsewhere (exit 1)."""


def _kind(mode: int) -> str:
    return _KINDS.get(stat.S_IFMT(mode), "not a regular file")


def _reason(exc: OSError) -> str:
    return (exc.strerror or type(exc).__name__).lower() if exc.errno != errno.ENAMETOOLONG else "the name is too long"


def _stat(path: Path, flag: str, shown) -> os.stat_result | None:
    """``os.stat`` (following links), None where nothing is there; any other failure is one line."""
    try:
        return os.stat(path)
    except (FileNotFoundError, NotADirectoryError):  # a file on the way is named by check_writable_dir
        return None
    except OSError as exc:
        raise UsageError(f"{flag} {shown}: {_reason(exc)}; choose another path") from None


def check_writable_dir(path: str | os.PathLike, flag: str = "--out") -> None:
    """Fail now, before any work, if files could not be created in ``path`` (or the folders to make it)."""
    wanted = Path(path).absolute()
    _check_name_lengths(wanted, flag, path)
    existing = wanted
    while (found := _stat(existing, flag, path)) is None and existing != existing.parent:
        existing = existing.parent
    if found is None or not stat.S_ISDIR(found.st_mode):
        what = "a file" if found is not None and stat.S_ISREG(found.st_mode) else _kind(found.st_mode if found else 0)
        raise UsageError(f"{flag} {path}: {existing} is {what}, not a folder; choose another path")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UsageError(f"{flag} {path}: cannot write in {existing}; choose a folder you can write to")


def _check_name_lengths(wanted: Path, flag: str, shown) -> None:
    """Every name no longer than its file system allows, and the whole path within the system's limit."""
    existing = wanted
    while not os.path.isdir(existing) and existing != existing.parent:
        existing = existing.parent
    try:
        name_max = os.pathconf(existing, "PC_NAME_MAX")
        path_max = os.pathconf(existing, "PC_PATH_MAX")
    except (OSError, ValueError):
        name_max, path_max = 255, 4096
    for name in wanted.parts[1:]:
        if len(os.fsencode(name)) > name_max:
            raise UsageError(
                f"{flag}: the name {name[:40]}... is {len(os.fsencode(name))} bytes, more than the "
                f"{name_max} its file system allows; choose a shorter name"
            )
    if len(os.fsencode(str(wanted))) >= path_max:
        raise UsageError(f"{flag}: the path is longer than the {path_max} bytes the system allows; shorten it")


def check_appendable(path: str | os.PathLike, flag: str = "--out") -> None:
    """Fail now, before training, if a record could not be appended to ``path`` afterwards.

    ``path`` must be a regular file that can be written, or a new name in a folder that can
    be written (or created); never a FIFO, a device, a socket or a name too long for its disk.
    """
    target = Path(path)
    _check_name_lengths(target.absolute(), flag, path)
    found = _stat(target, flag, path)
    if found is None:
        check_writable_dir(target.parent, flag)
        return
    if stat.S_ISDIR(found.st_mode):
        raise UsageError(f"{flag} {path} is a folder; give a file name such as {target / 'results.jsonl'}")
    if not stat.S_ISREG(found.st_mode):
        raise UsageError(f"{flag} {path} is {_kind(found.st_mode)}; give a regular file such as results.jsonl")
    if not os.access(target, os.W_OK):
        raise UsageError(f"{flag} {path}: the file is not writable; choose another file")


def _open_regular(path: Path) -> int:
    """An fd to append to ``path``, created if missing; never blocks, and only ever a regular file."""
    flags = os.O_APPEND | os.O_CREAT | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
    try:
        fd = os.open(path, os.O_RDWR | flags, 0o644)
    except PermissionError:  # a write-only file: append without looking at its last line
        fd = os.open(path, os.O_WRONLY | flags, 0o644)
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise OSError(errno.EINVAL, f"it is {_kind(mode)}, not a regular file")
    return fd


def _lock(fd: int, wait_s: float) -> None:
    """``flock`` the file itself, waiting at most ``wait_s`` for another writer."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() > deadline:
                raise OSError(errno.ETIMEDOUT, f"another process kept the file locked for {wait_s:g} s") from None
            time.sleep(0.05)
        except OSError as exc:  # a file system without locks: one write with O_APPEND is still whole
            if exc.errno in (errno.ENOLCK, errno.EOPNOTSUPP, errno.EINVAL):
                return
            raise


def _last_line_start(fd: int, size: int, chunk: int = 1 << 16) -> int:
    """The offset just after the file's last newline (0 when it has none)."""
    end = size
    while end > 0:
        start = max(0, end - chunk)
        block = os.pread(fd, end - start, start)
        cut = block.rfind(b"\n")
        if cut >= 0:
            return start + cut + 1
        end = start
    return 0


def _fence_last_line(fd: int, path: Path, size: int) -> bytes:
    """What must precede the new line: a newline after a whole last line that lacks one; a torn last
    line (not JSON) is moved aside first, so it cannot become a bad line inside the file."""
    if size == 0:
        return b""
    try:
        if os.pread(fd, 1, size - 1) == b"\n":
            return b""
        start = _last_line_start(fd, size)
        tail = os.pread(fd, size - start, start)
    except OSError:  # a write-only file: keep lines apart, blindly
        return b"\n"
    try:
        json.loads(tail.decode("utf-8"))
        return b"\n"  # a whole line: keep it, its reader judges it
    except (UnicodeDecodeError, ValueError):
        pass
    line = _count_lines(fd, start) + 1
    kept = rescue_bytes(tail, "torn-line", ".txt")
    os.ftruncate(fd, start)
    log.warning(
        "%s:%d held a torn line (%d bytes, not JSON) without its newline; %s",
        path,
        line,
        len(tail),
        f"moved it to {kept}" if kept else "removed it (no folder could keep it)",
    )
    return b""


def _count_lines(fd: int, end: int, chunk: int = 1 << 20) -> int:
    lines, offset = 0, 0
    while offset < end:
        block = os.pread(fd, min(chunk, end - offset), offset)
        if not block:
            break
        lines += block.count(b"\n")
        offset += len(block)
    return lines


def append_jsonl(path: str | os.PathLike, record: dict, *, lock_wait_s: float | None = None) -> None:
    """Append one record as one line, in one write, under ``flock`` on the file; fsync'd.

    A line is written whole or not at all (a short write is cut off again), so an interrupted
    run or two concurrent runs never leave a half-written line that would break readers.
    Raises ``OSError`` when the file cannot take it (see :func:`save_record`).
    """
    line = (json.dumps(record, sort_keys=False, separators=(",", ":")) + "\n").encode()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = _open_regular(path)
    try:
        _lock(fd, LOCK_WAIT_S if lock_wait_s is None else lock_wait_s)
        data = _fence_last_line(fd, path, os.fstat(fd).st_size) + line
        size = os.fstat(fd).st_size
        try:
            written = os.write(fd, data)
            if written != len(data):
                raise OSError(errno.ENOSPC, "short write (no space left on device?)")
            os.fsync(fd)
        except OSError:
            try:
                os.ftruncate(fd, size)  # no half line left behind
            except OSError:
                pass
            raise
    finally:
        os.close(fd)  # releases the lock


def rescue_dirs() -> list[Path]:
    """Where a record that its file could not take is kept: the user cache, then the temporary folder."""
    from nncompare.data import cache_dir

    dirs = []
    try:
        dirs.append(cache_dir() / "rescued")
    except Exception:  # noqa: BLE001 - no cache folder is no reason to lose a record
        pass
    dirs.append(Path(tempfile.gettempdir()) / f"nncompare-rescued-{os.getuid()}")
    return dirs


def rescue_bytes(data: bytes, stem: str, suffix: str) -> Path | None:
    """Write ``data`` to a new file in the first rescue folder that takes it; its path, or None."""
    stamp = f"{stem}-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}-{os.getpid()}"
    for folder in rescue_dirs():
        try:
            folder.mkdir(parents=True, exist_ok=True, mode=0o700)
            target, fd = _new_file(folder, stamp, suffix)
        except OSError:
            continue
        try:
            if os.write(fd, data) == len(data):
                os.fsync(fd)
                return target
        except OSError:
            pass
        finally:
            os.close(fd)
        try:
            target.unlink()
        except OSError:
            pass
    return None


def _new_file(folder: Path, stamp: str, suffix: str) -> tuple[Path, int]:
    """A file of our own in ``folder`` named after ``stamp`` (-1, -2, ... when the name is taken)."""
    for n in range(100):
        target = folder / f"{stamp}{f'-{n}' if n else ''}{suffix}"
        try:
            return target, os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, f"no free name for {stamp} in {folder}")


@dataclass(frozen=True)
class Saved:
    """Where a record went: ``path`` asked for, or a rescue file (``problem`` says why), or nowhere (None)."""

    path: Path | None
    problem: str | None = None


def save_record(path: str | os.PathLike, record: dict) -> Saved:
    """Append ``record`` to ``path``; where that fails, write it to a rescue file instead. Never raises OSError."""
    try:
        append_jsonl(path, record)
        return Saved(Path(path))
    except OSError as exc:
        problem = f"{exc.strerror or exc}".rstrip(".")
    line = (json.dumps(record, separators=(",", ":")) + "\n").encode()
    return Saved(rescue_bytes(line, "record", ".jsonl"), problem)


def lost_record_error(out, saved: Saved) -> RecordNotWritten:
    """The one line for a finished run whose record its file could not take."""
    if saved.path is None:
        return RecordNotWritten(
            f"the run finished, but its record could not be appended to {out} ({saved.problem}), nor saved "
            "anywhere else; it is the JSON line printed on stdout"
        )
    return RecordNotWritten(
        f"the run finished, but its record could not be appended to {out} ({saved.problem}); "
        f"it was saved to {saved.path}: append it with: cat {saved.path} >> {out}"
    )
