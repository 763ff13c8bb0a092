"""Upper-body direction errors in the keypoint error: a torso lean or twist shows."""

from __future__ import annotations

import mujoco
import numpy as np
import pytest

import robots
from retarget.quality import direction_errors


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
