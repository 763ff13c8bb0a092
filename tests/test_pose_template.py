"""The data's pose template (joint angles by gait phase and speed) and the reference_pose term."""

from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from amp_fixtures import write_synthetic_dataset

import robots
from amp.merge import read_merged
from robots.config import ConfigError
from training import envs
from training.envs import rewards as rw
from training.envs.base import reference_states
from training.envs.pose_template import basis, fit_pose_template, template_pose


def _known_gait(frames: int, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    """(joint_pos [N, 2], phase [N], speed [N]) of a gait whose angles are exactly
    q0 = 0.3 + 0.2 cos 2πφ + 0.5 (v − 0.3) sin 2πφ and q1 = −0.1 + 0.05 sin 4πφ + 0.4 v."""
    phase = rng.uniform(0.0, 1.0, frames)
    speed = rng.uniform(0.1, 0.5, frames)
    angle = 2.0 * np.pi * phase
    q0 = 0.3 + 0.2 * np.cos(angle) + 0.5 * (speed - 0.3) * np.sin(angle)
    q1 = -0.1 + 0.05 * np.sin(2.0 * angle) + 0.4 * speed
    return np.stack([q0, q1], axis=-1), phase, speed


def test_fit_recovers_a_known_gait_exactly() -> None:
    joint_pos, phase, speed = _known_gait(400, np.random.default_rng(0))
    coefficients, speed_center, fit = fit_pose_template(joint_pos, phase, speed,
                                                        np.ones(400, bool), order=3)
    assert coefficients.shape == (14, 2)
    assert fit.frames == 400
    np.testing.assert_allclose(fit.explained_variance, 1.0, atol=1e-6)
    assert fit.total_explained == pytest.approx(1.0, abs=1e-6)
    np.testing.assert_allclose(fit.rms_residual_rad, 0.0, atol=1e-5)
    # Anywhere, not only at the fitted frames: the exact gait at (φ, v) = (0.25, 0.45).
    at = template_pose(coefficients, speed_center, np.asarray(0.25), np.asarray(0.45))
    np.testing.assert_allclose(at, [0.3 + 0.5 * 0.15, -0.1 + 0.4 * 0.45], atol=1e-5)


def test_fit_uses_only_stepping_frames_and_reports_the_rest_as_residual() -> None:
    rng = np.random.default_rng(1)
    joint_pos, phase, speed = _known_gait(400, rng)
    stepping = np.arange(400) < 300
    joint_pos[~stepping] = 2.0  # standing frames far from the gait: left out
    coefficients, speed_center, fit = fit_pose_template(joint_pos, phase, speed, stepping,
                                                        order=2)
    assert fit.frames == 300
    np.testing.assert_allclose(template_pose(coefficients, speed_center, phase[:5], speed[:5]),
                               joint_pos[:5], atol=1e-5)
    noisy = joint_pos[:300] + rng.normal(0.0, 0.02, (300, 2))
    _, _, noisy_fit = fit_pose_template(noisy, phase[:300], speed[:300], stepping[:300],
                                        order=2)
    np.testing.assert_allclose(noisy_fit.rms_residual_rad, 0.02, rtol=0.15)
    assert 0.0 < noisy_fit.total_explained < 1.0


def test_fit_without_a_gait_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 36 stepping frames; the data has 5"):
        fit_pose_template(np.zeros((100, 9)), np.zeros(100), np.zeros(100),
                          np.arange(100) < 5, order=4)


def test_template_is_periodic_and_the_same_in_numpy_and_jax() -> None:
    coefficients = np.random.default_rng(2).normal(size=(18, 9)).astype(np.float32)
    phase, speed = np.asarray([0.0, 0.37, 0.999999]), np.asarray([0.2, 0.3, 0.2])
    in_numpy = template_pose(coefficients, 0.3, phase, speed)
    in_jax = template_pose(jnp.asarray(coefficients), 0.3, jnp.asarray(phase, jnp.float32),
                           jnp.asarray(speed, jnp.float32), jnp)
    np.testing.assert_allclose(np.asarray(in_jax), in_numpy, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(in_numpy[2], in_numpy[0], atol=1e-4)  # no seam at touchdown
    assert basis(phase, speed, 0.3, 4).shape == (3, 18)


def test_reference_pose_term_against_hand_values() -> None:
    joint_pos, target = jnp.asarray([0.1, 0.2, 0.3]), jnp.asarray([0.1, 0.5, 0.2])
    assert float(rw.reference_pose(joint_pos, target, 0.2)) == pytest.approx(np.exp(-0.5),
                                                                              rel=1e-5)
    assert float(rw.reference_pose(target, target, 0.2)) == 1.0


@pytest.fixture(scope="module")
def walk_data(tmp_path_factory: pytest.TempPathFactory):
    path = tmp_path_factory.mktemp("pose") / "merged.h5"
    write_synthetic_dataset(path, robots.load("wildrobot"), num_clips=2, duration_s=2.0)
    return read_merged(path)


def _walk_env(overrides: dict) -> envs.Env:
    return envs.load("wildrobot_walk", {"randomization": {"enabled": False},
                                        "noise": {"enabled": False},
                                        "reset_joint_noise_rad": 0.0, **overrides})


def test_environment_term_scores_the_frames_angles_at_the_clocks_phase(walk_data) -> None:
    """The term after one step equals exp(−Σ(q − q̂)²/σ), with q the state's own AMP joint
    angles, q̂ a hand-set template evaluated in numpy at the state's clock phase and the
    command the step ran under."""
    env = _walk_env({"gait": {"frequency_hz": 1.0},
                     "rewards": {"weights": {"reference_pose": 2.0},
                                 "reference_pose_sigma": 0.3}})
    coefficients = np.zeros((18, 9), np.float32)
    coefficients[0] = np.linspace(-0.2, 0.6, 9)  # a constant pose ...
    coefficients[1, 3] = 0.3                     # ... the left knee swinging with cos 2πφ
    coefficients[9, 1] = 0.5                     # ... the left hip pitch growing with speed
    reference = reference_states(walk_data.qpos, walk_data.qvel, walk_data.clip_length,
                                 walk_data.clip_weight, walk_data.features, walk_data.fps)
    env = env.with_reference_states(reference.replace(pose_template=jnp.asarray(coefficients),
                                                      pose_speed_center=0.25))
    state = jax.jit(env.reset)(jax.random.PRNGKey(3))
    after = jax.jit(env.step)(state, jnp.zeros(env.action_size))
    phase = float(after.info["gait_phase"])
    assert phase == pytest.approx(0.02, abs=1e-6)  # 1 Hz clock, one 20-ms step
    command_vx = float(state.info["command"][0])
    target = template_pose(coefficients, 0.25, np.asarray(phase), np.asarray(command_vx))
    assert target[3] == pytest.approx(coefficients[0, 3] + 0.3 * np.cos(2 * np.pi * phase))
    joints = np.asarray(after.info["amp_frame"])[:9]
    expected = 2.0 * np.exp(-np.sum((joints - target) ** 2) / 0.3)
    assert 0.0 < expected < 2.0
    np.testing.assert_allclose(float(after.metrics["reference_pose"]), expected, rtol=1e-4)


def test_reference_states_fit_the_datas_template(walk_data) -> None:
    reference = reference_states(walk_data.qpos, walk_data.qvel, walk_data.clip_length,
                                 walk_data.clip_weight, walk_data.features, walk_data.fps)
    phase = np.asarray(reference.gait_phase)
    stepping = phase > 0
    assert stepping.mean() > 0.3  # the synthetic walk steps
    assert reference.pose_template.shape == (18, 9)
    assert 0.5 < reference.pose_explained <= 1.0
    # The template sits near the data's own stepping frames.
    features = np.asarray(walk_data.features)
    target = template_pose(np.asarray(reference.pose_template), reference.pose_speed_center,
                           phase[stepping], features[stepping, 18])
    residual = np.sqrt(np.mean((features[stepping, :9] - target) ** 2))
    assert residual < 0.5 * np.sqrt(np.mean(np.var(features[stepping, :9], axis=0)))


def test_reference_pose_needs_the_clock_and_scores_0_without_a_template() -> None:
    with pytest.raises(ConfigError, match="reference_pose need the gait clock"):
        _walk_env({"rewards": {"weights": {"reference_pose": 1.0}}})
    env = _walk_env({"gait": {"frequency_hz": 1.0},
                     "rewards": {"weights": {"reference_pose": 1.0}}})
    state = jax.jit(env.reset)(jax.random.PRNGKey(0))  # evaluation's case: no reference states
    after = jax.jit(env.step)(state, jnp.zeros(env.action_size))
    assert float(after.metrics["reference_pose"]) == 0.0


def test_trainer_refuses_data_without_a_gait(walk_data) -> None:
    from types import SimpleNamespace

    from robots.errors import AmpkitError
    from training.train import with_reference_init

    standing = np.asarray(walk_data.features).copy()
    standing[:, 25:29] = 1.0  # both feet always down: no touchdown, no counted cycle
    data = SimpleNamespace(has_reference_states=True, qpos=walk_data.qpos, qvel=walk_data.qvel,
                           clip_length=walk_data.clip_length, clip_weight=walk_data.clip_weight,
                           features=standing, fps=walk_data.fps)
    env = _walk_env({"gait": {"frequency_hz": 1.0},
                     "rewards": {"weights": {"reference_pose": 1.0}}})
    with pytest.raises(AmpkitError, match="stand.h5: .*reference_pose.*has none"):
        with_reference_init(env, SimpleNamespace(path="stand.h5", data=data))


def test_bench_prints_the_templates_fit(tmp_path: Path, capsys) -> None:
    from bench import pose_template as bench
    from training.envs.pose_template import fit_dataset_template

    path = write_synthetic_dataset(tmp_path / "merged.h5", robots.load("wildrobot"),
                                   num_clips=2, duration_s=2.0)
    assert bench.main(["--data", str(path), "--orders", "2"]) == 0
    data = read_merged(path)
    _, _, fit = fit_dataset_template(data.features, data.clip_length, data.fps, 2)
    out = capsys.readouterr().out
    assert f"2 harmonics, {fit.frames} stepping frames of {data.num_frames}" in out
    assert f"explains {fit.total_explained:.1%}" in out
    knee = f"{'left_knee_pitch':18s} explained {fit.explained_variance[3]:6.1%}"
    assert f"{knee}  rms residual {fit.rms_residual_rad[3]:.3f} rad" in out


def test_bench_names_a_missing_file(tmp_path: Path, capsys) -> None:
    import sys

    from bench import pose_template as bench

    missing = tmp_path / "none.h5"
    sys_argv, sys.argv = sys.argv, ["pose_template", "--data", str(missing)]
    try:
        assert bench._main() == 1
    finally:
        sys.argv = sys_argv
    assert f"error: {missing}" in capsys.readouterr().err
