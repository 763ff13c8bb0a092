"""DVC stage ``render_policy``: videos of a trained policy walking, beside a reference clip.

    python -m pipeline.render --checkpoint runs/amp --out videos/policy \\
        [--data data/amp/merged.h5] [--clips data/amp/clips] [--seconds S]

One mp4 per commanded velocity (``render_policy.commands``): the policy rolled out in plain
MuJoCo (``training.sim2sim``, nominal physics and sensor noise), a tracking camera, the commanded
and actual velocity written on every frame, and on the right a reference clip (an AMP clip's
robot configuration from ``--clips``, one of the clips in ``--data`` when given) rendered
alongside at the same time. Works headless (EGL or OSMesa, see ``pipeline.gl``).
"""

from __future__ import annotations

from pipeline.gl import select_gl_backend

select_gl_backend()  # before anything imports mujoco

import fnmatch  # noqa: E402
import sys  # noqa: E402
import warnings  # noqa: E402
from collections.abc import Iterator  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import ClassVar  # noqa: E402

import numpy as np  # noqa: E402

from pipeline.params import build_config, load_section  # noqa: E402
from pipeline.video import label, write_mp4  # noqa: E402
from robots.cli import stage_parser  # noqa: E402
from robots.errors import AmpkitError  # noqa: E402
from robots.render import MotionRenderer, RenderConfig, frame_indices  # noqa: E402


@dataclass(frozen=True)
class RenderPolicyConfig:
    """``render_policy:`` section of params.yaml.

    Attributes:
        commands: (vx m/s, vy m/s, yaw rate rad/s) per video.
        seconds: Length of each rollout and video [s].
        reference_clips: Name globs of the AMP clips shown beside the policy, first match wins
            (an empty list: no reference).
        width, height: Size of each half of a frame [px].
        fps: Video frame rate [Hz].
        seed: Initial pose and sensor noise.
    """

    BOUNDS: ClassVar[dict[str, str]] = {
        "seconds": "> 0", "width": ">= 16", "height": ">= 16", "fps": "> 0"}

    commands: tuple[tuple[float, float, float], ...] = ((0.3, 0.0, 0.0), (0.2, 0.0, 0.5))
    seconds: float = 8.0
    reference_clips: tuple[str, ...] = ("walk*", "*")
    width: int = 480
    height: int = 360
    fps: float = 25.0
    seed: int = 0


@dataclass(frozen=True)
class ReferenceClip:
    """A reference robot motion: its name, qpos [T, nq] and rate [Hz]."""

    name: str
    qpos: np.ndarray
    fps: float


def find_reference(clips_dir: Path, globs: tuple[str, ...],
                   dataset: Path | None = None) -> ReferenceClip | None:
    """The first AMP clip file in ``clips_dir`` whose name matches a glob (in glob order),
    restricted to the clips of ``dataset`` when given; None when nothing matches."""
    from amp.clipfile import read_clip

    files = {p.stem: p for p in sorted(clips_dir.rglob("*.h5"))} if clips_dir.is_dir() else {}
    if dataset is not None:
        from amp.merge import read_merged

        merged = read_merged(dataset, verify_hash=False)
        by_file = {entry.get("name"): clips_dir / entry["file"] for entry in merged.inputs
                   if "file" in entry}
        files = {name: by_file.get(name, files.get(name)) for name in merged.clip_name}
        files = {name: path for name, path in files.items() if path and path.exists()}
    for pattern in globs:
        for name in sorted(files):
            if fnmatch.fnmatch(name, pattern):
                clip = read_clip(files[name])
                return ReferenceClip(name, np.asarray(clip.qpos), float(clip.fps))
    return None


def caption(command: np.ndarray, velocity: np.ndarray, time_s: float,
            fell_at_s: float | None) -> list[str]:
    """Frame text: time, commanded and actual velocity, and the fall if it happened."""
    lines = [f"t {time_s:5.2f} s",
             f"cmd vx {command[0]:+.2f} vy {command[1]:+.2f} m/s  yaw {command[2]:+.2f} rad/s",
             f"act vx {velocity[0]:+.2f} vy {velocity[1]:+.2f} m/s  yaw {velocity[2]:+.2f} rad/s"]
    if fell_at_s is not None and time_s >= fell_at_s:
        lines.append(f"FELL at {fell_at_s:.2f} s")
    return lines


def policy_frames(trajectory: object, renderer: MotionRenderer,
                  reference_renderer: MotionRenderer | None,
                  reference: ReferenceClip | None) -> Iterator[np.ndarray]:
    """Labelled frames of one rollout (``training.sim2sim.Trajectory``), with the reference
    clip (looped) concatenated on the right."""
    fps_out = renderer.config.fps
    for index in frame_indices(len(trajectory.qpos), trajectory.fps, fps_out):
        time_s = index / trajectory.fps
        frame = label(renderer.render(trajectory.qpos[index]),
                      caption(trajectory.command, trajectory.velocity[index], time_s,
                              trajectory.fell_at_s))
        if reference is not None and reference_renderer is not None:
            ref_index = int(round(time_s * reference.fps)) % len(reference.qpos)
            ref_frame = label(reference_renderer.render(reference.qpos[ref_index]),
                              [f"reference: {reference.name}"])
            frame = np.concatenate([frame, ref_frame], axis=1)
        yield frame


def video_name(command: np.ndarray) -> str:
    from training.scenarios import command_key

    return f"policy_{command_key(command)}.mp4"


def main(argv: list[str] | None = None) -> int:
    parser = stage_parser("render_policy", prog="python -m pipeline.render", description=__doc__)
    parser.add_argument("--checkpoint", required=True, type=Path,
                        help="checkpoint directory, or a run directory (its newest checkpoint)")
    parser.add_argument("--out", required=True, type=Path, help="output directory")
    parser.add_argument("--data", type=Path, default=None,
                        help="merged dataset: the reference clip is one of its clips")
    parser.add_argument("--clips", type=Path, default=Path("data/amp/clips"),
                        help="AMP clip directory holding the reference clips' qpos")
    parser.add_argument("--seconds", type=float, default=None, help="overrides the params")
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    args = parser.parse_args(argv)
    from training.policy import deterministic_policy, load_snapshot
    from training.sim2sim import record_rollouts

    try:
        values = load_section("render_policy", args.params)
        if "commands" in values:
            values["commands"] = [tuple(float(c) for c in cmd) for cmd in values["commands"]]
        config = build_config(RenderPolicyConfig, values, "render_policy")
        seconds = args.seconds if args.seconds is not None else config.seconds
        snapshot = load_snapshot(args.checkpoint)
        reference = find_reference(args.clips, tuple(config.reference_clips), args.data)
        rollouts = record_rollouts(deterministic_policy(snapshot), snapshot.env,
                                   tuple(config.commands), seconds, config.seed)
    except AmpkitError as exc:
        print(f"render_policy: error: {exc}", file=sys.stderr)
        return 2
    if reference is None:
        print(f"render_policy: no reference clip matching {list(config.reference_clips)} in "
              f"{args.clips}; rendering the policy alone", file=sys.stderr)
    # imageio-ffmpeg forks to exec ffmpeg; JAX's warning about forking is moot for an exec.
    warnings.filterwarnings("ignore", message=r"os\.fork\(\) was called", category=RuntimeWarning)
    render_config = RenderConfig(width=config.width, height=config.height, fps=config.fps)
    robot = snapshot.env.robot
    with MotionRenderer(robot, render_config) as renderer, \
            MotionRenderer(robot, render_config) as reference_renderer:
        for trajectory in rollouts:
            path = args.out / video_name(trajectory.command)
            count = write_mp4(path, policy_frames(trajectory, renderer, reference_renderer,
                                                  reference), config.fps)
            fell = "" if trajectory.fell_at_s is None else f", fell at {trajectory.fell_at_s:.2f} s"
            print(f"render_policy: {path} ({count} frames{fell})")
    return 0


if __name__ == "__main__":
    from robots.errors import run_main

    raise SystemExit(run_main(main, "render"))
