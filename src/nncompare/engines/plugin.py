"""What an engine declares about itself, once, so that nothing else in nncompare has to name it.

Every engine (the three built-in ones included) is an :class:`EnginePlugin` registered under the
entry-point group ``nncompare.engines`` (see :mod:`nncompare.engines.registry`). The CLI's
choices, the cluster-address detection, the engine's settings with their environment variables
and flags, the record's library versions, the asv parameters, the floor and the plots' styles
are all read from it. The declaration imports nothing heavy: the engine's class is named as a
string and imported only when a job runs on it.
"""

from __future__ import annotations

import importlib
import math
import typing
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, field, fields

from nncompare.errors import UsageError

#: The longest any engine timeout may be: a week.
LONGEST_S = 7 * 24 * 3600.0


@dataclass(frozen=True)
class PlotStyle:
    """How the report's figures draw an engine's series (matplotlib marker, line style and size)."""

    marker: str = "o"
    linestyle: str = "-"
    markersize: float = 6.0


def setting(default, *, help: str, env: str | None = None, flag: str | None = None):
    """A field of an engine's settings dataclass, with where a user may set it.

    ``env``: an ``NNCOMPARE_*`` environment variable; ``flag``: a command-line flag of ``run``,
    ``sweep`` and ``paper``. The field's type decides how text is read: ``float`` (seconds:
    finite, above 0, at most a week), ``bool`` (1/0, true/false, yes/no, on/off) or a mapping
    (``KEY=VALUE`` pairs, the flag repeatable).
    """
    metadata = {"help": help, "env": env, "flag": flag}
    if isinstance(default, Mapping):
        frozen = dict(default)
        return field(default_factory=lambda: dict(frozen), metadata=metadata)
    return field(default=default, metadata=metadata)


def setting_kind(settings_class: type, name: str) -> str:
    """``seconds``, ``flag`` or ``pairs``: how a setting's text is read (from its annotation)."""
    hint = typing.get_type_hints(settings_class)[name]
    origin = typing.get_origin(hint) or hint
    if origin is bool:
        return "flag"
    if origin in (float, int):
        return "seconds"
    if isinstance(origin, type) and issubclass(origin, Mapping):
        return "pairs"
    raise TypeError(f"{settings_class.__name__}.{name}: an engine setting is a float, a bool or a mapping")


def parse_setting(kind: str, source: str, text: str | list[str] | tuple[str, ...]):
    """The value of a setting of ``kind`` from ``text``; ``source`` (a variable or flag) names it in errors."""
    if kind == "seconds":
        try:
            value = float(text)
        except (TypeError, ValueError):
            raise UsageError(f"{source} must be a number of seconds, got {text!r}") from None
        check_seconds(source, value)
        return value
    if kind == "flag":
        word = str(text).strip().lower()
        if word in ("1", "true", "yes", "on"):
            return True
        if word in ("0", "false", "no", "off"):
            return False
        raise UsageError(f"{source} must be 1 or 0, got {text!r}")
    pairs = {}
    for item in [text] if isinstance(text, str) else text:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"{source}: write KEY=VALUE, got {item!r}")
        pairs[key.strip()] = value  # a later KEY wins, as in spark-submit
    return pairs


def check_seconds(source: str, value) -> None:
    if not (isinstance(value, (int, float)) and math.isfinite(value) and 0 < value <= LONGEST_S):
        raise UsageError(f"{source} must be a number of seconds above 0 and at most {LONGEST_S:.0f}, got {value!r}")


@dataclass(frozen=True)
class EnginePlugin:
    """One engine, declared once; registered under the entry-point group ``nncompare.engines``.

    ``engine_class`` is ``"package.module:Class"`` (a subclass of :class:`nncompare.engines.Engine`),
    imported only when a job runs on the engine. ``install`` is the pip requirement that brings
    its dependencies (shown when they are missing). ``cluster_schemes`` are the prefixes of the
    ``--cluster`` addresses it accepts (none: it runs only in this process). ``concurrent`` is
    True when its shards train side by side, False when one after another in this process.
    ``settings`` is a frozen dataclass of the engine's own settings (fields made with
    :func:`setting`). ``packages`` are the distributions whose versions its records keep.
    ``bare_startup`` (``"module:function"``) starts the bare framework the engine builds on, for
    the floor: ``function(workers, training_stack)`` returns its seconds up and through a first
    task. ``order`` places it in lists and tables (the built-ins take 0-2).
    """

    name: str
    engine_class: str
    description: str
    install: str | None = None
    cluster_schemes: tuple[str, ...] = ()
    concurrent: bool = True
    settings: type | None = None
    style: PlotStyle = PlotStyle()
    packages: tuple[str, ...] = ()
    bare_startup: str | None = None
    order: int = 100

    def __post_init__(self):
        if not self.name.isidentifier() or self.name != self.name.lower():
            raise ValueError(f"engine name {self.name!r}: use a lower-case identifier, such as 'ray'")
        if ":" not in self.engine_class:
            raise ValueError(f"engine {self.name}: engine_class is 'package.module:Class', got {self.engine_class!r}")
        for f in fields(self.settings) if self.settings is not None else ():
            setting_kind(self.settings, f.name)  # every setting is of a kind text can be read as

    def load(self) -> type:
        """The engine's class; a missing dependency is one line that says what to install."""
        return load_object(self.engine_class, f"engine {self.name!r}", self.install)

    def accepts(self, address: str) -> bool:
        """Whether ``address`` is one of this engine's cluster addresses (by its scheme)."""
        return any(address.startswith(scheme) for scheme in self.cluster_schemes)

    def setting_fields(self) -> list:
        return list(fields(self.settings)) if self.settings is not None else []

    def default_settings(self):
        return self.settings() if self.settings is not None else None

    def settings_from(self, environ: Mapping[str, str], values: Mapping[str, object] | None = None):
        """The engine's settings: defaults, then its environment variables, then ``values`` (flags, code)."""
        if self.settings is None:
            if values:
                raise UsageError(f"engine {self.name!r} has no settings; got {', '.join(values)}")
            return None
        chosen = {}
        for f in self.setting_fields():
            env = f.metadata.get("env")
            if env and environ.get(env, "") != "":
                chosen[f.name] = parse_setting(setting_kind(self.settings, f.name), env, environ[env])
        for name, value in (values or {}).items():
            if name not in {f.name for f in self.setting_fields()}:
                raise UsageError(f"engine {self.name!r} has no setting {name!r}")
            chosen[name] = value
        for f in self.setting_fields():
            if f.name in chosen and setting_kind(self.settings, f.name) == "seconds":
                check_seconds(f"{self.name} setting {f.name}", chosen[f.name])
        return self.settings(**chosen)


def load_object(path: str, what: str, install: str | None = None):
    """Import ``"module:attribute"``; a missing third-party module is a UsageError naming what to install."""
    module_name, _, attribute = path.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and module_name.startswith(exc.name):
            raise UsageError(f"{what} is not available: its module {module_name} is missing") from None
        hint = f"; install it with: pip install '{install}'" if install else ""
        raise UsageError(f"{what} needs {exc.name}{hint}") from None
    try:
        return getattr(module, attribute)
    except AttributeError:
        raise UsageError(f"{what}: {module_name} has no {attribute}") from None


def default_of(settings_class: type, name: str):
    """A settings field's default value (for help texts)."""
    f = {f.name: f for f in fields(settings_class)}[name]
    return f.default_factory() if f.default is MISSING else f.default
