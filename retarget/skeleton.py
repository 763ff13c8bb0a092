"""License-free SMPL-X-topology skeleton with anthropometric bone lengths (DESIGN 4.2).

Joint heights, widths and segment lengths are fractions of body height H from the classic
anthropometric segment-length diagram (Drillis & Contini 1966, as tabulated by Winter,
"Biomechanics and Motor Control of Human Movement"): hip (greater trochanter) 0.530 H,
knee 0.285 H, ankle 0.039 H, shoulder 0.818 H, chin 0.870 H, shoulder width 0.259 H, hip
width 0.191 H, foot length 0.152 H, upper arm 0.186 H, forearm 0.146 H. Where the diagram has
no landmark (pelvis, spine joints, neck, head, collars, the ball of the foot) the position is
interpolated between its landmarks, at roughly where the SMPL-X joint sits.

The rest pose is the SMPL-X T-pose in the SMPL-X canonical frame: Y up, facing +Z, the body's
left on +X, the pelvis at the origin (so the pelvis sits at ``trans`` in the world), the
floor at y = -PELVIS_HEIGHT_RATIO * H.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from retarget.body_model_base import (
    DEFAULT_HEIGHT_M,
    BodyModelError,
    check_clip,
    clip_local_rotations,
    forward_kinematics,
)
from retarget.human import (
    FOOT_POINT_PARENTS,
    FOOT_POINTS,
    HUMAN_MOTION_JOINTS,
    SMPLX_BODY_JOINTS,
    SMPLX_PARENTS,
    HumanClip,
    HumanMotion,
)
from robots.rotations import matrix_to_quat
from robots.trajectory import step_speed

# Landmark heights above the floor, fraction of body height (Drillis & Contini / Winter).
HIP_HEIGHT_RATIO = 0.530
KNEE_HEIGHT_RATIO = 0.285
ANKLE_HEIGHT_RATIO = 0.039
SHOULDER_HEIGHT_RATIO = 0.818
CHIN_HEIGHT_RATIO = 0.870
# Widths and lengths, fraction of body height.
SHOULDER_WIDTH_RATIO = 0.259  # biacromial: shoulder joint to shoulder joint
HIP_WIDTH_RATIO = 0.191
FOOT_LENGTH_RATIO = 0.152
UPPER_ARM_RATIO = 0.186
FOREARM_RATIO = 0.146

# Interpolated placements (no landmark in the diagram), fraction of body height.
PELVIS_HEIGHT_RATIO = 0.570  # pelvis joint a little above the hip joints, as in SMPL-X
HIP_JOINT_HALF_SPREAD_RATIO = 0.045  # hip joint centres lie well inside the trochanters
SPINE1_HEIGHT_RATIO = 0.625
SPINE2_HEIGHT_RATIO = 0.690
SPINE3_HEIGHT_RATIO = 0.740
NECK_HEIGHT_RATIO = 0.840  # between shoulder line and chin
HEAD_HEIGHT_RATIO = 0.900  # skull base, between chin and eyes
COLLAR_HEIGHT_RATIO = 0.800
COLLAR_HALF_SPREAD_RATIO = 0.035
HEEL_BEHIND_ANKLE_RATIO = 0.038  # the ankle sits about a quarter foot length ahead of the heel
BALL_OF_FOOT_FRACTION = 0.73  # ball of the foot (SMPL-X "foot" joint), from heel, of foot length
BALL_HEIGHT_RATIO = 0.012  # ball joint above the sole


def rest_joint_heights() -> dict[str, tuple[float, float, float]]:
    """Rest (T-pose) joint positions as fractions of height, floor at y = 0: name -> (x, y, z)."""
    hip_x = HIP_JOINT_HALF_SPREAD_RATIO
    shoulder_x = SHOULDER_WIDTH_RATIO / 2.0
    elbow_x = shoulder_x + UPPER_ARM_RATIO
    wrist_x = elbow_x + FOREARM_RATIO
    ball_z = BALL_OF_FOOT_FRACTION * FOOT_LENGTH_RATIO - HEEL_BEHIND_ANKLE_RATIO
    left = {
        "hip": (hip_x, HIP_HEIGHT_RATIO, 0.0),
        "knee": (hip_x, KNEE_HEIGHT_RATIO, 0.0),
        "ankle": (hip_x, ANKLE_HEIGHT_RATIO, 0.0),
        "foot": (hip_x, BALL_HEIGHT_RATIO, ball_z),
        "collar": (COLLAR_HALF_SPREAD_RATIO, COLLAR_HEIGHT_RATIO, 0.0),
        "shoulder": (shoulder_x, SHOULDER_HEIGHT_RATIO, 0.0),
        "elbow": (elbow_x, SHOULDER_HEIGHT_RATIO, 0.0),
        "wrist": (wrist_x, SHOULDER_HEIGHT_RATIO, 0.0),
    }
    table: dict[str, tuple[float, float, float]] = {
        "pelvis": (0.0, PELVIS_HEIGHT_RATIO, 0.0),
        "spine1": (0.0, SPINE1_HEIGHT_RATIO, 0.0),
        "spine2": (0.0, SPINE2_HEIGHT_RATIO, 0.0),
        "spine3": (0.0, SPINE3_HEIGHT_RATIO, 0.0),
        "neck": (0.0, NECK_HEIGHT_RATIO, 0.0),
        "head": (0.0, HEAD_HEIGHT_RATIO, 0.0),
    }
    for part, (x, y, z) in left.items():
        table[f"left_{part}"] = (x, y, z)
        table[f"right_{part}"] = (-x, y, z)  # mirror: the body's right is -X
    return table


def foot_point_heights() -> dict[str, tuple[float, float, float]]:
    """Sole points as fractions of height, floor at y = 0: name -> (x, y, z)."""
    heel_z = -HEEL_BEHIND_ANKLE_RATIO
    toe_z = heel_z + FOOT_LENGTH_RATIO
    x = HIP_JOINT_HALF_SPREAD_RATIO
    return {
        "left_heel": (x, 0.0, heel_z),
        "left_toe": (x, 0.0, toe_z),
        "right_heel": (-x, 0.0, heel_z),
        "right_toe": (-x, 0.0, toe_z),
    }


@dataclass
class SkeletonBodyModel:
    """SMPL-X-topology skeleton scaled to ``height_m``; pure numpy forward kinematics."""

    height_m: float = DEFAULT_HEIGHT_M
    name: str = field(default="skeleton", init=False)
    rest_joints: np.ndarray = field(init=False, repr=False)  # [22, 3] m, pelvis at origin
    foot_point_offsets: np.ndarray = field(init=False, repr=False)  # [4, 3] m, from parent joint
    foot_point_parents: np.ndarray = field(init=False, repr=False)  # [4] joint index

    def __post_init__(self) -> None:
        if not np.isfinite(self.height_m) or not 0.5 <= self.height_m <= 2.5:
            raise BodyModelError(f"skeleton height must be 0.5..2.5 m, got {self.height_m}")
        joints = rest_joint_heights()
        pelvis = np.array(joints["pelvis"])
        self.rest_joints = self.height_m * (
            np.array([joints[name] for name in SMPLX_BODY_JOINTS]) - pelvis
        )
        points = foot_point_heights()
        parents = [SMPLX_BODY_JOINTS.index(FOOT_POINT_PARENTS[name]) for name in FOOT_POINTS]
        self.foot_point_parents = np.array(parents)
        foot_points = self.height_m * (np.array([points[name] for name in FOOT_POINTS]) - pelvis)
        self.foot_point_offsets = foot_points - self.rest_joints[self.foot_point_parents]

    @property
    def floor_height_m(self) -> float:
        """Floor height in the canonical frame (y), relative to the pelvis at rest: metres."""
        return -PELVIS_HEIGHT_RATIO * self.height_m

    def bone_length(self, joint: str) -> float:
        """Distance from ``joint`` to its parent at rest, metres."""
        index = SMPLX_BODY_JOINTS.index(joint)
        parent = SMPLX_PARENTS[index]
        return float(np.linalg.norm(self.rest_joints[index] - self.rest_joints[parent]))

    def forward(self, clip: HumanClip) -> HumanMotion:
        """World positions [T, 26, 3] and rotations [T, 26, 4] wxyz of joints + foot points."""
        check_clip(clip)
        global_rotations, positions = forward_kinematics(
            clip_local_rotations(clip), self.rest_joints, SMPLX_PARENTS, clip.trans
        )
        return self.assemble(clip, global_rotations, positions)

    def assemble(
        self, clip: HumanClip, global_rotations: np.ndarray, positions: np.ndarray
    ) -> HumanMotion:
        """Append foot points to joint FK output [T, 22, 3, 3], [T, 22, 3] -> HumanMotion."""
        parent_rotations = global_rotations[:, self.foot_point_parents]  # [T, 4, 3, 3]
        foot_positions = positions[:, self.foot_point_parents] + np.einsum(
            "tkij,kj->tki", parent_rotations, self.foot_point_offsets
        )
        joint_quats = matrix_to_quat(global_rotations)  # [T, 22, 4]
        return HumanMotion(
            fps=clip.fps,
            joint_names=HUMAN_MOTION_JOINTS,
            positions=np.concatenate([positions, foot_positions], axis=1),
            rotations=np.concatenate(
                [joint_quats, joint_quats[:, self.foot_point_parents]], axis=1
            ),
            source=clip.source,
            source_sha256=clip.source_sha256,
            body_model=self.name,
        )


# Heights the stance fit may return [m]; outside, the fit is not trusted.
FIT_HEIGHT_RANGE_M = (1.2, 2.2)
_FIT_STANCE_SPEED_MPS = 0.1  # the lowest sole point of a standing foot moves slower than this


def fit_height(clip: HumanClip) -> tuple[float, int]:
    """The subject's height from the clip's own stance: (height [m], stance frames used).

    The skeleton's bones all scale with its height H and the pelvis sits at ``trans``, so the
    lowest sole point of a frame is at ``trans_z + H * u`` with ``u`` the same frame's lowest
    point of a 1 m skeleton (rotations do not depend on H). AMASS puts the floor at z = 0, so
    every frame whose lowest sole point stands still (a foot on the floor) gives
    H = -trans_z / u; the median over those frames is the fit. A clip with no such frame (or
    a fit outside ``FIT_HEIGHT_RANGE_M``) returns (DEFAULT_HEIGHT_M, 0).
    """
    unit = SkeletonBodyModel(height_m=1.0)
    zero = HumanClip(fps=clip.fps, trans=np.zeros_like(clip.trans), root_orient=clip.root_orient,
                     body_pose=clip.body_pose, betas=clip.betas, gender=clip.gender,
                     source=clip.source, source_sha256=clip.source_sha256)
    soles = unit.forward(zero).positions[:, -len(FOOT_POINTS):]  # [T, 4, 3], 1 m skeleton
    lowest = soles[..., 2].min(axis=1)
    usable = lowest < -0.1  # a foot below the pelvis (not lying down)
    if not usable.any():
        return DEFAULT_HEIGHT_M, 0
    per_frame = np.where(usable, -clip.trans[:, 2] / np.where(usable, lowest, -1.0), np.nan)
    guess = float(np.nanmedian(per_frame))
    # Stance: the lowest sole point at the first guess barely moves horizontally.
    points = clip.trans[:, None, :] + guess * soles
    index = points[..., 2].argmin(axis=1)
    low = points[np.arange(len(index)), index]
    speed = np.zeros(len(index))
    if len(index) > 1:
        step = step_speed(low[:, :2], clip.fps)
        same = index[1:] == index[:-1]
        speed[1:] = np.where(same, step, np.inf)
        speed[0] = speed[1]
    stance = usable & (speed < _FIT_STANCE_SPEED_MPS)
    if not stance.any():
        return DEFAULT_HEIGHT_M, 0
    height = float(np.median(per_frame[stance]))
    if not FIT_HEIGHT_RANGE_M[0] <= height <= FIT_HEIGHT_RANGE_M[1]:
        return DEFAULT_HEIGHT_M, 0
    return height, int(stance.sum())
