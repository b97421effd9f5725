"""The commands the README tells users to type: they work as typed, on a machine without ../shared."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TABLE = "Name (time in"  # pytest-benchmark's timing table


def readme_commands() -> list[str]:
    return [
        line
        for block in re.findall(r"```bash\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
        for line in block.splitlines()
        if line.strip()
    ]


def test_quick_start_gets_the_data_as_a_user_would_and_runs_without_a_data_dir():
    first = readme_commands()[0]
    assert first.startswith("sudo apt-get install -y dataset-fashion-mnist && ")
    assert "nncompare run --engine local --dataset fashion-mnist" in first
    # nothing a fresh clone lacks: no ../shared, no data directory to pass
    assert all("../shared" not in command for command in readme_commands())
    assert "--data-dir" not in first


def micro(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "tests/micro/test_averaging.py",
            "-k",
            "float32-inplace-2",
            "-p",
            "no:cacheprovider",
            *args,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        stdin=subprocess.DEVNULL,
    )


def test_benchmark_only_times_the_micro_benchmarks_as_typed():
    timed = micro("--benchmark-only")
    assert timed.returncode == 0, timed.stdout[-3000:] + timed.stderr[-3000:]
    assert TABLE in timed.stdout and "1 passed" in timed.stdout


def test_a_plain_run_calls_each_micro_benchmark_once_untimed():
    plain = micro()
    assert plain.returncode == 0, plain.stdout[-3000:] + plain.stderr[-3000:]
    assert TABLE not in plain.stdout and "1 passed" in plain.stdout
