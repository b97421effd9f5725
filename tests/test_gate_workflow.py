"""The pull-request gate job of .github/workflows/benchmarks.yml: its table in the job summary and in
one comment updated in place, and a newer push cancelling the gate it supersedes.

The comment step's script is run here by node against an in-memory stand-in for the GitHub API
(two runs of the gate on one pull request), so the marker it looks for is the one the gate writes."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from nncompare.gate.report import COMMENT_MARKER

ROOT = Path(__file__).resolve().parents[1]


def workflow() -> dict:
    return yaml.safe_load((ROOT / ".github" / "workflows" / "benchmarks.yml").read_text())


def gate_job() -> dict:
    return workflow()["jobs"]["gate"]


def step(job: dict, starts: str) -> dict:
    return next(s for s in job["steps"] if s.get("name", "").startswith(starts))


def test_a_newer_push_cancels_the_gate_of_the_same_pull_request_and_nothing_else_does():
    job = gate_job()
    assert job["concurrency"] == {
        "group": "gate-pr-${{ github.event.pull_request.number }}",
        "cancel-in-progress": True,
    }
    top = workflow()["concurrency"]
    # a pull request's workflow runs never share the top-level group: a label added for another
    # reason starts a run whose gate is skipped, and that run must not cancel the running gate
    assert "github.run_id" in top["group"] and top["cancel-in-progress"] is False


def test_the_gate_writes_its_table_to_the_summary_and_keeps_its_record():
    job = gate_job()
    run = step(job, "nncompare gate")["run"]
    assert "--record gate.json" in run and "--markdown gate.md" in run and "pipefail" in run
    summary = step(job, "The verdict table in the job summary")
    assert summary["if"] == "always()" and 'cat gate.md >> "$GITHUB_STEP_SUMMARY"' in summary["run"]
    kept = step(job, "Keep the gate's log")["with"]["path"].split()
    assert kept == ["gate.log", "gate.json", "gate.md"]
    assert job["permissions"]["pull-requests"] == "write"


COMMENTS_JS = """
const fs = require('fs');
const store = {comments: [{id: 1, user: {type: 'User'}, body: 'looks good'}], created: 0, updated: 0};
const rest = {issues: {
  listComments: async () => ({data: store.comments}),
  createComment: async ({body}) => {
    store.created++;
    store.comments.push({id: 100 + store.created, user: {type: 'Bot'}, body});
  },
  updateComment: async ({comment_id, body}) => {
    store.updated++;
    store.comments.find(c => c.id === comment_id).body = body;
  },
}};
const github = {rest, paginate: async (fn, args) => (await fn(args)).data};
const context = {repo: {owner: 'o', repo: 'r'}, payload: {pull_request: {number: 7}}};
const script = fs.readFileSync(process.argv[1], 'utf8');
const run = new Function('require', 'github', 'context', `return (async () => { ${script} })();`);
(async () => {
  for (const table of process.argv.slice(2)) {
    fs.writeFileSync('gate.md', fs.readFileSync(table, 'utf8'));
    await run(require, github, context);
  }
  process.stdout.write(JSON.stringify(store));
})();
"""


def test_the_comment_step_posts_one_comment_and_updates_it_on_the_next_run(tmp_path):
    if shutil.which("node") is None:
        pytest.skip("node is not installed")
    script = tmp_path / "comment.js"
    script.write_text(step(gate_job(), "The verdict table as the pull request's gate comment")["with"]["script"])
    first, second = tmp_path / "first.md", tmp_path / "second.md"
    first.write_text(f"{COMMENT_MARKER}\n### nncompare gate: slower (exit 1)\n")
    second.write_text(f"{COMMENT_MARKER}\n### nncompare gate: pass (exit 0)\n")
    done = subprocess.run(
        ["node", "-e", COMMENTS_JS, str(script), str(first), str(second)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    store = json.loads(done.stdout)
    assert store["created"] == 1 and store["updated"] == 1
    assert [c["body"] for c in store["comments"]] == ["looks good", second.read_text()]
