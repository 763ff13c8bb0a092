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
