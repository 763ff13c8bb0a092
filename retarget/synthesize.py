"""Synthesized AMASS-format SMPL-X locomotion clips: the license-free default input.

Each clip is a gait drawn from joint-angle curves of human walking (or a grounded jog): thigh
flexion/extension, the double-hump knee, the foot's heel-strike / flat / heel-rise / push-off
pitch (the ankle angle, with its rocker, is what joins shank and foot), toes kept level at
push-off, pelvis rotation, obliquity and tilt, lateral sway over the stance foot, counter-phase
arm swing with thorax counter-rotation. Curves are shape-preserving periodic interpolants
(PCHIP) through key points (degrees, gait-cycle phase from heel strike) shaped after the
normal-gait averages in Winter's and Perry's textbooks; they are scaled by a per-frame
amplitude and driven by a per-frame cadence, with per-clip variation of speed, cadence (so of
step length) and style.

The root translation is not drawn; it comes from the kinematics, under the skeleton body
model: forward kinematics with zero translation, then the root is moved so that the lowest
foot point (the stance foot's pivot: heel, then toe) stays fixed in the world, and lifted so
that the lowest foot point touches the floor. So the stance foot does not slide and the pelvis
bob follows from the legs. Two corrections keep that honest: a swing foot that would touch
down early gets a little extra knee/hip flexion (a few Gauss-Newton steps, smoothed), and a
foot keeps its heading while it is planted (the hip turns in a curve, not the foot). The
amplitude that realises a target speed at a given cadence is found per clip by simulating
straight gait cycles on a grid of amplitudes.

Output files follow DESIGN 4.1 (poses [T, 165], trans, betas [16], gender, mocap_frame_rate)
and are written byte-for-byte deterministically for a given seed.
"""

from __future__ import annotations

import hashlib
import zipfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import ClassVar

import numpy as np
from scipy.interpolate import PchipInterpolator
from scipy.ndimage import gaussian_filter1d, maximum_filter1d

from retarget.body_models import forward_kinematics
from retarget.human import NUM_BODY_JOINTS, SMPLX_BODY_JOINTS, SMPLX_PARENTS
from retarget.skeleton import SkeletonBodyModel
from robots.io import atomic_path, write_json_atomic
from robots.rotations import matrix_to_axis_angle

SMPLX_POSE_WIDTH = 165
NUM_BETAS = 16
MANIFEST_NAME = "manifest.json"
# Maps the SMPL-X canonical frame (Y up, facing +Z, left +X) into the Z-up world facing +X.
CANONICAL_TO_WORLD = np.array([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)  # fixed zip member timestamps: same seed, same bytes
_CALIBRATION_AMPLITUDES = np.linspace(0.0, 1.6, 17)
_CALIBRATION_SAMPLES_PER_CYCLE = 80
_CALIBRATION_STRIDE_HZ = 0.9  # only sets the time scale of the clearance smoothing


# --------------------------------------------------------------------------------------------
# configuration


@dataclass(frozen=True)
class ClipSpec:
    """One clip to synthesize.

    kind: "walk", "turn", "start_stop", "jog" or "stand"; speed_mps: cruise speed of the
    pelvis (0 for "stand"); yaw_rate_radps: turning rate, + = left (counter-clockwise seen from
    above); duration_s: seconds; fps: frame rate of the written file.
    """

    name: str
    kind: str
    fps: float
    duration_s: float
    speed_mps: float = 0.0
    yaw_rate_radps: float = 0.0


DEFAULT_CLIPS: tuple[ClipSpec, ...] = (
    ClipSpec("walk_slow_01", "walk", 30.0, 6.0, 0.55),
    ClipSpec("walk_slow_02", "walk", 100.0, 6.0, 0.75),
    ClipSpec("walk_medium_01", "walk", 60.0, 6.0, 1.0),
    ClipSpec("walk_medium_02", "walk", 120.0, 6.0, 1.1),
    ClipSpec("walk_medium_03", "walk", 30.0, 6.0, 1.2),
    ClipSpec("walk_fast_01", "walk", 100.0, 5.0, 1.35),
    ClipSpec("walk_fast_02", "walk", 60.0, 5.0, 1.5),
    ClipSpec("turn_left_01", "turn", 120.0, 6.0, 0.9, 0.35),
    ClipSpec("turn_left_02", "turn", 30.0, 6.0, 1.2, 0.5),
    ClipSpec("turn_right_01", "turn", 60.0, 6.0, 0.9, -0.35),
    ClipSpec("turn_right_02", "turn", 100.0, 6.0, 1.2, -0.5),
    ClipSpec("start_stop_01", "start_stop", 120.0, 8.0, 1.0),
    ClipSpec("start_stop_02", "start_stop", 30.0, 8.0, 1.3),
    ClipSpec("jog_01", "jog", 100.0, 4.0, 2.0),
    ClipSpec("stand_01", "stand", 30.0, 6.0),
    ClipSpec("stand_02", "stand", 60.0, 5.0),
)
CLIP_KINDS: tuple[str, ...] = ("walk", "turn", "start_stop", "jog", "stand")


@dataclass(frozen=True)
class SynthesisConfig:
    """The ``synthesize:`` section of params.yaml.

    seed: master seed (per-clip variation is drawn from [seed, clip index]); height_m: body
    height of the skeleton the root motion is derived under, metres; duration_scale:
    multiplies every clip's duration; clips: the clip list (names must be unique).
    """

    BOUNDS: ClassVar[dict[str, str]] = {"height_m": "> 0", "duration_scale": "> 0"}

    seed: int = 0
    height_m: float = 1.75
    duration_scale: float = 1.0
    clips: tuple[ClipSpec, ...] = DEFAULT_CLIPS

    def __post_init__(self) -> None:
        clips = tuple(c if isinstance(c, ClipSpec) else ClipSpec(**c) for c in self.clips)
        object.__setattr__(self, "clips", clips)
        names = [c.name for c in clips]
        if len(set(names)) != len(names):
            raise ValueError(f"synthesize: clip names must be unique, got {names}")
        for clip in clips:
            if clip.kind not in CLIP_KINDS:
                raise ValueError(
                    f"synthesize: clip {clip.name!r} has kind {clip.kind!r}; "
                    f"valid kinds: {', '.join(CLIP_KINDS)}"
                )
            if clip.fps <= 0 or clip.duration_s * self.duration_scale * clip.fps < 2:
                raise ValueError(f"synthesize: clip {clip.name!r} needs fps > 0 and >= 2 frames")
        if self.duration_scale <= 0:
            raise ValueError("synthesize: duration_scale must be positive")


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
        headings[:, leg] = this_stance + _smoothstep(progress) * (next_stance - this_stance)
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


# --------------------------------------------------------------------------------------------
# swing clearance and root motion from the kinematics

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


# --------------------------------------------------------------------------------------------
# one clip


@dataclass
class SynthesizedClip:
    """A synthesized clip: the AMASS arrays and what it was meant to be."""

    spec: ClipSpec
    arrays: dict[str, np.ndarray]
    nominal_speed_mps: float
    frames: int
    seed: tuple[int, int]
    meta: dict[str, float] = field(default_factory=dict)


def speed_profile(spec: ClipSpec, time_s: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Target pelvis speed [T] m/s for the clip."""
    if spec.kind == "stand":
        return np.zeros_like(time_s)
    cruise = spec.speed_mps * rng.uniform(0.95, 1.05)
    if spec.kind == "start_stop":
        duration = time_s[-1]
        rest_s, ramp_s = 1.0, 1.5
        rise = _smoothstep((time_s - rest_s) / ramp_s)
        fall = 1.0 - _smoothstep((time_s - (duration - rest_s - ramp_s)) / ramp_s)
        return cruise * np.minimum(rise, fall)
    # small slow fluctuation, as in overground walking
    wobble = 1.0 + 0.03 * np.sin(2 * np.pi * time_s / rng.uniform(3.0, 6.0) + rng.uniform(0, 6))
    return cruise * wobble


def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def synthesize_clip(spec: ClipSpec, seed: tuple[int, int], height_m: float = 1.75,
                    duration_scale: float = 1.0) -> SynthesizedClip:
    """Synthesize one clip deterministically from ``seed`` ([master seed, clip index])."""
    rng = np.random.default_rng(list(seed))
    model = SkeletonBodyModel(height_m=height_m)
    frames = max(2, int(round(spec.duration_s * duration_scale * spec.fps)) + 1)
    time_s = np.arange(frames) / spec.fps
    style = draw_style(spec.kind, rng)
    speed = speed_profile(spec, time_s, rng)

    curves = style.curves
    cadence_spm = style.cadence_scale * (curves.cadence_spm_at_zero
                                         + curves.cadence_spm_per_mps * speed)
    stride_hz = cadence_spm / 120.0  # two steps per stride
    if spec.kind == "stand":
        amplitude = np.zeros(frames)
    else:
        amplitude = calibrate_stride(model, style).amplitude_for(speed / stride_hz)
    phase = rng.uniform(0.0, 1.0) + np.concatenate(
        [[0.0], np.cumsum(0.5 * (stride_hz[1:] + stride_hz[:-1]) / spec.fps)]
    )
    yaw_rate = _yaw_rate(spec, time_s, rng)
    heading = rng.uniform(-np.pi, np.pi) + np.concatenate(
        [[0.0], np.cumsum(0.5 * (yaw_rate[1:] + yaw_rate[:-1]) / spec.fps)]
    )
    drive = GaitDrive(phase, amplitude, heading, time_s + rng.uniform(0.0, 10.0))
    root_orient, body_pose, trans = gait_motion(model, drive, style)
    trans[:, :2] += rng.uniform(-1.0, 1.0, size=2)

    poses = np.zeros((frames, SMPLX_POSE_WIDTH))
    poses[:, 0:3] = root_orient
    poses[:, 3 : 3 + 3 * (NUM_BODY_JOINTS - 1)] = body_pose.reshape(frames, -1)
    arrays = {
        "poses": poses,
        "trans": trans,
        "betas": np.zeros(NUM_BETAS),
        "gender": np.array("neutral"),
        "mocap_frame_rate": np.array(float(spec.fps)),
        "surface_model_type": np.array("smplx"),
    }
    pelvis_speed = np.linalg.norm(np.diff(trans[:, :2], axis=0), axis=1) * spec.fps
    meta = {
        "mean_cadence_spm": float(np.mean(cadence_spm)) if spec.kind != "stand" else 0.0,
        "max_amplitude": float(np.max(amplitude)),
        "pelvis_speed_mps": float(np.mean(pelvis_speed)),
    }
    return SynthesizedClip(spec, arrays, float(np.mean(speed)), frames, seed, meta)


def _yaw_rate(spec: ClipSpec, time_s: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Turning rate [T] rad/s: ramped in over the first second for turns, a slow wander else."""
    if spec.kind == "turn":
        rate = spec.yaw_rate_radps * rng.uniform(0.9, 1.1)
        return rate * _smoothstep(time_s / 1.0)
    if spec.kind == "stand":
        return np.zeros_like(time_s)
    return 0.05 * np.sin(2 * np.pi * time_s / rng.uniform(4.0, 8.0) + rng.uniform(0, 6))


# --------------------------------------------------------------------------------------------
# writing


def write_npz_deterministic(path: str | Path, arrays: dict[str, np.ndarray]) -> None:
    """Write an uncompressed ``.npz`` (the ``np.savez`` layout) whose bytes depend only on data.

    ``np.savez`` stamps each member with the current time; here every member gets a fixed
    timestamp, so the same arrays always give the same bytes. Written atomically.
    """
    with atomic_path(path) as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED) as archive:
        for key, value in arrays.items():
            info = zipfile.ZipInfo(f"{key}.npy", date_time=_ZIP_EPOCH)
            info.external_attr = 0o644 << 16
            with archive.open(info, "w", force_zip64=True) as member:
                np.lib.format.write_array(member, np.asanyarray(value), allow_pickle=False)


def synthesize(out_dir: str | Path, config: SynthesisConfig = SynthesisConfig()) -> dict:
    """Write every clip of ``config`` as ``<out_dir>/<name>.npz`` plus ``manifest.json``.

    Returns the manifest: per clip name, file, fps, frames, duration, nominal speed (mean
    target pelvis speed, m/s), kind, yaw rate, sha256 of the file.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    entries = []
    for index, spec in enumerate(config.clips):
        clip = synthesize_clip(spec, (config.seed, index), config.height_m,
                               config.duration_scale)
        path = out_dir / f"{spec.name}.npz"
        write_npz_deterministic(path, clip.arrays)
        entries.append({
            "name": spec.name,
            "file": path.name,
            "kind": spec.kind,
            "fps": spec.fps,
            "frames": clip.frames,
            "duration_s": round((clip.frames - 1) / spec.fps, 6),
            "nominal_speed_mps": round(clip.nominal_speed_mps, 6),
            "cruise_speed_mps": spec.speed_mps,
            "yaw_rate_radps": spec.yaw_rate_radps,
            "mean_cadence_spm": round(clip.meta["mean_cadence_spm"], 3),
            "pelvis_speed_mps": round(clip.meta["pelvis_speed_mps"], 6),
            "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
        })
    manifest = {
        "generator": "retarget.synthesize",
        "seed": config.seed,
        "height_m": config.height_m,
        "body_model": "skeleton",
        "num_clips": len(entries),
        "total_duration_s": round(sum(e["duration_s"] for e in entries), 6),
        "clips": entries,
    }
    write_json_atomic(out_dir / MANIFEST_NAME, manifest)
    return manifest
