"""The figures against workers: the speed-up of the steady epoch, and the what-if model with its runs."""

from __future__ import annotations

import numpy as np
from matplotlib.ticker import MaxNLocator

from nncompare.figure_style import HEADLINE, NotDrawn, legend, looks, median_range, new_figure, subtitle
from nncompare.results import STOPPING, TOPOLOGY, WORKER_AXIS, Series, common, group_by, series
from nncompare.steady import median, steady_epoch_s
from nncompare.whatif import TERMS, fit


def _speedups(ser: Series):
    """{workers: (median, below, above)} of each run's steady-epoch speed-up over the fewest workers."""
    by_w = {}
    for r in ser.records:
        by_w.setdefault(r["workers"], []).append(steady_epoch_s(r))
    base = median(by_w[min(by_w)])
    return {w: median_range(base / t for t in ts) for w, ts in sorted(by_w.items())}, min(by_w)


def speedup_vs_workers(records, plt):
    found = [ser for ser in series(records, WORKER_AXIS) if len({r["workers"] for r in ser.records}) > 1]
    if not found:
        raise NotDrawn("Speed-up against workers: no job was run at two or more worker counts")
    fig, axes = new_figure(plt, 1)
    ax, bases = axes[0], set()
    for ser, (_, _, look) in zip(found, looks([ser.summaries[0] for ser in found], WORKER_AXIS)):
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
    counts = [len(rs) for ser in found for rs in group_by(ser.records, lambda r: r["workers"]).values()]
    notes = [
        "points: median of repeats, bars: their range"
        if max(counts) > 1
        else "one run per point: no repeats, so no spread is shown"
    ]
    if over:
        notes.append(
            f"the machine had {' or '.join(map(str, over))} cores, fewer than the workers' cores: "
            "the ideal is out of reach"
        )
    if len({r["memory_per_worker_bytes"] for ser in found for r in ser.records}) > 1:
        notes.append("memory per worker as each configuration set it")
    shared = common([ser.summaries[0] for ser in found], WORKER_AXIS, HEADLINE)
    subtitle(fig, "Speed-up against workers", shared, *notes)
    legend(fig)
    return fig, "Speed-up of the steady epoch against workers", "; ".join(notes)


def whatif_plot(records, plt):
    groups = [ser for ser in series(records, (*TOPOLOGY, *STOPPING))]
    models = [(ser.label, m) for ser in groups for m in fit(ser.records)]
    if not models:
        raise NotDrawn("What-if model: no job was run at two or more worker counts to fit it to")
    fig, axes = new_figure(plt, len(models), width=5.0)
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
        fitted = f"fitted on {len(m.workers)} runs at {len(set(m.workers))} worker counts"
        error = f"largest error {100 * m.max_relative_error():.0f} %"
        ax.set_title(f"{label}: {fitted}, {error}" if len(models) > 1 else f"{fitted}, {error}", fontsize=8)
    subtitle(
        fig,
        "What-if model of epoch time against workers",
        common([g.summaries[0] for g in groups], (*TOPOLOGY, *STOPPING), HEADLINE),
    )
    legend(fig)
    return (
        fig,
        "What-if model of epoch time against workers, with the runs it was fitted on",
        "outside the shaded range the model extrapolates",
    )
