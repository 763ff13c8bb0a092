"""Benchmark: frames per second per core of the feasibility check (amp.feasibility).

Times :func:`amp.feasibility.clip_feasibility` (accelerations, ``mj_inverse``, foot Jacobians,
one contact-force QP per frame with contact, CoP against the support polygon, the summary) on
AMP clip files, in one process. CPU time is what it reports per core (insensitive to other
load on the machine); the wall time is printed beside it. Target (issue 14): >= 5,000
frames/s per core.

    python -m bench.feasibility [--clips data/amp/clips] [--repeats 5]

Without ``--clips`` (or with a directory holding no clip) it converts a synthetic gait set
(``bench/convert.py``'s gait-like motions, 90 s) first.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from amp.clipfile import read_clip
from amp.convert import ConvertConfig, convert_motion, load_for_kinematics
from amp.feasibility import FeasibilityConfig, clip_feasibility, feasibility_model
from robots.motion import read_motion


def _synthetic_clips(robot) -> list:
    from bench.convert import synthesize

    with tempfile.TemporaryDirectory() as tmp:
        synthesize(Path(tmp), robot.spec, clips=16, total_s=90.0, seed=0)
        return [convert_motion(read_motion(p), robot, ConvertConfig(), p.stem)
                for p in sorted(Path(tmp).glob("*.h5"))]


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.feasibility",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=Path, default=None, help="directory of AMP clip files")
    parser.add_argument("--repeats", type=int, default=5, help="timed passes; the best is kept")
    args = parser.parse_args()
    robot = load_for_kinematics("wildrobot")
    paths = sorted(args.clips.glob("*.h5")) if args.clips else []
    clips = [read_clip(p) for p in paths] or _synthetic_clips(robot)
    fm = feasibility_model(robot)
    config = FeasibilityConfig()
    frames = sum(c.num_frames for c in clips)
    touching = sum(int((c.features[:, 25:29] > 0.5).any(axis=1).sum()) for c in clips)
    cpu, wall = [], []
    for _ in range(args.repeats):
        cpu_start, wall_start = time.process_time(), time.perf_counter()
        for clip in clips:
            clip_feasibility(fm, clip.qpos, clip.qvel, clip.fps, clip.features[:, 25:29] > 0.5,
                             config)
        cpu.append(time.process_time() - cpu_start)
        wall.append(time.perf_counter() - wall_start)
    source = args.clips if paths else "synthetic gait set (bench/convert.py)"
    print(f"{len(clips)} clips from {source}: {frames} frames, {touching} with contact")
    print(f"best of {args.repeats}: {min(cpu) * 1e3:.0f} ms CPU, {min(wall) * 1e3:.0f} ms wall; "
          f"{min(cpu) / frames * 1e6:.1f} µs per frame")
    print(f"frames_per_second_per_core: {frames / min(cpu):,.0f} "
          f"(median {frames / float(np.median(cpu)):,.0f}; wall {frames / min(wall):,.0f})")


if __name__ == "__main__":
    main()
