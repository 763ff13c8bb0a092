"""Velocity-command walking on MJX for a small servo humanoid (default: WildRobot).

Control runs at 50 Hz (``control_dt`` 0.02 s, the AMP dataset's rate) over ``control_dt / sim_dt``
physics substeps. Why ``sim_dt`` = 0.005 s (4 substeps) is enough and not much more than needed:

- Servo loop: kp 21.1 N·m/rad over each joint's effective inertia at the standing pose (the
  mass-matrix diagonal: 0.026 kg·m² at the ankles and arms — armature 0.025 plus the link —
  up to 0.107 at the hips) gives ω = sqrt(kp / I) = 14–28.5 rad/s (at most 4.5 Hz) and, with
  kv 0.5 + damping 0.085, ζ = 0.2–0.4. Semi-implicit Euler with explicit damping is stable
  for ω·dt < 2 and dt < 2·I / c = 0.089 s, so the servos alone would allow 0.02 s (one step
  per control period: ω·dt <= 0.64 even at the lightest randomized armature).
- Contacts: the soft-contact time constant is solref 0.02 s. MuJoCo clamps it to at least
  2·dt, so above dt = 0.01 s the floor would get softer than modelled; 0.005 s resolves it with
  4 steps, which keeps foot strikes at walking speeds from bouncing or sinking.
Change ``sim_dt`` in the config (it must divide ``control_dt``); the measured cost per control
step scales with the substep count.

Action [nu]: joint position targets as offsets from the standing pose,
``target = default + action_scale_rad * u`` with ``u`` the clipped action (after the
randomized latency), low-passed when ``action_filter_alpha`` > 0:
``u_t = alpha * u_(t-1) + (1 - alpha) * clip(action_t, -action_clip, action_clip)``, from
``u = 0`` at reset. The MJCF position servos clamp torque to ±4 N·m (times the randomized
strength).

Policy observation (``WildRobotWalk.observation_layout``; 42 numbers for WildRobot):

============================ ===== =========================================================
name                         size  content
============================ ===== =========================================================
gravity_local                3     unit gravity direction in the root frame
gyro                         3     root angular velocity, root frame [rad/s]
joint_pos                    n     joint angles minus the standing pose [rad] (qpos order)
joint_vel                    n     joint velocities [rad/s]
last_action                  nu    the previous policy action (clipped)
command                      3     vx [m/s], vy [m/s], yaw rate [rad/s] (heading frame)
gait_clock (optional)        2     sin, cos of the left leg's gait phase (``GaitConfig``)
============================ ===== =========================================================

Uniform sensor noise (``NoiseConfig``) is added to the first four blocks. The privileged
observation (``privileged_observation_layout``) is the same blocks without noise, then root
linear velocity in the root frame, root height, the 4 foot contacts, the randomized physics
factors (``randomization.DomainFactors.privileged_vector``) and the push force on the root.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import mujoco
import numpy as np
from mujoco import mjx

import robots
from amp.features import FEATURE_DIM, ContactRule, amp_features, rotate_inverse
from robots.config import ConfigError
from training.envs import kinematics as kin
from training.envs import pose_template
from training.envs import rewards as rw
from training.envs.base import (
    NEVER_STEP,
    Env,
    EpisodeConditions,
    ReferenceStates,
    State,
    tree_where,
)
from training.envs.randomization import (
    DomainFactors,
    RandomizationConfig,
    apply_factors,
    nominal_factors,
    privileged_size,
    sample_factors,
)

InitialState = tuple[jax.Array, jax.Array, jax.Array]
"""(qpos [nq], qvel [nv], gait phase []) an episode starts from."""


@dataclass(frozen=True)
class CommandConfig:
    """Velocity command ranges, drawn uniformly per episode and at random times within it.

    Attributes:
        vx_mps: Forward speed range [m/s].
        vy_mps: Sideways speed range [m/s].
        yaw_rate_rps: Turn rate range [rad/s].
        resample_interval_s: Range of the time until the next re-draw [s].
    """

    vx_mps: tuple[float, float] = (0.1, 0.5)
    vy_mps: tuple[float, float] = (-0.1, 0.1)
    yaw_rate_rps: tuple[float, float] = (-0.5, 0.5)
    resample_interval_s: tuple[float, float] = (4.0, 10.0)


@dataclass(frozen=True)
class NoiseConfig:
    """Uniform observation noise half-widths (policy observation only).

    Attributes:
        enabled: Add noise at all.
        gravity: On the unit gravity vector.
        gyro_rps: On the angular velocity [rad/s].
        joint_pos_rad: On joint angles [rad].
        joint_vel_rps: On joint velocities [rad/s].
    """

    enabled: bool = True
    gravity: float = 0.05
    gyro_rps: float = 0.2
    joint_pos_rad: float = 0.01
    joint_vel_rps: float = 0.5


@dataclass(frozen=True)
class TerminationConfig:
    """When an episode ends.

    Attributes:
        min_root_height_m: A fall: the root drops below this [m].
        max_tilt_rad: A fall: the root's z axis tilts further than this from vertical [rad].
        episode_length_s: Time limit [s] (a truncation, not a fall).
    """

    min_root_height_m: float = 0.25
    max_tilt_rad: float = 0.8
    episode_length_s: float = 20.0


@dataclass(frozen=True)
class GaitConfig:
    """An optional gait clock: a phase the policy observes and two reward terms follow.

    The left leg is in stance for the first ``stance_fraction`` of each cycle and the right
    leg half a cycle later (``kinematics.leg_phases``); the ``feet_phase`` and
    ``contact_phase`` rewards score how well the feet follow it. A cold-start policy finds
    shuffling (both feet down) long before stepping; the clock makes alternating steps the
    easy thing to learn, and the AMP style reward then shapes how the steps look.

    Attributes:
        frequency_hz: Gait cycles per second (a step of each foot) at a zero speed
            command; 0 = no clock (the observation has no ``gait_clock`` block and the two
            terms must weigh 0).
        frequency_per_mps: Cycles per second added per m/s of commanded planar speed
            (``kinematics.clock_rate_hz``); 0 = a constant rate. The data's cadence rises
            with its speed, and a fixed rate makes speed a matter of step length alone.
        stance_fraction: Share of a cycle each foot is down; above 0.5 gives double support.
        swing_height_m: Peak foot height the clock asks for in mid-swing [m].
        phase_from_reference: An episode started at a reference frame starts its clock at
            that frame's own gait phase (``ReferenceStates.gait_phase``: where its left foot
            is in its stride) instead of 0, so the clock and the stride the robot is in
            agree from the first step.
    """

    frequency_hz: float = 0.0
    frequency_per_mps: float = 0.0
    stance_fraction: float = 0.55
    swing_height_m: float = 0.04
    phase_from_reference: bool = False


@dataclass(frozen=True)
class WalkConfig:
    """Everything the walking task can be told.

    Attributes:
        robot: Robot registry name (``robots.load``).
        control_dt: Policy period [s]; 0.02 matches the 50 FPS AMP data.
        sim_dt: Physics timestep [s]; must divide ``control_dt`` (see the module docstring).
        default_keyframe: MJCF keyframe of the default pose: the standing start of an episode,
            the centre of the actions and of the ``joint_pos`` observation, and (its pelvis
            height) the base-height target unless ``rewards.base_height_target_m`` is set.
        action_scale_rad: Joint target offset per unit action [rad].
        action_clip: Actions are clipped to ±this before use.
        action_filter_alpha: First-order low-pass of the joint targets (the module docstring),
            in [0, 1): 0 applies each action as is. The discriminator is shown the stochastic
            rollouts, whose 50 Hz target jitter the human data never has.
        reset_joint_noise_rad: Uniform noise on the standing joint angles at reset [rad].
        reference_init_fraction: Share of episodes that start from a random reference frame
            (reference-state initialization) instead of the standing pose. Only used once
            reference states are attached (:meth:`WildRobotWalk.with_reference_states`, done
            by the trainer); evaluation always starts from the standing pose.
        contact: The AMP contact rule (the same default as the dataset's conversion).
        commands: Velocity command sampling.
        noise: Observation noise.
        termination: Fall and time-limit rules.
        rewards: Reward weights and shapes.
        randomization: Domain randomization.
        gait: The optional gait clock.
    """

    robot: str = "wildrobot"
    control_dt: float = 0.02
    sim_dt: float = 0.005
    default_keyframe: str = "stand"
    action_scale_rad: float = 0.5
    action_clip: float = 1.0
    action_filter_alpha: float = 0.0
    reset_joint_noise_rad: float = 0.05
    reference_init_fraction: float = 0.0
    contact: ContactRule = ContactRule()
    commands: CommandConfig = CommandConfig()
    noise: NoiseConfig = NoiseConfig()
    termination: TerminationConfig = TerminationConfig()
    rewards: rw.RewardConfig = rw.RewardConfig()
    randomization: RandomizationConfig = RandomizationConfig()
    gait: GaitConfig = GaitConfig()


class WildRobotWalk(Env):
    """Velocity-command walking; see the module docstring for dt, action and observations."""

    def __init__(self, config: WalkConfig | None = None) -> None:
        self.config = config = config or WalkConfig()
        config.randomization.validate()
        self.robot = robots.load(config.robot)
        self.substeps = _substeps(config.control_dt, config.sim_dt)
        mj_model = self.robot.model
        mj_model.opt.timestep = config.sim_dt
        self.mj_model = mj_model
        self.model = mjx.put_model(mj_model)
        self._data0 = mjx.make_data(self.model)

        spec = self.robot.spec
        self.control_dt = float(config.control_dt)
        self.episode_length = int(round(config.termination.episode_length_s / config.control_dt))
        self.action_size = int(mj_model.nu)
        self.amp_feature_size = FEATURE_DIM
        self.reward_names: tuple[str, ...] = rw.REWARD_TERMS

        self._num_joints = spec.num_joints
        self._root_body = self.robot.root_body_id
        self._joint_dofs = self.robot.joint_dof_addresses
        self._contact_site_ids = jnp.asarray(self.robot.contact_site_ids)
        self._amp_joint_indices = jnp.asarray(spec.amp_joint_indices)
        self.default_qpos = _keyframe_qpos(mj_model, config.default_keyframe)
        self._default_qpos = jnp.asarray(self.default_qpos, jnp.float32)
        self._default_joints = jnp.asarray(self.default_qpos[7:], jnp.float32)
        actuator_qpos = mj_model.jnt_qposadr[mj_model.actuator_trnid[:, 0]]
        self._actuator_qpos = jnp.asarray(actuator_qpos)  # [nu] qpos address of each servo
        self._default_ctrl = jnp.asarray(self.default_qpos[actuator_qpos], jnp.float32)
        ranges = spec.joint_range_array()
        self._joint_lower = jnp.asarray(ranges[:, 0], jnp.float32)
        self._joint_upper = jnp.asarray(ranges[:, 1], jnp.float32)
        centre, half = ranges.mean(axis=1), 0.5 * (ranges[:, 1] - ranges[:, 0])
        soft = config.rewards.joint_limit_soft_fraction * half
        self._soft_lower = jnp.asarray(centre - soft, jnp.float32)
        self._soft_upper = jnp.asarray(centre + soft, jnp.float32)
        target = config.rewards.base_height_target_m
        self._height_target = float(self.default_qpos[2] if target is None else target)
        self._latency_slots = config.randomization.max_latency_steps + 1
        push = config.randomization.push
        self._push_on = bool(config.randomization.enabled and push.enabled)
        self._push_duration_steps = max(1, int(round(push.duration_s / config.control_dt)))
        self._clock_on = _check_gait(config)
        self._sole_rest_height = _sole_heights(mj_model, self.default_qpos,
                                               self.robot.contact_site_ids)
        self._noise_scale = self._build_noise_scale()
        self.reference: ReferenceStates | None = None
        if not 0.0 <= config.reference_init_fraction <= 1.0:
            raise ConfigError(f"reference_init_fraction={config.reference_init_fraction} "
                              "must lie in [0, 1]")
        # None: the data's own, measured when the reference states are attached; until then
        # (evaluation, probes) the term scores 0.
        self.stance_width_target_m: float | None = config.rewards.stance_width_m
        if not 0.0 <= config.action_filter_alpha < 1.0:
            raise ConfigError(f"action_filter_alpha={config.action_filter_alpha} must lie in "
                              "[0, 1)")

        self.observation_size = sum(size for _, size in self.observation_layout())
        self.privileged_observation_size = sum(
            size for _, size in self.privileged_observation_layout())

    # ----------------------------------------------------------------- layouts
    def observation_layout(self) -> tuple[tuple[str, int], ...]:
        """(name, size) of each policy-observation block, in order (THE size definition)."""
        sizes = {"gravity_local": 3, "gyro": 3, "joint_pos": self._num_joints,
                 "joint_vel": self._num_joints, "last_action": self.action_size, "command": 3}
        clock = ((kin.CLOCK_BLOCK, 2),) if self._clock_on else ()
        return (*((name, sizes[name]) for name in kin.OBSERVATION_BLOCKS), *clock)

    def privileged_observation_layout(self) -> tuple[tuple[str, int], ...]:
        """(name, size) of each privileged-observation block, in order."""
        domain = privileged_size(self.model.nbody, self._num_joints, self.action_size)
        return (*self.observation_layout(), ("root_lin_vel_local", 3), ("root_height", 1),
                ("foot_contact", 4), ("domain_factors", domain), ("push_force", 3))

    def _build_noise_scale(self) -> jax.Array:
        if not self.config.noise.enabled:
            return jnp.zeros(0)
        return jnp.asarray(kin.noise_widths(self.observation_layout(), self.config.noise))

    # ----------------------------------------------------------------- AMP
    def amp_frame(self, data: mjx.Data, contact_vel: jax.Array | None = None) -> jax.Array:
        """The AMP frame [29] of ``data`` (its kinematics must match its qpos).

        Exactly the dataset's function (``amp.features.amp_features``) on qpos, qvel and the
        contact sites' world positions. ``contact_vel`` [4, 3] m/s is only used when the
        contact rule has a speed limit.
        """
        contact_pos = data.site_xpos[self._contact_site_ids]
        if self.config.contact.max_speed_mps is None:
            contact_vel = None
        elif contact_vel is None:
            contact_vel = jnp.zeros_like(contact_pos)
        return amp_features(data.qpos, data.qvel, contact_pos, self._amp_joint_indices,
                            self.config.contact, contact_vel)

    def kinematic_data(self, qpos: jax.Array, qvel: jax.Array) -> mjx.Data:
        """Fresh physics data at ``qpos`` [nq] / ``qvel`` [nv] with matching kinematics (as in
        ``reset``); servo targets at the standing pose."""
        data = self._data0.replace(qpos=jnp.asarray(qpos, jnp.float32),
                                   qvel=jnp.asarray(qvel, jnp.float32), ctrl=self._default_ctrl)
        return mjx.kinematics(self.model, data)

    def with_reference_states(self, reference: ReferenceStates) -> WildRobotWalk:
        """A copy of this environment whose resets start ``reference_init_fraction`` of the
        episodes from a random frame of ``reference`` (qpos [N, nq] of this robot)."""
        if reference.qpos.shape[-1] != self.model.nq or reference.qvel.shape[-1] != self.model.nv:
            raise ConfigError(f"reference states have nq={reference.qpos.shape[-1]}, "
                              f"nv={reference.qvel.shape[-1]}; {self.config.robot} has "
                              f"nq={self.model.nq}, nv={self.model.nv}")
        env = copy.copy(self)
        env.reference = reference
        rewards = self.config.rewards
        if rewards.weights.reference_pose and reference.pose_template is None:
            raise ConfigError("rewards.weights.reference_pose needs walking clips with counted "
                              "gait cycles to fit the pose template; the reference has none")
        if self._wants_data_stance_width:
            env.stance_width_target_m = self._data_stance_width(reference)
        return env

    @property
    def _wants_data_stance_width(self) -> bool:
        """``stance_width`` is on with no target given: it asks for the data's own width."""
        rewards = self.config.rewards
        return bool(rewards.weights.stance_width) and rewards.stance_width_m is None

    def reference_state_uses(self) -> tuple[str, ...]:
        cfg = self.config
        uses = []
        if cfg.reference_init_fraction:
            uses.append(f"env.reference_init_fraction={cfg.reference_init_fraction}")
        if cfg.rewards.weights.reference_pose:
            uses.append(f"env.rewards.weights.reference_pose={cfg.rewards.weights.reference_pose}")
        if self._wants_data_stance_width:
            uses.append(f"env.rewards.weights.stance_width={cfg.rewards.weights.stance_width} "
                        "without env.rewards.stance_width_m")
        return tuple(uses)

    def reference_fit_lines(self) -> tuple[str, ...]:
        if self.reference is None:
            return ()
        lines = []
        if self.config.rewards.weights.reference_pose:
            lines.append("pose template (joint angles by gait phase and speed) explains "
                         f"{self.reference.pose_explained:.0%} of the stepping frames' "
                         "joint-angle variance")
        if self._wants_data_stance_width:
            lines.append(f"stance_width asks for the data's own stance width, "
                         f"{self.stance_width_target_m:.4f} m (mean over its stepping frames)")
        return tuple(lines)

    def _data_stance_width(self, reference: ReferenceStates) -> float:
        """Mean stance width [m] of the reference's stepping frames (in a counted gait cycle)."""
        phase = None if reference.gait_phase is None else np.asarray(reference.gait_phase)
        if phase is None or not (phase > 0).any():
            raise ConfigError("rewards.weights.stance_width without rewards.stance_width_m asks "
                              "for the data's stance width over its stepping frames; the "
                              "reference has no counted gait cycles (set "
                              "rewards.stance_width_m, or the weight to 0)")
        qpos = np.asarray(reference.qpos, np.float64)[phase > 0]
        widths = kin.frame_stance_widths(self.robot.model, self.robot.contact_site_ids, qpos)
        return float(widths.mean())

    # ----------------------------------------------------------------- reset
    def reset(self, rng: jax.Array) -> State:
        return self._start_episode(rng, self._initial_state)

    def reset_under(self, rng: jax.Array, conditions: EpisodeConditions) -> State:
        if conditions.reference_frame is None:
            return self._start_episode(rng, self._initial_state, conditions)
        return self._start_episode(rng, self._reference_start(conditions.reference_frame),
                                   conditions)

    def nominal_factors(self) -> DomainFactors:
        return nominal_factors(self.model, self._num_joints)

    def apply_push(self, state: State, force_n: jax.Array, steps: jax.Array) -> State:
        info = {**state.info, "push_force": jnp.asarray(force_n, jnp.float32),
                "push_steps_left": jnp.asarray(steps, jnp.int32)}
        return state.replace(info=info)

    def _start_episode(self, rng: jax.Array,
                       initial_state: Callable[[jax.Array], InitialState],
                       conditions: EpisodeConditions | None = None) -> State:
        """A fresh episode from ``initial_state(key) -> (qpos [nq], qvel [nv], gait phase [])``;
        command, randomization and pushes drawn from ``rng``, or held to ``conditions``."""
        rng, qpos_key, command_key, domain_key, push_key = jax.random.split(rng, 5)
        qpos, qvel, gait_phase = initial_state(qpos_key)
        data = self.kinematic_data(qpos, qvel)

        step = jnp.zeros((), jnp.int32)
        command, next_command_step = self._sample_command(command_key, step)
        next_push_step = self._push_interval(push_key, step)
        if conditions is None:
            factors = sample_factors(domain_key, self.config.randomization, self.model,
                                     self._num_joints)
        else:
            factors = conditions.factors
            command = jnp.asarray(conditions.command, jnp.float32)
            next_command_step = next_push_step = jnp.asarray(NEVER_STEP, jnp.int32)
        frame = self.amp_frame(data)
        no_action = jnp.zeros(self.action_size, jnp.float32)
        info: dict[str, Any] = {
            "rng": rng,
            "step": step,
            "command": command,
            "next_command_step": next_command_step,
            "truncated": jnp.zeros(()),
            "amp_prev_frame": frame,
            "amp_terminal_frame": frame,
            "amp_frame": frame,
            "domain": factors,
            "action_history": jnp.zeros((self._latency_slots, self.action_size), jnp.float32),
            "filtered_action": jnp.zeros(self.action_size, jnp.float32),
            "push_force": jnp.zeros(3, jnp.float32),
            "push_steps_left": jnp.zeros((), jnp.int32),
            "next_push_step": next_push_step,
            "feet_air_time": jnp.zeros(2, jnp.float32),
            "last_foot_contact": self._foot_contact(frame),
            "tracked_velocity": self._heading_velocity(data),
            "tracked_yaw_rate": kin.yaw_rate_world(data.qpos, data.qvel, jnp),
            "target_heading": kin.root_yaw(data.qpos, jnp),
            "gait_phase": gait_phase,
        }
        obs_key = jax.random.fold_in(rng, 1)
        clean_obs = self._clean_observation(data, no_action, command, info["gait_phase"])
        metrics = {name: jnp.zeros(()) for name in self.metric_names()}
        return State(
            data=data,
            obs=self._noisy(clean_obs, obs_key),
            privileged_obs=self._privileged(clean_obs, data, frame, factors, info["push_force"]),
            reward=jnp.zeros(()),
            done=jnp.zeros(()),
            metrics=metrics,
            info=info,
        )

    def _initial_state(self, key: jax.Array) -> InitialState:
        """(qpos [nq], qvel [nv], gait phase []) an episode starts from: the standing pose with
        joint noise (phase 0), or (RSI) a random reference frame moved to the origin in x and
        y (:meth:`_reference_phase`)."""
        noise_key, use_key, frame_key = jax.random.split(key, 3)
        noise = jax.random.uniform(noise_key, (self._num_joints,), jnp.float32,
                                   -self.config.reset_joint_noise_rad,
                                   self.config.reset_joint_noise_rad)
        joints = jnp.clip(self._default_joints + noise, self._joint_lower, self._joint_upper)
        qpos = self._default_qpos.at[7:].set(joints)
        qvel = jnp.zeros(self.model.nv, jnp.float32)
        phase = jnp.zeros((), jnp.float32)
        fraction = self.config.reference_init_fraction
        if self.reference is None or fraction <= 0.0:
            return qpos, qvel, phase
        frame = self.reference.draw(frame_key)
        ref_qpos, ref_qvel, ref_phase = self._reference_start(frame)(frame_key)
        from_reference = jax.random.uniform(use_key, ()) < fraction
        return (jnp.where(from_reference, ref_qpos, qpos),
                jnp.where(from_reference, ref_qvel, qvel),
                jnp.where(from_reference, ref_phase, phase))

    def reset_to_reference(self, rng: jax.Array, frame: jax.Array) -> State:
        """A fresh episode (as :meth:`reset`) started exactly at reference frame ``frame``
        (its x, y moved to the origin); needs reference states attached."""
        return self._start_episode(rng, self._reference_start(frame))

    def _reference_start(self, frame: jax.Array) -> Callable[[jax.Array], InitialState]:
        """``initial_state`` of an episode starting at reference frame ``frame``."""
        if self.reference is None:
            raise ConfigError("starting at a reference frame needs reference states "
                              "(with_reference_states)")
        reference = self.reference
        phase = self._reference_phase(frame)
        return lambda _: (reference.qpos[frame].at[0:2].set(0.0), reference.qvel[frame], phase)

    def _reference_phase(self, frame: jax.Array) -> jax.Array:
        """The clock's phase [] at the start of an episode at reference frame ``frame``: the
        frame's own (``gait.phase_from_reference``), else 0."""
        if not self.config.gait.phase_from_reference:
            return jnp.zeros((), jnp.float32)
        if self.reference.gait_phase is None:
            raise ConfigError("gait.phase_from_reference needs the reference frames' gait "
                              "phases: build the reference states with the dataset's features "
                              "(reference_states(..., features))")
        return self.reference.gait_phase[frame]

    @staticmethod
    def _foot_contact(frame: jax.Array) -> jax.Array:
        """Per-foot contact [2] (left, right): either of the foot's points touches."""
        return kin.foot_contact(frame, jnp)

    def metric_names(self) -> tuple[str, ...]:
        """Keys of ``State.metrics``: the reward terms, then diagnostics."""
        return (*self.reward_names, "forward_velocity_mps", "lin_vel_error_mps", "root_height_m",
                "fell")

    # ----------------------------------------------------------------- step
    def step(self, state: State, action: jax.Array) -> State:
        info = state.info
        command_before = info["command"]
        rng, command_key, push_key, obs_key, reset_key = jax.random.split(info["rng"], 5)
        action = jnp.clip(action.astype(jnp.float32), -self.config.action_clip,
                          self.config.action_clip)
        factors: DomainFactors = info["domain"]
        previous_action = info["action_history"][0]
        history = jnp.concatenate([action[None], info["action_history"][:-1]], axis=0)
        alpha = self.config.action_filter_alpha
        filtered = alpha * info["filtered_action"] + (1.0 - alpha) * history[factors.latency_steps]
        ctrl = self._default_ctrl + self.config.action_scale_rad * filtered

        push_force, push_info = self._push(info, push_key)
        xfrc = state.data.xfrc_applied.at[self._root_body, :3].set(push_force)
        data = self._simulate(state.data.replace(ctrl=ctrl, xfrc_applied=xfrc), factors)

        site_ids = self._contact_site_ids
        contact_vel = (data.site_xpos[site_ids] - state.data.site_xpos[site_ids]) / self.control_dt
        frame = self.amp_frame(data, contact_vel)
        step = info["step"] + 1
        finite, fell, gravity_local = self._termination(data)
        timed_out = step >= self.episode_length
        done = fell | timed_out

        foot_contact = self._foot_contact(frame)
        heading_vel = self._heading_velocity(data)
        tracked_velocity = rw.averaged_velocity(info["tracked_velocity"], heading_vel,
                                                self.control_dt,
                                                self.config.rewards.tracking_window_s)
        tracked_yaw_rate = rw.averaged_velocity(info["tracked_yaw_rate"],
                                                kin.yaw_rate_world(data.qpos, data.qvel, jnp),
                                                self.control_dt,
                                                self.config.rewards.yaw_tracking_window_s)
        target_heading = rw.wrap_angle(info["target_heading"]
                                       + command_before[2] * self.control_dt)
        terms, air_time = self._reward_terms(data, info, action, previous_action, gravity_local,
                                             frame[kin.FOOT_CONTACT], foot_contact, contact_vel,
                                             fell, tracked_velocity, tracked_yaw_rate,
                                             target_heading)
        gait_phase = self._advance_clock(info["gait_phase"], command_before)
        terms.update(self._gait_terms(data, foot_contact, gait_phase))
        terms["reference_pose"] = self._reference_pose_term(frame, gait_phase, command_before)
        terms.update(self._smoothness_terms(data.qvel, state.data.qvel))
        # A diverged simulation is a fall; its NaN terms (and AMP frame) must not leak out.
        terms = {k: jnp.where(finite | (k == "termination"), v, 0.0) for k, v in terms.items()}
        scaled = rw.scale_terms(terms, self.config.rewards.weights)
        reward = sum(scaled.values())

        resample = step >= info["next_command_step"]
        new_command, new_command_step = self._sample_command(command_key, step)
        command = jnp.where(resample, new_command, info["command"])
        next_info = {
            **info,
            **push_info,
            "rng": rng,
            "step": step,
            "command": command,
            "next_command_step": jnp.where(resample, new_command_step, info["next_command_step"]),
            "action_history": history,
            "filtered_action": filtered,
            "feet_air_time": air_time,
            "last_foot_contact": foot_contact,
            "amp_frame": frame,
            "tracked_velocity": jnp.where(finite, tracked_velocity, 0.0),
            "tracked_yaw_rate": jnp.where(finite, tracked_yaw_rate, 0.0),
            "target_heading": target_heading,
            "gait_phase": gait_phase,
        }
        clean_obs = self._clean_observation(data, action, command, gait_phase)
        continuing = state.replace(
            data=data,
            obs=self._noisy(clean_obs, obs_key),
            privileged_obs=self._privileged(clean_obs, data, frame, factors, push_force),
            info=next_info,
        )
        next_state = tree_where(done, self.reset(reset_key), continuing)

        metrics = {
            **scaled,
            "forward_velocity_mps": jnp.where(finite, heading_vel[0], 0.0),
            "lin_vel_error_mps": jnp.where(
                finite, jnp.linalg.norm(command_before[:2] - heading_vel[:2]), 0.0),
            "root_height_m": jnp.where(finite, data.qpos[2], 0.0),
            "fell": fell.astype(jnp.float32),
        }
        terminal_frame = jnp.where(finite, frame, info["amp_frame"])
        return next_state.replace(
            reward=jnp.asarray(reward, jnp.float32),
            done=done.astype(jnp.float32),
            metrics={k: v.astype(jnp.float32) for k, v in metrics.items()},
            info={
                **next_state.info,
                "truncated": (timed_out & ~fell).astype(jnp.float32),
                "amp_prev_frame": info["amp_frame"],
                "amp_terminal_frame": terminal_frame,
            },
        )

    # ----------------------------------------------------------------- pieces
    def _termination(self, data: mjx.Data) -> tuple[jax.Array, jax.Array, jax.Array]:
        """(state is finite [], fell [], unit gravity in the root frame [3])."""
        cfg = self.config.termination
        return kin.fall_state(data.qpos, data.qvel, cfg.min_root_height_m, cfg.max_tilt_rad, jnp)

    def physics_model(self, factors: DomainFactors) -> mjx.Model:
        """The model one environment steps with: nominal, or with its factors applied."""
        if not self.config.randomization.enabled:
            return self.model
        return apply_factors(self.model, factors, self._joint_dofs)

    def _simulate(self, data: mjx.Data, factors: DomainFactors) -> mjx.Data:
        """``substeps`` physics steps, then kinematics so positions match the final qpos."""
        model = self.physics_model(factors)
        data = jax.lax.fori_loop(0, self.substeps, lambda _, d: mjx.step(model, d), data)
        return mjx.kinematics(model, data)

    def _reward_terms(self, data: mjx.Data, info: dict[str, Any], action: jax.Array,
                      previous_action: jax.Array, gravity_local: jax.Array,
                      point_contact: jax.Array, foot_contact: jax.Array,
                      contact_vel: jax.Array, fell: jax.Array, tracked_velocity: jax.Array,
                      tracked_yaw_rate: jax.Array, target_heading: jax.Array
                      ) -> tuple[dict[str, jax.Array], jax.Array]:
        cfg = self.config.rewards
        command = info["command"]
        moving = (jnp.linalg.norm(command[:2]) > cfg.min_command_speed_mps).astype(jnp.float32)
        air_term, air_time = rw.feet_air_time(foot_contact, info["last_foot_contact"],
                                              info["feet_air_time"], self.control_dt,
                                              cfg.air_time_target_s, moving)
        fell_f = fell.astype(jnp.float32)
        yaw = kin.root_yaw(data.qpos, jnp)
        terms = {
            "tracking_lin_vel": rw.tracking_lin_vel(command, tracked_velocity,
                                                    cfg.tracking_sigma_lin),
            "tracking_ang_vel": rw.tracking_ang_vel(command, tracked_yaw_rate,
                                                    cfg.tracking_sigma_ang),
            "heading": rw.heading(yaw, target_heading, cfg.heading_sigma),
            "upright": rw.upright(gravity_local),
            "base_height": rw.base_height(data.qpos[2], self._height_target),
            "lin_vel_z": rw.lin_vel_z(data.qvel[0:3]),
            "ang_vel_xy": rw.ang_vel_xy(data.qvel[3:6]),
            "yaw_rate_error": rw.yaw_rate_error(command,
                                                kin.yaw_rate_world(data.qpos, data.qvel, jnp)),
            "torque": rw.torque(data.actuator_force),
            "action_rate": rw.action_rate(action, previous_action),
            "joint_limit": rw.joint_limit(data.qpos[7:], self._soft_lower, self._soft_upper),
            "feet_air_time": air_term,
            "feet_slip": rw.feet_slip(point_contact, contact_vel),
            "stance_width": self._stance_width_term(data, yaw),
            "alive": 1.0 - fell_f,
            "termination": fell_f,
        }
        return terms, air_time

    def _smoothness_terms(self, qvel: jax.Array, previous_qvel: jax.Array
                          ) -> dict[str, jax.Array]:
        """``joint_acc`` and ``root_ang_acc`` of one control step, qvel [nv] after and before
        it."""
        return {
            "joint_acc": rw.velocity_change(qvel[self._joint_dofs],
                                            previous_qvel[self._joint_dofs], self.control_dt),
            "root_ang_acc": rw.velocity_change(qvel[3:6], previous_qvel[3:6],
                                               self.control_dt),
        }

    def _stance_width_term(self, data: mjx.Data, yaw: jax.Array) -> jax.Array:
        if self.stance_width_target_m is None:
            return jnp.zeros(())
        width = kin.stance_width(data.site_xpos[self._contact_site_ids], yaw, jnp)
        return rw.stance_width(width, self.stance_width_target_m)

    def _advance_clock(self, gait_phase: jax.Array, command: jax.Array) -> jax.Array:
        """The left leg's phase [] one control step on, at the rate ``command`` asks for."""
        if not self._clock_on:
            return gait_phase
        gait = self.config.gait
        return kin.advance_phase(gait_phase, command, gait.frequency_hz, gait.frequency_per_mps,
                                 self.control_dt, jnp)

    def _reference_pose_term(self, frame: jax.Array, gait_phase: jax.Array,
                             command: jax.Array) -> jax.Array:
        """``reference_pose`` [] of the AMP frame ``frame`` at the left leg's phase and the
        commanded forward speed; 0 while its weight is 0 or no template is attached (the
        trainer attaches the dataset's and refuses data without one; evaluation, probes and
        rendering step without it, as the reward is not what they measure)."""
        if (not self.config.rewards.weights.reference_pose or self.reference is None
                or self.reference.pose_template is None):
            return jnp.zeros(())
        target = pose_template.template_pose(self.reference.pose_template,
                                             self.reference.pose_speed_center, gait_phase,
                                             command[0], jnp)
        return rw.reference_pose(frame[pose_template.JOINT_POS], target,
                                 self.config.rewards.reference_pose_sigma)

    def _gait_terms(self, data: mjx.Data, foot_contact: jax.Array,
                    gait_phase: jax.Array) -> dict[str, jax.Array]:
        """``feet_phase`` and ``contact_phase`` at the left leg's phase ``gait_phase`` [] (0
        without a clock)."""
        if not self._clock_on:
            return {"feet_phase": jnp.zeros(()), "contact_phase": jnp.zeros(())}
        gait = self.config.gait
        phase = kin.leg_phases(gait_phase, jnp)
        target = kin.swing_height_target(phase, gait.stance_fraction, gait.swing_height_m, jnp)
        site_height = data.site_xpos[self._contact_site_ids][:, 2] - self._sole_rest_height
        foot_height = jnp.minimum(site_height[0::2], site_height[1::2])  # toe/heel per foot
        in_stance = (phase < gait.stance_fraction).astype(jnp.float32)
        return {
            "feet_phase": rw.feet_phase(foot_height, target,
                                        self.config.rewards.phase_height_sigma_m),
            "contact_phase": rw.contact_phase(foot_contact, in_stance),
        }

    def _heading_velocity(self, data: mjx.Data) -> jax.Array:
        """Root linear velocity [3] in the heading frame (world rotated by the root's yaw)."""
        return kin.heading_velocity(data.qpos, data.qvel, jnp)

    def _clean_observation(self, data: mjx.Data, action: jax.Array, command: jax.Array,
                           gait_phase: jax.Array) -> jax.Array:
        clock = kin.clock_of_phase(gait_phase, jnp) if self._clock_on else None
        return kin.policy_observation(data.qpos, data.qvel, self._default_joints, action,
                                      command, jnp, clock)

    def _noisy(self, clean_obs: jax.Array, key: jax.Array) -> jax.Array:
        if not self.config.noise.enabled:
            return clean_obs
        unit = jax.random.uniform(key, clean_obs.shape, jnp.float32, -1.0, 1.0)
        return clean_obs + unit * self._noise_scale

    def _privileged(self, clean_obs: jax.Array, data: mjx.Data, frame: jax.Array,
                    factors: DomainFactors, push_force: jax.Array) -> jax.Array:
        lin_vel_local = rotate_inverse(data.qpos[3:7], data.qvel[0:3], jnp)
        return jnp.concatenate([
            clean_obs, lin_vel_local, data.qpos[2:3], frame[kin.FOOT_CONTACT],
            factors.privileged_vector(), push_force,
        ]).astype(jnp.float32)

    def _sample_command(self, key: jax.Array, step: jax.Array) -> tuple[jax.Array, jax.Array]:
        """A command [3] and the control step [] at which to draw the next one."""
        cfg = self.config.commands
        keys = jax.random.split(key, 4)
        command = jnp.stack([
            jax.random.uniform(keys[i], (), jnp.float32, low, high)
            for i, (low, high) in enumerate((cfg.vx_mps, cfg.vy_mps, cfg.yaw_rate_rps))
        ])
        low, high = (int(round(t / self.control_dt)) for t in cfg.resample_interval_s)
        return command, step + jax.random.randint(keys[3], (), max(low, 1), max(high, 1) + 1)

    def _push_interval(self, key: jax.Array, step: jax.Array) -> jax.Array:
        low, high = (int(round(t / self.control_dt))
                     for t in self.config.randomization.push.interval_s)
        return step + jax.random.randint(key, (), max(low, 1), max(high, 1) + 1)

    def _push(self, info: dict[str, Any], key: jax.Array) -> tuple[jax.Array, dict[str, Any]]:
        """Force [3] on the root during this step, and the updated push bookkeeping (the
        environment's own random pushes when enabled; one from ``apply_push`` always)."""
        if not self._push_on:
            steps_left = info["push_steps_left"]
            applied = jnp.where(steps_left > 0, info["push_force"], 0.0)
            return applied, {"push_force": applied,
                             "push_steps_left": jnp.maximum(steps_left - 1, 0).astype(jnp.int32)}
        push = self.config.randomization.push
        magnitude_key, heading_key, interval_key = jax.random.split(key, 3)
        start = info["step"] == info["next_push_step"]
        magnitude = jax.random.uniform(magnitude_key, (), jnp.float32, *push.force_n)
        heading = jax.random.uniform(heading_key, (), jnp.float32, 0.0, 2.0 * np.pi)
        new_force = magnitude * jnp.stack([jnp.cos(heading), jnp.sin(heading), 0.0])
        force = jnp.where(start, new_force, info["push_force"])
        steps_left = jnp.where(start, self._push_duration_steps, info["push_steps_left"])
        applied = jnp.where(steps_left > 0, force, 0.0)
        next_push = jnp.where(start, self._push_interval(interval_key, info["step"]),
                              info["next_push_step"])
        return applied, {
            "push_force": applied,
            "push_steps_left": jnp.maximum(steps_left - 1, 0).astype(jnp.int32),
            "next_push_step": next_push,
        }


def _keyframe_qpos(mj_model: Any, name: str) -> np.ndarray:
    """qpos [nq] of keyframe ``name``; an unknown name lists the model's keyframes."""
    names = [mj_model.key(i).name for i in range(mj_model.nkey)]
    if name not in names:
        raise ConfigError(f"default_keyframe={name!r}; the model's keyframes: {names}")
    return mj_model.key(name).qpos.copy()


def _check_gait(config: WalkConfig) -> bool:
    """Whether the gait clock is on; raises ConfigError on settings it cannot follow."""
    gait, weights = config.gait, config.rewards.weights
    if (gait.frequency_hz < 0 or gait.frequency_per_mps < 0
            or not 0.0 < gait.stance_fraction < 1.0 or gait.swing_height_m < 0):
        raise ConfigError(f"gait: frequency_hz={gait.frequency_hz} and frequency_per_mps="
                          f"{gait.frequency_per_mps} must be >= 0, "
                          f"stance_fraction={gait.stance_fraction} in (0, 1), "
                          f"swing_height_m={gait.swing_height_m} >= 0")
    if gait.frequency_hz == 0 and gait.frequency_per_mps > 0:
        raise ConfigError(f"gait.frequency_per_mps={gait.frequency_per_mps} needs the gait "
                          "clock: set gait.frequency_hz > 0 (the rate at a zero command)")
    if gait.frequency_hz == 0 and gait.phase_from_reference:
        raise ConfigError("gait.phase_from_reference needs the gait clock: set "
                          "gait.frequency_hz > 0")
    if gait.frequency_hz == 0 and (weights.feet_phase or weights.contact_phase
                                   or weights.reference_pose):
        raise ConfigError("rewards.weights.feet_phase / contact_phase / reference_pose need "
                          "the gait clock: set gait.frequency_hz > 0")
    return gait.frequency_hz > 0


def _sole_heights(mj_model: Any, qpos: np.ndarray, site_ids: Any) -> jax.Array:
    """Contact-site heights [S] m in pose ``qpos`` (the feet's zero for ``feet_phase``)."""
    data = mujoco.MjData(mj_model)
    data.qpos[:] = qpos
    mujoco.mj_kinematics(mj_model, data)
    return jnp.asarray(data.site_xpos[np.asarray(site_ids), 2], jnp.float32)


def _substeps(control_dt: float, sim_dt: float) -> int:
    if sim_dt <= 0 or control_dt <= 0:
        raise ConfigError(f"control_dt ({control_dt}) and sim_dt ({sim_dt}) must be positive")
    ratio = control_dt / sim_dt
    substeps = int(round(ratio))
    if substeps < 1 or abs(ratio - substeps) > 1e-6:
        raise ConfigError(f"sim_dt {sim_dt} s must divide control_dt {control_dt} s evenly")
    return substeps

