"""Plausibility gates: per-clip sense checks on the human input and the retargeted robot motion.

Each gate measures one number, compares it with a threshold from ``params.yaml``
(``retarget.gates``) and, when it fails, either rejects the clip (no output) or flags it (the
output is written, the reason listed in its quality metrics; ``merge`` then decides by its
include policy). Every decision names the gate, the measured value and the threshold.

Gates (robot scale, floor at z = 0):
- ``non_physical``: human input values no body produces (joint angles, root positions) [reject];
- ``teleport``: a human root step faster than any human runs [reject];
- ``frame_jump``: a human root step far faster than the steps around it [reject];
- ``root_speed`` / ``yaw_rate``: robot root speed or yaw rate above a multiple of the scaled
  human's at some frame [reject];
- ``travel_ratio``: robot travel / human travel outside a band [flag];
- ``joint_limits_pinned``: share of frames with a joint at its limit [flag];
- ``skate`` / ``airborne``: foot skate, and share of frames with no foot on the floor, for
  clips that are not jumps [flag];
- ``balance``: share of slow frames whose centre of mass lies outside the support area [flag];
- ``not_locomotion``: a clip mostly static or seated [flag].
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import mujoco
import numpy as np

from robots.rotations import quat_yaw
from robots.trajectory import step_speed, yaw_rate

REJECT, FLAG = "reject", "flag"
_JUMP_WINDOW = 3  # frames each side of a step that judge whether it jumps


@dataclass(frozen=True)
class GateConfig:
    """Gate thresholds (the ``retarget.gates`` section of params.yaml).

    Attributes:
        max_abs_joint_angle_rad: Human input joint angles beyond this are non-physical.
        max_abs_position_m: Human input positions beyond this are non-physical [m].
        max_human_root_speed_mps: A human root step faster than this (robot scale) is a
            teleport (a sprinting human at robot scale stays under 5 m/s) [m/s].
        frame_jump_ratio, frame_jump_mps: A human root step faster than this multiple of the
            median step around it, and by more than ``frame_jump_mps``, is a frame jump.
        max_root_speed_ratio, root_speed_slack_mps: Robot root speed must stay under
            ratio x human + slack at every frame.
        max_yaw_rate_ratio, yaw_rate_slack_rad_s: Likewise for the heading rate.
        travel_ratio_band: Allowed robot / human travel ratio (for clips travelling at
            least ``min_travel_m``).
        min_travel_m: Below this human travel the ratio is not judged [m].
        max_pinned_share: Share of frames with a joint within ``pinned_margin_rad`` of a limit.
        pinned_margin_rad: See ``max_pinned_share``.
        max_skate_mps: Mean foot skate (contact sites while labelled in contact) [m/s].
        max_airborne_share: Share of frames with no contact site within ``near_floor_m``.
        near_floor_m: See ``max_airborne_share`` [m].
        jump_flight_share: A clip whose human has no sole point near the floor in more than this
            share of frames is a jump: skate and airborne are not judged.
        slow_root_speed_mps: Frames whose root is slower than this are judged for balance and
            count as static [m/s].
        balance_margin_m: The centre of mass may lie this far outside the support area [m].
        max_unbalanced_share: Share of slow frames allowed outside the margin.
        min_slow_frames: Balance is judged only on clips with at least this many slow frames.
        max_static_share: A clip static in more than this share of frames is not locomotion.
        seated_height_fraction: A root lower than this fraction of the standing height is
            seated (or crouched).
        max_seated_share: A clip seated in more than this share of frames is not locomotion.
    """

    BOUNDS: ClassVar[dict[str, str]] = {
        "max_abs_joint_angle_rad": "> 0", "max_abs_position_m": "> 0",
        "max_human_root_speed_mps": "> 0", "frame_jump_ratio": ">= 1", "frame_jump_mps": ">= 0",
        "max_root_speed_ratio": "> 0", "root_speed_slack_mps": ">= 0",
        "max_yaw_rate_ratio": "> 0", "yaw_rate_slack_rad_s": ">= 0", "min_travel_m": ">= 0",
        "max_pinned_share": "[0, 1]", "pinned_margin_rad": ">= 0", "max_skate_mps": ">= 0",
        "max_airborne_share": "[0, 1]", "near_floor_m": ">= 0", "jump_flight_share": "[0, 1]",
        "slow_root_speed_mps": ">= 0", "balance_margin_m": ">= 0",
        "max_unbalanced_share": "[0, 1]", "min_slow_frames": ">= 1",
        "max_static_share": "[0, 1]", "seated_height_fraction": "[0, 1]",
        "max_seated_share": "[0, 1]"}

    max_abs_joint_angle_rad: float = 50.0
    max_abs_position_m: float = 1000.0
    max_human_root_speed_mps: float = 5.0
    frame_jump_ratio: float = 2.5
    frame_jump_mps: float = 0.5
    max_root_speed_ratio: float = 1.3
    root_speed_slack_mps: float = 0.05
    max_yaw_rate_ratio: float = 1.5
    yaw_rate_slack_rad_s: float = 3.0
    travel_ratio_band: tuple[float, float] = (0.7, 1.4)
    min_travel_m: float = 0.3
    max_pinned_share: float = 0.5
    pinned_margin_rad: float = 0.01
    max_skate_mps: float = 0.05
    max_airborne_share: float = 0.2
    near_floor_m: float = 0.015
    jump_flight_share: float = 0.05
    slow_root_speed_mps: float = 0.05
    balance_margin_m: float = 0.02
    min_slow_frames: int = 10
    max_unbalanced_share: float = 0.3
    max_static_share: float = 0.7
    seated_height_fraction: float = 0.75
    max_seated_share: float = 0.3

    def __post_init__(self) -> None:
        low, high = self.travel_ratio_band
        if not 0 <= low <= high:
            raise ValueError(f"gates.travel_ratio_band must be [low, high], got "
                             f"{self.travel_ratio_band}")


@dataclass
class GateResult:
    """Decisions: ``rejects`` and ``flags`` (human-readable reasons), ``values`` (measured)."""

    rejects: list[str]
    flags: list[str]
    values: dict[str, float]

    def as_quality(self) -> dict[str, Any]:
        return {"gate_status": "rejected" if self.rejects else "flagged" if self.flags else "ok",
                "gate_rejects": list(self.rejects), "gate_flags": list(self.flags),
                "gate_values": dict(self.values)}


def input_gates(positions: np.ndarray, joint_angles: np.ndarray | None,
                config: GateConfig) -> list[str]:
    """Reasons the human input is non-physical (before any retargeting).

    Args:
        positions: [T, ...] human positions or root translation [m].
        joint_angles: Optional [T, ...] joint angles (axis-angle components) [rad].
    """
    reasons = []
    if not np.all(np.isfinite(positions)):
        reasons.append("non_physical: NaN or inf positions")
    elif np.abs(positions).max() > config.max_abs_position_m:
        reasons.append(f"non_physical: position {np.abs(positions).max():.3g} m beyond "
                       f"{config.max_abs_position_m:g} m")
    if joint_angles is not None and joint_angles.size:
        largest = float(np.abs(joint_angles).max())
        if not np.isfinite(largest) or largest > config.max_abs_joint_angle_rad:
            reasons.append(f"non_physical: joint angle {largest:.3g} rad beyond "
                           f"{config.max_abs_joint_angle_rad:g} rad")
    return reasons


def motion_gates(model: mujoco.MjModel, qpos: np.ndarray, fps: float, human_root: np.ndarray,
                 raw_human_root: np.ndarray, human_yaw: np.ndarray, human_soles: np.ndarray,
                 contact_site_ids: np.ndarray,
                 joint_columns: np.ndarray, joint_range: np.ndarray, standing_height_m: float,
                 quality: dict[str, Any], config: GateConfig) -> GateResult:
    """Gate a retargeted clip.

    Args:
        model: Robot model.
        qpos: [T, nq] robot motion.
        fps: Frame rate [Hz].
        human_root: [T, 3] scaled human root path (hip midpoint) the robot tracked [m].
        raw_human_root: [T, 3] the same before the input low-pass (teleports and frame jumps
            are judged on it: the low-pass smears them) [m].
        human_yaw: [T] scaled human pelvis heading [rad].
        human_soles: [T, P, 3] scaled human sole points [m].
        contact_site_ids: [S] robot foot contact sites.
        joint_columns, joint_range: qpos columns of the hinge joints and their [n, 2] ranges.
        standing_height_m: Robot root height standing [m].
        quality: The clip's quality metrics (skate, travel ratio).
        config: Thresholds.
    """
    rejects, flags, values = [], [], {}
    frames = qpos.shape[0]
    human_step = step_speed(raw_human_root, fps)
    tracked_step = step_speed(human_root, fps)
    robot_step = step_speed(qpos[:, :3], fps)
    values["human_root_speed_max_mps"] = float(human_step.max()) if frames > 1 else 0.0
    if values["human_root_speed_max_mps"] > config.max_human_root_speed_mps:
        frame = int(np.argmax(human_step))
        rejects.append(f"teleport: human root moves {human_step[frame]:.3g} m/s at frame "
                       f"{frame} (> {config.max_human_root_speed_mps:g} m/s)")
    elif frames > 2 * _JUMP_WINDOW + 1:
        # A frame jump: one step far faster than the steps around it (a glitch, a cut).
        padded = np.pad(human_step, _JUMP_WINDOW, mode="edge")
        windows = np.lib.stride_tricks.sliding_window_view(padded, 2 * _JUMP_WINDOW + 1)
        around = np.median(windows, axis=1)
        spike = human_step - config.frame_jump_ratio * around
        frame = int(np.argmax(spike))
        values["human_root_jump_mps"] = float(human_step[frame] - around[frame])
        if spike[frame] > 0 and human_step[frame] - around[frame] > config.frame_jump_mps:
            rejects.append(f"frame_jump: human root jumps {human_step[frame] / fps:.3g} m "
                           f"between frames {frame} and {frame + 1} ({human_step[frame]:.3g} "
                           f"m/s, {around[frame]:.3g} m/s around it)")
    excess, frame = _worst_excess(robot_step, tracked_step, config.max_root_speed_ratio,
                                  config.root_speed_slack_mps)
    values["root_speed_excess_max_mps"] = float(excess.max()) if frames > 1 else 0.0
    if frame is not None:
        rejects.append(f"root_speed: robot root {robot_step[frame]:.3g} m/s vs human "
                       f"{tracked_step[frame]:.3g} m/s at frame {frame} (> "
                       f"{config.max_root_speed_ratio:g}x + {config.root_speed_slack_mps:g})")
    robot_yaw_rate = yaw_rate(quat_yaw(qpos[:, 3:7]), fps)
    human_yaw_rate = yaw_rate(human_yaw, fps)
    _, frame = _worst_excess(robot_yaw_rate, human_yaw_rate, config.max_yaw_rate_ratio,
                             config.yaw_rate_slack_rad_s)
    values["yaw_rate_max_rad_s"] = float(robot_yaw_rate.max()) if frames > 1 else 0.0
    if frame is not None:
        rejects.append(f"yaw_rate: robot turns {robot_yaw_rate[frame]:.3g} rad/s vs human "
                       f"{human_yaw_rate[frame]:.3g} rad/s at frame {frame}")
    ratio = quality.get("root_travel_ratio")
    human_travel = float(quality.get("human_root_travel_m", 0.0))
    low, high = config.travel_ratio_band
    if ratio is not None and human_travel >= config.min_travel_m and not low <= ratio <= high:
        flags.append(f"travel_ratio: robot travels {ratio:.2f}x the human's "
                     f"(band {low:g}..{high:g})")
    joints = qpos[:, joint_columns]
    pinned = ((joints <= joint_range[:, 0] + config.pinned_margin_rad)
              | (joints >= joint_range[:, 1] - config.pinned_margin_rad)).any(axis=1)
    values["joint_limit_pinned_share"] = float(pinned.mean())
    if pinned.mean() > config.max_pinned_share:
        flags.append(f"joint_limits_pinned: a joint at its limit in {pinned.mean():.0%} of "
                     f"frames (> {config.max_pinned_share:.0%})")
    sites, com = _sites_and_com(model, qpos, contact_site_ids)
    near = sites[..., 2] < config.near_floor_m  # [T, S]
    human_flight = float(np.mean(human_soles[..., 2].min(axis=1) > 2 * config.near_floor_m))
    values["human_flight_share"] = human_flight
    airborne = float(np.mean(~near.any(axis=1)))
    values["airborne_share"] = airborne
    if human_flight <= config.jump_flight_share:
        skate = float(quality.get("foot_skate_mps", 0.0))
        if skate > config.max_skate_mps:
            flags.append(f"skate: feet slide {skate:.3f} m/s in contact "
                         f"(> {config.max_skate_mps:g})")
        if airborne > config.max_airborne_share:
            flags.append(f"airborne: no foot on the floor in {airborne:.0%} of frames "
                         f"(> {config.max_airborne_share:.0%}) of a clip that is not a jump")
    slow = np.concatenate([[True], robot_step < config.slow_root_speed_mps]) \
        if frames > 1 else np.ones(1, dtype=bool)
    unbalanced = np.array([_outside_support(com[t, :2], sites[t][near[t], :2])
                           > config.balance_margin_m for t in np.flatnonzero(slow)])
    # A handful of slow frames (the start of a run) says nothing about standing balance.
    share = float(unbalanced.mean()) if unbalanced.size >= config.min_slow_frames else 0.0
    values["unbalanced_slow_share"] = share
    if share > config.max_unbalanced_share:
        flags.append(f"balance: centre of mass outside the feet in {share:.0%} of slow frames "
                     f"(> {config.max_unbalanced_share:.0%})")
    static = float(slow.mean())
    seated = float(np.mean(qpos[:, 2] < config.seated_height_fraction * standing_height_m))
    values.update(static_share=static, seated_share=seated)
    if static > config.max_static_share or seated > config.max_seated_share:
        flags.append(f"not_locomotion: static in {static:.0%} and seated in {seated:.0%} of "
                     f"frames (limits {config.max_static_share:.0%}, "
                     f"{config.max_seated_share:.0%})")
    return GateResult(rejects=rejects, flags=flags, values=values)


def _worst_excess(robot_rate: np.ndarray, human_rate: np.ndarray, ratio: float,
                  slack: float) -> tuple[np.ndarray, int | None]:
    """How far the robot's per-step rate [T-1] exceeds ``ratio`` x the human's + ``slack``
    (same units), and the step where it exceeds it most (None if it never does)."""
    excess = robot_rate - (ratio * human_rate + slack)
    if excess.size == 0 or not excess.max() > 0:
        return excess, None
    return excess, int(np.argmax(excess))


def _sites_and_com(model: mujoco.MjModel, qpos: np.ndarray,
                   site_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Contact sites [T, S, 3] and whole-body centre of mass [T, 3]."""
    data = mujoco.MjData(model)
    sites = np.empty((qpos.shape[0], len(site_ids), 3))
    com = np.empty((qpos.shape[0], 3))
    for t, q in enumerate(qpos):
        data.qpos[:] = q
        mujoco.mj_kinematics(model, data)
        mujoco.mj_comPos(model, data)
        sites[t] = data.site_xpos[site_ids]
        com[t] = data.subtree_com[1]  # body 1: the floating root, its subtree the robot
    return sites, com


def _outside_support(point: np.ndarray, support: np.ndarray) -> float:
    """Distance [m] of ``point`` [2] outside the convex hull of ``support`` [K, 2] (0 inside;
    inf with no support)."""
    if len(support) == 0:
        return float("inf")
    if len(support) == 1:
        return float(np.linalg.norm(point - support[0]))
    hull = _convex_hull(support)
    if len(hull) >= 3 and _inside(point, hull):
        return 0.0
    return float(min(_segment_distance(point, hull[i], hull[(i + 1) % len(hull)])
                     for i in range(len(hull))))


def _convex_hull(points: np.ndarray) -> np.ndarray:
    """Counter-clockwise hull (monotone chain) of [K, 2] points."""
    pts = sorted(map(tuple, np.round(points, 9)))
    if len(pts) <= 2:
        return np.array(pts)

    def half(seq: list[tuple[float, float]]) -> list[tuple[float, float]]:
        out: list[tuple[float, float]] = []
        for p in seq:
            while len(out) >= 2 and _cross2(np.subtract(out[-1], out[-2]),
                                            np.subtract(p, out[-2])) <= 0:
                out.pop()
            out.append(p)
        return out

    lower, upper = half(pts), half(pts[::-1])
    return np.array(lower[:-1] + upper[:-1])


def _inside(point: np.ndarray, hull: np.ndarray) -> bool:
    edges = np.roll(hull, -1, axis=0) - hull
    return bool(np.all(_cross2(edges, point - hull) >= 0))


def _cross2(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """z of the cross product of 2-D vectors [..., 2]."""
    a, b = np.asarray(a), np.asarray(b)
    return a[..., 0] * b[..., 1] - a[..., 1] * b[..., 0]


def _segment_distance(p: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    ab = b - a
    t = 0.0 if not ab.any() else float(np.clip((p - a) @ ab / (ab @ ab), 0.0, 1.0))
    return float(np.linalg.norm(p - (a + t * ab)))
