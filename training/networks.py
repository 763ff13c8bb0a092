"""Actor, critic and discriminator MLPs (flax.linen), and the Gaussian policy's distribution math.

The policy is a diagonal Gaussian whose mean comes from an MLP and whose log standard deviation
is a state-independent learned vector (``log_std``), clamped to a configured range. No tanh
squashing: the log-probability is that of the raw sample, and the environment receives the
sample clipped to ``±action_clip``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from training.config import NetworkConfig

_ACTIVATIONS: dict[str, Callable[[jax.Array], jax.Array]] = {
    "elu": nn.elu, "relu": nn.relu, "tanh": jnp.tanh, "swish": nn.swish,
}
LOGIT_LAYER = "logit"


class MLP(nn.Module):
    """Hidden Dense layers with an activation, then a linear output layer.

    Attributes:
        hidden: Widths of the hidden layers.
        out_size: Width of the output layer.
        activation: Name in ``_ACTIVATIONS``.
        out_scale: Scale of the output layer's initial weights (small for policy means).
        out_name: Name of the output layer's parameters.
    """

    hidden: Sequence[int]
    out_size: int
    activation: str = "elu"
    out_scale: float = 1.0
    out_name: str = "out"

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        act = _ACTIVATIONS[self.activation]
        for width in self.hidden:
            x = act(nn.Dense(width, kernel_init=nn.initializers.orthogonal(math.sqrt(2)))(x))
        init = nn.initializers.orthogonal(self.out_scale)
        return nn.Dense(self.out_size, kernel_init=init, name=self.out_name)(x)


class GaussianPolicy(nn.Module):
    """Obs [..., obs_size] → (mean [..., action_size], log_std [action_size])."""

    hidden: Sequence[int]
    action_size: int
    activation: str
    init_log_std: float

    @nn.compact
    def __call__(self, obs: jax.Array) -> tuple[jax.Array, jax.Array]:
        mean = MLP(self.hidden, self.action_size, self.activation, out_scale=0.01)(obs)
        log_std = self.param("log_std", nn.initializers.constant(self.init_log_std),
                             (self.action_size,))
        return mean, log_std


class ValueNetwork(nn.Module):
    """Critic input [..., size] → value [...]."""

    hidden: Sequence[int]
    activation: str

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        return MLP(self.hidden, 1, self.activation, out_scale=1.0)(x)[..., 0]


class Discriminator(nn.Module):
    """Normalized transition pair [..., 2, F] → logit d [...]; ReLU MLP, logit layer ``logit``."""

    hidden: Sequence[int]

    @nn.compact
    def __call__(self, pair: jax.Array) -> jax.Array:
        x = pair.reshape(*pair.shape[:-2], -1)
        return MLP(self.hidden, 1, "relu", out_scale=1.0, out_name=LOGIT_LAYER)(x)[..., 0]


def make_policy(config: NetworkConfig, action_size: int) -> GaussianPolicy:
    return GaussianPolicy(tuple(config.policy_hidden), action_size, config.activation,
                          math.log(config.init_action_std))


def make_value(config: NetworkConfig) -> ValueNetwork:
    return ValueNetwork(tuple(config.value_hidden), config.activation)


def make_discriminator(hidden: Sequence[int]) -> Discriminator:
    return Discriminator(tuple(hidden))


def clamp_log_std(log_std: jax.Array, config: NetworkConfig,
                  iteration: jax.Array | None = None) -> jax.Array:
    """Clamp the learned log std to [log(min_action_std), upper], ``upper`` the log of
    :func:`max_action_std` at ``iteration`` (``max_action_std`` when None)."""
    upper = jnp.log(max_action_std(config, iteration))
    return jnp.clip(log_std, math.log(config.min_action_std), upper)


def max_action_std(config: NetworkConfig, iteration: jax.Array | None = None) -> jax.Array:
    """The upper clamp of the action std at ``iteration`` []: ``max_action_std``, falling
    geometrically to ``final_max_action_std`` over ``anneal_iterations``."""
    high = jnp.asarray(config.max_action_std, jnp.float32)
    if config.final_max_action_std is None or iteration is None:
        return high
    progress = window_progress(iteration, config.anneal_iterations)
    return high * (config.final_max_action_std / config.max_action_std) ** progress


def window_progress(iteration: jax.Array, window: tuple[int, int]) -> jax.Array:
    """How far ``iteration`` is through ``window = (start, end)`` []: 0 up to ``start``,
    rising linearly to 1 at ``end``, 1 after (the shape of every training schedule)."""
    start, end = window
    return jnp.clip((iteration - start) / (end - start), 0.0, 1.0)


def gaussian_log_prob(action: jax.Array, mean: jax.Array, log_std: jax.Array) -> jax.Array:
    """Log density of a diagonal Gaussian, summed over the last axis: [..., A] → [...]."""
    z = (action - mean) * jnp.exp(-log_std)
    return jnp.sum(-0.5 * z**2 - log_std - 0.5 * math.log(2 * math.pi), axis=-1)


def gaussian_entropy(log_std: jax.Array) -> jax.Array:
    """Entropy of a diagonal Gaussian [nats]; log_std [..., A] → [...]."""
    return jnp.sum(log_std + 0.5 * math.log(2 * math.pi * math.e), axis=-1)


def gaussian_kl(mean_p: jax.Array, log_std_p: jax.Array,
                mean_q: jax.Array, log_std_q: jax.Array) -> jax.Array:
    """KL(p ‖ q) of two diagonal Gaussians, summed over the last axis: [..., A] → [...]."""
    var_p, var_q = jnp.exp(2 * log_std_p), jnp.exp(2 * log_std_q)
    return jnp.sum(log_std_q - log_std_p + (var_p + (mean_p - mean_q) ** 2) / (2 * var_q) - 0.5,
                   axis=-1)
