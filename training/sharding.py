"""Multi-device training with JAX's own sharding: the environment batch is split over a 1-D
device mesh (axis ``"batch"``), everything else is replicated, and the one jitted iteration
is partitioned by XLA. Reductions (losses, normalizer statistics) stay global, so the result
matches a single-device run on the same global batch up to float summation order.
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from training.config import ConfigError

BATCH_AXIS = "batch"


def make_mesh(num_devices: int = 0) -> Mesh:
    """A 1-D mesh over the first ``num_devices`` devices (0: all of them)."""
    devices = jax.devices()
    if num_devices > len(devices):
        raise ConfigError(f"num_devices={num_devices} but JAX sees {len(devices)} device(s)")
    chosen = devices[:num_devices] if num_devices > 0 else devices
    return Mesh(np.array(chosen), (BATCH_AXIS,))


def check_divisible(num_envs: int, mesh: Mesh) -> None:
    count = mesh.devices.size
    if num_envs % count:
        raise ConfigError(f"ppo.num_envs={num_envs} must be divisible by the {count} devices")


def replicated(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, PartitionSpec())


def batch_sharded(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, PartitionSpec(BATCH_AXIS))


def state_shardings(state: Any, mesh: Mesh) -> Any:
    """Shardings for a :class:`TrainState`: env-state leaves split on their leading (env)
    axis, all other leaves replicated."""
    rep = jax.tree.map(lambda _: replicated(mesh), state)
    env = jax.tree.map(lambda _: batch_sharded(mesh), state.env_state)
    return rep.replace(env_state=env)


def put_replicated(tree: Any, mesh: Mesh) -> Any:
    return jax.device_put(tree, replicated(mesh))
