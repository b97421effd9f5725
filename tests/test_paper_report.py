"""The seed paper's data and design, the report, its plots, the explanation and the what-if model."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from nncompare.breakdown import breakdown
from nncompare.cli import main
from nncompare.explain import check_convergence_plateau, check_identical_accuracy, findings
from nncompare.job import Topology
from nncompare.paper import GIB, load_seed_paper, paper_configs, paper_epochs, scale_to_machine
from nncompare.record import append_jsonl
from nncompare.training import run_job
from nncompare.whatif import fit

CLI = [sys.executable, "-c", "from nncompare.cli import main; main()"]
PLOTS = ("time_vs_epochs", "accuracy_vs_epochs", "time_breakdown", "speedup_vs_workers", "whatif")


def test_seed_paper_table_is_the_published_one():
    rows = load_seed_paper()
    assert len(rows) == 2 * 3 * 4
    assert paper_epochs() == [10, 100, 1000, 10000]
    assert [c.label for c in paper_configs()] == ["4x9x11", "5x7x13", "6x5x19"]
    first = next(r for r in rows if (r.engine, r.config, r.epochs) == ("spark", "4x9x11", 10))
    assert (first.wall_s, first.test_accuracy) == (33.6, pytest.approx(0.9164))
    last = next(r for r in rows if (r.engine, r.config, r.epochs) == ("dask", "6x5x19", 10000))
    assert (last.wall_s, last.test_accuracy) == (302, pytest.approx(0.967))


def test_scaling_keeps_workers_and_shrinks_cores_and_memory():
    small = scale_to_machine(2, 24 * GIB)
    assert [(o.workers, o.cores_per_worker) for _, o in small.configs] == [(9, 1), (7, 1), (5, 1)]
    for paper, ours in small.configs:
        assert ours.memory_bytes == pytest.approx(paper.memory_bytes * 24 / 128, rel=1e-6)
    assert any("oversubscribed" in line for line in small.lines())
    half = scale_to_machine(24, 64 * GIB)
    assert [o.cores_per_worker for _, o in half.configs] == [2, 3, 3]  # 4, 5, 6 halved, 2.5 rounded half up
    big = scale_to_machine(96, 512 * GIB)
    assert all(p == o for p, o in big.configs)  # a machine bigger than the paper's cluster runs it unchanged


@pytest.fixture(scope="module")
def records(digits):
    """Real local runs: three worker counts at two epoch caps, plus one run that converges early."""
    from nncompare.job import JobSpec, ModelSpec

    base = JobSpec(
        dataset="digits", epochs=4, model=ModelSpec(hidden_layer_sizes=(32,), batch_size=64, learning_rate_init=0.01)
    )
    out = []
    for w in (1, 2, 4):
        for e in (3, 4):
            r = run_job(base.with_(epochs=e, topology=Topology(workers=w)), dataset=digits)
            out.append({**r, "repeat": 0})
    for e in (60, 80):  # both stop at the same epoch: the paper's 1,000 vs 10,000 case in small
        r = run_job(base.with_(epochs=e, tol=0.05, n_iter_no_change=2, topology=Topology(workers=2)), dataset=digits)
        out.append({**r, "repeat": 0})
    return out


def test_breakdown_shares_add_up_and_local_runs_one_shard_at_a_time(records):
    rows = breakdown(records)
    assert len(rows) == len(records)  # one row per configuration: these runs have no repeats
    for b in rows:
        assert sum(b["share"].values()) == pytest.approx(1.0)
        assert 0.5 < b["concurrency"] <= 1.05  # the local engine trains shards one after another
    assert len({b["label"] for b in rows}) == len(rows)  # each row named by what differs


def test_identical_accuracy_verdict_follows_the_records(records):
    assert check_identical_accuracy(records).verdict.startswith("supported")
    flattened = [{**r, "test_accuracy": 0.5} for r in records]  # as if worker count did not matter
    assert check_identical_accuracy(flattened).verdict.startswith("refuted")
    assert check_identical_accuracy([r for r in records if r["workers"] == 1]).verdict == "not tested"


def test_convergence_verdict_uses_epochs_run(records):
    finding = check_convergence_plateau(records)
    early = [r for r in records if r["stopped_early"]]
    assert early and finding.verdict.startswith(("supported", "partly"))
    assert any(f"epoch {min(r['epochs_run'] for r in early)}" in e for e in finding.evidence)
    capped = [r for r in records if not r["stopped_early"]]
    assert check_convergence_plateau(capped).verdict == "not enough evidence"


def test_whatif_sees_that_local_shards_do_not_run_side_by_side(records):
    (model,) = fit(records)
    assert model.engine == "local" and model.max_concurrency < 1.5
    assert model.best_workers() == 1  # more workers only add per-shard costs when they take turns
    assert model.max_relative_error() < 1.0  # millisecond epochs on a shared machine: a loose bound
    assert model.per_sample_s > 0


def test_report_plot_and_explain_commands_on_a_results_file(records, tmp_path, capsys):
    results = tmp_path / "r.jsonl"
    for r in records:
        append_jsonl(results, r)
    main(["report", str(results), "--out", str(tmp_path / "rep")])
    text = (tmp_path / "rep" / "report.md").read_text()
    for section in ("## Environment", "## Runs", "## Where the time goes", "## What if there were more workers"):
        assert section in text
    assert records[0]["machine"]["hostname"] in text and records[0]["versions"]["scikit-learn"] in text
    assert str(records[0]["commit"]) in text
    assert "Beside the paper" not in text  # these records are not a paper run
    for stem in PLOTS:
        assert (tmp_path / "rep" / f"{stem}.png").stat().st_size > 5000
        assert (tmp_path / "rep" / f"{stem}.svg").read_text().lstrip().startswith("<?xml")
    page = (tmp_path / "rep" / "report.html").read_text()
    assert page.count('<img src="data:image/png;base64,') == len(PLOTS)  # the figures travel inside the page
    assert "http://" not in page and "https://" not in page and "<script" not in page
    assert "<table>" in page and "## " not in page
    capsys.readouterr()
    main(["explain", str(results)])
    out = capsys.readouterr().out
    flat = " ".join(out.split())
    assert all(f.claim in flat for f in findings(records))
    assert "|---" not in out and "**" not in out  # a terminal gets aligned columns, not Markdown
    assert any(line.startswith("configuration") and "runs" in line for line in out.splitlines())


def test_report_and_explain_print_text_markdown_when_asked_and_json(records, tmp_path, capsys):
    results = tmp_path / "r.jsonl"
    for r in records:
        append_jsonl(results, r)
    main(["report", str(results)])
    text = capsys.readouterr().out
    assert "|---" not in text and "Runs\n────" in text
    head = next(line for line in text.splitlines() if line.startswith("configuration"))
    rule = text.splitlines()[text.splitlines().index(head) + 1]
    assert set(rule) <= {"─", " "} and len(rule) == len(head)  # a rule under each aligned column
    main(["report", str(results), "--format", "markdown"])
    md = capsys.readouterr().out
    assert md.startswith("# nncompare report") and "| configuration | runs |" in md and "|---|---:|" in md
    main(["report", str(results), "--json"])
    data = json.loads(capsys.readouterr().out)
    assert data["runs"] == len(records) and len(data["configurations"]) == len(records)
    assert {"label", "runs", "steady_epoch_s", "wall_min_s", "job"} <= set(data["configurations"][0])
    assert [f["claim"] for f in data["findings"]] == [f.claim for f in findings(records)]
    main(["explain", str(results), "--json"])
    data = json.loads(capsys.readouterr().out)
    assert {f["verdict"] for f in data["findings"]} <= {
        "supported",
        "refuted",
        "mixed",
        "not enough evidence",
        "not tested",
    }
    main(["explain", str(results), "--format", "markdown"])
    assert "- **" in capsys.readouterr().out


@pytest.mark.parametrize("content", [None, "", "not json\n", '{"engine": "local"}\n'])
def test_report_on_missing_or_empty_results_is_one_line_exit_2(content, tmp_path, capsys):
    results = tmp_path / "r.jsonl"
    if content is not None:
        results.write_text(content)
    for command in (
        ["report", str(results), "--out", str(tmp_path / "o")],
        ["plot", str(results)],
        ["explain", str(results)],
    ):
        with pytest.raises(SystemExit) as exit_:
            main(command)
        assert exit_.value.code == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("nncompare: error:")
    assert not (tmp_path / "o").exists()


@pytest.mark.slow
def test_paper_on_digits_writes_the_report_beside_the_paper_and_resumes(tmp_path):
    out = tmp_path / "paper"
    args = [
        *CLI,
        "paper",
        "--dataset",
        "digits",
        "--engines",
        "local",
        "--max-epochs",
        "3",
        "--hidden",
        "32",
        "--out",
        str(out),
    ]
    done = subprocess.run(args, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert re.search(r"4x9x11 -> 9 workers x (1 core|\d+ cores) x \d+\.\d\d GiB", done.stderr), done.stderr
    records = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    # every epoch count is capped at 3, so each configuration is one run serving all four columns
    assert sorted(r["workers"] for r in records) == [5, 7, 9]
    assert all(r["paper"]["columns"] == [10, 100, 1000, 10000] and r["epochs"] == 3 for r in records)
    text = (out / "report.md").read_text()
    assert "## Beside the paper" in text and "33.6 s, 91.64 %" in text
    nine = next(r for r in records if r["workers"] == 9)
    assert f"{100 * nine['test_accuracy']:.2f} %" in text
    # one epoch cap: no line against epochs, and the report says why; every other figure is there
    for stem in PLOTS:
        drawn = stem != "time_vs_epochs"
        assert (out / f"{stem}.png").exists() == drawn and (out / f"{stem}.svg").exists() == drawn
    assert "Wall time against epochs: every job ran to one epoch count, and a line needs two" in text
    assert (out / "report.html").read_text().count("data:image/png;base64,") == len(PLOTS) - 1
    again = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0 and "3 of 3 configurations already in" in again.stderr
    assert len((out / "results.jsonl").read_text().splitlines()) == 3


def test_paper_skips_an_engine_that_cannot_be_imported_with_a_note():
    from nncompare.cli.paper import available_engines

    notes = []
    usable, skipped = available_engines(["local"], notes.append)
    assert usable == ["local"] and not skipped and not notes
