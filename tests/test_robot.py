"""The WildRobot-class model: structure, physical parameters, and standing in MuJoCo and MJX."""

from __future__ import annotations

import jax
import mujoco
import numpy as np
import pytest

import robots

STAND_SECONDS_C = 5.0
STAND_SECONDS_MJX = 2.0


@pytest.fixture(scope="module")
def robot() -> robots.Robot:
    return robots.load("wildrobot")


def _tilt_deg(data: mujoco.MjData, body_id: int) -> float:
    up_z = data.xmat[body_id].reshape(3, 3)[2, 2]
    return float(np.degrees(np.arccos(np.clip(up_z, -1.0, 1.0))))


def test_unknown_robot_lists_known_names() -> None:
    with pytest.raises(robots.UnknownRobotError, match="known robots: wildrobot"):
        robots.load("no_such_robot")


def test_load_gives_fresh_models() -> None:
    a, b = robots.load("wildrobot"), robots.load("wildrobot")
    a.model.body_mass[1] = 99.0
    assert b.model.body_mass[1] != 99.0
    assert a.model_path.name == "scene.xml" and a.model_path.exists()


def test_mjx_accepts_model(robot: robots.Robot) -> None:
    from mujoco import mjx

    mjx_model = mjx.put_model(robot.model)
    assert mjx_model.nq == robot.spec.nq == 18


def test_mass_and_actuators(robot: robots.Robot) -> None:
    model = robot.model
    assert 3.0 <= model.body_mass.sum() <= 3.6
    assert model.nu == 11
    np.testing.assert_allclose(model.actuator_forcerange, np.tile([-4.0, 4.0], (11, 1)))
    assert np.all(model.actuator_forcelimited)
    np.testing.assert_allclose(model.actuator_gainprm[:, 0], robot.spec.actuator_kp)
    np.testing.assert_allclose(model.actuator_biasprm[:, 2], -robot.spec.actuator_kv)
    actuated = [model.joint(model.actuator_trnid[i, 0]).name for i in range(model.nu)]
    assert tuple(actuated) == robot.spec.joint_names


def test_joint_ranges_match_spec(robot: robots.Robot) -> None:
    for name in robot.spec.joint_names:
        joint = robot.model.joint(name)
        limit = robot.spec.joint_limits[name]
        np.testing.assert_allclose(joint.range, [limit.lower, limit.upper], err_msg=name)
        np.testing.assert_allclose(robot.model.actuator(name).ctrlrange, joint.range)
    assert robot.spec.joint_limits["left_knee_pitch"].upper == pytest.approx(1.40)


def test_contact_sites_and_collision_geoms(robot: robots.Robot) -> None:
    model = robot.model
    assert len(robot.contact_site_ids) == 4
    colliding = [model.geom(i).name for i in range(model.ngeom)
                 if model.geom_contype[i] or model.geom_conaffinity[i]]
    assert sorted(colliding) == sorted(
        ["floor", "left_toe", "left_heel", "right_toe", "right_heel"])
    forbidden = {mujoco.mjtGeom.mjGEOM_MESH, mujoco.mjtGeom.mjGEOM_CYLINDER}
    assert not set(model.geom_type.tolist()) & {int(t) for t in forbidden}


def test_keyframe_is_the_spec_default_pose(robot: robots.Robot) -> None:
    np.testing.assert_allclose(robot.keyframe_qpos(), robot.spec.default_qpos())
    np.testing.assert_allclose(robot.keyframe_ctrl(), robot.spec.default_joint_angles())
    data = mujoco.MjData(robot.model)
    data.qpos[:] = robot.keyframe_qpos()
    mujoco.mj_kinematics(robot.model, data)
    # Soles within a millimetre of the floor: the keyframe is neither floating nor buried.
    assert np.abs(data.site_xpos[robot.contact_site_ids, 2]).max() < 1e-3


def _simulate_standing(robot: robots.Robot, seconds: float, push_n: np.ndarray | None = None):
    model, data = robot.model, mujoco.MjData(robot.model)
    mujoco.mj_resetDataKeyframe(model, data, model.keyframe(robot.spec.keyframe).id)
    pelvis, start_height = robot.root_body_id, data.qpos[2]
    worst = {"height": 0.0, "tilt": 0.0, "contact": 0.0}
    for step in range(int(round(seconds / model.opt.timestep))):
        t = step * model.opt.timestep
        if push_n is not None:
            data.xfrc_applied[pelvis, :3] = push_n if 1.0 <= t < 1.1 else 0.0
        mujoco.mj_step(model, data)
        worst["height"] = max(worst["height"], abs(data.qpos[2] - start_height))
        worst["tilt"] = max(worst["tilt"], _tilt_deg(data, pelvis))
        contact_z = np.abs(data.site_xpos[robot.contact_site_ids, 2]).max()
        worst["contact"] = max(worst["contact"], contact_z)
    return worst, data


def test_stands_for_five_seconds(robot: robots.Robot) -> None:
    worst, _ = _simulate_standing(robot, STAND_SECONDS_C)
    assert worst["height"] < 0.03
    assert worst["tilt"] < 5.0
    assert worst["contact"] < 0.01


@pytest.mark.parametrize("direction", [(1, 0, 0), (-1, 0, 0), (0, 1, 0), (0, -1, 0)])
def test_survives_a_5n_push(robot: robots.Robot, direction: tuple[int, int, int]) -> None:
    worst, data = _simulate_standing(robot, 3.0, push_n=5.0 * np.array(direction, float))
    assert _tilt_deg(data, robot.root_body_id) < 5.0, "did not return upright"
    assert worst["tilt"] < 30.0
    assert data.qpos[2] > 0.45


def test_stands_in_mjx(robot: robots.Robot) -> None:
    from mujoco import mjx

    model = robot.model
    data = mujoco.MjData(model)
    mujoco.mj_resetDataKeyframe(model, data, model.keyframe(robot.spec.keyframe).id)
    mjx_model, mjx_data = mjx.put_model(model), mjx.put_data(model, data)
    sites, pelvis = robot.contact_site_ids, robot.root_body_id

    def step(d, _):
        d = mjx.step(mjx_model, d)
        return d, (d.qpos[2], d.xmat[pelvis, 2, 2], d.site_xpos[sites, 2])

    n_steps = int(round(STAND_SECONDS_MJX / model.opt.timestep))
    _, (height, up_z, contact_z) = jax.jit(
        lambda d: jax.lax.scan(step, d, None, length=n_steps))(mjx_data)
    assert np.abs(np.asarray(height) - data.qpos[2]).max() < 0.03
    assert np.degrees(np.arccos(np.asarray(up_z).min())) < 5.0
    assert np.abs(np.asarray(contact_z)).max() < 0.01
