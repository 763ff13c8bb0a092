"""Upper-body direction errors in the keypoint error: a torso lean or twist shows."""

from __future__ import annotations

import mujoco
import numpy as np
import pytest

import robots
from retarget.quality import QualityConfig, _joints, direction_errors


def test_torso_lean_and_shoulder_twist_are_measured_as_chords():
    robot = robots.load("wildrobot")
    qpos = robot.spec.default_qpos()[None].repeat(3, axis=0)  # pelvis level, facing +x
    data = mujoco.MjData(robot.model)
    data.qpos[:] = qpos[0]
    mujoco.mj_kinematics(robot.model, data)
    torso_up = data.xmat[robot.model.body("torso").id].reshape(3, 3)[:, 2]
    line = data.xpos[robot.model.body("left_arm").id] - data.xpos[robot.model.body("right_arm").id]
    lean, twist = np.deg2rad(20.0), np.deg2rad(60.0)
    spine = np.stack([torso_up,  # matches
                      [np.sin(lean), 0.0, np.cos(lean)],  # leaning 20 deg forward
                      torso_up])
    shoulders = np.stack([line, line, [-np.sin(twist), np.cos(twist), 0.0]])  # twisted 60 deg
    errors = direction_errors(robot.model, qpos, "torso", "left_arm", "right_arm", spine,
                              shoulders, lever_m=0.2)
    assert torso_up == pytest.approx([0.0, 0.0, 1.0], abs=1e-9)
    np.testing.assert_allclose(errors["torso_direction"], [0.0, 0.4 * np.sin(lean / 2), 0.0],
                               atol=1e-9)
    np.testing.assert_allclose(errors["shoulder_direction"], [0.0, 0.0, 0.2], atol=1e-9)


def test_a_one_frame_kink_counts_as_a_joint_spike_and_smooth_acceleration_does_not():
    """q = a t^2 / 2 at a = 200 rad/s^2 (below the 250 threshold) on one joint, 50 FPS, with a
    0.06 rad kink at frame 10: the second differences centred on frames 9 and 11 gain
    +0.06 rad (200 + 0.06 x 2500 = 350 rad/s^2, spikes), frame 10's loses 0.12 (-100, not)."""
    fps, frames = 50.0, 22
    time = np.arange(frames) / fps
    joints = np.stack([0.5 * 200.0 * time ** 2, np.zeros(frames)], axis=1)
    joint_range = np.array([[-10.0, 10.0], [-1.0, 1.0]])
    smooth = _joints(joints, joint_range, fps, QualityConfig())
    assert smooth["joint_spike_frame_fraction"] == 0.0
    assert smooth["joint_acceleration_rms_rad_s2"] == pytest.approx(200.0 / np.sqrt(2))
    joints[10, 0] += 0.06
    kinked = _joints(joints, joint_range, fps, QualityConfig())
    assert kinked["joint_spike_frame_fraction"] == pytest.approx(2 / (frames - 2))
    stricter = _joints(joints, joint_range, fps, QualityConfig(joint_spike_rad_s2=50.0))
    assert stricter["joint_spike_frame_fraction"] == pytest.approx(1.0)
