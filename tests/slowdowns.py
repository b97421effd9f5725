"""Throwaway regressions for proving the gate: each one slows one engine's rounds by a fraction.

``slow_down(clone, engine, kind, fraction)`` appends to the module that defines the engine's
class a wrapper of its ``run_round`` that, after each round, spends ``fraction`` of the round's
wall time more: ``cpu`` spins the driver's thread (for the local engine that is also the
worker's), ``wait`` sleeps. Used by tests/test_gate.py and for the hand-run proofs in
docs/evidence.md; never imported by the project.
"""

from __future__ import annotations

from pathlib import Path

from nncompare.engines.registry import plugin


def engine_target(clone: Path, engine: str) -> tuple[Path, str]:
    """The module file in ``clone`` that defines ``engine``'s class, and the class's name (from its plugin)."""
    module, _, cls = plugin(engine).engine_class.partition(":")
    path = clone / "src" / Path(*module.split(".")).with_suffix(".py")
    assert f"class {cls}(" in path.read_text(), f"{path} does not define {cls}; update tests/slowdowns.py"
    return path, cls


#: How a throwaway regression spends its ``extra`` seconds: spinning on the thread (cpu) or asleep (wait).
SPEND = """        if {spin}:
            until = _time.thread_time() + extra
            while _time.thread_time() < until:
                pass
        else:
            _time.sleep(extra)
"""

WRAPPER = """

def _throwaway_{kind}(run_round):  # throwaway regression: {engine} rounds {percent}% slower ({kind})
    import time as _time

    def slower(self, weights, position):
        from nncompare.clocks import Reading, Span, load_corrected_s, workers_waits_s

        start = Reading.now(process=True)
        result = run_round(self, weights, position)
        # a fraction of what the round took on a quiet machine, whatever the load now
        extra = {fraction} * load_corrected_s(Span.between(start, Reading.now(process=True)),
                                              workers_waits_s(result.updates), self.concurrent)
{spend}        return result

    return slower


{cls}.run_round = _throwaway_{kind}({cls}.run_round)
"""


def slow_down(clone: Path, engine: str, kind: str, fraction: float = 0.20) -> Path:
    assert kind in ("cpu", "wait")
    path, cls = engine_target(clone, engine)
    path.write_text(
        path.read_text()
        + WRAPPER.format(
            kind=kind,
            engine=engine,
            percent=round(100 * fraction),
            fraction=fraction,
            cls=cls,
            spend=SPEND.format(spin=kind == "cpu"),
        )
    )
    return path


def break_accuracy(clone: Path) -> Path:
    """Halve the averaged weights every round (an accuracy collapse, the same on every engine)."""
    path = clone / "src" / "nncompare" / "averaging.py"
    source = path.read_text()
    assert "def average_weights(" in source, "averaging.py changed; update tests/slowdowns.py"
    path.write_text(
        source
        + """

_throwaway_average = average_weights


def average_weights(*args, **kwargs):  # throwaway regression: the average halved
    return _throwaway_average(*args, **kwargs) * 0.5
"""
    )
    return path


WORKER_WRAPPER = """

def _throwaway_worker_{kind}(train_round):  # throwaway regression: every worker's rounds {percent}% slower ({kind})
    import time as _time

    def slower(self, weights, position=None):
        update = train_round(self, weights, position)
        # a fraction of the round's partial_fit, load-corrected, after it: on the worker's own thread
        extra = {fraction} * max(0.0, update.compute_s - update.compute_runqueue_s)
{spend}        return update

    return slower


ShardTrainer.train_round = _throwaway_worker_{kind}(ShardTrainer.train_round)
"""


def slow_down_workers(clone: Path, kind: str, fraction: float = 0.20) -> Path:
    """Every worker (of every engine: they share ``ShardTrainer``) spends ``fraction`` more per round."""
    assert kind in ("cpu", "wait")
    path = clone / "src" / "nncompare" / "trainer.py"
    source = path.read_text()
    assert "class ShardTrainer" in source and "def train_round(" in source, "trainer.py changed; update slowdowns.py"
    path.write_text(
        source
        + WORKER_WRAPPER.format(
            kind=kind, percent=round(100 * fraction), fraction=fraction, spend=SPEND.format(spin=kind == "cpu")
        )
    )
    return path


DASK_TRANSFER = """

def _throwaway_slow_writes(write):  # throwaway regression: every message of weights waits {seconds} s to go out
    import asyncio as _asyncio

    async def slower(self, msg, *args, **kwargs):
        if _weights_in(msg):
            await _asyncio.sleep({seconds})
        return await write(self, msg, *args, **kwargs)

    return slower


def _weights_in(msg, depth=0):
    import numpy as _np

    if isinstance(msg, _np.ndarray):
        return msg.nbytes > 100_000
    if depth < 6 and isinstance(msg, dict):
        return any(_weights_in(v, depth + 1) for v in msg.values())
    if depth < 6 and isinstance(msg, (list, tuple)):
        return any(_weights_in(v, depth + 1) for v in msg)
    if depth < 6 and hasattr(msg, "__dataclass_fields__"):  # a ShardUpdate
        return any(_weights_in(getattr(msg, name), depth + 1) for name in msg.__dataclass_fields__)
    return bool(depth < 6 and hasattr(msg, "data") and _weights_in(msg.data, depth + 1))


import distributed.comm.tcp as _tcp  # noqa: E402

_tcp.TCP.write = _throwaway_slow_writes(_tcp.TCP.write)
"""

SPARK_TRANSFER = """

_throwaway_send_frame = send_frame


def send_frame(sock, meta, *buffers):  # throwaway regression: every frame of weights waits {seconds} s to go out
    import time as _time

    if sum(getattr(b, "nbytes", 0) for b in buffers) > 100_000:
        _time.sleep({seconds})
    return _throwaway_send_frame(sock, meta, *buffers)
"""


#: Engine-specific: the module beside each engine's class that carries its weights, and the delay for it.
TRANSFERS = {"dask": ("worker.py", DASK_TRANSFER), "spark": ("wire.py", SPARK_TRANSFER)}


def slow_transfer(clone: Path, engine: str, seconds: float) -> Path:
    """Each message that carries weights (driver to worker and back) waits ``seconds`` in the transport.

    Dask: in ``TCP.write`` of every process that imports the engine's worker module (the
    workers' preload, and the driver), on the event loop, as a slow socket would. Spark: in the
    wire module's ``send_frame``, on the driver's sending threads and in the tasks.
    """
    if engine not in TRANSFERS:
        raise AssertionError(f"no transfer slowdown for the {engine} engine (it may move no weights)")
    module, text = TRANSFERS[engine]
    path = engine_target(clone, engine)[0].with_name(module)
    source = path.read_text()
    assert "def send_frame(" in source or engine == "dask", "wire.py changed; update slowdowns.py"
    path.write_text(source + text.format(seconds=seconds))
    return path


GIL_HOG = """

def _throwaway_gil_hog(run_round):  # throwaway regression: a busy pure-Python thread in the driver
    import threading as _threading

    def busy():
        while True:
            sum(range(1000))

    def slower(self, weights, position):
        if not getattr(self, "_hog", None):
            self._hog = _threading.Thread(target=busy, daemon=True, name="throwaway-hog")
            self._hog.start()
        return run_round(self, weights, position)

    return slower


{cls}.run_round = _throwaway_gil_hog({cls}.run_round)
"""


def hog_the_gil(clone: Path, engine: str) -> Path:
    """A driver thread that loops in pure Python from the first round on: the GIL as a contended lock."""
    path, cls = engine_target(clone, engine)
    path.write_text(path.read_text() + GIL_HOG.format(cls=cls))
    return path


BLAS_LIMIT = "with blas_threads(self.cores):"
ONE_CORE = """

def _throwaway_one_core(place):  # throwaway regression: the engine hands its trainers one core
    import dataclasses as _dataclasses

    def fewer(self, shards, classes):
        spec = self.spec
        self.spec = spec.with_(topology=_dataclasses.replace(spec.topology, cores_per_worker=1))
        try:
            return place(self, shards, classes)
        finally:
            self.spec = spec

    return fewer


{cls}.place = _throwaway_one_core({cls}.place)
"""


def lose_parallelism(clone: Path, engine: str | None = None) -> Path:
    """BLAS held to one thread whatever ``--cores`` asked for: lost parallelism.

    Without ``engine`` every trainer does it; with one, that engine hands its trainers one core.
    """
    if engine is not None:
        path, cls = engine_target(clone, engine)
        path.write_text(path.read_text() + ONE_CORE.format(cls=cls))
        return path
    path = clone / "src" / "nncompare" / "trainer.py"
    text = path.read_text()
    assert BLAS_LIMIT in text, f"{path.name} no longer says {BLAS_LIMIT!r}; update tests/slowdowns.py"
    path.write_text(
        text.replace(BLAS_LIMIT, "with blas_threads(1):", 1) + "\n# throwaway regression: BLAS held to one thread\n"
    )
    return path
