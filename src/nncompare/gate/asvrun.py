"""Running the two commits through asv, and reading back what asv measured.

asv builds both commits into its own environment and runs the selection in interleaved rounds
(``asv run --interleave-rounds``: base then head in one round, head then base in the next), with
``--record-samples`` so each round's sample is kept in order for the pairing
(:mod:`nncompare.gate.judge`). asv's own verdicts are not used.

Every ``asv run`` of a gate writes to a results folder of its own (:class:`Workspace`, under
``.asv/gate/``), never to ``.asv/results``: the gate's interleaved samples do not mix with the
history that ``asv publish`` draws, a second batch of rounds cannot append to the first one's
file, and a gate that is stopped removes its folder, so no later gate or ``asv publish`` reads a
half-measured commit. asv itself runs in a session of its own and is stopped with its children
(:func:`stop`) when the gate is interrupted.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import click

from nncompare import processes
from nncompare.errors import UsageError
from nncompare.interrupts import deferred

#: seconds asv gets to stop its benchmark's processes after SIGINT, and they after SIGTERM
STOP_GRACE_S = 3.0
WORKSPACE_ROOT = Path(".asv") / "gate"


def asv_command(*args: str) -> list[str]:
    try:
        import asv  # noqa: F401  (only to say how to install it)
    except ModuleNotFoundError:
        raise UsageError("the gate needs asv; install it with: pip install 'nncompare[bench]'") from None
    return [sys.executable, "-m", "asv", *args]


def benchmark_dir(config_path: Path) -> Path:
    """The suite's folder as the asv configuration names it, from the configuration's folder."""
    from asv import util

    conf = util.load_json(str(config_path), js_comments=True)
    return (config_path.parent / conf.get("benchmark_dir", "benchmarks")).resolve()


def discover(root: Path, benchmark_dir: Path) -> list[dict]:
    """The suite's benchmarks as asv discovers them, imported by this interpreter: nothing is built.

    Each entry is asv's (``name``, ``params``, ``version``, ...). The suite is this checkout's,
    the same files asv will run against both commits.
    """
    asv_command()  # says how to install asv if it is missing
    from asv.runner import BENCHMARK_RUN_SCRIPT

    with tempfile.TemporaryDirectory(prefix="nncompare-gate-") as tmp:
        out = Path(tmp) / "benchmarks.json"
        done = subprocess.run(
            [sys.executable, BENCHMARK_RUN_SCRIPT, "discover", str(benchmark_dir), str(out)],
            cwd=root,
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
        )
        if done.returncode != 0 or not out.is_file():
            tail = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
            raise UsageError(f"cannot import the benchmark suite in {benchmark_dir}: {tail}")
        return json.loads(out.read_text())


def full_names(benchmark: dict) -> list[str]:
    """``name(param, ...)`` for each parameter combination, as asv matches ``--bench`` against them."""
    if not benchmark.get("params"):
        return [benchmark["name"]]
    return [f"{benchmark['name']}({', '.join(combo)})" for combo in itertools.product(*benchmark["params"])]


def select(benchmarks: list[dict], bench: str) -> list[str]:
    """The full names that ``bench`` selects, as asv selects them."""
    try:
        pattern = re.compile(bench)
    except re.error as exc:
        raise UsageError(f"--bench {bench!r} is not a regular expression: {exc}") from None
    chosen = []
    for benchmark in benchmarks:
        names = full_names(benchmark)
        if benchmark.get("params"):
            chosen += [n for n in names if pattern.search(n)]
        elif pattern.search(benchmark["name"]):
            chosen.append(benchmark["name"])
    return chosen


def exactly(names: list[str]) -> str:
    """An asv ``--bench`` regex that selects these full names and nothing else."""
    return "|".join(f"^{re.escape(name)}$" for name in names)


class Workspace:
    """One gate's own folder, ``.asv/gate/<id>/``: a copy of the asv configuration whose results go there.

    The copy sits in the clone's root (asv runs from its configuration's folder and reads the
    build requirements from the ``pyproject.toml`` beside it) and is removed on :meth:`close`;
    :meth:`discard` also removes the results.
    """

    def __init__(self, root: Path, config: Path, label: str):
        from asv import util

        self.root = root
        conf = util.load_json(str(config), js_comments=True)
        self.dir = root / WORKSPACE_ROOT / f"{time.strftime('%Y%m%d-%H%M%S')}-{label}-{os.getpid()}"
        self.dir.mkdir(parents=True)
        for key in ("env_dir", "benchmark_dir", "html_dir"):  # as the original reads them, from the root
            if key in conf:
                conf[key] = str((root / conf[key]).resolve())
        self._conf = conf
        self.config = root / f".asv-gate-{os.getpid()}.conf.json"
        self.batches = 0

    def results_dir(self, batch: int) -> Path:
        return self.dir / f"batch{batch}"

    def new_batch(self) -> tuple[Path, Path]:
        """(configuration, results folder) for the next ``asv run``."""
        self.batches += 1
        results = self.results_dir(self.batches)
        self.config.write_text(json.dumps({**self._conf, "results_dir": str(results)}, indent=1))
        return self.config, results

    def close(self) -> None:
        self.config.unlink(missing_ok=True)

    def discard(self) -> None:
        self.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def stop(proc: subprocess.Popen, grace_s: float = STOP_GRACE_S) -> None:
    """Stop asv and every process under it, within seconds; further signals wait until it is done.

    asv runs each benchmark (and each pip) in a process group of its own and stops it on
    SIGINT; whatever is still alive after ``grace_s`` (asv, a Dask worker, a JVM) is killed, found
    from the process tree as it was when the stop began.
    """
    with deferred():
        tree = processes.descendants(proc.pid)
        try:
            os.killpg(proc.pid, signal.SIGINT)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            pass
        tree += processes.descendants(proc.pid)
        processes.end(tree, grace_s, terminate=True, kill_wait_s=grace_s)
        processes.end_process_group(proc)
        proc.wait()


def run_streaming(cmd: list[str], cwd: Path) -> int:
    """Run ``cmd`` in a session of its own, echoing its output as it comes; return its exit code.

    Interrupted (SIGINT, SIGTERM), it stops ``cmd`` and everything it started before re-raising.
    """
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(
        cmd,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        stdin=subprocess.DEVNULL,
        env=env,
        start_new_session=True,  # a Ctrl-C at the terminal reaches the gate, which stops asv in order
    )
    try:
        for line in proc.stdout:
            click.echo(line, nl=False)
        return proc.wait()
    except BaseException:
        stop(proc)
        raise
    finally:
        proc.stdout.close()


def run_rounds(workspace: Workspace, commits: list[str], bench: str, rounds: int | None, extra: list[str]) -> Path:
    """``asv run`` of ``commits`` (base first) in interleaved rounds; the results folder it wrote.

    ``rounds``: for every selected benchmark (``-a rounds=N``); None: as each benchmark declares.
    """
    config, results = workspace.new_batch()
    hashes = workspace.dir / f"batch{workspace.batches}.hashes"
    hashes.write_text("\n".join(commits) + "\n")
    cmd = asv_command(
        "run",
        "--config",
        str(config),
        "--interleave-rounds",
        "--record-samples",
        *(["-a", f"rounds={rounds}"] if rounds else []),
        "--bench",
        bench,
        *extra,
        f"HASHFILE:{hashes}",
    )
    run_streaming(cmd, workspace.root)
    return results


def measured(results_dir: Path, commit: str, bench: str) -> dict:
    """What asv holds for ``commit`` in ``results_dir``: {full benchmark name: {"value", "samples"}}.

    Only the benchmarks that ``bench`` selects, as asv selects them (a regex searched in the full
    name). ``results_dir`` is one gate batch's: one machine in it.
    """
    from asv import results

    found = {}
    machines = [p.name for p in results_dir.iterdir() if p.is_dir()] if results_dir.is_dir() else []
    for machine in machines:
        try:
            loaded = list(results.iter_results_for_machine_and_hash(str(results_dir), machine, commit))
        except Exception:  # asv raises when it has no result for that commit (e.g. it did not build)
            continue
        for result in loaded:
            for key in result.get_all_result_keys():
                params = result.get_result_params(key)
                values = result.get_result_value(key, params)
                samples = result.get_result_samples(key, params)
                combos = list(itertools.product(*params)) if params else [()]
                for i, combo in enumerate(combos):
                    name = f"{key}({', '.join(combo)})" if combo else key
                    if not re.search(bench, name):  # asv matches a parameterised one by its full name
                        continue
                    found[name] = {"value": values[i], "samples": samples[i] if samples else None}
    return found
