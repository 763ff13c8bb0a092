"""PPO pieces against hand-computed values: GAE (fall, time-limit truncation), the clipped
losses, the KL-adaptive learning rate, Gaussian math, the running normalizer and the config."""

from __future__ import annotations

import dataclasses
import math
from types import SimpleNamespace

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from training import envs
from training.config import (
    PRESETS,
    ConfigError,
    PPOConfig,
    TrainConfig,
    apply_overrides,
    preset,
)
from training.iteration import faded_task_reward, style_weight_at, task_fade_keep
from training.networks import (
    clamp_log_std,
    gaussian_entropy,
    gaussian_kl,
    gaussian_log_prob,
    max_action_std,
)
from training.normalization import init_stats, normalize, update_stats
from training.ppo import (
    PPOTerms,
    adapt_learning_rate,
    compute_gae,
    ppo_loss_from_terms,
    scheduled_learning_rate,
)
from training.train import check_faded_terms

GAMMA, LAM = 0.9, 0.8


def test_gae_matches_hand_computation_for_running_fallen_and_truncated_episodes() -> None:
    # Three envs share rewards/values; env 0 keeps running, env 1 falls at t=1, env 2 is
    # truncated by the time limit at t=1.
    rewards = jnp.array([[1.0] * 3, [2.0] * 3, [3.0] * 3])
    values = jnp.array([[0.5] * 3, [1.0] * 3, [1.5] * 3])
    bootstrap = jnp.array([2.0, 2.0, 2.0])
    done = jnp.array([[0.0, 0, 0], [0, 1, 1], [0, 0, 0]])
    truncated = jnp.array([[0.0, 0, 0], [0, 0, 1], [0, 0, 0]])
    adv, ret = compute_gae(rewards, values, bootstrap, done, truncated, GAMMA, LAM)
    # Running: deltas 1.4, 2.35, 3.3; A2 = 3.3, A1 = 2.35 + 0.72*3.3, A0 = 1.4 + 0.72*A1.
    a1 = 2.35 + 0.72 * 3.3
    np.testing.assert_allclose(adv[:, 0], [1.4 + 0.72 * a1, a1, 3.3], rtol=1e-6)
    # Fall at t=1: no bootstrap (delta 2 - 1 = 1), trace cut: A1 = 1, A0 = 1.4 + 0.72.
    np.testing.assert_allclose(adv[:, 1], [1.4 + 0.72 * 1.0, 1.0, 3.3], rtol=1e-6)
    # Truncation at t=1: no TD error there (the successor is unknown), A0 bootstraps on V(s1).
    np.testing.assert_allclose(adv[:, 2], [1.4, 0.0, 3.3], rtol=1e-6)
    np.testing.assert_allclose(ret, adv + values, rtol=1e-6)
    assert float(ret[1, 2]) == pytest.approx(1.0)  # value target of the truncated step = V


def test_gae_with_lambda_one_is_discounted_return_minus_value() -> None:
    rewards = jnp.array([[1.0], [0.0], [2.0], [1.0]])
    values = jnp.array([[0.3], [0.1], [-0.2], [0.4]])
    bootstrap = jnp.array([5.0])
    zeros = jnp.zeros_like(rewards)
    adv, _ = compute_gae(rewards, values, bootstrap, zeros, zeros, GAMMA, 1.0)
    r = [1.0, 0.0, 2.0, 1.0]
    expected = [sum(GAMMA**k * r[t + k] for k in range(4 - t)) + GAMMA ** (4 - t) * 5.0
                for t in range(4)]
    np.testing.assert_allclose(adv[:, 0], np.array(expected) - values[:, 0], rtol=1e-6)


def _terms(**changes: object) -> PPOTerms:
    base = dict(
        log_prob=jnp.log(jnp.array([1.5, 0.5])),  # ratios 1.5 and 0.5 against old log 0
        old_log_prob=jnp.zeros(2),
        advantages=jnp.array([1.0, -1.0]),
        values=jnp.array([1.0, 2.0]),
        old_values=jnp.array([0.5, 2.5]),
        returns=jnp.array([1.5, 1.0]),
        entropy=jnp.array([2.0, 2.0]),
    )
    base.update(changes)
    return PPOTerms(**base)


def test_ppo_loss_matches_hand_computation() -> None:
    config = PPOConfig(clip_epsilon=0.2, value_clip_epsilon=0.2, value_loss_coef=1.0,
                       entropy_coef=0.01, normalize_advantage=False)
    loss, m = ppo_loss_from_terms(_terms(), config)
    # Surrogate: min(1.5, 1.2)*1 = 1.2 and min(-0.5, -0.8) = -0.8 → policy loss −0.2.
    assert float(m["ppo/policy_loss"]) == pytest.approx(-0.2, abs=1e-6)
    # Values clipped to 0.7 and 2.3: max((0.5)², 0.8²) = 0.64, max(1², 1.3²) = 1.69.
    assert float(m["ppo/value_loss"]) == pytest.approx(0.5 * (0.64 + 1.69) / 2, abs=1e-6)
    assert float(m["ppo/entropy"]) == pytest.approx(2.0)
    assert float(m["ppo/clip_fraction"]) == pytest.approx(1.0)
    assert float(loss) == pytest.approx(-0.2 + 0.5825 - 0.02, abs=1e-6)


def test_ppo_loss_standardizes_advantages_per_minibatch() -> None:
    config = PPOConfig(normalize_advantage=True, clip_epsilon=10.0, value_loss_coef=0.0,
                       entropy_coef=0.0)
    ones = jnp.zeros(2)
    terms = _terms(log_prob=ones, advantages=jnp.array([3.0, 7.0]))
    loss, _ = ppo_loss_from_terms(terms, config)
    assert float(loss) == pytest.approx(0.0, abs=1e-6)  # ratio 1, advantages (−1, +1)


def test_policy_gradient_pushes_probability_toward_positive_advantage() -> None:
    config = PPOConfig(normalize_advantage=False, value_loss_coef=0.0, entropy_coef=0.0)

    def loss(lp: jax.Array) -> jax.Array:
        return ppo_loss_from_terms(_terms(log_prob=lp, old_log_prob=jnp.zeros(2),
                                          advantages=jnp.array([1.0, -1.0])), config)[0]

    grad = jax.grad(loss)(jnp.zeros(2))
    assert float(grad[0]) < 0 < float(grad[1])  # descent raises sample 0, lowers sample 1


def test_adaptive_learning_rate_rule() -> None:
    config = PPOConfig(desired_kl=0.01, min_learning_rate=1e-5, max_learning_rate=1e-2)
    lr = jnp.asarray(1e-3)
    assert float(adapt_learning_rate(lr, jnp.asarray(0.05), config)) == pytest.approx(1e-3 / 1.5)
    assert float(adapt_learning_rate(lr, jnp.asarray(0.001), config)) == pytest.approx(1.5e-3)
    assert float(adapt_learning_rate(lr, jnp.asarray(0.01), config)) == pytest.approx(1e-3)
    top = adapt_learning_rate(jnp.asarray(9e-3), jnp.asarray(0.0), config)
    assert float(top) == pytest.approx(1e-2)


def test_linear_schedule_decays_to_zero() -> None:
    config = PPOConfig(learning_rate=1e-3, lr_schedule="linear")
    assert float(scheduled_learning_rate(jnp.asarray(0), config, 10)) == pytest.approx(1e-3)
    assert float(scheduled_learning_rate(jnp.asarray(5), config, 10)) == pytest.approx(5e-4)
    assert float(scheduled_learning_rate(jnp.asarray(10), config, 10)) == pytest.approx(0.0)


def test_gaussian_log_prob_entropy_and_kl_closed_forms() -> None:
    mean, log_std = jnp.array([0.5, -1.0]), jnp.log(jnp.array([2.0, 0.5]))
    action = jnp.array([1.5, -1.0])
    expected_lp = (-0.5 * (1.0 / 2.0) ** 2 - math.log(2.0) - 0.5 * math.log(2 * math.pi)
                   - math.log(0.5) - 0.5 * math.log(2 * math.pi))
    assert float(gaussian_log_prob(action, mean, log_std)) == pytest.approx(expected_lp, 1e-6)
    expected_h = math.log(2.0) + math.log(0.5) + math.log(2 * math.pi * math.e)
    assert float(gaussian_entropy(log_std)) == pytest.approx(expected_h, 1e-6)
    # KL(N(0,1) ‖ N(1,2²)) = log 2 + (1 + 1)/(2·4) − ½.
    kl = gaussian_kl(jnp.zeros(1), jnp.zeros(1), jnp.ones(1), jnp.log(jnp.full(1, 2.0)))
    assert float(kl) == pytest.approx(math.log(2.0) + 2.0 / 8.0 - 0.5, 1e-6)
    assert float(gaussian_kl(mean, log_std, mean, log_std)) == pytest.approx(0.0, abs=1e-7)


def test_running_normalizer_merges_batches_exactly() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(3.0, 2.0, size=(300, 4)).astype(np.float32)
    x[:, 3] = 1.0  # a constant feature: std floors instead of dividing by zero
    stats = init_stats(4)
    for chunk in (x[:7], x[7:150], x[150:]):
        stats = update_stats(stats, jnp.asarray(chunk))
    assert float(stats.count) == 300
    np.testing.assert_allclose(stats.mean, x.mean(0), rtol=1e-5)
    np.testing.assert_allclose(stats.std[:3], x.std(0)[:3], rtol=1e-4)
    out = normalize(stats, jnp.asarray(x), clip=5.0)
    np.testing.assert_allclose(np.asarray(out)[:, :3].mean(0), 0.0, atol=1e-4)
    assert np.all(np.asarray(out)[:, 3] == 0.0)
    assert float(jnp.max(jnp.abs(normalize(stats, jnp.full(4, 1e6), clip=5.0)))) == 5.0
    np.testing.assert_array_equal(normalize(init_stats(2), jnp.array([0.5, -2.0]), 1.0),
                                  [0.5, -1.0])  # identity (clipped) before any data


def test_overrides_parse_types_nested_keys_and_env_keys() -> None:
    config = apply_overrides(preset("cpu-smoke"), [
        "ppo.num_envs=64", "amp.enabled=false", "amp.style_weight=1", "seed=3",
        "network.policy_hidden=[16, 8]", "env.rewards.tracking=2.5"])
    assert config.ppo.num_envs == 64 and config.amp.enabled is False
    assert config.amp.style_weight == 1.0 and isinstance(config.amp.style_weight, float)
    assert config.seed == 3 and config.network.policy_hidden == (16, 8)
    assert dict(config.env_overrides) == {"rewards.tracking": 2.5}
    with pytest.raises(ConfigError, match="valid"):
        apply_overrides(config, ["ppo.num_env=64"])
    with pytest.raises(ConfigError, match="expected an integer"):
        apply_overrides(config, ["ppo.num_envs=abc"])
    with pytest.raises(ConfigError, match="divisible"):
        apply_overrides(config, ["ppo.num_minibatches=7"])
    with pytest.raises(ConfigError, match="valid presets"):
        preset("tpu")


def test_presets_are_valid_and_sized_as_documented() -> None:
    for config in PRESETS.values():
        config.validate()
    assert 32 <= PRESETS["cpu-smoke"].ppo.num_envs <= 64
    assert 4096 <= PRESETS["gpu"].ppo.num_envs <= 8192
    gpu = PRESETS["gpu"]
    assert gpu.network.policy_hidden == (512, 256, 128) and gpu.amp.hidden == (1024, 512)
    assert dataclasses.asdict(TrainConfig())["ppo"]["discount"] == 0.99
    walk = PRESETS["cpu-walk"]
    # The walking bar: at most 25 M env steps on 2 CPU cores; RSI and the walking stance on.
    assert walk.num_iterations * walk.transitions_per_iteration <= 25_000_000
    for config in (walk, gpu):
        overrides = dict(config.env_overrides)
        assert overrides["reference_init_fraction"] == 0.5
        assert overrides["default_keyframe"] == "walk"
        assert config.amp.grad_penalty_weight == 10.0 and config.amp.input_noise_std > 0


def test_action_noise_anneals_geometrically_then_holds() -> None:
    """The cpu-walk cap: 0.4 until iteration 400, 0.4 x (0.15/0.4)^0.5 half way, 0.15 from
    900 on; the learned log std is clamped to it, and without a schedule nothing changes."""
    network = preset("cpu-walk").network
    assert (network.max_action_std, network.final_max_action_std) == (0.4, 0.15)
    assert network.anneal_iterations == (400, 900)
    expected = {0: 0.4, 400: 0.4, 650: 0.4 * math.sqrt(0.15 / 0.4), 900: 0.15, 5000: 0.15}
    for iteration, std in expected.items():
        assert float(max_action_std(network, jnp.asarray(iteration))) == pytest.approx(std,
                                                                                      rel=1e-6)
    log_std = jnp.log(jnp.array([0.01, 0.2, 0.3]))
    clamped = jnp.exp(clamp_log_std(log_std, network, jnp.asarray(900)))
    np.testing.assert_allclose(clamped, [0.02, 0.15, 0.15], rtol=1e-6)
    np.testing.assert_allclose(jnp.exp(clamp_log_std(log_std, network)), [0.02, 0.2, 0.3],
                               rtol=1e-6)
    plain = preset("cpu-smoke").network
    assert float(max_action_std(plain, jnp.asarray(10**6))) == plain.max_action_std


def test_style_weight_ramps_linearly_then_holds() -> None:
    """cpu-walk: 0.5 until iteration 600, 1.0 half way (850), 1.5 from 1100 on; without a
    ramp the weight is ``style_weight`` at every iteration."""
    amp = preset("cpu-walk").amp
    expected = {0: 0.5, 600: 0.5, 850: 1.0, 1100: 1.5, 5000: 1.5}
    for iteration, weight in expected.items():
        assert float(style_weight_at(amp, jnp.asarray(iteration))) == pytest.approx(weight,
                                                                                   rel=1e-6)
    plain = preset("cpu-smoke").amp
    assert float(style_weight_at(plain, jnp.asarray(10**6))) == plain.style_weight


def test_style_ramp_needs_a_window() -> None:
    walk = preset("cpu-walk")
    for window in ((5, 5), (9, 3)):
        amp = dataclasses.replace(walk.amp, style_ramp_iterations=window)
        with pytest.raises(ConfigError, match="style_ramp_iterations"):
            dataclasses.replace(walk, amp=amp).validate()


def test_annealed_noise_needs_a_window() -> None:
    walk = preset("cpu-walk")
    for window in ((5, 5), (9, 3)):
        network = dataclasses.replace(walk.network, anneal_iterations=window)
        with pytest.raises(ConfigError, match="anneal_iterations"):
            dataclasses.replace(walk, network=network).validate()


def test_faded_task_terms_leave_the_task_reward_linearly() -> None:
    """Terms faded over iterations (100, 200): all of them in until 100, half at 150, none
    from 200 on; the rest of the task reward is untouched."""
    amp = dataclasses.replace(preset("cpu-walk").amp,
                              faded_task_terms=("feet_phase", "contact_phase"),
                              task_fade_iterations=(100, 200))
    for iteration, keep in {0: 1.0, 100: 1.0, 150: 0.5, 200: 0.0, 900: 0.0}.items():
        assert float(task_fade_keep(amp, jnp.asarray(iteration))) == pytest.approx(keep)
    rollout = SimpleNamespace(
        task_reward=jnp.asarray([[2.0, 3.0]]),
        env_metrics={"feet_phase": jnp.asarray([[0.4, 0.2]]),
                     "contact_phase": jnp.asarray([[0.6, 0.0]]),
                     "alive": jnp.asarray([[1.0, 1.0]])})
    np.testing.assert_allclose(faded_task_reward(amp, jnp.asarray(150), rollout),
                               [[1.5, 2.9]], rtol=1e-6)
    np.testing.assert_allclose(faded_task_reward(amp, jnp.asarray(250), rollout),
                               [[1.0, 2.8]], rtol=1e-6)
    plain = preset("cpu-walk").amp
    assert faded_task_reward(plain, jnp.asarray(250), rollout) is rollout.task_reward
    assert float(task_fade_keep(plain, jnp.asarray(250))) == 1.0


def test_faded_task_terms_can_keep_a_final_share() -> None:
    """feet_phase fades to 0 and contact_phase to 0.3 of itself over (100, 200): at 150 the
    reward loses 0.5·0.4 + 0.5·0.7·0.6 = 0.41, from 200 on 0.4 + 0.7·0.6 = 0.82."""
    amp = dataclasses.replace(preset("cpu-walk").amp,
                              faded_task_terms=("feet_phase", "contact_phase"),
                              task_fade_iterations=(100, 200),
                              task_fade_final_shares=(0.0, 0.3))
    rollout = SimpleNamespace(
        task_reward=jnp.asarray([[2.0, 3.0]]),
        env_metrics={"feet_phase": jnp.asarray([[0.4, 0.2]]),
                     "contact_phase": jnp.asarray([[0.6, 0.0]])})
    np.testing.assert_allclose(faded_task_reward(amp, jnp.asarray(50), rollout),
                               [[2.0, 3.0]], rtol=1e-6)
    np.testing.assert_allclose(faded_task_reward(amp, jnp.asarray(150), rollout),
                               [[1.59, 2.9]], rtol=1e-6)
    np.testing.assert_allclose(faded_task_reward(amp, jnp.asarray(900), rollout),
                               [[1.18, 2.8]], rtol=1e-6)


def test_faded_task_terms_are_checked() -> None:
    walk = preset("cpu-walk")
    with pytest.raises(ConfigError, match="task_fade_iterations"):
        dataclasses.replace(walk, amp=dataclasses.replace(
            walk.amp, faded_task_terms=("feet_phase",))).validate()
    faded = apply_overrides(walk, ["amp.faded_task_terms=[feet_phase, contact_phase]",
                                   "amp.task_fade_iterations=[1500, 1600]"]).validate()
    assert faded.amp.faded_task_terms == ("feet_phase", "contact_phase")
    assert faded.amp.task_fade_iterations == (1500, 1600)
    with pytest.raises(ConfigError, match="one share per"):
        apply_overrides(faded, ["amp.task_fade_final_shares=[0.3]"]).validate()
    with pytest.raises(ConfigError, match=r"task_fade_final_shares: must lie in \[0, 1\]"):
        apply_overrides(faded, ["amp.task_fade_final_shares=[0.0, 1.5]"]).validate()
    env = envs.load("wildrobot_walk")
    check_faded_terms(faded.amp, env)
    with pytest.raises(ConfigError, match=r"\['feet_hight'\] are not reward terms.*feet_phase"):
        check_faded_terms(dataclasses.replace(walk.amp, faded_task_terms=("feet_hight",)), env)
