"""The command line as a user meets it: real subprocesses, exit codes, one-line errors."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import click
import pytest

from nncompare.job import ACTIVATIONS, SOLVERS
from nncompare.record import RECORD_KEYS, read_jsonl


def nncompare(*args, env=None, timeout=300):
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-c", "from nncompare.cli import main; main()", *args],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=timeout,
    )


def assert_one_line_error(result, code=2):
    assert result.returncode == code, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("nncompare: error: ")
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["run", "--engine", "foo"],
        ["run", "--dataset", "cifar"],
        ["run", "--workers", "0", "--dataset", "digits"],
        ["run", "--cores", "4096", "--dataset", "digits"],
        ["run", "--memory", "lots", "--dataset", "digits"],
        ["run", "--memory", "-3g", "--dataset", "digits"],
        ["run", "--epochs", "0", "--dataset", "digits"],
        ["run", "--hidden", "10,x", "--dataset", "digits"],
        ["run", "--activation", "softplus", "--dataset", "digits"],
        ["run", "--engine", "local", "--cluster", "tcp://127.0.0.1:1", "--dataset", "digits"],
        ["run", "--data-dir", "/no/such/folder"],
        [
            "run",
            "--engine",
            "dask",
            "--cluster",
            "tcp://no such host",
            "--dataset",
            "digits",
        ],  # no Client.__del__ noise
        ["run", "--no-such-flag"],
        ["data", "verify", "--dataset", "mnist", "--data-dir", "/no/such/folder"],
        ["frobnicate"],
    ],
)
def test_bad_input_is_one_line_and_exit_2(args, tmp_path):
    out = tmp_path / "results.jsonl"
    result = (
        nncompare(*args, "--out", str(out)) if args[0] == "run" and "--no-such-flag" not in args else nncompare(*args)
    )
    assert_one_line_error(result)
    assert not out.exists()


def test_default_job_without_data_says_how_to_get_it(tmp_path):
    env = {
        "NNCOMPARE_CACHE_DIR": str(tmp_path / "cache"),
        "NNCOMPARE_BASE_URL": "http://127.0.0.1:9/",
        "NNCOMPARE_DATA_DIR": "",
    }
    result = nncompare("run", env=env)
    assert_one_line_error(result)
    assert "NNCOMPARE_DATA_DIR" in result.stderr


def test_data_fetch_names_no_option_it_does_not_have(tmp_path):
    env = {"NNCOMPARE_CACHE_DIR": str(tmp_path / "cache"), "NNCOMPARE_BASE_URL": "http://127.0.0.1:9/"}
    result = nncompare("data", "fetch", env=env)
    assert_one_line_error(result)
    assert "NNCOMPARE_BASE_URL" in result.stderr and "--data-dir" not in result.stderr
    assert "train-images-idx3-ubyte.gz" in result.stderr  # Fashion-MNIST's, the default


def test_a_directory_with_only_test_files_names_the_train_files(tmp_path):
    import numpy as np

    from nncompare.idx import write_idx

    folder = tmp_path / "mnist"
    folder.mkdir()
    write_idx(folder / "t10k-images-idx3-ubyte.gz", np.zeros((2, 28, 28), np.uint8))
    write_idx(folder / "t10k-labels-idx1-ubyte.gz", np.zeros(2, np.uint8))
    result = nncompare("run", "--data-dir", str(folder))
    assert_one_line_error(result)
    assert "train-images-idx3-ubyte.gz" in result.stderr


def test_run_json_prints_the_record_alone_and_appends_it(tmp_path):
    out = tmp_path / "r.jsonl"
    result = nncompare(
        "run",
        "--dataset",
        "digits",
        "--epochs",
        "2",
        "--workers",
        "2",
        "--hidden",
        "16",
        "--learning-rate",
        "0.01",
        "--json",
        "--out",
        str(out),
    )
    assert result.returncode == 0, result.stderr
    record = json.loads(result.stdout)
    assert set(RECORD_KEYS) <= set(record)
    assert record["workers"] == 2 and record["epochs_run"] == 2
    assert read_jsonl(out) == [record]
    again = nncompare("run", "--dataset", "digits", "--epochs", "1", "--json", "--out", str(out))
    assert again.returncode == 0 and len(read_jsonl(out)) == 2


def test_run_prints_a_human_summary():
    result = nncompare("run", "--dataset", "digits", "--epochs", "1", "--hidden", "8")
    assert result.returncode == 0, result.stderr
    assert "test accuracy" in result.stdout and "phases" in result.stdout


def test_data_info_and_verify(fashion_dir):
    result = nncompare("data", "verify", "--dataset", "fashion-mnist", "--data-dir", str(fashion_dir))
    assert result.returncode == 0, result.stderr
    assert "60000 train and 10000 test samples" in result.stdout
    info = nncompare("data", "info", "--data-dir", str(fashion_dir.parent))
    assert info.returncode == 0 and "fashion-mnist" in info.stdout


@pytest.mark.slow
def test_main_job_on_fashion_mnist(fashion_dir):
    """The issue's acceptance command: 5 epochs, accuracy >= 0.84, phases add up to wall - startup."""
    result = nncompare(
        "run",
        "--engine",
        "local",
        "--dataset",
        "fashion-mnist",
        "--epochs",
        "5",
        "--data-dir",
        str(fashion_dir),
        "--json",
    )
    assert result.returncode == 0, result.stderr
    record = json.loads(result.stdout)
    assert record["test_accuracy"] >= 0.84
    assert sum(record["phases_s"].values()) == pytest.approx(record["wall_s"] - record["startup_s"], rel=0.05)


def test_default_job_runs_on_fashion_mnist_when_at_hand(tmp_path):
    """No engine or dataset flags: the local engine on Fashion-MNIST (what the quick start provides),
    found through NNCOMPARE_DATA_DIR."""
    import numpy as np

    from nncompare.idx import write_idx

    rng = np.random.RandomState(0)
    folder = tmp_path / "fashion-mnist"
    folder.mkdir()
    for prefix, n in (("train", 300), ("t10k", 100)):
        write_idx(folder / f"{prefix}-images-idx3-ubyte.gz", rng.randint(0, 256, (n, 28, 28)).astype(np.uint8))
        write_idx(folder / f"{prefix}-labels-idx1-ubyte.gz", (np.arange(n) % 10).astype(np.uint8))
    result = nncompare("run", "--json", env={"NNCOMPARE_DATA_DIR": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    record = json.loads(result.stdout)
    assert (record["engine"], record["dataset"], record["epochs"]) == ("local", "fashion-mnist", 10)
    assert record["train_samples"] == 300


def test_verbose_logs_engine_start_placement_and_rounds():
    result = nncompare("run", "--dataset", "digits", "--epochs", "2", "--hidden", "8", "--workers", "2", "-v")
    assert result.returncode == 0, result.stderr
    assert "nncompare: local engine started in" in result.stderr
    assert "nncompare: placed 2 shards" in result.stderr
    assert "nncompare: round 1 (epoch 1):" in result.stderr and "nncompare: round 2 (epoch 2):" in result.stderr


def test_spark_conf_is_repeatable_and_a_later_key_wins():
    from nncompare.cli.options import engine_options, engine_setting_options

    params = {p.name: p for p in engine_setting_options(lambda: None).__click_params__}
    assert params["spark_conf"].opts == ["--spark-conf"] and params["spark_conf"].multiple
    options = engine_options({"spark_conf": ("spark.a=1", "spark.b=x=y", "spark.a=2"), "other": 1})
    assert options.settings_for("spark").conf == {"spark.a": "2", "spark.b": "x=y"}


def test_an_unwritable_out_fails_before_training(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    result = nncompare(
        "run",
        "--dataset",
        "digits",
        "--epochs",
        "100000",
        "--no-convergence-stop",
        "--out",
        str(blocker / "results.jsonl"),
        timeout=30,
    )
    assert_one_line_error(result)
    assert "is a file, not a folder" in result.stderr


def _options(command: str) -> dict[str, click.Option]:
    from nncompare.cli import cli

    return {opt: p for p in cli.commands[command].params for opt in [*p.opts, *p.secondary_opts]}


@pytest.mark.parametrize("command", ["run", "sweep", "paper"])
def test_one_vocabulary_for_the_commands_that_run(command):
    """The same words on run, sweep and paper, and --help shows the choices and no old spelling."""
    options = _options(command)
    shared = ["--engine", "-o", "--out", "--json", "--dry-run", "-v", "-q", "--dashboard", "--spark-conf", "--epochs"]
    assert [o for o in shared if o not in options] == []
    assert options["--activation"].type.choices == ACTIVATIONS and options["--solver"].type.choices == SOLVERS
    text = nncompare(command, "--help").stdout
    assert "[relu|tanh|logistic|identity]" in text and "[adam|sgd]" in text
    assert "--engines" not in text and "--max-epochs" not in text
    assert "fashion-mnist]" in text and "[default: fashion-mnist]" in text


def test_the_old_spellings_still_work(tmp_path):
    swept = nncompare(
        "sweep", "--engines", "local", "--dataset", "digits", "-o", str(tmp_path / "s.jsonl"), "--dry-run"
    )
    assert swept.returncode == 0 and swept.stdout.startswith("to do local digits"), swept.stderr
    capped = nncompare(
        "paper",
        "--engines",
        "local",
        "--max-epochs",
        "3",
        "--dataset",
        "digits",
        "-o",
        str(tmp_path / "p"),
        "--dry-run",
    )
    assert capped.returncode == 0, capped.stderr
    listed = capped.stdout.splitlines()
    assert len(listed) == 3 and all(re.fullmatch(r"to do local digits .*, 3 epochs, repeat 0", line) for line in listed)


def test_engines_repeated_or_comma_separated_are_the_same(tmp_path):
    out = str(tmp_path / "s.jsonl")
    by_comma = nncompare("sweep", "--engine", "local,dask", "--dataset", "digits", "-o", out, "--dry-run", "--json")
    repeated = nncompare(
        "sweep", "--engine", "local", "--engine", "dask", "--dataset", "digits", "-o", out, "--dry-run", "--json"
    )
    assert by_comma.returncode == 0, by_comma.stderr
    assert by_comma.stdout == repeated.stdout
    assert [json.loads(line)["spec"]["engine"] for line in by_comma.stdout.splitlines()] == ["local", "dask"]


def test_dry_run_says_what_would_run_and_writes_nothing(tmp_path):
    out = tmp_path / "r.jsonl"
    result = nncompare("run", "--engine", "local", "--dataset", "digits", "--workers", "2", "-o", str(out), "--dry-run")
    assert result.returncode == 0 and result.stderr == ""
    assert result.stdout == "to do local digits 2w x 1c x auto, 10 epochs, repeat 0\n"
    as_json = json.loads(nncompare("run", "--dataset", "digits", "--dry-run", "--json").stdout)
    assert as_json["done"] is False and as_json["spec"]["dataset"] == "digits" and as_json["spec_key"]
    assert not out.exists()


def test_sweep_and_paper_json_print_the_records_alone(tmp_path):
    out = tmp_path / "s.jsonl"
    args = ["--dataset", "digits", "--hidden", "8", "--json", "-q"]
    swept = nncompare("sweep", *args, "--epochs", "1,2", "-o", str(out))
    assert swept.returncode == 0, swept.stderr
    records = [json.loads(line) for line in swept.stdout.splitlines()]
    assert [r["epochs"] for r in records] == [1, 2] and read_jsonl(out) == records
    report = tmp_path / "paper"
    papered = nncompare("paper", *args, "--engine", "local", "--epochs", "1", "-o", str(report))
    assert papered.returncode == 0, papered.stderr
    records = [json.loads(line) for line in papered.stdout.splitlines()]  # three configurations, each capped
    assert len(records) == 3 and {r["paper"]["max_epochs"] for r in records} == {1}
    assert "report written to" in papered.stderr
