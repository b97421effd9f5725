"""Shared fixtures: where the real datasets are, and small real jobs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from nncompare.data import IDX_DATASETS, load_dataset
from nncompare.job import JobSpec, ModelSpec, Topology


def _dataset_dir(name: str) -> Path | None:
    """A folder with all four IDX files of ``name``: NNCOMPARE_DATA_DIR, then the system copy."""
    candidates = []
    if os.environ.get("NNCOMPARE_DATA_DIR"):
        base = Path(os.environ["NNCOMPARE_DATA_DIR"])
        candidates += [base / name, base]
    candidates += [Path(d) for d in IDX_DATASETS[name].system_dirs]
    for folder in candidates:
        if all(any((folder / (stem + ext)).is_file() for ext in (".gz", "")) for stem in (
                "train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")):
            return folder
    return None


@pytest.fixture(scope="session")
def fashion_dir() -> Path:
    folder = _dataset_dir("fashion-mnist")
    if folder is None:
        pytest.skip("Fashion-MNIST not at hand: set NNCOMPARE_DATA_DIR (CI points it at ../shared/datasets)")
    return folder


@pytest.fixture(scope="session")
def fashion(fashion_dir):
    return load_dataset("fashion-mnist", data_dir=fashion_dir)


@pytest.fixture(scope="session")
def digits():
    return load_dataset("digits")


@pytest.fixture
def small_spec() -> JobSpec:
    """A real job small enough for unit tests: digits, 2 workers, a few epochs."""
    return JobSpec(dataset="digits", engine="local", epochs=3, model=ModelSpec(hidden_layer_sizes=(32,), batch_size=64, learning_rate_init=0.01),
                   topology=Topology(workers=2, cores_per_worker=1))
