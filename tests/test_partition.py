"""Shards: every sample in exactly one, and shards cut from pixels scale to the loader's features."""

from __future__ import annotations

import numpy as np
import pytest

from nncompare.idx import scale_pixels
from nncompare.job import ModelSpec
from nncompare.partition import make_shards, shard_indices
from nncompare.trainer import ShardTrainer


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
