"""The training job, defined once: dataset, model, epochs, topology and synchronisation.

A :class:`JobSpec` is frozen and hashable, serialises to plain JSON, and has a stable
:meth:`JobSpec.key` so sweeps can tell which configurations already ran.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
from dataclasses import asdict, dataclass, field, fields, replace

from nncompare.engines.registry import plugin
from nncompare.errors import UsageError

ACTIVATIONS = ("relu", "tanh", "logistic", "identity")
SOLVERS = ("adam", "sgd")
PARTITIONS = ("shuffled", "stratified", "contiguous")

_UNITS = {
    "": 1,
    "b": 1,
    "k": 1024,
    "kib": 1024,
    "kb": 1000,
    "m": 1024**2,
    "mib": 1024**2,
    "mb": 1000**2,
    "g": 1024**3,
    "gib": 1024**3,
    "gb": 1000**3,
    "t": 1024**4,
    "tib": 1024**4,
    "tb": 1000**4,
}
#: Bounds that keep a value inside what numpy, scikit-learn and the engines accept.
MAX_MEMORY_BYTES = 1024**5  # 1 PiB per worker: beyond any machine, and far below int64 and float overflow
MAX_LEARNING_RATE = 1000.0  # Adam steps about this far; 1e30 already overflows the weights to inf
MAX_SEED = 2**32 - 1  # numpy's legacy seeding, which scikit-learn uses
MAX_EPOCHS = 1_000_000
#: Bytes per weight a worker holds: the weights, their gradient and Adam's two moments, as float64.
_BYTES_PER_WEIGHT = 4 * 8


def parse_memory(text: str | int | None) -> int | None:
    """Parse '11g', '13GB', '512MiB' or a byte count. Bare k/m/g are binary, as in Spark and the JVM."""
    if text is None or isinstance(text, int):
        return text
    match = re.fullmatch(r"\s*(\d{1,30}(?:\.\d{1,30})?)\s*([a-zA-Z]*)\s*", str(text))
    unit = match.group(2).lower() if match else None
    if not match or unit not in _UNITS:
        shown = str(text) if len(str(text)) <= 40 else str(text)[:37] + "..."
        raise UsageError(f"cannot parse memory {shown!r}; write it like 11g, 13GB, 512MiB or a number of bytes")
    value = int(float(match.group(1)) * _UNITS[unit])
    if value <= 0:
        raise UsageError(f"memory must be positive, got {text!r}")
    if value > MAX_MEMORY_BYTES:
        raise UsageError(f"memory {text!r} is more than 1 PiB per worker; write it like 11g or 512MiB")
    return value


def counted(n: int, noun: str) -> str:
    """``n`` with its noun, singular for one: "1 core", "2 workers"."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


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
            raise UsageError(
                f"unknown solver {self.solver!r}; choose one of {', '.join(SOLVERS)} (partial_fit "
                "needs a stochastic solver)"
            )
        if self.batch_size < 1:
            raise UsageError("batch size must be at least 1")
        if not (isinstance(self.learning_rate_init, (int, float)) and 0 < self.learning_rate_init <= MAX_LEARNING_RATE):
            raise UsageError(
                f"--learning-rate must be above 0 and at most {MAX_LEARNING_RATE:g}, got {self.learning_rate_init!r}"
            )
        if not (math.isfinite(self.alpha) and self.alpha >= 0):
            raise UsageError(f"--alpha (the L2 penalty) must be a finite number >= 0, got {self.alpha!r}")
        if not 0 <= self.seed <= MAX_SEED:
            raise UsageError(f"--seed must be between 0 and {MAX_SEED} (numpy's seed range), got {self.seed}")

    def weight_count(self, n_features: int, n_classes: int) -> int:
        """How many weights and biases the network has for this input and output size."""
        sizes = (n_features, *self.hidden_layer_sizes, n_classes)
        return sum((a + 1) * b for a, b in zip(sizes, sizes[1:]))


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
            raise UsageError(
                f"--cores {self.cores_per_worker} is more than this machine's {have} cores; use "
                f"--cores {have} or less, or --cluster for a bigger one"
            )


@dataclass(frozen=True)
class JobSpec:
    """Everything that defines one training run; the engine only decides where it runs.

    ``epochs`` has scikit-learn's ``max_iter`` meaning. With ``convergence_stop`` the run ends
    as ``MLPClassifier.fit`` would: when the training loss has not improved by ``tol`` for more
    than ``n_iter_no_change`` consecutive epochs. ``sync_every`` is the number of local
    mini-batches between weight averages (``None``: once per epoch). ``train_samples`` trains
    on the first N training samples; above the data set's size (image data sets only) its
    images are followed by deterministic deformed copies (:mod:`nncompare.augment`), the test
    set untouched.
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
        plugin(self.engine)  # an engine this installation has: one line listing those it has, if not
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
        if self.n_iter_no_change < 1 or not (math.isfinite(self.tol) and self.tol >= 0):
            raise UsageError("--n-iter-no-change must be >= 1 and --tol a finite number >= 0")
        if self.epochs > MAX_EPOCHS:
            raise UsageError(f"--epochs must be at most {MAX_EPOCHS}, got {self.epochs}")
        self._check_fits_the_data()

    def _check_fits_the_data(self) -> None:
        """Workers bounded by samples and the network bounded by memory, from the dataset's known shape."""
        from nncompare.data import IDX_DATASETS, SHAPES

        samples, features, classes = SHAPES[self.dataset]
        if self.train_samples is not None:
            if self.train_samples < 1:
                raise UsageError(f"--train-samples must be at least 1, got {self.train_samples}")
            if self.train_samples > samples and self.dataset not in IDX_DATASETS:
                raise UsageError(
                    f"--train-samples {self.train_samples}: {self.dataset} has {samples} training samples, and only "
                    f"the image data sets ({', '.join(IDX_DATASETS)}) grow past theirs"
                )
            samples = self.train_samples
        if self.topology.workers > samples:
            raise UsageError(
                f"{self.topology.workers} workers for {samples} training samples of {self.dataset}: "
                f"use at most {samples} workers, one sample each at least"
            )
        need = self.model.weight_count(features, classes) * _BYTES_PER_WEIGHT
        import psutil

        # without --memory, the workers share this machine's memory
        per_worker = self.topology.memory_per_worker_bytes or psutil.virtual_memory().total // self.topology.workers
        if need > per_worker:
            raise UsageError(
                f"--hidden {','.join(map(str, self.model.hidden_layer_sizes))} needs about "
                f"{format_memory(need)} per worker for its weights, more than the "
                f"{format_memory(per_worker)} a worker has; choose smaller layers"
            )

    def to_dict(self) -> dict:
        data = asdict(self)
        data["model"]["hidden_layer_sizes"] = list(self.model.hidden_layer_sizes)
        return data

    @classmethod
    def from_dict(cls, data: dict) -> JobSpec:
        data = dict(data)
        model = ModelSpec(**data.pop("model", {}))
        topology = Topology(**data.pop("topology", {}))
        known = {f.name for f in fields(cls)}
        return cls(model=model, topology=topology, **{k: v for k, v in data.items() if k in known})

    def key(self) -> str:
        """A short stable digest of the spec, for resumable sweeps."""
        blob = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def with_(self, **changes) -> JobSpec:
        return replace(self, **changes)
