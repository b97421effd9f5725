"""``nncompare gate``: benchmark a base commit against the current one and fail on a slowdown.

It is ``asv continuous`` with the project's asv suite (docs/benchmarks.md), restricted by
default to the local engine's training-time benchmarks (in CPU seconds, which a busy machine
hardly disturbs) so it takes minutes, not an hour:
asv builds both commits into its own environment, runs their benchmarks interleaved
(base, head, base, head, so a machine that gets busier does not favour either), prints
``asv compare``'s table, and the gate exits 1 when a benchmark got slower than ``--factor``
with statistical significance.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import click

from nncompare.errors import EngineError, UsageError

# The local engine's training in CPU seconds (benchmarks/training.py says why not wall time).
DEFAULT_BENCH = r"^training\.(TrainCPU\.time_train|EpochCPU\.time_epoch)\('local'"
REGRESSED = "PERFORMANCE DECREASED"


def _git(root: Path | None, *args: str) -> subprocess.CompletedProcess:
    cmd = ["git", *(("-C", str(root)) if root else ()), *args]
    try:
        return subprocess.run(cmd, capture_output=True, text=True, check=False)
    except OSError:
        raise UsageError("git is not installed; the gate compares commits of a git clone") from None


def repo_root() -> Path:
    done = _git(None, "rev-parse", "--show-toplevel")
    if done.returncode != 0:
        raise UsageError("not inside a git clone of nncompare; run the gate from the project's clone")
    root = Path(done.stdout.strip())
    if not (root / "asv.conf.json").is_file():
        raise UsageError(f"{root} has no asv.conf.json; run the gate from a clone of nncompare")
    return root


def resolve(root: Path, name: str) -> str:
    done = _git(root, "rev-parse", "--verify", "--quiet", f"{name}^{{commit}}")
    if done.returncode != 0 and "/" not in name:
        # a CI checkout often has no local branch, only the remote's (origin/main)
        done = _git(root, "rev-parse", "--verify", "--quiet", f"origin/{name}^{{commit}}")
    if done.returncode != 0:
        raise UsageError(f"unknown commit {name!r}; pass --base with a branch, tag or commit of this clone")
    return done.stdout.strip()


def asv_command(*args: str) -> list[str]:
    try:
        import asv  # noqa: F401  (only to say how to install it)
    except ModuleNotFoundError:
        raise UsageError("the gate needs asv; install it with: pip install 'nncompare[bench]'") from None
    return [sys.executable, "-m", "asv", *args]


def run_streaming(cmd: list[str], cwd: Path) -> tuple[int, str]:
    """Run ``cmd``, echoing its output as it comes, and return (exit code, output)."""
    lines = []
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    with subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          stdin=subprocess.DEVNULL, env=env) as proc:
        for line in proc.stdout:
            click.echo(line, nl=False)
            lines.append(line)
    return proc.returncode, "".join(lines)


@click.command()
@click.option("--base", default="main", show_default=True, help="Branch, tag or commit to compare against.")
@click.option("--head", default="HEAD", show_default=True, help="The commit under test (committed changes only).")
@click.option("--factor", type=click.FloatRange(min=1.0, min_open=True), default=1.2, show_default=True,
              help="Fail when a benchmark takes more than this many times the base's time.")
@click.option("--bench", "-b", default=DEFAULT_BENCH, show_default=True,
              help="asv regex selecting the benchmarks (default: the local engine's training times).")
@click.option("--config", type=click.Path(dir_okay=False), default=None,
              help="asv configuration in the clone's root (default: asv.conf.json there).")
@click.option("--environment", "-E", "env_spec", default=None,
              help="asv environment spec, e.g. virtualenv:3.11 (default: the configuration's).")
@click.option("--show-stderr", is_flag=True, help="Show the benchmarks' own output.")
def gate(base, head, factor, bench, config, env_spec, show_stderr):
    """Fail when HEAD is slower than BASE by more than FACTOR on the asv suite.

    Run it in a clone of the project, after committing. Exit status: 0 no regression,
    1 a regression (or a benchmark that failed), 2 bad arguments.
    """
    root = repo_root()
    base_hash, head_hash = resolve(root, base), resolve(root, head)
    if _git(root, "status", "--porcelain", "--untracked-files=no", "--", "src", "benchmarks", "pyproject.toml").stdout.strip():
        click.echo("nncompare gate: note: uncommitted changes are not benchmarked; asv builds commits", err=True)
    conf = []
    if config:
        path = Path(config).resolve()
        if not path.is_file() or path.parent != root:
            # asv reads "repo": "." and its folders relative to the configuration's folder
            raise UsageError(f"--config {config}: give an asv configuration file in the clone's root, {root}")
        conf = ["--config", str(path)]
    machine = subprocess.run(asv_command("machine", "--yes", *conf), cwd=root, capture_output=True, text=True,
                             stdin=subprocess.DEVNULL)
    if machine.returncode != 0:
        click.echo(machine.stdout + machine.stderr, err=True)
        raise EngineError("'asv machine --yes' failed; see its output above")
    cmd = asv_command("continuous", *conf, "--factor", str(factor), "--split", "--no-only-changed", "--bench", bench)
    if env_spec:
        cmd += ["--environment", env_spec]
    if show_stderr:
        cmd.append("--show-stderr")
    click.echo(f"nncompare gate: {base} ({base_hash[:8]}) -> {head} ({head_hash[:8]}), factor {factor}, benchmarks {bench}", err=True)
    code, output = run_streaming([*cmd, base_hash, head_hash], root)
    if REGRESSED in output:
        raise EngineError(f"{head} is slower than {base} by more than x{factor} on the benchmarks above")
    if code != 0:
        raise EngineError(f"asv continuous failed (exit code {code}); see its output above")
    if not any(f"Benchmarks that have {what}" in output for what in ("stayed the same", "improved", "got worse")):
        raise EngineError(f"asv continuous compared no benchmark; does --bench {bench!r} match any?")
    click.echo(f"nncompare gate: no regression beyond x{factor}", err=True)


commands = [gate]
