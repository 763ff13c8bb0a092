"""Foot contacts: detection on the human, pinned robot feet during contact, contact-safe smoothing.

- :func:`detect_contacts` labels each human sole point (heel, toe) in contact when it is near
  the floor and nearly still, then removes flicker (short gaps filled, short contacts dropped).
- :func:`plan_foot` turns a foot's free target poses into contact-aware ones: while a sole
  point is in contact its robot site is pinned at a fixed floor position (set when the contact
  starts), the foot keeps the heading it landed with, has zero roll, and pitches only about the
  pinned point (heel strike: toes come down; push-off: heel comes up). When the pinned point
  lifts while the other still touches, the pin passes to the other point at its current place,
  so the foot never jumps.
- :func:`lowpass_outside_contacts` low-pass filters joint trajectories only where that cannot
  move a pinned foot: a leg's joints are filtered while its foot swings (faded in and out
  around contacts), the upper body always, the floating base never.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from scipy.ndimage import binary_closing, binary_dilation, gaussian_filter1d

from retarget.human import HumanMotion
from retarget.targets import FootPoses, PoseTrajectory
from robots.rotations import quat_mul, quat_rotate, quat_unwrap

NO_ANCHOR, HEEL_ANCHOR, TOE_ANCHOR = 0, 1, 2
# Gaussian -3 dB point: |H(f)| = exp(-(2 pi f sigma)^2 / 2) = 1/sqrt(2) at f = this / sigma.
_GAUSSIAN_CUTOFF_TIMES_SIGMA = np.sqrt(np.log(2.0)) / (2.0 * np.pi)


@dataclass(frozen=True)
class ContactConfig:
    """Contact detection and pinning (lengths and speeds at robot scale, after scaling).

    Attributes:
        height_m: A sole point can be in contact only below this height [m].
        speed_mps: ... and only while slower than this [m/s].
        min_frames: Contacts shorter than this many frames are dropped.
        max_gap_frames: Gaps up to this many frames inside a contact are filled.
        flatten_per_frame: Once both sole points touch, this fraction of the remaining foot
            pitch is removed per frame (the foot settles flat over a few frames, no slap).
        smoothing_s: Heights and speeds are measured on the sole points low-passed with a
            Gaussian of this standard deviation [s] (mocap noise would read as motion).
        swing_clearance_m: A foot not in contact is kept at least this high (its lowest sole
            site) [m]: a swinging foot grazing the floor would slide on it.
        clearance_ramp_frames: The clearance grows linearly over this many frames after a
            lift-off and shrinks over as many before a touch-down (a foot cannot jump
            ``swing_clearance_m`` in one frame: a full clearance at the frame next to a contact
            spiked the leg joints by 0.2-0.4 rad for that frame); 0 applies it at once.
    """

    BOUNDS: ClassVar[dict[str, str]] = {
        "height_m": ">= 0", "speed_mps": ">= 0", "min_frames": ">= 1",
        "flatten_per_frame": "[0, 1]", "smoothing_s": ">= 0", "swing_clearance_m": ">= 0",
        "clearance_ramp_frames": ">= 0"}

    height_m: float = 0.015
    speed_mps: float = 0.2
    min_frames: int = 3
    max_gap_frames: int = 2
    flatten_per_frame: float = 0.5
    smoothing_s: float = 0.03
    swing_clearance_m: float = 0.018
    clearance_ramp_frames: int = 3


@dataclass(frozen=True)
class SmoothingConfig:
    """Low-pass filters: of the human motion before IK, and contact-safe of the IK result.

    Attributes:
        input_cutoff_hz: -3 dB frequency of the Gaussian low-pass applied to the human joint
            positions and rotations before anything else [Hz] (mocap jitter would otherwise
            reach the robot); 0 disables it. Contacts are pinned after it, so it cannot make
            feet slide.
        cutoff_hz: -3 dB frequency of the contact-safe low-pass of the IK result [Hz]; 0
            disables it.
        contact_margin_s: The output filter fades out this long before a contact and in after
            it [s].
    """

    BOUNDS: ClassVar[dict[str, str]] = {
        "input_cutoff_hz": ">= 0", "cutoff_hz": ">= 0", "contact_margin_s": ">= 0"}

    input_cutoff_hz: float = 8.0
    cutoff_hz: float = 8.0
    contact_margin_s: float = 0.06


@dataclass
class FootPlan:
    """Contact-aware targets of one foot over a clip.

    Attributes:
        body: Target pose of the foot body [T] (contact-edited).
        anchor: [T] int8, the pinned sole site: 0 none, 1 heel, 2 toe.
        anchor_position: [T, 3] where the pinned site is held (NaN while none) [m].
        contact: [T, 2] bool, heel and toe contact labels.
    """

    body: PoseTrajectory
    anchor: np.ndarray
    anchor_position: np.ndarray
    contact: np.ndarray


def swing_clearance(pinned: np.ndarray, config: ContactConfig) -> np.ndarray:
    """[T] per-frame swing clearance of a foot pinned on ``pinned`` [T] bool frames [m]:
    ``swing_clearance_m`` scaled by the distance in frames to the nearest pinned frame over
    ``clearance_ramp_frames`` (capped at 1), 0 on pinned frames; a clip with no contact
    gets the full clearance everywhere."""
    frames = np.arange(pinned.shape[0])
    pinned_frames = np.flatnonzero(pinned)
    if config.clearance_ramp_frames == 0 or pinned_frames.size == 0:
        return np.where(pinned, 0.0, config.swing_clearance_m)
    after = np.searchsorted(pinned_frames, frames)
    next_pin = pinned_frames[np.minimum(after, pinned_frames.size - 1)]
    last_pin = pinned_frames[np.maximum(after - 1, 0)]
    distance = np.minimum(np.abs(next_pin - frames), np.abs(frames - last_pin))
    return config.swing_clearance_m * np.minimum(distance / config.clearance_ramp_frames, 1.0)


def detect_contacts(points: np.ndarray, fps: float, config: ContactConfig) -> np.ndarray:
    """Contact labels of sole points from height and speed.

    Args:
        points: [T, P, 3] sole point positions (floor at z = 0) [m].
        fps: Frame rate [Hz].
        config: Thresholds and clean-up.

    Returns:
        [T, P] bool.
    """
    num_frames = points.shape[0]
    if num_frames < 2:
        return points[..., 2] < config.height_m
    sigma = config.smoothing_s * fps
    if sigma > 0:
        points = gaussian_filter1d(points, sigma=sigma, axis=0, mode="nearest")
    speed = np.linalg.norm(np.gradient(points, axis=0), axis=-1) * fps
    raw = (points[..., 2] < config.height_m) & (speed < config.speed_mps)
    return np.stack([_clean_mask(raw[:, p], config) for p in range(raw.shape[1])], axis=1)


def _clean_mask(mask: np.ndarray, config: ContactConfig) -> np.ndarray:
    """Fill gaps of <= max_gap_frames, then drop runs shorter than min_frames."""
    if config.max_gap_frames > 0:
        structure = np.ones(config.max_gap_frames + 1, dtype=bool)
        # Pad so the closing does not invent contact at the clip ends.
        padded = np.pad(mask, config.max_gap_frames + 1, mode="edge")
        closed = binary_closing(padded, structure=structure)
        mask = closed[config.max_gap_frames + 1: -(config.max_gap_frames + 1)] | mask
    cleaned = mask.copy()
    for start, stop in _runs(mask):
        if stop - start < config.min_frames:
            cleaned[start:stop] = False
    return cleaned


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """[start, stop) of each run of True."""
    edges = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1), strict=True))


def plan_foot(free: FootPoses, contact: np.ndarray, heel_in_body: np.ndarray,
              toe_in_body: np.ndarray, sole_to_body_wxyz: np.ndarray,
              floor_height_m: float, config: ContactConfig) -> FootPlan:
    """Pin the foot during contact (see the module docstring).

    Args:
        free: Contact-unaware target poses of the foot body.
        contact: [T, 2] bool heel and toe contact labels.
        heel_in_body, toe_in_body: [3] robot sole sites in the foot body frame [m].
        sole_to_body_wxyz: [4] rotation from the sole frame (x heel -> toe) to the body frame.
        floor_height_m: Height at which pinned sites are held [m].
        config: Flattening rate.
    """
    num_frames = contact.shape[0]
    sites_body = np.stack([np.zeros(3), heel_in_body, toe_in_body])  # by anchor code
    sites_sole = quat_rotate(sole_to_body_wxyz, sites_body)  # the same points, sole frame
    free_sites = free.body.position[:, None] + quat_rotate(
        free.body.quat[:, None], sites_body[None])  # [T, 3, 3] world, by anchor code
    sole_x = quat_rotate(quat_mul(free.body.quat, _inverse(sole_to_body_wxyz)),
                         np.array([1.0, 0.0, 0.0]))  # [T, 3] free sole direction
    free_yaw = np.arctan2(sole_x[:, 1], sole_x[:, 0])
    free_pitch = np.arcsin(np.clip(sole_x[:, 2], -1.0, 1.0))
    anchor = np.zeros(num_frames, dtype=np.int8)
    anchor_position = np.full((num_frames, 3), np.nan)
    yaw, pitch = np.zeros(num_frames), np.zeros(num_frames)
    pinned, pin = NO_ANCHOR, np.zeros(3)
    for t in range(num_frames):
        heel_down, toe_down = bool(contact[t, 0]), bool(contact[t, 1])
        if not (heel_down or toe_down):
            pinned = NO_ANCHOR
            continue
        if pinned == NO_ANCHOR:  # touch-down: pin where the free target puts the site
            pinned = HEEL_ANCHOR if heel_down else TOE_ANCHOR
            yaw[t], pitch[t] = free_yaw[t], free_pitch[t]
            pin = free_sites[t, pinned].copy()
            pin[2] = floor_height_m
        else:
            yaw[t], pitch[t] = yaw[t - 1], pitch[t - 1]
            if not (heel_down if pinned == HEEL_ANCHOR else toe_down):
                # the pinned point lifts while the other touches: hand the pin over in place
                other = TOE_ANCHOR if pinned == HEEL_ANCHOR else HEEL_ANCHOR
                pin = pin + _rotate_yaw_pitch(yaw[t - 1], pitch[t - 1],
                                              sites_sole[other] - sites_sole[pinned])
                pin[2] = floor_height_m
                pinned = other
        if heel_down and toe_down:
            pitch[t] *= 1.0 - config.flatten_per_frame
        elif pinned == HEEL_ANCHOR:  # toes may only come down to the floor, not through it
            pitch[t] = max(free_pitch[t], 0.0)
        else:
            pitch[t] = min(free_pitch[t], 0.0)
        anchor[t] = pinned
        anchor_position[t] = pin
    body_position = free.body.position.copy()
    body_quat = free.body.quat.copy()
    rows = anchor != NO_ANCHOR
    quat = quat_mul(_sole_quat(yaw[rows], pitch[rows]), sole_to_body_wxyz)
    body_quat[rows] = quat
    body_position[rows] = anchor_position[rows] - quat_rotate(quat, sites_body[anchor[rows]])
    swing = ~rows
    if config.swing_clearance_m > 0 and swing.any():
        lowest = free_sites[swing, 1:, 2].min(axis=1)
        body_position[swing, 2] += np.maximum(
            floor_height_m + swing_clearance(rows, config)[swing] - lowest, 0.0)
    return FootPlan(body=PoseTrajectory(position=body_position, quat=body_quat), anchor=anchor,
                    anchor_position=anchor_position, contact=contact.astype(bool))


def _sole_quat(yaw: np.ndarray, pitch: np.ndarray) -> np.ndarray:
    """[N, 4] sole frames: heading ``yaw``, toe elevation ``pitch`` (positive: toes up), no roll.

    The rotation is Rz(yaw) Ry(-pitch), multiplied out.
    """
    c1, s1 = np.cos(0.5 * yaw), np.sin(0.5 * yaw)
    c2, s2 = np.cos(-0.5 * pitch), np.sin(-0.5 * pitch)
    return np.stack([c1 * c2, -s1 * s2, c1 * s2, s1 * c2], axis=-1)


def _rotate_yaw_pitch(yaw: float, pitch: float, vector: np.ndarray) -> np.ndarray:
    """``vector`` [3] rotated by Rz(yaw) Ry(-pitch) (scalar math: this runs per frame)."""
    cp, sp, cy, sy = np.cos(pitch), np.sin(pitch), np.cos(yaw), np.sin(yaw)
    x = cp * vector[0] - sp * vector[2]
    z = sp * vector[0] + cp * vector[2]
    return np.array([cy * x - sy * vector[1], sy * x + cy * vector[1], z])


def _inverse(quat: np.ndarray) -> np.ndarray:
    return quat * np.array([1.0, -1.0, -1.0, -1.0])


def gaussian_sigma_frames(cutoff_hz: float, fps: float) -> float:
    """Standard deviation [frames] of the Gaussian whose -3 dB point is ``cutoff_hz``."""
    return _GAUSSIAN_CUTOFF_TIMES_SIGMA * fps / cutoff_hz


def lowpass_human(human: HumanMotion, cutoff_hz: float) -> HumanMotion:
    """Gaussian low-pass of a body model's positions and rotations (quaternions made
    sign-continuous, filtered per component, renormalized); unchanged for cutoff <= 0."""
    if cutoff_hz <= 0 or human.num_frames < 3:
        return human
    sigma = gaussian_sigma_frames(cutoff_hz, human.fps)
    positions = gaussian_filter1d(human.positions, sigma=sigma, axis=0, mode="nearest")
    rotations = gaussian_filter1d(quat_unwrap(human.rotations, axis=0), sigma=sigma, axis=0,
                                  mode="nearest")
    rotations /= np.linalg.norm(rotations, axis=-1, keepdims=True)
    return dataclasses.replace(human, positions=positions, rotations=rotations)


def swing_weight(contact: np.ndarray, fps: float, config: SmoothingConfig) -> np.ndarray:
    """[T] in [0, 1]: 1 while a foot is well clear of contact, fading to 0 around contacts.

    Args:
        contact: [T] bool, the foot (any sole point) in contact.
    """
    margin = max(1, round(config.contact_margin_s * fps))
    near_contact = binary_dilation(contact, structure=np.ones(2 * margin + 1, dtype=bool))
    weight = (~near_contact).astype(float)
    # The fade: smoothing the hard weight then zeroing it again near contacts keeps it 0 there.
    weight = gaussian_filter1d(weight, sigma=margin / 2.0, mode="nearest")
    weight[near_contact] = 0.0
    return weight


def lowpass_outside_contacts(qpos: np.ndarray, fps: float, config: SmoothingConfig,
                             leg_columns: list[np.ndarray], leg_contact: list[np.ndarray],
                             upper_body_columns: np.ndarray) -> np.ndarray:
    """Gaussian low-pass of joint angles where it cannot move a pinned foot.

    Args:
        qpos: [T, nq] IK result.
        fps: Frame rate [Hz].
        config: Cut-off and margins.
        leg_columns: Per leg, the qpos columns of its joints.
        leg_contact: Per leg, [T] bool, its foot in contact.
        upper_body_columns: qpos columns filtered everywhere (no foot below them).

    Returns:
        [T, nq] filtered copy (the floating base untouched).
    """
    if config.cutoff_hz <= 0 or qpos.shape[0] < 3:
        return qpos.copy()
    sigma = gaussian_sigma_frames(config.cutoff_hz, fps)
    smoothed = qpos.copy()
    if len(upper_body_columns):
        smoothed[:, upper_body_columns] = gaussian_filter1d(
            qpos[:, upper_body_columns], sigma=sigma, axis=0, mode="nearest")
    for columns, contact in zip(leg_columns, leg_contact, strict=True):
        weight = swing_weight(contact, fps, config)[:, None]
        filtered = gaussian_filter1d(qpos[:, columns], sigma=sigma, axis=0, mode="nearest")
        smoothed[:, columns] = qpos[:, columns] + weight * (filtered - qpos[:, columns])
    return smoothed
