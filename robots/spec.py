"""Typed per-robot constants: everything downstream needs to know about a robot, in one place."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

CONTACT_POINT_NAMES: tuple[str, ...] = ("left_toe", "left_heel", "right_toe", "right_heel")
"""The four foot contact points, in the order the AMP feature contacts use (DESIGN 4.4)."""


@dataclass(frozen=True)
class JointLimit:
    """Range of one hinge joint [rad]."""

    lower: float
    upper: float


@dataclass(frozen=True)
class RobotSpec:
    """Static description of one robot.

    Attributes:
        name: Registry name (the folder under ``robots/``).
        scene_xml: File name, inside the robot's folder, of the MJCF scene (robot + floor).
        root_body: Name of the floating base body (pelvis).
        joint_names: Actuated hinge joints in MJCF qpos order; ``qpos[7:]`` follows this order.
        amp_joint_names: The joints whose positions and velocities enter the AMP frame, in
            feature order.
        contact_sites: Site name per contact point, keyed by ``CONTACT_POINT_NAMES``.
        foot_bodies: Body name of the left and right foot.
        default_pose: Standing joint angles [rad] by joint name; joints not listed are 0.
        joint_limits: Range per joint [rad].
        actuator_force_limit: Symmetric servo torque limit [N·m].
        actuator_kp: Servo position gain [N·m/rad].
        actuator_kv: Servo velocity gain [N·m·s/rad].
        mirror_pairs: Joint pairs swapped by a left/right mirror.
        mirror_negate: Joints whose sign flips under a left/right mirror (yaw and roll about
            the sagittal plane); hip_roll is mirrored in the MJCF axes, so it does not flip.
        standing_height_m: Pelvis height of the standing keyframe [m].
        keyframe: Name of the standing keyframe in the MJCF.
    """

    name: str
    scene_xml: str
    root_body: str
    joint_names: tuple[str, ...]
    amp_joint_names: tuple[str, ...]
    contact_sites: dict[str, str]
    foot_bodies: tuple[str, str]
    default_pose: dict[str, float]
    joint_limits: dict[str, JointLimit]
    actuator_force_limit: float
    actuator_kp: float
    actuator_kv: float
    mirror_pairs: tuple[tuple[str, str], ...]
    mirror_negate: tuple[str, ...]
    standing_height_m: float
    keyframe: str = "stand"
    extra: dict[str, object] = field(default_factory=dict)

    def __post_init__(self) -> None:
        unknown = [j for j in self.amp_joint_names if j not in self.joint_names]
        if unknown:
            raise ValueError(f"{self.name}: AMP joints {unknown} are not in joint_names")
        if set(self.contact_sites) != set(CONTACT_POINT_NAMES):
            raise ValueError(
                f"{self.name}: contact_sites must name exactly {CONTACT_POINT_NAMES}, "
                f"got {sorted(self.contact_sites)}"
            )
        missing = [j for j in self.joint_names if j not in self.joint_limits]
        if missing:
            raise ValueError(f"{self.name}: no joint limit for {missing}")

    @property
    def num_joints(self) -> int:
        return len(self.joint_names)

    @property
    def nq(self) -> int:
        """Size of qpos: root position (3) + root quaternion wxyz (4) + joints."""
        return 7 + self.num_joints

    @property
    def amp_joint_indices(self) -> np.ndarray:
        """Indices into ``joint_names`` (i.e. into ``qpos[7:]``) of the AMP joints, [9]."""
        return np.array([self.joint_names.index(j) for j in self.amp_joint_names], dtype=np.int32)

    @property
    def contact_site_names(self) -> tuple[str, ...]:
        """Site names in ``CONTACT_POINT_NAMES`` order."""
        return tuple(self.contact_sites[p] for p in CONTACT_POINT_NAMES)

    def default_joint_angles(self) -> np.ndarray:
        """Standing joint angles in joint order, [num_joints] rad."""
        return np.array([self.default_pose.get(j, 0.0) for j in self.joint_names])

    def default_qpos(self) -> np.ndarray:
        """Standing qpos at the origin facing +x, [nq]."""
        root = np.array([0.0, 0.0, self.standing_height_m, 1.0, 0.0, 0.0, 0.0])
        return np.concatenate([root, self.default_joint_angles()])

    def joint_range_array(self) -> np.ndarray:
        """Joint ranges in joint order, [num_joints, 2] rad."""
        return np.array([[self.joint_limits[j].lower, self.joint_limits[j].upper]
                         for j in self.joint_names])

    def folder(self) -> Path:
        return Path(__file__).resolve().parent / self.name
