"""nncompare.evidence and explain's verdicts: how many runs, their spread, what decided it, what would settle it."""

from __future__ import annotations

import json

import pytest
from test_results import record, with_spec

from nncompare.evidence import CLEAR, UNSETTLED, compare, repeats_needed, separation_chance, steady_parts
from nncompare.explain import check_engine_speed, check_too_small


def timed(engine, *, startup, epoch, compute_share=0.8, epochs=4, repeat=0, workers=2, **extra) -> dict:
    """A record whose every epoch after a slow first one takes ``epoch`` s, ``compute_share`` of it the workers'."""
    epoch_s = [2 * epoch] + [epoch] * (epochs - 1)
    rounds = [
        {"epoch": e, "wall_s": t, "compute_s": compute_share * t, "transfer_s": 0.1 * t, "worker_compute_s": [t] * 2}
        for e, t in enumerate(epoch_s, start=1)
    ]
    r = record(engine=engine, epochs=epochs, epoch_s=epoch_s, repeat=repeat, workers=workers, rounds=rounds, **extra)
    phases = {"place": 0.01, "compute": compute_share * sum(epoch_s), "transfer": 0.1 * sum(epoch_s)}
    phases |= {"average": 0.0, "evaluate": 0.0, "other": 0.1 * sum(epoch_s)}
    return {**r, "startup_s": startup, "phases_s": phases, "wall_s": startup + sum(phases.values())}


def test_the_chance_of_a_complete_separation_and_the_repeats_it_takes():
    assert separation_chance(1, 1) == 1.0
    assert separation_chance(2, 2) == pytest.approx(1 / 3)
    assert separation_chance(3, 3) == pytest.approx(0.1)
    assert repeats_needed() == 3


def test_one_run_of_each_is_not_enough_evidence_and_says_what_would_settle_it():
    """The issue's case: one 2-epoch run of each, start-up 97 % of the time, once read "supported: 1 of 1"."""
    dask = [timed("dask", startup=6.0, epoch=0.1, epochs=2)]
    spark = [timed("spark", startup=25.0, epoch=0.1, epochs=2)]
    wall = compare(("dask", "spark"), (dask, spark), steady=False)
    assert wall.verdict == UNSETTLED and wall.faster == 0
    assert wall.settle == ["3 repeats of each (have 1 and 1)"]
    assert wall.decisive_part() == "start-up"
    assert "dask 6 s" in wall.decided_by() and "spark 25 s" in wall.decided_by()
    steady = compare(("dask", "spark"), (dask, spark), steady=True)
    assert steady.verdict == UNSETTLED
    assert any("runs of at least 3 epochs" in s for s in steady.settle)  # a 2-epoch run has one steady epoch
    finding = check_engine_speed(dask + spark, steady=False)
    assert finding.verdict == UNSETTLED and "3 repeats of each" in finding.detail
    assert "decided by start-up" in finding.evidence[-1] and "(1 run)" in finding.evidence[-1]


def test_separated_repeats_are_clear_and_name_the_part_that_decided():
    dask = [timed("dask", startup=6.0, epoch=e, repeat=i) for i, e in enumerate((0.50, 0.52, 0.51))]
    spark = [timed("spark", startup=25.0, epoch=e, repeat=i) for i, e in enumerate((0.30, 0.31, 0.29))]
    steady = compare(("dask", "spark"), (dask, spark), steady=True)
    assert steady.verdict == CLEAR and steady.faster == 1
    assert steady.ratio == pytest.approx(0.51 / 0.30)
    assert steady.decisive_part() == "compute"  # 80 % of each epoch is the workers' compute
    assert steady.sides[0].text() == "0.51 s (3 runs, 0.5–0.52 s)"
    wall = compare(("dask", "spark"), (dask, spark), steady=False)
    assert wall.verdict == CLEAR and wall.faster == 0 and wall.decisive_part() == "start-up"
    # training speed and time to a model are judged apart: here they disagree, and each verdict says so
    assert check_engine_speed(dask + spark, steady=True).verdict == "refuted"
    assert check_engine_speed(dask + spark, steady=False).verdict == "supported"


def test_overlapping_repeats_are_not_enough_evidence():
    dask = [timed("dask", startup=6.0, epoch=e, repeat=i) for i, e in enumerate((0.30, 0.50, 0.40))]
    spark = [timed("spark", startup=6.1, epoch=e, repeat=i) for i, e in enumerate((0.35, 0.45, 0.60))]
    c = compare(("dask", "spark"), (dask, spark), steady=True)
    assert c.overlap and c.verdict == UNSETTLED and "overlap" in c.settle[0]
    assert check_engine_speed(dask + spark, steady=True).verdict == UNSETTLED


def test_engines_are_compared_only_on_the_same_job():
    """Dask and Spark runs of different sample counts, models or sync were once paired as one job."""
    for other in (
        {"train_samples": 500},
        {"spec": {"model": {"hidden_layer_sizes": [64]}}},
        {"spec": {"sync_every": 4}},
    ):
        dask = [timed("dask", startup=6.0, epoch=0.5, repeat=i) for i in range(3)]
        extra = {k: v for k, v in other.items() if k != "spec"}
        spark = [timed("spark", startup=25.0, epoch=0.3, repeat=i, **extra) for i in range(3)]
        spark = [with_spec(r, **other["spec"]) if "spec" in other else r for r in spark]
        finding = check_engine_speed(dask + spark, steady=True)
        assert finding.verdict == "not tested" and not finding.comparisons
    # two jobs, each run on both engines: two comparisons, labelled by what differs between the jobs
    runs = [timed(e, startup=1.0, epoch=0.3, train_samples=n) for e in ("dask", "spark") for n in (500, 1437)]
    finding = check_engine_speed(runs, steady=True)
    assert len(finding.comparisons) == 2
    assert [e.split(":")[0] for e in finding.evidence[1:]] == ["500 samples", "1,437 samples"]


def test_the_too_small_verdict_is_judged_on_steady_epochs_with_repeats():
    def runs(workers, epoch):
        return [timed("dask", startup=6.0, epoch=epoch * (1 + 0.01 * i), workers=workers, repeat=i) for i in range(3)]

    slower = runs(2, 0.3) + runs(4, 0.5)
    assert check_too_small(slower).verdict == "supported"
    assert check_too_small(runs(2, 0.5) + runs(4, 0.3)).verdict == "refuted"
    single = [runs(2, 0.3)[0], runs(4, 0.5)[0]]
    finding = check_too_small(single)
    assert finding.verdict == UNSETTLED and "3 repeats of each" in finding.detail
    assert check_too_small(runs(2, 0.3)).verdict == "not tested"  # one worker count
    parts = steady_parts(slower[0])
    assert parts["compute"] == pytest.approx(0.8 * 0.3) and parts["transfer"] == pytest.approx(0.1 * 0.3)


@pytest.mark.slow
def test_explain_on_one_short_run_per_engine_asks_for_repeats(digits, tmp_path, capsys):
    """The issue's case on real engines: one 2-epoch run each, start-up most of the time, no verdict without repeats."""
    from nncompare.cli import main
    from nncompare.engines.registry import plugins
    from nncompare.job import JobSpec, ModelSpec, Topology
    from nncompare.record import append_jsonl
    from nncompare.training import run_job

    results = tmp_path / "one-each.jsonl"
    model = ModelSpec(hidden_layer_sizes=(16,), batch_size=64)
    for engine in plugins():
        spec = JobSpec(dataset="digits", engine=engine, epochs=2, model=model, topology=Topology(workers=2))
        append_jsonl(results, {**run_job(spec, dataset=digits), "repeat": 0})
    main(["explain", str(results), "--json"])
    found = {f["claim"].split(" (")[0]: f for f in json.loads(capsys.readouterr().out)["findings"]}
    speed = next(f for claim, f in found.items() if "trains faster than" in claim)
    sooner = next(f for claim, f in found.items() if "reaches a trained model sooner" in claim)
    for finding in (speed, sooner):
        assert finding["verdict"] == UNSETTLED and "3 repeats of each (have 1 and 1)" in finding["detail"]
        (comparison,) = finding["comparisons"]
        assert all(side["runs"] == 1 for side in comparison["sides"].values())
    assert "runs of at least 3 epochs" in speed["detail"]  # two epochs leave one steady epoch
    assert sooner["comparisons"][0]["decided_by"].startswith("start-up")  # the engines' start, not training


def test_a_part_that_explains_little_of_the_difference_is_not_said_to_decide_it():
    """Two epochs 10 % apart whose parts differ by less than half of that: no one part decided it."""
    dask = [timed("dask", startup=6.0, epoch=1.00, compute_share=0.80)]
    # compute 0.845 s against 0.80, transfer 0.11 against 0.10, the rest 0.145 against 0.10: no gap reaches 0.05 s
    spark = [timed("spark", startup=6.0, epoch=1.10, compute_share=0.768)]
    c = compare(("dask", "spark"), (dask, spark), steady=True)
    assert c.faster == 0 and c.decisive_part() == "rest"
    assert c.decided_by().startswith("no one part (the largest gap: averaging and bookkeeping (dask ")


def test_seconds_read_without_exponents_and_tiny_ones_are_not_zero():
    from nncompare.evidence import seconds

    shown = [seconds(x) for x in (0.0, 0.00042, 0.0123, 1.5, 2500.4)]
    assert shown == ["0 s", "0.00042 s", "0.0123 s", "1.5 s", "2500 s"]
