"""Reading stage parameters from ``params.yaml`` (typed by :func:`robots.config.build_config`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from robots.config import ConfigError, build_config

__all__ = ["DEFAULT_PARAMS", "ConfigError", "build_config", "load_section"]

DEFAULT_PARAMS = Path("params.yaml")


def load_section(section: str, path: str | Path = DEFAULT_PARAMS) -> dict[str, Any]:
    """The ``section`` mapping of ``path``; an empty dict when the file or section is absent."""
    path = Path(path)
    if not path.exists():
        return {}
    data = yaml.safe_load(path.read_text()) or {}
    value = data.get(section, {})
    if not isinstance(value, dict):
        raise ConfigError(
            f"{path}: section {section!r} must be a mapping, got {type(value).__name__}")
    return value
