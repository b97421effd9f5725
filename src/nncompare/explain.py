"""Where the time goes, and what the measurements say about the seed paper's observations.

Every number here is computed from result records (and, for the paper's side, from the
packaged ``seed_paper.csv``); the verdicts follow from those numbers by the rules written
next to each check, so a different results file can give a different verdict.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from nncompare.paper import load_seed_paper
from nncompare.results import COMPONENTS, component_seconds, group_by, job_group, topology_group
from nncompare.steady import median, steady_epoch_s


def breakdown(records: list[dict]) -> dict[str, dict]:
    """Per engine: seconds per epoch run, and each component's share of the wall time.

    Start-up (engine start) and placement (partitioning and placing the shards) happen once
    per run, each its own component (a slow placement must not look like a slow JVM); their
    shares are what they add to every epoch when spread over the epochs run. ``concurrency`` is the workers'
    compute (each measured on the worker's own clock) divided by the rounds' wall time: 1
    means the shards ran one after another, W that all W were in flight the whole round.
    Workers that share too few cores are in flight together but wait for a core, so on an
    oversubscribed machine concurrency can exceed the cores while the speed-up cannot.
    """
    out = {}
    for engine in sorted({r["engine"] for r in records}):
        rows = [r for r in records if r["engine"] == engine]
        seconds = dict.fromkeys(COMPONENTS, 0.0)
        for r in rows:
            for name, s in component_seconds(r).items():
                seconds[name] += s
        total = sum(seconds.values())
        epochs = sum(r["epochs_run"] for r in rows)
        worker_compute = sum(sum(x.get("worker_compute_s", [])) for r in rows for x in r.get("rounds", []))
        round_wall = sum(x.get("wall_s", 0.0) for r in rows for x in r.get("rounds", []))
        out[engine] = {
            "runs": len(rows),
            "epochs": epochs,
            "seconds_per_epoch": total / epochs if epochs else float("nan"),
            "share": {k: (v / total if total else float("nan")) for k, v in seconds.items()},
            "seconds": seconds,
            "concurrency": worker_compute / round_wall if round_wall else float("nan"),
            "max_workers": max(r["workers"] for r in rows),
        }
    return out


@dataclass
class Finding:
    """One of the paper's observations, the check run on it, and the verdict."""

    claim: str
    verdict: str  # "supported", "refuted", "not tested" or per-engine mixes of those
    evidence: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        return [f"- **{self.claim}** — {self.verdict}.", *(f"  - {e}" for e in self.evidence)]


def _pp(x: float) -> str:
    return f"{100 * x:.2f} pp"


def _epoch_groups(records):
    """Records that differ only in topology: same engine, data, model and maximum epochs."""
    return group_by(records, lambda r: (*job_group(r), r["epochs"]))


def check_identical_accuracy(records: list[dict]) -> Finding:
    """Identical accuracies across worker counts mean the model did not train data-parallel.

    Rule: with data-parallel averaging each worker count trains on different shards, so the
    test accuracy must change with W. Supported when every engine we ran at two or more
    worker counts (same epochs) gives different accuracies; refuted when one gives identical ones.
    """
    claim = (
        "The paper's Dask accuracies are identical across its three configurations: "
        "did its Dask runs train in parallel at all?"
    )
    paper = load_seed_paper()
    evidence = []
    identical_paper = []
    for engine in sorted({p.engine for p in paper}):
        spreads = []
        for e in sorted({p.epochs for p in paper}):
            accs = [p.test_accuracy for p in paper if p.engine == engine and p.epochs == e]
            spreads.append(max(accs) - min(accs))
        if max(spreads) == 0:
            identical_paper.append(engine)
        evidence.append(
            f"paper, {engine}: accuracy spread across 9/7/5 workers per epoch count: "
            + ", ".join(_pp(s) for s in spreads)
        )
    ours = defaultdict(list)  # engine -> spreads
    for key, rows in _epoch_groups(records).items():
        by_w = defaultdict(list)
        for r in rows:
            by_w[r["workers"]].append(r["test_accuracy"])
        if len(by_w) < 2:
            continue
        accs = {w: median(v) for w, v in sorted(by_w.items())}
        spread = max(accs.values()) - min(accs.values())
        ours[key[0]].append(spread)
        evidence.append(
            f"ours, {key[0]} {key[1]} {key[-1]} epochs: accuracy by workers "
            + ", ".join(f"W={w}: {100 * a:.2f} %" for w, a in accs.items())
            + f" (spread {_pp(spread)})"
        )
    if not ours:
        return Finding(
            claim, "not tested", evidence + ["no engine was run at two or more worker counts with the same epochs"]
        )
    varying = sorted(e for e, s in ours.items() if min(s) > 0)
    constant = sorted(e for e, s in ours.items() if min(s) == 0)
    if constant:
        verdict = (
            f"refuted: our {', '.join(constant)} runs also give identical accuracies at different worker "
            "counts, so identical accuracies do not by themselves show serial training"
        )
    else:
        verdict = (
            f"supported: with data-parallel averaging the accuracy changes with the worker count in every "
            f"engine we ran ({', '.join(varying)})"
        )
        if identical_paper:
            verdict += (
                f"; the paper's {', '.join(identical_paper)} accuracies do not, so those runs trained one model "
                "without averaging across workers (e.g. one MLPClassifier.fit on one worker)"
            )
    return Finding(claim, verdict, evidence)


def check_convergence_plateau(records: list[dict]) -> Finding:
    """1,000 and 10,000 epochs taking the same time is explained by convergence stopping.

    Paper side: epochs implied by the 1,000-epoch time at the 10->100 epoch rate. Our side:
    supported when runs with convergence stopping ended before their epoch cap (epochs_run
    < epochs) and runs with different caps that stopped at the same epoch took about the same time.
    """
    claim = "1,000 and 10,000 epochs take the same time: did training stop at convergence?"
    paper = load_seed_paper()
    evidence = []
    for engine in sorted({p.engine for p in paper}):
        implied, ratios = [], []
        for config in dict.fromkeys(p.config for p in paper if p.engine == engine):
            t = {p.epochs: p.wall_s for p in paper if p.engine == engine and p.config == config}
            rate = (t[100] - t[10]) / 90
            implied.append(10 + (t[1000] - t[10]) / rate)
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
        return Finding(claim, "not tested", evidence + ["our runs had convergence stopping off"])
    if not stopped:
        most = max(r["epochs_run"] for r in stopping)
        n_iter = stopping[0].get("spec", {}).get("n_iter_no_change", 10)
        return Finding(
            claim,
            "not tested here",
            evidence
            + [
                f"none of our {len(stopping)} runs stopped before its epoch cap (most epochs run: "
                f"{most}); the rule needs "
                f"the training loss to stall for more than n_iter_no_change={n_iter} epochs, so raise --max-epochs"
            ],
        )
    for engine in sorted({r["engine"] for r in stopped}):
        rows = [r for r in stopped if r["engine"] == engine]
        evidence.append(
            f"ours, {engine}: {len(rows)} of {len([r for r in stopping if r['engine'] == engine])} runs "
            f"stopped early, at epoch {min(r['epochs_run'] for r in rows)}–{max(r['epochs_run'] for r in rows)} "
            f"(caps {', '.join(str(c) for c in sorted({r['epochs'] for r in rows}))})"
        )
    same_time = []
    for key, rows in group_by(stopped, topology_group).items():
        caps = defaultdict(list)
        for r in rows:
            caps[r["epochs"]].append(r)
        if len(caps) >= 2:
            lo, hi = min(caps), max(caps)
            t_lo, t_hi = median([r["wall_s"] for r in caps[lo]]), median([r["wall_s"] for r in caps[hi]])
            n_lo, n_hi = median([r["epochs_run"] for r in caps[lo]]), median([r["epochs_run"] for r in caps[hi]])
            same_time.append(abs(t_hi / t_lo - 1))
            evidence.append(
                f"ours, {key[0]} {key[-3]}w x {key[-2]}c: cap {lo} ran {n_lo:g} epochs in {t_lo:.2f} s, "
                f"cap {hi} ran {n_hi:g} epochs in {t_hi:.2f} s (ratio {t_hi / t_lo:.2f})"
            )
    verdict = "supported: our runs stop at convergence before their cap, so every larger cap costs the same"
    if same_time and max(same_time) > 0.5:
        verdict = "partly supported: runs stop early, but runs with different caps still differ in time by over 50 %"
    return Finding(claim, verdict, evidence)


def check_too_small(records: list[dict], shares: dict[str, dict]) -> Finding:
    """The paper's conclusion: the data set is too small to make use of the cluster.

    Rule, per engine whose shards ran side by side (concurrency at least 1.2): supported when overheads (transfer,
    average, other, startup and place) take more of the time than compute, or when the fastest
    epochs were measured at fewer workers than the most tried; refuted otherwise.
    """
    claim = "The data set is too small to make use of the cluster (the paper's conclusion)"
    evidence, verdicts = [], {}
    for engine, b in shares.items():
        s = b["share"]
        overhead = s["transfer"] + s["average"] + s["other"] + s["startup"] + s["place"]
        line = (
            f"{engine}: compute {100 * s['compute']:.0f} % of the time, overheads {100 * overhead:.0f} %, "
            f"concurrency {b['concurrency']:.2f} (workers' compute / round wall time) "
            f"with up to {b['max_workers']} workers"
        )
        rows = [r for r in records if r["engine"] == engine]
        by_w = defaultdict(list)
        for r in rows:
            by_w[r["workers"]].append(steady_epoch_s(r))
        fastest_w = None
        if len(by_w) >= 2:
            steady = {w: median(v) for w, v in by_w.items()}
            fastest_w = min(steady, key=steady.get)
            line += (
                "; steady epoch time by workers: "
                + ", ".join(f"W={w}: {steady[w]:.3f} s" for w in sorted(steady))
                + f" (fastest at W={fastest_w})"
            )
        evidence.append(line)
        if b["concurrency"] < 1.2:
            verdicts[engine] = "not tested"  # its shards took turns: it says nothing about using a cluster
            evidence[-1] += "; its shards ran one after another, so it cannot test this"
        elif overhead > s["compute"] or (fastest_w is not None and fastest_w < max(by_w)):
            verdicts[engine] = "supported"
        else:
            verdicts[engine] = "refuted"
    if not verdicts:
        return Finding(claim, "not tested", evidence)
    kinds = set(verdicts.values())
    verdict = kinds.pop() if len(kinds) == 1 else "; ".join(f"{v} for {e}" for e, v in verdicts.items())
    return Finding(claim, verdict, evidence)


def check_dask_faster(records: list[dict]) -> Finding:
    """The paper measured Dask several times faster than Spark; do our runs agree, and why?

    Rule: compare median wall times of Dask and Spark runs of the same configuration and
    epochs; supported when Dask is faster in most pairs.
    """
    claim = "Dask trains faster than Spark"
    paper = load_seed_paper()
    ratios = []
    for p in paper:
        if p.engine == "spark":
            d = next(q for q in paper if q.engine == "dask" and q.config == p.config and q.epochs == p.epochs)
            ratios.append(p.wall_s / d.wall_s)
    evidence = [f"paper: Spark time / Dask time per configuration and epochs: {min(ratios):.1f}–{max(ratios):.1f}"]
    ours = []
    groups = defaultdict(lambda: defaultdict(list))
    for r in records:
        groups[(r["dataset"], r["workers"], r["cores_per_worker"], r["epochs"])][r["engine"]].append(r)
    for (dataset, w, c, e), by_engine in sorted(groups.items()):
        if "dask" in by_engine and "spark" in by_engine:
            d = median([r["wall_s"] for r in by_engine["dask"]])
            s = median([r["wall_s"] for r in by_engine["spark"]])
            ds = median([r["startup_s"] for r in by_engine["dask"]])
            ss = median([r["startup_s"] for r in by_engine["spark"]])
            ours.append(s / d)
            evidence.append(
                f"ours, {dataset} {w}w x {c}c, {e} epochs: Spark {s:.2f} s (start-up {ss:.2f} s), "
                f"Dask {d:.2f} s (start-up {ds:.2f} s): ratio {s / d:.2f}"
            )
    if not ours:
        return Finding(claim, "not tested", evidence + ["needs Dask and Spark runs of the same configuration"])
    faster = sum(r > 1 for r in ours)
    verdict = "supported" if faster > len(ours) / 2 else "refuted"
    return Finding(claim, f"{verdict}: Dask faster in {faster} of {len(ours)} comparisons", evidence)


def findings(records: list[dict]) -> list[Finding]:
    shares = breakdown(records)
    return [
        check_identical_accuracy(records),
        check_convergence_plateau(records),
        check_too_small(records, shares),
        check_dask_faster(records),
    ]


def breakdown_table(shares: dict[str, dict]) -> list[str]:
    head = ["engine", "runs", "epochs run", "s per epoch", *COMPONENTS, "concurrency"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for engine, b in shares.items():
        cells = [
            engine,
            str(b["runs"]),
            str(b["epochs"]),
            f"{b['seconds_per_epoch']:.3f}",
            *(f"{100 * b['share'][k]:.1f} %" for k in COMPONENTS),
            f"{b['concurrency']:.2f}",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def explain_markdown(records: list[dict]) -> list[str]:
    """The explanation section: the per-epoch breakdown, then each finding with its evidence."""
    shares = breakdown(records)
    lines = [
        "Share of the wall time of every run, per engine, summed over its runs. Start-up (engine start) and "
        "placement (putting the shards on their workers) happen once per run; their shares are what they add to each "
        "epoch run. Evaluation is the test-set "
        "accuracy measured after every epoch (a cost the paper's single fit did not pay). Concurrency is the "
        "workers' compute divided by the rounds' wall time: 1 means the shards ran one after another; workers "
        "sharing too few cores count as in flight while they wait for one, so it can exceed the cores.",
        "",
        *breakdown_table(shares),
        "",
        "What the measurements say about the paper's observations:",
        "",
    ]
    for f in findings(records):
        lines += f.lines()
    return lines
