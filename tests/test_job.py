"""The job defined once: JobSpec, ModelSpec, Topology, and memory sizes."""

from __future__ import annotations

import json
import os

import pytest

from nncompare.errors import UsageError
from nncompare.job import JobSpec, ModelSpec, Topology, format_memory, parse_memory


@pytest.mark.parametrize(
    "text, expected",
    [
        ("11g", 11 * 1024**3),
        ("13GB", 13 * 10**9),
        ("512MiB", 512 * 1024**2),
        ("1.5g", int(1.5 * 1024**3)),
        ("2048", 2048),
        (" 4 GiB ", 4 * 1024**3),
        ("300m", 300 * 1024**2),
    ],
)
def test_parse_memory(text, expected):
    assert parse_memory(text) == expected


@pytest.mark.parametrize("text", ["", "lots", "12x", "-1g", "0", "g"])
def test_parse_memory_rejects(text):
    with pytest.raises(UsageError):
        parse_memory(text)


def test_format_memory():
    assert format_memory(11 * 1024**3) == "11 GiB" and format_memory(None) == "auto"


def test_spec_is_frozen_hashable_and_round_trips():
    spec = JobSpec(
        dataset="fashion-mnist",
        engine="dask",
        epochs=7,
        model=ModelSpec(hidden_layer_sizes=[64, 32]),
        topology=Topology(3, 2, parse_memory("2g")),
        sync_every=5,
    )
    assert spec.model.hidden_layer_sizes == (64, 32)
    assert hash(spec) == hash(JobSpec.from_dict(json.loads(json.dumps(spec.to_dict()))))
    assert JobSpec.from_dict(spec.to_dict()) == spec
    with pytest.raises(AttributeError):
        spec.epochs = 3  # type: ignore[misc]
    assert spec.key() == JobSpec.from_dict(spec.to_dict()).key()
    assert spec.key() != spec.with_(epochs=8).key()


@pytest.mark.parametrize(
    "kwargs",
    [
        {"engine": "ray"},
        {"dataset": "cifar"},
        {"epochs": 0},
        {"sync_every": 0},
        {"partition": "random"},
        {"train_samples": 3, "workers": 4},
    ],
)
def test_spec_rejects(kwargs):
    kwargs = dict(kwargs)
    if "workers" in kwargs:
        kwargs["topology"] = Topology(workers=kwargs.pop("workers"))
    with pytest.raises(UsageError):
        JobSpec(**kwargs)


def test_model_spec_rejects():
    for bad in (
        {"hidden_layer_sizes": ()},
        {"hidden_layer_sizes": (0,)},
        {"activation": "gelu"},
        {"batch_size": 0},
        {"solver": "lbfgs"},
        {"learning_rate_init": 0},
    ):
        with pytest.raises(UsageError):
            ModelSpec(**bad)


def test_topology_rejects_more_cores_than_the_machine():
    with pytest.raises(UsageError, match="more than this machine"):
        Topology(cores_per_worker=(os.cpu_count() or 1) + 1).check_fits_this_machine()
