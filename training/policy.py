"""A training checkpoint as things to run: the deterministic policy, the style scorer, baselines.

:func:`load_snapshot` reads only what inference needs from a checkpoint (policy parameters, the
observation normalizer, the discriminator and its AMP-frame normalizer), by the leaf paths the
trainer records in ``meta.json``, so neither the replay buffer nor the environment batch is
loaded. The policy and the style reward are computed by the trainer's own functions
(``training.iteration.policy_distribution`` and ``style_rewards``), so evaluation sees exactly
what training optimized.

A policy here is ``PolicyFn(obs [B, O], key) -> action [B, A]``, pure JAX (jit-able): the
checkpoint's deterministic mean action, or a baseline (:func:`zero_policy`,
:func:`random_policy`), so evaluation can compare against either.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from amp.features import FEATURE_DIM
from training import checkpoint as ckpt
from training.config import TrainConfig
from training.networks import make_discriminator, make_policy
from training.normalization import RunningStats, init_stats

PolicyFn = Callable[[jax.Array, jax.Array], jax.Array]
"""(observations [B, O], PRNG key) -> actions [B, A] as handed to the environment."""
StyleFn = Callable[[jax.Array], jax.Array]
"""AMP transition pairs [B, 2, 29] (raw frames) -> style reward [B] in [0, 1]."""

POLICY_PREFIX = ".params['policy']"
OBS_STATS_PREFIX = ".obs_stats"
DISC_PREFIX = ".disc_params"
AMP_STATS_PREFIX = ".amp_stats"
"""Where the trainer's ``TrainState`` keeps each part (``jax.tree_util.keystr`` of the path)."""


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
    env: Any
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
    from training.amp import config_from_dict

    return config_from_dict(meta["config"])


def load_snapshot(path: str | Path, env: Any = None) -> PolicySnapshot:
    """Load the inference part of a checkpoint (see the module docstring).

    Args:
        path: Checkpoint, ``checkpoints/`` folder or run directory.
        env: The environment to pair with it; default: built from the checkpoint's config.
    Raises:
        training.checkpoint.CheckpointError: missing files, or leaves whose shapes do not fit
            the recorded config.
    """
    from training.amp import load_env

    path = resolve_checkpoint(path)
    meta = ckpt.verify_checkpoint(path)  # checksums and finite values: never export NaN
    config = read_checkpoint_config(meta)
    records = {record["path"]: (index, record) for index, record in enumerate(meta["leaves"])}
    observation_size = _recorded_shape(records, OBS_STATS_PREFIX + ".mean", path)[0]
    action_size = _recorded_shape(records, POLICY_PREFIX + "['params']['log_std']", path)[0]
    policy = make_policy(config.network, action_size)
    discriminator = make_discriminator(config.amp.hidden)
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


def _trainer_views(snapshot: PolicySnapshot) -> tuple[Any, Any]:
    """Stand-ins for the trainer's ``TrainState`` and ``Networks`` holding what inference reads."""
    state = SimpleNamespace(params={"policy": snapshot.policy_params},
                            obs_stats=snapshot.obs_stats, disc_params=snapshot.disc_params,
                            amp_stats=snapshot.amp_stats)
    networks = SimpleNamespace(
        policy=make_policy(snapshot.config.network, snapshot.action_size),
        discriminator=make_discriminator(snapshot.config.amp.hidden))
    return state, networks


def deterministic_policy(snapshot: PolicySnapshot) -> PolicyFn:
    """The checkpoint's mean action (observation normalization included), clipped to
    :attr:`PolicySnapshot.action_clip`; ignores the key."""
    from training.iteration import policy_distribution

    state, networks = _trainer_views(snapshot)
    clip = snapshot.action_clip

    def act(obs: jax.Array, key: jax.Array | None = None) -> jax.Array:
        mean, _ = policy_distribution(state, networks, snapshot.config, obs)
        return jnp.clip(mean, -clip, clip)

    return act


def style_scorer(snapshot: PolicySnapshot) -> StyleFn:
    """Style reward max(0, 1 - (D - 1)^2 / 4) of raw AMP pairs [B, 2, 29] -> [B], with the
    checkpoint's discriminator and normalizer (the trainer's ``style_rewards``)."""
    from training.iteration import style_rewards

    state, networks = _trainer_views(snapshot)

    def score(pairs: jax.Array) -> jax.Array:
        return style_rewards(state, networks, snapshot.config, pairs[None])[0]

    return score


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
