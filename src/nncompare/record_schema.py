"""The result record's documented schema, checked on every line before a reader uses it.

``report``, ``plot``, ``explain`` and ``sweep``'s resume check read results files that
people edit, concatenate and copy between machines. A line with the right keys but the
wrong types used to crash them deep inside a table or a figure (and ``plot`` left half its
figures behind). :func:`read_records` checks every line first and names the first bad one
by file and line, in one sentence, before anything is drawn or written.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

from nncompare.errors import UsageError
from nncompare.record import PHASES


class RecordError(UsageError):
    """A results file holds a line that is not a valid nncompare record."""


def _number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _count(v, least: int = 0) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= least


def _seconds(v) -> bool:
    return _number(v) and v >= 0


def _fraction(v) -> bool:
    return _number(v) and 0 <= v <= 1


def _list_of(check):
    return lambda v: isinstance(v, list) and all(check(x) for x in v)


def _optional(check):
    return lambda v: v is None or check(v)


def _peaks(v) -> bool:
    return isinstance(v, dict) and _count(v.get("driver")) and _count(v.get("workers"))


def _phases(v) -> bool:
    return isinstance(v, dict) and all(_seconds(v.get(p)) for p in PHASES)


def _round(v) -> bool:
    return isinstance(v, dict) and _seconds(v.get("wall_s", 0.0)) and _list_of(_seconds)(v.get("worker_compute_s", []))


def _paper(v) -> bool:
    return (
        isinstance(v, dict) and isinstance(v.get("config"), str) and _list_of(lambda e: _count(e, 1))(v.get("columns"))
    )


#: The README's stable keys, each with what its value must be.
REQUIRED = {
    "engine": (lambda v: isinstance(v, str) and v.isidentifier(), "an engine's name"),
    "dataset": (lambda v: isinstance(v, str) and v != "", "a dataset name"),
    "workers": (lambda v: _count(v, 1), "a whole number >= 1"),
    "cores_per_worker": (lambda v: _count(v, 1), "a whole number >= 1"),
    "memory_per_worker_bytes": (_optional(lambda v: _count(v, 1)), "a byte count or null"),
    "epochs": (lambda v: _count(v, 1), "a whole number >= 1"),
    "epochs_run": (lambda v: _count(v, 1), "a whole number >= 1"),
    "wall_s": (_seconds, "seconds (a finite number >= 0)"),
    "startup_s": (_seconds, "seconds (a finite number >= 0)"),
    "epoch_s": (_list_of(_seconds), "a list of seconds"),
    "phases_s": (_phases, f"an object of seconds with keys {', '.join(PHASES)}"),
    "test_accuracy": (_fraction, "a fraction between 0 and 1"),
    "peak_rss_bytes": (_peaks, "an object with byte counts 'driver' and 'workers'"),
    "versions": (lambda v: isinstance(v, dict), "an object"),
    "machine": (lambda v: isinstance(v, dict), "an object"),
    "commit": (_optional(lambda v: isinstance(v, str)), "a string or null"),
}
#: Keys the readers use when present.
OPTIONAL = {
    "spec_key": (lambda v: isinstance(v, str), "a string"),
    "repeat": (_count, "a whole number >= 0"),
    "spec": (lambda v: isinstance(v, dict), "an object"),
    "accuracy_curve": (_list_of(_fraction), "a list of fractions"),
    "loss_curve": (_list_of(_number), "a list of numbers"),
    "rounds": (_list_of(_round), "a list of rounds with seconds in wall_s and worker_compute_s"),
    "paper": (_paper, "an object with 'config' and a list of epoch 'columns'"),
    "timestamp": (lambda v: isinstance(v, str), "a string"),
}


def problem(record) -> str | None:
    """What is wrong with ``record`` (None when it is a valid record)."""
    if not isinstance(record, dict):
        return f"it is a JSON {type(record).__name__}, not an object"
    missing = [k for k in REQUIRED if k not in record]
    if missing:
        return f"it lacks the key{'s' if len(missing) > 1 else ''} {', '.join(missing)}"
    for key, (check, what) in (*REQUIRED.items(), *OPTIONAL.items()):
        if key in record and not check(record[key]):
            return f"{key} is {json.dumps(record[key])[:40]}, not {what}"
    if len(record["epoch_s"]) != record["epochs_run"]:
        return f"epoch_s has {len(record['epoch_s'])} entries for {record['epochs_run']} epochs run"
    return None


def results_file(path: str | os.PathLike) -> Path:
    """A results file, or a report directory's results.jsonl; must exist."""
    p = Path(path)
    if p.is_dir():
        p = p / "results.jsonl"
    if not p.is_file():
        raise UsageError(f"no results file at {p}; give a JSON-lines file written by nncompare run --out or sweep")
    return p


def read_records(path: str | os.PathLike) -> list[dict]:
    """Every record of a results file, each checked; the first bad line is a :class:`RecordError`.

    A last line without its newline that is not JSON (or not even UTF-8) is a write cut short by
    a killed writer: it is skipped, and the next append moves it aside
    (:func:`nncompare.outfile.append_jsonl`), so an append never makes the file unreadable.
    """
    p = results_file(path)
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read {p}: {exc.strerror}") from None
    lines = data.split(b"\n")
    records = []
    for number, raw in enumerate(lines, 1):
        if not raw.strip():
            continue
        torn = number == len(lines)  # the text after the last newline
        try:
            record = json.loads(raw.decode("utf-8"))
        except UnicodeDecodeError:
            if torn:
                continue
            raise RecordError(f"{p}:{number}: the line is not UTF-8 text; remove it or restore the file") from None
        except json.JSONDecodeError:
            if torn:
                continue
            raise RecordError(f"{p}:{number}: the line is not JSON; remove it or restore the file") from None
        why = problem(record)
        if why:
            raise RecordError(f"{p}:{number}: not an nncompare record: {why}; remove or fix that line")
        records.append(record)
    return records
