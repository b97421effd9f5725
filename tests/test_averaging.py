"""Weight averaging: sample-weighted, in float32."""

from __future__ import annotations

import numpy as np
import pytest

from nncompare.averaging import average_weights


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


@pytest.mark.parametrize("count", [1, 2, 3, 5, 8, 13, 16])
def test_the_tree_holds_every_shard_once(count):
    from nncompare.averaging import children, subtree

    assert list(subtree(0, count)) == list(range(count))
    for i in range(count):
        below = [s for c in children(i, count) for s in subtree(c, count)]
        assert sorted([i, *below]) == list(subtree(i, count))


def test_partials_merged_anywhere_give_the_drivers_average_bit_for_bit():
    """What a worker merges for its subtree, merged by its parent, is exactly what the driver computes."""
    from nncompare.averaging import children, merge

    rng = np.random.RandomState(1)
    ws = [rng.standard_normal(5000).astype(np.float32) for _ in range(11)]
    counts = [100 + 7 * i for i in range(11)]

    def partial(i):  # as a node does it: its own update, then each child's partial in order
        mean, n = ws[i].copy(), counts[i]
        for c in children(i, len(ws)):
            n = merge(mean, n, *partial(c))
        return mean, n

    assert np.array_equal(partial(0)[0], average_weights(ws, counts))
