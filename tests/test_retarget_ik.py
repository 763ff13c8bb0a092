"""mink IK: reachable targets are reached, limits hold, the first frame ignores history."""

from __future__ import annotations

import mujoco
import numpy as np
import pytest

import robots
from retarget.ik import FloorLimit, IKConfig, RobotIK, TrackTargets
from retarget.mapping import load_mapping


@pytest.fixture(scope="module")
def robot() -> robots.Robot:
    return robots.load("wildrobot")


@pytest.fixture(scope="module")
def mapping(robot):
    return load_mapping(robot)


def random_reachable_qpos(robot: robots.Robot, rng: np.random.Generator) -> np.ndarray:
    """A random pose inside the joint ranges, random heading, contact sites >= 1 cm high."""
    qpos = robot.spec.default_qpos()
    ranges = robot.spec.joint_range_array()
    margin = 0.05 * (ranges[:, 1] - ranges[:, 0])
    qpos[7:] = rng.uniform(ranges[:, 0] + margin, ranges[:, 1] - margin)
    yaw = rng.uniform(-np.pi, np.pi)
    tilt = rng.normal(scale=0.1, size=2)
    quat = np.zeros(4)
    mujoco.mju_euler2Quat(quat, np.array([tilt[0], tilt[1], yaw]), "xyz")
    qpos[3:7] = quat
    qpos[:2] = rng.uniform(-3.0, 3.0, size=2)
    data = mujoco.MjData(robot.model)
    data.qpos[:] = qpos
    mujoco.mj_kinematics(robot.model, data)
    qpos[2] += 0.01 - data.site_xpos[robot.contact_site_ids, 2].min()
    return qpos


def frame_pose(model: mujoco.MjModel, data: mujoco.MjData, name: str, kind: str) -> np.ndarray:
    """[7] wxyz_xyz of a body or site at the current kinematics."""
    quat = np.zeros(4)
    if kind == "body":
        index = model.body(name).id
        mujoco.mju_mat2Quat(quat, data.xmat[index])
        return np.concatenate([quat, data.xpos[index]])
    index = model.site(name).id
    mujoco.mju_mat2Quat(quat, data.site_xmat[index])
    return np.concatenate([quat, data.site_xpos[index]])


def tracks_from_pose(robot: robots.Robot, mapping, qpos: np.ndarray) -> list[TrackTargets]:
    """One-frame tracks of every mapped frame (tasks, then feet) at the pose ``qpos``."""
    data = mujoco.MjData(robot.model)
    data.qpos[:] = qpos
    mujoco.mj_kinematics(robot.model, data)
    entries = [(t.name, t.robot_frame, t.frame_type, t.position_weight, t.orientation_weight)
               for t in mapping.frames]
    entries += [(f.name, f.robot_body, "body", f.position_weight, f.orientation_weight)
                for f in mapping.feet]
    return [TrackTargets(name, (frame,), (kind,), np.zeros(1, dtype=int),
                         frame_pose(robot.model, data, frame, kind)[None],
                         np.asarray(pos_w)[None], np.asarray(ori_w)[None])
            for name, frame, kind, pos_w, ori_w in entries]


@pytest.mark.parametrize("seed", range(6))
def test_reachable_targets_are_reached_to_1mm(robot, mapping, seed):
    rng = np.random.default_rng(seed)
    goal = random_reachable_qpos(robot, rng)
    tracks = tracks_from_pose(robot, mapping, goal)
    solved = RobotIK(robot, IKConfig(), mapping.posture_weight).solve_pose(tracks, fps=50.0)

    data = mujoco.MjData(robot.model)
    data.qpos[:] = solved
    mujoco.mj_kinematics(robot.model, data)
    for track in tracks:
        reached = frame_pose(robot.model, data, track.frame_names[0], track.frame_types[0])
        if track.position_cost.max() > 0:
            error = np.linalg.norm(reached[4:] - track.wxyz_xyz[0, 4:])
            assert error < 1e-3, f"seed {seed}: {track.name} is {error * 1e3:.2f} mm off"
    # Everything tracked (positions and the weighted rotation axes) pins the whole pose here.
    ranges = robot.spec.joint_range_array()
    assert np.all(solved[7:] >= ranges[:, 0] - 1e-9) and np.all(solved[7:] <= ranges[:, 1] + 1e-9)
    assert np.allclose(solved[7:], goal[7:], atol=0.02)


def test_floor_limit_keeps_contact_sites_on_the_floor(robot, mapping):
    goal = random_reachable_qpos(robot, np.random.default_rng(11))
    tracks = tracks_from_pose(robot, mapping, goal)
    for track in tracks:
        if track.frame_names[0].endswith("_foot"):
            track.wxyz_xyz[0, 6] -= 0.10  # ask for the feet 9 cm below the floor
    solved = RobotIK(robot, IKConfig(), mapping.posture_weight).solve_pose(tracks, fps=50.0)
    data = mujoco.MjData(robot.model)
    data.qpos[:] = solved
    mujoco.mj_kinematics(robot.model, data)
    heights = data.site_xpos[robot.contact_site_ids, 2]
    assert heights.min() > -1e-4
    assert heights.min() < 5e-3  # pressed onto the floor, not left hovering


def test_floor_limit_rows_match_finite_differences(robot):
    import mink

    limit = FloorLimit(robot.model, robot.spec.contact_site_names)
    qpos = random_reachable_qpos(robot, np.random.default_rng(3))
    configuration = mink.Configuration(robot.model, qpos)
    constraint = limit.compute_qp_inequalities(configuration, dt=0.02)
    step = np.zeros(robot.model.nv)
    step[6 + 2] = 1e-6  # left knee
    moved = qpos.copy()
    mujoco.mj_integratePos(robot.model, moved, step, 1.0)
    configuration_moved = mink.Configuration(robot.model, moved)
    heights = configuration.data.site_xpos[limit.site_ids, 2]
    heights_moved = configuration_moved.data.site_xpos[limit.site_ids, 2]
    assert np.allclose(constraint.h, heights)
    assert np.allclose(-constraint.G @ step, heights_moved - heights, atol=1e-10)


def test_first_frame_does_not_depend_on_the_previous_clip(robot, mapping):
    ik = RobotIK(robot, IKConfig(), mapping.posture_weight)
    pose_a = random_reachable_qpos(robot, np.random.default_rng(1))
    pose_b = random_reachable_qpos(robot, np.random.default_rng(2))
    clip_a = tracks_from_pose(robot, mapping, pose_a)
    clip_b = tracks_from_pose(robot, mapping, pose_b)
    fresh = ik.solve_clip(clip_b, fps=50.0).qpos
    ik.solve_clip(clip_a, fps=50.0)
    after_other = ik.solve_clip(clip_b, fps=50.0).qpos
    assert np.array_equal(fresh, after_other)


def test_warm_started_frames_track_a_moving_target(robot, mapping):
    """A smooth 1 s joint-space motion: every frame within 1 mm after <= max_iterations."""
    rng = np.random.default_rng(5)
    start, end = random_reachable_qpos(robot, rng), random_reachable_qpos(robot, rng)
    end[:7] = start[:7]  # same base orientation: the joints move
    frames = 51
    data = mujoco.MjData(robot.model)
    poses = []
    for k in range(frames):
        pose = start + (end - start) * 0.5 * (1 - np.cos(np.pi * k / (frames - 1)))
        data.qpos[:] = pose
        mujoco.mj_kinematics(robot.model, data)
        pose[2] += 0.01 - data.site_xpos[robot.contact_site_ids, 2].min()  # above the floor
        poses.append(pose)
    per_frame = [tracks_from_pose(robot, mapping, pose) for pose in poses]
    tracks = [TrackTargets(first.name, first.frame_names, first.frame_types,
                           np.zeros(frames, dtype=int),
                           np.concatenate([f[i].wxyz_xyz for f in per_frame]),
                           np.repeat(first.position_cost, frames, axis=0),
                           np.repeat(first.orientation_cost, frames, axis=0))
              for i, first in enumerate(per_frame[0])]
    config = IKConfig(joint_speed_limit_rad_s=100.0)
    result = RobotIK(robot, config, mapping.posture_weight).solve_clip(tracks, fps=50.0)
    assert result.iterations[1:].max() <= config.max_iterations
    worst = 0.0
    for k in range(frames):
        data.qpos[:] = result.qpos[k]
        mujoco.mj_kinematics(robot.model, data)
        for track in tracks:
            if track.position_cost[k].max() > 0:
                reached = frame_pose(robot.model, data, track.frame_names[0], "body")
                worst = max(worst, float(np.linalg.norm(reached[4:] - track.wxyz_xyz[k, 4:])))
    assert worst < 1e-3


def _jump_tracks(robot, mapping, start: np.ndarray, end: np.ndarray, frames: int,
                 jump_at: int) -> list[TrackTargets]:
    """Targets of pose ``start`` until ``jump_at``, then of pose ``end`` (a one-frame jump)."""
    per_frame = [tracks_from_pose(robot, mapping, start if k < jump_at else end)
                 for k in range(frames)]
    return [TrackTargets(first.name, first.frame_names, first.frame_types,
                         np.zeros(frames, dtype=int),
                         np.concatenate([f[i].wxyz_xyz for f in per_frame]),
                         np.repeat(first.position_cost, frames, axis=0),
                         np.repeat(first.orientation_cost, frames, axis=0))
            for i, first in enumerate(per_frame[0])]


def test_joint_speed_limit_holds_per_frame_not_per_iteration(robot, mapping):
    """Targets jump to a far pose: with 4 iterations per frame a per-iteration limit let
    joints move 4x the limit per frame; the per-frame limit holds exactly, and the robot
    still gets there over the following frames."""
    rng = np.random.default_rng(11)
    start, end = random_reachable_qpos(robot, rng), random_reachable_qpos(robot, rng)
    end[:7] = start[:7]
    config = IKConfig(joint_speed_limit_rad_s=10.0, max_iterations=4,
                      min_relative_improvement=0.0, error_tolerance=0.0)
    fps, frames = 50.0, 40
    tracks = _jump_tracks(robot, mapping, start, end, frames, jump_at=5)
    result = RobotIK(robot, config, mapping.posture_weight).solve_clip(tracks, fps)
    joints = result.qpos[:, 7:]
    speed = np.abs(np.diff(joints, axis=0)).max(axis=1) * fps
    assert speed.max() <= 10.0 + 1e-6
    assert speed.max() > 9.0  # the limit was what held it (the jump needs more)
    assert result.iterations[6:10].min() >= 2  # several iterations per frame, still bounded


def test_root_moves_at_most_the_ratio_of_its_path(robot, mapping):
    """The root path stands still while the targets jump 20 cm: the root may move only the
    slack per frame (0.02 m/s here)."""
    rng = np.random.default_rng(12)
    start = random_reachable_qpos(robot, rng)
    end = start.copy()
    end[0] += 0.2
    fps, frames = 50.0, 20
    tracks = _jump_tracks(robot, mapping, start, end, frames, jump_at=5)
    config = IKConfig(root_speed_ratio=1.2, root_speed_slack_mps=0.02)
    path = np.tile(start[:3], (frames, 1))
    result = RobotIK(robot, config, mapping.posture_weight).solve_clip(
        tracks, fps, root_path=path)
    step = np.abs(np.diff(result.qpos[:, :3], axis=0)).max(axis=1) * fps
    assert step.max() <= 0.02 + 1e-9


def test_acceleration_cost_spreads_a_target_jump_over_frames(robot, mapping):
    """Targets jump to another pose at frame 5: without the cost the joints start and stop
    within a frame or two (largest second difference 0.72 rad here); with cost 1 they keep
    closer to their constant-velocity prediction (0.39 rad) and lag on the way, but arrive."""
    rng = np.random.default_rng(13)
    start, end = random_reachable_qpos(robot, rng), random_reachable_qpos(robot, rng)
    end[:7] = start[:7]
    fps, frames = 50.0, 100
    tracks = _jump_tracks(robot, mapping, start, end, frames, jump_at=5)

    def joints(cost: float) -> np.ndarray:
        config = IKConfig(joint_speed_limit_rad_s=100.0, acceleration_cost=cost)
        return RobotIK(robot, config, mapping.posture_weight).solve_clip(tracks, fps).qpos[:, 7:]

    sudden, smooth = joints(0.0), joints(1.0)
    largest = [np.abs(np.diff(q, n=2, axis=0)).max() for q in (sudden, smooth)]
    assert largest[1] < 0.6 * largest[0]
    assert np.abs(smooth[-1] - sudden[-1]).max() < 0.1
