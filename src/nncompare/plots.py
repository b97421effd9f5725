"""The report's figures, drawn from records only (matplotlib, Agg backend), each as PNG and SVG.

Rules every figure keeps, so that none can be misread:

* a series is one job (:func:`nncompare.results.series`) and its label names only what differs
  between the series shown; what they share is the figure's subtitle;
* a figure that needs more points than the records have is not drawn, and the report says why
  (a line against epochs needs two epoch counts, a speed-up two worker counts);
* each point is the median of its repeats, with their range as an error bar;
* every axis has its unit, and the legend sits outside the axes, so it covers no data;
* series that coincide (engines that reproduce each other's weights) are drawn once, labelled
  with all of their names, rather than hidden under each other.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
from matplotlib.ticker import MaxNLocator

from nncompare.engines.registry import style as engine_style
from nncompare.paper import load_seed_paper
from nncompare.results import (
    COMPONENTS,
    STOPPING,
    TOPOLOGY,
    WORKER_AXIS,
    Series,
    Summary,
    common,
    describe,
    differing,
    fields_of,
    labels,
    paper_records,
    series,
    summarize,
)
from nncompare.steady import median, steady_epoch_s
from nncompare.whatif import TERMS, fit

_COMPONENT_COLORS = {
    "startup": "#7f7f7f",
    "place": "#bcbd22",
    "compute": "#1f77b4",
    "transfer": "#ff7f0e",
    "average": "#2ca02c",
    "other": "#d62728",
    "evaluate": "#9467bd",
}


class NotDrawn(Exception):
    """The records do not have what a figure needs; the message says what is missing."""


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update(
        {"figure.dpi": 110, "axes.grid": True, "grid.alpha": 0.3, "font.size": 9, "svg.hashsalt": "nncompare"}
    )
    return plt


def _figure(plt, panels: int, width: float = 6.5, height: float = 4.2):
    fig, axes = plt.subplots(1, panels, figsize=(width * panels + 2.5, height), squeeze=False, layout="constrained")
    return fig, list(axes[0])


#: The job fields a figure's subtitle names when all its series share them (the caption in the report has all).
_HEADLINE = (
    "engine",
    "dataset",
    "train_samples",
    "hidden_layer_sizes",
    "batch_size",
    "sync_every",
    "epochs",
    *TOPOLOGY,
)


def _subtitle(fig, title: str, shared: str, *notes: str) -> None:
    """The title, what every series shares, and notes, wrapped to the figure's width."""
    width = int(fig.get_figwidth() * 15)
    lines = textwrap.wrap(f"all: {shared}", width) if shared else []
    for note in notes:
        lines += textwrap.wrap(note, width)
    fig.suptitle("\n".join([title, *lines]), fontsize=9)


def _legend(fig) -> None:
    """One legend for every axes, below them and outside, so it covers no data."""
    handles, names = [], []
    for ax in fig.axes:
        for h, n in zip(*ax.get_legend_handles_labels()):
            if n not in names:
                handles.append(h)
                names.append(n)
    fig.legend(handles, names, loc="outside lower center", fontsize=7, ncols=min(3, len(names)) or 1)


def _looks(groups: list, along: tuple) -> list[tuple[str, str, dict]]:
    """Per group: (its job apart from the engine, in words; its engine; its look).

    Colour by the job apart from the engine; marker, line and size by engine (its plug-in's style),
    so one job reads alike on every engine and engines that coincide stay visible.
    """
    names = differing(groups, (*along, "engine"))
    rests = [describe(fields_of(g), names) if names else "" for g in groups]
    engines = [(g.first if isinstance(g, Summary) else g)["engine"] for g in groups]
    # one colour per job; where the groups differ by engine alone, one per engine
    palette = list(dict.fromkeys(rests if len(set(rests)) > 1 else engines))
    out = []
    for rest, engine in zip(rests, engines):
        look = engine_style(engine)
        color = palette.index(rest if len(set(rests)) > 1 else engine)
        style = {"marker": look.marker, "linestyle": look.linestyle, "markersize": look.markersize}
        out.append((rest, engine, {"color": f"C{color % 10}", **style}))
    return out


def _median_range(values):
    values = list(values)
    m = median(values)
    return m, m - min(values), max(values) - m


def _merge_identical(curves: list[tuple[str, str, list[float], dict]]) -> list[tuple[str, list[float], dict]]:
    """Curves (job, engine, points, look) with the same points drawn once, labelled ``job: a = b = c``."""
    merged: list[tuple[list[tuple[str, str]], list[float], dict]] = []
    for rest, engine, ys, look in curves:
        same = next((m for m in merged if len(m[1]) == len(ys) and np.allclose(m[1], ys, rtol=0, atol=1e-12)), None)
        if same:
            same[0].append((rest, engine))
        else:
            merged.append(([(rest, engine)], ys, look))
    out = []
    for names, ys, look in merged:
        rests = list(dict.fromkeys(r for r, _ in names))
        if len(rests) == 1:
            engines = " = ".join(e for _, e in names)
            out.append((f"{rests[0]}: {engines}" if rests[0] else engines, ys, look))
        elif len({e for _, e in names}) == 1:
            out.append((f"{names[0][1]}: " + " = ".join(rests), ys, look))
        else:
            out.append((" = ".join(f"{r}, {e}" if r else e for r, e in names), ys, look))
    return out


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
    for label, ys, style in _merge_identical(curves):
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
    fig, axes = _figure(plt, 2 if with_paper else 1)
    for ser, (_, _, look) in zip(found, _looks([ser.summaries[0] for ser in found], STOPPING)):
        sums = sorted(ser.summaries, key=lambda s: s.epochs_run)
        walls = [_median_range(r["wall_s"] for r in s.records) for s in sums]
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
    _subtitle(fig, "Wall time against epochs", common([ser.summaries[0] for ser in found], STOPPING, _HEADLINE))
    _legend(fig)
    return fig, "Wall time against epochs", "each point: the median wall time of a configuration's repeats"


def accuracy_vs_epochs(records, plt):
    longest = {ser.label: max(ser.records, key=lambda r: r["epochs_run"]) for ser in series(records, STOPPING)}
    if max(len(r["accuracy_curve"]) for r in longest.values()) < 2:
        raise NotDrawn("Test accuracy against epochs: every run ran one epoch, and a curve needs two")
    with_paper = bool(paper_records(records))
    fig, axes = _figure(plt, 2 if with_paper else 1)
    runs = list(longest.values())
    curves = [
        (rest, engine, list(100 * np.asarray(r["accuracy_curve"])), look)
        for r, (rest, engine, look) in zip(runs, _looks(runs, STOPPING))
    ]
    for label, ys, look in _merge_identical(curves):
        axes[0].plot(range(1, len(ys) + 1), ys, label=label, markevery=max(1, len(ys) // 10), **look)
    _epochs_axis(axes[0], [1, *(len(c[2]) for c in curves)], "epoch")
    axes[0].set_ylabel("test accuracy (%)")
    axes[0].set_title("This study: the longest run of each job, after each epoch", fontsize=9)
    if with_paper:
        _paper_panel(axes[1], lambda p: 100 * p.test_accuracy, "test accuracy (%)")
    _subtitle(fig, "Test accuracy against epochs", common(list(longest.values()), STOPPING, _HEADLINE))
    _legend(fig)
    return fig, "Test accuracy against epochs", "jobs whose curves coincide are drawn once, named together (A = B)"


def time_breakdown(records, plt):
    sums = summarize(records)
    names = [
        f"{label}\n({len(s.records)} run{'s' if len(s.records) > 1 else ''}, {s.epochs_run:g} epochs)"
        for label, s in zip(labels(sums), sums)
    ]
    parts = [s.components() for s in sums]
    fig, axes = _figure(plt, 2, width=5.5, height=1.6 + 0.42 * len(sums))
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
    axes[0].set_title("Seconds of each part", fontsize=9)
    axes[1].set_title("Share of the wall time", fontsize=9)
    _subtitle(fig, "Where each configuration's time goes", common(sums, only=_HEADLINE))
    _legend(fig)
    return fig, "Time breakdown per configuration (start-up, placement and phases)", "medians over repeats"


def _speedups(ser: Series):
    """{workers: (median, below, above)} of each run's steady-epoch speed-up over the fewest workers."""
    by_w = {}
    for r in ser.records:
        by_w.setdefault(r["workers"], []).append(steady_epoch_s(r))
    base = median(by_w[min(by_w)])
    return {w: _median_range(base / t for t in ts) for w, ts in sorted(by_w.items())}, min(by_w)


def speedup_vs_workers(records, plt):
    found = [ser for ser in series(records, WORKER_AXIS) if len({r["workers"] for r in ser.records}) > 1]
    if not found:
        raise NotDrawn("Speed-up against workers: no job was run at two or more worker counts")
    fig, axes = _figure(plt, 1)
    ax, bases = axes[0], set()
    for ser, (_, _, look) in zip(found, _looks([ser.summaries[0] for ser in found], WORKER_AXIS)):
        points, w0 = _speedups(ser)
        ws = np.array(list(points))
        ax.errorbar(
            ws,
            [p[0] for p in points.values()],
            yerr=np.array([p[1:] for p in points.values()]).T,
            capsize=3,
            label=ser.label,
            **{**look, "linestyle": ""},
        )
        for model in fit(ser.records):  # the what-if model over the measured range
            grid = np.arange(ws.min(), ws.max() + 1)
            ax.plot(grid, model.predict(w0) / model.predict(grid), color=look["color"], linewidth=1, alpha=0.7)
        bases.add(w0)
    top = max(r["workers"] for ser in found for r in ser.records)
    for i, w0 in enumerate(sorted(bases)):
        ax.plot([w0, top], [1, top / w0], "k--", linewidth=0.8, label="ideal (epoch time ∝ 1/W)" if i == 0 else None)
    ax.plot([], [], color="grey", linewidth=1, label="what-if model (line)")
    ax.set_xlabel("workers W")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("speed-up of the steady epoch vs the fewest workers (×)")
    cores = {
        (r["machine"]["cores"], r["cores_per_worker"]) for ser in found for r in ser.records if not r.get("cluster")
    }
    over = sorted({c for c, per in cores if top * per > c})
    notes = ["points: median of repeats, bars: their range"]
    if over:
        notes.append(
            f"the machine had {' or '.join(map(str, over))} cores, fewer than the workers' cores: "
            "the ideal is out of reach"
        )
    if len({r["memory_per_worker_bytes"] for ser in found for r in ser.records}) > 1:
        notes.append("memory per worker as each configuration set it")
    shared = common([ser.summaries[0] for ser in found], WORKER_AXIS, _HEADLINE)
    _subtitle(fig, "Speed-up against workers", shared, *notes)
    _legend(fig)
    return fig, "Speed-up of the steady epoch against workers", "; ".join(notes)


def whatif_plot(records, plt):
    groups = [ser for ser in series(records, (*TOPOLOGY, *STOPPING))]
    models = [(ser.label, m) for ser in groups for m in fit(ser.records)]
    if not models:
        raise NotDrawn("What-if model: no job was run at two or more worker counts to fit it to")
    fig, axes = _figure(plt, len(models), width=5.0)
    for ax, (label, m) in zip(axes, models):
        top = max(2 * max(m.workers), m.best_workers(64) + 2)
        grid = np.arange(1, min(top, 64) + 1)
        bottom = np.zeros(len(grid))
        for name, color in zip(TERMS, ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728")):
            v = m.term(name, grid) * np.ones(len(grid))
            ax.fill_between(
                grid,
                bottom,
                bottom + v,
                color=color,
                alpha=0.35,
                label=f"model: {'scheduling/idle' if name == 'idle' else name}",
            )
            bottom = bottom + v
        ax.plot(grid, bottom, color="k", linewidth=1.2, label="model: epoch time")
        ax.axvspan(min(m.workers), max(m.workers), color="grey", alpha=0.12, label="measured range")
        ax.plot(m.workers, m.measured_epoch_s, "ko", markerfacecolor="white", label="measured run (phases per epoch)")
        ax.axvline(m.best_workers(64), color="grey", linestyle=":", label="fastest predicted W")
        ax.set_xlabel("workers W")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel("seconds per epoch")
        ax.set_title(
            f"{label} (largest error {100 * m.max_relative_error():.0f} %)"
            if len(models) > 1
            else f"largest error on its runs {100 * m.max_relative_error():.0f} %",
            fontsize=9,
        )
    _subtitle(
        fig,
        "What-if model of epoch time against workers",
        common([g.summaries[0] for g in groups], (*TOPOLOGY, *STOPPING), _HEADLINE),
    )
    _legend(fig)
    return (
        fig,
        "What-if model of epoch time against workers, with the runs it was fitted on",
        "outside the shaded range the model extrapolates",
    )


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
    plt = _pyplot()
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
