"""Benchmark and bar check: retarget the CMU BVH clips in tests/data/bvh, end to end.

Per clip (one process, one core): read and map the BVH, resample, scale, ground from stance,
contacts, mink IK with per-frame limits, smoothing, quality and gates, write the ``.h5``. Prints
output frames per second of process CPU time (per core) after one untimed warm-up clip, and the
bars of issue 13 measured by the independent checker (``tests/motion_checks.py``: plain MuJoCo
forward kinematics of the written qpos), per clip and over the walks and turns.

    python -m bench.retarget_bvh [--repeats 1]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from retarget.retarget import RetargetConfig, Retargeter
from retarget.stages import retarget_one
from robots.motion import read_motion
from tests.motion_checks import check_motion

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data" / "bvh"
WALKS = ("cmu_07_04_slow_walk", "cmu_07_01_walk", "cmu_07_12_brisk_walk",
         "cmu_16_31_start_walk_daz", "cmu_131_01_start_walk_stop_max",
         "cmu_09_12_navigate_turns")
TARGET_FRAMES_PER_SECOND = 1500.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.retarget_bvh", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args(argv)
    retargeter = Retargeter(RetargetConfig())
    clips = sorted(DATA.glob("*.bvh"))
    with tempfile.TemporaryDirectory(prefix="bench_bvh_") as tmp:
        out = Path(tmp)
        retarget_one(retargeter, "warmup", clips[0], out / "warmup.h5")
        frames, cpu = 0, 0.0
        checks = {}
        for _ in range(args.repeats):
            for clip in clips:
                start = time.process_time()
                outcome = retarget_one(retargeter, clip.stem, clip, out / f"{clip.stem}.h5")
                cpu += time.process_time() - start
                if outcome.status != "ok":
                    print(f"{clip.stem}: rejected: {outcome.reason}")
                    continue
                frames += outcome.frames
                motion = read_motion(out / f"{clip.stem}.h5")
                names = list(motion.human_joint_names)
                root = 0.5 * (motion.human_joints[:, names.index("left_hip")]
                              + motion.human_joints[:, names.index("right_hip")])
                checks[clip.stem] = (check_motion(
                    retargeter.robot.model, motion.qpos, motion.fps, root,
                    list(retargeter.robot.spec.contact_site_names)), motion.quality)
    print(f"{'clip':38s} pen_mm firm_cm/s near  jspeed root_x lim  gate")
    for name, (check, quality) in checks.items():
        flags = "; ".join(f.split(":")[0] for f in quality["gate_flags"])
        print(f"{name:38s} {check.penetration_m * 1e3:6.2f} "
              f"{check.firm_contact_speed_mean_mps * 100:9.2f} "
              f"{check.near_floor_frame_share:5.2f} {check.max_joint_speed_rad_s:6.1f} "
              f"{check.root_speed_excess_frames:6d} {check.joint_limit_violations:3d}  "
              f"{quality['gate_status']}: {flags}")
    walks = [checks[n][0] for n in WALKS if n in checks]
    firm = [c.firm_contact_speed_mean_mps for c in walks]
    print(f"walks+turns: penetration max {max(c.penetration_m for c in walks) * 1e3:.2f} mm, "
          f"firm-contact speed mean {np.mean(firm) * 100:.2f} cm/s (worst clip "
          f"{max(firm) * 100:.2f}), "
          f"foot near floor min {min(c.near_floor_frame_share for c in walks):.3f}, max joint "
          f"speed {max(c.max_joint_speed_rad_s for c in walks):.1f} rad/s, root-speed excess "
          f"frames {sum(c.root_speed_excess_frames for c in walks)}, joint-limit violations "
          f"{sum(c.joint_limit_violations for c in walks)}")
    rate = frames / cpu
    verdict = "PASS" if rate >= TARGET_FRAMES_PER_SECOND else "FAIL"
    print(f"{frames} output frames, {rate:.0f} frames/s per core (CPU time); target >= "
          f"{TARGET_FRAMES_PER_SECOND:.0f}: {verdict}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
