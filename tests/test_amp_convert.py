"""Robot motion → AMP clip: resampling, velocities, forward kinematics, mirroring, clip files."""

from __future__ import annotations

import time
from dataclasses import replace

import mujoco
import numpy as np
import pytest
from amp_fixtures import AnalyticWalk, analytic_walk, synthetic_motion

import robots
from amp.clipfile import read_clip, write_clip
from amp.convert import ConversionError, ConvertConfig, convert_motion, mirror_clip
from amp.features import ContactRule
from amp.kinematics import SiteKinematics, differentiate_qpos, resample_qpos, resample_times
from amp.mirror import mirror_features

FPS = 50.0
H = 1.0 / FPS


@pytest.fixture(scope="module")
def robot() -> robots.Robot:
    return robots.load("wildrobot")


def mujoco_contact_points(robot: robots.Robot, qpos: np.ndarray) -> np.ndarray:
    """Reference contact-site positions [T, 4, 3] from mj_kinematics, frame by frame."""
    data = mujoco.MjData(robot.model)
    out = np.empty((qpos.shape[0], 4, 3))
    for t, q in enumerate(qpos):
        data.qpos[:] = q
        mujoco.mj_kinematics(robot.model, data)
        out[t] = data.site_xpos[robot.contact_site_ids]
    return out


@pytest.mark.parametrize("source_fps", [50.0, 100.0])
def test_analytic_walk_gives_the_expected_29_numbers(robot: robots.Robot,
                                                     source_fps: float) -> None:
    walk = AnalyticWalk(forward_speed_mps=0.45, yaw_rate_rps=0.6, height_m=0.49, gait_hz=1.2)
    motion = synthetic_motion(robot.spec, source_fps, 3.0, walk)
    clip = convert_motion(motion, robot, ConvertConfig(), "walk")
    assert clip.fps == FPS and clip.num_frames == 151 and clip.features.dtype == np.float32

    times = np.arange(clip.num_frames) / FPS
    qpos, qvel = analytic_walk(robot.spec, times, walk)
    amp = robot.spec.amp_joint_indices
    # A central difference of a sinusoid of angular frequency w is exactly the derivative
    # times sin(w h) / (w h); of the circular root path likewise with the yaw rate.
    gait_w, yaw_w = 2 * np.pi * walk.gait_hz, walk.yaw_rate_rps
    joint_vel = qvel[:, 6:][:, amp] * np.sin(gait_w * H) / (gait_w * H)
    forward = walk.forward_speed_mps * np.sin(yaw_w * H) / (yaw_w * H)
    expected = np.concatenate([
        qpos[:, 7:][:, amp],
        joint_vel,
        np.tile([forward, 0.0, 0.0], (len(times), 1)),
        np.tile([0.0, 0.0, yaw_w], (len(times), 1)),
        np.full((len(times), 1), walk.height_m),
        (mujoco_contact_points(robot, qpos)[..., 2] < 0.015).astype(np.float64),
    ], axis=1)
    inner = slice(2, -2)
    np.testing.assert_allclose(clip.features[inner], expected[inner], atol=1e-4, rtol=0)
    # And close to the true derivative: the central difference's O(h^2) error only.
    true_joint_vel = qvel[inner, 6:][:, amp]
    assert np.abs(clip.features[inner, 9:18] - true_joint_vel).max() < 0.01
    assert 0.2 < clip.features[:, 25:].mean() < 0.8  # the feet touch down and lift off


@pytest.mark.parametrize("source_fps", [30.0, 60.0, 100.0, 120.0])
def test_resampling_to_50_fps_reproduces_a_smooth_signal(robot: robots.Robot,
                                                         source_fps: float) -> None:
    walk = AnalyticWalk(yaw_rate_rps=0.8, gait_hz=1.0)
    num_source = int(4.0 * source_fps) + 1
    source, _ = analytic_walk(robot.spec, np.arange(num_source) / source_fps, walk)
    resampled = resample_qpos(source, source_fps, FPS)
    times = resample_times(num_source, source_fps, FPS)
    assert resampled.shape == (201, robot.spec.nq)
    np.testing.assert_allclose(times, np.arange(201) / FPS)
    expected, _ = analytic_walk(robot.spec, times, walk)
    inner = slice(3, -3)
    np.testing.assert_allclose(resampled[inner, :3], expected[inner, :3], atol=1e-5)
    np.testing.assert_allclose(resampled[inner, 7:], expected[inner, 7:], atol=1e-4)
    np.testing.assert_allclose(resampled[:, 7:], expected[:, 7:], atol=1e-3)  # ends too
    # Constant yaw rate: SLERP is exact (up to the quaternion's sign).
    quat_error = 1.0 - np.abs(np.sum(resampled[:, 3:7] * expected[:, 3:7], axis=1))
    assert quat_error.max() < 1e-12


def test_resampling_handles_quaternion_sign_flips(robot: robots.Robot) -> None:
    source, _ = analytic_walk(robot.spec, np.arange(61) / 30.0, AnalyticWalk(yaw_rate_rps=1.0))
    flipped = source.copy()
    flipped[1::2, 3:7] *= -1.0  # same rotations, alternating signs
    a = resample_qpos(source, 30.0, FPS)
    b = resample_qpos(flipped, 30.0, FPS)
    np.testing.assert_allclose(np.abs(np.sum(a[:, 3:7] * b[:, 3:7], axis=1)), 1.0, atol=1e-12)
    np.testing.assert_allclose(differentiate_qpos(a, FPS), differentiate_qpos(b, FPS), atol=1e-9)


def test_velocities_follow_mj_differentiate_pos(robot: robots.Robot) -> None:
    rng = np.random.default_rng(3)
    qpos, _ = analytic_walk(robot.spec, np.arange(40) / FPS, AnalyticWalk())
    qpos[:, 7:] += rng.normal(scale=0.02, size=qpos[:, 7:].shape)
    tilt = rng.normal(scale=0.05, size=(40, 3))
    qpos[:, 4:7] += tilt
    qpos[:, 3:7] /= np.linalg.norm(qpos[:, 3:7], axis=1, keepdims=True)
    qvel = differentiate_qpos(qpos, FPS)
    step = np.empty((39, robot.model.nv))
    for t in range(39):
        mujoco.mj_differentiatePos(robot.model, step[t], H, qpos[t], qpos[t + 1])
    np.testing.assert_allclose(qvel[0], step[0], atol=1e-9)
    np.testing.assert_allclose(qvel[-1], step[-1], atol=1e-9)
    np.testing.assert_allclose(qvel[1:-1], 0.5 * (step[:-1] + step[1:]), atol=1e-9)


def test_batched_kinematics_matches_mujoco(robot: robots.Robot) -> None:
    rng = np.random.default_rng(4)
    qpos = np.tile(robot.keyframe_qpos(), (50, 1))
    quat = rng.normal(size=(50, 4))
    qpos[:, 3:7] = quat / np.linalg.norm(quat, axis=1, keepdims=True)
    lower, upper = robot.spec.joint_range_array().T
    qpos[:, 7:] = rng.uniform(lower, upper, size=(50, robot.spec.num_joints))
    fk = SiteKinematics(robot.model, robot.contact_site_ids)
    np.testing.assert_allclose(fk.site_positions(qpos), mujoco_contact_points(robot, qpos),
                               atol=1e-12)


_OFFSET_MODEL = """
<mujoco>
  <worldbody>
    <body name="base" pos="0 0 1">
      <freejoint/>
      <geom size="0.02"/>
      <body name="a" pos="0.1 0.2 -0.1" quat="0.9 0.1 0.3 -0.2">
        <joint name="hinge_offset" type="hinge" axis="0.3 0.4 0.5" pos="0.05 -0.02 0.03" ref="0.2"/>
        <joint name="slide" type="slide" axis="1 1 0"/>
        <geom size="0.01"/>
        <site name="tip" pos="0.1 0.05 -0.2"/>
      </body>
    </body>
  </worldbody>
</mujoco>
"""


def test_batched_kinematics_handles_offsets_slides_and_body_rotations() -> None:
    model = mujoco.MjModel.from_xml_string(_OFFSET_MODEL)
    data = mujoco.MjData(model)
    rng = np.random.default_rng(5)
    qpos = rng.normal(size=(20, model.nq))
    qpos[:, 3:7] /= np.linalg.norm(qpos[:, 3:7], axis=1, keepdims=True)
    site = np.array([model.site("tip").id])
    expected = np.empty((20, 1, 3))
    for t in range(20):
        data.qpos[:] = qpos[t]
        mujoco.mj_kinematics(model, data)
        expected[t] = data.site_xpos[site]
    np.testing.assert_allclose(SiteKinematics(model, site).site_positions(qpos), expected,
                               atol=1e-12)


def test_mirroring_twice_is_the_identity(robot: robots.Robot) -> None:
    clip = convert_motion(synthetic_motion(robot.spec, 60.0, 2.0), robot, ConvertConfig(), "a")
    once = mirror_clip(clip, robot, ConvertConfig())
    twice = mirror_clip(once, robot, ConvertConfig())
    assert (once.name, once.mirrored) == ("a_mirror", True)
    assert (twice.name, twice.mirrored) == ("a", False)
    assert not np.allclose(once.features, clip.features)
    for field in ("qpos", "qvel", "contact_pos", "features"):
        np.testing.assert_allclose(getattr(twice, field), getattr(clip, field), atol=1e-12)


def test_mirrored_motion_has_the_mirrored_frame(robot: robots.Robot) -> None:
    """FK of the mirrored configuration = mirrored contacts: the joint map fits the model."""
    walk = AnalyticWalk(yaw_rate_rps=0.4, initial_yaw_rad=0.7)
    clip = convert_motion(synthetic_motion(robot.spec, 50.0, 2.0, walk), robot,
                          ConvertConfig(), "a")
    mirrored = mirror_clip(clip, robot, ConvertConfig())
    np.testing.assert_allclose(mirrored.features, mirror_features(clip.features, robot.spec),
                               atol=1e-5)
    # Lateral and turning parts flip sign; forward speed and height do not.
    assert mirrored.features[10, 23] == pytest.approx(-clip.features[10, 23], abs=1e-6)
    assert mirrored.features[10, 18] == pytest.approx(clip.features[10, 18], abs=1e-6)
    np.testing.assert_allclose(mirrored.contact_pos[:, 0, 1], -clip.contact_pos[:, 2, 1],
                               atol=1e-12)


def test_mirror_option_and_contact_speed_rule(robot: robots.Robot) -> None:
    from amp.convert import convert_with_mirror

    motion = synthetic_motion(robot.spec, 100.0, 1.0)
    plain = convert_with_mirror(motion, robot, ConvertConfig(), "m")
    assert [c.name for c in plain] == ["m"]
    rule = ContactRule(height_m=0.015, max_speed_mps=0.05)
    both = convert_with_mirror(motion, robot, ConvertConfig(mirror=True, contact=rule), "m")
    assert [c.name for c in both] == ["m", "m_mirror"]
    # The speed limit can only remove contacts.
    assert np.all(both[0].features[:, 25:] <= plain[0].features[:, 25:])
    assert both[0].params["contact"]["max_speed_mps"] == 0.05


def test_conversion_rejects_other_robots_and_too_short_clips(robot: robots.Robot) -> None:
    motion = synthetic_motion(robot.spec, 30.0, 1.0)
    with pytest.raises(ConversionError, match="robot"):
        convert_motion(replace(motion, robot="other"), robot, ConvertConfig(), "x")
    with pytest.raises(ConversionError, match="joint order"):
        convert_motion(replace(motion, joint_names=motion.joint_names[::-1]), robot,
                       ConvertConfig(), "x")
    short = synthetic_motion(robot.spec, 120.0, 2 / 120.0)  # 3 frames: 1/60 s
    with pytest.raises(ConversionError, match="frame"):
        convert_motion(short, robot, ConvertConfig(), "x")  # → a single 50 FPS frame


def test_clip_file_round_trip_is_byte_deterministic(robot: robots.Robot, tmp_path) -> None:
    clip = convert_motion(synthetic_motion(robot.spec, 60.0, 1.0), robot, ConvertConfig(), "c")
    clip.source, clip.source_sha256 = "data/robot/c.h5", "ab" * 32
    write_clip(tmp_path / "a.h5", clip, robot.spec.amp_joint_names)
    time.sleep(1.1)  # HDF5 timestamps have 1 s resolution: a stored time would now differ
    write_clip(tmp_path / "b.h5", clip, robot.spec.amp_joint_names)
    assert (tmp_path / "a.h5").read_bytes() == (tmp_path / "b.h5").read_bytes()
    back = read_clip(tmp_path / "a.h5")
    for field in ("features", "qpos", "qvel", "contact_pos"):
        np.testing.assert_array_equal(getattr(back, field), getattr(clip, field))
    assert (back.name, back.fps, back.robot, back.source, back.source_sha256) == (
        "c", 50.0, "wildrobot", "data/robot/c.h5", "ab" * 32)
    assert back.source_fps == 60.0 and back.params == clip.params
