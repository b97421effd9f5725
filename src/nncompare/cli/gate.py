"""``nncompare gate``: benchmark a base commit against the current one and fail on a regression.

asv builds both commits into its own environment and runs the gate's benchmarks
(``benchmarks/gate.py``: every engine's steady epochs over a floor measured beside them, its test error,
and the cores its workers' BLAS left idle) in interleaved rounds, more of them where a verdict is
still inconclusive (:mod:`nncompare.gate.sequential`); :mod:`nncompare.gate.judge` judges the
results. Exit status: 0 pass, 1 slower (or lost parallelism), 2 bad arguments, 3 accuracy
dropped, 4 a benchmark failed on the head commit (or the head did not build, or asv could not
run), 5 inconclusive, 130/143 interrupted (SIGINT/SIGTERM).
"""

from __future__ import annotations

import math
import subprocess
import time
from pathlib import Path

import click

from nncompare.errors import NNCompareError, UsageError
from nncompare.gate import asvrun, report, sequential
from nncompare.gate.judge import BROKEN, INCONCLUSIVE, LESS_ACCURATE, PASS, SLOWER, exit_code

# Every engine's steady epochs (in floor epochs), test error and idle cores on the quick grid.
DEFAULT_BENCH = r"^gate\."
DEFAULT_FACTOR = 1.05
MAX_ERROR_RISE = 0.01
#: rounds of each batch after the first (whose rounds the suite declares), and at most
#: (docs/evidence.md, "Calibration")
MORE_ROUNDS, MAX_ROUNDS = 4, 12
OUTCOMES = {
    SLOWER: "slower than the base",
    LESS_ACCURATE: "less accurate than the base",
    BROKEN: "breaking benchmarks (no value on it)",
    INCONCLUSIVE: "neither slower nor faster than the threshold by the measurements the gate could take",
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


def _factor(ctx, param, value: float) -> float:
    if not math.isfinite(value) or value <= 1.0:
        raise click.BadParameter(f"{value!r} is not a number above 1 (a head/base ratio, e.g. 1.05)")
    return value


@click.command()
@click.option("--base", default="main", show_default=True, help="Branch, tag or commit to compare against.")
@click.option("--head", default="HEAD", show_default=True, help="The commit under test (committed changes only).")
@click.option(
    "--factor",
    type=float,
    callback=_factor,
    default=DEFAULT_FACTOR,
    show_default=True,
    help="Threshold on a timed benchmark's head/base ratio: slower when its 95 % interval is wholly above it, "
    "inconclusive when the interval straddles it.",
)
@click.option(
    "--max-rounds",
    type=click.IntRange(min=1),
    default=MAX_ROUNDS,
    show_default=True,
    help="Rounds at most for a timed benchmark whose verdict stays inconclusive: after the suite's own rounds, "
    f"batches of {MORE_ROUNDS} more while any is; the suite's rounds or fewer: no more.",
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
@click.option(
    "--record",
    "record_path",
    type=click.Path(dir_okay=False, writable=True),
    default=None,
    help="Write what was measured (every paired sample) and judged as JSON here (tools/gate_calibrate.py reads it).",
)
@click.option(
    "--markdown",
    "markdown_path",
    type=click.Path(dir_okay=False, writable=True),
    default=None,
    help="Write the verdict table as Markdown here (CI: the job summary and the pull-request comment).",
)
def gate(base, head, factor, max_rounds, bench, config, env_spec, show_stderr, record_path, markdown_path):
    """Fail when HEAD is slower or less accurate than BASE, or a benchmark broke on HEAD.

    Run it in a clone of the project, after committing. Exit status: 0 pass, 1 slower than
    FACTOR (or lost parallelism), 2 bad arguments, 3 test accuracy dropped by more than 1 point,
    4 a benchmark failed on HEAD (or HEAD did not build), 5 inconclusive: a timed benchmark's
    interval still straddles FACTOR after --max-rounds rounds; 130/143 interrupted.
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
    if base_hash == head_hash:
        raise UsageError(f"--base {base} and --head {head} are the same commit; commit your change first")
    suite = asvrun.discover(root, asvrun.benchmark_dir(config_path))
    selected = asvrun.select(suite, bench)
    if not selected:
        raise UsageError(
            f"--bench {bench!r} selects none of the suite's benchmarks (the gate's own are {DEFAULT_BENCH})"
        )
    versions = {b["name"]: b.get("version") for b in suite}
    first = max((b.get("rounds") or 1) for b in suite if b["name"] in {n.split("(")[0] for n in selected})
    plan = sequential.Plan(first=first, more=MORE_ROUNDS, most=max(first, max_rounds))
    machine = subprocess.run(
        asvrun.asv_command("machine", "--yes", "--config", str(config_path)),
        cwd=root,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    if machine.returncode != 0:
        click.echo(machine.stdout + machine.stderr, err=True)
        raise GateFailed("'asv machine --yes' failed; see its output above", BROKEN)
    extra = (["--environment", env_spec] if env_spec else []) + (["--show-stderr"] if show_stderr else [])
    click.echo(
        f"nncompare gate: {base} ({base_hash[:8]}) -> {head} ({head_hash[:8]}), threshold x{factor:g}, "
        f"{len(selected)} benchmarks ({bench}), {plan.first} rounds, up to {plan.most} where inconclusive",
        err=True,
    )
    start = time.monotonic()
    workspace = asvrun.Workspace(root, config_path, f"{base_hash[:8]}-{head_hash[:8]}")
    try:
        outcome = sequential.run(
            workspace,
            [base_hash, head_hash],
            bench,
            plan,
            factor=factor,
            max_error_rise=MAX_ERROR_RISE,
            extra=extra,
        )
    except BaseException:
        workspace.discard()  # interrupted or failed: nothing half-measured stays for a later reader
        raise
    workspace.close()
    took = time.monotonic() - start
    verdicts = outcome.verdicts
    if not verdicts:
        # asv could not create its environment or build a commit: nothing to judge, the head is not proven
        raise GateFailed(f"asv measured nothing for --bench {bench!r}; see asv's output above", BROKEN)
    code = exit_code(verdicts)
    for verdict in verdicts:
        mark = {PASS: "ok  ", INCONCLUSIVE: "??  "}.get(verdict.code, "FAIL")
        click.echo(f"{mark} {verdict.line}", err=True)
    data = report.record(
        verdicts,
        outcome.measurements,
        base=base_hash,
        head=head_hash,
        factor=factor,
        code=code,
        took_s=took,
        batches=outcome.batches,
        plan=plan,
        versions=versions,
    )
    report.write_json(workspace.dir / "gate.json", data)
    if record_path:
        report.write_json(record_path, data)
    if markdown_path:
        table = report.markdown(verdicts, base=base_hash, head=head_hash, factor=factor, code=code, took_s=took)
        report.write(markdown_path, table)
    click.echo(f"nncompare gate: {sum(b['rounds'] for b in outcome.batches)} rounds in {took:.0f} s", err=True)
    if code != PASS:
        failed = [v.name for v in verdicts if v.code == code]
        raise GateFailed(f"{head} ({head_hash[:8]}) is {OUTCOMES[code]}: {'; '.join(failed)}", code)
    click.echo(
        f"nncompare gate: pass ({len(verdicts)} benchmarks: none slower than x{factor:g}, "
        f"no accuracy drop over {100 * MAX_ERROR_RISE:g} point, none broken)",
        err=True,
    )


commands = [gate]
