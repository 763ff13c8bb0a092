"""IK mapping file and target building: scale, ground, heading, limb roots, clear file errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import robots
from retarget.human import HUMAN_MOTION_JOINTS, NUM_BODY_JOINTS, HumanClip, HumanMotion
from retarget.mapping import MappingError, load_mapping, mapping_path
from retarget.skeleton import (
    ANKLE_HEIGHT_RATIO,
    HIP_HEIGHT_RATIO,
    KNEE_HEIGHT_RATIO,
    SkeletonBodyModel,
)
from retarget.targets import RobotGeometry, foot_poses, frame_targets, scale_human
from robots.errors import InputFileError
from robots.rotations import matrix_to_axis_angle, quat_from_yaw, quat_mul, quat_yaw

HEIGHT_M = 1.75
# SMPL-X canonical (Y up, facing +Z, left +X) -> Z-up world facing +X.
CANONICAL_TO_WORLD = np.array([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])


@pytest.fixture(scope="module")
def robot() -> robots.Robot:
    return robots.load("wildrobot")


@pytest.fixture(scope="module")
def mapping(robot):
    return load_mapping(robot)


@pytest.fixture(scope="module")
def geometry(robot, mapping) -> RobotGeometry:
    return RobotGeometry.measure(robot, mapping)


def standing_motion(yaw_rad: float, trans: tuple[float, float, float],
                    frames: int = 5) -> HumanMotion:
    """The skeleton at rest (arms out), facing ``yaw_rad``, pelvis at ``trans``."""
    yaw_matrix = np.array([[np.cos(yaw_rad), -np.sin(yaw_rad), 0.0],
                           [np.sin(yaw_rad), np.cos(yaw_rad), 0.0], [0.0, 0.0, 1.0]])
    root = matrix_to_axis_angle(yaw_matrix @ CANONICAL_TO_WORLD)
    clip = HumanClip(fps=50.0, trans=np.tile(trans, (frames, 1)),
                     root_orient=np.tile(root, (frames, 1)),
                     body_pose=np.zeros((frames, NUM_BODY_JOINTS - 1, 3)), betas=np.zeros(16),
                     gender="neutral", source=Path("standing.npz"), source_sha256="0" * 64)
    return SkeletonBodyModel(height_m=HEIGHT_M).forward(clip)


def test_mapping_is_found_through_the_robot_folder(robot, mapping):
    assert mapping_path(robot) == robot.spec.folder() / "ik_mapping.toml"
    assert mapping.robot == "wildrobot"
    assert mapping.root.robot_frame == robot.spec.root_body
    assert {f.robot_body for f in mapping.feet} == set(robot.spec.foot_bodies)
    assert len(mapping.sha256) == 64


def test_robot_leg_length_is_thigh_plus_shank(geometry):
    assert geometry.leg_length_m == pytest.approx(0.19 + 0.18)


def test_scale_is_the_leg_length_ratio(mapping, geometry):
    scaled = scale_human(standing_motion(0.0, (0.0, 0.0, 1.0)), mapping, geometry)
    human_leg = (HIP_HEIGHT_RATIO - ANKLE_HEIGHT_RATIO) * HEIGHT_M
    assert scaled.human_leg_length_m == pytest.approx(human_leg)
    assert scaled.scale == pytest.approx(0.37 / human_leg)
    assert (HIP_HEIGHT_RATIO - KNEE_HEIGHT_RATIO) > 0  # the skeleton's knee is on the leg line


def test_scaling_ground_alignment_and_heading(mapping, geometry):
    yaw, trans = 0.7, (2.0, -1.0, 5.0)  # far above the floor: ground alignment must fix it
    human = standing_motion(yaw, trans)
    scaled = scale_human(human, mapping, geometry)
    s = scaled.scale
    soles = [human.index(n) for n in ("left_heel", "left_toe", "right_heel", "right_toe")]
    assert scaled.positions[:, soles, 2].min() == pytest.approx(0.0, abs=1e-12)
    # the pelvis path starts where the human's did (scaled about its first ground point)
    pelvis = scaled.point("pelvis")
    assert np.allclose(pelvis[0, :2], trans[:2])
    # every point keeps its scaled offset from the pelvis
    offsets = scaled.positions - pelvis[:, None]
    assert np.allclose(offsets, s * (human.positions - human.positions[:, :1]))

    poses = frame_targets(scaled, mapping, geometry)
    root = poses[0]
    hip_height = s * HIP_HEIGHT_RATIO * HEIGHT_M
    assert np.allclose(root.position[:, 2], hip_height + 0.07)  # robot pelvis 7 cm above hips
    assert np.allclose(quat_yaw(root.quat), yaw)  # heading kept
    # standing upright: the pelvis target is level
    assert np.allclose(quat_mul(quat_from_yaw(-yaw), root.quat[0]), [1, 0, 0, 0], atol=1e-9)


def test_feet_land_under_the_robot_hips(mapping, geometry):
    yaw = -1.2
    scaled = scale_human(standing_motion(yaw, (0.5, 0.5, 1.0)), mapping, geometry)
    root = frame_targets(scaled, mapping, geometry)[0]
    lateral = np.array([-np.sin(yaw), np.cos(yaw), 0.0])
    for foot, side in zip(mapping.feet, (1.0, -1.0), strict=True):
        poses = foot_poses(scaled, mapping, geometry, foot)
        offset = poses.body.position[0] - root.position[0]
        assert offset @ lateral == pytest.approx(side * 0.054, abs=1e-9)
        # the soles are on the floor, so the ankle (foot body) is 5 cm up, the foot level
        assert poses.body.position[0, 2] == pytest.approx(0.05, abs=1e-9)
        assert np.allclose(quat_yaw(poses.body.quat), yaw)


def test_per_task_scale_override_rescales_about_the_pelvis(mapping, geometry):
    import dataclasses

    human = standing_motion(0.0, (0.0, 0.0, 1.0))
    scaled = scale_human(human, mapping, geometry)
    feet = [dataclasses.replace(f, scale=2.0 * scaled.scale) for f in mapping.feet]
    override = dataclasses.replace(mapping, feet=tuple(feet))
    normal = foot_poses(scaled, mapping, geometry, mapping.feet[0]).sole_points
    doubled = foot_poses(scaled, override, geometry, override.feet[0]).sole_points
    pelvis = scaled.point("pelvis")[:, None]
    # facing +x at rest the limb-root shift is purely lateral (y): x and z scale exactly
    for axis in (0, 2):
        assert np.allclose((doubled - pelvis)[..., axis], 2.0 * (normal - pelvis)[..., axis])


@pytest.mark.parametrize(("edit", "message"), [
    (lambda t: t.replace('rotation_from = "spine3"', 'rotation_from = "spine9"'),
     "unknown human joint 'spine9'"),
    (lambda t: t.replace('robot_frame = "torso"', 'robot_frame = "chest"'),
     "no body 'chest'"),
    (lambda t: t.replace("position_weight = 10.0\n# Roll", "position_weight = -1.0\n# Roll"),
     "weights must be >= 0"),
    (lambda t: t.replace('robot = "wildrobot"', 'robot = "other"'), "not 'wildrobot'"),
    (lambda t: t + "\nbogus = 1\n", "unknown key(s) ['bogus']"),
    (lambda t: t.replace("[scale]", "[scale"), "not valid TOML"),
])
def test_bad_mapping_files_name_the_file_and_the_problem(robot, tmp_path, edit, message):
    text = mapping_path(robot).read_text()
    bad = tmp_path / "ik_mapping.toml"
    bad.write_text(edit(text))
    assert edit(text) != text
    with pytest.raises(MappingError) as info:
        load_mapping(robot, bad)
    assert isinstance(info.value, InputFileError)
    assert str(bad) in str(info.value)
    assert message in str(info.value)


def test_missing_mapping_file(robot, tmp_path):
    with pytest.raises(MappingError, match="cannot read"):
        load_mapping(robot, tmp_path / "nope.toml")


def test_human_motion_joint_names_cover_the_mapping(mapping):
    used = {n for t in mapping.frames for n in t.human} | {
        n for f in mapping.feet for n in (f.human_heel, f.human_toe, f.rotation_from)}
    assert used <= set(HUMAN_MOTION_JOINTS)
