"""Left/right mirroring about the sagittal (x-z) plane, for data augmentation.

The reflection is y → −y. On a robot configuration that means: root y negated, root rotation
R → M R M (M = diag(1, −1, 1)), i.e. quaternion (w, x, y, z) → (w, −x, y, −z); joints of each
``RobotSpec.mirror_pairs`` pair swapped; joints in ``RobotSpec.mirror_negate`` negated. Angular
velocities are pseudo-vectors, so they map to (−ωx, ωy, −ωz). Every map here is an involution:
mirroring twice gives back the input exactly.
"""

from __future__ import annotations

import numpy as np

from amp.features import layout_slices
from robots.spec import CONTACT_POINT_NAMES, RobotSpec

_LINEAR_SIGN = np.array([1.0, -1.0, 1.0])
_ANGULAR_SIGN = np.array([-1.0, 1.0, -1.0])
_QUAT_SIGN = np.array([1.0, -1.0, 1.0, -1.0])
MIRROR_SUFFIX = "_mirror"


def _swap_side(name: str) -> str:
    for a, b in (("left_", "right_"), ("right_", "left_")):
        if name.startswith(a):
            return b + name[len(a):]
    return name


CONTACT_MIRROR_ORDER = np.array([CONTACT_POINT_NAMES.index(_swap_side(n))
                                 for n in CONTACT_POINT_NAMES])
"""Index permutation that maps contact points to their mirror partners, [4]."""


def joint_mirror_map(spec: RobotSpec) -> tuple[np.ndarray, np.ndarray]:
    """Permutation [n] and signs [n] such that ``mirrored[:, i] = sign[i] * joints[:, perm[i]]``."""
    names = spec.joint_names
    perm = np.arange(len(names))
    for a, b in spec.mirror_pairs:
        ia, ib = names.index(a), names.index(b)
        perm[ia], perm[ib] = ib, ia
    sign = np.array([-1.0 if n in spec.mirror_negate else 1.0 for n in names])
    return perm, sign


def mirror_qpos(qpos: np.ndarray, spec: RobotSpec) -> np.ndarray:
    """Mirrored configurations, [T, 7 + n] → [T, 7 + n]."""
    perm, sign = joint_mirror_map(spec)
    return np.concatenate([
        qpos[..., 0:3] * _LINEAR_SIGN,
        qpos[..., 3:7] * _QUAT_SIGN,
        qpos[..., 7:][..., perm] * sign,
    ], axis=-1)


def mirror_qvel(qvel: np.ndarray, spec: RobotSpec) -> np.ndarray:
    """Mirrored free-root velocities, [T, 6 + n] → [T, 6 + n]."""
    perm, sign = joint_mirror_map(spec)
    return np.concatenate([
        qvel[..., 0:3] * _LINEAR_SIGN,
        qvel[..., 3:6] * _ANGULAR_SIGN,
        qvel[..., 6:][..., perm] * sign,
    ], axis=-1)


def mirror_contact_points(points: np.ndarray) -> np.ndarray:
    """Mirrored contact-point positions or velocities, [T, 4, 3]: partners swapped, y negated."""
    return points[..., CONTACT_MIRROR_ORDER, :] * _LINEAR_SIGN


def mirror_features(features: np.ndarray, spec: RobotSpec) -> np.ndarray:
    """The AMP frame of the mirrored motion, from the frame of the original, [..., 29]."""
    slices = layout_slices()
    perm, sign = joint_mirror_map(spec)
    amp = spec.amp_joint_indices
    # Mirror partner of each AMP joint, expressed as a position within the AMP joint list.
    amp_perm = np.array([list(amp).index(perm[j]) for j in amp])
    amp_sign = sign[amp]
    out = np.array(features, copy=True)
    for block in ("joint_pos", "joint_vel"):
        values = features[..., slices[block]]
        out[..., slices[block]] = values[..., amp_perm] * amp_sign
    out[..., slices["root_lin_vel"]] = features[..., slices["root_lin_vel"]] * _LINEAR_SIGN
    out[..., slices["root_ang_vel"]] = features[..., slices["root_ang_vel"]] * _ANGULAR_SIGN
    contact = features[..., slices["foot_contact"]]
    out[..., slices["foot_contact"]] = contact[..., CONTACT_MIRROR_ORDER]
    return out.astype(features.dtype)


def mirrored_name(name: str) -> str:
    """``walk`` ↔ ``walk_mirror`` (so mirroring a name twice gives it back)."""
    if name.endswith(MIRROR_SUFFIX):
        return name[: -len(MIRROR_SUFFIX)]
    return name + MIRROR_SUFFIX
