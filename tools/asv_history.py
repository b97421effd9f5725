"""Keep asv's results in git, so runs on short-lived CI machines add up to one history.

GitHub-hosted runners get a new host name on every run, and anything kept in the Actions cache
is evicted; asv then sees a new machine each time and its graphs show single points, never a
line. This script gives the workflow three steps (docs/benchmarks.md, "History"):

``machine NAME --os ... --arch ... --cpu ... --num-cpu ... --ram ...``
    ``asv machine --machine NAME --yes`` with fixed facts: one name (and one set of facts,
    which asv also splits series by) per runner class, whatever host the run lands on.
``pull``
    Make asv's ``results_dir`` a git checkout of the results branch (default ``asv-results``
    of ``origin``), merged with whatever results are already there.
``push``
    Commit the results, merge the branch's latest state (other runs may have pushed since) and
    push; on a race, merge again and retry. Where both changed one file (``benchmarks.json``,
    a re-run commit) this run's copy wins.

Then ``asv publish`` draws the graphs from every run's results. Run it from the clone's root.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

RESULTS_BRANCH = "asv-results"
PUSH_ATTEMPTS = 5
GIT_ID = ["-c", "user.name=nncompare asv history", "-c", "user.email=asv-history@nncompare.invalid"]


class HistoryError(Exception):
    """Something the user can fix; printed as one line, exit status 2."""


def git(cwd: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run(["git", *GIT_ID, *args], cwd=cwd, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if check and done.returncode != 0:
        message = (done.stderr.strip() or done.stdout.strip() or "no output").splitlines()[-1]
        raise HistoryError(f"git {' '.join(args)} failed in {cwd}: {message}")
    return done


def results_dir(config: Path) -> Path:
    """asv's results_dir, read from the config the way asv reads it (JSON with comments)."""
    from asv.util import load_json

    if not config.is_file():
        raise HistoryError(f"{config} not found: run this from the clone's root or pass --config")
    return (config.parent / load_json(str(config), js_comments=True).get("results_dir", "results")).resolve()


def remote_url(remote: str, clone: Path) -> str:
    """A remote's name in the clone (``origin``) or a URL/path as it is."""
    named = git(clone, "remote", "get-url", remote, check=False)
    return named.stdout.strip() if named.returncode == 0 else remote


def _open(results: Path, url: str, branch: str, clone: Path) -> None:
    if not (results / ".git").exists():
        results.mkdir(parents=True, exist_ok=True)
        git(results, "init", "--quiet", f"--initial-branch={branch}")
        git(results, "remote", "add", "origin", url)
    else:
        git(results, "remote", "set-url", "origin", url)
    # The results checkout is a repository of its own: give it the clone's HTTP credentials
    # (actions/checkout keeps its token as an http.<url>.extraheader in the clone's config).
    found = git(clone, "config", "--get-regexp", r"^http\..*\.extraheader$", check=False).stdout
    for line in found.splitlines():
        key, _, value = line.partition(" ")
        git(results, "config", "--replace-all", key, value)


def _commit(results: Path, message: str) -> None:
    git(results, "add", "--all")
    if git(results, "status", "--porcelain").stdout.strip():
        git(results, "commit", "--quiet", "-m", message)


def _merge_remote(results: Path, branch: str) -> bool:
    """Merge the remote branch into the local one; False when the remote has no such branch yet."""
    if git(results, "ls-remote", "--exit-code", "--heads", "origin", branch, check=False).returncode == 2:
        return False
    git(results, "fetch", "--quiet", "origin", branch)
    if git(results, "rev-parse", "--verify", "--quiet", "HEAD", check=False).returncode != 0:
        git(results, "reset", "--quiet", "--hard", "FETCH_HEAD")  # nothing here yet: take the branch as it is
    else:
        git(
            results,
            "merge",
            "--quiet",
            "--no-edit",
            "--allow-unrelated-histories",
            "-X",
            "ours",
            "-m",
            f"Merge the {branch} branch's results",
            "FETCH_HEAD",
        )
    return True


def pull(results: Path, url: str, branch: str, clone: Path) -> None:
    _open(results, url, branch, clone)
    _commit(results, "Results kept from before the pull")
    _merge_remote(results, branch)


def push(results: Path, url: str, branch: str, message: str, clone: Path) -> None:
    _open(results, url, branch, clone)
    _commit(results, message)
    if git(results, "rev-parse", "--verify", "--quiet", "HEAD", check=False).returncode != 0:
        raise HistoryError(f"no results in {results}: run asv first")
    for _ in range(PUSH_ATTEMPTS):
        _merge_remote(results, branch)
        if git(results, "push", "--quiet", "origin", f"HEAD:refs/heads/{branch}", check=False).returncode == 0:
            return
    raise HistoryError(f"could not push to {branch} after {PUSH_ATTEMPTS} attempts (other runs kept pushing)")


def machine(name: str, facts: dict[str, str]) -> None:
    """Register the runner class under one name with fixed facts (asv splits series by both)."""
    args = [sys.executable, "-m", "asv", "machine", "--yes", "--machine", name]
    for key, value in facts.items():
        args += [f"--{key}", value]
    done = subprocess.run(args, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if done.returncode != 0:
        raise HistoryError(f"asv machine failed: {(done.stderr.strip() or done.stdout.strip()).splitlines()[-1]}")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="asv_history.py", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--config", type=Path, default=Path("asv.conf.json"), help="asv's config (default: ./asv.conf.json)"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    m = sub.add_parser("machine", help="register this runner class under a fixed name with fixed facts")
    m.add_argument("name")
    for fact in ("os", "arch", "cpu", "num_cpu", "ram"):
        m.add_argument(f"--{fact.replace('_', '-')}", dest=fact, required=True)
    for name in ("pull", "push"):
        p = sub.add_parser(name, help=f"{name} the results branch")
        p.add_argument("--remote", default="origin", help="a remote of this clone, or a URL (default: origin)")
        p.add_argument("--branch", default=RESULTS_BRANCH, help=f"the results branch (default: {RESULTS_BRANCH})")
        if name == "push":
            p.add_argument("--message", default="asv results", help="the results commit's message")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        if args.command == "machine":
            machine(args.name, {k: getattr(args, k) for k in ("os", "arch", "cpu", "num_cpu", "ram")})
            return 0
        results = results_dir(args.config)
        clone = args.config.resolve().parent
        url = remote_url(args.remote, clone)
        if args.command == "pull":
            pull(results, url, args.branch, clone)
        else:
            push(results, url, args.branch, args.message, clone)
    except HistoryError as exc:
        print(f"asv_history.py: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
