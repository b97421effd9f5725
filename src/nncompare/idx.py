"""Reader for the IDX files MNIST and Fashion-MNIST ship in, gzip-compressed or raw.

Validates everything a corrupt or truncated download could get wrong (magic number,
element type, dimensions, byte count) so bad data fails loudly before training.
"""

from __future__ import annotations

import gzip
import math
import os
import struct
import zlib

import numpy as np

from nncompare.errors import DataError

_IDX_TYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def read_idx_bytes(path: str | os.PathLike) -> bytes:
    """Return the decompressed bytes of an IDX file (``.gz`` is detected by its magic bytes)."""
    path = os.fspath(path)
    try:
        with open(path, "rb") as fh:
            head = fh.read(2)
            fh.seek(0)
            if head == b"\x1f\x8b":
                with gzip.GzipFile(fileobj=fh) as gz:
                    return gz.read()
            return fh.read()
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"{path}: cannot be read as gzip or raw IDX ({exc}); delete it and fetch it again") from None


def parse_idx(data: bytes, *, source: str = "<bytes>") -> np.ndarray:
    """Parse IDX bytes into an array of the declared type and shape."""
    if len(data) < 4:
        raise DataError(f"{source}: too short to be an IDX file ({len(data)} bytes); delete it and fetch it again")
    zero, type_code, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or type_code not in _IDX_TYPES or ndim == 0:
        raise DataError(f"{source}: bad IDX magic number 0x{data[:4].hex()}; this is not an MNIST-style IDX file")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(f"{source}: truncated IDX header; delete it and fetch it again")
    shape = struct.unpack(f">{ndim}I", data[4:header])
    dtype = _IDX_TYPES[type_code]
    expected = header + math.prod(shape) * dtype.itemsize  # exact integers: an int64 product can wrap
    if len(data) != expected:
        raise DataError(
            f"{source}: IDX size mismatch: header declares shape {shape} ({expected} bytes) "
            f"but the file has {len(data)} bytes; it is truncated or corrupt, fetch it again"
        )
    return np.frombuffer(data, dtype=dtype, offset=header).reshape(shape)


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read and validate one IDX file."""
    return parse_idx(read_idx_bytes(path), source=os.fspath(path))


def read_pixels(path: str | os.PathLike) -> np.ndarray:
    """Images as stored: uint8 rows, shape (n, rows*cols)."""
    raw = read_idx(path)
    if raw.ndim != 3 or raw.dtype != np.uint8:
        raise DataError(f"{path}: expected a 3-d uint8 image file, found shape {raw.shape} of {raw.dtype}")
    if 0 in raw.shape:
        raise DataError(f"{path}: holds no images (shape {raw.shape}); it is empty or corrupt, fetch it again")
    return raw.reshape(raw.shape[0], -1)


def scale_pixels(pixels: np.ndarray) -> np.ndarray:
    """uint8 pixels as float32 features in [0, 1]: the one scaling, done by the loader and by workers.

    Workers receive shards as uint8 (a quarter of the bytes) and call this on arrival, so
    their features are bit for bit the loader's. The result is a fresh, aligned, writable array.
    """
    images = pixels.astype(np.float32)
    images *= np.float32(1.0 / 255.0)
    return images


def read_images(path: str | os.PathLike) -> np.ndarray:
    """Images as float32 rows scaled to [0, 1], shape (n, rows*cols)."""
    return scale_pixels(read_pixels(path))


def read_labels(path: str | os.PathLike, classes: int | None = None) -> np.ndarray:
    """Labels as int64, shape (n,); with ``classes``, each must be one of 0 .. classes-1.

    A label outside the dataset's classes (10 or 255 in a 10-class file) used to train and
    record without a word: the model simply grew a class that the test set never asks for.
    """
    raw = read_idx(path)
    if raw.ndim != 1 or raw.dtype != np.uint8:
        raise DataError(f"{path}: expected a 1-d uint8 label file, found shape {raw.shape} of {raw.dtype}")
    if raw.shape[0] == 0:
        raise DataError(f"{path}: holds no labels; it is empty or corrupt, fetch it again")
    if classes is not None:
        outside = np.flatnonzero(raw >= classes)
        if outside.size:
            first = int(outside[0])
            more = f" (and {outside.size - 1} more)" if outside.size > 1 else ""
            raise DataError(
                f"{path}: label {int(raw[first])} at position {first}{more} is outside the dataset's classes "
                f"0-{classes - 1}; the file is corrupt or not this dataset's, fetch it again"
            )
    return raw.astype(np.int64)


def write_idx(path: str | os.PathLike, array: np.ndarray, *, compress: bool = True) -> None:
    """Write ``array`` (uint8) as an IDX file; used by tests and by ``nncompare data`` tooling."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    payload = header + array.tobytes()
    opener = gzip.open if compress else open
    with opener(path, "wb") as fh:
        fh.write(payload)
