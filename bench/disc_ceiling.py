"""What discriminator accuracy would a perfect imitator score under a run's commands?

    python -m bench.disc_ceiling --data data/amp/merged.h5                  # the cpu-walk preset
    python -m bench.disc_ceiling --data … --set amp.speed_matched_data=true
    python -m bench.disc_ceiling --data … --checkpoint runs/walk            # that run's config
    python -m bench.disc_ceiling --data … --checkpoint runs/walk \
        --imitate-vx 0.27 0.5 --imitate-yaw -0.05 0.05       # only what that policy does

The discriminator's accuracy on policy transitions mixes two questions: does each transition
look like the data (realism), and does the policy spread its transitions over the data's
motions in the data's proportions (coverage)? A policy that moved exactly like one part of
the data and never like the rest would still be told apart, because it puts more mass where it
moves than the data does. This bench measures the coverage part alone. It builds the ideal
imitator out of the data: for each command the run's environment draws (forward and sideways
speed, yaw rate, uniform in their ranges) it takes a reference transition whose velocity,
averaged over ``--window`` seconds within its clip, is among the ``--neighbours`` nearest the
command (distances in units of each command's range width). That is the most data-like motion
that obeys the command. Fresh discriminators are trained on it against the run's reference
draws (speed-matched or not), with the trainer's loss, as ``bench.disc_probe`` trains them,
and scored on clean inputs on transitions the imitator never used in training.

Prints the control (the reference draws split in two: near chance), then one line per setting:
the ideal imitator's policy accuracy is the floor a real policy trained with these commands
and these draws can reach, whatever its realism. ``--imitate-*`` confines the imitator to the
commands a trained policy actually obeys (a walk too fast at the slow end, no turning), with
the reference draws unchanged: the floor that policy's own coverage leaves.
"""

from __future__ import annotations

import argparse
import itertools
import sys
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from amp.dataset import DatasetArrays, load_dataset, normalize, sample_pairs
from amp.features import layout_slices
from amp.speed_match import windowed_speed
from bench.disc_probe import score, train_probe
from robots import load_spec
from robots.errors import AmpkitError
from training.config import TrainConfig, apply_overrides, load_env, preset
from training.policy import load_snapshot
from training.train import discriminator_arrays

_LIN_VEL = layout_slices()["root_lin_vel"].start
_ANG_VEL = layout_slices()["root_ang_vel"].start
COMMAND_COLUMNS = (_LIN_VEL, _LIN_VEL + 1, _ANG_VEL + 2)
"""The AMP frame's root-frame forward and sideways speed [m/s] and yaw rate [rad/s]: what a
velocity command (vx, vy, yaw rate) asks for."""


def windowed_velocity(features: np.ndarray, clip_start: np.ndarray, clip_length: np.ndarray,
                      window_frames: int) -> np.ndarray:
    """[N, 3] forward speed, sideways speed and yaw rate of every frame, each averaged over
    ``window_frames`` frames centred on it within its clip (``amp.speed_match``'s average)."""
    return np.stack([windowed_speed(features[:, column], clip_start, clip_length,
                                    window_frames) for column in COMMAND_COLUMNS], axis=1)


def uniform_commands(ranges: Sequence[tuple[float, float]], count: int,
                     rng: np.random.Generator) -> np.ndarray:
    """[count, len(ranges)] commands, each component uniform in its (low, high) range, as the
    walking environment draws them."""
    low, high = np.asarray(ranges, np.float64).T
    return rng.uniform(low, high, size=(count, len(ranges)))


def nearest_transitions(velocity: np.ndarray, commands: np.ndarray, scale: np.ndarray,
                        neighbours: int, rng: np.random.Generator,
                        chunk: int = 2048) -> np.ndarray:
    """For each command [M, 3], one of the ``neighbours`` transitions whose velocity [P, 3] is
    nearest it (Euclidean, each axis divided by ``scale`` [3]), uniformly; returns [M] indices
    into ``velocity``."""
    k = min(neighbours, velocity.shape[0])
    scaled = velocity / scale
    picked = np.empty(commands.shape[0], np.int64)
    for first in range(0, commands.shape[0], chunk):
        block = commands[first:first + chunk] / scale
        distance = np.sum((block[:, None, :] - scaled[None, :, :]) ** 2, axis=-1)
        nearest = np.argpartition(distance, k - 1, axis=1)[:, :k]
        choice = rng.integers(0, k, size=block.shape[0])
        picked[first:first + chunk] = nearest[np.arange(block.shape[0]), choice]
    return picked


def imitator_ranges(env_ranges: Sequence[tuple[float, float]],
                    overrides: Sequence[Sequence[float] | None]
                    ) -> tuple[tuple[tuple[float, float], ...], np.ndarray]:
    """(the imitator's (low, high) per command axis, the distance scale [3]): each axis the
    environment's range unless overridden; the scale is always the environment's range width,
    so an imitator confined to a narrow (even zero-width) range is still matched in the
    environment's units.

    Raises:
        AmpkitError: an override whose low is above its high.
    """
    ranges = []
    for name, default, override in zip(("vx", "vy", "yaw"), env_ranges, overrides, strict=True):
        low, high = (float(v) for v in (override if override is not None else default))
        if low > high:
            raise AmpkitError(f"--imitate-{name}: LOW {low:g} is above HIGH {high:g}")
        ranges.append((low, high))
    scale = np.array([max(high - low, 1e-6) for low, high in env_ranges])
    return tuple(ranges), scale


def held_out_split(indices: np.ndarray, share: float, rng: np.random.Generator
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Split draws [M] of transition indices by transition, not by draw: (train mask, held-out
    mask), the held-out transitions (``share`` of the distinct ones) never in training."""
    distinct = rng.permutation(np.unique(indices))
    held = distinct[:max(1, int(round(share * distinct.size)))]
    is_held = np.isin(indices, held)
    return ~is_held, is_held


def _config(args: argparse.Namespace) -> TrainConfig:
    base = load_snapshot(args.checkpoint).config if args.checkpoint else preset(args.preset)
    return apply_overrides(base, args.set).validate()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="a merged.h5")
    parser.add_argument("--preset", default="cpu-walk", help="config whose commands and "
                        "reference draws are used (ignored with --checkpoint)")
    parser.add_argument("--checkpoint", default="", help="use this run's config instead")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config field (as training.train's --set)")
    parser.add_argument("--window", type=float, default=1.0, help="velocity window [s]")
    parser.add_argument("--neighbours", type=int, default=25)
    parser.add_argument("--draws", type=int, default=40_000, help="ideal-imitator transitions")
    parser.add_argument("--noise", type=float, nargs="+", default=[0.1])
    parser.add_argument("--gp", type=float, nargs="+", default=[10.0])
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--batch", type=int, default=2048)
    parser.add_argument("--learning-rate", type=float, default=1e-4)
    parser.add_argument("--seed", type=int, default=0)
    for axis, unit in (("vx", "m/s"), ("vy", "m/s"), ("yaw", "rad/s")):
        parser.add_argument(f"--imitate-{axis}", type=float, nargs=2, metavar=("LOW", "HIGH"),
                            help=f"the imitator's {axis} command range [{unit}] instead of the "
                            "environment's (the reference draws are unchanged): the floor of "
                            "a policy that only covers these commands")
    args = parser.parse_args(argv)

    config = _config(args)
    env = load_env(config)
    dataset = load_dataset(args.data, load_spec(env.robot.name))
    reference = discriminator_arrays(dataset, config.amp, env)
    ideal, train_mask, held_mask = ideal_imitator(dataset.data, reference, env.config.commands,
                                                  args)
    clip = config.amp.normalizer_clip

    def prepared(pairs: np.ndarray | jax.Array) -> jax.Array:
        return jnp.clip(normalize(reference, jnp.asarray(pairs)), -clip, clip)

    def data_fn(key: jax.Array, n: int) -> jax.Array:
        return prepared(sample_pairs(reference, key, n))

    draws = "speed-matched" if config.amp.speed_matched_data else "as the clips are"
    print(f"reference draws {draws}; discriminator {config.amp.hidden}")
    key = jax.random.PRNGKey(args.seed)
    control_key, key = jax.random.split(key)
    _print_control(control_key, data_fn, config, args)
    train, held = prepared(ideal[train_mask]), prepared(ideal[held_mask])
    for noise, gp in itertools.product(args.noise, args.gp):
        probe_key, data_key, key = jax.random.split(key, 3)
        network, params = train_probe(probe_key, config.amp.hidden, train, data_fn, noise, gp,
                                      args.learning_rate, args.steps, args.batch)
        held_data = data_fn(data_key, held.shape[0])
        print(score(f"ideal imitator: noise {noise:g}, gp {gp:g}", network.apply(params, held),
                    network.apply(params, held_data)).line(), flush=True)
    return 0


def ideal_imitator(data, reference: DatasetArrays, commands_cfg, args: argparse.Namespace
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The ideal imitator's raw pairs [M, 2, 29] under the environment's command ranges, and
    its (train, held-out) masks [M]; prints what it is."""
    velocity = windowed_velocity(data.features, data.clip_start, data.clip_length,
                                 max(1, int(round(args.window * float(data.fps)))))
    pair_start = np.asarray(reference.pair_start)
    ranges, scale = imitator_ranges(
        (commands_cfg.vx_mps, commands_cfg.vy_mps, commands_cfg.yaw_rate_rps),
        (args.imitate_vx, args.imitate_vy, args.imitate_yaw))
    rng = np.random.default_rng(args.seed)
    commands = uniform_commands(ranges, args.draws, rng)
    picked = nearest_transitions(velocity[pair_start], commands, scale, args.neighbours, rng)
    train_mask, held_mask = held_out_split(picked, 0.2, rng)
    features, starts = np.asarray(data.features), pair_start[picked]
    error = np.mean(np.abs(velocity[starts] - commands), axis=0)
    print(f"{args.data}: commands vx {ranges[0]}, vy {ranges[1]}, yaw rate {ranges[2]}; "
          f"ideal imitator: {np.unique(picked).size} distinct transitions, mean |error| to "
          f"the command vx {error[0]:.3f}, vy {error[1]:.3f} m/s, yaw rate {error[2]:.3f} "
          "rad/s")
    return np.stack([features[starts], features[starts + 1]], axis=1), train_mask, held_mask


def _print_control(key: jax.Array, data_fn, config: TrainConfig,
                   args: argparse.Namespace) -> None:
    """Fresh reference draws as the 'policy': the probe's own chance level."""
    draw_key, probe_key, held_key, data_key = jax.random.split(key, 4)
    policy = data_fn(draw_key, args.draws)
    network, params = train_probe(probe_key, config.amp.hidden, policy, data_fn, args.noise[0],
                                  args.gp[0], args.learning_rate, args.steps, args.batch)
    print(score("control: reference vs itself", network.apply(params, data_fn(held_key, 5000)),
                network.apply(params, data_fn(data_key, 5000))).line(), flush=True)


def _main() -> int:
    try:
        return main()
    except AmpkitError as exc:  # a missing or damaged dataset or checkpoint, a bad --set
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(_main())
