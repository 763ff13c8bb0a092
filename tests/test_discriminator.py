"""Discriminator loss, style reward and replay buffer against hand-computed values, and a real
discriminator learning to tell smooth reference transitions from jittery random ones."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from training.discriminator import (
    add_input_noise,
    discriminator_loss,
    init_replay,
    logit_weight_norm,
    mix_policy_batch,
    replay_insert,
    replay_sample,
    separability,
    style_reward,
)
from training.networks import make_discriminator


def linear_logits(params: dict, pairs: jax.Array) -> jax.Array:
    """D(x) = w·flatten(x) + b, with its weights under a ``logit`` layer like the real MLP."""
    layer = params["params"]["logit"]
    return pairs.reshape(pairs.shape[0], -1) @ layer["kernel"][:, 0] + layer["bias"][0]


def test_style_reward_values() -> None:
    d = jnp.array([1.0, -1.0, 0.0, 3.0, -3.0, 2.0])
    np.testing.assert_allclose(style_reward(d), [1.0, 0.0, 0.75, 0.0, 0.0, 0.75])


def test_least_squares_loss_with_gradient_penalty_matches_hand_computation() -> None:
    w = jnp.array([0.5, -1.0, 0.25, 2.0])  # pairs of 2 frames × 2 features → 4 inputs
    params = {"params": {"logit": {"kernel": w[:, None], "bias": jnp.array([0.1])}}}
    data = jnp.array([[[1.0, 0.0], [0.0, 1.0]], [[0.0, 0.0], [1.0, 0.0]]])
    policy = jnp.array([[[0.0, 1.0], [0.0, 0.0]], [[1.0, 1.0], [1.0, 1.0]]])
    loss, m = discriminator_loss(params, linear_logits, data, policy,
                                 grad_penalty_weight=5.0, logit_weight_decay=0.1)
    d_data = np.array([0.5 + 2.0 + 0.1, 0.25 + 0.1])      # [2.6, 0.35]
    d_policy = np.array([-1.0 + 0.1, 1.75 + 0.1])         # [-0.9, 1.85]
    w_sq = 0.25 + 1.0 + 0.0625 + 4.0                      # ‖∇_x D‖² = ‖w‖² for linear D
    expected = (np.mean((d_data - 1) ** 2) + np.mean((d_policy + 1) ** 2)
                + 0.5 * 5.0 * w_sq + 0.1 * w_sq)
    assert float(loss) == pytest.approx(expected, rel=1e-6)
    assert float(m["amp/grad_penalty"]) == pytest.approx(w_sq, rel=1e-6)
    assert float(m["amp/data_accuracy"]) == 1.0           # both data logits > 0
    assert float(m["amp/policy_accuracy"]) == 0.5         # one policy logit < 0
    assert float(m["amp/data_logit_mean"]) == pytest.approx(d_data.mean(), rel=1e-6)
    assert float(m["amp/policy_logit_mean"]) == pytest.approx(d_policy.mean(), rel=1e-6)


def test_loss_gradient_includes_the_penalty_term() -> None:
    w = jnp.array([0.5, -1.0, 0.25, 2.0])
    params = {"params": {"logit": {"kernel": w[:, None], "bias": jnp.zeros(1)}}}
    zeros = jnp.zeros((3, 2, 2))  # D = 0 on every sample: only the penalty depends on w
    grads = jax.grad(lambda p: discriminator_loss(p, linear_logits, zeros, zeros, 5.0, 0.0)[0])(
        params)
    # d/dw of (data (0−1)² + policy (0+1)²) is 0 here; d/dw of 2.5‖w‖² is 5w.
    np.testing.assert_allclose(grads["params"]["logit"]["kernel"][:, 0], 5.0 * w, rtol=1e-6)


def test_logit_weight_norm_reads_only_the_logit_layer_of_the_mlp() -> None:
    disc = make_discriminator((8, 4))
    params = disc.init(jax.random.PRNGKey(0), jnp.zeros((1, 2, 29)))
    kernel = params["params"]["MLP_0"]["logit"]["kernel"]
    assert kernel.shape == (4, 1)
    assert float(logit_weight_norm(params)) == pytest.approx(float(jnp.sum(kernel**2)))


def test_replay_buffer_ring_overwrites_oldest_and_samples_filled_part() -> None:
    buffer = init_replay(capacity=5, feature_size=1)

    def pairs(values: list[float]) -> jax.Array:
        return jnp.asarray(values, jnp.float32)[:, None, None] * jnp.ones((1, 2, 1))

    buffer = replay_insert(buffer, pairs([1, 2, 3]))
    assert int(buffer.size) == 3 and int(buffer.next_index) == 3
    drawn = replay_sample(buffer, jax.random.PRNGKey(0), 200)
    assert set(np.unique(drawn[:, 0, 0]).tolist()) == {1.0, 2.0, 3.0}
    buffer = replay_insert(buffer, pairs([4, 5, 6, 7]))  # wraps: 6, 7 overwrite 1, 2
    assert int(buffer.size) == 5 and int(buffer.next_index) == 2
    np.testing.assert_array_equal(buffer.pairs[:, 0, 0], [6, 7, 3, 4, 5])


def test_policy_batch_mixes_rollout_and_replay_only_when_replay_has_data() -> None:
    rollout = jnp.full((10, 2, 1), -1.0)
    empty = init_replay(capacity=8, feature_size=1)
    batch = mix_policy_batch(jax.random.PRNGKey(1), rollout, empty, 64, replay_fraction=1.0)
    assert np.all(np.asarray(batch) == -1.0)  # empty buffer: rollout only
    full = replay_insert(empty, jnp.full((8, 2, 1), 2.0))
    batch = mix_policy_batch(jax.random.PRNGKey(1), rollout, full, 4000, replay_fraction=0.25)
    share = float(jnp.mean(batch[:, 0, 0] == 2.0))
    assert share == pytest.approx(0.25, abs=0.03)


def test_discriminator_learns_smooth_data_from_jittery_random_transitions() -> None:
    key = jax.random.PRNGKey(0)
    k_data, k_policy, k_init = jax.random.split(key, 3)
    phase = jax.random.uniform(k_data, (512, 1)) * 2 * jnp.pi
    frame0 = jnp.concatenate([jnp.cos(phase), jnp.sin(phase)], axis=-1)
    frame1 = jnp.concatenate([jnp.cos(phase + 0.1), jnp.sin(phase + 0.1)], axis=-1)
    data = jnp.stack([frame0, frame1], axis=1)                       # smooth circle steps
    policy = jax.random.normal(k_policy, (512, 2, 2))                 # random jumps
    disc = make_discriminator((32, 32))
    params = disc.init(k_init, data[:1])
    opt = optax.adam(3e-3)
    opt_state = opt.init(params)

    @jax.jit
    def step(params, opt_state):
        (_, m), g = jax.value_and_grad(discriminator_loss, has_aux=True)(
            params, disc.apply, data, policy, 5.0, 0.01)
        updates, opt_state = opt.update(g, opt_state)
        return optax.apply_updates(params, updates), opt_state, m

    for _ in range(150):
        params, opt_state, metrics = step(params, opt_state)
    accuracy = 0.5 * (metrics["amp/data_accuracy"] + metrics["amp/policy_accuracy"])
    assert float(accuracy) > 0.85
    rewards_data = style_reward(disc.apply(params, data))
    rewards_policy = style_reward(disc.apply(params, policy))
    assert float(jnp.mean(rewards_data)) > float(jnp.mean(rewards_policy)) + 0.3


def _train_walk_discriminator(data: jax.Array, policy: jax.Array, steps: int = 300,
                              noise_std: float = 0.1) -> tuple[object, object]:
    """The walking presets' discriminator recipe (GP 10, instance noise) on fixed batches."""
    disc = make_discriminator((64, 64))
    params = disc.init(jax.random.PRNGKey(5), data[:1])
    opt = optax.adam(1e-3)
    opt_state = opt.init(params)

    @jax.jit
    def step(params, opt_state, key):
        k_data, k_policy, k_d, k_p = jax.random.split(key, 4)
        d = data[jax.random.randint(k_data, (256,), 0, data.shape[0])]
        p = policy[jax.random.randint(k_policy, (256,), 0, policy.shape[0])]
        d, p = add_input_noise(k_d, d, noise_std), add_input_noise(k_p, p, noise_std)
        (_, m), g = jax.value_and_grad(discriminator_loss, has_aux=True)(
            params, disc.apply, d, p, 10.0, 0.01)
        updates, opt_state = opt.update(g, opt_state)
        return optax.apply_updates(params, updates), opt_state

    for key in jax.random.split(jax.random.PRNGKey(6), steps):
        params, opt_state = step(params, opt_state, key)
    return disc, params


@pytest.fixture(scope="module")
def walk_pairs(tmp_path_factory: pytest.TempPathFactory) -> jax.Array:
    """Normalized transitions of analytic robot walks (the converted-dataset path)."""
    from amp_fixtures import write_synthetic_dataset

    import robots
    from amp.dataset import pair_distribution
    from amp.merge import read_merged

    path = write_synthetic_dataset(tmp_path_factory.mktemp("disc") / "m.h5",
                                   robots.load("wildrobot"), num_clips=4, duration_s=4.0)
    data = read_merged(path)
    starts, _ = pair_distribution(data.clip_length, data.clip_weight)
    pairs = np.stack([data.features[starts], data.features[starts + 1]], axis=1)
    std = np.maximum(data.std, 1e-2)
    return jnp.asarray((pairs - data.mean) / std, jnp.float32)


def test_data_against_replayed_data_stays_near_chance(walk_pairs: jax.Array) -> None:
    order = jax.random.permutation(jax.random.PRNGKey(0), walk_pairs.shape[0])
    half = walk_pairs.shape[0] // 2
    data, replayed = walk_pairs[order[:half]], walk_pairs[order[half:]]
    disc, params = _train_walk_discriminator(data, replayed)
    metrics = separability(params, disc.apply, data, replayed)
    assert 0.4 <= float(metrics["amp/balanced_accuracy"]) <= 0.62
    # Same distribution: nothing to rely on, and the style reward of both stays alike.
    assert all(abs(float(v)) < 0.1 for k, v in metrics.items() if "reliance" in k)
    data_style = float(jnp.mean(style_reward(disc.apply(params, data))))
    replay_style = float(jnp.mean(style_reward(disc.apply(params, replayed))))
    assert abs(data_style - replay_style) < 0.1


def test_standing_policy_is_separated_and_data_keeps_a_high_style_reward(
        walk_pairs: jax.Array) -> None:
    # A standing policy: every transition is the data's mean frame, with a little jitter.
    standing = 0.05 * jax.random.normal(jax.random.PRNGKey(2), (2048, 2, 29))
    disc, params = _train_walk_discriminator(walk_pairs, standing)
    metrics = separability(params, disc.apply, walk_pairs, standing)
    assert float(metrics["amp/balanced_accuracy"]) > 0.9
    assert float(jnp.mean(style_reward(disc.apply(params, walk_pairs)))) > 0.6
    assert float(jnp.mean(style_reward(disc.apply(params, standing)))) < 0.3
    # The two differ in every moving group; the means are 0 for the policy by construction.
    assert float(metrics["amp/fisher/joint_pos"]) < float(metrics["amp/fisher/joint_vel"]) + 10


def test_separability_names_the_group_that_tells_them_apart() -> None:
    key = jax.random.PRNGKey(3)
    data = jax.random.normal(key, (1024, 2, 29))
    policy = data.at[..., 24].add(3.0)  # only the root height differs, by 3 sigma
    layer_w = jnp.zeros(58).at[24].set(-1.0).at[24 + 29].set(-1.0)
    params = {"params": {"logit": {"kernel": layer_w[:, None], "bias": jnp.array([3.0])}}}
    metrics = separability(params, linear_logits, data, policy)
    assert float(metrics["amp/balanced_accuracy"]) > 0.9
    assert float(metrics["amp/reliance/root_height"]) > 0.35
    assert abs(float(metrics["amp/reliance/joint_pos"])) < 0.02
    assert float(metrics["amp/fisher/root_height"]) == pytest.approx(4.5, rel=0.15)  # 9/2
    assert float(metrics["amp/fisher/joint_pos"]) < 0.01
