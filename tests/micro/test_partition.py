"""Cutting the 60,000 x 784 float32 training set into W shards: indices, copies and views.

``make_shards`` gathers shuffled and stratified shards into C-contiguous copies (what BLAS
and the serialisers want) and cuts ``contiguous`` shards as views; the numpy rows show what
the alternatives cost: blocks as views, strided (every W-th row) views and copies, and a
gather through ``np.take``.
"""

from __future__ import annotations

import numpy as np
import pytest

from nncompare.partition import make_shards, shard_indices

WORKERS = (2, 16)


def assert_partition(parts: list[np.ndarray], n: int) -> None:
    """The index sets are disjoint, cover 0..n-1, and differ in size by at most one."""
    sizes = [len(p) for p in parts]
    assert max(sizes) - min(sizes) <= 1
    assert np.array_equal(np.sort(np.concatenate(parts)), np.arange(n))


@pytest.mark.parametrize("workers", WORKERS)
@pytest.mark.parametrize("how", ["shuffled", "stratified", "contiguous"])
def test_shard_indices(benchmark, train_set, how, workers):
    benchmark.group = f"partition: indices, W={workers}"
    benchmark.extra_info["data"] = train_set.source
    parts = benchmark(shard_indices, train_set.y, workers, how, 0)
    assert len(parts) == workers
    assert_partition(parts, len(train_set.y))
    if how == "stratified":
        # every shard holds each class in proportion: counts per class differ by at most one
        counts = np.array([np.bincount(train_set.y[p], minlength=len(train_set.classes)) for p in parts])
        assert (counts.max(axis=0) - counts.min(axis=0)).max() <= 1


@pytest.mark.parametrize("workers", WORKERS)
@pytest.mark.parametrize("how", ["shuffled", "stratified", "contiguous"])
def test_make_shards(benchmark, train_set, how, workers):
    benchmark.group = f"partition: shards, W={workers}"
    x, y = train_set.x, train_set.y
    benchmark.extra_info["data"] = train_set.source
    if how != "contiguous":  # views move no bytes: a bandwidth would mean nothing
        benchmark.extra_info["bytes"] = int(x.nbytes + y.nbytes)
    shards = benchmark(make_shards, x, y, workers, how, 0)

    parts = shard_indices(y, workers, how, 0)
    assert [s.index for s in shards] == list(range(workers))
    assert sum(len(s) for s in shards) == len(y)
    for s in (shards[0], shards[-1]):
        assert np.array_equal(s.x, x[parts[s.index]]) and np.array_equal(s.y, y[parts[s.index]])
        assert s.x.flags.c_contiguous
        # contiguous shards are views of the set, the others private copies
        assert np.shares_memory(s.x, x) == (how == "contiguous")


def _blocks_view(x, workers):
    return np.array_split(x, workers)


def _strided_view(x, workers):
    return [x[i::workers] for i in range(workers)]


def _strided_copy(x, workers):
    return [np.ascontiguousarray(x[i::workers]) for i in range(workers)]


def _take_copy(x, workers, parts):
    return [np.take(x, p, axis=0) for p in parts]


@pytest.mark.parametrize("workers", WORKERS)
@pytest.mark.parametrize("layout", ["blocks-view", "strided-view", "strided-copy", "take-copy"])
def test_numpy_layouts(benchmark, train_set, layout, workers):
    """Plain numpy ways to cut the images, next to ``make_shards`` in the same group."""
    benchmark.group = f"partition: shards, W={workers}"
    x, n = train_set.x, len(train_set.x)
    benchmark.extra_info["data"] = train_set.source
    if layout.endswith("-copy"):
        benchmark.extra_info["bytes"] = int(x.nbytes)
    if layout == "take-copy":
        parts = shard_indices(train_set.y, workers, "shuffled", 0)
        shards = benchmark(_take_copy, x, workers, parts)
    else:
        shards = benchmark(
            {"blocks-view": _blocks_view, "strided-view": _strided_view, "strided-copy": _strided_copy}[layout],
            x,
            workers,
        )
        parts = (
            np.array_split(np.arange(n), workers)
            if layout == "blocks-view"
            else [np.arange(i, n, workers) for i in range(workers)]
        )

    assert_partition(parts, n)
    assert len(shards) == workers and sum(len(s) for s in shards) == n
    for i in (0, workers - 1):
        assert np.array_equal(shards[i], x[parts[i]])
        assert np.shares_memory(shards[i], x) == layout.endswith("-view")
        # a strided view is not C-contiguous: BLAS or a serialiser has to gather it first
        assert shards[i].flags.c_contiguous == (layout != "strided-view")
