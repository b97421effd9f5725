"""Job spec, memory parsing, partitioning, averaging, the record file."""

from __future__ import annotations

import json
import multiprocessing
import os

import numpy as np
import pytest

from nncompare.averaging import average_weights
from nncompare.errors import UsageError
from nncompare.idx import scale_pixels
from nncompare.job import JobSpec, ModelSpec, Topology, format_memory, parse_memory
from nncompare.model import layer_shapes, n_weights
from nncompare.partition import make_shards, shard_indices
from nncompare.record import append_jsonl, read_jsonl
from nncompare.trainer import ShardTrainer


@pytest.mark.parametrize(
    "text, expected",
    [
        ("11g", 11 * 1024**3),
        ("13GB", 13 * 10**9),
        ("512MiB", 512 * 1024**2),
        ("1.5g", int(1.5 * 1024**3)),
        ("2048", 2048),
        (" 4 GiB ", 4 * 1024**3),
        ("300m", 300 * 1024**2),
    ],
)
def test_parse_memory(text, expected):
    assert parse_memory(text) == expected


@pytest.mark.parametrize("text", ["", "lots", "12x", "-1g", "0", "g"])
def test_parse_memory_rejects(text):
    with pytest.raises(UsageError):
        parse_memory(text)


def test_format_memory():
    assert format_memory(11 * 1024**3) == "11 GiB" and format_memory(None) == "auto"


def test_spec_is_frozen_hashable_and_round_trips():
    spec = JobSpec(
        dataset="fashion-mnist",
        engine="dask",
        epochs=7,
        model=ModelSpec(hidden_layer_sizes=[64, 32]),
        topology=Topology(3, 2, parse_memory("2g")),
        sync_every=5,
    )
    assert spec.model.hidden_layer_sizes == (64, 32)
    assert hash(spec) == hash(JobSpec.from_dict(json.loads(json.dumps(spec.to_dict()))))
    assert JobSpec.from_dict(spec.to_dict()) == spec
    with pytest.raises(AttributeError):
        spec.epochs = 3  # type: ignore[misc]
    assert spec.key() == JobSpec.from_dict(spec.to_dict()).key()
    assert spec.key() != spec.with_(epochs=8).key()


@pytest.mark.parametrize(
    "kwargs",
    [
        {"engine": "ray"},
        {"dataset": "cifar"},
        {"epochs": 0},
        {"sync_every": 0},
        {"partition": "random"},
        {"train_samples": 3, "workers": 4},
    ],
)
def test_spec_rejects(kwargs):
    kwargs = dict(kwargs)
    if "workers" in kwargs:
        kwargs["topology"] = Topology(workers=kwargs.pop("workers"))
    with pytest.raises(UsageError):
        JobSpec(**kwargs)


def test_model_spec_rejects():
    for bad in (
        {"hidden_layer_sizes": ()},
        {"hidden_layer_sizes": (0,)},
        {"activation": "gelu"},
        {"batch_size": 0},
        {"solver": "lbfgs"},
        {"learning_rate_init": 0},
    ):
        with pytest.raises(UsageError):
            ModelSpec(**bad)


def test_topology_rejects_more_cores_than_the_machine():
    with pytest.raises(UsageError, match="more than this machine"):
        Topology(cores_per_worker=(os.cpu_count() or 1) + 1).check_fits_this_machine()


def test_layer_layout_of_784_100_10():
    spec = ModelSpec()
    assert layer_shapes(spec, 784, 10) == [(784, 100), (100, 10), (100,), (10,)]
    assert n_weights(spec, 784, 10) == 79510  # 318,040 bytes as float32


@pytest.mark.parametrize("how", ["shuffled", "stratified", "contiguous"])
@pytest.mark.parametrize("workers", [1, 3, 7])
def test_shards_partition_the_training_set(how, workers):
    y = np.repeat(np.arange(10), 37)
    x = np.arange(len(y), dtype=np.float32)[:, None] * np.ones((1, 4), np.float32)
    parts = shard_indices(y, workers, how, seed=3)
    assert sorted(np.concatenate(parts).tolist()) == list(range(len(y)))
    assert max(map(len, parts)) - min(map(len, parts)) <= 1
    shards = make_shards(x, y, workers, how, seed=3)
    for shard, idx in zip(shards, parts):
        assert np.array_equal(shard.y, y[idx]) and np.array_equal(shard.x[:, 0], idx.astype(np.float32))
        assert shard.x.flags.c_contiguous
    if how == "stratified" and workers == 7:
        for shard in shards:
            assert np.bincount(shard.y, minlength=10).max() - np.bincount(shard.y, minlength=10).min() <= 1


@pytest.mark.parametrize("how", ["shuffled", "contiguous"])
def test_shards_cut_from_pixels_scale_to_the_loaders_features_bit_for_bit(how):
    pixels = np.random.RandomState(0).randint(0, 256, size=(50, 6)).astype(np.uint8)
    x, y = scale_pixels(pixels), np.arange(50) % 10
    for plain, packed in zip(make_shards(x, y, 3, how), make_shards(x, y, 3, how, pixels=pixels)):
        assert packed.wire_x.dtype == np.uint8 and packed.nbytes == plain.nbytes - 3 * packed.wire_x.size
        assert np.array_equal(packed.x, plain.x) and np.array_equal(packed.y, plain.y)
        trained = ShardTrainer(0, packed.wire_x, packed.y, np.arange(10), ModelSpec(hidden_layer_sizes=(4,)))
        assert trained.x.dtype == np.float32 and np.array_equal(trained.x, plain.x)


def test_contiguous_shards_are_views():
    x, y = np.zeros((10, 2), np.float32), np.arange(10)
    assert all(np.shares_memory(s.x, x) for s in make_shards(x, y, 2, "contiguous"))


@pytest.mark.parametrize("n", [1, 2, 3, 7, 64])
def test_averaging_identical_weights_returns_them_exactly(n):
    w = np.random.RandomState(n).standard_normal(79510).astype(np.float32)
    avg = average_weights([w.copy() for _ in range(n)], [30000 // n + i for i in range(n)])
    assert avg.dtype == np.float32 and np.array_equal(avg, w)


def test_averaging_is_sample_weighted_in_float32():
    rng = np.random.RandomState(0)
    ws = [rng.standard_normal(1000).astype(np.float32) for _ in range(5)]
    counts = [100, 200, 300, 0, 400]
    avg = average_weights(ws, counts)
    assert avg.dtype == np.float32
    np.testing.assert_allclose(avg, np.average(np.stack(ws), axis=0, weights=counts), rtol=0, atol=2e-6)
    zero_first = average_weights([ws[3], ws[0]], [0, 5])
    np.testing.assert_array_equal(zero_first, ws[0])


def _append_many(path, worker):
    for i in range(50):
        append_jsonl(path, {"worker": worker, "i": i, "pad": "x" * 5000})


def test_append_jsonl_lines_stay_whole_under_concurrent_writers(tmp_path):
    path = tmp_path / "r.jsonl"
    procs = [multiprocessing.Process(target=_append_many, args=(path, w)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    records = read_jsonl(path)
    assert len(records) == 200 and len(path.read_text().splitlines()) == 200


def test_read_jsonl_skips_a_torn_last_line(tmp_path):
    path = tmp_path / "r.jsonl"
    append_jsonl(path, {"a": 1})
    with open(path, "a") as fh:
        fh.write('{"a": 2, "b"')
    assert read_jsonl(path) == [{"a": 1}]
    append_jsonl(path, {"a": 3})  # the torn line is fenced off, not glued to the new one
    assert read_jsonl(path) == [{"a": 1}, {"a": 3}]
