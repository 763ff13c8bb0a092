"""Per-frame rates of sampled trajectories: how fast a path moves, how fast a heading turns.

Written once for every check that judges a motion frame step by frame step (retarget gates and
IK bounds, conversion's teleport check, BVH lead-in detection, skate metrics), so they all
measure the same thing.
"""

from __future__ import annotations

import numpy as np


def step_speed(points: np.ndarray, fps: float) -> np.ndarray:
    """Speed of each frame step [m/s]: points [T, ..., D] -> [T-1, ...] (norm over the last
    axis of the step, times the frame rate ``fps`` [Hz])."""
    return np.linalg.norm(np.diff(points, axis=0), axis=-1) * fps


def heading_steps(yaw_rad: np.ndarray) -> np.ndarray:
    """Size of each frame step's heading change [rad]: yaw [T] -> [T-1] in [0, pi], wrapped
    (a step from +179 to -179 degrees is 2 degrees, not 358)."""
    return np.abs((np.diff(yaw_rad) + np.pi) % (2 * np.pi) - np.pi)


def yaw_rate(yaw_rad: np.ndarray, fps: float) -> np.ndarray:
    """Absolute turning rate of each frame step [rad/s]: yaw [T] rad -> [T-1]."""
    return heading_steps(yaw_rad) * fps
