"""Body models: skeleton forward kinematics and the fast smplx path against smplx itself."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from retarget.body_models import BODY_MODEL_KINDS, BodyModelError, make_body_model
from retarget.human import (
    FOOT_POINTS,
    HUMAN_MOTION_JOINTS,
    SMPLX_BODY_JOINTS,
    SMPLX_PARENTS,
    HumanClip,
)
from retarget.skeleton import SkeletonBodyModel
from robots.rotations import (
    axis_angle_to_quat,
    quat_angle_between,
    quat_mul,
    quat_rotate,
    quat_to_matrix,
)

HEIGHT_M = 1.75
J = SMPLX_BODY_JOINTS.index


def _clip(
    frames: int = 3,
    root_orient: np.ndarray | None = None,
    body_pose: np.ndarray | None = None,
    trans: np.ndarray | None = None,
    betas: np.ndarray | None = None,
    gender: str = "neutral",
) -> HumanClip:
    return HumanClip(
        fps=30.0,
        trans=np.zeros((frames, 3)) if trans is None else trans,
        root_orient=np.zeros((frames, 3)) if root_orient is None else root_orient,
        body_pose=np.zeros((frames, 21, 3)) if body_pose is None else body_pose,
        betas=np.zeros(16) if betas is None else betas,
        gender=gender,
        source=Path("clip.npz"),
        source_sha256="0" * 64,
    )


def _random_clip(frames: int, seed: int, gender: str = "neutral") -> HumanClip:
    rng = np.random.default_rng(seed)
    return _clip(
        frames,
        root_orient=rng.normal(0, 1.0, (frames, 3)),
        body_pose=rng.normal(0, 0.5, (frames, 21, 3)),
        trans=rng.normal(0, 1.0, (frames, 3)),
        betas=rng.normal(0, 1.0, 16),
        gender=gender,
    )


# ------------------------------------------------------------------------------------------
# factory


def test_make_body_model_kinds() -> None:
    assert BODY_MODEL_KINDS == ("skeleton", "smplx")
    assert make_body_model("skeleton").name == "skeleton"
    with pytest.raises(BodyModelError, match="valid kinds: skeleton, smplx"):
        make_body_model("mannequin")
    with pytest.raises(BodyModelError, match="needs a model directory"):
        make_body_model("smplx")
    with pytest.raises(BodyModelError, match="does not exist"):
        make_body_model("smplx", "/nonexistent/models")
    with pytest.raises(BodyModelError, match="height"):
        make_body_model("skeleton", height_m=7.0)


def test_package_import_stays_light() -> None:
    code = (
        "import sys, retarget, retarget.amass, retarget.body_models, retarget.skeleton, "
        "retarget.synthesize, retarget.smplx_model; "
        "heavy = [m for m in ('torch', 'smplx') if m in sys.modules]; "
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


# ------------------------------------------------------------------------------------------
# skeleton


def test_skeleton_zero_pose_is_the_rest_skeleton() -> None:
    model = SkeletonBodyModel(height_m=HEIGHT_M)
    trans = np.array([[0.1, -0.2, 0.3], [1.0, 2.0, 3.0]])
    motion = model.forward(_clip(2, trans=trans))
    assert motion.joint_names == HUMAN_MOTION_JOINTS
    assert motion.positions.shape == (2, 26, 3)
    assert motion.rotations.shape == (2, 26, 4)
    np.testing.assert_allclose(motion.positions[:, :22], model.rest_joints + trans[:, None],
                               atol=1e-12)
    np.testing.assert_allclose(motion.rotations, np.tile([1.0, 0, 0, 0], (2, 26, 1)), atol=1e-12)
    # anthropometric segment lengths (Drillis & Contini): thigh 0.530-0.285, shank 0.285-0.039
    assert model.bone_length("left_knee") == pytest.approx((0.530 - 0.285) * HEIGHT_M)
    assert model.bone_length("right_ankle") == pytest.approx((0.285 - 0.039) * HEIGHT_M)
    assert model.bone_length("left_elbow") == pytest.approx(0.186 * HEIGHT_M)
    assert model.bone_length("right_wrist") == pytest.approx(0.146 * HEIGHT_M)
    shoulders = model.rest_joints[J("left_shoulder")] - model.rest_joints[J("right_shoulder")]
    assert shoulders == pytest.approx([0.259 * HEIGHT_M, 0.0, 0.0])
    # SMPL-X canonical frame: the body's left is +X, up is +Y, the feet point to +Z
    assert model.rest_joints[J("left_hip"), 0] > 0 > model.rest_joints[J("right_hip"), 0]
    assert model.rest_joints[J("head"), 1] > 0 > model.rest_joints[J("left_ankle"), 1]
    feet = motion.positions[0, 22:] - trans[0]
    heel, toe = feet[FOOT_POINTS.index("left_heel")], feet[FOOT_POINTS.index("left_toe")]
    assert toe[2] - heel[2] == pytest.approx(0.152 * HEIGHT_M)  # foot length
    np.testing.assert_allclose(feet[:, 1], model.floor_height_m)  # soles on the floor


def test_skeleton_scales_with_height() -> None:
    short, tall = SkeletonBodyModel(height_m=1.5), SkeletonBodyModel(height_m=1.8)
    clip = _random_clip(4, seed=3)
    clip = _clip(4, root_orient=clip.root_orient, body_pose=clip.body_pose)
    np.testing.assert_allclose(
        tall.forward(clip).positions * 1.5, short.forward(clip).positions * 1.8, atol=1e-12
    )


def test_skeleton_upright_in_the_amass_world() -> None:
    # AMASS root_orient rotates the Y-up canonical frame into the Z-up world: +90 deg about X
    model = SkeletonBodyModel(height_m=HEIGHT_M)
    frames = 2
    trans = np.tile([0.0, 0.0, 0.570 * HEIGHT_M], (frames, 1))
    motion = model.forward(_clip(frames, root_orient=np.tile([np.pi / 2, 0, 0], (frames, 1)),
                                 trans=trans))
    np.testing.assert_allclose(motion.positions[:, 22:, 2], 0.0, atol=1e-12)  # soles at z = 0
    assert motion.positions[0, J("head"), 2] == pytest.approx(0.900 * HEIGHT_M)
    # canonical +Z (toes) becomes world -Y under this root rotation
    toe, heel = motion.positions[0, 23], motion.positions[0, 22]
    assert toe[1] < heel[1]


def test_skeleton_knee_flexion_moves_the_ankle_behind_the_knee() -> None:
    model = SkeletonBodyModel(height_m=HEIGHT_M)
    pose = np.zeros((1, 21, 3))
    pose[0, J("left_knee") - 1] = [np.pi / 2, 0.0, 0.0]  # 90 deg about +X: flexion
    motion = model.forward(_clip(1, body_pose=pose))
    knee = motion.positions[0, J("left_knee")]
    ankle = motion.positions[0, J("left_ankle")]
    shank = model.bone_length("left_ankle")
    np.testing.assert_allclose(ankle, knee + [0.0, 0.0, -shank], atol=1e-12)
    # the right leg is untouched
    np.testing.assert_allclose(motion.positions[0, J("right_ankle")],
                               model.rest_joints[J("right_ankle")], atol=1e-12)
    # the heel rides with the ankle: rotated 90 deg about +X with it, (0, y, z) -> (0, -z, y)
    heel = motion.positions[0, 22 + FOOT_POINTS.index("left_heel")]
    offset = model.foot_point_offsets[FOOT_POINTS.index("left_heel")]  # (0, down, back)
    np.testing.assert_allclose(heel - ankle, [0.0, -offset[2], offset[1]], atol=1e-12)


def test_skeleton_hip_flexion_lifts_the_thigh_forward() -> None:
    model = SkeletonBodyModel(height_m=HEIGHT_M)
    pose = np.zeros((1, 21, 3))
    pose[0, J("right_hip") - 1] = [-np.pi / 2, 0.0, 0.0]
    motion = model.forward(_clip(1, body_pose=pose))
    hip, knee = motion.positions[0, J("right_hip")], motion.positions[0, J("right_knee")]
    np.testing.assert_allclose(knee - hip, [0.0, 0.0, model.bone_length("right_knee")],
                               atol=1e-12)


def test_skeleton_rotations_compose_along_the_parents() -> None:
    model = SkeletonBodyModel(height_m=HEIGHT_M)
    clip = _random_clip(5, seed=11)
    motion = model.forward(clip)
    local = axis_angle_to_quat(np.concatenate([clip.root_orient[:, None], clip.body_pose], 1))
    expected = np.empty_like(local)
    for joint, parent in enumerate(SMPLX_PARENTS):
        expected[:, joint] = local[:, 0] if parent < 0 else quat_mul(expected[:, parent],
                                                                     local[:, joint])
    np.testing.assert_allclose(quat_angle_between(motion.rotations[:, :22], expected), 0.0,
                               atol=1e-7)
    np.testing.assert_allclose(np.linalg.norm(motion.rotations, axis=-1), 1.0, atol=1e-12)
    for joint, parent in enumerate(SMPLX_PARENTS[1:], start=1):
        bone = model.rest_joints[joint] - model.rest_joints[parent]
        np.testing.assert_allclose(
            motion.positions[:, joint],
            motion.positions[:, parent] + quat_rotate(expected[:, parent], bone),
            atol=1e-12,
        )
    # foot points carry their foot joint's rotation
    for k, name in enumerate(FOOT_POINTS):
        joint = J("left_ankle" if name == "left_heel" else "left_foot" if name == "left_toe"
                  else "right_ankle" if name == "right_heel" else "right_foot")
        np.testing.assert_allclose(motion.rotations[:, 22 + k], motion.rotations[:, joint])
    assert motion.index("right_toe") == 25
    with pytest.raises(KeyError, match="no joint 'tail'"):
        motion.index("tail")


def test_skeleton_frames_are_independent() -> None:
    model = SkeletonBodyModel()
    clip = _random_clip(6, seed=4)
    whole = model.forward(clip).positions
    for frame in (0, 5):
        single = _clip(1, root_orient=clip.root_orient[frame:frame + 1],
                       body_pose=clip.body_pose[frame:frame + 1],
                       trans=clip.trans[frame:frame + 1])
        np.testing.assert_allclose(model.forward(single).positions[0], whole[frame], atol=1e-12)


# ------------------------------------------------------------------------------------------
# smplx


@pytest.fixture(scope="module")
def smplx_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("smplx")
    from retarget.smplx_synthetic import write_synthetic_smplx

    return write_synthetic_smplx(tmp_path_factory.mktemp("models"), genders=("neutral", "male"))


@pytest.fixture(scope="module")
def smplx_model(smplx_dir: Path):  # noqa: ANN201 - SmplxBodyModel, imported lazily
    """One wrapper for the module: its model arrays load once per gender."""
    return make_body_model("smplx", smplx_dir)


def test_synthetic_model_file_is_meaningful(smplx_dir: Path, smplx_model) -> None:  # noqa: ANN001
    data = np.load(smplx_dir / "smplx" / "SMPLX_NEUTRAL.npz")
    assert data["v_template"].shape == (10475, 3)
    assert data["shapedirs"].shape[2] >= 20
    np.testing.assert_allclose(data["weights"].sum(axis=1), 1.0, atol=1e-5)
    arrays = smplx_model.arrays("neutral", 16)
    assert arrays.point_posedirs.shape == (189, 12)
    assert np.abs(arrays.point_posedirs).min(axis=0).max() > 0  # pose blend shapes active
    assert np.all(np.abs(arrays.point_shapedirs).max(axis=(1, 2)) > 0)
    # the heel/toe vertices sit on the soles of the skeleton they were built from
    heel, toe = arrays.point_template[0], arrays.point_template[1]  # left heel, left toe
    assert toe[2] - heel[2] == pytest.approx(0.152 * HEIGHT_M, abs=1e-6)


@pytest.mark.parametrize("gender", ["neutral", "male"])
def test_smplx_wrapper_equals_smplx_forward(smplx_model, gender: str) -> None:  # noqa: ANN001
    torch = pytest.importorskip("torch")
    from smplx.lbs import batch_rigid_transform, batch_rodrigues

    from retarget.smplx_model import direct_smplx_forward

    frames = 8
    clip = _random_clip(frames, seed=21, gender=gender)
    motion = smplx_model.forward(clip)
    direct = smplx_model.create_smplx(gender, len(clip.betas))
    joints, feet = direct_smplx_forward(direct, clip)
    np.testing.assert_allclose(motion.positions[:, :22], joints, atol=1e-5, rtol=0)
    np.testing.assert_allclose(motion.positions[:, 22:], feet, atol=1e-5, rtol=0)

    # global rotations against smplx's own kinematic chain (in float64: exact)
    arrays = smplx_model.arrays(gender, 16)
    betas = clip.betas[: arrays.num_betas]
    rest = arrays.joint_template[:22] + arrays.joint_shapedirs[:22] @ betas
    pose = torch.as_tensor(np.concatenate([clip.root_orient[:, None], clip.body_pose], 1))
    rot_mats = batch_rodrigues(pose.reshape(-1, 3)).reshape(frames, 22, 3, 3)
    _, transforms = batch_rigid_transform(
        rot_mats, torch.as_tensor(rest).expand(frames, -1, -1), direct.parents[:22],
        dtype=torch.float64,
    )
    np.testing.assert_allclose(quat_to_matrix(motion.rotations[:, :22]),
                               transforms[:, :, :3, :3].numpy(), atol=1e-6)


def test_smplx_wrapper_honours_betas_and_gender(smplx_model) -> None:  # noqa: ANN001
    clip = _random_clip(3, seed=8)
    flat = _clip(3, root_orient=clip.root_orient, body_pose=clip.body_pose, trans=clip.trans)
    male = _clip(3, root_orient=clip.root_orient, body_pose=clip.body_pose, trans=clip.trans,
                 betas=clip.betas, gender="male")
    shaped, unshaped = smplx_model.forward(clip).positions, smplx_model.forward(flat).positions
    assert np.abs(shaped - unshaped).max() > 1e-3
    assert np.abs(smplx_model.forward(male).positions - shaped).max() > 1e-3
    # a clip at zero pose puts the rest joints at trans + J_rest (root rotates about J_0)
    rest = _clip(2, trans=np.ones((2, 3)))
    rest_joints = smplx_model.arrays("neutral", 16).joint_template[:22]
    np.testing.assert_allclose(smplx_model.forward(rest).positions[:, :22],
                               np.broadcast_to(rest_joints + 1.0, (2, 22, 3)), atol=1e-12)


def test_smplx_missing_gender_file(smplx_model) -> None:  # noqa: ANN001
    with pytest.raises(BodyModelError, match="SMPLX_FEMALE.npz.*not found") as caught:
        smplx_model.forward(_clip(2, gender="female"))
    assert "SMPLX_MALE.npz" in str(caught.value)  # lists what is there


# ------------------------------------------------------------------------------------------
# rotation helpers (shared with retargeting)


def test_rotation_conversions_agree_with_scipy() -> None:
    from scipy.spatial.transform import Rotation

    from robots.rotations import (
        axis_angle_to_matrix,
        matrix_to_quat,
        quat_canonical,
        quat_to_axis_angle,
        wxyz_to_xyzw,
        xyzw_to_wxyz,
    )

    rng = np.random.default_rng(0)
    aa = rng.normal(0.0, 1.5, (4, 5, 3))
    aa[0, 0] = 0.0
    aa[0, 1] = [1e-12, 0.0, 0.0]
    aa[0, 2] = [np.pi, 0.0, 0.0]
    reference = Rotation.from_rotvec(aa.reshape(-1, 3))
    q = axis_angle_to_quat(aa)
    np.testing.assert_allclose(
        np.abs(np.sum(wxyz_to_xyzw(q).reshape(-1, 4) * reference.as_quat(), axis=-1)), 1.0,
        atol=1e-12,
    )
    matrices = reference.as_matrix().reshape(4, 5, 3, 3)
    np.testing.assert_allclose(quat_to_matrix(q), matrices, atol=1e-12)
    np.testing.assert_allclose(axis_angle_to_matrix(aa), matrices, atol=1e-12)
    np.testing.assert_allclose(matrix_to_quat(matrices), quat_canonical(q), atol=1e-12)
    np.testing.assert_allclose(axis_angle_to_quat(quat_to_axis_angle(q)), quat_canonical(q),
                               atol=1e-12)
    np.testing.assert_allclose(xyzw_to_wxyz(wxyz_to_xyzw(q)), q)


def test_quaternion_algebra() -> None:
    from robots.rotations import (
        quat_between_vectors,
        quat_conj,
        quat_from_yaw,
        quat_inv,
        quat_rotate_inverse,
        quat_slerp,
        quat_unwrap,
        quat_yaw,
    )

    rng = np.random.default_rng(1)
    a = axis_angle_to_quat(rng.normal(size=(6, 3)))
    b = axis_angle_to_quat(rng.normal(size=(6, 3)))
    v = rng.normal(size=(6, 3))
    # a * b applies b first, then a
    np.testing.assert_allclose(quat_rotate(quat_mul(a, b), v), quat_rotate(a, quat_rotate(b, v)),
                               atol=1e-12)
    np.testing.assert_allclose(quat_rotate_inverse(a, quat_rotate(a, v)), v, atol=1e-12)
    np.testing.assert_allclose(quat_inv(2.0 * a), 0.5 * quat_conj(a), atol=1e-12)
    # slerp: endpoints, constant angular speed, short arc through -q
    np.testing.assert_allclose(quat_angle_between(quat_slerp(a, b, 0.0), a), 0.0, atol=1e-7)
    np.testing.assert_allclose(quat_angle_between(quat_slerp(a, -b, 1.0), b), 0.0, atol=1e-7)
    half = quat_slerp(a, b, 0.5)
    np.testing.assert_allclose(quat_angle_between(a, half), quat_angle_between(half, b),
                               atol=1e-9)
    # shortest arc between directions, including opposite ones
    u, w = np.array([[1.0, 0, 0], [0, 0, 1.0]]), np.array([[0, 2.0, 0], [0, 0, -1.0]])
    q = quat_between_vectors(u, w)
    np.testing.assert_allclose(quat_rotate(q, u), w / np.linalg.norm(w, axis=1, keepdims=True),
                               atol=1e-12)
    np.testing.assert_allclose(quat_yaw(quat_from_yaw(np.array([0.3, -2.0]))), [0.3, -2.0])
    unwrapped = quat_unwrap(np.stack([a[0], -a[0], a[0], -a[0]]))
    np.testing.assert_allclose(unwrapped, np.tile(a[0], (4, 1)))
