"""The evaluation scenario suite as data: one typed :class:`Scenario` per test condition.

A scenario says what the robot is asked to do (one or more velocity commands, spread over its
episodes round-robin) and under which conditions (floor friction, body masses, actuator
strength, sensor noise, pushes, control latency), for how many episodes of how many seconds.
The conditions are applied per episode as data (``training.evaluate`` writes them into the
environment state after reset), so every scenario of a suite runs in one compiled, vmapped
batch; ``env_overrides`` is the escape hatch for anything structural (such scenarios get an
environment, and a compile, of their own).

Add a scenario by appending one :class:`Scenario` to :func:`default_suite` or by passing your
own tuple to ``training.evaluate.evaluate_mjx``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

from robots.errors import AmpkitError

Command = tuple[float, float, float]
"""(vx [m/s], vy [m/s], yaw rate [rad/s]) in the heading frame, as the environment takes it."""


class ScenarioError(AmpkitError, ValueError):
    """A scenario that cannot run (no commands, no episodes, a bad factor)."""


@dataclass(frozen=True)
class Scenario:
    """One evaluation condition.

    Attributes:
        name: Key in the metrics file.
        commands: Velocity commands; episode i gets ``commands[i % len(commands)]`` and keeps
            it for the whole episode.
        episodes: Parallel episodes.
        seconds: Episode length [s]; surviving it without a fall is a success.
        friction: Sliding friction of every contact [-]; None keeps the model's.
        body_mass_scale: (body name, multiplier) pairs on mass and rotational inertia.
        strength_scale: Multiplier on every servo's kp, kv and torque limit.
        noise_scale: Multiplier on the environment's observation noise (0: noise-free).
        push_force_n: Magnitude of random horizontal pushes on the root [N]; 0: no pushes.
        push_interval_s: Range of the time between push starts [s] (the first push comes one
            interval after reset).
        push_duration_s: How long one push lasts [s].
        latency_steps: Control latency [control steps].
        env_overrides: (dotted key, value) pairs for the environment config, for anything not
            covered above (scenarios with different overrides compile separately).
    """

    name: str
    commands: tuple[Command, ...]
    episodes: int = 16
    seconds: float = 20.0
    friction: float | None = None
    body_mass_scale: tuple[tuple[str, float], ...] = ()
    strength_scale: float = 1.0
    noise_scale: float = 1.0
    push_force_n: float = 0.0
    push_interval_s: tuple[float, float] = (2.0, 4.0)
    push_duration_s: float = 0.1
    latency_steps: int = 0
    env_overrides: tuple[tuple[str, Any], ...] = ()

    def validate(self) -> Scenario:
        """Raise :class:`ScenarioError` for a scenario that cannot run; return self."""
        where = f"scenario {self.name!r}"
        if not self.commands or any(len(c) != 3 for c in self.commands):
            raise ScenarioError(f"{where}: needs one or more (vx, vy, yaw_rate) commands")
        if self.episodes < 1 or self.seconds <= 0:
            raise ScenarioError(f"{where}: episodes ({self.episodes}) and seconds "
                                f"({self.seconds}) must be positive")
        factors = [self.strength_scale, *(m for _, m in self.body_mass_scale)]
        if self.friction is not None:
            factors.append(self.friction)
        if min(factors) <= 0 or self.noise_scale < 0 or self.push_force_n < 0:
            raise ScenarioError(f"{where}: friction, masses and strength must be > 0, noise "
                                "and push force >= 0")
        low, high = self.push_interval_s
        if self.push_force_n > 0 and not 0 < low <= high:
            raise ScenarioError(f"{where}: bad push interval {self.push_interval_s}")
        if self.latency_steps < 0:
            raise ScenarioError(f"{where}: latency_steps must be >= 0")
        return self

    def episode_commands(self) -> np.ndarray:
        """[episodes, 3] float32 command of each episode (round-robin over ``commands``)."""
        table = np.asarray(self.commands, np.float32)
        return table[np.arange(self.episodes) % len(table)]

    def num_steps(self, control_dt: float) -> int:
        """Episode length in control steps of ``control_dt`` seconds (at least 1)."""
        return max(1, int(round(self.seconds / control_dt)))


FLAT_SPEEDS_MPS = (0.15, 0.3, 0.45)
GRID_SPEEDS_MPS = (0.1, 0.2, 0.3, 0.4, 0.5)
TURN_RATE_RPS = 0.5
TRUNK_BODIES = ("pelvis", "torso")
"""The bodies the +30 % mass worst case loads (WildRobot's trunk: pelvis and upper body)."""


def default_suite(episodes: int = 16, seconds: float = 20.0) -> tuple[Scenario, ...]:
    """The standard suite, every scenario with ``episodes`` episodes of ``seconds`` seconds.

    flat walking at several speeds; a slippery floor (µ 0.4); random 10 N pushes; velocity
    tracking over a 0.1-0.5 m/s grid; turning at ±0.5 rad/s; and the combined worst case
    (+30 % trunk mass, -20 % actuator strength, 3x sensor noise, µ 0.3).
    """
    cruise: tuple[Command, ...] = ((0.3, 0.0, 0.0),)
    suite = (
        Scenario("flat", tuple((v, 0.0, 0.0) for v in FLAT_SPEEDS_MPS)),
        Scenario("slippery", cruise, friction=0.4),
        Scenario("push", cruise, push_force_n=10.0),
        Scenario("tracking", tuple((v, 0.0, 0.0) for v in GRID_SPEEDS_MPS)),
        Scenario("turning", ((0.2, 0.0, TURN_RATE_RPS), (0.2, 0.0, -TURN_RATE_RPS))),
        Scenario("worst_case", cruise, friction=0.3,
                 body_mass_scale=tuple((b, 1.3) for b in TRUNK_BODIES),
                 strength_scale=0.8, noise_scale=3.0),
    )
    return resized(suite, episodes=episodes, seconds=seconds)


def resized(suite: tuple[Scenario, ...], episodes: int | None = None,
            seconds: float | None = None) -> tuple[Scenario, ...]:
    """The suite with every scenario's episode count and/or length replaced (validated)."""
    changes: dict[str, Any] = {}
    if episodes is not None:
        changes["episodes"] = int(episodes)
    if seconds is not None:
        changes["seconds"] = float(seconds)
    out = tuple(dataclasses.replace(s, **changes).validate() for s in suite)
    names = [s.name for s in out]
    if len(set(names)) != len(names):
        raise ScenarioError(f"scenario names must be unique, got {names}")
    return out


def command_key(command: Command | np.ndarray) -> str:
    """Readable key of a command, e.g. ``vx0.30_vy0.00_wz-0.50``."""
    vx, vy, wz = (float(c) for c in command)
    return f"vx{vx:.2f}_vy{vy:.2f}_wz{wz:.2f}"
