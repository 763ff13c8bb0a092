"""Reward terms of the walking task: small pure functions, each weighted from config.

A step's reward is ``sum(weight[name] * term[name])``; every scaled term is reported under its
name in ``State.metrics``. Raw terms are positive quantities (a tracking score in [0, 1] or a
squared error); the sign of the weight makes a term a reward or a penalty. Velocities are in
the heading frame (the root's yaw only), so a tilted pelvis does not change the tracked speed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import ClassVar

import jax
import jax.numpy as jnp


@dataclass(frozen=True)
class RewardWeights:
    """Weight per term (per control step; negative = penalty).

    Attributes:
        tracking_lin_vel: exp(-|cmd_xy - v_xy|^2 / sigma_lin), heading frame; v is averaged
            over ``RewardConfig.tracking_window_s``.
        tracking_ang_vel: exp(-(cmd_yaw - w_z)^2 / sigma_ang), world z; w_z is averaged over
            ``RewardConfig.yaw_tracking_window_s``.
        heading: exp(-e^2 / heading_sigma), e the root's yaw minus the commanded heading
            (the episode's start heading advanced by the commanded yaw rate), wrapped to
            [-pi, pi] [rad].
        upright: |gravity_xy in the root frame|^2 (0 when upright).
        base_height: (root height - target)^2 [m^2].
        lin_vel_z: vertical root velocity^2 [m^2/s^2].
        ang_vel_xy: roll/pitch rate^2 [rad^2/s^2].
        yaw_rate_error: (commanded yaw rate - world-z yaw rate)^2 per step [rad^2/s^2],
            never averaged. The exponential ``tracking_ang_vel`` kernel flattens out for a
            swing several times its width (a stepping policy's per-step yaw rate spread
            1.37 rad/s against the data's 0.61, run w16), so it stops pricing the twist;
            a square keeps a gradient at any size. Measured from scratch (run w17: w16 +
            weight -0.1, ``yaw_tracking_window_s`` 1.0): per-step yaw error 0.70 -> 0.60
            rad/s, windowed 0.182 -> 0.154, grid 0.084 -> 0.057, but alternation 0.94 ->
            0.82, walking rate 1.00 -> 0.56 and flat success 0.94, with the discriminator
            unchanged (0.961); 0 in the presets.
        torque: sum of actuator torque^2 [N^2 m^2].
        joint_acc: sum over the actuated joints of (their velocity change over the control
            step / the control step)^2 [rad^2/s^4]. The discriminator sees each transition's
            two frames, so a joint velocity that jumps from one frame to the next gives the
            policy away however data-like each frame is (run w16: the mean per-step change
            of the knee and ankle velocities 0.56 rad/s without exploration noise, 0.75 with
            it, against the data's 0.38).
        root_ang_acc: the same for the root's angular velocity (root frame, 3 axes)
            [rad^2/s^4] (w16: yaw rate 0.32 rad/s per step against the data's 0.18).
        action_rate: sum of (action - previous action)^2.
        joint_limit: summed distance beyond the soft joint limits [rad].
        feet_air_time: on touchdown, (air time - target) per foot [s], only when commanded
            to move.
        feet_slip: sum over touching contact points of horizontal speed^2 [m^2/s^2].
        feet_phase: exp(-sum_feet (foot height - clock's swing height)^2 / sigma^2); needs
            the gait clock (``WalkConfig.gait``).
        contact_phase: share of the feet whose contact matches the clock (stance: touching,
            swing: in the air); needs the gait clock.
        stance_width: (lateral distance between the feet [m], heading frame, left minus
            right, each foot the midpoint of its contact points − ``stance_width_m``)^2
            [m^2]; the target is ``RewardConfig.stance_width_m``, or the data's own.
        reference_pose: exp(-sum_j (q_j - template_j)^2 / reference_pose_sigma), q the AMP
            frame's joint angles [rad] and the template the data's at the clock's phase and
            the commanded forward speed (:mod:`training.envs.pose_template`); needs the gait
            clock, and scores only with the dataset's reference states attached (the trainer
            attaches them; without them, in evaluation and probes, the term is 0).
        alive: 1 per step that did not fall.
        termination: 1 on the step that fell (not on the time limit).
    """

    tracking_lin_vel: float = 1.5
    tracking_ang_vel: float = 0.75
    heading: float = 0.0
    upright: float = -2.0
    base_height: float = -20.0
    lin_vel_z: float = -0.5
    ang_vel_xy: float = -0.02
    yaw_rate_error: float = 0.0
    torque: float = -1e-3
    joint_acc: float = 0.0
    root_ang_acc: float = 0.0
    action_rate: float = -0.02
    joint_limit: float = -5.0
    feet_air_time: float = 1.0
    feet_slip: float = -0.1
    feet_phase: float = 0.0
    contact_phase: float = 0.0
    stance_width: float = 0.0
    reference_pose: float = 0.0
    alive: float = 0.5
    termination: float = -10.0


REWARD_TERMS: tuple[str, ...] = tuple(f.name for f in fields(RewardWeights))
"""Names of the reward terms, in report order."""


@dataclass(frozen=True)
class RewardConfig:
    """Reward weights and the shape parameters of the terms.

    Attributes:
        weights: Weight per term.
        tracking_sigma_lin: Width of the linear-velocity tracking kernel [(m/s)^2].
        tracking_sigma_ang: Width of the yaw-rate tracking kernel [(rad/s)^2].
        base_height_target_m: Target root height [m]; None = the robot's standing height.
        joint_limit_soft_fraction: Fraction of each joint's half-range (around its centre)
            that is free of the joint-limit penalty.
        air_time_target_s: Swing duration that earns zero air-time reward [s].
        min_command_speed_mps: Commanded planar speed below which air time is not rewarded.
        phase_height_sigma_m: Width of the ``feet_phase`` kernel [m].
        tracking_window_s: Time constant [s] of the exponential average of the heading-frame
            velocity that ``tracking_lin_vel`` scores; 0 scores the instantaneous velocity.
            A stepping robot's root velocity swings within every stride (measured: a
            per-step sideways std of 0.14-0.17 m/s at 1.3 Hz); scored per step, that swing
            costs as much reward as a wrong mean speed and hides the speed error.
        yaw_tracking_window_s: The same for the world-z yaw rate that ``tracking_ang_vel``
            scores. The pelvis yaws back and forth within every stride, as the data's does;
            scored per step that swing dominated the term (measured: a per-step yaw error of
            0.40 rad/s against 0.23 over 2 s), so it priced the swing, not the heading drift.
            Averaged, it leaves that swing free: in ``cpu-walk`` (0.5 s, kernel 0.1) the
            policy twisted more within every stride (0.73 rad/s per step) at twice the
            power, so the presets keep 0.
        stance_width_m: Lateral distance between the feet that ``stance_width`` asks for
            [m]; None: the data's own, the mean over the reference's stepping frames,
            measured when the trainer attaches the reference states (``bench.stance_width``
            prints it; 0.0863 m on the filtered default data). Without reference states
            (evaluation, probes) a None target scores the term 0.
        reference_pose_sigma: Width of the ``reference_pose`` kernel [rad^2]. The data's own
            frames sit 0.044 rad^2 from the template (tracked default data, summed over the 9
            joints), so 0.2 scores them 0.80 and a pose at twice that squared distance 0.64.
        heading_sigma: Width of the ``heading`` kernel [rad^2]. The yaw-rate kernel is blind
            to a slow drift (0.2 rad/s scores 0.85 at sigma 0.25) and a narrower one prices
            the in-stride yaw swing; a heading error grows with the drift and stays small
            for the swing (0.78 rad/s at 1.3 Hz is +-0.1 rad of heading).
    """

    BOUNDS: ClassVar[dict[str, str]] = {
        "tracking_sigma_lin": "> 0", "tracking_sigma_ang": "> 0", "heading_sigma": "> 0",
        "phase_height_sigma_m": "> 0", "tracking_window_s": ">= 0",
        "yaw_tracking_window_s": ">= 0", "reference_pose_sigma": "> 0"}

    weights: RewardWeights = RewardWeights()
    tracking_sigma_lin: float = 0.05
    tracking_sigma_ang: float = 0.25
    base_height_target_m: float | None = None
    joint_limit_soft_fraction: float = 0.9
    air_time_target_s: float = 0.2
    min_command_speed_mps: float = 0.05
    phase_height_sigma_m: float = 0.02
    tracking_window_s: float = 0.0
    yaw_tracking_window_s: float = 0.0
    heading_sigma: float = 0.05
    stance_width_m: float | None = None
    reference_pose_sigma: float = 0.2


def tracking_lin_vel(command: jax.Array, lin_vel_heading: jax.Array, sigma: float) -> jax.Array:
    """Planar velocity tracking score in [0, 1]; command [3], lin_vel_heading [3] m/s."""
    error = jnp.sum(jnp.square(command[:2] - lin_vel_heading[:2]))
    return jnp.exp(-error / sigma)


def averaged_velocity(previous: jax.Array, current: jax.Array, dt: float,
                      window_s: float) -> jax.Array:
    """One step of the exponential average (any shape) of a velocity (time constant
    ``window_s`` s, control period ``dt`` s); ``window_s = 0`` returns ``current``."""
    if window_s <= 0.0:
        return current
    weight = 1.0 - math.exp(-dt / window_s)
    return previous + weight * (current - previous)


def tracking_ang_vel(command: jax.Array, yaw_rate: jax.Array, sigma: float) -> jax.Array:
    """Yaw-rate tracking score in [0, 1]; command [3], yaw_rate [] world z [rad/s]."""
    return jnp.exp(-jnp.square(command[2] - yaw_rate) / sigma)


def wrap_angle(angle_rad: jax.Array) -> jax.Array:
    """``angle_rad`` wrapped to [-pi, pi]."""
    return jnp.arctan2(jnp.sin(angle_rad), jnp.cos(angle_rad))


def heading(yaw_rad: jax.Array, target_yaw_rad: jax.Array, sigma: float) -> jax.Array:
    """Heading score in [0, 1]; the root's world yaw and the commanded heading [rad]."""
    return jnp.exp(-jnp.square(wrap_angle(yaw_rad - target_yaw_rad)) / sigma)


def upright(gravity_local: jax.Array) -> jax.Array:
    """Tilt measure: squared horizontal part of the unit gravity vector in the root frame."""
    return jnp.sum(jnp.square(gravity_local[:2]))


def base_height(root_height_m: jax.Array, target_m: float) -> jax.Array:
    return jnp.square(root_height_m - target_m)


def lin_vel_z(lin_vel_world: jax.Array) -> jax.Array:
    return jnp.square(lin_vel_world[2])


def ang_vel_xy(ang_vel_local: jax.Array) -> jax.Array:
    return jnp.sum(jnp.square(ang_vel_local[:2]))


def yaw_rate_error(command: jax.Array, yaw_rate: jax.Array) -> jax.Array:
    """Squared yaw-rate error [rad^2/s^2]; command [3], yaw_rate [] world z [rad/s]."""
    return jnp.square(command[2] - yaw_rate)


def torque(actuator_force: jax.Array) -> jax.Array:
    return jnp.sum(jnp.square(actuator_force))


def velocity_change(velocity: jax.Array, previous_velocity: jax.Array, dt_s: float
                    ) -> jax.Array:
    """Sum of ((velocity - previous_velocity) / dt_s)^2 [(unit/s^2)^2]; velocities [K]."""
    return jnp.sum(jnp.square((velocity - previous_velocity) / dt_s))


def action_rate(action: jax.Array, previous_action: jax.Array) -> jax.Array:
    return jnp.sum(jnp.square(action - previous_action))


def joint_limit(joint_pos: jax.Array, soft_lower: jax.Array, soft_upper: jax.Array) -> jax.Array:
    """Summed violation of the soft limits; joint_pos, soft_lower, soft_upper [n] rad."""
    below = jnp.clip(soft_lower - joint_pos, 0.0, None)
    above = jnp.clip(joint_pos - soft_upper, 0.0, None)
    return jnp.sum(below + above)


def feet_air_time(foot_contact: jax.Array, last_contact: jax.Array, air_time_s: jax.Array,
                  dt: float, target_s: float, moving: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Reward swings of about ``target_s`` at touchdown.

    Args:
        foot_contact: [F] 1.0 where the foot touches now.
        last_contact: [F] contact at the previous step (filters one-step chatter).
        air_time_s: [F] time since each foot last touched [s].
        dt: Control period [s].
        target_s: Swing time that scores zero.
        moving: [] 1.0 when the command asks for motion.
    Returns:
        (term [], updated air_time_s [F]).
    """
    touching = jnp.maximum(foot_contact, last_contact)
    air_time_s = air_time_s + dt
    touchdown = (air_time_s > dt) * touching
    term = jnp.sum((air_time_s - target_s) * touchdown) * moving
    return term, air_time_s * (1.0 - touching)


def feet_slip(contact: jax.Array, contact_vel: jax.Array) -> jax.Array:
    """contact [P] 0/1, contact_vel [P, 3] m/s: horizontal speed^2 of the touching points."""
    return jnp.sum(contact * jnp.sum(jnp.square(contact_vel[:, :2]), axis=-1))


def feet_phase(foot_height_m: jax.Array, target_height_m: jax.Array,
               sigma_m: float) -> jax.Array:
    """Swing-height tracking score in [0, 1]; foot_height_m, target_height_m [F] m."""
    return jnp.exp(-jnp.sum(jnp.square(foot_height_m - target_height_m)) / sigma_m**2)


def contact_phase(foot_contact: jax.Array, in_stance: jax.Array) -> jax.Array:
    """Share [] of feet whose contact [F] (0/1) matches the clock's stance [F] (0/1)."""
    return jnp.mean(1.0 - jnp.abs(foot_contact - in_stance))


def stance_width(width_m: jax.Array, target_m: float) -> jax.Array:
    """(width − target)^2 [m^2] of the lateral distance between the feet ``width_m`` []."""
    return jnp.square(width_m - target_m)


def reference_pose(joint_pos_rad: jax.Array, target_rad: jax.Array, sigma: float) -> jax.Array:
    """Pose score in [0, 1]: exp(-sum (joint_pos - target)^2 / sigma); angles [J] rad."""
    return jnp.exp(-jnp.sum(jnp.square(joint_pos_rad - target_rad)) / sigma)


def scale_terms(terms: dict[str, jax.Array], weights: RewardWeights) -> dict[str, jax.Array]:
    """Each raw term times its weight (same keys)."""
    return {name: getattr(weights, name) * value for name, value in terms.items()}
