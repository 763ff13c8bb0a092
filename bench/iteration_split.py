"""Where one training iteration's time goes: rollout, discriminator, style + GAE, PPO epochs.

    python -m bench.iteration_split                       # cpu-walk preset, 5 timed repeats
    python -m bench.iteration_split --preset gpu --set ppo.num_envs=4096

Each phase of :func:`training.iteration.training_iteration` is jitted on its own and timed
(compile excluded) on the same state; with ``--fused`` also the whole fused iteration (one more
long compile). Prints one line per phase with milliseconds and share, and env steps per
second (of the phases' sum, or of the fused iteration).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import jax

from amp.dataset import sample_pairs
from training import iteration as it
from training.config import apply_overrides, preset
from training.policy import policy_distribution, style_rewards
from training.train import prepare
from training.train_state import init_train_state, make_networks


def _time(fn: Callable[[], Any], repeats: int) -> float:
    """Median seconds of ``fn()`` (blocked until ready) after one warm-up call."""
    jax.block_until_ready(fn())
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(fn())
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def measure(config: Any, data: Path, repeats: int, fused: bool) -> dict[str, float]:
    """Median seconds per phase and for the fused iteration."""
    setup = prepare(config, data)  # the trainer's start-up: one read, RSI, contact rule
    config, env = setup.config, setup.env
    networks = make_networks(config, env)
    state = jax.jit(lambda: init_train_state(config, env, networks))()
    arrays = setup.discriminator_data
    key = jax.random.PRNGKey(1)

    rollout = jax.jit(lambda s, k: it.collect_rollout(s, env, networks, config, k))
    final_env, transitions = rollout(state, key)
    pairs = transitions.amp_pairs.reshape(-1, *transitions.amp_pairs.shape[2:])
    disc = jax.jit(lambda s, p, k: it.discriminator_phase(s, networks, config, p, arrays,
                                                          sample_pairs, k))

    def style_and_gae(s: Any) -> Any:
        style = style_rewards(networks.discriminator, s.disc_params, s.amp_stats,
                              transitions.amp_pairs)
        rewards = it.mixed_rewards(config.amp, s.iteration, transitions.task_reward, style)
        return it.make_ppo_batch(s, networks, config, transitions, rewards, final_env)

    gae = jax.jit(style_and_gae)
    batch, _ = gae(state)
    _, old_log_std = policy_distribution(networks.policy, state.params["policy"],
                                         state.obs_stats, transitions.obs[0, :1], state.iteration)
    ppo = jax.jit(lambda s, k: it.ppo_phase(s, networks, config, batch, old_log_std, k))
    seconds = {
        "rollout": _time(lambda: rollout(state, key), repeats),
        "discriminator": _time(lambda: disc(state, pairs, key), repeats),
        "style_and_gae": _time(lambda: gae(state), repeats),
        "ppo_epochs": _time(lambda: ppo(state, key), repeats),
    }
    if fused:
        whole = jax.jit(lambda s: it.training_iteration(s, arrays, env=env, networks=networks,
                                                        config=config, sample_fn=sample_pairs))
        seconds["fused_iteration"] = _time(lambda: whole(state), repeats)
    return seconds


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.iteration_split",
                                     description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path("data/amp/merged.h5"))
    parser.add_argument("--preset", default="cpu-walk")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--fused", action="store_true", help="also time the fused iteration")
    args = parser.parse_args(argv)
    config = apply_overrides(preset(args.preset), args.overrides)
    seconds = measure(config, args.data, max(1, args.repeats), args.fused)
    phases = {k: v for k, v in seconds.items() if k != "fused_iteration"}
    total = sum(phases.values())
    for name, value in phases.items():
        print(f"{name:<14} {value * 1e3:9.1f} ms  {100 * value / total:5.1f} %")
    fused = seconds.get("fused_iteration", total)
    label = "fused" if "fused_iteration" in seconds else "sum"
    print(f"{label:<14} {fused * 1e3:9.1f} ms  "
          f"{config.transitions_per_iteration / fused:,.0f} env steps/s "
          f"({config.ppo.num_envs} envs x {config.ppo.unroll_length} steps, "
          f"{jax.device_count()} {jax.devices()[0].platform} device(s))")
    return 0


if __name__ == "__main__":
    sys.exit(main())
