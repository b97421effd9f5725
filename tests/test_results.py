"""nncompare.results: loading a results file, the steady epoch, like-with-like grouping, labels, the DataFrame."""

from __future__ import annotations

import json
import math

import pytest

from nncompare.document import markdown
from nncompare.errors import UsageError
from nncompare.job import JobSpec, ModelSpec, Topology
from nncompare.record import append_jsonl
from nncompare.report import report_blocks, runs_table
from nncompare.results import (
    STOPPING,
    common,
    component_seconds,
    configuration,
    frame,
    group_by,
    job,
    job_group,
    labels,
    load_records,
    series,
    summarize,
    topology_label,
)
from nncompare.steady import after_first, steady_epoch_s, steady_seconds


def record(
    engine="local", workers=2, epochs=4, epoch_s=(0.5, 0.1, 0.1, 0.1), repeat=0, dataset="digits", spec=None, **extra
) -> dict:
    """A complete record with made-up timings and the spec a run of that job writes; no engine needed."""
    epoch_s = list(epoch_s)
    phases = {"place": 0.01, "compute": 0.2, "transfer": 0.03, "average": 0.02, "evaluate": 0.04, "other": 0.05}
    job_spec = JobSpec(
        dataset=dataset,
        engine=engine,
        epochs=epochs,
        model=ModelSpec(hidden_layer_sizes=(32,), batch_size=64),
        topology=Topology(workers=workers, memory_per_worker_bytes=extra.get("memory_per_worker_bytes")),
        convergence_stop=False,
    ).to_dict()
    return {
        "engine": engine,
        "dataset": dataset,
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
        "versions": {"python": "3", "nncompare": "0.1.0"},
        "machine": {"hostname": "h", "cpu": "c", "cores": 2, "memory_bytes": 2**30},
        "commit": "abc",
        "train_samples": 1437,
        "spec": {**job_spec, **(spec or {})},
        **extra,
    }


def with_spec(r: dict, **changes) -> dict:
    """The record as if its job had been defined with ``changes`` (spec keys, ``model`` merged)."""
    spec = dict(r["spec"])
    for k, v in changes.items():
        spec[k] = {**spec[k], **v} if isinstance(v, dict) else v
    return {**r, "spec": spec}


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


# like with like: grouping and labels --------------------------------------------------------------


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
    assert three.spread(steady_epoch_s) == pytest.approx((0.2, 0.9))
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


def test_the_job_is_the_whole_spec_with_cluster_and_version():
    r = record()
    fields = job(r)
    for name in ("engine", "dataset", "epochs", "workers", "cores_per_worker", "memory_per_worker_bytes"):
        assert fields[name] == r[name]
    for name in ("hidden_layer_sizes", "activation", "solver", "batch_size", "learning_rate_init", "alpha", "seed"):
        assert name in fields  # the model's settings, flattened
    for name in ("sync_every", "partition", "convergence_stop", "tol", "n_iter_no_change", "cluster", "nncompare"):
        assert name in fields
    assert fields["hidden_layer_sizes"] == (32,) and fields["train_samples"] == 1437
    # a field a later spec adds joins the job by itself
    assert job(with_spec(r, warm_start=True))["warm_start"] is True
    assert configuration(r) != configuration(with_spec(r, warm_start=True))


@pytest.mark.parametrize(
    "change",
    [
        {"dataset": "fashion-mnist"},
        {"train_samples": 500},
        {"spec": {"model": {"hidden_layer_sizes": [64]}}},
        {"spec": {"model": {"learning_rate_init": 0.01}}},
        {"spec": {"model": {"activation": "tanh"}}},
        {"spec": {"sync_every": 4}},
        {"spec": {"partition": "contiguous"}},
        {"cluster": "tcp://elsewhere:8786"},
        {"versions": {"python": "3", "nncompare": "0.2.0"}},
    ],
    ids=lambda c: next(iter(c.get("spec", c))),
)
def test_runs_that_differ_in_any_part_of_the_job_are_not_joined(change):
    """A digits and a Fashion-MNIST run of one engine and topology were once one series, one row, one pair."""
    a = record()
    b = record(
        **{k: v for k, v in change.items() if k not in ("spec", "dataset")}, dataset=change.get("dataset", "digits")
    )
    if "spec" in change:
        b = with_spec(b, **change["spec"])
    assert configuration(a) != configuration(b) and job_group(a) != job_group(b)
    assert len(summarize([a, b])) == 2
    assert len(series([a, b])) == 2
    label_a, label_b = labels([a, b])
    assert label_a != label_b  # the labels name the difference...
    assert "local" not in label_a and "2w" not in label_a  # ...and nothing the two share


def test_runs_differing_only_in_training_samples_get_rows_that_say_so():
    runs = [record(train_samples=500), record(train_samples=1437)]
    table = runs_table(runs)
    assert [row[0] for row in table.rows] == ["500 samples", "1,437 samples"]
    text = markdown(report_blocks(runs, title="t", results_path="r.jsonl"))
    assert "All runs: local, digits, 2w×1c, max 4 epochs, hidden 32" in text  # what the rows share, once


def test_labels_name_only_what_differs():
    assert labels([record(engine="local"), record(engine="dask")]) == ["local", "dask"]
    assert labels([record(workers=2), record(workers=4)]) == ["2 workers", "4 workers"]
    both = labels([record(workers=2), record(workers=4, engine="dask")])
    assert both == ["local, 2 workers", "dask, 4 workers"]
    # a figure's axis is no difference between its series: its series differ by engine only
    assert labels([record(workers=2), record(workers=4, engine="dask")], along=("workers",)) == ["local", "dask"]
    assert labels([record(), record()]) == ["local", "local"]  # nothing differs: the engine names it
    assert common([record(workers=2), record(workers=4)]).startswith("local, digits, 1 core per worker, max 4 epochs")


def test_topology_labels_and_the_papers_names():
    assert topology_label(record()) == "2w×1c"
    assert topology_label(record(memory_per_worker_bytes=2 * 1024**3)) == "2w×1c×2GiB"
    tagged = record(epochs=10, paper={"config": "4x9x11", "columns": [10]})
    assert topology_label(tagged) == "4x9x11 (2w×1c)" and topology_label(tagged, paper=False) == "2w×1c"
    other = record(workers=4, epochs=10, paper={"config": "5x7x13", "columns": [10]})
    assert labels([tagged, other]) == ["4x9x11 (2 workers)", "5x7x13 (4 workers)"]


def test_series_vary_along_the_epoch_cap_and_are_labelled_by_the_rest():
    runs = [record(epochs=4), record(epochs=8), record(workers=4), record(engine="dask", epochs=8)]
    found = series(runs, STOPPING)
    assert [(s.label, len(s.summaries)) for s in found] == [
        ("dask, 2 workers", 1),
        ("local, 2 workers", 2),
        ("local, 4 workers", 1),
    ]
    groups = group_by(runs, job_group)  # the what-if model's groups: one job whatever its topology and cap
    assert [len(v) for v in groups.values()] == [3, 1]


# a DataFrame for notebooks ------------------------------------------------------------------------


def test_the_frame_has_one_row_per_run_with_phases_and_memory_flattened():
    runs = [record(repeat=i) for i in range(3)] + [record(engine="dask")]
    df = frame(runs)
    assert len(df) == 4
    for key in ("engine", "workers", "wall_s", "epoch_s", "test_accuracy", "repeat", "commit"):
        assert key in df.columns  # the record's own keys
    for phase in ("place", "compute", "transfer", "average", "evaluate", "other"):
        assert df[f"phases_s.{phase}"].tolist() == [r["phases_s"][phase] for r in runs]
    assert df["peak_rss_bytes.driver"].tolist() == [1, 1, 1, 1]
    assert "job.batch_size" in df.columns and "versions.nncompare" in df.columns
    assert df["steady_epoch_s"].tolist() == pytest.approx([steady_epoch_s(r) for r in runs])
    assert df.groupby("engine").size().to_dict() == {"dask": 1, "local": 3}  # ready for a notebook


# the writers --------------------------------------------------------------------------------------


def test_the_runs_table_shows_the_steady_epoch_and_the_range_of_repeats():
    runs = [record(repeat=i, epoch_s=[2.0, s, s, 5.0]) for i, s in enumerate((0.25, 0.5, 0.75))]
    (row,) = runs_table(runs).rows
    assert row[1] == "3"  # runs
    assert row[5] == "0.500 (0.250–0.750)"  # the median over runs of median(s, s, 5.0) = s, and the range
