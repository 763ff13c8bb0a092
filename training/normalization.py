"""Running mean/variance normalizers (pure, jit-safe, merged exactly batch by batch).

The state keeps the count, mean and sum of squared deviations (M2) of everything seen; a batch
is merged with Chan's parallel formula, so the result does not depend on how data was split
into batches (up to float rounding) and reductions over a sharded batch stay global.
"""

from __future__ import annotations

import flax.struct
import jax
import jax.numpy as jnp

STD_FLOOR = 1e-2
"""Smallest standard deviation used to divide: a feature that never varies (a contact always
on in the data) must not blow up the first value that differs."""


@flax.struct.dataclass
class RunningStats:
    """Statistics of a stream of vectors [size].

    Attributes:
        count: Samples seen (float32, so it never overflows on long runs).
        mean: [size] running mean.
        m2: [size] running sum of squared deviations from the mean.
    """

    count: jax.Array
    mean: jax.Array
    m2: jax.Array

    @property
    def std(self) -> jax.Array:
        var = self.m2 / jnp.maximum(self.count, 1.0)
        return jnp.maximum(jnp.sqrt(var), STD_FLOOR)


def init_stats(size: int) -> RunningStats:
    """Empty statistics: normalizing with them is the identity."""
    return RunningStats(jnp.zeros((), jnp.float32), jnp.zeros(size, jnp.float32),
                        jnp.zeros(size, jnp.float32))


def update_stats(stats: RunningStats, batch: jax.Array) -> RunningStats:
    """Merge a batch [..., size] into the statistics."""
    x = batch.reshape(-1, batch.shape[-1]).astype(jnp.float32)
    n_b = jnp.asarray(x.shape[0], jnp.float32)
    mean_b = jnp.mean(x, axis=0)
    m2_b = jnp.sum((x - mean_b) ** 2, axis=0)
    n = stats.count + n_b
    delta = mean_b - stats.mean
    mean = stats.mean + delta * (n_b / n)
    m2 = stats.m2 + m2_b + delta**2 * (stats.count * n_b / n)
    return RunningStats(n, mean, m2)


def normalize(stats: RunningStats, x: jax.Array, clip: float) -> jax.Array:
    """(x − mean) / std clipped to ±clip; identity (clipped) while nothing has been seen."""
    seen = stats.count > 0
    mean = jnp.where(seen, stats.mean, 0.0)
    std = jnp.where(seen, stats.std, 1.0)
    return jnp.clip((x - mean) / std, -clip, clip)
