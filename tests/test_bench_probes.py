"""The discriminator probes' data handling: time scaling and one-threshold separability."""

from __future__ import annotations

import numpy as np

from bench.cadence_probe import locomotion_arrays, time_scaled_clip
from bench.disc_probe import threshold_accuracy


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
