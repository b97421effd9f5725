"""The worker side: a ShardTrainer trains at the position it is given, as the run's first or a replacement."""

from __future__ import annotations

import numpy as np

from nncompare.job import ModelSpec
from nncompare.rounds import RoundPosition
from nncompare.trainer import ShardTrainer

MODEL = ModelSpec(hidden_layer_sizes=(8,), batch_size=16)


def trainer(seed_rows: int = 90) -> ShardTrainer:
    rng = np.random.RandomState(0)
    x, y = rng.rand(seed_rows, 6).astype(np.float32), np.arange(seed_rows) % 3
    return ShardTrainer(0, x, y, np.arange(3), MODEL)


def test_the_position_decides_the_slice_and_the_end_of_the_epoch():
    t = trainer()
    updates = [t.train_round(None if n == 1 else t.flat.copy(), RoundPosition.of(n, 3)) for n in range(1, 7)]
    assert [u.n_samples for u in updates] == [30] * 6
    assert [u.epoch_end for u in updates] == [False, False, True] * 2
    assert all(np.isfinite(u.loss) for u in updates)


def test_one_round_per_epoch_is_the_whole_shard_and_always_ends_the_epoch():
    t = trainer()
    first = t.train_round(None, RoundPosition.of(1, 1))
    second = t.train_round(first.weights, RoundPosition.of(2, 1))
    assert (first.n_samples, second.n_samples) == (90, 90) and first.epoch_end and second.epoch_end


def test_a_replacement_joins_mid_epoch_and_ends_it_with_its_siblings():
    """A fresh trainer given round 5 of 3 per epoch (epoch 2, index 1) trains slices 1 and 2 of a
    permutation of its own, then starts epoch 3 at slice 0 like the trainer it replaces would."""
    sibling = trainer()
    weights = None
    for n in range(1, 5):
        weights = sibling.train_round(weights, RoundPosition.of(n, 3)).weights
    replacement = trainer()
    joined = [replacement.train_round(weights, RoundPosition.of(n, 3)) for n in (5, 6, 7)]
    assert [u.epoch_end for u in joined] == [False, True, False]
    assert [u.n_samples for u in joined] == [30, 30, 30]
    # it counted only what it trained this epoch: its epoch loss is over its two slices, not three
    assert joined[1].loss > 0 and np.isfinite(joined[1].loss)
