"""Balance-aware retargeting (retarget.balance): support weights, the inverted-pendulum CoM path,
and a synthesized walk whose CoM the second IK pass moves over the robot's feet."""

from __future__ import annotations

import numpy as np
import pytest

from amp.convert import ConvertConfig, convert_motion, load_for_kinematics
from amp.feasibility import FeasibilityConfig, assess_clip
from retarget.balance import (
    GRAVITY_MPS2,
    BalanceConfig,
    lateral_tilt,
    lipm_com,
    sideways_only,
    support_weight,
    zmp_reference,
)
from retarget.retarget import RetargetConfig, Retargeter
from retarget.synthesize import ClipSpec, synthesize_clip, write_npz_deterministic
from robots.config import ConfigError, build_config
from robots.rotations import quat_from_axis_angle


def _contacts(pattern: str) -> tuple[np.ndarray, np.ndarray]:
    """'L', 'R', 'B' (both), '-' (none) per frame -> left, right bool arrays."""
    left = np.array([c in "LB" for c in pattern])
    right = np.array([c in "RB" for c in pattern])
    return left, right


def test_support_weight_is_one_foot_in_single_support_and_ramps_through_double_support():
    left, right = _contacts("LLLL" + "BBB" + "RRRR" + "--" + "LL")
    weight = support_weight(left, right, fps=10.0, transfer_s=1.0)
    np.testing.assert_allclose(weight[:4], 1.0)
    # double support at frames 4-6 runs from the left foot (frame 3) to the right (frame 7)
    np.testing.assert_allclose(weight[4:7], [0.75, 0.5, 0.25])
    np.testing.assert_allclose(weight[7:11], 0.0)
    # flight at frames 11-12 ramps from the right foot (frame 10) to the left (frame 13)
    np.testing.assert_allclose(weight[11:13], [1 / 3, 2 / 3])
    np.testing.assert_allclose(weight[13:], 1.0)


def test_long_double_support_and_the_clip_ends_carry_both_feet():
    left, right = _contacts("BBBBBBBBBB" + "LL" + "B" * 20 + "RR")
    weight = support_weight(left, right, fps=10.0, transfer_s=0.3)
    np.testing.assert_allclose(weight[0], 0.5)  # the clip starts on both feet
    np.testing.assert_allclose(weight[10:12], 1.0)
    # 20 frames of double support: 3 frames (0.3 s) down to 0.5, held, 3 frames to 0
    np.testing.assert_allclose(weight[12:15], [1 - 0.5 / 3, 1 - 1 / 3, 0.5])
    np.testing.assert_allclose(weight[14:29], 0.5)
    np.testing.assert_allclose(weight[29:], [0.5, 1 / 3, 1 / 6, 0.0, 0.0], atol=1e-12)
    standing = support_weight(*_contacts("B" * 30), fps=10.0, transfer_s=0.3)
    np.testing.assert_allclose(standing, 0.5)


def test_zmp_reference_blends_the_foot_centres():
    left = np.array([[0.0, 0.05], [0.1, 0.05]])
    right = np.array([[0.0, -0.05], [0.2, -0.05]])
    np.testing.assert_allclose(zmp_reference(np.array([1.0, 0.25]), left, right),
                               [[0.0, 0.05], [0.175, -0.025]])


def test_lipm_com_has_the_zmp_it_was_solved_for_and_the_pendulum_gain():
    fps, height, omega = 50.0, 0.4, 2 * np.pi * 1.3
    t = np.arange(1000) / fps
    zmp = np.stack([0.3 * t, 0.05 * np.sin(omega * t)], axis=1)
    com = lipm_com(zmp, fps, height)
    # c - (h/g) c'' = p exactly at interior frames (second differences)
    accel = (com[2:] - 2 * com[1:-1] + com[:-2]) * fps * fps
    np.testing.assert_allclose(com[1:-1] - height / GRAVITY_MPS2 * accel, zmp[1:-1], atol=1e-12)
    # away from the ends a sinusoid keeps 1 / (1 + k (2 - 2 cos(w dt))) of its amplitude,
    # which is 1 / (1 + w² h / g) up to the discretization: about half at 1.3 Hz
    k = height / GRAVITY_MPS2 * fps * fps
    gain = 1.0 / (1.0 + k * (2.0 - 2.0 * np.cos(omega / fps)))
    middle = slice(300, 700)
    np.testing.assert_allclose(com[middle, 1], gain * zmp[middle, 1], atol=1e-6)
    assert gain == pytest.approx(1.0 / (1.0 + omega**2 * height / GRAVITY_MPS2), rel=0.02)
    # a constant-speed forward ZMP has no acceleration: the CoM follows it (ends aside)
    np.testing.assert_allclose(com[middle, 0], zmp[middle, 0], atol=1e-6)


def test_sideways_only_keeps_the_forward_part_and_lateral_tilt_has_its_sign():
    com = np.array([[1.0, 2.0], [0.0, 0.0]])
    target = np.array([[1.3, 2.1], [0.2, 0.1]])
    heading = np.array([0.0, np.pi / 2])  # the second faces +y: its left is -x
    np.testing.assert_allclose(sideways_only(target, com, heading), [[1.0, 2.1], [0.2, 0.0]],
                               atol=1e-12)
    rolled = quat_from_axis_angle(np.array([1.0, 0.0, 0.0]), 0.1)  # left side up
    assert lateral_tilt(rolled) == pytest.approx(0.1)
    assert lateral_tilt(quat_from_axis_angle(np.array([0.0, 1.0, 0.0]), 0.3)) == pytest.approx(0)


def test_bad_balance_params_are_named():
    with pytest.raises(ConfigError, match="com_cost"):
        build_config(BalanceConfig, {"com_cost": 0.0}, "retarget.balance")
    with pytest.raises(ConfigError, match="passes"):
        build_config(BalanceConfig, {"passes": 2}, "retarget.balance")


@pytest.fixture(scope="module")
def walk_both_ways(tmp_path_factory):
    """One synthesized walk retargeted without and with the balance pass, with feasibility."""
    path = tmp_path_factory.mktemp("balance") / "walk.npz"
    write_npz_deterministic(path, synthesize_clip(ClipSpec("walk", "walk", 50.0, 4.0, 1.0),
                                                  (3, 0)).arrays)
    robot = load_for_kinematics("wildrobot")
    out = {}
    configs = {False: BalanceConfig(enabled=False), True: BalanceConfig(enabled=True),
               "free upper body": BalanceConfig(enabled=True, upper_body_hold_cost=0.0)}
    for enabled, balance in configs.items():
        motion = Retargeter(RetargetConfig(balance=balance)).retarget_file(path).motion
        clip = convert_motion(motion, robot, ConvertConfig(), "walk")
        out[enabled] = (motion, clip, assess_clip(clip, robot, FeasibilityConfig()))
    return out


def test_the_balance_pass_moves_the_com_onto_its_path_and_the_robot_sways(walk_both_ways):
    plain, _, _ = walk_both_ways[False]
    motion, clip, _ = walk_both_ways[True]
    quality = motion.quality
    assert "balance_com_error_before_m" not in plain.quality
    assert quality["balance_com_error_before_m"] > 0.015  # the human's sway is not enough
    assert quality["balance_com_error_after_m"] < 0.4 * quality["balance_com_error_before_m"]
    assert quality["balance_root_roll_std_deg"] > 3.0  # by rolling the pelvis
    sideways_speed = clip.features[:, 19]
    assert sideways_speed.std() > 3 * walk_both_ways[False][1].features[:, 19].std()
    # the feet and the walk itself stay the human's
    assert quality["keypoint_error_mean_m"] < 0.03
    assert quality["foot_skate_mps"] < 0.02
    assert quality["root_travel_ratio"] == pytest.approx(plain.quality["root_travel_ratio"],
                                                         abs=0.05)


def test_the_upper_body_is_the_joints_off_the_leg_chains():
    """The joints the balance pass holds: those on no chain from the root to a foot."""
    retargeter = Retargeter(RetargetConfig(balance=BalanceConfig(enabled=True)))
    robot = retargeter.robot
    names = [name for name, column in zip(robot.spec.joint_names, robot.joint_qpos_addresses,
                                          strict=True)
             if column in retargeter._upper_columns]
    assert names == ["waist_yaw", "left_shoulder_pitch", "right_shoulder_pitch"]


def _waist_rate_std(motion) -> float:
    waist = 7 + list(motion.joint_names).index("waist_yaw")
    return float(np.std(np.diff(motion.qpos[:, waist]) * motion.fps))


def test_the_balance_pass_holds_the_waist_and_arms(walk_both_ways):
    """Left free, the CoM task swings the waist (measured on the default walks: its rate's std
    rose from 0.28 to 1.15 rad/s); held at the first pass's angles, it stays the human's."""
    plain = _waist_rate_std(walk_both_ways[False][0])
    held = _waist_rate_std(walk_both_ways[True][0])
    free = _waist_rate_std(walk_both_ways["free upper body"][0])
    assert free > 2.0 * plain
    assert held < 1.5 * plain
    free_quality = walk_both_ways["free upper body"][0].quality
    assert walk_both_ways[True][0].quality["balance_com_error_after_m"] < (
        1.5 * free_quality["balance_com_error_after_m"])  # holding them costs little balance


def test_the_balanced_walk_needs_less_hand_of_god_force(walk_both_ways):
    plain = walk_both_ways[False][2]
    balanced = walk_both_ways[True][2]
    assert balanced.residual_share < plain.residual_share - 0.2
    assert balanced.score > plain.score + 0.15
