"""Typed configs from plain nested dicts: params.yaml sections and command-line overrides.

``build_config(Cls, {"rewards": {"torque": -1e-4}})`` gives ``Cls`` with defaults everywhere
except the named fields; nested dataclass fields take nested dicts, lists become tuples, and an
unknown key is an error that lists the valid ones.
"""

from __future__ import annotations

import dataclasses
import sys
import typing
from typing import Any, TypeVar

from robots.errors import AmpkitError

T = TypeVar("T")


class ConfigError(AmpkitError, ValueError):
    """An override that does not fit the config dataclass (unknown key, wrong nesting)."""


def build_config(cls: type[T], overrides: dict[str, Any] | None = None, where: str = "config") -> T:
    """``cls()`` with ``overrides`` applied, recursively for nested dataclass fields.

    Args:
        cls: A dataclass type whose fields all have defaults.
        overrides: Field name -> value; a nested dataclass field takes a dict of its own fields
            (merged onto that field's default) or an instance of the dataclass.
        where: Prefix used in error messages (``config.rewards``).
    Raises:
        ConfigError: an unknown key (the message lists the valid keys) or a dict given for a
            field that is not a dataclass.
    """
    return _apply(cls(), overrides or {}, where)


def _apply(base: T, overrides: dict[str, Any], where: str) -> T:
    if not isinstance(overrides, dict):
        raise ConfigError(f"{where}: expected a mapping of field -> value, got "
                          f"{type(overrides).__name__}")
    fields = {f.name: f for f in dataclasses.fields(base)}  # type: ignore[arg-type]
    unknown = sorted(set(overrides) - set(fields))
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown}; valid keys: {sorted(fields)}")
    hints = typing.get_type_hints(type(base), vars(sys.modules[type(base).__module__]))
    changes: dict[str, Any] = {}
    for name, value in overrides.items():
        current = getattr(base, name)
        if dataclasses.is_dataclass(current) and isinstance(value, dict):
            changes[name] = _apply(current, value, f"{where}.{name}")
        elif isinstance(value, dict) and not _accepts_dict(hints.get(name)):
            raise ConfigError(f"{where}.{name}: is not a nested config, got a mapping {value}")
        elif isinstance(value, list):
            changes[name] = tuple(value)
        else:
            changes[name] = value
    return dataclasses.replace(base, **changes)  # type: ignore[type-var]


def _accepts_dict(annotation: Any) -> bool:
    origin = typing.get_origin(annotation) or annotation
    return origin is dict or annotation is Any


def config_to_dict(config: Any) -> dict[str, Any]:
    """A config dataclass as plain nested dicts/lists (for logs and checkpoint metadata)."""
    def convert(value: Any) -> Any:
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            return {f.name: convert(getattr(value, f.name)) for f in dataclasses.fields(value)}
        if isinstance(value, tuple | list):
            return [convert(v) for v in value]
        if isinstance(value, dict):
            return {k: convert(v) for k, v in value.items()}
        return value

    return convert(config)
