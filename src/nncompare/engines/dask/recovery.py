"""What the Dask engine needs to replace a lost worker: the loss itself, and where its shard goes next."""

from __future__ import annotations

import time
from collections.abc import Callable

from nncompare.errors import EngineError

#: How many times one lost shard is re-placed before the run gives up.
MAX_REPLACEMENTS = 3


class WorkerLost(Exception):
    """The worker holding an actor went away (closed connection, or gone from the scheduler)."""


def replacement_worker(
    live_workers: Callable[[], list[str]], placements: dict, dead: set, shard: int, timeout_s: float
) -> str:
    """A worker without a shard (a restarted one) if one comes within the timeout, else the least loaded.

    ``placements`` maps each shard to an object with the ``address`` of the worker holding it.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        live = [a for a in live_workers() if a not in dead]
        busy = [p.address for i, p in placements.items() if i != shard]
        free = [a for a in live if a not in busy]
        if free:
            return free[0]
        if time.monotonic() >= deadline:
            if not live:
                raise EngineError(
                    f"lost Dask worker(s) {', '.join(sorted(dead))} and no worker is left to take shard {shard}"
                )
            return min(live, key=lambda a: (busy.count(a), a))
        time.sleep(0.2)
