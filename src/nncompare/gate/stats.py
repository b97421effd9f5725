"""How sure a timed verdict is: a 95 % interval for the head/base ratio from the paired samples.

Sample *i* of the head and of the base were taken in the same round, so the gate works on the
paired log ratios ``ln(head_i / base_i)``. Their mean, back on the ratio scale, is the
estimate (the geometric mean of the paired ratios: the median ratio when the log ratios are
symmetric), and a Student *t* interval on the mean of the log ratios is the interval.

Why a *t* interval on logs: a gate has 4-16 pairs. A sign-test (exact) interval for the median
cannot reach 95 % with fewer than 6 pairs (its widest, min to max, covers 1 - 2/2^n), and a
Wilcoxon interval not with fewer than 6 either; a bootstrap interval covers much less than it
claims with so few. The *t* interval is exact for normal log ratios, and the unchanged pairs
measured here are close to normal on the log scale (docs/evidence.md, "Calibration"); where
they are not, the calibration (tools/gate_calibrate.py) measures the real error rates of the
rule rather than trusting the nominal 95 %. Logs, because a slowdown multiplies a time.

The outcome compares the interval with the threshold ``factor``: wholly above it, the head is
**slower**; wholly below it, it **passes**; straddling it, it is **inconclusive**, and the gate
may measure more rounds (:mod:`nncompare.gate.sequential`).
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass

from scipy.stats import t as student_t

CONFIDENCE = 0.95
PASS, SLOWER, INCONCLUSIVE = "pass", "slower", "inconclusive"


@dataclass(frozen=True)
class Interval:
    """The estimated head/base ratio and its ``CONFIDENCE`` interval, from ``pairs`` paired samples."""

    ratio: float
    low: float
    high: float
    pairs: int
    log_sd: float

    def outcome(self, factor: float) -> str:
        if self.low > factor:
            return SLOWER
        if self.high < factor:
            return PASS
        return INCONCLUSIVE

    def text(self) -> str:
        return f"x{self.ratio:.3f} (95 % interval x{self.low:.3f}-x{self.high:.3f}, {self.pairs} pairs)"


def log_ratios(base: list[float], head: list[float]) -> list[float]:
    """ln(head_i / base_i) for each round both commits measured (samples are in round order)."""
    return [math.log(h / b) for b, h in zip(base, head) if _positive(b) and _positive(h)]


def _positive(value) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value) and value > 0


def interval(logs: list[float], confidence: float = CONFIDENCE) -> Interval:
    """The *t* interval of the mean log ratio, as ratios; needs at least two pairs."""
    n = len(logs)
    if n < 2:
        raise ValueError("an interval needs at least two paired samples")
    mean, sd = statistics.fmean(logs), statistics.stdev(logs)
    half = student_t.ppf(0.5 + confidence / 2, n - 1) * sd / math.sqrt(n)
    return Interval(math.exp(mean), math.exp(mean - half), math.exp(mean + half), n, sd)
