"""Can the discriminator tell the data from the same data played faster?

    python -m bench.cadence_probe --data data/amp/merged.h5
    python -m bench.cadence_probe --data … --factors 1.0 1.3 1.67 --noise 0.1 --gp 10

A walking policy under the ``cpu-walk`` gait clock steps at 2.6 touchdowns/s; the data walks
at about 1.56. This bench asks whether a cadence difference by itself is enough for the
discriminator to separate policy from data, whatever the policy's pose and balance: it plays
every locomotion clip (mean forward speed >= ``LOCOMOTION_MIN_SPEED_MPS``) ``factor`` times
faster, resampled to the same 50 FPS (positions and the root height interpolated, velocities
interpolated and multiplied by the factor, contacts taken from the nearest frame), and trains
fresh discriminators on those transitions against the unchanged locomotion clips, with the
trainer's loss and the dataset's normalizer. Each is scored on fresh draws with clean inputs,
as the style reward is. The clips hold a few thousand frames, so those draws are frames it
was trained on: the accuracy is how well this discriminator can draw the line at all, an
upper bound of what it generalizes. Factor 1 is the control: it must stay near chance.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import jax
import numpy as np

from amp.dataset import DatasetArrays, load_dataset, sampler_arrays
from amp.features import FEATURE_LAYOUT
from bench.disc_probe import probe_arrays
from robots import load_spec
from robots.errors import AmpkitError
from training.eval_metrics import LOCOMOTION_MIN_SPEED_MPS, is_locomotion_clip

_VELOCITY_COLUMNS = np.r_[tuple(block.as_slice() for block in FEATURE_LAYOUT
                                if block.name in ("joint_vel", "root_lin_vel", "root_ang_vel"))]
_CONTACT_COLUMNS = next(block.as_slice() for block in FEATURE_LAYOUT
                        if block.name == "foot_contact")


def time_scaled_clip(features: np.ndarray, factor: float) -> np.ndarray:
    """One clip's AMP frames [T, 29] played ``factor`` times faster at the same frame rate,
    [T', 29] with T' = floor((T - 1) / factor) + 1."""
    source = np.arange(0.0, features.shape[0] - 1 + 1e-9, factor)
    frames = np.arange(features.shape[0])
    scaled = np.stack([np.interp(source, frames, column) for column in features.T], axis=1)
    scaled[:, _VELOCITY_COLUMNS] *= factor
    scaled[:, _CONTACT_COLUMNS] = features[np.rint(source).astype(int), _CONTACT_COLUMNS]
    return scaled.astype(np.float32)


def locomotion_arrays(features: np.ndarray, clip_start: np.ndarray, clip_length: np.ndarray,
                      clip_weight: np.ndarray, mean: np.ndarray, std: np.ndarray,
                      factor: float) -> DatasetArrays:
    """Sampler arrays of the locomotion clips, each played ``factor`` times faster, weighted as
    in the dataset; ``mean`` / ``std`` (the whole dataset's: the discriminator's normalizer)
    are kept as given."""
    clips, weights = [], []
    for start, length, weight in zip(clip_start, clip_length, clip_weight, strict=True):
        clip = features[int(start):int(start) + int(length)]
        if is_locomotion_clip(clip):
            clips.append(time_scaled_clip(clip, factor))
            weights.append(float(weight))
    if not clips:
        raise AmpkitError("the dataset holds no locomotion clip (mean forward speed >= "
                          f"{LOCOMOTION_MIN_SPEED_MPS} m/s)")
    lengths = np.array([len(clip) for clip in clips], np.int32)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int32)
    return sampler_arrays(np.concatenate(clips), starts, lengths, np.array(weights), mean, std)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="a merged.h5")
    parser.add_argument("--robot", default="wildrobot")
    parser.add_argument("--factors", type=float, nargs="+", default=[1.0, 1.15, 1.3, 1.67])
    parser.add_argument("--noise", type=float, default=0.1, help="instance noise (normalized)")
    parser.add_argument("--gp", type=float, default=10.0, help="gradient-penalty weight")
    parser.add_argument("--hidden", type=int, nargs="+", default=[512, 256])
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--batch", type=int, default=2048)
    parser.add_argument("--learning-rate", type=float, default=1e-4)
    parser.add_argument("--scored", type=int, default=20_000, help="transitions scored per side")
    args = parser.parse_args(argv)

    data = load_dataset(args.data, load_spec(args.robot)).data
    reference = locomotion_arrays(data.features, data.clip_start, data.clip_length,
                                  data.clip_weight, data.mean, data.std, 1.0)

    rng = jax.random.PRNGKey(0)
    print(f"{args.data}: locomotion clips, discriminator {tuple(args.hidden)}, noise "
          f"{args.noise:g}, gp {args.gp:g}, {args.steps} steps")
    for factor in args.factors:
        faster = locomotion_arrays(data.features, data.clip_start, data.clip_length,
                                   data.clip_weight, data.mean, data.std, factor)
        *keys, rng = jax.random.split(rng, 5)
        print(probe_arrays(keys, f"played x{factor:g}", faster, reference, args.noise, args.gp,
                           args.steps, args.scored, tuple(args.hidden), args.learning_rate,
                           args.batch).line(), flush=True)
    return 0


def _main() -> int:
    try:
        return main()
    except AmpkitError as exc:  # a missing or damaged dataset, named
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(_main())
