"""The MJX walking environment: contract, AMP parity with the dataset, standing, falls, DR.

One jitted ``vmap(reset)`` and one jitted ``vmap(step)`` at batch 8 per registered env serve
every test (module-scoped), so the file compiles the physics once.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from amp_fixtures import synthetic_motion, write_synthetic_dataset
from mujoco import mjx

from amp.merge import read_merged
from robots.config import ConfigError
from training import envs
from training.envs import kinematics
from training.envs import rewards as rewards_module
from training.envs.base import EpisodeConditions, ReferenceStates, reference_states
from training.envs.randomization import nominal_factors

BATCH = 8


@dataclass
class Jitted:
    env: envs.Env
    reset: object
    step: object
    kinematics: object  # (qpos [B, nq], qvel [B, nv]) -> (mjx.Data, AMP frames [B, 29])

    def reset_batch(self, seed: int) -> envs.State:
        return self.reset(jax.random.split(jax.random.PRNGKey(seed), BATCH))


_CACHE: dict[str, Jitted] = {}


def jitted(name: str) -> Jitted:
    if name not in _CACHE:
        env = envs.load(name)
        if env.needs_reference_states:
            env = env.with_reference_states(_synthetic_reference())

        def kinematics(qpos: jax.Array, qvel: jax.Array) -> tuple[mjx.Data, jax.Array]:
            data = env.kinematic_data(qpos, qvel)
            return data, env.amp_frame(data)

        _CACHE[name] = Jitted(env, jax.jit(jax.vmap(env.reset)), jax.jit(jax.vmap(env.step)),
                              jax.jit(jax.vmap(kinematics)))
    return _CACHE[name]


def _synthetic_reference() -> ReferenceStates:
    """Reference states (and contacts) of two short analytic walks, for tasks that follow clips."""
    import robots

    robot = robots.load("wildrobot")
    with tempfile.TemporaryDirectory() as folder:
        data = read_merged(write_synthetic_dataset(Path(folder) / "merged.h5", robot,
                                                   num_clips=2, duration_s=2.0))
    return reference_states(data.qpos, data.qvel, data.clip_length, data.clip_weight,
                            data.features)


@pytest.fixture(scope="module")
def walk() -> Jitted:
    return jitted("wildrobot_walk")


def _with(state: envs.State, **info_updates: object) -> envs.State:
    return state.replace(info={**state.info, **info_updates})


# --------------------------------------------------------------------------- registry, config
def test_registry_lists_default_and_rejects_unknown_names() -> None:
    assert envs.DEFAULT_ENV in envs.registered()
    with pytest.raises(envs.UnknownEnvError, match="wildrobot_walk"):
        envs.load("no_such_env")


def test_overrides_are_typed_and_unknown_keys_list_valid_ones() -> None:
    env = envs.load("wildrobot_walk", {"rewards": {"weights": {"torque": -0.5}},
                                       "commands": {"vx_mps": [0.0, 0.2]}})
    assert env.config.rewards.weights.torque == -0.5
    assert env.config.rewards.weights.alive == type(env.config.rewards.weights)().alive
    assert env.config.commands.vx_mps == (0.0, 0.2)
    with pytest.raises(ConfigError, match="valid keys.*tracking_lin_vel"):
        envs.load("wildrobot_walk", {"rewards": {"weights": {"torqe": 1.0}}})
    with pytest.raises(ConfigError, match="evenly"):
        envs.load("wildrobot_walk", {"sim_dt": 0.003})
    with pytest.raises(ConfigError, match=r"action_filter_alpha=1.0 must lie in \[0, 1\)"):
        envs.load("wildrobot_walk", {"action_filter_alpha": 1.0})


def test_contract_attributes(walk: Jitted) -> None:
    env = walk.env
    assert (env.action_size, env.amp_feature_size, env.control_dt) == (11, 29, 0.02)
    assert env.episode_length == 1000  # 20 s at 50 Hz
    assert env.observation_size == 3 + 3 + 11 + 11 + 11 + 3
    assert env.substeps == 4


# --------------------------------------------------------------------------- smoke
@pytest.mark.parametrize("name", envs.registered())
def test_smoke_reset_and_ten_steps(name: str) -> None:
    jit = jitted(name)
    env = jit.env
    state = jit.reset_batch(0)
    actions = jax.random.uniform(jax.random.PRNGKey(1), (10, BATCH, env.action_size),
                                 minval=-1.0, maxval=1.0)
    for action in actions:
        previous_frame = state.info["amp_frame"]
        state = jit.step(state, action)
        np.testing.assert_array_equal(state.info["amp_prev_frame"], previous_frame)
    assert state.obs.shape == (BATCH, env.observation_size)
    assert state.privileged_obs.shape == (BATCH, env.privileged_observation_size)
    assert np.all(np.isfinite(state.obs)) and np.all(np.isfinite(state.privileged_obs))
    assert state.reward.shape == (BATCH,) and np.all(np.isfinite(state.reward))
    for key in ("amp_prev_frame", "amp_terminal_frame", "amp_frame"):
        assert state.info[key].shape == (BATCH, env.amp_feature_size)
    assert state.info["command"].shape == (BATCH, 3)
    for term in env.reward_names:
        assert np.all(np.isfinite(state.metrics[term])), term
    total = sum(state.metrics[term] for term in env.reward_names)
    np.testing.assert_allclose(total, state.reward, rtol=1e-5, atol=1e-5)
    # Servo torque saturates at the (randomized) ±4 N·m, as on the real servos.
    domain = state.info.get("domain")
    limit = 4.0 * (np.asarray(domain.strength_scale) if domain is not None else 1.0)
    assert np.all(np.abs(np.asarray(state.data.actuator_force)) <= limit + 1e-4)
    running = np.asarray(state.done) == 0
    np.testing.assert_array_equal(state.info["amp_frame"][running],
                                  state.info["amp_terminal_frame"][running])


# --------------------------------------------------------------------------- AMP parity
def test_amp_frames_match_the_converted_dataset(walk: Jitted) -> None:
    from amp.convert import ConvertConfig, convert_motion

    env = walk.env
    motion = synthetic_motion(env.robot.spec, fps=60.0, duration_s=2.0)
    clip = convert_motion(motion, env.robot, ConvertConfig(contact=env.config.contact), "walk")
    height = clip.contact_pos[..., 2]
    # Both contact states occur, and no point sits so close to the threshold that float32
    # vs float64 kinematics could flip it.
    contacts = clip.features[:, 25:29]
    assert 0 < contacts.mean() < 1
    assert np.min(np.abs(height - env.config.contact.height_m)) > 1e-4

    # kinematic_data + amp_frame: the same kinematics and frame code that reset and step run,
    # in chunks of BATCH frames so the batch-8 compile is shared with the standing tests.
    frames = np.concatenate([
        np.asarray(walk.kinematics(_padded(clip.qpos, start), _padded(clip.qvel, start))[1])
        for start in range(0, clip.num_frames, BATCH)
    ])[:clip.num_frames]
    assert frames.shape == clip.features.shape
    np.testing.assert_allclose(frames, clip.features, rtol=0, atol=1e-4)


def _padded(values: np.ndarray, start: int) -> np.ndarray:
    """values[start:start + BATCH] as float32, padded with its last row to BATCH rows."""
    chunk = values[start:start + BATCH]
    pad = np.repeat(chunk[-1:], BATCH - len(chunk), axis=0)
    return np.concatenate([chunk, pad]).astype(np.float32)


# --------------------------------------------------------------------------- standing, falls
def _nominal_standing(walk: Jitted) -> envs.State:
    """Batch at the exact standing keyframe with nominal physics and no pushes."""
    env = walk.env
    state = walk.reset_batch(3)
    data, frames = _standing_kinematics(walk)
    nominal = nominal_factors(env.model, env.robot.spec.num_joints)
    factors = jax.tree.map(lambda x: jnp.broadcast_to(x, (BATCH, *x.shape)), nominal)
    state = state.replace(data=data)
    return _with(state, domain=factors, next_push_step=jnp.full(BATCH, 10**6, jnp.int32),
                 amp_frame=frames)


def _standing_kinematics(walk: Jitted) -> tuple[mjx.Data, jax.Array]:
    keyframe = np.tile(walk.env.robot.keyframe_qpos(), (BATCH, 1)).astype(np.float32)
    return walk.kinematics(keyframe, np.zeros((BATCH, walk.env.mj_model.nv), np.float32))


def test_zero_action_stands_for_five_seconds(walk: Jitted) -> None:
    env = walk.env
    state = _nominal_standing(walk)
    zero = jnp.zeros((BATCH, env.action_size))
    heights = []
    for _ in range(int(5.0 / env.control_dt)):
        state = walk.step(state, zero)
        assert not np.any(state.done), "fell or reset while standing with zero action"
        heights.append(np.asarray(state.data.qpos[:, 2]))
    assert np.asarray(state.info["step"]).tolist() == [250] * BATCH
    standing = env.robot.spec.standing_height_m
    assert np.all(np.abs(np.array(heights) - standing) < 0.02)
    joints = np.asarray(state.data.qpos[:, 7:])
    np.testing.assert_allclose(joints, np.tile(env.robot.keyframe_qpos()[7:], (BATCH, 1)),
                               atol=0.05)
    assert np.all(np.abs(state.data.qvel) < 0.05)  # at rest, not creeping
    assert np.all(state.info["amp_frame"][:, 25:29] == 1.0)  # all four points on the floor


def test_fall_ends_the_episode_and_resets(walk: Jitted) -> None:
    env = walk.env
    state = _nominal_standing(walk)
    lying = np.array(env.robot.keyframe_qpos())
    lying[2] = 0.12
    lying[3:7] = [np.cos(np.pi / 4), np.sin(np.pi / 4), 0.0, 0.0]  # 90 deg about x
    qpos = state.data.qpos.at[0].set(lying)
    qvel = state.data.qvel.at[2, 7].set(jnp.nan)  # a diverged simulation counts as a fall
    step = state.info["step"].at[0].set(37).at[1].set(env.episode_length - 1)
    state = _with(state.replace(data=state.data.replace(qpos=qpos, qvel=qvel)), step=step)
    after = walk.step(state, jnp.zeros((BATCH, env.action_size)))

    assert after.done.tolist() == [1.0, 1.0, 1.0] + [0.0] * (BATCH - 3)
    assert after.info["truncated"].tolist() == [0.0, 1.0, 0.0] + [0.0] * (BATCH - 3)
    assert np.all(np.isfinite(after.reward)) and np.all(np.isfinite(after.obs))
    assert np.all(np.isfinite(after.info["amp_terminal_frame"]))
    assert float(after.metrics["fell"][0]) == 1.0 and float(after.metrics["fell"][1]) == 0.0
    weights = env.config.rewards.weights
    assert float(after.metrics["termination"][0]) == pytest.approx(weights.termination)
    # The finished envs restarted; the others carried on.
    assert after.info["step"].tolist() == [0, 0, 0] + [1] * (BATCH - 3)
    assert float(after.data.qpos[0, 2]) == pytest.approx(env.robot.spec.standing_height_m,
                                                         abs=0.01)
    # The discriminator sees the real fall transition, the next step starts from the reset.
    assert float(after.info["amp_terminal_frame"][0, 24]) < 0.2
    assert float(after.info["amp_frame"][0, 24]) > 0.45
    np.testing.assert_array_equal(after.info["amp_prev_frame"], state.info["amp_frame"])


# --------------------------------------------------------------------------- randomization
def test_randomization_within_ranges_varies_and_is_reproducible(walk: Jitted) -> None:
    env = walk.env
    cfg = env.config.randomization
    state = walk.reset_batch(11)
    factors = state.info["domain"]

    def within(values: jax.Array, bounds: tuple[float, float]) -> None:
        values = np.asarray(values)
        assert np.all(values >= bounds[0]) and np.all(values <= bounds[1])
        assert np.std(values) > 0.05 * (bounds[1] - bounds[0])

    within(factors.friction, cfg.friction)
    within(factors.mass_scale[:, 1:], cfg.mass_scale)
    assert np.all(factors.mass_scale[:, 0] == 1.0)
    within(factors.damping_scale, cfg.damping_scale)
    within(factors.armature_scale, cfg.armature_scale)
    within(factors.strength_scale, cfg.strength_scale)
    within(factors.latency_steps, cfg.latency_steps)
    commands = np.asarray(state.info["command"])
    within(commands[:, 0], env.config.commands.vx_mps)
    within(commands[:, 2], env.config.commands.yaw_rate_rps)

    again = walk.reset_batch(11)
    for a, b in zip(jax.tree.leaves(state.info["domain"]), jax.tree.leaves(again.info["domain"]),
                    strict=True):
        np.testing.assert_array_equal(a, b)
    other = walk.reset_batch(12)
    assert not np.array_equal(other.info["domain"].friction, factors.friction)

    # The factors reach the physics model and the privileged observation.
    one = jax.tree.map(lambda x: x[0], factors)
    model = env.physics_model(one)
    np.testing.assert_allclose(model.geom_friction[:, 0], one.friction)
    np.testing.assert_allclose(model.body_mass, env.model.body_mass * one.mass_scale, rtol=1e-6)
    np.testing.assert_allclose(model.actuator_forcerange[:, 1], 4.0 * one.strength_scale,
                               rtol=1e-6)
    offsets = np.cumsum([0] + [size for _, size in env.privileged_observation_layout()])
    names = [name for name, _ in env.privileged_observation_layout()]
    start = offsets[names.index("domain_factors")]
    assert float(state.privileged_obs[0, start]) == pytest.approx(float(one.friction))


def test_push_applies_a_bounded_horizontal_force(walk: Jitted) -> None:
    env = walk.env
    state = walk.reset_batch(5)
    state = _with(state, next_push_step=state.info["step"])
    after = walk.step(state, jnp.zeros((BATCH, env.action_size)))
    force = np.asarray(after.info["push_force"])
    magnitude = np.linalg.norm(force, axis=1)
    low, high = env.config.randomization.push.force_n
    assert np.all((magnitude >= low - 1e-4) & (magnitude <= high + 1e-4))
    assert np.all(force[:, 2] == 0.0)
    np.testing.assert_allclose(after.privileged_obs[:, -3:], force, atol=1e-6)
    assert np.all(np.asarray(after.info["next_push_step"]) > 1)


def test_env_frame_uses_mjx_site_positions(walk: Jitted) -> None:
    """amp_frame reads the contact points from data.site_xpos of robot.contact_site_ids."""
    env = walk.env
    data, frames = _standing_kinematics(walk)
    sites = np.asarray(data.site_xpos)[:, env.robot.contact_site_ids]
    expected_contact = (sites[..., 2] < env.config.contact.height_m).astype(np.float32)
    np.testing.assert_array_equal(np.asarray(frames)[:, 25:29], expected_contact)
    assert np.all(expected_contact == 1.0)  # the keyframe stands on all four points


def test_commands_are_resampled_within_ranges(walk: Jitted) -> None:
    env = walk.env
    state = walk.reset_batch(6)
    state = _with(state, next_command_step=state.info["step"] + 1)
    after = walk.step(state, jnp.zeros((BATCH, env.action_size)))
    before_cmd, after_cmd = np.asarray(state.info["command"]), np.asarray(after.info["command"])
    assert np.all(np.any(before_cmd != after_cmd, axis=1))
    cfg = env.config.commands
    for column, (low, high) in enumerate((cfg.vx_mps, cfg.vy_mps, cfg.yaw_rate_rps)):
        assert np.all((after_cmd[:, column] >= low) & (after_cmd[:, column] <= high))
    interval = np.asarray(after.info["next_command_step"]) - 1
    low_steps, high_steps = (round(t / env.control_dt) for t in cfg.resample_interval_s)
    assert np.all((interval >= low_steps) & (interval <= high_steps))
    np.testing.assert_array_equal(after.obs[:, -3:], after_cmd)  # command is not noised


def test_speed_and_yaw_rate_are_scored_on_their_averages() -> None:
    """With ``tracking_window_s`` the tracking term scores the exponential average of the
    heading velocity, carried in ``info``: from an average of 0.3 m/s at the commanded
    0.3 m/s, one step of standing still moves it by (1 - e^(-dt/tau)) of the way to the new
    velocity, and the term is exp(-|cmd - average|^2 / sigma) of that. The yaw rate likewise
    with ``yaw_tracking_window_s`` (here 1 s, from an average at the commanded 0.4 rad/s)."""
    env = envs.load("wildrobot_walk", {"rewards.tracking_window_s": 0.5,
                                       "rewards.yaw_tracking_window_s": 1.0,
                                       "randomization.enabled": False,
                                       "noise.enabled": False})
    rewards = env.config.rewards
    start = jax.jit(env.reset_under)
    step = jax.jit(env.step)
    command = jnp.array([0.3, 0.0, 0.4])
    conditions = EpisodeConditions(command=command, factors=env.nominal_factors())
    state = start(jax.random.PRNGKey(0), conditions)
    state = state.replace(info={**state.info, "tracked_velocity": jnp.array([0.3, 0.0, 0.0]),
                                "tracked_yaw_rate": jnp.array(0.4)})
    after = step(state, jnp.zeros(env.action_size))
    velocity = np.asarray(env._heading_velocity(after.data))
    weight = 1.0 - np.exp(-env.control_dt / 0.5)
    expected = np.array([0.3, 0.0, 0.0]) + weight * (velocity - [0.3, 0.0, 0.0])
    np.testing.assert_allclose(after.info["tracked_velocity"], expected, atol=1e-6)
    error_sq = np.sum((np.array([0.3, 0.0]) - expected[:2]) ** 2)
    score = np.exp(-error_sq / rewards.tracking_sigma_lin)
    assert float(after.metrics["tracking_lin_vel"]) == pytest.approx(
        rewards.weights.tracking_lin_vel * score, rel=1e-5)
    yaw_rate = float(kinematics.yaw_rate_world(np.asarray(after.data.qpos),
                                               np.asarray(after.data.qvel)))
    expected_yaw = 0.4 + (1.0 - np.exp(-env.control_dt / 1.0)) * (yaw_rate - 0.4)
    assert float(after.info["tracked_yaw_rate"]) == pytest.approx(expected_yaw, abs=1e-6)
    assert float(after.metrics["tracking_ang_vel"]) == pytest.approx(
        rewards.weights.tracking_ang_vel
        * np.exp(-(0.4 - expected_yaw) ** 2 / rewards.tracking_sigma_ang), rel=1e-5)
    assert abs(yaw_rate - 0.4) > 0.3  # standing still: per step the term would be far lower
    # The instantaneous velocity of a robot standing still is far from 0.3 m/s; the average
    # after one step is not, so the term is near its maximum.
    assert abs(velocity[0]) < 0.1 and score > 0.95


def test_yaw_rate_error_prices_the_per_step_yaw_rate_even_when_tracking_is_averaged() -> None:
    """``yaw_rate_error`` is weight x (commanded - world-z yaw rate)^2 of the step's own yaw
    rate, not of the average ``tracking_ang_vel`` scores with ``yaw_tracking_window_s``."""
    env = envs.load("wildrobot_walk", {"rewards.weights.yaw_rate_error": -0.3,
                                       "rewards.yaw_tracking_window_s": 1.0,
                                       "randomization.enabled": False,
                                       "noise.enabled": False})
    command = jnp.array([0.2, 0.0, 0.5])
    conditions = EpisodeConditions(command=command, factors=env.nominal_factors())
    state = jax.jit(env.reset_under)(jax.random.PRNGKey(1), conditions)
    state = state.replace(info={**state.info, "tracked_yaw_rate": jnp.array(0.5)})
    after = jax.jit(env.step)(state, jnp.full(env.action_size, 0.3))
    yaw_rate = float(kinematics.yaw_rate_world(np.asarray(after.data.qpos),
                                               np.asarray(after.data.qvel)))
    assert float(after.metrics["yaw_rate_error"]) == pytest.approx(
        -0.3 * (0.5 - yaw_rate) ** 2, rel=1e-5, abs=1e-9)
    averaged = float(after.info["tracked_yaw_rate"])
    assert abs(averaged - 0.5) < abs(yaw_rate - 0.5)  # the average moved less than the step
    assert float(after.metrics["yaw_rate_error"]) < -0.3 * 0.01  # 0.5 rad/s from a standstill


def test_smoothness_terms_price_the_velocity_change_of_the_step() -> None:
    """``joint_acc`` is weight x the sum over the actuated joints of ((qd after - qd before)
    / control dt)^2, ``root_ang_acc`` the same of the root's angular velocity; a step that
    changes nothing (a resting robot under its resting action) costs nothing."""
    env = envs.load("wildrobot_walk", {"rewards.weights.joint_acc": -1e-4,
                                       "rewards.weights.root_ang_acc": -1e-3,
                                       "randomization.enabled": False,
                                       "noise.enabled": False})
    conditions = EpisodeConditions(command=jnp.zeros(3), factors=env.nominal_factors())
    state = jax.jit(env.reset_under)(jax.random.PRNGKey(2), conditions)
    before = np.asarray(state.data.qvel, np.float64)
    after = jax.jit(env.step)(state, jnp.full(env.action_size, 0.4))
    change = (np.asarray(after.data.qvel, np.float64) - before) / env.control_dt
    joints = np.asarray(env.robot.joint_dof_addresses)
    assert joints.size == env.action_size and joints.min() >= 6  # the free joint's are 0-5
    expected_joint = -1e-4 * np.sum(change[joints] ** 2)
    expected_root = -1e-3 * np.sum(change[3:6] ** 2)
    assert expected_joint < -1e-3  # 0.2 rad of target jump moves the joints
    assert float(after.metrics["joint_acc"]) == pytest.approx(expected_joint, rel=1e-4)
    assert float(after.metrics["root_ang_acc"]) == pytest.approx(expected_root, rel=1e-4,
                                                                 abs=1e-9)
    still = rewards_module.velocity_change(jnp.ones(4), jnp.ones(4), env.control_dt)
    assert float(still) == 0.0
    assert float(rewards_module.velocity_change(jnp.array([0.1, -0.2]), jnp.zeros(2), 0.02)) \
        == pytest.approx((5.0**2 + 10.0**2), rel=1e-6)


def test_heading_term_scores_the_drift_from_the_commanded_heading() -> None:
    """The commanded heading starts at the episode's yaw and advances by the commanded yaw
    rate each step; the term is exp(-wrap(yaw - target)^2 / sigma) of the yaw after the step."""
    env = envs.load("wildrobot_walk", {"rewards.weights.heading": 2.0,
                                       "randomization.enabled": False,
                                       "noise.enabled": False})
    sigma = env.config.rewards.heading_sigma
    step = jax.jit(env.step)
    command = jnp.array([0.0, 0.0, 0.5])
    conditions = EpisodeConditions(command=command, factors=env.nominal_factors())
    state = jax.jit(env.reset_under)(jax.random.PRNGKey(0), conditions)
    start_yaw = float(kinematics.root_yaw(np.asarray(state.data.qpos)))
    assert float(state.info["target_heading"]) == pytest.approx(start_yaw, abs=1e-6)
    state = state.replace(info={**state.info, "target_heading": jnp.array(start_yaw + 0.1)})
    for _ in range(3):
        state = step(state, jnp.zeros(env.action_size))
    target = start_yaw + 0.1 + 3 * 0.5 * env.control_dt
    assert float(state.info["target_heading"]) == pytest.approx(target, abs=1e-5)
    yaw = float(kinematics.root_yaw(np.asarray(state.data.qpos)))
    score = np.exp(-(yaw - target) ** 2 / sigma)
    assert 0.3 < score < 0.95  # standing still while the target turns away
    assert float(state.metrics["heading"]) == pytest.approx(2.0 * score, rel=1e-4)
    # Across the +-pi seam the target wraps and the error is the short way round.
    near_pi = state.replace(info={**state.info, "target_heading": jnp.array(np.pi - 0.005)})
    wrapped = float(step(near_pi, jnp.zeros(env.action_size)).info["target_heading"])
    assert wrapped == pytest.approx(-np.pi - 0.005 + 0.5 * env.control_dt, abs=1e-5)
    across = float(rewards_module.heading(jnp.array(np.pi - 0.01), jnp.array(-np.pi + 0.01),
                                          sigma))
    assert across == pytest.approx(np.exp(-0.02 ** 2 / sigma), rel=1e-4)


def test_reward_kernel_widths_must_be_positive() -> None:
    with pytest.raises(ConfigError, match="heading_sigma"):
        envs.load("wildrobot_walk", {"rewards.heading_sigma": 0.0})
