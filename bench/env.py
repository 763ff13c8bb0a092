"""Environment throughput: MJX control steps per second vs MuJoCo's native batched rollout.

    python -m bench.env                       # batch 256 on this machine's default JAX device
    python -m bench.env --batch 4096 16384    # the GPU run (one line per batch size)

For each batch size it times ``jit(scan(vmap(env.step)))`` over ``--steps`` 50 Hz control steps
with random actions (episodes fall and auto-reset, as in training), with domain randomization on
(the default config) and off (nominal model, no per-env model fields), and ``mujoco.rollout`` of
the same MJCF at the same substeps per control step on all CPU threads. Reported figures are
control steps per second summed over the batch (one control step = ``substeps`` physics steps).
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable

import jax
import mujoco
import numpy as np
from mujoco import rollout

from training import envs


def mjx_runner(env: envs.Env, batch: int, steps: int) -> Callable[[int], float]:
    """Compile ``jit(scan(vmap(env.step)))`` at ``batch``; returns ``run(seed) -> seconds``."""
    vstep = jax.vmap(env.step)

    @jax.jit
    def rollout_steps(state: envs.State, key: jax.Array) -> tuple[envs.State, jax.Array]:
        def body(carry: envs.State, step_key: jax.Array) -> tuple[envs.State, jax.Array]:
            action = jax.random.uniform(step_key, (batch, env.action_size), minval=-0.5,
                                        maxval=0.5)
            carry = vstep(carry, action)
            return carry, carry.reward.mean()
        return jax.lax.scan(body, state, jax.random.split(key, steps))

    holder = {"state": jax.jit(jax.vmap(env.reset))(jax.random.split(jax.random.PRNGKey(0), batch))}

    def run(seed: int) -> float:
        start = time.perf_counter()
        state, rewards = jax.block_until_ready(rollout_steps(holder["state"],
                                                             jax.random.PRNGKey(seed)))
        elapsed = time.perf_counter() - start
        if not np.all(np.isfinite(np.asarray(rewards))):
            raise RuntimeError("non-finite rewards in the benchmark rollout")
        holder["state"] = state
        return elapsed

    compile_start = time.perf_counter()
    run(1)
    print(f"    compiled + first run in {time.perf_counter() - compile_start:.1f} s", flush=True)
    return run


def time_rollout(env: envs.Env, batch: int, steps: int, repeats: int, threads: int) -> float:
    """Control steps per second of ``mujoco.rollout`` (same model, substeps and batch)."""
    model = env.mj_model
    data = mujoco.MjData(model)
    mujoco.mj_resetDataKeyframe(model, data, model.keyframe(env.robot.spec.keyframe).id)
    spec = mujoco.mjtState.mjSTATE_FULLPHYSICS
    state0 = np.empty(mujoco.mj_stateSize(model, spec))
    mujoco.mj_getState(model, data, state0, spec)
    rng = np.random.default_rng(0)
    actions = rng.uniform(-0.5, 0.5, (batch, steps, model.nu))
    targets = data.ctrl + env.config.action_scale_rad * actions
    control = np.repeat(targets, env.substeps, axis=1)  # hold each target for a control step
    datas = [mujoco.MjData(model) for _ in range(threads)]
    initial = np.tile(state0, (batch, 1))
    best = float("inf")
    with rollout.Rollout(nthread=threads) as runner:
        for _ in range(repeats + 1):  # the first run warms the thread pool
            start = time.perf_counter()
            runner.rollout(model, datas, initial, control)
            best = min(best, time.perf_counter() - start)
    return batch * steps / best


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.env",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--env", default=envs.DEFAULT_ENV, choices=envs.registered())
    parser.add_argument("--batch", type=int, nargs="+", default=[256])
    parser.add_argument("--steps", type=int, default=50, help="control steps per timed run")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1,
                        help="CPU threads for mujoco.rollout")
    parser.add_argument("--skip-nominal", action="store_true",
                        help="skip the randomization-off measurement")
    parser.add_argument("--skip-rollout", action="store_true")
    args = parser.parse_args(argv)

    randomized = envs.load(args.env)
    nominal = None if args.skip_nominal else envs.load(
        args.env, {"randomization": {"enabled": False}})
    print(f"{args.env}: control_dt {randomized.control_dt} s, {randomized.substeps} substeps, "
          f"JAX device {jax.devices()[0].device_kind} ({jax.default_backend()})", flush=True)
    for batch in args.batch:
        print(f"batch {batch}:", flush=True)
        runners = {"MJX env, randomization on": mjx_runner(randomized, batch, args.steps)}
        if nominal is not None:
            runners["MJX env, randomization off"] = mjx_runner(nominal, batch, args.steps)
        # Alternate the variants so background load hits them alike; keep each one's best.
        best = dict.fromkeys(runners, float("inf"))
        for repeat in range(args.repeats):
            for label, run in runners.items():
                best[label] = min(best[label], run(2 + repeat))
        rates = {label: batch * args.steps / seconds for label, seconds in best.items()}
        for label, rate in rates.items():
            print(f"  {label:<42} {rate:>14,.0f} control steps/s", flush=True)
        on, off = "MJX env, randomization on", "MJX env, randomization off"
        mjx_rate = rates[on]
        if nominal is not None:
            cost = 100 * (best[on] / best[off] - 1)
            print(f"  randomization cost: {cost:+.1f} % time per step")
        if not args.skip_rollout:
            native = time_rollout(randomized, batch, args.steps, args.repeats, args.threads)
            label = f"mujoco.rollout, {args.threads} threads"
            print(f"  {label:<42} {native:>14,.0f} control steps/s")
            print(f"  MJX (randomization on) / rollout ratio: {mjx_rate / native:.3f}", flush=True)

if __name__ == "__main__":
    main()
