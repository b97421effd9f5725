"""The markdown report of a results file; every figure comes from a record in it.

Records are loaded, grouped and summarised by :mod:`nncompare.results` (repeats of one
configuration by their median); this module only writes the markdown. The paper comparison
uses the ``paper`` tag that ``nncompare paper`` adds to each record, so ``nncompare report``
rebuilds it from the results file alone. :mod:`nncompare.publish` adds the plots.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from nncompare.engines.registry import record_packages
from nncompare.explain import explain_markdown
from nncompare.paper import citation_lines, load_seed_paper
from nncompare.results import Summary, paper_records, summarize, topology_label
from nncompare.whatif import fit


def _md_table(head: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(head) + " |", "|" + "---|" * len(head), *("| " + " | ".join(r) + " |" for r in rows)]


def runs_table(records: list[dict]) -> list[str]:
    rows = []
    for s in summarize(records):
        r = s.first
        spread = ""
        if len(s.records) > 1:
            walls = [x["wall_s"] for x in s.records]
            spread = f" ({min(walls):.2f}–{max(walls):.2f})"
        rows.append(
            [
                r["engine"],
                r["dataset"],
                topology_label(r),
                f"{s.epochs_run:g} / {r['epochs']}",
                f"{s.wall_s:.2f}{spread}",
                f"{s.startup_s:.2f}",
                f"{s.epoch_s:.3f}",
                f"{100 * s.accuracy:.2f}",
                str(len(s.records)),
            ]
        )
    return _md_table(
        [
            "engine",
            "dataset",
            "workers×cores×memory",
            "epochs run / max",
            "wall s",
            "start-up s",
            "epoch s",
            "test accuracy %",
            "runs",
        ],
        rows,
    )


def paper_table(records: list[dict]) -> list[str]:
    """The paper's table with ours beside it, row for row: one 'paper' and one 'ours' row per engine and
    configuration."""
    tagged = paper_records(records)
    paper = load_seed_paper()
    columns = sorted({p.epochs for p in paper})
    engines = list(dict.fromkeys([*(p.engine for p in paper), *sorted({r["engine"] for r in tagged})]))
    configs = list(dict.fromkeys(p.config for p in paper))
    # a results file resumed with another --max-epochs holds several caps per column: show the largest
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
                if not cell:
                    ours.append("not run")
                    continue
                s = Summary(cell)
                ours.append(
                    f"{s.wall_s:.3g} s, {100 * s.accuracy:.2f} % ({s.epochs_run:g} ep"
                    + (f", {len(cell)} runs" if len(cell) > 1 else "")
                    + ")"
                )
            label = f"ours, {topology_label(mine[0])}" if mine else "ours"
            rows.append([engine, config, label, *ours])
    return _md_table(head, rows)


def environment_lines(records: list[dict]) -> list[str]:
    """The machines, library versions and commits the records were measured with."""
    lines = []
    machines = {(m["hostname"], m["cpu"], m["cores"], m["memory_bytes"]): m for m in (r["machine"] for r in records)}
    for m in machines.values():
        lines.append(
            f"- machine: {m['hostname']}, {m['cpu']}, {m['cores']} cores, "
            f"{m['memory_bytes'] / 1024**3:.1f} GiB, {m.get('platform', '')}"
        )
    keys = ("python", "nncompare", "numpy", "scikit-learn", *record_packages())
    for v in {json.dumps(r["versions"], sort_keys=True): r["versions"] for r in records}.values():
        lines.append(
            "- versions: "
            + ", ".join(f"{k} {v[k]}" for k in keys if k in v)
            + (f", BLAS {'; '.join(v['blas'])}" if v.get("blas") else "")
        )
    commits = sorted({str(r["commit"]) for r in records})
    lines.append("- commit: " + ", ".join(commits))
    stamps = sorted(r.get("timestamp", "") for r in records if r.get("timestamp"))
    if stamps:
        lines.append(f"- measured {stamps[0]} to {stamps[-1]}, {len(records)} runs")
    return lines


def whatif_lines(records: list[dict]) -> list[str]:
    models = fit(records)
    if not models:
        return ["No engine was run at two or more worker counts for one job, so there is nothing to fit."]
    lines = []
    for m in models:
        lines += m.describe()
    return lines


def write_markdown(
    records: list[dict],
    out_dir: str | os.PathLike,
    *,
    title: str,
    results_path: str,
    preamble: list[str] | None = None,
    figures: list[tuple[str, str]] = (),
) -> Path:
    """Write ``out_dir``/report.md, showing ``figures`` ((file stem, caption) of PNG and SVG drawn beside it)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    lines = [f"# {title}", "", *(preamble or []), f"Results: `{results_path}` ({len(records)} runs).", ""]
    lines += [
        "## Environment",
        "",
        *environment_lines(records),
        "",
        "Timings are from a machine shared with other jobs; compare runs made side by side.",
        "",
    ]
    if paper_records(records):
        lines += [
            "## Beside the paper",
            "",
            "Each cell: wall time, test accuracy, and for ours the epochs actually run. Ours ran on the machine "
            "above with the configuration in the row label; the paper's on its 2-node cluster.",
            "",
            *paper_table(records),
            "",
            *(f"> {c}" for c in citation_lines()),
            "",
        ]
    lines += [
        "## Runs",
        "",
        "Medians over repeats (range of wall times in brackets). Epoch s: median epoch time after the first.",
        "",
        *runs_table(records),
        "",
    ]
    lines += ["## Where the time goes", "", *explain_markdown(records), ""]
    lines += ["## What if there were more workers", "", *whatif_lines(records), ""]
    if figures:
        lines += ["## Plots", ""]
        for stem, caption in figures:
            lines += [f"### {caption}", "", f"![{caption}]({stem}.png)", "", f"([SVG]({stem}.svg))", ""]
    path = out / "report.md"
    tmp = path.with_suffix(".md.tmp")
    tmp.write_text("\n".join(lines), encoding="utf-8")
    os.replace(tmp, path)  # never a half-written report
    return path
