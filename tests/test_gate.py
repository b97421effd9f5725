"""``nncompare gate``: refuses what it cannot compare, judges paired samples, test errors and
broken benchmarks with their own exit codes, and, on real builds of both commits in asv's
virtualenv, fails a commit whose Dask rounds wait 50 % longer and whose trainers hold BLAS to one thread
(the 20 % proofs are by hand: docs/evidence.md)."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from nncompare.cli.gate import DEFAULT_BENCH
from nncompare.gate.judge import BROKEN, LESS_ACCURATE, PASS, SLOWER, exit_code, judge, judge_time, judge_unused_cores

sys.path.insert(0, str(Path(__file__).resolve().parent))
from slowdowns import lose_parallelism, slow_down  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
GIT_ID = ["-c", "user.name=nncompare test", "-c", "user.email=test@nncompare.invalid"]


def gate(*args, cwd, timeout=900):
    return subprocess.run(
        [sys.executable, "-c", "from nncompare.cli import main; main()", "gate", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def git(cwd, *args):
    return subprocess.run(["git", *GIT_ID, *args], cwd=cwd, check=True, capture_output=True, text=True)


def test_gate_outside_a_clone_is_a_one_line_usage_error(tmp_path):
    done = gate(cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.startswith("nncompare: error: not inside a git clone") and done.stderr.count("\n") == 1


def test_gate_refuses_an_unknown_base():
    done = gate("--base", "no-such-branch-anywhere", cwd=ROOT)
    assert done.returncode == 2
    assert "unknown commit 'no-such-branch-anywhere'" in done.stderr and "Traceback" not in done.stderr


def test_gate_refuses_a_config_outside_the_clone_root(tmp_path):
    elsewhere = tmp_path / "asv.conf.json"
    elsewhere.write_text("{}")
    done = gate("--config", str(elsewhere), "--base", "HEAD", cwd=ROOT)
    assert done.returncode == 2 and "in the clone's root" in done.stderr


def test_gate_refuses_a_factor_that_cannot_mean_slower():
    assert gate("--factor", "0.9", "--base", "HEAD", cwd=ROOT).returncode == 2


def test_default_selection_is_every_engines_gate_benchmarks():
    names = [f"gate.SteadyEpochs.time_epochs('{e}', 2, 1, '2g')" for e in ("local", "dask", "spark")]
    names += [f"gate.GateAccuracy.track_test_error('{e}')" for e in ("local", "dask", "spark")]
    names += [f"gate.GateParallelism.track_unused_cores('{e}')" for e in ("local", "dask", "spark")]
    others = [
        "training.EpochCPU.time_epoch('local', 1, 1, '2g')",
        "records.Accuracy.track_test_accuracy('local', 1, 1, '2g', 5)",
    ]
    assert [n for n in names + others if re.search(DEFAULT_BENCH, n)] == names


EPOCH = "gate.SteadyEpochs.time_epochs('dask', 2, 1, '2g')"
ERROR = "gate.GateAccuracy.track_test_error('dask')"
UNUSED = "gate.GateParallelism.track_unused_cores('dask')"


def timed(*samples):
    return {"value": sorted(samples)[len(samples) // 2], "samples": list(samples)}


def test_paired_ratios_fail_a_consistent_slowdown_and_name_its_ratio():
    verdict = judge_time(EPOCH, [2.0, 2.2, 2.1, 2.0], [2.5, 2.7, 2.6, 2.4], factor=1.1)
    assert verdict.code == SLOWER and "x1.2" in verdict.line and "SLOWER" in verdict.line


def test_one_loaded_sample_cannot_make_a_verdict():
    # one round where only the head's sample met a load spike: the median stays near 1
    assert judge_time(EPOCH, [2.0, 2.0, 2.0, 2.0], [2.0, 3.0, 2.02, 1.98], factor=1.1).code == PASS
    # a large median carried by pairs that disagree is noise, not a slowdown
    assert judge_time(EPOCH, [2.0, 2.0, 2.0, 2.0], [1.8, 1.9, 2.6, 2.7], factor=1.1).code == PASS


def test_a_benchmark_without_a_head_measurement_is_broken_even_if_the_base_failed_too():
    assert judge_time(EPOCH, [2.0, 2.0, 2.0], None, factor=1.1).code == BROKEN
    assert judge_time(EPOCH, None, [None, None, None], factor=1.1).code == BROKEN
    assert judge_time(EPOCH, [2.0, 2.0, 2.0], [2.0, None, None], factor=1.1).code == BROKEN  # too few pairs


def test_an_error_rise_over_one_point_fails_and_an_improvement_passes():
    base = {ERROR: {"value": 0.14, "samples": None}}
    assert (
        exit_code(judge(base, {ERROR: {"value": 0.1502, "samples": None}}, factor=1.1, max_error_rise=0.01))
        == LESS_ACCURATE
    )
    assert exit_code(judge(base, {ERROR: {"value": 0.1495, "samples": None}}, factor=1.1, max_error_rise=0.01)) == PASS
    assert exit_code(judge(base, {ERROR: {"value": 0.05, "samples": None}}, factor=1.1, max_error_rise=0.01)) == PASS


def test_a_core_left_idle_is_lost_parallelism_whatever_the_time():
    assert judge_unused_cores(UNUSED, 0, 1).code == SLOWER
    assert "lost parallelism" in judge_unused_cores(UNUSED, 0, 1).line
    assert judge_unused_cores(UNUSED, 0, 0).code == PASS
    assert judge_unused_cores(UNUSED, 1, 0).code == PASS  # the head gave the core back
    assert judge_unused_cores(UNUSED, 0, None).code == BROKEN
    assert (
        exit_code(
            judge(
                {UNUSED: {"value": 0, "samples": None}},
                {UNUSED: {"value": 1, "samples": None}},
                factor=1.1,
                max_error_rise=0.01,
            )
        )
        == SLOWER
    )


def test_the_most_serious_outcome_sets_the_exit_code():
    base = {EPOCH: timed(2.0, 2.0, 2.0), ERROR: {"value": 0.14, "samples": None}}
    head = {EPOCH: timed(3.0, 3.0, 3.0), ERROR: {"value": 0.30, "samples": None}}
    assert exit_code(judge(base, head, factor=1.1, max_error_rise=0.01)) == LESS_ACCURATE
    head[EPOCH] = {"value": None, "samples": None}
    assert exit_code(judge(base, head, factor=1.1, max_error_rise=0.01)) == BROKEN


def gate_in_a_clone(tmp_path, change, bench):
    """Clone the project, commit ``change(clone)`` on top, gate HEAD~1 -> HEAD; (result, seconds)."""
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True)
    change(clone)
    git(clone, "commit", "--quiet", "-am", "throwaway regression")
    start = time.perf_counter()
    done = gate("--base", "HEAD~1", "--bench", bench, cwd=clone, timeout=1200)
    return done, time.perf_counter() - start


@pytest.mark.slow
@pytest.mark.timeout(1500)
def test_gate_on_real_builds_fails_dask_rounds_that_wait_50_percent_longer(tmp_path, fashion_dir, monkeypatch):
    """The regression the old CPU-time gate let through, on real builds of both commits, and lost
    parallelism in the same throwaway commit (its own verdict: it does not touch the 1-core epochs).

    The Dask engine alone (its steady epochs, test error and idle cores), so that it fits CI's
    time, and a wait of half a round, so that the verdict does not hang on the load beside CI: a
    20 % Dask wait measured x1.10 beside other jobs once and passed. The 20 % cases of every
    engine and kind were run by hand, with the default gate over every engine
    (docs/evidence.md).
    """
    pytest.importorskip("asv")
    pytest.importorskip("distributed")
    # real Fashion-MNIST epochs, obtained as a user would (conftest), never a digits fallback
    monkeypatch.setenv("NNCOMPARE_DATA_DIR", str(fashion_dir))
    monkeypatch.setenv("NNCOMPARE_ASV_DATASET", "fashion-mnist")

    def regress(clone):
        slow_down(clone, "dask", "wait", 0.50)
        lose_parallelism(clone)

    done, took = gate_in_a_clone(tmp_path, regress, r"^gate\..*'dask'")
    assert done.returncode == SLOWER, done.stdout[-4000:] + done.stderr[-3000:]
    assert f"FAIL {EPOCH}: x" in done.stderr and "SLOWER" in done.stderr
    assert f"FAIL {UNUSED}: cores left idle by partial_fit 0 -> 1: lost parallelism" in done.stderr
    assert f"ok   {ERROR}: test error" in done.stderr
    print(f"gate: {took:.0f} s")


@pytest.mark.parametrize(
    "change",
    [
        "slow_down(clone, 'local', 'cpu', 0.2)",
        "slow_down(clone, 'dask', 'wait', 0.2)",
        "slow_down(clone, 'spark', 'cpu', 0.2)",
        "slow_down_workers(clone, 'cpu', 0.2)",
        "slow_down_workers(clone, 'wait', 0.2)",
        "slow_transfer(clone, 'dask', 0.05)",
        "slow_transfer(clone, 'spark', 0.05)",
        "hog_the_gil(clone, 'local')",
        "break_accuracy(clone)",
        "lose_parallelism(clone)",
        "lose_parallelism(clone, 'local')",
        "lose_parallelism(clone, 'dask')",
        "lose_parallelism(clone, 'spark')",
    ],
)
def test_each_throwaway_regression_still_applies_to_this_tree(tmp_path, change):
    """The hand-run proofs (tools/gate_trial.py) patch this tree's modules; a rename must break here, not there."""
    import shutil

    import slowdowns

    clone = tmp_path / "clone"
    shutil.copytree(ROOT / "src", clone / "src")
    changed = eval(change, vars(slowdowns), {"clone": clone})  # noqa: S307
    module = ".".join(changed.relative_to(clone / "src").with_suffix("").parts)
    done = subprocess.run(
        [sys.executable, "-c", f"import {module}"],
        env={"PYTHONPATH": str(clone / "src"), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "throwaway" in changed.read_text()
