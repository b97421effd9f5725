"""Running the two commits through asv, and reading back what asv measured.

asv builds both commits into its own environment and runs the selection in interleaved rounds
(``asv run --interleave-rounds``: base then head in one round, head then base in the next), with
``--record-samples`` so each round's sample is kept in order for the pairing
(:mod:`nncompare.gate.judge`). asv's own verdicts are not used.
"""

from __future__ import annotations

import itertools
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import click

from nncompare.errors import UsageError


def asv_command(*args: str) -> list[str]:
    try:
        import asv  # noqa: F401  (only to say how to install it)
    except ModuleNotFoundError:
        raise UsageError("the gate needs asv; install it with: pip install 'nncompare[bench]'") from None
    return [sys.executable, "-m", "asv", *args]


def run_streaming(cmd: list[str], cwd: Path) -> int:
    """Run ``cmd``, echoing its output as it comes; return its exit code."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    with subprocess.Popen(
        cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, stdin=subprocess.DEVNULL, env=env
    ) as proc:
        for line in proc.stdout:
            click.echo(line, nl=False)
    return proc.returncode


def run_interleaved(root: Path, conf: list[str], commits: list[str], bench: str, extra: list[str]) -> int:
    """``asv run`` of ``commits`` (base first) in interleaved rounds; asv's exit code."""
    with tempfile.NamedTemporaryFile("w", suffix=".hashes", delete=False) as hashes:
        hashes.write("\n".join(commits) + "\n")
    try:
        cmd = asv_command(
            "run", *conf, "--interleave-rounds", "--record-samples", "--bench", bench, *extra, f"HASHFILE:{hashes.name}"
        )
        return run_streaming(cmd, root)
    finally:
        os.unlink(hashes.name)


def measured(root: Path, config: Path, commit: str, bench: str) -> dict:
    """What asv holds for ``commit`` on this machine: {full benchmark name: {"value", "samples"}}.

    Only the benchmarks that ``bench`` selects, as asv selects them (a regex searched in the name
    with or without its parameters).
    """
    from asv import results
    from asv.config import Config
    from asv.machine import Machine

    conf = Config.load(str(config))
    results_dir = root / conf.results_dir
    machine = Machine.get_unique_machine_name()
    found = {}
    if not (results_dir / machine).is_dir():
        return found
    try:
        loaded = list(results.iter_results_for_machine_and_hash(str(results_dir), machine, commit))
    except Exception:  # asv raises when it has no result for that commit (e.g. it did not build)
        return found
    for result in loaded:
        for key in result.get_all_result_keys():
            params = result.get_result_params(key)
            values = result.get_result_value(key, params)
            samples = result.get_result_samples(key, params)
            combos = list(itertools.product(*params)) if params else [()]
            for i, combo in enumerate(combos):
                name = f"{key}({', '.join(combo)})" if combo else key
                if not (re.search(bench, key) or re.search(bench, name)):
                    continue
                found[name] = {"value": values[i], "samples": samples[i] if samples else None}
    return found
