"""The optional gait clock: its phase, observation block and the two reward terms, against
hand-computed values; the numpy observation builder (sim-to-sim) against the environment's.

Nothing here is jitted: the environment's pieces run eagerly on one state, so the file needs
no MJX compile."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from robots.config import ConfigError
from training import envs
from training.envs import kinematics as kin
from training.envs import rewards as rw
from training.sim2sim import ObservationBuilder

CLOCK = {"default_keyframe": "walk", "gait": {"frequency_hz": 1.0, "stance_fraction": 0.55},
         "rewards": {"weights": {"feet_phase": 1.0, "contact_phase": 0.5}}}


@pytest.fixture(scope="module")
def clocked() -> envs.Env:
    return envs.load("wildrobot_walk", CLOCK)


@pytest.mark.parametrize("xp", [np, jnp])
def test_leg_phases_and_clock_of_known_phases(xp) -> None:
    left = xp.asarray([0.0, 0.2, 0.5, 0.1])
    phase = np.asarray(kin.leg_phases(left, xp))
    np.testing.assert_allclose(phase[:, 0], [0.0, 0.2, 0.5, 0.1], atol=1e-6)
    np.testing.assert_allclose(phase[:, 1], [0.5, 0.7, 0.0, 0.6], atol=1e-6)
    clock = np.asarray(kin.clock_of_phase(left, xp))
    angle = 2 * np.pi * np.array([0.0, 0.2, 0.5, 0.1])
    np.testing.assert_allclose(clock, np.stack([np.sin(angle), np.cos(angle)], 1), atol=1e-6)


@pytest.mark.parametrize("xp", [np, jnp])
def test_swing_height_is_zero_in_stance_and_peaks_mid_swing(xp) -> None:
    phase = xp.asarray([0.0, 0.3, 0.549, 0.55, 0.775, 1.0 - 1e-6])
    height = np.asarray(kin.swing_height_target(phase, 0.55, 0.04, xp))
    np.testing.assert_allclose(height, [0.0, 0.0, 0.0, 0.0, 0.04, 0.0], atol=1e-6)


def test_reward_terms_against_hand_values() -> None:
    sigma = 0.02
    target = jnp.asarray([0.0, 0.03])
    assert float(rw.feet_phase(target, target, sigma)) == pytest.approx(1.0)
    off_by_sigma = target + jnp.asarray([0.0, sigma])
    assert float(rw.feet_phase(off_by_sigma, target, sigma)) == pytest.approx(np.exp(-1.0))
    assert float(rw.contact_phase(jnp.asarray([1.0, 0.0]), jnp.asarray([1.0, 1.0]))) == 0.5
    assert float(rw.contact_phase(jnp.asarray([0.0, 1.0]), jnp.asarray([0.0, 1.0]))) == 1.0


def test_clock_block_ends_the_observation(clocked) -> None:
    layout = clocked.observation_layout()
    assert layout[-1] == (kin.CLOCK_BLOCK, 2)
    assert clocked.observation_size == envs.load("wildrobot_walk").observation_size + 2
    privileged = clocked.privileged_observation_layout()
    assert privileged[:len(layout)] == layout
    # No noise on the clock: the policy knows the phase exactly.
    np.testing.assert_array_equal(np.asarray(clocked._noise_scale)[-2:], 0.0)


def test_gait_terms_on_flat_feet(clocked) -> None:
    data = clocked.kinematic_data(clocked.default_qpos, np.zeros(clocked.model.nv))
    both_down = jnp.ones(2)
    # Step 0: left phase 0, right 0.5, both in stance: flat feet are exactly what it asks.
    terms = clocked._gait_terms(data, both_down, jnp.float32(0.0))
    assert float(terms["feet_phase"]) == pytest.approx(1.0, abs=1e-3)
    assert float(terms["contact_phase"]) == 1.0
    # Left phase 0.78 (step 39 at 1 Hz), near mid-swing (0.775): the clock wants it ~4 cm up.
    terms = clocked._gait_terms(data, both_down, jnp.float32(0.78))
    target = 0.04 * np.sin(np.pi * (0.78 - 0.55) / 0.45)
    assert float(terms["feet_phase"]) == pytest.approx(np.exp(-target**2 / 0.02**2), rel=1e-2)
    assert float(terms["contact_phase"]) == 0.5  # left should be up, right (0.28) is right


def test_numpy_builder_matches_the_environment_clock(clocked) -> None:
    rng = np.random.default_rng(3)
    qpos = clocked.default_qpos.astype(np.float32).copy()
    qpos[7:] += rng.uniform(-0.1, 0.1, qpos.size - 7).astype(np.float32)
    qvel = rng.uniform(-0.5, 0.5, clocked.model.nv).astype(np.float32)
    action = rng.uniform(-1, 1, clocked.action_size).astype(np.float32)
    command = np.asarray([0.3, 0.0, 0.1], np.float32)
    data = clocked.kinematic_data(qpos, qvel)
    for phase in (0.0, 0.14, 0.62):
        env_obs = clocked._clean_observation(data, jnp.asarray(action), jnp.asarray(command),
                                             jnp.float32(phase))
        numpy_obs = ObservationBuilder(clocked).clean(qpos[None], qvel[None], action[None],
                                                      command[None], np.float32(phase))
        np.testing.assert_allclose(numpy_obs[0], np.asarray(env_obs), atol=2e-6)


def test_reset_starts_the_clock_at_zero(clocked) -> None:
    state = clocked.reset(jax.random.PRNGKey(0))
    np.testing.assert_allclose(np.asarray(state.obs)[-2:], [0.0, 1.0], atol=1e-6)


@pytest.mark.parametrize("xp", [np, jnp])
def test_clock_rate_follows_the_commanded_speed(xp) -> None:
    commands = xp.asarray([[0.0, 0.0, 0.5], [0.3, 0.0, 0.0], [0.3, 0.4, -0.2], [-0.5, 0.0, 0.0]])
    rate = np.asarray(kin.clock_rate_hz(commands, 0.5, 0.8, xp))
    np.testing.assert_allclose(rate, [0.5, 0.74, 0.9, 0.9], rtol=1e-6)


@pytest.mark.parametrize("xp", [np, jnp])
def test_integrated_phase_reaches_the_closed_form_at_a_constant_rate(xp) -> None:
    """At 1 Hz (a zero command) the phase after k steps of 0.02 s is frac(0.02 k)."""
    phase, zero, reached = xp.float32(0.0), xp.zeros(3), {}
    for step in range(1, 56):
        phase = kin.advance_phase(phase, zero, 1.0, 0.8, 0.02, xp)
        reached[step] = float(phase)
    for step, expected in ((10, 0.2), (25, 0.5), (55, 0.1)):
        assert reached[step] == pytest.approx(expected, abs=2e-5)
    np.testing.assert_allclose(np.asarray(kin.leg_phases(phase, xp)), [0.1, 0.6], atol=2e-5)


def test_clock_follows_a_command_change_without_a_jump() -> None:
    """At 0.5 + 1.0 Hz per m/s: 25 steps at 0.1 m/s (0.6 Hz) reach phase 0.3, then 10 steps at
    0.5 m/s (1.0 Hz) add 0.2; the clock the policy sees moves on from where it was."""
    env = envs.load("wildrobot_walk", {**CLOCK, "gait": {**CLOCK["gait"], "frequency_hz": 0.5,
                                                         "frequency_per_mps": 1.0}})
    slow, fast = jnp.asarray([0.1, 0.0, 0.0]), jnp.asarray([0.5, 0.0, 0.0])
    phase = jnp.float32(0.0)
    for command in [slow] * 25 + [fast] * 10:
        phase = env._advance_clock(phase, command)
    assert float(phase) == pytest.approx(0.5, abs=1e-5)


def test_environment_steps_advance_the_clock_at_the_commanded_rate() -> None:
    env = envs.load("wildrobot_walk", {**CLOCK, "gait": {**CLOCK["gait"], "frequency_hz": 0.5,
                                                         "frequency_per_mps": 1.0}})
    state = env.reset(jax.random.PRNGKey(1))
    command = np.asarray(state.info["command"])
    rate = 0.5 + np.hypot(command[0], command[1])
    for _ in range(3):
        state = env.step(state, jnp.zeros(env.action_size))
    assert float(state.info["gait_phase"]) == pytest.approx(3 * 0.02 * rate, abs=1e-6)
    angle = 2 * np.pi * 3 * 0.02 * rate
    np.testing.assert_allclose(np.asarray(state.obs)[-2:], [np.sin(angle), np.cos(angle)],
                               atol=1e-5)


def test_reward_is_the_sum_of_the_logged_weighted_terms(clocked) -> None:
    """What ``amp.faded_task_terms`` relies on: each term's weighted value is in the metrics
    under its name, and they add up to the step's reward."""
    state = clocked.reset(jax.random.PRNGKey(2))
    for _ in range(2):
        state = clocked.step(state, jnp.full(clocked.action_size, 0.3))
    terms = {name: float(state.metrics[name]) for name in clocked.reward_names}
    assert float(state.reward) == pytest.approx(sum(terms.values()), abs=1e-5)
    assert terms["contact_phase"] != 0.0 and terms["feet_phase"] != 0.0


def test_phase_rewards_without_a_clock_are_refused() -> None:
    with pytest.raises(ConfigError, match="gait.frequency_hz"):
        envs.load("wildrobot_walk", {"rewards": {"weights": {"feet_phase": 1.0}}})
    with pytest.raises(ConfigError, match="stance_fraction"):
        envs.load("wildrobot_walk", {"gait": {"frequency_hz": 1.0, "stance_fraction": 1.0}})
    with pytest.raises(ConfigError, match="frequency_per_mps=-0.5"):
        envs.load("wildrobot_walk", {"gait": {"frequency_hz": 1.0, "frequency_per_mps": -0.5}})
    with pytest.raises(ConfigError, match="needs the gait clock"):
        envs.load("wildrobot_walk", {"gait": {"frequency_per_mps": 0.5}})


def test_averaged_velocity_is_an_exponential_average() -> None:
    """From 0, a constant velocity is reached as 1 - e^(-t/tau); window 0 is no averaging."""
    current = jnp.array([0.4, -0.2, 0.0])
    average = jnp.zeros(3)
    for _ in range(25):
        average = rw.averaged_velocity(average, current, 0.02, 0.5)
    np.testing.assert_allclose(average, (1.0 - np.exp(-0.5 / 0.5)) * np.asarray(current),
                               rtol=1e-5)
    np.testing.assert_array_equal(rw.averaged_velocity(average, current, 0.02, 0.0), current)
