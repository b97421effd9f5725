"""Split a training set into W shards, one per worker.

Shards are contiguous, C-ordered copies (BLAS reads them row by row and they serialise
without a gather). ``shuffled`` mixes the set with the job's seed before cutting it,
``stratified`` deals each class round-robin so every shard has the same class mix,
``contiguous`` cuts the file order as it is (views, no copy).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Shard:
    index: int
    x: np.ndarray
    y: np.ndarray

    @property
    def nbytes(self) -> int:
        return int(self.x.nbytes + self.y.nbytes)

    def __len__(self) -> int:
        return len(self.y)


def shard_indices(y: np.ndarray, workers: int, how: str = "shuffled", seed: int = 0) -> list[np.ndarray]:
    """Index arrays of the W shards; sizes differ by at most one sample."""
    n = len(y)
    if workers > n:
        raise ValueError(f"cannot split {n} samples into {workers} shards")
    if how == "contiguous":
        order = np.arange(n)
    elif how == "shuffled":
        order = np.random.RandomState(seed).permutation(n)
    elif how == "stratified":
        rng = np.random.RandomState(seed)
        per_class = [rng.permutation(np.flatnonzero(y == c)) for c in np.unique(y)]
        order = np.concatenate(per_class)
        # dealing the class-sorted order round-robin gives every shard each class in proportion
        return [np.sort(order[i::workers]) for i in range(workers)]
    else:
        raise ValueError(f"unknown partition {how!r}")
    return [np.sort(part) if how == "shuffled" else part for part in np.array_split(order, workers)]


def make_shards(x: np.ndarray, y: np.ndarray, workers: int, how: str = "shuffled", seed: int = 0) -> list[Shard]:
    shards = []
    for i, idx in enumerate(shard_indices(y, workers, how, seed)):
        if how == "contiguous":
            sl = slice(int(idx[0]), int(idx[-1]) + 1)
            shards.append(Shard(i, x[sl], y[sl]))
        else:
            shards.append(Shard(i, np.ascontiguousarray(x[idx]), np.ascontiguousarray(y[idx])))
    return shards
