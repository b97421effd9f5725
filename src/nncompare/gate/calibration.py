"""The gate's error rates on this machine, from the paired samples of real gate runs.

A real gate run is slow (minutes), so a handful of them cannot measure a false-alarm rate of
1 %. What they can give is the distribution of the paired log ratios of an *unchanged* engine:
the noise. This module resamples that noise (with replacement, per engine) into many simulated
gates that follow the gate's own rule (:mod:`nncompare.gate.stats`: the 95 % interval against
the threshold, batch after batch as :class:`nncompare.gate.sequential.Plan` says) and counts the
outcomes, for no change and for a slowdown added to every pair (a slowdown multiplies the head's
time, so it shifts each log ratio by ``ln(1 + s)``). The real runs of slowed commits check that
shift model; both are in docs/evidence.md, "Calibration".

Inputs are the gate's own records (``nncompare gate --record``; ``tools/gate_trial.py`` adds
which engines its throwaway commit slowed, under ``"trial"``) and pair files
(``{"format": "pairs", "design": version, "runs": {run: {engine: [ratio, ...]}}}``: unchanged
pairs written down by hand, e.g. from older runs).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.stats import t as student_t

from nncompare.gate import stats
from nncompare.gate.sequential import Plan

SLOWDOWNS = (0.0, 0.05, 0.10, 0.20)
TIMED = re.compile(r"^gate\.SteadyEpochs\.time_epochs\('(?P<engine>[^']+)'")


@dataclass(frozen=True)
class RealVerdict:
    """One engine's timed verdict in one real gate run, and what its commit did to that engine."""

    run: str
    engine: str
    slowed: float  # the fraction the throwaway commit slowed this engine by (0: unchanged)
    logs: tuple[float, ...]
    design: str  # the timed benchmark's version: runs of different designs are not pooled


def load(paths: list[Path]) -> list[RealVerdict]:
    """Every timed verdict in these records and pair files (folders: their ``*.json``)."""
    files = []
    for path in paths:
        files += sorted(path.glob("*.json")) if path.is_dir() else [path]
    found = []
    for path in files:
        data = json.loads(path.read_text())
        if data.get("format") == "pairs":
            for run, engines in data["runs"].items():
                for engine, ratios in engines.items():
                    logs = tuple(math.log(r) for r in ratios)
                    found.append(RealVerdict(run, engine, 0.0, logs, str(data.get("design", "?"))))
            continue
        slowed = (data.get("trial") or {}).get("slowed", {})
        for name, bench in data.get("benchmarks", {}).items():
            match = TIMED.match(name)
            base, head = bench["base"]["samples"], bench["head"]["samples"]
            if not match or not base or not head:
                continue
            engine = match["engine"]
            logs = tuple(stats.log_ratios(base, head))
            design = str(bench.get("version"))
            found.append(
                RealVerdict(data.get("trial", {}).get("name", path.stem), engine, slowed.get(engine, 0.0), logs, design)
            )
    return found


def noise_pools(verdicts: list[RealVerdict], design: str, residuals: bool = False) -> dict[str, np.ndarray]:
    """Unchanged engines' log ratios, per engine and for all engines together (``"all"``).

    ``residuals``: also the slowed engines' log ratios less their own mean (scaled by
    sqrt(n / (n - 1)) so that their spread is not understated): noise too, if a slowdown only
    shifts the log ratios, as the calibration assumes.
    """
    pools: dict[str, list[float]] = {}
    for v in verdicts:
        if v.design != design:
            continue
        if v.slowed == 0.0:
            logs = list(v.logs)
        elif residuals and len(v.logs) > 1:
            mean, scale = float(np.mean(v.logs)), math.sqrt(len(v.logs) / (len(v.logs) - 1))
            logs = [(x - mean) * scale for x in v.logs]
        else:
            continue
        pools.setdefault(v.engine, []).extend(logs)
        pools.setdefault("all", []).extend(logs)
    order = sorted(pools, key=lambda engine: (engine == "all", engine))
    return {engine: np.array(pools[engine]) for engine in order}


def looks(plan: Plan) -> list[int]:
    """The pair counts at which the gate judges: after each batch."""
    counts, done = [plan.first], plan.first
    while (more := plan.next_batch(done)) > 0:
        done += more
        counts.append(done)
    return counts


def simulate(pool: np.ndarray, shift: float, plan: Plan, factor: float, draws: int, rng) -> dict:
    """Outcome rates of ``draws`` simulated gates on pairs resampled from ``pool``, shifted by ``shift``."""
    checkpoints = looks(plan)
    logs = rng.choice(pool, size=(draws, checkpoints[-1]), replace=True) + shift
    outcome = np.full(draws, stats.INCONCLUSIVE, dtype=object)
    used = np.full(draws, checkpoints[-1])
    open_ = np.ones(draws, dtype=bool)
    threshold = math.log(factor)
    for n in checkpoints:
        part = logs[:, :n]
        mean, sd = part.mean(axis=1), part.std(axis=1, ddof=1)
        half = student_t.ppf(0.5 + stats.CONFIDENCE / 2, n - 1) * sd / math.sqrt(n)
        slower, passed = open_ & (mean - half > threshold), open_ & (mean + half < threshold)
        outcome[slower], outcome[passed] = stats.SLOWER, stats.PASS
        used[slower | passed] = n
        open_ &= ~(slower | passed)
    return {
        "slower": float(np.mean(outcome == stats.SLOWER)),
        "pass": float(np.mean(outcome == stats.PASS)),
        "inconclusive": float(np.mean(outcome == stats.INCONCLUSIVE)),
        "mean_pairs": float(used.mean()),
    }


def simulate_median_rule(pool: np.ndarray, shift: float, pairs: int, factor: float, draws: int, rng) -> dict:
    """The rule before issue 25: slower when the median paired ratio exceeds ``factor`` and all pairs
    but one are over 1, on a fixed number of pairs; the baseline the calibration compares with."""
    logs = rng.choice(pool, size=(draws, pairs), replace=True) + shift
    slower = (np.median(logs, axis=1) > math.log(factor)) & ((logs > 0).sum(axis=1) >= pairs - 1)
    return {"slower": float(slower.mean()), "pass": float(1 - slower.mean()), "inconclusive": 0.0, "mean_pairs": pairs}


def table(
    pools: dict[str, np.ndarray], plan: Plan, factor: float, draws: int, seed: int = 0, median_rule: bool = False
) -> list[dict]:
    """One row per engine and slowdown: the simulated gate's outcome rates (``median_rule``: the old rule's,
    on ``plan.first`` pairs)."""
    rng = np.random.default_rng(seed)
    rows = []
    for engine, pool in pools.items():
        for s in SLOWDOWNS:
            if median_rule:
                rates = simulate_median_rule(pool, math.log1p(s), plan.first, factor, draws, rng)
            else:
                rates = simulate(pool, math.log1p(s), plan, factor, draws, rng)
            rows.append(
                {"engine": engine, "slowdown": s, "pool": len(pool), "log_sd": float(pool.std(ddof=1)), **rates}
            )
    return rows


def markdown(rows: list[dict], plan: Plan, factor: float, draws: int) -> str:
    lines = [
        f"Threshold x{factor:g}; {plan.first} rounds, then {plan.more} more while inconclusive, "
        f"{plan.most} at most; {draws} resampled gates per row.",
        "",
        "| engine | unchanged pairs (log SD) | slowdown | slower | pass | inconclusive | mean pairs |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        lines.append(
            f"| {r['engine']} | {r['pool']} ({r['log_sd']:.3f}) | {100 * r['slowdown']:.0f} % | "
            f"{100 * r['slower']:.1f} % | {100 * r['pass']:.1f} % | {100 * r['inconclusive']:.1f} % | "
            f"{r['mean_pairs']:.1f} |"
        )
    return "\n".join(lines) + "\n"


def real_runs(verdicts: list[RealVerdict], factor: float) -> str:
    """The real runs' verdicts, judged again on all their pairs with today's rule."""
    lines = [
        "| run | engine | slowed by | pairs | ratio (95 % interval) | outcome |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for v in verdicts:
        if len(v.logs) < 2:
            continue
        found = stats.interval(list(v.logs))
        lines.append(
            f"| {v.run} | {v.engine} | {100 * v.slowed:.0f} % | {found.pairs} | {found.text().split(' (')[0]} "
            f"(x{found.low:.3f}-x{found.high:.3f}) | {found.outcome(factor)} |"
        )
    return "\n".join(lines) + "\n"
