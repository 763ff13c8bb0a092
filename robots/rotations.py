"""Rotation helpers: axis-angle, quaternions (wxyz) and matrices, vectorized over leading dims.

Every function takes arrays whose last axis is the rotation (3 for axis-angle and vectors,
4 for quaternions, 3x3 for matrices) and any number of leading batch axes, which broadcast.
Quaternions are wxyz (MuJoCo order); ``*_xyzw`` helpers exist only for interop boundaries
(scipy, GMR pickles).
"""

from __future__ import annotations

import numpy as np

# Below this angle (rad) the Taylor series replaces sin(x)/x so small rotations stay exact.
_SMALL_ANGLE_RAD = 1e-8


def quat_identity(shape: tuple[int, ...] = ()) -> np.ndarray:
    """Identity quaternions of batch ``shape``: [*shape, 4] wxyz."""
    q = np.zeros((*shape, 4))
    q[..., 0] = 1.0
    return q


def quat_normalize(q: np.ndarray) -> np.ndarray:
    """Unit quaternions: [..., 4] -> [..., 4]."""
    q = np.asarray(q, dtype=float)
    return q / np.linalg.norm(q, axis=-1, keepdims=True)


def quat_canonical(q: np.ndarray) -> np.ndarray:
    """The same rotation with w >= 0 (removes the q / -q double cover): [..., 4]."""
    q = np.asarray(q, dtype=float)
    return np.where(q[..., :1] < 0.0, -q, q)


def quat_conj(q: np.ndarray) -> np.ndarray:
    """Conjugate (the inverse of a unit quaternion): [..., 4]."""
    q = np.asarray(q, dtype=float)
    return q * np.array([1.0, -1.0, -1.0, -1.0])


def quat_inv(q: np.ndarray) -> np.ndarray:
    """Inverse of any non-zero quaternion: [..., 4]."""
    q = np.asarray(q, dtype=float)
    return quat_conj(q) / np.sum(q * q, axis=-1, keepdims=True)


def quat_mul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamilton product ``a * b`` (apply b, then a): [..., 4] x [..., 4] -> [..., 4]."""
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    aw, ax, ay, az = np.moveaxis(a, -1, 0)
    bw, bx, by, bz = np.moveaxis(b, -1, 0)
    return np.stack(
        [
            aw * bw - ax * bx - ay * by - az * bz,
            aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw,
        ],
        axis=-1,
    )


def quat_rotate(q: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Rotate vectors ``v`` [..., 3] by unit quaternions ``q`` [..., 4] -> [..., 3]."""
    q = np.asarray(q, dtype=float)
    v = np.asarray(v, dtype=float)
    w = q[..., :1]
    xyz = q[..., 1:]
    # v' = v + 2 w (u x v) + 2 u x (u x v): avoids building matrices.
    t = 2.0 * np.cross(xyz, v)
    return v + w * t + np.cross(xyz, t)


def quat_rotate_inverse(q: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Rotate vectors ``v`` [..., 3] by the inverse of unit quaternions ``q`` [..., 4]."""
    return quat_rotate(quat_conj(q), v)


def axis_angle_to_quat(aa: np.ndarray) -> np.ndarray:
    """Axis-angle (unit axis times angle, rad) [..., 3] -> unit quaternion [..., 4] wxyz."""
    aa = np.asarray(aa, dtype=float)
    angle = np.linalg.norm(aa, axis=-1, keepdims=True)
    half = 0.5 * angle
    small = angle < _SMALL_ANGLE_RAD
    safe_angle = np.where(small, 1.0, angle)
    # sin(a/2)/a -> 1/2 - a^2/48 as a -> 0
    scale = np.where(small, 0.5 - angle * angle / 48.0, np.sin(half) / safe_angle)
    return np.concatenate([np.cos(half), aa * scale], axis=-1)


def quat_to_axis_angle(q: np.ndarray) -> np.ndarray:
    """Unit quaternion [..., 4] wxyz -> axis-angle [..., 3] with angle in [0, pi]."""
    q = quat_canonical(quat_normalize(q))
    xyz = q[..., 1:]
    sin_half = np.linalg.norm(xyz, axis=-1, keepdims=True)
    angle = 2.0 * np.arctan2(sin_half, q[..., :1])
    small = sin_half < _SMALL_ANGLE_RAD
    safe_sin = np.where(small, 1.0, sin_half)
    # angle / sin(angle/2) -> 2 as the angle -> 0
    scale = np.where(small, 2.0, angle / safe_sin)
    return xyz * scale


def quat_to_matrix(q: np.ndarray) -> np.ndarray:
    """Unit quaternion [..., 4] wxyz -> rotation matrix [..., 3, 3]."""
    q = quat_normalize(q)
    w, x, y, z = q[..., 0], q[..., 1], q[..., 2], q[..., 3]
    out = np.empty(q.shape[:-1] + (3, 3))
    out[..., 0, 0] = 1 - 2 * (y * y + z * z)
    out[..., 0, 1] = 2 * (x * y - w * z)
    out[..., 0, 2] = 2 * (x * z + w * y)
    out[..., 1, 0] = 2 * (x * y + w * z)
    out[..., 1, 1] = 1 - 2 * (x * x + z * z)
    out[..., 1, 2] = 2 * (y * z - w * x)
    out[..., 2, 0] = 2 * (x * z - w * y)
    out[..., 2, 1] = 2 * (y * z + w * x)
    out[..., 2, 2] = 1 - 2 * (x * x + y * y)
    return out


def matrix_to_quat(m: np.ndarray) -> np.ndarray:
    """Rotation matrix [..., 3, 3] -> unit quaternion [..., 4] wxyz with w >= 0.

    Shepperd's method: per element, the largest of the four diagonal combinations is the
    pivot, so it is accurate for every rotation (including 180 degrees).
    """
    m = np.asarray(m, dtype=float)
    m00, m01, m02 = m[..., 0, 0], m[..., 0, 1], m[..., 0, 2]
    m10, m11, m12 = m[..., 1, 0], m[..., 1, 1], m[..., 1, 2]
    m20, m21, m22 = m[..., 2, 0], m[..., 2, 1], m[..., 2, 2]
    # pivot k: the unnormalized quaternion 4 q_k q, whose k-th entry is 4 q_k^2 = pivots[k]
    pivots = (1 + m00 + m11 + m22, 1 + m00 - m11 - m22, 1 - m00 + m11 - m22, 1 - m00 - m11 + m22)
    d21, d02, d10 = m21 - m12, m02 - m20, m10 - m01
    s01, s02, s12 = m01 + m10, m02 + m20, m12 + m21
    rows = (
        (pivots[0], d21, d02, d10),
        (d21, pivots[1], s01, s02),
        (d02, s01, pivots[2], s12),
        (d10, s02, s12, pivots[3]),
    )
    best = np.argmax(np.stack(pivots, axis=-1), axis=-1)
    q = np.stack([np.choose(best, [row[c] for row in rows]) for c in range(4)], axis=-1)
    return quat_canonical(quat_normalize(q))


def axis_angle_to_matrix(aa: np.ndarray) -> np.ndarray:
    """Axis-angle [..., 3] -> rotation matrix [..., 3, 3] (Rodrigues)."""
    aa = np.asarray(aa, dtype=float)
    angle = np.linalg.norm(aa, axis=-1)
    small = angle < _SMALL_ANGLE_RAD
    safe = np.where(small, 1.0, angle)
    # R = I + a [v]x + b [v]x^2 with v the (unnormalized) axis-angle vector
    a = np.where(small, 1.0 - angle**2 / 6.0, np.sin(angle) / safe)
    b = np.where(small, 0.5 - angle**2 / 24.0, (1.0 - np.cos(angle)) / safe**2)
    x, y, z = aa[..., 0], aa[..., 1], aa[..., 2]
    xx, yy, zz, xy, xz, yz = x * x, y * y, z * z, x * y, x * z, y * z
    out = np.empty(aa.shape[:-1] + (3, 3))
    out[..., 0, 0] = 1 - b * (yy + zz)
    out[..., 0, 1] = -a * z + b * xy
    out[..., 0, 2] = a * y + b * xz
    out[..., 1, 0] = a * z + b * xy
    out[..., 1, 1] = 1 - b * (xx + zz)
    out[..., 1, 2] = -a * x + b * yz
    out[..., 2, 0] = -a * y + b * xz
    out[..., 2, 1] = a * x + b * yz
    out[..., 2, 2] = 1 - b * (xx + yy)
    return out


def matrix_to_axis_angle(m: np.ndarray) -> np.ndarray:
    """Rotation matrix [..., 3, 3] -> axis-angle [..., 3]."""
    return quat_to_axis_angle(matrix_to_quat(m))


def skew(v: np.ndarray) -> np.ndarray:
    """Cross-product matrices: [..., 3] -> [..., 3, 3] with skew(a) @ b == a x b."""
    v = np.asarray(v, dtype=float)
    x, y, z = np.moveaxis(v, -1, 0)
    zero = np.zeros_like(x)
    return np.stack(
        [np.stack([zero, -z, y], -1), np.stack([z, zero, -x], -1), np.stack([-y, x, zero], -1)],
        axis=-2,
    )


def quat_from_axis_angle(axis: np.ndarray, angle_rad: np.ndarray | float) -> np.ndarray:
    """Quaternion for rotating ``angle_rad`` [...] about ``axis`` [..., 3] (any length > 0)."""
    axis = np.asarray(axis, dtype=float)
    unit = axis / np.linalg.norm(axis, axis=-1, keepdims=True)
    return axis_angle_to_quat(unit * np.asarray(angle_rad, dtype=float)[..., None])


def quat_slerp(q0: np.ndarray, q1: np.ndarray, t: np.ndarray | float) -> np.ndarray:
    """Spherical interpolation from ``q0`` (t=0) to ``q1`` (t=1) along the short arc.

    q0, q1: [..., 4] unit wxyz; t: broadcastable to [...]. Returns [..., 4] unit quaternions.
    """
    q0 = quat_normalize(q0)
    q1 = quat_normalize(q1)
    t = np.asarray(t, dtype=float)[..., None]
    dot = np.sum(q0 * q1, axis=-1, keepdims=True)
    q1 = np.where(dot < 0.0, -q1, q1)  # take the short way round
    dot = np.abs(dot)
    theta = np.arccos(np.clip(dot, -1.0, 1.0))
    sin_theta = np.sin(theta)
    nearly_equal = sin_theta < 1e-6
    safe_sin = np.where(nearly_equal, 1.0, sin_theta)
    w0 = np.where(nearly_equal, 1.0 - t, np.sin((1.0 - t) * theta) / safe_sin)
    w1 = np.where(nearly_equal, t, np.sin(t * theta) / safe_sin)
    return quat_normalize(w0 * q0 + w1 * q1)


def quat_angle(q: np.ndarray) -> np.ndarray:
    """Rotation angle in [0, pi] rad of unit quaternions [..., 4] -> [...]."""
    q = quat_normalize(q)
    return 2.0 * np.arctan2(np.linalg.norm(q[..., 1:], axis=-1), np.abs(q[..., 0]))


def quat_angle_between(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Angle in [0, pi] rad of the rotation taking ``a`` to ``b``: [..., 4] x [..., 4] -> [...]."""
    return quat_angle(quat_mul(quat_conj(a), b))


def quat_between_vectors(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Shortest-arc unit quaternion rotating direction ``u`` onto ``v``: [..., 3] -> [..., 4].

    Opposite vectors get a 180 degree rotation about an axis perpendicular to ``u``.
    """
    u = np.asarray(u, dtype=float)
    v = np.asarray(v, dtype=float)
    u = u / np.linalg.norm(u, axis=-1, keepdims=True)
    v = v / np.linalg.norm(v, axis=-1, keepdims=True)
    w = 1.0 + np.sum(u * v, axis=-1, keepdims=True)
    xyz = np.cross(u, v)
    opposite = w[..., 0] < 1e-9
    if np.any(opposite):
        # any axis perpendicular to u: cross with x, or with y when u is along x
        x_axis, y_axis = np.array([1.0, 0.0, 0.0]), np.array([0.0, 1.0, 0.0])
        ref = np.where(np.abs(u[..., :1]) < 0.9, x_axis, y_axis)
        perp = np.cross(u, ref)
        perp = perp / np.linalg.norm(perp, axis=-1, keepdims=True)
        xyz = np.where(opposite[..., None], perp, xyz)
        w = np.where(opposite[..., None], 0.0, w)
    return quat_normalize(np.concatenate([w, xyz], axis=-1))


def quat_yaw(q: np.ndarray) -> np.ndarray:
    """Heading (rad) about world +Z of the body x-axis of unit quaternions [..., 4] -> [...]."""
    x_axis = quat_rotate(q, np.array([1.0, 0.0, 0.0]))
    return np.arctan2(x_axis[..., 1], x_axis[..., 0])


def quat_from_yaw(yaw_rad: np.ndarray | float) -> np.ndarray:
    """Rotation about world +Z by ``yaw_rad`` [...] -> [..., 4] wxyz."""
    yaw = np.asarray(yaw_rad, dtype=float)
    zeros = np.zeros_like(yaw)
    return np.stack([np.cos(0.5 * yaw), zeros, zeros, np.sin(0.5 * yaw)], axis=-1)


def wxyz_to_xyzw(q: np.ndarray) -> np.ndarray:
    """Reorder [..., 4] wxyz -> xyzw (scipy, GMR)."""
    q = np.asarray(q)
    return np.concatenate([q[..., 1:], q[..., :1]], axis=-1)


def xyzw_to_wxyz(q_xyzw: np.ndarray) -> np.ndarray:
    """Reorder [..., 4] xyzw (scipy, GMR) -> wxyz."""
    q_xyzw = np.asarray(q_xyzw)
    return np.concatenate([q_xyzw[..., 3:], q_xyzw[..., :3]], axis=-1)


def quat_unwrap(q: np.ndarray, axis: int = 0) -> np.ndarray:
    """Flip signs along ``axis`` (time) so consecutive quaternions lie in the same hemisphere.

    q: [..., 4]; returns the same rotations, continuous in sign, for finite differencing.
    """
    q = np.moveaxis(np.asarray(q, dtype=float), axis, 0)
    dots = np.sum(q[1:] * q[:-1], axis=-1)
    flips = np.concatenate([np.zeros((1, *dots.shape[1:])), np.cumsum(dots < 0.0, axis=0)])
    sign = np.where(flips % 2 == 1, -1.0, 1.0)[..., None]
    return np.moveaxis(q * sign, 0, axis)
