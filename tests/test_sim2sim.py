"""Plain MuJoCo vs MJX: the numpy observation builder against the environment's observation,
a zero-action rollout in both simulators, and the MuJoCo runner's physics factors, latency and
pushes against the environment's definitions."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from eval_fixtures import TINY_BATCH

from training import eval_metrics, eval_setup
from training.envs.randomization import DomainFactors
from training.evaluate import MjxBatch
from training.policy import random_policy, zero_policy
from training.scenarios import Scenario
from training.sim2sim import MujocoBatch, ObservationBuilder, episode_model, evaluate_mujoco

NOMINAL = (Scenario("nominal", ((0.25, 0.05, -0.2),), episodes=TINY_BATCH, seconds=1.0,
                    noise_scale=0.0),)
"""Nominal physics, no noise, as many episodes as the tiny suite (one compiled MJX step)."""


@pytest.fixture(scope="module")
def nominal() -> tuple[object, eval_setup.EpisodeSetup]:
    env = eval_setup.plan_groups(NOMINAL, "wildrobot_walk", {})[0].env
    return env, eval_setup.build_setup(NOMINAL, env.mj_model, env.control_dt)


def test_observation_builder_matches_the_environment(nominal) -> None:
    env, setup = nominal
    batch = MjxBatch(env, setup, seed=1)
    batch.reset()
    builder = ObservationBuilder(env)
    rng = np.random.default_rng(0)
    for _ in range(5):
        # Beyond the clip on purpose: the observation holds the clipped action.
        action = rng.uniform(-1.5, 1.5, (TINY_BATCH, env.action_size)).astype(np.float32)
        batch.step(action)
    state = batch.state
    assert not np.any(np.asarray(state.done))
    clean = builder.clean(np.asarray(state.data.qpos), np.asarray(state.data.qvel),
                          np.clip(action, -1.0, 1.0), setup.command)
    assert clean.shape == (TINY_BATCH, env.observation_size)
    np.testing.assert_allclose(clean, np.asarray(state.privileged_obs)[:, :env.observation_size],
                               rtol=0, atol=2e-5)
    # The policy's own (noisy) observation differs from it by at most the noise widths.
    noise = np.asarray(state.obs) - clean
    assert np.all(np.abs(noise) <= builder.noise_vector + 2e-5)
    assert np.abs(noise).max() > 0.5 * builder.noise_vector.max()
    np.testing.assert_array_equal(builder.noise_vector[-14:], 0.0)  # action, command


def test_zero_action_mujoco_matches_mjx_over_the_first_second(nominal) -> None:
    env, setup = nominal
    mjx_batch = MjxBatch(env, setup, seed=2)
    mjx_obs = np.asarray(mjx_batch.reset())
    mujoco_batch = MujocoBatch(env, setup, seed=2)
    mujoco_obs = mujoco_batch.reset(initial_qpos=mjx_batch.qpos)
    np.testing.assert_allclose(mujoco_obs, mjx_obs, atol=1e-5)
    zero = np.zeros((TINY_BATCH, env.action_size), np.float32)
    worst = np.zeros(3)
    for _ in range(int(round(1.0 / env.control_dt))):
        mjx_batch.step(zero)
        mujoco_batch.step(zero)
        diff = np.abs(mjx_batch.qpos - mujoco_batch.qpos)
        worst = np.maximum(worst, [diff[:, :3].max(), diff[:, 3:7].max(), diff[:, 7:].max()])
    assert worst[0] < 3e-3, f"root position differs by {worst[0]:.2e} m"
    assert worst[1] < 0.01, f"root orientation differs by {worst[1]:.2e}"
    assert worst[2] < 0.02, f"joint angles differ by {worst[2]:.2e} rad"
    assert np.all(mujoco_batch.accumulator["fell"] == 0)
    np.testing.assert_allclose(mujoco_batch.accumulator["steps"], 50)


def test_mujoco_replays_mjx_noise_and_pushes(nominal) -> None:
    env, _ = nominal
    pushed = (Scenario("pushed", ((0.2, 0.0, 0.0),), episodes=TINY_BATCH, seconds=1.0,
                       push_force_n=10.0, push_interval_s=(0.1, 0.3), push_duration_s=0.06),)
    setup = eval_setup.build_setup(pushed, env.mj_model, env.control_dt)
    mjx_batch = MjxBatch(env, setup, seed=4)
    mjx_obs = np.asarray(mjx_batch.reset())
    mujoco_batch = MujocoBatch(env, setup, seed=4)
    mujoco_obs = mujoco_batch.reset(initial_qpos=mjx_batch.qpos)
    np.testing.assert_allclose(mujoco_obs, mjx_obs, atol=1e-5)  # the same noise draw
    assert np.abs(mjx_obs - ObservationBuilder(env).clean(
        mjx_batch.qpos, np.zeros((TINY_BATCH, 17)), np.zeros((TINY_BATCH, 11)),
        setup.command)).max() > 0.1  # ... and there is noise
    zero = np.zeros((TINY_BATCH, env.action_size), np.float32)
    pushes = 0
    for _ in range(25):
        mjx_obs = np.asarray(mjx_batch.step(zero))
        mujoco_obs = mujoco_batch.step(zero)
        mjx_force = np.asarray(mjx_batch.state.info["push_force"])
        mujoco_force = np.stack([d.xfrc_applied[mujoco_batch.root_body, :3]
                                 for d in mujoco_batch.datas])
        np.testing.assert_allclose(mujoco_force, mjx_force, atol=1e-4)
        pushes += int(np.sum(np.linalg.norm(mjx_force, axis=1) > 9.99))
        np.testing.assert_allclose(mujoco_obs, mjx_obs, atol=0.05)
    assert pushes >= TINY_BATCH  # every episode was pushed (for 3 steps) at least once
    assert np.abs(mjx_batch.qpos - mujoco_batch.qpos)[:, :3].max() < 3e-3


def test_episode_model_applies_factors_as_the_env_does(nominal) -> None:
    env, _ = nominal
    scenario = Scenario("heavy", ((0.1, 0.0, 0.0),), episodes=1, friction=0.35,
                        body_mass_scale=(("torso", 1.4),), strength_scale=0.7)
    setup = eval_setup.build_setup((scenario,), env.mj_model, env.control_dt)
    model = episode_model(env.mj_model, setup, 0)
    joints = env.robot.spec.num_joints
    factors = DomainFactors(
        friction=jnp.float32(0.35), mass_scale=jnp.asarray(setup.mass_scale[0]),
        damping_scale=jnp.ones(joints), armature_scale=jnp.ones(joints),
        strength_scale=jnp.asarray(setup.strength_scale[0]), latency_steps=jnp.int32(0))
    expected = env.physics_model(factors)
    for field in ("geom_friction", "body_mass", "body_inertia", "actuator_gainprm",
                  "actuator_biasprm", "actuator_forcerange", "dof_damping", "dof_armature"):
        np.testing.assert_allclose(getattr(model, field), np.asarray(getattr(expected, field)),
                                   rtol=1e-6, err_msg=field)
    assert model.body_mass[model.body("torso").id] == pytest.approx(
        1.4 * env.mj_model.body_mass[model.body("torso").id])


def test_mujoco_runner_latency_and_pushes(nominal) -> None:
    env, _ = nominal
    scenario = Scenario("lag", ((0.0, 0.0, 0.0),), episodes=1, seconds=0.2, latency_steps=2,
                        push_force_n=10.0, push_interval_s=(0.04, 0.04), push_duration_s=0.02)
    setup = eval_setup.build_setup((scenario,), env.mj_model, env.control_dt)
    batch = MujocoBatch(env, setup, seed=0)
    batch.reset()
    default_ctrl = batch.default_ctrl.copy()
    actions = [np.full((1, env.action_size), v, np.float32) for v in (0.2, 0.4, 0.6, 0.8)]
    forces = []
    for step, action in enumerate(actions):
        batch.step(action)
        lagged = actions[step - 2][0] if step >= 2 else np.zeros(env.action_size)
        np.testing.assert_allclose(batch.datas[0].ctrl, default_ctrl + 0.5 * lagged, atol=1e-6)
        forces.append(np.linalg.norm(batch.datas[0].xfrc_applied[batch.root_body, :3]))
    # First push one interval (2 steps) after reset, lasting one step, then every 2 steps.
    np.testing.assert_allclose(forces, [0.0, 0.0, 10.0, 0.0], atol=1e-9)


def test_mujoco_suite_separates_standing_from_flailing() -> None:
    suite = (Scenario("flat", ((0.2, 0.0, 0.0),), episodes=3, seconds=1.0),
             Scenario("slippery", ((0.2, 0.0, 0.0),), episodes=3, seconds=1.0, friction=0.4))
    standing = evaluate_mujoco(zero_policy(11), suite, episodes=3, seed=0)
    flailing = evaluate_mujoco(random_policy(11), suite, episodes=3, seed=0)
    assert all(m["success_rate"] == 1.0 for m in standing.values())
    assert sum(m["success_rate"] for m in flailing.values()) < 2.0
    for metrics in (*standing.values(), *flailing.values()):
        flat = eval_metrics.flatten_metrics(metrics)
        assert all(np.isfinite(v) for v in flat.values())
        assert "style_score" not in metrics  # no discriminator given
    again = evaluate_mujoco(random_policy(11), suite, episodes=3, seed=0)
    assert eval_metrics.flatten_metrics(again) == eval_metrics.flatten_metrics(flailing)


def test_mjx_batch_reproduces_itself(nominal) -> None:
    env, setup = nominal
    qpos = []
    for _ in range(2):
        batch = MjxBatch(env, setup, seed=5)
        batch.reset()
        batch.step(jnp.full((TINY_BATCH, env.action_size), 0.3))
        qpos.append(batch.qpos)
    np.testing.assert_array_equal(*qpos)
    assert jax.tree.leaves(batch.accumulator)


def test_action_filter_and_clock_agree_in_both_simulators() -> None:
    """``action_filter_alpha`` 0.5: after actions a1, a2, a3 the targets are
    default + 0.5 rad x (a1/8 + a2/4 + a3/2), in MJX and in MuJoCo alike. A clock at
    0.5 Hz + 1 Hz per m/s under the command (0.25, 0.05) runs at 0.755 Hz in both."""
    overrides = {"action_filter_alpha": 0.5,
                 "gait": {"frequency_hz": 0.5, "frequency_per_mps": 1.0}}
    env = eval_setup.plan_groups(NOMINAL, "wildrobot_walk", overrides)[0].env
    setup = eval_setup.build_setup(NOMINAL, env.mj_model, env.control_dt)
    mjx_batch = MjxBatch(env, setup, seed=3)
    mjx_batch.reset()
    mujoco_batch = MujocoBatch(env, setup, seed=3)
    mujoco_batch.reset(initial_qpos=mjx_batch.qpos)
    rng = np.random.default_rng(1)
    actions = [rng.uniform(-1.0, 1.0, (TINY_BATCH, env.action_size)).astype(np.float32)
               for _ in range(3)]
    for action in actions:
        mjx_obs = np.asarray(mjx_batch.step(action))
        mujoco_obs = mujoco_batch.step(action)
    filtered = actions[0] / 8 + actions[1] / 4 + actions[2] / 2
    expected = mujoco_batch.default_ctrl + 0.5 * filtered
    np.testing.assert_allclose(np.asarray(mjx_batch.state.data.ctrl), expected, atol=1e-6)
    for e in range(TINY_BATCH):
        np.testing.assert_allclose(mujoco_batch.datas[e].ctrl, expected[e], atol=1e-6)
    assert np.abs(filtered - actions[2]).max() > 0.1  # the filter did something
    angle = 2 * np.pi * 3 * 0.02 * (0.5 + np.hypot(0.25, 0.05))
    clock = np.broadcast_to([np.sin(angle), np.cos(angle)], (TINY_BATCH, 2))
    np.testing.assert_allclose(mujoco_obs[:, -2:], clock, atol=1e-5)
    np.testing.assert_allclose(mjx_obs[:, -2:], clock, atol=1e-5)
