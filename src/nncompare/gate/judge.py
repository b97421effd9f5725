"""The gate's verdicts, from asv's results of a base and a head commit.

asv compares benchmarks by ratio alone and takes bigger as worse; the gate judges itself:

* a timed benchmark (one with samples) by its **paired** ratios: asv ran the two commits in
  interleaved rounds (base, head, head, base, ...), one sample per round, so sample *i* of the
  head and sample *i* of the base were taken under much the same load. The ratio and its 95 %
  interval (:mod:`nncompare.gate.stats`) against ``factor``: wholly above, **slower**; wholly
  below, pass; straddling it, **inconclusive** (the gate measures more rounds while it can);
* a test-error track by its rise: more than ``max_error_rise`` (1 point) fails;
* an unused-cores track (cores a worker was given that BLAS left idle) by any rise: lost
  parallelism is a slowdown, judged by count because its time is too small to trust here;
* a benchmark that has no value on the head (it failed, timed out, or the head did not build)
  fails, whatever the base did.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass

from nncompare.gate import stats

# exit codes of ``nncompare gate``; 130 and 143: interrupted by SIGINT or SIGTERM
PASS, SLOWER, USAGE, LESS_ACCURATE, BROKEN, INCONCLUSIVE = 0, 1, 2, 3, 4, 5
#: the most serious first: the exit code of a gate is the first of these that any verdict has
SEVERITY = (BROKEN, LESS_ACCURATE, SLOWER, INCONCLUSIVE)
MIN_PAIRS = 3


@dataclass(frozen=True)
class Verdict:
    """One benchmark's outcome: ``code`` is one of the exit codes above, ``line`` says why.

    ``interval`` is a timed verdict's ratio and interval (None for the others).
    """

    name: str
    code: int
    line: str
    interval: stats.Interval | None = None

    @property
    def timed(self) -> bool:
        return self.interval is not None


def _measured(value) -> bool:
    return value is not None and not (isinstance(value, float) and math.isnan(value))


def judge_time(name: str, base: list[float] | None, head: list[float] | None, factor: float) -> Verdict:
    if not head or not any(_measured(h) for h in head):
        return Verdict(name, BROKEN, f"{name}: no measurement on the head commit (the benchmark failed there)")
    if not base or not any(_measured(b) for b in base):
        return Verdict(name, PASS, f"{name}: not on the base commit; nothing to compare")
    logs = stats.log_ratios(base, head)
    if len(logs) < MIN_PAIRS:
        return Verdict(
            name, BROKEN, f"{name}: only {len(logs)} paired samples (need {MIN_PAIRS}); did some rounds fail?"
        )
    found = stats.interval(logs)
    shown = ", ".join(f"{math.exp(r):.2f}" for r in logs)
    # no unit: asv calls every timed benchmark's figure seconds, and the gate's are floor epochs
    summary = (
        f"{name}: {found.text()} (paired ratios {shown}; medians: base {statistics.median(base):.3f}, "
        f"head {statistics.median(head):.3f})"
    )
    outcome = found.outcome(factor)
    if outcome == stats.SLOWER:
        return Verdict(name, SLOWER, f"{summary}: SLOWER than x{factor:g}", found)
    if outcome == stats.INCONCLUSIVE:
        return Verdict(name, INCONCLUSIVE, f"{summary}: INCONCLUSIVE at x{factor:g}", found)
    return Verdict(name, PASS, summary, found)


def judge_error(name: str, base, head, max_rise: float) -> Verdict:
    if not _measured(head):
        return Verdict(name, BROKEN, f"{name}: no test error on the head commit (the benchmark failed there)")
    if not _measured(base):
        return Verdict(name, PASS, f"{name}: {head:.4f} on the head, none on the base; nothing to compare")
    rise = head - base
    line = f"{name}: test error {base:.4f} -> {head:.4f} ({100 * rise:+.2f} points)"
    if rise > max_rise:
        return Verdict(name, LESS_ACCURATE, f"{line}: accuracy dropped by more than {100 * max_rise:g} point(s)")
    return Verdict(name, PASS, line)


def judge_unused_cores(name: str, base, head) -> Verdict:
    if not _measured(head):
        return Verdict(name, BROKEN, f"{name}: no count on the head commit (the benchmark failed there)")
    if not _measured(base):
        return Verdict(name, PASS, f"{name}: {head:g} idle on the head, none measured on the base; nothing to compare")
    line = f"{name}: cores left idle by partial_fit {base:g} -> {head:g}"
    if head > base:
        return Verdict(name, SLOWER, f"{line}: lost parallelism (BLAS ran on fewer threads than --cores)")
    return Verdict(name, PASS, line)


def is_error_track(name: str) -> bool:
    return ".track_test_error" in name


def is_unused_cores_track(name: str) -> bool:
    return ".track_unused_cores" in name


def judge(base: dict, head: dict, *, factor: float, max_error_rise: float) -> list[Verdict]:
    """Verdicts for every benchmark the head or the base has.

    ``base`` and ``head`` map a benchmark's full name (``gate.SteadyEpochs.time_epochs('dask', 2, 1, '2g')``)
    to ``{"value": ..., "samples": [...] or None}``.
    """
    verdicts = []
    for name in sorted(set(base) | set(head)):
        b, h = base.get(name, {}), head.get(name, {})
        if is_error_track(name):
            verdicts.append(judge_error(name, b.get("value"), h.get("value"), max_error_rise))
        elif is_unused_cores_track(name):
            verdicts.append(judge_unused_cores(name, b.get("value"), h.get("value")))
        elif h.get("samples") is not None or b.get("samples") is not None:
            verdicts.append(judge_time(name, b.get("samples"), h.get("samples"), factor))
        elif not _measured(h.get("value")):
            verdicts.append(Verdict(name, BROKEN, f"{name}: no value on the head commit (the benchmark failed there)"))
        else:
            verdicts.append(Verdict(name, PASS, f"{name}: {b.get('value')} -> {h.get('value')} (a track: not judged)"))
    return verdicts


def exit_code(verdicts: list[Verdict]) -> int:
    """The most serious outcome: broken, then less accurate, then slower, then inconclusive."""
    codes = {v.code for v in verdicts}
    return next((code for code in SEVERITY if code in codes), PASS)
