"""AMP discriminator: least-squares loss with gradient penalty, style reward, replay buffer.

Loss (AMP, Peng et al. 2021, least-squares GAN form), on normalized transition pairs:

    L = E_data[(D − 1)²] + E_policy[(D + 1)²] + (w_gp / 2)·E_data[‖∇_x D(x)‖²]
        + λ_logit·‖W_logit‖²

Style reward of a policy transition: r = max(0, 1 − ¼(D − 1)²), so r = 1 at D = +1 (looks like
data) and r = 0 at D ≤ −1.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import flax.struct
import jax
import jax.numpy as jnp

from amp.features import FEATURE_LAYOUT
from training.networks import LOGIT_LAYER

LogitFn = Callable[[Any, jax.Array], jax.Array]
"""(discriminator params, normalized pairs [..., 2, F]) → logits [...]."""


def style_reward(logits: jax.Array) -> jax.Array:
    """max(0, 1 − ¼(d − 1)²) elementwise."""
    return jnp.maximum(0.0, 1.0 - 0.25 * (logits - 1.0) ** 2)


def logit_weight_norm(params: Any) -> jax.Array:
    """Squared L2 norm of the logit layer's kernel (found by its layer name, wherever nested)."""
    total = jnp.zeros((), jnp.float32)
    for path, leaf in jax.tree_util.tree_flatten_with_path(params)[0]:
        names = [getattr(k, "key", None) for k in path]
        if LOGIT_LAYER in names and names[-1] == "kernel":
            total = total + jnp.sum(leaf**2)
    return total


def discriminator_loss(params: Any, logit_fn: LogitFn, data_pairs: jax.Array,
                       policy_pairs: jax.Array, grad_penalty_weight: float,
                       logit_weight_decay: float) -> tuple[jax.Array, dict[str, jax.Array]]:
    """The loss above on one minibatch.

    Args:
        params: Discriminator parameters.
        logit_fn: Applies the discriminator.
        data_pairs: [B, 2, F] normalized reference transitions.
        policy_pairs: [B', 2, F] normalized policy transitions.
    Returns:
        (loss, metrics) with accuracies, mean logits and the gradient penalty.
    """
    # One forward pass gives the data logits and, through its VJP, d logit / d input.
    data_logits, input_vjp = jax.vjp(lambda x: logit_fn(params, x), data_pairs)
    (data_grad,) = input_vjp(jnp.ones_like(data_logits))
    policy_logits = logit_fn(params, policy_pairs)
    data_loss = jnp.mean((data_logits - 1.0) ** 2)
    policy_loss = jnp.mean((policy_logits + 1.0) ** 2)
    grad_sq = jnp.sum(data_grad.reshape(data_grad.shape[0], -1) ** 2, axis=-1)
    grad_penalty = jnp.mean(grad_sq)
    logit_reg = logit_weight_norm(params)
    loss = (data_loss + policy_loss + 0.5 * grad_penalty_weight * grad_penalty
            + logit_weight_decay * logit_reg)
    metrics = {
        "amp/disc_loss": loss,
        "amp/data_accuracy": jnp.mean((data_logits > 0).astype(jnp.float32)),
        "amp/policy_accuracy": jnp.mean((policy_logits < 0).astype(jnp.float32)),
        "amp/data_logit_mean": jnp.mean(data_logits),
        "amp/policy_logit_mean": jnp.mean(policy_logits),
        "amp/grad_penalty": grad_penalty,
        "amp/logit_weight_norm": logit_reg,
    }
    return loss, metrics


def add_input_noise(rng: jax.Array, pairs_n: jax.Array, std: float) -> jax.Array:
    """Instance noise: Gaussian noise of ``std`` (normalized units) on discriminator inputs.

    Blurs the two distributions by the same amount so their supports overlap and the
    discriminator cannot draw an arbitrarily sharp boundary (Sønderby et al. 2017; Arjovsky &
    Bottou 2017). Used for the discriminator's training inputs only, never for the reward.
    """
    if std <= 0.0:
        return pairs_n
    return pairs_n + std * jax.random.normal(rng, pairs_n.shape, pairs_n.dtype)


def separability(params: Any, logit_fn: LogitFn, data_pairs: jax.Array,
                 policy_pairs: jax.Array) -> dict[str, jax.Array]:
    """What tells data from policy, per feature group (``amp.features.FEATURE_LAYOUT``).

    For each group, on normalized pairs [B, 2, F] of both kinds:

    - ``amp/fisher/<group>``: mean over the group's numbers (both frames of the pair) of
      (μ_data − μ_policy)² / (σ²_data + σ²_policy): how far apart the marginals are;
    - ``amp/reliance/<group>``: the discriminator's balanced accuracy minus its accuracy when
      that group is replaced by 0 (the normalizer mean) in both kinds: how much it uses it.

    Returns:
        Those metrics plus ``amp/balanced_accuracy`` [] each.
    """
    def accuracy(data_x: jax.Array, policy_x: jax.Array) -> jax.Array:
        return 0.5 * (jnp.mean(logit_fn(params, data_x) > 0)
                      + jnp.mean(logit_fn(params, policy_x) < 0))

    full = accuracy(data_pairs, policy_pairs)
    metrics = {"amp/balanced_accuracy": full}
    for group in FEATURE_LAYOUT:
        part = group.as_slice()
        d, p = data_pairs[..., part], policy_pairs[..., part]
        gap = (jnp.mean(d, axis=0) - jnp.mean(p, axis=0)) ** 2
        spread = jnp.var(d, axis=0) + jnp.var(p, axis=0) + 1e-6
        metrics[f"amp/fisher/{group.name}"] = jnp.mean(gap / spread)
        masked = accuracy(data_pairs.at[..., part].set(0.0), policy_pairs.at[..., part].set(0.0))
        metrics[f"amp/reliance/{group.name}"] = full - masked
    return metrics


@flax.struct.dataclass
class ReplayBuffer:
    """Ring buffer of past policy transitions.

    Attributes:
        pairs: [capacity, 2, F] raw (unnormalized) AMP frame pairs.
        next_index: [] int32 slot the next insert starts at.
        size: [] int32 slots filled so far (≤ capacity).
    """

    pairs: jax.Array
    next_index: jax.Array
    size: jax.Array

    @property
    def capacity(self) -> int:
        return self.pairs.shape[0]


def init_replay(capacity: int, feature_size: int) -> ReplayBuffer:
    return ReplayBuffer(jnp.zeros((capacity, 2, feature_size), jnp.float32),
                        jnp.zeros((), jnp.int32), jnp.zeros((), jnp.int32))


def replay_insert(buffer: ReplayBuffer, pairs: jax.Array) -> ReplayBuffer:
    """Write ``pairs`` [K, 2, F] (K ≤ capacity) at the ring position, overwriting the oldest."""
    k = pairs.shape[0]
    slots = (buffer.next_index + jnp.arange(k, dtype=jnp.int32)) % buffer.capacity
    return ReplayBuffer(buffer.pairs.at[slots].set(pairs),
                        (buffer.next_index + k) % buffer.capacity,
                        jnp.minimum(buffer.size + k, buffer.capacity))


def replay_sample(buffer: ReplayBuffer, rng: jax.Array, batch_size: int) -> jax.Array:
    """``batch_size`` pairs drawn uniformly (with replacement) from the filled part; [B, 2, F].

    An empty buffer yields slot 0 (zeros); callers mask those draws out.
    """
    index = jax.random.randint(rng, (batch_size,), 0, jnp.maximum(buffer.size, 1))
    return buffer.pairs[index]


def mix_policy_batch(rng: jax.Array, rollout_pairs: jax.Array, buffer: ReplayBuffer,
                     batch_size: int, replay_fraction: float) -> jax.Array:
    """A policy minibatch [B, 2, F]: each draw comes from the replay buffer with probability
    ``replay_fraction`` (never while it is empty), otherwise from the current rollout.

    Args:
        rollout_pairs: [M, 2, F] current-rollout transitions.
    """
    rng_rollout, rng_replay, rng_choice = jax.random.split(rng, 3)
    index = jax.random.randint(rng_rollout, (batch_size,), 0, rollout_pairs.shape[0])
    from_rollout = rollout_pairs[index]
    from_replay = replay_sample(buffer, rng_replay, batch_size)
    use_replay = jax.random.uniform(rng_choice, (batch_size,)) < replay_fraction
    use_replay = use_replay & (buffer.size > 0)
    return jnp.where(use_replay[:, None, None], from_replay, from_rollout)
