"""How far apart does the data put the feet? The target of the ``stance_width`` reward term.

    python -m bench.stance_width --data data/amp/tracked.h5

For every frame of a merged dataset: the lateral distance between the feet in the root's
heading frame (``kinematics.stance_width``: left minus right, each foot the midpoint of its
toe and heel contact points), from the frame's ``qpos`` through the robot's own kinematics.
Prints its mean and spread over the frames in a counted gait cycle
(``kinematics.reference_gait_phase`` > 0: walking, not standing) and over all frames. A
policy whose feet are wider or narrower than the data's is told apart by its hip roll alone
(measured in run w15: one-threshold accuracy 0.69).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import numpy as np

import robots
from amp.merge import read_merged
from robots.errors import AmpkitError
from training.envs import kinematics as kin


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", required=True, help="merged.h5 (schema 2: with qpos)")
    args = parser.parse_args(argv)
    try:
        data = read_merged(args.data)
        if not data.has_reference_states:
            raise AmpkitError(f"{args.data}: no qpos (schema 1); re-run merge")
        robot = robots.load(data.robot)
        widths = kin.frame_stance_widths(robot.model, robot.contact_site_ids, data.qpos)
    except AmpkitError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    stepping = kin.features_gait_phase(data.features, data.clip_length, data.fps) > 0
    for label, mask in (("walking frames", stepping), ("all frames", np.ones_like(stepping))):
        if mask.any():
            print(f"{args.data}: stance width over {label} ({int(mask.sum())}): "
                  f"mean {widths[mask].mean():.4f} m, std {widths[mask].std():.4f} m")
    return 0


if __name__ == "__main__":
    sys.exit(main())
