"""The per-episode random streams the MJX evaluation and sim-to-sim share: reset keys,
observation noise, push times and headings, all drawn from (seed, scenario, episode), so an
episode replayed in plain MuJoCo sees the same noise and pushes as in MJX."""

from __future__ import annotations

import zlib

import jax
import jax.numpy as jnp
import numpy as np

from training.envs.base import NEVER_STEP
from training.eval_setup import EpisodeSetup

NO_PUSH_STEP = NEVER_STEP
"""The push schedule's "never" (the environment's :data:`~training.envs.base.NEVER_STEP`)."""


# --------------------------------------------------------------------------- random streams
def episode_keys(setup: EpisodeSetup, seed: int) -> np.ndarray:
    """[E, 2, 2] uint32 raw PRNG keys per episode: (reset key, key of its noise and pushes).

    Drawn from (seed, scenario name, episode index), so an episode's randomness does not
    depend on the other scenarios of the suite, and MJX and MuJoCo runs of the same episode
    share it.
    """
    per_scenario = {}
    for scenario in setup.scenarios:
        base = jax.random.fold_in(jax.random.PRNGKey(seed), zlib.crc32(scenario.name.encode()))
        keys = jax.random.split(base, scenario.episodes)
        per_scenario[scenario.name] = np.asarray(jax.vmap(jax.random.split)(keys))
    return np.stack([per_scenario[setup.scenarios[s].name][i]
                     for s, i in zip(setup.scenario_index, setup.episode_index, strict=True)])


def noise_unit(aux_keys: jax.Array, t: jax.Array, size: int) -> jax.Array:
    """Uniform(-1, 1) [E, size]: the observation noise of step ``t`` before scaling."""
    def draw(key: jax.Array) -> jax.Array:
        key = jax.random.fold_in(jax.random.fold_in(key, 0), t)
        return jax.random.uniform(key, (size,), jnp.float32, -1.0, 1.0)

    return jax.vmap(draw)(aux_keys)


def push_interval(aux_keys: jax.Array, t: jax.Array, low: jax.Array,
                  high: jax.Array) -> jax.Array:
    """Steps [E] from a push started at step ``t - 1`` (or from reset, ``t`` = 0) to the next,
    uniform in [low, high] per episode."""
    def draw(key: jax.Array, lo: jax.Array, hi: jax.Array) -> jax.Array:
        key = jax.random.fold_in(jax.random.fold_in(key, 1), 2 * t)
        return jax.random.randint(key, (), lo, hi + 1)

    return jax.vmap(draw)(aux_keys, low, high)


def push_heading(aux_keys: jax.Array, t: jax.Array) -> jax.Array:
    """Direction [E] of a push starting at step ``t`` [rad]."""
    def draw(key: jax.Array) -> jax.Array:
        key = jax.random.fold_in(jax.random.fold_in(key, 1), 2 * t + 1)
        return jax.random.uniform(key, (), jnp.float32, 0.0, 2.0 * np.pi)

    return jax.vmap(draw)(aux_keys)
