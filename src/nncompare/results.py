"""From a results file to summaries: loading records, what defines a job, grouping, labels, a DataFrame.

The report, the plots, the explanation and the what-if model all read records through this
module, so they agree on what a configuration, a series and an epoch time are.

**Like with like.** A record's job is everything its ``spec`` holds (``JobSpec.to_dict()``:
dataset, engine, epochs cap and stopping, model, topology, sync, partition, training samples),
flattened, with the cluster it ran on and the nncompare version (:func:`job`). Runs are
repeats of one configuration only when all of it is equal; a series or a comparison leaves out
only the fields it varies on purpose (the workers of a speed-up, the engine of an engine
comparison). A field added to the spec later joins the grouping by itself. Labels
(:func:`labels`) name only the fields that differ between the groups shown.

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
from nncompare.job import counted, format_memory
from nncompare.record import PHASES, RECORD_KEYS, read_jsonl
from nncompare.steady import median, steady_epoch_s

#: The parts of a run's wall time: ``startup`` (the record's ``startup_s``), then its phases, by their record names.
COMPONENTS = ("startup", *PHASES)
#: Job fields a series may vary along: the topology, and the epochs cap with its stopping rule.
TOPOLOGY = ("workers", "cores_per_worker", "memory_per_worker_bytes")
STOPPING = ("epochs", "convergence_stop", "tol", "n_iter_no_change")
#: What a speed-up varies: the workers, with the memory per worker where it was scaled with them (the paper's
#: configurations), and the cap and stopping, which do not change what a steady epoch costs.
WORKER_AXIS = ("workers", "memory_per_worker_bytes", *STOPPING)


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


def _hashable(value):
    return tuple(_hashable(v) for v in value) if isinstance(value, list | tuple) else value


def job(record: dict) -> dict[str, Hashable]:
    """Everything that defines the record's job, flattened: its spec, the cluster and the nncompare version.

    Nested spec fields keep their own names (``batch_size``, ``workers``); ``train_samples`` is
    the count the run trained on (a spec's ``None`` means the whole training set). The record's
    top-level keys come first (an old record without a spec is described by them alone).
    """
    fields: dict[str, Hashable] = {k: record.get(k) for k in ("engine", "dataset", "epochs", *TOPOLOGY)}
    for name, value in (record.get("spec") or {}).items():
        inner = value if isinstance(value, dict) else {name: value}
        for k, v in inner.items():
            fields[f"{name}.{k}" if k in fields and name not in ("topology", k) else k] = _hashable(v)
    fields["train_samples"] = record.get("train_samples") or fields.get("train_samples")
    fields["cluster"] = record.get("cluster")
    fields["nncompare"] = (record.get("versions") or {}).get("nncompare")
    return fields


def key(record: dict, without: Iterable[str] = ()) -> tuple:
    """The record's job as a hashable key of (field, value) pairs, leaving out the fields in ``without``."""
    skip = set(without)
    return tuple((k, v) for k, v in job(record).items() if k not in skip)


def configuration(record: dict) -> tuple:
    """What repeats of one configuration share: the whole job."""
    return key(record)


def topology_group(record: dict) -> tuple:
    """One job on one topology, whatever its epochs cap and stopping rule."""
    return key(record, STOPPING)


def job_group(record: dict) -> tuple:
    """Engine, dataset, then the rest of what an epoch costs: the job without its topology, cap and stopping."""
    rest = key(record, (*TOPOLOGY, *STOPPING, "engine", "dataset"))
    return (record["engine"], record["dataset"], *rest)


def group_by(records: Iterable[dict], by: Callable[[dict], Hashable]) -> dict[Hashable, list[dict]]:
    """Records by ``by(record)``, in the order each key is first seen."""
    groups = defaultdict(list)
    for r in records:
        groups[by(r)].append(r)
    return dict(groups)


def paper_records(records: list[dict]) -> list[dict]:
    """The records ``nncompare paper`` tagged with the seed paper's configuration."""
    return [r for r in records if r.get("paper")]


# labels -------------------------------------------------------------------------------------------


def topology_label(r: dict, parts: Iterable[str] = TOPOLOGY, paper: bool = True) -> str:
    """``2w×1c`` (and ``×2GiB`` when the memory was set); with ``paper``, the paper's name for it when it has one.

    ``parts`` picks the topology fields to show (the others being equal, or the axis of a figure).
    """
    w, c, mem = (r.get(k) for k in TOPOLOGY)
    parts = [p for p in TOPOLOGY if p in set(parts)]
    if len(parts) > 1 and mem is None and "memory_per_worker_bytes" in parts:
        parts.remove("memory_per_worker_bytes")  # the engine's default memory goes without saying
    memory = format_memory(mem).replace(" ", "") if mem else "memory auto"
    if len(parts) == 1:  # one part alone reads better in words
        words = {
            "workers": counted(w, "worker"),
            "cores_per_worker": f"{counted(c, 'core')} per worker",
        }
        text = words.get(parts[0], f"{memory} per worker")
    else:
        shown = {"workers": f"{w}w", "cores_per_worker": f"{c}c", "memory_per_worker_bytes": memory}
        text = "×".join(shown[p] for p in parts)
    tag = r.get("paper") if paper else None
    return (f"{tag['config']} ({text})" if text else tag["config"]) if tag else text


_WORDS: dict[str, Callable] = {
    "train_samples": lambda v: f"{v:,} samples" if v else "all samples",
    "hidden_layer_sizes": lambda v: "hidden " + ",".join(map(str, v)),
    "batch_size": lambda v: f"batch {v}",
    "learning_rate_init": lambda v: f"learning rate {v:g}",
    "alpha": lambda v: f"alpha {v:g}",
    "seed": lambda v: f"seed {v}",
    "sync_every": lambda v: "averaged each epoch" if v is None else f"averaged every {v} batches",
    "partition": lambda v: f"{v} shards",
    "epochs": lambda v: f"max {v} epochs",
    "convergence_stop": lambda v: "convergence stop" if v else "no convergence stop",
    "tol": lambda v: f"tol {v:g}",
    "n_iter_no_change": lambda v: f"n_iter_no_change {v}",
    "cluster": lambda v: f"on {v}" if v else "started here",
    "nncompare": lambda v: f"nncompare {v}",
}


def describe(fields: dict, names: Iterable[str]) -> str:
    """The named fields of a job in words: the topology as ``W w×C c``, engine and dataset as they are."""
    names = list(names)
    topology = [n for n in names if n in TOPOLOGY]
    words = [str(fields[n]) for n in ("engine", "dataset") if n in names]
    words += [topology_label(fields, topology, paper="paper" in names)] if topology else []
    if not topology and "paper" in names and fields.get("paper"):
        words.append(fields["paper"]["config"])
    for n in names:
        if n in (*TOPOLOGY, "paper", "engine", "dataset"):
            continue
        v = fields.get(n)
        words.append(str(v) if n in ("activation", "solver") else _WORDS.get(n, _other(n))(v))
    return ", ".join(words)


def _other(name):
    return lambda v: f"{name} {v}"


def fields_of(group) -> dict:
    """A group's job fields (with its paper tag): a record, a list of records or a Summary."""
    first = group.first if isinstance(group, Summary) else group[0] if isinstance(group, list) else group
    return {**job(first), **({"paper": first["paper"]} if first.get("paper") else {})}


def _ignored(along: Iterable[str]) -> set[str]:
    """Fields a figure varies on purpose, and the paper's configuration name when that is a topology."""
    along = set(along)
    return along | ({"paper"} if along & set(TOPOLOGY) else set())


def differing(groups: list, along: Iterable[str] = ()) -> list[str]:
    """The job fields whose values differ between the groups (records, lists of records or Summaries).

    ``along``: fields the groups vary on purpose (a figure's axis), never counted as differing.
    """
    skip = _ignored(along)
    all_fields = [fields_of(g) for g in groups]
    names = list(dict.fromkeys(n for f in all_fields for n in f if n not in skip))
    return [n for n in names if len({repr(f.get(n)) for f in all_fields}) > 1]


def labels(groups: list, along: Iterable[str] = ()) -> list[str]:
    """One label per group, naming only what differs between them (the engine alone when nothing does)."""
    names = differing(groups, along) or ["engine"]
    return [describe(fields_of(g), names) for g in groups]


def common(groups: list, along: Iterable[str] = (), only: Iterable[str] | None = None) -> str:
    """What every group shares, in words: the caption beside labels that name only what differs.

    ``only``: the fields to mention if shared (a figure's subtitle has room for the main ones).
    """
    if not groups:
        return ""
    varying = set(differing(groups, along)) | _ignored(along) | {"paper"}
    shared = [n for n in fields_of(groups[0]) if n not in varying and (only is None or n in only)]
    return describe(fields_of(groups[0]), shared)


# summaries ----------------------------------------------------------------------------------------


@dataclass
class Summary:
    """The runs of one configuration (its repeats), by their medians."""

    records: list[dict]

    def _median(self, f):
        return median(f(r) for r in self.records)

    def spread(self, f) -> tuple[float, float]:
        values = [f(r) for r in self.records]
        return min(values), max(values)

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


def _order(fields: dict) -> tuple:
    """A sort key for job fields of mixed types (numbers by value, the rest by text)."""
    return tuple((0, v, "") if isinstance(v, int | float) else (1, 0, str(v)) for v in fields.values())


def summarize(records: list[dict]) -> list[Summary]:
    """One Summary per configuration, ordered by engine, dataset, workers (most first), then the rest of the job."""
    return sorted(
        (Summary(v) for v in group_by(records, configuration).values()),
        key=lambda s: (s.first["engine"], s.first["dataset"], -s.first["workers"], _order(job(s.first))),
    )


@dataclass
class Series:
    """Configurations that differ only along the fields a figure varies (its x axis); ``label`` names the rest."""

    label: str
    summaries: list[Summary]

    @property
    def records(self) -> list[dict]:
        return [r for s in self.summaries for r in s.records]


def series(records: list[dict], along: Iterable[str] = STOPPING) -> list[Series]:
    """Summaries grouped into series: equal jobs but for the fields in ``along``; labelled by what differs."""
    along = tuple(along)
    grouped = group_by(summarize(records), lambda s: key(s.first, along))
    groups = list(grouped.values())
    named = zip(labels([g[0] for g in groups], along), groups)
    return [Series(label, sums) for label, sums in sorted(named, key=lambda x: x[0])]


# a DataFrame for notebooks ------------------------------------------------------------------------

#: Record keys whose dicts become columns of their own (``phases_s.compute``, ``peak_rss_bytes.driver``, ...).
FLATTENED = ("phases_s", "peak_rss_bytes", "steady_epoch", "machine", "versions")


def frame(records: list[dict]):
    """The records as a pandas DataFrame: one row per run, the record's keys as columns.

    ``phases_s``, ``peak_rss_bytes``, ``steady_epoch``, ``machine`` and ``versions`` are
    flattened to ``key.field`` columns and the job (:func:`job`) to ``job.field`` columns; lists
    (``epoch_s``, ``rounds``) stay as they are. ``steady_epoch_s`` is the steady epoch.
    """
    try:
        import pandas as pd
    except ModuleNotFoundError:
        raise UsageError("tables of results need pandas: pip install 'nncompare[report]'") from None
    rows = []
    for r in records:
        row = {k: v for k, v in r.items() if k not in FLATTENED}
        for name in FLATTENED:
            for k, v in (r.get(name) or {}).items():
                row[f"{name}.{k}"] = v
        row.update({f"job.{k}": v for k, v in job(r).items()})
        row["steady_epoch_s"] = steady_epoch_s(r)
        rows.append(row)
    return pd.DataFrame(rows)
