"""THE AMP frame: one definition, evaluated identically on numpy arrays and inside jitted JAX.

Layout (DESIGN.md 4.4), 29 float32 numbers per frame:

====== ============================================================ =========
slice  content                                                      unit
====== ============================================================ =========
0:9    AMP joint positions (``RobotSpec.amp_joint_names`` order)    rad
9:18   AMP joint velocities, same order                             rad/s
18:21  root linear velocity in the root (pelvis) frame              m/s
21:24  root angular velocity in the root frame                      rad/s
24     root height above the floor (z = 0)                          m
25:29  foot contacts: left_toe, left_heel, right_toe, right_heel    0 or 1
====== ============================================================ =========

Velocities follow MuJoCo's free-joint convention: ``qvel[0:3]`` is the root's linear velocity in
the world frame (so it is rotated into the root frame here) and ``qvel[3:6]`` is already the
angular velocity in the root frame. A contact is purely geometric, so data and simulation label
it by the same rule: the contact point is below ``height_m`` and, if ``max_speed_mps`` is set,
moves horizontally slower than that.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from robots.spec import CONTACT_POINT_NAMES


@dataclass(frozen=True)
class FeatureSlice:
    """A named block of the AMP frame."""

    name: str
    start: int
    stop: int
    unit: str

    @property
    def size(self) -> int:
        return self.stop - self.start

    def as_slice(self) -> slice:
        return slice(self.start, self.stop)


FEATURE_LAYOUT: tuple[FeatureSlice, ...] = (
    FeatureSlice("joint_pos", 0, 9, "rad"),
    FeatureSlice("joint_vel", 9, 18, "rad/s"),
    FeatureSlice("root_lin_vel", 18, 21, "m/s"),
    FeatureSlice("root_ang_vel", 21, 24, "rad/s"),
    FeatureSlice("root_height", 24, 25, "m"),
    FeatureSlice("foot_contact", 25, 29, "1"),
)
FEATURE_DIM = 29
NUM_AMP_JOINTS = 9
NUM_CONTACT_POINTS = 4


@dataclass(frozen=True)
class ContactRule:
    """When a contact point counts as touching the floor.

    Attributes:
        height_m: The point is below this height [m].
        max_speed_mps: If set, the point's horizontal speed must also be below this [m/s].
    """

    BOUNDS: ClassVar[dict[str, str]] = {"max_speed_mps": "> 0"}

    height_m: float = 0.015
    max_speed_mps: float | None = None


def layout_slices() -> dict[str, slice]:
    """Feature block name → slice of the 29-dim frame."""
    return {s.name: s.as_slice() for s in FEATURE_LAYOUT}


FORWARD_SPEED_COLUMN = layout_slices()["root_lin_vel"].start
"""``root_lin_vel/x``: the root's forward speed in its own frame [m/s]."""


def feature_names(amp_joint_names: tuple[str, ...]) -> tuple[str, ...]:
    """One name per feature dimension, e.g. ``joint_pos/left_knee_pitch``."""
    return (
        *(f"joint_pos/{j}" for j in amp_joint_names),
        *(f"joint_vel/{j}" for j in amp_joint_names),
        *(f"root_lin_vel/{a}" for a in "xyz"),
        *(f"root_ang_vel/{a}" for a in "xyz"),
        "root_height/z",
        *(f"foot_contact/{c}" for c in CONTACT_POINT_NAMES),
    )


def layout_record(amp_joint_names: tuple[str, ...]) -> dict[str, Any]:
    """The layout as plain data, stored with every feature file and checked on load."""
    return {
        "dim": FEATURE_DIM,
        "slices": {s.name: [s.start, s.stop, s.unit] for s in FEATURE_LAYOUT},
        "names": list(feature_names(amp_joint_names)),
    }


def array_namespace(x: Any) -> Any:
    """``numpy`` for numpy input, ``jax.numpy`` for anything else (jax arrays, tracers)."""
    if isinstance(x, np.ndarray | np.generic | float | int):
        return np
    import jax.numpy as jnp

    return jnp


def rotate_inverse(quat_wxyz: Any, vec: Any, xp: Any = np) -> Any:
    """Rotate ``vec`` by the inverse of unit quaternion ``quat_wxyz``: R(q)^T v.

    Args:
        quat_wxyz: [..., 4] unit quaternion.
        vec: [..., 3].
    Returns:
        [..., 3] the vector expressed in the frame the quaternion describes.
    """
    w = quat_wxyz[..., :1]
    u = -quat_wxyz[..., 1:4]  # conjugate's vector part
    t = 2.0 * _cross(u, vec, xp)
    return vec + w * t + _cross(u, t, xp)


def _cross(a: Any, b: Any, xp: Any) -> Any:
    """a × b over the last axis (written out: numpy's ``cross`` has a large per-call cost)."""
    ax, ay, az = a[..., 0], a[..., 1], a[..., 2]
    bx, by, bz = b[..., 0], b[..., 1], b[..., 2]
    return xp.stack([ay * bz - az * by, az * bx - ax * bz, ax * by - ay * bx], axis=-1)


def amp_features(
    qpos: Any,
    qvel: Any,
    contact_pos: Any,
    amp_joint_indices: Any,
    rule: ContactRule = ContactRule(),
    contact_vel: Any | None = None,
) -> Any:
    """The 29-dim AMP frame.

    Args:
        qpos: [..., 7 + n] root position, root quaternion wxyz, joint angles.
        qvel: [..., 6 + n] MuJoCo free-joint velocity (world linear, local angular), joints.
        contact_pos: [..., 4, 3] world positions of the contact points in
            ``CONTACT_POINT_NAMES`` order [m].
        amp_joint_indices: [9] indices into the joint part of qpos/qvel (``RobotSpec``).
        rule: The contact rule.
        contact_vel: [..., 4, 3] world velocities of the contact points [m/s]; required when
            ``rule.max_speed_mps`` is set.
    Returns:
        [..., 29] float32 features.
    """
    xp = array_namespace(qpos)
    joint_idx = xp.asarray(amp_joint_indices)
    joint_pos = xp.take(qpos[..., 7:], joint_idx, axis=-1)
    joint_vel = xp.take(qvel[..., 6:], joint_idx, axis=-1)
    root_lin_vel = rotate_inverse(qpos[..., 3:7], qvel[..., 0:3], xp)
    root_ang_vel = qvel[..., 3:6]
    root_height = qpos[..., 2:3]
    contact = contact_pos[..., 2] < rule.height_m
    if rule.max_speed_mps is not None:
        if contact_vel is None:
            raise ValueError("ContactRule.max_speed_mps is set but contact_vel was not given")
        horizontal_speed = xp.sqrt(xp.sum(contact_vel[..., :2] ** 2, axis=-1))
        contact = contact & (horizontal_speed < rule.max_speed_mps)
    parts = (joint_pos, joint_vel, root_lin_vel, root_ang_vel, root_height,
             contact.astype(joint_pos.dtype))
    return xp.concatenate([xp.asarray(p, dtype=xp.float32) for p in parts], axis=-1)
