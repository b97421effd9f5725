"""The what-if model's exchange terms: log2 W through a tree, W through the driver, R rounds an epoch, any data size."""

from __future__ import annotations

import math

import numpy as np
import pytest

from nncompare.whatif import fit

P_SAMPLE, CALL_S = 10e-6, 2e-3  # seconds per sample and per partial_fit call the records are made with


def record(workers: int, samples: int, exchange: str, transfer, sync_every=None) -> dict:
    """A run on a cluster (every worker on cores of its own) whose rounds cost exactly what the model says."""
    rounds_per_epoch = 1 if sync_every is None else math.ceil(samples / workers / (sync_every * 200))
    per_shard = P_SAMPLE * samples / workers / rounds_per_epoch + CALL_S
    average = 1e-4 * (math.log2(workers) if exchange == "tree" else workers)
    rounds = [
        {
            "worker_compute_s": [per_shard] * workers,
            "compute_s": per_shard,
            "transfer_s": transfer(workers),
            "average_s": average,
            "wall_s": per_shard + transfer(workers) + average,
        }
        for _ in range(3 * rounds_per_epoch)
    ]
    phases = {
        "compute": sum(r["compute_s"] for r in rounds),
        "transfer": sum(r["transfer_s"] for r in rounds),
        "average": sum(r["average_s"] for r in rounds),
        "other": 3 * 1e-3,
    }
    return {
        "engine": "dask",
        "dataset": "fashion-mnist",
        "workers": workers,
        "cores_per_worker": 1,
        "machine": {"cores": 2},
        "cluster": "tcp://scheduler:8786",
        "train_samples": samples,
        "epochs_run": 3,
        "rounds_per_epoch": rounds_per_epoch,
        "rounds": rounds,
        "phases_s": phases,
        "spec": {"model": {"hidden_layer_sizes": [100], "batch_size": 200}, "sync_every": sync_every},
        "engine_info": {"exchange": exchange},
    }


@pytest.mark.parametrize("exchange", ["tree", "driver"])
def test_the_exchange_grows_as_the_records_say_and_the_fastest_w_follows_the_data(exchange):
    growth = (lambda w: math.log2(w)) if exchange == "tree" else (lambda w: w)
    transfer = lambda w: 1e-3 + 3e-3 * growth(w)  # noqa: E731
    records = [record(w, n, exchange, transfer) for w in (1, 2, 4, 8, 16) for n in (8000, 64000)]
    records += [record(8, 64000, exchange, transfer, sync_every=2)]
    (model,) = fit(records)
    assert model.exchange == exchange
    assert model.coef["transfer"] == pytest.approx((1e-3, 3e-3), rel=1e-3, abs=1e-6)
    assert model.per_sample_s == pytest.approx(P_SAMPLE, rel=1e-3)
    assert model.max_relative_error() < 0.05  # the sync-every run too: R rounds of exchange an epoch
    assert float(model.rounds(8, 64000, sync_every=2)) == 20
    assert model.term("transfer", 8, 64000, sync_every=2) == pytest.approx(20 * transfer(8), rel=1e-3)
    fastest = [model.best_workers(4096, samples=n) for n in (60_000, 480_000, 4_000_000)]
    assert fastest == sorted(fastest) and fastest[0] < fastest[-1]  # more data, more workers pay off
    assert model.second_worker_pays_from() is not None


def test_through_a_tree_more_workers_pay_off_than_through_the_driver():
    tree = fit([record(w, 64000, "tree", lambda w: 3e-3 * math.log2(w) + 1e-3) for w in (1, 2, 4, 8)])[0]
    star = fit([record(w, 64000, "driver", lambda w: 3e-3 * w + 1e-3) for w in (1, 2, 4, 8)])[0]
    assert tree.best_workers(4096) > star.best_workers(4096)
    assert np.all(np.diff([float(tree.term("transfer", w)) for w in (8, 64, 1024)]) > 0)
