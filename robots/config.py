"""Typed configs from plain nested dicts: params.yaml sections and command-line overrides.

``build_config(Cls, {"rewards": {"torque": -1e-4}})`` gives ``Cls`` with defaults everywhere
except the named fields; ``replace_config(config, …)`` applies the same onto an existing config.
Nested dataclass fields take nested dicts or dotted keys (``{"rewards.torque": -1e-4}`` is the
same override), lists become tuples. This is the one builder of typed configs: params.yaml
sections, ``--set`` overrides, environment overrides and checkpoint configs all go through it.
Everything is checked before any work starts:

- an unknown key is an error that lists the valid ones;
- values are coerced strictly by the field's type hint: a bool is only ``true``/``false``
  (the string ``"false"`` is refused, never taken as true), an int is an integer (``4.0`` is
  accepted as 4, ``"4"`` and ``4.5`` are not), a float is a finite number, a str is a string,
  ``X | None`` also takes null, tuples take lists whose items are coerced in turn;
- numeric bounds: a config class may declare ``BOUNDS: ClassVar[dict[str, str]]`` mapping a
  field to ``"> 0"``, ``">= 1"``, ``"<= 5"``, ``"[0, 1]"`` or ``"(0, 1]"`` (applied to each item
  of a tuple field); an int field without a declared bound must not be negative when its
  default is not (counts, sizes, seeds);
- the class's ``__post_init__`` and, if present, ``validate()`` run, and their ValueErrors
  come out as :class:`ConfigError` with the key's location.
"""

from __future__ import annotations

import dataclasses
import math
import re
import sys
import types
import typing
from collections.abc import Mapping
from typing import Any, TypeVar

from robots.errors import AmpkitError

T = TypeVar("T")


class ConfigError(AmpkitError, ValueError):
    """A parameter that does not fit its config (unknown key, wrong type, out of bounds)."""


def build_config(cls: type[T], overrides: Mapping[str, Any] | None = None,
                 where: str = "config") -> T:
    """``cls()`` with ``overrides`` applied (recursively) and every value checked.

    Args:
        cls: A dataclass type whose fields all have defaults.
        overrides: Field name -> value; a nested dataclass field takes a dict of its own fields
            (merged onto that field's default) or an instance of the dataclass.
        where: Prefix used in error messages (``params.yaml: retarget``).
    Raises:
        ConfigError: an unknown key (the message lists the valid keys), a value of the wrong
            type, a value out of bounds, or one the class itself refuses.
    """
    try:
        base = cls()
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{where}: {exc}") from exc
    return replace_config(base, overrides, where)


def replace_config(config: T, overrides: Mapping[str, Any] | None = None,
                   where: str = "config") -> T:
    """``config`` with ``overrides`` applied (nested or dotted keys) and every value checked,
    as :func:`build_config` does onto the defaults.

    Raises:
        ConfigError: as :func:`build_config`.
    """
    config = _apply(config, overrides or {}, where)
    check_config(config, where)
    return config


def nest_dotted(overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Dotted keys as nested mappings: ``{"a.b": 1, "a": {"c": 2}}`` -> ``{"a": {"b": 1,
    "c": 2}}``. Only keys are split (a mapping given as a value keeps its keys), and a later
    key wins where two name the same field."""
    nested: dict[str, Any] = {}
    for key, value in overrides.items():
        *parents, leaf = str(key).split(".")
        node = nested
        for part in parents:
            child = node.get(part)
            node[part] = child = child if isinstance(child, dict) else {}
            node = child
        node[leaf] = merge_nested(node.get(leaf), value)
    return nested


def merge_nested(current: Any, value: Any) -> Any:
    """``value`` merged onto ``current`` where both are mappings (recursively), else ``value``;
    mappings come out as new dicts, so the caller's are never changed."""
    if isinstance(value, Mapping):
        out = dict(current) if isinstance(current, dict) else {}
        for key, item in value.items():
            out[key] = merge_nested(out.get(key), item)
        return out
    return value


def _apply(base: T, overrides: Mapping[str, Any], where: str) -> T:
    if not isinstance(overrides, Mapping):
        raise ConfigError(f"{where}: expected a mapping of key -> value, got "
                          f"{_describe(overrides)}")
    overrides = nest_dotted(overrides)
    fields = {f.name: f for f in dataclasses.fields(base)}  # type: ignore[arg-type]
    unknown = sorted(str(k) for k in set(overrides) - set(fields))
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown}; valid keys: {sorted(fields)}")
    hints = _hints(type(base))
    changes: dict[str, Any] = {}
    for name, value in overrides.items():
        changes[name] = coerce_value(hints.get(name, Any), value, f"{where}.{name}",
                                     current=getattr(base, name))
    try:
        return dataclasses.replace(base, **changes)  # type: ignore[type-var]
    except (ValueError, TypeError) as exc:
        if isinstance(exc, ConfigError):
            raise
        raise ConfigError(f"{where}: {exc}") from exc


def _construct(cls: type, values: dict[str, Any], where: str) -> Any:
    """A new ``cls`` from ``values`` (for items of a list of configs; required fields too)."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(str(k) for k in set(values) - set(fields))
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown}; valid keys: {sorted(fields)}")
    required = [name for name, f in fields.items() if f.default is dataclasses.MISSING
                and f.default_factory is dataclasses.MISSING and f.init]
    missing = [name for name in required if name not in values]
    if missing:
        raise ConfigError(f"{where}: missing key(s) {missing}")
    hints = _hints(cls)
    kwargs = {name: coerce_value(hints.get(name, Any), value, f"{where}.{name}")
              for name, value in values.items()}
    try:
        return cls(**kwargs)
    except (ValueError, TypeError) as exc:
        if isinstance(exc, ConfigError):
            raise
        raise ConfigError(f"{where}: {exc}") from exc


def _hints(cls: type) -> dict[str, Any]:
    try:
        return typing.get_type_hints(cls, vars(sys.modules[cls.__module__]))
    except Exception:  # noqa: BLE001 - unresolvable hints: fall back to the default's type
        return {f.name: type(f.default) if f.default is not dataclasses.MISSING else Any
                for f in dataclasses.fields(cls)}


def _describe(value: Any) -> str:
    if isinstance(value, str):
        return f"the string {value!r}"
    if value is None:
        return "null"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list | tuple):
        return f"a list {list(value)!r}"
    return f"{type(value).__name__} {value!r}"


def coerce_value(annotation: Any, value: Any, where: str, current: Any = None) -> Any:
    """``value`` converted to the type ``annotation`` describes, or a ConfigError saying why.

    Args:
        annotation: The field's type hint.
        value: The raw value (from YAML or ``--set``).
        where: The key, for messages.
        current: The field's current value (a nested dataclass is merged onto it).
    """
    if annotation is Any or annotation is typing.Any:
        return tuple(value) if isinstance(value, list) else value
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Union or origin is types.UnionType:
        if value is None:
            if type(None) in args:
                return None
            raise ConfigError(f"{where}: must not be null")
        arms = [a for a in args if a is not type(None)]
        errors = []
        for arm in arms:
            try:
                return coerce_value(arm, value, where, current)
            except ConfigError as exc:
                errors.append(str(exc))
        if len(errors) == 1:
            raise ConfigError(errors[0])
        raise ConfigError(f"{where}: expected {_type_name(annotation)}, got {_describe(value)}")
    if origin is typing.Literal:
        if value in args:
            return value
        raise ConfigError(f"{where}: expected one of {list(args)}, got {_describe(value)}")
    if dataclasses.is_dataclass(annotation) and isinstance(annotation, type):
        if isinstance(value, annotation):
            return value
        if isinstance(value, dict):
            if isinstance(current, annotation):
                return _apply(current, value, where)
            return _construct(annotation, value, where)
        raise ConfigError(f"{where}: is a nested config; expected a mapping of its keys, got "
                          f"{_describe(value)}")
    if origin in (tuple, list) or annotation in (tuple, list):
        return _coerce_sequence(annotation, origin, args, value, where)
    if origin is dict or annotation is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {_describe(value)}")
        key_type, value_type = args if len(args) == 2 else (Any, Any)
        return {coerce_value(key_type, k, f"{where} key", None):
                coerce_value(value_type, v, f"{where}[{k!r}]", None) for k, v in value.items()}
    return _coerce_scalar(annotation, value, where)


def _coerce_sequence(annotation: Any, origin: Any, args: tuple[Any, ...], value: Any,
                     where: str) -> tuple[Any, ...]:
    if not isinstance(value, list | tuple):
        raise ConfigError(f"{where}: expected a list, got {_describe(value)}")
    if not args:
        items = [(Any, v) for v in value]
    elif len(args) == 2 and args[1] is Ellipsis:
        items = [(args[0], v) for v in value]
    else:
        if len(args) != len(value):
            raise ConfigError(f"{where}: expected a list of {len(args)} items, got "
                              f"{len(value)}: {list(value)!r}")
        items = list(zip(args, value, strict=True))
    out = tuple(coerce_value(t, v, f"{where}[{i}]", None) for i, (t, v) in enumerate(items))
    return list(out) if origin is list else out  # type: ignore[return-value]


_YAML11_EXPONENT = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+")
"""A number in exponent notation that YAML 1.1 (PyYAML) leaves a string: ``1e-4``, ``-3e5``."""


def _coerce_scalar(annotation: Any, value: Any, where: str) -> Any:
    if annotation is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{where}: expected true or false, got {_describe(value)}")
    if annotation is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise ConfigError(f"{where}: expected an integer, got {_describe(value)}")
    if annotation is float:
        if isinstance(value, str) and _YAML11_EXPONENT.fullmatch(value.strip()):
            value = float(value)  # YAML 1.1 reads 3e-5 (no dot) as a string
        if isinstance(value, int | float) and not isinstance(value, bool):
            if not math.isfinite(value):
                raise ConfigError(f"{where}: expected a finite number, got {value!r}")
            return float(value)
        raise ConfigError(f"{where}: expected a number, got {_describe(value)}")
    if annotation is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"{where}: expected a string, got {_describe(value)}")
    if isinstance(annotation, type) and annotation is not type(None):
        if isinstance(value, annotation):
            return value
        raise ConfigError(f"{where}: expected {annotation.__name__}, got {_describe(value)}")
    return value


def _type_name(annotation: Any) -> str:
    if isinstance(annotation, type):
        return annotation.__name__
    return str(annotation).replace("typing.", "")


# --- bounds ---------------------------------------------------------------------------------

_BOUND = re.compile(r"^\s*(?P<op>>=|<=|>|<)\s*(?P<x>[-+0-9.eE]+|inf)\s*$")
_INTERVAL = re.compile(r"^\s*(?P<lo_kind>[\[(])\s*(?P<lo>[-+0-9.eE]+)\s*,\s*"
                       r"(?P<hi>[-+0-9.eE]+|inf)\s*(?P<hi_kind>[\])])\s*$")


def _within(value: float, bound: str) -> bool:
    match = _BOUND.match(bound)
    if match:
        x, op = float(match["x"]), match["op"]
        return {">": value > x, ">=": value >= x, "<": value < x, "<=": value <= x}[op]
    match = _INTERVAL.match(bound)
    if not match:
        raise ValueError(f"malformed bound {bound!r}")
    lo, hi = float(match["lo"]), float(match["hi"])
    above = value >= lo if match["lo_kind"] == "[" else value > lo
    below = value <= hi if match["hi_kind"] == "]" else value < hi
    return above and below


def check_config(config: Any, where: str = "config") -> None:
    """Check the numeric bounds of ``config`` (recursively), then its ``validate()``.

    Raises:
        ConfigError: the first value out of its bounds, naming the key and the bound, or what
            ``validate()`` refuses.
    """
    check_bounds(config, where)
    validate = getattr(config, "validate", None)
    if callable(validate):
        try:
            validate()
        except ConfigError:
            raise
        except ValueError as exc:
            raise ConfigError(f"{where}: {exc}") from exc


def check_bounds(config: Any, where: str = "config") -> None:
    """Check the numeric bounds of ``config`` and its nested configs (see the module doc).

    Raises:
        ConfigError: the first value out of its bounds, naming the key and the bound.
    """
    cls = type(config)
    bounds: dict[str, str] = getattr(cls, "BOUNDS", {}) or {}
    try:
        defaults = cls()
    except (TypeError, ValueError):  # required fields: no defaults to infer bounds from
        defaults = None
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        key = f"{where}.{f.name}"
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            check_bounds(value, key)
            continue
        bound = bounds.get(f.name)
        default = getattr(defaults, f.name, None)
        if bound is None and _is_int(default) and default >= 0:
            bound = ">= 0"  # counts, sizes and seeds are never negative
        if bound is None:
            continue
        items = value if isinstance(value, tuple | list) else (value,)
        for item in items:
            if _is_number(item) and not _within(float(item), bound):
                relation = "lie in" if bound.strip()[0] in "[(" else "be"
                raise ConfigError(f"{key}: must {relation} {bound.strip()}, got {item!r}")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
