"""One proof of ``nncompare gate`` on real builds: a clone, a throwaway commit on top, the default gate.

    python tools/gate_trial.py --name E2 --data-dir /path/to/datasets --burn 40 40
    python tools/gate_trial.py --name R1 --data-dir /path/to/datasets \\
        --change "slow_down(clone, 'dask', 'wait', 0.20)" --change "slow_down_workers(clone, 'cpu', 0.20)"

The clone is made from this checkout's HEAD under ``--workdir``; each ``--change`` is a call into
``tests/slowdowns.py`` (none: an unchanged commit, a comment added) and the commit under test
holds them all. ``--burn ON OFF`` runs two CPU-spinning processes for ON seconds, none for OFF
seconds, over and over, beside the gate: the load that comes and goes. Every trial's clone uses
one asv environment folder (``--asv-env``, by default ``WORKDIR/asv-env``), so only the first
trial creates it and later ones time the gate with both commits' dependencies in place. The
gate's output goes to ``NAME.log`` in the work directory; one JSON line with the exit code, the
verdict lines, the time taken and the load averages seen goes to stdout and to ``NAME.json``; the
gate's own record (every paired sample, ``--record``), with the trial added under ``"trial"``
(which engines the commit slowed, and by how much), goes to ``NAME.gate.json``, and to
``--keep DIR`` (docs/data/gate/) for ``tools/gate_calibrate.py``. Used for the hand-run rows of
docs/evidence.md; exits with the gate's own exit code.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GIT_ID = ["-c", "user.name=nncompare trial", "-c", "user.email=trial@nncompare.invalid"]
SPIN = "while True: pass"


def git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", *GIT_ID, *args], cwd=cwd, check=True, capture_output=True, text=True)


def make_clone(workdir: Path, name: str, changes: list[str]) -> Path:
    """Clone HEAD and commit the changes (each a ``tests/slowdowns.py`` call) on top."""
    clone = workdir / name
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True)
    sys.path.insert(0, str(ROOT / "tests"))
    import slowdowns

    for change in changes:
        eval(change, vars(slowdowns), {"clone": clone})  # noqa: S307 - the operator's own command line
    if not changes:  # an unchanged commit: the code is the same, the commit is not
        readme = clone / "README.md"
        readme.write_text(readme.read_text() + "\n<!-- unchanged: a gate trial -->\n")
    git(clone, "commit", "--quiet", "-am", f"throwaway: {'; '.join(changes) or 'unchanged'}")
    return clone


#: The throwaway changes that slow a steady epoch by a known fraction, and the engines they slow.
SLOW_ONE = re.compile(r"slow_down\(clone, '(\w+)', '(?:cpu|wait)', ([0-9.]+)\)")
SLOW_WORKERS = re.compile(r"slow_down_workers\(clone, '(?:cpu|wait)', ([0-9.]+)\)")


def slowed(changes: list[str]) -> dict[str, float]:
    """The fraction each engine's rounds were slowed by (missing: unchanged), from the ``--change`` calls."""
    from nncompare.engines.registry import engine_names

    found: dict[str, float] = {}
    for change in changes:
        if one := SLOW_ONE.fullmatch(change):
            found[one[1]] = found.get(one[1], 0.0) + float(one[2])
        elif every := SLOW_WORKERS.fullmatch(change):
            for engine in engine_names():
                found[engine] = found.get(engine, 0.0) + float(every[1])
    return found


def sample_load(loads: list[float], done: threading.Event) -> None:
    """The 1-minute load average every 30 s until ``done``."""
    while True:
        loads.append(os.getloadavg()[0])
        if done.wait(30):
            return


class Burner:
    """Two spinning processes for ``on`` seconds, none for ``off`` seconds, until stopped."""

    def __init__(self, on: float, off: float):
        self.on, self.off, self._stop = on, off, threading.Event()
        self._thread = threading.Thread(target=self._cycle, daemon=True)

    def _cycle(self) -> None:
        while not self._stop.is_set():
            spinners = [subprocess.Popen([sys.executable, "-c", SPIN]) for _ in range(2)]
            self._stop.wait(self.on)
            for proc in spinners:
                proc.kill()
                proc.wait()
            self._stop.wait(self.off)

    def __enter__(self) -> Burner:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--name", required=True, help="The trial's name (clone directory, log and JSON file).")
    parser.add_argument("--data-dir", required=True, help="Where Fashion-MNIST is (NNCOMPARE_DATA_DIR for the gate).")
    parser.add_argument(
        "--change",
        action="append",
        default=[],
        help="A tests/slowdowns.py call, e.g. "
        "\"slow_down(clone, 'spark', 'cpu', 0.20)\"; repeatable; none: an unchanged commit.",
    )
    parser.add_argument("--burn", nargs=2, type=float, metavar=("ON", "OFF"), help="CPU burner beside the gate.")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/gate-trials"))
    parser.add_argument("--gate-arg", action="append", default=[], help="Passed on to nncompare gate (repeatable).")
    parser.add_argument("--asv-env", type=Path, help="asv's environment folder, shared by the trials' clones.")
    parser.add_argument("--keep", type=Path, help="Also copy the gate's record here (e.g. docs/data/gate).")
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    clone = make_clone(args.workdir, args.name, args.change)
    shared_env = (args.asv_env or args.workdir / "asv-env").resolve()
    shared_env.mkdir(parents=True, exist_ok=True)
    (clone / ".asv").mkdir(exist_ok=True)
    (clone / ".asv" / "env").symlink_to(shared_env, target_is_directory=True)
    record_path = args.workdir / f"{args.name}.gate.json"
    record_path.unlink(missing_ok=True)
    env = dict(os.environ, NNCOMPARE_DATA_DIR=str(Path(args.data_dir).resolve()), NNCOMPARE_ASV_DATASET="fashion-mnist")
    log_path = args.workdir / f"{args.name}.log"
    loads: list[float] = []
    start = time.monotonic()
    burner = Burner(*args.burn) if args.burn else None
    with open(log_path, "w") as log:
        if burner:
            burner.__enter__()
        try:
            proc = subprocess.Popen(
                [
                    sys.executable,
                    "-c",
                    "from nncompare.cli import main; main()",
                    "gate",
                    "--base",
                    "HEAD~1",
                    "--record",
                    str(record_path),
                    *args.gate_arg,
                ],
                cwd=clone,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                text=True,
            )
            sampling = threading.Event()
            sampler = threading.Thread(target=sample_load, args=(loads, sampling), daemon=True)
            sampler.start()
            for line in proc.stdout:  # each line with the seconds since the gate started
                log.write(f"{time.monotonic() - start:7.1f} {line}")
                log.flush()
            proc.wait()
            sampling.set()
            sampler.join()
        finally:
            if burner:
                burner.__exit__()
    took = time.monotonic() - start
    lines = [line[8:] for line in log_path.read_text().splitlines()]
    verdicts = [line.strip() for line in lines if line.startswith(("ok ", "FAIL ", "?? ", "nncompare gate:"))]
    outcome = {
        "name": args.name,
        "changes": args.change,
        "burn": args.burn,
        "exit": proc.returncode,
        "took_s": round(took),
        "load_min": min(loads, default=None),
        "load_max": max(loads, default=None),
        "verdicts": verdicts,
    }
    (args.workdir / f"{args.name}.json").write_text(json.dumps(outcome, indent=1) + "\n")
    if record_path.is_file():
        record = json.loads(record_path.read_text())
        record["trial"] = {**outcome, "slowed": slowed(args.change)}
        record_path.write_text(json.dumps(record, indent=1) + "\n")
        if args.keep:
            args.keep.mkdir(parents=True, exist_ok=True)
            shutil.copy(record_path, args.keep / f"{args.name}.json")
    print(json.dumps(outcome))
    return proc.returncode


if __name__ == "__main__":
    sys.exit(main())
