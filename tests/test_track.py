"""Clip tracking (``wildrobot_track``) and the physically filtered reference built from it."""

from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import robots
from amp.clipfile import layout_json
from amp.merge import MergeConfig, MergedDataset, merge_features, read_merged, write_merged
from robots.config import ConfigError
from training import envs
from training.envs.base import reference_states
from training.envs.wildrobot_track import WildRobotTrack
from training.policy import zero_policy
from training.reference_filter import (
    FilterConfig,
    TrackedPiece,
    cut_piece,
    filtered_dataset,
    track_clips,
)
from training.train import load_reference

FRAMES = 60


@pytest.fixture(scope="module")
def robot() -> robots.Robot:
    return robots.load("wildrobot")


@pytest.fixture(scope="module")
def still_and_slide(robot: robots.Robot) -> MergedDataset:
    """Two 1.2-s clips in the ``walk`` pose: standing still, and the same pose gliding
    sideways at 1 m/s, which no servo can follow."""
    env = envs.load("wildrobot_track")
    stand = env.default_qpos.astype(np.float64)
    still = np.repeat(stand[None], FRAMES, axis=0)
    slide = still.copy()
    slide[:, 1] = np.arange(FRAMES) / 50.0
    clips, states = [], []
    for name, qpos in (("still", still), ("slide", slide)):
        qvel = np.zeros((FRAMES, robot.model.nv))
        qvel[:, 1] = 1.0 if name == "slide" else 0.0
        frames = np.stack([np.asarray(env.amp_frame(env.kinematic_data(q, v)))
                           for q, v in zip(qpos, qvel, strict=True)])
        clips.append((name, frames))
        states.append((qpos, qvel))
    return merge_features(clips, 50.0, robot.name, layout_json(robot.spec.amp_joint_names),
                          MergeConfig(), states=states)


@pytest.fixture(scope="module")
def tracker(still_and_slide: MergedDataset) -> WildRobotTrack:
    data = still_and_slide
    return envs.load("wildrobot_track").with_reference_states(reference_states(
        data.qpos, data.qvel, data.clip_length, data.clip_weight, data.features))


@pytest.fixture(scope="module")
def stepper(tracker: WildRobotTrack):  # noqa: ANN201 - jitted callables
    return jax.jit(tracker.reset_to_reference), jax.jit(tracker.step)


def test_an_episode_starts_on_its_reference_frame_and_sees_the_next(
        tracker: WildRobotTrack, still_and_slide: MergedDataset, stepper) -> None:  # noqa: ANN001
    reset, _ = stepper
    frame = FRAMES + 7  # inside "slide"
    state = reset(jax.random.PRNGKey(0), jnp.int32(frame))
    data = still_and_slide
    np.testing.assert_allclose(state.info["amp_frame"], data.features[frame], atol=1e-4)
    assert int(state.info["reference_frame"]) == frame
    layout = dict(tracker.observation_layout())
    assert state.obs.shape == (sum(layout.values()),)
    offsets = np.cumsum([0, *layout.values()])
    names = list(layout)
    joints = slice(offsets[names.index("reference_joints")],
                   offsets[names.index("reference_joints")] + 11)
    np.testing.assert_allclose(state.obs[joints], data.qpos[frame + 1, 7:] - data.qpos[frame, 7:],
                               atol=1e-6)
    root = offsets[names.index("root_error")]
    # The next frame is 0.02 m further left, the robot faces +x: drift (x, y) = (0, 0.02).
    np.testing.assert_allclose(state.obs[root:root + 4], [0.0, 0.0, 0.02, 0.0], atol=1e-5)
    command = state.info["command"]
    np.testing.assert_allclose(command, [0.0, 1.0, 0.0], atol=1e-5)


def test_a_still_clip_is_tracked_to_its_end_with_zero_residual(
        tracker: WildRobotTrack, stepper) -> None:  # noqa: ANN001
    reset, step = stepper
    state = reset(jax.random.PRNGKey(0), jnp.int32(0))
    zero = jnp.zeros(tracker.action_size)
    rewards, count = [], 0
    while count < FRAMES:
        state, count = step(state, zero), count + 1
        if float(state.done):
            break
        rewards.append(float(state.reward))
        assert float(state.metrics["joint_error_rad"]) < 0.03
    # The clip's last frame ends the episode, as a truncation, after FRAMES - 1 steps.
    assert count == FRAMES - 1
    assert float(state.info["truncated"]) == 1.0 and float(state.metrics["fell"]) == 0.0
    # Weights of the positive terms sum to 1: a held pose scores nearly all of it.
    assert min(rewards) > 0.9


def test_an_episode_started_on_a_clips_last_frame_ends_there(
        tracker: WildRobotTrack, still_and_slide: MergedDataset, stepper) -> None:  # noqa: ANN001
    reset, step = stepper
    state = reset(jax.random.PRNGKey(0), jnp.int32(FRAMES - 1))  # the last frame of "still"
    # It aims at that frame again, not at the next clip's first frame.
    np.testing.assert_allclose(state.info["command"], [0.0, 0.0, 0.0], atol=1e-6)
    state = step(state, jnp.zeros(tracker.action_size))
    assert float(state.done) == 1.0 and float(state.info["truncated"]) == 1.0
    assert float(state.metrics["root_drift_m"]) < 0.01


def test_a_clip_the_robot_cannot_follow_ends_in_a_failure(tracker: WildRobotTrack,
                                                          stepper) -> None:  # noqa: ANN001
    reset, step = stepper
    state = reset(jax.random.PRNGKey(0), jnp.int32(FRAMES + 5))  # the 1 m/s glide
    zero, count = jnp.zeros(tracker.action_size), 0
    while not float(state.done) and count < FRAMES:
        state, count = step(state, zero), count + 1
    assert count < FRAMES - 6  # long before the clip's end
    assert float(state.info["truncated"]) == 0.0 and float(state.metrics["fell"]) == 1.0
    assert float(state.metrics["termination"]) == tracker.config.tracking.weights.termination


def test_a_root_moved_off_the_reference_path_strays(tracker: WildRobotTrack,
                                                    stepper) -> None:  # noqa: ANN001
    reset, step = stepper
    state = reset(jax.random.PRNGKey(0), jnp.int32(5))  # standing still
    moved = state.data.replace(qpos=state.data.qpos.at[0].add(0.4))
    state = step(state.replace(data=moved), jnp.zeros(tracker.action_size))
    assert float(state.done) == 1.0 and float(state.info["truncated"]) == 0.0
    np.testing.assert_allclose(state.metrics["root_drift_m"], 0.4, atol=0.01)
    assert float(state.metrics["fell"]) == 1.0


@pytest.mark.parametrize("override, message", [
    ({"randomization": {"enabled": True}}, "randomization.enabled=false"),
    ({"noise": {"enabled": True}}, "noise.enabled=false"),
    ({"reference_init_fraction": 0.5}, "must be 1.0"),
    ({"gait": {"frequency_hz": 1.3}}, "no gait clock"),
])
def test_settings_the_tracker_cannot_follow_are_refused(override: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        envs.load("wildrobot_track", override)


def test_a_tracker_without_reference_states_says_so() -> None:
    env = envs.load("wildrobot_track")
    with pytest.raises(ConfigError, match="needs reference states"):
        env.reset(jax.random.PRNGKey(0))


def _trace(done_at: int | None, failed: bool, steps: int = 40) -> dict[str, np.ndarray]:
    done = np.zeros((1, steps + 1))
    if done_at is not None:
        done[0, done_at] = 1.0
    return {"done": done, "failed": done * float(failed),
            "frame": np.arange(100, 101 + steps)[None]}


def test_cut_piece_keeps_states_before_the_end_less_a_margin_after_a_failure() -> None:
    assert cut_piece(_trace(30, failed=True), 0, 5) == (slice(0, 25), True, 130)
    assert cut_piece(_trace(30, failed=False), 0, 5) == (slice(0, 30), False, 130)
    assert cut_piece(_trace(None, failed=False), 0, 5)[:2] == (slice(0, 41), False)
    assert cut_piece(_trace(3, failed=True), 0, 5)[0] == slice(0, 0)


def test_tracking_keeps_the_still_clip_and_restarts_the_slide(
        tracker: WildRobotTrack, still_and_slide: MergedDataset) -> None:
    config = FilterConfig(margin_s=0.1, min_clip_s=0.1, max_restarts=2)
    pieces = track_clips(tracker, zero_policy(tracker.action_size), still_and_slide, config)
    still = [p for p in pieces if p.source_clip == 0]
    slide = [p for p in pieces if p.source_clip == 1]
    assert [p.name for p in still] == ["still"] and len(still[0].features) == FRAMES - 1
    assert still[0].joint_rms_rad < 0.03
    # The glide fails once the root lags 0.3 m (15-25 frames); each restart begins at the
    # frame that failed, and the 5 frames before a failure are dropped.
    assert slide[0].name == "slide" and len(slide) == 3
    assert all(p.name.startswith("slide@") for p in slide[1:])
    starts = [int(p.name.split("@")[1]) for p in slide[1:]]
    assert starts[0] >= len(slide[0].features) + 5 and starts[1] > starts[0]
    assert all(len(p.features) <= 25 for p in slide)
    for piece in pieces:  # the recorded frames are the simulator's frames of its states
        np.testing.assert_allclose(piece.features[:, 24], piece.qpos[:, 2], atol=1e-6)


def test_the_filtered_dataset_is_a_merged_dataset_the_walking_task_reads(
        tmp_path: Path, robot: robots.Robot, still_and_slide: MergedDataset) -> None:
    rng = np.random.default_rng(0)
    nq, nv = robot.model.nq, robot.model.nv

    def piece(name: str, clip: int, length: int) -> TrackedPiece:
        qpos = np.repeat(still_and_slide.qpos[:1], length, axis=0)
        features = np.repeat(still_and_slide.features[:1], length, axis=0)
        features[:, :9] += rng.normal(0.0, 0.01, (length, 9)).astype(np.float32)
        return TrackedPiece(name, clip, features, qpos, np.zeros((length, nv)), 0.01)

    pieces = [piece("still", 0, 59), piece("slide", 1, 10), piece("slide@20", 1, 20)]
    data = filtered_dataset(still_and_slide, pieces, {"source": "merged.h5"})
    # Each piece keeps its clip's weight (0.5 each) in proportion to its share of the clip.
    expected = np.array([0.5 * 59 / 60, 0.5 * 10 / 60, 0.5 * 20 / 60])
    np.testing.assert_allclose(data.clip_weight, expected / expected.sum())
    assert data.qpos.shape == (89, nq) and data.clip_name == ("still", "slide", "slide@20")
    path = tmp_path / "tracked.h5"
    write_merged(path, data)
    back = read_merged(path)  # verifies the content hash
    np.testing.assert_array_equal(back.features, data.features)
    assert back.merge_params["tracked"]["source"] == "merged.h5"
    walk = envs.load("wildrobot_walk")
    assert load_reference(path, walk).data.num_frames == 89


def test_nothing_kept_is_an_error_that_says_what_to_do(still_and_slide: MergedDataset) -> None:
    from robots.errors import AmpkitError

    with pytest.raises(AmpkitError, match="train it longer"):
        filtered_dataset(still_and_slide, [], {"source": "merged.h5"})


def test_the_filter_refuses_a_walking_checkpoint_by_name(
        tmp_path_factory: pytest.TempPathFactory, capsys: pytest.CaptureFixture[str]) -> None:
    from eval_fixtures import shared_checkpoint

    from training import reference_filter

    checkpoint, dataset = shared_checkpoint(tmp_path_factory)
    out = tmp_path_factory.mktemp("filter") / "tracked.h5"
    assert reference_filter.main(["--data", str(dataset), "--run", str(checkpoint),
                                  "--out", str(out)]) == 2
    assert "wildrobot_walk checkpoint" in capsys.readouterr().err and not out.exists()
