"""The environment contract every training task follows (CONTRACTS.md, "MJX environment").

An environment is a pair of pure functions over :class:`State`: ``reset(rng) -> State`` and
``step(state, action) -> State``, written for ONE environment and batched by the caller with
``jax.vmap``. Both are jit-safe; ``step`` resets a finished episode itself (the returned state is
then the first state of the next episode, while ``reward``, ``done`` and the AMP terminal frame
still describe the step that ended the old one). Domain randomization is sampled in ``reset`` from
its rng and carried in ``State.info``, so a trainer never touches the physics model.

Evaluation, rendering and sim-to-sim run episodes under stated conditions instead: the public
``reset_under(rng, EpisodeConditions)`` holds the command and the physics factors fixed for the
episode and switches the environment's own random events off; pushes then come from the caller
through ``apply_push`` (a schedule passed in, as MuJoCo Playground passes randomization in).
``State.info`` keys other than the ones :class:`State` documents are the environment's own.
"""

from __future__ import annotations

import abc
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from mujoco import mjx

import robots
from amp.dataset import clip_cdf
from amp.features import layout_slices
from training.envs import kinematics as kin
from training.envs.pose_template import fit_dataset_template


@struct.dataclass
class State:
    """One environment's state (every field gains a leading batch axis under ``jax.vmap``).

    Attributes:
        data: MJX physics state; its kinematics (``site_xpos``, ``xpos``) match ``qpos``.
        obs: [observation_size] policy observation.
        privileged_obs: [privileged_observation_size] critic observation (noise-free, plus
            true velocity, contacts and the randomized physics factors).
        reward: [] task reward of the last step (sum of the scaled reward terms).
        done: [] 1.0 when the last step ended the episode (fall or time limit), else 0.0.
        metrics: Every reward term, scaled, by name, plus other scalars; [] each.
        info: Bookkeeping; always holds ``rng``, ``step`` (control steps into the episode),
            ``command`` [3] (vx m/s, vy m/s, yaw rate rad/s), ``truncated`` [] (1.0 when done
            came from the time limit), ``amp_prev_frame`` / ``amp_terminal_frame`` /
            ``amp_frame`` [amp_feature_size] (see ``Env``).
    """

    data: mjx.Data
    obs: jax.Array
    privileged_obs: jax.Array
    reward: jax.Array
    done: jax.Array
    metrics: dict[str, jax.Array]
    info: dict[str, Any]


@struct.dataclass
class ReferenceStates:
    """Robot states an episode may start from (reference-state initialization, RSI).

    Attributes:
        qpos: [N, nq] configurations of every dataset frame (root xyz, root quat wxyz, joints).
        qvel: [N, nv] their velocities (MuJoCo free-joint convention).
        frame_cdf: [N] cumulative probability of starting at each frame (clip weight spread
            evenly over the clip's frames); the last entry is exactly 1.
        clip_first, clip_last: [N] int32 index of the first / last frame of each frame's clip
            (a task that follows a clip must stop at its end).
        foot_contact: [N, 4] the frames' AMP contact labels, or None when not given.
        gait_phase: [N] the left leg's gait phase of each frame as a gait clock counts it
            (``kinematics.reference_gait_phase``: 0 at a left touchdown, 0 where the clip is
            not stepping), or None when the contact labels were not given.
        pose_template: [2·(2K+1), 9] the stepping frames' AMP joint angles as a function of
            gait phase and forward speed (:mod:`training.envs.pose_template`), or None when
            the features were not given or the data holds no counted gait cycles.
        pose_speed_center: that template's v₀ [m/s] (0 without a template).
        pose_explained: share of the stepping frames' joint-angle variance (summed over the
            joints) the template explains (0 without one).
    """

    qpos: jax.Array
    qvel: jax.Array
    frame_cdf: jax.Array
    clip_first: jax.Array
    clip_last: jax.Array
    foot_contact: jax.Array | None = None
    gait_phase: jax.Array | None = None
    pose_template: jax.Array | None = None
    pose_speed_center: float = struct.field(pytree_node=False, default=0.0)
    pose_explained: float = struct.field(pytree_node=False, default=0.0)

    @property
    def num_frames(self) -> int:
        return int(self.qpos.shape[0])

    def draw(self, rng: jax.Array) -> jax.Array:
        """A frame index [] int32, drawn with the ``frame_cdf`` probabilities."""
        index = jnp.searchsorted(self.frame_cdf, jax.random.uniform(rng, ()), side="right")
        return jnp.minimum(index, self.num_frames - 1).astype(jnp.int32)


FOOT_CONTACT_SLICE = layout_slices()["foot_contact"]

NEVER_STEP = 2**30
"""A control step no episode reaches: "never" for command, push and other schedules (the
environment's own and evaluation's)."""


@struct.dataclass
class EpisodeConditions:
    """What an episode started by :meth:`Env.reset_under` is held to (one environment; every
    field gains a leading batch axis under ``jax.vmap``).

    Attributes:
        command: [3] vx [m/s], vy [m/s], yaw rate [rad/s], held for the whole episode.
        factors: The environment's physics-factor pytree (``WildRobotWalk``:
            ``randomization.DomainFactors``, e.g. ``env.nominal_factors()`` with fields
            replaced); applied only when the environment's randomization is enabled.
        reference_frame: [] int32 dataset frame to start from (needs reference states
            attached), or None for the standing start with the usual joint noise.
    """

    command: jax.Array
    factors: Any
    reference_frame: jax.Array | None = None


def reference_states(qpos: Any, qvel: Any, clip_length: Any, clip_weight: Any,
                     features: Any = None, fps: float = 50.0) -> ReferenceStates:
    """:class:`ReferenceStates` from a merged dataset's arrays (numpy in, float32 jax out).

    Args:
        qpos: [N, nq]; qvel: [N, nv]; clip_length: [C] frames per clip; clip_weight: [C].
        features: [N, 29] the frames' AMP features, for their contact labels and gait phases
            (optional).
        fps: The dataset's frame rate [Hz] (the gait phases' clock).
    """
    lengths = np.asarray(clip_length, np.int64)
    weights = np.asarray(clip_weight, np.float64)
    frame_weight = np.repeat(weights / np.maximum(lengths, 1), lengths)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    contact = phase = template = None
    speed_center = explained = 0.0
    if features is not None:
        features = np.asarray(features)
        contact = jnp.asarray(features[:, FOOT_CONTACT_SLICE], jnp.float32)
        frame_phase = kin.features_gait_phase(features, lengths, fps)
        phase = jnp.asarray(frame_phase)
        template, speed_center, explained = _pose_template(features, frame_phase, lengths, fps)
    # The clip sampler's CDF, over frames: from the last positive weight on exactly 1.
    return ReferenceStates(qpos=jnp.asarray(qpos, jnp.float32),
                           qvel=jnp.asarray(qvel, jnp.float32),
                           frame_cdf=jnp.asarray(clip_cdf(frame_weight)),
                           clip_first=jnp.asarray(np.repeat(starts, lengths), jnp.int32),
                           clip_last=jnp.asarray(np.repeat(starts + lengths - 1, lengths),
                                                 jnp.int32),
                           foot_contact=contact, gait_phase=phase, pose_template=template,
                           pose_speed_center=speed_center, pose_explained=explained)


def _pose_template(features: np.ndarray, phase: np.ndarray, lengths: np.ndarray,
                   fps: float) -> tuple[jax.Array | None, float, float]:
    """The stepping frames' pose template, its v₀ and the share of variance it explains
    (None, 0, 0 when nothing steps)."""
    try:
        coefficients, speed_center, fit = fit_dataset_template(features, lengths, fps,
                                                               phase=phase)
    except ValueError:
        return None, 0.0, 0.0
    return jnp.asarray(coefficients), speed_center, fit.total_explained


class Env(abc.ABC):
    """Base class of a training environment.

    AMP frames in ``State.info``: ``amp_prev_frame`` is s_t (before the step),
    ``amp_terminal_frame`` is s_{t+1} reached by the physics (before any auto-reset), and
    ``amp_frame`` is the frame of the returned state (the reset frame when the episode ended),
    which is the next step's ``amp_prev_frame``. So (amp_prev_frame, amp_terminal_frame) is
    always a real transition.

    Attributes:
        observation_size: Length of ``State.obs``.
        privileged_observation_size: Length of ``State.privileged_obs``.
        action_size: Number of actions (one per actuator).
        amp_feature_size: Length of an AMP frame (29).
        control_dt: Seconds per ``step`` call.
        episode_length: Control steps before the time limit ends an episode.
        robot: The robot the task runs on.
        config: The task's typed config.
        needs_reference_states: True for a task that cannot start an episode without a
            dataset's reference states attached (``with_reference_states``).
    """

    needs_reference_states: bool = False

    observation_size: int
    privileged_observation_size: int
    action_size: int
    amp_feature_size: int
    control_dt: float
    episode_length: int
    robot: robots.Robot
    config: Any

    def reference_state_uses(self) -> tuple[str, ...]:
        """The settings (``env.<key>=<value>``) that want a dataset's reference states
        attached (``with_reference_states``); empty when none does."""
        return (f"the {type(self).__name__} task",) if self.needs_reference_states else ()

    def reference_fit_lines(self) -> tuple[str, ...]:
        """What the attached reference states were fitted into (a line each, for the log)."""
        return ()

    @abc.abstractmethod
    def reset(self, rng: jax.Array) -> State:
        """A fresh episode (randomization, command and initial pose drawn from ``rng``)."""

    @abc.abstractmethod
    def step(self, state: State, action: jax.Array) -> State:
        """Advance one control step with ``action`` [action_size]; auto-resets on done."""

    @abc.abstractmethod
    def reset_under(self, rng: jax.Array, conditions: EpisodeConditions) -> State:
        """A fresh episode under ``conditions``: the initial pose (and its joint noise) is drawn
        from ``rng`` exactly as :meth:`reset` draws it, but the command and physics factors are
        the given ones and stay fixed, and the environment starts no pushes of its own. (An
        episode that ends auto-resets into an ordinary :meth:`reset` episode.)"""

    @abc.abstractmethod
    def nominal_factors(self) -> Any:
        """The physics factors that leave the model as modelled (for :class:`EpisodeConditions`)."""

    @abc.abstractmethod
    def apply_push(self, state: State, force_n: jax.Array, steps: jax.Array) -> State:
        """``state`` with a push of ``force_n`` [3] N (world frame) on the root starting now
        and lasting ``steps`` [] control steps (replacing any push in progress)."""


def tree_where(condition: jax.Array, on_true: Any, on_false: Any) -> Any:
    """Leaf-wise ``jnp.where`` of two pytrees of the same structure, for a scalar ``condition``."""
    return jax.tree.map(lambda a, b: jnp.where(condition, a, b), on_true, on_false)
