"""Retargeting as a batch stage: every clip under a directory, in parallel, skipping clips
whose output is current and reporting the rejects (the per-clip pipeline is
``retarget.retarget``; the stage entry point is ``pipeline.retarget``).

Like ``amp.stages``, it runs its jobs and reports its bad inputs through ``robots.batch``.
"""

from __future__ import annotations

import fnmatch
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import robots
from retarget.mapping import load_mapping
from retarget.quality import summarize
from retarget.retarget import (
    SOURCE_SUFFIXES,
    ClipResult,
    RetargetConfig,
    Retargeter,
    retarget_params,
)
from robots.batch import Rejected, attempt, run_jobs
from robots.errors import AmpkitError
from robots.io import file_sha256
from robots.motion import read_motion


@dataclass
class ClipOutcome:
    """What happened to one source clip in a batch run."""

    name: str
    status: str  # "ok", "skipped" (output current) or "rejected"
    reason: str = ""
    quality: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    frames: int = 0


@dataclass
class RunReport:
    """A batch run: per-clip outcomes and the run's metrics."""

    outcomes: list[ClipOutcome]
    wall_seconds: float
    jobs: int

    @property
    def usable(self) -> int:
        return sum(o.status in ("ok", "skipped") for o in self.outcomes)

    def metrics(self) -> dict[str, Any]:
        """The metrics file content (metrics/retarget.json)."""
        done = [o for o in self.outcomes if o.status == "ok"]
        frames = sum(o.frames for o in done)
        seconds = sum(o.seconds for o in done)
        return {
            "summary": {
                **summarize({o.name: o.quality for o in self.outcomes
                             if o.status in ("ok", "skipped")}),
                "clips_retargeted": len(done),
                "clips_skipped": sum(o.status == "skipped" for o in self.outcomes),
                "clips_rejected": sum(o.status == "rejected" for o in self.outcomes),
                "clips_flagged": sum(bool(o.quality.get("gate_flags")) for o in self.outcomes
                                     if o.status != "rejected"),
                "frames_retargeted": frames,
                "clip_seconds": seconds,
                "frames_per_second_per_process": frames / seconds if seconds > 0 else None,
                "wall_seconds": self.wall_seconds,
                "frames_per_second_wall": frames / self.wall_seconds
                if self.wall_seconds > 0 and frames else None,
                "jobs": self.jobs,
            },
            "clips": {o.name: {**o.quality, "status": o.status, "seconds": o.seconds,
                               "frames_per_second": o.frames / o.seconds
                               if o.seconds > 0 and o.status == "ok" else None}
                      for o in self.outcomes if o.status != "rejected"},
            "rejected": {o.name: o.reason for o in self.outcomes if o.status == "rejected"},
            "flagged": {o.name: o.quality["gate_flags"] for o in self.outcomes
                        if o.status != "rejected" and o.quality.get("gate_flags")},
        }


DEFAULT_INCLUDE: tuple[str, ...] = ("*.npz", "*.bvh")
# AMASS ships shape-only files beside the motions: SMPL-X ``*_stagei.npz``, SMPL+H ``shape.npz``.
DEFAULT_EXCLUDE: tuple[str, ...] = ("*_stagei.npz", "shape.npz", "*/shape.npz")


def find_clips(src: Path, include: tuple[str, ...] = DEFAULT_INCLUDE,
               exclude: tuple[str, ...] = DEFAULT_EXCLUDE) -> list[Path]:
    """Clip files (``SOURCE_SUFFIXES``: AMASS ``.npz``, ``.bvh``) under ``src`` (recursive),
    sorted; ``src`` itself when it is a file (its type is checked when it is loaded).

    A file is taken when its path relative to ``src`` matches one ``include`` glob and no
    ``exclude`` glob (``fnmatch`` rules: ``*`` also matches ``/``).
    """
    if src.is_file():
        return [src]

    def wanted(path: Path) -> bool:
        relative = path.relative_to(src).as_posix()
        return (any(fnmatch.fnmatch(relative, g) for g in include)
                and not any(fnmatch.fnmatch(relative, g) for g in exclude))

    # Not only regular files: a directory or a dangling link named like a clip is listed and
    # then rejected by name (unreadable), never silently skipped.
    return sorted(p for p in src.rglob("*") if p.suffix.lower() in SOURCE_SUFFIXES
                  and wanted(p))


def prune_outputs(out: Path, keep: set[Path]) -> list[Path]:
    """Delete motion files (and GMR pickles) under ``out`` whose clip is no longer a source."""
    removed = []
    for path in sorted(out.rglob("*.h5")) if out.is_dir() else []:
        if path not in keep:
            path.unlink()
            path.with_suffix(".pkl").unlink(missing_ok=True)
            removed.append(path)
    return removed


def output_path(src_root: Path, source: Path, out_root: Path) -> Path:
    """``out_root/<path of source below src_root>.h5``."""
    relative = source.name if src_root.is_file() else source.relative_to(src_root)
    return (out_root / relative).with_suffix(".h5")


def clip_name(src_root: Path, source: Path) -> str:
    relative = Path(source.name) if src_root.is_file() else source.relative_to(src_root)
    return relative.with_suffix("").as_posix()


def is_current(out_path: Path, source_sha256: str, params: dict[str, Any],
               formats: tuple[str, ...]) -> dict[str, Any] | None:
    """The stored quality if ``out_path`` was made from the same source and parameters."""
    if not out_path.exists() or ("gmr" in formats and not out_path.with_suffix(".pkl").exists()):
        return None
    try:
        motion = read_motion(out_path)
    except AmpkitError:
        return None
    if motion.source_sha256 != source_sha256 or motion.retarget_params != params:
        return None
    return motion.quality


# One Retargeter per process (built by the pool initializer; in this process when run inline).
_WORKER: Retargeter | None = None


def _init_worker(config: RetargetConfig) -> None:
    global _WORKER
    _WORKER = Retargeter(config)


def _run_one(job: tuple[str, str, str]) -> ClipOutcome:
    name, source, out = job
    assert _WORKER is not None, "worker not initialized"
    return retarget_one(_WORKER, name, Path(source), Path(out))


def rejection_reason(source: Path, exc: Exception) -> str:
    """Why ``source`` was rejected, naming the file: an ampkit error's message, else the
    exception's type and message (a clip's report is keyed by its name, not its file)."""
    reason = str(exc) if isinstance(exc, AmpkitError) else f"{type(exc).__name__}: {exc}"
    return reason if source.as_posix() in reason else f"{source}: {reason}"


def retarget_one(retargeter: Retargeter, name: str, source: Path, out: Path) -> ClipOutcome:
    """Retarget one file and write its outputs; failures become a rejected outcome."""
    start = time.perf_counter()

    def work() -> ClipResult:
        result = retargeter.retarget_file(source)
        retargeter.write(result, out, retargeter.config.formats)
        return result

    result = attempt(work, lambda exc: rejection_reason(source, exc))
    if isinstance(result, Rejected):
        out.unlink(missing_ok=True)  # a stale output of a clip that is now rejected
        out.with_suffix(".pkl").unlink(missing_ok=True)
        return ClipOutcome(name=name, status="rejected", reason=result.reason)
    seconds = time.perf_counter() - start
    return ClipOutcome(name=name, status="ok", quality=result.motion.quality, seconds=seconds,
                       frames=result.motion.num_frames)


def retarget_directory(src: str | Path, out: str | Path, config: RetargetConfig,
                       jobs: int = 1, progress: bool = True,
                       on_outcome: Callable[[ClipOutcome], None] | None = None,
                       include: tuple[str, ...] = DEFAULT_INCLUDE,
                       exclude: tuple[str, ...] = DEFAULT_EXCLUDE,
                       prune: bool = False) -> RunReport:
    """Retarget every clip under ``src`` into ``out`` (same relative paths, ``.h5``).

    Clips whose output is current (same source hash and parameters) are skipped; clips that
    fail are reported as rejected and the rest still come out.

    Args:
        src: Directory of AMASS ``.npz`` files (searched recursively) or one file.
        out: Output directory.
        config: Retarget settings.
        jobs: Worker processes (1: in this process).
        progress: Show a tqdm progress bar.
        on_outcome: Called with each outcome as it arrives.
        include, exclude: Globs on the path below ``src`` choosing the clips (see find_clips).
        prune: Delete outputs under ``out`` whose source is gone (a DVC-managed directory).
    """
    src, out = Path(src), Path(out)
    start = time.perf_counter()
    mapping = load_mapping(robots.load(config.robot))
    params = retarget_params(config, mapping)
    outcomes: list[ClipOutcome] = []
    pending: list[tuple[str, str, str]] = []
    sources = find_clips(src, include, exclude)
    if prune:
        prune_outputs(out, {output_path(src, source, out) for source in sources})
    for source in sources:
        name, target = clip_name(src, source), output_path(src, source, out)
        try:
            stored = is_current(target, file_sha256(source), params, config.formats)
        except OSError as exc:
            outcomes.append(ClipOutcome(name, "rejected", f"{source}: unreadable ({exc})"))
            continue
        if stored is not None:
            outcomes.append(ClipOutcome(name, "skipped", quality=stored,
                                        frames=int(stored.get("num_frames", 0))))
        else:
            pending.append((name, str(source), str(target)))
    # spawn: workers start clean (no forked torch / OpenMP state), one thread each.
    for outcome in run_jobs(_run_one, pending, jobs, desc="retarget", progress=progress,
                            initializer=_init_worker, initargs=(config,), ordered=False,
                            describe=lambda job: job[1], one_thread_each=True):
        outcomes.append(outcome)
        if on_outcome is not None:
            on_outcome(outcome)
    outcomes.sort(key=lambda o: o.name)
    return RunReport(outcomes=outcomes, wall_seconds=time.perf_counter() - start, jobs=jobs)
