"""More training images than the data set has: deterministic shifted and deformed copies, as infiMNIST does.

The seed paper's open question is whether more workers pay off once the data set is larger
than MNIST's 60,000 training images. To ask it, a job may name more training samples than the
data set holds (``JobSpec.train_samples``): the images are then followed by copies of
themselves, copy ``k`` of image ``i`` moved by a small random affine map (rotation, scale,
shear, a shift of up to two pixels) and a smooth elastic displacement field (Simard et al.,
2003; Loosli, Canu and Bottou's infiMNIST draws the same kinds of deformation), resampled
bilinearly and rounded back to uint8. Labels are copied; the test set is never touched.

Deterministic: copy ``k`` draws its parameters from ``RandomState([seed, k, chunk])`` (numpy's
legacy generator, whose stream numpy keeps stable across versions), so the same data set,
size and seed give the same bytes, and a larger size extends a smaller one (its first rows are
the smaller set). Grown sets are kept in this process (:func:`grown`): a sweep's configurations
each run in a fresh process, and one growth costs seconds, not a training run.
"""

from __future__ import annotations

import math

import numpy as np

#: Raise when what a copy looks like changes: the same size and seed then give other images.
VERSION = 1
#: Largest rotation (degrees), relative scale change, shear and shift (pixels) of a copy.
MAX_ROTATION_DEG, MAX_SCALE, MAX_SHEAR, MAX_SHIFT_PX = 8.0, 0.08, 0.10, 2.0
#: Elastic field: uniform displacements of up to ``ELASTIC_PX`` pixels on a ``ELASTIC_GRID`` square grid of
#: control points, interpolated bilinearly over the image (smooth, and far cheaper than a Gaussian filter).
ELASTIC_PX, ELASTIC_GRID = 1.5, 5
CHUNK = 4096  # images resampled at once: bounds the scratch arrays to tens of MB

_GROWN: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}


def deformed_copy(pixels: np.ndarray, copy: int, seed: int = 0) -> np.ndarray:
    """Copy number ``copy`` (1, 2, ...) of square uint8 images ``pixels`` (n, side*side), each deformed its own way."""
    if copy < 1:
        raise ValueError("copy 0 is the data set itself")
    n, size = pixels.shape
    side = math.isqrt(size)
    if side * side != size:
        raise ValueError(f"images of {size} pixels are not square; only square images can be deformed")
    out = np.empty_like(pixels)
    for start in range(0, n, CHUNK):
        block = pixels[start : start + CHUNK]
        rng = np.random.RandomState([seed, copy, start // CHUNK])
        out[start : start + len(block)] = _deform(block.reshape(-1, side, side), rng).reshape(len(block), size)
    return out


def _deform(images: np.ndarray, rng: np.random.RandomState) -> np.ndarray:
    """Each image of the (m, side, side) block resampled through its own affine map plus elastic field."""
    m, side, _ = images.shape
    # drawn for a whole chunk whatever its rows, so that an image's deformation does not depend on
    # how many images follow it: a larger grown set extends a smaller one
    angle = np.deg2rad(rng.uniform(-MAX_ROTATION_DEG, MAX_ROTATION_DEG, CHUNK))[:m]
    scale = 1.0 + rng.uniform(-MAX_SCALE, MAX_SCALE, CHUNK)[:m]
    shear = rng.uniform(-MAX_SHEAR, MAX_SHEAR, CHUNK)[:m]
    shift = rng.uniform(-MAX_SHIFT_PX, MAX_SHIFT_PX, (2, CHUNK))[:, :m]
    spread = _spread(side, ELASTIC_GRID)
    grid = rng.uniform(-ELASTIC_PX, ELASTIC_PX, (2, CHUNK, ELASTIC_GRID, ELASTIC_GRID))[:, :m].astype(np.float32)
    field = np.einsum("ia,dmab,jb->dmij", spread, grid, spread, optimize=True)

    centre = (side - 1) / 2.0
    rows, cols = np.mgrid[0:side, 0:side].astype(np.float32) - centre
    cos = (np.cos(angle) / scale).astype(np.float32)[:, None, None]
    sin = (np.sin(angle) / scale).astype(np.float32)[:, None, None]
    shear = shear.astype(np.float32)[:, None, None]
    shift = shift.astype(np.float32)
    # where each output pixel reads from: the inverse affine map, then the elastic displacement
    src_r = cos * rows - sin * (cols + shear * rows) + centre + shift[0][:, None, None] + field[0]
    src_c = sin * rows + cos * (cols + shear * rows) + centre + shift[1][:, None, None] + field[1]
    return _bilinear(images, src_r, src_c)


def _spread(side: int, points: int) -> np.ndarray:
    """(side, points): weights that spread ``points`` evenly spaced control values linearly over ``side`` pixels."""
    at = np.linspace(0, points - 1, side)
    low = np.minimum(np.floor(at).astype(int), points - 2)
    weights = np.zeros((side, points), dtype=np.float32)
    weights[np.arange(side), low] = 1 - (at - low)
    weights[np.arange(side), low + 1] = at - low
    return weights


def _bilinear(images: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Sample ``images`` (m, s, s) at fractional (rows, cols); outside the image is 0 (the background)."""
    m, side, _ = images.shape
    padded = np.zeros((m, side + 2, side + 2), dtype=np.float32)
    padded[:, 1:-1, 1:-1] = images
    r = np.clip(rows + 1.0, 0.0, side + 0.999, dtype=np.float32)  # +1: the zero border, which clipping reads
    c = np.clip(cols + 1.0, 0.0, side + 0.999, dtype=np.float32)
    r0, c0 = r.astype(np.intp), c.astype(np.intp)  # non-negative: truncation is the floor
    fr, fc = r - r0, c - c0
    flat = padded.reshape(m, -1)
    base = np.arange(m, dtype=np.intp)[:, None, None] * (side + 2) ** 2
    index = base + r0 * (side + 2) + c0
    top = flat.take(index) * (1 - fc) + flat.take(index + 1) * fc
    bottom = flat.take(index + side + 2) * (1 - fc) + flat.take(index + side + 3) * fc
    value = top * (1 - fr) + bottom * fr
    return np.clip(np.rint(value), 0, 255, out=value).astype(np.uint8)


def grow(pixels: np.ndarray, labels: np.ndarray, samples: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The first ``samples`` rows of the images followed by copy 1, copy 2, ... of them, with their labels."""
    n = len(labels)
    if samples <= n:
        return pixels[:samples], labels[:samples]
    parts, label_parts, left = [pixels], [labels], samples - n
    for copy in range(1, math.ceil((samples - n) / n) + 1):
        take = min(n, left)
        parts.append(deformed_copy(pixels[:take], copy, seed))
        label_parts.append(labels[:take])
        left -= take
    return np.concatenate(parts), np.concatenate(label_parts)


def grown(dataset, samples: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """:func:`grow` of ``dataset``'s training images, computed once per process for each size and seed."""
    if dataset.x_train_pixels is None:
        raise ValueError(f"{dataset.name} has no images to deform; only image data sets grow")
    key = (dataset.name, dataset.source, len(dataset.y_train), samples, seed, VERSION)
    if key not in _GROWN:
        _GROWN.clear()  # one grown set at a time: each is hundreds of MB
        _GROWN[key] = grow(dataset.x_train_pixels, dataset.y_train, samples, seed)
    return _GROWN[key]
