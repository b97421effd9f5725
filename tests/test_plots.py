"""The report's figures on real runs: one job per series, no figure from too few points, legends clear of the data."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from nncompare.figure_style import NotDrawn, pyplot
from nncompare.job import JobSpec, ModelSpec, Topology
from nncompare.plots import FIGURES, accuracy_vs_epochs, make_plots, time_vs_epochs
from nncompare.training import run_job
from nncompare.worker_plots import speedup_vs_workers

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")  # constrained layout on tiny test figures


def spec(dataset="digits", **kw) -> JobSpec:
    model = ModelSpec(hidden_layer_sizes=(16,), batch_size=64, learning_rate_init=0.01)
    return JobSpec(dataset=dataset, model=model, convergence_stop=False, **kw)


@pytest.fixture(scope="module")
def runs(digits, fashion):
    """Real local runs: digits at 1 and 2 workers, 2 and 3 epochs, two repeats each; a Fashion-MNIST
    job of the same engine and topology (2,000 samples); a digits job on 500 samples at 2 workers only."""
    out = []
    for w, e, repeat in itertools.product((1, 2), (2, 3), (0, 1)):
        out.append({**run_job(spec(epochs=e, topology=Topology(workers=w)), dataset=digits), "repeat": repeat})
    for e in (2, 3):
        fashion_spec = spec("fashion-mnist", epochs=e, train_samples=2000, topology=Topology(workers=2))
        out.append({**run_job(fashion_spec, dataset=fashion), "repeat": 0})
        out.append({**run_job(spec(epochs=e, train_samples=500, topology=Topology(workers=2)), dataset=digits)})
    return out


@pytest.fixture
def plt():
    plt = pyplot()
    yield plt
    plt.close("all")


def labelled_lines(ax):
    return [line for line in ax.get_lines() if not line.get_label().startswith("_")]


def test_runs_of_other_datasets_or_sample_counts_are_other_series(runs, plt):
    """A digits and a Fashion-MNIST run of the local engine on 2 workers were once one line, "local 2w×1c"."""
    fig, _, _ = time_vs_epochs(runs, plt)
    lines = [c for c in fig.axes[0].containers]  # errorbar containers, one per series
    names = [c.get_label() for c in lines]
    assert len(names) == 4 and len(set(names)) == 4
    assert any("fashion-mnist" in n for n in names) and any("500 samples" in n for n in names)
    assert not any("local" in n for n in names)  # every series is the local engine: no label says so
    for c in lines:  # each series holds the epoch counts of one job only
        assert sorted(c.lines[0].get_xdata()) == [2, 3]
    assert "local" in fig._suptitle.get_text()  # what they share is said once, above them


def test_a_speed_up_needs_two_worker_counts(runs, plt, tmp_path):
    two_workers = [r for r in runs if r["workers"] == 2]
    with pytest.raises(NotDrawn, match="two or more worker counts"):
        speedup_vs_workers(two_workers, plt)
    drawn, not_drawn = make_plots(two_workers, tmp_path)
    assert "speedup_vs_workers" not in [d[0] for d in drawn] and not (tmp_path / "speedup_vs_workers.png").exists()
    assert any(reason.startswith("Speed-up against workers") for reason in not_drawn)
    fig, _, note = speedup_vs_workers(runs, plt)
    ax = fig.axes[0]
    # only the digits job on all samples ran at two worker counts: one measured series, from W=1 to W=2
    measured = [c for c in ax.containers]
    assert len(measured) == 1 and list(measured[0].lines[0].get_xdata()) == [1, 2]
    names = [t.get_text() for t in fig.legends[0].get_texts()]
    assert len(names) == len(set(names)) and names.count("ideal (epoch time ∝ 1/W)") == 1
    ideal = next(line for line in ax.get_lines() if line.get_label().startswith("ideal"))
    assert list(ideal.get_xdata()) == [1, 2]  # drawn over the measured range, never a legend entry without a line
    assert "median of repeats" in note


def test_no_line_against_epochs_from_one_epoch_count(runs, plt):
    capped = [r for r in runs if r["epochs"] == 2]
    with pytest.raises(NotDrawn, match="one epoch count"):
        time_vs_epochs(capped, plt)
    one_epoch = [{**r, "accuracy_curve": r["accuracy_curve"][:1]} for r in capped]
    with pytest.raises(NotDrawn, match="one epoch"):
        accuracy_vs_epochs(one_epoch, plt)


def test_every_figure_keeps_its_legend_off_the_data_and_its_series_apart(runs, plt):
    for stem, draw in FIGURES:
        fig, caption, _ = draw(runs, plt)
        fig.canvas.draw()
        (legend,) = fig.legends
        box = legend.get_window_extent()
        for ax in fig.axes:
            assert not box.overlaps(ax.get_window_extent()), f"{stem}: the legend covers {ax.get_title()!r}"
            assert ax.get_xlabel(), f"{stem}: an x axis without its label and unit"
            # every y axis is labelled, but the breakdown's right panel, whose rows are the left one's
            assert ax.get_ylabel() or (stem == "time_breakdown" and ax is fig.axes[1]), f"{stem}: a y axis unlabelled"
            lines = labelled_lines(ax)
            for a, b in itertools.combinations(lines, 2):
                same = len(a.get_xdata()) == len(b.get_xdata()) and np.allclose(a.get_xydata(), b.get_xydata())
                assert not same, f"{stem}: {a.get_label()!r} hides {b.get_label()!r}"
        assert caption


def test_coinciding_curves_are_drawn_once_under_both_names(runs, plt):
    """Engines that reproduce each other's weights give one accuracy curve: one line named for both."""
    digits_two = [r for r in runs if r["workers"] == 2 and r["dataset"] == "digits" and r["train_samples"] > 500]
    as_dask = [{**r, "engine": "dask", "spec": {**r["spec"], "engine": "dask"}} for r in digits_two]
    fig, _, _ = accuracy_vs_epochs(digits_two + as_dask, plt)
    (line,) = labelled_lines(fig.axes[0])
    assert line.get_label() == "dask = local" or line.get_label() == "local = dask"
