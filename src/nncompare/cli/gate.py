"""``nncompare gate``: benchmark a base commit against the current one and fail on a regression.

asv builds both commits into its own environment and runs the gate's benchmarks
(``benchmarks/gate.py``: every engine's steady epochs over a floor measured beside them, its test error,
and the cores its workers' BLAS left idle) in interleaved rounds; :mod:`nncompare.gate.judge`
judges the results. Exit status: 0 pass, 1 slower (or lost parallelism), 2 bad arguments,
3 accuracy dropped, 4 a benchmark failed on the head commit (or the head did not build).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import click

from nncompare.errors import EngineError, NNCompareError, UsageError
from nncompare.gate import asvrun
from nncompare.gate.judge import BROKEN, LESS_ACCURATE, PASS, SLOWER, exit_code, judge

# Every engine's steady epochs (in floor epochs), test error and idle cores on the quick grid.
DEFAULT_BENCH = r"^gate\."
MAX_ERROR_RISE = 0.01
OUTCOMES = {
    SLOWER: "slower than the base",
    LESS_ACCURATE: "less accurate than the base",
    BROKEN: "breaking benchmarks (no value on it)",
}


class GateFailed(NNCompareError):
    """The head commit regressed: the exit code says how (see the module's docstring)."""

    def __init__(self, message: str, code: int):
        super().__init__(message)
        self.exit_code = code


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


@click.command()
@click.option("--base", default="main", show_default=True, help="Branch, tag or commit to compare against.")
@click.option("--head", default="HEAD", show_default=True, help="The commit under test (committed changes only).")
@click.option(
    "--factor",
    type=click.FloatRange(min=1.0, min_open=True),
    default=1.1,
    show_default=True,
    help="Fail when a benchmark's median paired ratio head/base exceeds this (and all pairs but one agree).",
)
@click.option(
    "--bench",
    "-b",
    default=DEFAULT_BENCH,
    show_default=True,
    help="asv regex selecting the benchmarks (default: benchmarks/gate.py, every engine).",
)
@click.option(
    "--config",
    type=click.Path(dir_okay=False),
    default=None,
    help="asv configuration in the clone's root (default: asv.conf.json there).",
)
@click.option(
    "--environment",
    "-E",
    "env_spec",
    default=None,
    help="asv environment spec, e.g. virtualenv:3.11 (default: the configuration's).",
)
@click.option("--show-stderr", is_flag=True, help="Show the benchmarks' own output.")
def gate(base, head, factor, bench, config, env_spec, show_stderr):
    """Fail when HEAD is slower or less accurate than BASE, or a benchmark broke on HEAD.

    Run it in a clone of the project, after committing. Exit status: 0 pass, 1 slower than
    FACTOR, 2 bad arguments, 3 test accuracy dropped by more than 1 point, 4 a benchmark failed
    on HEAD (or HEAD did not build).
    """
    root = repo_root()
    base_hash, head_hash = resolve(root, base), resolve(root, head)
    if _git(
        root, "status", "--porcelain", "--untracked-files=no", "--", "src", "benchmarks", "pyproject.toml"
    ).stdout.strip():
        click.echo("nncompare gate: note: uncommitted changes are not benchmarked; asv builds commits", err=True)
    config_path = root / "asv.conf.json"
    if config:
        config_path = Path(config).resolve()
        if not config_path.is_file() or config_path.parent != root:
            # asv reads "repo": "." and its folders relative to the configuration's folder
            raise UsageError(f"--config {config}: give an asv configuration file in the clone's root, {root}")
    conf = ["--config", str(config_path)]
    if base_hash == head_hash:
        raise UsageError(f"--base {base} and --head {head} are the same commit; commit your change first")
    machine = subprocess.run(
        asvrun.asv_command("machine", "--yes", *conf),
        cwd=root,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    if machine.returncode != 0:
        click.echo(machine.stdout + machine.stderr, err=True)
        raise EngineError("'asv machine --yes' failed; see its output above")
    extra = (["--environment", env_spec] if env_spec else []) + (["--show-stderr"] if show_stderr else [])
    click.echo(
        f"nncompare gate: {base} ({base_hash[:8]}) -> {head} ({head_hash[:8]}), factor {factor}, benchmarks {bench}",
        err=True,
    )
    asvrun.run_interleaved(root, conf, [base_hash, head_hash], bench, extra)
    before = asvrun.measured(root, config_path, base_hash, bench)
    after = asvrun.measured(root, config_path, head_hash, bench)
    if not before and not after:
        raise EngineError(
            f"asv measured nothing; does --bench {bench!r} select any benchmark? (see asv's output above)"
        )
    verdicts = judge(before, after, factor=factor, max_error_rise=MAX_ERROR_RISE)
    for verdict in verdicts:
        mark = "ok  " if verdict.code == PASS else "FAIL"
        click.echo(f"{mark} {verdict.line}", err=True)
    code = exit_code(verdicts)
    if code != PASS:
        failed = [v.name for v in verdicts if v.code == code]
        raise GateFailed(f"{head} ({head_hash[:8]}) is {OUTCOMES[code]}: {'; '.join(failed)}", code)
    click.echo(
        f"nncompare gate: pass ({len(verdicts)} benchmarks: none slower than x{factor}, "
        f"no accuracy drop over {100 * MAX_ERROR_RISE:g} point, none broken)",
        err=True,
    )


commands = [gate]
