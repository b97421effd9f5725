"""The gate's rounds: a first batch for everything, then more rounds only where a verdict is inconclusive.

Each batch is one ``asv run --interleave-rounds`` into its own results folder
(:class:`nncompare.gate.asvrun.Workspace`). The first runs the selection with the rounds the suite
declares (``benchmarks/gate.py``: ``SteadyEpochs.rounds``; the tracks once); a later one runs only the
inconclusive timed benchmarks, ``-a rounds=N`` with N even, so that within it the base runs first in
half the rounds and the head in the other half. The samples of each timed benchmark are then joined
batch after batch, base and head alike, so pair *i* is still two samples from one round. After
each batch every benchmark is judged again on all its pairs; the gate stops as soon as no verdict
is inconclusive, or when ``max_rounds`` pairs have been measured. The tracks (test error, idle
cores) run in the first batch only. The error rates of this rule, looks included, are measured by
``tools/gate_calibrate.py`` (docs/evidence.md, "Calibration"), not assumed.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import click

from nncompare.gate import asvrun
from nncompare.gate.judge import INCONCLUSIVE, Verdict, judge


@dataclass(frozen=True)
class Plan:
    """Rounds of the first batch (the suite's), of each later one, and the most pairs a timed benchmark gets."""

    first: int
    more: int
    most: int

    def __post_init__(self):
        if self.first < 1 or self.more < 2 or self.more % 2:
            raise ValueError(
                "later batches need an even number of rounds, at least 2, so that each commit leads in half"
            )
        if self.most < self.first:
            raise ValueError("the most rounds cannot be fewer than the first batch's")

    def next_batch(self, done: int) -> int:
        """Rounds of the next batch after ``done`` rounds (0: none left); even, never past ``most``."""
        left = self.most - done
        return min(self.more, left - left % 2)


@dataclass
class Measurements:
    """Every benchmark's values and samples so far, base and head, joined batch after batch."""

    base: dict = field(default_factory=dict)
    head: dict = field(default_factory=dict)

    def add(self, base: dict, head: dict) -> None:
        for mine, new in ((self.base, base), (self.head, head)):
            for name, got in new.items():
                if name not in mine:
                    mine[name] = {"value": got["value"], "samples": list(got["samples"] or []) or None}
                elif got["samples"] is None or mine[name]["samples"] is None:
                    mine[name]["samples"] = None  # failed in one batch: no pairs to trust for it
                else:
                    mine[name]["samples"] += got["samples"]


@dataclass
class Outcome:
    """What the gate measured and judged: the final verdicts, each batch's rounds and seconds."""

    verdicts: list[Verdict]
    measurements: Measurements
    batches: list[dict]


def run(
    workspace: asvrun.Workspace,
    commits: list[str],
    bench: str,
    plan: Plan,
    *,
    factor: float,
    max_error_rise: float,
    extra: list[str],
) -> Outcome:
    """Batches of interleaved rounds until every verdict is decided or ``plan.most`` rounds are spent."""
    measurements = Measurements()
    batches: list[dict] = []
    rounds, done, selection = plan.first, 0, bench
    while True:
        start = time.monotonic()
        # the first batch with the suite's own rounds (the tracks once), later ones with -a rounds=N
        results = asvrun.run_rounds(workspace, commits, selection, rounds if done else None, extra)
        measurements.add(*(asvrun.measured(results, c, selection) for c in commits))
        done += rounds
        verdicts = judge(measurements.base, measurements.head, factor=factor, max_error_rise=max_error_rise)
        open_ = [v.name for v in verdicts if v.code == INCONCLUSIVE]
        batches.append({"rounds": rounds, "bench": selection, "seconds": round(time.monotonic() - start, 1)})
        rounds = plan.next_batch(done)
        if not open_ or not rounds:
            return Outcome(verdicts, measurements, batches)
        selection = asvrun.exactly(open_)
        click.echo(
            f"nncompare gate: {len(open_)} verdict(s) inconclusive after {done} rounds; {rounds} more for: "
            + ", ".join(open_),
            err=True,
        )
