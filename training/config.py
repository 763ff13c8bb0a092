"""Typed configuration of the AMP+PPO trainer, its presets, and ``--set key=value`` overrides.

Every field is static for jit: changing one recompiles the training iteration. Presets:

- ``cpu-smoke``: what ``dvc repro`` runs by default; a few minutes on 2 CPU cores.
- ``cpu-walk``: trains a walking policy on 2 CPU cores (256 environments, about 18 M env
  steps): ``dvc exp run -S train.preset=cpu-walk`` or ``python bench/walk.py``.
- ``gpu``: the real run (8192 environments); ``python -m training.amp --data … --preset gpu``.

``cpu-walk`` and ``gpu`` share the settings that keep the discriminator informative (see
:data:`WALK_AMP`) and start half of the episodes from reference frames (RSI).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar

import yaml

from robots.config import ConfigError, check_bounds

__all__ = ["PRESETS", "ConfigError", "TrainConfig", "apply_overrides", "preset"]


@dataclass(frozen=True)
class NetworkConfig:
    """Actor, critic and policy-noise shape.

    The policy is a Gaussian with a state-independent log standard deviation (one learned
    number per action dimension, clamped to ``[log(min_action_std), log(max_action_std)]``); the
    sampled action goes through no tanh, it is clipped to ``±PPOConfig.action_clip`` only when
    handed to the environment, and its log-probability is that of the unclipped sample.
    """

    BOUNDS: ClassVar[dict[str, str]] = {
        "policy_hidden": ">= 1", "value_hidden": ">= 1", "init_action_std": "> 0",
        "min_action_std": "> 0", "max_action_std": "> 0"}

    policy_hidden: tuple[int, ...] = (512, 256, 128)
    value_hidden: tuple[int, ...] = (512, 256, 128)
    activation: str = "elu"
    init_action_std: float = 0.5
    min_action_std: float = 0.02
    max_action_std: float = 2.0


@dataclass(frozen=True)
class PPOConfig:
    """Rollout size and the PPO update.

    Attributes:
        num_envs: Environments stepped in parallel (the global batch over all devices).
        unroll_length: Control steps per environment per iteration.
        num_minibatches: Minibatches per epoch; ``num_envs * unroll_length`` must divide.
        num_epochs: Passes over the rollout per iteration.
        lr_schedule: ``adaptive`` (KL target ``desired_kl``), ``constant`` or ``linear``
            (to zero at ``num_iterations``).
        value_clip_epsilon: Clip range of the value-prediction change (clipped value loss).
        obs_clip: Normalized observations are clipped to ``±obs_clip``.
        action_clip: Actions are clipped to ``±action_clip`` when handed to the environment.
    """

    BOUNDS: ClassVar[dict[str, str]] = {
        "num_envs": ">= 1", "unroll_length": ">= 1", "num_minibatches": ">= 1",
        "num_epochs": ">= 1", "discount": "[0, 1]", "gae_lambda": "[0, 1]",
        "clip_epsilon": "> 0", "value_clip_epsilon": "> 0", "value_loss_coef": ">= 0",
        "learning_rate": "> 0", "desired_kl": "> 0", "min_learning_rate": "> 0",
        "max_learning_rate": "> 0", "max_grad_norm": "> 0", "obs_clip": "> 0",
        "action_clip": "> 0"}

    num_envs: int = 4096
    unroll_length: int = 24
    num_minibatches: int = 4
    num_epochs: int = 5
    discount: float = 0.99
    gae_lambda: float = 0.95
    clip_epsilon: float = 0.2
    value_clip_epsilon: float = 0.2
    value_loss_coef: float = 1.0
    entropy_coef: float = 0.005
    learning_rate: float = 3e-4
    lr_schedule: str = "adaptive"
    desired_kl: float = 0.01
    min_learning_rate: float = 1e-5
    max_learning_rate: float = 1e-2
    max_grad_norm: float = 1.0
    normalize_advantage: bool = True
    normalize_observations: bool = True
    obs_clip: float = 10.0
    action_clip: float = 1.0


@dataclass(frozen=True)
class AmpConfig:
    """Discriminator, its replay buffer and the reward mix.

    Attributes:
        enabled: False trains plain PPO on the task reward alone (weights unused).
        hidden: Discriminator MLP widths (ReLU), followed by a linear logit layer.
        grad_penalty_weight: Weight w of the gradient penalty (w/2)·E_data‖∇D‖².
        logit_weight_decay: Coefficient of the squared L2 norm of the logit layer's weights.
        num_epochs, num_minibatches: Discriminator steps per iteration = their product.
        batch_size: Policy transitions per discriminator step (and as many data transitions).
        replay_size: Capacity of the policy-transition replay buffer.
        replay_fraction: Share of each policy minibatch drawn from the replay buffer (once it
            holds anything); the rest comes from the current rollout.
        replay_insert: Random current-rollout transitions inserted per iteration (capped at the
            rollout size).
        normalizer_clip: Normalized AMP frames are clipped to ``±normalizer_clip``.
        input_noise_std: Instance noise added to the discriminator's normalized training
            inputs (data and policy alike; never to the reward's inputs).
        task_weight, style_weight: reward = task_weight·task + style_weight·style.
    """

    BOUNDS: ClassVar[dict[str, str]] = {
        "hidden": ">= 1", "learning_rate": "> 0", "max_grad_norm": "> 0",
        "grad_penalty_weight": ">= 0", "logit_weight_decay": ">= 0", "num_epochs": ">= 1",
        "num_minibatches": ">= 1", "batch_size": ">= 1", "replay_size": ">= 1",
        "replay_fraction": "[0, 1]", "normalizer_clip": "> 0", "input_noise_std": ">= 0",
        "task_weight": ">= 0", "style_weight": ">= 0"}

    enabled: bool = True
    hidden: tuple[int, ...] = (1024, 512)
    learning_rate: float = 1e-4
    max_grad_norm: float = 1.0
    grad_penalty_weight: float = 5.0
    logit_weight_decay: float = 0.01
    num_epochs: int = 2
    num_minibatches: int = 4
    batch_size: int = 4096
    replay_size: int = 200_000
    replay_fraction: float = 0.5
    replay_insert: int = 50_000
    normalizer_clip: float = 10.0
    input_noise_std: float = 0.0
    task_weight: float = 0.5
    style_weight: float = 0.5


@dataclass(frozen=True)
class TrainConfig:
    """One training run.

    Attributes:
        env: Registered environment name (``training.envs.load``).
        env_overrides: ``(key, value)`` pairs handed to the environment's config
            (``--set env.KEY=VALUE``).
        num_iterations: Training iterations in total (a resumed run continues to this).
        checkpoint_every: Save every this many iterations (and always at the end).
        keep_checkpoints: Newest checkpoints kept on disk.
        eval_every: Deterministic-policy evaluation every this many iterations (0: never).
        eval_envs, eval_steps: Size of that evaluation rollout.
        num_devices: Devices to shard the environment batch over (0: every visible device).
    """

    BOUNDS: ClassVar[dict[str, str]] = {
        "num_iterations": ">= 1", "checkpoint_every": ">= 1", "log_every": ">= 1",
        "eval_envs": ">= 1", "eval_steps": ">= 1"}

    env: str = "wildrobot_walk"
    env_overrides: tuple[tuple[str, Any], ...] = ()
    seed: int = 0
    num_iterations: int = 1000
    checkpoint_every: int = 100
    keep_checkpoints: int = 3
    log_every: int = 1
    eval_every: int = 0
    eval_envs: int = 32
    eval_steps: int = 200
    num_devices: int = 0
    network: NetworkConfig = field(default_factory=NetworkConfig)
    ppo: PPOConfig = field(default_factory=PPOConfig)
    amp: AmpConfig = field(default_factory=AmpConfig)

    @property
    def transitions_per_iteration(self) -> int:
        return self.ppo.num_envs * self.ppo.unroll_length

    def validate(self) -> TrainConfig:
        """Raise :class:`ConfigError` on settings that cannot run; return self."""
        check_bounds(self, "config")  # counts >= 1, rates > 0 ... before any arithmetic
        if self.network.min_action_std > self.network.max_action_std:
            raise ConfigError(f"network.min_action_std={self.network.min_action_std} > "
                              f"network.max_action_std={self.network.max_action_std}")
        if self.ppo.min_learning_rate > self.ppo.max_learning_rate:
            raise ConfigError(f"ppo.min_learning_rate={self.ppo.min_learning_rate} > "
                              f"ppo.max_learning_rate={self.ppo.max_learning_rate}")
        batch = self.transitions_per_iteration
        if batch % self.ppo.num_minibatches:
            raise ConfigError(f"num_envs*unroll_length={batch} is not divisible by "
                              f"ppo.num_minibatches={self.ppo.num_minibatches}")
        if self.ppo.lr_schedule not in ("adaptive", "constant", "linear"):
            raise ConfigError(f"ppo.lr_schedule={self.ppo.lr_schedule!r}; "
                              "valid: adaptive, constant, linear")
        if self.network.activation not in ACTIVATIONS:
            raise ConfigError(f"network.activation={self.network.activation!r}; "
                              f"valid: {sorted(ACTIVATIONS)}")
        if not 0.0 <= self.amp.replay_fraction <= 1.0:
            raise ConfigError("amp.replay_fraction must lie in [0, 1]")
        if self.num_iterations < 1 or self.checkpoint_every < 1:
            raise ConfigError("num_iterations and checkpoint_every must be >= 1")
        return self

    def to_dict(self) -> dict[str, Any]:
        """Plain, JSON-able form (recorded in checkpoints and metrics)."""
        out = dataclasses.asdict(self)
        out["env_overrides"] = {k: v for k, v in self.env_overrides}
        return out


ACTIVATIONS = ("elu", "relu", "tanh", "swish")

WALK_ENV_OVERRIDES: tuple[tuple[str, Any], ...] = (
    ("default_keyframe", "walk"),
    ("reference_init_fraction", 0.5),
)
"""Environment settings of the walking presets: half of the episodes start from a random
reference frame (reference-state initialization), the rest from the ``walk`` keyframe. That
keyframe is the data's mean leg pose, so the actions are centred where the data's poses are
(around the ``stand`` keyframe the knee could not bend as far as the data's swing) and the
base-height target is the data's pelvis height, not 2 cm above it."""

WALK_AMP = AmpConfig(
    hidden=(512, 256),
    learning_rate=5e-5,
    grad_penalty_weight=10.0,
    input_noise_std=0.1,
    num_epochs=1,
    num_minibatches=2,
    batch_size=2048,
    replay_size=200_000,
    replay_insert=6144,
    task_weight=0.5,
    style_weight=0.5,
)
"""Discriminator settings of the walking presets: a stronger gradient penalty (10), instance
noise on its inputs, a slower learning rate and 2 steps per iteration, so it stays short of
separating policy from data perfectly and its style reward keeps a gradient. (A style weight
of 1.0 was measured to make standing still the policy's optimum: the dataset holds standing
clips, so a standing policy earns style reward without the risk of stepping.)"""

PRESETS: dict[str, TrainConfig] = {
    "cpu-smoke": TrainConfig(
        num_iterations=20,
        checkpoint_every=10,
        network=NetworkConfig(policy_hidden=(128, 64), value_hidden=(128, 64)),
        ppo=PPOConfig(num_envs=32, unroll_length=16, num_minibatches=4, num_epochs=4),
        amp=AmpConfig(hidden=(256, 128), batch_size=256, num_minibatches=2,
                      replay_size=8192, replay_insert=512),
    ),
    "cpu-walk": TrainConfig(
        num_iterations=3000,
        checkpoint_every=50,
        env_overrides=WALK_ENV_OVERRIDES,
        network=NetworkConfig(policy_hidden=(256, 128, 64), value_hidden=(256, 128, 64),
                              init_action_std=0.4),
        ppo=PPOConfig(num_envs=256, unroll_length=24, num_minibatches=4, num_epochs=4,
                      entropy_coef=0.002),
        amp=WALK_AMP,
    ),
    "gpu": TrainConfig(
        num_iterations=5000,
        checkpoint_every=250,
        eval_every=50,
        eval_envs=256,
        eval_steps=500,
        env_overrides=WALK_ENV_OVERRIDES,
        network=NetworkConfig(init_action_std=0.4),
        ppo=PPOConfig(num_envs=8192, unroll_length=24, num_minibatches=4, num_epochs=5,
                      entropy_coef=0.002),
        amp=dataclasses.replace(WALK_AMP, hidden=(1024, 512), batch_size=8192,
                                replay_size=1_000_000, replay_insert=100_000),
    ),
}


def preset(name: str) -> TrainConfig:
    """The named preset; unknown names list the valid ones."""
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}; valid presets: {', '.join(PRESETS)}")
    return PRESETS[name]


def apply_overrides(config: TrainConfig, assignments: list[str]) -> TrainConfig:
    """Apply ``key=value`` strings (``ppo.num_envs=64``, ``amp.enabled=false``,
    ``env.some_key=1.5``); values are parsed as YAML scalars/lists and checked against the field.
    """
    for assignment in assignments:
        key, sep, raw = assignment.partition("=")
        if not sep:
            raise ConfigError(f"--set {assignment!r}: expected key=value")
        value = yaml.safe_load(raw)
        config = _set_path(config, key.strip().split("."), value, key)
    return config.validate()


def _set_path(obj: Any, path: list[str], value: Any, full_key: str) -> Any:
    if isinstance(obj, TrainConfig) and path[0] == "env" and len(path) > 1:
        overrides = dict(obj.env_overrides)
        overrides[".".join(path[1:])] = value
        return dataclasses.replace(obj, env_overrides=tuple(sorted(overrides.items())))
    fields = {f.name: f for f in dataclasses.fields(obj)}
    name = path[0]
    if name not in fields:
        raise ConfigError(f"--set {full_key}: unknown key {name!r}; valid: {sorted(fields)}")
    current = getattr(obj, name)
    if len(path) > 1:
        if not dataclasses.is_dataclass(current):
            raise ConfigError(f"--set {full_key}: {name!r} has no sub-keys")
        return dataclasses.replace(obj, **{name: _set_path(current, path[1:], value, full_key)})
    return dataclasses.replace(obj, **{name: _coerce(current, value, full_key)})


def _coerce(current: Any, value: Any, full_key: str) -> Any:
    """Convert ``value`` to the type of the field's current value, or explain why not."""
    if isinstance(current, bool):
        if isinstance(value, bool):
            return value
    elif isinstance(current, int):
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif isinstance(current, float):
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    elif isinstance(current, str):
        return str(value)
    elif isinstance(current, tuple):
        if isinstance(value, list | tuple):
            return tuple(value)
    elif dataclasses.is_dataclass(current):
        raise ConfigError(f"--set {full_key}: set a sub-key, e.g. {full_key}.FIELD=VALUE")
    raise ConfigError(f"--set {full_key}={value!r}: expected {type(current).__name__}")
