"""Throughput of the full AMP+PPO iteration vs. a PPO iteration without AMP, same env and batch.

    python -m bench.train                       # wildrobot_walk, 64 envs × 16 steps, CPU
    python -m bench.train --num-envs 8192 --unroll 24 --preset gpu     # on a GPU
    PYTHONPATH=/path/to/brax python -m bench.train --brax              # also Brax's PPO

Prints env steps per second (compile excluded) of:
  1. ampkit's iteration with AMP (rollout + discriminator + style reward + GAE + PPO epochs),
  2. the same trainer with ``amp.enabled=false`` (PPO only),
  3. with ``--brax`` and ``brax`` importable: Brax's PPO trainer (``brax.training.agents.ppo``)
     on the same environment (adapted to Brax's Env interface), batch, epochs and minibatches,
and the ratio AMP / PPO-only (the bar: >= 0.85).
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jax
import numpy as np

from amp.clipfile import layout_json
from amp.features import FEATURE_DIM
from amp.merge import MergeConfig, merge_features, write_merged
from training.config import TrainConfig, apply_overrides, load_env, preset
from training.train import Runner, RunPaths, Setup, prepare

if TYPE_CHECKING:
    from training.envs.base import Env


def synthetic_dataset(path: Path, env: Env) -> Path:
    """A merged file with smooth sinusoidal frames in the env robot's layout (speed only)."""
    t = np.arange(500)[:, None] * env.control_dt
    freq = np.linspace(0.5, 2.0, FEATURE_DIM)[None, :]
    frames = (0.3 * np.sin(2 * math.pi * freq * t)).astype(np.float32)
    data = merge_features([("synthetic", frames)], fps=1.0 / env.control_dt,
                          robot=env.robot.name, layout=layout_json(env.robot.spec.amp_joint_names),
                          config=MergeConfig())
    write_merged(path, data)
    return path


def compiled_run(setup: Setup, out: Path) -> tuple[Runner, Any, float]:
    """(host run, state after one iteration, compile + first-iteration seconds)."""
    run = Runner(setup, RunPaths.under(out))
    state = run.fresh_state()
    start = time.perf_counter()
    state, metrics, _ = run.iteration_fn(state, run.dataset_arrays)
    jax.block_until_ready(metrics)
    return run, state, time.perf_counter() - start


def time_iteration(run: Runner, state: Any) -> tuple[Any, float]:
    """(new state, seconds of one compiled iteration)."""
    start = time.perf_counter()
    state, metrics, _ = run.iteration_fn(state, run.dataset_arrays)
    jax.block_until_ready((state, metrics))
    return state, time.perf_counter() - start


def interleaved_rates(runs: dict[str, tuple[Runner, Any]], rounds: int,
                      per_iteration: int) -> dict[str, float]:
    """Env steps/s of each run from the median of ``rounds`` timed iterations, the runs taking
    turns so that a change in machine load hits them alike."""
    seconds: dict[str, list[float]] = {name: [] for name in runs}
    states = {name: state for name, (_, state) in runs.items()}
    for _ in range(rounds):
        for name, (run, _) in runs.items():
            states[name], elapsed = time_iteration(run, states[name])
            seconds[name].append(elapsed)
    return {name: per_iteration / float(np.median(s)) for name, s in seconds.items()}


def brax_steps_per_second(config: TrainConfig, env: Env, iterations: int) -> float:
    """Brax's PPO trainer on ``env`` with the same batch, unroll, epochs and minibatches."""
    import functools

    from brax.envs.base import Env as BraxEnv
    from brax.envs.base import State as BraxState
    from brax.training.agents.ppo import networks as brax_networks
    from brax.training.agents.ppo import train as brax_ppo

    class Adapter(BraxEnv):
        """Batched view of an ampkit env (which auto-resets itself) for ``wrap_env=False``."""

        def _wrap(self, s: Any) -> BraxState:
            info = {"truncation": s.info["truncated"], "episode_done": s.done,
                    "episode_metrics": {}}
            obs = {"state": s.obs, "privileged_state": s.privileged_obs}
            return BraxState(pipeline_state=s, obs=obs, reward=s.reward, done=s.done,
                             metrics=dict(s.metrics), info=info)

        def reset(self, rng: jax.Array) -> BraxState:
            return self._wrap(jax.vmap(env.reset)(rng))

        def step(self, state: BraxState, action: jax.Array) -> BraxState:
            return self._wrap(jax.vmap(env.step)(state.pipeline_state, action))

        @property
        def observation_size(self) -> dict[str, tuple[int]]:
            return {"state": (env.observation_size,),
                    "privileged_state": (env.privileged_observation_size,)}

        @property
        def action_size(self) -> int:
            return env.action_size

        @property
        def backend(self) -> str:
            return "mjx"

    ppo = config.ppo
    per_iteration = config.transitions_per_iteration
    network_factory = functools.partial(
        brax_networks.make_ppo_networks, policy_obs_key="state",
        value_obs_key="privileged_state",
        policy_hidden_layer_sizes=config.network.policy_hidden,
        value_hidden_layer_sizes=config.network.value_hidden)
    if not hasattr(jax, "device_put_replicated"):
        # brax 0.14.2 still calls this (removed from jax 0.10); the same thing, for its pmap.
        jax.device_put_replicated = lambda x, devices: jax.device_put(
            jax.tree.map(lambda a: np.stack([np.asarray(a)] * len(devices)), x))
    rates: list[float] = []
    # One training step (one unroll of the whole batch + its PPO epochs) per Brax "epoch".
    brax_ppo.train(
        environment=Adapter(), wrap_env=False, num_timesteps=(iterations + 2) * per_iteration,
        num_evals=iterations + 3, run_evals=False, num_envs=ppo.num_envs,
        episode_length=env.episode_length,
        unroll_length=ppo.unroll_length, batch_size=ppo.num_envs // ppo.num_minibatches,
        num_minibatches=ppo.num_minibatches, num_updates_per_batch=ppo.num_epochs,
        learning_rate=ppo.learning_rate, entropy_cost=ppo.entropy_coef,
        discounting=ppo.discount, gae_lambda=ppo.gae_lambda, clipping_epsilon=ppo.clip_epsilon,
        max_grad_norm=ppo.max_grad_norm, normalize_observations=True,
        network_factory=network_factory, seed=config.seed,
        progress_fn=lambda step, m: rates.append(float(m["training/sps"])))
    return float(np.median(rates[2:]))  # the first epochs include compiling


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.train", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, help="merged dataset (default: synthetic)")
    parser.add_argument("--preset", default="cpu-smoke")
    parser.add_argument("--num-envs", type=int, default=64)
    parser.add_argument("--unroll", type=int, default=16)
    parser.add_argument("--iterations", type=int, default=10,
                        help="timed iterations per trainer")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--brax", action="store_true", help="also time Brax's PPO trainer")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    config = apply_overrides(preset(args.preset), [
        f"ppo.num_envs={args.num_envs}", f"ppo.unroll_length={args.unroll}", *args.overrides])
    env = load_env(config)
    no_amp = dataclasses.replace(config, amp=dataclasses.replace(config.amp, enabled=False))
    print(f"device: {jax.devices()[0].device_kind} x{jax.device_count()}; env {config.env}; "
          f"{config.ppo.num_envs} envs x {config.ppo.unroll_length} steps; "
          f"median of {args.iterations} interleaved iterations each")
    with tempfile.TemporaryDirectory() as tmp:
        data = args.data or synthetic_dataset(Path(tmp) / "synthetic.h5", env)
        amp_setup = prepare(config, data, env)
        runs = {}
        for name, cfg in (("amp", config), ("ppo", no_amp)):
            setup = dataclasses.replace(amp_setup, config=cfg.validate())
            run, state, compile_s = compiled_run(setup, Path(tmp) / name)
            print(f"compiled {name}: {compile_s:.0f} s")
            runs[name] = (run, state)
        rates = interleaved_rates(runs, args.iterations, config.transitions_per_iteration)
    with_amp = rates["amp"]
    print(f"ampkit AMP+PPO iteration:  {rates['amp']:10.0f} env steps/s")
    print(f"ampkit PPO-only iteration: {rates['ppo']:10.0f} env steps/s")
    print(f"ratio AMP / PPO-only (ampkit, AMP disabled): {rates['amp'] / rates['ppo']:.3f}  "
          f"(bar >= 0.85)")
    if args.brax:
        try:
            brax_rate = brax_steps_per_second(config, env, args.iterations)
        except ImportError as exc:
            print(f"brax not importable ({exc}); compared against ampkit with AMP disabled")
        else:
            print(f"Brax PPO iteration:        {brax_rate:10.0f} env steps/s")
            print(f"ratio AMP / Brax PPO: {with_amp / brax_rate:.3f}  (bar >= 0.85)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
