"""What a user sees on the terminal: the bar's stages, -v lines that keep the bar whole, a quiet Spark.

Real runs, stderr on a pseudo-terminal (tests/terminal.py) where the bar needs one, captured
otherwise; the Spark runs start a real local SparkSession.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from terminal import NNCOMPARE, run_on_terminal

SMALL = ["--dataset", "digits", "--hidden", "8", "--epochs", "3", "--no-convergence-stop"]


def nncompare(*args, env=None, timeout=600):
    import os

    return subprocess.run(
        [*NNCOMPARE, *args], capture_output=True, text=True, env={**os.environ, **(env or {})}, timeout=timeout
    )


def test_the_bar_names_each_stage_and_the_time_left():
    seen = run_on_terminal("run", *SMALL, "--workers", "2")
    assert seen.returncode == 0, seen.screen
    frames = seen.frames()
    stages = [f.split(" |")[0] for f in frames if " epochs [" in f]
    # in this order, each at least once
    wanted = ["starting the local engine", "placing 2 shards", "epoch 1/3", "epoch 2/3", "epoch 3/3", "stopping the"]
    positions = [next(i for i, s in enumerate(stages) if s.startswith(w)) for w in wanted]
    assert positions == sorted(positions), stages
    after_first = next(f for f in frames if f.startswith("epoch 2/3"))
    assert re.search(
        r"1/3 epochs \[.*loss \d\.\d{4}, accuracy \d\.\d{4}, (about \d+ s|less than 1 s) left\]", after_first
    )
    assert "test accuracy" in seen.stdout
    assert seen.lines() == [], "the bar leaves nothing behind on the screen"


def test_verbose_lines_are_whole_lines_above_the_bar():
    seen = run_on_terminal("run", *SMALL, "--workers", "2", "-v")
    assert seen.returncode == 0, seen.screen
    kept = seen.lines()
    assert kept[0].startswith("nncompare: local engine started in ")
    assert all(line.startswith("nncompare: ") for line in kept), kept
    assert [line for line in kept if line.startswith("nncompare: round ")] == [
        line for line in kept if re.fullmatch(r"nncompare: round \d \(epoch \d\): [0-9.]+ s, compute .*", line)
    ]
    assert len([line for line in kept if "round" in line]) == 3
    assert not any("{" in line or "None" in line for line in kept), "readable lines, no dicts, no empty URLs"


def test_quiet_and_off_a_terminal_nothing_but_the_result():
    quiet = run_on_terminal("run", *SMALL, "-q")
    assert quiet.returncode == 0 and quiet.screen == "" and "test accuracy" in quiet.stdout
    piped = nncompare("run", *SMALL)
    assert piped.returncode == 0 and piped.stderr == ""


def test_quiet_and_verbose_print_the_events_without_a_bar():
    seen = run_on_terminal("run", *SMALL, "-v", "-q")
    assert seen.returncode == 0, seen.screen
    assert not [frame for frame in seen.frames() if " epochs [" in frame]
    assert seen.screen.count("\r\n") == len(seen.lines()) == 5  # start, placement, 3 rounds: whole lines only


def test_a_sweep_shows_the_configurations_and_inside_the_running_one(tmp_path):
    out = tmp_path / "s.jsonl"
    seen = run_on_terminal("sweep", *SMALL, "--workers", "1,2", "-o", str(out), cols=250)  # no line wraps
    assert seen.returncode == 0, seen.screen
    frames = seen.frames()
    overall = [f for f in frames if "configurations [" in f]
    assert any(f.startswith("[1/2] local digits 1w") and "0/2 configurations" in f for f in overall)
    assert any(f.startswith("[2/2] local digits 2w") and "1/2 configurations" in f for f in overall)
    inner = [f.split(" |")[0] for f in frames if " epochs [" in f]
    for stage in ("starting the configuration's process", "starting the local engine", "placing 2 shards", "epoch 3/3"):
        assert stage in inner, inner
    kept = seen.lines()
    assert [line[:6] for line in kept] == ["[1/2] ", "[2/2] ", "2 ran,"], kept
    assert len(out.read_text().splitlines()) == 2


def test_a_sweep_relays_each_configurations_verbose_lines(tmp_path):
    done = nncompare("sweep", *SMALL, "--workers", "1,2", "-o", str(tmp_path / "s.jsonl"), "-v")
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    assert any(line.startswith("nncompare: [1/2] local engine started in ") for line in lines)
    assert any(line.startswith("nncompare: [2/2] placed 2 shards") for line in lines)
    assert len([line for line in lines if re.match(r"nncompare: \[\d/2\] round \d \(epoch \d\)", line)]) == 6
    quiet = nncompare("sweep", *SMALL, "--workers", "1,2,3", "-o", str(tmp_path / "s.jsonl"), "-q")
    assert quiet.returncode == 0 and quiet.stderr.splitlines() == [
        f"1 ran, 2 already done, 0 failed; results in {tmp_path / 's.jsonl'}"
    ]


@pytest.mark.slow
def test_spark_prints_nothing_of_its_own_and_its_log_is_named(fashion_dir, tmp_path):
    env = {"NNCOMPARE_LOG_DIR": str(tmp_path / "logs")}
    args = ["run", "--engine", "spark", "--workers", "2", "--epochs", "2", "--train-samples", "4000"]
    args += ["--data-dir", str(fashion_dir)]
    quiet = run_on_terminal(*args, "-q", env=env)
    assert quiet.returncode == 0, quiet.screen
    assert quiet.screen == "", quiet.screen
    assert quiet.stdout.startswith("spark on fashion-mnist: 2 workers") and "test accuracy" in quiet.stdout

    verbose = nncompare(*args, "-v", "--json", env=env)
    assert verbose.returncode == 0, verbose.stderr
    lines = verbose.stderr.splitlines()
    assert all(line.startswith("nncompare: ") for line in lines), verbose.stderr
    [named] = [line for line in lines if line.startswith("nncompare: spark engine started in ")]
    log_file = Path(named.split("; its log: ")[1])
    record = json.loads(verbose.stdout)
    assert record["engine_info"]["log_file"] == str(log_file)
    assert log_file.parent.parent == tmp_path / "logs"
    text = log_file.read_text()
    assert "SparkContext: Running Spark version" in text  # log4j's lines
    assert "FutureWarning" not in verbose.stderr and "WARN" not in verbose.stderr


def test_python_dash_m_is_the_command():
    import nncompare

    done = subprocess.run([sys.executable, "-m", "nncompare", "--version"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.strip() == f"nncompare, version {nncompare.__version__}"


@pytest.mark.slow
def test_a_quiet_spark_sweep_prints_its_summary_alone_and_passes_spark_conf(fashion_dir, tmp_path):
    out = tmp_path / "s.jsonl"
    args = ["sweep", "--engine", "spark", "--workers", "1", "--epochs", "1", "--train-samples", "2000", "-q"]
    seen = run_on_terminal(
        *args, "--spark-conf", "spark.executor.memory=1200m", "--data-dir", str(fashion_dir), "-o", str(out), cols=250
    )
    assert seen.returncode == 0, seen.screen
    assert seen.lines() == [f"1 ran, 0 already done, 0 failed; results in {out}"]
    [record] = [json.loads(line) for line in out.read_text().splitlines()]
    assert record["engine_info"]["settings"]["spark.executor.memory"] == "1200m"


def test_a_sweep_relays_each_configurations_dashboard(tmp_path):
    """--dashboard is the same word on sweep as on run: each configuration starts its UI and its URL is shown."""
    out = tmp_path / "s.jsonl"
    done = nncompare("sweep", "--engine", "dask", *SMALL[:-3], "--epochs", "1", "--dashboard", "-q", "-o", str(out))
    assert done.returncode == 0, done.stderr
    [url_line, summary] = done.stderr.splitlines()
    assert re.fullmatch(r"nncompare: \[1/1\] dashboard: http://127\.0\.0\.1:\d+/status", url_line), url_line
    assert summary.startswith("1 ran, 0 already done, 0 failed")
    assert json.loads(out.read_text())["engine_info"]["dashboard_url"] == url_line.split("dashboard: ")[1]
