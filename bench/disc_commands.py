"""Where does a run's own discriminator catch its policy: per held command, with and without
the exploration noise it was trained on?

    python -m bench.disc_commands --checkpoint runs/walk --data data/amp/merged.h5
    python -m bench.disc_commands --checkpoint runs/walk --data … --vx 0.1 0.3 --yaw 0

The training log's ``disc_policy_accuracy`` is one number over every command the environment
draws, measured on the stochastic rollouts PPO explores with. This bench takes it apart. For
each command of a grid (forward speed × yaw rate, sideways 0) it runs ``--envs`` episodes held
to that command (nominal physics, standing start) for ``--steps`` control steps and scores the
transitions after the first second with the checkpoint's own discriminator and AMP
normalizer, twice: with the mean action (what a user deploys) and with actions drawn from the
policy's Gaussian at the checkpoint's own clamped std (what the discriminator was trained on).
The difference between the two columns is what the exploration noise alone gives away; a
command whose deterministic accuracy stands out is a motion the policy does not do like the
data.

Prints the data's accuracy on the run's reference draws (speed-matched or not) first, then one
line per command: policy accuracy and mean style reward for each action source, and falls.
"""

from __future__ import annotations

import argparse
import itertools
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from amp.dataset import load_dataset, sample_pairs
from robots import load_spec
from robots.errors import run_main
from training.discriminator import style_reward
from training.envs.base import EpisodeConditions
from training.networks import max_action_std
from training.normalization import normalize
from training.policy import PolicySnapshot, load_snapshot, policy_distribution
from training.train import discriminator_arrays

WARMUP_S = 1.0
"""Transitions of an episode's first second are left out: the standing start is not the
policy's walking."""


@dataclass(frozen=True)
class CommandScore:
    """The run's discriminator on one held command's transitions.

    Attributes:
        command: (vx [m/s], vy [m/s], yaw rate [rad/s]).
        action_std: Std of the actions' Gaussian noise [action units] (0: the mean action).
        transitions: Transitions scored (after the warm-up, episode ends excluded).
        policy_accuracy: Share scored as policy (logit < 0).
        style: Mean style reward max(0, 1 − ¼(d − 1)²).
        falls: Episodes that ended early.
    """

    command: tuple[float, float, float]
    action_std: float
    transitions: int
    policy_accuracy: float
    style: float
    falls: int


def exploration_std(snapshot: PolicySnapshot) -> float:
    """The policy's mean action std [action units] at the checkpoint's iteration, clamped
    as the trainer clamps it (the noise its last rollouts were drawn with)."""
    config = snapshot.config.network
    iteration = jnp.asarray(snapshot.meta["iteration"], jnp.int32)
    zeros = jnp.zeros((1, snapshot.observation_size), jnp.float32)
    _, log_std = policy_distribution(snapshot.policy_network, snapshot.policy_params,
                                     snapshot.obs_stats, zeros, iteration)
    upper = float(max_action_std(config, iteration))
    return float(min(np.mean(np.exp(np.asarray(log_std))), upper))


def held_command_pairs(snapshot: PolicySnapshot, command: Sequence[float], action_std: float,
                       num_envs: int, steps: int, warmup_steps: int, seed: int = 0
                       ) -> tuple[np.ndarray, int]:
    """Raw AMP pairs [M, 2, 29] of ``num_envs`` episodes held to ``command`` [3], and the
    number of episodes that ended early.

    Actions are the policy's mean plus Gaussian noise of std ``action_std`` [action units]
    (0: the mean), clipped like the trainer's; a pair is kept once its episode is at least
    ``warmup_steps`` old and not at its end. Episodes do not restart: once one ends, its
    later pairs are dropped."""
    env, network = snapshot.env, snapshot.policy_network
    conditions = EpisodeConditions(command=jnp.asarray(command, jnp.float32),
                                   factors=env.nominal_factors())

    def one_step(carry, key):
        state, alive = carry
        mean, _ = policy_distribution(network, snapshot.policy_params, snapshot.obs_stats,
                                      state.obs)
        action = mean + action_std * jax.random.normal(key, mean.shape)
        action = jnp.clip(action, -network.action_clip, network.action_clip)
        state = jax.vmap(env.step)(state, action)
        pair = jnp.stack([state.info["amp_prev_frame"], state.info["amp_terminal_frame"]], 1)
        keep = alive & (state.info["step"] >= warmup_steps) & (state.done == 0)
        return (state, alive & (state.done == 0)), (pair, keep)

    @jax.jit
    def run(key):
        reset_key, step_key = jax.random.split(key)
        state = jax.vmap(lambda k: env.reset_under(k, conditions))(
            jax.random.split(reset_key, num_envs))
        alive = jnp.ones((num_envs,), bool)
        (_, alive), outputs = jax.lax.scan(one_step, (state, alive),
                                           jax.random.split(step_key, steps))
        return outputs, alive

    (pairs, keep), alive = jax.device_get(run(jax.random.PRNGKey(seed)))
    return np.asarray(pairs[keep], np.float32), int(num_envs - np.sum(alive))


def discriminator_logits(snapshot: PolicySnapshot, raw_pairs: Any) -> np.ndarray:
    """The checkpoint's discriminator logits [M] of raw AMP pairs [M, 2, 29]."""
    pairs_n = normalize(snapshot.amp_stats, jnp.asarray(raw_pairs),
                        snapshot.config.amp.normalizer_clip)
    return np.asarray(snapshot.style_network.apply(snapshot.disc_params, pairs_n)).reshape(-1)


def score_command(snapshot: PolicySnapshot, command: Sequence[float], action_std: float,
                  num_envs: int, steps: int, seed: int = 0) -> CommandScore:
    """:class:`CommandScore` of one held command under one action noise."""
    warmup = int(round(WARMUP_S / snapshot.env.control_dt))
    pairs, falls = held_command_pairs(snapshot, command, action_std, num_envs, steps, warmup,
                                      seed)
    logits = discriminator_logits(snapshot, pairs) if len(pairs) else np.zeros(0)
    return CommandScore(tuple(float(c) for c in command), action_std, int(len(pairs)),
                        float(np.mean(logits < 0)) if len(pairs) else float("nan"),
                        float(np.mean(style_reward(logits))) if len(pairs) else float("nan"),
                        falls)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", required=True, help="checkpoint or run directory")
    parser.add_argument("--data", required=True, help="the run's merged.h5")
    parser.add_argument("--vx", type=float, nargs="+", default=[0.1, 0.3, 0.5],
                        help="forward speeds [m/s]")
    parser.add_argument("--yaw", type=float, nargs="+", default=[-0.5, 0.0, 0.5],
                        help="yaw rates [rad/s]")
    parser.add_argument("--envs", type=int, default=32, help="episodes per command")
    parser.add_argument("--seconds", type=float, default=10.0, help="episode length [s]")
    args = parser.parse_args(argv)

    snapshot = load_snapshot(args.checkpoint)
    dataset = load_dataset(args.data, load_spec(snapshot.meta["robot"]))
    reference = discriminator_arrays(dataset, snapshot.config.amp, snapshot.env)
    data_logits = discriminator_logits(snapshot, sample_pairs(reference,
                                                              jax.random.PRNGKey(1), 8192))
    noise = exploration_std(snapshot)
    steps = int(round(args.seconds / snapshot.env.control_dt))
    print(f"{snapshot.path}: iteration {snapshot.meta['iteration']}; reference draws scored "
          f"as data {np.mean(data_logits > 0):.3f}, style {np.mean(style_reward(data_logits)):.3f}")
    print(f"policy accuracy / style per held command ({args.envs} x {args.seconds:g} s, first "
          f"{WARMUP_S:g} s left out): the mean action, then the training noise (std {noise:.3f})")
    for vx, yaw in itertools.product(args.vx, args.yaw):
        mean_action, noisy = (score_command(snapshot, (vx, 0.0, yaw), std, args.envs, steps)
                              for std in (0.0, noise))
        print(f"  vx {vx:4.2f} m/s, yaw {yaw:+5.2f} rad/s: mean action "
              f"{mean_action.policy_accuracy:.3f} / {mean_action.style:.3f}; noisy "
              f"{noisy.policy_accuracy:.3f} / {noisy.style:.3f}; falls "
              f"{mean_action.falls} / {noisy.falls}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main, "disc_commands"))
