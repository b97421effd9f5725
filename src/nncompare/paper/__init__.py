"""The seed paper's results as data, its experimental design, and that design scaled to a machine.

The numbers live in ``seed_paper.csv`` (package data, with the citation in its header) so
reports compare against the published figures themselves, never against prose copies.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from importlib import resources

from nncompare.job import counted

GIB = 1024**3

CITATION = (
    'A. Ambavanekar and A. Jatakia, "Neural Networks with Distributed Computing Systems": '
    "scikit-learn MLPClassifier on MNIST with Spark and Dask, 2 nodes x 24 cores x 64 GB."
)
#: The paper's cluster, from which its configurations were cut.
PAPER_CLUSTER = {"nodes": 2, "cores": 48, "memory_bytes": 128 * GIB}


@dataclass(frozen=True)
class PaperResult:
    """One cell of the paper's tables: an engine, a configuration and a maximum epoch count."""

    engine: str
    cores_per_worker: int
    workers: int
    memory_gb: float
    epochs: int
    wall_s: float
    test_accuracy: float  # a fraction, like the records' test_accuracy

    @property
    def config(self) -> str:
        return config_label(self.cores_per_worker, self.workers, self.memory_gb)


@dataclass(frozen=True)
class PaperConfig:
    """One of the paper's three configurations, and what it becomes on the machine at hand."""

    label: str  # the paper's "cores x workers x memory", e.g. "4x9x11"
    cores_per_worker: int
    workers: int
    memory_bytes: int


def config_label(cores: int, workers: int, memory_gb: float) -> str:
    return f"{cores}x{workers}x{memory_gb:g}"


def load_seed_paper() -> list[PaperResult]:
    """Every published (engine, configuration, epochs) -> (wall time, accuracy) of the seed paper."""
    text = resources.files(__package__).joinpath("seed_paper.csv").read_text(encoding="utf-8")
    rows = csv.DictReader(io.StringIO("".join(line for line in text.splitlines(True) if not line.startswith("#"))))
    return [
        PaperResult(
            engine=r["engine"],
            cores_per_worker=int(r["cores_per_worker"]),
            workers=int(r["workers"]),
            memory_gb=float(r["memory_gb"]),
            epochs=int(r["epochs"]),
            wall_s=float(r["wall_s"]),
            test_accuracy=float(r["test_accuracy_pct"]) / 100,
        )
        for r in rows
    ]


def citation_lines() -> list[str]:
    """The CSV's own header comment (its source and units), for reports."""
    text = resources.files(__package__).joinpath("seed_paper.csv").read_text(encoding="utf-8")
    return [line[1:].strip() for line in text.splitlines() if line.startswith("#")]


def paper_epochs() -> list[int]:
    return sorted({r.epochs for r in load_seed_paper()})


def paper_configs() -> list[PaperConfig]:
    """The paper's configurations in the order it lists them (most workers first)."""
    seen: dict[str, PaperConfig] = {}
    for r in load_seed_paper():
        seen.setdefault(r.config, PaperConfig(r.config, r.cores_per_worker, r.workers, int(r.memory_gb * GIB)))
    return list(seen.values())


@dataclass(frozen=True)
class Scaling:
    """How the paper's cluster maps onto a machine: one factor for cores, one for memory."""

    cores: int
    memory_bytes: int
    core_factor: float
    memory_factor: float
    configs: list[tuple[PaperConfig, PaperConfig]]  # (paper's, ours)

    def lines(self) -> list[str]:
        out = [
            f"paper cluster: {PAPER_CLUSTER['cores']} cores, {PAPER_CLUSTER['memory_bytes'] / GIB:.0f} GiB; "
            f"this machine: {self.cores} cores, {self.memory_bytes / GIB:.1f} GiB "
            f"(cores x{self.core_factor:.3g}, memory x{self.memory_factor:.3g})",
            "workers are kept (they decide the shards, so what is computed); cores per worker scale by the core "
            "factor (at least 1); memory per worker scales by the memory factor",
        ]
        for paper, ours in self.configs:
            total = ours.workers * ours.cores_per_worker
            note = (
                f", {total} cores asked of {self.cores}: oversubscribed x{total / self.cores:.2g}"
                if total > self.cores
                else ""
            )
            out.append(
                f"  {paper.label:>8s} -> {counted(ours.workers, 'worker')} x "
                f"{counted(ours.cores_per_worker, 'core')} x {ours.memory_bytes / GIB:.2f} GiB{note}"
            )
        return out


def scale_to_machine(cores: int, memory_bytes: int) -> Scaling:
    """The paper's configurations fitted to a machine with ``cores`` and ``memory_bytes``.

    The worker count is what makes the three configurations different algorithms (data
    parallelism averages that many shard models), so it is kept. Cores and memory per worker
    shrink by the ratio of this machine to the paper's cluster, so each configuration keeps
    its share of the memory and, as far as whole cores allow, of the cores. A machine at
    least as big as the paper's cluster runs the configurations unchanged.
    """
    core_factor = min(1.0, cores / PAPER_CLUSTER["cores"])
    memory_factor = min(1.0, memory_bytes / PAPER_CLUSTER["memory_bytes"])
    pairs = []
    for c in paper_configs():
        per_worker_cores = max(1, min(cores, math.floor(c.cores_per_worker * core_factor + 0.5)))
        memory = max(256 * 1024**2, int(c.memory_bytes * memory_factor))
        pairs.append((c, PaperConfig(c.label, per_worker_cores, c.workers, memory)))
    return Scaling(cores, memory_bytes, core_factor, memory_factor, pairs)


def unscaled() -> Scaling:
    """The configurations as the paper ran them, for a cluster of the paper's size (``--cluster``)."""
    pairs = [(c, c) for c in paper_configs()]
    return Scaling(PAPER_CLUSTER["cores"], PAPER_CLUSTER["memory_bytes"], 1.0, 1.0, pairs)
