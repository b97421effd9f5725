"""Recompute the gate's calibration table from stored gate records: false alarms and detection rates.

    python tools/gate_calibrate.py                          # the records kept in docs/data/gate/
    python tools/gate_calibrate.py my-records/ --draws 50000
    python tools/gate_calibrate.py --design 3 --factor 1.05 --rounds 4 --more 4 --max-rounds 12
    python tools/gate_calibrate.py --normal-sd 0.01 0.03 0.05      # the rule on normal noise: the noise budget

Reads ``nncompare gate --record`` files (``tools/gate_trial.py`` writes them with the trial's
throwaway changes) and pair files, pools each engine's unchanged paired log ratios of one design
(the timed benchmark's ``version``; by default the newest found), resamples them into simulated
gates that follow the gate's rule, and prints in Markdown: the outcome rates per engine for no
change and for 5, 10 and 20 % slowdowns, then every real run's verdict under the same rule. How
to read it: docs/evidence.md, "Calibration". To calibrate your own CI machine, run the gate there
with ``--record`` on unchanged commits (``tools/gate_trial.py``) and point this at the records.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    sys.path.insert(0, str(ROOT))
    from benchmarks.gate import ROUNDS
    from nncompare.cli.gate import DEFAULT_FACTOR, MAX_ROUNDS, MORE_ROUNDS
    from nncompare.gate import calibration
    from nncompare.gate.sequential import Plan

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="*", type=Path, default=[ROOT / "docs" / "data" / "gate"])
    parser.add_argument("--design", help="The timed benchmark's version to pool (default: the newest found).")
    parser.add_argument("--factor", type=float, default=DEFAULT_FACTOR)
    parser.add_argument("--rounds", type=int, default=ROUNDS, help="Rounds of the first batch (the suite's).")
    parser.add_argument("--more", type=int, default=MORE_ROUNDS, help="Rounds of each later batch.")
    parser.add_argument("--max-rounds", type=int, default=MAX_ROUNDS)
    parser.add_argument("--draws", type=int, default=20000, help="Simulated gates per engine and slowdown.")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--median-rule",
        action="store_true",
        help="Simulate the rule before issue 25 instead (median ratio over --factor, all pairs but one over 1, "
        "--rounds pairs): the baseline.",
    )
    parser.add_argument(
        "--normal-sd",
        type=float,
        nargs="+",
        help="Instead of the records: normal log ratios of these standard deviations (the noise budget: "
        "how noisy a machine may be for the rule to keep its rates).",
    )
    parser.add_argument(
        "--residuals",
        action="store_true",
        help="Pool the slowed engines' pairs too, less their own mean (noise, if a slowdown only shifts them).",
    )
    args = parser.parse_args()
    plan = Plan(first=args.rounds, more=args.more, most=args.max_rounds)
    if args.normal_sd:
        rng = np.random.default_rng(args.seed)
        pools = {f"normal, SD {sd:g}": rng.normal(0.0, sd, 200_000) for sd in args.normal_sd}
        rows = calibration.table(pools, plan, args.factor, args.draws, args.seed, args.median_rule)
        print(calibration.markdown(rows, plan, args.factor, args.draws))
        return 0
    verdicts = calibration.load(args.paths)
    if not verdicts:
        print(f"gate_calibrate: error: no gate records in {', '.join(map(str, args.paths))}", file=sys.stderr)
        return 2
    designs = sorted({v.design for v in verdicts}, key=lambda d: (not d.isdigit(), int(d) if d.isdigit() else d))
    design = args.design or designs[-1]
    pools = calibration.noise_pools(verdicts, design, args.residuals)
    if not pools:
        print(f"gate_calibrate: error: no unchanged engine of design {design} (found: {designs})", file=sys.stderr)
        return 2
    rows = calibration.table(pools, plan, args.factor, args.draws, args.seed, args.median_rule)
    pooled = "unchanged engines' pairs" + (" and slowed engines' residuals" if args.residuals else "")
    print(f"Design {design} (SteadyEpochs version), {pooled}; records: {', '.join(map(str, args.paths))}\n")
    if args.median_rule:
        print(f"The rule before issue 25: median paired ratio over x{args.factor:g}, all but one pair over 1.")
    print(calibration.markdown(rows, plan, args.factor, args.draws))
    if not args.median_rule:  # the real runs, judged again by today's rule
        print(calibration.real_runs([v for v in verdicts if v.design == design], args.factor))
    return 0


if __name__ == "__main__":
    sys.exit(main())
