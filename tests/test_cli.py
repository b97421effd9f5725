"""The command line as a user meets it: real subprocesses, exit codes, one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

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
    assert "--data-dir" in result.stderr


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


def test_default_job_runs_when_mnist_is_at_hand(tmp_path):
    """No engine or dataset flags: the local engine on MNIST, found through NNCOMPARE_DATA_DIR."""
    import numpy as np

    from nncompare.idx import write_idx

    rng = np.random.RandomState(0)
    folder = tmp_path / "mnist"
    folder.mkdir()
    for prefix, n in (("train", 300), ("t10k", 100)):
        write_idx(folder / f"{prefix}-images-idx3-ubyte.gz", rng.randint(0, 256, (n, 28, 28)).astype(np.uint8))
        write_idx(folder / f"{prefix}-labels-idx1-ubyte.gz", (np.arange(n) % 10).astype(np.uint8))
    result = nncompare("run", "--json", env={"NNCOMPARE_DATA_DIR": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    record = json.loads(result.stdout)
    assert (record["engine"], record["dataset"], record["epochs"]) == ("local", "mnist", 10)
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
