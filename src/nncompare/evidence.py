"""Comparing two sets of runs so that a verdict carries its evidence, or says what would settle it.

A comparison (:func:`compare`) takes the runs of two configurations that differ in one thing
(the engine, the worker count), one number per run, and the parts that number is made of. It
says how many runs each side rests on, their medians and ranges, which part made most of the
difference, and a verdict:

* **clear** when the ranges of the two sides do not overlap and that separation is unlikely
  by chance: were all runs drawn from one distribution, every run of one side would beat every
  run of the other, in one direction or the other, with probability ``2 / C(a + b, a)``
  (Mann-Whitney's exact test at its extreme). Clear needs that at most :data:`CHANCE`: three
  repeats of each at least;
* **not enough evidence** otherwise, with what would settle it: more repeats, or, for a
  steady-epoch comparison, runs long enough to have a steady epoch at all
  (:data:`MIN_EPOCHS`: the first epoch is warm-up, :mod:`nncompare.steady`).

Training speed is compared on steady epochs (:func:`steady_parts`); time to a trained model
on wall time with start-up (:func:`wall_parts`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

from nncompare.results import component_seconds
from nncompare.steady import after_first, median, steady_epoch_s

#: The largest chance of a complete separation of repeats that still makes a comparison clear.
CHANCE = 0.1
#: Epochs a run needs for its steady epoch to be the median of two epochs after warm-up.
MIN_EPOCHS = 3
CLEAR, UNSETTLED = "clear", "not enough evidence"


def separation_chance(a: int, b: int) -> float:
    """Probability that ``a`` and ``b`` draws from one distribution come out completely separated (either way)."""
    return min(1.0, 2 / math.comb(a + b, a))


def repeats_needed() -> int:
    """The fewest repeats of each side whose complete separation is clear (3 for :data:`CHANCE` 0.1)."""
    n = 1
    while separation_chance(n, n) > CHANCE:
        n += 1
    return n


def seconds(x: float, unit: str = " s") -> str:
    """Seconds to three significant digits, never in exponent notation; under a millisecond to two
    (a part of 0.4 ms reads 0.00042 s, not 0.000 s, which would say it took no time)."""
    if math.isnan(x):
        return "n/a"
    if x == 0:
        return "0" + unit
    if abs(x) < 0.001:
        return f"{x:.{min(9, 1 - math.floor(math.log10(abs(x))))}f}" + unit
    return (f"{x:.3g}" if abs(x) < 1000 else f"{x:.0f}") + unit


@dataclass
class Spread:
    """One number per run: how many runs, their median and range."""

    values: list[float]

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def median(self) -> float:
        return median(self.values)

    def text(self) -> str:
        """``0.52 s (3 runs, 0.5–0.55)``."""
        runs = f"{self.n} run" + ("s" if self.n != 1 else "")
        if self.n == 1:
            return f"{seconds(self.median)} ({runs})"
        return f"{seconds(self.median)} ({runs}, {seconds(min(self.values), unit='')}–{seconds(max(self.values))})"

    def as_dict(self) -> dict:
        return {"runs": self.n, "median": self.median, "min": min(self.values), "max": max(self.values)}


def wall_parts(record: dict) -> dict[str, float]:
    """A run's time to a trained model: start-up, placement, the rounds (with their overheads) and evaluation."""
    c = component_seconds(record)
    rounds = c["compute"] + c["transfer"] + c["average"] + c["other"]
    return {"start-up": c["startup"], "placement": c["place"], "rounds": rounds, "evaluation": c["evaluate"]}


def steady_parts(record: dict) -> dict[str, float]:
    """A run's steady epoch split into the workers' compute, the weights' transfer and the rest (averaging, idle).

    Each is the median over the epochs after the first of that part's seconds in the epoch's rounds.
    """
    epochs = sorted({x["epoch"] for x in record.get("rounds", [])})
    steady = after_first(epochs)
    per = {
        part: median(sum(x.get(f"{part}_s", 0.0) for x in record["rounds"] if x["epoch"] == e) for e in steady)
        for part in ("compute", "transfer")
    }
    if not steady or any(math.isnan(v) for v in per.values()):
        return {"compute": math.nan, "transfer": math.nan, "rest": math.nan}
    return {**per, "rest": max(0.0, steady_epoch_s(record) - per["compute"] - per["transfer"])}


#: How a part reads in a verdict: the steady epoch's ``rest`` is what is neither compute nor transfer.
PART_NAMES = {"rest": "averaging and bookkeeping"}


@dataclass
class Comparison:
    """Two sets of runs, one number each, with the verdict and what it rests on."""

    measure: str  # "steady epoch" or "time to a trained model"
    names: tuple[str, str]
    sides: tuple[Spread, Spread]
    parts: tuple[dict[str, float], dict[str, float]]  # median seconds of each part, per side
    short_runs: int = 0  # runs too short for the measure (steady epoch: fewer than MIN_EPOCHS epochs)
    settle: list[str] = field(default_factory=list)

    @property
    def faster(self) -> int:
        """0 or 1: the side with the lower median."""
        return 0 if self.sides[0].median <= self.sides[1].median else 1

    @property
    def ratio(self) -> float:
        """Slower median over faster median."""
        fast, slow = self.sides[self.faster].median, self.sides[1 - self.faster].median
        return slow / fast if fast > 0 else math.inf

    @property
    def overlap(self) -> bool:
        a, b = self.sides
        return not (max(a.values) < min(b.values) or max(b.values) < min(a.values))

    @property
    def verdict(self) -> str:
        return UNSETTLED if self.settle else CLEAR

    def decisive_part(self) -> str | None:
        """The part whose difference is largest in the direction of the result."""
        fast, slow = self.parts[self.faster], self.parts[1 - self.faster]
        gaps = {p: slow[p] - fast[p] for p in fast if not math.isnan(slow[p] - fast[p])}
        return max(gaps, key=gaps.get) if gaps else None

    def decided_by(self) -> str:
        """The decisive part with both sides' seconds in it; "no one part" where its gap is under half
        the whole difference (a 1 ms gap does not decide a 1.2 ms difference between noisier totals)."""
        part = self.decisive_part()
        if part is None:
            return "no part measured"
        sides = ", ".join(f"{n} {seconds(p[part])}" for n, p in zip(self.names, self.parts))
        named = f"{PART_NAMES.get(part, part)} ({sides})"
        fast, slow = self.parts[self.faster], self.parts[1 - self.faster]
        difference = self.sides[1 - self.faster].median - self.sides[self.faster].median
        if slow[part] - fast[part] < 0.5 * difference:
            return f"no one part (the largest gap: {named})"
        return named

    def text(self, settle: bool = True) -> str:
        """One line: both sides, the ratio, what decided it and the verdict (with what would settle it)."""
        sides = ", ".join(f"{n} {s.text()}" for n, s in zip(self.names, self.sides))
        faster = f"{self.names[self.faster]} faster ×{self.ratio:.2f}"
        line = f"{self.measure}: {sides}; {faster}, decided by {self.decided_by()}"
        if not self.settle:
            return line + " — clear"
        return line + f" — {UNSETTLED}" + (": " + "; ".join(self.settle) if settle else "")

    def as_dict(self) -> dict:
        return {
            "measure": self.measure,
            "sides": {n: {**s.as_dict(), "parts_s": p} for n, s, p in zip(self.names, self.sides, self.parts)},
            "faster": self.names[self.faster],
            "ratio": self.ratio,
            "decided_by": self.decided_by(),
            "verdict": self.verdict,
            "settle": self.settle,
        }


def compare(
    names: tuple[str, str],
    runs: tuple[list[dict], list[dict]],
    *,
    steady: bool,
) -> Comparison:
    """Compare two sets of runs on their steady epoch (``steady``) or on their time to a trained model."""
    value: Callable[[dict], float] = steady_epoch_s if steady else (lambda r: r["wall_s"])
    split = steady_parts if steady else wall_parts
    sides = tuple(Spread([value(r) for r in rs]) for rs in runs)
    parts = tuple({p: median(s[p] for s in map(split, rs)) for p in split(rs[0])} for rs in runs)
    short = sum(r["epochs_run"] < MIN_EPOCHS for rs in runs for r in rs) if steady else 0
    c = Comparison("steady epoch" if steady else "time to a trained model", names, sides, parts, short)
    need = repeats_needed()
    if separation_chance(sides[0].n, sides[1].n) > CHANCE:
        c.settle.append(f"{need} repeats of each (have {sides[0].n} and {sides[1].n})")
    elif c.overlap:
        c.settle.append(
            "the repeats' ranges overlap, so the difference is within their spread: more repeats, "
            "or runs on a quieter machine"
        )
    if short:
        c.settle.append(
            f"runs of at least {MIN_EPOCHS} epochs ({short} of {sides[0].n + sides[1].n} ran fewer: a steady "
            "epoch needs two after the warm-up)"
        )
    return c
