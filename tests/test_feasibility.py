"""Physical feasibility (amp.feasibility): inverse dynamics, contact split, CoP, merge policy."""

from __future__ import annotations

import copy

import mujoco
import numpy as np
import pytest

from amp.convert import load_for_kinematics
from amp.feasibility import (
    FeasibilityConfig,
    FeasibilityError,
    FeasibilityModel,
    FeasibilityPolicy,
    accelerations,
    apply_policy,
    clip_feasibility,
    frame_dynamics,
    summarize,
    support_margin,
)

CONFIG = FeasibilityConfig()


@pytest.fixture(scope="module")
def robot():
    return load_for_kinematics("wildrobot")


@pytest.fixture(scope="module")
def fm(robot) -> FeasibilityModel:
    return FeasibilityModel(robot.model, robot.contact_site_ids)


# --- inverse dynamics against a forward simulation ----------------------------------------------

def test_torques_match_the_actuator_forces_of_a_forward_simulation(robot):
    """Fly the robot (no contact) under known servo targets; mj_inverse must give back the
    actuator forces that drove it, and the free joint needs no help (ballistic)."""
    model = copy.copy(robot.model)
    # Joint limits and dry friction are (soft) constraints in the simulation; the comparison is
    # about the smooth dynamics, so the simulated robot has neither.
    model.dof_frictionloss[:] = 0.0
    model.opt.disableflags |= int(mujoco.mjtDisableBit.mjDSBL_LIMIT)
    data = mujoco.MjData(model)
    data.qpos[:] = robot.keyframe_qpos()
    data.qpos[2] = 3.0  # high above the floor for the whole 0.5 s
    rng = np.random.default_rng(0)
    centre = robot.keyframe_ctrl()
    amplitude, freq, phase = rng.uniform(0.1, 0.3, model.nu), rng.uniform(1, 3, model.nu), \
        rng.uniform(0, 2 * np.pi, model.nu)
    qpos, qvel, qacc, force = [], [], [], []
    for step in range(100):
        data.ctrl[:] = centre + amplitude * np.sin(2 * np.pi * freq * step * model.opt.timestep
                                                   + phase)
        qpos.append(data.qpos.copy())
        qvel.append(data.qvel.copy())
        mujoco.mj_step(model, data)
        qacc.append(data.qacc.copy())  # the acceleration of the state recorded before the step
        force.append(data.actuator_force.copy())
    force = np.array(force)
    assert np.abs(force).max() > 1.0  # the servos really work (and some saturate at 4 N·m)
    fm = FeasibilityModel(model, robot.contact_site_ids)
    dyn = frame_dynamics(fm, np.array(qpos), np.array(qvel), np.array(qacc),
                         np.zeros((100, 4), bool), CONFIG)
    np.testing.assert_allclose(dyn.torque, force, rtol=1e-6, atol=1e-6 * np.abs(force).max())
    assert np.abs(dyn.residual_force).max() < 1e-6
    assert np.abs(dyn.residual_torque).max() < 1e-6
    assert np.all(np.isnan(dyn.zmp)) and np.all(np.isnan(dyn.support_margin))


def test_accelerations_are_the_central_differences_of_qvel():
    qvel = np.array([[0.0, 1.0], [1.0, 3.0], [4.0, 6.0], [9.0, 10.0]])
    expected = np.array([[50.0, 100.0], [100.0, 125.0], [200.0, 175.0], [250.0, 200.0]])
    np.testing.assert_allclose(accelerations(qvel, 50.0), expected)


# --- statics ----------------------------------------------------------------------------------

def _level_pose(robot, ankle: float, hip: float = 0.0, knee: float = 0.0) -> np.ndarray:
    """qpos with both legs at (hip, knee, ankle) pitch, the root pitched so the feet are flat,
    and the lowest contact point on the floor."""
    spec = robot.spec
    qpos = robot.keyframe_qpos()
    for side in ("left", "right"):
        qpos[7 + spec.joint_names.index(f"{side}_hip_pitch")] = hip
        qpos[7 + spec.joint_names.index(f"{side}_knee_pitch")] = knee
        qpos[7 + spec.joint_names.index(f"{side}_ankle_pitch")] = ankle
    # hip and ankle axes are -y, knee +y: the foot pitches by -(hip - knee + ankle) about y
    pitch = hip - knee + ankle
    qpos[3:7] = [np.cos(pitch / 2), 0.0, np.sin(pitch / 2), 0.0]
    fm = FeasibilityModel(robot.model, robot.contact_site_ids)
    data = mujoco.MjData(fm.model)
    data.qpos[:] = qpos
    mujoco.mj_kinematics(fm.model, data)
    qpos[2] -= min(_points(fm, data)[:, 2])
    return qpos


def _points(fm: FeasibilityModel, data: mujoco.MjData) -> np.ndarray:
    return np.array([data.xpos[p.body] + data.xmat[p.body].reshape(3, 3) @ p.local
                     - [0, 0, p.radius] for p in fm.points])


def _potential_and_contact_work(fm, qpos, forces, material) -> float:
    """Gravity potential minus the work of fixed contact forces at material points [J].

    ``material`` [P, 3]: the touching points in their bodies' frames (frozen, so they move
    with the body rather than sliding round the contact sphere).
    """
    data = mujoco.MjData(fm.model)
    data.qpos[:] = qpos
    mujoco.mj_kinematics(fm.model, data)
    height = data.xipos[:, 2]
    potential = float(np.sum(fm.model.body_mass * height) * fm.gravity)
    points = np.array([data.xpos[p.body] + data.xmat[p.body].reshape(3, 3) @ m
                       for p, m in zip(fm.points, material, strict=True)])
    return potential - float(np.sum(forces * points))


def _material_points(fm, qpos) -> np.ndarray:
    data = mujoco.MjData(fm.model)
    data.qpos[:] = qpos
    mujoco.mj_kinematics(fm.model, data)
    return np.array([p.local - data.xmat[p.body].reshape(3, 3).T @ [0, 0, p.radius]
                     for p in fm.points])


def test_standing_needs_the_torque_that_holds_gravity_and_no_residual(robot, fm):
    qpos = robot.keyframe_qpos()
    zeros = np.zeros((1, fm.model.nv))
    dyn = frame_dynamics(fm, qpos[None], zeros, zeros, np.ones((1, 4), bool), CONFIG)
    assert np.linalg.norm(dyn.residual_force) < 1e-3 * fm.weight
    assert np.linalg.norm(dyn.residual_torque) < 1e-3
    assert dyn.normal_force[0] == pytest.approx(fm.weight, rel=1e-3)  # 3.24 kg × 9.81
    forces = dyn.contact_force[0]
    assert np.all(forces[:, 2] >= 0.0)
    assert np.all(np.hypot(forces[:, 0], forces[:, 1]) <= fm.mu * forces[:, 2] + 1e-9)
    # Virtual work, independent of the dynamics code: τ_j = ∂(potential - f·p)/∂q_j with the
    # contact forces held fixed (central finite differences of forward kinematics).
    step = 1e-6
    material = _material_points(fm, qpos)
    expected = []
    for dof in fm.actuator_dof:
        address = dof + 1  # hinge qpos address = dof address + 1 behind the free joint
        plus, minus = qpos.copy(), qpos.copy()
        plus[address] += step
        minus[address] -= step
        expected.append((_potential_and_contact_work(fm, plus, forces, material)
                         - _potential_and_contact_work(fm, minus, forces, material)) / (2 * step))
    np.testing.assert_allclose(dyn.torque[0], expected, atol=1e-7)
    knees = [fm.actuator_names.index(f"{s}_knee_pitch") for s in ("left", "right")]
    assert np.all(np.abs(dyn.torque[0, knees]) > 0.2)  # bent knees carry the weight
    report = summarize(fm, dyn, CONFIG)
    assert report.score == 1.0 and report.feasible
    assert dyn.support_margin[0] > 0.0  # the CoM sits over the feet


def test_a_pose_with_the_com_ahead_of_the_toes_needs_a_residual(robot, fm):
    qpos = _level_pose(robot, ankle=0.7)
    data = mujoco.MjData(fm.model)
    data.qpos[:] = qpos
    mujoco.mj_kinematics(fm.model, data)
    mujoco.mj_comPos(fm.model, data)
    com = data.subtree_com[fm.root_body]
    toe_x = _points(fm, data)[:, 0].max()
    assert com[0] > toe_x + 0.05  # the precondition: the CoM is well ahead of the feet
    zeros = np.zeros((1, fm.model.nv))
    dyn = frame_dynamics(fm, qpos[None], zeros, zeros, np.ones((1, 4), bool), CONFIG)
    # Static: the floor must carry the weight under the CoM, so the ZMP is the CoM's projection
    np.testing.assert_allclose(dyn.zmp[0], com[:2], atol=1e-9)
    assert dyn.support_margin[0] == pytest.approx(toe_x - com[0], abs=1e-9)
    # no admissible force covers the tipping moment m g d (about the toes); some of it is
    # reported as force, some as torque, but a hand of god is needed
    hand = np.linalg.norm(dyn.residual_force[0]) * CONFIG.residual_length_m \
        + np.linalg.norm(dyn.residual_torque[0])
    assert hand > 0.3 * fm.weight * (com[0] - toe_x) * CONFIG.residual_length_m / 0.5
    report = summarize(fm, dyn, CONFIG)
    assert report.score == 0.0 and not report.feasible and report.cop_outside_share == 1.0


def test_a_flight_frame_that_is_not_ballistic_needs_a_residual_of_its_weight(robot, fm):
    qpos = robot.keyframe_qpos()
    qpos[2] = 1.0
    zeros = np.zeros((1, fm.model.nv))  # hovering in the air: someone holds it up
    dyn = frame_dynamics(fm, qpos[None], zeros, zeros, np.zeros((1, 4), bool), CONFIG)
    np.testing.assert_allclose(dyn.residual_force[0], [0.0, 0.0, fm.weight], atol=1e-9)


def test_friction_is_from_the_model_and_contact_points_span_the_capsules(fm):
    assert fm.mu == 1.0
    assert len(fm.points) == 8  # 4 capsules × 2 end spheres
    np.testing.assert_allclose(sorted({round(p.local[1], 6) for p in fm.points}),
                               [-0.022, 0.022])


def test_bad_shapes_and_values_are_named(fm):
    qpos = np.zeros((3, fm.model.nq))
    with pytest.raises(FeasibilityError, match="shapes"):
        frame_dynamics(fm, qpos, np.zeros((3, 2)), np.zeros((3, 2)), np.zeros((3, 4), bool),
                       CONFIG)
    qvel = np.full((3, fm.model.nv), np.nan)
    with pytest.raises(FeasibilityError, match="non-finite"):
        clip_feasibility(fm, qpos, qvel, 50.0, np.zeros((3, 4), bool), CONFIG)


# --- support polygon ----------------------------------------------------------------------------

def test_support_margin_of_a_square_a_segment_and_a_point():
    square = np.array([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]])
    points = np.array([[0.5, 0.25], [2.0, 0.5], [0.5, 0.5], [np.nan, np.nan]])
    margin = support_margin(points, np.repeat(square[None], 4, axis=0), np.ones((4, 4), bool))
    np.testing.assert_allclose(margin[:3], [0.25, -1.0, 0.5])
    assert np.isnan(margin[3])
    # only two vertices touch: a segment has no inside
    active = np.array([[True, True, False, False]])
    assert support_margin(np.array([[0.5, 0.0]]), square[None], active)[0] == 0.0 * -1
    assert support_margin(np.array([[0.5, 0.3]]), square[None], active)[0] == pytest.approx(-0.3)
    one = np.array([[False, False, True, False]])
    assert support_margin(np.array([[1.0, 4.0]]), square[None], one)[0] == pytest.approx(-3.0)
    assert np.isnan(support_margin(np.array([[0.5, 0.5]]), square[None],
                                   np.zeros((1, 4), bool))[0])


# --- merge policy -------------------------------------------------------------------------------

NAMES = ("walk", "jog", "stand", "unscored")
LENGTHS = np.array([101, 51, 201, 11])
SCORES = np.array([0.8, 0.1, 1.0, np.nan])


def test_policy_keep_changes_nothing():
    decision = apply_policy(NAMES, LENGTHS, SCORES, FeasibilityPolicy(policy="keep"))
    np.testing.assert_array_equal(decision.multiplier, [1, 1, 1, 1])
    assert decision.keep.all() and decision.dropped == []


def test_policy_weight_multiplies_by_the_score_with_a_floor():
    decision = apply_policy(NAMES, LENGTHS, SCORES,
                            FeasibilityPolicy(policy="weight", min_weight=0.25))
    np.testing.assert_allclose(decision.multiplier, [0.8, 0.25, 1.0, 1.0])
    assert decision.keep.all()
    assert [w["clip"] for w in decision.weighted] == ["walk", "jog"]


def test_policy_drop_leaves_out_low_scores_and_says_why():
    decision = apply_policy(NAMES, LENGTHS, SCORES,
                            FeasibilityPolicy(policy="drop", min_score=0.5))
    np.testing.assert_array_equal(decision.keep, [True, False, True, True])
    np.testing.assert_array_equal(decision.multiplier, [1, 1, 1, 1])
    assert decision.dropped == [{"clip": "jog", "frames": 51, "score": 0.1,
                                 "reason": "feasibility score 0.100 < min_score 0.5"}]


def test_policy_drop_refuses_to_throw_away_most_of_the_data():
    with pytest.raises(FeasibilityError, match="leave out 42% of the frames"):
        apply_policy(NAMES, LENGTHS, SCORES,
                     FeasibilityPolicy(policy="drop", min_score=0.9, max_drop_share=0.4))
    with pytest.raises(ValueError, match="use one of"):
        FeasibilityPolicy(policy="sometimes")
    from amp.merge import MergeConfig
    from robots.config import ConfigError, build_config
    with pytest.raises(ConfigError, match="use one of"):
        build_config(MergeConfig, {"feasibility": {"policy": "sometimes"}})


def test_policy_exempt_globs_are_untouched():
    decision = apply_policy(NAMES, LENGTHS, SCORES,
                            FeasibilityPolicy(policy="weight", exempt=("j*",)))
    np.testing.assert_allclose(decision.multiplier, [0.8, 1.0, 1.0, 1.0])


# --- deliberately infeasible motions -----------------------------------------------------------

def _jump(robot, apex_m: float, fps: float = 50.0) -> np.ndarray:
    """A vertical jump [T, nq]: crouch, push off (legs extend, feet flat, constant
    acceleration), ballistic flight to ``apex_m`` above the take-off height with the legs held
    as at take-off (a = 0.3, short of straight: straight legs would need infinite joint speed),
    and the same backwards (landing into the crouch), sampled symmetrically about the apex.

    Legs keep hip = a, knee = 2a, ankle = a, so the feet stay flat and the torso upright; the
    pelvis is then 0.37 cos(a) m above the ankles (thigh 0.19 m + shank 0.18 m).
    """
    stand = robot.keyframe_qpos()
    ankle_height = stand[2] - 0.07 - 0.37 * np.cos(0.2)

    def height(a):
        return 0.07 + 0.37 * np.cos(a) + ankle_height

    g, v0, crouch, crouch_s, extended = 9.81, np.sqrt(2 * 9.81 * apex_m), 0.6, 0.3, 0.3
    push_s = (height(extended) - height(crouch)) * 2 / v0  # constant acceleration up to v0
    half_s = crouch_s + push_s + v0 / g  # up to the apex

    def pose(t: float) -> np.ndarray:
        if t < crouch_s:  # crouch down slowly
            a = 0.2 + (crouch - 0.2) * (1 - np.cos(np.pi * t / crouch_s)) / 2
            z = height(a)
        elif t < crouch_s + push_s:
            z = height(crouch) + 0.5 * v0 / push_s * (t - crouch_s) ** 2
            a = float(np.arccos(np.clip((z - 0.07 - ankle_height) / 0.37, -1, 1)))
        else:
            a, tf = extended, t - crouch_s - push_s
            z = height(extended) + v0 * tf - 0.5 * g * tf * tf
        q = stand.copy()
        for side in ("left", "right"):
            for joint, scale in (("hip_pitch", 1), ("knee_pitch", 2), ("ankle_pitch", 1)):
                q[7 + robot.spec.joint_names.index(f"{side}_{joint}")] = scale * a
        q[2] = z
        return q

    steps = int(np.floor(half_s * fps))
    rising = np.array([pose(half_s - k / fps) for k in range(steps, -1, -1)])
    return np.concatenate([rising, rising[-2::-1]])  # land: the same, backwards in time


def _score(robot, fm, qpos: np.ndarray, fps: float = 50.0):
    from amp.convert import ConvertConfig, clip_from_qpos
    from amp.kinematics import differentiate_qpos

    qvel = differentiate_qpos(qpos, fps)
    clip = clip_from_qpos(qpos, qvel, robot, ConvertConfig(fps=fps), "jump")
    return clip_feasibility(fm, qpos, qvel, fps, clip.features[:, 25:29] > 0.5, CONFIG)


def test_a_jump_taller_than_the_robot_can_make_is_infeasible_and_weighted_down(robot, fm):
    low, tall = _score(robot, fm, _jump(robot, 0.01)), _score(robot, fm, _jump(robot, 0.5))
    assert low.feasible and low.score == 1.0  # a 1 cm hop is within the servos
    assert not tall.feasible
    knees = [fm.actuator_names.index(f"{s}_knee_pitch") for s in ("left", "right")]
    assert tall.torque_peak[knees].min() > 3 * fm.force_limit[knees].max()  # the push-off
    # The push-off and the landing are impossible (knee torque, feet on the floor); the
    # ballistic flight is not, apart from the frames whose differences straddle take-off.
    push = tall.by_phase["left_foot+right_foot"]
    assert push["infeasible"] >= 4
    assert all(cause.endswith("knee_pitch") for cause in push["causes"])
    assert tall.by_phase["flight"]["infeasible"] <= 4 < tall.by_phase["flight"]["frames"]
    scores = np.array([low.score, tall.score])
    decision = apply_policy(("hop", "tall_jump"), np.array([100, 100]), scores,
                            FeasibilityPolicy())
    np.testing.assert_allclose(decision.multiplier, scores)
    assert decision.multiplier[1] < decision.multiplier[0]
    drop = apply_policy(("hop", "tall_jump"), np.array([100, 100]), scores,
                        FeasibilityPolicy(policy="drop", min_score=CONFIG.min_feasible_share))
    assert drop.keep.tolist() == [True, False]


def test_the_record_is_json_and_inspect_prints_it(robot, fm, tmp_path):
    import json

    import h5py

    from amp.feasibility import feasibility_label, read_record
    from amp.inspect import feasibility_lines

    qpos = _level_pose(robot, ankle=0.7)  # infeasible: CoM ahead of the toes
    zeros = np.zeros((2, fm.model.nv))
    dyn = frame_dynamics(fm, np.stack([robot.keyframe_qpos(), qpos]), zeros, zeros,
                         np.ones((2, 4), bool), CONFIG)
    record = summarize(fm, dyn, CONFIG).as_record()
    assert record["score"] == 0.5 and record["feasible"] is False
    assert record["infeasible_by_phase"] == {
        "left_foot+right_foot": {"frames": 2, "infeasible": 1, "causes": {"cop_ahead": 1}}}
    path = tmp_path / "clip.h5"
    with h5py.File(path, "w") as f:
        f.attrs["feasibility"] = json.dumps(record)
    assert read_record(path) == json.loads(json.dumps(record))
    assert read_record(tmp_path / "missing.h5") is None
    text = "\n".join(feasibility_lines(record))
    assert "INFEASIBLE, score 0.500" in text and "cop_ahead 1" in text
    assert f"left_knee_pitch{'':<7}    4.00" in text  # the limit column
    assert feasibility_label(record)[0].startswith("INFEASIBLE 0.50 (hand of god")
    assert feasibility_label(record)[1].endswith("/4.0 Nm")


def test_an_independent_plain_mujoco_computation_agrees(robot, fm):
    """scripts/check_feasibility.py rebuilds the torques another way (mj_differentiatePos
    velocities, M qacc + bias from mj_forward/mj_fullM, per-point mj_jac at the geoms' ends,
    scipy NNLS): on a jump with contact changes and flight the two agree to 1e-6."""
    import importlib.util
    from pathlib import Path

    from amp.convert import ConvertConfig, clip_from_qpos
    from amp.kinematics import differentiate_qpos

    spec = importlib.util.spec_from_file_location(
        "check_feasibility", Path(__file__).resolve().parents[1] / "scripts/check_feasibility.py")
    check = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(check)
    qpos = _jump(robot, 0.1)
    qpos[:, 0] += np.linspace(0.0, 0.2, len(qpos))  # drifting forward while turning
    yaw = np.linspace(0.0, 0.6, len(qpos))
    qpos[:, 3:7] = np.stack([np.cos(yaw / 2), 0 * yaw, 0 * yaw, np.sin(yaw / 2)], axis=1)
    qvel = differentiate_qpos(qpos, 50.0)
    contact = clip_from_qpos(qpos, qvel, robot, ConvertConfig(), "j").features[:, 25:29] > 0.5
    ours = clip_feasibility(fm, qpos, qvel, 50.0, contact, CONFIG).dynamics.torque
    plain = check.plain_torques(robot.model, robot.contact_site_ids, qpos, 50.0, contact,
                                CONFIG, effort_weight=1.0)
    np.testing.assert_allclose(plain, ours, atol=1e-6 * np.abs(ours).max())


# --- in the pipeline: convert stores it, merge uses it, inspect shows it -----------------------

def _write_motions(robot, directory) -> None:
    from robots.motion import RobotMotion, write_motion

    stand = np.repeat(robot.keyframe_qpos()[None], 51, axis=0)  # 1 s
    for name, qpos in (("stand", stand), ("tall_jump", _jump(robot, 0.5))):
        write_motion(directory / f"{name}.h5", RobotMotion(
            qpos=qpos, human_joints=np.zeros((len(qpos), 1, 3)), fps=50.0, robot="wildrobot",
            joint_names=robot.spec.joint_names, source=f"test/{name}.npz",
            source_sha256="0" * 64, body_model="skeleton"))


def test_convert_stores_feasibility_and_merge_weights_or_drops_by_it(robot, tmp_path):
    from amp.clipfile import read_clip
    from amp.convert import ConvertConfig
    from amp.inspect import describe
    from amp.merge import MergeConfig, read_merged, write_merged
    from amp.stages import convert_directory, merge_directory

    (tmp_path / "motions").mkdir()
    _write_motions(robot, tmp_path / "motions")
    report = convert_directory(tmp_path / "motions", tmp_path / "clips", ConvertConfig(),
                               progress=False, feasibility=CONFIG)
    summary = report.extra["feasibility"]
    assert summary["clips"] == 2 and summary["feasible_clips"] == 1
    assert summary["per_clip"]["stand"]["score"] == 1.0
    jump = read_clip(tmp_path / "clips/tall_jump.h5")
    assert jump.feasibility["feasible"] is False
    assert jump.feasible_frame.dtype == bool and jump.feasible_frame.shape == (jump.num_frames,)
    assert jump.feasibility["score"] == pytest.approx(jump.feasible_frame.mean())
    score = jump.feasibility["score"]

    # weight: duration x max(score, min_weight), normalized
    data, merged = merge_directory(tmp_path / "clips", MergeConfig(
        feasibility=FeasibilityPolicy(policy="weight", min_weight=0.9)), progress=False)
    # clips sorted by name: stand (1 s, score 1), tall_jump (score below 0.9: floored)
    raw = np.array([1.0 * 1.0, (jump.num_frames - 1) / 50.0 * max(score, 0.9)])
    np.testing.assert_allclose(data.clip_weight, raw / raw.sum())
    np.testing.assert_allclose(data.clip_feasibility, [1.0, score])
    assert merged.extra["feasibility"]["weighted_down"] == [
        {"clip": "tall_jump", "score": round(score, 6), "multiplier": 0.9}]
    write_merged(tmp_path / "merged.h5", data)
    assert read_merged(tmp_path / "merged.h5").clip_feasibility.tolist() == [1.0, score]
    text = describe(tmp_path / "merged.h5")
    assert "feasible" in text and f"{score:>8.2f}" in text
    assert "INFEASIBLE" in describe(tmp_path / "clips/tall_jump.h5")

    # drop: the jump is left out, and the metrics say why
    data, merged = merge_directory(tmp_path / "clips", MergeConfig(
        feasibility=FeasibilityPolicy(policy="drop", min_score=0.9, max_drop_share=0.9)),
        progress=False)
    assert data.clip_name == ("stand",)
    assert merged.extra["feasibility"]["dropped"][0]["clip"] == "tall_jump"
    # ... but never most of the data without being asked
    with pytest.raises(FeasibilityError, match="leave out"):
        merge_directory(tmp_path / "clips", MergeConfig(
            feasibility=FeasibilityPolicy(policy="drop", min_score=0.9)), progress=False)
