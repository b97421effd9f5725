"""nncompare.results: loading a results file, the steady epoch, grouping, labels; and who imports whom."""

from __future__ import annotations

import json
import math

import pytest

from nncompare.errors import UsageError
from nncompare.record import append_jsonl
from nncompare.report import runs_table, write_markdown
from nncompare.results import (
    component_seconds,
    group_by,
    job_group,
    load_records,
    series,
    series_label,
    summarize,
    topology_label,
)
from nncompare.steady import after_first, steady_epoch_s, steady_seconds


def record(engine="local", workers=2, epochs=4, epoch_s=(0.5, 0.1, 0.1, 0.1), repeat=0, **extra) -> dict:
    """A complete record with made-up numbers: what a run writes, no engine needed."""
    epoch_s = list(epoch_s)
    phases = {"place": 0.01, "compute": 0.2, "transfer": 0.03, "average": 0.02, "evaluate": 0.04, "other": 0.05}
    return {
        "engine": engine,
        "dataset": "digits",
        "workers": workers,
        "cores_per_worker": 1,
        "memory_per_worker_bytes": None,
        "epochs": epochs,
        "epochs_run": len(epoch_s),
        "wall_s": 1.0 + sum(epoch_s),
        "startup_s": 1.0,
        "epoch_s": epoch_s,
        "phases_s": phases,
        "test_accuracy": 0.9,
        "repeat": repeat,
        "peak_rss_bytes": {"driver": 1, "workers": 1, "per_worker": {}},
        "versions": {"python": "3"},
        "machine": {"hostname": "h", "cpu": "c", "cores": 2, "memory_bytes": 2**30},
        "commit": "abc",
        "spec": {"model": {"hidden_layer_sizes": [32], "batch_size": 64}, "convergence_stop": False},
        **extra,
    }


# the steady epoch ---------------------------------------------------------------------------------


def test_steady_epoch_is_the_median_after_the_first():
    # a slow first epoch (warm-up) and one slow later epoch (a neighbour's burst): the mean after the
    # first would be 0.4, the mean of all 0.5; the median after the first ignores both
    r = record(epoch_s=[1.0, 0.1, 0.1, 1.0, 0.1])
    assert steady_epoch_s(r) == pytest.approx(0.1)


def test_steady_epoch_of_an_even_count_is_the_middle_pair_mean():
    assert steady_epoch_s(record(epoch_s=[9.0, 0.1, 0.3])) == pytest.approx(0.2)


def test_steady_epoch_falls_back_to_the_only_epoch_and_is_nan_without_any():
    assert steady_epoch_s(record(epoch_s=[0.7])) == 0.7
    assert steady_epoch_s(record(epoch_s=[0.7, 0.2])) == 0.2
    assert math.isnan(steady_seconds([]))
    assert after_first([3]) == [3] and after_first([3, 4, 5]) == [4, 5] and after_first([]) == []


# loading ------------------------------------------------------------------------------------------


def test_load_records_reads_a_file_or_a_report_directory_and_skips_what_is_not_a_record(tmp_path):
    path = tmp_path / "results.jsonl"
    append_jsonl(path, record())
    append_jsonl(path, {"engine": "local"})  # not a whole record
    append_jsonl(path, record(epoch_s=[], epochs=3))  # no epoch ran
    with open(path, "a") as fh:
        fh.write(json.dumps(record(workers=3))[:40])  # a torn last line
    for where in (path, tmp_path):
        assert [r["workers"] for r in load_records(where)] == [2]


def test_load_records_says_what_is_wrong(tmp_path):
    with pytest.raises(UsageError, match="no results file"):
        load_records(tmp_path / "missing.jsonl")
    (tmp_path / "empty.jsonl").write_text("")
    with pytest.raises(UsageError, match="it is empty"):
        load_records(tmp_path / "empty.jsonl")
    (tmp_path / "other.jsonl").write_text('{"a": 1}\n')
    with pytest.raises(UsageError, match="holds no nncompare records"):
        load_records(tmp_path / "other.jsonl")


# grouping and labels ------------------------------------------------------------------------------


def test_repeats_of_one_configuration_make_one_summary_by_their_medians():
    runs = [
        record(repeat=0, epoch_s=[1, 0.2, 0.2]),
        record(repeat=1, epoch_s=[1, 0.4, 0.4]),
        record(repeat=2, epoch_s=[1, 0.9, 0.9]),
        record(workers=4),
        record(epochs=8),
        record(engine="dask"),
    ]
    sums = summarize(runs)
    assert [(s.first["engine"], s.first["workers"], s.first["epochs"], len(s.records)) for s in sums] == [
        ("dask", 2, 4, 1),
        ("local", 4, 4, 1),
        ("local", 2, 4, 3),
        ("local", 2, 8, 1),
    ]
    three = sums[2]
    assert three.epoch_s == pytest.approx(0.4)  # the median of the runs' steady epochs 0.2, 0.4, 0.9
    # start-up and placement are apart: a slow placement must not read as a slow engine start
    assert three.components()["startup"] == pytest.approx(1.0)
    assert three.components()["place"] == pytest.approx(0.01)
    # the record's own words: the phases and startup, nothing renamed
    assert component_seconds(runs[0]) == pytest.approx(
        {
            "compute": 0.2,
            "transfer": 0.03,
            "average": 0.02,
            "other": 0.05,
            "evaluate": 0.04,
            "startup": 1.0,
            "place": 0.01,
        }
    )


def test_records_of_other_models_or_clusters_are_other_jobs():
    a, b = record(), record()
    b["spec"] = {**b["spec"], "model": {"hidden_layer_sizes": [64], "batch_size": 64}}
    c = record(cluster="tcp://elsewhere:8786")
    assert len({job_group(a), job_group(b), job_group(c)}) == 3
    assert len(summarize([a, b, c])) == 3
    groups = group_by([a, b, c, record(workers=4)], job_group)
    assert [len(v) for v in groups.values()] == [2, 1, 1]  # in the order first seen


def test_labels_and_series():
    r = record(memory_per_worker_bytes=2 * 1024**3)
    assert topology_label(record()) == "2w×1c"
    assert topology_label(r) == "2w×1c×2GiB"
    assert series_label(record()) == "local 2w×1c"
    tagged = record(epochs=10, paper={"config": "4x9x11", "columns": [10]})
    assert series_label(tagged) == "local 4x9x11 (2w×1c)"
    by_series = series([record(epochs=4), record(epochs=8), record(workers=4), tagged])
    assert {k: len(v) for k, v in by_series.items()} == {"local 2w×1c": 2, "local 4w×1c": 1, "local 4x9x11 (2w×1c)": 1}
    assert list(by_series) == sorted(by_series)


# the writers --------------------------------------------------------------------------------------


def test_the_runs_table_shows_the_steady_epoch(tmp_path):
    runs = [record(repeat=i, epoch_s=[2.0, s, s, 5.0]) for i, s in enumerate((0.25, 0.5, 0.75))]
    row = [line for line in runs_table(runs) if line.startswith("| local")]
    assert len(row) == 1 and "| 0.500 |" in row[0]  # the median over runs of median(s, s, 5.0) = s
    path = write_markdown(runs, tmp_path, title="t", results_path="r.jsonl")
    text = path.read_text()
    assert "Epoch s: median epoch time after the first" in text and "## Plots" not in text
