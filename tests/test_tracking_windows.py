"""Windowed tracking errors: the stride's own sway is left out, a wrong mean speed is not."""

from __future__ import annotations

import numpy as np
import pytest

from training import eval_metrics

DT = 0.02
WINDOW = eval_metrics.window_steps(DT)


def _velocity(seconds: float, mean: tuple[float, float, float], sway: float,
              period_s: float) -> np.ndarray:
    """[T, 3] (v_x, v_y, yaw rate): a constant mean, the lateral and yaw parts swaying
    sinusoidally with ``period_s`` (amplitude ``sway``), v_x at twice that rate."""
    t = np.arange(int(round(seconds / DT))) * DT
    wave = np.sin(2 * np.pi * t / period_s)
    return np.stack([mean[0] + sway * np.sin(4 * np.pi * t / period_s),
                     mean[1] + sway * wave, mean[2] + sway * wave], axis=1)


def _errors(velocity: np.ndarray, command: tuple[float, float, float],
            measured_steps: int | None = None) -> dict[str, float | None]:
    """Feed one episode's velocities through ``accumulate``; its per-step and windowed errors."""
    acc = eval_metrics.init_accumulator(1, 1)
    cmd = np.asarray(command, np.float64)
    for t, v in enumerate(velocity):
        counted = measured_steps is None or t < measured_steps
        measured = np.array([1.0 if counted else 0.0])
        residual = (cmd - v)[None]
        values = {"lin_vel_error": np.linalg.norm(residual[:, :2], axis=1),
                  "yaw_rate_error": np.abs(residual[:, 2]), "velocity_residual": residual,
                  "abs_torque": np.zeros((1, 1)), "power": np.zeros(1),
                  "distance": np.zeros(1), "foot_contact": np.ones((1, 2))}
        acc = eval_metrics.accumulate(acc, values, measured, np.zeros(1), window=WINDOW)
    a = {k: np.asarray(v, np.float64) for k, v in acc.items()}
    return {"per_step": float(a["lin_vel_error"].sum() / a["steps"].sum()),
            "windows": float(a["windows"].sum()), **eval_metrics.windowed_errors(a)}


def test_window_is_two_seconds_at_50_hz() -> None:
    assert WINDOW == 100


def test_sway_that_averages_out_scores_zero_windowed() -> None:
    """A 0.5-s sway (4 whole periods per window) at the commanded mean: windowed error 0,
    while the per-step error counts the sway (over 0.15 m/s)."""
    velocity = _velocity(10.0, (0.3, 0.0, 0.0), 0.2, 0.5)
    errors = _errors(velocity, (0.3, 0.0, 0.0))
    assert errors["windows"] == 5
    assert errors["lin_vel_error_windowed_mps"] == pytest.approx(0.0, abs=1e-12)
    assert errors["yaw_rate_error_windowed_rps"] == pytest.approx(0.0, abs=1e-12)
    per_step = np.mean(np.linalg.norm(velocity[:, :2] - [0.3, 0.0], axis=1))
    assert errors["per_step"] == pytest.approx(per_step)
    assert errors["per_step"] > 0.15


def test_a_wrong_mean_speed_is_the_windowed_error() -> None:
    """0.45 m/s forward and 0.1 m/s sideways against 0.3 / 0: error |(0.15, 0.1)|, whatever
    the sway; the mean yaw rate 0.4 against 0.5 is a 0.1 rad/s error."""
    errors = _errors(_velocity(6.0, (0.45, 0.1, 0.4), 0.25, 0.25), (0.3, 0.0, 0.5))
    assert errors["lin_vel_error_windowed_mps"] == pytest.approx(np.hypot(0.15, 0.1), abs=1e-12)
    assert errors["yaw_rate_error_windowed_rps"] == pytest.approx(0.1, abs=1e-12)


def test_unfinished_windows_are_not_scored() -> None:
    """An episode measured for 3.5 s closes one window; one measured 1.5 s closes none."""
    velocity = _velocity(4.0, (0.5, 0.0, 0.0), 0.0, 1.0)
    assert _errors(velocity, (0.3, 0.0, 0.0), measured_steps=175)["windows"] == 1
    short = _errors(velocity, (0.3, 0.0, 0.0), measured_steps=75)
    assert short["windows"] == 0
    assert short["lin_vel_error_windowed_mps"] is None
    assert short["per_step"] == pytest.approx(0.2)


def test_jax_and_numpy_windows_agree() -> None:
    import jax.numpy as jnp

    rng = np.random.default_rng(0)
    residual = rng.normal(size=(3, 3)).astype(np.float32)
    acc = {k: np.asarray(v) for k, v in eval_metrics.init_accumulator(3, 1).items()}
    acc["window_steps"] = np.array([WINDOW - 1, 0, WINDOW - 1], np.float32)
    measured = np.array([1.0, 1.0, 0.0], np.float32)
    ours = eval_metrics.accumulate_windows(acc, residual, measured, WINDOW)
    theirs = eval_metrics.accumulate_windows({k: jnp.asarray(v) for k, v in acc.items()},
                                             jnp.asarray(residual), jnp.asarray(measured),
                                             WINDOW, jnp)
    assert ours["windows"].tolist() == [1.0, 0.0, 0.0]  # only a measured full window closes
    for key, value in ours.items():
        np.testing.assert_allclose(np.asarray(theirs[key]), value, rtol=1e-6)
