"""The gate's statistics, rounds and reports, without asv: the interval and its three outcomes,
the batches of rounds, the calibration by resampling, the Markdown table and the JSON record."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from nncompare.gate import calibration, report, stats
from nncompare.gate.judge import BROKEN, INCONCLUSIVE, PASS, SLOWER, exit_code, judge, judge_time
from nncompare.gate.sequential import Measurements, Plan

ROOT = Path(__file__).resolve().parents[1]
EPOCH = "gate.SteadyEpochs.time_epochs('dask', 2, 1, '2g')"
ERROR = "gate.GateAccuracy.track_test_error('dask')"


def test_the_interval_is_students_t_on_the_log_ratios():
    logs = [0.01, -0.02, 0.03, 0.00]
    found = stats.interval(logs)
    mean, sd = np.mean(logs), np.std(logs, ddof=1)
    half = 3.182446305284263 * sd / 2  # t(0.975, 3)
    assert found.ratio == pytest.approx(math.exp(mean))
    assert (found.low, found.high) == (pytest.approx(math.exp(mean - half)), pytest.approx(math.exp(mean + half)))
    assert found.pairs == 4 and found.log_sd == pytest.approx(sd)


def test_the_outcome_is_where_the_interval_lies_against_the_threshold():
    assert stats.Interval(1.20, 1.10, 1.30, 4, 0.05).outcome(1.05) == stats.SLOWER
    assert stats.Interval(1.00, 0.97, 1.03, 4, 0.05).outcome(1.05) == stats.PASS
    assert stats.Interval(1.04, 1.00, 1.08, 4, 0.05).outcome(1.05) == stats.INCONCLUSIVE


def test_a_clear_slowdown_is_slower_with_its_interval_in_the_line():
    verdict = judge_time(EPOCH, [2.0, 2.2, 2.1, 2.0], [2.5, 2.7, 2.6, 2.4], factor=1.05)
    assert verdict.code == SLOWER and verdict.interval.low > 1.05
    assert "95 % interval x1.1" in verdict.line and "SLOWER than x1.05" in verdict.line


def test_no_change_passes_and_a_straddling_interval_is_inconclusive():
    assert judge_time(EPOCH, [2.0, 2.1, 2.0, 2.05], [2.01, 2.08, 2.02, 2.04], factor=1.05).code == PASS
    straddles = judge_time(EPOCH, [2.0, 2.0, 2.0, 2.0], [2.0, 2.3, 2.02, 2.2], factor=1.05)
    assert straddles.code == INCONCLUSIVE and "INCONCLUSIVE at x1.05" in straddles.line


def test_one_loaded_sample_widens_the_interval_instead_of_failing_the_head():
    # one round where only the head's sample met a load spike
    verdict = judge_time(EPOCH, [2.0, 2.0, 2.0, 2.0], [2.0, 3.0, 2.02, 1.98], factor=1.05)
    assert verdict.code == INCONCLUSIVE and verdict.interval.low < 1.0


def test_too_few_pairs_or_no_head_is_broken():
    assert judge_time(EPOCH, [2.0, 2.0, 2.0], None, factor=1.05).code == BROKEN
    assert judge_time(EPOCH, [2.0, 2.0, 2.0], [2.0, None, None], factor=1.05).code == BROKEN


def test_inconclusive_is_the_least_serious_failure():
    base = {EPOCH: {"value": 2.0, "samples": [2.0, 2.0, 2.0, 2.0]}, ERROR: {"value": 0.14, "samples": None}}
    head = {EPOCH: {"value": 2.1, "samples": [2.0, 2.3, 2.02, 2.2]}, ERROR: {"value": 0.14, "samples": None}}
    assert exit_code(judge(base, head, factor=1.05, max_error_rise=0.01)) == INCONCLUSIVE
    head[ERROR] = {"value": 0.30, "samples": None}
    assert exit_code(judge(base, head, factor=1.05, max_error_rise=0.01)) == 3


def test_a_plan_runs_even_batches_up_to_its_most():
    plan = Plan(first=4, more=4, most=10)
    assert [plan.next_batch(n) for n in (4, 8, 10)] == [4, 2, 0]
    assert calibration.looks(plan) == [4, 8, 10]
    with pytest.raises(ValueError):
        Plan(first=4, more=3, most=12)
    with pytest.raises(ValueError):
        Plan(first=6, more=2, most=4)


def test_batches_join_samples_in_round_order_and_a_failed_batch_breaks_the_pairs():
    m = Measurements()
    m.add({EPOCH: {"value": 1, "samples": [1.0, 1.1]}}, {EPOCH: {"value": 1, "samples": [1.2, 1.3]}})
    m.add({EPOCH: {"value": 1, "samples": [1.4]}}, {EPOCH: {"value": 1, "samples": [1.5]}})
    assert m.base[EPOCH]["samples"] == [1.0, 1.1, 1.4] and m.head[EPOCH]["samples"] == [1.2, 1.3, 1.5]
    m.add({}, {EPOCH: {"value": None, "samples": None}})
    assert m.head[EPOCH]["samples"] is None
    assert judge(m.base, m.head, factor=1.05, max_error_rise=0.01)[0].code == BROKEN


def test_resampled_gates_count_what_the_rule_decides():
    rng = np.random.default_rng(1)
    quiet = rng.normal(0.0, 0.01, 200)
    plan = Plan(first=4, more=4, most=8)
    unchanged = calibration.simulate(quiet, 0.0, plan, 1.05, 2000, rng)
    slowed = calibration.simulate(quiet, math.log(1.2), plan, 1.05, 2000, rng)
    assert unchanged["pass"] > 0.99 and unchanged["slower"] == 0.0
    assert slowed["slower"] > 0.99 and slowed["mean_pairs"] == 4.0
    noisy = calibration.simulate(rng.normal(0.0, 0.2, 200), math.log(1.05), plan, 1.05, 2000, rng)
    assert noisy["inconclusive"] > 0.8 and noisy["mean_pairs"] > 7.5


def record(name, base, head, slowed):
    return {
        "format": 1,
        "benchmarks": {
            f"gate.SteadyEpochs.time_epochs('{e}', 2, 1, '2g')": {
                "base": {"value": 1.0, "samples": base},
                "head": {"value": 1.0, "samples": head},
                "version": "3",
            }
            for e in ("local", "dask")
        },
        "trial": {"name": name, "slowed": slowed},
    }


def test_the_calibration_command_pools_unchanged_engines_and_judges_every_real_run(tmp_path):
    data = tmp_path / "records"
    data.mkdir()
    rng = np.random.default_rng(2)
    for i in range(3):
        base = list(2.0 * np.exp(rng.normal(0, 0.01, 8)))
        head = list(2.0 * np.exp(rng.normal(0, 0.01, 8)))
        (data / f"F{i}.json").write_text(json.dumps(record(f"F{i}", base, head, {})))
    slow = record("R1", [2.0] * 4, [2.2, 2.21, 2.19, 2.2], {"dask": 0.1})
    (data / "R1.json").write_text(json.dumps(slow))
    verdicts = calibration.load([data])
    pools = calibration.noise_pools(verdicts, "3")
    # R1 slowed dask only: its local pairs are unchanged ones
    assert len(pools["local"]) == 28 and len(pools["dask"]) == 24 and len(pools["all"]) == 52
    done = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "gate_calibrate.py"), str(data), "--draws", "500"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "| dask | 24 (" in done.stdout and "| 10 % |" in done.stdout
    assert "| R1 | dask | 10 % | 4 | x1.100" in done.stdout and "| slower |" in done.stdout


def test_the_markdown_table_and_the_record_carry_each_verdict():
    base = {EPOCH: {"value": 2.0, "samples": [2.0, 2.2, 2.1, 2.0]}, ERROR: {"value": 0.14, "samples": None}}
    head = {EPOCH: {"value": 2.5, "samples": [2.5, 2.7, 2.6, 2.4]}, ERROR: {"value": 0.14, "samples": None}}
    verdicts = judge(base, head, factor=1.05, max_error_rise=0.01)
    text = report.markdown(verdicts, base="a" * 40, head="b" * 40, factor=1.05, code=SLOWER, took_s=300)
    assert text.startswith(report.COMMENT_MARKER) and "nncompare gate: slower (exit 1)" in text
    assert f"| `{EPOCH}` | **slower** | x1.2" in text and "| 4 |" in text
    assert f"| `{ERROR}` | pass |" in text
    m = Measurements(base, head)
    data = report.record(
        verdicts, m, base="a", head="b", factor=1.05, code=SLOWER, took_s=1, batches=[], plan=Plan(4, 4, 8), versions={}
    )
    assert data["benchmarks"][EPOCH]["head"]["samples"] == [2.5, 2.7, 2.6, 2.4]
    assert data["verdicts"][1]["pairs"] == 4 and data["verdicts"][1]["low"] > 1.05
