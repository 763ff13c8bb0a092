"""Retarget quality metrics, per clip and for a whole run.

Per clip (all lengths at robot scale, after scaling; frames at the output rate):
- keypoint error: distance of each tracked robot frame (root, feet, every task with a position
  weight) to its target before contact clean-up, i.e. the scaled human [m], mean and max;
- foot penetration: depth of the contact sites below the floor, max [m] and the fraction of
  frames where any site is deeper than ``penetration_tolerance_m``;
- foot skate: mean horizontal speed of the contact sites over consecutive frames both labelled
  in contact [m/s];
- foot float: height of contact sites above the floor while labelled in contact, max [m];
- joint-limit violations: (frame, joint) pairs outside the joint range;
- max joint speed [rad/s] and RMS joint acceleration [rad/s^2] (jitter), finite differences,
  and the share of frames where some joint's acceleration spikes past
  ``QualityConfig.joint_spike_rad_s2`` (a one-frame kink no motor reproduces);
- root travel: horizontal start-to-end distance of the robot root and of its target (the
  scaled human), and their ratio.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import mujoco
import numpy as np

from robots.trajectory import step_speed

# Below this much human travel a ratio says nothing (a clip standing in place).
_MIN_TRAVEL_FOR_RATIO_M = 0.05


@dataclass(frozen=True)
class QualityConfig:
    """Metric settings.

    Attributes:
        penetration_tolerance_m: Depth below the floor counted as penetration in the frame
            fraction [m] (the max depth is reported exactly).
        joint_limit_tolerance_rad: Slack before a joint value counts as a violation [rad].
        joint_spike_rad_s2: A frame counts in ``joint_spike_frame_fraction`` when some joint's
            acceleration (second difference x fps^2) exceeds this [rad/s^2]; 250 is a 0.1 rad
            kink in one frame at 50 FPS.
    """

    penetration_tolerance_m: float = 1e-3
    joint_limit_tolerance_rad: float = 1e-6
    joint_spike_rad_s2: float = 250.0


@dataclass
class Keypoint:
    """A robot frame and the trajectory it should follow: ``target`` [T, 3] m."""

    name: str
    frame_name: str
    frame_type: str
    target: np.ndarray


def frame_positions(model: mujoco.MjModel, qpos: np.ndarray, body_ids: np.ndarray,
                    site_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Forward kinematics over a clip.

    Returns:
        (bodies [T, B, 3], sites [T, S, 3]) world positions [m].
    """
    data = mujoco.MjData(model)
    bodies = np.empty((qpos.shape[0], len(body_ids), 3))
    sites = np.empty((qpos.shape[0], len(site_ids), 3))
    for t in range(qpos.shape[0]):
        data.qpos[:] = qpos[t]
        mujoco.mj_kinematics(model, data)
        bodies[t] = data.xpos[body_ids]
        sites[t] = data.site_xpos[site_ids]
    return bodies, sites


def clip_quality(model: mujoco.MjModel, qpos: np.ndarray, fps: float, keypoints: list[Keypoint],
                 contact_site_ids: np.ndarray, contact: np.ndarray, joint_columns: np.ndarray,
                 joint_range: np.ndarray, root_target: np.ndarray, config: QualityConfig,
                 floor_height_m: float = 0.0) -> dict[str, Any]:
    """Quality metrics of one retargeted clip.

    Args:
        model: Robot model.
        qpos: [T, nq] result.
        fps: Frame rate of ``qpos`` [Hz].
        keypoints: Tracked frames with their targets.
        contact_site_ids: [S] site ids of the foot contact points.
        contact: [T, S] bool contact labels of those sites.
        joint_columns: [n] qpos columns of the hinge joints.
        joint_range: [n, 2] joint ranges [rad].
        root_target: [T, 3] the root's target positions (scaled human root) [m].
        config: Tolerances.
        floor_height_m: Floor height [m].

    Returns:
        JSON-serializable dict of plain floats and ints.
    """
    body_keys = [k for k in keypoints if k.frame_type == "body"]
    site_keys = [k for k in keypoints if k.frame_type == "site"]
    body_ids = np.array([model.body(k.frame_name).id for k in body_keys], dtype=int)
    site_ids = np.array([model.site(k.frame_name).id for k in site_keys]
                        + list(contact_site_ids), dtype=int)
    bodies, sites = frame_positions(model, qpos, body_ids, site_ids)
    errors = {k.name: np.linalg.norm(bodies[:, i] - k.target, axis=-1)
              for i, k in enumerate(body_keys)}
    errors.update({k.name: np.linalg.norm(sites[:, i] - k.target, axis=-1)
                   for i, k in enumerate(site_keys)})
    all_errors = np.stack([errors[k.name] for k in keypoints], axis=1)  # [T, K]
    contact_sites = sites[:, len(site_keys):]
    root_path = qpos[:, :3]
    quality: dict[str, Any] = {
        "num_frames": int(qpos.shape[0]),
        "fps": float(fps),
        "keypoint_error_mean_m": float(all_errors.mean()),
        "keypoint_error_max_m": float(all_errors.max()),
        "keypoint_error_mean_m_by_frame": {k.name: float(errors[k.name].mean())
                                           for k in keypoints},
        **_penetration(contact_sites, floor_height_m, config.penetration_tolerance_m),
        **_skate(contact_sites, contact, fps),
        "foot_float_max_m": float((contact_sites[..., 2] - floor_height_m)[contact].max())
        if contact.any() else 0.0,
        **_joints(qpos[:, joint_columns], joint_range, fps, config),
        **_travel(root_path, root_target),
    }
    return quality


def _penetration(sites: np.ndarray, floor: float, tolerance: float) -> dict[str, float]:
    depth = np.maximum(floor - sites[..., 2], 0.0)  # [T, S]
    return {
        "foot_penetration_max_m": float(depth.max()),
        "foot_penetration_frame_fraction": float(np.mean(depth.max(axis=1) > tolerance)),
    }


def _skate(sites: np.ndarray, contact: np.ndarray, fps: float) -> dict[str, float | int]:
    both = contact[1:] & contact[:-1]  # [T-1, S]: in contact at both ends of the step
    speed = step_speed(sites[..., :2], fps)
    count = int(both.sum())
    return {
        "foot_skate_mps": float(speed[both].mean()) if count else 0.0,
        "foot_skate_max_mps": float(speed[both].max()) if count else 0.0,
        "foot_contact_steps": count,
        "foot_contact_fraction": float(contact.mean()),
    }


def _joints(joints: np.ndarray, joint_range: np.ndarray, fps: float,
            config: QualityConfig) -> dict[str, float | int]:
    tolerance = config.joint_limit_tolerance_rad
    outside = (joints < joint_range[:, 0] - tolerance) | (joints > joint_range[:, 1] + tolerance)
    speed = np.abs(np.diff(joints, axis=0)) * fps
    acceleration = np.diff(joints, n=2, axis=0) * fps * fps
    return {
        "joint_limit_violations": int(outside.sum()),
        "max_joint_speed_rad_s": float(speed.max()) if speed.size else 0.0,
        "joint_acceleration_rms_rad_s2": float(np.sqrt(np.mean(acceleration ** 2)))
        if acceleration.size else 0.0,
        "joint_spike_frame_fraction": float(np.mean(
            np.abs(acceleration).max(axis=1) > config.joint_spike_rad_s2))
        if acceleration.size else 0.0,
    }


def _travel(root_path: np.ndarray, root_target: np.ndarray) -> dict[str, float | None]:
    robot = float(np.linalg.norm(root_path[-1, :2] - root_path[0, :2]))
    human = float(np.linalg.norm(root_target[-1, :2] - root_target[0, :2]))
    return {
        "root_travel_m": robot,
        "human_root_travel_m": human,
        "root_travel_ratio": robot / human if human >= _MIN_TRAVEL_FOR_RATIO_M else None,
    }


def summarize(clips: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Run-level metrics from per-clip quality dicts (frame-weighted means, maxima, sums)."""
    if not clips:
        return {"clips": 0, "frames": 0}
    qualities = list(clips.values())
    frames = np.array([q["num_frames"] for q in qualities], dtype=float)
    contact_steps = np.array([q["foot_contact_steps"] for q in qualities], dtype=float)

    def weighted(key: str, weights: np.ndarray) -> float:
        values = np.array([q[key] for q in qualities], dtype=float)
        return float((values * weights).sum() / weights.sum()) if weights.sum() > 0 else 0.0

    ratios = [q["root_travel_ratio"] for q in qualities if q.get("root_travel_ratio") is not None]
    return {
        "clips": len(qualities),
        "frames": int(frames.sum()),
        "keypoint_error_mean_m": weighted("keypoint_error_mean_m", frames),
        "keypoint_error_max_m": max(q["keypoint_error_max_m"] for q in qualities),
        "foot_penetration_max_m": max(q["foot_penetration_max_m"] for q in qualities),
        "foot_penetration_frame_fraction": weighted("foot_penetration_frame_fraction", frames),
        "foot_skate_mps": weighted("foot_skate_mps", contact_steps),
        "foot_skate_max_mps": max(q["foot_skate_max_mps"] for q in qualities),
        "foot_float_max_m": max(q["foot_float_max_m"] for q in qualities),
        "joint_limit_violations": int(sum(q["joint_limit_violations"] for q in qualities)),
        "max_joint_speed_rad_s": max(q["max_joint_speed_rad_s"] for q in qualities),
        "joint_acceleration_rms_rad_s2": weighted("joint_acceleration_rms_rad_s2", frames),
        "joint_spike_frame_fraction": weighted("joint_spike_frame_fraction", frames),
        "root_travel_ratio_min": min(ratios) if ratios else None,
    }


def direction_errors(model: mujoco.MjModel, qpos: np.ndarray, torso_body: str,
                     left_arm_body: str, right_arm_body: str, human_spine: np.ndarray,
                     human_shoulders: np.ndarray, lever_m: float) -> dict[str, np.ndarray]:
    """Upper-body direction errors per frame, proportion-free (a small robot's torso is not a
    scaled human's), as the chord they sweep at ``lever_m``: 2 L sin(angle / 2) [m].

    - ``torso_direction``: robot torso body's z axis vs the human spine (pelvis -> neck);
    - ``shoulder_direction``: robot arm-root line (right -> left) vs the human shoulder line,
      both horizontal (heading of the shoulders; a torso twist shows here).

    Args:
        human_spine: [T, 3] pelvis -> neck of the human; human_shoulders: [T, 3] right ->
            left shoulder of the human.
    """
    data = mujoco.MjData(model)
    torso, left, right = (model.body(n).id for n in (torso_body, left_arm_body, right_arm_body))
    up = np.empty((qpos.shape[0], 3))
    line = np.empty((qpos.shape[0], 3))
    for t, q in enumerate(qpos):
        data.qpos[:] = q
        mujoco.mj_kinematics(model, data)
        up[t] = data.xmat[torso].reshape(3, 3)[:, 2]
        line[t] = data.xpos[left] - data.xpos[right]

    def chord(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        a = a / np.maximum(np.linalg.norm(a, axis=-1, keepdims=True), 1e-12)
        b = b / np.maximum(np.linalg.norm(b, axis=-1, keepdims=True), 1e-12)
        return lever_m * np.linalg.norm(a - b, axis=-1)  # |a - b| = 2 sin(angle / 2)

    flat = np.array([1.0, 1.0, 0.0])
    return {"torso_direction": chord(up, human_spine),
            "shoulder_direction": chord(line * flat, human_shoulders * flat)}
