"""The ``stance_width`` reward term and its target measured from the data (bench.stance_width)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import robots
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
    robot = robots.load("wildrobot")
    width = kin.frame_stance_widths(robot.model, robot.contact_site_ids,
                                    np.asarray(state.data.qpos)[None])[0]
    assert 0.09 < width < 0.13  # the keyframe's feet, about 0.11 m apart
    np.testing.assert_allclose(float(state.metrics["stance_width"]),
                               -100.0 * (width - target) ** 2, rtol=1e-3, atol=1e-6)


def test_without_a_target_the_term_asks_for_the_datas_own_width(tmp_path) -> None:
    """``stance_width_m: null``: until reference states are attached (evaluation, probes) the
    term scores 0; the trainer attaches the dataset's, and the target becomes the mean width
    of its stepping frames (counted gait cycles), measured through plain MuJoCo."""
    from amp_fixtures import write_synthetic_dataset

    from amp.dataset import load_dataset
    from training.train import with_reference_init

    overrides = {"randomization": {"enabled": False}, "noise": {"enabled": False},
                 "rewards": {"weights": {"stance_width": -100.0}}}
    env = envs.load("wildrobot_walk", overrides)
    assert env.stance_width_target_m is None
    assert env.reference_state_uses() == (
        "env.rewards.weights.stance_width=-100.0 without env.rewards.stance_width_m",)
    state = jax.jit(env.step)(jax.jit(env.reset)(jax.random.PRNGKey(0)),
                              jnp.zeros(env.action_size))
    assert float(state.metrics["stance_width"]) == 0.0

    robot = robots.load("wildrobot")
    path = write_synthetic_dataset(tmp_path / "merged.h5", robot, num_clips=2, duration_s=2.0)
    dataset = load_dataset(path, robot.spec)
    data = dataset.data
    stepping = kin.features_gait_phase(data.features, data.clip_length, data.fps) > 0
    assert 0 < stepping.sum() < data.num_frames  # the start of each clip is not counted
    expected = kin.frame_stance_widths(robot.model, robot.contact_site_ids,
                                       data.qpos[stepping]).mean()
    seeded = with_reference_init(env, dataset)
    assert seeded.stance_width_target_m == pytest.approx(expected, rel=1e-5)
    assert seeded.reference_fit_lines() == (
        f"stance_width asks for the data's own stance width, {expected:.4f} m (mean over its "
        "stepping frames)",)
    state = jax.jit(seeded.step)(jax.jit(seeded.reset)(jax.random.PRNGKey(0)),
                                 jnp.zeros(env.action_size))
    width = kin.frame_stance_widths(robot.model, robot.contact_site_ids,
                                    np.asarray(state.data.qpos)[None])[0]
    np.testing.assert_allclose(float(state.metrics["stance_width"]),
                               -100.0 * (width - expected) ** 2, rtol=1e-3, atol=1e-7)


def test_the_datas_width_needs_a_gait(tmp_path) -> None:
    from types import SimpleNamespace

    from robots.errors import AmpkitError
    from training.train import with_reference_init

    standing = np.zeros((120, 29), np.float32)
    standing[:, 25:29] = 1.0  # both feet always down: no counted cycle
    robot = robots.load("wildrobot")
    qpos = np.tile(robot.model.key_qpos[0], (120, 1))
    data = SimpleNamespace(has_reference_states=True, qpos=qpos,
                           qvel=np.zeros((120, robot.model.nv)), clip_length=np.array([120]),
                           clip_weight=np.array([1.0]), features=standing, fps=50.0)
    env = envs.load("wildrobot_walk", {"rewards": {"weights": {"stance_width": -100.0}}})
    with pytest.raises(AmpkitError, match=r"stand\.h5: .*stance_width_m.*no counted gait"):
        with_reference_init(env, SimpleNamespace(path="stand.h5", data=data))


def test_bench_reports_the_datas_stance_width(tmp_path, capsys) -> None:
    from amp_fixtures import write_synthetic_dataset

    from amp.merge import read_merged
    from bench import stance_width

    robot = robots.load("wildrobot")
    path = write_synthetic_dataset(tmp_path / "merged.h5", robot, num_clips=1, duration_s=1.0)
    assert stance_width.main(["--data", str(path)]) == 0
    data = read_merged(path)
    expected = kin.frame_stance_widths(robot.model, robot.contact_site_ids, data.qpos).mean()
    assert f"all frames ({data.num_frames}): mean {expected:.4f} m" in capsys.readouterr().out
