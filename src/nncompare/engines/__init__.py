"""Engines run the same rounds in different places: in this process, on Dask, on Spark, or a plug-in's.

Each engine is declared once, as an :class:`EnginePlugin` under the entry-point group
``nncompare.engines`` (:mod:`nncompare.engines.registry`); this package holds the protocol
(:mod:`~nncompare.engines.base`) and the built-in engines, each a package or module of its own.
"""

from __future__ import annotations

from nncompare.engines.base import Engine, RoundPosition, RoundResult
from nncompare.engines.options import EngineOptions
from nncompare.engines.plugin import EnginePlugin, PlotStyle, setting
from nncompare.engines.registry import engine_class, engine_for_address, engine_names, plugin, plugins


def create_engine(spec, cluster: str | None = None, options: EngineOptions | None = None) -> Engine:
    """The engine the job names, not yet started."""
    return engine_class(spec.engine)(spec, cluster=cluster, options=options)


__all__ = [
    "Engine",
    "EngineOptions",
    "EnginePlugin",
    "PlotStyle",
    "RoundPosition",
    "RoundResult",
    "create_engine",
    "engine_class",
    "engine_for_address",
    "engine_names",
    "plugin",
    "plugins",
    "setting",
]
