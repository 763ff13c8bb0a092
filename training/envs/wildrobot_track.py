"""Motion tracking on MJX: the robot follows one reference clip of the AMP dataset, frame by frame.

The walking task's discriminator is shown kinematic reference motion, retargeted from humans;
no policy on this robot's servos and feet can reproduce it exactly (``bench.servo_replay``).
This task asks for the closest motion the robot *can* make: every episode starts at a reference
frame (reference-state initialization, always) and is rewarded for staying on that clip, so its
rollouts are the clips as this robot performs them, balanced and servo-driven
(``training.reference_filter`` records them as a dataset of the same schema).

Action [nu]: residual joint targets around the reference's next frame,
``target = q_ref[k + 1] + action_scale_rad * u`` (``u`` the clipped action), low-passed like the
walking task's (``action_filter_alpha``) so the servos see what a walking policy can send.

Observation: the walking task's blocks (the ``command`` block carries the reference's heading-frame
velocity vx, vy and yaw rate at the next frame; no gait clock), then

==================== ===== ===================================================================
reference_joints     2n    q_ref[k + 1] - q and q_ref[k + 1 + lookahead] - q [rad]
reference_gravity    3     the reference's unit gravity direction in its root frame (next frame)
root_error           4     reference minus robot: root height [m], root x, y in the robot's
                           heading frame [m], heading [rad, wrapped]
==================== ===== ===================================================================

An episode ends at a fall, when the root strays more than ``max_root_drift_m`` from the
reference or the joints more than ``max_joint_error_rad`` (RMS), or at the clip's last frame or
the time limit (both truncations). Physics is nominal (randomization and noise are refused):
the recorded motion is the modelled robot's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import jax
import jax.numpy as jnp

from amp.features import rotate_inverse
from robots.config import ConfigError
from training.envs import kinematics as kin
from training.envs import rewards as rw
from training.envs.base import EpisodeConditions, State, tree_where
from training.envs.randomization import RandomizationConfig
from training.envs.wildrobot_walk import NoiseConfig, WalkConfig, WildRobotWalk

TRACKING_TERMS = ("joint_pos", "joint_vel", "root_velocity", "yaw_rate", "root_height", "tilt",
                  "root_position", "contacts", "action_rate", "termination")


@dataclass(frozen=True)
class TrackingWeights:
    """Weight of each tracking term; the positive ones sum to 1, so a perfect step scores 1."""

    joint_pos: float = 0.35
    joint_vel: float = 0.1
    root_velocity: float = 0.15
    yaw_rate: float = 0.05
    root_height: float = 0.05
    tilt: float = 0.1
    root_position: float = 0.1
    contacts: float = 0.1
    action_rate: float = -0.02
    termination: float = -2.0


@dataclass(frozen=True)
class TrackingConfig:
    """How closely the clip is asked for.

    Each positive term is ``exp(-(error / sigma)^2)`` of the error named in its sigma, except
    ``contacts``, the share of the 4 contact labels equal to the reference's.

    Attributes:
        joint_pos_sigma_rad: RMS joint-angle error [rad].
        joint_vel_sigma_rps: RMS joint-velocity error [rad/s].
        root_velocity_sigma_mps: Planar root-velocity error in the heading frame [m/s].
        yaw_rate_sigma_rps: Yaw-rate error [rad/s].
        root_height_sigma_m: Root-height error [m].
        tilt_sigma: Distance between the unit gravity directions in the root frames.
        root_position_sigma_m: Planar root-position error [m].
        lookahead_frames: How far ahead the second ``reference_joints`` block looks.
        min_start_frames: Frames an episode has left in its clip at least when it starts.
        max_root_drift_m: Planar root-position error that ends the episode [m].
        max_joint_error_rad: RMS joint-angle error that ends the episode [rad].
        weights: Term weights.
    """

    joint_pos_sigma_rad: float = 0.15
    joint_vel_sigma_rps: float = 2.0
    root_velocity_sigma_mps: float = 0.15
    yaw_rate_sigma_rps: float = 0.6
    root_height_sigma_m: float = 0.03
    tilt_sigma: float = 0.15
    root_position_sigma_m: float = 0.15
    lookahead_frames: int = 5
    min_start_frames: int = 25
    max_root_drift_m: float = 0.3
    max_joint_error_rad: float = 0.5
    weights: TrackingWeights = TrackingWeights()


@dataclass(frozen=True)
class TrackConfig(WalkConfig):
    """The walking task's config (robot, timing, contact rule, action filter, falls) plus
    :class:`TrackingConfig`; RSI always, nominal physics, no observation noise."""

    action_scale_rad: float = 0.25
    action_filter_alpha: float = 0.5
    reference_init_fraction: float = 1.0
    noise: NoiseConfig = NoiseConfig(enabled=False)
    randomization: RandomizationConfig = RandomizationConfig(enabled=False)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)


class WildRobotTrack(WildRobotWalk):
    """Clip tracking; see the module docstring. Needs reference states with contacts
    (``with_reference_states``) before ``reset``."""

    needs_reference_states = True

    def __init__(self, config: TrackConfig | None = None) -> None:
        config = config or TrackConfig()
        if config.randomization.enabled or config.noise.enabled:
            raise ConfigError("wildrobot_track records the modelled robot: set "
                              "randomization.enabled=false and noise.enabled=false")
        if config.reference_init_fraction != 1.0:
            raise ConfigError(f"wildrobot_track starts every episode at a reference frame; "
                              f"reference_init_fraction={config.reference_init_fraction} must "
                              "be 1.0")
        if config.gait.frequency_hz:
            raise ConfigError("wildrobot_track has no gait clock: set gait.frequency_hz=0")
        super().__init__(config)
        self.config: TrackConfig = config
        self.reward_names = TRACKING_TERMS

    # ----------------------------------------------------------------- layouts
    def observation_layout(self) -> tuple[tuple[str, int], ...]:
        n = self._num_joints
        return (*super().observation_layout(), ("reference_joints", 2 * n),
                ("reference_gravity", 3), ("root_error", 4))

    def privileged_observation_layout(self) -> tuple[tuple[str, int], ...]:
        return (*self.observation_layout(), ("root_lin_vel_local", 3), ("root_height", 1),
                ("foot_contact", 4), ("reference_contact", 4))

    def metric_names(self) -> tuple[str, ...]:
        return (*self.reward_names, "forward_velocity_mps", "lin_vel_error_mps",
                "joint_error_rad", "root_drift_m", "root_height_m", "fell")

    # ----------------------------------------------------------------- episodes
    def reset(self, rng: jax.Array) -> State:
        frame_key, rng = jax.random.split(rng)
        return self._start(rng, self._start_frame(frame_key))

    def reset_to_reference(self, rng: jax.Array, frame: jax.Array) -> State:
        return self._start(rng, jnp.asarray(frame, jnp.int32))

    def reset_under(self, rng: jax.Array, conditions: EpisodeConditions) -> State:
        if conditions.reference_frame is None:
            return self.reset(rng)
        return self.reset_to_reference(rng, conditions.reference_frame)

    def _reference(self) -> Any:
        if self.reference is None or self.reference.foot_contact is None:
            raise ConfigError("wildrobot_track needs reference states with contacts "
                              "(with_reference_states; the trainer attaches the dataset's)")
        return self.reference

    def _start_frame(self, key: jax.Array) -> jax.Array:
        """A weighted random frame with at least ``min_start_frames`` left in its clip."""
        reference = self._reference()
        frame = reference.draw(key)
        clip_first = reference.clip_first[frame]
        latest = jnp.maximum(reference.clip_last[frame] - self.config.tracking.min_start_frames,
                             clip_first)
        return jnp.minimum(frame, latest)

    def _start(self, rng: jax.Array, frame: jax.Array) -> State:
        reference = self._reference()
        following = jnp.minimum(frame + 1, reference.clip_last[frame])
        origin = reference.qpos[frame, 0:2]
        data = self.kinematic_data(reference.qpos[frame].at[0:2].set(0.0), reference.qvel[frame])
        amp_frame = self.amp_frame(data)
        target = reference.qpos[frame][self._actuator_qpos]
        no_action = jnp.zeros(self.action_size, jnp.float32)
        info: dict[str, Any] = {
            "rng": rng,
            "step": jnp.zeros((), jnp.int32),
            "command": self._reference_command(following),
            "truncated": jnp.zeros(()),
            "amp_prev_frame": amp_frame,
            "amp_terminal_frame": amp_frame,
            "amp_frame": amp_frame,
            "reference_frame": frame,
            "reference_origin": origin,
            "filtered_target": target,
            "last_action": no_action,
        }
        obs = self._observation(data, info)
        metrics = {name: jnp.zeros(()) for name in self.metric_names()}
        return State(data=data, obs=obs, privileged_obs=self._privileged_tracking(
            obs, data, amp_frame, following), reward=jnp.zeros(()), done=jnp.zeros(()),
            metrics=metrics, info=info)

    # ----------------------------------------------------------------- step
    def step(self, state: State, action: jax.Array) -> State:
        info, reference, cfg = state.info, self._reference(), self.config.tracking
        rng, reset_key = jax.random.split(info["rng"])
        action = jnp.clip(action.astype(jnp.float32), -self.config.action_clip,
                          self.config.action_clip)
        last = reference.clip_last[info["reference_frame"]]
        frame = jnp.minimum(info["reference_frame"] + 1, last)
        ref_target = reference.qpos[frame][self._actuator_qpos]
        alpha = self.config.action_filter_alpha
        target = alpha * info["filtered_target"] + (1.0 - alpha) * (
            ref_target + self.config.action_scale_rad * action)
        data = self._simulate(state.data.replace(ctrl=target), None)

        site_ids = self._contact_site_ids
        contact_vel = (data.site_xpos[site_ids] - state.data.site_xpos[site_ids]) / self.control_dt
        amp_frame = self.amp_frame(data, contact_vel)
        finite, fell, gravity_local = self._termination(data)
        errors = self._errors(data, reference, frame, info["reference_origin"])
        strayed = (errors["root_drift_m"] > cfg.max_root_drift_m) | (
            errors["joint_error_rad"] > cfg.max_joint_error_rad)
        failed = fell | strayed
        step = info["step"] + 1
        ended = (frame >= last) | (step >= self.episode_length)
        done = failed | ended

        terms = self._tracking_terms(data, reference, frame, gravity_local, amp_frame, errors,
                                     action, info["last_action"], failed)
        terms = {k: jnp.where(finite | (k == "termination"), v, 0.0) for k, v in terms.items()}
        scaled = {name: getattr(cfg.weights, name) * value for name, value in terms.items()}

        following = jnp.minimum(frame + 1, last)
        next_info = {**info, "rng": rng, "step": step,
                     "command": self._reference_command(following), "amp_frame": amp_frame,
                     "reference_frame": frame, "filtered_target": target, "last_action": action}
        obs = self._observation(data, next_info)
        continuing = state.replace(data=data, obs=obs, privileged_obs=self._privileged_tracking(
            obs, data, amp_frame, following), info=next_info)
        next_state = tree_where(done, self.reset(reset_key), continuing)
        heading_vel = self._heading_velocity(data)
        metrics = {**scaled,
                   "forward_velocity_mps": jnp.where(finite, heading_vel[0], 0.0),
                   "lin_vel_error_mps": jnp.where(finite, errors["root_velocity_mps"], 0.0),
                   "joint_error_rad": jnp.where(finite, errors["joint_error_rad"], 0.0),
                   "root_drift_m": jnp.where(finite, errors["root_drift_m"], 0.0),
                   "root_height_m": jnp.where(finite, data.qpos[2], 0.0),
                   "fell": failed.astype(jnp.float32)}
        return next_state.replace(
            reward=jnp.asarray(sum(scaled.values()), jnp.float32),
            done=done.astype(jnp.float32),
            metrics={k: v.astype(jnp.float32) for k, v in metrics.items()},
            info={**next_state.info, "truncated": (ended & ~failed).astype(jnp.float32),
                  "amp_prev_frame": info["amp_frame"],
                  "amp_terminal_frame": jnp.where(finite, amp_frame, info["amp_frame"])})

    # ----------------------------------------------------------------- pieces
    def _reference_command(self, frame: jax.Array) -> jax.Array:
        """The reference's heading-frame vx, vy [m/s] and yaw rate [rad/s] at ``frame``, [3]."""
        reference = self._reference()
        qpos, qvel = reference.qpos[frame], reference.qvel[frame]
        planar = kin.heading_velocity(qpos, qvel, jnp)[:2]
        return jnp.concatenate([planar, kin.yaw_rate_world(qpos, qvel, jnp)[None]])

    def _errors(self, data: Any, reference: Any, frame: jax.Array, origin: jax.Array
                ) -> dict[str, jax.Array]:
        """Scalar tracking errors of ``data`` against reference frame ``frame``."""
        ref_qpos, ref_qvel = reference.qpos[frame], reference.qvel[frame]
        planar_velocity = (kin.heading_velocity(data.qpos, data.qvel, jnp)[:2]
                           - kin.heading_velocity(ref_qpos, ref_qvel, jnp)[:2])
        return {
            "joint_error_rad": jnp.sqrt(jnp.mean((data.qpos[7:] - ref_qpos[7:]) ** 2)),
            "joint_vel_error_rps": jnp.sqrt(jnp.mean((data.qvel[6:] - ref_qvel[6:]) ** 2)),
            "root_velocity_mps": jnp.linalg.norm(planar_velocity),
            "yaw_rate_rps": (kin.yaw_rate_world(data.qpos, data.qvel, jnp)
                             - kin.yaw_rate_world(ref_qpos, ref_qvel, jnp)),
            "root_height_m": data.qpos[2] - ref_qpos[2],
            "root_drift_m": jnp.linalg.norm(data.qpos[0:2] - (ref_qpos[0:2] - origin)),
        }

    def _tracking_terms(self, data: Any, reference: Any, frame: jax.Array,
                        gravity_local: jax.Array, amp_frame: jax.Array,
                        errors: dict[str, jax.Array], action: jax.Array,
                        last_action: jax.Array, failed: jax.Array) -> dict[str, jax.Array]:
        cfg = self.config.tracking

        def closeness(error: jax.Array, sigma: float) -> jax.Array:
            return jnp.exp(-jnp.square(error / sigma))

        ref_gravity = kin.gravity_local(reference.qpos[frame, 3:7], jnp)
        contacts = amp_frame[kin.FOOT_CONTACT]
        return {
            "joint_pos": closeness(errors["joint_error_rad"], cfg.joint_pos_sigma_rad),
            "joint_vel": closeness(errors["joint_vel_error_rps"], cfg.joint_vel_sigma_rps),
            "root_velocity": closeness(errors["root_velocity_mps"], cfg.root_velocity_sigma_mps),
            "yaw_rate": closeness(errors["yaw_rate_rps"], cfg.yaw_rate_sigma_rps),
            "root_height": closeness(errors["root_height_m"], cfg.root_height_sigma_m),
            "tilt": closeness(jnp.linalg.norm(gravity_local - ref_gravity), cfg.tilt_sigma),
            "root_position": closeness(errors["root_drift_m"], cfg.root_position_sigma_m),
            "contacts": jnp.mean((contacts > 0.5) == (reference.foot_contact[frame] > 0.5)),
            "action_rate": rw.action_rate(action, last_action),
            "termination": failed.astype(jnp.float32),
        }

    def _observation(self, data: Any, info: dict[str, Any]) -> jax.Array:
        reference = self._reference()
        frame = info["reference_frame"]
        last = reference.clip_last[frame]
        following = jnp.minimum(frame + 1, last)
        ahead = jnp.minimum(frame + 1 + self.config.tracking.lookahead_frames, last)
        joints = data.qpos[7:]
        yaw = kin.root_yaw(data.qpos, jnp)
        ref_qpos = reference.qpos[following]
        drift = ref_qpos[0:2] - info["reference_origin"] - data.qpos[0:2]
        cos, sin = jnp.cos(yaw), jnp.sin(yaw)
        root_error = jnp.stack([ref_qpos[2] - data.qpos[2], cos * drift[0] + sin * drift[1],
                                -sin * drift[0] + cos * drift[1],
                                rw.wrap_angle(kin.root_yaw(ref_qpos, jnp) - yaw)])
        proprio = kin.policy_observation(data.qpos, data.qvel, self._default_joints,
                                         info["last_action"], info["command"], jnp)
        return jnp.concatenate([
            proprio, ref_qpos[7:] - joints, reference.qpos[ahead, 7:] - joints,
            kin.gravity_local(ref_qpos[3:7], jnp), root_error]).astype(jnp.float32)

    def _privileged_tracking(self, obs: jax.Array, data: Any, amp_frame: jax.Array,
                             frame: jax.Array) -> jax.Array:
        lin_vel_local = rotate_inverse(data.qpos[3:7], data.qvel[0:3], jnp)
        return jnp.concatenate([obs, lin_vel_local, data.qpos[2:3], amp_frame[kin.FOOT_CONTACT],
                                self._reference().foot_contact[frame]]).astype(jnp.float32)

    def apply_push(self, state: State, force_n: jax.Array, steps: jax.Array) -> State:
        raise ConfigError("wildrobot_track runs nominal physics; it takes no pushes")

