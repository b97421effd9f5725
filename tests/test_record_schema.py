"""Readers check every record against the documented schema and name a bad one by file and line."""

from __future__ import annotations

import json

import pytest

from nncompare.cli import main
from nncompare.job import JobSpec, ModelSpec
from nncompare.record import append_jsonl
from nncompare.record_schema import RecordError, problem, read_records
from nncompare.training import run_job


@pytest.fixture(scope="module")
def record():
    return run_job(JobSpec(dataset="digits", epochs=2, model=ModelSpec(hidden_layer_sizes=(8,))))


def test_a_real_record_is_valid(record):
    assert problem(record) is None


@pytest.mark.parametrize(
    "change, fragment",
    [
        ({"wall_s": "fast"}, "wall_s"),
        ({"test_accuracy": 1.5}, "test_accuracy"),
        ({"phases_s": {"place": 1.0}}, "phases_s"),
        ({"epoch_s": [0.1]}, "epoch_s has 1 entries for 2"),
        ({"engine": "not an engine name"}, "engine"),
        ({"rounds": [{"wall_s": None}]}, "rounds"),
        ({"workers": True}, "workers"),
    ],
)
def test_wrong_types_are_named(record, change, fragment):
    assert fragment in problem({**record, **change})


def one_line_exit_2(argv, capsys) -> str:
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert exit_.value.code == 2 and len(err) == 1 and err[0].startswith("nncompare: error: "), err
    return err[0]


@pytest.mark.parametrize("bad_line", [b"\xff\xfe\n", b"[1, 2]\n", b'{"engine": "local"}\n', b"{not json\n"])
def test_sweep_resume_check_names_the_bad_line(bad_line, record, tmp_path, capsys):
    out = tmp_path / "sweep.jsonl"
    append_jsonl(out, record)
    with open(out, "ab") as fh:
        fh.write(bad_line)
    before = out.read_bytes()
    message = one_line_exit_2(["sweep", "--out", str(out), "--dataset", "digits", "--epochs", "1"], capsys)
    assert f"{out}:2:" in message
    assert out.read_bytes() == before


def test_plot_with_a_bad_record_draws_nothing(record, tmp_path, capsys):
    results = tmp_path / "results.jsonl"
    append_jsonl(results, record)
    append_jsonl(results, {**record, "epoch_s": "slow"})
    figures = tmp_path / "figures"
    message = one_line_exit_2(["plot", str(results), "--out", str(figures)], capsys)
    assert f"{results}:2:" in message and "epoch_s" in message
    assert not figures.exists()


def test_a_torn_last_line_is_skipped_but_a_torn_middle_line_is_not(record, tmp_path):
    path = tmp_path / "r.jsonl"
    path.write_text(json.dumps(record) + "\n" + '{"engine": "lo')
    assert len(read_records(path)) == 1
    path.write_text('{"engine": "lo\n' + json.dumps(record) + "\n")
    with pytest.raises(RecordError, match=":1:"):
        read_records(path)
