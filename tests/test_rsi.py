"""Reference-state initialization: merged.h5 schema 2 carries qpos/qvel, episodes start there."""

from __future__ import annotations

from pathlib import Path

import h5py
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from amp_fixtures import write_synthetic_dataset

import robots
from amp.clipfile import layout_json
from amp.dataset import load_dataset
from amp.merge import DatasetFileError, MergeConfig, merge_features, read_merged, write_merged
from robots.errors import AmpkitError
from training import envs
from training.envs.base import reference_states


@pytest.fixture(scope="module")
def robot() -> robots.Robot:
    return robots.load("wildrobot")


@pytest.fixture(scope="module")
def walk_dataset(tmp_path_factory: pytest.TempPathFactory, robot: robots.Robot) -> Path:
    path = tmp_path_factory.mktemp("rsi") / "merged.h5"
    return write_synthetic_dataset(path, robot, num_clips=2, duration_s=2.0)


def _env_with(data: object, fraction: float = 1.0) -> envs.Env:
    env = envs.load("wildrobot_walk", {"reference_init_fraction": fraction,
                                       "randomization": {"enabled": False},
                                       "noise": {"enabled": False}})
    return env.with_reference_states(reference_states(data.qpos, data.qvel, data.clip_length,
                                                      data.clip_weight))


def test_merged_file_carries_reference_states_aligned_with_features(walk_dataset: Path,
                                                                    robot: robots.Robot) -> None:
    data = read_merged(walk_dataset)
    assert data.schema_version == 2
    assert data.qpos.shape == (data.num_frames, robot.model.nq)
    assert data.qvel.shape == (data.num_frames, robot.model.nv)
    # Row k of the states gives row k of the features (root height is qpos z; joints too).
    np.testing.assert_allclose(data.features[:, 24], data.qpos[:, 2], atol=1e-6)


def test_episode_started_at_frame_k_has_the_datasets_frame_k(walk_dataset: Path) -> None:
    data = read_merged(walk_dataset)
    env = _env_with(data)
    frames = jnp.asarray([0, 17, data.num_frames // 2, data.num_frames - 1])
    keys = jax.random.split(jax.random.PRNGKey(0), frames.shape[0])
    states = jax.jit(jax.vmap(env.reset_to_reference))(keys, frames)
    np.testing.assert_allclose(np.asarray(states.info["amp_frame"]),
                               data.features[np.asarray(frames)], atol=1e-4)
    assert np.all(np.abs(np.asarray(states.data.qpos[:, :2])) < 1e-7)  # moved to the origin


def test_reset_mixes_reference_and_standing_starts_by_fraction(walk_dataset: Path,
                                                               robot: robots.Robot) -> None:
    data = read_merged(walk_dataset)
    count = 256
    keys = jax.random.split(jax.random.PRNGKey(3), count)
    env = _env_with(data, 0.5)
    joints = np.asarray(jax.jit(jax.vmap(env.reset))(keys).data.qpos[:, 7:])
    # A reference start equals some dataset row exactly; a standing start (noisy) does not.
    distance = np.min(np.abs(joints[:, None, :] - data.qpos[None, :, 7:]).max(-1), axis=1)
    share = float(np.mean(distance < 1e-6))
    assert 0.4 <= share <= 0.6, share  # binomial(256, 0.5): 0.4..0.6 is beyond 3 sigma


def test_standing_reference_frame_does_not_fall_under_zero_action(tmp_path: Path,
                                                                  robot: robots.Robot) -> None:
    stand = robot.keyframe_qpos().astype(np.float64)
    frames = 20
    qpos = np.repeat(stand[None], frames, axis=0)
    qvel = np.zeros((frames, robot.model.nv))
    env = envs.load("wildrobot_walk", {"randomization": {"enabled": False},
                                       "noise": {"enabled": False}})
    features = np.stack([np.asarray(env.amp_frame(env.kinematic_data(q, v)))
                         for q, v in zip(qpos[:1], qvel[:1], strict=True)] * frames)
    merged = merge_features([("stand", features)], 50.0, robot.name,
                            layout_json(robot.spec.amp_joint_names), MergeConfig(),
                            states=[(qpos, qvel)])
    env = _env_with(merged)
    state = jax.jit(env.reset_to_reference)(jax.random.PRNGKey(0), jnp.asarray(5))
    step = jax.jit(env.step)
    zero = jnp.zeros(env.action_size)
    heights, fell = [], 0.0
    for _ in range(100):  # 2 s
        state = step(state, zero)
        heights.append(float(state.data.qpos[2]))
        fell = max(fell, float(state.metrics["fell"]))
    assert fell == 0.0
    assert abs(heights[-1] - stand[2]) < 0.02


def test_old_schema_is_refused_with_a_clear_message(walk_dataset: Path, tmp_path: Path) -> None:
    old = tmp_path / "old.h5"
    old.write_bytes(walk_dataset.read_bytes())
    with h5py.File(old, "r+") as f:
        f.attrs["schema_version"] = 1
        del f["qpos"], f["qvel"]
    with pytest.raises(DatasetFileError, match=r"old\.h5.*schema_version 1.*re-run merge"):
        read_merged(old)


def test_rsi_without_reference_states_is_refused(tmp_path: Path, robot: robots.Robot) -> None:
    from training.train import with_reference_init

    features = np.zeros((10, 29), np.float32)
    features[:, 24] = 0.48
    bare = merge_features([("bare", features)], 50.0, robot.name,
                          layout_json(robot.spec.amp_joint_names), MergeConfig())
    write_merged(tmp_path / "bare.h5", bare)
    dataset = load_dataset(tmp_path / "bare.h5", robot.spec)
    env = envs.load("wildrobot_walk", {"reference_init_fraction": 0.5})
    with pytest.raises(AmpkitError, match=r"bare\.h5.*reference_init_fraction"):
        with_reference_init(env, dataset)
    assert with_reference_init(envs.load("wildrobot_walk"), dataset).reference is None


# ---------------------------------------------------------------- the clock's phase at RSI
def _stepping_contacts(frames: int, period: int, stance: int, right_offset: int) -> np.ndarray:
    """[frames, 2] per-foot contacts of a regular walk: each foot down ``stance`` frames of
    every ``period``, the left landing at frame 0, the right ``right_offset`` frames later."""
    t = np.arange(frames)
    left = (t % period) < stance
    right = ((t - right_offset) % period) < stance
    return np.stack([left, right], axis=-1).astype(np.float32)


def test_reference_gait_phase_counts_from_each_left_touchdown() -> None:
    from training.envs.kinematics import reference_gait_phase

    contacts = _stepping_contacts(200, period=50, stance=32, right_offset=25)
    phase = reference_gait_phase(contacts, np.asarray([200]), 0.02)
    # Left touchdowns at 50, 100, 150 (frame 0 is no landing: nothing before it was in the
    # air), so the cycles 50-100 and 100-150 are counted; the partial ones are not.
    np.testing.assert_allclose(phase[50:150], np.tile(np.arange(50) / 50.0, 2), atol=1e-6)
    assert np.all(phase[:50] == 0.0) and np.all(phase[150:] == 0.0)
    # The clock's own convention: the left foot is down at the start of its cycle.
    assert np.all(contacts[50:150][phase[50:150] < 0.6, 0] == 1.0)


def test_reference_gait_phase_ignores_scuffs_and_keeps_clips_apart() -> None:
    from training.envs.kinematics import reference_gait_phase

    walk = _stepping_contacts(200, period=50, stance=32, right_offset=25)
    scuffed = walk.copy()
    scuffed[140:142, 0] = 1.0  # the left swing foot brushes the floor for 40 ms
    stand = np.ones((100, 2), np.float32)
    both = np.concatenate([scuffed, stand])
    phase = reference_gait_phase(both, np.asarray([200, 100]), 0.02)
    clean = reference_gait_phase(walk, np.asarray([200]), 0.02)
    np.testing.assert_allclose(phase[:200], clean, atol=1e-6)
    assert np.all(phase[200:] == 0.0)  # standing has no phase


def test_reference_gait_phase_refuses_hops_and_implausible_cycles() -> None:
    from training.envs.kinematics import reference_gait_phase

    hops = _stepping_contacts(200, period=50, stance=32, right_offset=0)  # both feet together
    assert np.all(reference_gait_phase(hops, np.asarray([200]), 0.02) == 0.0)
    slow = _stepping_contacts(600, period=150, stance=100, right_offset=75)  # 3-s cycles
    assert np.all(reference_gait_phase(slow, np.asarray([600]), 0.02) == 0.0)


def test_rsi_start_takes_the_clock_phase_of_its_reference_frame(walk_dataset: Path) -> None:
    data = read_merged(walk_dataset)
    gait = {"frequency_hz": 1.0, "phase_from_reference": True}
    env = envs.load("wildrobot_walk", {"reference_init_fraction": 1.0, "gait": gait,
                                       "randomization": {"enabled": False},
                                       "noise": {"enabled": False}})
    reference = reference_states(data.qpos, data.qvel, data.clip_length, data.clip_weight,
                                 data.features)
    phases = (np.arange(data.num_frames) % 37) / 37.0
    env = env.with_reference_states(reference.replace(gait_phase=jnp.asarray(phases,
                                                                             jnp.float32)))
    frames = jnp.asarray([3, 20, 40])
    keys = jax.random.split(jax.random.PRNGKey(0), 3)
    states = jax.jit(jax.vmap(env.reset_to_reference))(keys, frames)
    expected = phases[np.asarray(frames)]
    np.testing.assert_allclose(np.asarray(states.info["gait_phase"]), expected, atol=1e-6)
    angle = 2.0 * np.pi * expected
    np.testing.assert_allclose(np.asarray(states.obs[:, -2:]),
                               np.stack([np.sin(angle), np.cos(angle)], -1), atol=1e-5)
    # reset() draws its reference starts the same way: every phase it starts at is a frame's.
    drawn = np.asarray(jax.jit(jax.vmap(env.reset))(jax.random.split(keys[0], 64))
                       .info["gait_phase"])
    assert np.all(np.min(np.abs(drawn[:, None] - phases[None, :]), axis=1) < 1e-6)
    assert len(np.unique(drawn)) > 10
    # Off (the default), a reference start's clock starts at 0 as before.
    plain = envs.load("wildrobot_walk", {"reference_init_fraction": 1.0,
                                         "gait": {"frequency_hz": 1.0}})
    plain = plain.with_reference_states(reference)
    assert float(jax.jit(plain.reset_to_reference)(keys[0], frames[1]).info["gait_phase"]) == 0


def test_phase_from_reference_needs_the_clock_and_the_phases(walk_dataset: Path) -> None:
    from robots.config import ConfigError

    with pytest.raises(ConfigError, match="phase_from_reference needs the gait clock"):
        envs.load("wildrobot_walk", {"gait": {"phase_from_reference": True}})
    data = read_merged(walk_dataset)
    env = envs.load("wildrobot_walk", {"reference_init_fraction": 1.0,
                                       "gait": {"frequency_hz": 1.0,
                                                "phase_from_reference": True}})
    no_features = reference_states(data.qpos, data.qvel, data.clip_length, data.clip_weight)
    with pytest.raises(ConfigError, match="gait phases"):
        env.with_reference_states(no_features).reset_to_reference(jax.random.PRNGKey(0),
                                                                  jnp.asarray(0))
