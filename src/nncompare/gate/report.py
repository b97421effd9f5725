"""What the gate tells: a Markdown table of its verdicts (the CI job's summary and pull-request
comment) and a JSON record of what it measured (``tools/gate_calibrate.py`` reads it)."""

from __future__ import annotations

import json
from pathlib import Path

from nncompare.gate.judge import BROKEN, INCONCLUSIVE, LESS_ACCURATE, PASS, SLOWER, Verdict
from nncompare.interrupts import deferred, raise_if_interrupted

OUTCOME_WORDS = {
    PASS: "pass",
    SLOWER: "**slower**",
    LESS_ACCURATE: "**less accurate**",
    BROKEN: "**broken**",
    INCONCLUSIVE: "inconclusive",
}
#: the marker that the CI job finds its own earlier comment by, to update it in place
COMMENT_MARKER = "<!-- nncompare-gate -->"


def _detail(verdict: Verdict) -> str:
    """The verdict's line without the benchmark's name (already in its own column)."""
    return verdict.line.removeprefix(f"{verdict.name}: ").replace("|", "\\|")


def markdown(verdicts: list[Verdict], *, base: str, head: str, factor: float, code: int, took_s: float) -> str:
    """The verdict table, headed by the overall outcome and the exit code."""
    lines = [
        COMMENT_MARKER,
        f"### nncompare gate: {OUTCOME_WORDS[code].strip('*')} (exit {code})",
        "",
        f"`{base[:8]}` (base) → `{head[:8]}` (head), threshold x{factor:g}, {took_s / 60:.1f} min. "
        "Timed: head/base ratio of floor epochs with its 95 % interval; slower when the whole interval "
        "is above the threshold, inconclusive when it straddles it.",
        "",
        "| benchmark | outcome | ratio | 95 % interval | pairs | detail |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for v in verdicts:
        i = v.interval
        ratio, span, pairs = (f"x{i.ratio:.3f}", f"x{i.low:.3f} – x{i.high:.3f}", str(i.pairs)) if i else ("", "", "")
        detail = "" if i else _detail(v)
        lines.append(f"| `{v.name}` | {OUTCOME_WORDS[v.code]} | {ratio} | {span} | {pairs} | {detail} |")
    lines.append("")
    lines.append(
        "Exit codes: 0 pass, 1 slower, 3 less accurate, 4 a benchmark broke on the head, "
        "5 inconclusive (docs/benchmarks.md, \u201cGate a change\u201d)."
    )
    return "\n".join(lines) + "\n"


def record(
    verdicts: list[Verdict],
    measurements,
    *,
    base: str,
    head: str,
    factor: float,
    code: int,
    took_s: float,
    batches: list[dict],
    plan,
    versions: dict,
) -> dict:
    """Everything needed to judge this gate again or to calibrate the rule: samples in round order."""
    benchmarks = {}
    for name in sorted(set(measurements.base) | set(measurements.head)):
        b, h = measurements.base.get(name, {}), measurements.head.get(name, {})
        benchmarks[name] = {
            "base": {"value": b.get("value"), "samples": b.get("samples")},
            "head": {"value": h.get("value"), "samples": h.get("samples")},
            "version": versions.get(name.split("(")[0]),
        }
    return {
        "format": 1,
        "base": base,
        "head": head,
        "factor": factor,
        "plan": {"first": plan.first, "more": plan.more, "most": plan.most},
        "exit": code,
        "took_s": round(took_s, 1),
        "batches": batches,
        "benchmarks": benchmarks,
        "verdicts": [
            {
                "name": v.name,
                "code": v.code,
                "line": v.line,
                **(
                    {
                        "ratio": v.interval.ratio,
                        "low": v.interval.low,
                        "high": v.interval.high,
                        "pairs": v.interval.pairs,
                    }
                    if v.interval
                    else {}
                ),
            }
            for v in verdicts
        ],
    }


def write(path: str | Path, text: str) -> None:
    """Write whole or not at all: a reader never sees half a file, a signal meanwhile is raised after."""
    path = Path(path)
    partial = path.with_name(path.name + ".partial")
    with deferred():
        try:
            partial.write_text(text)
            partial.replace(path)
        finally:
            partial.unlink(missing_ok=True)
    raise_if_interrupted()


def write_json(path: str | Path, data: dict) -> None:
    write(path, json.dumps(data, indent=1) + "\n")
