"""Growing the training set past the data set: deterministic deformed copies, labels copied, the test set untouched."""

from __future__ import annotations

import numpy as np
import pytest

from nncompare import augment
from nncompare.errors import UsageError
from nncompare.job import JobSpec, Topology
from nncompare.partition import make_shards
from nncompare.training import training_data


@pytest.fixture(scope="module")
def small(fashion):
    """The first 500 Fashion-MNIST images as a data set of their own (what grows is the images, not their count)."""
    import dataclasses

    n = 500
    return dataclasses.replace(
        fashion,
        x_train=fashion.x_train[:n],
        y_train=fashion.y_train[:n],
        x_train_pixels=fashion.x_train_pixels[:n],
        source=fashion.source + "#500",
    )


def test_a_copy_is_the_same_bytes_every_time_and_each_copy_differs(small):
    first = augment.deformed_copy(small.x_train_pixels, 1)
    assert first.dtype == np.uint8 and first.shape == small.x_train_pixels.shape
    assert np.array_equal(first, augment.deformed_copy(small.x_train_pixels, 1))
    second = augment.deformed_copy(small.x_train_pixels, 2)
    assert not np.array_equal(first, second)
    # deformed, not replaced: each copy stays close to its image (the same garment, moved a little)
    for copy in (first, second):
        moved = np.abs(copy.astype(int) - small.x_train_pixels).mean(axis=1)
        other = np.abs(copy.astype(int) - np.roll(small.x_train_pixels, 1, axis=0)).mean(axis=1)
        assert (moved > 0).all() and np.median(moved) < 0.6 * np.median(other)


def test_a_grown_set_starts_with_the_data_set_and_repeats_its_labels(small):
    pixels, labels = augment.grow(small.x_train_pixels, small.y_train, 1300)
    assert len(pixels) == len(labels) == 1300
    assert np.array_equal(pixels[:500], small.x_train_pixels)
    assert np.array_equal(labels, np.concatenate([small.y_train, small.y_train, small.y_train[:300]]))
    smaller, _ = augment.grow(small.x_train_pixels, small.y_train, 800)
    assert np.array_equal(pixels[:800], smaller)  # a larger size extends a smaller one


def test_a_job_past_the_data_set_trains_on_the_grown_pixels_and_leaves_the_test_set(small):
    spec = JobSpec(dataset="fashion-mnist", engine="local", train_samples=1200, topology=Topology(workers=2))
    test_before = small.x_test.copy()
    x, y, pixels = training_data(spec, small)
    assert x is None and len(y) == len(pixels) == 1200
    shards = make_shards(x, y, 2, spec.partition, spec.model.seed, pixels=pixels)
    assert sum(len(s) for s in shards) == 1200 and all(s.wire_x.dtype == np.uint8 for s in shards)
    assert np.array_equal(small.x_test, test_before)
    x, y, _ = training_data(spec.with_(train_samples=300), small)
    assert len(x) == len(y) == 300  # below the data set's size: its first rows, as before


def test_only_image_data_sets_grow():
    with pytest.raises(UsageError, match="only the image data sets"):
        JobSpec(dataset="digits", train_samples=5000)
    assert JobSpec(dataset="fashion-mnist", train_samples=480000).train_samples == 480000


def test_sweep_takes_training_set_sizes_as_an_axis(tmp_path, capsys):
    from nncompare.cli import main

    out = tmp_path / "r.jsonl"
    main(["sweep", "--out", str(out), "--engines", "local", "--workers", "1,2", "--train-samples", "15000,120000",
          "--dataset", "fashion-mnist", "--epochs", "1", "--dry-run"])  # fmt: skip
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 4 and not out.exists()
    assert sum("15000 samples" in line for line in lines) == sum("120000 samples" in line for line in lines) == 2
