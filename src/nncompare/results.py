"""From a results file to summaries: loading records, the steady epoch, grouping and labels.

The report (markdown), the plots, the explanation and the what-if model all read records
through this module, so they agree on what a configuration, a series and an epoch time are.

The steady epoch is :mod:`nncompare.steady`'s. Repeats of one configuration are summarised by
the median of their steady epochs (:attr:`Summary.epoch_s`).
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from pathlib import Path

from nncompare.errors import UsageError
from nncompare.job import format_memory
from nncompare.record import PHASES, RECORD_KEYS, read_jsonl
from nncompare.steady import median, steady_epoch_s

#: The parts of a run's wall time: ``startup`` (the record's ``startup_s``), then its phases, by their record names.
COMPONENTS = ("startup", *PHASES)


def load_records(path: str | os.PathLike) -> list[dict]:
    """Every complete nncompare record of a results file (or of DIR/results.jsonl); bad input is a UsageError."""
    p = Path(path)
    if p.is_dir():
        p = p / "results.jsonl"
    if not p.is_file():
        raise UsageError(f"no results file at {p}")
    try:
        records = read_jsonl(p)
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read {p}: {exc}") from None
    valid = [r for r in records if isinstance(r, dict) and all(k in r for k in RECORD_KEYS) and r.get("epochs_run")]
    if not valid:
        raise UsageError(f"{p} holds no nncompare records" + (" (it is empty)" if not records else ""))
    return valid


def component_seconds(record: dict) -> dict[str, float]:
    """Seconds of each of :data:`COMPONENTS` in one run."""
    phases = {**record["phases_s"], "startup": record["startup_s"]}
    return {name: phases.get(name, 0.0) for name in COMPONENTS}


def job_group(record: dict) -> tuple:
    """What must be equal for records to lie on one curve: engine, data, model, sync, cluster."""
    spec = record.get("spec", {})
    model = spec.get("model", {})
    return (
        record["engine"],
        record["dataset"],
        tuple(model.get("hidden_layer_sizes", ())),
        model.get("batch_size"),
        spec.get("sync_every"),
        record.get("train_samples"),
        record.get("cluster"),
    )


def topology_group(record: dict) -> tuple:
    """One job on one topology: :func:`job_group` plus workers, cores and memory per worker."""
    return (*job_group(record), record["workers"], record["cores_per_worker"], record["memory_per_worker_bytes"])


def configuration(record: dict) -> tuple:
    """What repeats of one configuration share: the topology group, the epoch cap and convergence stopping."""
    return (*topology_group(record), record["epochs"], record.get("spec", {}).get("convergence_stop"))


def group_by(records: Iterable[dict], key: Callable[[dict], Hashable]) -> dict[Hashable, list[dict]]:
    """Records by ``key(record)``, in the order each key is first seen."""
    groups = defaultdict(list)
    for r in records:
        groups[key(r)].append(r)
    return dict(groups)


def paper_records(records: list[dict]) -> list[dict]:
    """The records ``nncompare paper`` tagged with the seed paper's configuration."""
    return [r for r in records if r.get("paper")]


def topology_label(r: dict) -> str:
    mem = r["memory_per_worker_bytes"]
    return f"{r['workers']}w×{r['cores_per_worker']}c" + (f"×{format_memory(mem).replace(' ', '')}" if mem else "")


def series_label(r: dict) -> str:
    """engine and configuration, with the paper's name for it when the record carries one."""
    paper = r.get("paper")
    return f"{r['engine']} {paper['config']} ({topology_label(r)})" if paper else f"{r['engine']} {topology_label(r)}"


@dataclass
class Summary:
    """The runs of one configuration (its repeats), by their medians."""

    records: list[dict]

    def _median(self, f):
        return median(f(r) for r in self.records)

    @property
    def first(self) -> dict:
        return self.records[0]

    @property
    def wall_s(self):
        return self._median(lambda r: r["wall_s"])

    @property
    def accuracy(self):
        return self._median(lambda r: r["test_accuracy"])

    @property
    def epochs_run(self):
        return self._median(lambda r: r["epochs_run"])

    @property
    def startup_s(self):
        return self._median(lambda r: r["startup_s"])

    @property
    def epoch_s(self):
        """The median over repeats of each run's steady epoch."""
        return self._median(steady_epoch_s)

    def components(self) -> dict[str, float]:
        """Per component, the median over repeats of its seconds in a run."""
        per_run = [component_seconds(r) for r in self.records]
        return {name: median(c[name] for c in per_run) for name in COMPONENTS}


def summarize(records: list[dict]) -> list[Summary]:
    """One Summary per configuration, ordered by engine, dataset, workers (most first), cores and epoch cap."""
    return sorted(
        (Summary(v) for v in group_by(records, configuration).values()),
        key=lambda s: (
            s.first["engine"],
            s.first["dataset"],
            -s.first["workers"],
            s.first["cores_per_worker"],
            s.first["epochs"],
        ),
    )


def series(records: list[dict]) -> dict[str, list[Summary]]:
    """Summaries grouped by series (engine + configuration, :func:`series_label`), in a stable order."""
    out = defaultdict(list)
    for s in summarize(records):
        out[series_label(s.first)].append(s)
    return dict(sorted(out.items()))
