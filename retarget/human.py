"""Human motion types: a loaded AMASS clip (``HumanClip``) and body-model output (``HumanMotion``).

Joint order and parents are those of the first 22 SMPL-X joints (DESIGN 4.1). Every body model
appends the four ``FOOT_POINTS`` after the 22 joints.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

SMPLX_BODY_JOINTS: tuple[str, ...] = (
    "pelvis",
    "left_hip",
    "right_hip",
    "spine1",
    "left_knee",
    "right_knee",
    "spine2",
    "left_ankle",
    "right_ankle",
    "spine3",
    "left_foot",
    "right_foot",
    "neck",
    "left_collar",
    "right_collar",
    "head",
    "left_shoulder",
    "right_shoulder",
    "left_elbow",
    "right_elbow",
    "left_wrist",
    "right_wrist",
)

SMPLX_PARENTS: tuple[int, ...] = (
    -1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19,
)

NUM_BODY_JOINTS = len(SMPLX_BODY_JOINTS)  # 22: pelvis + 21 body joints

# Sole points: toe = front of the toes at the sole, heel = back of the heel at the sole.
FOOT_POINTS: tuple[str, ...] = ("left_heel", "left_toe", "right_heel", "right_toe")

# Which body joint each foot point rides on (its rotation is that joint's rotation).
FOOT_POINT_PARENTS: dict[str, str] = {
    "left_heel": "left_ankle",
    "left_toe": "left_foot",
    "right_heel": "right_ankle",
    "right_toe": "right_foot",
}

HUMAN_MOTION_JOINTS: tuple[str, ...] = SMPLX_BODY_JOINTS + FOOT_POINTS


@dataclass(frozen=True)
class HumanClip:
    """One AMASS clip as pose parameters (what the file holds, before any body model).

    fps: frames per second; trans: [T, 3] root translation in metres (AMASS world, Z-up);
    root_orient: [T, 3] pelvis axis-angle; body_pose: [T, 21, 3] axis-angles of SMPL-X body
    joints 1..21 relative to their parents; betas: [B] shape coefficients; gender: "neutral",
    "male" or "female"; source: file it came from; source_sha256: hex digest of that file.
    """

    fps: float
    trans: np.ndarray
    root_orient: np.ndarray
    body_pose: np.ndarray
    betas: np.ndarray
    gender: str
    source: Path
    source_sha256: str

    @property
    def num_frames(self) -> int:
        """Number of frames T."""
        return int(self.trans.shape[0])

    @property
    def duration_s(self) -> float:
        """Clip length in seconds, (T - 1) / fps."""
        return (self.num_frames - 1) / self.fps


@dataclass
class HumanMotion:
    """Body-model output: world positions and orientations of joints and foot points.

    fps: frames per second; joint_names: the 22 SMPL-X body joints then ``FOOT_POINTS``;
    positions: [T, J, 3] world metres, Z-up (AMASS world frame); rotations: [T, J, 4] world
    wxyz (a foot point carries its foot joint's rotation); source / source_sha256: the clip's
    file; body_model: name of the model that produced it ("skeleton" or "smplx").
    """

    fps: float
    joint_names: tuple[str, ...]
    positions: np.ndarray
    rotations: np.ndarray
    source: Path
    source_sha256: str
    body_model: str

    def index(self, name: str) -> int:
        """Column of joint or foot point ``name`` in positions / rotations."""
        try:
            return self.joint_names.index(name)
        except ValueError:
            raise KeyError(f"no joint {name!r}; joints: {', '.join(self.joint_names)}") from None

    @property
    def num_frames(self) -> int:
        """Number of frames T."""
        return int(self.positions.shape[0])
