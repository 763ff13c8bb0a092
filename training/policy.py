"""The policy and the style scorer as things to run, during training and after it.

The inference functions are pure functions of (parameters, normalizer statistics, network),
as Brax's ``make_inference_fn``: :func:`policy_distribution` and :func:`style_rewards` are what
the trainer's iteration (:mod:`training.iteration`) computes with, and :func:`make_inference_fn`
/ :func:`make_style_fn` give the deterministic policy and the style reward of any such triple.
A :class:`PolicyNetwork` / :class:`StyleNetwork` is the static part: the flax module with the
clips and bounds applied around it.

:func:`load_snapshot` reads only what inference needs from a checkpoint (policy parameters, the
observation normalizer, the discriminator and its AMP-frame normalizer), by the leaf paths the
trainer records in ``meta.json``, so neither the replay buffer nor the environment batch is
loaded. Evaluation, rendering and export run the snapshot through the same functions and
networks as training, so they see exactly what training optimized.

A policy here is ``PolicyFn(obs [B, O], key) -> action [B, A]``, pure JAX (jit-able): the
checkpoint's deterministic mean action, or a baseline (:func:`zero_policy`,
:func:`random_policy`), so evaluation can compare against either.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jax
import jax.numpy as jnp
import numpy as np

from amp.features import FEATURE_DIM
from training import checkpoint as ckpt
from training.config import NetworkConfig, TrainConfig, config_from_dict, load_env
from training.discriminator import style_reward
from training.networks import (
    Discriminator,
    GaussianPolicy,
    clamp_log_std,
    make_discriminator,
    make_policy,
)
from training.normalization import RunningStats, init_stats, normalize

if TYPE_CHECKING:
    from training.envs.base import Env

PolicyFn = Callable[[jax.Array, jax.Array], jax.Array]
"""(observations [B, O], PRNG key) -> actions [B, A] as handed to the environment."""
StyleFn = Callable[[jax.Array], jax.Array]
"""AMP transition pairs [B, 2, 29] (raw frames) -> style reward [B] in [0, 1]."""

POLICY_PREFIX = ".params['policy']"
OBS_STATS_PREFIX = ".obs_stats"
DISC_PREFIX = ".disc_params"
AMP_STATS_PREFIX = ".amp_stats"
"""Where the trainer's ``TrainState`` keeps each part (``jax.tree_util.keystr`` of the path)."""


@dataclass(frozen=True)
class PolicyNetwork:
    """The Gaussian policy as training and inference run it (static, hashable).

    Attributes:
        module: The MLP: normalized observations [..., O] -> (mean [..., A], log_std [A]).
        config: Its network settings (activation; the log-std clamp range).
        obs_clip: Normalized observations are clipped to ±obs_clip.
        action_clip: Actions are clipped to ±action_clip when handed to the environment.
    """

    module: GaussianPolicy
    config: NetworkConfig
    obs_clip: float
    action_clip: float

    def init(self, rng: jax.Array, obs: jax.Array) -> Any:
        """Fresh parameters for observations shaped like ``obs`` [1, O]."""
        return self.module.init(rng, obs)


def policy_network(config: TrainConfig, action_size: int,
                   action_clip: float | None = None) -> PolicyNetwork:
    """The policy network of ``config`` (``action_clip``: default ``config.ppo.action_clip``)."""
    clip = config.ppo.action_clip if action_clip is None else action_clip
    return PolicyNetwork(make_policy(config.network, action_size), config.network,
                         config.ppo.obs_clip, clip)


def policy_distribution(network: PolicyNetwork, params: Any, obs_stats: RunningStats,
                        obs: jax.Array, iteration: jax.Array | None = None
                        ) -> tuple[jax.Array, jax.Array]:
    """(mean [..., A], clamped log_std [A]) of the Gaussian policy for raw observations
    ``obs`` [..., O]; ``iteration`` [] sets the clamp of an annealed noise (see
    ``NetworkConfig.final_max_action_std``)."""
    obs_n = normalize(obs_stats, obs, network.obs_clip)
    mean, log_std = network.module.apply(params, obs_n)
    return mean, clamp_log_std(log_std, network.config, iteration)


def make_inference_fn(network: PolicyNetwork) -> Callable[[Any, RunningStats], PolicyFn]:
    """``make_policy(params, obs_stats) -> PolicyFn``: the deterministic policy (the mean
    action, clipped to ``network.action_clip``; the key is ignored)."""

    def make_policy_fn(params: Any, obs_stats: RunningStats) -> PolicyFn:
        def act(obs: jax.Array, key: jax.Array | None = None) -> jax.Array:
            mean, _ = policy_distribution(network, params, obs_stats, obs)
            return jnp.clip(mean, -network.action_clip, network.action_clip)

        return act

    return make_policy_fn


@dataclass(frozen=True)
class StyleNetwork:
    """The discriminator as the style reward runs it (static, hashable).

    Attributes:
        module: The MLP: normalized transition pairs [..., 2, F] -> logit [...].
        normalizer_clip: Normalized AMP frames are clipped to ±normalizer_clip.
    """

    module: Discriminator
    normalizer_clip: float

    def init(self, rng: jax.Array, pairs: jax.Array) -> Any:
        """Fresh parameters for transition pairs shaped like ``pairs`` [1, 2, F]."""
        return self.module.init(rng, pairs)

    def apply(self, params: Any, pairs_n: jax.Array) -> jax.Array:
        """Logits [...] of normalized pairs [..., 2, F]."""
        return self.module.apply(params, pairs_n)


def style_network(config: TrainConfig) -> StyleNetwork:
    """The discriminator network of ``config``."""
    return StyleNetwork(make_discriminator(config.amp.hidden), config.amp.normalizer_clip)


def style_rewards(network: StyleNetwork, disc_params: Any, amp_stats: RunningStats,
                  amp_pairs: jax.Array) -> jax.Array:
    """Style reward max(0, 1 - (D - 1)^2 / 4) of raw AMP pairs [T, N, 2, F] -> [T, N], one
    leading index at a time (bounded memory for large batches)."""

    def per_step(pairs: jax.Array) -> jax.Array:
        pairs_n = normalize(amp_stats, pairs, network.normalizer_clip)
        return style_reward(network.apply(disc_params, pairs_n))

    return jax.lax.map(per_step, amp_pairs)


def make_style_fn(network: StyleNetwork) -> Callable[[Any, RunningStats], StyleFn]:
    """``make_style(disc_params, amp_stats) -> StyleFn``: pairs [B, 2, F] -> reward [B]."""

    def make_style(disc_params: Any, amp_stats: RunningStats) -> StyleFn:
        def score(pairs: jax.Array) -> jax.Array:
            return style_rewards(network, disc_params, amp_stats, pairs[None])[0]

        return score

    return make_style


@dataclass
class PolicySnapshot:
    """The inference part of one checkpoint.

    Attributes:
        path: The checkpoint directory (``…/checkpoints/iter_NNNNNNNN``).
        meta: Its ``meta.json`` (config, dataset hash, iteration, leaf records).
        config: The training config.
        env: The training environment, built from the checkpoint's config.
        observation_size, action_size: Policy input and output widths.
        policy_params: Flax parameters of the Gaussian policy.
        obs_stats: Observation normalizer.
        disc_params: Discriminator parameters.
        amp_stats: AMP-frame normalizer of the discriminator.
    """

    path: Path
    meta: dict[str, Any]
    config: TrainConfig
    env: Env
    observation_size: int
    action_size: int
    policy_params: Any
    obs_stats: RunningStats
    disc_params: Any
    amp_stats: RunningStats

    @property
    def iteration(self) -> int:
        return int(self.meta.get("iteration", -1))

    @property
    def dataset_sha256(self) -> str | None:
        return self.meta.get("dataset", {}).get("content_sha256")

    @property
    def action_clip(self) -> float:
        """The tighter of the trainer's clip and the environment's own (the env applies both)."""
        env_clip = float(getattr(self.env.config, "action_clip", math.inf))
        return min(float(self.config.ppo.action_clip), env_clip)

    @property
    def policy_network(self) -> PolicyNetwork:
        """The training policy network, clipping to :attr:`action_clip`."""
        return policy_network(self.config, self.action_size, self.action_clip)

    @property
    def style_network(self) -> StyleNetwork:
        return style_network(self.config)


def resolve_checkpoint(path: str | Path) -> Path:
    """A checkpoint directory from a checkpoint, a ``checkpoints/`` folder or a run directory
    (the newest checkpoint in the latter two).

    A named checkpoint is used as is (and refused by :func:`load_snapshot` when damaged); in
    a folder, damaged or non-finite newer checkpoints are skipped with a warning naming them.

    Raises:
        training.checkpoint.CheckpointError: nothing that looks like a checkpoint, or no
            usable one.
    """
    path = Path(path)
    if (path / ckpt.META_FILE).exists() or path.name.startswith(ckpt.PREFIX):
        return path
    for folder in (path, path / "checkpoints"):
        if ckpt.list_checkpoints(folder):
            return ckpt.require_good_checkpoint(folder)
    raise ckpt.CheckpointError(f"{path}: no checkpoint here (expected a directory with "
                               f"{ckpt.META_FILE}, a checkpoints/ folder or a run directory)")


def read_checkpoint_config(meta: dict[str, Any]) -> TrainConfig:
    """The :class:`TrainConfig` recorded in a checkpoint's metadata."""
    return config_from_dict(meta["config"])


def load_snapshot(path: str | Path, env: Env | None = None) -> PolicySnapshot:
    """Load the inference part of a checkpoint (see the module docstring).

    Args:
        path: Checkpoint, ``checkpoints/`` folder or run directory.
        env: The environment to pair with it; default: built from the checkpoint's config.
    Raises:
        training.checkpoint.CheckpointError: missing files, or leaves whose shapes do not fit
            the recorded config.
    """
    path = resolve_checkpoint(path)
    meta = ckpt.verify_checkpoint(path)  # checksums and finite values: never export NaN
    config = read_checkpoint_config(meta)
    records = {record["path"]: (index, record) for index, record in enumerate(meta["leaves"])}
    observation_size = _recorded_shape(records, OBS_STATS_PREFIX + ".mean", path)[0]
    action_size = _recorded_shape(records, POLICY_PREFIX + "['params']['log_std']", path)[0]
    policy = policy_network(config, action_size)
    discriminator = style_network(config)
    key = jax.random.PRNGKey(0)
    templates = {
        POLICY_PREFIX: jax.eval_shape(policy.init, key, jnp.zeros((1, observation_size))),
        OBS_STATS_PREFIX: init_stats(observation_size),
        DISC_PREFIX: jax.eval_shape(discriminator.init, key, jnp.zeros((1, 2, FEATURE_DIM))),
        AMP_STATS_PREFIX: init_stats(FEATURE_DIM),
    }
    with np.load(path / ckpt.STATE_FILE) as stored:
        parts = {prefix: _read_subtree(stored, records, prefix, template, path)
                 for prefix, template in templates.items()}
    return PolicySnapshot(
        path=path, meta=meta, config=config, env=env if env is not None else load_env(config),
        observation_size=observation_size, action_size=action_size,
        policy_params=parts[POLICY_PREFIX], obs_stats=parts[OBS_STATS_PREFIX],
        disc_params=parts[DISC_PREFIX], amp_stats=parts[AMP_STATS_PREFIX])


def _recorded_shape(records: dict[str, tuple[int, dict[str, Any]]], name: str,
                    path: Path) -> tuple[int, ...]:
    if name not in records:
        raise ckpt.CheckpointError(f"{path}: no state leaf {name}; is this an AMP+PPO "
                                   "training checkpoint?")
    return tuple(records[name][1]["shape"])


def _read_subtree(stored: Any, records: dict[str, tuple[int, dict[str, Any]]], prefix: str,
                  template: Any, path: Path) -> Any:
    """The leaves of ``template`` read from the checkpoint at ``prefix + <leaf path>``."""
    flat, treedef = jax.tree_util.tree_flatten_with_path(template)
    leaves = []
    for key_path, like in flat:
        name = prefix + jax.tree_util.keystr(key_path)
        shape = _recorded_shape(records, name, path)
        if shape != tuple(like.shape):
            raise ckpt.CheckpointError(f"{path}: leaf {name} has shape {shape}, the recorded "
                                       f"config implies {tuple(like.shape)}")
        index = records[name][0]
        leaves.append(jnp.asarray(stored[f"leaf_{index:05d}"], like.dtype))
    return jax.tree_util.tree_unflatten(treedef, leaves)


def deterministic_policy(snapshot: PolicySnapshot) -> PolicyFn:
    """The checkpoint's mean action (observation normalization included), clipped to
    :attr:`PolicySnapshot.action_clip`; ignores the key."""
    return make_inference_fn(snapshot.policy_network)(snapshot.policy_params, snapshot.obs_stats)


def style_scorer(snapshot: PolicySnapshot) -> StyleFn:
    """Style reward max(0, 1 - (D - 1)^2 / 4) of raw AMP pairs [B, 2, 29] -> [B], with the
    checkpoint's discriminator and normalizer (the trainer's :func:`style_rewards`)."""
    return make_style_fn(snapshot.style_network)(snapshot.disc_params, snapshot.amp_stats)


def zero_policy(action_size: int) -> PolicyFn:
    """Always action 0: hold the standing pose."""

    def act(obs: jax.Array, key: jax.Array | None = None) -> jax.Array:
        return jnp.zeros((obs.shape[0], action_size), jnp.float32)

    return act


def random_policy(action_size: int, magnitude: float = 1.0) -> PolicyFn:
    """Independent uniform actions in [-magnitude, magnitude] every step."""

    def act(obs: jax.Array, key: jax.Array) -> jax.Array:
        return jax.random.uniform(key, (obs.shape[0], action_size), jnp.float32,
                                  -magnitude, magnitude)

    return act


def jit_policy(policy_fn: PolicyFn, seed: int) -> Callable[[Any, Any], jax.Array]:
    """``(obs [B, O], t) -> action [B, A]``, jitted, with step ``t``'s key derived from
    ``seed`` (only random policies use it)."""
    key = jax.random.fold_in(jax.random.PRNGKey(seed), 0x5EED)
    return jax.jit(lambda obs, t: policy_fn(jnp.asarray(obs, jnp.float32),
                                            jax.random.fold_in(key, t)))


def normalization_arrays(stats: RunningStats) -> tuple[np.ndarray, np.ndarray]:
    """(mean [O], std [O]) float32 that ``training.normalization.normalize`` divides by, with
    the identity (0, 1) while the normalizer has seen nothing."""
    seen = float(stats.count) > 0
    mean = np.asarray(stats.mean, np.float32) if seen else np.zeros_like(stats.mean)
    std = np.asarray(stats.std, np.float32) if seen else np.ones_like(stats.mean)
    return mean.astype(np.float32), std.astype(np.float32)
