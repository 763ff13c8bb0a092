"""The robot-motion file: one retargeted clip as HDF5 (DESIGN.md 4.3).

Datasets: ``qpos`` [T, 7+n] (root xyz [m], root quaternion wxyz, joints in the robot's joint
order [rad]) and ``human_joints`` [T, J, 3] (the scaled targets the IK chased [m]).
Attributes: ``fps``, ``robot``, ``joint_names``, ``source``, ``source_sha256``, ``body_model``,
``schema_version``, and two JSON attributes: ``retarget_params`` and ``quality``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from robots.errors import MotionFileError
from robots.io import atomic_path

SCHEMA_VERSION = 1
_REQUIRED_ATTRS = ("fps", "robot", "joint_names", "source", "source_sha256", "body_model")


@dataclass
class RobotMotion:
    """One retargeted clip.

    Attributes:
        qpos: [T, 7 + num_joints] robot configuration per frame.
        human_joints: [T, J, 3] scaled human keypoints the IK tracked [m].
        fps: Frame rate of ``qpos`` [Hz].
        robot: Robot registry name.
        joint_names: Joint order of ``qpos[:, 7:]``.
        source: Path of the human clip this came from.
        source_sha256: Hash of the source file's bytes.
        body_model: Body model used (``skeleton`` or ``smplx``).
        retarget_params: Parameters that produced this clip (JSON-serializable).
        quality: Retarget quality metrics of this clip (JSON-serializable).
        human_joint_names: Names of the ``human_joints`` points (empty when unknown).
    """

    qpos: np.ndarray
    human_joints: np.ndarray
    fps: float
    robot: str
    joint_names: tuple[str, ...]
    source: str
    source_sha256: str
    body_model: str
    retarget_params: dict[str, Any] = field(default_factory=dict)
    quality: dict[str, Any] = field(default_factory=dict)
    human_joint_names: tuple[str, ...] = ()

    @property
    def num_frames(self) -> int:
        return int(self.qpos.shape[0])

    @property
    def duration_s(self) -> float:
        return (self.num_frames - 1) / self.fps


def write_motion(path: str | Path, motion: RobotMotion) -> None:
    """Write ``motion`` to ``path`` atomically; validates it first (same rules as reading)."""
    _validate(Path(path), motion)
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        f.create_dataset("qpos", data=np.asarray(motion.qpos, dtype=np.float64))
        f.create_dataset("human_joints", data=np.asarray(motion.human_joints, dtype=np.float64))
        f.attrs["schema_version"] = SCHEMA_VERSION
        f.attrs["fps"] = float(motion.fps)
        f.attrs["robot"] = motion.robot
        f.attrs["joint_names"] = json.dumps(list(motion.joint_names))
        f.attrs["source"] = str(motion.source)
        f.attrs["source_sha256"] = motion.source_sha256
        f.attrs["body_model"] = motion.body_model
        f.attrs["retarget_params"] = json.dumps(motion.retarget_params, sort_keys=True)
        f.attrs["quality"] = json.dumps(motion.quality, sort_keys=True)
        f.attrs["human_joint_names"] = json.dumps(list(motion.human_joint_names))


def read_motion(path: str | Path) -> RobotMotion:
    """Read and validate a robot-motion file.

    Raises:
        MotionFileError: unreadable file, missing dataset or attribute, wrong shape, or a
            non-finite value; the message names the file and the problem.
    """
    path = Path(path)
    try:
        f = h5py.File(path, "r")
    except (OSError, ValueError) as exc:
        raise MotionFileError(path, f"cannot open as HDF5 ({exc})") from exc
    with f:
        for name in ("qpos", "human_joints"):
            if name not in f:
                raise MotionFileError(path, f"missing dataset {name!r}")
        missing = [a for a in _REQUIRED_ATTRS if a not in f.attrs]
        if missing:
            raise MotionFileError(path, f"missing attributes {missing}")
        version = int(f.attrs.get("schema_version", SCHEMA_VERSION))
        if version != SCHEMA_VERSION:
            raise MotionFileError(
                path, f"schema_version {version}, this ampkit reads {SCHEMA_VERSION}")
        motion = RobotMotion(
            qpos=f["qpos"][()],
            human_joints=f["human_joints"][()],
            fps=float(f.attrs["fps"]),
            robot=str(f.attrs["robot"]),
            joint_names=tuple(json.loads(f.attrs["joint_names"])),
            source=str(f.attrs["source"]),
            source_sha256=str(f.attrs["source_sha256"]),
            body_model=str(f.attrs["body_model"]),
            retarget_params=json.loads(f.attrs.get("retarget_params", "{}")),
            quality=json.loads(f.attrs.get("quality", "{}")),
            human_joint_names=tuple(json.loads(f.attrs.get("human_joint_names", "[]"))),
        )
    _validate(path, motion)
    return motion


def _validate(path: Path, motion: RobotMotion) -> None:
    qpos, human = np.asarray(motion.qpos), np.asarray(motion.human_joints)
    expected_nq = 7 + len(motion.joint_names)
    if qpos.ndim != 2 or qpos.shape[1] != expected_nq:
        raise MotionFileError(
            path, f"qpos has shape {qpos.shape}, expected [T, {expected_nq}] for "
                  f"{len(motion.joint_names)} joints")
    if qpos.shape[0] < 2:
        raise MotionFileError(path, f"qpos has {qpos.shape[0]} frame(s), need at least 2")
    if human.ndim != 3 or human.shape[0] != qpos.shape[0] or human.shape[2] != 3:
        raise MotionFileError(
            path, f"human_joints has shape {human.shape}, expected [{qpos.shape[0]}, J, 3]")
    for name, array in (("qpos", qpos), ("human_joints", human)):
        if not np.all(np.isfinite(array)):
            bad = np.argwhere(~np.isfinite(array))[0]
            index = tuple(int(i) for i in bad)
            raise MotionFileError(path, f"{name} has a non-finite value at index {index}")
    quat_norm = np.linalg.norm(qpos[:, 3:7], axis=1)
    if np.any(np.abs(quat_norm - 1.0) > 1e-3):
        frame = int(np.argmax(np.abs(quat_norm - 1.0)))
        raise MotionFileError(
            path, f"root quaternion at frame {frame} has norm {quat_norm[frame]:.4f}, not 1")
    if motion.human_joint_names and len(motion.human_joint_names) != human.shape[1]:
        raise MotionFileError(
            path, f"{len(motion.human_joint_names)} human_joint_names for {human.shape[1]} points")
    if not np.isfinite(motion.fps) or motion.fps <= 0:
        raise MotionFileError(path, f"fps must be positive, got {motion.fps}")
