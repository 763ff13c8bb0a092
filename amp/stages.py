"""Batch stages over directories: convert robot motions to clip files, merge clip files.

Both keep going past bad inputs and list them (file and reason) in their report; the pipeline
entry points (``pipeline.convert``, ``pipeline.merge``) write these reports as metrics JSON.
Jobs run, and bad inputs become reasons, through ``robots.batch`` (as in ``retarget.stages``).
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

import robots
from amp.clipfile import layout_json, read_clip_features, read_clip_states, write_clip
from amp.convert import AmpClip, ConvertConfig, convert_with_mirror, load_for_kinematics
from amp.feasibility import FeasibilityConfig, apply_policy, assess_clip, metrics_record
from amp.merge import MergeConfig, MergedDataset, gated_out, merge_features
from amp.mirror import MIRROR_SUFFIX, mirrored_name
from robots.batch import Rejected, attempt, run_jobs
from robots.errors import AmpkitError
from robots.io import file_sha256
from robots.motion import read_motion


@dataclass
class StageReport:
    """What a batch stage did: counts, outputs, and every rejected input with its reason."""

    inputs: int = 0
    outputs: list[str] = field(default_factory=list)
    frames: int = 0
    rejected: list[dict[str, str]] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    def reject(self, path: Path, reason: str) -> None:
        """List ``path`` as rejected for ``reason``."""
        self.rejected.append({"file": str(path), "reason": reason})

    def as_metrics(self) -> dict[str, Any]:
        return {"inputs": self.inputs, "outputs": len(self.outputs), "frames": self.frames,
                "rejected_count": len(self.rejected), "rejected": self.rejected, **self.extra}


def find_h5(directory: Path) -> list[tuple[str, Path]]:
    """(name, path) of every ``*.h5`` below ``directory``, sorted; name = relative path stem.

    Raises:
        AmpkitError: ``directory`` does not exist or is not a directory.
    """
    if not directory.is_dir():
        raise AmpkitError(f"{directory}: input directory does not exist")
    found = []
    for path in directory.rglob("*.h5"):
        relative = path.relative_to(directory)
        if any(part.startswith(".") for part in relative.parts):
            continue  # hidden files and temporaries of interrupted atomic writes
        found.append((relative.with_suffix("").as_posix(), path))
    return sorted(found)


@dataclass(frozen=True)
class _ConvertJob:
    name: str
    path: Path
    out_dir: Path
    config: ConvertConfig
    feasibility: FeasibilityConfig | None = None  # None: no physical feasibility check


@dataclass(frozen=True)
class _ConvertResult:
    clips: tuple[tuple[str, int], ...] = ()  # (clip name, frames) written
    error: str | None = None
    feasibility: tuple[tuple[str, dict[str, Any]], ...] = ()  # (clip name, record)


_WORKER_ROBOTS: dict[str, robots.Robot] = {}  # per process: robots loaded for kinematics


def input_reason(exc: Exception) -> str:
    """Why an input was rejected, without its file (the report names it): the problem an
    ampkit or OS error states, else ``unusable (<type>: <message>)``."""
    if isinstance(exc, (AmpkitError, OSError)):
        return exc.problem if hasattr(exc, "problem") else str(exc)
    return f"unusable ({type(exc).__name__}: {exc})"


def _convert_one(job: _ConvertJob) -> _ConvertResult:
    """Read, convert and write one motion (runs in a worker process or inline)."""
    converted = attempt(lambda: _convert(job), input_reason)
    if isinstance(converted, Rejected):
        return _ConvertResult(error=converted.reason)
    clips, robot, sha = converted
    for clip in clips:
        clip.source, clip.source_sha256 = str(job.path), sha
        write_clip(job.out_dir / f"{clip.name}.h5", clip, robot.spec.amp_joint_names)
    return _ConvertResult(clips=tuple((c.name, c.num_frames) for c in clips),
                          feasibility=tuple((c.name, c.feasibility) for c in clips
                                            if c.feasibility is not None))


def _convert(job: _ConvertJob) -> tuple[list[AmpClip], robots.Robot, str]:
    """The clips of one motion (with mirror, feasibility assessed), its robot and its sha256."""
    motion = read_motion(job.path)
    if motion.robot not in _WORKER_ROBOTS:
        _WORKER_ROBOTS[motion.robot] = load_for_kinematics(motion.robot)
    robot = _WORKER_ROBOTS[motion.robot]
    clips = convert_with_mirror(motion, robot, job.config, job.name)
    if job.feasibility is not None:
        for clip in clips:
            assess_clip(clip, robot, job.feasibility)
    return clips, robot, file_sha256(job.path)


def _run_jobs(jobs: list[_ConvertJob], workers: int, progress: bool) -> list[_ConvertResult]:
    """Results in job order; ``workers > 1`` uses a process pool (clips are independent)."""
    # fork starts workers in milliseconds; after JAX is initialized fork is unsafe (JAX is
    # multithreaded), so fall back to spawn there.
    method = "spawn" if "jax" in sys.modules else "fork"
    return list(run_jobs(_convert_one, jobs, workers, desc="convert", progress=progress,
                         start_method=method, describe=lambda job: str(job.path)))


def mirror_name_clashes(names: list[str], mirror: bool) -> dict[str, str]:
    """Inputs whose name equals another input's mirror name → the reason they are rejected."""
    if not mirror:
        return {}
    present = set(names)
    return {n: f"its name collides with the mirror image of {mirrored_name(n)!r}"
            for n in names if n.endswith(MIRROR_SUFFIX) and mirrored_name(n) in present}


CLIPS_PER_WORKER = 64
"""Clips per extra process below which parallelism does not pay: a pool worker costs tens of
milliseconds (fork, copy-on-write faults, teardown), a short clip a few."""


def auto_workers(num_inputs: int) -> int:
    """Worker processes worth starting for ``num_inputs`` clips on this machine."""
    return max(1, min(os.cpu_count() or 1, num_inputs // CLIPS_PER_WORKER))


def convert_directory(in_dir: str | Path, out_dir: str | Path, config: ConvertConfig,
                      progress: bool = True, workers: int | None = 1,
                      feasibility: FeasibilityConfig | None = None) -> StageReport:
    """Convert every robot motion under ``in_dir`` into ``out_dir/<name>.h5`` (+ mirrors).

    Unreadable motions, unknown robots and motions that fail conversion are reported and
    skipped. ``workers > 1`` converts clips in that many processes (None: :func:`auto_workers`);
    the outputs do not depend on it. With ``feasibility``, every clip's physical feasibility
    is checked and stored with it, and the report's ``feasibility`` lists the results.
    """
    in_dir, out_dir = Path(in_dir), Path(out_dir)
    report = StageReport()
    inputs = find_h5(in_dir)
    report.inputs = len(inputs)
    clashes = mirror_name_clashes([name for name, _ in inputs], config.mirror)
    jobs = [_ConvertJob(name, path, out_dir, config, feasibility) for name, path in inputs
            if name not in clashes]
    for name, path in inputs:
        if name in clashes:
            report.reject(path, clashes[name])
    if workers is None:
        workers = auto_workers(len(jobs))
    records: dict[str, dict[str, Any]] = {}
    for job, result in zip(jobs, _run_jobs(jobs, workers, progress), strict=True):
        if result.error is not None:
            report.reject(job.path, result.error)
        for name, frames in result.clips:
            report.outputs.append(name)
            report.frames += frames
        records.update(result.feasibility)
    if feasibility is not None:
        report.extra["feasibility"] = metrics_record(records, feasibility)
    report.extra["fps"] = config.fps
    report.extra["mirror"] = config.mirror
    # Files of an earlier run would silently join the merge; name them instead of deleting.
    written = set(report.outputs)
    existing = find_h5(out_dir) if out_dir.is_dir() else []
    report.extra["stale_outputs"] = [str(p) for n, p in existing if n not in written]
    return report


def merge_directory(in_dir: str | Path, config: MergeConfig,
                    progress: bool = True) -> tuple[MergedDataset | None, StageReport]:
    """Merge every clip file under ``in_dir`` (sorted by name) into one dataset.

    Clips that are unreadable, too short, or whose robot, frame rate or feature layout differ
    from the expected ones are reported and skipped.

    Returns:
        The dataset (None when no clip was usable) and the report.
    """
    in_dir = Path(in_dir)
    report = StageReport()
    inputs = find_h5(in_dir)
    report.inputs = len(inputs)
    robot = config.robot
    layouts: dict[str, str] = {}
    contact_rule: dict[str, Any] | None = None  # the first accepted clip's; all must agree
    clips: list[tuple[str, Any]] = []
    states: list[tuple[Any, Any]] = []
    provenance: list[dict[str, Any]] = []
    flags: list[list[str]] = []
    scores: list[float] = []
    for name, path in tqdm(inputs, desc="merge", unit="clip", disable=not progress):
        read = attempt(partial(_read_merge_input, path, robot, contact_rule, layouts, config),
                       input_reason)
        if isinstance(read, Rejected):
            report.reject(path, read.reason)
            continue
        robot, contact_rule = read.robot, read.header["contact_rule"]
        clips.append((name, read.features))
        flags.append(list(read.header.get("gate_flags", [])))
        scores.append(read.header.get("feasibility_score", float("nan")))
        states.append(read.states)
        provenance.append({"name": name, "file": path.relative_to(in_dir).as_posix(),
                           "sha256": read.sha256})
    if not clips or robot is None:
        return None, report
    # The feasibility policy: drop (here, where every per-clip list is) and weight (in
    # merge_features); what it did goes to the metrics.
    decision = apply_policy(tuple(n for n, _ in clips), np.array([len(f) for _, f in clips]),
                            np.array(scores), config.feasibility)
    report.extra["feasibility"] = decision.as_metrics(config.feasibility)
    keep = decision.keep.tolist()
    clips, states, provenance, flags, scores = (
        [item for item, kept in zip(items, keep, strict=True) if kept]
        for items in (clips, states, provenance, flags, scores))
    if not clips:
        return None, report
    data = merge_features(clips, config.fps, robot, layouts[robot], config, provenance,
                          contact_rule, states=states, gate_flags=flags,
                          feasibility_scores=scores)
    report.extra["flagged"] = {name: f for (name, _), f in zip(clips, flags, strict=True) if f}
    report.outputs = list(data.clip_name)
    report.frames = data.num_frames
    duration_s = float((data.clip_length - 1).sum() / data.fps)
    report.extra.update({"clips": data.num_clips, "duration_s": duration_s,
                         "content_sha256": data.content_sha256})
    return data, report


@dataclass(frozen=True)
class _MergeInput:
    """One clip file that passed the merge checks."""

    robot: str
    features: np.ndarray  # [T, F]
    header: dict[str, Any]
    states: tuple[np.ndarray, np.ndarray]  # qpos [T, nq], qvel [T, nv]: reference states
    sha256: str


def _read_merge_input(path: Path, robot: str | None, contact_rule: dict[str, Any] | None,
                      layouts: dict[str, str], config: MergeConfig) -> _MergeInput:
    """Read one clip file and check it against the dataset so far (``robot`` and
    ``contact_rule`` of the clips accepted until now, None before the first); ``layouts``
    caches each robot's feature layout. Raises AmpkitError naming what does not fit."""
    features, header = read_clip_features(path)
    # Until a clip is accepted, the first readable clip decides the robot.
    clip_robot = robot or header["robot"]
    if clip_robot not in layouts:
        layouts[clip_robot] = layout_json(robots.load_spec(clip_robot).amp_joint_names)
    _check_header(header, clip_robot, layouts[clip_robot], config)
    if contact_rule is not None and header["contact_rule"] != contact_rule:
        raise AmpkitError(f"contacts labelled with {header['contact_rule']}, the "
                          f"dataset's with {contact_rule}: convert all clips alike")
    if features.shape[0] < config.min_frames:
        raise AmpkitError(
            f"{features.shape[0]} frames, fewer than min_frames={config.min_frames}")
    excluded = gated_out(header.get("gate_flags", []), config.include)
    if excluded:
        raise AmpkitError(excluded)
    return _MergeInput(clip_robot, features, header, read_clip_states(path), file_sha256(path))


def _check_header(header: dict[str, Any], robot: str, layout: str, config: MergeConfig) -> None:
    if header["robot"] != robot:
        raise AmpkitError(f"clip is for robot {header['robot']!r}, the dataset for {robot!r}")
    if abs(header["fps"] - config.fps) > 1e-9:
        raise AmpkitError(f"clip is at {header['fps']:g} FPS, the dataset at {config.fps:g}")
    if header["layout"] != layout:
        raise AmpkitError(f"feature layout differs from {robot}'s current layout")
