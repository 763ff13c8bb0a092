"""Synthetic robot motions with known analytic answers, shared by the AMP and environment tests.

``AnalyticWalk`` describes a root that moves at a constant forward speed in its own heading
while turning at a constant yaw rate at a fixed height, with every joint a sinusoid (left and
right legs half a cycle apart). ``analytic_walk`` samples it and returns the exact velocities,
so a test can compare a converter's finite differences against the closed form.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

import robots
from robots.motion import RobotMotion, write_motion
from robots.spec import RobotSpec


@dataclass(frozen=True)
class AnalyticWalk:
    """Parameters of the analytic motion.

    Attributes:
        forward_speed_mps: Root speed along its own heading (x axis) [m/s].
        yaw_rate_rps: Constant turning rate [rad/s] (0 allowed).
        height_m: Constant root height [m]; about 0.49 makes the feet touch down and lift off.
        initial_yaw_rad: Heading at t = 0 [rad].
        gait_hz: Frequency of every joint sinusoid [Hz].
        joint_amplitude_rad: Largest joint amplitude [rad]; smaller near a joint limit.
    """

    forward_speed_mps: float = 0.4
    yaw_rate_rps: float = 0.3
    height_m: float = 0.49
    initial_yaw_rad: float = 0.2
    gait_hz: float = 1.0
    joint_amplitude_rad: float = 0.25


def joint_sinusoids(spec: RobotSpec, walk: AnalyticWalk) -> tuple[np.ndarray, ...]:
    """Per joint (centre [n], amplitude [n], phase [n]); every value stays inside its limits."""
    centre = spec.default_joint_angles()
    lower, upper = spec.joint_range_array().T
    centre = np.clip(centre, lower + 0.05, upper - 0.05)
    room = np.minimum(centre - lower, upper - centre) * 0.9
    amplitude = np.minimum(walk.joint_amplitude_rad, room)
    phase = np.array([np.pi if n.startswith("right_") else 0.0 for n in spec.joint_names])
    phase += 0.3 * np.arange(len(spec.joint_names))  # no two joints identical
    return centre, amplitude, phase


def analytic_walk(spec: RobotSpec, times: np.ndarray,
                  walk: AnalyticWalk = AnalyticWalk()) -> tuple[np.ndarray, np.ndarray]:
    """Exact configurations and velocities of the analytic motion.

    Args:
        times: [T] seconds.
    Returns:
        qpos [T, nq] and qvel [T, nv] (MuJoCo convention: world linear, local angular).
    """
    v, w = walk.forward_speed_mps, walk.yaw_rate_rps
    yaw = walk.initial_yaw_rad + w * times
    if abs(w) > 1e-12:
        x = v / w * (np.sin(yaw) - np.sin(walk.initial_yaw_rad))
        y = -v / w * (np.cos(yaw) - np.cos(walk.initial_yaw_rad))
    else:
        x, y = v * np.cos(yaw) * times, v * np.sin(yaw) * times
    z = np.full_like(times, walk.height_m)
    quat = np.stack([np.cos(yaw / 2), 0 * yaw, 0 * yaw, np.sin(yaw / 2)], axis=1)
    centre, amplitude, phase = joint_sinusoids(spec, walk)
    omega = 2 * np.pi * walk.gait_hz
    angle = omega * times[:, None] + phase
    joints = centre + amplitude * np.sin(angle)
    joint_vel = amplitude * omega * np.cos(angle)
    qpos = np.concatenate([np.stack([x, y, z], 1), quat, joints], axis=1)
    lin_vel = np.stack([v * np.cos(yaw), v * np.sin(yaw), 0 * yaw], axis=1)
    ang_vel = np.stack([0 * yaw, 0 * yaw, np.full_like(yaw, w)], axis=1)
    qvel = np.concatenate([lin_vel, ang_vel, joint_vel], axis=1)
    return qpos, qvel


def synthetic_motion(spec: RobotSpec, fps: float, duration_s: float,
                     walk: AnalyticWalk = AnalyticWalk(), source: str = "synthetic") -> RobotMotion:
    """The analytic motion sampled at ``fps`` for ``duration_s`` as a :class:`RobotMotion`."""
    num_frames = int(round(duration_s * fps)) + 1
    qpos, _ = analytic_walk(spec, np.arange(num_frames) / fps, walk)
    return RobotMotion(
        qpos=qpos, human_joints=np.zeros((num_frames, 1, 3)), fps=float(fps), robot=spec.name,
        joint_names=spec.joint_names, source=source, source_sha256="0" * 64,
        body_model="skeleton", retarget_params={"synthetic": True}, quality={})


def write_synthetic_motions(directory: str | Path, spec: RobotSpec,
                            fps_list: tuple[float, ...] = (30.0, 60.0, 100.0, 120.0),
                            durations_s: tuple[float, ...] = (2.0,),
                            seed: int = 0) -> list[Path]:
    """Write one analytic motion per (fps, duration) combination, with varied walk parameters.

    Files are named ``walk_<i>_<fps>hz.h5``. Returns their paths in writing order.
    """
    rng = np.random.default_rng(seed)
    directory = Path(directory)
    paths = []
    index = 0
    for duration_s in durations_s:
        for fps in fps_list:
            walk = AnalyticWalk(
                forward_speed_mps=float(rng.uniform(0.1, 0.6)),
                yaw_rate_rps=float(rng.uniform(-0.5, 0.5)),
                height_m=float(rng.uniform(0.475, 0.5)),
                initial_yaw_rad=float(rng.uniform(-np.pi, np.pi)),
                gait_hz=float(rng.uniform(0.8, 1.6)),
                joint_amplitude_rad=float(rng.uniform(0.1, 0.3)))
            path = directory / f"walk_{index}_{int(fps)}hz.h5"
            write_motion(path, synthetic_motion(spec, fps, duration_s, walk, source=str(path)))
            paths.append(path)
            index += 1
    return paths


def write_synthetic_dataset(path: str | Path, robot: robots.Robot, num_clips: int = 4,
                            duration_s: float = 2.0, mirror: bool = False,
                            seed: int = 0) -> Path:
    """A merged AMP dataset (DESIGN 4.5) of analytic walks, written to ``path``.

    Converts in memory (no CLI), so it costs a few milliseconds per clip.
    """
    from amp.clipfile import layout_json
    from amp.convert import ConvertConfig, convert_with_mirror
    from amp.merge import MergeConfig, merge_features, write_merged

    rng = np.random.default_rng(seed)
    config = ConvertConfig(mirror=mirror)
    clips, states = [], []
    for i in range(num_clips):
        walk = AnalyticWalk(forward_speed_mps=float(rng.uniform(0.1, 0.6)),
                            yaw_rate_rps=float(rng.uniform(-0.5, 0.5)),
                            gait_hz=float(rng.uniform(0.8, 1.6)))
        motion = synthetic_motion(robot.spec, 50.0, duration_s, walk)
        converted = convert_with_mirror(motion, robot, config, f"walk_{i}")
        clips += [(c.name, c.features) for c in converted]
        states += [(c.qpos, c.qvel) for c in converted]
    data = merge_features(clips, config.fps, robot.name, layout_json(robot.spec.amp_joint_names),
                          MergeConfig(), states=states)
    write_merged(path, data)
    return Path(path)


def corrupt_file(path: str | Path) -> Path:
    """Overwrite ``path`` with bytes that are not HDF5."""
    path = Path(path)
    path.write_bytes(b"this is not an HDF5 file\x00\x01\x02")
    return path
