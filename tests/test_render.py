"""Offscreen rendering: reference videos with the human overlay, and the contact sheet."""

from __future__ import annotations

from pathlib import Path

import imageio.v3 as iio
import imageio_ffmpeg
import numpy as np

import robots
from pipeline import render_reference
from retarget.human import HUMAN_MOTION_JOINTS
from robots.motion import RobotMotion, write_motion
from robots.render import MotionRenderer, RenderConfig, frame_indices


def _walking_motion(fps: float, seconds: float) -> RobotMotion:
    spec = robots.load_spec("wildrobot")
    num_frames = int(seconds * fps) + 1
    qpos = np.tile(spec.default_qpos(), (num_frames, 1))
    qpos[:, 0] = 0.3 * np.arange(num_frames) / fps
    human = np.zeros((num_frames, len(HUMAN_MOTION_JOINTS), 3))
    human[:, :, 2] = np.linspace(0.05, 0.5, len(HUMAN_MOTION_JOINTS))
    human[:, :, 0] = qpos[:, :1]
    return RobotMotion(qpos=qpos, human_joints=human, fps=fps, robot="wildrobot",
                       joint_names=spec.joint_names, source="synthetic.npz",
                       source_sha256="0" * 64, body_model="skeleton",
                       human_joint_names=HUMAN_MOTION_JOINTS)


def test_frame_indices_resample_by_time() -> None:
    np.testing.assert_array_equal(frame_indices(121, 120.0, 25.0)[:4], [0, 5, 10, 14])
    assert len(frame_indices(121, 120.0, 25.0)) == 26  # 0..1 s inclusive at 25 Hz


def test_overlay_changes_the_picture() -> None:
    robot = robots.load("wildrobot")
    motion = _walking_motion(50.0, 0.1)
    with MotionRenderer(robot, RenderConfig(width=160, height=120)) as renderer:
        plain = renderer.render(motion.qpos[0])
        overlay = renderer.render(motion.qpos[0], motion.human_joints[0], [(0, 1), (1, 2)])
    assert plain.shape == (120, 160, 3) and plain.dtype == np.uint8
    assert plain.std() > 5, "blank frame"
    assert np.abs(overlay.astype(int) - plain).sum() > 0


def test_render_reference_stage(tmp_path: Path) -> None:
    src, out = tmp_path / "motions", tmp_path / "videos"
    write_motion(src / "walk_slow.h5", _walking_motion(60.0, 1.0))
    write_motion(src / "stand.h5", _walking_motion(30.0, 0.5))
    params = tmp_path / "params.yaml"
    params.write_text("render_reference:\n  clips: ['walk*']\n  width: 160\n  height: 120\n"
                      "  fps: 10\n")
    assert render_reference.main(["--in", str(src), "--out", str(out),
                                  "--params", str(params)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["contact_sheet.png", "walk_slow.mp4"]
    reader = imageio_ffmpeg.read_frames(str(out / "walk_slow.mp4"))
    meta = next(reader)
    assert meta["size"] == (160, 120)
    assert sum(1 for _ in reader) == 11  # 1 s at 10 Hz, both ends
    sheet = iio.imread(out / "contact_sheet.png")
    assert sheet.shape == (60, 2 * 80, 3)  # two clips: two columns, no blank tile


def test_render_reference_says_which_patterns_matched_nothing(tmp_path: Path, capsys) -> None:
    src, out = tmp_path / "motions", tmp_path / "videos"
    for name in ("a/take_1", "a/take_2", "b/take_3", "stand"):  # nested, not named "walk"
        write_motion(src / f"{name}.h5", _walking_motion(30.0, 0.5))
    params = tmp_path / "params.yaml"
    params.write_text("render_reference:\n  clips: ['walk_medium*']\n  max_videos: 2\n"
                      "  width: 160\n  height: 120\n  fps: 10\n  max_seconds: 0.2\n")
    assert render_reference.main(["--in", str(src), "--out", str(out),
                                  "--params", str(params)]) == 0
    err = capsys.readouterr().err
    assert "'walk_medium*' matched no clip" in err and "first 2 clips" in err
    assert sorted(p.name for p in out.glob("*.mp4")) == ["a__take_1.mp4", "a__take_2.mp4"]
    sheet = iio.imread(out / "contact_sheet.png")
    assert sheet.shape == (60, 4 * 80, 3)
    for column in range(4):  # every tile has content (the sheet has no blank tile)
        assert sheet[:, column * 80:(column + 1) * 80].std() > 5


def test_choose_clips_defaults_to_every_clip() -> None:
    config = render_reference.RenderReferenceConfig()
    chosen, unmatched = render_reference.choose_clips(["b", "a", "c"], config.clips,
                                                      config.max_videos)
    assert chosen == ["a", "b", "c"] and unmatched == []
    chosen, unmatched = render_reference.choose_clips(["x1", "walk2"], ("jog*", "walk*"), 3)
    assert chosen == ["walk2"] and unmatched == ["jog*"]


def test_render_reference_without_inputs_fails(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    assert render_reference.main(["--in", str(tmp_path / "empty"),
                                  "--out", str(tmp_path / "out")]) == 1
