"""The walking task's kinematics, written once for numpy and JAX (``xp``), like ``amp.features``.

The MJX environment (jax), the MJX evaluation (jax) and the plain-MuJoCo sim-to-sim runner
(numpy) all compute these from qpos/qvel, so a change to the task is made here once:

- :func:`gravity_local`, :func:`heading_velocity`, :func:`yaw_rate_world`;
- :func:`stance_width` (and :func:`frame_stance_widths` over a dataset's configurations);
- :func:`fall_state`: the fall rule;
- :func:`foot_contact`: per-foot contact from the AMP frame (by the layout's slice);
- :func:`policy_observation` and :func:`noise_widths`: the policy observation and its noise;
- :func:`clock_rate_hz`, :func:`advance_phase`, :func:`leg_phases`, :func:`clock_of_phase`,
  :func:`swing_height_target`: the optional gait clock.

Arrays are batched over leading axes. ``qpos`` [..., 7 + n] is root xyz, root quat wxyz,
joints; ``qvel`` [..., 6 + n] is MuJoCo's free-joint velocity (world linear, local angular).
"""

from __future__ import annotations

from typing import Any

import mujoco
import numpy as np

from amp.features import layout_slices, rotate_inverse

GRAVITY_DIRECTION = (0.0, 0.0, -1.0)
FOOT_CONTACT = layout_slices()["foot_contact"]
"""Slice of the AMP frame holding left_toe, left_heel, right_toe, right_heel contacts."""
OBSERVATION_BLOCKS = ("gravity_local", "gyro", "joint_pos", "joint_vel", "last_action",
                      "command")
"""Blocks of the walking task's policy observation, in order (without a gait clock)."""
CLOCK_BLOCK = "gait_clock"
"""Name of the optional last block: sin and cos of the left leg's gait phase."""
NOISY_BLOCKS = {"gravity_local": "gravity", "gyro": "gyro_rps", "joint_pos": "joint_pos_rad",
                "joint_vel": "joint_vel_rps"}
"""Observation block → the ``NoiseConfig`` field holding its uniform noise half-width."""


def gravity_local(quat_wxyz: Any, xp: Any = np) -> Any:
    """Unit gravity direction in the root frame, [..., 3]."""
    dtype = getattr(quat_wxyz, "dtype", None)
    down = xp.asarray(GRAVITY_DIRECTION, dtype=dtype)
    return rotate_inverse(quat_wxyz, xp.broadcast_to(down, quat_wxyz.shape[:-1] + (3,)), xp)


def root_yaw(qpos: Any, xp: Any = np) -> Any:
    """The root's heading: yaw of its z-y-x Euler angles in the world [...] [rad]."""
    w, x, y, z = qpos[..., 3], qpos[..., 4], qpos[..., 5], qpos[..., 6]
    return xp.arctan2(2.0 * (w * z + x * y), 1.0 - 2.0 * (y * y + z * z))


def stance_width(contact_pos: Any, root_yaw_rad: Any, xp: Any = np) -> Any:
    """Lateral distance [...] m between the feet in the heading frame, left minus right.

    Args:
        contact_pos: [..., 4, 3] world positions of the contact points (left toe, left heel,
            right toe, right heel); each foot is the midpoint of its two.
        root_yaw_rad: [...] the root's heading.
    """
    left = 0.5 * (contact_pos[..., 0, :2] + contact_pos[..., 1, :2])
    right = 0.5 * (contact_pos[..., 2, :2] + contact_pos[..., 3, :2])
    apart = left - right
    return -xp.sin(root_yaw_rad) * apart[..., 0] + xp.cos(root_yaw_rad) * apart[..., 1]


def frame_stance_widths(model: mujoco.MjModel, contact_site_ids: Any,
                        qpos: np.ndarray) -> np.ndarray:
    """:func:`stance_width` [N] m of each configuration ``qpos`` [N, nq], through plain
    MuJoCo kinematics (host-side: a dataset's frames, once)."""
    data = mujoco.MjData(model)
    sites = np.asarray(contact_site_ids)
    widths = np.empty(qpos.shape[0])
    for i, q in enumerate(qpos):
        data.qpos[:] = q
        mujoco.mj_kinematics(model, data)
        widths[i] = stance_width(data.site_xpos[sites], root_yaw(q, np), np)
    return widths


def heading_velocity(qpos: Any, qvel: Any, xp: Any = np) -> Any:
    """Root linear velocity in the heading frame (world rotated by the root's yaw), [..., 3]."""
    yaw = root_yaw(qpos, xp)
    cos, sin = xp.cos(yaw), xp.sin(yaw)
    vx, vy, vz = qvel[..., 0], qvel[..., 1], qvel[..., 2]
    return xp.stack([cos * vx + sin * vy, -sin * vx + cos * vy, vz], axis=-1)


def world_angular_velocity(qpos: Any, qvel: Any, xp: Any = np) -> Any:
    """Root angular velocity in the world frame [..., 3] (qvel[3:6] is in the root frame)."""
    conjugate = qpos[..., 3:7] * xp.asarray([1.0, -1.0, -1.0, -1.0], dtype=qpos.dtype)
    return rotate_inverse(conjugate, qvel[..., 3:6], xp)


def yaw_rate_world(qpos: Any, qvel: Any, xp: Any = np) -> Any:
    """World-z angular velocity of the root [...] [rad/s]."""
    return world_angular_velocity(qpos, qvel, xp)[..., 2]


def fall_state(qpos: Any, qvel: Any, min_root_height_m: float, max_tilt_rad: float,
               xp: Any = np) -> tuple[Any, Any, Any]:
    """(finite [...], fell [...], gravity_local [..., 3]).

    A fall: a non-finite state, the root below ``min_root_height_m``, or its z axis tilted
    further than ``max_tilt_rad`` from vertical.
    """
    finite = xp.all(xp.isfinite(qpos), axis=-1) & xp.all(xp.isfinite(qvel), axis=-1)
    gravity = gravity_local(qpos[..., 3:7], xp)
    fell = ~finite | (qpos[..., 2] < min_root_height_m) | (gravity[..., 2] > -np.cos(max_tilt_rad))
    return finite, fell, gravity


def foot_contact(frame: Any, xp: Any = np) -> Any:
    """Per-foot contact [..., 2] (left, right) from AMP frames [..., 29]: either point touches."""
    contact = frame[..., FOOT_CONTACT]
    return xp.stack([xp.maximum(contact[..., 0], contact[..., 1]),
                     xp.maximum(contact[..., 2], contact[..., 3])], axis=-1)


def policy_observation(qpos: Any, qvel: Any, default_joints: Any, last_action: Any,
                       command: Any, xp: Any = np, clock: Any = None) -> Any:
    """The noise-free policy observation [..., O] float32 (blocks :data:`OBSERVATION_BLOCKS`,
    then :data:`CLOCK_BLOCK` when ``clock`` is given).

    Args:
        default_joints: [n] the default pose's joint angles (``joint_pos`` is relative to it).
        last_action: [..., nu] the previous (clipped) policy action.
        command: [..., 3] vx [m/s], vy [m/s], yaw rate [rad/s].
        clock: [..., 2] :func:`gait_clock`, or None for a task without one.
    """
    parts = [gravity_local(qpos[..., 3:7], xp), qvel[..., 3:6], qpos[..., 7:] - default_joints,
             qvel[..., 6:], last_action, command]
    if clock is not None:
        parts.append(clock)
    return xp.concatenate([xp.asarray(p, dtype=xp.float32) for p in parts], axis=-1)


def clock_rate_hz(command: Any, frequency_hz: float, frequency_per_mps: float,
                  xp: Any = np) -> Any:
    """Gait cycles per second [...] under velocity command(s) [..., 3]:
    ``frequency_hz + frequency_per_mps * |(vx, vy)|``, so that, as in human walking, the
    cadence rises with the commanded speed (turning on the spot steps at ``frequency_hz``)."""
    command = xp.asarray(command, dtype=xp.float32)
    speed = xp.sqrt(command[..., 0] ** 2 + command[..., 1] ** 2)
    return xp.float32(frequency_hz) + xp.float32(frequency_per_mps) * speed


def advance_phase(phase: Any, command: Any, frequency_hz: float, frequency_per_mps: float,
                  control_dt: float, xp: Any = np) -> Any:
    """The left leg's phase [...] in [0, 1) one control step after ``phase`` under velocity
    command(s) [..., 3], at :func:`clock_rate_hz`.

    The environment and sim-to-sim both integrate the phase this way, in float32, so a
    command change mid-episode changes the cadence without a jump in the clock."""
    rate = clock_rate_hz(command, frequency_hz, frequency_per_mps, xp)
    step = rate * xp.float32(control_dt)
    return xp.mod(xp.asarray(phase, dtype=xp.float32) + step, xp.float32(1.0))


def leg_phases(left_phase: Any, xp: Any = np) -> Any:
    """Phase in [0, 1) of each leg [..., 2] (left, right) from the left leg's [...]: the
    right leg runs half a cycle behind, so the clock asks for alternating steps."""
    left = xp.asarray(left_phase, dtype=xp.float32)
    return xp.stack([left, xp.mod(left + 0.5, 1.0)], axis=-1)


def reference_gait_phase(foot_contact: np.ndarray, clip_length: np.ndarray, frame_dt_s: float,
                         min_swing_s: float = 0.08, min_stance_s: float = 0.1,
                         cycle_s: tuple[float, float] = (0.4, 2.5)) -> np.ndarray:
    """The left leg's gait phase [N] in [0, 1) of each dataset frame, as the clock counts it:
    0 at a left touchdown, rising linearly to the next; 0 where the clip is not stepping.

    A touchdown starts a contact that lasts ``min_stance_s`` after at least ``min_swing_s`` in
    the air: shorter contacts (a swing foot scuffing the floor, as a tracked robot's does)
    count as air, and a flickering label is not a step. A cycle between two touchdowns
    counts only if it lasts ``cycle_s`` [s] and the right foot touches down once inside it,
    in its middle half (the clock's right leg runs half a cycle behind); frames outside such
    cycles (standing, the clip's first and last partial cycles, hops, shuffles) get 0, the
    standing start's phase.

    Args:
        foot_contact: [N, 2] per-foot contact (left, right) of every frame, 0/1 or soft.
        clip_length: [C] frames per clip (clips are consecutive in ``foot_contact``).
        frame_dt_s: Seconds per frame.
    """
    down = np.asarray(foot_contact, np.float64) > 0.5
    phase = np.zeros(down.shape[0], np.float64)
    min_swing = max(1, int(round(min_swing_s / frame_dt_s)))
    min_stance = max(1, int(round(min_stance_s / frame_dt_s)))
    start = 0
    for length in np.asarray(clip_length, np.int64):
        left = _without_short_contacts(down[start:start + length, 0], min_stance)
        right = _without_short_contacts(down[start:start + length, 1], min_stance)
        left_steps, right_steps = _touchdowns(left, min_swing), _touchdowns(right, min_swing)
        for first, last in zip(left_steps[:-1], left_steps[1:], strict=True):
            duration = (last - first) * frame_dt_s
            inside = right_steps[(right_steps > first) & (right_steps < last)]
            relative = (inside - first) / (last - first)
            if (cycle_s[0] <= duration <= cycle_s[1] and inside.size == 1
                    and 0.25 <= relative[0] <= 0.75):
                phase[start + first:start + last] = np.arange(last - first) / (last - first)
        start += int(length)
    return phase.astype(np.float32)


def features_gait_phase(features: np.ndarray, clip_length: np.ndarray,
                        fps: float) -> np.ndarray:
    """:func:`reference_gait_phase` [N] of a dataset's AMP frames [N, 29] (per-foot contact
    from their contact labels), its clips ``clip_length`` [C] recorded at ``fps`` [Hz]."""
    return reference_gait_phase(foot_contact(np.asarray(features), np),
                                np.asarray(clip_length, np.int64), 1.0 / fps)


def _without_short_contacts(down: np.ndarray, min_stance: int) -> np.ndarray:
    """``down`` [T] with every contact shorter than ``min_stance`` frames set to air (a contact
    cut off by the clip's end is kept)."""
    kept = down.copy()
    edges = np.flatnonzero(np.diff(np.concatenate([[0], down.astype(np.int8), [0]])))
    for first, end in zip(edges[::2], edges[1::2], strict=True):
        if end - first < min_stance and end < down.shape[0]:
            kept[first:end] = False
    return kept


def _touchdowns(down: np.ndarray, min_swing: int) -> np.ndarray:
    """Frames [K] where a foot lands after at least ``min_swing`` frames in the air."""
    air_run = np.zeros(down.shape[0], np.int64)
    for i in range(1, down.shape[0]):
        air_run[i] = 0 if down[i - 1] else air_run[i - 1] + 1
    landing = down & ~np.concatenate([[True], down[:-1]])
    return np.flatnonzero(landing & (air_run >= min_swing))


def clock_of_phase(left_phase: Any, xp: Any = np) -> Any:
    """The clock the policy sees [..., 2]: sin and cos of 2π times the left leg's phase."""
    angle = 2.0 * np.pi * xp.asarray(left_phase, dtype=xp.float32)
    return xp.stack([xp.sin(angle), xp.cos(angle)], axis=-1).astype(xp.float32)


def swing_height_target(phase: Any, stance_fraction: float, swing_height_m: float,
                        xp: Any = np) -> Any:
    """Foot height the clock asks for [...] m: 0 in stance (phase < ``stance_fraction``), a
    half sine peaking at ``swing_height_m`` in mid-swing."""
    swing = xp.clip((phase - stance_fraction) / (1.0 - stance_fraction), 0.0, 1.0)
    return xp.where(phase < stance_fraction, 0.0, swing_height_m * xp.sin(np.pi * swing))


def noise_widths(observation_layout: tuple[tuple[str, int], ...], noise: Any) -> np.ndarray:
    """Uniform noise half-width per observation entry [O] float32 (zeros when disabled)."""
    return np.concatenate([
        np.full(size, getattr(noise, NOISY_BLOCKS[name]) if noise.enabled and name in NOISY_BLOCKS
                else 0.0, np.float32)
        for name, size in observation_layout])
