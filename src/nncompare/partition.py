"""Split a training set into W shards, one per worker.

Shards are contiguous, C-ordered copies (BLAS reads them row by row and they serialise
without a gather). ``shuffled`` mixes the set with the job's seed before cutting it,
``stratified`` deals each class round-robin so every shard has the same class mix,
``contiguous`` cuts the file order as it is (views, no copy).

Given the images as stored (uint8), shards are cut from those: a quarter of the bytes to
gather and to send, and each worker scales its own (``idx.scale_pixels``, the loader's scaling).
"""

from __future__ import annotations

import numpy as np

from nncompare.idx import scale_pixels


class Shard:
    """One worker's rows: labels ``y``, and features ``x`` or the uint8 ``pixels`` they are scaled from."""

    def __init__(
        self, index: int, x: np.ndarray | None = None, y: np.ndarray | None = None, *, pixels: np.ndarray | None = None
    ):
        if (x is None) == (pixels is None) or y is None:
            raise ValueError("a shard needs labels and either features or pixels")
        self.index, self.y, self.pixels, self._x = index, y, pixels, x

    @property
    def x(self) -> np.ndarray:
        """The float32 features (scaled from ``pixels`` on first use, where the shard has them)."""
        if self._x is None:
            self._x = scale_pixels(self.pixels)
        return self._x

    @property
    def wire_x(self) -> np.ndarray:
        """What an engine sends a worker: the uint8 pixels where the shard has them, else the features."""
        return self.pixels if self.pixels is not None else self.x

    @property
    def nbytes(self) -> int:
        """Bytes an engine sends to place the shard (``wire_x`` and the labels)."""
        return int(self.wire_x.nbytes + self.y.nbytes)

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


def make_shards(
    x: np.ndarray,
    y: np.ndarray,
    workers: int,
    how: str = "shuffled",
    seed: int = 0,
    *,
    pixels: np.ndarray | None = None,
) -> list[Shard]:
    """The W shards; with ``pixels`` (``x == scale_pixels(pixels)``) they are cut from those instead of ``x``."""
    shards = []
    for i, idx in enumerate(shard_indices(y, workers, how, seed)):
        rows = slice(int(idx[0]), int(idx[-1]) + 1) if how == "contiguous" else idx
        labels = y[rows] if how == "contiguous" else np.ascontiguousarray(y[rows])
        if pixels is not None:
            shards.append(Shard(i, y=labels, pixels=np.ascontiguousarray(pixels[rows])))
        else:
            shards.append(Shard(i, x[rows] if how == "contiguous" else np.ascontiguousarray(x[rows]), labels))
    return shards
