"""Reading stage parameters from ``params.yaml`` (typed by :func:`robots.config.build_config`).

The file is checked whole before a stage does any work: a section name that no stage reads
(``retraget:``) is an error listing the valid ones, and :func:`validate_params` builds the
typed config of every section a stage names, so a wrong type or bound in a later stage's
section stops the first stage, not the one an hour later.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import yaml

from robots.config import ConfigError, build_config

__all__ = ["DEFAULT_PARAMS", "SECTION_CONFIGS", "ConfigError", "build_config", "known_sections",
           "load_params", "load_section", "validate_params"]

DEFAULT_PARAMS = Path("params.yaml")

SECTION_CONFIGS: dict[str, str] = {
    "source": "pipeline.sources:SourceConfig",
    "body_model": "pipeline.sources:BodyModelConfig",
    "synthesize": "retarget.synthesize:SynthesisConfig",
    "retarget": "retarget.retarget:RetargetConfig",
    "convert": "amp.convert:ConvertConfig",
    "feasibility": "amp.feasibility:FeasibilityConfig",
    "merge": "amp.merge:MergeConfig",
    "render_reference": "pipeline.render_reference:RenderReferenceConfig",
    "render_policy": "pipeline.render:RenderPolicyConfig",
}
"""params.yaml section -> ``module:Class`` of its typed config."""

OTHER_SECTIONS = ("train", "evaluate", "walk")
"""Sections read by dvc.yaml's (and walk/dvc.yaml's) ``${...}`` templating and the stage
commands it builds."""


def known_sections(path: str | Path = DEFAULT_PARAMS) -> list[str]:
    """Valid top-level sections: the typed ones, the templated ones, and every section a
    ``dvc.yaml`` beside ``path`` (or in the working directory) lists under a stage's
    ``params:``."""
    names = set(SECTION_CONFIGS) | set(OTHER_SECTIONS)
    for dvc_file in {Path(path).with_name("dvc.yaml"), Path("dvc.yaml")}:
        try:
            stages = (yaml.safe_load(dvc_file.read_text()) or {}).get("stages", {})
        except (OSError, yaml.YAMLError, AttributeError):
            continue
        for stage in stages.values() if isinstance(stages, dict) else []:
            for entry in stage.get("params", []) if isinstance(stage, dict) else []:
                if isinstance(entry, str):
                    names.add(entry.split(".")[0])
    return sorted(names)


def load_params(path: str | Path = DEFAULT_PARAMS) -> dict[str, Any]:
    """The whole parameters file as a mapping ({} when absent), its section names checked.

    Raises:
        ConfigError: not YAML, not a mapping, or an unknown section (the valid ones listed).
    """
    path = Path(path)
    if not path.exists():
        return {}
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or " ".join(str(exc).split())
        raise ConfigError(f"{path}: not valid YAML ({where}{problem})") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read ({exc})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of sections, got {type(data).__name__}")
    valid = known_sections(path)
    unknown = sorted(str(k) for k in data if k not in valid)
    if unknown:
        raise ConfigError(f"{path}: unknown section(s) {unknown}; valid sections: {valid}")
    return data


def load_section(section: str, path: str | Path = DEFAULT_PARAMS) -> dict[str, Any]:
    """The ``section`` mapping of ``path``; an empty dict when the file or section is absent.

    Raises:
        ConfigError: see :func:`load_params`; or the section is not a mapping.
    """
    value = load_params(path).get(section, {})
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(
            f"{path}: section {section!r} must be a mapping, got {type(value).__name__}")
    return value


def section_config(section: str, path: str | Path = DEFAULT_PARAMS) -> Any:
    """The typed config of ``section`` (defaults for what the file leaves out)."""
    module, _, name = SECTION_CONFIGS[section].partition(":")
    cls = getattr(importlib.import_module(module), name)
    return build_config(cls, load_section(section, path), f"{path}: {section}")


def validate_params(sections: tuple[str, ...], path: str | Path = DEFAULT_PARAMS) -> None:
    """Build the typed config of each of ``sections`` (refusing the first bad key or value).

    Raises:
        ConfigError: the first problem, naming the file, the key and what is wrong.
    """
    for section in sections:
        section_config(section, path)
