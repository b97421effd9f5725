"""Shared fixtures: the real dataset, obtained as a user would, and small real jobs."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from nncompare.data import CACHE_DIR_ENV, DATA_DIR_ENV, load_dataset, locate
from nncompare.engines.base import RoundResult
from nncompare.errors import NNCompareError
from nncompare.job import JobSpec, ModelSpec, Topology
from nncompare.rounds import RoundPosition

# Read once, before any test's monkeypatch changes them (test_data.py clears both per test).
DATA_DIR_AT_START = os.environ.get(DATA_DIR_ENV) or None
CACHE_DIR_AT_START = os.environ.get(CACHE_DIR_ENV) or None
HOW_TO_GET_FASHION = (
    "install Debian's package (sudo apt-get install dataset-fashion-mnist), "
    "or run: nncompare data fetch --dataset fashion-mnist, or set NNCOMPARE_DATA_DIR"
)


def pytest_configure(config):
    """A plain pytest run calls each micro-benchmark once, untimed (a quick correctness check);
    ``--benchmark-only`` or ``--benchmark-enable`` time them. Set here rather than in addopts,
    where ``--benchmark-disable`` made pytest-benchmark refuse ``--benchmark-only``."""
    if config.pluginmanager.hasplugin("benchmark") and not (
        config.getoption("benchmark_only") or config.getoption("benchmark_enable")
    ):
        config.option.benchmark_disable = True


def obtain_fashion_mnist() -> Path:
    """The folder of Fashion-MNIST's four IDX files, found the way ``nncompare run`` finds them.

    NNCOMPARE_DATA_DIR, the download cache, Debian's ``dataset-fashion-mnist``
    (``/usr/share/datasets/fashion-mnist``), else the verified download into the cache, as
    ``nncompare data fetch`` does. Tests that need real epochs never fall back to smaller
    data: where none of these works the test fails and says how to get the files.
    """
    with pytest.MonkeyPatch.context() as patch:
        if CACHE_DIR_AT_START:
            patch.setenv(CACHE_DIR_ENV, CACHE_DIR_AT_START)
        else:
            patch.delenv(CACHE_DIR_ENV, raising=False)
        try:
            paths = locate("fashion-mnist", data_dir=DATA_DIR_AT_START)
        except NNCompareError as exc:
            pytest.fail(
                f"Fashion-MNIST is not at hand and its download failed ({exc}): {HOW_TO_GET_FASHION}", pytrace=False
            )
    folders = {path.parent for path in paths.values()}
    assert len(folders) == 1, f"Fashion-MNIST's files are spread over {sorted(map(str, folders))}"
    return folders.pop()


@pytest.fixture(scope="session")
def fashion_dir() -> Path:
    """A folder holding Fashion-MNIST's four IDX files (see ``obtain_fashion_mnist``); pass it as
    ``--data-dir`` or NNCOMPARE_DATA_DIR to a child process."""
    return obtain_fashion_mnist()


@pytest.fixture(scope="session")
def fashion(fashion_dir):
    return load_dataset("fashion-mnist", data_dir=fashion_dir)


@pytest.fixture(scope="session")
def digits():
    return load_dataset("digits")


@pytest.fixture
def small_spec() -> JobSpec:
    """A real job small enough for unit tests: digits, 2 workers, a few epochs."""
    return JobSpec(
        dataset="digits",
        engine="local",
        epochs=3,
        model=ModelSpec(hidden_layer_sizes=(32,), batch_size=64, learning_rate_init=0.01),
        topology=Topology(workers=2, cores_per_worker=1),
    )


@contextlib.contextmanager
def loopback_server(handle, *, concurrent: bool = False):
    """A TCP server on 127.0.0.1 that runs ``handle(conn, stop)`` for each connection; yields its port.

    The fake peers of the fault tests (a stalled download, a service that is no Dask scheduler)
    differ only in what they say once connected. ``concurrent``: each connection in a thread of its
    own, for a client that connects more than once while a peer holds an earlier connection.
    """
    server = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve_one(conn):
        with conn:
            handle(conn, stop)

    def serve():
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            if concurrent:
                threading.Thread(target=serve_one, args=(conn,), daemon=True).start()
            else:
                serve_one(conn)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1]
    finally:
        stop.set()
        thread.join(5)
        server.close()


@dataclasses.dataclass
class DrivenRound:
    """One round driven by hand: its position, the engine's result, the averaged weights after it, its wall time."""

    position: RoundPosition
    result: RoundResult
    weights: np.ndarray
    wall_s: float


def _drive_rounds(
    engine, shards, classes, rounds: int, *, per_epoch: int = 1, placed=None, after=None
) -> list[DrivenRound]:
    """Place ``shards`` on the started ``engine`` and run ``rounds`` rounds as the training run would.

    Each round runs at its position (``RoundPosition.of(number, per_epoch)``) from the sample-weighted
    average of the round before (None first). ``placed()`` runs once the shards are placed,
    ``after(number)`` after each round.
    """
    engine.place(shards, classes)
    if placed is not None:
        placed()
    weights, out = None, []
    for number in range(1, rounds + 1):
        position = RoundPosition.of(number, per_epoch)
        start = time.perf_counter()
        result = engine.run_round(weights, position)
        wall_s = time.perf_counter() - start
        weights = result.averaged()
        out.append(DrivenRound(position, result, weights, wall_s))
        if after is not None:
            after(number)
    return out


@pytest.fixture
def drive_rounds():
    """Drive an engine's rounds by hand, the one way every engine test does it (see ``_drive_rounds``)."""
    return _drive_rounds
