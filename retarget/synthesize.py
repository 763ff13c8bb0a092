"""Synthesized AMASS-format SMPL-X locomotion clips: the license-free default input.

Each clip is a gait drawn from joint-angle curves of human walking (or a grounded jog)
(``retarget.gait_curves``), scaled by a per-frame amplitude and driven by a per-frame cadence,
with per-clip variation of speed, cadence (so of step length) and style.

The root translation is not drawn; it comes from the kinematics, under the skeleton body model
(``retarget.root_motion``): the stance foot does not slide and the pelvis bob follows from the
legs; a foot keeps its heading while it is planted (the hip turns in a curve, not the foot). The
amplitude that realises a target speed at a given cadence is found per clip by simulating
straight gait cycles on a grid of amplitudes.

This module draws each clip's speed, turning and style and writes the clips. Output files follow
DESIGN 4.1 (poses [T, 165], trans, betas [16], gender, mocap_frame_rate) and are written
byte-for-byte deterministically for a given seed.
"""

from __future__ import annotations

import hashlib
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import numpy as np

from retarget.gait_curves import GaitDrive, draw_style, smoothstep
from retarget.human import NUM_BODY_JOINTS
from retarget.root_motion import calibrate_stride, gait_motion
from retarget.skeleton import SkeletonBodyModel
from robots.io import atomic_path, write_json_atomic
from robots.trajectory import step_speed

SMPLX_POSE_WIDTH = 165
NUM_BETAS = 16
MANIFEST_NAME = "manifest.json"
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)  # fixed zip member timestamps: same seed, same bytes


# --------------------------------------------------------------------------------------------
# configuration


@dataclass(frozen=True)
class ClipSpec:
    """One clip to synthesize.

    kind: "walk", "turn", "start_stop", "jog" or "stand"; speed_mps: cruise speed of the
    pelvis (0 for "stand"); yaw_rate_radps: turning rate, + = left (counter-clockwise seen from
    above); duration_s: seconds; fps: frame rate of the written file.
    """

    name: str
    kind: str
    fps: float
    duration_s: float
    speed_mps: float = 0.0
    yaw_rate_radps: float = 0.0


DEFAULT_CLIPS: tuple[ClipSpec, ...] = (
    ClipSpec("walk_slow_01", "walk", 30.0, 6.0, 0.55),
    ClipSpec("walk_slow_02", "walk", 100.0, 6.0, 0.75),
    ClipSpec("walk_medium_01", "walk", 60.0, 6.0, 1.0),
    ClipSpec("walk_medium_02", "walk", 120.0, 6.0, 1.1),
    ClipSpec("walk_medium_03", "walk", 30.0, 6.0, 1.2),
    ClipSpec("walk_fast_01", "walk", 100.0, 5.0, 1.35),
    ClipSpec("walk_fast_02", "walk", 60.0, 5.0, 1.5),
    ClipSpec("turn_left_01", "turn", 120.0, 6.0, 0.9, 0.35),
    ClipSpec("turn_left_02", "turn", 30.0, 6.0, 1.2, 0.5),
    ClipSpec("turn_right_01", "turn", 60.0, 6.0, 0.9, -0.35),
    ClipSpec("turn_right_02", "turn", 100.0, 6.0, 1.2, -0.5),
    ClipSpec("start_stop_01", "start_stop", 120.0, 8.0, 1.0),
    ClipSpec("start_stop_02", "start_stop", 30.0, 8.0, 1.3),
    ClipSpec("jog_01", "jog", 100.0, 4.0, 2.0),
    ClipSpec("stand_01", "stand", 30.0, 6.0),
    ClipSpec("stand_02", "stand", 60.0, 5.0),
)
CLIP_KINDS: tuple[str, ...] = ("walk", "turn", "start_stop", "jog", "stand")


@dataclass(frozen=True)
class SynthesisConfig:
    """The ``synthesize:`` section of params.yaml.

    seed: master seed (per-clip variation is drawn from [seed, clip index]); height_m: body
    height of the skeleton the root motion is derived under, metres; duration_scale:
    multiplies every clip's duration; clips: the clip list (names must be unique).
    """

    BOUNDS: ClassVar[dict[str, str]] = {"height_m": "> 0", "duration_scale": "> 0"}

    seed: int = 0
    height_m: float = 1.75
    duration_scale: float = 1.0
    clips: tuple[ClipSpec, ...] = DEFAULT_CLIPS

    def __post_init__(self) -> None:
        clips = tuple(c if isinstance(c, ClipSpec) else ClipSpec(**c) for c in self.clips)
        object.__setattr__(self, "clips", clips)
        names = [c.name for c in clips]
        if len(set(names)) != len(names):
            raise ValueError(f"synthesize: clip names must be unique, got {names}")
        for clip in clips:
            if clip.kind not in CLIP_KINDS:
                raise ValueError(
                    f"synthesize: clip {clip.name!r} has kind {clip.kind!r}; "
                    f"valid kinds: {', '.join(CLIP_KINDS)}"
                )
            if clip.fps <= 0 or clip.duration_s * self.duration_scale * clip.fps < 2:
                raise ValueError(f"synthesize: clip {clip.name!r} needs fps > 0 and >= 2 frames")
        if self.duration_scale <= 0:
            raise ValueError("synthesize: duration_scale must be positive")


# --------------------------------------------------------------------------------------------
# one clip


@dataclass
class SynthesizedClip:
    """A synthesized clip: the AMASS arrays and what it was meant to be."""

    spec: ClipSpec
    arrays: dict[str, np.ndarray]
    nominal_speed_mps: float
    frames: int
    seed: tuple[int, int]
    meta: dict[str, float] = field(default_factory=dict)


def speed_profile(spec: ClipSpec, time_s: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Target pelvis speed [T] m/s for the clip."""
    if spec.kind == "stand":
        return np.zeros_like(time_s)
    cruise = spec.speed_mps * rng.uniform(0.95, 1.05)
    if spec.kind == "start_stop":
        duration = time_s[-1]
        rest_s, ramp_s = 1.0, 1.5
        rise = smoothstep((time_s - rest_s) / ramp_s)
        fall = 1.0 - smoothstep((time_s - (duration - rest_s - ramp_s)) / ramp_s)
        return cruise * np.minimum(rise, fall)
    # small slow fluctuation, as in overground walking
    wobble = 1.0 + 0.03 * np.sin(2 * np.pi * time_s / rng.uniform(3.0, 6.0) + rng.uniform(0, 6))
    return cruise * wobble


def synthesize_clip(spec: ClipSpec, seed: tuple[int, int], height_m: float = 1.75,
                    duration_scale: float = 1.0) -> SynthesizedClip:
    """Synthesize one clip deterministically from ``seed`` ([master seed, clip index])."""
    rng = np.random.default_rng(list(seed))
    model = SkeletonBodyModel(height_m=height_m)
    frames = max(2, int(round(spec.duration_s * duration_scale * spec.fps)) + 1)
    time_s = np.arange(frames) / spec.fps
    style = draw_style(spec.kind, rng)
    speed = speed_profile(spec, time_s, rng)

    curves = style.curves
    cadence_spm = style.cadence_scale * (curves.cadence_spm_at_zero
                                         + curves.cadence_spm_per_mps * speed)
    stride_hz = cadence_spm / 120.0  # two steps per stride
    if spec.kind == "stand":
        amplitude = np.zeros(frames)
    else:
        amplitude = calibrate_stride(model, style).amplitude_for(speed / stride_hz)
    phase = rng.uniform(0.0, 1.0) + np.concatenate(
        [[0.0], np.cumsum(0.5 * (stride_hz[1:] + stride_hz[:-1]) / spec.fps)]
    )
    yaw_rate = _yaw_rate(spec, time_s, rng)
    heading = rng.uniform(-np.pi, np.pi) + np.concatenate(
        [[0.0], np.cumsum(0.5 * (yaw_rate[1:] + yaw_rate[:-1]) / spec.fps)]
    )
    drive = GaitDrive(phase, amplitude, heading, time_s + rng.uniform(0.0, 10.0))
    root_orient, body_pose, trans = gait_motion(model, drive, style)
    trans[:, :2] += rng.uniform(-1.0, 1.0, size=2)

    poses = np.zeros((frames, SMPLX_POSE_WIDTH))
    poses[:, 0:3] = root_orient
    poses[:, 3 : 3 + 3 * (NUM_BODY_JOINTS - 1)] = body_pose.reshape(frames, -1)
    arrays = {
        "poses": poses,
        "trans": trans,
        "betas": np.zeros(NUM_BETAS),
        "gender": np.array("neutral"),
        "mocap_frame_rate": np.array(float(spec.fps)),
        "surface_model_type": np.array("smplx"),
    }
    pelvis_speed = step_speed(trans[:, :2], spec.fps)
    meta = {
        "mean_cadence_spm": float(np.mean(cadence_spm)) if spec.kind != "stand" else 0.0,
        "max_amplitude": float(np.max(amplitude)),
        "pelvis_speed_mps": float(np.mean(pelvis_speed)),
    }
    return SynthesizedClip(spec, arrays, float(np.mean(speed)), frames, seed, meta)


def _yaw_rate(spec: ClipSpec, time_s: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Turning rate [T] rad/s: ramped in over the first second for turns, a slow wander else."""
    if spec.kind == "turn":
        rate = spec.yaw_rate_radps * rng.uniform(0.9, 1.1)
        return rate * smoothstep(time_s / 1.0)
    if spec.kind == "stand":
        return np.zeros_like(time_s)
    return 0.05 * np.sin(2 * np.pi * time_s / rng.uniform(4.0, 8.0) + rng.uniform(0, 6))


# --------------------------------------------------------------------------------------------
# writing


def write_npz_deterministic(path: str | Path, arrays: dict[str, np.ndarray]) -> None:
    """Write an uncompressed ``.npz`` (the ``np.savez`` layout) whose bytes depend only on data.

    ``np.savez`` stamps each member with the current time; here every member gets a fixed
    timestamp, so the same arrays always give the same bytes. Written atomically.
    """
    with atomic_path(path) as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED) as archive:
        for key, value in arrays.items():
            info = zipfile.ZipInfo(f"{key}.npy", date_time=_ZIP_EPOCH)
            info.external_attr = 0o644 << 16
            with archive.open(info, "w", force_zip64=True) as member:
                np.lib.format.write_array(member, np.asanyarray(value), allow_pickle=False)


def synthesize(out_dir: str | Path, config: SynthesisConfig = SynthesisConfig()) -> dict:
    """Write every clip of ``config`` as ``<out_dir>/<name>.npz`` plus ``manifest.json``.

    Returns the manifest: per clip name, file, fps, frames, duration, nominal speed (mean
    target pelvis speed, m/s), kind, yaw rate, sha256 of the file.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    entries = []
    for index, spec in enumerate(config.clips):
        clip = synthesize_clip(spec, (config.seed, index), config.height_m,
                               config.duration_scale)
        path = out_dir / f"{spec.name}.npz"
        write_npz_deterministic(path, clip.arrays)
        entries.append({
            "name": spec.name,
            "file": path.name,
            "kind": spec.kind,
            "fps": spec.fps,
            "frames": clip.frames,
            "duration_s": round((clip.frames - 1) / spec.fps, 6),
            "nominal_speed_mps": round(clip.nominal_speed_mps, 6),
            "cruise_speed_mps": spec.speed_mps,
            "yaw_rate_radps": spec.yaw_rate_radps,
            "mean_cadence_spm": round(clip.meta["mean_cadence_spm"], 3),
            "pelvis_speed_mps": round(clip.meta["pelvis_speed_mps"], 6),
            "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
        })
    manifest = {
        "generator": "retarget.synthesize",
        "seed": config.seed,
        "height_m": config.height_m,
        "body_model": "skeleton",
        "num_clips": len(entries),
        "total_duration_s": round(sum(e["duration_s"] for e in entries), 6),
        "clips": entries,
    }
    write_json_atomic(out_dir / MANIFEST_NAME, manifest)
    return manifest
