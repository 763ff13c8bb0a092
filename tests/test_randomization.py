"""Physics factors applied to a model (``factor_fields``): hand-checked per field, and the same
numbers from the MJX model (jax) and the plain-MuJoCo model (numpy) sim-to-sim uses."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
from mujoco import mjx

import robots
from training.envs.randomization import DomainFactors, factor_fields


def _factors(robot: robots.Robot, xp) -> DomainFactors:
    joints, nu = robot.spec.num_joints, robot.model.nu
    mass = np.ones(robot.model.nbody)
    mass[robot.root_body_id] = 1.3
    return DomainFactors(
        friction=xp.asarray(0.35), mass_scale=xp.asarray(mass),
        damping_scale=xp.asarray(np.linspace(0.8, 1.2, joints)),
        armature_scale=xp.full(joints, 1.1), strength_scale=xp.full(nu, 0.7),
        latency_steps=xp.asarray(0))


def test_each_field_is_scaled_where_the_factor_says() -> None:
    robot = robots.load("wildrobot")
    base = robot.model
    fields = factor_fields(base, _factors(robot, np), robot.joint_dof_addresses)
    np.testing.assert_array_equal(fields["geom_friction"][:, 0], 0.35)
    np.testing.assert_array_equal(fields["geom_friction"][:, 1:], base.geom_friction[:, 1:])
    root = robot.root_body_id
    assert fields["body_mass"][root] == np.float64(1.3) * base.body_mass[root]
    np.testing.assert_allclose(fields["body_inertia"][root], 1.3 * base.body_inertia[root])
    dofs = robot.joint_dof_addresses
    np.testing.assert_allclose(fields["dof_damping"][dofs],
                               base.dof_damping[dofs] * np.linspace(0.8, 1.2, len(dofs)))
    free = np.setdiff1d(np.arange(base.nv), dofs)
    np.testing.assert_array_equal(fields["dof_damping"][free], base.dof_damping[free])
    np.testing.assert_allclose(fields["dof_armature"][dofs], 1.1 * base.dof_armature[dofs])
    np.testing.assert_allclose(fields["actuator_gainprm"][:, 0], 0.7 * base.actuator_gainprm[:, 0])
    np.testing.assert_array_equal(fields["actuator_gainprm"][:, 1:], base.actuator_gainprm[:, 1:])
    np.testing.assert_allclose(fields["actuator_biasprm"][:, 1:3],
                               0.7 * base.actuator_biasprm[:, 1:3])
    np.testing.assert_array_equal(fields["actuator_biasprm"][:, 0], base.actuator_biasprm[:, 0])
    np.testing.assert_allclose(fields["actuator_forcerange"], 0.7 * base.actuator_forcerange)


def test_mjx_and_mujoco_models_get_the_same_numbers() -> None:
    robot = robots.load("wildrobot")
    on_mjx = factor_fields(mjx.put_model(robot.model), _factors(robot, jnp),
                           robot.joint_dof_addresses)
    on_mujoco = factor_fields(robot.model, _factors(robot, np), robot.joint_dof_addresses)
    for name, value in on_mujoco.items():
        np.testing.assert_allclose(np.asarray(on_mjx[name]), value, rtol=1e-6, err_msg=name)
