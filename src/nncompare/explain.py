"""Where the time goes, and what the measurements say about the seed paper's observations.

Every number here is computed from result records (and, for the paper's side, from the
packaged ``seed_paper.csv``); the verdicts follow from those numbers by the rules written next
to each check, so a different results file can give a different verdict. Runs are compared
only with runs of the same job (:mod:`nncompare.results`), and every verdict says how many runs
it rests on and their spread (:mod:`nncompare.evidence`); where they cannot settle it, the
verdict is "not enough evidence" with what would.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from nncompare.breakdown import breakdown, breakdown_table, concurrency
from nncompare.document import Block, Item, Items, Para
from nncompare.evidence import CLEAR, UNSETTLED, Comparison, Spread, compare, steady_parts
from nncompare.paper import load_seed_paper
from nncompare.results import (
    STOPPING,
    TOPOLOGY,
    WORKER_AXIS,
    group_by,
    key,
    labels,
    topology_group,
)
from nncompare.steady import median, steady_epoch_s


@dataclass
class Finding:
    """One of the paper's observations, the check run on it, the verdict and the evidence it rests on."""

    claim: str
    verdict: str  # "supported", "refuted", "not enough evidence", "not tested" or "mixed"
    detail: str = ""
    evidence: list[str] = field(default_factory=list)
    comparisons: list[Comparison] = field(default_factory=list)

    def item(self) -> Item:
        return Item(f"**{self.claim}** — {self.verdict}" + (f": {self.detail}" if self.detail else ""), self.evidence)

    def as_dict(self) -> dict:
        return {
            "claim": self.claim,
            "verdict": self.verdict,
            "detail": self.detail,
            "evidence": self.evidence,
            "comparisons": [c.as_dict() for c in self.comparisons],
        }


def _pp(x: float) -> str:
    return f"{100 * x:.2f} pp"


def _runs(n: int) -> str:
    return f"{n} run" + ("s" if n != 1 else "")


def check_identical_accuracy(records: list[dict]) -> Finding:
    """Identical accuracies across worker counts mean the model did not train data-parallel.

    Rule: with data-parallel averaging each worker count trains on different shards, so the test
    accuracy must change with W by more than it changes between repeats. Supported when it does
    in every job we ran at two or more worker counts; refuted when one gives identical ones.
    """
    claim = "The paper's accuracies are identical across its configurations: did those runs train in parallel?"
    paper = load_seed_paper()
    evidence, identical_paper = [], []
    for engine in sorted({p.engine for p in paper}):
        spreads = []
        for e in sorted({p.epochs for p in paper}):
            accs = [p.test_accuracy for p in paper if p.engine == engine and p.epochs == e]
            spreads.append(max(accs) - min(accs))
        if max(spreads) == 0:
            identical_paper.append(engine)
        evidence.append(
            f"paper, {engine}: accuracy spread across its configurations per epoch count: "
            + ", ".join(map(_pp, spreads))
        )
    groups = [g for g in group_by(records, lambda r: key(r, TOPOLOGY)).values() if len({r["workers"] for r in g}) > 1]
    varying, constant = [], []
    for label, rows in zip(labels(groups, TOPOLOGY), groups):
        by_w = group_by(sorted(rows, key=lambda r: r["workers"]), lambda r: r["workers"])
        accs = {w: median(r["test_accuracy"] for r in rs) for w, rs in by_w.items()}
        noise = max(max(r["test_accuracy"] for r in rs) - min(r["test_accuracy"] for r in rs) for rs in by_w.values())
        spread = max(accs.values()) - min(accs.values())
        (varying if spread > noise else constant).append(label)
        repeated = any(len(rs) > 1 for rs in by_w.values())
        evidence.append(
            f"ours, {label}: accuracy by workers "
            + ", ".join(f"W={w}: {100 * a:.2f} % ({_runs(len(by_w[w]))})" for w, a in accs.items())
            + f"; spread {_pp(spread)} across W, "
            + (f"{_pp(noise)} between repeats" if repeated else "no repeats")
        )
    if not groups:
        return Finding(claim, "not tested", "no job was run at two or more worker counts", evidence)
    if constant:
        return Finding(
            claim,
            "refuted",
            f"ours ({'; '.join(constant)}) also give accuracies that do not change with the worker count beyond "
            "the repeats' spread, so identical accuracies do not by themselves show serial training",
            evidence,
        )
    detail = (
        f"with data-parallel averaging the accuracy changes with the worker count in every job we ran ({len(varying)})"
    )
    if identical_paper:
        detail += (
            f"; the paper's {', '.join(identical_paper)} accuracies do not, so those runs trained one model "
            "without averaging across workers (e.g. one MLPClassifier.fit on one worker)"
        )
    return Finding(claim, "supported", detail, evidence)


def check_convergence_plateau(records: list[dict]) -> Finding:
    """1,000 and 10,000 epochs taking the same time is explained by convergence stopping.

    Paper side: epochs implied by the 1,000-epoch time at the 10->100 epoch rate. Our side:
    supported when runs with convergence stopping ended before their epoch cap, and runs of one
    job with different caps that stopped took about the same time.
    """
    claim = "1,000 and 10,000 epochs take the same time: did training stop at convergence?"
    paper = load_seed_paper()
    evidence = []
    for engine in sorted({p.engine for p in paper}):
        implied, ratios = [], []
        for config in dict.fromkeys(p.config for p in paper if p.engine == engine):
            t = {p.epochs: p.wall_s for p in paper if p.engine == engine and p.config == config}
            implied.append(10 + (t[1000] - t[10]) / ((t[100] - t[10]) / 90))
            ratios.append(t[10000] / t[1000])
        evidence.append(
            f"paper, {engine}: time(10,000)/time(1,000) = "
            + ", ".join(f"{r:.2f}" for r in ratios)
            + "; at the 10→100-epoch rate the 1,000-epoch times correspond to "
            + ", ".join(f"{n:.0f}" for n in implied)
            + " epochs, fewer than 1,000"
        )
    stopping = [r for r in records if r.get("spec", {}).get("convergence_stop", True)]
    stopped = [r for r in stopping if r["epochs_run"] < r["epochs"]]
    if not stopping:
        return Finding(claim, "not tested", "our runs had convergence stopping off", evidence)
    if not stopped:
        n_iter = stopping[0].get("spec", {}).get("n_iter_no_change", 10)
        return Finding(
            claim,
            "not enough evidence",
            f"none of our {len(stopping)} runs stopped before its epoch cap (most epochs run: "
            f"{max(r['epochs_run'] for r in stopping)}); the rule needs the training loss to stall for more than "
            f"n_iter_no_change={n_iter} epochs: runs with a higher --epochs would settle it",
            evidence,
        )
    groups = list(group_by(stopped, topology_group).values())
    same_time = []
    for label, rows in zip(labels(groups, STOPPING), groups):
        caps = group_by(sorted(rows, key=lambda r: r["epochs"]), lambda r: r["epochs"])
        line = f"ours, {label}: " + ", ".join(
            f"cap {c}: stopped at epoch {median(r['epochs_run'] for r in rs):g} in "
            f"{Spread([r['wall_s'] for r in rs]).text()}"
            for c, rs in caps.items()
        )
        if len(caps) >= 2:
            lo, hi = (median(r["wall_s"] for r in caps[c]) for c in (min(caps), max(caps)))
            same_time.append(abs(hi / lo - 1))
            line += f" (time ratio of the largest to the smallest cap {hi / lo:.2f})"
        evidence.append(line)
    evidence.append(f"{len(stopped)} of {len(stopping)} runs with convergence stopping ended before their cap")
    if same_time and max(same_time) > 0.5:
        return Finding(
            claim, "mixed", "runs stop early, but runs with different caps still differ in time by over 50 %", evidence
        )
    return Finding(
        claim,
        "supported",
        "our runs stop at convergence before their cap, so every larger cap costs the same",
        evidence,
    )


def check_too_small(records: list[dict]) -> Finding:
    """The paper's conclusion: the data set is too small to make use of the cluster.

    Judged on steady epochs, per job whose shards ran side by side (concurrency at least 1.2):
    supported when the most workers run clearly slower epochs than the fewest, refuted when
    they run clearly faster; otherwise not enough evidence (:func:`nncompare.evidence.compare`).
    """
    claim = "The data set is too small to make use of the cluster (the paper's conclusion)"
    groups = [
        g for g in group_by(records, lambda r: key(r, WORKER_AXIS)).values() if len({r["workers"] for r in g}) > 1
    ]
    evidence, verdicts, comparisons = [], {}, []
    for label, rows in zip(labels(groups, WORKER_AXIS), groups):
        by_w = group_by(sorted(rows, key=lambda r: r["workers"]), lambda r: r["workers"])
        parts = {
            w: {p: median(steady_parts(r)[p] for r in rs) for p in ("compute", "transfer", "rest")}
            for w, rs in by_w.items()
        }
        overhead = {w: (p["transfer"] + p["rest"]) / max(1e-12, sum(p.values())) for w, p in parts.items()}
        line = (
            f"{label}: concurrency {concurrency(rows):.2f} (workers' compute / round wall time); steady epoch "
            + ", ".join(
                f"W={w}: {Spread([steady_epoch_s(r) for r in rs]).text()} (overheads {100 * overhead[w]:.0f} %)"
                for w, rs in by_w.items()
            )
        )
        lo, hi = min(by_w), max(by_w)
        if concurrency(rows) < 1.2:
            verdicts[label] = "not tested"
            evidence.append(line + "; its shards ran one after another, so it cannot test this")
            continue
        c = compare((f"W={lo}", f"W={hi}"), (by_w[lo], by_w[hi]), steady=True)
        comparisons.append(c)
        evidence += [line, f"{label}, {c.text()}"]
        verdicts[label] = UNSETTLED if c.verdict != CLEAR else ("refuted" if c.faster == 1 else "supported")
    if not groups:
        return Finding(claim, "not tested", "no job was run at two or more worker counts", evidence)
    kinds = set(verdicts.values())
    if len(kinds) == 1:
        (verdict,) = kinds
        detail = {"supported": "more workers make epochs slower", "refuted": "more workers make epochs faster"}.get(
            verdict, ""
        )
        if verdict == UNSETTLED:
            detail = "; ".join(dict.fromkeys(s for c in comparisons for s in c.settle))
        return Finding(claim, verdict, detail, evidence, comparisons)
    return Finding(claim, "mixed", "; ".join(f"{v} for {k}" for k, v in verdicts.items()), evidence, comparisons)


def _paper_engines() -> tuple[str, str]:
    """The seed paper's faster and slower engine, by the median ratio of its wall times."""
    paper = load_seed_paper()
    engines = sorted({p.engine for p in paper})
    walls = {e: median(p.wall_s for p in paper if p.engine == e) for e in engines}
    fast = min(walls, key=walls.get)
    return fast, next(e for e in engines if e != fast)


def check_engine_speed(records: list[dict], *, steady: bool) -> Finding:
    """The paper measured one engine several times faster than the other; do our runs agree, and why?

    Runs of the same job on the two engines are compared (:func:`nncompare.evidence.compare`): on
    steady epochs for training speed, on wall time with start-up for time to a trained model.
    Supported when every clear comparison agrees with the paper, refuted when every clear one
    disagrees; not enough evidence when none is clear.
    """
    fast, slow = _paper_engines()
    paper = load_seed_paper()
    ratios = [
        p.wall_s / q.wall_s
        for p in paper
        if p.engine == slow
        for q in paper
        if q.engine == fast and (q.config, q.epochs) == (p.config, p.epochs)
    ]
    what = "trains faster than" if steady else "reaches a trained model sooner than"
    claim = f"{fast.capitalize()} {what} {slow.capitalize()}" + (
        " (steady epochs)" if steady else " (wall time with start-up)"
    )
    evidence = [
        f"paper: {slow} time / {fast} time per configuration and epochs: {min(ratios):.1f}–{max(ratios):.1f} "
        "(one run each)"
    ]
    groups = [
        g
        for g in group_by([r for r in records if r["engine"] in (fast, slow)], lambda r: key(r, ("engine",))).values()
        if {r["engine"] for r in g} == {fast, slow}
    ]
    if not groups:
        return Finding(claim, "not tested", f"needs {fast} and {slow} runs of the same job", evidence)
    comparisons = []
    for label, rows in zip(labels(groups, ("engine",)) if len(groups) > 1 else [None], groups):
        c = compare((fast, slow), tuple([r for r in rows if r["engine"] == e] for e in (fast, slow)), steady=steady)
        comparisons.append(c)
        evidence.append((f"{label}: " if label else "") + c.text(settle=False))
    clear = [c for c in comparisons if c.verdict == CLEAR]
    agree = sum(c.faster == 0 for c in clear)
    counts = f"{len(clear)} of {len(comparisons)} comparisons clear"
    if not clear:
        settle = "; ".join(dict.fromkeys(s for c in comparisons for s in c.settle))
        return Finding(claim, UNSETTLED, f"{counts}; to settle it: {settle}", evidence, comparisons)
    if agree == len(clear):
        verdict = "supported"
    elif agree == 0:
        verdict = "refuted"
    else:
        verdict = "mixed"
    detail = f"{fast} faster in {agree} of the {counts}"
    return Finding(claim, verdict, detail, evidence, comparisons)


def findings(records: list[dict]) -> list[Finding]:
    return [
        check_identical_accuracy(records),
        check_convergence_plateau(records),
        check_too_small(records),
        check_engine_speed(records, steady=True),
        check_engine_speed(records, steady=False),
    ]


def explanation(records: list[dict]) -> list[Block]:
    """The explanation: the breakdown of each configuration's time, then each finding with its evidence."""
    return [
        Para(
            "Share of each configuration's wall time (the median of its repeats). Start-up (engine start) and "
            "placement (putting the shards on their workers) happen once per run, so in short runs they "
            "dominate; training speed is judged on the steady epoch (the median epoch after the first) and "
            "time to a trained model on the wall time. Evaluation is the test-set accuracy measured after "
            "every epoch. Concurrency is the workers' compute divided by the rounds' wall time: 1 means the "
            "shards ran one after another; workers sharing too few cores count as in flight while they wait "
            "for one, so it can exceed the cores."
        ),
        breakdown_table(breakdown(records)),
        Para("What the measurements say about the paper's observations:"),
        Items([f.item() for f in findings(records)]),
    ]


def explanation_data(records: list[dict]) -> dict:
    """The explanation as data (``nncompare explain --json``)."""
    return {"breakdown": breakdown(records), "findings": [f.as_dict() for f in findings(records)]}
