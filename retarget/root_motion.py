"""Root motion from the kinematics: where a gait's pelvis goes, and feet that clear the floor.

Under the skeleton body model: forward kinematics with zero translation, then the root is moved
so that the lowest foot point (the stance foot's pivot: heel, then toe) stays fixed in the
world, and lifted so that the lowest foot point touches the floor. So the stance foot does not
slide and the pelvis bob follows from the legs. A swing foot that would touch down early gets a
little extra knee/hip flexion (a few Gauss-Newton steps, smoothed). The amplitude that realises
a target speed at a given cadence is found by simulating straight gait cycles on a grid of
amplitudes (``calibrate_stride``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from scipy.ndimage import gaussian_filter1d, maximum_filter1d

from retarget.body_model_base import forward_kinematics
from retarget.gait_curves import GaitDrive, GaitStyle, gait_rotations, leg_phases
from retarget.human import SMPLX_BODY_JOINTS, SMPLX_PARENTS
from retarget.skeleton import SkeletonBodyModel
from robots.rotations import matrix_to_axis_angle

_CALIBRATION_AMPLITUDES = np.linspace(0.0, 1.6, 17)
_CALIBRATION_SAMPLES_PER_CYCLE = 80
_CALIBRATION_STRIDE_HZ = 0.9  # only sets the time scale of the clearance smoothing

_LEG_CHAIN: tuple[int, ...] = tuple(
    SMPLX_BODY_JOINTS.index(name)
    for name in ("pelvis", "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle",
                 "right_ankle", "left_foot", "right_foot")
)
_CLEARANCE_M = 0.012  # swing foot above the stance foot, mid-swing (people: about 1-2 cm)
_CLEARANCE_ITERATIONS = 4
_FLEXION_STEP_RAD = 0.05
_MAX_EXTRA_FLEXION_RAD = np.deg2rad(30.0)
_SMOOTHING_S = 0.03


def relative_foot_points(model: SkeletonBodyModel, local: np.ndarray) -> np.ndarray:
    """FOOT_POINTS [T, 4, 3] in the world with the root at the origin, from rotations [T,22,3,3].

    Only the pelvis-to-toes chains are evaluated.
    """
    frames = local.shape[0]
    chain = list(_LEG_CHAIN)
    parents = [-1] + [chain.index(SMPLX_PARENTS[joint]) for joint in chain[1:]]
    rotations, positions = forward_kinematics(
        local[:, chain], model.rest_joints[chain], parents, np.zeros((frames, 3))
    )
    anchors = [chain.index(joint) for joint in model.foot_point_parents]
    offsets = model.foot_point_offsets[..., None]
    return positions[:, anchors] + (rotations[:, anchors] @ offsets)[..., 0]


def clearance_target(phase: np.ndarray, amplitude: np.ndarray, stance: float) -> np.ndarray:
    """Minimum height [T] m of a swing foot above the other foot: zero in stance, at toe-off
    and at heel strike, _CLEARANCE_M in mid-swing (less for very short steps)."""
    progress = np.clip((phase - stance) / (1.0 - stance), 0.0, 1.0)
    ramp = np.clip(np.minimum(progress / 0.15, (0.9 - progress) / 0.15), 0.0, 1.0)
    scale = np.clip(amplitude / 0.2, 0.0, 1.0)
    return np.where(phase >= stance, _CLEARANCE_M * scale * ramp, 0.0)


def lift_swing_feet(
    model: SkeletonBodyModel, drive: GaitDrive, style: GaitStyle
) -> tuple[np.ndarray, np.ndarray]:
    """Extra swing flexion [T, 2] that keeps each swing foot ``clearance_target`` above the
    other foot, and the resulting local rotations [T, 22, 3, 3].

    Joint-angle curves scaled to short or long steps do not always clear the floor exactly
    when people do; a few Gauss-Newton steps on knee (and half as much hip) flexion fix that,
    smoothed in time so the correction has no kinks.
    """
    frames = drive.phase.shape[0]
    phases = leg_phases(drive)
    extra = np.zeros((frames, 2))
    targets = np.stack(
        [clearance_target(phases[:, leg], drive.amplitude, style.curves.stance_fraction)
         for leg in range(2)], axis=-1,
    )
    constrained = targets > 0.0  # mid-swing; landing may come a little early or late
    local = gait_rotations(drive, style, extra, upper_body=False)
    sigma_frames = _SMOOTHING_S / max(float(np.median(np.diff(drive.time_s))), 1e-6)
    for _ in range(_CLEARANCE_ITERATIONS):
        lowest = relative_foot_points(model, local)[:, :, 2].reshape(frames, 2, 2).min(axis=2)
        deficit = np.where(constrained, targets - (lowest - lowest[:, ::-1]), 0.0)  # [T, 2]
        if np.all(deficit <= 1e-4):
            break
        step = np.zeros((frames, 2))
        for leg in range(2):
            probe = extra.copy()
            probe[:, leg] += _FLEXION_STEP_RAD
            probed = relative_foot_points(
                model, gait_rotations(drive, style, probe, upper_body=False)
            )
            probed_low = probed[:, 2 * leg : 2 * leg + 2, 2].min(axis=1)
            slope = np.maximum((probed_low - lowest[:, leg]) / _FLEXION_STEP_RAD, 0.05)
            step[:, leg] = np.clip(deficit[:, leg], 0.0, None) / slope
        extra = np.clip(extra + _widen_and_smooth(step, sigma_frames), 0.0,
                        _MAX_EXTRA_FLEXION_RAD)
        local = gait_rotations(drive, style, extra, upper_body=False)
    return extra, gait_rotations(drive, style, extra)


def _widen_and_smooth(values: np.ndarray, sigma_frames: float) -> np.ndarray:
    """Running maximum over +-2 sigma then Gaussian smoothing, along axis 0 of [T, K]."""
    radius = max(1, int(np.ceil(2.0 * sigma_frames)))
    widened = maximum_filter1d(values, size=2 * radius + 1, axis=0, mode="nearest")
    return gaussian_filter1d(widened, sigma=max(sigma_frames, 0.5), axis=0, mode="nearest")


def root_translation(feet: np.ndarray) -> np.ndarray:
    """Root translation [T, 3] that pins the lowest foot point and keeps it on the floor.

    feet: FOOT_POINTS [T, 4, 3] with the root at the origin. Over each frame step the root
    moves opposite to the horizontal motion of the foot point that is lowest at the start of
    the step, so that point does not slide; the height puts the lowest point at z = 0.
    """
    frames = feet.shape[0]
    pivot = np.argmin(feet[:, :, 2], axis=1)  # [T]
    steps = np.arange(frames - 1)
    pivot_motion = feet[steps + 1, pivot[:-1], :2] - feet[steps, pivot[:-1], :2]
    horizontal = np.concatenate([np.zeros((1, 2)), -np.cumsum(pivot_motion, axis=0)])
    height = -np.min(feet[:, :, 2], axis=1)
    return np.concatenate([horizontal, height[:, None]], axis=1)


def gait_motion(
    model: SkeletonBodyModel, drive: GaitDrive, style: GaitStyle
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pose and root motion of a gait: root_orient [T, 3], body_pose [T, 21, 3] axis-angle,
    trans [T, 3] m (starting at the origin)."""
    _, local = lift_swing_feet(model, drive, style)
    trans = root_translation(relative_foot_points(model, local))
    axis_angles = matrix_to_axis_angle(local)
    return axis_angles[:, 0], axis_angles[:, 1:], trans


@dataclass
class StrideCalibration:
    """Stride length (m per gait cycle) as a function of amplitude, for one style."""

    amplitudes: np.ndarray
    stride_m: np.ndarray

    def amplitude_for(self, stride_m: np.ndarray) -> np.ndarray:
        """Amplitude giving ``stride_m`` [...] (linear interpolation, clamped to the grid)."""
        return np.interp(stride_m, self.stride_m, self.amplitudes)


def calibrate_stride(model: SkeletonBodyModel, style: GaitStyle) -> StrideCalibration:
    """Stride length per grid amplitude: two straight gait cycles per amplitude, all in one
    batch; the second cycle of each is measured (the first settles the clearance smoothing)."""
    style = replace(style, idle_sway_deg=0.0)
    samples = _CALIBRATION_SAMPLES_PER_CYCLE
    block = 2 * samples + 1
    phase = np.linspace(0.0, 2.0, block)
    count = len(_CALIBRATION_AMPLITUDES)
    drive = GaitDrive(
        phase=np.tile(phase, count),
        amplitude=np.repeat(_CALIBRATION_AMPLITUDES, block),
        heading_rad=np.zeros(count * block),
        time_s=np.tile(phase, count) / _CALIBRATION_STRIDE_HZ,
    )
    _, _, trans = gait_motion(model, drive, style)
    starts = np.arange(count) * block + samples
    strides = np.linalg.norm(trans[starts + samples, :2] - trans[starts, :2], axis=1)
    return StrideCalibration(_CALIBRATION_AMPLITUDES, np.maximum.accumulate(strides))
