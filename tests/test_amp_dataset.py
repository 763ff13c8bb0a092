"""Merged dataset: weights, statistics, content hash, file schema, loading and pair sampling."""

from __future__ import annotations

import dataclasses
import time

import h5py
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from amp_fixtures import write_synthetic_dataset
from hypothesis import given, settings
from hypothesis import strategies as st

import robots
from amp.clipfile import layout_json
from amp.dataset import (
    DatasetArrays,
    clip_cdf,
    load_dataset,
    make_arrays,
    pair_distribution,
    sample_pairs,
)
from amp.merge import (
    DatasetFileError,
    MergeConfig,
    MergedDataset,
    MergeError,
    clip_weights,
    merge_features,
    read_merged,
    write_merged,
)

SPEC = robots.load_spec("wildrobot")
LAYOUT = layout_json(SPEC.amp_joint_names)
FPS = 50.0


def labelled_clips(lengths: list[int]) -> list[tuple[str, np.ndarray]]:
    """Clips whose frame k of clip c holds (c, k) in its first two features."""
    clips = []
    for c, length in enumerate(lengths):
        features = np.zeros((length, 29), np.float32)
        features[:, 0] = c
        features[:, 1] = np.arange(length)
        features[:, 2:] = np.random.default_rng(c).normal(size=(length, 27))
        clips.append((f"clip_{c:02d}", features))
    return clips


def merged(lengths: list[int], weights: dict[str, float] | None = None) -> MergedDataset:
    return merge_features(labelled_clips(lengths), FPS, "wildrobot", LAYOUT,
                          MergeConfig(weights=weights or {}))


sample_jit = jax.jit(sample_pairs, static_argnums=2)


def padded_arrays(data: MergedDataset, num_frames: int = 256, num_clips: int = 8) -> DatasetArrays:
    """Device arrays padded to fixed shapes (one jit compile for every example).

    The padding is extra zero-weight clips (length 2, label -1) after the real ones, so it
    also checks that clips after the last positive weight are never drawn.
    """
    arrays = make_arrays(data)
    extra_clips = num_clips - data.num_clips
    extra_frames = num_frames - data.num_frames
    features = np.concatenate([np.asarray(arrays.features),
                               np.full((extra_frames, 29), -1.0, np.float32)])
    starts = data.num_frames + 2 * np.arange(extra_clips)
    return DatasetArrays(
        features=jnp.asarray(features),
        clip_start=jnp.concatenate([arrays.clip_start, jnp.asarray(starts, jnp.int32)]),
        clip_length=jnp.concatenate([arrays.clip_length, jnp.full(extra_clips, 2, jnp.int32)]),
        pair_start=jnp.concatenate([arrays.pair_start, jnp.asarray(starts, jnp.int32)]),
        pair_cdf=jnp.concatenate([arrays.pair_cdf, jnp.ones(extra_clips, jnp.float32)]),
        mean=arrays.mean, std=arrays.std)


def test_merge_builds_the_clip_index_weights_and_statistics() -> None:
    data = merged([11, 21, 41])
    assert data.num_frames == 73 and data.clip_name == ("clip_00", "clip_01", "clip_02")
    np.testing.assert_array_equal(data.clip_start, [0, 11, 32])
    np.testing.assert_array_equal(data.clip_length, [11, 21, 41])
    np.testing.assert_allclose(data.clip_weight, np.array([10, 20, 40]) / 70)  # ∝ duration
    # Default weights spread evenly over frames → plain frame statistics (up to the ends).
    frame_weight = np.repeat(data.clip_weight / data.clip_length, data.clip_length)
    frame_weight /= frame_weight.sum()
    expected_mean = frame_weight @ data.features.astype(np.float64)
    np.testing.assert_allclose(data.mean, expected_mean, rtol=1e-5, atol=1e-6)
    expected_std = np.sqrt(frame_weight @ (data.features - expected_mean) ** 2)
    np.testing.assert_allclose(data.std, expected_std, rtol=1e-5, atol=1e-6)


def test_weight_patterns_multiply_duration_first_match_wins() -> None:
    names = ("walk_a", "run_b", "run_b_mirror", "idle")
    lengths = np.array([11, 11, 11, 21])
    weights = clip_weights(names, lengths, FPS, {"*_mirror": 0.5, "run*": 3.0, "idle": 0.0})
    np.testing.assert_allclose(weights, np.array([10, 30, 5, 0]) / 45)
    with pytest.raises(MergeError, match="weight 0"):
        clip_weights(names, lengths, FPS, {"*": 0.0})
    with pytest.raises(MergeError, match=">= 0"):
        clip_weights(names, lengths, FPS, {"idle": -1.0})


def test_content_hash_is_stable_and_sensitive() -> None:
    base = merged([5, 9, 7])
    assert merged([5, 9, 7]).content_sha256 == base.content_sha256
    assert len(base.content_sha256) == 64

    def variant(change) -> str:
        clips = labelled_clips([5, 9, 7])
        weights: dict[str, float] = {}
        layout = LAYOUT
        clips, weights, layout = change(clips, weights, layout)
        return merge_features(clips, FPS, "wildrobot", layout,
                              MergeConfig(weights=weights)).content_sha256

    def one_ulp(clips, w, layout):
        clips[1][1][3, 7] = np.nextafter(clips[1][1][3, 7], np.float32(np.inf))
        return clips, w, layout

    def renamed(clips, w, layout):
        clips[2] = ("other", clips[2][1])
        return clips, w, layout

    def reweighted(clips, w, layout):
        return clips, {"clip_01": 2.0}, layout

    def reordered(clips, w, layout):
        return clips[::-1], w, layout

    def relayout(clips, w, layout):
        return clips, w, layout.replace("waist_yaw", "waist_roll")

    hashes = {variant(c) for c in (one_ulp, renamed, reweighted, reordered, relayout)}
    assert len(hashes) == 5 and base.content_sha256 not in hashes


def test_merged_file_round_trip_and_byte_determinism(tmp_path) -> None:
    data = merged([12, 30])
    data.inputs = [{"name": "clip_00", "file": "clip_00.h5", "sha256": "0" * 64}]
    write_merged(tmp_path / "a.h5", data)
    time.sleep(1.1)  # HDF5 timestamps have 1 s resolution: a stored time would now differ
    write_merged(tmp_path / "b.h5", data)
    assert (tmp_path / "a.h5").read_bytes() == (tmp_path / "b.h5").read_bytes()
    back = read_merged(tmp_path / "a.h5")
    np.testing.assert_array_equal(back.features, data.features)
    assert back.clip_name == data.clip_name and back.content_sha256 == data.content_sha256
    np.testing.assert_array_equal(back.clip_weight, data.clip_weight)
    assert back.inputs == data.inputs and back.merge_params["fps"] == FPS
    with h5py.File(tmp_path / "a.h5", "r") as f:
        assert {"fps", "robot", "layout", "schema_version", "content_sha256"} <= set(f.attrs)
        assert f["features"].dtype == np.float32 and f["mean"].shape == (29,)


def test_load_dataset_validates_against_the_robot(tmp_path) -> None:
    path = tmp_path / "merged.h5"
    write_merged(path, merged([12, 30]))
    dataset = load_dataset(path, SPEC, expected_fps=50.0)
    assert dataset.num_clips == 2 and dataset.arrays.features.shape == (42, 29)
    assert isinstance(dataset.arrays.features, jax.Array)

    other = dataclasses.replace(SPEC, amp_joint_names=SPEC.amp_joint_names[::-1])
    with pytest.raises(DatasetFileError, match="layout") as info:
        load_dataset(path, other)
    assert str(path) in str(info.value)
    with pytest.raises(DatasetFileError, match="robot"):
        load_dataset(path, dataclasses.replace(SPEC, name="otherbot"))
    with pytest.raises(DatasetFileError, match="FPS"):
        load_dataset(path, SPEC, expected_fps=30.0)

    with h5py.File(path, "r+") as f:
        f["features"][0, 5] += 1.0  # tampered data no longer matches the hash
    with pytest.raises(DatasetFileError, match="content_sha256"):
        load_dataset(path, SPEC)
    (tmp_path / "junk.h5").write_bytes(b"junk")
    with pytest.raises(DatasetFileError, match="junk.h5"):
        load_dataset(tmp_path / "junk.h5", SPEC)
    with h5py.File(tmp_path / "empty.h5", "w"):
        pass
    with pytest.raises(DatasetFileError, match="missing"):
        load_dataset(tmp_path / "empty.h5", SPEC)


@settings(max_examples=40, deadline=None)
@given(lengths=st.lists(st.integers(min_value=2, max_value=30), min_size=1, max_size=8),
       zero_mask=st.lists(st.booleans(), min_size=8, max_size=8),
       seed=st.integers(0, 2**31 - 1))
def test_pairs_never_cross_clip_boundaries(lengths: list[int], zero_mask: list[bool],
                                           seed: int) -> None:
    weights = {f"clip_{c:02d}": 0.0 for c in range(len(lengths)) if zero_mask[c]}
    if len(weights) == len(lengths):
        weights.pop("clip_00")
    data = merged(lengths, weights)
    pairs = np.asarray(sample_jit(padded_arrays(data), jax.random.PRNGKey(seed), 512))
    assert pairs.shape == (512, 2, 29)
    clip_first, clip_second = pairs[:, 0, 0], pairs[:, 1, 0]
    frame_first, frame_second = pairs[:, 0, 1], pairs[:, 1, 1]
    assert np.all(clip_first >= 0)  # never a padding clip
    np.testing.assert_array_equal(clip_first, clip_second)
    np.testing.assert_array_equal(frame_second, frame_first + 1)
    lengths_of = np.array(lengths)[clip_first.astype(int)]
    assert np.all(frame_second <= lengths_of - 1)
    sampled_clips = {f"clip_{int(c):02d}" for c in clip_first}
    assert not sampled_clips & set(weights)  # zero-weight clips are never drawn


def test_sampling_frequencies_follow_the_weights() -> None:
    lengths = [6, 11, 21, 4]
    data = merged(lengths, {"clip_01": 3.0, "clip_03": 0.0})
    expected_clip = np.array([5, 30, 20, 0]) / 55
    np.testing.assert_allclose(data.clip_weight, expected_clip)
    batch = 200_000
    pairs = np.asarray(sample_jit(make_arrays(data), jax.random.PRNGKey(0), batch))
    starts = (data.clip_start[pairs[:, 0, 0].astype(int)] + pairs[:, 0, 1]).astype(int)
    start_index, probability = pair_distribution(data.clip_length, data.clip_weight)
    np.testing.assert_allclose(probability.sum(), 1.0)
    np.testing.assert_allclose(probability[:5], expected_clip[0] / 5)  # w / (L - 1)
    counts = np.bincount(starts, minlength=data.num_frames)[start_index] / batch
    # Binomial standard error per pair is at most sqrt(p / n) < 0.0012; allow 5 sigma.
    assert np.all(np.abs(counts - probability) <= 5 * np.sqrt(probability / batch) + 1e-9)
    clip_freq = np.bincount(pairs[:, 0, 0].astype(int), minlength=4) / batch
    np.testing.assert_allclose(clip_freq, expected_clip, atol=0.005)
    assert clip_freq[3] == 0.0


def test_clip_cdf_ends_at_exactly_one_after_the_last_positive_weight() -> None:
    cdf = clip_cdf(np.array([0.1, 0.7, 0.2, 0.0]) / 1.0000001)
    assert cdf.dtype == np.float32 and cdf[2] == 1.0 and cdf[3] == 1.0


def test_synthetic_dataset_fixture_loads(tmp_path) -> None:
    path = write_synthetic_dataset(tmp_path / "merged.h5", robots.load("wildrobot"),
                                   num_clips=2, duration_s=1.0, mirror=True)
    dataset = load_dataset(path, SPEC, expected_fps=50.0)
    assert dataset.data.clip_name == ("walk_0", "walk_0_mirror", "walk_1", "walk_1_mirror")
    assert dataset.num_frames == 4 * 51


def test_sample_pairs_runs_inside_a_larger_jitted_function() -> None:
    arrays = make_arrays(merged([8, 8]))

    @jax.jit
    def mean_pair(arrays, rng):
        return sample_pairs(arrays, rng, 64).mean(axis=0)

    out = mean_pair(arrays, jax.random.PRNGKey(1))
    assert out.shape == (2, 29) and np.all(np.isfinite(np.asarray(out)))
