"""Gait curves: the joint angles of human walking (or a grounded jog) as a function of gait phase.

Thigh flexion/extension, the double-hump knee, the foot's heel-strike / flat / heel-rise /
push-off pitch (the ankle angle, with its rocker, is what joins shank and foot), toes kept level
at push-off, pelvis rotation, obliquity and tilt, lateral sway over the stance foot,
counter-phase arm swing with thorax counter-rotation. Curves are shape-preserving periodic
interpolants (PCHIP) through key points (degrees, gait-cycle phase from heel strike) shaped
after the normal-gait averages in Winter's and Perry's textbooks; they are scaled by a per-frame
amplitude and driven by a per-frame cadence (``GaitDrive``), with per-clip style variation
(``draw_style``).

The output is local joint rotations of the SMPL-X body (``gait_rotations``); where the root goes
follows from them in ``retarget.root_motion``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from scipy.interpolate import PchipInterpolator

from retarget.human import NUM_BODY_JOINTS, SMPLX_BODY_JOINTS

# Maps the SMPL-X canonical frame (Y up, facing +Z, left +X) into the Z-up world facing +X.
CANONICAL_TO_WORLD = np.array([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])


def smoothstep(x: np.ndarray) -> np.ndarray:
    """0 below 0, 1 above 1, and the cubic 3x^2 - 2x^3 between (flat at both ends): [...]."""
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


@dataclass(frozen=True)
class GaitCurves:
    """Key points (phase in [0, 1] from heel strike, degrees) of one leg's sagittal angles.

    thigh: thigh flexion from vertical (+ = knee forward); knee: knee flexion; foot_pitch:
    the foot's pitch in the walking frame (+ = toes down; 0 = sole level); the ankle angle is
    whatever joins shank and foot (mid-stance dorsiflexion, push-off plantarflexion follow);
    stance_fraction: share of the cycle the foot is loaded.
    """

    thigh: tuple[tuple[float, float], ...]
    knee: tuple[tuple[float, float], ...]
    foot_pitch: tuple[tuple[float, float], ...]
    stance_fraction: float
    cadence_spm_at_zero: float  # steps per minute: cadence = at_zero + per_mps * speed
    cadence_spm_per_mps: float


WALK_CURVES = GaitCurves(
    thigh=((0.0, 22.0), (0.1, 20.0), (0.3, 3.0), (0.5, -15.0), (0.6, -12.0), (0.7, 2.0),
           (0.85, 24.0), (1.0, 22.0)),
    knee=((0.0, 4.0), (0.13, 17.0), (0.3, 7.0), (0.42, 5.0), (0.5, 10.0), (0.6, 38.0),
          (0.72, 65.0), (0.8, 52.0), (0.88, 28.0), (0.95, 8.0), (1.0, 4.0)),
    foot_pitch=((0.0, -18.0), (0.08, 0.0), (0.38, 0.0), (0.5, 15.0), (0.6, 45.0), (0.7, 40.0),
                (0.8, 15.0), (0.9, -10.0), (1.0, -18.0)),
    stance_fraction=0.6,
    cadence_spm_at_zero=62.0,
    cadence_spm_per_mps=38.0,
)
# A grounded jog (duty factor 0.5, no flight phase): one foot always carries the body, so the
# root can follow from the stance foot as in walking.
JOG_CURVES = GaitCurves(
    thigh=((0.0, 25.0), (0.25, 0.0), (0.45, -20.0), (0.5, -20.0), (0.65, 5.0), (0.8, 35.0),
           (0.92, 32.0), (1.0, 25.0)),
    knee=((0.0, 20.0), (0.15, 40.0), (0.4, 22.0), (0.5, 30.0), (0.7, 95.0), (0.82, 75.0),
          (0.93, 30.0), (1.0, 20.0)),
    foot_pitch=((0.0, -10.0), (0.06, 0.0), (0.25, 0.0), (0.38, 15.0), (0.5, 50.0), (0.6, 60.0),
                (0.75, 40.0), (0.88, 5.0), (0.95, -8.0), (1.0, -10.0)),
    stance_fraction=0.5,
    cadence_spm_at_zero=110.0,
    cadence_spm_per_mps=25.0,
)


@dataclass(frozen=True)
class GaitStyle:
    """Per-clip style, degrees unless named otherwise (drawn from the clip's rng)."""

    curves: GaitCurves = WALK_CURVES
    cadence_scale: float = 1.0
    knee_scale: float = 1.0
    pelvis_rotation_deg: float = 4.0
    pelvis_obliquity_deg: float = 3.0
    pelvis_tilt_deg: float = 1.5
    sway_deg: float = 2.5
    arm_swing_deg: float = 15.0
    arm_abduction_deg: float = 8.0
    elbow_flexion_deg: float = 15.0
    trunk_lean_deg: float = 2.0
    thorax_counter_rotation: float = 0.6  # share of pelvis rotation the thorax undoes
    idle_sway_deg: float = 1.0  # standing: slow weight shift and lean


def draw_style(kind: str, rng: np.random.Generator) -> GaitStyle:
    """Random per-clip variation around the population average for ``kind``."""
    style = GaitStyle(
        cadence_scale=rng.uniform(0.94, 1.06),
        knee_scale=rng.uniform(0.92, 1.08),
        pelvis_rotation_deg=rng.uniform(3.0, 6.0),
        pelvis_obliquity_deg=rng.uniform(2.0, 4.0),
        pelvis_tilt_deg=rng.uniform(1.0, 2.5),
        sway_deg=rng.uniform(1.5, 3.5),
        arm_swing_deg=rng.uniform(12.0, 20.0),
        arm_abduction_deg=rng.uniform(5.0, 12.0),
        elbow_flexion_deg=rng.uniform(10.0, 25.0),
        trunk_lean_deg=rng.uniform(0.0, 4.0),
        idle_sway_deg=rng.uniform(0.6, 1.4),
    )
    if kind == "jog":
        style = replace(
            style,
            curves=JOG_CURVES,
            arm_swing_deg=rng.uniform(22.0, 30.0),
            elbow_flexion_deg=rng.uniform(75.0, 95.0),
            trunk_lean_deg=rng.uniform(6.0, 10.0),
            sway_deg=rng.uniform(1.0, 2.0),
        )
    return style


# --------------------------------------------------------------------------------------------
# small rotation builders (canonical frame: X left, Y up, Z forward)


def _rot_x(angle_rad: np.ndarray) -> np.ndarray:
    c, s = np.cos(angle_rad), np.sin(angle_rad)
    one, zero = np.ones_like(c), np.zeros_like(c)
    return np.stack([np.stack([one, zero, zero], -1), np.stack([zero, c, -s], -1),
                     np.stack([zero, s, c], -1)], -2)


def _rot_y(angle_rad: np.ndarray) -> np.ndarray:
    c, s = np.cos(angle_rad), np.sin(angle_rad)
    one, zero = np.ones_like(c), np.zeros_like(c)
    return np.stack([np.stack([c, zero, s], -1), np.stack([zero, one, zero], -1),
                     np.stack([-s, zero, c], -1)], -2)


def _rot_z(angle_rad: np.ndarray) -> np.ndarray:
    c, s = np.cos(angle_rad), np.sin(angle_rad)
    one, zero = np.ones_like(c), np.zeros_like(c)
    return np.stack([np.stack([c, -s, zero], -1), np.stack([s, c, zero], -1),
                     np.stack([zero, zero, one], -1)], -2)


def _mirror(rotation: np.ndarray) -> np.ndarray:
    """The left-right mirror image (x -> -x) of rotation matrices [..., 3, 3]."""
    flip = np.diag([-1.0, 1.0, 1.0])
    return flip @ rotation @ flip


def _inverse(rotation: np.ndarray) -> np.ndarray:
    return np.swapaxes(rotation, -1, -2)


# --------------------------------------------------------------------------------------------
# gait pose


@dataclass(frozen=True)
class GaitDrive:
    """Per-frame drive of the gait generator, all [T].

    phase: left-leg gait phase in cycles (0 = left heel strike, unwrapped); amplitude:
    sagittal amplitude scale (0 = standing); heading_rad: walking direction about world +Z
    (0 = world +X); time_s: clock of the idle motion and of the clearance smoothing.
    """

    phase: np.ndarray
    amplitude: np.ndarray
    heading_rad: np.ndarray
    time_s: np.ndarray


class PeriodicCurve:
    """A shape-preserving (PCHIP, no overshoot) periodic curve through (phase, degrees) points.

    Evaluates to radians at any phase (cycles; taken modulo 1).
    """

    def __init__(self, points: tuple[tuple[float, float], ...]) -> None:
        phase, degrees = np.array(points, dtype=float).T
        if phase[0] != 0.0 or phase[-1] != 1.0 or degrees[0] != degrees[-1]:
            raise ValueError("periodic curve must start at phase 0, end at 1, with equal values")
        # one cycle of padding on each side makes the interpolant periodic
        padded_phase = np.concatenate([phase[:-1] - 1.0, phase[:-1], phase + 1.0])
        padded_values = np.append(np.tile(degrees[:-1], 3), degrees[-1])
        self._curve = PchipInterpolator(padded_phase, np.deg2rad(padded_values))

    def __call__(self, phase: np.ndarray) -> np.ndarray:
        return self._curve(np.mod(phase, 1.0))


@dataclass
class _Splines:
    thigh: PeriodicCurve
    knee: PeriodicCurve
    foot_pitch: PeriodicCurve
    stance_fraction: float

    @classmethod
    def of(cls, curves: GaitCurves) -> _Splines:
        return cls(PeriodicCurve(curves.thigh), PeriodicCurve(curves.knee),
                   PeriodicCurve(curves.foot_pitch), curves.stance_fraction)


def leg_phases(drive: GaitDrive) -> np.ndarray:
    """Gait phase in [0, 1) of the left and right leg: [T, 2]."""
    return np.stack([np.mod(drive.phase, 1.0), np.mod(drive.phase + 0.5, 1.0)], axis=-1)


def foot_headings(drive: GaitDrive, stance_fraction: float) -> np.ndarray:
    """Heading [T, 2] rad of the left and right foot in the world.

    A foot keeps one heading while it carries the body (so it does not twist on the floor
    when the walker turns: the hip rotates instead) and turns to its next heading during
    swing. Each stance's heading is the body's heading in the middle of that stance.
    """
    headings = np.empty((drive.phase.shape[0], 2))
    for leg, offset in enumerate((0.0, 0.5)):
        unwrapped = drive.phase + offset
        cycle = np.floor(unwrapped)
        progress = np.clip((unwrapped - cycle - stance_fraction) / (1.0 - stance_fraction), 0, 1)
        mid_stance = 0.5 * stance_fraction
        this_stance = np.interp(cycle + mid_stance, unwrapped, drive.heading_rad)
        next_stance = np.interp(cycle + 1.0 + mid_stance, unwrapped, drive.heading_rad)
        headings[:, leg] = this_stance + smoothstep(progress) * (next_stance - this_stance)
    return headings


def gait_rotations(
    drive: GaitDrive,
    style: GaitStyle,
    extra_flexion: np.ndarray | None = None,
    upper_body: bool = True,
) -> np.ndarray:
    """Local joint rotations [T, 22, 3, 3] (root first, in the world) of the gait.

    extra_flexion: [T, 2] rad per leg (left, right) of added swing-leg flexion (the knee by
    this much, the thigh by half), used to keep the swing foot off the floor; upper_body:
    False leaves spine, head and arms at identity (enough for foot positions).
    """
    splines = _Splines.of(style.curves)
    frames = drive.phase.shape[0]
    amplitude = drive.amplitude
    phases = leg_phases(drive)
    cycle = 2.0 * np.pi * phases[:, 0]
    deg = np.deg2rad
    if extra_flexion is None:
        extra_flexion = np.zeros((frames, 2))

    # idle motion (standing): slow lean and weight shift, faded out while walking
    idle = np.clip(1.0 - 3.0 * amplitude, 0.0, 1.0)
    idle_lean = idle * deg(style.idle_sway_deg) * np.sin(2 * np.pi * drive.time_s / 7.3)
    idle_shift = idle * deg(style.idle_sway_deg) * np.sin(2 * np.pi * drive.time_s / 5.1)

    pelvis_yaw = -amplitude * deg(style.pelvis_rotation_deg) * np.cos(cycle)
    pelvis_obliquity = amplitude * deg(style.pelvis_obliquity_deg) * np.sin(cycle + 0.1 * np.pi)
    pelvis_tilt = amplitude * deg(style.pelvis_tilt_deg) * np.cos(2.0 * cycle)
    pelvis_local = _rot_y(pelvis_yaw) @ _rot_z(pelvis_obliquity) @ _rot_x(pelvis_tilt)
    world = _rot_z(drive.heading_rad) @ CANONICAL_TO_WORLD
    undo_pelvis = _inverse(pelvis_local)

    local = np.broadcast_to(np.eye(3), (frames, NUM_BODY_JOINTS, 3, 3)).copy()
    local[:, 0] = world @ pelvis_local
    index = SMPLX_BODY_JOINTS.index
    foot_yaw = foot_headings(drive, style.curves.stance_fraction) - drive.heading_rad[:, None]
    for leg, side in enumerate(("left", "right")):
        # the right leg is built as a left one and mirrored: lateral tilts and yaws that must
        # keep their world direction change sign first
        sign = 1.0 if side == "left" else -1.0
        hip, knee, ankle, toe = _leg(splines, style, phases[:, leg], amplitude, idle_lean,
                                     sign * idle_shift, extra_flexion[:, leg],
                                     sign * foot_yaw[:, leg])
        if side == "right":
            hip, knee, ankle, toe = (_mirror(r) for r in (hip, knee, ankle, toe))
        local[:, index(f"{side}_hip")] = undo_pelvis @ hip
        local[:, index(f"{side}_knee")] = knee
        local[:, index(f"{side}_ankle")] = ankle
        local[:, index(f"{side}_foot")] = toe
    if not upper_body:
        return local

    # trunk: undo the pelvis (thorax stays near the heading), keep some counter-rotation, lean
    lean = deg(style.trunk_lean_deg) * np.clip(amplitude, 0.0, 1.0)
    counter = -style.thorax_counter_rotation * pelvis_yaw
    spine_step = _rot_y(counter / 3.0) @ _rot_x(lean / 3.0)
    local[:, index("spine1")] = undo_pelvis @ spine_step
    local[:, index("spine2")] = spine_step
    local[:, index("spine3")] = spine_step
    head_turn = idle * deg(10.0) * np.sin(2 * np.pi * drive.time_s / 9.7)
    local[:, index("neck")] = _rot_y(-counter / 2.0) @ _rot_x(-lean / 2.0)
    local[:, index("head")] = _rot_y(head_turn) @ _rot_x(-lean / 2.0)

    for leg, side in enumerate(("left", "right")):
        shoulder, elbow = _arm(style, phases[:, leg], amplitude)
        if side == "right":
            shoulder, elbow = _mirror(shoulder), _mirror(elbow)
        local[:, index(f"{side}_shoulder")] = shoulder
        local[:, index(f"{side}_elbow")] = elbow
    return local


def _leg(
    splines: _Splines,
    style: GaitStyle,
    phase: np.ndarray,
    amplitude: np.ndarray,
    idle_lean: np.ndarray,
    idle_shift: np.ndarray,
    extra_flexion: np.ndarray,
    foot_yaw: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Left-leg rotations [T, 3, 3]: hip (in the heading frame), knee, ankle, toes.

    foot_yaw: [T] rad, the foot's heading minus the body's (the leg turns about the vertical
    through the hip by this much).
    """
    # short steps keep relatively more knee flexion than long ones, as people do
    positive = np.clip(amplitude, 0.0, None)
    thigh = amplitude * splines.thigh(phase) + idle_lean + 0.5 * extra_flexion
    knee = np.sqrt(positive) * style.knee_scale * splines.knee(phase) + extra_flexion
    foot_pitch = amplitude * splines.foot_pitch(phase)  # + = toes down, walking frame
    # frontal plane: stance-leg adduction moves the pelvis over the stance foot (sway)
    stance = splines.stance_fraction
    in_stance = phase < stance
    bump = np.where(in_stance, np.sin(np.pi * np.clip(phase / stance, 0.0, 1.0)) ** 2, 0.0)
    frontal = -np.clip(amplitude, 0.0, 1.0) * np.deg2rad(style.sway_deg) * bump + idle_shift
    # X-rotation angles: hip flexion = -X, knee flexion = +X, toes down = +X
    hip = _rot_y(foot_yaw) @ _rot_z(frontal) @ _rot_x(-thigh)
    knee_rotation = _rot_x(knee)
    # ankle: whatever joins the shank to a foot at the prescribed pitch with a level sole
    ankle = _rot_x(thigh - knee) @ _rot_z(-frontal) @ _rot_x(foot_pitch)
    # toes stay level on the floor while the heel rises (push-off), relax during swing
    toe_weight = np.interp(phase, [0.0, 0.2, 0.3, stance + 0.02, stance + 0.12, 1.0],
                           [0.0, 0.0, 1.0, 1.0, 0.0, 0.0])
    toe = _rot_x(-toe_weight * np.clip(foot_pitch, 0.0, None))
    return hip, knee_rotation, ankle, toe


def _arm(
    style: GaitStyle, phase: np.ndarray, amplitude: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Left-arm rotations [T, 3, 3]: shoulder (arm down, swinging), elbow."""
    swing_scale = np.clip(amplitude, 0.0, 1.5)
    # counter-phase: the left arm is forward when the right leg is (left phase 0.5)
    swing = -swing_scale * np.deg2rad(style.arm_swing_deg) * np.cos(2 * np.pi * phase)
    down = np.deg2rad(90.0 - style.arm_abduction_deg)
    shoulder = _rot_x(-swing) @ _rot_z(-down * np.ones_like(phase))
    elbow_flex = np.deg2rad(style.elbow_flexion_deg) * (1.0 + 0.4 * np.sin(2 * np.pi * phase))
    elbow = _rot_y(-elbow_flex * (0.5 + 0.5 * np.clip(amplitude, 0.0, 1.0)))
    return shoulder, elbow
