"""One outcome per run: a signal before the boundary (``interrupts.finishing``) is an interrupted run, one after it
a finished one, whatever the moment (docs/reliability.md, "One outcome per run").

The moments near the boundary are hit exactly by a wrapper that the test puts around one function of the
real command (its own process sends it the signal from inside that function); nothing in nncompare reads it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from nncompare.interrupts import Interrupted, deferred, finishing, handled, raise_if_interrupted

RUN = ["run", "--dataset", "digits", "--epochs", "3", "--hidden", "16", "-q"]


def test_a_signal_recorded_before_the_boundary_makes_the_run_interrupted():
    with handled(), pytest.raises(Interrupted):
        with deferred():  # e.g. the engine's close at the end of a run
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.1)
        with finishing():
            pytest.fail("the boundary let an interrupted run write its record")


def test_a_signal_after_the_boundary_is_honoured_as_success():
    with handled():
        with finishing():
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.1)
        raise_if_interrupted()  # no exception: the run finished


def command_with(tmp_path, fault: str, *args: str) -> subprocess.CompletedProcess:
    """The ``nncompare`` command with ``fault`` (Python run first in its process) around one of its functions."""
    script = tmp_path / "with_fault.py"
    main = '\nif __name__ == "__main__":\n    from nncompare.__main__ import main\n\n    main()\n'
    script.write_text(textwrap.dedent(fault) + main)
    return subprocess.run([sys.executable, str(script), *args], capture_output=True, text=True, timeout=120)


SIGNAL_SELF = """
    import os, signal, time

    def signalled(original):
        def wrapper(*args, **kwargs):
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.3)  # the handler has run by now
            return original(*args, **kwargs)
        return wrapper
"""


@pytest.mark.parametrize(
    "moment",
    [
        "import nncompare.outfile as f; f.append_jsonl = signalled(f.append_jsonl)",  # the record's write
        "import nncompare.cli.run as r; r.summary = signalled(r.summary)",  # the summary
    ],
    ids=["record", "summary"],
)
def test_sigterm_once_the_run_is_decided_is_a_finished_run(tmp_path, moment):
    out = tmp_path / "out.jsonl"
    result = command_with(tmp_path, SIGNAL_SELF + "\n    " + moment + "\n", *RUN, "--out", str(out))
    assert (result.returncode, len(out.read_text().splitlines()), "test accuracy" in result.stdout, result.stderr) == (
        0,
        1,
        True,
        "",
    )


def test_sigterm_while_the_engine_closes_at_the_end_is_an_interrupted_run(tmp_path):
    out = tmp_path / "out.jsonl"
    fault = SIGNAL_SELF + "\n    import nncompare.training as t; t.TrainingRun.close = signalled(t.TrainingRun.close)\n"
    result = command_with(tmp_path, fault, *RUN, "--out", str(out))
    assert (result.returncode, out.exists(), result.stdout, result.stderr.splitlines()) == (
        143,
        False,
        "",
        ["nncompare: error: interrupted by SIGTERM; stopped, and nothing unfinished was recorded"],
    )


def test_sigterm_while_the_interpreter_exits_after_a_finished_run_keeps_exit_0(tmp_path):
    out = tmp_path / "out.jsonl"
    fault = """
        import atexit, os, signal, time
        atexit.register(lambda: (os.kill(os.getpid(), signal.SIGTERM), time.sleep(0.3)))
    """
    result = command_with(tmp_path, fault, *RUN, "--out", str(out))
    assert (result.returncode, len(out.read_text().splitlines()), result.stderr) == (0, 1, "")
