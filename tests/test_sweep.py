"""Sweeps: grid expansion, one process per configuration, resuming, interruption, bad input."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time

import psutil
import pytest

from nncompare.cli import main
from nncompare.record import read_jsonl
from nncompare.sweep import Run, completed, grid, run_in_subprocess, run_sweep

CLI = [sys.executable, "-c", "from nncompare.cli import main; main()"]


def test_grid_is_the_product_with_repeats_and_no_duplicates(small_spec):
    runs = grid(
        small_spec, engines=["local"], workers=[1, 2, 2], cores=[1], memory=[None, 2**30], epochs=[2, 3], repeats=2
    )
    assert len(runs) == 2 * 2 * 2 * 2  # workers x memory x epochs x repeats, the repeated 2 collapsed
    assert len({r.key for r in runs}) == len(runs)
    assert {r.repeat for r in runs} == {0, 1}
    assert {(r.spec.topology.workers, r.spec.epochs) for r in runs} == {(1, 2), (1, 3), (2, 2), (2, 3)}


def test_a_run_in_its_own_process_returns_the_same_record_as_in_process(small_spec):
    from nncompare.training import run_job

    record = run_in_subprocess(Run(small_spec.with_(convergence_stop=False)), timeout_s=120)
    here = run_job(small_spec.with_(convergence_stop=False))
    assert record["spec_key"] == here["spec_key"]
    assert record["test_accuracy"] == here["test_accuracy"]  # same job, same weights, any process
    assert record["machine"]["hostname"] and record["versions"]["scikit-learn"]


def test_failed_configuration_is_reported_not_recorded_and_can_skip_its_engine(small_spec, tmp_path):
    out = tmp_path / "r.jsonl"
    bad = Run(small_spec, cluster="tcp://127.0.0.1:9")  # the local engine refuses a cluster, in the child
    good = Run(small_spec, repeat=1)
    lines = []
    outcome = run_sweep([bad, good], out, echo=lines.append, timeout_s=120)
    assert outcome.ran == 1 and len(outcome.failed) == 1
    assert "local engine" in outcome.failed[0][1] and "Traceback" not in outcome.failed[0][1]
    assert completed(out) == {good.key}
    outcome = run_sweep([bad, Run(small_spec, repeat=2)], tmp_path / "s.jsonl", give_up_on_engine=True, timeout_s=120)
    assert outcome.ran == 0 and "local" in outcome.skipped_engines


def _our_children(marker: str) -> list[psutil.Process]:
    found = []
    for p in psutil.process_iter(["cmdline"]):
        try:
            if any(marker in part for part in (p.info["cmdline"] or [])):
                found.append(p)
        except psutil.Error:
            continue
    return found


@pytest.mark.slow
def test_ctrl_c_then_rerun_finishes_the_grid_without_repeating_or_losing(tmp_path):
    out = tmp_path / "sweep.jsonl"
    seed = 40000 + os.getpid() % 10000  # marks this test's child processes
    args = [
        *CLI,
        "sweep",
        "--out",
        str(out),
        "--dataset",
        "digits",
        "--hidden",
        "32",
        "--seed",
        str(seed),
        "--workers",
        "1,2",
        "--epochs",
        "15,25",
        "--no-convergence-stop",
    ]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.time() + 120
    while time.time() < deadline and not (out.exists() and out.read_text().count("\n") >= 1):
        time.sleep(0.1)
    assert proc.poll() is None, "the sweep ended before it could be interrupted"
    time.sleep(0.5)  # the next configuration's process is starting or running
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C sends: the whole foreground process group
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130
    # progress lines start with "[i/n]"; click ends the terminal's "^C" line with an empty one
    problem_lines = [line for line in err.splitlines() if line.strip() and not line.startswith("[")]
    assert len(problem_lines) == 1 and problem_lines[0].startswith("nncompare: error: interrupted"), err
    time.sleep(0.5)
    assert not _our_children(f'"seed": {seed}'), "a configuration's process outlived the sweep"

    first = out.read_text().splitlines()
    assert 1 <= len(first) < 4
    assert all(json.loads(line)["spec_key"] for line in first)  # every line whole

    rerun = subprocess.run(args, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert f"{len(first)} of 4 configurations already in" in rerun.stderr
    records = read_jsonl(out)
    assert len(records) == 4
    assert len({(r["spec_key"], r["repeat"]) for r in records}) == 4
    assert out.read_text().splitlines()[: len(first)] == first  # nothing rewritten


@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["sweep", "--out", "{tmp}/x.jsonl", "--workers", "0"], "--workers"),
        (["sweep", "--out", "{tmp}/x.jsonl", "--engines", "local,hadoop"], "unknown engine"),
        (["sweep", "--out", "{tmp}/x.jsonl", "--epochs", "ten"], "--epochs"),
        (["sweep", "--out", "{tmp}/x.jsonl", "--memory", "lots"], "memory"),
        (["sweep", "--out", "{tmp}/x.jsonl", "--cores", "4096"], "cores"),
    ],
)
def test_bad_sweep_input_is_one_line_exit_2_and_writes_nothing(argv, fragment, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        main([a.format(tmp=tmp_path) for a in argv])
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("nncompare: error:") and fragment in err[0]
    assert not (tmp_path / "x.jsonl").exists()


def test_progress_lines_give_the_runs_and_the_time_left(small_spec, tmp_path):
    from nncompare.sweep import Run, run_sweep
    from nncompare.training import run_job

    runs = [Run(small_spec.with_(epochs=e)) for e in (1, 2, 3)]
    lines = []
    outcome = run_sweep(runs, tmp_path / "r.jsonl", echo=lines.append, runner=lambda run, **_: run_job(run.spec))
    assert outcome.ran == 3
    assert re.search(r"^\[1/3\] .*; 2 left, about \d+ s to go$", lines[0]), lines[0]
    assert re.search(r"^\[2/3\] .*; 1 left, about \d+ s to go$", lines[1]), lines[1]
    assert lines[2].startswith("[3/3] ") and lines[2].endswith("; all done")


def test_durations_read_as_a_person_would_say_them():
    from nncompare.sweep import format_duration

    assert [format_duration(s) for s in (4.4, 65, 3725)] == ["4 s", "1 min 05 s", "1 h 02 min"]
