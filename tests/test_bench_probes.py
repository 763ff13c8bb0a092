"""The discriminator probes' data handling: time scaling, one-threshold separability and the
deterministic policy's rollout pairs."""

from __future__ import annotations

from pathlib import Path

import jax
import numpy as np
import pytest
from eval_fixtures import shared_checkpoint

from bench.cadence_probe import locomotion_arrays, time_scaled_clip
from bench.disc_ceiling import (
    held_out_split,
    imitator_ranges,
    nearest_transitions,
    uniform_commands,
    windowed_velocity,
)
from bench.disc_probe import deterministic_pairs, threshold_accuracy
from training.policy import load_snapshot


def _ramp_clip(frames: int, speed_mps: float) -> np.ndarray:
    """A clip whose joint 0 turns at 1 rad per frame (50 rad/s at 50 FPS), root moving
    forward at ``speed_mps``, left toe down on even frames."""
    clip = np.zeros((frames, 29), np.float32)
    clip[:, 0] = np.arange(frames)
    clip[:, 9] = 50.0
    clip[:, 18] = speed_mps
    clip[:, 24] = 0.46
    clip[::2, 25] = 1.0
    return clip


def test_time_scaled_clip_resamples_positions_and_scales_velocities() -> None:
    clip = _ramp_clip(9, 0.3)
    faster = time_scaled_clip(clip, 2.0)
    assert faster.shape == (5, 29)  # source frames 0, 2, 4, 6, 8
    np.testing.assert_array_equal(faster[:, 0], [0, 2, 4, 6, 8])
    np.testing.assert_allclose(faster[:, 9], 100.0)
    np.testing.assert_allclose(faster[:, 18], 0.6)
    np.testing.assert_allclose(faster[:, 24], 0.46)
    np.testing.assert_array_equal(faster[:, 25], 1.0)  # every even frame had the toe down
    slower = time_scaled_clip(clip, 0.5)
    assert slower.shape == (17, 29)
    np.testing.assert_allclose(slower[:3, 0], [0.0, 0.5, 1.0])
    np.testing.assert_allclose(slower[:, 9], 25.0)
    np.testing.assert_array_equal(time_scaled_clip(clip, 1.0), clip)


def test_locomotion_arrays_keep_only_moving_clips() -> None:
    walk, stand = _ramp_clip(9, 0.3), _ramp_clip(20, 0.0)
    features = np.concatenate([stand, walk])
    arrays = locomotion_arrays(features, np.array([0, 20]), np.array([20, 9]),
                               np.array([0.9, 0.1]), np.zeros(29), np.ones(29), 2.0)
    assert arrays.features.shape == (5, 29)
    assert arrays.clip_length.tolist() == [5] and arrays.clip_start.tolist() == [0]
    np.testing.assert_allclose(np.asarray(arrays.pair_cdf), [0.25, 0.5, 0.75, 1.0])


def test_threshold_accuracy_of_separable_and_identical_features() -> None:
    rng = np.random.default_rng(0)
    data = rng.normal(size=(400, 2))
    policy = data.copy()
    policy[:, 0] += 100.0  # feature 0 is shifted far apart, feature 1 is identical
    accuracy = threshold_accuracy(data, policy)
    assert accuracy[0] == 1.0
    assert accuracy[1] == 0.5


def test_deterministic_pairs_are_consecutive_frames_after_the_warm_up(
        tmp_path_factory: pytest.TempPathFactory) -> None:
    """Each kept pair starts where the same environment's previous pair ended, the standing
    start is dropped, and the rollout does not depend on a random draw of the policy."""
    snapshot = load_snapshot(shared_checkpoint(tmp_path_factory)[0])
    num_envs, steps, warmup = 3, 8, 3
    pairs = deterministic_pairs(snapshot, num_envs, steps, warmup)
    assert pairs.shape == (num_envs * (steps - warmup + 1), 2, 29)  # steps 3..8 of each env
    by_step = pairs.reshape(-1, num_envs, 2, 29)
    np.testing.assert_array_equal(by_step[1:, :, 0], by_step[:-1, :, 1])
    assert np.abs(by_step[:, :, 1] - by_step[:, :, 0]).max() > 1e-4  # it moves
    np.testing.assert_array_equal(deterministic_pairs(snapshot, num_envs, steps, warmup), pairs)


def test_windowed_velocity_averages_each_command_axis_within_its_clip() -> None:
    """Two clips of 4 frames: forward speed 0, 1, 2, 3 (window 3 → 0.5, 1, 2, 2.5 at the
    clipped ends), sideways speed and yaw rate constant; the second clip is not mixed in."""
    features = np.zeros((8, 29), np.float32)
    features[:4, 18] = [0.0, 1.0, 2.0, 3.0]
    features[:4, 19] = 0.1
    features[:4, 23] = -0.4
    features[4:, 18] = 9.0
    velocity = windowed_velocity(features, np.array([0, 4]), np.array([4, 4]), 3)
    np.testing.assert_allclose(velocity[:4, 0], [0.5, 1.0, 2.0, 2.5])
    np.testing.assert_allclose(velocity[:4, 1:], [[0.1, -0.4]] * 4, rtol=1e-6)
    np.testing.assert_allclose(velocity[4:, 0], 9.0)


def test_nearest_transitions_obey_the_command() -> None:
    """Velocities on a grid of forward speeds: each command gets one of its k nearest, the
    sideways axis weighed by its own scale; commands lie inside their ranges."""
    rng = np.random.default_rng(0)
    commands = uniform_commands(((0.1, 0.5), (-0.1, 0.1), (-0.5, 0.5)), 500, rng)
    assert commands.shape == (500, 3)
    assert np.all((commands[:, 0] >= 0.1) & (commands[:, 0] <= 0.5))
    assert np.all(np.abs(commands[:, 2]) <= 0.5)
    velocity = np.zeros((11, 3))
    velocity[:, 0] = np.linspace(0.0, 1.0, 11)  # 0.0, 0.1, ..., 1.0 m/s
    asked = np.array([[0.31, 0.0, 0.0], [0.74, 0.0, 0.0]])
    picked = nearest_transitions(velocity, asked, np.ones(3), 1, rng)
    assert picked.tolist() == [3, 7]
    picked = nearest_transitions(velocity, np.repeat(asked[:1], 200, 0), np.ones(3), 2, rng)
    assert set(picked.tolist()) == {3, 4}  # 0.3 and 0.4 are the two nearest 0.31
    # a sideways offset of 0.05 m/s, on a scale of 0.1, outweighs 0.04 m/s forward on 1.0
    lateral = np.array([[0.3, 0.05, 0.0], [0.34, 0.0, 0.0]])
    assert nearest_transitions(lateral, asked[:1], np.array([1.0, 0.1, 1.0]), 1,
                               rng).tolist() == [1]


def test_imitator_ranges_narrow_the_commands_but_keep_the_environments_units() -> None:
    from robots.errors import AmpkitError

    env_ranges = ((0.1, 0.5), (-0.1, 0.1), (-0.5, 0.5))
    ranges, scale = imitator_ranges(env_ranges, (None, None, None))
    assert ranges == env_ranges
    np.testing.assert_allclose(scale, [0.4, 0.2, 1.0])
    ranges, scale = imitator_ranges(env_ranges, ([0.27, 0.5], None, [0.0, 0.0]))
    assert ranges == ((0.27, 0.5), (-0.1, 0.1), (0.0, 0.0))
    np.testing.assert_allclose(scale, [0.4, 0.2, 1.0])  # not 1e-6 on the zero-width yaw axis
    # a straight-walking imitator picks the straight transition over a faster turning one
    velocity = np.array([[0.3, 0.0, 0.4], [0.25, 0.0, 0.0]])
    commands = uniform_commands(ranges, 20, np.random.default_rng(0))
    commands[:, 0] = 0.3
    assert set(nearest_transitions(velocity, commands, scale, 1,
                                   np.random.default_rng(0)).tolist()) == {1}
    with pytest.raises(AmpkitError, match="--imitate-vy: LOW 0.1 is above HIGH -0.1"):
        imitator_ranges(env_ranges, (None, [0.1, -0.1], None))


def test_held_out_split_keeps_held_transitions_out_of_training() -> None:
    rng = np.random.default_rng(1)
    draws = rng.integers(0, 50, size=1000)
    train, held = held_out_split(draws, 0.2, rng)
    assert np.all(train ^ held)
    assert not set(draws[train].tolist()) & set(draws[held].tolist())
    assert len(set(draws[held].tolist())) == 10


@pytest.fixture(scope="module")
def servos():
    from bench.servo_replay import servo_model

    return servo_model()


def _held_pose(servos, frames: int, waist_amplitude_rad: float) -> tuple[np.ndarray, ...]:
    """The walking keyframe held still, the waist swinging at 1 Hz by the given amplitude."""
    from training.config import load_env, preset
    from training.sim2sim import default_qpos

    keyframe = default_qpos(load_env(preset("cpu-walk")))
    model = servos.model
    joint = model.joint("waist_yaw").id  # AMP feature 0
    waist, waist_dof = model.jnt_qposadr[joint], model.jnt_dofadr[joint]
    time_s = np.arange(frames) * 0.02
    qpos = np.tile(keyframe, (frames, 1))
    qvel = np.zeros((frames, model.nv))
    qpos[:, waist] += waist_amplitude_rad * np.sin(2 * np.pi * time_s)
    qvel[:, waist_dof] = waist_amplitude_rad * 2 * np.pi * np.cos(2 * np.pi * time_s)
    return qpos, qvel, waist


def test_servo_replay_holds_the_root_and_tracks_the_joints(servos) -> None:
    from bench.servo_replay import replay_clip

    assert servos.substeps == 4 and servos.velocity_lead_s == pytest.approx(0.5 / 21.1)
    qpos, qvel, _ = _held_pose(servos, 25, 0.0)
    frames = replay_clip(servos, qpos, qvel)
    # the root is the reference's by construction: at rest at the keyframe's height
    np.testing.assert_allclose(frames[:, 18:24], 0.0, atol=1e-9)
    np.testing.assert_allclose(frames[:, 24], qpos[0, 2], atol=1e-6)
    # the joints sag under gravity by what the servos' 21.1 N·m/rad leave, no more
    assert np.abs(frames[:, 0:9] - frames[0, 0:9]).max() < 0.05
    np.testing.assert_array_equal(frames[:, 25:29], 1.0)  # standing on toes and heels


def test_servo_replay_velocity_lead_tracks_a_moving_joint_closer(servos) -> None:
    from bench.servo_replay import replay_clip

    qpos, qvel, waist = _held_pose(servos, 100, 0.3)
    errors = []
    for feedforward in (False, True):
        frames = replay_clip(servos, qpos, qvel, feedforward)
        errors.append(np.abs(frames[:, 0] - qpos[:, waist]).mean())
    assert 0.005 < errors[1] < 0.7 * errors[0]  # it lags without the lead, less with it


def test_reference_gap_of_a_dataset_against_itself_is_chance(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from amp_fixtures import write_synthetic_dataset

    import robots
    from bench import reference_gap

    path = write_synthetic_dataset(tmp_path / "merged.h5", robots.load("wildrobot"),
                                   num_clips=3, duration_s=3.0)
    assert reference_gap.main(["--data", str(path), "--tracked", str(path), "--noise", "0.1",
                               "--steps", "60", "--scored", "4000"]) == 0
    lines = capsys.readouterr().out.splitlines()
    scores = [line for line in lines if line.startswith(("control", "tracked"))]
    assert len(scores) == 2
    for line in scores:  # "... acc data D policy P ...": both near chance on identical data
        words = line.split()
        data_accuracy = float(words[words.index("data") + 1])
        policy_accuracy = float(words[words.index("policy") + 1])
        assert abs(data_accuracy + policy_accuracy - 1.0) < 0.1, line


def test_reference_gap_names_a_missing_file(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    from bench import reference_gap

    assert reference_gap.main(["--data", str(tmp_path / "none.h5"),
                               "--tracked", str(tmp_path / "none.h5")]) == 2
    assert "none.h5" in capsys.readouterr().err


def test_held_command_pairs_follow_one_episode_and_noise_only_moves_the_noisy_ones(
        tmp_path_factory: pytest.TempPathFactory) -> None:
    """With no noise the pairs are the mean policy's consecutive frames after the warm-up, the
    same on every call; the training noise changes them; the run's discriminator scores them
    as the trainer's style reward does."""
    from bench.disc_commands import discriminator_logits, exploration_std, held_command_pairs
    from training.discriminator import style_reward
    from training.policy import style_scorer

    snapshot = load_snapshot(shared_checkpoint(tmp_path_factory)[0])
    num_envs, steps, warmup = 3, 8, 3
    command = (0.3, 0.0, 0.5)
    pairs, falls = held_command_pairs(snapshot, command, 0.0, num_envs, steps, warmup)
    assert falls == 0 and pairs.shape == (num_envs * (steps - warmup + 1), 2, 29)
    by_step = pairs.reshape(-1, num_envs, 2, 29)
    np.testing.assert_array_equal(by_step[1:, :, 0], by_step[:-1, :, 1])
    again, _ = held_command_pairs(snapshot, command, 0.0, num_envs, steps, warmup)
    np.testing.assert_array_equal(again, pairs)

    noise = exploration_std(snapshot)
    # An almost untrained policy explores with its initial std, under the anneal's cap.
    assert noise == pytest.approx(snapshot.config.network.init_action_std, rel=0.05)
    noisy, _ = held_command_pairs(snapshot, command, noise, num_envs, steps, warmup)
    assert noisy.shape == pairs.shape
    assert np.abs(noisy[num_envs:] - pairs[num_envs:]).max() > 1e-3

    logits = discriminator_logits(snapshot, pairs)
    assert logits.shape == (pairs.shape[0],)
    np.testing.assert_allclose(np.asarray(style_reward(logits)),
                               np.asarray(style_scorer(snapshot)(pairs)), atol=1e-6)


def test_feature_groups_cover_the_frame_by_block_and_each_joint_by_angle_and_velocity() -> None:
    from amp.features import FEATURE_DIM, feature_names
    from bench.disc_probe import feature_groups

    names = feature_names([f"j{i}" for i in range(9)])
    groups = feature_groups(names)
    blocks = [groups[b] for b in ("joint_pos", "joint_vel", "root_lin_vel", "root_ang_vel",
                                  "root_height", "foot_contact")]
    assert sorted(sum(blocks, [])) == list(range(FEATURE_DIM))
    assert groups[names[2]] == [2, 11] and groups[names[8]] == [8, 17]
    assert len(groups) == 6 + 9


def test_motion_split_keeps_a_motion_its_mirror_and_its_pieces_on_one_side() -> None:
    from amp.dataset import sample_pairs, sampler_arrays
    from bench.disc_probe import held_out_motions, motion_name, motion_split

    assert motion_name("walk_fast_01_mirror@30") == "walk_fast_01"
    assert motion_name("turn_left_02@44") == motion_name("turn_left_02") == "turn_left_02"
    names = ["walk_01", "walk_01_mirror@12", "turn_01@3", "turn_01_mirror", "stand_01"]
    held = held_out_motions(names, 0.3)
    assert len(held) == 1 and held == held_out_motions(names, 0.3)  # one of three, repeatable
    assert held_out_motions(names, 1.0) != {"walk_01", "turn_01", "stand_01"}  # never all
    lengths = np.array([4, 5, 3, 6, 2])
    features = np.zeros((lengths.sum(), 29), np.float32)
    clip = np.repeat(np.arange(5), lengths)
    features[:, 0] = clip  # each frame names its clip
    weight = np.array([0.1, 0.2, 0.3, 0.3, 0.1])
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    reference = sampler_arrays(features, starts, lengths, weight, np.zeros(29), np.ones(29))
    trained, held_back = motion_split(reference, names, {"turn_01"}, weight)
    drawn = np.asarray(sample_pairs(trained, jax.random.PRNGKey(0), 4000))[:, 0, 0]
    assert set(np.unique(drawn)) == {0, 1, 4}
    # the draw keeps the reference's proportions among what is left: 0.1 : 0.2 : 0.1
    np.testing.assert_allclose(np.mean(drawn == 1), 0.5, atol=0.03)
    held_draw = np.asarray(sample_pairs(held_back, jax.random.PRNGKey(1), 4000))[:, 0, 0]
    assert set(np.unique(held_draw)) == {2, 3}
    np.testing.assert_allclose(np.mean(held_draw == 2), 0.5, atol=0.03)
