"""The gate's floor reference (benchmarks/reference.py) and the clock it gives SteadyEpochs."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks import common, gate  # noqa: E402
from benchmarks.reference import CHUNK_ROWS, FloorReference  # noqa: E402


def digits():
    from sklearn.datasets import load_digits

    data = load_digits()
    return (data.data / 16).astype(np.float32), data.target, np.arange(10)


def test_a_pass_trains_every_process_once_and_scales_its_chunk_to_a_shard():
    x, y, classes = digits()
    floor = FloorReference(x, y, classes, processes=2, shard_rows=len(x) // 2)
    try:
        assert floor.chunk_rows == min(CHUNK_ROWS, len(x) // 2) and floor.scale == 1.0
        passes = [floor.pass_s() for _ in range(3)]
        assert all(0 < p < 60 for p in passes)
        assert all(proc.poll() is None for proc in floor._procs)
    finally:
        floor.close()
    assert not floor._procs


def test_a_chunk_smaller_than_the_shard_is_scaled_up():
    x, y, classes = digits()
    floor = FloorReference(x, y, classes, processes=1, shard_rows=4 * len(x))
    try:
        assert floor.chunk_rows == len(x) and floor.scale == 4.0
    finally:
        floor.close()


def test_a_floor_process_that_dies_is_an_error_not_a_hang():
    x, y, classes = digits()
    floor = FloorReference(x, y, classes, processes=2, shard_rows=len(x) // 2)
    try:
        floor.wait_ready()
        floor._procs[1].kill()  # the fault, injected here
        floor._procs[1].wait()
        with pytest.raises(RuntimeError, match="floor process died"):
            floor.pass_s()
    finally:
        floor.close()


def test_a_gate_sample_counts_floor_epochs_on_the_local_engine(monkeypatch):
    monkeypatch.setenv(common.DATASET_ENV, "digits")
    common.dataset_name.cache_clear()
    common.dataset.cache_clear()
    bench = gate.SteadyEpochs()
    try:
        bench.setup("local", 2, 1, "2g")
        before = gate.floor_epochs_clock()
        bench.time_epochs("local", 2, 1, "2g")
        sample = gate.floor_epochs_clock() - before
    finally:
        bench.teardown("local", 2, 1, "2g")
        common.dataset_name.cache_clear()
        common.dataset.cache_clear()
    per_epoch = list(gate._RATIOS)
    assert len(per_epoch) == gate.EPOCHS and sample == pytest.approx(gate.EPOCHS * gate.interquartile_mean(per_epoch))
    # the local engine trains its two shards in turn, the floor one chunk: about 2 floor epochs each
    assert all(0.5 < r < 8 for r in per_epoch), per_epoch


def test_the_interquartile_mean_leaves_out_a_quarter_at_each_end():
    # an epoch whose load correction came out 0, and one that met a spike: neither moves the figure
    assert gate.interquartile_mean([1.0, 0.0, 1.02, 0.98, 1.0, 9.0, 1.01, 0.99]) == pytest.approx(1.0)
    assert gate.interquartile_mean([1.0, 2.0, 3.0]) == 2.0  # fewer than 4: the mean of all
    assert gate.interquartile_mean([4.0]) == 4.0
