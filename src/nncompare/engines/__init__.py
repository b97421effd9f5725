"""Engines run the same rounds in different places: in this process, on Dask, on Spark."""

from __future__ import annotations

import importlib

from nncompare.engines.base import Engine, RoundPosition, RoundResult
from nncompare.engines.options import EngineOptions
from nncompare.errors import UsageError

ENGINE_CLASSES = {
    "local": ("nncompare.engines.local", "LocalEngine", None),
    "dask": ("nncompare.engines.dask", "DaskEngine", "dask"),
    "spark": ("nncompare.engines.spark", "SparkEngine", "spark"),
}


def engine_class(name: str) -> type[Engine]:
    """Import an engine lazily, so the local engine never needs Dask or Spark installed."""
    try:
        module_name, class_name, extra = ENGINE_CLASSES[name]
    except KeyError:
        raise UsageError(f"unknown engine {name!r}; choose one of {', '.join(ENGINE_CLASSES)}") from None
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.startswith("nncompare"):
            raise UsageError(f"engine {name!r} is not available in this version of nncompare") from None
        raise UsageError(
            f"engine {name!r} needs {exc.name}; install it with: pip install 'nncompare[{extra}]'"
        ) from None
    return getattr(module, class_name)


def create_engine(spec, cluster: str | None = None, options: EngineOptions | None = None) -> Engine:
    return engine_class(spec.engine)(spec, cluster=cluster, options=options)


__all__ = ["Engine", "EngineOptions", "RoundPosition", "RoundResult", "create_engine", "engine_class"]
