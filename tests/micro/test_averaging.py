"""Averaging W workers' weight buffers (79,510 float32 each), as the driver does every round.

``average_weights`` works in float32 into a preallocated buffer (what the engines do);
the reference is numpy's float64 ``np.average`` over the stacked buffers, converted back to
float32 because that is what the model takes. Both see the same inputs: the real initial
weights plus small per-worker drifts, weighted by the sizes of a 60,000-sample split.
"""

from __future__ import annotations

import numpy as np
import pytest

from nncompare.averaging import average_weights

WORKERS = (2, 4, 8, 16, 32, 64)
N_TRAIN = 60_000


def worker_updates(weights: np.ndarray, workers: int):
    rng = np.random.default_rng(workers)
    drift = np.float32(1e-2) * np.abs(weights).mean()
    updates = [
        (weights + drift * rng.standard_normal(weights.size, dtype=np.float32)).astype(np.float32)
        for _ in range(workers)
    ]
    counts = [len(p) for p in np.array_split(np.arange(N_TRAIN), workers)]
    return updates, counts


def float64_average(updates, counts):
    return np.average(np.stack(updates).astype(np.float64), axis=0, weights=counts).astype(np.float32)


@pytest.mark.parametrize("workers", WORKERS)
@pytest.mark.parametrize("method", ["float32-inplace", "numpy-float64"])
def test_average(benchmark, weights, method, workers):
    benchmark.group = f"average: W={workers}"
    updates, counts = worker_updates(weights, workers)
    benchmark.extra_info["bytes"] = int(sum(u.nbytes for u in updates))
    if method == "float32-inplace":
        out = np.empty_like(weights)
        result = benchmark(average_weights, updates, counts, out)
        assert result is out
    else:
        result = benchmark(float64_average, updates, counts)

    assert result.dtype == np.float32 and result.shape == weights.shape
    exact = np.average(np.stack(updates).astype(np.float64), axis=0, weights=counts)
    # within float32 rounding of the weights' scale (a few ulps at |w| ~ 0.1)
    np.testing.assert_allclose(result, exact, rtol=0, atol=4 * np.finfo(np.float32).eps * np.abs(exact).max())
