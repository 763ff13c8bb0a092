"""The ``stance_width`` reward term and its target measured from the data (bench.stance_width)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import robots
from bench.stance_width import frame_widths
from robots.config import ConfigError
from training import envs
from training.envs import kinematics as kin
from training.envs import rewards as rw


def _feet(left_y: float, right_y: float, yaw: float) -> np.ndarray:
    """[4, 3] toe/heel points of two feet 0.1 m long at lateral offsets, turned by ``yaw``."""
    points = np.array([[0.05, left_y, 0.0], [-0.05, left_y, 0.0],
                       [0.05, right_y, 0.0], [-0.05, right_y, 0.0]])
    turn = np.array([[np.cos(yaw), -np.sin(yaw), 0.0], [np.sin(yaw), np.cos(yaw), 0.0],
                     [0.0, 0.0, 1.0]])
    return points @ turn.T + np.array([1.0, -2.0, 0.0])


@pytest.mark.parametrize("xp", [np, jnp])
@pytest.mark.parametrize("yaw", [0.0, 0.7, -2.5])
def test_stance_width_is_the_lateral_distance_in_the_heading_frame(xp, yaw: float) -> None:
    width = kin.stance_width(xp.asarray(_feet(0.05, -0.04, yaw)), xp.asarray(yaw), xp)
    np.testing.assert_allclose(float(width), 0.09, atol=1e-6)
    crossed = kin.stance_width(xp.asarray(_feet(-0.01, 0.02, yaw)), xp.asarray(yaw), xp)
    np.testing.assert_allclose(float(crossed), -0.03, atol=1e-6)  # feet crossed: negative


def test_stance_width_term_against_hand_values() -> None:
    assert float(rw.stance_width(jnp.asarray(0.108), 0.086)) == pytest.approx(0.022**2)
    assert float(rw.stance_width(jnp.asarray(0.086), 0.086)) == 0.0


def test_environment_term_matches_mujoco_kinematics_of_the_same_pose() -> None:
    target = 0.086
    env = envs.load("wildrobot_walk", {
        "reset_joint_noise_rad": 0.0, "randomization": {"enabled": False},
        "noise": {"enabled": False},
        "rewards": {"weights": {"stance_width": -100.0}, "stance_width_m": target}})
    state = jax.jit(env.reset)(jax.random.PRNGKey(0))
    state = jax.jit(env.step)(state, jnp.zeros(env.action_size))
    # The same pose through plain MuJoCo (bench.stance_width's path): an independent check.
    width = frame_widths(robots.load("wildrobot"), np.asarray(state.data.qpos)[None])[0]
    assert 0.09 < width < 0.13  # the keyframe's feet, about 0.11 m apart
    np.testing.assert_allclose(float(state.metrics["stance_width"]),
                               -100.0 * (width - target) ** 2, rtol=1e-3, atol=1e-6)


def test_stance_width_weight_without_a_target_is_refused() -> None:
    with pytest.raises(ConfigError, match="stance_width_m.*bench.stance_width"):
        envs.load("wildrobot_walk", {"rewards": {"weights": {"stance_width": -100.0}}})


def test_bench_reports_the_datas_stance_width(tmp_path, capsys) -> None:
    from amp_fixtures import write_synthetic_dataset

    from amp.merge import read_merged
    from bench import stance_width

    robot = robots.load("wildrobot")
    path = write_synthetic_dataset(tmp_path / "merged.h5", robot, num_clips=1, duration_s=1.0)
    assert stance_width.main(["--data", str(path)]) == 0
    data = read_merged(path)
    expected = frame_widths(robot, data.qpos).mean()
    assert f"all frames ({data.num_frames}): mean {expected:.4f} m" in capsys.readouterr().out
