"""DVC stage ``render_reference``: videos of retargeted clips with the scaled human drawn over
the robot, and one contact sheet of every clip.

    python -m pipeline.render_reference --in data/retargeted --out videos/reference
"""

from __future__ import annotations

from pipeline.gl import select_gl_backend

select_gl_backend()  # before anything imports mujoco

import fnmatch  # noqa: E402
import sys  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import ClassVar  # noqa: E402

from tqdm import tqdm  # noqa: E402

import robots  # noqa: E402
from amp.feasibility import feasibility_label, read_record  # noqa: E402
from pipeline.params import build_config, load_section  # noqa: E402
from pipeline.video import label, write_contact_sheet, write_mp4  # noqa: E402
from retarget.human import FOOT_POINT_PARENTS, SMPLX_BODY_JOINTS, SMPLX_PARENTS  # noqa: E402
from robots.cli import stage_parser  # noqa: E402
from robots.motion import RobotMotion, read_motion  # noqa: E402
from robots.render import MotionRenderer, RenderConfig  # noqa: E402


@dataclass(frozen=True)
class RenderReferenceConfig:
    """``render_reference:`` section of params.yaml.

    Attributes:
        clips: Name globs of the clips that get a video (in this order, first match wins);
            a glob that matches nothing is reported, and when none matches anything the
            first ``max_videos`` clips get one (never no video without a word).
        max_videos: At most this many videos; None: one per clip.
        max_seconds: Each video covers at most the first this many seconds [s].
        width, height: Frame size [px]; the contact sheet uses half of each.
        fps: Video frame rate [Hz].
    """

    BOUNDS: ClassVar[dict[str, str]] = {
        "max_seconds": "> 0", "width": ">= 16", "height": ">= 16", "fps": "> 0"}

    clips: tuple[str, ...] = ("*",)
    max_videos: int | None = None
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


def choose_clips(names: list[str], globs: tuple[str, ...],
                 limit: int | None) -> tuple[list[str], list[str]]:
    """(clips that get a video, globs that matched no clip). With no match at all, the first
    ``limit`` clips (sorted) get one."""
    chosen: list[str] = []
    unmatched: list[str] = []
    for pattern in globs:
        hits = [n for n in sorted(names) if fnmatch.fnmatch(n, pattern)]
        if not hits:
            unmatched.append(pattern)
        chosen += [n for n in hits if n not in chosen]
    if not chosen:
        chosen = sorted(names)
    return chosen[:limit], unmatched


def fill_sheet(tiles: list, columns: int, lines: list[str]) -> list:
    """``tiles`` padded to whole rows with captioned info tiles (no blank tile on the sheet)."""
    import numpy as np

    if not tiles:
        return tiles
    missing = -len(tiles) % columns
    info = np.full_like(tiles[0], 40)
    return tiles + [label(info.copy(), lines) for _ in range(missing)]


def render_clip_video(renderer: MotionRenderer, motion: RobotMotion, path: Path,
                      config: RenderReferenceConfig, name: str) -> int:
    last = min(motion.num_frames, int(config.max_seconds * motion.fps) + 1)
    bones = human_bones(motion.human_joint_names)
    frames = renderer.render_motion(motion.qpos[:last], motion.fps,
                                    motion.human_joints[:last], bones)
    caption = [name, f"{motion.robot} | body model {motion.body_model} | red: scaled human"]
    return write_mp4(path, (label(f, caption) for f in frames), config.fps)


def main(argv: list[str] | None = None) -> int:
    parser = stage_parser("render_reference", prog="python -m pipeline.render_reference",
                          description=__doc__)
    parser.add_argument("--in", dest="src", type=Path, required=True, help="robot motion .h5 dir")
    parser.add_argument("--out", type=Path, required=True, help="output directory")
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--clips", type=Path, default=None,
                        help="AMP clip directory (convert's output): label each contact-sheet "
                             "tile with the clip's physical feasibility")
    args = parser.parse_args(argv)
    config = build_config(RenderReferenceConfig, load_section("render_reference", args.params),
                          "render_reference")
    # Every clip, nested ones too (AMASS keeps subjects in sub-folders): named by the path.
    motions = {p.relative_to(args.src).with_suffix("").as_posix(): p
               for p in sorted(args.src.rglob("*.h5"))}
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
            record = read_record(args.clips / f"{name}.h5") if args.clips else None
            tiles.append(label(frame, [name, *(feasibility_label(record) if record else [])]))
    columns = min(4, len(tiles))
    write_contact_sheet(args.out / "contact_sheet.png",
                        fill_sheet(tiles, columns, [f"{len(motions)} clips",
                                                    "red: scaled human"]), columns=columns)
    chosen, unmatched = choose_clips(list(motions), config.clips, config.max_videos)
    for pattern in unmatched:
        print(f"render_reference: render_reference.clips pattern {pattern!r} matched no clip",
              file=sys.stderr)
    if len(unmatched) == len(config.clips):
        print(f"render_reference: no pattern matched; videos of the first {len(chosen)} clips",
              file=sys.stderr)
    video_config = RenderConfig(width=config.width, height=config.height, fps=config.fps)
    with MotionRenderer(robot, video_config) as renderer:
        for name in tqdm(chosen, desc="videos", unit="clip"):
            video = args.out / f"{name.replace('/', '__')}.mp4"
            count = render_clip_video(renderer, read_motion(motions[name]), video, config, name)
            print(f"render_reference: {video.name} ({count} frames)")
    return 0


if __name__ == "__main__":
    from robots.errors import run_main

    raise SystemExit(run_main(main, "render_reference"))
