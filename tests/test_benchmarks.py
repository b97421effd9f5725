"""The asv suite: it imports and passes ``asv check``, runs under ``--python=same``, skips what
cannot run here, and its tracks report what the records measured."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks import common, records, training  # noqa: E402


def asv(*args, cwd=ROOT, env=None, timeout=600):
    """Run asv from this interpreter with a private HOME (asv keeps its machine file there)."""
    return subprocess.run(
        [sys.executable, "-m", "asv", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        env=env,
    )


@pytest.fixture
def asv_env(tmp_path):
    pytest.importorskip("asv")
    env = dict(os.environ, HOME=str(tmp_path), NNCOMPARE_ASV_DATASET="digits", NNCOMPARE_ASV_GRID="quick")
    done = asv("machine", "--yes", env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    return env


@pytest.fixture
def on_digits(monkeypatch):
    monkeypatch.setenv(common.DATASET_ENV, "digits")
    common.dataset_name.cache_clear()
    common.dataset.cache_clear()
    yield
    common.dataset_name.cache_clear()
    common.dataset.cache_clear()


def test_conf_is_what_ci_and_the_gate_rely_on():
    load_json = pytest.importorskip("asv.util").load_json

    conf = load_json(str(ROOT / "asv.conf.json"), js_comments=True)
    assert conf["repo"] == "." and conf["branches"] == ["main"] and conf["environment_type"] == "virtualenv"
    assert all(conf[k].startswith(".asv/") for k in ("env_dir", "results_dir")) and conf["html_dir"] == "html"
    assert "{wheel_file}[dask,spark]" in conf["install_command"][0]
    ignored = subprocess.run(
        ["git", "check-ignore", ".asv/results/x.json", "html/index.html", ".asv/env/x"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert len(ignored.stdout.split()) == 3


def test_asv_check_finds_every_benchmark(asv_env):
    done = asv("check", "--python=same", env=asv_env, timeout=300)
    assert done.returncode == 0 and "No problems found" in done.stdout, done.stdout + done.stderr


def test_the_gate_sample_runs_under_asvs_own_importer(asv_env):
    """asv imports benchmark modules through a meta-path importer that child processes lack: the
    gate's floor processes must start all the same (a spawned child once died there unseen)."""
    bench = r"gate\.SteadyEpochs\.time_epochs\('local'"
    done = asv("run", "--python=same", "--quick", "--show-stderr", "-b", bench, env=asv_env, timeout=300)
    out = done.stdout + done.stderr
    assert done.returncode == 0 and "failed" not in out, out
    assert "gate.SteadyEpochs.time_epochs" in out


@pytest.mark.slow
def test_quick_run_in_this_env_on_the_local_engine(asv_env, tmp_path):
    """`asv run --python=same --quick` on a tiny selection: one steady epoch, on digits and only digits."""
    bench = r"training\.Epoch\.time_epoch\('local', 1,"
    done = asv("run", "--python=same", "--quick", "--show-stderr", "-b", bench, env=asv_env, timeout=300)
    out = done.stdout + done.stderr
    assert done.returncode == 0, out
    assert "training.Epoch.time_epoch" in out and "failed" not in out
    # the dataset is a parameter: the one in use is measured, the others are skipped (n/a)
    assert "this run uses digits, not fashion-mnist" in out


def test_the_grid_fits_the_machine_or_says_why(monkeypatch):
    cores = os.cpu_count() or 1
    assert common.skip_reason("local", 4, cores, "1g") is None  # local shards run one after another
    assert "needs" in common.skip_reason("local", 1, cores + 1, "1g")
    assert common.skip_reason("local", 1, 1, "1g") is None
    with pytest.raises(NotImplementedError, match="this machine has"):
        training.ClusterStartup().setup("local", 1, cores + 1, "1g", common.dataset_name())
    monkeypatch.setitem(common.GRID, "configs", {(4, 9, "11g")})
    assert "not one of" in common.skip_reason("local", 9, 5, "11g")


def test_distributed_engines_skip_or_are_checked_against_cores():
    cores = os.cpu_count() or 1
    for engine in ("dask", "spark"):
        reason = common.skip_reason(engine, cores + 1, 1, "1g")
        assert reason is not None  # not installed / not written yet, or more cores than this machine has
        if common.skip_reason(engine, 1, 1, "1g") is None:
            assert "needs" in reason


def test_time_benchmarks_run_in_process_on_the_local_engine(on_digits):
    startup = training.ClusterStartup()
    startup.setup("local", 2, 1, "1g", "digits")
    startup.time_start("local", 2, 1, "1g", "digits")
    startup.teardown("local", 2, 1, "1g", "digits")

    train = training.Train()
    train.setup("local", 2, 1, "1g", 2, "digits")
    train.time_train("local", 2, 1, "1g", 2, "digits")
    train.time_train("local", 2, 1, "1g", 2, "digits")  # the started engine serves sample after sample
    train.teardown("local", 2, 1, "1g", 2, "digits")

    epoch = training.EpochCPU()
    epoch.setup("local", 2, 1, "1g", "digits")
    first = epoch.built.weights.copy()
    epoch.time_epoch("local", 2, 1, "1g", "digits")
    assert epoch.built.weights.shape == first.shape and not (epoch.built.weights == first).all()
    epoch.teardown("local", 2, 1, "1g", "digits")
    again = training.EpochCPU()
    again.setup("local", 2, 1, "1g", "digits")  # asv re-runs setup before each sample: the placed job is kept
    assert again.built is epoch.built


@pytest.mark.slow
def test_tracks_read_the_record_of_a_real_run(on_digits):
    record = common.run_in_child("local", 2, 1, "1g", 3, timeout=300)
    assert "error" not in record, record
    key = ("local", 2, 1, "1g", 3)
    cache = {"dataset": "digits", "runs": {key: records.summarise(record)}}
    key = (*key, "digits")
    acc = records.Accuracy()
    acc.setup(cache, *key)
    assert acc.track_test_accuracy(cache, *key) == record["test_accuracy"]
    assert acc.track_epochs_run(cache, *key) == record["epochs_run"] == 3
    phases = records.PhaseSeconds()
    phases.setup(cache, *key, "compute")
    assert phases.track_phase_seconds(cache, *key, "compute") == record["phases_s"]["compute"] > 0
    assert phases.track_phase_seconds(cache, *key, "idle") == pytest.approx(sum(record["idle_s"]))
    overhead = records.Overhead()
    overhead.setup(cache, *key)
    assert 0 <= overhead.track_overhead_fraction(cache, *key) < 1
    memory = records.PeakMemory()
    memory.setup(cache, *key, "all")
    peak = record["peak_rss_bytes"]
    assert memory.track_peak_rss(cache, *key, "all") == peak["driver"] + peak["workers"]
    # the child's own peak, not this test process's
    assert memory.track_peak_rss(cache, *key, "driver") == peak["driver"] > 0


def test_skipped_and_failed_runs_are_told_apart():
    key = ("spark", 2, 1, "2g", 5)
    with pytest.raises(NotImplementedError, match="no java"):
        records.Accuracy().setup({"dataset": "digits", "runs": {key: {"skip": "no java"}}}, *key, "digits")
    with pytest.raises(RuntimeError, match="exit code 1"):
        records.Accuracy().setup(
            {"dataset": "digits", "runs": {key: {"error": "spark job failed with exit code 1"}}}, *key, "digits"
        )
    with pytest.raises(NotImplementedError, match="uses digits, not fashion-mnist"):
        records.Accuracy().setup({"dataset": "digits", "runs": {}}, *key, "fashion-mnist")


@pytest.mark.slow
@pytest.mark.parametrize("engine", common.ENGINES)
def test_five_fashion_mnist_epochs_track_at_least_084_and_dask_counts_its_workers(engine, fashion_dir, monkeypatch):
    monkeypatch.setenv("NNCOMPARE_DATA_DIR", str(fashion_dir))
    monkeypatch.setenv(common.DATASET_ENV, "fashion-mnist")
    common.dataset_name.cache_clear()
    reason = common.skip_reason(engine, 2, 1, "2g")
    if reason:
        pytest.skip(reason)
    key = (engine, 2, 1, "2g", 5)
    record = common.run_in_child(*key, timeout=600)
    common.dataset_name.cache_clear()
    assert "error" not in record, record
    cache = {"dataset": "fashion-mnist", "runs": {key: records.summarise(record)}}
    key = (*key, "fashion-mnist")
    acc = records.Accuracy()
    acc.setup(cache, *key)
    assert acc.track_test_accuracy(cache, *key) >= 0.84
    memory = records.PeakMemory()
    memory.setup(cache, *key, "all")
    if engine == "dask":
        workers = memory.track_peak_rss(cache, *key, "workers")
        assert workers > 0
        assert memory.track_peak_rss(cache, *key, "all") >= memory.track_peak_rss(cache, *key, "driver") + workers


@pytest.mark.slow
def test_publish_draws_graphs_and_compare_prints_a_table(asv_env, tmp_path):
    """Results of two commits in a fresh clone: `asv publish` writes the site, `asv compare` the table."""
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True)
    subprocess.run(["git", "checkout", "--quiet", "-B", "main", "HEAD"], cwd=clone, check=True, capture_output=True)
    commits = subprocess.run(
        ["git", "rev-list", "--max-count=2", "HEAD"], cwd=clone, capture_output=True, text=True, check=True
    ).stdout.split()[::-1]
    if len(commits) < 2:
        pytest.skip("this clone has a single commit")
    bench = r"training\.EpochCPU\.time_epoch\('local', 1,"
    for commit in commits:  # this env's code, recorded under each commit: enough to draw and compare
        done = asv(
            "run",
            "--python=same",
            "--set-commit-hash",
            commit,
            "-b",
            bench,
            "-a",
            "rounds=1",
            "-a",
            "repeat=3",
            cwd=clone,
            env=asv_env,
        )
        assert done.returncode == 0, done.stdout + done.stderr
    done = asv("publish", cwd=clone, env=asv_env)
    assert done.returncode == 0, done.stdout + done.stderr
    html = clone / "html"
    assert (html / "index.html").is_file()
    assert (html / "graphs" / "summary" / "training.EpochCPU.time_epoch.json").is_file()
    done = asv("compare", *commits, cwd=clone, env=asv_env)
    assert done.returncode == 0, done.stdout + done.stderr
    row = next(
        line
        for line in done.stdout.splitlines()
        if "training.EpochCPU.time_epoch('local', 1, 1, '2g', 'digits')" in line
    )
    assert row.count("|") >= 5 and "ms" in row


def test_every_benchmark_class_declares_its_version():
    """Without ``version`` asv derives one from the source, and any edit would start new lines."""
    classes = [
        obj
        for module in (training, records)
        for name, obj in vars(module).items()
        if isinstance(obj, type)
        and obj.__module__ == module.__name__
        and not name.startswith("_")
        and any(attr.startswith(("time_", "track_", "peakmem_")) for attr in dir(obj))
    ]
    assert classes and all(isinstance(getattr(cls, "version", None), str) for cls in classes), classes


def test_other_datasets_and_left_out_engines_are_skipped(on_digits, monkeypatch):
    assert common.JOB_NAMES[-1] == common.TOPOLOGY_NAMES[-1] == "dataset"
    assert common.skip_reason("local", 1, 1, "1g", "digits") is None
    assert "uses digits, not fashion-mnist" in common.skip_reason("local", 1, 1, "1g", "fashion-mnist")
    monkeypatch.setenv(common.ENGINES_ENV, "local")
    assert "leaves out the dask engine" in common.skip_reason("dask", 1, 1, "1g", "digits")
    monkeypatch.setenv(common.ENGINES_ENV, "local,flink")
    with pytest.raises(ValueError, match="unknown engine"):
        common.selected_engines()


def test_a_commit_without_training_run_is_skipped_not_failed(on_digits, monkeypatch):
    assert common.predates_benchmarks() is None
    monkeypatch.setitem(sys.modules, "nncompare.training", None)  # what an old commit's package lacks
    with pytest.raises(NotImplementedError, match="predates the benchmark"):
        training.EpochCPU().setup("local", 1, 1, "1g", "digits")
