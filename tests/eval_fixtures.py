"""A tiny but real training checkpoint of the MJX walking task, for evaluation/export tests.

:func:`write_tiny_checkpoint` builds the trainer's ``TrainState`` for a tiny config (two
environments, 32/16-wide networks), gives it non-trivial parameters (the trainer's own
initialization plus noise, so actions are neither ~0 nor all clipped) and normalizers (the
observation normalizer has seen fake data; the AMP normalizer the dataset), and saves it with
the trainer's checkpoint code and metadata, as one training iteration would. The environment
batch inside it is zeros: inference never reads it.
"""

from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from amp_fixtures import write_synthetic_dataset

import robots
from amp.merge import read_merged
from training import checkpoint as ckpt
from training.config import AmpConfig, NetworkConfig, PPOConfig, TrainConfig, load_env
from training.normalization import RunningStats, init_stats, update_stats
from training.train_state import init_train_state, make_networks


def tiny_train_config() -> TrainConfig:
    """The smallest sensible config of the real environment."""
    return TrainConfig(
        env="wildrobot_walk", num_iterations=1, checkpoint_every=1,
        network=NetworkConfig(policy_hidden=(32, 16), value_hidden=(16,)),
        ppo=PPOConfig(num_envs=2, unroll_length=2, num_minibatches=1, num_epochs=1),
        amp=AmpConfig(hidden=(16,), batch_size=8, num_minibatches=1, num_epochs=1,
                      replay_size=16, replay_insert=4),
    )


def write_dataset(path: Path) -> Path:
    """A small merged AMP dataset of analytic walks for WildRobot."""
    return write_synthetic_dataset(path, robots.load("wildrobot"), num_clips=2, duration_s=1.0)


def _perturbed(params: object, key: jax.Array, scale: float) -> object:
    leaves, treedef = jax.tree_util.tree_flatten(params)
    keys = jax.random.split(key, len(leaves))
    noisy = [leaf + scale * jax.random.normal(k, leaf.shape, leaf.dtype)
             for leaf, k in zip(leaves, keys, strict=True)]
    return jax.tree_util.tree_unflatten(treedef, noisy)


def write_tiny_checkpoint(run_dir: Path, dataset: Path, seed: int = 7) -> Path:
    """Save a tiny checkpoint under ``run_dir/checkpoints``; returns its directory."""
    config = tiny_train_config()
    env = load_env(config)
    networks = make_networks(config, env)
    shapes = jax.eval_shape(lambda: init_train_state(config, env, networks))
    state = jax.tree.map(lambda s: np.zeros(s.shape, s.dtype), shapes)
    data = read_merged(dataset)

    @jax.jit
    def trained_parts(key: jax.Array, features: jax.Array) -> dict[str, object]:
        k_policy, k_value, k_disc, k_noise, k_stats = jax.random.split(key, 5)
        obs = jnp.zeros((1, env.observation_size))
        critic_obs = jnp.zeros((1, env.privileged_observation_size))
        fake_obs = 0.3 * jax.random.normal(k_stats, (256, env.observation_size)) + 0.05
        return {
            "params": {"policy": _perturbed(networks.policy.init(k_policy, obs), k_noise, 0.1),
                       "value": networks.value.init(k_value, critic_obs)},
            "disc_params": networks.discriminator.init(
                k_disc, jnp.zeros((1, 2, env.amp_feature_size))),
            "obs_stats": update_stats(init_stats(env.observation_size), fake_obs),
            "amp_stats": update_stats(init_stats(env.amp_feature_size), features),
        }

    parts = trained_parts(jax.random.PRNGKey(seed), jnp.asarray(data.features))
    state = state.replace(**parts, iteration=np.ones((), np.int32))
    assert isinstance(state.obs_stats, RunningStats)
    meta = {
        "config": config.to_dict(),
        "dataset": {"path": str(dataset), "content_sha256": data.content_sha256},
        "robot": env.robot.name,
        "git_commit": "test",
        "env_steps": config.transitions_per_iteration,
        "jax_version": jax.__version__,
        "devices": [str(d) for d in jax.devices()],
    }
    return ckpt.save_checkpoint(run_dir / "checkpoints", state, 1, meta, keep=1)


def numpy_observations(count: int, size: int, seed: int = 0) -> np.ndarray:
    """Observation-like float32 rows [count, size] (some far outside the normalizer's clip)."""
    rng = np.random.default_rng(seed)
    obs = rng.normal(0.0, 0.5, (count, size)).astype(np.float32)
    obs[0] = 0.0
    obs[1] = 50.0  # clipped by the observation normalizer
    return obs


TINY_EPISODES = 2
"""Episodes per scenario in the tiny suite (6 scenarios: batch 12). Every MJX test of the
evaluation uses a batch of exactly this many episodes in total, so one compiled step serves
them all within a test session."""
TINY_BATCH = 12
TINY_SECONDS = 1.0

_SHARED: dict[str, tuple[Path, Path]] = {}


def shared_checkpoint(factory: object) -> tuple[Path, Path]:
    """(checkpoint directory, dataset) written once per test session.

    Args:
        factory: pytest's ``tmp_path_factory`` (session-scoped, so the files outlive modules).
    """
    if "tiny" not in _SHARED:
        root = factory.mktemp("tiny_checkpoint")  # type: ignore[attr-defined]
        dataset = write_dataset(root / "merged.h5")
        _SHARED["tiny"] = (write_tiny_checkpoint(root / "run", dataset), dataset)
    return _SHARED["tiny"]


def write_reference_clip(directory: Path, name: str = "walk_ref") -> Path:
    """An AMP clip file (with qpos) of an analytic walk, as ``pipeline.convert`` writes them."""
    from amp_fixtures import synthetic_motion

    from amp.clipfile import write_clip
    from amp.convert import ConvertConfig, convert_motion

    robot = robots.load("wildrobot")
    clip = convert_motion(synthetic_motion(robot.spec, 50.0, 1.0), robot, ConvertConfig(), name)
    path = directory / f"{name}.h5"
    write_clip(path, clip, robot.spec.amp_joint_names)
    return path
