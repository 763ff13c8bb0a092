"""Evaluate a policy on a fixed, seeded scenario suite in MJX, and again in plain MuJoCo.

    python -m training.evaluate --checkpoint runs/amp --data data/amp/merged.h5 \\
        --out metrics/eval.json [--episodes 16] [--seconds 20] [--sim2sim-episodes 2]

Every scenario of :func:`training.scenarios.default_suite` runs its episodes in parallel
(``jax.vmap`` of the environment), all scenarios in one batch: a scenario's command, friction,
masses, actuator strength and latency are each episode's conditions (``Env.reset_under``),
its pushes go in through ``Env.apply_push``, so one compiled step serves the whole suite.
The policy sees the environment's own observation: the noise-free policy observation (the
first block of the privileged observation) plus uniform noise of the environment's widths
times the scenario's noise multiplier.

Per scenario (``metrics/eval.json`` -> ``scenarios``): success rate (no fall within the episode),
survival time, linear and yaw velocity tracking error, distance and speed, mean |torque| per
actuator, mechanical power, cost of transport, style score (the discriminator's reward on the
policy's transitions), foot-contact duty factor and the dataset's, and the gait: steps per
second and the dataset's (the cadence of its locomotion clips), step alternation and
``walking_rate``, the share of episodes that survived while stepping left-right
(``training.eval_metrics.gait_metrics``): a shuffle survives, but does not walk.
``sim2sim`` holds the same
metrics from plain MuJoCo (``training.sim2sim``) on the first few episodes of each scenario
(``--sim2sim-episodes``; commands go round-robin, so these are the first commands), replayed
from the same initial poses with the same noise and push draws, and the gap per metric: MuJoCo
minus MJX on those same episodes, so the gap is the simulators' alone.
"""

from __future__ import annotations

import argparse
import sys
import time
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from robots.cli import stage_parser
from robots.errors import AmpkitError
from robots.io import check_writable, write_json_atomic
from training import eval_metrics, eval_setup, eval_streams
from training.envs import kinematics as kin
from training.envs.base import Env, EpisodeConditions
from training.eval_setup import EpisodeSetup, EvaluationError, ScenarioGroup
from training.policy import PolicyFn, StyleFn, jit_policy
from training.scenarios import Scenario, default_suite, resized

DEFAULT_ENV = "wildrobot_walk"
CHECK_DONE_EVERY = 25
"""Control steps between checks whether every episode has ended (then the rollout stops)."""


# --------------------------------------------------------------------------- compiled pieces
@dataclass(frozen=True)
class _Functions:
    """Jitted pieces for one environment (compiled once per batch size)."""

    reset: Any
    observe: Any
    step: Any


_FUNCTIONS: weakref.WeakKeyDictionary[Env, _Functions] = weakref.WeakKeyDictionary()
"""Compiled pieces per environment object (``eval_setup.load_eval_env`` gives one object per
configuration), dropped with the environment."""


def _functions(env: Env) -> _Functions:
    if env not in _FUNCTIONS:
        _FUNCTIONS[env] = _build_functions(env)
    return _FUNCTIONS[env]


def check_layout(env: Env) -> tuple[tuple[str, int], ...]:
    """The env's policy observation layout, after checking that its privileged observation
    starts with the same blocks (the noise-free policy observation the evaluation reads)."""
    try:
        layout = tuple(env.observation_layout())
        privileged = tuple(env.privileged_observation_layout())
    except AttributeError as exc:
        raise EvaluationError(f"environment {type(env).__name__} does not describe its "
                              f"observation layout ({exc})") from None
    if privileged[:len(layout)] != layout:
        raise EvaluationError("the privileged observation must start with the policy "
                              f"observation blocks {layout}; got {privileged}")
    return layout


def _build_functions(env: Env) -> _Functions:
    layout = check_layout(env)
    obs_size = env.observation_size
    noise_vector = jnp.asarray(kin.noise_widths(layout, env.config.noise))
    dofs = eval_setup.actuator_dof_addresses(env.mj_model)
    window = eval_metrics.window_steps(env.control_dt)

    def observe(state: Any, aux_keys: jax.Array, noise_scale: jax.Array,
                t: jax.Array) -> jax.Array:
        unit = eval_streams.noise_unit(aux_keys, t, obs_size)
        clean = state.privileged_obs[:, :obs_size]
        return clean + unit * noise_vector * noise_scale[:, None]

    def start(key: jax.Array, command: jax.Array, friction: jax.Array, mass_scale: jax.Array,
              strength_scale: jax.Array, latency_steps: jax.Array) -> Any:
        factors = env.nominal_factors().replace(
            friction=friction, mass_scale=mass_scale, strength_scale=strength_scale,
            latency_steps=latency_steps)
        return env.reset_under(key, EpisodeConditions(command=command, factors=factors))

    def reset(keys: jax.Array, setup: dict[str, jax.Array]) -> dict[str, Any]:
        reset_keys, aux_keys = keys[:, 0], keys[:, 1]
        state = jax.vmap(start)(reset_keys, setup["command"], setup["friction"],
                                setup["mass_scale"], setup["strength_scale"],
                                setup["latency_steps"])
        interval = setup["push_interval_steps"]
        first_push = eval_streams.push_interval(aux_keys, 0, interval[:, 0], interval[:, 1])
        next_push = jnp.where(setup["push_force_n"] > 0, first_push, eval_streams.NO_PUSH_STEP)
        acc = eval_metrics.init_accumulator(keys.shape[0], env.action_size, jnp)
        return {"state": state, "acc": acc, "next_push": next_push.astype(jnp.int32),
                "aux_keys": aux_keys}

    def step(carry: dict[str, Any], action: jax.Array, setup: dict[str, jax.Array],
             t: jax.Array) -> tuple[dict[str, Any], jax.Array, jax.Array, jax.Array]:
        state, aux_keys = carry["state"], carry["aux_keys"]
        state, next_push = _apply_pushes(env, state, carry["next_push"], aux_keys, setup, t)
        after = jax.vmap(env.step)(state, action)
        fell = after.done * (1.0 - after.info["truncated"])
        measured, fell_now = eval_metrics.episode_flags(carry["acc"], t, setup["limit_steps"],
                                                after.done, fell, jnp)
        terminal = after.info["amp_terminal_frame"]
        measurements = eval_metrics.step_measurements(
            state.data.qpos, after.data.qpos, after.data.qvel, after.data.actuator_force,
            setup["command"], terminal, dofs, jnp)
        acc = eval_metrics.accumulate(carry["acc"], measurements, measured, fell_now, jnp,
                                      window=window)
        pairs = jnp.stack([after.info["amp_prev_frame"], terminal], axis=1)
        obs = observe(after, aux_keys, setup["noise_scale"], t + 1)
        carry = {"state": after, "acc": acc, "next_push": next_push, "aux_keys": aux_keys}
        return carry, obs, pairs, measured

    return _Functions(reset=jax.jit(reset), observe=jax.jit(observe), step=jax.jit(step))


def _apply_pushes(env: Env, state: Any, next_push: jax.Array, aux_keys: jax.Array,
                  setup: dict[str, jax.Array], t: jax.Array) -> tuple[Any, jax.Array]:
    """Start a push (``Env.apply_push``) where one is due at step ``t``; the schedule is the
    evaluation's own random stream, which sim-to-sim replays."""
    start = (setup["push_force_n"] > 0) & (t == next_push)
    angle = eval_streams.push_heading(aux_keys, t)
    force = setup["push_force_n"][:, None] * jnp.stack(
        [jnp.cos(angle), jnp.sin(angle), jnp.zeros_like(angle)], axis=1)
    pushed = jax.vmap(env.apply_push)(state, force, setup["push_duration_steps"])
    state = jax.tree.map(lambda new, old: jnp.where(_rows(start, new), new, old), pushed, state)
    interval = setup["push_interval_steps"]
    following = eval_streams.push_interval(aux_keys, t + 1, interval[:, 0], interval[:, 1])
    next_push = jnp.where(start, t + following, next_push)
    return state, next_push.astype(jnp.int32)


def _rows(mask: jax.Array, like: jax.Array) -> jax.Array:
    """``mask`` [E] shaped to broadcast against ``like`` [E, ...]."""
    return mask.reshape(mask.shape + (1,) * (like.ndim - 1))


# --------------------------------------------------------------------------- MJX batch
class MjxBatch:
    """Episodes of one :class:`EpisodeSetup` stepped together on MJX.

    ``reset()`` gives the first (noisy) observations [E, O]; ``step(action)`` advances every
    episode one control step and returns the next observations. Running sums (see
    ``training.eval_metrics``) are in :attr:`accumulator`.
    """

    def __init__(self, env: Env, setup: EpisodeSetup, seed: int = 0,
                 style_fn: StyleFn | None = None) -> None:
        self.env, self.setup, self.seed = env, setup, seed
        self._fns = _functions(env)
        self._setup = {k: jnp.asarray(v) for k, v in setup.as_arrays().items()}
        self._style = None if style_fn is None else jax.jit(
            lambda total, pairs, measured: total + jnp.where(measured > 0, style_fn(pairs), 0.0))
        self._carry: dict[str, Any] | None = None
        self._style_sum: jax.Array | None = None
        self.t = 0

    def reset(self) -> jax.Array:
        keys = jnp.asarray(eval_streams.episode_keys(self.setup, self.seed))
        self._carry = self._fns.reset(keys, self._setup)
        self.initial_qpos = np.asarray(self._carry["state"].data.qpos)
        self._style_sum = jnp.zeros(self.setup.num_episodes, jnp.float32)
        self.t = 0
        return self._fns.observe(self._carry["state"], self._carry["aux_keys"],
                                 self._setup["noise_scale"], jnp.int32(0))

    def step(self, action: jax.Array) -> jax.Array:
        if self._carry is None:
            raise EvaluationError("MjxBatch.step before reset")
        self._carry, obs, pairs, measured = self._fns.step(
            self._carry, jnp.asarray(action, jnp.float32), self._setup, jnp.int32(self.t))
        if self._style is not None:
            self._style_sum = self._style(self._style_sum, pairs, measured)
        self.t += 1
        return obs

    @property
    def state(self) -> Any:
        """The batched environment state."""
        return None if self._carry is None else self._carry["state"]

    @property
    def qpos(self) -> np.ndarray:
        return np.asarray(self.state.data.qpos)

    @property
    def accumulator(self) -> dict[str, np.ndarray]:
        acc = {k: np.asarray(v) for k, v in jax.device_get(self._carry["acc"]).items()}
        acc["style"] = np.asarray(self._style_sum)
        return acc

    def all_ended(self) -> bool:
        acc = jax.device_get(self._carry["acc"])
        ended = (np.asarray(acc["fell"]) > 0) | (self.t >= self.setup.limit_steps)
        return bool(np.all(ended))


@dataclass
class MjxRun:
    """One group's finished MJX rollout: its environment, episodes and running sums."""

    env: Env
    setup: EpisodeSetup
    accumulator: dict[str, np.ndarray]
    initial_qpos: np.ndarray
    has_style: bool

    def initial_poses(self, first: int | None = None) -> dict[str, np.ndarray]:
        """Scenario name -> initial qpos [episodes, nq] of its (first ``first``) episodes."""
        return {s.name: self.initial_qpos[self.setup.episodes_of(i)[:first]]
                for i, s in enumerate(self.setup.scenarios)}

    def metrics(self, dataset: eval_metrics.DatasetGait | None = None,
                first: int | None = None) -> dict[str, dict[str, Any]]:
        """Metrics per scenario, over every episode or the first ``first`` of each scenario
        (the ones sim-to-sim repeats in MuJoCo)."""
        setup, acc = self.setup, self.accumulator
        if first is not None:
            keep = setup.first_episodes(first)
            setup, acc = setup.subset(first), {k: v[keep] for k, v in acc.items()}
        return eval_metrics.summarize(acc, setup, self.env.control_dt,
                              eval_setup.actuator_names(self.env.mj_model), dataset,
                              has_style=self.has_style)


def run_group_mjx(group: ScenarioGroup, policy_fn: PolicyFn, seed: int,
                  style_fn: StyleFn | None) -> MjxRun:
    """Roll out one group's scenarios in MJX (stops early once every episode has ended)."""
    env = group.env
    setup = eval_setup.build_setup(group.scenarios, env.mj_model, env.control_dt)
    batch = MjxBatch(env, setup, seed, style_fn)
    act = jit_policy(policy_fn, seed)
    obs = batch.reset()
    for t in range(setup.max_steps):
        obs = batch.step(act(obs, jnp.int32(t)))
        if (t + 1) % CHECK_DONE_EVERY == 0 and batch.all_ended():
            break
    return MjxRun(env, setup, batch.accumulator, batch.initial_qpos, style_fn is not None)


def run_mjx(policy_fn: PolicyFn, scenarios: tuple[Scenario, ...], *,
            env_name: str = DEFAULT_ENV, env_overrides: dict[str, Any] | None = None,
            style_fn: StyleFn | None = None, seed: int = 0) -> list[MjxRun]:
    """Every group's rollout (see :func:`evaluate_mjx`)."""
    return [run_group_mjx(group, policy_fn, seed, style_fn)
            for group in eval_setup.plan_groups(scenarios, env_name, env_overrides or {})]


def collect(runs: list[MjxRun], scenarios: tuple[Scenario, ...],
            dataset: eval_metrics.DatasetGait | None = None,
            first: int | None = None) -> dict[str, dict[str, Any]]:
    """Metrics per scenario of several runs, in suite order."""
    results: dict[str, dict[str, Any]] = {}
    for run in runs:
        results.update(run.metrics(dataset, first))
    return {s.name: results[s.name] for s in scenarios}


def evaluate_mjx(policy_fn: PolicyFn, scenarios: tuple[Scenario, ...], *,
                 env_name: str = DEFAULT_ENV, env_overrides: dict[str, Any] | None = None,
                 style_fn: StyleFn | None = None, dataset: eval_metrics.DatasetGait | None = None,
                 seed: int = 0) -> dict[str, dict[str, Any]]:
    """Metrics per scenario (suite order) of ``policy_fn`` on MJX.

    Args:
        policy_fn: ``(obs [B, O], key) -> action [B, A]`` (``training.policy``).
        scenarios: The suite (``training.scenarios``).
        env_name, env_overrides: The training environment (the checkpoint's).
        style_fn: Style reward of AMP pairs; None leaves ``style_score`` out.
        dataset: The dataset's duty factor and cadence; None leaves them out.
        seed: Everything random (initial poses, noise, pushes, random policies) follows it.
    """
    runs = run_mjx(policy_fn, scenarios, env_name=env_name, env_overrides=env_overrides,
                   style_fn=style_fn, seed=seed)
    return collect(runs, scenarios, dataset)


# --------------------------------------------------------------------------- reporting
GAP_METRICS = ("success_rate", "survival_s", "lin_vel_error_mps", "yaw_rate_error_rps",
               "lin_vel_error_windowed_mps", "yaw_rate_error_windowed_rps",
               "distance_m", "speed_mps", "mechanical_power_w", "cost_of_transport",
               "style_score", "duty_factor/left", "duty_factor/right", "step_rate_hz",
               "step_alternation", "walking_rate")
"""Metrics whose MuJoCo-minus-MJX gap is reported (plus mean |torque| per actuator)."""


def sim2sim_gap(mjx: dict[str, dict[str, Any]],
                mujoco: dict[str, dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Per scenario, MuJoCo minus MJX for every scalar metric both have."""
    gaps = {}
    for name, theirs in mujoco.items():
        a, b = eval_metrics.flatten_metrics(mjx[name]), eval_metrics.flatten_metrics(theirs)
        gaps[name] = {k: b[k] - a[k] for k in b if k in a and k not in ("episodes", "seconds")
                      and not k.startswith(("per_command/", "dataset_"))}
    return gaps


def format_table(scenarios: dict[str, dict[str, Any]],
                 gaps: dict[str, dict[str, float]] | None = None) -> str:
    """A fixed-width text table of the main metrics (one row per scenario)."""
    columns = [("success", "success_rate", "{:7.2f}"), ("walking", "walking_rate", "{:7.2f}"),
               ("alt", "step_alternation", "{:7.2f}"),
               ("lin_err", "lin_vel_error_mps", "{:7.3f}"),
               ("yaw_err", "yaw_rate_error_rps", "{:7.3f}"),
               ("lin_2s", "lin_vel_error_windowed_mps", "{:7.3f}"),
               ("yaw_2s", "yaw_rate_error_windowed_rps", "{:7.3f}"),
               ("dist_m", "distance_m", "{:7.2f}"),
               ("power_W", "mechanical_power_w", "{:7.2f}"), ("CoT", "cost_of_transport",
                                                               "{:7.2f}"),
               ("style", "style_score", "{:7.3f}"), ("duty_L", "duty_factor/left", "{:7.2f}"),
               ("duty_R", "duty_factor/right", "{:7.2f}"),
               ("data_L", "dataset_duty_factor/left", "{:7.2f}"),
               ("steps_Hz", "step_rate_hz", "{:7.2f}"),
               ("data_Hz", "dataset_step_rate_hz", "{:7.2f}")]
    if gaps is not None:
        columns += [("gap_succ", "gap:success_rate", "{:+8.2f}"),
                    ("gap_lin", "gap:lin_vel_error_mps", "{:+8.3f}")]
    width = max(len(n) for n in scenarios) if scenarios else 8
    header = f"{'scenario':<{width}} " + " ".join(f"{c[0]:>{max(7, len(c[0]))}}"
                                                 for c in columns)
    lines = [header, "-" * len(header)]
    for name, metrics in scenarios.items():
        flat = eval_metrics.flatten_metrics(metrics)
        if gaps is not None and name in gaps:
            flat.update({f"gap:{k}": v for k, v in gaps[name].items()})
        cells = []
        for title, key, fmt in columns:
            cell_width = max(7, len(title))
            cells.append(fmt.format(flat[key]).rjust(cell_width) if key in flat
                         else "-".rjust(cell_width))
        lines.append(f"{name:<{width}} " + " ".join(cells))
    return "\n".join(lines)


# --------------------------------------------------------------------------- CLI
def load_dataset_gait(path: Path, robot_name: str) -> tuple[eval_metrics.DatasetGait, str]:
    """(duty factor and cadence, content_sha256) of a merged dataset (DESIGN 4.5)."""
    from amp.merge import DatasetFileError, read_merged

    data = read_merged(path)
    if data.robot != robot_name:
        raise DatasetFileError(path, f"dataset is for robot {data.robot!r}, the checkpoint's "
                                     f"environment runs {robot_name!r}")
    gait = eval_metrics.dataset_gait(data.features, data.clip_start, data.clip_length,
                                     data.clip_weight, data.fps)
    return gait, data.content_sha256


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = stage_parser("evaluate", prog="python -m training.evaluate", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", required=True, type=Path,
                        help="checkpoint directory, or a run directory (its newest checkpoint)")
    parser.add_argument("--data", type=Path, default=None,
                        help="merged AMP dataset, for the dataset's foot duty factor and step rate")
    parser.add_argument("--out", type=Path, default=Path("metrics/eval.json"))
    parser.add_argument("--episodes", type=int, default=16, help="episodes per scenario")
    parser.add_argument("--seconds", type=float, default=20.0, help="episode length [s]")
    parser.add_argument("--sim2sim-episodes", type=int, default=2,
                        help="plain-MuJoCo episodes per scenario (0: skip sim-to-sim)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--policy", choices=("checkpoint", "zero", "random"),
                        default="checkpoint", help="evaluate a baseline instead")
    return parser.parse_args(argv)


def evaluate_checkpoint(checkpoint: Path, *, data: Path | None = None, episodes: int = 16,
                        seconds: float = 20.0, sim2sim_episodes: int = 2, seed: int = 0,
                        policy: str = "checkpoint",
                        scenarios: tuple[Scenario, ...] | None = None) -> dict[str, Any]:
    """Everything ``metrics/eval.json`` holds, for one checkpoint."""
    from training import policy as policies
    from training.config import env_overrides_dict
    from training.sim2sim import evaluate_mujoco

    snapshot = policies.load_snapshot(checkpoint)
    suite = resized(scenarios or default_suite(), episodes=episodes, seconds=seconds)
    policy_fn = {"checkpoint": lambda: policies.deterministic_policy(snapshot),
                 "zero": lambda: policies.zero_policy(snapshot.action_size),
                 "random": lambda: policies.random_policy(snapshot.action_size)}[policy]()
    # Without AMP the discriminator never trained: its score would mean nothing.
    style_fn = policies.style_scorer(snapshot) if snapshot.config.amp.enabled else None
    gait, data_sha = (None, None) if data is None else load_dataset_gait(
        data, snapshot.env.robot.name)
    overrides = env_overrides_dict(snapshot.config)
    timing: dict[str, float] = {}
    clock = time.perf_counter()
    runs = run_mjx(policy_fn, suite, env_name=snapshot.config.env, env_overrides=overrides,
                   style_fn=style_fn, seed=seed)
    results = collect(runs, suite, gait)
    timing["mjx_s"] = time.perf_counter() - clock
    report: dict[str, Any] = {
        "checkpoint": str(snapshot.path),
        "iteration": snapshot.iteration,
        "policy": policy,
        "checkpoint_dataset_sha256": snapshot.dataset_sha256,
        "data": None if data is None else {"path": str(data), "content_sha256": data_sha},
        "seed": seed,
        "episodes": episodes,
        "seconds": seconds,
        "scenarios": results,
    }
    if sim2sim_episodes > 0:
        clock = time.perf_counter()
        # MuJoCo replays the first MJX episodes: same initial poses, noise and pushes.
        starts = {k: v for run in runs for k, v in run.initial_poses(sim2sim_episodes).items()}
        mujoco = evaluate_mujoco(policy_fn, suite, episodes=sim2sim_episodes,
                                 env_name=snapshot.config.env, env_overrides=overrides,
                                 style_fn=style_fn, dataset=gait, seed=seed,
                                 initial_qpos=starts)
        timing["mujoco_s"] = time.perf_counter() - clock
        # Like for like: the MJX metrics of the same episodes.
        gaps = sim2sim_gap(collect(runs, suite, gait, first=sim2sim_episodes), mujoco)
        report["sim2sim"] = {
            "episodes": sim2sim_episodes,
            "max_abs_gap": {k: max(abs(g.get(k, 0.0)) for g in gaps.values())
                            for k in GAP_METRICS if any(k in g for g in gaps.values())},
            "gap": gaps,
            "mujoco": mujoco,
        }
    report["timing_s"] = timing
    return report


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        check_writable(files=(args.out,))  # a read-only --out fails now, not after the work
        report = evaluate_checkpoint(args.checkpoint, data=args.data, episodes=args.episodes,
                                     seconds=args.seconds,
                                     sim2sim_episodes=args.sim2sim_episodes, seed=args.seed,
                                     policy=args.policy)
        write_json_atomic(args.out, report)
    except AmpkitError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    gaps = report.get("sim2sim", {}).get("gap")
    print(f"{report['checkpoint']} (iteration {report['iteration']}, policy {args.policy}, "
          f"{args.episodes} episodes x {args.seconds:g} s per scenario)")
    print(format_table(report["scenarios"], gaps))
    timing = ", ".join(f"{k} {v:.1f}" for k, v in report["timing_s"].items())
    print(f"wrote {args.out} ({timing})")
    return 0


if __name__ == "__main__":
    from robots.errors import run_main

    sys.exit(run_main(main, "evaluate"))
