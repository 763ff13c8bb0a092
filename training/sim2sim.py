"""Sim-to-sim: the same policy and scenarios in plain MuJoCo (C, ``mujoco.mj_step`` on the CPU).

The environment's step is mirrored here in numpy, piece by piece: the action is clipped, goes
through the same latency buffer (and the same low-pass, ``action_filter_alpha``) and becomes
servo targets ``default + scale * action``; pushes,
friction, masses and actuator strength are the scenario's, applied to a per-episode copy of the
model by the environment's own ``training.envs.randomization.factor_fields``;
``control_dt / sim_dt`` physics steps follow, then kinematics; the AMP frame is
``amp.features.amp_features`` on the same contact sites; a fall is the environment's rule.
The policy observation comes from :class:`ObservationBuilder`, a numpy copy of the
environment's (same layout, same noise widths, the last action as sent), tested against the
environment's own observation on the same state.
Observation noise and pushes are drawn from the same per-episode random stream as the MJX
evaluation, so started from the MJX run's initial poses, an episode here replays that MJX
episode and every difference is the simulators'.

A policy that only works in MJX (it exploits float32 contact artefacts, say) shows up as a gap
between these metrics and the MJX ones (``training.evaluate``, ``sim2sim`` in eval.json).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import mujoco
import numpy as np

from amp.features import amp_features
from training import eval_metrics, eval_setup, eval_streams
from training.envs import kinematics as kin
from training.envs.base import Env
from training.envs.kinematics import OBSERVATION_BLOCKS
from training.envs.randomization import DomainFactors, factor_fields
from training.eval_setup import EpisodeSetup, EvaluationError
from training.policy import PolicyFn, StyleFn, jit_policy
from training.scenarios import Scenario


class ObservationBuilder:
    """The environment's policy observation, from plain MuJoCo state, in numpy.

    ``clean(qpos, qvel, last_action, command)`` is the noise-free observation (batched over
    leading axes); ``noisy(clean, rng, multiplier)`` adds the environment's uniform noise.
    """

    def __init__(self, env: Env) -> None:
        self.layout = tuple(env.observation_layout())
        names = tuple(name for name, _ in self.layout)
        with_clock = (*OBSERVATION_BLOCKS, kin.CLOCK_BLOCK)
        if names not in (OBSERVATION_BLOCKS, with_clock):
            raise EvaluationError(f"the numpy observation builder reproduces the blocks "
                                  f"{OBSERVATION_BLOCKS} (optionally then {kin.CLOCK_BLOCK!r}); "
                                  f"this environment has {names}")
        gait = env.config.gait
        self.clock_hz = float(gait.frequency_hz) if names == with_clock else 0.0
        self.clock_hz_per_mps = float(gait.frequency_per_mps) if names == with_clock else 0.0
        self.control_dt = float(env.control_dt)
        self.default_joints = np.asarray(default_qpos(env)[7:], np.float32)
        self.noise_vector = kin.noise_widths(self.layout, env.config.noise)
        self.size = int(sum(size for _, size in self.layout))

    def clean(self, qpos: np.ndarray, qvel: np.ndarray, last_action: np.ndarray,
              command: np.ndarray, gait_phase: np.ndarray | float = 0.0) -> np.ndarray:
        """[..., O] float32 from qpos [..., nq], qvel [..., nv], the last (clipped) action
        [..., nu], the command [..., 3] and (for the gait clock) the left leg's phase [...]."""
        clock = None
        if self.clock_hz > 0:
            phase = np.broadcast_to(np.asarray(gait_phase, np.float32), qpos.shape[:-1])
            clock = kin.clock_of_phase(phase)
        return kin.policy_observation(qpos, qvel, self.default_joints, last_action, command,
                                      clock=clock)

    def advance_clock(self, gait_phase: np.ndarray, command: np.ndarray) -> np.ndarray:
        """The left leg's phase [...] one control step on under ``command`` [..., 3], as the
        environment advances it (unchanged without a clock)."""
        if self.clock_hz <= 0:
            return gait_phase
        return kin.advance_phase(gait_phase, command, self.clock_hz, self.clock_hz_per_mps,
                                 self.control_dt)

    def noisy(self, clean: np.ndarray, unit: np.ndarray,
              multiplier: np.ndarray | float = 1.0) -> np.ndarray:
        """``clean`` [E, O] plus ``unit`` [E, O] (uniform in [-1, 1]) times the noise widths
        times ``multiplier`` [E], as the environment adds its noise."""
        scale = self.noise_vector * np.asarray(multiplier, np.float32).reshape(-1, 1)
        return (clean + unit * scale).astype(np.float32)


def episode_model(base: mujoco.MjModel, setup: EpisodeSetup, episode: int) -> mujoco.MjModel:
    """A copy of ``base`` with episode ``episode``'s friction, masses and strength, scaled by
    the environment's own ``factor_fields`` (damping and armature stay nominal, as in the
    evaluation's conditions)."""
    model = copy.deepcopy(base)
    joint_dofs = eval_setup.actuator_dof_addresses(base)
    nominal = np.ones(len(joint_dofs))
    factors = DomainFactors(
        friction=np.float64(setup.friction[episode]),
        mass_scale=setup.mass_scale[episode].astype(np.float64),
        damping_scale=nominal, armature_scale=nominal,
        strength_scale=setup.strength_scale[episode].astype(np.float64),
        latency_steps=np.int32(setup.latency_steps[episode]))
    for name, value in factor_fields(base, factors, joint_dofs).items():
        getattr(model, name)[:] = value
    return model


class MujocoBatch:
    """Episodes of one :class:`EpisodeSetup` in plain MuJoCo, stepped in lockstep.

    The interface matches ``training.evaluate.MjxBatch``: ``reset()`` -> observations [E, O],
    ``step(actions [E, A])`` -> next observations, running sums in :attr:`accumulator`. An
    episode's observation noise and pushes come from the same random stream as in MJX
    (``eval_streams.episode_keys``), so given the MJX initial poses it replays the MJX episode.
    With ``record=True`` every step's qpos and heading-frame velocity are kept (for videos).
    """

    def __init__(self, env: Env, setup: EpisodeSetup, seed: int = 0,
                 style_fn: StyleFn | None = None, record: bool = False) -> None:
        cfg = env.config
        self.env, self.setup, self.record = env, setup, record
        self.builder = ObservationBuilder(env)
        self.rng = np.random.default_rng(seed)
        self.aux_keys = jnp.asarray(eval_streams.episode_keys(setup, seed)[:, 1])
        self._draws = _draws(self.builder.size)
        self.models = [episode_model(env.mj_model, setup, e) for e in range(setup.num_episodes)]
        self.datas = [mujoco.MjData(m) for m in self.models]
        self.substeps = int(round(env.control_dt / env.mj_model.opt.timestep))
        spec, model = env.robot.spec, env.mj_model
        self.root_body = env.robot.root_body_id
        self.site_ids = np.asarray(env.robot.contact_site_ids)
        self.amp_joint_indices = np.asarray(spec.amp_joint_indices)
        self.dofs = eval_setup.actuator_dof_addresses(model)
        self.window = eval_metrics.window_steps(env.control_dt)
        keyframe = default_qpos(env)
        self.default_ctrl = keyframe[model.jnt_qposadr[model.actuator_trnid[:, 0]]]
        self.joint_range = spec.joint_range_array()
        self.action_clip = float(cfg.action_clip)
        self.action_scale = float(cfg.action_scale_rad)
        self.filter_alpha = float(getattr(cfg, "action_filter_alpha", 0.0))
        self.style_fn = style_fn
        self.t = 0
        self.trajectory: list[np.ndarray] = []
        self.velocity: list[np.ndarray] = []

    # ----------------------------------------------------------------- state
    @property
    def num_episodes(self) -> int:
        return self.setup.num_episodes

    def _gather(self) -> None:
        self.qpos = np.stack([d.qpos.copy() for d in self.datas])
        self.qvel = np.stack([d.qvel.copy() for d in self.datas])
        self.actuator_force = np.stack([d.actuator_force.copy() for d in self.datas])
        self.contact_pos = np.stack([d.site_xpos[self.site_ids].copy() for d in self.datas])

    def reset(self, initial_qpos: np.ndarray | None = None) -> np.ndarray:
        """Start every episode at ``initial_qpos`` [E, nq] (to replay MJX episodes), or at the
        standing pose with the env's joint noise drawn here (numpy, from the seed); returns
        the first observations [E, O]."""
        cfg = self.env.config
        keyframe = default_qpos(self.env)
        for e, (model, data) in enumerate(zip(self.models, self.datas, strict=True)):
            mujoco.mj_resetData(model, data)
            if initial_qpos is None:
                noise = self.rng.uniform(-cfg.reset_joint_noise_rad, cfg.reset_joint_noise_rad,
                                         len(keyframe) - 7)
                qpos = keyframe.copy()
                qpos[7:] = np.clip(keyframe[7:] + noise, self.joint_range[:, 0],
                                   self.joint_range[:, 1])
            else:
                qpos = np.asarray(initial_qpos[e], np.float64)
            data.qpos[:] = qpos
            data.ctrl[:] = self.default_ctrl
            mujoco.mj_forward(model, data)
        self._gather()
        num, nu = self.num_episodes, self.env.action_size
        latency_slots = int(self.setup.latency_steps.max()) + 1
        self.history = np.zeros((num, latency_slots, nu), np.float32)
        self.filtered = np.zeros((num, nu), np.float32)
        self.last_action = np.zeros((num, nu), np.float32)
        self.frame = self._frames(np.zeros_like(self.contact_pos))
        self.acc = eval_metrics.init_accumulator(num, nu)
        self.ended = np.zeros(num, bool)
        first = np.asarray(self._draws.interval(self.aux_keys, 0, *self._interval_bounds))
        self.next_push = np.where(self.setup.push_force_n > 0, first, eval_streams.NO_PUSH_STEP)
        self.push_force = np.zeros((num, 3))
        self.push_steps_left = np.zeros(num, int)
        self.gait_phase = np.zeros(num, np.float32)
        self.t = 0
        self.trajectory, self.velocity = [], []
        self._record()
        return self._observe()

    def _frames(self, contact_vel: np.ndarray) -> np.ndarray:
        rule = self.env.config.contact
        return amp_features(self.qpos, self.qvel, self.contact_pos, self.amp_joint_indices, rule,
                            contact_vel if rule.max_speed_mps is not None else None)

    @property
    def _interval_bounds(self) -> tuple[jax.Array, jax.Array]:
        interval = self.setup.push_interval_steps
        return jnp.asarray(interval[:, 0]), jnp.asarray(interval[:, 1])

    def _observe(self) -> np.ndarray:
        clean = self.builder.clean(self.qpos, self.qvel, self.last_action, self.setup.command,
                                   self.gait_phase)
        if not np.any(self.builder.noise_vector) or not np.any(self.setup.noise_scale):
            return clean
        unit = np.asarray(self._draws.noise(self.aux_keys, np.int32(self.t)))
        return self.builder.noisy(clean, unit, self.setup.noise_scale)

    def _record(self) -> None:
        if self.record:
            self.trajectory.append(self.qpos.copy())
            heading = kin.heading_velocity(self.qpos, self.qvel)
            yaw_rate = kin.yaw_rate_world(self.qpos, self.qvel)
            self.velocity.append(np.stack([heading[:, 0], heading[:, 1], yaw_rate], axis=1))

    # ----------------------------------------------------------------- step
    def step(self, actions: np.ndarray) -> np.ndarray:
        """One control step of every running episode; returns observations [E, O]."""
        action = np.clip(np.asarray(actions, np.float32), -self.action_clip, self.action_clip)
        self.history = np.concatenate([action[:, None], self.history[:, :-1]], axis=1)
        qpos_before, contact_before = self.qpos.copy(), self.contact_pos.copy()
        self._start_pushes()
        diverged = np.zeros(self.num_episodes, bool)
        for e in np.flatnonzero(~self.ended):
            diverged[e] = self._simulate(e)
        self._gather()
        contact_vel = (self.contact_pos - contact_before) / self.env.control_dt
        previous_frame, self.frame = self.frame, self._frames(contact_vel)
        fell = self._fell() | diverged
        measured, fell_now = eval_metrics.episode_flags(self.acc, self.t, self.setup.limit_steps,
                                                fell, fell)
        measurements = eval_metrics.step_measurements(qpos_before, self.qpos, self.qvel,
                                              self.actuator_force, self.setup.command,
                                              self.frame, self.dofs)
        self.acc = eval_metrics.accumulate(self.acc, measurements, measured, fell_now,
                                           window=self.window)
        if self.style_fn is not None:
            pairs = np.stack([previous_frame, self.frame], axis=1)
            style = np.asarray(self.style_fn(pairs))
            self.acc["style"] = self.acc["style"] + np.where(measured > 0, style, 0.0)
        self.t += 1
        self.gait_phase = self.builder.advance_clock(self.gait_phase, self.setup.command)
        self.ended |= (fell_now > 0) | (self.t >= self.setup.limit_steps)
        self.last_action = action
        self._record()
        return self._observe()

    def _simulate(self, e: int) -> bool:
        """Episode ``e``'s control step; True when MuJoCo reported a diverged simulation."""
        model, data = self.models[e], self.datas[e]
        latency = int(self.setup.latency_steps[e])
        alpha, rest = np.float32(self.filter_alpha), np.float32(1.0 - self.filter_alpha)
        self.filtered[e] = alpha * self.filtered[e] + rest * self.history[e, latency]
        data.ctrl[:] = self.default_ctrl + self.action_scale * self.filtered[e]
        data.xfrc_applied[self.root_body, :3] = self._push(e)
        warning = mujoco.mjtWarning.mjWARN_BADQACC
        bad_before = data.warning[warning].number
        for _ in range(self.substeps):
            mujoco.mj_step(model, data)
        mujoco.mj_kinematics(model, data)  # positions of the final qpos, as the env does
        return bool(data.warning[warning].number > bad_before)

    def _start_pushes(self) -> None:
        """Start the pushes due at this step (the MJX evaluation's schedule and draws)."""
        start = (self.setup.push_force_n > 0) & (self.t == self.next_push)
        if not np.any(start):
            return
        heading = np.asarray(self._draws.heading(self.aux_keys, np.int32(self.t)), np.float64)
        following = np.asarray(self._draws.interval(self.aux_keys, np.int32(self.t + 1),
                                                    *self._interval_bounds))
        force = self.setup.push_force_n[:, None] * np.stack(
            [np.cos(heading), np.sin(heading), np.zeros_like(heading)], axis=1)
        self.push_force[start] = force[start]
        self.push_steps_left[start] = self.setup.push_duration_steps[start]
        self.next_push[start] = self.t + following[start]

    def _push(self, e: int) -> np.ndarray:
        """Force on episode ``e``'s root during this step [3]."""
        applied = self.push_force[e] if self.push_steps_left[e] > 0 else np.zeros(3)
        self.push_steps_left[e] = max(self.push_steps_left[e] - 1, 0)
        return applied

    def _fell(self) -> np.ndarray:
        """The environment's fall rule on the current state, [E] bool."""
        cfg = self.env.config.termination
        with np.errstate(invalid="ignore"):
            _, fell, _ = kin.fall_state(self.qpos, self.qvel, cfg.min_root_height_m,
                                        cfg.max_tilt_rad)
        return fell

    @property
    def accumulator(self) -> dict[str, np.ndarray]:
        return dict(self.acc)

    def all_ended(self) -> bool:
        return bool(np.all(self.ended))


@dataclass(frozen=True)
class _Draws:
    """Jitted random draws shared with the MJX evaluation (``eval_streams``)."""

    noise: Any
    interval: Any
    heading: Any


_DRAWS: dict[int, _Draws] = {}


def _draws(observation_size: int) -> _Draws:
    if observation_size not in _DRAWS:
        _DRAWS[observation_size] = _Draws(
            noise=jax.jit(lambda keys, t: eval_streams.noise_unit(keys, t, observation_size)),
            interval=jax.jit(eval_streams.push_interval),
            heading=jax.jit(eval_streams.push_heading))
    return _DRAWS[observation_size]


def numpy_policy(policy_fn: PolicyFn, seed: int) -> Any:
    """``(obs [E, O] numpy, t) -> action [E, A] numpy`` through the jitted JAX policy."""
    act = jit_policy(policy_fn, seed)
    return lambda obs, t: np.asarray(act(obs, np.int32(t)))


def numpy_style(style_fn: StyleFn | None) -> Any:
    if style_fn is None:
        return None
    import jax

    score = jax.jit(style_fn)
    return lambda pairs: np.asarray(score(np.asarray(pairs, np.float32)))


def evaluate_mujoco(policy_fn: PolicyFn, scenarios: tuple[Scenario, ...], *, episodes: int = 2,
                    env_name: str = "wildrobot_walk", env_overrides: dict[str, Any] | None = None,
                    style_fn: StyleFn | None = None,
                    dataset: eval_metrics.DatasetGait | None = None, seed: int = 0,
                    initial_qpos: dict[str, np.ndarray] | None = None
                    ) -> dict[str, dict[str, Any]]:
    """Metrics per scenario (as ``training.evaluate.evaluate_mjx``) in plain MuJoCo, on the
    first ``episodes`` episodes of each scenario.

    Args:
        initial_qpos: Scenario name -> [>= episodes, nq] initial configurations (the MJX run's,
            to replay its episodes); default: the standing pose with the env's joint noise.
    """
    act = numpy_policy(policy_fn, seed)
    style = numpy_style(style_fn)
    results: dict[str, dict[str, Any]] = {}
    for group in eval_setup.plan_groups(scenarios, env_name, env_overrides or {}):
        env = group.env
        setup = eval_setup.build_setup(group.scenarios, env.mj_model, env.control_dt)
        setup = setup.subset(episodes)
        batch = MujocoBatch(env, setup, seed, style)
        starts = None if initial_qpos is None else np.concatenate(
            [initial_qpos[s.name][:episodes] for s in group.scenarios])
        obs = batch.reset(starts)
        while not batch.all_ended():
            obs = batch.step(act(obs, batch.t))
        results.update(eval_metrics.summarize(batch.accumulator, setup, env.control_dt,
                                      eval_setup.actuator_names(env.mj_model), dataset,
                                      has_style=style_fn is not None))
    return {s.name: results[s.name] for s in scenarios}


@dataclass(frozen=True)
class Trajectory:
    """One recorded plain-MuJoCo episode (for videos).

    Attributes:
        command: [3] commanded (vx m/s, vy m/s, yaw rate rad/s).
        qpos: [T, nq] configuration at every control step, the initial one first; after a fall
            the fallen configuration is held.
        velocity: [T, 3] actual heading-frame vx, vy [m/s] and world yaw rate [rad/s].
        fps: Rate of the rows [Hz] (the control rate).
        fell_at_s: Time of the fall [s], None when the episode did not fall.
    """

    command: np.ndarray
    qpos: np.ndarray
    velocity: np.ndarray
    fps: float
    fell_at_s: float | None


def record_rollouts(policy_fn: PolicyFn, env: Env, commands: tuple[tuple[float, float, float],
                                                                   ...],
                    seconds: float, seed: int = 0) -> list[Trajectory]:
    """Roll ``policy_fn`` out in plain MuJoCo once per command (nominal physics and noise) and
    keep every step; the episodes run in lockstep."""
    scenarios = tuple(Scenario(f"command_{i}", (tuple(float(c) for c in command),), episodes=1,
                               seconds=seconds).validate()
                      for i, command in enumerate(commands))
    setup = eval_setup.build_setup(scenarios, env.mj_model, env.control_dt)
    batch = MujocoBatch(env, setup, seed, record=True)
    act = numpy_policy(policy_fn, seed)
    obs = batch.reset()
    fell_at = np.full(len(commands), np.nan)
    for _ in range(setup.max_steps):
        obs = batch.step(act(obs, batch.t))
        newly = (batch.acc["fell"] > 0) & np.isnan(fell_at)
        fell_at[newly] = batch.t * env.control_dt
    qpos, velocity = np.stack(batch.trajectory, axis=1), np.stack(batch.velocity, axis=1)
    return [Trajectory(command=setup.command[e], qpos=qpos[e], velocity=velocity[e],
                       fps=1.0 / env.control_dt,
                       fell_at_s=None if np.isnan(fell_at[e]) else float(fell_at[e]))
            for e in range(len(commands))]


def default_qpos(env: Env) -> np.ndarray:
    """The environment's default pose [nq] (its ``default_qpos``, else the robot keyframe)."""
    pose = getattr(env, "default_qpos", None)
    return np.asarray(env.robot.keyframe_qpos() if pose is None else pose, np.float64)
