"""The shared training loop on the local engine, with real data."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.neural_network import MLPClassifier

from nncompare.engines.local.engine import LocalEngine
from nncompare.job import JobSpec, ModelSpec, Topology
from nncompare.record import PHASES, RECORD_KEYS
from nncompare.training import ConvergenceMonitor, run_job


def test_record_has_the_stable_keys_and_phases_add_up(small_spec, digits):
    record = run_job(small_spec, dataset=digits)
    assert set(RECORD_KEYS) <= set(record)
    assert set(record["phases_s"]) == set(PHASES)
    assert sum(record["phases_s"].values()) == pytest.approx(record["wall_s"] - record["startup_s"], rel=1e-6)
    assert record["epochs_run"] == len(record["epoch_s"]) == 3
    assert 0.5 < record["test_accuracy"] <= 1.0
    assert record["peak_rss_bytes"]["driver"] > 0
    assert record["peak_rss_bytes"]["workers"] == 0  # the local engine has no worker processes


def test_one_worker_one_round_per_epoch_equals_plain_partial_fit(digits):
    """With one shard the engine must compute exactly what MLPClassifier.partial_fit computes."""
    spec = JobSpec(
        dataset="digits",
        epochs=3,
        partition="contiguous",
        model=ModelSpec(hidden_layer_sizes=(16,), batch_size=50),
        convergence_stop=False,
    )
    record = run_job(spec, dataset=digits)

    plain = MLPClassifier(hidden_layer_sizes=(16,), batch_size=50, random_state=np.random.RandomState(0))
    for _ in range(3):
        plain.partial_fit(digits.x_train, digits.y_train, classes=digits.classes)
    assert record["test_accuracy"] == pytest.approx(plain.score(digits.x_test, digits.y_test), abs=1e-12)
    assert record["loss_curve"][-1] == pytest.approx(plain.loss_, rel=1e-5)


def test_sync_every_runs_several_rounds_per_epoch(small_spec, digits):
    spec = small_spec.with_(sync_every=2, epochs=2)
    record = run_job(spec, dataset=digits)
    # 1437 samples in 2 shards of ~719, 2 batches of 64 per round -> 6 rounds per epoch
    assert record["rounds_per_epoch"] == 6
    assert len(record["rounds"]) == 12
    assert record["test_accuracy"] > 0.5


def test_convergence_stop_follows_sklearn_rule():
    monitor = ConvergenceMonitor(tol=0.1, n_iter_no_change=2)
    assert [monitor.update(x) for x in (1.0, 0.95, 0.94, 0.93)] == [False, False, False, True]
    monitor = ConvergenceMonitor(tol=0.1, n_iter_no_change=2)
    assert not any(monitor.update(x) for x in (1.0, 0.8, 0.6, 0.4))


def test_convergence_stop_ends_a_long_run_early(digits):
    spec = JobSpec(
        dataset="digits", epochs=500, model=ModelSpec(hidden_layer_sizes=(32,)), tol=1e-2, n_iter_no_change=2
    )
    record = run_job(spec, dataset=digits)
    assert record["stopped_early"] and record["epochs_run"] < 500


def test_local_engine_refuses_a_cluster(small_spec):
    from nncompare.errors import UsageError

    with pytest.raises(UsageError):
        LocalEngine(small_spec, cluster="tcp://127.0.0.1:1")


@pytest.mark.slow
def test_fashion_mnist_five_epochs_reaches_084(fashion):
    spec = JobSpec(dataset="fashion-mnist", epochs=5, topology=Topology(workers=2, cores_per_worker=1))
    record = run_job(spec, dataset=fashion)
    assert record["test_accuracy"] >= 0.84
    assert sum(record["phases_s"].values()) == pytest.approx(record["wall_s"] - record["startup_s"], rel=0.05)
