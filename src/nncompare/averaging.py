"""Weight averaging in float32, weighted by how many samples each shard trained on.

Computed as ``w0 + sum_i a_i (w_i - w0)``: float32 throughout (a float64 average fed back
to a float32 model costs a conversion per round and per worker), accurate because the
deltas between workers are small, and exact when every worker holds the same weights.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def average_weights(weights: Sequence[np.ndarray], counts: Sequence[int], out: np.ndarray | None = None) -> np.ndarray:
    """Sample-weighted mean of float32 weight buffers, returned as float32."""
    if not weights:
        raise ValueError("nothing to average")
    total = float(sum(counts))
    if total <= 0:
        raise ValueError("every shard trained on zero samples")
    base = weights[0]
    out = np.array(base, dtype=np.float32, copy=True) if out is None else out
    if out is not base:
        out[...] = base
    scratch = np.empty_like(out)
    for w, n in zip(weights[1:], counts[1:]):
        if n == 0:
            continue
        np.subtract(w, base, out=scratch, dtype=np.float32)
        scratch *= np.float32(n / total)
        out += scratch
    if counts[0] == 0:
        # w0 was only an anchor; re-weight so the shards that trained carry all the weight.
        return average_weights([w for w, n in zip(weights, counts) if n], [n for n in counts if n], out=out)
    return out
