"""The data's joint angles as a function of gait phase and speed: a pose template.

The discriminator leans on the joint positions more than on any other feature group
(``amp/reliance/joint_pos``), and a reward can only ask for a pose it can name. The template
names it from the reference itself: over every stepping frame (one with a counted gait cycle,
:func:`training.envs.kinematics.reference_gait_phase`), each AMP joint angle is fitted by
least squares as a truncated Fourier series in the left leg's phase φ whose coefficients are
linear in the forward speed v (averaged over 1 s)::

    q_j(φ, v) = Σ_b (a_jb + c_jb · (v − v₀)) · basis_b(φ),
    basis(φ) = [1, cos 2πφ, sin 2πφ, …, cos 2πKφ, sin 2πKφ]

so the walking task can score the policy's angles against the data's at the clock's phase and
the commanded speed (``rewards.weights.reference_pose``). The series is periodic and smooth,
so the target has no seam at a touchdown.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from amp.features import layout_slices
from amp.speed_match import windowed_speed
from training.envs import kinematics as kin

JOINT_POS = layout_slices()["joint_pos"]
"""Slice of the AMP frame holding the joint angles a template describes."""
FORWARD_SPEED = layout_slices()["root_lin_vel"].start
DEFAULT_ORDER = 4
"""Harmonics per joint: a stride's angles are smooth enough that the 5th adds < 1 % of
explained variance on the default data."""


@dataclass(frozen=True)
class TemplateFit:
    """How well a fitted template describes the frames it was fitted on.

    Attributes:
        frames: Stepping frames used.
        rms_residual_rad: [J] root-mean-square residual per joint [rad].
        explained_variance: [J] share of each joint's variance over those frames explained.
        total_explained: share of the variance summed over the joints explained.
    """

    frames: int
    rms_residual_rad: np.ndarray
    explained_variance: np.ndarray
    total_explained: float


def basis(phase: Any, speed: Any, speed_center: float, order: int, xp: Any = np) -> Any:
    """Regressors [..., 2·(2K+1)] of phase [...] (cycles) and speed [...] [m/s]: the Fourier
    basis, then the same times (speed − ``speed_center``)."""
    angle = 2.0 * np.pi * phase[..., None] * xp.arange(1, order + 1)
    fourier = xp.concatenate([xp.ones_like(phase)[..., None], xp.cos(angle), xp.sin(angle)],
                             axis=-1)
    return xp.concatenate([fourier, fourier * (speed - speed_center)[..., None]], axis=-1)


def template_pose(coefficients: Any, speed_center: Any, phase: Any, speed: Any,
                  xp: Any = np) -> Any:
    """The template's joint angles [..., J] at phase [...] and forward speed [...].

    Args:
        coefficients: [2·(2K+1), J] from :func:`fit_pose_template`.
        speed_center: [] the fit's v₀ [m/s].
    """
    order = (coefficients.shape[0] // 2 - 1) // 2
    return basis(phase, speed, speed_center, order, xp) @ coefficients


def fit_pose_template(joint_pos: np.ndarray, phase: np.ndarray, speed: np.ndarray,
                      stepping: np.ndarray, order: int = DEFAULT_ORDER
                      ) -> tuple[np.ndarray, float, TemplateFit]:
    """Least-squares template of ``joint_pos`` [N, J] over the ``stepping`` [N] frames.

    Args:
        phase: [N] left-leg phase of each frame [cycles]; speed: [N] forward speed [m/s].
    Returns:
        (coefficients [2·(2K+1), J], speed_center v₀ [m/s], fit report).
    Raises:
        ValueError: fewer than twice as many stepping frames as regressors (no gait to fit).
    """
    rows = np.flatnonzero(np.asarray(stepping, bool))
    width = 2 * (2 * order + 1)
    if rows.size < 2 * width:
        raise ValueError(f"a pose template needs at least {2 * width} stepping frames; the "
                         f"data has {rows.size} (no walking with counted gait cycles)")
    target = np.asarray(joint_pos, np.float64)[rows]
    speed_center = float(np.mean(np.asarray(speed, np.float64)[rows]))
    regressors = basis(np.asarray(phase, np.float64)[rows], np.asarray(speed, np.float64)[rows],
                       speed_center, order)
    coefficients, *_ = np.linalg.lstsq(regressors, target, rcond=None)
    residual = target - regressors @ coefficients
    variance = np.maximum(np.var(target, axis=0), 1e-12)
    fit = TemplateFit(frames=int(rows.size),
                      rms_residual_rad=np.sqrt(np.mean(residual**2, axis=0)),
                      explained_variance=1.0 - np.var(residual, axis=0) / variance,
                      total_explained=float(1.0 - np.sum(np.var(residual, axis=0))
                                            / np.sum(variance)))
    return coefficients.astype(np.float32), speed_center, fit


def fit_dataset_template(features: np.ndarray, clip_length: np.ndarray, fps: float,
                         order: int = DEFAULT_ORDER, phase: np.ndarray | None = None
                         ) -> tuple[np.ndarray, float, TemplateFit]:
    """:func:`fit_pose_template` of a merged dataset's AMP frames [N, 29].

    The phase is each frame's left-leg phase (``kinematics.reference_gait_phase``, computed
    here unless given [N]); the stepping frames are those inside a counted gait cycle (phase
    > 0); the speed is the forward speed averaged over 1 s within the clip, as the
    speed-matched draws average it.

    Raises:
        ValueError: too few stepping frames.
    """
    features = np.asarray(features)
    lengths = np.asarray(clip_length, np.int64)
    if phase is None:
        phase = kin.features_gait_phase(features, lengths, fps)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    speed = windowed_speed(features[:, FORWARD_SPEED], starts, lengths, max(1, round(fps)))
    return fit_pose_template(features[:, JOINT_POS], phase, speed, phase > 0, order)
