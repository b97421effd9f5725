"""The report's figures, drawn from records only (matplotlib, Agg backend), each as PNG and SVG."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.ticker import MaxNLocator

from nncompare.engines.registry import style as engine_style
from nncompare.paper import load_seed_paper
from nncompare.results import COMPONENTS, Summary, group_by, job_group, paper_records, series, series_label
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


def _style(records_of_series: list[dict], configs: list[str]) -> dict:
    """Colour by configuration, line and marker by engine: the same configuration reads alike."""
    r = records_of_series[0]
    engine = r["engine"]
    config = series_label(r).split(" ", 1)[1]
    look = engine_style(engine)  # marker, line and size by engine: engines that coincide stay visible
    return {
        "color": f"C{configs.index(config) % 10}",
        "linestyle": look.linestyle,
        "marker": look.marker,
        "markersize": look.markersize,
    }


def _configs(records) -> list[str]:
    return sorted({series_label(r).split(" ", 1)[1] for r in records})


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update(
        {"figure.dpi": 110, "axes.grid": True, "grid.alpha": 0.3, "font.size": 9, "svg.hashsalt": "nncompare"}
    )
    return plt


def _save(fig, out: Path, stem: str) -> None:
    fig.tight_layout()
    for ext in ("png", "svg"):
        tmp = out / f".{stem}.tmp.{ext}"
        fig.savefig(tmp, format=ext, metadata={"Date": None} if ext == "svg" else None)
        tmp.replace(out / f"{stem}.{ext}")
    import matplotlib.pyplot as plt

    plt.close(fig)


def _log_x_if_wide(ax, values):
    values = [v for v in values if v > 0]
    if values and max(values) / min(values) > 8:
        ax.set_xscale("log")


def _paper_panel(ax, value, ylabel):
    paper = load_seed_paper()
    for engine in dict.fromkeys(p.engine for p in paper):
        look = engine_style(engine)
        for i, config in enumerate(dict.fromkeys(p.config for p in paper)):
            rows = sorted((p for p in paper if p.engine == engine and p.config == config), key=lambda p: p.epochs)
            ax.plot(
                [p.epochs for p in rows],
                [value(p) for p in rows],
                linestyle=look.linestyle,
                marker=look.marker,
                markersize=9 - 2.5 * i,
                color=f"C{i}",
                label=f"{engine} {config}",
            )  # coinciding lines stay visible
    ax.set_xscale("log")
    ax.set_xlabel("maximum epochs (max_iter)")
    ax.set_ylabel(ylabel)
    ax.set_title("Seed paper (2 nodes × 24 cores, MNIST)")
    ax.legend(fontsize=7, ncol=2)


def time_vs_epochs(records, out: Path, plt) -> str:
    with_paper = bool(paper_records(records))
    fig, axes = plt.subplots(1, 2 if with_paper else 1, figsize=(12 if with_paper else 7, 4.5), squeeze=False)
    ax = axes[0][0]
    xs = []
    configs = _configs(records)
    for label, sums in series(records).items():
        sums = sorted(sums, key=lambda s: s.epochs_run)
        x = [s.epochs_run for s in sums]
        xs += x
        ax.plot(x, [s.wall_s for s in sums], label=label, **_style([sums[0].first], configs))
    _label_epoch_axes(ax, xs, "epochs run", "wall time (s)", "This study: wall time vs epochs")
    if with_paper:
        _paper_panel(axes[0][1], lambda p: p.wall_s, "wall time (s)")
    _save(fig, out, "time_vs_epochs")
    return "Wall time against epochs"


def _label_epoch_axes(ax, epochs, xlabel: str, ylabel: str, title: str) -> None:
    """An epochs x-axis (log when the runs span decades, whole numbers otherwise), labels, legend."""
    _log_x_if_wide(ax, epochs)
    if ax.get_xscale() == "linear":
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=7)


def accuracy_vs_epochs(records, out: Path, plt) -> str:
    with_paper = bool(paper_records(records))
    fig, axes = plt.subplots(1, 2 if with_paper else 1, figsize=(12 if with_paper else 7, 4.5), squeeze=False)
    ax = axes[0][0]
    longest = {}
    for r in records:  # per series, the longest run's per-epoch test accuracy
        label = series_label(r)
        if label not in longest or r["epochs_run"] > longest[label]["epochs_run"]:
            longest[label] = r
    configs = _configs(records)
    for label, r in sorted(longest.items()):
        curve = r["accuracy_curve"]
        ax.plot(
            range(1, len(curve) + 1),
            100 * np.asarray(curve),
            markevery=max(1, len(curve) // 10),
            label=label,
            **_style([r], configs),
        )
    _label_epoch_axes(
        ax,
        [1, *(r["epochs_run"] for r in longest.values())],
        "epoch",
        "test accuracy (%)",
        "This study: test accuracy after each epoch",
    )
    if with_paper:
        _paper_panel(axes[0][1], lambda p: 100 * p.test_accuracy, "test accuracy (%)")
    _save(fig, out, "accuracy_vs_epochs")
    return "Test accuracy against epochs"


def time_breakdown(records, out: Path, plt) -> str:
    """Stacked bars per engine and configuration: start-up, placement and phases of its longest run."""
    bars = []
    for label, sums in series(records).items():
        s: Summary = max(sums, key=lambda s: (s.first["epochs"], s.epochs_run))
        bars.append((f"{label}\n{s.epochs_run:g} epochs", s.components()))
    fig, axes = plt.subplots(1, 2, figsize=(12, 0.9 + 0.45 * len(bars) + 2.2))
    y = np.arange(len(bars))
    for ax, share in zip(axes, (False, True)):
        left = np.zeros(len(bars))
        for name in COMPONENTS:
            v = np.array([b[1][name] for b in bars])
            if share:
                v = 100 * v / np.array([max(sum(b[1].values()), 1e-12) for b in bars])
            ax.barh(y, v, left=left, color=_COMPONENT_COLORS[name], label=name)
            left += v
        ax.set_yticks(y, [b[0] for b in bars], fontsize=7)
        ax.invert_yaxis()
        ax.set_xlabel("share of wall time (%)" if share else "seconds")
        ax.set_title("Share of each run's wall time" if share else "Where each run's time goes (longest run)")
    axes[1].set_yticks(y, [""] * len(bars))
    axes[0].legend(fontsize=7, loc="lower right")
    _save(fig, out, "time_breakdown")
    return "Time breakdown per engine and configuration (start-up, placement and phases)"


def _epoch_by_workers(records):
    """Per job group: {workers: median steady epoch time}."""
    return {
        k: {w: median(map(steady_epoch_s, rs)) for w, rs in sorted(group_by(rows, lambda r: r["workers"]).items())}
        for k, rows in group_by(records, job_group).items()
    }


def speedup_vs_workers(records, out: Path, plt) -> str:
    fig, ax = plt.subplots(figsize=(7, 4.5))
    models = {(m.engine, m.dataset): m for m in fit(records)}
    top = 1
    epochs = _epoch_by_workers(records)
    for i, (key, by_w) in enumerate(sorted(epochs.items(), key=str)):
        w0 = min(by_w)
        ws = np.array(list(by_w))
        top = max(top, ws.max())
        ax.plot(
            ws,
            by_w[w0] / np.array(list(by_w.values())),
            marker=engine_style(key[0]).marker,
            linestyle="",
            color=f"C{i % 10}",
            label=f"{key[0]} {key[1]}: measured",
        )
        model = models.get((key[0], key[1]))
        if model is not None:
            grid = np.arange(w0, max(ws.max(), model.best_workers(64)) + 1)
            ax.plot(
                grid,
                model.predict(w0) / model.predict(grid),
                color=f"C{i % 10}",
                alpha=0.7,
                label=f"{key[0]} {key[1]}: what-if model",
            )
            top = max(top, grid.max())
    lo = min(min(b) for b in epochs.values())
    ideal = np.arange(lo, top + 1)
    ax.plot(ideal, ideal / lo, "k--", linewidth=0.8, label="ideal (time ∝ 1/W)")
    ax.set_xlabel("workers W")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("speed-up of an epoch vs the fewest workers run (×)")
    ax.set_title("Speed-up against workers")
    ax.legend(fontsize=7)
    _save(fig, out, "speedup_vs_workers")
    return "Speed-up of an epoch against workers"


def whatif_plot(records, out: Path, plt) -> str | None:
    models = fit(records)
    if not models:
        return None
    fig, axes = plt.subplots(1, len(models), figsize=(6 * len(models), 4.5), squeeze=False)
    for ax, m in zip(axes[0], models):
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
        ax.plot(m.workers, m.measured_epoch_s, "ko", markerfacecolor="white", label="measured (phases per epoch run)")
        best = m.best_workers(64)
        ax.axvline(best, color="grey", linestyle=":", label=f"fastest predicted: W={best}")
        ax.set_xlabel("workers W")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel("seconds per epoch")
        ax.set_title(f"What-if: {m.engine} on {m.dataset}")
        ax.legend(fontsize=7)
    _save(fig, out, "whatif")
    return "What-if model of epoch time against workers, with the runs it was fitted on"


def make_plots(records: list[dict], out: str | Path) -> list[tuple[str, str]]:
    """Draw every figure into ``out``; returns (file stem, caption) of those drawn."""
    plt = _pyplot()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    figures = []
    for stem, draw in (
        ("time_vs_epochs", time_vs_epochs),
        ("accuracy_vs_epochs", accuracy_vs_epochs),
        ("time_breakdown", time_breakdown),
        ("speedup_vs_workers", speedup_vs_workers),
        ("whatif", whatif_plot),
    ):
        caption = draw(records, out, plt)
        if caption:
            figures.append((stem, caption))
    return figures
