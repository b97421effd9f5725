"""Start-ups measured from the same point: a bare framework, and an engine's whole job, in fresh interpreters.

Each runs in its own interpreter with the framework already imported (an engine's module, a
bare start-up's module), so its clock starts where an engine's ``start()`` does.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

#: What the child interpreters print their result after, on their last line.
RESULT_MARK = "NNCOMPARE-FLOOR "


def _bare_child(engine: str, workers: int, training_stack: bool) -> dict:
    from nncompare.engines.plugin import load_object
    from nncompare.engines.registry import plugin

    start = load_object(plugin(engine).bare_startup, f"the bare start-up of engine {engine!r}")
    return {"startup_s": start(workers, training_stack)}


def _engine_child(spec_json: str, data_dir) -> dict:
    from nncompare.job import JobSpec
    from nncompare.training import run_job

    return run_job(JobSpec.from_dict(json.loads(spec_json)), data_dir=data_dir)


def _in_child(call: str, timeout: float, prelude: str = "pass") -> dict:
    """Run ``prelude``, then ``call`` (an expression on this module), in a fresh interpreter; its JSON result."""
    code = (
        f"import json, nncompare.floor.startup as f; {prelude}; r = f.{call}; "
        f"print(); print({RESULT_MARK!r} + json.dumps(r), flush=True)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith(RESULT_MARK)]
    if done.returncode != 0 or not lines:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        raise RuntimeError(f"{call} failed (exit {done.returncode}): {' | '.join(tail)}")
    return json.loads(lines[-1][len(RESULT_MARK) :])


def bare_startup(engine: str, workers: int, training_stack: bool = False, timeout: float = 600) -> dict:
    """The engine's bare framework with ``workers`` one-core workers, up and through a first task.

    ``training_stack``: its workers also import what a worker must have to train (numpy,
    scikit-learn), as the engine's own do at start-up.
    """
    from nncompare.engines.registry import plugin

    target = plugin(engine).bare_startup
    if target is None:
        raise ValueError(f"no bare start-up for engine {engine!r}: it builds on no framework")
    # the bare start-up's module (and with it the framework) is imported before the clock starts
    prelude = f"import {target.partition(':')[0]}"
    return _in_child(f"_bare_child({engine!r}, {int(workers)}, {bool(training_stack)})", timeout, prelude)


def engine_run(spec, data_dir=None, timeout: float = 900) -> dict:
    """The result record of ``spec`` run in a fresh interpreter (its engine module imported before start)."""
    data = "None" if data_dir is None else repr(os.fspath(data_dir))
    prelude = f"from nncompare.engines import engine_class; engine_class({spec.engine!r})"
    return _in_child(f"_engine_child({json.dumps(spec.to_dict())!r}, {data})", timeout, prelude)
