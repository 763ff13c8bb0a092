"""Vectorized robot-motion kinematics in numpy: quaternions, resampling, velocities, site FK.

Everything here works on whole clips at once ([T, ...] arrays), so converting a clip costs a
handful of array operations instead of one MuJoCo call per frame. Conventions are MuJoCo's:
quaternions wxyz, free-joint ``qvel`` = (world linear velocity, angular velocity in the body
frame), and ``qvel`` between two configurations is what ``mj_differentiatePos`` returns.
"""

from __future__ import annotations

from dataclasses import dataclass

import mujoco
import numpy as np
from scipy.interpolate import make_interp_spline

from robots.errors import AmpkitError
from robots.rotations import quat_slerp

ROOT_QPOS = 7  # free joint: xyz + quaternion wxyz
ROOT_QVEL = 6  # free joint: linear xyz + angular xyz


# --- quaternions (wxyz) ---------------------------------------------------------------------

def quat_mul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamilton product ``a * b`` of [..., 4] wxyz quaternions."""
    aw, ax, ay, az = a[..., 0], a[..., 1], a[..., 2], a[..., 3]
    bw, bx, by, bz = b[..., 0], b[..., 1], b[..., 2], b[..., 3]
    return np.stack([
        aw * bw - ax * bx - ay * by - az * bz,
        aw * bx + ax * bw + ay * bz - az * by,
        aw * by - ax * bz + ay * bw + az * bx,
        aw * bz + ax * by - ay * bx + az * bw,
    ], axis=-1)


def quat_conj(q: np.ndarray) -> np.ndarray:
    """Conjugate (the inverse of a unit quaternion), [..., 4]."""
    return q * np.array([1.0, -1.0, -1.0, -1.0])


def quat_to_mat(q: np.ndarray) -> np.ndarray:
    """Rotation matrices [..., 3, 3] of unit quaternions [..., 4] (normalized here)."""
    q = q / np.linalg.norm(q, axis=-1, keepdims=True)
    w, x, y, z = q[..., 0], q[..., 1], q[..., 2], q[..., 3]
    return np.stack([
        np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)], -1),
        np.stack([2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)], -1),
        np.stack([2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)], -1),
    ], axis=-2)


def quat_to_rotvec(q: np.ndarray) -> np.ndarray:
    """Rotation vector [..., 3] (axis × angle, angle in [0, π]) of unit quaternions [..., 4].

    Takes the shorter way round, as MuJoCo's ``mju_quat2Vel`` does.
    """
    q = np.where(q[..., :1] < 0.0, -q, q)
    vec = q[..., 1:]
    sin_half = np.linalg.norm(vec, axis=-1, keepdims=True)
    angle = 2.0 * np.arctan2(sin_half, q[..., :1])
    # angle / sin(angle/2) → 2 as the rotation vanishes; avoid 0/0 there.
    safe = sin_half > 1e-12
    scale = np.where(safe, angle / np.where(safe, sin_half, 1.0), 2.0)
    return vec * scale


def make_hemisphere_continuous(q: np.ndarray) -> np.ndarray:
    """Flip signs along time so consecutive quaternions [T, 4] have a non-negative dot product."""
    dots = np.sum(q[1:] * q[:-1], axis=-1)
    flips = np.concatenate([[1.0], np.cumprod(np.where(dots < 0.0, -1.0, 1.0))])
    return q * flips[:, None]


def _cross_matrix(axis: np.ndarray) -> np.ndarray:
    """[3, 3] matrix K with K v = axis × v."""
    x, y, z = axis
    return np.array([[0.0, -z, y], [z, 0.0, -x], [-y, x, 0.0]])


# --- resampling -----------------------------------------------------------------------------

def resample_times(num_frames: int, source_fps: float, target_fps: float) -> np.ndarray:
    """Output sample times [T'] s: every 1/target_fps from 0 up to the clip's last frame."""
    duration_s = (num_frames - 1) / source_fps
    count = int(np.floor(duration_s * target_fps + 1e-9)) + 1
    return np.arange(count) / target_fps


def resample_qpos(qpos: np.ndarray, source_fps: float, target_fps: float) -> np.ndarray:
    """Resample a free-root robot motion to ``target_fps``.

    Root position and joint angles use a cubic spline (not-a-knot ends; lower degree below 4
    frames);
    the root quaternion uses SLERP between the neighbouring source frames.

    Args:
        qpos: [T, 7 + n] root xyz [m], root quaternion wxyz, joints [rad], at ``source_fps``.
    Returns:
        [T', 7 + n] at ``target_fps``, T' = floor(duration * target_fps) + 1.
    """
    num_frames = qpos.shape[0]
    source_times = np.arange(num_frames) / source_fps
    times = resample_times(num_frames, source_fps, target_fps)
    # Sample times can land a rounding error past the last source frame.
    times = np.minimum(times, source_times[-1])
    quat = make_hemisphere_continuous(qpos[:, 3:7])
    linear_part = np.concatenate([qpos[:, :3], qpos[:, ROOT_QPOS:]], axis=1)
    # Not-a-knot cubic needs 4 frames; shorter clips get the highest degree they support.
    degree = min(3, num_frames - 1)
    linear_out = make_interp_spline(source_times, linear_part, k=degree)(times)
    position = times * source_fps
    left = np.minimum(np.floor(position + 1e-9).astype(np.int64), num_frames - 2)
    fraction = np.clip(position - left, 0.0, 1.0)
    quat_out = quat_slerp(quat[left], quat[left + 1], fraction)
    return np.concatenate([linear_out[:, :3], quat_out, linear_out[:, 3:]], axis=1)


# --- velocities -----------------------------------------------------------------------------

def qpos_increments(qpos: np.ndarray, dt: float) -> np.ndarray:
    """``mj_differentiatePos(dt, qpos[t], qpos[t+1])`` for every consecutive pair, [T-1, 6 + n].

    Root linear part in the world frame, root angular part in the frame of ``qpos[t]``.
    """
    linear = (qpos[1:, :3] - qpos[:-1, :3]) / dt
    relative = quat_mul(quat_conj(qpos[:-1, 3:7]), qpos[1:, 3:7])
    angular = quat_to_rotvec(relative) / dt
    joints = (qpos[1:, ROOT_QPOS:] - qpos[:-1, ROOT_QPOS:]) / dt
    return np.concatenate([linear, angular, joints], axis=1)


def differentiate_qpos(qpos: np.ndarray, fps: float) -> np.ndarray:
    """Velocities [T, 6 + n] of a free-root motion by central differences.

    Interior frames average the backward and forward ``mj_differentiatePos`` results (for the
    joints and root position that is exactly the central difference; for the root rotation
    both one-sided rotation vectors are expressed in the frame of frame t, because a rotation
    leaves its own axis fixed). The first and last frames use the one-sided difference.

    Args:
        qpos: [T, 7 + n], T >= 2.
        fps: Frame rate [Hz].
    """
    if qpos.shape[0] < 2:
        raise AmpkitError(f"need at least 2 frames to differentiate, got {qpos.shape[0]}")
    increments = qpos_increments(qpos, 1.0 / fps)
    qvel = np.empty((qpos.shape[0], increments.shape[1]))
    qvel[0] = increments[0]
    qvel[-1] = increments[-1]
    qvel[1:-1] = 0.5 * (increments[:-1] + increments[1:])
    return qvel


def central_difference(values: np.ndarray, fps: float) -> np.ndarray:
    """Time derivative [T, ...] of ``values`` [T, ...]: central inside, one-sided at the ends."""
    if values.shape[0] < 2:
        raise AmpkitError(f"need at least 2 frames to differentiate, got {values.shape[0]}")
    return np.gradient(values, 1.0 / fps, axis=0, edge_order=1)


# --- forward kinematics ---------------------------------------------------------------------

@dataclass(frozen=True)
class _JointStep:
    kind: int  # mjtJoint
    qpos_address: int
    axis: np.ndarray  # [3] in the body frame
    anchor: np.ndarray  # [3] joint position in the body frame
    has_anchor_offset: bool
    qpos0: float  # angle at which the joint is in its reference pose
    hinge_index: int  # row in SiteKinematics' hinge arrays (-1 for other joints)


@dataclass(frozen=True)
class _BodyStep:
    body: int
    parent: int
    pos: np.ndarray  # [3] in the parent frame
    rot: np.ndarray  # [3, 3] orientation in the parent frame
    identity_rot: bool
    joints: tuple[_JointStep, ...]


class SiteKinematics:
    """Batched forward kinematics of chosen sites of a MuJoCo model (free root + hinges/slides).

    Does what ``mj_kinematics`` does for body poses, for all frames of a clip at once, and only
    for the bodies on the way to the requested sites.
    """

    def __init__(self, model: mujoco.MjModel, site_ids: np.ndarray) -> None:
        self.site_ids = np.asarray(site_ids, dtype=np.int64)
        self.site_body = model.site_bodyid[self.site_ids].copy()
        self.site_pos = model.site_pos[self.site_ids].copy()
        needed: set[int] = set()
        for body in self.site_body:
            b = int(body)
            while b > 0:
                needed.add(b)
                b = int(model.body_parentid[b])
        self._hinges: list[int] = []  # joint ids, in the order of the hinge arrays
        self.steps = tuple(self._body_step(model, b) for b in sorted(needed))
        # All hinge rotations of a clip are built in one vectorized step (Rodrigues).
        self.hinge_qpos = np.array([model.jnt_qposadr[j] for j in self._hinges], dtype=np.int64)
        self.hinge_qpos0 = model.qpos0[self.hinge_qpos].copy()
        cross = np.array([_cross_matrix(model.jnt_axis[j]) for j in self._hinges]).reshape(-1, 3, 3)
        self.hinge_cross = cross
        self.hinge_cross_squared = cross @ cross

    def _body_step(self, model: mujoco.MjModel, body: int) -> _BodyStep:
        joints = []
        first = int(model.body_jntadr[body])
        for j in range(first, first + int(model.body_jntnum[body])):
            kind = int(model.jnt_type[j])
            if kind == mujoco.mjtJoint.mjJNT_BALL:
                raise AmpkitError(f"ball joint {model.joint(j).name!r}: not supported here")
            if kind == mujoco.mjtJoint.mjJNT_FREE and model.body_parentid[body] != 0:
                raise AmpkitError(f"free joint {model.joint(j).name!r} on a non-root body")
            adr = int(model.jnt_qposadr[j])
            hinge_index = -1
            if kind == mujoco.mjtJoint.mjJNT_HINGE:
                hinge_index = len(self._hinges)
                self._hinges.append(j)
            joints.append(_JointStep(
                kind=kind, qpos_address=adr, axis=model.jnt_axis[j].copy(),
                anchor=model.jnt_pos[j].copy(), has_anchor_offset=bool(np.any(model.jnt_pos[j])),
                qpos0=float(model.qpos0[adr]), hinge_index=hinge_index))
        rot = quat_to_mat(model.body_quat[body])
        return _BodyStep(body, int(model.body_parentid[body]), model.body_pos[body].copy(),
                         rot, bool(np.allclose(rot, np.eye(3), atol=0.0)), tuple(joints))

    def site_positions(self, qpos: np.ndarray) -> np.ndarray:
        """World positions [T, S, 3] of the sites for configurations ``qpos`` [T, nq]."""
        num_frames = qpos.shape[0]
        angle = qpos[:, self.hinge_qpos] - self.hinge_qpos0  # [T, H]
        # R = I + sin(a) K + (1 - cos(a)) K^2 for every hinge and frame, [T, H, 3, 3]
        hinge_rot = (np.eye(3) + np.sin(angle)[..., None, None] * self.hinge_cross
                     + (1.0 - np.cos(angle))[..., None, None] * self.hinge_cross_squared)
        pos: dict[int, np.ndarray] = {0: np.zeros((num_frames, 3))}
        mat: dict[int, np.ndarray] = {0: np.broadcast_to(np.eye(3), (num_frames, 3, 3))}
        for step in self.steps:
            if step.joints and step.joints[0].kind == mujoco.mjtJoint.mjJNT_FREE:
                adr = step.joints[0].qpos_address
                pos[step.body] = qpos[:, adr:adr + 3]
                mat[step.body] = quat_to_mat(qpos[:, adr + 3:adr + 7])
                continue
            parent_mat = mat[step.parent]
            body_pos = pos[step.parent] + parent_mat @ step.pos
            body_mat = parent_mat if step.identity_rot else parent_mat @ step.rot
            for joint in step.joints:
                if joint.kind == mujoco.mjtJoint.mjJNT_HINGE:
                    joint_rot = hinge_rot[:, joint.hinge_index]
                    if joint.has_anchor_offset:  # rotate about the anchor, not the body origin
                        anchor = body_pos + body_mat @ joint.anchor
                        body_mat = body_mat @ joint_rot
                        body_pos = anchor - body_mat @ joint.anchor
                    else:
                        body_mat = body_mat @ joint_rot
                else:  # slide
                    offset = qpos[:, joint.qpos_address] - joint.qpos0
                    body_pos = body_pos + (body_mat @ joint.axis) * offset[:, None]
            pos[step.body], mat[step.body] = body_pos, body_mat
        sites = zip(self.site_body, self.site_pos, strict=True)
        return np.stack([pos[int(b)] + mat[int(b)] @ p for b, p in sites], axis=1)
