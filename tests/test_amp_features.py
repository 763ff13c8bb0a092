"""The single AMP feature function: layout, numpy/JAX agreement, frames and the contact rule."""

from __future__ import annotations

import jax
import mujoco
import numpy as np
import pytest

import robots
from amp.features import (
    FEATURE_DIM,
    FEATURE_LAYOUT,
    ContactRule,
    amp_features,
    feature_names,
    layout_record,
    layout_slices,
)


@pytest.fixture(scope="module")
def robot() -> robots.Robot:
    return robots.load("wildrobot")


def random_state(robot: robots.Robot, count: int, seed: int = 0) -> tuple[np.ndarray, ...]:
    """Random qpos [T, nq], qvel [T, nv], contact_pos and contact_vel [T, 4, 3]."""
    rng = np.random.default_rng(seed)
    qpos = np.tile(robot.keyframe_qpos(), (count, 1))
    qpos[:, :3] += rng.normal(scale=0.2, size=(count, 3))
    quat = rng.normal(size=(count, 4))
    qpos[:, 3:7] = quat / np.linalg.norm(quat, axis=1, keepdims=True)
    lower, upper = robot.spec.joint_range_array().T
    qpos[:, 7:] = rng.uniform(lower, upper, size=(count, robot.spec.num_joints))
    qvel = rng.normal(scale=1.5, size=(count, robot.model.nv))
    # Keep heights and speeds clear of the thresholds: float32 vs float64 must not flip them.
    contact_pos = rng.normal(scale=0.05, size=(count, 4, 3))
    contact_pos[..., 2] = rng.choice([-0.01, 0.005, 0.03, 0.2], size=(count, 4))
    contact_vel = rng.choice([0.05, 0.5], size=(count, 4, 1)) * np.array([0.6, 0.8, 0.3])
    return qpos, qvel, contact_pos, contact_vel


def test_layout_is_29_named_contiguous_slices(robot: robots.Robot) -> None:
    assert FEATURE_LAYOUT[0].start == 0 and FEATURE_LAYOUT[-1].stop == FEATURE_DIM == 29
    for before, after in zip(FEATURE_LAYOUT, FEATURE_LAYOUT[1:], strict=False):
        assert before.stop == after.start
    assert {n: (s.start, s.stop) for n, s in layout_slices().items()} == {
        "joint_pos": (0, 9), "joint_vel": (9, 18), "root_lin_vel": (18, 21),
        "root_ang_vel": (21, 24), "root_height": (24, 25), "foot_contact": (25, 29)}
    names = feature_names(robot.spec.amp_joint_names)
    assert len(names) == 29 and len(set(names)) == 29
    assert names[0] == "joint_pos/waist_yaw" and names[28] == "foot_contact/right_heel"
    assert layout_record(robot.spec.amp_joint_names)["names"] == list(names)


def test_numpy_and_jitted_jax_agree(robot: robots.Robot) -> None:
    qpos, qvel, contact_pos, contact_vel = random_state(robot, 256)
    indices = robot.spec.amp_joint_indices
    for rule in (ContactRule(), ContactRule(height_m=0.02, max_speed_mps=0.2)):
        expected = amp_features(qpos, qvel, contact_pos, indices, rule, contact_vel)
        jitted = jax.jit(lambda q, v, c, cv, r=rule: amp_features(q, v, c, indices, r, cv))
        actual = np.asarray(jitted(qpos.astype(np.float32), qvel.astype(np.float32),
                                   contact_pos.astype(np.float32),
                                   contact_vel.astype(np.float32)))
        assert expected.dtype == np.float32 and actual.shape == (256, 29)
        np.testing.assert_allclose(actual, expected, atol=1e-6, rtol=0)
        assert 0 < expected[:, 25:].mean() < 1  # both contact outcomes occur


def test_frame_matches_mujoco_quantities(robot: robots.Robot) -> None:
    """Root velocities in the root frame as MuJoCo reports them; joints picked by name."""
    qpos, qvel, contact_pos, _ = random_state(robot, 8, seed=1)
    model, data = robot.model, mujoco.MjData(robot.model)
    features = amp_features(qpos, qvel, contact_pos, robot.spec.amp_joint_indices)
    for t in range(8):
        data.qpos[:], data.qvel[:] = qpos[t], qvel[t]
        mujoco.mj_forward(model, data)
        velocity = np.zeros(6)  # [angular, linear] at the pelvis origin, pelvis frame
        mujoco.mj_objectVelocity(model, data, mujoco.mjtObj.mjOBJ_BODY, robot.root_body_id,
                                 velocity, 1)
        np.testing.assert_allclose(features[t, 18:21], velocity[3:], atol=1e-5)
        np.testing.assert_allclose(features[t, 21:24], velocity[:3], atol=1e-5)
        assert features[t, 24] == pytest.approx(data.qpos[2], abs=1e-6)
        for k, name in enumerate(robot.spec.amp_joint_names):
            joint = model.joint(name)
            assert features[t, k] == pytest.approx(data.qpos[joint.qposadr[0]], abs=1e-6)
            assert features[t, 9 + k] == pytest.approx(data.qvel[joint.dofadr[0]], abs=1e-5)


def test_contact_rule_is_height_and_optional_speed(robot: robots.Robot) -> None:
    qpos, qvel, _, _ = random_state(robot, 1)
    contact_pos = np.zeros((1, 4, 3))
    contact_pos[0, :, 2] = [0.0149, 0.0151, -0.002, 0.5]
    contact_vel = np.zeros((1, 4, 3))
    contact_vel[0, :, :2] = [[0.3, 0.4], [0.0, 0.0], [0.05, 0.0], [0.0, 0.0]]  # 0.5 m/s, …
    contact_vel[0, 2, 2] = 5.0  # vertical speed does not count
    indices = robot.spec.amp_joint_indices
    contacts = amp_features(qpos, qvel, contact_pos, indices)[0, 25:]
    np.testing.assert_array_equal(contacts, [1, 0, 1, 0])
    slow = ContactRule(height_m=0.015, max_speed_mps=0.1)
    contacts = amp_features(qpos, qvel, contact_pos, indices, slow, contact_vel)[0, 25:]
    np.testing.assert_array_equal(contacts, [0, 0, 1, 0])
    with pytest.raises(ValueError, match="contact_vel"):
        amp_features(qpos, qvel, contact_pos, indices, slow)
