"""Contact detection, pinned feet, and the contact-safe low-pass."""

from __future__ import annotations

import numpy as np
import pytest

from retarget.contacts import (
    HEEL_ANCHOR,
    NO_ANCHOR,
    TOE_ANCHOR,
    ContactConfig,
    SmoothingConfig,
    detect_contacts,
    lowpass_outside_contacts,
    plan_foot,
    swing_clearance,
)
from retarget.targets import FootPoses, PoseTrajectory
from robots.rotations import quat_from_yaw, quat_rotate, quat_yaw

FPS = 50.0
HEEL = np.array([-0.035, 0.0, -0.05])  # WildRobot sole sites in the foot body frame
TOE = np.array([0.075, 0.0, -0.05])
IDENTITY = np.array([1.0, 0.0, 0.0, 0.0])


def test_detects_a_planted_point_and_not_a_moving_or_high_one():
    frames = 60
    points = np.zeros((frames, 3, 3))
    points[:, 1, 0] = np.arange(frames) * 0.02  # on the floor but sliding at 1 m/s
    points[:, 2, 2] = 0.05  # still but 5 cm up
    contact = detect_contacts(points, FPS, ContactConfig())
    assert contact[:, 0].all()
    assert not contact[:, 1].any()
    assert not contact[:, 2].any()


def test_flicker_is_removed():
    config = ContactConfig(min_frames=3, max_gap_frames=3, smoothing_s=0.0)
    frames = 40
    height = np.full(frames, 0.1)
    height[5:20] = 0.0
    height[11] = 0.1  # a spike inside a contact: frames 10..12 look moving, the gap is filled
    height[30] = 0.0  # a one-frame touch: dropped
    points = np.zeros((frames, 1, 3))
    points[:, 0, 2] = height
    contact = detect_contacts(points, FPS, config)[:, 0]
    expected = np.zeros(frames, dtype=bool)
    expected[6:19] = True  # frames 5 and 19 still move (central differences)
    assert np.array_equal(contact, expected)
    strict = detect_contacts(points, FPS, ContactConfig(min_frames=3, max_gap_frames=0,
                                                        smoothing_s=0.0))[:, 0]
    assert not strict[10:13].any() and strict[6:10].all() and strict[13:19].all()


def test_mocap_noise_does_not_read_as_motion():
    rng = np.random.default_rng(0)
    frames = 200
    points = np.zeros((frames, 1, 3))
    points[100:, 0, 0] = np.arange(100) * 0.02  # planted, then sliding away at 1 m/s
    points[100:, 0, 2] = 0.005
    noisy = points + rng.normal(scale=0.006, size=points.shape)  # 6 mm jitter
    raw = detect_contacts(noisy, FPS, ContactConfig(smoothing_s=0.0))[:, 0]
    filtered = detect_contacts(noisy, FPS, ContactConfig())[:, 0]
    assert filtered[5:95].all() and not filtered[105:].any()
    assert raw[5:95].mean() < filtered[5:95].mean()


def _walking_foot(frames: int, yaw: float) -> FootPoses:
    """A foot body moving forward at 0.3 m/s with a slow yaw drift, sole 5 cm below it."""
    forward = np.array([np.cos(yaw), np.sin(yaw), 0.0])
    position = np.outer(np.arange(frames) * 0.3 / FPS, forward) + [0.0, 0.0, 0.05]
    quat = quat_from_yaw(yaw + 0.002 * np.arange(frames))
    return FootPoses(body=PoseTrajectory(position=position, quat=quat),
                     sole_points=np.zeros((frames, 2, 3)))


def _sites(plan, site: np.ndarray) -> np.ndarray:
    frames = len(plan.anchor)
    return plan.body.position + quat_rotate(plan.body.quat, np.broadcast_to(site, (frames, 3)))


def test_pinned_site_holds_still_on_the_floor_and_the_pin_hands_over():
    frames = 40
    contact = np.zeros((frames, 2), dtype=bool)
    contact[5:20, 0] = True  # heel down 5..19
    contact[10:30, 1] = True  # toe down 10..29 (heel lifts at 20: the pin goes to the toe)
    plan = plan_foot(_walking_foot(frames, 0.4), contact, HEEL, TOE, IDENTITY, 0.0, ContactConfig())
    assert np.array_equal(plan.anchor[:5], [NO_ANCHOR] * 5)
    assert (plan.anchor[5:20] == HEEL_ANCHOR).all()
    assert (plan.anchor[20:30] == TOE_ANCHOR).all()
    heel, toe = _sites(plan, HEEL), _sites(plan, TOE)
    assert np.allclose(heel[5:20], heel[5])  # exactly still
    assert heel[5, 2] == pytest.approx(0.0)
    assert np.allclose(toe[20:30], toe[20])
    assert toe[20, 2] == pytest.approx(0.0, abs=1e-12)
    # the hand-over does not move the toe: it is where the heel-pinned flat foot had it
    assert np.allclose(toe[19], toe[20], atol=1e-12)
    # heading held from touch-down, no roll; the toe flattens onto the floor while both touch
    assert np.allclose(quat_yaw(plan.body.quat[5:30]), 0.4 + 0.002 * 5)
    assert abs(toe[19, 2]) < 1e-6
    # outside contact the free targets pass through, only raised to the swing clearance: this
    # free sole is at the floor (5 cm below the body), so the body goes up by the clearance,
    # ramped in over the 3 frames after the lift-off at 30
    free = _walking_foot(frames, 0.4).body.position[30:]
    assert np.allclose(plan.body.position[30:, :2], free[:, :2])
    clearance = ContactConfig().swing_clearance_m * np.minimum(np.arange(1, 11) / 3, 1.0)
    assert np.allclose(plan.body.position[30:, 2], free[:, 2] + clearance)
    unraised = plan_foot(_walking_foot(frames, 0.4), contact, HEEL, TOE, IDENTITY, 0.0,
                         ContactConfig(swing_clearance_m=0.0))
    assert np.allclose(unraised.body.position[30:], free)


def test_swing_clearance_ramps_out_of_and_into_each_contact():
    pinned = np.zeros(14, dtype=bool)
    pinned[[0, 1, 9, 10]] = True  # down 0-1, swing 2-8, down 9-10, swing 11-13
    full = 0.018
    config = ContactConfig(swing_clearance_m=full, clearance_ramp_frames=3)
    expected = full * np.array([0, 0, 1, 2, 3, 3, 3, 2, 1, 0, 0, 1, 2, 3]) / 3
    np.testing.assert_allclose(swing_clearance(pinned, config), expected, atol=1e-15)
    at_once = ContactConfig(swing_clearance_m=full, clearance_ramp_frames=0)
    np.testing.assert_array_equal(swing_clearance(pinned, at_once), np.where(pinned, 0.0, full))
    # a short swing never reaches the full height: 2 frames between contacts
    short = np.array([True, False, False, True])
    np.testing.assert_allclose(swing_clearance(short, config), [0, full / 3, full / 3, 0])
    # no contact anywhere: nothing to ramp from, the full clearance throughout
    np.testing.assert_array_equal(swing_clearance(np.zeros(5, dtype=bool), config), full)


def test_pitch_follows_the_human_about_the_pin_and_never_through_the_floor():
    frames = 20
    foot = _walking_foot(frames, 0.0)
    pitch = np.linspace(0.3, -0.3, frames)  # toes up, then toes down (heel pinned)
    foot.body.quat[:] = np.stack([np.cos(-pitch / 2), 0 * pitch, np.sin(-pitch / 2), 0 * pitch], 1)
    contact = np.zeros((frames, 2), dtype=bool)
    contact[:, 0] = True
    plan = plan_foot(foot, contact, HEEL, TOE, IDENTITY, 0.0, ContactConfig())
    heel, toe = _sites(plan, HEEL), _sites(plan, TOE)
    assert np.allclose(heel, heel[0])
    assert toe[:, 2].min() >= -1e-12  # toes down past level: clamped at the floor
    assert toe[0, 2] == pytest.approx(0.11 * np.sin(0.3))


def test_lowpass_leaves_stance_legs_and_base_alone():
    frames, rng = 100, np.random.default_rng(0)
    qpos = rng.normal(size=(frames, 10))
    leg_contact = np.zeros(frames, dtype=bool)
    leg_contact[:50] = True
    smoothed = lowpass_outside_contacts(qpos, FPS, SmoothingConfig(cutoff_hz=5.0),
                                        [np.array([7, 8])], [leg_contact], np.array([9]))
    assert np.array_equal(smoothed[:, :7], qpos[:, :7])  # floating base untouched
    assert np.array_equal(smoothed[:50, 7:9], qpos[:50, 7:9])  # stance: untouched
    assert np.std(np.diff(smoothed[70:, 7])) < 0.5 * np.std(np.diff(qpos[70:, 7]))  # swing
    assert np.std(np.diff(smoothed[:, 9])) < 0.5 * np.std(np.diff(qpos[:, 9]))  # upper body
    # a convex filter: never outside the input's range (so never past a joint limit)
    assert smoothed[:, 7:].min() >= qpos[:, 7:].min() and smoothed[:, 7:].max() <= qpos[:, 7:].max()
