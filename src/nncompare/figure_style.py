"""What every figure of the report shares: the rules that keep a figure from being misread.

* a series is one job (:func:`nncompare.results.series`) and its label names only what differs
  between the series shown; what they share is the figure's subtitle (:func:`subtitle`);
* a figure that needs more points than the records have is not drawn (:class:`NotDrawn`), and
  the report says why;
* each point is the median of its repeats, with their range as an error bar (:func:`median_range`);
* every axis has its unit, and the legend sits outside the axes, so it covers no data (:func:`legend`);
* series that coincide (engines that reproduce each other's weights) are drawn once, labelled
  with all of their names, rather than hidden under each other (:func:`merge_identical`).
"""

from __future__ import annotations

import textwrap

import numpy as np

from nncompare.engines.registry import style as engine_style
from nncompare.results import TOPOLOGY, Summary, describe, differing, fields_of
from nncompare.steady import median


class NotDrawn(Exception):
    """The records do not have what a figure needs; the message says what is missing."""


def pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update(
        {"figure.dpi": 110, "axes.grid": True, "grid.alpha": 0.3, "font.size": 9, "svg.hashsalt": "nncompare"}
    )
    return plt


def new_figure(plt, panels: int, width: float = 6.5, height: float = 4.2):
    fig, axes = plt.subplots(1, panels, figsize=(width * panels + 2.5, height), squeeze=False, layout="constrained")
    return fig, list(axes[0])


#: The job fields a figure's subtitle names when all its series share them (the caption in the report has all).
HEADLINE = (
    "engine",
    "dataset",
    "train_samples",
    "hidden_layer_sizes",
    "batch_size",
    "sync_every",
    "epochs",
    *TOPOLOGY,
)


def subtitle(fig, title: str, shared: str, *notes: str) -> None:
    """The title, what every series shares, and notes, wrapped to the figure's width."""
    width = int(fig.get_figwidth() * 15)
    lines = textwrap.wrap(f"all: {shared}", width) if shared else []
    for note in notes:
        lines += textwrap.wrap(note, width)
    fig.suptitle("\n".join([title, *lines]), fontsize=9)


def legend(fig) -> None:
    """One legend for every axes, below them and outside, so it covers no data."""
    handles, names = [], []
    for ax in fig.axes:
        for h, n in zip(*ax.get_legend_handles_labels()):
            if n not in names:
                handles.append(h)
                names.append(n)
    fig.legend(handles, names, loc="outside lower center", fontsize=7, ncols=min(3, len(names)) or 1)


def looks(groups: list, along: tuple) -> list[tuple[str, str, dict]]:
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


def median_range(values):
    values = list(values)
    m = median(values)
    return m, m - min(values), max(values) - m


def merge_identical(curves: list[tuple[str, str, list[float], dict]]) -> list[tuple[str, list[float], dict]]:
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
