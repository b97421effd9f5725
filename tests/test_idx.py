"""The IDX reader on real files and on files broken the ways downloads break."""

from __future__ import annotations

import gzip

import numpy as np
import pytest

from nncompare.errors import DataError
from nncompare.idx import read_idx, read_images, read_labels, write_idx


@pytest.fixture
def images_gz(tmp_path):
    rng = np.random.RandomState(0)
    array = rng.randint(0, 256, size=(7, 28, 28)).astype(np.uint8)
    path = tmp_path / "images-idx3-ubyte.gz"
    write_idx(path, array)
    return path, array


def test_round_trip_gz_and_raw(tmp_path, images_gz):
    path, array = images_gz
    assert np.array_equal(read_idx(path), array)
    raw = tmp_path / "raw-idx3-ubyte"
    write_idx(raw, array, compress=False)
    assert np.array_equal(read_idx(raw), array)


def test_images_are_float32_scaled_to_unit_interval(images_gz):
    path, array = images_gz
    images = read_images(path)
    assert images.dtype == np.float32 and images.shape == (7, 784)
    assert images.min() >= 0.0 and images.max() <= 1.0
    np.testing.assert_allclose(images * 255, array.reshape(7, -1), atol=1e-4)


def test_labels_are_int(tmp_path):
    path = tmp_path / "labels-idx1-ubyte.gz"
    write_idx(path, np.arange(10, dtype=np.uint8))
    labels = read_labels(path)
    assert labels.dtype == np.int64 and labels.tolist() == list(range(10))


def test_real_fashion_mnist_test_split(fashion_dir):
    images = read_images(fashion_dir / "t10k-images-idx3-ubyte.gz")
    labels = read_labels(fashion_dir / "t10k-labels-idx1-ubyte.gz")
    assert images.shape == (10000, 784) and labels.shape == (10000,)
    assert sorted(np.unique(labels)) == list(range(10))


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda b: b[:-100], "size mismatch"),
        (lambda b: b + b"\x00", "size mismatch"),
        (lambda b: b"\x00\x00\x07\x03" + b[4:], "magic"),
        (lambda b: b"\x01\x02\x08\x03" + b[4:], "magic"),
        (lambda b: b[:10], "truncated IDX header"),
        (lambda b: b[:2], "too short"),
    ],
)
def test_corrupt_files_fail_with_one_clear_line(tmp_path, images_gz, damage, message):
    path, _ = images_gz
    payload = damage(gzip.decompress(path.read_bytes()))
    bad = tmp_path / "bad-idx3-ubyte"
    bad.write_bytes(payload)
    with pytest.raises(DataError, match=message) as info:
        read_idx(bad)
    assert "\n" not in str(info.value)


def test_truncated_gzip_stream_is_a_data_error(tmp_path, images_gz):
    path, _ = images_gz
    bad = tmp_path / "cut-idx3-ubyte.gz"
    bad.write_bytes(path.read_bytes()[:-20])
    with pytest.raises(DataError, match="fetch it again"):
        read_idx(bad)


def test_labels_file_given_as_images_is_rejected(tmp_path):
    path = tmp_path / "labels-idx1-ubyte.gz"
    write_idx(path, np.arange(10, dtype=np.uint8))
    with pytest.raises(DataError, match="3-d uint8 image"):
        read_images(path)


def test_dimensions_whose_product_wraps_int64_are_a_size_mismatch():
    import struct

    from nncompare.idx import parse_idx

    header = struct.pack(">HBB", 0, 0x08, 4) + struct.pack(">4I", 65536, 65536, 65536, 65536)  # 2**64 elements
    with pytest.raises(DataError, match="size mismatch"):
        parse_idx(header, source="wrapped")


@pytest.mark.parametrize("shape", [(0, 28, 28), (5, 0, 0), (5, 28, 0)])
def test_a_file_without_images_is_rejected_in_one_line(tmp_path, shape):
    path = tmp_path / "empty-images.gz"
    write_idx(path, np.zeros(shape, np.uint8))
    with pytest.raises(DataError, match="holds no images") as info:
        read_images(path)
    assert "\n" not in str(info.value)


def test_a_file_without_labels_is_rejected(tmp_path):
    path = tmp_path / "empty-labels.gz"
    write_idx(path, np.zeros((0,), np.uint8))
    with pytest.raises(DataError, match="holds no labels"):
        read_labels(path)
