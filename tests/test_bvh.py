"""BVH input: the reader, forward kinematics, dialects, units, lead-in, and the CMU test files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from retarget.bvh import (
    BvhConfig,
    BvhFormatError,
    forward_kinematics,
    load_bvh,
    match_dialect,
    match_topology,
    parse_bvh,
)

DATA = Path(__file__).parent / "data" / "bvh"

# file -> (dialect, unit, lead-in frames dropped, trailing frames dropped): MANIFEST facts.
EXPECTED = {
    "cmu_07_04_slow_walk": ("motionbuilder", "cmu_asf", 1, 0),
    "cmu_07_01_walk": ("motionbuilder", "cmu_asf", 1, 0),
    "cmu_07_12_brisk_walk": ("motionbuilder", "cmu_asf", 2, 0),  # reference + all-zero frame
    "cmu_16_36_jog_daz": ("daz", "centimetre", 5, 0),  # reference + 4 blend-in frames
    "cmu_09_01_run": ("motionbuilder", "cmu_asf", 1, 0),
    "cmu_16_31_start_walk_daz": ("daz", "centimetre", 5, 0),
    "cmu_131_01_start_walk_stop_max": ("3dsmax", "cmu_asf", 0, 0),
    "cmu_131_01_start_walk_stop_max_metres": ("3dsmax", "metre", 0, 1),  # last frame repeated
    "cmu_09_12_navigate_turns": ("motionbuilder", "cmu_asf", 1, 0),
    "cmu_02_04_jump_balance": ("motionbuilder", "cmu_asf", 1, 0),
    "cmu_131_03_start_hop_stop_max": ("3dsmax", "cmu_asf", 0, 0),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_cmu_file_loads_with_no_per_file_setting(name):
    dialect, unit, lead_in, trailing = EXPECTED[name]
    clip = load_bvh(DATA / f"{name}.bvh")
    assert (clip.dialect, clip.unit_name, clip.up_axis) == (dialect, unit, "y")
    assert (clip.lead_in_frames, clip.trailing_frames) == (lead_in, trailing)
    motion = clip.motion
    assert motion.fps == 120.0
    assert motion.num_frames == clip.source_frames - lead_in - trailing
    assert motion.positions.shape == (motion.num_frames, 26, 3)
    assert np.all(np.isfinite(motion.positions))
    # Z-up metres: an adult's hips 0.7-1.3 m above its feet, head above the hips.
    pelvis, head = motion.index("pelvis"), motion.index("head")
    heels = [motion.index("left_heel"), motion.index("right_heel")]
    hip_height = np.median(motion.positions[:, pelvis, 2] - motion.positions[:, heels, 2].min(1))
    assert 0.7 < hip_height < 1.3
    assert np.all(motion.positions[:, head, 2] > motion.positions[:, pelvis, 2])
    assert 0.7 < clip.leg_length_m < 0.95
    # consecutive frames of capture: the pelvis moves < 4 cm per 1/120 s (4.8 m/s; the run is
    # 3.6 m/s), any joint < 15 cm (16_36 has a one-frame glitch at its frame 168: neck 6 cm,
    # left foot 13 cm; a lead-in left in would be a jump of tens of cm)
    step = np.linalg.norm(np.diff(motion.positions, axis=0), axis=-1)
    assert step[:, pelvis].max() < 0.04 and step.max() < 0.15


def test_metres_copy_and_asf_original_agree_to_1mm():
    asf = load_bvh(DATA / "cmu_131_01_start_walk_stop_max.bvh")
    metres = load_bvh(DATA / "cmu_131_01_start_walk_stop_max_metres.bvh")
    assert asf.motion.num_frames == metres.motion.num_frames == 994
    assert asf.unit_m == pytest.approx(0.0254 / 0.45)
    assert np.abs(asf.motion.positions - metres.motion.positions).max() < 1e-3
    # the Euler triples differ (re-derived), the rotations do not
    dots = np.abs(np.sum(asf.motion.rotations * metres.motion.rotations, axis=-1))
    assert dots.min() > np.cos(np.deg2rad(0.1) / 2)


def _write(path: Path, text: str, crlf: bool = False) -> Path:
    path.write_bytes(text.replace("\n", "\r\n" if crlf else "\n").encode())
    return path


_TWO_JOINTS = """HIERARCHY
ROOT Hips
{
\tOFFSET 0 0 0
\tCHANNELS 6 Xposition Yposition Zposition Zrotation Yrotation Xrotation
\tJOINT Child
\t{
\t\tOFFSET 0 -1 0
\t\tCHANNELS 3 Zrotation Xrotation Yrotation
\t\tEnd Site
\t\t{
\t\t\tOFFSET 0 0 2
\t\t}
\t}
}
MOTION
Frames:\t2
Frame Time: .5
1 2 3 90 0 0 0 0 0
0 0 0 0 0 0 90 90 0
"""


@pytest.mark.parametrize("crlf", [False, True])
def test_channel_orders_compose_in_the_listed_order(tmp_path, crlf):
    bvh = parse_bvh(_write(tmp_path / "two.bvh", _TWO_JOINTS, crlf))
    assert bvh.fps == 2.0 and bvh.skeleton.names == ["Hips", "Child", "Child_end"]
    _, positions = forward_kinematics(bvh)
    # frame 0: root at (1,2,3) turned 90 deg about z: the child offset (0,-1,0) -> (1,0,0)
    np.testing.assert_allclose(positions[0, 1], [2.0, 2.0, 3.0], atol=1e-12)
    # the end site (0,0,2) rides the child (identity) and the root's turn: z unchanged
    np.testing.assert_allclose(positions[0, 2], [2.0, 2.0, 5.0], atol=1e-12)
    # frame 1: child R = Rz(90) Rx(90) (listed order Z X Y): (0,0,2) -> Rz(90)(0,-2,0) = (2,0,0)
    np.testing.assert_allclose(positions[1, 2], [2.0, -1.0, 0.0], atol=1e-12)


@pytest.mark.parametrize("edit, message", [
    (lambda t: t.replace("HIERARCHY", "HIERARCHIE"), "does not start with HIERARCHY"),
    (lambda t: t[: t.index("0 0 0 0 0 0 90")], "truncated file"),
    (lambda t: t.replace("90 90 0", "90 nan 0"), "NaN or inf"),
    (lambda t: t.replace("90 90 0", "90 x 0"), "not a number"),
    (lambda t: t.replace("\t\t}\n\t}\n}", "\t\t}\n\t}\n"), "unbalanced braces"),
    (lambda t: t.replace("Zrotation Xrotation Yrotation", "Zrotation Wrotation Yrotation"),
     "bad CHANNELS"),
    (lambda t: t.replace("Frame Time: .5", "Frame Time: 0"), "must be > 0"),
])
def test_bad_files_name_the_file_and_the_problem(tmp_path, edit, message):
    path = _write(tmp_path / "bad.bvh", edit(_TWO_JOINTS))
    with pytest.raises(BvhFormatError) as error:
        parse_bvh(path)
    assert message in str(error.value) and str(path) in str(error.value)


def test_topology_fallback_finds_the_same_joints_as_the_name_tables(tmp_path):
    for name in ("cmu_07_01_walk", "cmu_131_01_start_walk_stop_max", "cmu_16_31_start_walk_daz"):
        bvh = parse_bvh(DATA / f"{name}.bvh")
        dialect, roles = match_dialect(bvh.skeleton)
        topology = match_topology(bvh.skeleton, np.array([0.0, 1.0, 0.0]),
                                  np.array([1.0, 0.0, 0.0]))
        rest = bvh.skeleton.rest_positions()
        for role in ("pelvis", "left_hip", "left_knee", "left_ankle", "right_hip", "right_knee",
                     "right_ankle", "left_toe_tip", "right_toe_tip", "left_shoulder",
                     "left_elbow", "left_wrist", "right_shoulder", "right_elbow"):
            np.testing.assert_allclose(rest[topology[role]], rest[roles[role]], atol=1e-9,
                                       err_msg=f"{name} ({dialect}): {role}")


def test_renamed_rig_loads_through_the_topology(tmp_path):
    text = (DATA / "cmu_07_01_walk.bvh").read_text()
    bvh = parse_bvh(DATA / "cmu_07_01_walk.bvh")
    for index, joint in enumerate(sorted(set(n for n in bvh.skeleton.names
                                             if not n.endswith("_end")), key=len, reverse=True)):
        text = text.replace(f"JOINT {joint}\n", f"JOINT bone{index:02d}\n").replace(
            f"ROOT {joint}\n", f"ROOT bone{index:02d}\n")
    renamed = load_bvh(_write(tmp_path / "renamed.bvh", text))
    original = load_bvh(DATA / "cmu_07_01_walk.bvh")
    assert renamed.dialect == "topology"
    legs = [original.motion.index(n) for n in ("left_hip", "left_knee", "left_ankle",
                                               "right_hip", "right_knee", "right_ankle")]
    np.testing.assert_allclose(renamed.motion.positions[:, legs],
                               original.motion.positions[:, legs], atol=1e-9)


def test_an_unknown_rig_that_is_no_biped_is_refused_naming_its_joints(tmp_path):
    one_leg = _TWO_JOINTS.replace("JOINT Child", "JOINT Stump")
    path = _write(tmp_path / "one_leg.bvh", one_leg)
    with pytest.raises(BvhFormatError) as error:
        load_bvh(path, BvhConfig(up_axis="y"))
    text = str(error.value)
    assert str(path) in text and "matches no name table" in text and "Stump" in text
    assert "need 2 legs" in text
    with pytest.raises(BvhFormatError, match="fewer than 2 sub-trees"):
        load_bvh(path)  # and with auto up axis, the missing trunk is named


def test_unit_and_up_axis_overrides(tmp_path):
    default = load_bvh(DATA / "cmu_07_01_walk.bvh")
    forced = load_bvh(DATA / "cmu_07_01_walk.bvh", BvhConfig(unit_m=0.0254 / 0.45, up_axis="y"))
    np.testing.assert_allclose(forced.motion.positions, default.motion.positions, atol=1e-12)
    assert forced.unit_name == "override"
    with pytest.raises(BvhFormatError, match="no human hip height"):
        load_bvh(DATA / "cmu_07_01_walk.bvh", BvhConfig(unit_m=None, up_axis="x"))
