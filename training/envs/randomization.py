"""Domain randomization: per-episode physics factors, sampled in ``reset``, applied in ``step``.

The factors live in ``State.info["domain"]`` (a small pytree). ``apply_factors`` rebuilds the
affected ``mjx.Model`` fields from them before the physics substeps; under ``jax.vmap`` those
fields become batched while every other model field stays shared, so randomization costs a few
elementwise multiplies per step (bench/env.py prints the cost). The same factors feed the
privileged (critic) observation.

Randomized, each range in :class:`RandomizationConfig`:

- floor friction: the sliding friction of every geom (contact friction is the max of the pair),
- link masses: one scale per body; the body's rotational inertia scales with it,
- joint damping and armature: one scale per actuated joint,
- actuator strength: one scale per actuator on kp, kv and the torque limit (a weaker servo),
- control latency: a whole number of control steps the applied target lags the policy,
- pushes: a horizontal force on the root body for a short time, at random intervals.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from mujoco import mjx

from robots.config import ConfigError


@dataclass(frozen=True)
class PushConfig:
    """Random pushes on the root body.

    Attributes:
        enabled: Apply pushes at all.
        force_n: Range of the push force magnitude [N]; the direction is a random heading in
            the horizontal plane.
        duration_s: How long one push lasts [s].
        interval_s: Range of the time between push starts [s] (the first push comes one
            interval after reset).
    """

    enabled: bool = True
    force_n: tuple[float, float] = (5.0, 10.0)
    duration_s: float = 0.1
    interval_s: tuple[float, float] = (3.0, 8.0)


@dataclass(frozen=True)
class RandomizationConfig:
    """Ranges of the per-episode physics factors; ``enabled=False`` gives nominal physics.

    Attributes:
        enabled: Sample factors (else every factor is nominal and ``step`` uses the model
            unchanged, skipping the per-env model fields).
        friction: Sliding friction coefficient of the floor contact.
        mass_scale: Multiplier on each body's mass and inertia.
        damping_scale: Multiplier on each joint's damping.
        armature_scale: Multiplier on each joint's armature (rotor inertia).
        strength_scale: Multiplier on each actuator's kp, kv and torque limit.
        latency_steps: Inclusive range of control latency [control steps].
        push: Random pushes (applied only when ``enabled``).
    """

    enabled: bool = True
    friction: tuple[float, float] = (0.4, 1.25)
    mass_scale: tuple[float, float] = (0.85, 1.15)
    damping_scale: tuple[float, float] = (0.8, 1.2)
    armature_scale: tuple[float, float] = (0.8, 1.2)
    strength_scale: tuple[float, float] = (0.9, 1.1)
    latency_steps: tuple[int, int] = (0, 3)
    push: PushConfig = PushConfig()

    def validate(self) -> None:
        """Raise :class:`ConfigError` for an empty or negative range."""
        for name in ("friction", "mass_scale", "damping_scale", "armature_scale",
                     "strength_scale", "latency_steps"):
            low, high = getattr(self, name)
            if not 0 <= low <= high:
                raise ConfigError(f"randomization.{name}: need 0 <= low <= high, got {(low, high)}")
        if not 0 < self.push.force_n[0] <= self.push.force_n[1]:
            raise ConfigError(f"randomization.push.force_n: bad range {self.push.force_n}")
        if not 0 < self.push.interval_s[0] <= self.push.interval_s[1]:
            raise ConfigError(f"randomization.push.interval_s: bad range {self.push.interval_s}")

    @property
    def max_latency_steps(self) -> int:
        return int(self.latency_steps[1]) if self.enabled else 0


@struct.dataclass
class DomainFactors:
    """One environment's sampled physics factors.

    Attributes:
        friction: [] floor sliding friction.
        mass_scale: [nbody] per-body mass/inertia multiplier (1 for the world body).
        damping_scale: [num_joints] per actuated joint.
        armature_scale: [num_joints] per actuated joint.
        strength_scale: [nu] per actuator.
        latency_steps: [] int32 control steps of latency.
    """

    friction: jax.Array
    mass_scale: jax.Array
    damping_scale: jax.Array
    armature_scale: jax.Array
    strength_scale: jax.Array
    latency_steps: jax.Array

    def privileged_vector(self) -> jax.Array:
        """Flattened factors for the critic: friction, masses (no world), damping, armature,
        strength, latency; [1 + (nbody-1) + 2*num_joints + nu + 1]."""
        return jnp.concatenate([
            self.friction[None], self.mass_scale[1:], self.damping_scale, self.armature_scale,
            self.strength_scale, self.latency_steps[None].astype(jnp.float32),
        ])


def privileged_size(nbody: int, num_joints: int, nu: int) -> int:
    """Length of :meth:`DomainFactors.privileged_vector`."""
    return 1 + (nbody - 1) + 2 * num_joints + nu + 1


def nominal_factors(model: mjx.Model, num_joints: int) -> DomainFactors:
    """Factors that leave the model unchanged (friction of the floor contact as modelled)."""
    nominal_friction = np.max(np.asarray(model.geom_friction)[:, 0])
    return DomainFactors(
        friction=jnp.asarray(nominal_friction, jnp.float32),
        mass_scale=jnp.ones(model.nbody, jnp.float32),
        damping_scale=jnp.ones(num_joints, jnp.float32),
        armature_scale=jnp.ones(num_joints, jnp.float32),
        strength_scale=jnp.ones(model.nu, jnp.float32),
        latency_steps=jnp.zeros((), jnp.int32),
    )


def sample_factors(rng: jax.Array, config: RandomizationConfig, model: mjx.Model,
                   num_joints: int) -> DomainFactors:
    """Draw one environment's factors uniformly within the configured ranges."""
    if not config.enabled:
        return nominal_factors(model, num_joints)
    keys = jax.random.split(rng, 6)

    def uniform(key: jax.Array, bounds: tuple[float, float], shape: tuple[int, ...]) -> jax.Array:
        return jax.random.uniform(key, shape, jnp.float32, bounds[0], bounds[1])

    mass_scale = uniform(keys[1], config.mass_scale, (model.nbody,)).at[0].set(1.0)
    low, high = config.latency_steps
    return DomainFactors(
        friction=uniform(keys[0], config.friction, ()),
        mass_scale=mass_scale,
        damping_scale=uniform(keys[2], config.damping_scale, (num_joints,)),
        armature_scale=uniform(keys[3], config.armature_scale, (num_joints,)),
        strength_scale=uniform(keys[4], config.strength_scale, (model.nu,)),
        latency_steps=jax.random.randint(keys[5], (), int(low), int(high) + 1, jnp.int32),
    )


def factor_fields(model: Any, factors: Any, joint_dof_addresses: np.ndarray) -> dict[str, Any]:
    """The model fields the physics factors change, scaled: friction, masses, inertias,
    damping, armature and actuator gains. Written once (array operators only) for the MJX
    model and jax factors, and for the plain-MuJoCo model and numpy factors sim-to-sim uses.

    Args:
        model: The nominal ``mjx.Model`` or ``mujoco.MjModel``.
        factors: One environment's factors (fields as :class:`DomainFactors`).
        joint_dof_addresses: [num_joints] qvel address of each actuated joint.
    Returns:
        Field name -> new array, for ``model.replace(**fields)`` or attribute assignment.
    """
    def column(n: int, index: int) -> np.ndarray:
        return (np.arange(n) == index).astype(np.float32)

    # Scatters and column updates as products with one-hot constants, so numpy and jax share
    # them; for factors in (0, 2] they are exact (1 + (x - 1) rounds back to x).
    to_dof = np.zeros((len(joint_dof_addresses), model.nv), np.float32)
    to_dof[np.arange(len(joint_dof_addresses)), np.asarray(joint_dof_addresses)] = 1.0
    damping = 1.0 + (factors.damping_scale - 1.0) @ to_dof
    armature = 1.0 + (factors.armature_scale - 1.0) @ to_dof
    strength = factors.strength_scale[:, None]
    gain_cols, bias_cols = model.actuator_gainprm.shape[1], model.actuator_biasprm.shape[1]
    gain = 1.0 + (strength - 1.0) * column(gain_cols, 0)
    bias = 1.0 + (strength - 1.0) * (column(bias_cols, 1) + column(bias_cols, 2))
    first = column(model.geom_friction.shape[1], 0)
    return {
        "geom_friction": model.geom_friction * (1.0 - first) + factors.friction * first,
        "body_mass": model.body_mass * factors.mass_scale,
        "body_inertia": model.body_inertia * factors.mass_scale[:, None],
        "dof_damping": model.dof_damping * damping,
        "dof_armature": model.dof_armature * armature,
        "actuator_gainprm": model.actuator_gainprm * gain,
        "actuator_biasprm": model.actuator_biasprm * bias,
        "actuator_forcerange": model.actuator_forcerange * strength,
    }


def apply_factors(model: mjx.Model, factors: DomainFactors,
                  joint_dof_addresses: np.ndarray) -> mjx.Model:
    """``model`` with its :func:`factor_fields` replaced (one environment; batched under vmap)."""
    return model.replace(**factor_fields(model, factors, joint_dof_addresses))
