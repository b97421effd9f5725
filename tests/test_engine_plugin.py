"""An engine from another package: installed with pip, it runs through the CLI, the record, the report and asv.

tests/engine_plugin is such a package (a copy of the local engine, ``copy``), registered under
the entry-point group ``nncompare.engines`` in its own pyproject.toml. It is installed with pip
into a folder of its own, which the child processes find on their PYTHONPATH: nncompare itself
is not changed, nor is this environment.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from nncompare.record_schema import problem

ROOT = Path(__file__).resolve().parents[1]
PLUGIN = Path(__file__).resolve().parent / "engine_plugin"


@pytest.fixture(scope="module")
def plugin_env(tmp_path_factory):
    """The environment of a process that has the ``copy`` engine installed (in a folder of its own)."""
    work = tmp_path_factory.mktemp("plugin")
    source, site = work / "source", work / "site"
    shutil.copytree(PLUGIN, source)  # pip builds in the source folder: keep the repository clean
    done = subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--target", site, source],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(ROOT)])}


def nncompare(env, *args, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "nncompare", *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=300
    )


def test_without_the_package_there_is_no_such_engine():
    result = subprocess.run(
        [sys.executable, "-m", "nncompare", "run", "--engine", "copy"], capture_output=True, text=True
    )
    assert result.returncode == 2 and "'copy' is not one of 'local', 'dask', 'spark'" in result.stderr


def test_the_installed_engine_runs_through_the_cli_with_its_own_flag_and_variable(plugin_env, tmp_path):
    out = tmp_path / "results.jsonl"
    help_text = nncompare(plugin_env, "run", "--help").stdout
    assert "[local|dask|spark|copy]" in help_text and "--copy-label" in help_text

    flagged = nncompare(
        plugin_env,
        "run",
        "--engine",
        "copy",
        "--copy-label",
        "--dataset",
        "digits",
        "--epochs",
        "2",
        "--workers",
        "2",
        "--out",
        str(out),
        "-q",
    )
    assert flagged.returncode == 0, flagged.stderr
    by_variable = nncompare(
        {**plugin_env, "NNCOMPARE_COPY_LABEL": "1"},
        "run",
        "--engine",
        "copy",
        "--dataset",
        "digits",
        "--epochs",
        "2",
        "--workers",
        "2",
        "--json",
        "-q",
    )
    assert by_variable.returncode == 0, by_variable.stderr

    record = json.loads(out.read_text().splitlines()[-1])
    assert record["engine"] == "copy" and record["epochs_run"] == 2 and 0 < record["test_accuracy"] <= 1
    assert record["engine_info"]["label"] == "the copy engine ran"
    assert json.loads(by_variable.stdout)["engine_info"]["label"] == "the copy engine ran"
    assert problem(record) is None  # the record's schema holds for an engine nncompare does not ship
    # the copy trains as the local engine does: the same job gives the same weights, so the same accuracy
    local = nncompare(
        plugin_env, "run", "--engine", "local", "--dataset", "digits", "--epochs", "2", "--workers", "2", "--json", "-q"
    )
    assert json.loads(local.stdout)["test_accuracy"] == record["test_accuracy"]


def test_a_sweep_and_the_report_include_it(plugin_env, tmp_path):
    out, report = tmp_path / "sweep.jsonl", tmp_path / "report"
    swept = nncompare(
        plugin_env,
        "sweep",
        "--engines",
        "local,copy",
        "--workers",
        "1,2",
        "--epochs",
        "2",
        "--dataset",
        "digits",
        "--out",
        str(out),
    )
    assert swept.returncode == 0, swept.stderr
    assert sorted(json.loads(line)["engine"] for line in out.read_text().splitlines()) == ["copy"] * 2 + ["local"] * 2
    reported = nncompare(plugin_env, "report", str(out), "--out", str(report))
    assert reported.returncode == 0, reported.stderr
    text = (report / "report.md").read_text()
    assert "\n| copy, " in text and "\n| local, " in text  # rows named by engine and workers, what differs


def test_the_asv_suite_benchmarks_it(plugin_env):
    code = (
        "from benchmarks import common, training; "
        "assert 'copy' in common.ENGINES and 'copy' in common.IN_PROCESS_ENGINES, common.ENGINES; "
        "assert common.skip_reason('copy', 2, 1, '1g') is None; "
        "b = training.Epoch(); b.setup('copy', 2, 1, '1g', 'digits'); b.time_epoch('copy', 2, 1, '1g', 'digits'); "
        "b.teardown('copy', 2, 1, '1g', 'digits'); print(b.built.spec.engine, len(b.built.epoch_s))"
    )
    env = {**plugin_env, "NNCOMPARE_ASV_DATASET": "digits"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["copy", "2"]


def test_a_sweep_hands_its_flag_to_each_configurations_process(plugin_env, tmp_path):
    """Engine settings flags are the same words on sweep as on run, and reach every configuration."""
    out, plain = tmp_path / "flagged.jsonl", tmp_path / "plain.jsonl"
    grid = ["--engine", "copy", "--dataset", "digits", "--epochs", "1", "--workers", "1,2", "-q"]
    flagged = nncompare(plugin_env, "sweep", *grid, "--copy-label", "-o", str(out))
    assert flagged.returncode == 0, flagged.stderr
    assert [json.loads(line)["engine_info"].get("label") for line in out.read_text().splitlines()] == [
        "the copy engine ran"
    ] * 2
    unflagged = nncompare(plugin_env, "sweep", *grid, "-o", str(plain))
    assert unflagged.returncode == 0, unflagged.stderr
    assert [json.loads(line)["engine_info"].get("label") for line in plain.read_text().splitlines()] == [None] * 2
