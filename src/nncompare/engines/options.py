"""How an engine behaves, apart from what the job is: timeouts, malloc policy, UIs, hooks.

One object, built where the CLI reads the environment (:meth:`EngineOptions.from_environ`),
so no engine reads ``os.environ`` for its settings and every value is checked up front.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace

from nncompare.errors import UsageError

#: Called in the worker, next to its shard, before each round: ``hook(shard, position)``.
#: Tests pass one to inject faults; it must be picklable (it travels to Dask and Spark workers).
RoundHook = Callable[[int, "object"], None]

#: Environment variable -> option, for the options a user may set without a flag.
ENVIRONMENT = {
    "NNCOMPARE_DASK_TIMEOUT": "dask_timeout_s",
    "NNCOMPARE_DASK_PIN_MALLOC": "pin_malloc",
    "NNCOMPARE_SPARK_CONNECT_TIMEOUT": "connect_timeout_s",
    "NNCOMPARE_SPARK_ROUND_TIMEOUT": "round_timeout_s",
    "NNCOMPARE_SPARK_EXECUTOR_TIMEOUT": "executor_timeout_s",
}
_LONGEST_S = 7 * 24 * 3600.0


@dataclass(frozen=True)
class EngineOptions:
    """Engine settings with their defaults; see the README's "Dask and Spark" section."""

    #: Dask: seconds to wait for a scheduler, for the expected workers, or for a replacement worker.
    dask_timeout_s: float = 20.0
    #: Dask, remote clusters: pin glibc's malloc thresholds in workers that run with MALLOC_TRIM_THRESHOLD_.
    pin_malloc: bool = False
    #: Dask, own cluster: keep the nanny's MALLOC_TRIM_THRESHOLD_ (only to measure what removing it saves).
    keep_malloc_trim: bool = False
    #: Spark: seconds for the barrier tasks to connect to the driver (at placement and after a retry).
    connect_timeout_s: float = 300.0
    #: Spark: seconds one round may take before its task counts as lost.
    round_timeout_s: float = 600.0
    #: Spark, cluster masters: seconds to wait for the executors to register.
    executor_timeout_s: float = 180.0
    #: Spark: extra ``--conf`` settings, applied after the engine's own.
    spark_conf: Mapping[str, str] = field(default_factory=dict)
    #: Start the Spark UI / the Dask dashboard (off by default: they cost CPU and ports).
    dashboard: bool = False
    #: Runs in each worker before each round; tests inject faults with it.
    before_round: RoundHook | None = None

    def __post_init__(self):
        for f in fields(self):
            if f.name.endswith("_timeout_s"):
                value = getattr(self, f.name)
                if not (isinstance(value, (int, float)) and math.isfinite(value) and 0 < value <= _LONGEST_S):
                    raise UsageError(
                        f"{f.name} must be a number of seconds between 0 and {_LONGEST_S:.0f}, got {value!r}"
                    )

    def with_(self, **changes) -> EngineOptions:
        return replace(self, **changes)

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None, **overrides) -> EngineOptions:
        """Options from ``NNCOMPARE_*`` variables (see :data:`ENVIRONMENT`), then ``overrides``."""
        environ = os.environ if environ is None else environ
        values = {}
        for name, option in ENVIRONMENT.items():
            text = environ.get(name)
            if text is None or text == "":
                continue
            values[option] = _parse_flag(name, text) if option == "pin_malloc" else _parse_seconds(name, text)
        return cls(**{**values, **overrides})


def _parse_seconds(name: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise UsageError(f"{name} must be a number of seconds, got {text!r}") from None
    if not (math.isfinite(value) and 0 < value <= _LONGEST_S):
        raise UsageError(f"{name} must be between 0 and {_LONGEST_S:.0f} seconds, got {text!r}")
    return value


def _parse_flag(name: str, text: str) -> bool:
    if text.strip().lower() in ("1", "true", "yes", "on"):
        return True
    if text.strip().lower() in ("0", "false", "no", "off"):
        return False
    raise UsageError(f"{name} must be 1 or 0, got {text!r}")
