"""Replay every AMP clip in MuJoCo with the robot's own servos and a root-assist spring.

    python -m scripts.track_references data/amp/clips [--only walk] [--assist-hz 2.0]

The physical counterpart of the inverse-dynamics residual (amp.tracking): per clip, the assist
force and torque the replay needs (RMS, as a share of the robot's weight), whether the tracked
motion keeps the reference's contacts, the root and joint tracking errors, and the clip's
feasibility score beside it. The servo targets get the inverse-dynamics torques as
feed-forward offsets (what a policy would learn), so servo sag under load is not counted as
infeasibility. Not a pipeline stage: about 1,500 frames/s per core.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import robots
from amp.clipfile import read_clip
from amp.feasibility import (
    CONTACT_SLICE,
    FeasibilityConfig,
    clip_feasibility,
    feasibility_model,
)
from amp.tracking import TrackingConfig, track_reference


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("clips", type=Path, help="directory of AMP clip files")
    parser.add_argument("--only", default="", help="substring a clip name must contain")
    parser.add_argument("--assist-hz", type=float, default=TrackingConfig.assist_hz,
                        help="natural frequency of the root-assist spring [Hz]")
    args = parser.parse_args()
    robot = robots.load("wildrobot")
    fm = feasibility_model(robot)
    config = TrackingConfig(assist_hz=args.assist_hz)
    print(f"{'clip':<24} {'assist F rms':>13} {'of weight':>9} {'F max':>7} {'T rms':>7} "
          f"{'contacts kept':>13} {'root err':>9} {'fell':>5} {'feasibility':>11}")
    for path in sorted(args.clips.glob("*.h5")):
        clip = read_clip(path)
        if args.only not in clip.name:
            continue
        report = clip_feasibility(fm, clip.qpos, clip.qvel, clip.fps,
                                  clip.features[:, CONTACT_SLICE] > 0.5, FeasibilityConfig())
        tracked = track_reference(robot.model, robot.contact_site_ids, clip.qpos, clip.qvel,
                                  clip.fps, config, feedforward=report.dynamics.torque)
        r = tracked.as_record()
        print(f"{clip.name:<24} {r['assist_force_rms_n']:>11.1f} N "
              f"{r['assist_force_share_of_weight']:>9.0%} {r['assist_force_max_n']:>5.1f} N "
              f"{r['assist_torque_rms_nm']:>7.2f} {r['contact_agreement']:>13.0%} "
              f"{r['root_error_rms_m'] * 100:>6.1f} cm {str(r['fell']):>5} {report.score:>11.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
