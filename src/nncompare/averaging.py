"""Weight averaging in float32, weighted by how many samples each shard trained on, as a tree.

Two partial averages merge as ``m + a (m' - m)`` with ``a = n' / (n + n')``: float32 throughout
(a float64 average fed back to a float32 model costs a conversion per round and per worker),
exact when the two hold the same weights, and a partial of zero samples counts for nothing.

The shards' partials merge along a binomial tree rooted at shard 0 (:func:`children`: shard 0
merges shards 1, 2, 4, ...; shard 2 merges shard 3; shard 4 merges 5 and 6, and so on), so that
an engine can do the reduction in its workers, ``log2 W`` merges deep, instead of passing every
worker's weights through the driver, and still get the driver's result bit for bit: every
merge is the same float32 operations on the same operands, wherever it runs. The driver's
:func:`average_weights` walks the same tree.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def children(index: int, count: int) -> list[int]:
    """The shards whose partial averages shard ``index`` merges into its own, in merge order.

    Shard ``i``'s subtree is ``[i, i + lowbit(i))`` (shard 0's: all ``count``): it merges the
    subtrees that start at ``i + 1``, ``i + 2``, ``i + 4``, ... while they lie inside its own.
    """
    out, step = [], 1
    while index + step < count and (index == 0 or index % (2 * step) == 0):
        out.append(index + step)
        step *= 2
    return out


def subtree(index: int, count: int) -> range:
    """The shards whose weights shard ``index``'s partial average holds."""
    size = index & -index if index else count
    return range(index, min(count, index + size))


def merge(mean: np.ndarray, n: int, other: np.ndarray, other_n: int) -> int:
    """Merge ``other`` (the average over ``other_n`` samples) into ``mean`` (over ``n``), in place; the new count."""
    if other_n == 0:
        return n
    if n == 0:
        mean[...] = other
        return other_n
    total = n + other_n
    delta = np.subtract(other, mean, dtype=np.float32)
    delta *= np.float32(other_n / total)
    mean += delta
    return total


def average_weights(weights: Sequence[np.ndarray], counts: Sequence[int], out: np.ndarray | None = None) -> np.ndarray:
    """Sample-weighted mean of float32 weight buffers (one per shard, in shard order), as float32.

    Merged along :func:`children`'s tree, as an engine that reduces in its workers merges them.
    """
    if not weights:
        raise ValueError("nothing to average")
    if float(sum(counts)) <= 0:
        raise ValueError("every shard trained on zero samples")

    def reduce(index: int, into: np.ndarray | None) -> tuple[np.ndarray, int]:
        mean = np.array(weights[index], dtype=np.float32, copy=True) if into is None else into
        if into is not None:
            mean[...] = weights[index]
        n = int(counts[index])
        for child in children(index, len(weights)):
            n = merge(mean, n, *reduce(child, None))
        return mean, n

    return reduce(0, out)[0]
