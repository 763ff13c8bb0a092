"""Physically tracked references (amp.tracking): servos + a root-assist spring in MuJoCo."""

from __future__ import annotations

import numpy as np
import pytest

import robots
from amp.tracking import TrackingConfig, track_reference


@pytest.fixture(scope="module")
def robot():
    return robots.load("wildrobot")


def _still(qpos: np.ndarray, frames: int, nv: int) -> tuple[np.ndarray, np.ndarray]:
    return np.repeat(qpos[None], frames, axis=0), np.zeros((frames, nv))


def test_standing_needs_almost_no_assist_and_keeps_its_contacts(robot):
    qpos, qvel = _still(robot.keyframe_qpos(), 50, robot.model.nv)
    report = track_reference(robot.model, robot.contact_site_ids, qpos, qvel, 50.0)
    record = report.as_record()
    assert record["assist_force_share_of_weight"] < 0.05  # servo sag under load only
    assert record["contact_agreement"] == 1.0 and not record["fell"]
    assert record["root_error_rms_m"] < 0.005


def test_a_reference_hovering_in_the_air_needs_its_weight_as_assist(robot):
    hover = robot.keyframe_qpos()
    hover[2] += 0.3
    qpos, qvel = _still(hover, 100, robot.model.nv)
    report = track_reference(robot.model, robot.contact_site_ids, qpos, qvel, 50.0,
                             TrackingConfig(assist_hz=4.0))
    # held up by the spring alone once settled (no contact, nothing else pushes up)
    assert report.assist_force[-10:] == pytest.approx(np.full(10, report.weight_n), rel=0.02)
    assert report.contact_agreement == 1.0  # neither touches the floor


def test_a_timestep_that_does_not_divide_the_frame_is_refused(robot):
    qpos, qvel = _still(robot.keyframe_qpos(), 3, robot.model.nv)
    with pytest.raises(robots.AmpkitError, match="does not divide"):
        track_reference(robot.model, robot.contact_site_ids, qpos, qvel, 30.0)
