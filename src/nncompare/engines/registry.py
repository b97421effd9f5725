"""The engines this installation has: every :class:`EnginePlugin` under the entry-point group.

``nncompare.engines`` is the group, the convention of pytest plugins and fsspec
implementations. nncompare's own engines register through it as any other package's would
(``[project.entry-points."nncompare.engines"]`` in pyproject.toml), so an engine installed
from another package is as much an engine as the built-in ones: the CLI, the record, the
report and the asv suite all list engines from here.
"""

from __future__ import annotations

import functools
import logging
from importlib.metadata import entry_points

from nncompare.engines.plugin import EnginePlugin
from nncompare.errors import UsageError

ENTRY_POINT_GROUP = "nncompare.engines"
log = logging.getLogger(__name__)


@functools.cache
def plugins() -> dict[str, EnginePlugin]:
    """Every registered engine by name, in their declared order (then by name).

    An entry point that fails to load, or that is not an :class:`EnginePlugin` of its own name,
    is left out with a warning: one broken package must not take the others down.
    """
    found: dict[str, EnginePlugin] = {}
    for point in entry_points(group=ENTRY_POINT_GROUP):
        try:
            plugin = point.load()
        except Exception as exc:  # noqa: BLE001 - any error in someone else's package
            log.warning("engine %r (%s) could not be loaded: %s: %s", point.name, point.value, type(exc).__name__, exc)
            continue
        if not isinstance(plugin, EnginePlugin) or plugin.name != point.name:
            log.warning(
                "entry point %r (%s) is not an EnginePlugin named %r; left out", point.name, point.value, point.name
            )
            continue
        if plugin.name in found and found[plugin.name] != plugin:
            log.warning(
                "engine %r is registered twice; the first (%s) is kept", plugin.name, found[plugin.name].engine_class
            )
            continue
        found[plugin.name] = plugin
    return dict(sorted(found.items(), key=lambda item: (item[1].order, item[0])))


def engine_names() -> tuple[str, ...]:
    return tuple(plugins())


def plugin(name: str) -> EnginePlugin:
    """The engine called ``name``; an unknown name is a UsageError listing the ones there are."""
    try:
        return plugins()[name]
    except KeyError:
        known = ", ".join(plugins()) or "none (is nncompare installed? pip install -e .)"
        raise UsageError(f"unknown engine {name!r}; choose one of {known}") from None


def engine_class(name: str) -> type:
    """The class of the engine called ``name``, imported now (its dependencies must be installed)."""
    return plugin(name).load()


def engine_for_address(address: str) -> str | None:
    """The engine whose cluster addresses look like ``address`` (by scheme), or None."""
    return next((p.name for p in plugins().values() if p.accepts(address)), None)


def style(name: str):
    """How plots draw ``name``; an engine this installation lacks (an old record's) gets the default style."""
    from nncompare.engines.plugin import PlotStyle

    return plugins()[name].style if name in plugins() else PlotStyle()


def record_packages() -> tuple[str, ...]:
    """The distributions of every registered engine whose versions a record keeps."""
    return tuple(dict.fromkeys(package for p in plugins().values() for package in p.packages))
