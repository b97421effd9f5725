"""Throwaway regressions for proving the gate: each one slows one engine's rounds by a fraction.

``slow_down(clone, engine, kind, fraction)`` appends to the module that defines the engine's
class a wrapper of its ``run_round`` that, after each round, spends ``fraction`` of the round's
wall time more: ``cpu`` spins the driver's thread (for the local engine that is also the
worker's), ``wait`` sleeps. Used by tests/test_gate.py and for the hand-run proofs in
docs/benchmarks.md; never imported by the project.
"""

from __future__ import annotations

from pathlib import Path

CLASSES = {"local": "LocalEngine", "dask": "DaskEngine", "spark": "SparkEngine"}

WRAPPER = """

def _throwaway_{kind}(run_round):  # throwaway regression: {engine} rounds {percent}% slower ({kind})
    import time as _time

    def slower(self, weights, position):
        from nncompare.clocks import Reading, Span, process_runqueue_s
        from nncompare.training import load_corrected_s

        start, waits = Reading.now(), process_runqueue_s()
        result = run_round(self, weights, position)
        # a fraction of what the round took on a quiet machine, whatever the load now
        extra = {fraction} * load_corrected_s(Span.between(start, Reading.now()), process_runqueue_s() - waits,
                                              result.updates, self.concurrent)
        if {spin}:
            until = _time.thread_time() + extra
            while _time.thread_time() < until:
                pass
        else:
            _time.sleep(extra)
        return result

    return slower


{cls}.run_round = _throwaway_{kind}({cls}.run_round)
"""


def engine_module(clone: Path, engine: str) -> Path:
    cls = CLASSES[engine]
    for path in sorted((clone / "src" / "nncompare" / "engines").rglob("*.py")):
        if f"class {cls}(" in path.read_text():
            return path
    raise AssertionError(f"no module defines {cls}; update tests/slowdowns.py")


def slow_down(clone: Path, engine: str, kind: str, fraction: float = 0.20) -> Path:
    assert kind in ("cpu", "wait")
    path = engine_module(clone, engine)
    path.write_text(path.read_text() + WRAPPER.format(kind=kind, engine=engine, percent=round(100 * fraction),
                                                      fraction=fraction, spin=kind == "cpu", cls=CLASSES[engine]))
    return path


def break_accuracy(clone: Path) -> Path:
    """Halve the averaged weights every round (an accuracy collapse, the same on every engine)."""
    path = clone / "src" / "nncompare" / "averaging.py"
    source = path.read_text()
    assert "def average_weights(" in source, "averaging.py changed; update tests/slowdowns.py"
    path.write_text(source + """

_throwaway_average = average_weights


def average_weights(*args, **kwargs):  # throwaway regression: the average halved
    return _throwaway_average(*args, **kwargs) * 0.5
""")
    return path
