"""The report's figures, drawn from records only (matplotlib, Agg backend), each as PNG and SVG.

Every figure keeps the rules of :mod:`nncompare.figure_style`. A figure the records cannot
support (a line against epochs from one epoch count, a speed-up from one worker count) is not
drawn; :func:`make_plots` says which and why, and removes an older report's copy of it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.ticker import MaxNLocator

from nncompare.engines.registry import style as engine_style
from nncompare.figure_style import (
    HEADLINE,
    NotDrawn,
    legend,
    looks,
    median_range,
    merge_identical,
    new_figure,
    pyplot,
    subtitle,
)
from nncompare.paper import load_seed_paper
from nncompare.results import COMPONENTS, STOPPING, common, labels, paper_records, series, summarize
from nncompare.worker_plots import speedup_vs_workers, whatif_plot

_COMPONENT_COLORS = {
    "startup": "#7f7f7f",
    "place": "#bcbd22",
    "compute": "#1f77b4",
    "transfer": "#ff7f0e",
    "average": "#2ca02c",
    "other": "#d62728",
    "evaluate": "#9467bd",
}


def _epochs_axis(ax, epochs, xlabel):
    epochs = [e for e in epochs if e > 0]
    if epochs and max(epochs) / min(epochs) > 8:
        ax.set_xscale("log")
    else:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel(xlabel)


def _paper_panel(ax, value, ylabel):
    """The seed paper's own figures against its epoch caps; its identical series drawn once."""
    paper = load_seed_paper()
    configs = list(dict.fromkeys(p.config for p in paper))
    curves = []
    for engine in dict.fromkeys(p.engine for p in paper):
        look = engine_style(engine)
        for i, config in enumerate(configs):
            rows = sorted((p for p in paper if p.engine == engine and p.config == config), key=lambda p: p.epochs)
            style = {"color": f"C{i}", "marker": look.marker, "linestyle": look.linestyle}
            curves.append((config, f"paper {engine}", [value(p) for p in rows], style))
    epochs = sorted({p.epochs for p in paper})
    for label, ys, style in merge_identical(curves):
        ax.plot(epochs, ys, label=label, **style)
    ax.set_xscale("log")
    ax.set_xlabel("maximum epochs (max_iter)")
    ax.set_ylabel(ylabel)
    ax.set_title("Seed paper (2 nodes × 24 cores, MNIST), one run each", fontsize=9)


def time_vs_epochs(records, plt):
    found = series(records, STOPPING)
    if not any(len({s.epochs_run for s in ser.summaries}) > 1 for ser in found):
        raise NotDrawn("Wall time against epochs: every job ran to one epoch count, and a line needs two")
    with_paper = bool(paper_records(records))
    fig, axes = new_figure(plt, 2 if with_paper else 1)
    for ser, (_, _, look) in zip(found, looks([ser.summaries[0] for ser in found], STOPPING)):
        sums = sorted(ser.summaries, key=lambda s: s.epochs_run)
        walls = [median_range(r["wall_s"] for r in s.records) for s in sums]
        axes[0].errorbar(
            [s.epochs_run for s in sums],
            [w[0] for w in walls],
            yerr=np.array([w[1:] for w in walls]).T,
            label=ser.label,
            capsize=3,
            **look,
        )
    _epochs_axis(axes[0], [s.epochs_run for ser in found for s in ser.summaries], "epochs run")
    axes[0].set_ylabel("wall time (s)")
    axes[0].set_title("This study: median of repeats, bars: their range", fontsize=9)
    if with_paper:
        _paper_panel(axes[1], lambda p: p.wall_s, "wall time (s)")
    subtitle(fig, "Wall time against epochs", common([ser.summaries[0] for ser in found], STOPPING, HEADLINE))
    legend(fig)
    return fig, "Wall time against epochs", "each point: the median wall time of a configuration's repeats"


def accuracy_vs_epochs(records, plt):
    longest = {ser.label: max(ser.records, key=lambda r: r["epochs_run"]) for ser in series(records, STOPPING)}
    if max(len(r["accuracy_curve"]) for r in longest.values()) < 2:
        raise NotDrawn("Test accuracy against epochs: every run ran one epoch, and a curve needs two")
    with_paper = bool(paper_records(records))
    fig, axes = new_figure(plt, 2 if with_paper else 1)
    runs = list(longest.values())
    curves = [
        (rest, engine, list(100 * np.asarray(r["accuracy_curve"])), look)
        for r, (rest, engine, look) in zip(runs, looks(runs, STOPPING))
    ]
    for label, ys, look in merge_identical(curves):
        axes[0].plot(range(1, len(ys) + 1), ys, label=label, markevery=max(1, len(ys) // 10), **look)
    _epochs_axis(axes[0], [1, *(len(c[2]) for c in curves)], "epoch")
    axes[0].set_ylabel("test accuracy (%)")
    axes[0].set_title("This study: the longest run of each job, after each epoch", fontsize=9)
    if with_paper:
        _paper_panel(axes[1], lambda p: 100 * p.test_accuracy, "test accuracy (%)")
    subtitle(fig, "Test accuracy against epochs", common(list(longest.values()), STOPPING, HEADLINE))
    legend(fig)
    return fig, "Test accuracy against epochs", "jobs whose curves coincide are drawn once, named together (A = B)"


def time_breakdown(records, plt):
    sums = summarize(records)
    names = [
        f"{label}\n({len(s.records)} run{'s' if len(s.records) > 1 else ''}, {s.epochs_run:g} epochs)"
        for label, s in zip(labels(sums), sums)
    ]
    parts = [s.components() for s in sums]
    fig, axes = new_figure(plt, 2, width=5.5, height=1.6 + 0.42 * len(sums))
    y = np.arange(len(sums))
    for ax, share in zip(axes, (False, True)):
        left = np.zeros(len(sums))
        for name in COMPONENTS:
            v = np.array([p[name] for p in parts])
            if share:
                v = 100 * v / np.array([max(sum(p.values()), 1e-12) for p in parts])
            ax.barh(y, v, left=left, color=_COMPONENT_COLORS[name], label=name)
            left += v
        ax.set_yticks(y, names if not share else [""] * len(sums), fontsize=7)
        ax.invert_yaxis()
        ax.set_xlabel("share of wall time (%)" if share else "seconds (median of repeats)")
    axes[0].set_ylabel("configuration")
    axes[0].set_title("Seconds of each part", fontsize=9)
    axes[1].set_title("Share of the wall time", fontsize=9)
    subtitle(fig, "Where each configuration's time goes", common(sums, only=HEADLINE))
    legend(fig)
    return fig, "Time breakdown per configuration (start-up, placement and phases)", "medians over repeats"


FIGURES = (
    ("time_vs_epochs", time_vs_epochs),
    ("accuracy_vs_epochs", accuracy_vs_epochs),
    ("time_breakdown", time_breakdown),
    ("speedup_vs_workers", speedup_vs_workers),
    ("whatif", whatif_plot),
)


def _save(fig, out: Path, stem: str) -> None:
    for ext in ("png", "svg"):
        tmp = out / f".{stem}.tmp.{ext}"
        fig.savefig(tmp, format=ext, metadata={"Date": None} if ext == "svg" else None)
        tmp.replace(out / f"{stem}.{ext}")


def make_plots(records: list[dict], out: str | Path) -> tuple[list[tuple[str, str, str]], list[str]]:
    """Draw every figure the records support into ``out``: ((stem, caption, note) drawn, reasons for those not)."""
    plt = pyplot()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    drawn, not_drawn = [], []
    for stem, draw in FIGURES:
        try:
            fig, caption, note = draw(records, plt)
        except NotDrawn as why:
            not_drawn.append(str(why))
            (out / f"{stem}.png").unlink(missing_ok=True)  # an older report's figure must not stay behind
            (out / f"{stem}.svg").unlink(missing_ok=True)
            continue
        try:
            _save(fig, out, stem)
        finally:
            plt.close(fig)
        drawn.append((stem, caption, note))
    return drawn, not_drawn
