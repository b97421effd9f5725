"""The training job, defined once: dataset, model, epochs, topology and synchronisation.

A :class:`JobSpec` is frozen and hashable, serialises to plain JSON, and has a stable
:meth:`JobSpec.key` so sweeps can tell which configurations already ran.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import asdict, dataclass, field, fields, replace

from nncompare.errors import UsageError

ENGINES = ("local", "dask", "spark")
ACTIVATIONS = ("relu", "tanh", "logistic", "identity")
SOLVERS = ("adam", "sgd")
PARTITIONS = ("shuffled", "stratified", "contiguous")

_UNITS = {
    "": 1, "b": 1,
    "k": 1024, "kib": 1024, "kb": 1000,
    "m": 1024**2, "mib": 1024**2, "mb": 1000**2,
    "g": 1024**3, "gib": 1024**3, "gb": 1000**3,
    "t": 1024**4, "tib": 1024**4, "tb": 1000**4,
}


def parse_memory(text: str | int | None) -> int | None:
    """Parse '11g', '13GB', '512MiB' or a byte count. Bare k/m/g are binary, as in Spark and the JVM."""
    if text is None or isinstance(text, int):
        return text
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*", str(text))
    unit = match.group(2).lower() if match else None
    if not match or unit not in _UNITS:
        raise UsageError(f"cannot parse memory {text!r}; write it like 11g, 13GB, 512MiB or a number of bytes")
    value = int(float(match.group(1)) * _UNITS[unit])
    if value <= 0:
        raise UsageError(f"memory must be positive, got {text!r}")
    return value


def format_memory(n_bytes: int | None) -> str:
    if n_bytes is None:
        return "auto"
    for unit, size in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if n_bytes >= size:
            return f"{n_bytes / size:.3g} {unit}"
    return f"{n_bytes} B"


@dataclass(frozen=True)
class ModelSpec:
    """scikit-learn ``MLPClassifier`` hyper-parameters that the job fixes."""

    hidden_layer_sizes: tuple[int, ...] = (100,)
    activation: str = "relu"
    solver: str = "adam"
    batch_size: int = 200
    learning_rate_init: float = 0.001
    alpha: float = 0.0001
    seed: int = 0

    def __post_init__(self):
        object.__setattr__(self, "hidden_layer_sizes", tuple(int(h) for h in self.hidden_layer_sizes))
        if not self.hidden_layer_sizes or min(self.hidden_layer_sizes) < 1:
            raise UsageError("hidden layer sizes must be positive integers, e.g. --hidden 100 or --hidden 256,128")
        if self.activation not in ACTIVATIONS:
            raise UsageError(f"unknown activation {self.activation!r}; choose one of {', '.join(ACTIVATIONS)}")
        if self.solver not in SOLVERS:
            raise UsageError(f"unknown solver {self.solver!r}; choose one of {', '.join(SOLVERS)} (partial_fit needs a stochastic solver)")
        if self.batch_size < 1:
            raise UsageError("batch size must be at least 1")
        if not self.learning_rate_init > 0:
            raise UsageError("learning rate must be positive")


@dataclass(frozen=True)
class Topology:
    """How many workers, BLAS threads (cores) per worker and memory per worker the engine gets."""

    workers: int = 1
    cores_per_worker: int = 1
    memory_per_worker_bytes: int | None = None

    def __post_init__(self):
        if self.workers < 1:
            raise UsageError(f"workers must be at least 1, got {self.workers}")
        if self.cores_per_worker < 1:
            raise UsageError(f"cores per worker must be at least 1, got {self.cores_per_worker}")
        if self.memory_per_worker_bytes is not None and self.memory_per_worker_bytes <= 0:
            raise UsageError("memory per worker must be positive")

    def check_fits_this_machine(self) -> None:
        """Cores per worker beyond this machine's count can never run here."""
        have = os.cpu_count() or 1
        if self.cores_per_worker > have:
            raise UsageError(f"--cores {self.cores_per_worker} is more than this machine's {have} cores; use --cores {have} or less, or --cluster for a bigger one")


@dataclass(frozen=True)
class JobSpec:
    """Everything that defines one training run; the engine only decides where it runs.

    ``epochs`` has scikit-learn's ``max_iter`` meaning. With ``convergence_stop`` the run ends
    as ``MLPClassifier.fit`` would: when the training loss has not improved by ``tol`` for more
    than ``n_iter_no_change`` consecutive epochs. ``sync_every`` is the number of local
    mini-batches between weight averages (``None``: once per epoch).
    """

    dataset: str = "mnist"
    engine: str = "local"
    epochs: int = 10
    model: ModelSpec = field(default_factory=ModelSpec)
    topology: Topology = field(default_factory=Topology)
    convergence_stop: bool = True
    tol: float = 1e-4
    n_iter_no_change: int = 10
    sync_every: int | None = None
    partition: str = "shuffled"
    train_samples: int | None = None

    def __post_init__(self):
        if self.engine not in ENGINES:
            raise UsageError(f"unknown engine {self.engine!r}; choose one of {', '.join(ENGINES)}")
        from nncompare.data import DATASETS

        if self.dataset not in DATASETS:
            raise UsageError(f"unknown dataset {self.dataset!r}; choose one of {', '.join(DATASETS)}")
        if self.epochs < 1:
            raise UsageError(f"epochs must be at least 1, got {self.epochs}")
        if self.sync_every is not None and self.sync_every < 1:
            raise UsageError("--sync-every must be at least 1 mini-batch")
        if self.partition not in PARTITIONS:
            raise UsageError(f"unknown partition {self.partition!r}; choose one of {', '.join(PARTITIONS)}")
        if self.train_samples is not None and self.train_samples < self.topology.workers:
            raise UsageError("--train-samples must leave at least one sample per worker")
        if self.n_iter_no_change < 1 or self.tol < 0:
            raise UsageError("n_iter_no_change must be >= 1 and tol >= 0")

    def to_dict(self) -> dict:
        data = asdict(self)
        data["model"]["hidden_layer_sizes"] = list(self.model.hidden_layer_sizes)
        return data

    @classmethod
    def from_dict(cls, data: dict) -> "JobSpec":
        data = dict(data)
        model = ModelSpec(**data.pop("model", {}))
        topology = Topology(**data.pop("topology", {}))
        known = {f.name for f in fields(cls)}
        return cls(model=model, topology=topology, **{k: v for k, v in data.items() if k in known})

    def key(self) -> str:
        """A short stable digest of the spec, for resumable sweeps."""
        blob = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def with_(self, **changes) -> "JobSpec":
        return replace(self, **changes)
