"""The floor measurements: plain processes at once, bare start-ups, an engine in a fresh interpreter."""

from __future__ import annotations

import pytest

from nncompare import floor
from nncompare.job import JobSpec, ModelSpec, Topology
from nncompare.steady import steady_seconds


def digits_spec(engine: str = "local", epochs: int = 2) -> JobSpec:
    return JobSpec(
        dataset="digits",
        engine=engine,
        epochs=epochs,
        convergence_stop=False,
        model=ModelSpec(hidden_layer_sizes=(16,)),
        topology=Topology(workers=2, cores_per_worker=1),
    )


def test_the_floor_epoch_is_the_slowest_of_the_plain_processes():
    got = floor.floor_epoch(digits_spec(), epochs=3)
    assert [len(epochs) for epochs in got["per_process"]] == [3, 3]
    steady = [steady_seconds(epochs) for epochs in got["per_process"]]  # an engine's steady epoch, defined once
    assert got["epoch_s"] == max(steady) > 0
    assert 0 < got["cpu_s"] <= got["epoch_s"] + 0.05 and got["runqueue_s"] >= 0


def test_a_bare_local_cluster_starts_and_reports_its_seconds():
    plain = floor.bare_startup("dask", 1)
    stack = floor.bare_startup("dask", 1, training_stack=True)
    assert plain["startup_s"] > 0 and stack["startup_s"] > 0


def test_an_engine_runs_in_a_fresh_interpreter_and_returns_its_record():
    pytest.importorskip("distributed")
    record = floor.engine_run(digits_spec("dask"))
    assert record["engine"] == "dask" and len(record["epoch_s"]) == 2 and record["startup_s"] > 0


def test_a_failing_child_is_one_error_naming_the_call(tmp_path):
    with pytest.raises(ValueError, match="no bare start-up"):
        floor.bare_startup("local", 1)
    with pytest.raises(RuntimeError, match="engine_child"):
        floor.engine_run(digits_spec("dask").with_(dataset="fashion-mnist"), data_dir=tmp_path / "missing", timeout=120)


def test_the_floor_placement_sends_each_shard_whole_to_its_own_process(fashion_dir):
    spec = digits_spec().with_(dataset="fashion-mnist", train_samples=2000)
    got = floor.floor_placement(spec, data_dir=fashion_dir)
    assert got["bytes"] == 2000 * 784 and 0 < got["cut_s"] < got["placement_s"]


def test_the_floor_placement_needs_pixels():
    with pytest.raises(ValueError, match="no uint8 pixels"):
        floor.floor_placement(digits_spec())
