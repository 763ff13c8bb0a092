"""The real SMPL-X body model through the ``smplx`` package, evaluated only where needed.

``smplx`` (and torch) are imported only when a ``SmplxBodyModel`` is built. The package loads
the model file (``<model_dir>/smplx/SMPLX_<GENDER>.npz``); its buffers are then copied to
numpy and the forward pass is done here, for speed:

- joints depend only on shape: SMPL-X's ``lbs`` regresses joints from the shaped template
  *before* pose blend shapes are added, so the rest joints are computed once per clip from
  J_regressor @ (v_template + shapedirs . betas), precontracted at load time;
- the kinematic chain runs for all frames at once (a loop over the 55 joints only);
- only the few surface points retargeting needs (heels, toes) are skinned: shape and pose blend
  shapes for those vertex rows, then linear blend skinning with their weights.

The result equals ``smplx.SMPLX(...)`` with flat hands (``use_pca=False``,
``flat_hand_mean=True``, zero hand pose), zero jaw/eye pose and zero expression, which is what
a ``HumanClip`` (body pose only) describes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from retarget.body_model_base import (
    BodyModelError,
    check_clip,
    clip_local_rotations,
    forward_kinematics,
)
from retarget.human import (
    FOOT_POINT_PARENTS,
    FOOT_POINTS,
    HUMAN_MOTION_JOINTS,
    NUM_BODY_JOINTS,
    SMPLX_BODY_JOINTS,
    SMPLX_PARENTS,
    HumanClip,
    HumanMotion,
)
from robots.rotations import matrix_to_quat

# Sole points on the real SMPL-X mesh (10,475 vertices). These are the vertex ids the smplx
# package itself uses for its extra foot keypoints (smplx/vertex_ids.py, OpenPose-style
# "LHeel", "LBigToe", "RHeel", "RBigToe"): the back of the heel and the tip of the big toe.
SMPLX_FOOT_VERTEX_IDS: dict[str, int] = {
    "left_heel": 8846,
    "left_toe": 5770,
    "right_heel": 8635,
    "right_toe": 8463,
}
NUM_SMPLX_JOINTS = 55  # body 22 + jaw + 2 eyes + 2 x 15 finger joints
MODEL_GENDERS: tuple[str, ...] = ("neutral", "male", "female")


@dataclass(frozen=True)
class SmplxArrays:
    """Numpy copies (float64) of the SMPL-X buffers this fast path needs.

    joint_template: [55, 3] J_regressor @ v_template; joint_shapedirs: [55, 3, B]
    J_regressor @ shapedirs; point_template: [P, 3] and point_shapedirs: [P, 3, B]: the foot
    vertex rows; point_posedirs: [189, P * 3] their pose blend shapes for body joints 1..21
    (the only joints a HumanClip rotates, so the other pose features are zero);
    skin_joints: [K] the joints with non-zero skinning weight on a foot vertex, skin_anchors:
    [K] the nearest body joint (0..21) at or above each (joints past the body have identity
    pose here), skin_weights: [P, K]; num_betas: B, the shape coefficients of the file.
    """

    joint_template: np.ndarray
    joint_shapedirs: np.ndarray
    point_template: np.ndarray
    point_shapedirs: np.ndarray
    point_posedirs: np.ndarray
    skin_joints: np.ndarray
    skin_anchors: np.ndarray
    skin_weights: np.ndarray
    num_betas: int


class SmplxBodyModel:
    """SMPL-X joints 0..21 and the heel/toe vertices, per clip gender and betas.

    model_dir: directory holding ``smplx/SMPLX_NEUTRAL.npz`` (and MALE / FEMALE for gendered
    clips). Models are loaded lazily, once per (gender, number of betas).
    """

    name = "smplx"

    def __init__(self, model_dir: str | Path, foot_vertex_ids: dict[str, int] | None = None):
        self.model_dir = Path(model_dir)
        self.foot_vertex_ids = dict(foot_vertex_ids or SMPLX_FOOT_VERTEX_IDS)
        missing = set(FOOT_POINTS) - set(self.foot_vertex_ids)
        if missing:
            raise BodyModelError(f"foot_vertex_ids lacks {sorted(missing)}")
        if not self.model_dir.is_dir():
            raise BodyModelError(f"SMPL-X model directory {self.model_dir} does not exist")
        self._arrays: dict[tuple[str, int], SmplxArrays] = {}

    def model_file(self, gender: str) -> Path:
        """Path of the model file for ``gender``: <model_dir>/smplx/SMPLX_<GENDER>.npz."""
        return self.model_dir / "smplx" / f"SMPLX_{gender.upper()}.npz"

    def create_smplx(self, gender: str, num_betas: int) -> Any:
        """The ``smplx.SMPLX`` module this wrapper reproduces (flat hands, neutral face)."""
        if gender not in MODEL_GENDERS:
            raise BodyModelError(f"unknown gender {gender!r}; valid: {', '.join(MODEL_GENDERS)}")
        path = self.model_file(gender)
        if not path.is_file():
            present = sorted(p.name for p in (self.model_dir / "smplx").glob("SMPLX_*.npz"))
            raise BodyModelError(
                f"{path}: SMPL-X model file for gender {gender!r} not found "
                f"(present: {', '.join(present) or 'none'})"
            )
        try:
            import smplx
        except ImportError as error:
            raise BodyModelError(
                "body model 'smplx' needs the smplx package: pip install 'ampkit[smplx]'"
            ) from error
        return smplx.create(
            str(self.model_dir),
            model_type="smplx",
            gender=gender,
            num_betas=num_betas,
            use_pca=False,
            flat_hand_mean=True,
            ext="npz",
        )

    def arrays(self, gender: str, num_betas: int) -> SmplxArrays:
        """Cached numpy buffers for one model file and betas count."""
        key = (gender, num_betas)
        if key not in self._arrays:
            model = self.create_smplx(gender, num_betas)
            self._arrays[key] = self._extract(model, self.model_file(gender))
        return self._arrays[key]

    def _extract(self, model: Any, path: Path) -> SmplxArrays:
        def numpy(tensor: Any) -> np.ndarray:
            return tensor.detach().cpu().numpy().astype(np.float64)

        v_template = numpy(model.v_template)  # [V, 3]
        shapedirs = numpy(model.shapedirs)  # [V, 3, B]
        regressor = numpy(model.J_regressor)  # [55, V]
        weights = numpy(model.lbs_weights)  # [V, 55]
        posedirs = model.posedirs  # [486, V * 3], kept in torch until sliced
        ids = np.array([self.foot_vertex_ids[name] for name in FOOT_POINTS])
        if ids.max() >= v_template.shape[0]:
            raise BodyModelError(
                f"{path}: foot vertex id {ids.max()} is outside its {v_template.shape[0]} vertices"
            )
        parents = model.parents.detach().cpu().numpy().astype(np.int64)
        if tuple(int(p) for p in parents[1:NUM_BODY_JOINTS]) != SMPLX_PARENTS[1:]:
            raise BodyModelError(f"{path}: kinematic tree of joints 0..21 is not SMPL-X's")
        columns = (3 * ids[:, None] + np.arange(3)).reshape(-1)
        body_features = 9 * (NUM_BODY_JOINTS - 1)  # 189: rows of joints 1..21
        point_weights = weights[ids]
        skin_joints = np.flatnonzero(np.any(point_weights != 0.0, axis=0))
        return SmplxArrays(
            joint_template=regressor @ v_template,
            joint_shapedirs=np.einsum("jv,vkb->jkb", regressor, shapedirs),
            point_template=v_template[ids],
            point_shapedirs=shapedirs[ids],
            point_posedirs=numpy(posedirs[:body_features][:, columns]),
            skin_joints=skin_joints,
            skin_anchors=np.array([_body_anchor(int(j), parents) for j in skin_joints]),
            skin_weights=point_weights[:, skin_joints],
            num_betas=int(model.num_betas),
        )

    def forward(self, clip: HumanClip) -> HumanMotion:
        """World positions [T, 26, 3] and rotations [T, 26, 4] wxyz of joints + foot points."""
        check_clip(clip)
        betas = np.asarray(clip.betas, dtype=np.float64)
        arrays = self.arrays(clip.gender, max(1, len(betas)))
        betas = _fit_betas(betas, arrays.num_betas)

        rest_joints = arrays.joint_template + arrays.joint_shapedirs @ betas  # [55, 3]
        local = clip_local_rotations(clip)  # [T, 22, 3, 3]
        frames = clip.num_frames
        # positions without translation: smplx adds transl after skinning
        global_rotations, joints = forward_kinematics(
            local, rest_joints[:NUM_BODY_JOINTS], SMPLX_PARENTS, np.zeros((frames, 3))
        )
        points = self._skin_points(arrays, betas, local, global_rotations, joints, rest_joints)
        positions = np.concatenate([joints, points], axis=1)
        positions += clip.trans[:, None, :]
        parent_index = [SMPLX_BODY_JOINTS.index(FOOT_POINT_PARENTS[p]) for p in FOOT_POINTS]
        joint_quats = matrix_to_quat(global_rotations)  # [T, 22, 4]
        return HumanMotion(
            fps=clip.fps,
            joint_names=HUMAN_MOTION_JOINTS,
            positions=positions,
            rotations=np.concatenate([joint_quats, joint_quats[:, parent_index]], axis=1),
            source=clip.source,
            source_sha256=clip.source_sha256,
            body_model=self.name,
        )

    @staticmethod
    def _skin_points(
        arrays: SmplxArrays,
        betas: np.ndarray,
        local: np.ndarray,
        global_rotations: np.ndarray,
        joints: np.ndarray,
        rest_joints: np.ndarray,
    ) -> np.ndarray:
        """Linear-blend-skinned foot vertices [T, P, 3] (no translation), as smplx's ``lbs``.

        local / global_rotations: [T, 22, 3, 3]; joints: [T, 22, 3] posed body joints;
        rest_joints: [55, 3] shaped rest joints.
        """
        shaped = arrays.point_template + arrays.point_shapedirs @ betas  # [P, 3]
        frames = local.shape[0]
        num_points = shaped.shape[0]
        # pose feature: (R - I) of joints 1..21, row-major, joint-major, as smplx flattens it
        pose_feature = (local[:, 1:] - np.eye(3)).reshape(frames, -1)  # [T, 189]
        posed = shaped + (pose_feature @ arrays.point_posedirs).reshape(frames, num_points, 3)
        # transforms of the skinning joints: a joint past the body (hands, face) has identity
        # pose, so it moves rigidly with its nearest body ancestor
        anchors = arrays.skin_anchors
        rotations = global_rotations[:, anchors]  # [T, K, 3, 3]
        bones = rest_joints[arrays.skin_joints] - rest_joints[anchors]  # [K, 3]
        positions = joints[:, anchors] + (rotations @ bones[..., None])[..., 0]
        # skinning transform x -> G_j (x - J_j) + p_j, blended by each point's weights
        offsets = positions - (rotations @ rest_joints[arrays.skin_joints][..., None])[..., 0]
        num_skin = anchors.shape[0]
        blended_rotation = (
            arrays.skin_weights @ rotations.reshape(frames, num_skin, 9)
        ).reshape(frames, num_points, 3, 3)
        blended_offset = arrays.skin_weights @ offsets  # [T, P, 3]
        return (blended_rotation @ posed[..., None])[..., 0] + blended_offset


def _body_anchor(joint: int, parents: np.ndarray) -> int:
    """The nearest of the 22 body joints at or above ``joint`` in the kinematic tree."""
    while joint >= NUM_BODY_JOINTS:
        joint = int(parents[joint])
    return joint


def _fit_betas(betas: np.ndarray, num_betas: int) -> np.ndarray:
    """Betas truncated or zero-padded to the model's ``num_betas``."""
    fitted = np.zeros(num_betas)
    count = min(num_betas, len(betas))
    fitted[:count] = betas[:count]
    return fitted


def direct_smplx_forward(model: Any, clip: HumanClip) -> tuple[np.ndarray, np.ndarray]:
    """Reference: the full ``smplx`` forward pass (whole mesh) for ``clip``, in torch.

    model: a module from ``SmplxBodyModel.create_smplx``. Returns (joints [T, 22, 3],
    foot vertices [T, 4, 3] at ``SMPLX_FOOT_VERTEX_IDS`` in FOOT_POINTS order), world metres.
    """
    import torch

    frames = clip.num_frames
    dtype = model.shapedirs.dtype

    def tensor(array: np.ndarray) -> Any:
        return torch.as_tensor(np.ascontiguousarray(array), dtype=dtype)

    betas = _fit_betas(np.asarray(clip.betas, dtype=np.float64), int(model.num_betas))
    zeros = np.zeros((frames, 3))
    with torch.no_grad():
        output = model(
            betas=tensor(np.broadcast_to(betas, (frames, betas.shape[0]))),
            global_orient=tensor(clip.root_orient),
            body_pose=tensor(clip.body_pose.reshape(frames, -1)),
            jaw_pose=tensor(zeros),
            leye_pose=tensor(zeros),
            reye_pose=tensor(zeros),
            left_hand_pose=tensor(np.zeros((frames, 45))),
            right_hand_pose=tensor(np.zeros((frames, 45))),
            expression=tensor(np.zeros((frames, model.expr_dirs.shape[-1]))),
            transl=tensor(clip.trans),
            return_verts=True,
        )
    ids = [SMPLX_FOOT_VERTEX_IDS[name] for name in FOOT_POINTS]
    joints = output.joints[:, :NUM_BODY_JOINTS].numpy().astype(np.float64)
    return joints, output.vertices[:, ids].numpy().astype(np.float64)
