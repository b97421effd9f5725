"""A finished run's result is never lost: ``--out`` checked before training, the record kept elsewhere when the
file still cannot take it afterwards, and no lock file beside anything (issue 26, item 3).

The faults are real: a FIFO, a character device, a name too long for the file system, a file size limit
(``RLIMIT_FSIZE``, which makes the kernel refuse the write as a full disk would) and a FIFO that takes the
file's place while the run trains.
"""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
import time

import pytest

from nncompare.cli import main

CLI = [sys.executable, "-c", "from nncompare.__main__ import main; main()"]
QUICK_RUN = ["run", "--dataset", "digits", "--epochs", "2", "--hidden", "8", "-q"]


def refused(args, capsys) -> tuple[int, list[str]]:
    with pytest.raises(SystemExit) as exit_:
        main(args)
    return exit_.value.code, capsys.readouterr().err.splitlines()


def test_a_fifo_as_out_is_refused_before_training(tmp_path, capsys):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    code, lines = refused([*QUICK_RUN, "--out", str(fifo)], capsys)
    assert (code, lines) == (
        2,
        [f"nncompare: error: --out {fifo} is a FIFO (named pipe); give a regular file such as results.jsonl"],
    )


def test_a_device_as_out_is_refused_before_training(capsys):
    code, lines = refused([*QUICK_RUN, "--out", "/dev/null"], capsys)
    assert (code, lines) == (
        2,
        ["nncompare: error: --out /dev/null is a character device; give a regular file such as results.jsonl"],
    )


def test_a_name_longer_than_the_file_system_allows_is_refused_before_training(tmp_path, capsys):
    code, lines = refused([*QUICK_RUN, "--out", str(tmp_path / ("n" * 300))], capsys)
    assert code == 2 and len(lines) == 1 and "more than the 255 its file system allows" in lines[0], lines


def test_a_folder_under_a_name_too_long_is_refused_before_training(tmp_path, capsys):
    code, lines = refused([*QUICK_RUN, "--out", str(tmp_path / ("d" * 300) / "results.jsonl")], capsys)
    assert code == 2 and len(lines) == 1 and "more than the 255 its file system allows" in lines[0], lines


def test_no_lock_file_is_left_beside_the_results(tmp_path, capsys):
    main([*QUICK_RUN, "--out", str(tmp_path / "out.jsonl")])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.jsonl"]


def _limit_file_size(limit: int):
    def preexec():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit then fails with EFBIG
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return preexec


@pytest.fixture
def rescue_cache(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    monkeypatch.setenv("NNCOMPARE_CACHE_DIR", str(cache))
    return cache / "rescued"


def test_a_record_the_disk_refuses_after_training_is_saved_and_named_in_one_line(tmp_path, rescue_cache):
    out = tmp_path / "out.jsonl"
    out.write_bytes(b"\n" * (1 << 20))  # a file already at the size limit: the next byte is refused
    result = subprocess.run(
        [*CLI, *QUICK_RUN, "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=_limit_file_size(1 << 20),
        env=os.environ.copy(),
    )
    saved = sorted(rescue_cache.glob("record-*.jsonl"))
    assert (result.returncode, result.stderr.count("\n"), len(saved), str(saved[0]) in result.stderr) == (
        1,
        1,
        1,
        True,
    ), result.stderr


def test_the_rescued_record_is_the_finished_runs(tmp_path, rescue_cache):
    out = tmp_path / "out.jsonl"
    out.write_bytes(b"\n" * (1 << 20))
    subprocess.run(
        [*CLI, *QUICK_RUN, "--out", str(out)], capture_output=True, timeout=120, preexec_fn=_limit_file_size(1 << 20)
    )
    from nncompare.record_schema import read_records

    (saved,) = rescue_cache.glob("record-*.jsonl")
    assert [r["epochs_run"] for r in read_records(saved)] == [2]


def test_a_fifo_that_replaces_out_during_training_neither_hangs_nor_loses_the_record(tmp_path, rescue_cache):
    out = tmp_path / "out.jsonl"
    proc = subprocess.Popen(
        [*CLI, "run", "--dataset", "digits", "--epochs", "400", "--no-convergence-stop", "-v", "--out", str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    while "round 3 " not in proc.stderr.readline():
        assert time.monotonic() < deadline and proc.poll() is None, "the run never reached round 3"
    os.mkfifo(out)  # no reader will ever come
    try:
        _, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    errors = [line for line in err.splitlines() if line.startswith("nncompare: error:")]
    assert (proc.returncode, len(errors), len(list(rescue_cache.glob("record-*.jsonl")))) == (1, 1, 1), err
