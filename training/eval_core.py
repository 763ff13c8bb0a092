"""What MJX evaluation and the plain-MuJoCo sim-to-sim runner share, so both measure alike.

- :class:`EpisodeSetup`: every episode's command and physics, as arrays (one row per episode),
  built from a scenario suite by :func:`build_setup`.
- :func:`step_measurements` / :func:`accumulate`: the per-step quantities and their masked
  running sums, written once for numpy and jax (``xp``), so MJX and MuJoCo use the same code.
- :func:`summarize`: per-scenario metrics from the sums (numpy).

Episode bookkeeping: a step counts ("measured") while the episode has not fallen and is within
its length; the step on which it falls ends it (and is not measured: the environment has
already reset that episode's state). An episode that reaches its length without a fall is a
success.
"""

from __future__ import annotations

import copy
import json
import zlib
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import mujoco
import numpy as np

from robots.errors import AmpkitError
from training.envs import kinematics as kin
from training.scenarios import Scenario, ScenarioError, command_key

GRAVITY_MPS2 = 9.81
MIN_COT_DISTANCE_M = 0.01
"""Cost of transport divides by the distance walked, at least this much (a standing policy's
CoT is then large but finite)."""
NO_PUSH_STEP = 2**30
"""A control step no episode reaches: "never" for push and command schedules."""
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


# --------------------------------------------------------------------------- per step
def step_measurements(qpos_before: Any, qpos: Any, qvel: Any, actuator_force: Any,
                      command: Any, terminal_frame: Any, actuator_dofs: np.ndarray,
                      xp: Any = np) -> dict[str, Any]:
    """What one control step contributes, batched over leading axes.

    Args:
        qpos_before: [..., nq] configuration before the step.
        qpos, qvel: [..., nq], [..., nv] after it.
        actuator_force: [..., nu] servo torques [N m].
        command: [..., 3] commanded velocity.
        terminal_frame: [..., 29] AMP frame reached (contacts in 25:29).
        actuator_dofs: [nu] qvel index of each actuator's joint.
    Returns:
        lin_vel_error [...] |cmd_xy - v_xy| (heading frame) [m/s], yaw_rate_error [...]
        [rad/s], abs_torque [..., nu] [N m], power [...] sum |torque * joint speed| [W],
        distance [...] planar root displacement [m], foot_contact [..., 2] (left, right).
    """
    velocity = kin.heading_velocity(qpos, qvel, xp)
    lin_error = xp.sqrt(xp.sum((command[..., :2] - velocity[..., :2]) ** 2, axis=-1))
    yaw_error = xp.abs(command[..., 2] - kin.yaw_rate_world(qpos, qvel, xp))
    joint_speed = qvel[..., actuator_dofs]
    foot = kin.foot_contact(terminal_frame, xp)
    return {
        "lin_vel_error": lin_error,
        "yaw_rate_error": yaw_error,
        "abs_torque": xp.abs(actuator_force),
        "power": xp.sum(xp.abs(actuator_force * joint_speed), axis=-1),
        "distance": xp.sqrt(xp.sum((qpos[..., :2] - qpos_before[..., :2]) ** 2, axis=-1)),
        "foot_contact": foot,
    }


ACCUMULATED = ("lin_vel_error", "yaw_rate_error", "abs_torque", "power", "distance",
               "foot_contact")


MIN_SWING_STEPS = 3
"""A foot must have been off the floor for at least this many control steps (60 ms at 50 Hz)
before touching down again counts as a step: contact chatter of a sliding foot is no step."""


def init_accumulator(num_episodes: int, num_actuators: int, xp: Any = np) -> dict[str, Any]:
    """Zeroed running sums: ``steps`` (measured steps), ``fell``, ``style``, every
    :data:`ACCUMULATED` quantity, and the gait counters (see :func:`count_steps`), one row
    per episode."""
    zeros = {"steps": (), "fell": (), "style": (), "lin_vel_error": (), "yaw_rate_error": (),
             "abs_torque": (num_actuators,), "power": (), "distance": (),
             "foot_contact": (2,), "air_steps": (2,), "touchdowns": (2,),
             "alternating_touchdowns": (), "last_touchdown_foot": ()}
    return {name: xp.zeros((num_episodes, *shape), dtype=xp.float32)
            for name, shape in zeros.items()}


def episode_flags(acc: dict[str, Any], step_index: Any, limit_steps: Any, done: Any,
                  fell: Any, xp: Any = np) -> tuple[Any, Any]:
    """(measured [E], fell_now [E]) float masks for control step ``step_index`` (0-based).

    Args:
        done: [E] the environment ended the episode at this step (fall or time limit).
        fell: [E] the ending was a fall.
    """
    active = (acc["fell"] == 0) & (step_index < limit_steps)
    measured = active & (done == 0)
    fell_now = active & (done > 0) & (fell > 0)
    return measured.astype(xp.float32), fell_now.astype(xp.float32)


def accumulate(acc: dict[str, Any], measurements: dict[str, Any], measured: Any,
               fell_now: Any, xp: Any = np) -> dict[str, Any]:
    """Running sums plus this step's measurements where ``measured`` [E] is 1 (pure)."""
    out = dict(acc)
    for name in ACCUMULATED:
        value = measurements[name]
        counted = measured.reshape(measured.shape + (1,) * (value.ndim - 1)) > 0
        # where, not a product: a diverged (NaN) episode must not poison the sums.
        out[name] = acc[name] + xp.where(counted, value, 0.0)
    out["steps"] = acc["steps"] + measured
    out["fell"] = xp.maximum(acc["fell"], fell_now)
    out.update(count_steps(acc, measurements["foot_contact"], measured, xp))
    return out


def count_steps(acc: dict[str, Any], foot_contact: Any, measured: Any,
                xp: Any = np) -> dict[str, Any]:
    """Update the gait counters with this step's foot contacts [E, 2] (left, right; 0/1).

    A touchdown is a foot touching after at least :data:`MIN_SWING_STEPS` steps in the air. It
    alternates when the other foot made the previous touchdown (``last_touchdown_foot``: 0 none
    or both at once, 1 left, 2 right). A shuffle (feet never leave the floor) and a hop (both
    feet land together) make no alternating steps. Only ``measured`` steps are counted.
    """
    touching = foot_contact > 0.5
    counted = (measured > 0)[..., None]
    touchdown = touching & (acc["air_steps"] >= MIN_SWING_STEPS) & counted
    left, right = touchdown[..., 0], touchdown[..., 1]
    last = acc["last_touchdown_foot"]
    alternating = (left & ~right & (last == 2)) | (right & ~left & (last == 1))
    new_last = xp.where(left & ~right, 1.0, xp.where(right & ~left, 2.0,
                                                     xp.where(left & right, 0.0, last)))
    return {
        "air_steps": xp.where(touching, 0.0, acc["air_steps"] + 1.0),
        "touchdowns": acc["touchdowns"] + touchdown.astype(xp.float32),
        "alternating_touchdowns": acc["alternating_touchdowns"] + alternating.astype(xp.float32),
        "last_touchdown_foot": new_last.astype(xp.float32),
    }


def gait_metrics(a: dict[str, np.ndarray], control_dt: float) -> dict[str, float]:
    """Stepping figures of a scenario's episodes from the gait counters.

    Returns:
        ``step_rate_hz`` (touchdowns per second, both feet), ``step_alternation`` (share of
        touchdowns made by the other foot than the previous one) and ``walking_rate`` (share
        of episodes that neither fell nor shuffled: at least one touchdown per foot every
        2 s, and at least 80 % of them alternating).
    """
    seconds = np.maximum(a["steps"] * control_dt, control_dt)
    touchdowns = a["touchdowns"].sum(axis=-1)
    alternation = a["alternating_touchdowns"] / np.maximum(touchdowns, 1.0)
    stepping = (a["touchdowns"].min(axis=-1) >= seconds / 2.0) & (alternation >= 0.8)
    return {
        "step_rate_hz": float(touchdowns.sum() / seconds.sum()),
        "step_alternation": float(a["alternating_touchdowns"].sum()
                                  / max(float(touchdowns.sum()), 1.0)),
        "walking_rate": float(np.mean(stepping & (a["fell"] == 0))),
    }


# --------------------------------------------------------------------------- summaries
def dataset_duty_factor(features: np.ndarray, clip_start: np.ndarray,
                        clip_length: np.ndarray, clip_weight: np.ndarray) -> np.ndarray:
    """Share of time each foot (left, right) touches the floor in the data, [2].

    A foot touches when its toe or heel contact feature is on; clips count by their sampling
    weight, as the discriminator sees them.
    """
    duty = np.zeros(2)
    weights = np.asarray(clip_weight, np.float64) / np.sum(clip_weight)
    for start, length, weight in zip(clip_start, clip_length, weights, strict=True):
        foot = kin.foot_contact(features[int(start):int(start) + int(length)])
        duty += weight * foot.mean(axis=0)
    return duty


def summarize(acc: dict[str, np.ndarray], setup: EpisodeSetup, control_dt: float,
              actuator_names: tuple[str, ...], dataset_duty: np.ndarray | None = None,
              has_style: bool = True) -> dict[str, dict[str, Any]]:
    """Metrics per scenario name from the final running sums (see :func:`scenario_metrics`)."""
    return {scenario.name: scenario_metrics(acc, setup.episodes_of(index), setup, scenario,
                                            control_dt, actuator_names, dataset_duty,
                                            has_style)
            for index, scenario in enumerate(setup.scenarios)}


def scenario_metrics(acc: dict[str, np.ndarray], episodes: np.ndarray, setup: EpisodeSetup,
                     scenario: Scenario, control_dt: float, actuator_names: tuple[str, ...],
                     dataset_duty: np.ndarray | None, has_style: bool) -> dict[str, Any]:
    """One scenario's metrics.

    Per-step quantities are averaged over every measured step of every episode (pooled);
    ``distance_m`` is the mean planar path length per episode. Cost of transport is the
    mechanical energy over (weight x distance), distance at least :data:`MIN_COT_DISTANCE_M`.
    """
    a = {name: np.asarray(value, np.float64)[episodes] for name, value in acc.items()}
    steps = a["steps"]
    total = max(float(steps.sum()), 1.0)
    energy_j = float(a["power"].sum()) * control_dt
    weight_distance = float(np.sum(setup.total_mass_kg[episodes] * GRAVITY_MPS2
                                   * np.maximum(a["distance"], 0.0)))
    weight_floor = float(np.mean(setup.total_mass_kg[episodes])) * GRAVITY_MPS2 * \
        MIN_COT_DISTANCE_M
    duty = a["foot_contact"].sum(axis=0) / total
    metrics: dict[str, Any] = {
        "episodes": int(len(episodes)),
        "seconds": float(scenario.seconds),
        "success_rate": float(np.mean(1.0 - a["fell"])),
        "survival_s": float(np.mean(steps) * control_dt),
        "lin_vel_error_mps": float(a["lin_vel_error"].sum() / total),
        "yaw_rate_error_rps": float(a["yaw_rate_error"].sum() / total),
        "distance_m": float(np.mean(a["distance"])),
        "speed_mps": float(a["distance"].sum() / (total * control_dt)),
        "mean_abs_torque_nm": {name: float(a["abs_torque"][:, j].sum() / total)
                               for j, name in enumerate(actuator_names)},
        "mechanical_power_w": float(a["power"].sum() / total),
        "cost_of_transport": energy_j / max(weight_distance, weight_floor),
        "duty_factor": {"left": float(duty[0]), "right": float(duty[1])},
        **gait_metrics(a, control_dt),
    }
    if has_style:
        metrics["style_score"] = float(a["style"].sum() / total)
    if dataset_duty is not None:
        metrics["dataset_duty_factor"] = {"left": float(dataset_duty[0]),
                                          "right": float(dataset_duty[1])}
        metrics["duty_factor_error"] = float(np.mean(np.abs(duty - dataset_duty)))
    if len(scenario.commands) > 1:
        metrics["per_command"] = _per_command(a, setup.command[episodes])
    return metrics


def _per_command(a: dict[str, np.ndarray], commands: np.ndarray) -> dict[str, Any]:
    out = {}
    for command in np.unique(commands, axis=0):
        rows = np.all(commands == command, axis=1)
        total = max(float(a["steps"][rows].sum()), 1.0)
        out[command_key(command)] = {
            "success_rate": float(np.mean(1.0 - a["fell"][rows])),
            "lin_vel_error_mps": float(a["lin_vel_error"][rows].sum() / total),
            "yaw_rate_error_rps": float(a["yaw_rate_error"][rows].sum() / total),
        }
    return out


def flatten_metrics(metrics: dict[str, Any], prefix: str = "") -> dict[str, float]:
    """Nested metric dicts as ``{"a/b": value}`` (numbers only)."""
    flat: dict[str, float] = {}
    for key, value in metrics.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten_metrics(value, name + "/"))
        elif isinstance(value, int | float) and not isinstance(value, bool):
            flat[name] = float(value)
    return flat


# --------------------------------------------------------------------------- environments
class EvaluationError(AmpkitError, ValueError):
    """An environment or checkpoint that the evaluation cannot run."""


@dataclass(frozen=True)
class ScenarioGroup:
    """Scenarios that run in one environment (one compiled batch)."""

    env: Any
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


def nested_overrides(pairs: tuple[tuple[str, Any], ...]) -> dict[str, Any]:
    """``(("a.b", 1),)`` -> ``{"a": {"b": 1}}``."""
    out: dict[str, Any] = {}
    for key, value in pairs:
        node = out
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return out


def merge_overrides(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """Recursive merge; ``extra`` wins."""
    out = copy.deepcopy(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge_overrides(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


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
        overrides = merge_overrides(base_overrides, nested_overrides(extra))
        env = load_eval_env(env_name, overrides)
        needs = structural_needs(env.config, tuple(members), env.control_dt)
        if needs:
            env = load_eval_env(env_name, merge_overrides(overrides, needs))
        groups.append(ScenarioGroup(env, tuple(members)))
    return groups


def actuator_dof_addresses(mj_model: Any) -> np.ndarray:
    """qvel index of each actuator's joint, [nu]."""
    joints = mj_model.actuator_trnid[:, 0]
    return np.asarray(mj_model.jnt_dofadr[joints], np.int32)


def actuator_names(mj_model: Any) -> tuple[str, ...]:
    return tuple(mj_model.actuator(i).name for i in range(mj_model.nu))


# --------------------------------------------------------------------------- random streams
def episode_keys(setup: EpisodeSetup, seed: int) -> np.ndarray:
    """[E, 2, 2] uint32 raw PRNG keys per episode: (reset key, key of its noise and pushes).

    Drawn from (seed, scenario name, episode index), so an episode's randomness does not
    depend on the other scenarios of the suite, and MJX and MuJoCo runs of the same episode
    share it.
    """
    per_scenario = {}
    for scenario in setup.scenarios:
        base = jax.random.fold_in(jax.random.PRNGKey(seed), zlib.crc32(scenario.name.encode()))
        keys = jax.random.split(base, scenario.episodes)
        per_scenario[scenario.name] = np.asarray(jax.vmap(jax.random.split)(keys))
    return np.stack([per_scenario[setup.scenarios[s].name][i]
                     for s, i in zip(setup.scenario_index, setup.episode_index, strict=True)])


def noise_unit(aux_keys: jax.Array, t: jax.Array, size: int) -> jax.Array:
    """Uniform(-1, 1) [E, size]: the observation noise of step ``t`` before scaling."""
    def draw(key: jax.Array) -> jax.Array:
        key = jax.random.fold_in(jax.random.fold_in(key, 0), t)
        return jax.random.uniform(key, (size,), jnp.float32, -1.0, 1.0)

    return jax.vmap(draw)(aux_keys)


def push_interval(aux_keys: jax.Array, t: jax.Array, low: jax.Array,
                  high: jax.Array) -> jax.Array:
    """Steps [E] from a push started at step ``t - 1`` (or from reset, ``t`` = 0) to the next,
    uniform in [low, high] per episode."""
    def draw(key: jax.Array, lo: jax.Array, hi: jax.Array) -> jax.Array:
        key = jax.random.fold_in(jax.random.fold_in(key, 1), 2 * t)
        return jax.random.randint(key, (), lo, hi + 1)

    return jax.vmap(draw)(aux_keys, low, high)


def push_heading(aux_keys: jax.Array, t: jax.Array) -> jax.Array:
    """Direction [E] of a push starting at step ``t`` [rad]."""
    def draw(key: jax.Array) -> jax.Array:
        key = jax.random.fold_in(jax.random.fold_in(key, 1), 2 * t + 1)
        return jax.random.uniform(key, (), jnp.float32, 0.0, 2.0 * np.pi)

    return jax.vmap(draw)(aux_keys)
