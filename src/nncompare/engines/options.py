"""How engines behave, apart from what the job is: each engine's own settings, the UI, test hooks.

One object, built where the CLI reads the environment and the flags
(:meth:`EngineOptions.from_environ`), so no engine reads ``os.environ`` for its settings and
every value is checked up front. Each engine's settings are its plugin's dataclass
(:class:`~nncompare.engines.plugin.EnginePlugin`), kept here by engine name.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace

#: Called in the worker, next to its shard, before each round: ``hook(shard, position)``.
#: Tests pass one to inject faults; it must be picklable (it travels to Dask and Spark workers).
RoundHook = Callable[[int, "object"], None]


@dataclass(frozen=True)
class EngineOptions:
    """What every engine takes besides the job: the UI switch, the test hook, and per-engine settings."""

    #: Start the engine's own UI (the Spark UI, the Dask dashboard); off by default: they cost CPU and ports.
    dashboard: bool = False
    #: Runs in each worker before each round; tests inject faults with it.
    before_round: RoundHook | None = None
    #: Engine name -> that engine's settings object (its plugin's dataclass); an engine not named gets its defaults.
    settings: Mapping[str, object] = field(default_factory=dict)

    def settings_for(self, engine: str):
        """The settings of ``engine``: the ones given, else its plugin's defaults (None if it has none)."""
        if engine in self.settings:
            return self.settings[engine]
        from nncompare.engines.registry import plugin

        return plugin(engine).default_settings()

    def with_(self, **changes) -> EngineOptions:
        return replace(self, **changes)

    def with_settings(self, engine: str, **values) -> EngineOptions:
        """These options with some of ``engine``'s settings changed (the others as they were)."""
        return replace(self, settings={**self.settings, engine: replace(self.settings_for(engine), **values)})

    @classmethod
    def from_environ(
        cls,
        environ: Mapping[str, str] | None = None,
        values: Mapping[str, Mapping[str, object]] | None = None,
        **common,
    ) -> EngineOptions:
        """Every registered engine's settings from its ``NNCOMPARE_*`` variables, then ``values`` (engine ->
        {setting: value}, from flags); ``common`` sets ``dashboard`` and ``before_round``."""
        from nncompare.engines.registry import plugins

        environ = os.environ if environ is None else environ
        values = values or {}
        settings = {
            name: p.settings_from(environ, values.get(name)) for name, p in plugins().items() if p.settings is not None
        }
        return cls(settings=settings, **common)
