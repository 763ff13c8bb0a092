"""Reading stage parameters from ``params.yaml`` into typed dataclasses."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, TypeVar

import yaml

from robots.errors import AmpkitError

T = TypeVar("T")
DEFAULT_PARAMS = Path("params.yaml")


class ParamsError(AmpkitError, ValueError):
    """A params.yaml section that cannot be turned into its config dataclass."""


def load_section(section: str, path: str | Path = DEFAULT_PARAMS) -> dict[str, Any]:
    """The ``section`` mapping of ``path``; an empty dict when the file or section is absent."""
    path = Path(path)
    if not path.exists():
        return {}
    data = yaml.safe_load(path.read_text()) or {}
    value = data.get(section, {})
    if not isinstance(value, dict):
        raise ParamsError(
            f"{path}: section {section!r} must be a mapping, got {type(value).__name__}")
    return value


def build_config(cls: type[T], values: dict[str, Any], where: str = "params") -> T:
    """Instantiate dataclass ``cls`` from ``values``; unknown keys are an error listing valid ones.

    Nested dataclass fields are built recursively from nested mappings.
    """
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise ParamsError(f"{where}: unknown key(s) {unknown}; valid keys: {sorted(fields)}")
    kwargs: dict[str, Any] = {}
    for name, value in values.items():
        field_type = fields[name].type
        target = _resolve(cls, field_type)
        if dataclasses.is_dataclass(target) and isinstance(value, dict):
            value = build_config(target, value, f"{where}.{name}")
        elif isinstance(value, list):
            value = tuple(value)
        kwargs[name] = value
    return cls(**kwargs)


def _resolve(cls: type, annotation: Any) -> Any:
    if isinstance(annotation, str):
        import sys
        module = sys.modules[cls.__module__]
        return getattr(module, annotation, None)
    return annotation
