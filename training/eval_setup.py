"""Evaluation setup, shared by the MJX evaluation and the plain-MuJoCo sim-to-sim runner.

- :class:`EpisodeSetup`: every episode's command and physics, as arrays (one row per episode),
  built from a scenario suite by :func:`build_setup`;
- :func:`plan_groups`: scenarios grouped by the environment they run in, with what that
  environment needs to run them (:func:`structural_needs`).

Measurement is :mod:`training.eval_metrics`; the per-episode random streams both simulators
share are :mod:`training.eval_streams`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import mujoco
import numpy as np

from robots.config import merge_nested, nest_dotted
from robots.errors import AmpkitError
from training.scenarios import Scenario, ScenarioError

if TYPE_CHECKING:
    from training.envs.base import Env

SETUP_ARRAYS = ("command", "limit_steps", "friction", "mass_scale", "strength_scale",
                "latency_steps", "noise_scale", "push_force_n", "push_interval_steps",
                "push_duration_steps")
"""The :class:`EpisodeSetup` fields a jitted step reads."""


@dataclass(frozen=True)
class EpisodeSetup:
    """Conditions of E episodes (all scenarios of one batch, back to back).

    Attributes:
        scenario_index: [E] index into ``scenarios``.
        episode_index: [E] index of the episode within its scenario (its random stream).
        scenarios: The scenarios, in order.
        command: [E, 3] velocity command (vx m/s, vy m/s, yaw rate rad/s).
        limit_steps: [E] episode length [control steps].
        friction: [E] sliding friction of every geom.
        mass_scale: [E, nbody] multiplier on body mass and inertia (1 for the world body).
        strength_scale: [E, nu] multiplier on servo kp, kv and torque limit.
        latency_steps: [E] control latency [steps].
        noise_scale: [E] multiplier on the observation noise vector.
        push_force_n: [E] push magnitude [N] (0: no pushes).
        push_interval_steps: [E, 2] inclusive range of steps between push starts.
        push_duration_steps: [E] steps one push lasts.
        total_mass_kg: [E] robot mass under ``mass_scale`` (for cost of transport).
    """

    scenario_index: np.ndarray
    episode_index: np.ndarray
    scenarios: tuple[Scenario, ...]
    command: np.ndarray
    limit_steps: np.ndarray
    friction: np.ndarray
    mass_scale: np.ndarray
    strength_scale: np.ndarray
    latency_steps: np.ndarray
    noise_scale: np.ndarray
    push_force_n: np.ndarray
    push_interval_steps: np.ndarray
    push_duration_steps: np.ndarray
    total_mass_kg: np.ndarray

    @property
    def num_episodes(self) -> int:
        return int(self.scenario_index.shape[0])

    @property
    def max_steps(self) -> int:
        return int(self.limit_steps.max())

    def as_arrays(self) -> dict[str, np.ndarray]:
        """The per-episode arrays a jitted step takes (name -> [E, ...])."""
        return {name: getattr(self, name) for name in SETUP_ARRAYS}

    def episodes_of(self, index: int) -> np.ndarray:
        """Episode indices of scenario ``index``."""
        return np.flatnonzero(self.scenario_index == index)

    def first_episodes(self, per_scenario: int) -> np.ndarray:
        """Indices of the first ``per_scenario`` episodes of every scenario."""
        return np.concatenate([self.episodes_of(i)[:per_scenario]
                               for i in range(len(self.scenarios))])

    def subset(self, per_scenario: int) -> EpisodeSetup:
        """The first ``per_scenario`` episodes of every scenario (sim-to-sim uses fewer)."""
        keep = self.first_episodes(per_scenario)
        values = {name: getattr(self, name)[keep] for name in
                  (*SETUP_ARRAYS, "scenario_index", "episode_index", "total_mass_kg")}
        return EpisodeSetup(scenarios=self.scenarios, **values)


def build_setup(scenarios: tuple[Scenario, ...], mj_model: Any,
                control_dt: float) -> EpisodeSetup:
    """Per-episode arrays for ``scenarios`` on a robot model.

    Args:
        scenarios: Validated scenarios.
        mj_model: The environment's ``mujoco.MjModel`` (body names, masses, friction).
        control_dt: Control period [s].
    Raises:
        training.scenarios.ScenarioError: a body name that the model does not have.
    """
    nominal_friction = float(np.max(mj_model.geom_friction[:, 0]))
    rows: dict[str, list[Any]] = {name: [] for name in (
        *SETUP_ARRAYS, "scenario_index", "episode_index", "total_mass_kg")}
    for index, scenario in enumerate(scenarios):
        mass_scale = np.ones(mj_model.nbody, np.float32)
        for body, multiplier in scenario.body_mass_scale:
            body_id = _body_id(mj_model, body)
            if body_id is None:
                raise ScenarioError(f"scenario {scenario.name!r}: the robot has no body "
                                    f"{body!r}")
            mass_scale[body_id] *= multiplier
        interval = [max(1, int(round(t / control_dt))) for t in scenario.push_interval_s]
        n = scenario.episodes
        rows["scenario_index"].append(np.full(n, index, np.int32))
        rows["episode_index"].append(np.arange(n, dtype=np.int32))
        rows["command"].append(scenario.episode_commands())
        rows["limit_steps"].append(np.full(n, scenario.num_steps(control_dt), np.int32))
        friction = nominal_friction if scenario.friction is None else scenario.friction
        rows["friction"].append(np.full(n, friction, np.float32))
        rows["mass_scale"].append(np.tile(mass_scale, (n, 1)))
        rows["strength_scale"].append(np.full((n, mj_model.nu), scenario.strength_scale,
                                              np.float32))
        rows["latency_steps"].append(np.full(n, scenario.latency_steps, np.int32))
        rows["noise_scale"].append(np.full(n, scenario.noise_scale, np.float32))
        rows["push_force_n"].append(np.full(n, scenario.push_force_n, np.float32))
        rows["push_interval_steps"].append(np.tile(np.asarray(interval, np.int32), (n, 1)))
        duration = max(1, int(round(scenario.push_duration_s / control_dt)))
        rows["push_duration_steps"].append(np.full(n, duration, np.int32))
        total_mass = float(np.sum(mj_model.body_mass * mass_scale))
        rows["total_mass_kg"].append(np.full(n, total_mass, np.float32))
    values = {name: np.concatenate(parts) for name, parts in rows.items()}
    return EpisodeSetup(scenarios=tuple(scenarios), **values)


def _body_id(mj_model: Any, name: str) -> int | None:
    body_id = mujoco.mj_name2id(mj_model, mujoco.mjtObj.mjOBJ_BODY, name)
    return None if body_id < 0 else int(body_id)


def block_slice(layout: tuple[tuple[str, int], ...], name: str) -> slice:
    """Slice of block ``name`` in an observation layout."""
    start = 0
    for block, size in layout:
        if block == name:
            return slice(start, start + size)
        start += size
    raise KeyError(f"observation layout has no block {name!r}: {[b for b, _ in layout]}")


# --------------------------------------------------------------------------- environments
class EvaluationError(AmpkitError, ValueError):
    """An environment or checkpoint that the evaluation cannot run."""


@dataclass(frozen=True)
class ScenarioGroup:
    """Scenarios that run in one environment (one compiled batch)."""

    env: Env
    scenarios: tuple[Scenario, ...]


_ENVS: dict[tuple[str, str], Any] = {}


def load_eval_env(name: str, overrides: dict[str, Any]) -> Any:
    """``training.envs.load(name, overrides)``, one object per distinct (name, overrides) per
    process, so compiled evaluation functions are reused across calls."""
    from training import envs

    key = (name, json.dumps(overrides, sort_keys=True, default=str))
    if key not in _ENVS:
        _ENVS[key] = envs.load(name, overrides)
    return _ENVS[key]


def structural_needs(config: Any, scenarios: tuple[Scenario, ...],
                     control_dt: float) -> dict[str, Any]:
    """Environment overrides without which some scenario could not run: randomization (the
    per-episode physics factors are applied only when it is on), pushes, enough latency slots
    and a time limit beyond the longest episode."""
    try:
        randomization, termination = config.randomization, config.termination
    except AttributeError as exc:
        raise EvaluationError(f"evaluation needs an environment config with randomization and "
                              f"termination sections ({exc})") from None
    needs: dict[str, Any] = {}
    physics = any(s.friction is not None or s.body_mass_scale or s.strength_scale != 1.0
                  or s.latency_steps > 0 or s.push_force_n > 0 for s in scenarios)
    if physics and not randomization.enabled:
        needs.setdefault("randomization", {})["enabled"] = True
    if any(s.push_force_n > 0 for s in scenarios) and not randomization.push.enabled:
        needs.setdefault("randomization", {}).setdefault("push", {})["enabled"] = True
    latency = max(s.latency_steps for s in scenarios)
    if latency > randomization.latency_steps[1]:
        needs.setdefault("randomization", {})["latency_steps"] = [
            int(randomization.latency_steps[0]), int(latency)]
    longest = max(s.seconds for s in scenarios)
    if longest > termination.episode_length_s - 0.5 * control_dt:
        # A time limit inside an episode would reset it; one second of slack keeps even the
        # last step a real one.
        needs["termination"] = {"episode_length_s": float(longest) + 1.0}
    return needs


def plan_groups(scenarios: tuple[Scenario, ...], env_name: str,
                base_overrides: dict[str, Any]) -> list[ScenarioGroup]:
    """Scenarios grouped by their ``env_overrides``, each group with the environment it runs
    in: the training environment (``base_overrides``) plus the group's overrides plus
    :func:`structural_needs`."""
    by_overrides: dict[tuple[tuple[str, Any], ...], list[Scenario]] = {}
    for scenario in scenarios:
        by_overrides.setdefault(tuple(scenario.env_overrides), []).append(scenario)
    groups = []
    for extra, members in by_overrides.items():
        overrides = merge_nested(base_overrides, nest_dotted(dict(extra)))
        env = load_eval_env(env_name, overrides)
        needs = structural_needs(env.config, tuple(members), env.control_dt)
        if needs:
            env = load_eval_env(env_name, merge_nested(overrides, needs))
        groups.append(ScenarioGroup(env, tuple(members)))
    return groups


def actuator_dof_addresses(mj_model: Any) -> np.ndarray:
    """qvel index of each actuator's joint, [nu]."""
    joints = mj_model.actuator_trnid[:, 0]
    return np.asarray(mj_model.jnt_dofadr[joints], np.int32)


def actuator_names(mj_model: Any) -> tuple[str, ...]:
    return tuple(mj_model.actuator(i).name for i in range(mj_model.nu))
