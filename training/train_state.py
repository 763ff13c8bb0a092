"""All training state in one pytree, the networks and optimizers that act on it, and its init.

The actor-critic optimizer is ``clip_by_global_norm → scale_by_adam`` and the step is scaled by
the learning rate held in the state (``TrainState.learning_rate``), so the KL-adaptive rule can
change it inside the jitted iteration without rebuilding the optimizer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import flax.struct
import jax
import jax.numpy as jnp
import optax

from training.config import TrainConfig
from training.discriminator import ReplayBuffer, init_replay
from training.networks import ValueNetwork, make_value
from training.normalization import RunningStats, init_stats
from training.policy import PolicyNetwork, StyleNetwork, policy_network, style_network

if TYPE_CHECKING:
    from training.envs.base import Env


@flax.struct.dataclass
class TrainState:
    """Everything that changes during training (and goes into a checkpoint).

    Attributes:
        params: ``{"policy": …, "value": …}``.
        opt_state: Actor-critic optimizer state.
        learning_rate: [] current actor-critic learning rate.
        disc_params: Discriminator parameters.
        disc_opt_state: Discriminator optimizer state.
        obs_stats: Policy observation normalizer.
        critic_obs_stats: Critic observation normalizer (privileged or policy observation).
        amp_stats: AMP frame normalizer (over data and policy frames).
        replay: Policy-transition replay buffer.
        env_state: Batched environment state, leading axis ``num_envs``.
        rng: PRNG key (raw uint32[2]).
        iteration: [] int32 iterations completed.
    """

    params: dict[str, Any]
    opt_state: Any
    learning_rate: jax.Array
    disc_params: Any
    disc_opt_state: Any
    obs_stats: RunningStats
    critic_obs_stats: RunningStats
    amp_stats: RunningStats
    replay: ReplayBuffer
    env_state: Any
    rng: jax.Array
    iteration: jax.Array


@dataclass(frozen=True)
class Networks:
    """The networks and optimizers of one run (static, hashable). The policy and the
    discriminator are the inference networks of :mod:`training.policy`, so training and
    inference run the same ones."""

    policy: PolicyNetwork
    value: ValueNetwork
    discriminator: StyleNetwork
    optimizer: optax.GradientTransformation
    disc_optimizer: optax.GradientTransformation
    critic_uses_privileged: bool


def make_networks(config: TrainConfig, env: Env) -> Networks:
    """Modules and optimizers for ``env``'s sizes; the critic reads the privileged observation
    when the environment provides one (asymmetric actor-critic)."""
    optimizer = optax.chain(optax.clip_by_global_norm(config.ppo.max_grad_norm),
                            optax.scale_by_adam())
    disc_optimizer = optax.chain(optax.clip_by_global_norm(config.amp.max_grad_norm),
                                 optax.adam(config.amp.learning_rate))
    return Networks(
        policy=policy_network(config, env.action_size),
        value=make_value(config.network),
        discriminator=style_network(config),
        optimizer=optimizer,
        disc_optimizer=disc_optimizer,
        critic_uses_privileged=env.privileged_observation_size > 0,
    )


def critic_observation_size(env: Env) -> int:
    if env.privileged_observation_size > 0:
        return env.privileged_observation_size
    return env.observation_size


def init_train_state(config: TrainConfig, env: Env, networks: Networks) -> TrainState:
    """Fresh parameters, optimizer states, normalizers, replay buffer and reset environments,
    all drawn from ``config.seed``."""
    rng = jax.random.PRNGKey(config.seed)
    rng, k_policy, k_value, k_disc, k_env = jax.random.split(rng, 5)
    obs = jnp.zeros((1, env.observation_size))
    critic_obs = jnp.zeros((1, critic_observation_size(env)))
    pair = jnp.zeros((1, 2, env.amp_feature_size))
    params = {"policy": networks.policy.init(k_policy, obs),
              "value": networks.value.init(k_value, critic_obs)}
    disc_params = networks.discriminator.init(k_disc, pair)
    env_keys = jax.random.split(k_env, config.ppo.num_envs)
    env_state = jax.vmap(env.reset)(env_keys)
    return TrainState(
        params=params,
        opt_state=networks.optimizer.init(params),
        learning_rate=jnp.asarray(config.ppo.learning_rate, jnp.float32),
        disc_params=disc_params,
        disc_opt_state=networks.disc_optimizer.init(disc_params),
        obs_stats=init_stats(env.observation_size),
        critic_obs_stats=init_stats(critic_observation_size(env)),
        amp_stats=init_stats(env.amp_feature_size),
        replay=init_replay(config.amp.replay_size, env.amp_feature_size),
        env_state=env_state,
        rng=rng,
        iteration=jnp.zeros((), jnp.int32),
    )
