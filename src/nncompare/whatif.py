"""What if there were more workers? A model of epoch time fitted to measured records.

Per epoch, data-parallel training with W workers on N samples costs

* compute ``(p·N + o·W) / min(W, P)``: a shard of N/W samples costs ``p·N/W + o`` (``p``
  seconds per sample, ``o`` the fixed cost of one ``partial_fit`` call), fitted on every
  worker's measured round time; W shards run at most ``P`` at a time. ``P`` is 1 when the
  records show the shards taking turns (the local engine); for an engine started on the
  driver's machine it is that machine's cores / cores per worker; on a named cluster it is
  unbounded unless the records show a limit. Workers timed while more of them were in flight
  than there were cores also waited for a core, so their times are scaled by
  cores / in-flight before fitting (fair sharing assumed);
* weight transfer ``t0 + t1·W``: every round each worker's weights go out and come back;
* averaging ``g0 + g1·W``: the driver averages W weight vectors;
* scheduling/idle ``s0 + s1·W``: the rest of each round's wall time.

The per-worker terms are fitted with non-negative least squares on the records' per-epoch
phases (``phases_s / epochs_run``), one model per engine, dataset and job; evaluation and
start-up are left out, as they do not depend on W. Where the saving of another worker falls
below what it adds, more workers stop helping: :meth:`WhatIf.best_workers`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from nncompare.results import group_by, job_group
from nncompare.steady import after_first

TERMS = ("compute", "transfer", "average", "idle")
_PHASE_OF = {"compute": "compute", "transfer": "transfer", "average": "average", "idle": "other"}


def per_epoch(record: dict, term: str) -> float:
    return record["phases_s"][_PHASE_OF[term]] / max(1, record["epochs_run"])


def _nnls(design: np.ndarray, target: np.ndarray) -> np.ndarray:
    from scipy.optimize import nnls

    return nnls(design, target)[0]


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


@dataclass
class WhatIf:
    """A fitted epoch-time model for one engine and job, with the points it was fitted on."""

    engine: str
    dataset: str
    samples: int  # N, the training samples of an epoch
    per_sample_s: float  # p
    per_shard_s: float  # o
    max_concurrency: float  # P (inf: no limit seen)
    coef: dict[str, tuple[float, float]]  # transfer, average, idle: (c0, c1) in c0 + c1·W
    workers: list[int]  # one entry per record
    measured_epoch_s: list[float]  # per record: the four phases' seconds per epoch run
    measured_concurrency: list[float] = field(default_factory=list)

    def term(self, name: str, w):
        w = np.asarray(w, dtype=float)
        if name == "compute":
            return (self.per_sample_s * self.samples + self.per_shard_s * w) / np.minimum(w, self.max_concurrency)
        c0, c1 = self.coef[name]
        return c0 + c1 * w

    def predict(self, w):
        return sum(self.term(name, w) for name in TERMS)

    def best_workers(self, limit: int = 1024) -> int:
        """The worker count with the lowest predicted epoch time (1 to ``limit``)."""
        w = np.arange(1, limit + 1)
        return int(w[np.argmin(self.predict(w))])

    def max_relative_error(self) -> float:
        predicted = self.predict(self.workers)
        measured = np.asarray(self.measured_epoch_s)
        return float(np.max(np.abs(predicted - measured) / np.maximum(measured, 1e-12)))

    def _median_concurrency(self, workers: int) -> float:
        """The median measured concurrency of the runs at ``workers`` workers."""
        return float(np.median([c for c, w in zip(self.measured_concurrency, self.workers) if w == workers]))

    def describe(self) -> list[str]:
        (t0, t1), (g0, g1), (s0, s1) = (self.coef[t] for t in TERMS[1:])
        best = self.best_workers()
        ws = sorted(set(self.workers))
        p_text = "no limit seen" if math.isinf(self.max_concurrency) else f"{self.max_concurrency:.2g}"
        lines = [
            f"{self.engine} on {self.dataset}, fitted on {len(self.workers)} runs at {', '.join(map(str, ws))} workers "
            f"(largest error on those runs {100 * self.max_relative_error():.0f} %):",
            f"  a shard of n samples computes in {self.per_sample_s * 1e6:.3g} µs·n + {1e3 * self.per_shard_s:.3g} ms; "
            "shards run side by side: " + ", ".join(f"{self._median_concurrency(w):.2f} at W={w}" for w in ws) + " "
            f"(limit P: {p_text})",
            f"  epoch time(W) = compute ({self.per_sample_s * self.samples:.3g} + {self.per_shard_s:.3g}·W)/min(W, P)"
            f"  + transfer {t0:.3g} + {t1:.3g}·W  + averaging {g0:.3g} + {g1:.3g}·W"
            f"  + scheduling/idle {s0:.3g} + {s1:.3g}·W  seconds",
            f"  fastest predicted at W = {best} ({float(self.predict(best)):.3g} s per epoch"
            + (f", against {float(self.predict(max(ws))):.3g} s at W = {max(ws)}" if best != max(ws) else "")
            + ")",
        ]
        if self.max_concurrency <= 1.5:
            lines.append("  the shards do not run side by side here, so every extra worker only adds its fixed costs")
        elif best < max(ws):
            lines.append(
                f"  beyond W = {best}, an extra worker adds more (fixed compute, transfer, averaging, "
                "scheduling) than its share of the data saves"
            )
        return lines


def fit(records: list[dict]) -> list[WhatIf]:
    """One model per job group with at least two different worker counts."""
    groups = group_by((r for r in records if r.get("epochs_run") and r.get("rounds")), job_group)
    models = []
    for key, rows in groups.items():
        w = np.array([r["workers"] for r in rows], dtype=float)
        if len(set(w)) < 2:
            continue
        # per-shard compute against shard size, from every worker's every round but the first
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
        coef = {}
        for name in TERMS[1:]:
            y = np.array([per_epoch(r, name) for r in rows])
            coef[name] = tuple(float(c) for c in _nnls(np.column_stack([np.ones_like(w), w]), y))
        models.append(
            WhatIf(
                engine=key[0],
                dataset=key[1],
                samples=int(rows[0]["train_samples"]),
                per_sample_s=float(p),
                per_shard_s=float(o),
                max_concurrency=float(limit),
                coef=coef,
                workers=[int(v) for v in w],
                measured_epoch_s=[sum(per_epoch(r, t) for t in TERMS) for r in rows],
                measured_concurrency=seen,
            )
        )
    return models
