"""The steady epoch, defined once; the record, the results, the gate and every script use it.

The steady epoch of a run (:func:`steady_epoch_s`) is the **median of its epochs after the
first**:

* the first epoch pays one-off costs that the rest do not (scikit-learn initialising the
  weights and its solver state, first allocations, warm-up of the engine's workers), so it
  says how a run starts, not what another epoch costs;
* timings come from a machine shared with other jobs: one epoch slowed by a neighbour, a
  garbage collection or a retried Spark stage moves a mean but not a median;
* a run that ran a single epoch has nothing else to offer, so its only epoch stands in
  (warm-up included: it overstates the steady epoch, and says so by being alone).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Sequence


def median(values: Iterable[float]) -> float:
    """The median, or NaN when there are no values."""
    values = list(values)
    return statistics.median(values) if values else math.nan


def after_first(values: Sequence):
    """The values after the first (which pays one-off warm-up), or all of them when there is only one."""
    return values[1:] or values


def steady_seconds(values: Sequence[float]) -> float:
    """Median of per-epoch (or per-round) seconds after the first; see the module's docstring."""
    return median(after_first(values))


def steady_epoch_s(record: dict) -> float:
    """A run's steady epoch time: the median of its ``epoch_s`` after the first (the only one if it ran one)."""
    return steady_seconds(record["epoch_s"])
