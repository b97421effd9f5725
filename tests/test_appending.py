"""Appends never make a results file unreadable, whatever its last line held (issue 26, item 7).

A last line without its newline is what a writer killed mid-write leaves. Before the append the readers
skip it; after the append they must still read every record, and still name a bad line as FILE:LINE.
"""

from __future__ import annotations

import fcntl
import json
import os

import pytest

from nncompare import outfile
from nncompare.outfile import append_jsonl, save_record
from nncompare.record_schema import RecordError, read_records

#: What a torn last line may hold: a record cut short, bytes that are not UTF-8, a lone brace, blanks and a cut.
TORN = {
    "record-cut-short": b'{"engine":"local","dataset":"dig',
    "not-utf-8": b"\xff\xfe\x00garbage",
    "lone-brace": b"{",
    "cut-after-a-key": b'{"engine"',
}


@pytest.fixture(scope="module")
def record(digits):
    from nncompare.job import JobSpec, ModelSpec
    from nncompare.training import run_job

    return run_job(JobSpec(dataset="digits", epochs=1, model=ModelSpec(hidden_layer_sizes=(8,))), dataset=digits)


@pytest.fixture
def rescued(tmp_path, monkeypatch):
    monkeypatch.setenv("NNCOMPARE_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache" / "rescued"


def results_with_tail(tmp_path, record, tail: bytes):
    path = tmp_path / "results.jsonl"
    path.write_bytes(json.dumps(record).encode() + b"\n" + tail)
    return path


@pytest.mark.parametrize("tail", TORN.values(), ids=TORN)
def test_an_append_after_a_torn_last_line_leaves_every_record_readable(tail, tmp_path, record, rescued):
    path = results_with_tail(tmp_path, record, tail)
    append_jsonl(path, record)
    assert len(read_records(path)) == 2


@pytest.mark.parametrize("tail", TORN.values(), ids=TORN)
def test_the_torn_line_is_kept_in_the_rescue_folder(tail, tmp_path, record, rescued):
    path = results_with_tail(tmp_path, record, tail)
    append_jsonl(path, record)
    assert [p.read_bytes() for p in rescued.glob("torn-line-*.txt")] == [tail]


def test_a_whole_record_without_its_newline_is_kept_in_the_file(tmp_path, record, rescued):
    path = results_with_tail(tmp_path, record, json.dumps(record).encode())
    append_jsonl(path, record)
    assert len(read_records(path)) == 3


def test_a_torn_line_is_named_in_one_warning(tmp_path, record, rescued, caplog):
    path = results_with_tail(tmp_path, record, TORN["record-cut-short"])
    append_jsonl(path, record)
    assert [r.getMessage().split(" held ")[0] for r in caplog.records] == [f"{path}:2"]


def test_a_bad_line_inside_the_file_is_still_named_by_file_and_line(tmp_path, record, rescued):
    path = tmp_path / "results.jsonl"
    path.write_bytes(json.dumps(record).encode() + b"\nnot json\n")
    append_jsonl(path, record)
    with pytest.raises(RecordError, match=rf"^{path}:2: the line is not JSON"):
        read_records(path)


def test_a_file_with_only_a_torn_line_takes_the_record(tmp_path, record, rescued):
    path = tmp_path / "results.jsonl"
    path.write_bytes(TORN["not-utf-8"])
    append_jsonl(path, record)
    assert len(read_records(path)) == 1


def test_a_writer_that_keeps_the_file_locked_sends_the_record_to_the_rescue_folder(
    tmp_path, record, rescued, monkeypatch
):
    monkeypatch.setattr(outfile, "LOCK_WAIT_S", 0.5)
    path = tmp_path / "results.jsonl"
    path.write_text("")
    with open(path, "a") as holder:
        fcntl.flock(holder, fcntl.LOCK_EX)
        saved = save_record(path, record)
    assert (saved.path.parent, os.path.getsize(path)) == (rescued, 0)
