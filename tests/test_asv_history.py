"""tools/asv_history.py, as the benchmark workflow runs it, with a local bare repository as the remote.

Two CI runs land on different hosts (each a fresh clone with its own HOME, so its own asv
machine file, and its own host name, which the test gives each process through a
``sitecustomize`` that patches ``platform.uname``) and benchmark two commits of main; the
results branch then holds both, and ``asv publish`` draws them as one series with two points.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "tools" / "asv_history.py"
GIT_ID = ["-c", "user.name=nncompare test", "-c", "user.email=test@nncompare.invalid"]
MACHINE = "gh-ubuntu-latest"  # one name per runner class, as the workflow passes it
FACTS = [
    "--os",
    "Linux (GitHub ubuntu-latest)",
    "--arch",
    "x86_64",
    "--cpu",
    "GitHub-hosted, 4 vCPU",
    "--num-cpu",
    "4",
    "--ram",
    "16GB",
]
BENCH = r"training\.EpochCPU\.time_epoch\('local', 1,"
SERIES = "training.EpochCPU.time_epoch"
FAKE_HOST = """
import os
import platform

if os.environ.get("NNCOMPARE_TEST_HOSTNAME"):  # set by tests/test_asv_history.py only
    _host = platform.uname()._replace(node=os.environ["NNCOMPARE_TEST_HOSTNAME"])
    platform.uname = lambda: _host
"""


def run(*args, cwd, env, timeout=600):
    done = subprocess.run(
        list(args), cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
    )
    assert done.returncode == 0, f"{args}: {done.stdout[-3000:]}{done.stderr[-3000:]}"
    return done


def git(cwd, *args):
    return subprocess.run(["git", *GIT_ID, *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


def history(*args, cwd, env):
    return run(sys.executable, str(SCRIPT), *args, cwd=cwd, env=env)


@pytest.fixture
def remote(tmp_path):
    """A bare repository holding this project's main branch: the CI's origin."""
    bare = tmp_path / "origin.git"
    git(tmp_path, "clone", "--quiet", "--bare", str(ROOT), str(bare))
    git(bare, "branch", "--force", "main", git(ROOT, "rev-parse", "HEAD"))
    return bare


def host(tmp_path: Path, remote: Path, name: str) -> tuple[Path, dict]:
    """A fresh CI machine: a clone of main, a HOME of its own (no asv machine file yet) and a host name."""
    home = tmp_path / f"home-{name}"
    (home / "site").mkdir(parents=True)
    (home / "site" / "sitecustomize.py").write_text(FAKE_HOST)
    clone = tmp_path / f"clone-{name}"
    git(tmp_path, "clone", "--quiet", "--branch", "main", str(remote), str(clone))
    pythonpath = os.pathsep.join(filter(None, [str(home / "site"), os.environ.get("PYTHONPATH")]))
    return clone, dict(
        os.environ,
        HOME=str(home),
        PYTHONPATH=pythonpath,
        NNCOMPARE_TEST_HOSTNAME=f"runner-{name}",
        NNCOMPARE_ASV_DATASET="digits",
    )


def default_machine_name(clone: Path, env: dict) -> str:
    """What ``asv machine --yes`` (the old workflow's step) would call this host."""
    run(sys.executable, "-m", "asv", "machine", "--yes", cwd=clone, env=env)
    (name,) = set(json.loads((Path(env["HOME"]) / ".asv-machine.json").read_text())) - {"version"}
    return name


def benchmark_head(clone: Path, env: dict) -> str:
    """The workflow's steps: register the runner class, pull the results, benchmark, push."""
    history("machine", MACHINE, *FACTS, cwd=clone, env=env)
    history("pull", cwd=clone, env=env)
    head = git(clone, "rev-parse", "HEAD")
    # this env's nncompare recorded under HEAD (the workflow builds HEAD in asv's virtualenv)
    run(
        sys.executable,
        "-m",
        "asv",
        "run",
        "--machine",
        MACHINE,
        "--python=same",
        "--set-commit-hash",
        head,
        "-b",
        BENCH,
        "-a",
        "rounds=1",
        "-a",
        "repeat=3",
        cwd=clone,
        env=env,
    )
    history("push", "--message", f"asv results of {head[:8]} on {MACHINE}", cwd=clone, env=env)
    return head


def published_series(html: Path) -> dict[Path, list]:
    """Each graph file of the series (one per machine and environment) -> its points with a value."""
    found = {}
    for path in (html / "graphs").rglob(f"{SERIES}.json"):
        if "summary" in path.parts:
            continue
        points = json.loads(path.read_text())
        # a parameterised benchmark's point: [commit position, [value per parameter combination]]
        found[path] = [p for p in points if any(v is not None for v in (p[1] if isinstance(p[1], list) else [p[1]]))]
    return found


@pytest.mark.slow
def test_two_runs_on_different_hosts_publish_one_series_with_two_points(tmp_path, remote):
    pytest.importorskip("asv")
    first_clone, first_env = host(tmp_path, remote, "a")
    second_clone, second_env = host(tmp_path, remote, "b")
    # the hosts differ as GitHub's runners do: asv's default machine names would split the series
    assert default_machine_name(first_clone, first_env) != default_machine_name(second_clone, second_env)
    first = benchmark_head(first_clone, first_env)

    # main moves on; the next run lands on the other host
    (second_clone / "CHANGES").write_text("a commit for the second point\n")
    git(second_clone, "add", "CHANGES")
    git(second_clone, "commit", "--quiet", "-m", "second commit on main")
    git(second_clone, "push", "--quiet", "origin", "main")
    second = benchmark_head(second_clone, second_env)
    assert first != second

    # the results branch holds both runs' results, under the one machine name
    listed = git(remote, "ls-tree", "-r", "--name-only", "asv-results").splitlines()
    assert {p.split("/")[0] for p in listed if "/" in p} == {MACHINE}
    assert sum(first[:8] in p for p in listed) == 1 and sum(second[:8] in p for p in listed) == 1

    # a third machine publishes from the results branch alone
    publisher, env = host(tmp_path, remote, "publisher")
    history("pull", cwd=publisher, env=env)
    run(sys.executable, "-m", "asv", "publish", cwd=publisher, env=env)
    series = published_series(publisher / "html")
    assert len(series) == 1, sorted(map(str, series))
    ((path, points),) = series.items()
    assert len(points) == 2
    print(f"published: {path.relative_to(publisher / 'html')}: {len(points)} points")


def test_push_without_results_is_a_one_line_error(tmp_path, remote):
    pytest.importorskip("asv")
    clone, env = host(tmp_path, remote, "empty")
    done = subprocess.run([sys.executable, str(SCRIPT), "push"], cwd=clone, env=env, capture_output=True, text=True)
    assert done.returncode == 2
    assert done.stderr.startswith("asv_history.py: error: no results in") and done.stderr.count("\n") == 1


def test_a_push_that_lost_a_race_merges_and_keeps_both_runs(tmp_path, remote):
    """Two runs pulled the same state; the second push must merge the first one's results, not drop them."""
    pytest.importorskip("asv")
    a, env_a = host(tmp_path, remote, "a")
    b, env_b = host(tmp_path, remote, "b")
    for clone, env in ((a, env_a), (b, env_b)):
        history("pull", cwd=clone, env=env)
    for clone, env, name in ((a, env_a, "one"), (b, env_b, "two")):
        results = clone / ".asv" / "results" / MACHINE
        results.mkdir(parents=True)
        (results / f"{name}.json").write_text("{}\n")
        (clone / ".asv" / "results" / "benchmarks.json").write_text(json.dumps({"written_by": name}))
        history("push", "--message", name, cwd=clone, env=env)
    listed = git(remote, "ls-tree", "-r", "--name-only", "asv-results").splitlines()
    assert {f"{MACHINE}/one.json", f"{MACHINE}/two.json", "benchmarks.json"} <= set(listed)
    # where both runs wrote the same file, the later run's copy wins
    assert json.loads(git(remote, "show", "asv-results:benchmarks.json")) == {"written_by": "two"}


def test_the_results_checkout_gets_the_clones_http_credentials(tmp_path, remote):
    """actions/checkout keeps its token in the clone's config; the results repository needs it to push."""
    pytest.importorskip("asv")
    clone, env = host(tmp_path, remote, "ci")
    key = "http.https://github.com/.extraheader"
    git(clone, "config", key, "AUTHORIZATION: basic dGVzdA==")
    history("pull", cwd=clone, env=env)
    assert git(clone / ".asv" / "results", "config", "--get", key) == "AUTHORIZATION: basic dGVzdA=="
