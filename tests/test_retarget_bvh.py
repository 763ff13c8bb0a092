"""Real human motion (the CMU BVH walks and turns in tests/data/bvh) retargeted, and measured
with an independent checker (plain MuJoCo forward kinematics of the output qpos only,
``tests/motion_checks.py``) against the bars of issue 13."""

from __future__ import annotations

from pathlib import Path

import mujoco
import numpy as np
import pytest
from motion_checks import check_motion

from amp.features import ContactRule
from retarget.retarget import RetargetConfig, Retargeter

DATA = Path(__file__).parent / "data" / "bvh"
# Walks and turns (the metres copy of 131_01 is the same take: measured by test_bvh instead).
WALKS = ("cmu_07_04_slow_walk", "cmu_07_01_walk", "cmu_07_12_brisk_walk",
         "cmu_16_31_start_walk_daz", "cmu_131_01_start_walk_stop_max",
         "cmu_09_12_navigate_turns")


@pytest.fixture(scope="module")
def retargeter() -> Retargeter:
    return Retargeter(RetargetConfig())


@pytest.fixture(scope="module")
def walks(retargeter):
    results = {}
    plans.clear()
    for name in WALKS:
        result = retargeter.retarget_file(DATA / f"{name}.bvh")
        motion = result.motion
        joints = list(motion.human_joint_names)
        root = 0.5 * (motion.human_joints[:, joints.index("left_hip")]
                      + motion.human_joints[:, joints.index("right_hip")])
        check = check_motion(retargeter.robot.model, motion.qpos, motion.fps, root,
                             list(retargeter.robot.spec.contact_site_names))
        results[name] = (motion, check)
        plans[name] = result.feet
    return results


plans: dict = {}  # clip -> the retargeter's foot plans (filled by the ``walks`` fixture)


@pytest.mark.parametrize("name", WALKS)
def test_each_walk_meets_the_bar(walks, name):
    motion, check = walks[name]
    assert check.penetration_m <= 0.005
    assert check.firm_contact_speed_mean_mps <= 0.06
    assert check.near_floor_frame_share >= 0.9
    assert check.max_joint_speed_rad_s <= 25.0
    assert check.root_speed_excess_frames == 0  # robot root <= 1.3 x human + 0.05 m/s
    assert check.joint_limit_violations == 0
    quality = motion.quality
    assert quality["gate_rejects"] == []
    assert quality["foot_contact_fraction"] > 0.3  # stance found (8 % with the clip minimum)
    assert quality["keypoint_error_mean_m"] < 0.05


def test_retarget_contacts_agree_with_the_amp_contact_rule(walks, retargeter):
    """One contact rule: sites the retargeter holds in contact are the ones the shared AMP rule
    (convert: site below ContactRule.height_m) labels in contact, out of contact they are held
    above it (the swing clearance) once it has ramped past the band: in the first frames after
    a lift-off (and the last before a touch-down) a smoothly moving foot is still inside it, as
    a simulated foot would be (the AMP rule labels both alike)."""
    model, data = retargeter.robot.model, mujoco.MjData(retargeter.robot.model)
    rule = ContactRule()
    assert retargeter.config.contact.swing_clearance_m > rule.height_m
    for name, (motion, _) in walks.items():
        heights = []
        for q in motion.qpos:
            data.qpos[:] = q
            mujoco.mj_kinematics(model, data)
            heights.append(data.site_xpos[retargeter.robot.contact_site_ids, 2].copy())
        amp = np.array(heights) < rule.height_m
        held = np.stack([(plans[name][foot].anchor != 0) & plans[name][foot].contact[:, point]
                         for foot, point in retargeter._contact_sites], axis=1)
        # out of contact, a site stays out of the AMP contact band (the swing clearance) but
        # in the ramp's first frames (2 of 3 at each end of a swing)
        ramping = retargeter._site_clearance(plans[name]) < rule.height_m
        assert np.mean(amp & ~held & ~ramping) <= 0.005, name
        # a held site is an AMP contact unless the IK could not reach it (131_01's deep,
        # stylised dips: 2 % of site-frames float a few cm)
        assert np.mean((amp == held)[held | ~ramping]) >= 0.97, name


def test_firm_contact_speed_averages_under_3cm_s(walks):
    speeds = [check.firm_contact_speed_mean_mps for _, check in walks.values()]
    assert np.mean(speeds) <= 0.03


def test_reported_metrics_agree_with_the_independent_check(walks):
    for motion, check in walks.values():
        quality = motion.quality
        assert quality["max_joint_speed_rad_s"] == pytest.approx(check.max_joint_speed_rad_s,
                                                                 rel=1e-9)
        assert quality["foot_penetration_max_m"] == pytest.approx(check.penetration_m, abs=1e-9)
        assert quality["joint_limit_violations"] == check.joint_limit_violations


def test_bvh_provenance_and_subject_size_are_reported(walks):
    motion, _ = walks["cmu_07_12_brisk_walk"]
    quality = motion.quality
    assert quality["bvh_dialect"] == "motionbuilder"
    assert quality["bvh_lead_in_frames_dropped"] == 2
    assert quality["source_fps"] == 120.0 and motion.fps == 50.0
    assert 0.75 < quality["subject_leg_length_m"] < 0.9
    # the robot is scaled to the subject: robot leg (0.37 m) / the subject's leg
    assert quality["scale"] == pytest.approx(0.37 / quality["human_leg_length_m"], rel=0.02)
    assert motion.body_model == "bvh"


def test_same_subject_gets_the_same_scale(walks):
    """07_01, 07_04 and 07_12 are one subject: one size; 16_31 is another rig and subject."""
    scales = [walks[n][0].quality["scale"] for n in WALKS[:3]]
    assert max(scales) - min(scales) < 0.005
    assert abs(walks["cmu_16_31_start_walk_daz"][0].quality["scale"] - scales[0]) > 0.005
