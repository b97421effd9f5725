"""What if there were more workers, or more data? A model of epoch time fitted to measured records.

Data-parallel training with W workers on N samples, averaging every ``sync_every`` mini-batches
of ``batch`` samples, runs R rounds an epoch: ``R = 1`` (once an epoch), else
``ceil(N / W / (sync_every * batch))``. Per epoch it costs

* compute ``(p·N + o·R·W) / min(W, P)``: a round's slice of n samples costs ``p·n + o`` (``p``
  seconds per sample, ``o`` the fixed cost of one ``partial_fit`` call), fitted on every
  worker's measured round times; W shards run at most ``P`` at a time. ``P`` is 1 when the
  records show the shards taking turns (the local engine); for an engine started on the
  driver's machine it is that machine's cores / cores per worker; on a named cluster it is
  unbounded unless the records show a limit. Workers timed while more of them were in flight
  than there were cores also waited for a core, so their times are scaled by
  cores / in-flight before fitting (fair sharing assumed);
* the exchange, R times: a round's transfer ``t0 + t1·g(W)`` and averaging ``a0 + a1·g(W)``,
  where ``g(W) = log2 W`` when the records' engine sent the round down a tree of its workers
  (``engine_info.exchange`` ``tree``: ``log2 W`` hops and merges on the critical path) and
  ``g(W) = W`` when the driver exchanged weights with every worker and merged them itself;
* scheduling/idle ``s0 + s1·W`` per epoch: the rest of the epoch's wall time.

Records of one engine, data set and model (any data size, any ``sync_every``) make one model,
so it answers for other data sizes and synchronisation rates too. The per-round terms are fitted
with non-negative least squares on each record's median round; evaluation and start-up are left
out, as they do not depend on W. Where the saving of another worker falls below what it adds,
more workers stop helping (:meth:`WhatIf.best_workers`); :meth:`WhatIf.second_worker_pays_from`
is the data size from which two workers beat one.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field

import numpy as np

from nncompare.results import group_by
from nncompare.steady import after_first

TERMS = ("compute", "transfer", "average", "idle")
#: Data sizes the report shows the fastest worker count for (the seed paper's MNIST has 60,000).
DATA_SIZES = (15_000, 60_000, 240_000, 480_000, 1_000_000)


def _nnls(design: np.ndarray, target: np.ndarray) -> np.ndarray:
    from scipy.optimize import nnls

    return nnls(design, target)[0]


def exchange_of(record: dict) -> str:
    """``tree`` when the engine sent rounds down a tree of its workers, else ``driver`` (the driver merged)."""
    return "tree" if (record.get("engine_info") or {}).get("exchange") == "tree" else "driver"


def model_group(record: dict) -> tuple:
    """Records one model is fitted on: engine, data set, model, exchange and cluster (data size and sync vary)."""
    spec = record.get("spec", {})
    model = spec.get("model", {})
    return (
        record["engine"],
        record["dataset"],
        tuple(model.get("hidden_layer_sizes", ())),
        model.get("batch_size"),
        exchange_of(record),
        record.get("cluster"),
    )


def growth(exchange: str, w):
    """g(W): how a round's exchange grows with the workers."""
    w = np.asarray(w, dtype=float)
    return np.log2(np.maximum(w, 1.0)) if exchange == "tree" else w


def concurrency(record: dict) -> float:
    """How many shards ran at once: the workers' compute over the critical-path compute, per round."""
    ratios = [
        sum(x["worker_compute_s"]) / x["compute_s"]
        for x in record.get("rounds", [])
        if x.get("compute_s") and x.get("worker_compute_s")
    ]
    return float(np.median(ratios)) if ratios else 1.0


def _core_slots(record: dict) -> float:
    """How many workers the cores can run at once: the driver machine's when the engine ran there."""
    if record.get("cluster"):
        return math.inf
    cores = (record.get("machine") or {}).get("cores") or math.inf
    return max(1.0, cores / max(1, record["cores_per_worker"]))


def _round_median(record: dict, key: str, fallback_phase: str) -> float:
    rounds = after_first(record["rounds"]) or record["rounds"]
    if rounds and key in rounds[0]:
        return statistics.median(r[key] for r in rounds)
    return record["phases_s"][fallback_phase] / max(1, len(record["rounds"]))


def _idle_per_epoch(record: dict) -> float:
    return record["phases_s"]["other"] / max(1, record["epochs_run"])


@dataclass
class WhatIf:
    """A fitted epoch-time model for one engine, data set and model, with the points it was fitted on."""

    engine: str
    dataset: str
    samples: int  # N of the first record: the default data size of predictions
    per_sample_s: float  # p
    per_shard_s: float  # o
    max_concurrency: float  # P (inf: no limit seen)
    coef: dict[str, tuple[float, float]]  # transfer, average (per round, c0 + c1·g(W)); idle (per epoch, c0 + c1·W)
    workers: list[int]  # one entry per record
    measured_epoch_s: list[float]  # per record: the four phases' seconds per epoch run
    measured_concurrency: list[float] = field(default_factory=list)
    exchange: str = "driver"
    batch_size: int = 200
    sync_every: int | None = None
    measured_samples: list[int] = field(default_factory=list)
    measured_sync: list[int | None] = field(default_factory=list)
    hidden: tuple[int, ...] = ()

    def rounds(self, w, samples: int | None = None, sync_every: int | None | str = "fitted"):
        """Rounds per epoch at ``w`` workers, ``samples`` samples and ``sync_every`` (default: the fitted job's)."""
        w = np.asarray(w, dtype=float)
        sync = self.sync_every if sync_every == "fitted" else sync_every
        if sync is None:
            return np.ones_like(w)
        n = self.samples if samples is None else samples
        return np.maximum(1.0, np.ceil(n / w / (sync * self.batch_size)))

    def term(self, name: str, w, samples: int | None = None, slots: float | None = None, sync_every="fitted"):
        """One term's seconds per epoch (``slots``: how many workers run at once, default the fitted P)."""
        w = np.asarray(w, dtype=float)
        n = self.samples if samples is None else samples
        r = self.rounds(w, n, sync_every)
        if name == "compute":
            limit = self.max_concurrency if slots is None else slots
            return (self.per_sample_s * n + self.per_shard_s * r * w) / np.minimum(w, limit)
        c0, c1 = self.coef[name]
        if name == "idle":
            return c0 + c1 * w
        return r * (c0 + c1 * growth(self.exchange, w))

    def predict(self, w, samples: int | None = None, slots: float | None = None, sync_every="fitted"):
        return sum(self.term(name, w, samples, slots, sync_every) for name in TERMS)

    def best_workers(self, limit: int = 1024, samples: int | None = None) -> int:
        """The worker count with the lowest predicted epoch time (1 to ``limit``)."""
        w = np.arange(1, limit + 1)
        return int(w[np.argmin(self.predict(w, samples))])

    def second_worker_pays_from(self, sizes=None) -> int | None:
        """The smallest data size (of ``sizes``, default 100 to 10M) at which two workers beat one; None: never."""
        grid = sizes if sizes is not None else np.unique(np.round(np.logspace(2, 7, 201)).astype(int))
        for n in grid:
            if float(self.predict(2, int(n))) < float(self.predict(1, int(n))):
                return int(n)
        return None

    def max_relative_error(self) -> float:
        samples = self.measured_samples or [self.samples] * len(self.workers)
        syncs = self.measured_sync or [self.sync_every] * len(self.workers)
        predicted = np.array([float(self.predict(w, n, sync_every=k)) for w, n, k in zip(self.workers, samples, syncs)])
        measured = np.asarray(self.measured_epoch_s)
        return float(np.max(np.abs(predicted - measured) / np.maximum(measured, 1e-12)))

    def _median_concurrency(self, workers: int) -> float:
        """The median measured concurrency of the runs at ``workers`` workers."""
        return float(np.median([c for c, w in zip(self.measured_concurrency, self.workers) if w == workers]))

    def describe(self) -> list[str]:
        (t0, t1), (g0, g1), (s0, s1) = (self.coef[t] for t in TERMS[1:])
        best = self.best_workers()
        ws = sorted(set(self.workers))
        g = "log2 W" if self.exchange == "tree" else "W"
        p_text = "no limit seen" if math.isinf(self.max_concurrency) else f"{self.max_concurrency:.2g}"
        sizes = sorted(set(self.measured_samples or [self.samples]))
        rounds = (
            "R = 1 round an epoch" if self.sync_every is None else f"R = ceil(N/W/{self.sync_every * self.batch_size})"
        )
        lines = [
            f"{self.engine} on {self.dataset}"
            + (f", hidden layers {','.join(map(str, self.hidden))}" if self.hidden else "")
            + f", fitted on {len(self.workers)} runs at {', '.join(map(str, ws))} workers "
            f"and {', '.join(f'{n:,}' for n in sizes)} samples "
            f"(largest error on those runs {100 * self.max_relative_error():.0f} %):",
            f"  a shard of n samples computes in {self.per_sample_s * 1e6:.3g} µs·n + {1e3 * self.per_shard_s:.3g} ms; "
            "shards run side by side: " + ", ".join(f"{self._median_concurrency(w):.2f} at W={w}" for w in ws) + " "
            f"(limit P: {p_text})",
            f"  epoch time(W, N) = compute ({self.per_sample_s:.3g}·N + {self.per_shard_s:.3g}·R·W)/min(W, P)"
            f"  + R·(transfer {1e3 * t0:.3g} + {1e3 * t1:.3g}·{g} ms"
            f"  + averaging {1e3 * g0:.3g} + {1e3 * g1:.3g}·{g} ms)"
            f"  + scheduling/idle {s0:.3g} + {s1:.3g}·W s; {rounds}; exchange: "
            + ("a tree of the workers" if self.exchange == "tree" else "through the driver"),
            f"  fastest predicted at W = {best} for N = {self.samples:,} ({float(self.predict(best)):.3g} s per epoch"
            + (f", against {float(self.predict(max(ws))):.3g} s at W = {max(ws)}" if best != max(ws) else "")
            + ")",
            "  fastest W by data size: "
            + ", ".join(f"{n:,}: W = {self.best_workers(samples=n)}" for n in DATA_SIZES)
            + self._second_worker_line(),
        ]
        if self.max_concurrency <= 1.5:
            lines.append("  the shards do not run side by side here, so every extra worker only adds its fixed costs")
        elif best < max(ws):
            lines.append(
                f"  beyond W = {best}, an extra worker adds more (fixed compute, transfer, averaging, "
                "scheduling) than its share of the data saves"
            )
        return lines

    def _second_worker_line(self) -> str:
        n = self.second_worker_pays_from()
        return "; a second worker never pays off" if n is None else f"; a second worker pays off from N ≈ {n:,}"


def fit(records: list[dict]) -> list[WhatIf]:
    """One model per :func:`model_group` with at least two different worker counts."""
    groups = group_by((r for r in records if r.get("epochs_run") and r.get("rounds")), model_group)
    models = []
    for key, rows in groups.items():
        w = np.array([r["workers"] for r in rows], dtype=float)
        if len(set(w)) < 2:
            continue
        # per-shard compute against slice size, from every worker's every round but the first
        # (which also pays scikit-learn's one-off initialisation)
        sizes, times = [], []
        for r in rows:
            n = r["train_samples"] / (r["workers"] * r.get("rounds_per_epoch", 1))
            slots = _core_slots(r)
            for x in after_first(r["rounds"]):
                in_flight = sum(x["worker_compute_s"]) / x["compute_s"] if x.get("compute_s") else 1.0
                share = min(1.0, slots / in_flight) if in_flight > 0 else 1.0  # waiting for a core is not compute
                sizes += [n] * len(x["worker_compute_s"])
                times += [t * share for t in x["worker_compute_s"]]
        p, o = _nnls(np.column_stack([sizes, np.ones(len(sizes))]), np.array(times))
        seen = [concurrency(r) for r in rows]
        # shards that took turns: the largest worker count ran clearly fewer at once than it had
        widest = max(range(len(rows)), key=lambda i: (w[i], seen[i]))
        limit = max(1.0, max(seen)) if seen[widest] < 0.8 * min(w[widest], _core_slots(rows[widest])) else math.inf
        limit = min(limit, min(_core_slots(r) for r in rows))
        g = growth(key[4], w)
        coef = {
            "transfer": tuple(
                float(c)
                for c in _nnls(
                    np.column_stack([np.ones_like(g), g]),
                    np.array([_round_median(r, "transfer_s", "transfer") for r in rows]),
                )
            ),
            "average": tuple(
                float(c)
                for c in _nnls(
                    np.column_stack([np.ones_like(g), g]),
                    np.array([_round_median(r, "average_s", "average") for r in rows]),
                )
            ),
            "idle": tuple(
                float(c)
                for c in _nnls(np.column_stack([np.ones_like(w), w]), np.array([_idle_per_epoch(r) for r in rows]))
            ),
        }
        spec = rows[0].get("spec", {})
        model = WhatIf(
            engine=key[0],
            dataset=key[1],
            samples=int(rows[0]["train_samples"]),
            per_sample_s=float(p),
            per_shard_s=float(o),
            max_concurrency=float(limit),
            coef=coef,
            workers=[int(v) for v in w],
            measured_epoch_s=[
                sum(r["phases_s"][ph] for ph in ("compute", "transfer", "average", "other")) / max(1, r["epochs_run"])
                for r in rows
            ],
            measured_concurrency=seen,
            exchange=key[4],
            batch_size=int(spec.get("model", {}).get("batch_size") or 200),
            sync_every=spec.get("sync_every"),
            measured_samples=[int(r["train_samples"]) for r in rows],
            measured_sync=[r.get("spec", {}).get("sync_every") for r in rows],
            hidden=tuple(key[2]),
        )
        models.append(model)
    return models
