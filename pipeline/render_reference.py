"""DVC stage ``render_reference``: videos of retargeted clips with the scaled human drawn over
the robot, and one contact sheet of every clip.

    python -m pipeline.render_reference --in data/retargeted --out videos/reference
"""

from __future__ import annotations

from pipeline.gl import select_gl_backend

select_gl_backend()  # before anything imports mujoco

import argparse  # noqa: E402
import fnmatch  # noqa: E402
import sys  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402

from tqdm import tqdm  # noqa: E402

import robots  # noqa: E402
from pipeline.params import build_config, load_section  # noqa: E402
from pipeline.video import label, write_contact_sheet, write_mp4  # noqa: E402
from retarget.human import FOOT_POINT_PARENTS, SMPLX_BODY_JOINTS, SMPLX_PARENTS  # noqa: E402
from robots.motion import RobotMotion, read_motion  # noqa: E402
from robots.render import MotionRenderer, RenderConfig  # noqa: E402


@dataclass(frozen=True)
class RenderReferenceConfig:
    """``render_reference:`` section of params.yaml.

    Attributes:
        clips: Name globs of the clips that get a video (in this order, first match wins).
        max_videos: At most this many videos.
        max_seconds: Each video covers at most the first this many seconds [s].
        width, height: Frame size [px]; the contact sheet uses half of each.
        fps: Video frame rate [Hz].
    """

    clips: tuple[str, ...] = ("*walk*",)
    max_videos: int = 3
    max_seconds: float = 8.0
    width: int = 640
    height: int = 480
    fps: float = 25.0


def human_bones(joint_names: tuple[str, ...]) -> list[tuple[int, int]]:
    """Parent-child index pairs among ``joint_names`` (SMPL-X joints and foot points)."""
    index = {name: i for i, name in enumerate(joint_names)}
    parent_of = {SMPLX_BODY_JOINTS[i]: SMPLX_BODY_JOINTS[p]
                 for i, p in enumerate(SMPLX_PARENTS) if p >= 0}
    parent_of.update(FOOT_POINT_PARENTS)
    return [(index[parent_of[name]], index[name]) for name in joint_names
            if name in parent_of and parent_of[name] in index]


def choose_clips(names: list[str], globs: tuple[str, ...], limit: int) -> list[str]:
    chosen: list[str] = []
    for pattern in globs:
        chosen += [n for n in sorted(names) if fnmatch.fnmatch(n, pattern) and n not in chosen]
    return chosen[:limit]


def render_clip_video(renderer: MotionRenderer, motion: RobotMotion, path: Path,
                      config: RenderReferenceConfig, name: str) -> int:
    last = min(motion.num_frames, int(config.max_seconds * motion.fps) + 1)
    bones = human_bones(motion.human_joint_names)
    frames = renderer.render_motion(motion.qpos[:last], motion.fps,
                                    motion.human_joints[:last], bones)
    caption = [name, f"{motion.robot} | body model {motion.body_model} | red: scaled human"]
    return write_mp4(path, (label(f, caption) for f in frames), config.fps)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--in", dest="src", type=Path, required=True, help="robot motion .h5 dir")
    parser.add_argument("--out", type=Path, required=True, help="output directory")
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    args = parser.parse_args(argv)
    config = build_config(RenderReferenceConfig, load_section("render_reference", args.params),
                          "render_reference")
    motions = {p.stem: p for p in sorted(args.src.glob("*.h5"))}
    if not motions:
        print(f"render_reference: no .h5 files in {args.src}", file=sys.stderr)
        return 1
    first = read_motion(next(iter(motions.values())))
    robot = robots.load(first.robot)
    tiles = []
    sheet_config = RenderConfig(width=config.width // 2, height=config.height // 2)
    with MotionRenderer(robot, sheet_config) as renderer:
        for name, path in tqdm(motions.items(), desc="contact sheet", unit="clip"):
            motion = read_motion(path)
            middle = motion.num_frames // 2
            bones = human_bones(motion.human_joint_names)
            frame = renderer.render(motion.qpos[middle], motion.human_joints[middle], bones)
            tiles.append(label(frame, [name]))
    write_contact_sheet(args.out / "contact_sheet.png", tiles)
    video_config = RenderConfig(width=config.width, height=config.height, fps=config.fps)
    with MotionRenderer(robot, video_config) as renderer:
        for name in tqdm(choose_clips(list(motions), config.clips, config.max_videos),
                         desc="videos", unit="clip"):
            count = render_clip_video(renderer, read_motion(motions[name]),
                                      args.out / f"{name}.mp4", config, name)
            print(f"render_reference: {name}.mp4 ({count} frames)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
