"""Plausibility gates: bad clips are rejected or flagged with the right reason, the good clips
of the same batch still come out; convert refuses non-physical robot motions; merge's include
policy and the cap on static clips' weight."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from amp_fixtures import synthetic_motion

import robots
from amp.convert import ConversionError, ConvertConfig, convert_motion
from amp.merge import MergeConfig, cap_static_weight, gated_out
from pipeline.retarget import main
from retarget.amass import load_amass
from retarget.gates import _outside_support
from retarget.human import FOOT_POINTS
from retarget.skeleton import SkeletonBodyModel
from retarget.synthesize import ClipSpec, synthesize_clip, write_npz_deterministic

_WALK = ClipSpec("walk", "walk", 30.0, 3.0, 1.0)


def _walk_arrays(seed: int = 0) -> dict[str, np.ndarray]:
    return dict(synthesize_clip(_WALK, (11, seed)).arrays)


def _seated_arrays() -> dict[str, np.ndarray]:
    """A 3 s seated pose with no chair: thighs forward (hips -90 deg about x), shanks down
    (knees +90 deg), the feet on the floor."""
    arrays = dict(synthesize_clip(ClipSpec("stand", "stand", 30.0, 3.0), (11, 5)).arrays)
    poses = arrays["poses"].copy()
    for joint, angle in ((1, -np.pi / 2), (2, -np.pi / 2), (4, np.pi / 2), (5, np.pi / 2)):
        poses[:, 3 * joint: 3 * joint + 3] = [angle, 0.0, 0.0]
    arrays["poses"] = poses
    return arrays


def _put_feet_on_floor(path: Path) -> None:
    """Shift ``trans`` so the lowest sole point of every frame is at z = 0 (1.75 m skeleton)."""
    clip = load_amass(path)
    motion = SkeletonBodyModel(1.75).forward(clip)
    lowest = motion.positions[:, -len(FOOT_POINTS):, 2].min(axis=1)
    with np.load(path) as archive:
        arrays = dict(archive)
    arrays["trans"] = arrays["trans"] - np.stack([0 * lowest, 0 * lowest, lowest], axis=1)
    write_npz_deterministic(path, arrays)


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    root = tmp_path_factory.mktemp("gates")
    src, out = root / "clips", root / "out"
    src.mkdir()
    write_npz_deterministic(src / "good_walk.npz", _walk_arrays(0))
    teleport = _walk_arrays(1)
    teleport["trans"] = teleport["trans"].copy()
    teleport["trans"][45:, 0] += 100.0  # the subject teleports 100 m
    write_npz_deterministic(src / "teleport.npz", teleport)
    jump = _walk_arrays(2)
    jump["trans"] = jump["trans"].copy()
    jump["trans"][40, 1] += 0.15  # one frame 15 cm off the path
    write_npz_deterministic(src / "frame_jump.npz", jump)
    huge = _walk_arrays(3)
    huge["poses"] = huge["poses"].copy()
    huge["poses"][10, 3 * 4] = 1.0e6  # left knee: 1e6 rad
    write_npz_deterministic(src / "huge_angle.npz", huge)
    write_npz_deterministic(src / "seated.npz", _seated_arrays())
    _put_feet_on_floor(src / "seated.npz")
    metrics = root / "metrics.json"
    code = main(["--src", str(src), "--out", str(out), "--metrics", str(metrics),
                 "--params", str(root / "none.yaml"), "--no-progress", "--jobs", "1"])
    return code, out, json.loads(metrics.read_text())


def test_bad_clips_are_gated_with_their_reason_and_the_good_one_comes_out(batch):
    code, out, metrics = batch
    assert code == 0
    rejected = metrics["rejected"]
    assert set(rejected) == {"teleport", "frame_jump", "huge_angle"}
    assert "teleport: human root moves" in rejected["teleport"]
    assert "frame_jump: human root jumps" in rejected["frame_jump"]
    assert "non_physical: joint angle 1e+06 rad" in rejected["huge_angle"]
    assert (out / "good_walk.h5").exists() and not (out / "teleport.h5").exists()
    good = metrics["clips"]["good_walk"]
    assert good["status"] == "ok" and good["gate_status"] == "ok"


def test_a_seated_clip_is_flagged_not_locomotion(batch):
    _, out, metrics = batch
    seated = metrics["clips"]["seated"]
    assert seated["gate_status"] == "flagged"
    reasons = " | ".join(seated["gate_flags"])
    assert "not_locomotion" in reasons and "balance" in reasons  # no chair: CoM off the feet
    assert seated["gate_values"]["seated_share"] > 0.9
    assert metrics["flagged"]["seated"] == seated["gate_flags"]
    assert metrics["summary"]["clips_flagged"] == len(metrics["flagged"])
    assert (out / "seated.h5").exists()  # flagged clips are written; merge decides


def test_subject_height_is_fitted_per_clip(batch):
    _, _, metrics = batch
    good = metrics["clips"]["good_walk"]
    assert good["subject_height_source"] == "stance_fit"
    assert good["subject_height_m"] == pytest.approx(1.75, abs=0.01)


@pytest.mark.parametrize("height", [1.5, 1.95])
def test_short_and_tall_subjects_keep_their_stance_feet_on_the_floor(tmp_path, height):
    """The clip's trans is of a `height` subject; the skeleton is fitted to it, so the
    human's stance soles are on the floor (they float or sink by ~0.2 x the height error
    with a fixed 1.75 m skeleton)."""
    from retarget.retarget import RetargetConfig, Retargeter

    path = tmp_path / "walk.npz"
    write_npz_deterministic(path, synthesize_clip(_WALK, (11, 7), height_m=height).arrays)
    retargeter = Retargeter(RetargetConfig())
    result = retargeter.retarget_file(path)
    quality = result.motion.quality
    assert quality["subject_height_m"] == pytest.approx(height, abs=0.01)
    assert quality["ground_offset_m"] == pytest.approx(0.0, abs=0.005)
    assert quality["foot_contact_fraction"] > 0.3
    joints = list(result.motion.human_joint_names)
    soles = result.motion.human_joints[:, [joints.index(n) for n in FOOT_POINTS], 2]
    contact = np.concatenate([plan.contact for plan in result.feet], axis=1)  # heel, toe x2
    assert np.abs(soles[contact[:, [0, 1, 2, 3]]]).max() < 0.015
    assert quality["foot_penetration_max_m"] <= 0.005


def test_convert_refuses_non_physical_robot_motions():
    robot = robots.load("wildrobot")
    motion = synthetic_motion(robot.spec, 50.0, 1.0)
    motion.qpos = motion.qpos.copy()
    motion.qpos[7, 7 + 2] = 1.0e6
    with pytest.raises(ConversionError, match="non-physical joint value: left_knee_pitch"):
        convert_motion(motion, robot, ConvertConfig(), "huge")
    motion = synthetic_motion(robot.spec, 50.0, 1.0)
    motion.qpos = motion.qpos.copy()
    motion.qpos[20:, 0] += 100.0
    with pytest.raises(ConversionError, match="non-physical root speed"):
        convert_motion(motion, robot, ConvertConfig(), "teleport")


def test_merge_include_policy_and_static_cap():
    flags = ["not_locomotion: static in 90% ..."]
    assert gated_out(flags, "reject") is not None and "not_locomotion" in gated_out(flags,
                                                                                   "reject")
    assert gated_out(flags, "flag") is None and gated_out(flags, "keep") is None
    assert gated_out([], "reject") is None
    with pytest.raises(ValueError, match="merge.include"):
        MergeConfig(include="maybe")
    # a seated clip + mirror at 45 % of the weight is capped to 10 %; the rest keep ratios
    weights = np.array([0.225, 0.225, 0.33, 0.22])
    capped = cap_static_weight(weights, np.array([True, True, False, False]), 0.1)
    np.testing.assert_allclose(capped, [0.05, 0.05, 0.54, 0.36])
    np.testing.assert_allclose(cap_static_weight(weights, np.zeros(4, bool), 0.1), weights)


def test_support_area_distance():
    square = np.array([[0.0, 0.0], [0.1, 0.0], [0.1, 0.1], [0.0, 0.1]])
    assert _outside_support(np.array([0.05, 0.05]), square) == 0.0
    assert _outside_support(np.array([-0.066, 0.05]), square) == pytest.approx(0.066)
    assert _outside_support(np.array([0.2, 0.2]), square) == pytest.approx(np.hypot(0.1, 0.1))
    assert _outside_support(np.array([0.05, 0.03]), square[:2]) == pytest.approx(0.03)
    assert _outside_support(np.zeros(2), np.zeros((0, 2))) == np.inf


def _standing(frames: int) -> tuple[robots.Robot, np.ndarray]:
    robot = robots.load("wildrobot")
    return robot, np.tile(robot.spec.default_qpos(), (frames, 1))


def _gate(robot, qpos, human_root, quality, config=None):
    from retarget.gates import GateConfig, motion_gates

    frames = qpos.shape[0]
    soles = np.zeros((frames, 4, 3))
    return motion_gates(robot.model, qpos, 50.0, human_root, human_root, np.zeros(frames),
                        soles, robot.contact_site_ids, robot.joint_qpos_addresses,
                        robot.spec.joint_range_array(), robot.spec.standing_height_m, quality,
                        config or GateConfig())


def test_travel_ratio_and_root_speed_gates():
    robot, qpos = _standing(50)
    human = np.zeros((50, 3))
    human[:, 0] = np.linspace(0.0, 0.4, 50)  # 0.4 m in 1 s
    qpos[:, 0] = 2.5 * human[:, 0]  # the robot travels 2.5x as far, 1 m/s vs 0.4 m/s
    result = _gate(robot, qpos, human, {"root_travel_ratio": 2.5, "human_root_travel_m": 0.4})
    assert any(f.startswith("travel_ratio: robot travels 2.50x") for f in result.flags)
    assert any(r.startswith("root_speed: robot root 1.02 m/s vs human 0.408") for r in
               result.rejects)
    qpos[:, 0] = 1.1 * human[:, 0]
    result = _gate(robot, qpos, human, {"root_travel_ratio": 1.1, "human_root_travel_m": 0.4})
    assert result.rejects == [] and not any("travel_ratio" in f for f in result.flags)


@pytest.fixture(scope="module")
def flagged_clips(tmp_path_factory):
    """Converted clips: two walks, and a long 'seated' clip flagged not_locomotion."""
    from amp.stages import convert_directory
    from robots.motion import write_motion

    root = tmp_path_factory.mktemp("merge_policy")
    spec = robots.load_spec("wildrobot")
    for name, seconds, flags in (("walk_a", 2.0, []), ("walk_b", 2.0, []),
                                 ("seated", 8.0, ["not_locomotion: static in 100% ..."])):
        motion = synthetic_motion(spec, 50.0, seconds)
        motion.quality = {"gate_flags": flags}
        write_motion(root / "motions" / f"{name}.h5", motion)
    report = convert_directory(root / "motions", root / "clips", ConvertConfig(mirror=True),
                               progress=False)
    assert report.rejected == []
    return root / "clips"


def test_merge_include_policy_on_flagged_clips(flagged_clips):
    from amp.stages import merge_directory

    data, report = merge_directory(flagged_clips, MergeConfig(include="reject"), progress=False)
    assert sorted(data.clip_name) == ["walk_a", "walk_a_mirror", "walk_b", "walk_b_mirror"]
    assert sorted(Path(r["file"]).name for r in report.rejected) == ["seated.h5",
                                                                    "seated_mirror.h5"]
    assert all("not_locomotion" in r["reason"] for r in report.rejected)
    data, report = merge_directory(flagged_clips, MergeConfig(include="flag"), progress=False)
    assert data.num_clips == 6 and sorted(report.extra["flagged"]) == ["seated",
                                                                      "seated_mirror"]
    # 8 s seated + mirror would be 2/3 of the weight; capped to 10 %
    weights = dict(zip(data.clip_name, data.clip_weight, strict=True))
    assert weights["seated"] + weights["seated_mirror"] == pytest.approx(0.1)
    assert weights["walk_a"] == pytest.approx(0.225)
    data, _ = merge_directory(flagged_clips, MergeConfig(include="keep", max_static_weight=1.0),
                              progress=False)
    weights = dict(zip(data.clip_name, data.clip_weight, strict=True))
    assert weights["seated"] + weights["seated_mirror"] == pytest.approx(16 / 24)
