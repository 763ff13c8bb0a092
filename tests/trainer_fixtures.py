"""A tiny stand-in environment that follows the MJX-environment contract exactly, a matching
merged AMP dataset, and tiny trainer configs, for fast trainer tests.

``PointWalk``: a point mass on the plane whose velocity follows the first two actions with a
first-order lag: v ← v + rate·(max_speed·clip(a[:2]) − v). Task reward exp(−‖v − c‖² / σ²) for
a fixed command c (easy: the policy only has to output a constant). AMP frame: joint-position
slots hold v, joint-velocity slots hold the velocity change per second, root height is fixed.
The reference data are smooth sinusoidal velocity curves, so jittery random-policy transitions
are easy to tell apart.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np

import robots
from amp.clipfile import layout_json
from amp.features import FEATURE_DIM
from amp.merge import MergeConfig, merge_features, write_merged
from training.config import AmpConfig, NetworkConfig, PPOConfig, TrainConfig
from training.envs.base import State  # its ``data`` here is a PointData pytree

CONTROL_DT = 0.02
HEIGHT_M = 0.45


@dataclass(frozen=True)
class PointWalkConfig:
    """Stand-in task settings.

    Attributes:
        command: Fixed (vx, vy) command [m/s].
        max_speed_mps: Speed at action 1 [m/s].
        lag_rate: Fraction of the gap to the target velocity closed per step.
        reward_sigma: Width σ of the tracking reward [m/s].
        episode_length: Control steps before truncation.
        fall_radius_m: Leaving this disc is a fall (done, not truncated).
        nan_reward: Report NaN rewards (to exercise the trainer's NaN guard).
    """

    command: tuple[float, float] = (0.5, 0.0)
    max_speed_mps: float = 1.0
    lag_rate: float = 0.5
    reward_sigma: float = 0.5
    episode_length: int = 40
    fall_radius_m: float = 3.0
    nan_reward: bool = False


@flax.struct.dataclass
class PointData:
    pos: jax.Array
    vel: jax.Array


class PointWalk:
    """Contract-following stand-in environment (see the module docstring)."""

    observation_size = 6
    privileged_observation_size = 7
    action_size = 11
    amp_feature_size = FEATURE_DIM
    control_dt = CONTROL_DT

    def __init__(self, config: PointWalkConfig = PointWalkConfig()) -> None:
        self.config = config
        self.episode_length = config.episode_length
        self.robot = robots.load("wildrobot")

    def frame(self, data: PointData, prev_vel: jax.Array) -> jax.Array:
        accel = (data.vel - prev_vel) / CONTROL_DT
        return make_frame(data.vel, accel)

    def _observe(self, data: PointData, step: jax.Array) -> tuple[jax.Array, jax.Array]:
        command = jnp.asarray(self.config.command, jnp.float32)
        obs = jnp.concatenate([data.vel, command, 0.1 * data.pos])
        privileged = jnp.concatenate([obs, (step / self.episode_length)[None]])
        return obs, privileged

    def reset(self, rng: jax.Array) -> State:
        rng, key = jax.random.split(rng)
        data = PointData(pos=jnp.zeros(2), vel=jax.random.uniform(key, (2,), minval=-0.2,
                                                                  maxval=0.2))
        step = jnp.zeros((), jnp.int32)
        obs, privileged = self._observe(data, step)
        frame = self.frame(data, data.vel)
        info = {"rng": rng, "step": step,
                "command": jnp.asarray([*self.config.command, 0.0], jnp.float32),
                "truncated": jnp.zeros(()), "amp_prev_frame": frame,
                "amp_terminal_frame": frame, "amp_frame": frame}
        zero = jnp.zeros(())
        return State(data, obs, privileged, zero, zero, {"tracking": zero}, info)

    def step(self, state: State, action: jax.Array) -> State:
        cfg = self.config
        target = cfg.max_speed_mps * jnp.clip(action[:2], -1.0, 1.0)
        vel = state.data.vel + cfg.lag_rate * (target - state.data.vel)
        data = PointData(pos=state.data.pos + vel * CONTROL_DT, vel=vel)
        command = jnp.asarray(cfg.command, jnp.float32)
        reward = jnp.exp(-jnp.sum((vel - command) ** 2) / cfg.reward_sigma**2)
        if cfg.nan_reward:
            reward = reward * jnp.nan
        step = state.info["step"] + 1
        fell = jnp.linalg.norm(data.pos) > cfg.fall_radius_m
        truncated = (step >= self.episode_length) & ~fell
        done = fell | truncated
        terminal_frame = self.frame(data, state.data.vel)
        reset_state = self.reset(state.info["rng"])
        obs, privileged = self._observe(data, step)
        running = State(data, obs, privileged, reward, done.astype(jnp.float32),
                        {"tracking": reward}, dict(state.info, step=step,
                                                   amp_frame=terminal_frame))
        new = jax.tree.map(lambda r, c: jnp.where(done, r, c), reset_state, running)
        rng, _ = jax.random.split(state.info["rng"])
        info = dict(new.info, rng=jnp.where(done, reset_state.info["rng"], rng),
                    truncated=truncated.astype(jnp.float32),
                    amp_prev_frame=state.info["amp_frame"],
                    amp_terminal_frame=terminal_frame)
        return new.replace(reward=reward, done=done.astype(jnp.float32),
                           metrics={"tracking": reward}, info=info)


def make_frame(vel: jax.Array, accel: jax.Array) -> jax.Array:
    """[..., 29] AMP frame of the point mass (numpy or jax)."""
    xp = jnp if isinstance(vel, jax.Array) else np
    shape = vel.shape[:-1]

    def zeros(n: int) -> Any:
        return xp.zeros((*shape, n), np.float32)

    height = xp.full((*shape, 1), HEIGHT_M, np.float32)
    # joint_pos[0:2] = v, joint_vel[9:11] = 0.05·dv/dt, root height 24, contacts 25:29 off.
    parts = [vel.astype(np.float32), zeros(7), 0.05 * accel.astype(np.float32), zeros(13),
             height, zeros(4)]
    return xp.concatenate(parts, axis=-1)


def reference_clips(num_clips: int = 3, frames: int = 200) -> list[tuple[str, np.ndarray]]:
    """Smooth reference motion: velocity circling at 0.5 m/s, one period per 2 s."""
    clips = []
    t = np.arange(frames) * CONTROL_DT
    for c in range(num_clips):
        phase = 2 * math.pi * (t / 2.0) + c
        vel = 0.5 * np.stack([np.cos(phase), np.sin(phase)], axis=-1)
        accel = np.gradient(vel, CONTROL_DT, axis=0)
        clips.append((f"circle_{c}", make_frame(vel, accel).astype(np.float32)))
    return clips


def write_reference_dataset(path: Path, robot: str = "wildrobot", scale: float = 1.0,
                            amp_joints: tuple[str, ...] | None = None) -> Path:
    """A DESIGN 4.5 merged file of :func:`reference_clips` (``scale`` changes its content;
    ``amp_joints`` writes the layout of another AMP joint list)."""
    spec = robots.load_spec("wildrobot")
    layout = layout_json(amp_joints or spec.amp_joint_names)
    clips = [(name, f * scale) for name, f in reference_clips()]
    data = merge_features(clips, fps=1.0 / CONTROL_DT, robot=robot, layout=layout,
                          config=MergeConfig())
    write_merged(path, data)
    return path


def tiny_config(**changes: Any) -> TrainConfig:
    """A configuration small enough for a test: 16 envs × 8 steps, 32-wide networks."""
    config = TrainConfig(
        env="point_walk",
        num_iterations=4,
        checkpoint_every=2,
        network=NetworkConfig(policy_hidden=(32, 32), value_hidden=(32, 32)),
        ppo=PPOConfig(num_envs=16, unroll_length=8, num_minibatches=2, num_epochs=2,
                      learning_rate=1e-3),
        amp=AmpConfig(hidden=(32, 32), batch_size=64, num_minibatches=4, num_epochs=2,
                      replay_size=512, replay_insert=64, learning_rate=1e-3),
    )
    return replace(config, **changes)


def compare_device_counts(out_dir: Path, iterations: int = 2) -> dict[str, Any]:
    """Train the same tiny run on a 1-device and on a 2-device mesh (call in a process started
    with ``--xla_force_host_platform_device_count=2``); report how far the results differ."""
    from training.train import RunPaths, load_reference, train

    env = PointWalk()
    dataset = load_reference(write_reference_dataset(out_dir / "merged.h5"), env)
    results = {}
    for devices in (1, 2):
        config = tiny_config(num_iterations=iterations, num_devices=devices)
        run = train(config, dataset, RunPaths.under(out_dir / f"dev{devices}"), env=env,
                    progress=False)
        shards = {len(leaf.sharding.device_set)
                  for leaf in jax.tree_util.tree_leaves(run.state.env_state)}
        params = {"policy": run.state.params, "disc": run.state.disc_params}
        results[devices] = (jax.device_get(params), run.metrics, shards)
    (p1, m1, _), (p2, m2, shards2) = results[1], results[2]
    diffs = jax.tree.map(lambda a, b: float(np.max(np.abs(a - b)) / (np.max(np.abs(a)) + 1e-6)),
                         p1, p2)
    return {
        "devices_seen": jax.device_count(),
        "env_state_shard_devices": sorted(shards2),
        "max_relative_param_diff": max(jax.tree_util.tree_leaves(diffs)),
        "task_reward": [m1["rollout/task_reward"], m2["rollout/task_reward"]],
        "disc_loss": [m1["amp/disc_loss"], m2["amp/disc_loss"]],
    }
