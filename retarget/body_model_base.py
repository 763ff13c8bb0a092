"""What every body model shares: the protocol, its error, and the kinematic-tree maths.

The body models (``retarget.skeleton``, ``retarget.smplx_model``) and the factory that picks one
(``retarget.body_models``) all import from here, and this module imports none of them: the
models depend on the base, the factory on the models, never the other way round.

Both models use the SMPL-X canonical frame (Y up, facing +Z, the body's left on +X); AMASS
``root_orient`` rotates it into the Z-up world, so the output is Z-up world. Forward kinematics
loops over joints, never over frames.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from retarget.human import NUM_BODY_JOINTS, HumanClip, HumanMotion
from robots.errors import AmpkitError
from robots.rotations import axis_angle_to_matrix

DEFAULT_HEIGHT_M = 1.75
"""Body height of the ``skeleton`` model when none is given or fitted [m]."""


class BodyModelError(AmpkitError, ValueError):
    """A body model that cannot be built (unknown kind, missing model files, bad arguments)."""


class BodyModel(Protocol):
    """Maps a clip's pose parameters to world joint and foot-point positions and rotations."""

    name: str

    def forward(self, clip: HumanClip) -> HumanMotion:
        """Positions [T, 26, 3] and rotations [T, 26, 4] wxyz of the 22 joints + FOOT_POINTS."""
        ...


def clip_local_rotations(clip: HumanClip) -> np.ndarray:
    """Local rotation matrices [T, 22, 3, 3] of the 22 body joints (root first) of ``clip``."""
    pose = np.concatenate([clip.root_orient[:, None, :], clip.body_pose], axis=1)  # [T, 22, 3]
    return axis_angle_to_matrix(pose)


def forward_kinematics(
    local_rotations: np.ndarray,
    rest_joints: np.ndarray,
    parents: tuple[int, ...] | np.ndarray,
    root_translation: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Global joint rotations and positions of a kinematic tree, vectorized over frames.

    local_rotations: [T, J, 3, 3] rotation of each joint relative to its parent;
    rest_joints: [J, 3] (or [T, J, 3]) joint positions at zero pose, model frame;
    parents: [J] parent index, -1 for the root, each parent before its children;
    root_translation: [T, 3] added to the root, which rotates about its own rest position
    (the SMPL-X convention: root position = rest_joints[0] + root_translation).
    Returns (global_rotations [T, J, 3, 3], positions [T, J, 3]).
    """
    num_joints = local_rotations.shape[1]
    global_rotations = np.empty_like(local_rotations)
    positions = np.empty(local_rotations.shape[:2] + (3,))
    global_rotations[:, 0] = local_rotations[:, 0]
    positions[:, 0] = rest_joints[..., 0, :] + root_translation
    for joint in range(1, num_joints):
        parent = int(parents[joint])
        bone = rest_joints[..., joint, :] - rest_joints[..., parent, :]
        parent_rotation = global_rotations[:, parent]
        global_rotations[:, joint] = parent_rotation @ local_rotations[:, joint]
        if bone.ndim == 1:
            positions[:, joint] = positions[:, parent] + parent_rotation @ bone
        else:
            positions[:, joint] = positions[:, parent] + (parent_rotation @ bone[..., None])[..., 0]
    return global_rotations, positions


def check_clip(clip: HumanClip) -> None:
    """Raise ``BodyModelError`` if the clip's arrays do not have consistent shapes."""
    frames = clip.num_frames
    expected = {
        "trans": (frames, 3),
        "root_orient": (frames, 3),
        "body_pose": (frames, NUM_BODY_JOINTS - 1, 3),
    }
    for name, shape in expected.items():
        actual = getattr(clip, name).shape
        if actual != shape:
            raise BodyModelError(f"{clip.source}: {name} has shape {actual}, expected {shape}")
