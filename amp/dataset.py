"""The merged AMP dataset on the accelerator, and jit-compatible transition sampling.

``load_dataset(path, spec)`` reads a merged file (DESIGN 4.5), checks it against the robot spec
and puts the arrays on the device; ``dataset_from(path, data, spec)`` does the same for a file
already read (``amp.merge.read_merged``), so a program reads its dataset once.
``sample_pairs(arrays, rng, batch_size)`` is a pure function returning transitions
(s_t, s_t+1) that never cross a clip boundary, each drawn with its probability in
``arrays.pair_cdf``. By default clip c is drawn with probability ``clip_weight[c]`` and a start
frame uniformly among its ``clip_length[c] - 1`` transitions, so each valid pair has
probability ``clip_weight / (clip_length - 1)`` (:func:`pair_distribution`); a trainer may
reweight the pairs (``amp.speed_match``) through ``make_arrays(..., pair_probability=...)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from amp.clipfile import layout_json
from amp.features import ContactRule
from amp.merge import DatasetFileError, MergedDataset, read_merged
from robots.spec import RobotSpec


class DatasetArrays(NamedTuple):
    """Device arrays a jitted training step needs (a pytree: pass it as a jit argument).

    Attributes:
        features: [N, 29] float32 AMP frames of all clips, back to back.
        clip_start: [C] int32 index of each clip's first frame.
        clip_length: [C] int32 frames per clip (each >= 2).
        pair_start: [P] int32 first frame of every valid transition (P = sum(clip_length - 1)).
        pair_cdf: [P] float32 cumulative transition probabilities, the last positive one
            exactly 1 (:func:`clip_cdf`).
        mean: [29] float32 per-feature mean (weighted as the sampler draws).
        std: [29] float32 per-feature standard deviation (0 for constant features).
    """

    features: jax.Array
    clip_start: jax.Array
    clip_length: jax.Array
    pair_start: jax.Array
    pair_cdf: jax.Array
    mean: jax.Array
    std: jax.Array


@dataclass
class AmpDataset:
    """A loaded, validated dataset: host copy (``data``) and device arrays (``arrays``)."""

    path: Path
    data: MergedDataset
    arrays: DatasetArrays

    @property
    def content_sha256(self) -> str:
        return self.data.content_sha256

    @property
    def contact_rule(self) -> ContactRule:
        """The rule the dataset's contacts were labelled with; the simulator must use it."""
        return dataset_contact_rule(self.data)

    @property
    def num_frames(self) -> int:
        return self.data.num_frames

    @property
    def num_clips(self) -> int:
        return self.data.num_clips


def dataset_contact_rule(data: MergedDataset) -> ContactRule:
    """The rule a merged dataset's contacts were labelled with (its ``contact_rule``)."""
    return ContactRule(**data.contact_rule)


def clip_cdf(clip_weight: np.ndarray) -> np.ndarray:
    """Cumulative probabilities [C] float32 (of clips, frames or transitions); from the last
    positive weight on, exactly 1.

    A uniform u in [0, 1) then picks entry ``searchsorted(cdf, u, side="right")``, which can
    never be a zero-weight one.
    """
    weights = np.asarray(clip_weight, np.float64)
    cdf = np.cumsum(weights) / weights.sum()
    last_positive = int(np.flatnonzero(weights > 0)[-1])
    cdf[last_positive:] = 1.0
    return cdf.astype(np.float32)


def make_arrays(data: MergedDataset, device: jax.Device | None = None,
                pair_probability: np.ndarray | None = None) -> DatasetArrays:
    """Device arrays for :func:`sample_pairs` from a host dataset.

    Args:
        data: The merged dataset.
        device: Where to put the arrays (None: the default device).
        pair_probability: [P] probability of each transition in :func:`pair_distribution`'s
            order; None draws them as that function gives.
    """
    return sampler_arrays(data.features, data.clip_start, data.clip_length, data.clip_weight,
                          data.mean, data.std, device, pair_probability)


def sampler_arrays(features: np.ndarray, clip_start: np.ndarray, clip_length: np.ndarray,
                   clip_weight: np.ndarray, mean: np.ndarray, std: np.ndarray,
                   device: jax.Device | None = None,
                   pair_probability: np.ndarray | None = None) -> DatasetArrays:
    """:class:`DatasetArrays` of clips given as arrays (``clip_start`` must index
    ``features`` back to back, as :func:`pair_distribution` assumes); see
    :func:`make_arrays`."""
    pair_start, default_probability = pair_distribution(clip_length, clip_weight)
    probability = default_probability if pair_probability is None else pair_probability
    if np.shape(probability) != pair_start.shape:
        raise ValueError(f"pair_probability has shape {np.shape(probability)}, the dataset "
                         f"has {pair_start.shape[0]} transitions")
    host = DatasetArrays(
        features=np.asarray(features, np.float32),
        clip_start=np.asarray(clip_start, np.int32),
        clip_length=np.asarray(clip_length, np.int32),
        pair_start=np.asarray(pair_start, np.int32),
        pair_cdf=clip_cdf(probability),
        mean=np.asarray(mean, np.float32),
        std=np.asarray(std, np.float32),
    )
    return DatasetArrays(*(jax.device_put(a, device) for a in host))


def load_dataset(path: str | Path, spec: RobotSpec, expected_fps: float | None = None,
                 verify_hash: bool = True, device: jax.Device | None = None) -> AmpDataset:
    """Open a merged dataset, check it fits ``spec``, and hold it as device arrays.

    Raises:
        DatasetFileError: the file is unreadable or inconsistent, was written for another
            robot, another feature layout, or (``expected_fps``) another frame rate.
    """
    path = Path(path)
    return dataset_from(path, read_merged(path, verify_hash=verify_hash), spec, expected_fps,
                        device)


def dataset_from(path: str | Path, data: MergedDataset, spec: RobotSpec,
                 expected_fps: float | None = None,
                 device: jax.Device | None = None) -> AmpDataset:
    """The dataset ``data``, read from ``path``, checked against ``spec`` and held as device
    arrays (the file is not opened again).

    Raises:
        DatasetFileError: as :func:`load_dataset`, for the robot, layout and frame rate.
    """
    path = Path(path)
    if data.robot != spec.name:
        raise DatasetFileError(path, f"dataset is for robot {data.robot!r}, not {spec.name!r}")
    if data.layout != layout_json(spec.amp_joint_names):
        raise DatasetFileError(
            path, f"feature layout differs from robot {spec.name!r}'s AMP layout "
                  f"(joints {list(spec.amp_joint_names)}); re-run convert and merge")
    if expected_fps is not None and abs(data.fps - expected_fps) > 1e-9:
        raise DatasetFileError(path, f"dataset is at {data.fps:g} FPS, expected {expected_fps:g}")
    return AmpDataset(path=path, data=data, arrays=make_arrays(data, device))


def pair_distribution(clip_length: np.ndarray,
                      clip_weight: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every valid transition start index [P] and its probability [P] (float64, sums to 1).

    P = sum(clip_length - 1); the pair starting at frame i of clip c has probability
    clip_weight[c] / (clip_length[c] - 1). The reference for tests of :func:`sample_pairs`.
    """
    lengths = np.asarray(clip_length, np.int64)
    weights = np.asarray(clip_weight, np.float64) / np.sum(clip_weight)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    start_index = np.concatenate([s + np.arange(n - 1) for s, n in zip(starts, lengths,
                                                                       strict=True)])
    probability = np.repeat(weights / (lengths - 1), lengths - 1)
    return start_index, probability


def sample_pairs(arrays: DatasetArrays, rng: jax.Array, batch_size: int) -> jax.Array:
    """Draw ``batch_size`` transitions (s_t, s_t+1), never across a clip boundary.

    Pure and jit-compatible (``batch_size`` must be static: a Python int).

    Args:
        arrays: From :func:`make_arrays` / :attr:`AmpDataset.arrays`.
        rng: PRNG key.
        batch_size: Number of pairs B.
    Returns:
        [B, 2, 29] float32: ``[:, 0]`` is s_t, ``[:, 1]`` is s_t+1.
    """
    u = jax.random.uniform(rng, (batch_size,))
    pair = jnp.searchsorted(arrays.pair_cdf, u, side="right")
    start = arrays.pair_start[jnp.minimum(pair, arrays.pair_cdf.shape[0] - 1)]
    return jnp.stack([arrays.features[start], arrays.features[start + 1]], axis=1)


def normalize(arrays: DatasetArrays, frames: jax.Array, min_std: float = 1e-3) -> jax.Array:
    """``(frames - mean) / max(std, min_std)`` for frames [..., 29] (numpy or jax)."""
    return (frames - arrays.mean) / jnp.maximum(arrays.std, min_std)
