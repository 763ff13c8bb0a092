"""Training environments, by name: ``load("wildrobot_walk", {"rewards": {...}})``.

A task registers a factory (config type + env class) here; ``load`` builds the typed config from
the defaults plus the overrides dict and constructs the environment. Adding a task or robot is
one ``register`` call in this file (or in the task's own module) and no edit anywhere else.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from robots.config import build_config
from robots.errors import AmpkitError
from training.envs.base import Env, State

__all__ = ["DEFAULT_ENV", "Env", "State", "UnknownEnvError", "load", "register", "registered"]

DEFAULT_ENV = "wildrobot_walk"


class UnknownEnvError(AmpkitError, ValueError):
    """An environment name that is not registered."""

    def __init__(self, name: str, known: list[str]) -> None:
        super().__init__(f"unknown environment {name!r}; registered: {known}")
        self.name, self.known = name, known


@dataclass(frozen=True)
class _Entry:
    config_type: type
    make: Callable[[Any], Env]


_REGISTRY: dict[str, _Entry] = {}


def register(name: str, config_type: type, make: Callable[[Any], Env]) -> None:
    """Register task ``name``: ``make(config_type instance) -> Env``."""
    if name in _REGISTRY:
        raise AmpkitError(f"environment {name!r} is already registered")
    _REGISTRY[name] = _Entry(config_type, make)


def registered() -> list[str]:
    """Names of the registered environments, sorted."""
    return sorted(_REGISTRY)


def load(name: str = DEFAULT_ENV, overrides: dict[str, Any] | None = None) -> Env:
    """Build environment ``name`` with its default config plus ``overrides``.

    Args:
        name: A name from :func:`registered`.
        overrides: Config field -> value; nested dicts or dotted keys for nested configs,
            e.g. ``{"randomization": {"enabled": False}, "rewards.weights.torque": 0.0}``.
    Raises:
        UnknownEnvError: ``name`` is not registered (lists the names).
        robots.config.ConfigError: an unknown override key (lists the valid keys).
    """
    if name not in _REGISTRY:
        raise UnknownEnvError(name, registered())
    entry = _REGISTRY[name]
    config = build_config(entry.config_type, overrides, where=f"env {name}")
    return entry.make(config)


def _register_builtin() -> None:
    from training.envs.wildrobot_track import TrackConfig, WildRobotTrack
    from training.envs.wildrobot_walk import WalkConfig, WildRobotWalk

    register("wildrobot_walk", WalkConfig, WildRobotWalk)
    register("wildrobot_track", TrackConfig, WildRobotTrack)


_register_builtin()
