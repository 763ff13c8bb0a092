"""How far is the robot's own performance of the data from the data? A filtered reference probed.

    python -m bench.reference_gap --data data/amp/merged.h5 --tracked data/amp/tracked.h5

``training.reference_filter`` records the dataset's clips as a tracking policy performs them in
the simulator. This bench trains fresh discriminators (as ``bench.cadence_probe``: the trainer's
loss, the kinematic dataset's normalizer, scored on fresh draws with clean inputs) on the
tracked locomotion clips against the kinematic ones. Their policy accuracy is what a walking
policy that moved exactly like the tracker would still score against the kinematic data: the
realism gap the robot's physics leaves, balance included (``bench.servo_replay`` measures the
servos alone, with the root held). The control trains on two halves of the kinematic draws.

Also prints the features one threshold separates best (data, then tracked: std and mean).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import jax
import numpy as np

from amp.dataset import load_dataset
from amp.features import feature_names
from bench.cadence_probe import locomotion_arrays
from bench.disc_probe import feature_report, probe_arrays
from robots import load_spec
from robots.errors import AmpkitError


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="the kinematic merged.h5")
    parser.add_argument("--tracked", required=True, help="its filtered version")
    parser.add_argument("--noise", type=float, nargs="+", default=[0.1, 0.6])
    parser.add_argument("--gp", type=float, default=10.0)
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--scored", type=int, default=20_000)
    args = parser.parse_args(argv)
    spec = load_spec("wildrobot")
    try:
        kinematic = load_dataset(args.data, spec).data
        tracked = load_dataset(args.tracked, spec).data
    except AmpkitError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    norm = (kinematic.mean, kinematic.std, 1.0)
    reference = locomotion_arrays(np.asarray(kinematic.features), kinematic.clip_start,
                                  kinematic.clip_length, kinematic.clip_weight, *norm)
    performed = locomotion_arrays(np.asarray(tracked.features), tracked.clip_start,
                                  tracked.clip_length, tracked.clip_weight, *norm)
    print(f"{args.tracked}: {len(performed.features)} tracked locomotion frames against "
          f"{len(reference.features)} kinematic ones")
    print("\n".join(feature_report(np.asarray(reference.features),
                                   np.asarray(performed.features),
                                   feature_names(spec.amp_joint_names), 6)))

    rng = jax.random.PRNGKey(0)
    for label, first in (("control (kinematic)", reference), ("tracked", performed)):
        for noise in args.noise:
            *keys, rng = jax.random.split(rng, 5)
            print(probe_arrays(keys, f"{label}, noise {noise:g}", first, reference, noise,
                               args.gp, args.steps, args.scored).line(), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
