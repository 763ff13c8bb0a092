"""The robot's timeline (``RetargetConfig.time_scaling``): the human's, or dynamically similar
(Froude) to it, on an analytic motion and on a synthesized walk."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from retarget.human import HumanMotion
from retarget.retarget import RetargetConfig, Retargeter, froude_time_factor, time_scaled
from retarget.synthesize import ClipSpec, synthesize_clip, write_npz_deterministic
from robots.config import ConfigError, build_config


def test_froude_factor_is_the_square_root_of_the_leg_ratio():
    assert froude_time_factor(0.9, 0.36) == pytest.approx(np.sqrt(0.4), abs=1e-12)
    assert froude_time_factor(0.5, 0.5) == 1.0
    # equal Froude numbers: (v_r^2 / (g l_r)) == (v_h^2 / (g l_h)) with v_r = s l_h / (k t)
    human_leg, robot_leg, human_speed = 0.86, 0.37, 1.2
    factor = froude_time_factor(human_leg, robot_leg)
    robot_speed = human_speed * (robot_leg / human_leg) / factor
    assert robot_speed**2 / robot_leg == pytest.approx(human_speed**2 / human_leg, rel=1e-12)


def _linear_motion(fps: float, frames: int, speed_mps: float) -> HumanMotion:
    time_s = np.arange(frames) / fps
    positions = np.zeros((frames, 2, 3))
    positions[:, :, 0] = speed_mps * time_s[:, None]
    positions[:, 1, 2] = 1.0
    rotations = np.tile([1.0, 0.0, 0.0, 0.0], (frames, 2, 1))
    return HumanMotion(fps=fps, joint_names=("a", "b"), positions=positions,
                       rotations=rotations, source=Path("line.npz"), source_sha256="0",
                       body_model="skeleton")


def test_time_scaled_plays_faster_at_the_capped_rate():
    human = _linear_motion(fps=50.0, frames=101, speed_mps=1.0)  # 2 s at 1 m/s
    faster = time_scaled(human, 0.5, max_fps=50.0)
    assert faster.fps == 50.0
    assert faster.num_frames == 51  # 1 s at 50 FPS
    np.testing.assert_allclose(np.diff(faster.positions[:, 0, 0]) * faster.fps, 2.0)
    np.testing.assert_allclose(faster.positions[-1], human.positions[-1])
    uncapped = time_scaled(human, 0.5, max_fps=None)
    assert uncapped.fps == 100.0 and uncapped.num_frames == 101
    slower = time_scaled(human, 2.0, max_fps=50.0)  # slower: 25 FPS, nothing to resample
    assert slower.fps == 25.0 and slower.num_frames == 101


@pytest.fixture(scope="module")
def walk_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("timing") / "walk.npz"
    write_npz_deterministic(path, synthesize_clip(ClipSpec("walk", "walk", 50.0, 4.0, 1.0),
                                                  (0, 1)).arrays)
    return path


def _touchdowns(knee_rad: np.ndarray) -> int:
    """Entries of a knee angle into its lower half (straightening for stance): one per stride
    of that leg."""
    low = knee_rad < np.median(knee_rad)
    return int(np.sum(low[1:] & ~low[:-1]))


def test_froude_walk_is_shorter_faster_and_keeps_its_strides(walk_file: Path):
    human_time = Retargeter(RetargetConfig(time_scaling="none")).retarget_file(walk_file)
    froude = Retargeter(RetargetConfig(time_scaling="froude")).retarget_file(walk_file)
    slow, fast = human_time.motion, froude.motion
    factor = fast.quality["time_factor"]
    assert slow.quality["time_factor"] == 1.0
    # the factor is sqrt(robot leg / human leg), and positions were scaled by that ratio
    assert factor == pytest.approx(np.sqrt(fast.quality["scale"]), rel=1e-3)
    assert 0.6 < factor < 0.7
    assert fast.fps == slow.fps == 50.0
    assert fast.qpos.shape[0] == pytest.approx((slow.qpos.shape[0] - 1) * factor + 1, abs=1)

    def speed(motion) -> float:
        return float((motion.qpos[-1, 0] - motion.qpos[0, 0]) / ((len(motion.qpos) - 1)
                                                                / motion.fps))
    # the same distance in factor x the time; the strides are the same poses
    assert speed(fast) == pytest.approx(speed(slow) / factor, rel=0.03)
    assert fast.qpos[-1, 0] - fast.qpos[0, 0] == pytest.approx(
        slow.qpos[-1, 0] - slow.qpos[0, 0], rel=0.03)
    names = list(slow.joint_names)
    for joint in ("left_hip_pitch", "left_knee_pitch", "left_ankle_pitch"):
        column = 7 + names.index(joint)
        np.testing.assert_allclose(np.percentile(fast.qpos[:, column], [50, 98]),
                                   np.percentile(slow.qpos[:, column], [50, 98]), atol=0.03)
    # as many steps in less time: cadence x 1/factor
    knee = 7 + names.index("left_knee_pitch")
    steps_slow = _touchdowns(slow.qpos[:, knee])
    steps_fast = _touchdowns(fast.qpos[:, knee])
    assert abs(steps_fast - steps_slow) <= 1
    # the feet stay planted and on the floor either way
    assert fast.quality["foot_skate_mps"] < 0.01
    assert fast.quality["foot_penetration_max_m"] < 1e-3
    assert fast.quality["keypoint_error_mean_m"] < 0.01


def test_unknown_time_scaling_is_refused_with_the_valid_ones():
    with pytest.raises(ConfigError, match=r"time_scaling='fraude'; valid: none, froude"):
        build_config(RetargetConfig, {"time_scaling": "fraude"}, where="retarget")
