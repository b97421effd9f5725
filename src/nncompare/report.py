"""The report of a results file, as blocks (:mod:`nncompare.document`) and as data; every figure comes from a record.

Records are loaded, grouped and summarised by :mod:`nncompare.results` (repeats of one
configuration by their median, runs of one job only with each other); the runs table is a
pandas aggregation of :func:`nncompare.results.frame`. The paper comparison uses the ``paper``
tag that ``nncompare paper`` adds to each record, so ``nncompare report`` rebuilds it from the
results file alone. :mod:`nncompare.publish` adds the plots and writes the files.
"""

from __future__ import annotations

import json
from itertools import combinations

from nncompare.document import Block, Code, Figure, Heading, Item, Items, Para, Quote, Table
from nncompare.engines.registry import record_packages
from nncompare.evidence import compare
from nncompare.explain import explanation, explanation_data
from nncompare.paper import citation_lines, load_seed_paper
from nncompare.results import (
    STOPPING,
    TOPOLOGY,
    Summary,
    common,
    configuration,
    frame,
    group_by,
    job,
    key,
    labels,
    paper_records,
    summarize,
    topology_label,
)
from nncompare.whatif import fit


def runs_frame(records: list[dict]):
    """One row per configuration: its label (what differs between the rows), repeats, medians and ranges."""
    sums = summarize(records)
    df = frame(records)
    df["configuration"] = [configuration(r) for r in records]
    stats = df.groupby("configuration", sort=False).agg(
        runs=("wall_s", "size"),
        epochs_run=("epochs_run", "median"),
        wall_s=("wall_s", "median"),
        wall_min_s=("wall_s", "min"),
        wall_max_s=("wall_s", "max"),
        startup_s=("startup_s", "median"),
        steady_epoch_s=("steady_epoch_s", "median"),
        steady_min_s=("steady_epoch_s", "min"),
        steady_max_s=("steady_epoch_s", "max"),
        test_accuracy=("test_accuracy", "median"),
    )
    stats = stats.loc[[configuration(s.first) for s in sums]]
    stats.insert(0, "label", labels(sums))
    return stats.reset_index(drop=True)


def _range(lo: float, mid: float, hi: float, digits: str) -> str:
    return f"{mid:{digits}}" + (f" ({lo:{digits}}–{hi:{digits}})" if hi > lo else "")


def runs_table(records: list[dict]) -> Table:
    rows = [
        [
            row.label,
            str(row.runs),
            f"{row.epochs_run:g}",
            _range(row.wall_min_s, row.wall_s, row.wall_max_s, ".2f"),
            f"{row.startup_s:.2f}",
            _range(row.steady_min_s, row.steady_epoch_s, row.steady_max_s, ".3f"),
            f"{100 * row.test_accuracy:.2f}",
        ]
        for row in runs_frame(records).itertuples()
    ]
    head = ["configuration", "runs", "epochs run", "wall s", "start-up s", "steady epoch s", "test accuracy %"]
    return Table(head, rows)


def engine_comparisons(records: list[dict]) -> list:
    """Every pair of engines run on one job, compared on steady epochs and on time to a trained model."""
    groups = [g for g in group_by(records, lambda r: key(r, ("engine",))).values() if len({r["engine"] for r in g}) > 1]
    out = []
    for label, rows in zip(labels(groups, ("engine",)), groups):
        by_engine = group_by(rows, lambda r: r["engine"])
        for a, b in combinations(by_engine, 2):
            pair = ((a, b), (by_engine[a], by_engine[b]))
            out.append((label if len(groups) > 1 else "", [compare(*pair, steady=s) for s in (True, False)]))
    return out


def comparison_blocks(records: list[dict]) -> list[Block]:
    """The engine comparisons as a table, and what would settle those that are not clear."""
    found = engine_comparisons(records)
    if not found:
        return [Para("No job was run on two engines, so there is no engine to compare with another.")]
    jobs = any(label for label, _ in found)  # a column of its own only when more than one job was compared
    rows = [
        [
            *([label] if jobs else []),
            c.measure,
            *(f"{n} {s.text()}" for n, s in zip(c.names, c.sides)),
            f"{c.names[c.faster]} ×{c.ratio:.2f}",
            c.decided_by(),
            c.verdict,
        ]
        for label, pair in found
        for c in pair
    ]
    settle = list(dict.fromkeys(s for _, pair in found for c in pair for s in c.settle))
    return [
        Para(
            "Engines that ran the same job, compared on the steady epoch (training speed) and on the wall time "
            "with start-up (time to a trained model). A difference is clear when the repeats' ranges do not "
            "overlap and there are enough repeats (3 of each) to make that separation unlikely by chance."
        ),
        Table(
            [*(["job"] if jobs else []), "measure", "one", "the other", "faster", "decided by", "verdict"],
            rows,
        ),
        *([Para("What would settle the others: " + "; ".join(settle) + ".")] if settle else []),
    ]


def paper_table(records: list[dict]) -> Table:
    """The paper's table with ours beside it: one 'paper' and one 'ours' row per engine and configuration."""
    tagged = paper_records(records)
    paper = load_seed_paper()
    columns = sorted({p.epochs for p in paper})
    engines = list(dict.fromkeys([*(p.engine for p in paper), *sorted({r["engine"] for r in tagged})]))
    configs = list(dict.fromkeys(p.config for p in paper))
    # a results file resumed with another --epochs cap holds several caps per column: show the largest
    caps = {c: max((r["epochs"] for r in tagged if c in r["paper"]["columns"]), default=None) for c in columns}
    head = [
        "engine",
        "configuration",
        "source",
        *(f"{c:,}" + (f" (ours capped at {caps[c]})" if caps[c] not in (None, c) else "") for c in columns),
    ]
    rows = []
    for engine in engines:
        ran = [r for r in tagged if r["engine"] == engine]
        if not ran and engine not in {p.engine for p in paper}:
            continue
        for config in configs:
            published = {p.epochs: p for p in paper if p.engine == engine and p.config == config}
            cells = [
                f"{published[c].wall_s:g} s, {100 * published[c].test_accuracy:.2f} %" if c in published else "—"
                for c in columns
            ]
            rows.append([engine, config, "paper", *cells])
            mine = [r for r in ran if r["paper"]["config"] == config]
            ours = []
            for c in columns:
                cell = [r for r in mine if c in r["paper"]["columns"] and r["epochs"] == caps[c]]
                s = Summary(cell)
                ours.append(
                    f"{s.wall_s:.3g} s, {100 * s.accuracy:.2f} % ({s.epochs_run:g} ep, {len(cell)} run"
                    + ("s" if len(cell) > 1 else "")
                    + ")"
                    if cell
                    else "not run"
                )
            rows.append(
                [engine, config, f"ours, {topology_label(mine[0], TOPOLOGY, paper=False)}" if mine else "ours", *ours]
            )
    return Table(head, rows)


def environment_lines(records: list[dict]) -> list[str]:
    """The machines, library versions and commits the records were measured with."""
    lines = []
    machines = {(m["hostname"], m["cpu"], m["cores"], m["memory_bytes"]): m for m in (r["machine"] for r in records)}
    for m in machines.values():
        lines.append(
            f"machine: {m['hostname']}, {m['cpu']}, {m['cores']} cores, "
            f"{m['memory_bytes'] / 1024**3:.1f} GiB, {m.get('platform', '')}"
        )
    keys = ("python", "nncompare", "numpy", "scikit-learn", *record_packages())
    for v in {json.dumps(r["versions"], sort_keys=True): r["versions"] for r in records}.values():
        lines.append(
            "versions: "
            + ", ".join(f"{k} {v[k]}" for k in keys if k in v)
            + (f", BLAS {'; '.join(v['blas'])}" if v.get("blas") else "")
        )
    lines.append("commit: " + ", ".join(sorted({str(r["commit"]) for r in records})))
    stamps = sorted(r.get("timestamp", "") for r in records if r.get("timestamp"))
    if stamps:
        lines.append(f"measured {stamps[0]} to {stamps[-1]}, {len(records)} runs")
    return lines


def whatif_lines(records: list[dict]) -> list[str]:
    """The what-if model of each job run at two or more worker counts, named by what differs between the jobs."""
    groups = [g for g in group_by(records, lambda r: key(r, (*TOPOLOGY, *STOPPING))).values()]
    named = [(label, m) for label, g in zip(labels(groups, (*TOPOLOGY, *STOPPING)), groups) for m in fit(g)]
    if not named:
        return ["No job was run at two or more worker counts, so there is nothing to fit."]
    return [line for label, m in named for line in ([f"{label}:"] if len(groups) > 1 else []) + m.describe()]


def preamble_blocks(lines: list[str]) -> list[Block]:
    """Markdown lines (paragraphs and fenced code) as blocks."""
    blocks, para, code = [], [], None
    for line in lines:
        if line.strip() == "```":
            if code is None:
                code = []
            else:
                blocks.append(Code(code))
                code = None
        elif code is not None:
            code.append(line)
        elif line.strip():
            para.append(line.strip())
        elif para:
            blocks.append(Para(" ".join(para)))
            para = []
    return blocks + ([Para(" ".join(para))] if para else [])


def report_blocks(
    records: list[dict],
    *,
    title: str,
    results_path: str,
    preamble: list[str] | None = None,
    figures: list[tuple[str, str, str]] = (),
    not_drawn: list[str] = (),
) -> list[Block]:
    """The whole report; ``figures`` are (file stem, caption, note) of plots drawn beside it."""
    sums = summarize(records)
    blocks: list[Block] = [Heading(title, 1), *preamble_blocks(preamble or [])]
    blocks += [Para(f"Results: `{results_path}` ({len(records)} runs).")]
    blocks += [Heading("Environment"), Items([Item(line) for line in environment_lines(records)])]
    blocks += [Para("Timings are from a machine shared with other jobs; compare runs made side by side.")]
    if paper_records(records):
        blocks += [
            Heading("Beside the paper"),
            Para(
                "Each cell: wall time, test accuracy, and for ours the epochs actually run and how many runs. Ours "
                "ran on the machine above with the configuration in the row label; the paper's on its 2-node cluster."
            ),
            paper_table(records),
            Quote(citation_lines()),
        ]
    blocks += [
        Heading("Runs"),
        Para(
            f"All runs: {common(sums)}. Each row is one configuration, named by what differs between the rows: the "
            "median of its repeats, with their range in brackets. Steady epoch: the median epoch after the first."
        ),
        runs_table(records),
        Heading("Engines compared"),
        *comparison_blocks(records),
        Heading("Where the time goes"),
        *explanation(records),
        Heading("What if there were more workers"),
        Code(whatif_lines(records)),
    ]
    if figures or not_drawn:
        blocks += [Heading("Plots"), *(Figure(*f) for f in figures)]
        if not_drawn:
            blocks += [Para("Not drawn:"), Items([Item(reason) for reason in not_drawn])]
    return blocks


def report_data(records: list[dict], *, results_path: str) -> dict:
    """The report as data (``nncompare report --json``): runs by configuration, comparisons, findings."""
    runs = runs_frame(records)
    runs["job"] = [job(s.first) for s in summarize(records)]
    return {
        "results": results_path,
        "runs": len(records),
        "configurations": json.loads(runs.to_json(orient="records")),
        "comparisons": [
            {"job": label, "comparisons": [c.as_dict() for c in pair]} for label, pair in engine_comparisons(records)
        ],
        **explanation_data(records),
        "environment": environment_lines(records),
    }
