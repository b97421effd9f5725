"""The Dask engine's tree exchange: its shard actors wired into :mod:`nncompare.engines.tree`'s binomial tree.

The driver makes one actor call a round (the root's ``train_tree``) instead of one per worker:
the weights go down the tree and the average comes up it over the workers' own sockets. The
tree is wired after placement and again after a recovery. It needs one actor per worker
(a worker runs its actors' calls on one thread, and a node waits for its parent while it is
wired), so after a recovery that leaves two shards on one worker the engine goes on without
it. When a round through the tree fails, the driver collects that round shard by shard
(``ShardActor.train_round`` returns what the tree already trained) and recovers lost shards as
it always does.
"""

from __future__ import annotations

import logging
import secrets

from distributed.comm.addressing import get_address_host

from nncompare.engines.base import RoundResult

log = logging.getLogger(__name__)


def can_wire(placements: dict) -> bool:
    """One shard per worker: the tree's condition."""
    return len({p.address for p in placements.values()}) == len(placements)


def wire(placements: dict, timeout_s: float) -> None:
    """Open a node per shard (on its worker's host) and connect every node to its parent and children."""
    ordered = [placements[i] for i in sorted(placements)]
    token = secrets.token_hex(16)
    listening = [p.actor.tree_listen(token, get_address_host(p.address), timeout_s) for p in ordered]
    addresses = {str(p.shard): list(f.result(timeout=timeout_s)) for p, f in zip(ordered, listening)}
    wiring = [p.actor.tree_wire(len(ordered), addresses) for p in ordered]
    for f in wiring:
        f.result(timeout=timeout_s)


def rewire(placements: dict, timeout_s: float) -> bool:
    """Close the old nodes and wire new ones; False (rounds go driver to worker) when the tree cannot be had."""
    close(placements)
    if not can_wire(placements):
        log.warning("two shards share a Dask worker after a recovery: rounds go driver to worker from now on")
        return False
    try:
        wire(placements, timeout_s)
    except Exception as exc:  # noqa: BLE001 - rounds still run driver to worker
        log.warning("could not wire the Dask workers into a tree (%s): rounds go driver to worker", exc)
        return False
    return True


def close(placements: dict) -> None:
    """Close every node that still answers (best effort: a lost worker's node is gone with it)."""
    calls = []
    for p in placements.values():
        try:
            calls.append(p.actor.tree_close())
        except Exception:  # noqa: BLE001 - its worker is lost
            continue
    for call in calls:
        try:
            call.result(timeout=30)
        except Exception as exc:  # noqa: BLE001 - a node that cannot close is gone with its worker
            log.debug("closing a tree node: %s", exc)


def result(partial, placements: dict, weights) -> RoundResult:
    """The round's result from the root's partial: updates and notes in shard order, the average."""
    updates, notes = partial.in_shard_order()
    extra = {
        "worker_address": [placements[u.shard].address for u in updates],
        "worker_in_actor_s": [n["in_actor_s"] for n in notes],
        "worker_cpu_s": [n["cpu_s"] for n in notes],
        "worker_idle_s": [n["idle_s"] for n in notes],
        "worker_minflt": [n["minflt"] for n in notes],
        "task_overhead_s": [n["task_overhead_s"] for n in notes],
        "weights_bytes": int(weights.nbytes) if weights is not None else 0,
    }
    return RoundResult(updates, extra=extra, average=partial.mean, average_s=partial.average_s)
