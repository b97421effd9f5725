"""One warning, not thousands: a condition that repeats every round is reported once (issue 26, item 8)."""

from __future__ import annotations

import logging
import socket
import subprocess
import sys
import time
import warnings

import numpy as np
import pytest

from nncompare.engines.spark.service import WeightService
from nncompare.job import ModelSpec
from nncompare.rounds import RoundPosition
from nncompare.trainer import ShardTrainer

CLI = [sys.executable, "-c", "from nncompare.cli import main; main()"]


def test_a_batch_larger_than_the_shard_trains_without_scikit_learns_warning(digits):
    trainer = ShardTrainer(0, digits.x_train[:50], digits.y_train[:50], digits.classes, ModelSpec(batch_size=200))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for number in range(1, 4):
            trainer.train_round(None, RoundPosition.of(number, 1))


def test_a_clipped_batch_trains_as_scikit_learn_clips_it(digits):
    clipped = ShardTrainer(0, digits.x_train[:50], digits.y_train[:50], digits.classes, ModelSpec(batch_size=200))
    exact = ShardTrainer(0, digits.x_train[:50], digits.y_train[:50], digits.classes, ModelSpec(batch_size=50))
    updates = [t.train_round(None, RoundPosition.of(1, 1)).weights for t in (clipped, exact)]
    np.testing.assert_array_equal(*updates)


@pytest.mark.parametrize("engine", ["local", "dask"])
def test_a_batch_larger_than_a_shard_is_one_line_per_run(engine):
    result = subprocess.run(
        [*CLI, "run", "--engine", engine, "--dataset", "digits", "--workers", "4", "--batch-size", "1000"]
        + ["--epochs", "20", "--no-convergence-stop", "--hidden", "8", "-q"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert [line for line in result.stderr.splitlines() if "batch" in line.lower()] == [
        "--batch-size 1000 is more than the 359 rows a shard trains on in a round; scikit-learn clips the batch "
        "to those rows in every round (fewer workers or a smaller --batch-size avoid it)"
    ], result.stderr


def test_a_connection_flood_on_the_weight_service_is_one_warning(caplog):
    service = WeightService("127.0.0.1", {0: None}, hello_timeout=2.0)
    try:
        with caplog.at_level(logging.DEBUG, logger="nncompare.engines.spark.service"):
            for _ in range(100):
                with socket.create_connection(service.address) as sock:
                    sock.sendall(b"\x00" * 64)
            deadline = time.monotonic() + 30
            while service.stats.rejected < 100 and time.monotonic() < deadline:
                time.sleep(0.05)
    finally:
        service.close()
    assert [r.levelname for r in caplog.records if r.levelno >= logging.WARNING] == ["WARNING"]
