"""Typed configuration of the AMP+PPO trainer, its presets, and ``--set key=value`` overrides.

Every field is static for jit: changing one recompiles the training iteration. Presets:

- ``cpu-smoke``: what ``dvc repro`` runs by default; a few minutes on 2 CPU cores.
- ``cpu-walk``: trains a walking policy on 2 CPU cores (256 environments, 10.4 M env
  steps): ``dvc exp run -S train.preset=cpu-walk`` or ``python -m bench.walk``.
- ``cpu-walk-tracked``: ``cpu-walk`` at the data's cadence, pose and stance width, for the
  physically filtered reference ``data/amp/tracked.h5``: ``dvc repro walk/dvc.yaml`` builds
  that reference (the clip tracker, ``cpu-track``, then ``training.reference_filter``) and
  trains and evaluates on it.
- ``cpu-track``: the clip tracker behind that filtered reference.
- ``gpu``: the real run (8192 environments); ``python -m training.train --data … --preset gpu``.

``cpu-walk`` and ``gpu`` share the settings that keep the discriminator informative (see
:data:`WALK_AMP`) and start half of the episodes from reference frames (RSI).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import yaml

from robots.config import ConfigError, build_config, check_bounds, nest_dotted, replace_config

__all__ = ["PRESETS", "ConfigError", "TrainConfig", "apply_overrides", "config_from_dict",
           "env_overrides_dict", "load_env", "preset"]


@dataclass(frozen=True)
class NetworkConfig:
    """Actor, critic and policy-noise shape.

    The policy is a Gaussian with a state-independent log standard deviation (one learned
    number per action dimension, clamped to ``[log(min_action_std), log(max_action_std)]``); the
    sampled action goes through no tanh, it is clipped to ``±PPOConfig.action_clip`` only when
    handed to the environment, and its log-probability is that of the unclipped sample.

    Attributes:
        final_max_action_std: With ``anneal_iterations = (start, end)``, the upper clamp falls
            geometrically from ``max_action_std`` at iteration ``start`` to this at ``end``
            and stays there; None keeps it at ``max_action_std``.
        anneal_iterations: (start, end) iterations of that fall, ``start < end``.
    """

    BOUNDS: ClassVar[dict[str, str]] = {
        "policy_hidden": ">= 1", "value_hidden": ">= 1", "init_action_std": "> 0",
        "min_action_std": "> 0", "max_action_std": "> 0", "final_max_action_std": "> 0",
        "anneal_iterations": ">= 0"}

    policy_hidden: tuple[int, ...] = (512, 256, 128)
    value_hidden: tuple[int, ...] = (512, 256, 128)
    activation: str = "elu"
    init_action_std: float = 0.5
    min_action_std: float = 0.02
    max_action_std: float = 2.0
    final_max_action_std: float | None = None
    anneal_iterations: tuple[int, int] = (0, 0)


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
        final_style_weight: With ``style_ramp_iterations = (start, end)``, the style weight
            rises linearly from ``style_weight`` at iteration ``start`` to this at ``end`` and
            stays there (``training.iteration.style_weight_at``); None keeps
            ``style_weight`` throughout.
        style_ramp_iterations: (start, end) iterations of that ramp, ``start < end``.
        faded_task_terms: Names of environment reward terms (``env.reward_names``) whose part
            of the task reward fades out linearly over ``task_fade_iterations``
            (``training.iteration.task_fade_keep``): shaping that is needed to find a gait
            (the gait clock's ``feet_phase`` and ``contact_phase``) but holds the policy
            to the clock's cadence once the style reward can shape the steps.
        task_fade_iterations: (start, end) iterations of that fade, ``start < end``.
        task_fade_final_shares: Share [0, 1] of each faded term (in ``faded_task_terms``
            order) left in the task reward once the fade is over; empty fades them all to 0.
            A term that keeps a share is lightened rather than removed.
        speed_matched_data: Draw the discriminator's reference transitions so that their
            forward speed is spread evenly over the environment's forward-speed command range
            (``amp.speed_match``), instead of as the clips happen to be; needs an environment
            with ``commands.vx_mps``.
        speed_match_window_s: Window the reference's forward speed is averaged over [s].
        speed_match_bin_mps: Width of the speed bins [m/s].
        speed_match_max_ratio: A speed bin's weight is raised at most this many times.
    """

    BOUNDS: ClassVar[dict[str, str]] = {
        "hidden": ">= 1", "learning_rate": "> 0", "max_grad_norm": "> 0",
        "grad_penalty_weight": ">= 0", "logit_weight_decay": ">= 0", "num_epochs": ">= 1",
        "num_minibatches": ">= 1", "batch_size": ">= 1", "replay_size": ">= 1",
        "replay_fraction": "[0, 1]", "normalizer_clip": "> 0", "input_noise_std": ">= 0",
        "task_weight": ">= 0", "style_weight": ">= 0", "final_style_weight": ">= 0",
        "style_ramp_iterations": ">= 0", "task_fade_iterations": ">= 0",
        "task_fade_final_shares": "[0, 1]",
        "speed_match_window_s": "> 0",
        "speed_match_bin_mps": "> 0", "speed_match_max_ratio": ">= 1"}

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
    final_style_weight: float | None = None
    style_ramp_iterations: tuple[int, int] = (0, 0)
    faded_task_terms: tuple[str, ...] = ()
    task_fade_iterations: tuple[int, int] = (0, 0)
    task_fade_final_shares: tuple[float, ...] = ()
    speed_matched_data: bool = False
    speed_match_window_s: float = 1.0
    speed_match_bin_mps: float = 0.05
    speed_match_max_ratio: float = 4.0


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
        final = self.network.final_max_action_std
        start, end = self.network.anneal_iterations
        if final is not None and not (start < end and self.network.min_action_std <= final):
            raise ConfigError(f"network.final_max_action_std={final} needs "
                              f"network.anneal_iterations=(start, end) with start < end (got "
                              f"{self.network.anneal_iterations}) and a value >= "
                              f"network.min_action_std={self.network.min_action_std}")
        fade_start, fade_end = self.amp.task_fade_iterations
        if self.amp.faded_task_terms and not fade_start < fade_end:
            raise ConfigError(f"amp.faded_task_terms={list(self.amp.faded_task_terms)} needs "
                              "amp.task_fade_iterations=(start, end) with start < end (got "
                              f"{self.amp.task_fade_iterations})")
        shares = self.amp.task_fade_final_shares
        if shares and len(shares) != len(self.amp.faded_task_terms):
            raise ConfigError(f"amp.task_fade_final_shares={list(shares)} needs one share per "
                              f"amp.faded_task_terms={list(self.amp.faded_task_terms)}")
        ramp_start, ramp_end = self.amp.style_ramp_iterations
        if self.amp.final_style_weight is not None and not ramp_start < ramp_end:
            raise ConfigError(f"amp.final_style_weight={self.amp.final_style_weight} needs "
                              "amp.style_ramp_iterations=(start, end) with start < end (got "
                              f"{self.amp.style_ramp_iterations})")
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
    ("action_filter_alpha", 0.5),
    ("default_keyframe", "walk"),
    ("gait.frequency_hz", 1.3),
    ("gait.stance_fraction", 0.6),
    ("reference_init_fraction", 0.5),
    ("rewards.weights.action_rate", -0.05),
    ("rewards.weights.ang_vel_xy", -0.2),
    ("rewards.weights.contact_phase", 1.0),
    ("rewards.weights.feet_phase", 2.0),
    ("rewards.tracking_window_s", 0.5),
)
"""Environment settings of the walking presets.

- Half of the episodes start from a random reference frame (reference-state initialization),
  the rest from the ``walk`` keyframe. That keyframe is the data's mean leg pose, so the
  actions are centred where the data's poses are (around ``stand`` the knee could not bend as
  far as the data's swing) and the base-height target is the data's pelvis height.
- A gait clock with the ``feet_phase`` / ``contact_phase`` rewards: without it the policy
  settles on shuffling with both feet down (measured: alternation 0.40, walking rate 0 after
  3.7 M steps). 1.3 Hz is the dataset's stride rate (0.75-0.9 Hz: 1.5-1.8 touchdowns/s in its
  walks) Froude-scaled to the robot's legs (0.45 of the human's: x 1/sqrt(0.45)); at the
  dataset's own 0.9 Hz (weights 1.0 / 0.5) the policy had not lifted a foot after 1.2 M steps,
  the 0.5 s single support being too long to balance on one foot without ankle roll. With
  today's preset (style ramp, action filter, ``walk`` keyframe) 1.0 Hz does find the gait as
  fast (run w9), but the style prior then sets the data's own pace, 0.52 m/s at a 0.3 command
  (flat error 0.204, grid 0.184), so 1.3 Hz stays until the style signal knows the speed. A
  rate that follows the command at the data's own cadence (``gait.frequency_per_mps``: 0.6 Hz
  + 0.7 Hz per m/s, stance 0.65, run w12) tracked as well (grid 0.096) and left the
  discriminator a little less sure (0.983 against 0.994), but a 0.43-s single support is too
  long for this robot: feet down 80 % of the time, re-steps, and arms swung at 48 W for
  balance. Stance
  0.6 is the duty factor of the dataset (0.59), the 4 cm swing height its feet's
  95th-percentile height in swing.
- A stronger action-rate penalty (0.05): the shuffling policy's joint targets jumped ~0.2 rad
  per step, which is most of its 42 W of mechanical power.
- Speed is scored on the velocity averaged over 0.5 s (``rewards.tracking_window_s``), about
  two thirds of a 1.3 Hz stride: scored per step, the stepping policy's in-stride sway
  (0.14-0.17 m/s sideways) cost as much reward as its 0.11-0.17 m/s too-fast mean speed.
  Yaw rate stays scored per step. (Doubling its weight to 1.5 together with a lower action
  noise left the policy standing still at 1.1 M steps, where the earlier run had begun to
  step.) Tried and not kept: the yaw rate averaged over 0.5 s on a 0.1 (rad/s)^2 kernel
  (``rewards.yaw_tracking_window_s``), together with the noise annealed to 0.08 by iteration
  1100. That run twisted its pelvis within every stride (yaw error 0.73 rad/s per step
  against 0.40) at 32.9 W against 17.4, for a windowed yaw error of 0.20 against 0.23."""

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
    final_style_weight=1.5,
    style_ramp_iterations=(600, 1100),
)
"""Discriminator settings of the walking presets: a stronger gradient penalty (10), instance
noise on its inputs, a slower learning rate and 2 steps per iteration, so it stays short of
separating policy from data perfectly and its style reward keeps a gradient.

The style weight ramps from 0.5 to 1.5 over iterations 600-1100, once the gait is found. At a
constant 0.5 the style term was 5 % of the reward the policy optimized: the walking task
reward sums to about 4.3 per step (tracking, gait clock, alive), the style reward is at most 1
(measured over the last 10 % of run w7: 0.5 x 4.31 task against 0.5 x 0.243 style), so the
style gradient hardly moved the policy. A weight of 1.0 from the start was measured earlier to
make standing still the optimum (the dataset holds standing clips, and a standing policy
earns style reward without the risk of stepping), hence the ramp after the gait exists.
Measured from scratch (``bench.walk``, run w8): style 0.302 against 0.243 without the ramp,
policy accuracy still 0.997; flat 0.088 (0.41 m/s at a 0.3 command), grid 0.100, yaw 0.075,
14.5 W against 6.6 W, push success 0.13 against 0.31.

``speed_matched_data`` stays off: with it and a 1.0 Hz clock (run w10) flat was 0.162, grid
0.168, yaw 0.065, style 0.325 / accuracy 0.997, duty 0.61 / 0.61, push success 0.00, against
w9's 0.204, 0.184, 0.120, 0.325 / 0.991 without it; the robot still walked at 0.49 m/s at a
0.3 command (step rate x the data's step lengths)."""

WALK_NETWORK = NetworkConfig(policy_hidden=(256, 128, 64), value_hidden=(256, 128, 64),
                             init_action_std=0.4, max_action_std=0.4,
                             final_max_action_std=0.15, anneal_iterations=(400, 900))
"""Networks and exploration noise of ``cpu-walk``: std 0.4 (action units, x 0.5 rad) while
the gait is found, then capped down to 0.15 between iterations 400 and 900 (2.5-5.5 M steps).

The discriminator sees the stochastic rollouts, and at 0.4 (0.34 learned by 8 M steps) their
exploration jitter was what it told apart: on a stepping policy's replay buffer the waist-yaw
rate had a std of 2.3 rad/s against the data's 0.28, the root yaw rate 1.8 against 0.33, the
lateral speed 0.20 against 0.03 m/s. The same checkpoint's deterministic rollouts scored a
style reward of 0.54, its training rollouts 0.21: the style reward priced the noise, not the
gait. Starting at 0.15 instead left the policy standing still at 1.1 M steps (it had begun
to step by then at 0.4), hence the anneal. 0.15 is a target jitter of about 0.075 rad per
step, near the 0.05-0.1 rad of fixed-noise AMP setups. Lower did not help: annealed to 0.08
(by iteration 1100), the replay buffer's root pitch and yaw rates stayed at 5x the data's
std (0.82 and 1.61 against 0.17 and 0.34 rad/s; 0.92 and 1.60 at 0.13), because by then
most of the jitter is the mean policy's own (its deterministic rollouts: 0.50 and 0.78).

``env.action_filter_alpha`` 0.5 (a 5.5 Hz first-order low-pass of the joint targets) and an
``ang_vel_xy`` weight of -0.2 are in ``WALK_ENV_OVERRIDES``: trained from scratch with both
(10.4 M steps, 1.9 h), the policy's power fell from 17.4 to 13.5 W and its windowed yaw error
from 0.233 to 0.053 rad/s, with flat 0.086 and grid 0.076 m/s (against 0.049 and 0.063);
the discriminator's policy accuracy stayed at 0.997. Re-run as the preset (``bench.walk``):
flat 0.051, grid 0.087, yaw 0.053, 6.6 W, style 0.243 / accuracy 0.997."""

CPU_WALK = TrainConfig(
    num_iterations=1700,
    checkpoint_every=50,
    env_overrides=WALK_ENV_OVERRIDES,
    network=WALK_NETWORK,
    ppo=PPOConfig(num_envs=256, unroll_length=24, num_minibatches=4, num_epochs=4,
                  entropy_coef=0.002),
    amp=WALK_AMP,
)
"""The ``cpu-walk`` preset: 256 environments x 24 steps, 1,700 iterations (10.4 M env steps)."""

TRACKED_WALK_ENV_OVERRIDES: tuple[tuple[str, Any], ...] = tuple(sorted({
    **dict(WALK_ENV_OVERRIDES),
    "gait.frequency_hz": 0.6,
    "gait.frequency_per_mps": 0.7,
    "gait.phase_from_reference": True,
    "gait.stance_fraction": 0.65,
    "reference_init_fraction": 0.7,
    "rewards.weights.reference_pose": 2.0,
    "rewards.weights.stance_width": -100.0,
}.items()))
"""Environment settings of ``cpu-walk-tracked``: run w16's (the closest any policy has come to
the data, by every discriminator), for a reference the robot can physically follow.

- The data's cadence: a clock at 0.6 Hz + 0.7 Hz per m/s of command, stance 0.65 (the
  filtered reference's own step rate, 1.61 steps/s at 0.3 m/s), started at the reference
  frame's own stride phase for the 70 % of episodes that start from one.
- ``stance_width`` toward the data's own lateral foot distance (measured from the reference
  when the trainer attaches it: 0.086 m on the filtered default data) and ``reference_pose``
  toward the data's joint angles at the clock's phase and the commanded speed.

Measured from scratch (run w16, ``data/amp/tracked.h5``, 1,700 iterations, 10.4 M steps,
1.71 h): co-trained style 0.393 / policy accuracy 0.960 over the last 10 % (w11, the
``cpu-walk`` run: 0.997); fresh discriminators on the deterministic policy 0.959 / 0.916 at
input noise 0.1 / 0.6; flat 0.076, grid 0.084, yaw 0.182 rad/s, duty 0.85 / 0.83 against the
data's 0.73 / 0.74, 12.3 W, sim-to-sim gap 0."""

PRESETS: dict[str, TrainConfig] = {
    "cpu-smoke": TrainConfig(
        num_iterations=20,
        checkpoint_every=10,
        network=NetworkConfig(policy_hidden=(128, 64), value_hidden=(128, 64)),
        ppo=PPOConfig(num_envs=32, unroll_length=16, num_minibatches=4, num_epochs=4),
        amp=AmpConfig(hidden=(256, 128), batch_size=256, num_minibatches=2,
                      replay_size=8192, replay_insert=512),
    ),
    "cpu-walk": CPU_WALK,
    "cpu-walk-tracked": dataclasses.replace(
        CPU_WALK, env_overrides=TRACKED_WALK_ENV_OVERRIDES,
        amp=dataclasses.replace(WALK_AMP, speed_matched_data=True)),
    "cpu-track": TrainConfig(
        env="wildrobot_track",
        num_iterations=800,
        checkpoint_every=50,
        network=NetworkConfig(policy_hidden=(256, 128, 64), value_hidden=(256, 128, 64),
                              init_action_std=0.3, max_action_std=0.3,
                              final_max_action_std=0.1, anneal_iterations=(300, 700)),
        ppo=PPOConfig(num_envs=256, unroll_length=24, num_minibatches=4, num_epochs=4,
                      entropy_coef=0.001, discount=0.95),
        amp=AmpConfig(enabled=False),
    ),
    "gpu": TrainConfig(
        num_iterations=5000,
        checkpoint_every=250,
        eval_every=50,
        eval_envs=256,
        eval_steps=500,
        env_overrides=WALK_ENV_OVERRIDES,
        network=dataclasses.replace(WALK_NETWORK, policy_hidden=(512, 256, 128),
                                    value_hidden=(512, 256, 128),
                                    anneal_iterations=(1250, 2500)),
        ppo=PPOConfig(num_envs=8192, unroll_length=24, num_minibatches=4, num_epochs=5,
                      entropy_coef=0.002),
        amp=dataclasses.replace(WALK_AMP, hidden=(1024, 512), batch_size=8192,
                                replay_size=1_000_000, replay_insert=100_000,
                                style_ramp_iterations=(1750, 3250)),
    ),
}


def preset(name: str) -> TrainConfig:
    """The named preset; unknown names list the valid ones."""
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}; valid presets: {', '.join(PRESETS)}")
    return PRESETS[name]


def apply_overrides(config: TrainConfig, assignments: Sequence[str]) -> TrainConfig:
    """Apply ``key=value`` strings (``ppo.num_envs=64``, ``amp.enabled=false``,
    ``env.some_key=1.5``); values are parsed as YAML scalars/lists and typed strictly by the
    one config builder (:func:`robots.config.replace_config`). ``env.*`` keys go into
    ``env_overrides``, which the environment's own config checks when it is built."""
    values: dict[str, Any] = {}
    env_values: dict[str, Any] = {}
    for assignment in assignments:
        key, sep, raw = assignment.partition("=")
        if not sep:
            raise ConfigError(f"--set {assignment!r}: expected key=value")
        key = key.strip()
        name, dot, env_key = key.partition(".")
        if name == "env" and dot:
            env_values[env_key] = yaml.safe_load(raw)
        else:
            values[key] = yaml.safe_load(raw)
    if env_values:
        config = dataclasses.replace(config, env_overrides=tuple(sorted(
            {**dict(config.env_overrides), **env_values}.items())))
    return replace_config(config, values, where="config")


def config_from_dict(values: dict[str, Any]) -> TrainConfig:
    """Rebuild a :class:`TrainConfig` from :meth:`TrainConfig.to_dict` output (a checkpoint's
    ``meta.json``), through the same strict builder."""
    values = dict(values)
    overrides = values.pop("env_overrides", {}) or {}
    config = build_config(TrainConfig, values, where="checkpoint config")
    return dataclasses.replace(config, env_overrides=tuple(sorted(overrides.items())))


def env_overrides_dict(config: TrainConfig) -> dict[str, Any]:
    """``env_overrides`` (dotted keys) as the nested dict ``training.envs.load`` takes."""
    return nest_dotted(dict(config.env_overrides))


def load_env(config: TrainConfig) -> Any:
    """The environment ``config`` names, with its ``env_overrides`` (dotted keys, typed by the
    environment's config builder)."""
    from training import envs  # here: MJX is heavy, and not every config user needs it

    return envs.load(config.env, dict(config.env_overrides))
