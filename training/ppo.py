"""PPO as pure functions: GAE, the clipped losses, the KL-adaptive learning rate.

Time-limit truncation: when an episode ends by the time limit (``info["truncated"]``) the
environment has already reset, so the value of the state it was cut in is unknown. That step
gets no TD error (advantage 0, value target = its own value) and cuts the λ-trace; the step
before it bootstraps from the value of the last real state. A fall (done, not truncated) is
terminal: no bootstrap.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from training.config import PPOConfig


class GaeResult(NamedTuple):
    advantages: jax.Array
    returns: jax.Array


def compute_gae(rewards: jax.Array, values: jax.Array, bootstrap_value: jax.Array,
                done: jax.Array, truncated: jax.Array, discount: float,
                gae_lambda: float) -> GaeResult:
    """Generalized advantage estimation over a rollout.

    Args:
        rewards: [T, N] reward of each step.
        values: [T, N] V(s_t) of the state each step started from.
        bootstrap_value: [N] V of the state after the last step.
        done: [T, N] 1.0 where the episode ended at this step (fall or time limit).
        truncated: [T, N] 1.0 where it ended by the time limit.
        discount: γ.
        gae_lambda: λ.
    Returns:
        advantages [T, N] and value targets (returns) [T, N].
    """
    termination = done * (1.0 - truncated)
    keep = 1.0 - truncated
    next_values = jnp.concatenate([values[1:], bootstrap_value[None]], axis=0)
    deltas = (rewards + discount * (1.0 - termination) * next_values - values) * keep
    decay = discount * gae_lambda * (1.0 - termination) * keep

    def backward(acc: jax.Array, step: tuple[jax.Array, jax.Array]) -> tuple[jax.Array, jax.Array]:
        delta, step_decay = step
        acc = delta + step_decay * acc
        return acc, acc

    _, advantages = jax.lax.scan(backward, jnp.zeros_like(bootstrap_value), (deltas, decay),
                                 reverse=True)
    return GaeResult(advantages, advantages + values)


class PPOTerms(NamedTuple):
    """Per-sample quantities of one minibatch, every array [M]."""

    log_prob: jax.Array
    old_log_prob: jax.Array
    advantages: jax.Array
    values: jax.Array
    old_values: jax.Array
    returns: jax.Array
    entropy: jax.Array


def ppo_loss_from_terms(terms: PPOTerms,
                        config: PPOConfig) -> tuple[jax.Array, dict[str, jax.Array]]:
    """Clipped surrogate + clipped value loss − entropy bonus.

    loss = −mean(min(ρA, clip(ρ, 1±ε)A)) + c_v·½·mean(max((V−R)², (V_clip−R)²)) − c_e·mean(H)
    with ρ = exp(logπ − logπ_old), V_clip = V_old + clip(V − V_old, ±ε_v); A is standardized
    over the minibatch when ``config.normalize_advantage``.
    """
    adv = terms.advantages
    if config.normalize_advantage:
        adv = (adv - jnp.mean(adv)) / (jnp.std(adv) + 1e-8)
    ratio = jnp.exp(terms.log_prob - terms.old_log_prob)
    clipped_ratio = jnp.clip(ratio, 1.0 - config.clip_epsilon, 1.0 + config.clip_epsilon)
    policy_loss = -jnp.mean(jnp.minimum(ratio * adv, clipped_ratio * adv))
    value_clipped = terms.old_values + jnp.clip(terms.values - terms.old_values,
                                                -config.value_clip_epsilon,
                                                config.value_clip_epsilon)
    value_loss = 0.5 * jnp.mean(jnp.maximum((terms.values - terms.returns) ** 2,
                                            (value_clipped - terms.returns) ** 2))
    entropy = jnp.mean(terms.entropy)
    loss = policy_loss + config.value_loss_coef * value_loss - config.entropy_coef * entropy
    metrics = {
        "ppo/policy_loss": policy_loss,
        "ppo/value_loss": value_loss,
        "ppo/entropy": entropy,
        "ppo/clip_fraction": jnp.mean((jnp.abs(ratio - 1.0) > config.clip_epsilon)
                                      .astype(jnp.float32)),
        "ppo/total_loss": loss,
    }
    return loss, metrics


def adapt_learning_rate(lr: jax.Array, kl: jax.Array, config: PPOConfig) -> jax.Array:
    """KL-target rule: divide by 1.5 above 2·target, multiply by 1.5 below target/2, clamp."""
    lr = jnp.where(kl > 2.0 * config.desired_kl, lr / 1.5, lr)
    lr = jnp.where(kl < 0.5 * config.desired_kl, lr * 1.5, lr)
    return jnp.clip(lr, config.min_learning_rate, config.max_learning_rate)


def scheduled_learning_rate(iteration: jax.Array, config: PPOConfig,
                            num_iterations: int) -> jax.Array:
    """Learning rate at the start of an iteration for the non-adaptive schedules."""
    if config.lr_schedule == "linear":
        frac = 1.0 - iteration.astype(jnp.float32) / num_iterations
        return jnp.asarray(config.learning_rate, jnp.float32) * jnp.maximum(frac, 0.0)
    return jnp.asarray(config.learning_rate, jnp.float32)
