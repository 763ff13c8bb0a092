"""How well does the data's pose template describe the data? Per joint, per harmonic count.

    python -m bench.pose_template --data data/amp/tracked.h5
    python -m bench.pose_template --data data/amp/merged.h5 --orders 2 4 6

The ``reference_pose`` reward term asks the policy for the template's joint angles at its
clock's phase and commanded speed (:mod:`training.envs.pose_template`). This prints, for the
dataset's stepping frames, the share of each joint's variance the template explains and its
RMS residual, and the summed squared residual (the distance the data's own frames sit from
the template, against which ``rewards.reference_pose_sigma`` is set).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

import numpy as np

from amp.merge import read_merged
from robots.errors import AmpkitError
from training.envs.pose_template import DEFAULT_ORDER, JOINT_POS, fit_dataset_template


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="a merged.h5")
    parser.add_argument("--orders", type=int, nargs="+", default=[DEFAULT_ORDER],
                        help="harmonics per joint to fit (the reward uses "
                        f"{DEFAULT_ORDER})")
    args = parser.parse_args(argv)
    data = read_merged(args.data)
    names = [name.split("/", 1)[1] for name in json.loads(data.layout)["names"][JOINT_POS]]
    for order in args.orders:
        try:
            _, speed_center, fit = fit_dataset_template(data.features, data.clip_length,
                                                        data.fps, order)
        except ValueError as exc:
            raise AmpkitError(f"{args.data}: {exc}") from None
        print(f"{args.data}: {order} harmonics, {fit.frames} stepping frames of "
              f"{data.num_frames}, v0 {speed_center:.3f} m/s: explains "
              f"{fit.total_explained:.1%} of the joint-angle variance; the frames sit "
              f"{np.sum(fit.rms_residual_rad ** 2):.4f} rad^2 from it (summed over joints)")
        for name, share, rms in zip(names, fit.explained_variance, fit.rms_residual_rad,
                                    strict=True):
            print(f"  {name:18s} explained {share:6.1%}  rms residual {rms:.3f} rad")
    return 0


def _main() -> int:
    try:
        return main()
    except AmpkitError as exc:  # a missing or damaged dataset, data without a gait
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(_main())
