"""The results file: whole lines under concurrent writers, a torn last line skipped."""

from __future__ import annotations

import multiprocessing

from nncompare.record import append_jsonl, read_jsonl


def _append_many(path, worker):
    for i in range(50):
        append_jsonl(path, {"worker": worker, "i": i, "pad": "x" * 5000})


def test_append_jsonl_lines_stay_whole_under_concurrent_writers(tmp_path):
    path = tmp_path / "r.jsonl"
    procs = [multiprocessing.Process(target=_append_many, args=(path, w)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    records = read_jsonl(path)
    assert len(records) == 200 and len(path.read_text().splitlines()) == 200


def test_read_jsonl_skips_a_torn_last_line(tmp_path):
    path = tmp_path / "r.jsonl"
    append_jsonl(path, {"a": 1})
    with open(path, "a") as fh:
        fh.write('{"a": 2, "b"')
    assert read_jsonl(path) == [{"a": 1}]
    append_jsonl(path, {"a": 3})  # the torn line is fenced off, not glued to the new one
    assert read_jsonl(path) == [{"a": 1}, {"a": 3}]
