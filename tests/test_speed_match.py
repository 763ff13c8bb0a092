"""Reference transitions matched to the commanded speeds: windowed speed, bin weights, the cap,
the sampler drawing the matched probabilities, and the trainer's choice of arrays."""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace

import jax
import numpy as np
import pytest

from amp.clipfile import layout_json
from amp.dataset import AmpDataset, make_arrays, pair_distribution, sample_pairs
from amp.features import FORWARD_SPEED_COLUMN
from amp.merge import MergeConfig, MergedDataset, merge_features
from amp.speed_match import (
    SpeedMatch,
    SpeedMatchError,
    speed_matched_probability,
    windowed_speed,
)
from robots import load_spec
from training.config import AmpConfig, ConfigError
from training.train import discriminator_arrays

FPS = 50.0
LAYOUT = layout_json(load_spec("wildrobot").amp_joint_names)


def clips_at(speeds_and_lengths: list[tuple[float, int]],
             weights: dict[str, float] | None = None) -> MergedDataset:
    """A merged dataset of clips each moving forward at one constant speed [m/s]; feature 0
    holds the clip's index (to tell draws apart)."""
    clips = []
    for index, (speed, length) in enumerate(speeds_and_lengths):
        features = np.zeros((length, 29), np.float32)
        features[:, 0] = index
        features[:, FORWARD_SPEED_COLUMN] = speed
        clips.append((f"clip_{index}", features))
    return merge_features(clips, FPS, "wildrobot", LAYOUT, MergeConfig(weights=weights or {}))


def matched(data: MergedDataset, match: SpeedMatch):
    starts, probability = pair_distribution(data.clip_length, data.clip_weight)
    return speed_matched_probability(data.features, data.clip_start, data.clip_length, starts,
                                     probability, data.fps, match)


def test_windowed_speed_is_the_centred_mean_clipped_at_each_clip() -> None:
    speed = np.concatenate([np.arange(6.0), np.full(4, 7.0)])  # a ramp clip, then a flat one
    out = windowed_speed(speed, np.array([0, 6]), np.array([6, 4]), window_frames=3)
    np.testing.assert_allclose(out[:6], [0.5, 1, 2, 3, 4, 4.5])  # ends: the 2 frames held
    np.testing.assert_allclose(out[6:], 7.0)  # never mixed with the ramp before it


def test_bins_get_equal_shares_and_speeds_outside_the_range_none() -> None:
    # Before: 0.25 m/s holds 0.6 of the draws, 0.45 m/s 0.2, standing 0.2.
    data = clips_at([(0.25, 31), (0.45, 11), (0.0, 11)])
    np.testing.assert_allclose(data.clip_weight, [0.6, 0.2, 0.2])
    probability, report = matched(data, SpeedMatch((0.1, 0.5), bin_width_mps=0.1))
    np.testing.assert_allclose(report.bin_edges, [0.1, 0.2, 0.3, 0.4, 0.5])
    np.testing.assert_allclose(report.share_before, [0.0, 0.6, 0.0, 0.2])
    np.testing.assert_allclose(report.share_after, [0.0, 0.5, 0.0, 0.5])
    assert report.outside_before == pytest.approx(0.2) and report.capped_bins == ()
    starts, _ = pair_distribution(data.clip_length, data.clip_weight)
    clip_of = data.features[starts, 0].astype(int)
    np.testing.assert_allclose(np.bincount(clip_of, probability, 3), [0.5, 0.5, 0.0])
    # Within a clip the transitions stay uniform.
    np.testing.assert_allclose(probability[clip_of == 0], 0.5 / 30)


def test_a_sparse_bin_is_raised_at_most_max_ratio_times() -> None:
    # 0.15 m/s holds 0.02 of the draws: a uniform share (0.5 of 2 bins) would be x25.
    data = clips_at([(0.15, 3), (0.35, 99)])
    _, report = matched(data, SpeedMatch((0.1, 0.5), bin_width_mps=0.2, max_ratio=4.0))
    np.testing.assert_allclose(report.share_before, [0.02, 0.98])
    before_norm = np.array([0.02 * 4.0, 0.5])  # capped, and the full bin at 0.5 / 0.98
    np.testing.assert_allclose(report.share_after, before_norm / before_norm.sum())
    assert report.capped_bins == (0,)
    assert "0.10-0.30: 2->14%" in report.summary()


def test_no_reference_at_the_commanded_speeds_is_refused_with_the_span() -> None:
    data = clips_at([(0.0, 20), (0.9, 20)])
    with pytest.raises(SpeedMatchError, match=r"\(0.1, 0.5\) m/s .* 0.00 to 0.90"):
        matched(data, SpeedMatch((0.1, 0.5)))
    with pytest.raises(SpeedMatchError, match="low < high"):
        matched(data, SpeedMatch((0.5, 0.1)))


def test_the_sampler_draws_the_matched_probabilities() -> None:
    data = clips_at([(0.25, 31), (0.45, 11), (0.0, 11)])
    probability, _ = matched(data, SpeedMatch((0.1, 0.5), bin_width_mps=0.1))
    arrays = make_arrays(data, pair_probability=probability)
    batch = 100_000
    pairs = np.asarray(jax.jit(sample_pairs, static_argnums=2)(arrays, jax.random.PRNGKey(3),
                                                              batch))
    clip_freq = np.bincount(pairs[:, 0, 0].astype(int), minlength=3) / batch
    np.testing.assert_allclose(clip_freq, [0.5, 0.5, 0.0], atol=0.01)  # 5 sigma is 0.008
    np.testing.assert_array_equal(pairs[:, 1, 0], pairs[:, 0, 0])  # never across clips
    with pytest.raises(ValueError, match="50 transitions"):
        make_arrays(data, pair_probability=probability[:-1])


def test_the_trainer_matches_to_the_environment_command_range() -> None:
    data = clips_at([(0.25, 31), (0.45, 11), (0.0, 11)])
    dataset = AmpDataset(path="merged.h5", data=data, arrays=make_arrays(data))
    walk_env = SimpleNamespace(config=SimpleNamespace(commands=SimpleNamespace(
        vx_mps=(0.1, 0.5))))
    amp = dataclasses.replace(AmpConfig(), speed_matched_data=True, speed_match_bin_mps=0.1)
    assert discriminator_arrays(dataset, AmpConfig(), walk_env) is dataset.arrays  # off
    arrays = discriminator_arrays(dataset, amp, walk_env)
    cdf = np.asarray(arrays.pair_cdf)
    assert cdf[29] == pytest.approx(0.5, abs=1e-6) and cdf[39] == 1.0  # standing: no share
    with pytest.raises(ConfigError, match="commands.vx_mps.*SimpleNamespace"):
        discriminator_arrays(dataset, amp, SimpleNamespace(config=SimpleNamespace()))
