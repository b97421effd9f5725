"""What the Dask engine counts around training: each worker's traffic and thread CPU, and the scheduler's work.

Read once when placement ends and again when the record is built, so that the record says
what training alone cost: the bytes that crossed the wire (only weights, once the shards are
placed), the CPU each worker thread used, and the task transitions the scheduler made (none:
rounds are direct actor calls).
"""

from __future__ import annotations

import time

from nncompare.engines.dask.worker import scheduler_transitions, worker_counters

#: Seconds between two readings of the scheduler's transition count that must agree.
SETTLE_S = 0.05


def run_quietly(client, function) -> dict:
    """``Client.run(function)`` on every worker; {} when one is lost meanwhile (only a figure is missed)."""
    try:
        return client.run(function)
    except Exception:
        return {}


def transitions(client) -> int | None:
    try:
        return client.run_on_scheduler(scheduler_transitions)
    except Exception:  # a scheduler that refuses run_on_scheduler only costs us this one figure
        return None


class TrainingCounters:
    """The workers' counters and the scheduler's transitions, from the end of placement on."""

    def __init__(self):
        self.after_place: dict = {}  # address -> worker_counters(), read at the end of placement
        self.transitions_after_place: int | None = None

    def start(self, client, limit_s: float = 2.0) -> None:
        """Take the baselines at the end of placement; the workers' are read while the scheduler's settles.

        The client releases the scattered futures' keys asynchronously (batched messages), so the
        transition count read right after placement can still grow by a few forget transitions
        that belong to it: read again at least ``SETTLE_S`` after the last reading until two agree.
        """
        last, since = transitions(client), time.monotonic()
        self.after_place = run_quietly(client, worker_counters)
        deadline = since + limit_s
        while last is not None and time.monotonic() < deadline:
            time.sleep(max(0.0, since + SETTLE_S - time.monotonic()))
            since, now = time.monotonic(), transitions(client)
            if now == last:
                break
            last = now
        self.transitions_after_place = last

    def during_training(self, client) -> tuple[dict, int | None]:
        """Per worker address, what training cost it (traffic, thread CPU); and the scheduler's transitions."""
        now, after = transitions(client), run_quietly(client, worker_counters)
        workers = {}
        for address, later in after.items():
            before = self.after_place.get(address)
            if before is None:
                continue
            facts, was, new = {}, before["traffic"], later["traffic"]
            if was.get("received") is not None and new.get("received") is not None:
                facts["tcp_bytes_received_during_training"] = new["received"] - was["received"]
                facts["tcp_bytes_sent_during_training"] = new["sent"] - was["sent"]
            facts["thread_cpu_s_during_training"] = {
                name: round(cpu - before["threads"].get(name, 0.0), 3) for name, cpu in later["threads"].items()
            }
            workers[address] = facts
        scheduler = None
        if now is not None and self.transitions_after_place is not None:
            scheduler = now - self.transitions_after_place
        return workers, scheduler
