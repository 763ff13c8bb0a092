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

import numpy as np

from robots.errors import MotionFileError
from robots.h5io import LeanReader, open_error_text, write_file
from robots.io import atomic_path

SCHEMA_VERSION = 1
_REQUIRED_ATTRS = ("fps", "robot", "joint_names", "source", "source_sha256", "body_model")
_OPTIONAL_ATTRS = ("schema_version", "retarget_params", "quality", "human_joint_names")


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
    """Write ``motion`` to ``path`` atomically; validates it first (same rules as reading).

    Files carry no timestamps, so the same motion always gives the same bytes.
    """
    _validate(Path(path), motion)
    datasets = {"qpos": np.asarray(motion.qpos, dtype=np.float64),
                "human_joints": np.asarray(motion.human_joints, dtype=np.float64)}
    attrs = {
        "schema_version": SCHEMA_VERSION,
        "fps": float(motion.fps),
        "robot": motion.robot,
        "joint_names": json.dumps(list(motion.joint_names)),
        "source": str(motion.source),
        "source_sha256": motion.source_sha256,
        "body_model": motion.body_model,
        "retarget_params": json.dumps(motion.retarget_params, sort_keys=True),
        "quality": json.dumps(motion.quality, sort_keys=True),
        "human_joint_names": json.dumps(list(motion.human_joint_names)),
    }
    with atomic_path(path) as tmp:
        write_file(tmp, datasets, attrs)


def read_motion(path: str | Path) -> RobotMotion:
    """Read and validate a robot-motion file.

    Raises:
        MotionFileError: unreadable file, missing dataset or attribute, wrong shape, or a
            non-finite value; the message names the file and the problem.
    """
    path = Path(path)
    try:
        reader = LeanReader(path)
    except (OSError, ValueError) as exc:
        raise MotionFileError(path, f"cannot open as HDF5 ({open_error_text(exc)})") from exc
    with reader:
        try:
            motion = _motion_from(reader, path)
        except MotionFileError:
            raise
        except Exception as exc:  # noqa: BLE001 - any malformed content names the file
            raise MotionFileError(path, f"malformed ({exc})") from exc
    _validate(path, motion)
    return motion


def _motion_from(reader: LeanReader, path: Path) -> RobotMotion:
    datasets = {}
    for name in ("qpos", "human_joints"):
        try:
            datasets[name] = reader.dataset(name)
        except KeyError:
            raise MotionFileError(path, f"missing dataset {name!r}") from None
    attrs = {name: reader.attr(name) for name in _OPTIONAL_ATTRS + _REQUIRED_ATTRS
             if reader.has_attr(name)}
    missing = [a for a in _REQUIRED_ATTRS if a not in attrs]
    if missing:
        raise MotionFileError(path, f"missing attributes {missing}")
    version = _number(attrs, "schema_version", path, int, SCHEMA_VERSION)
    if version != SCHEMA_VERSION:
        raise MotionFileError(path, f"schema_version {version}, this ampkit reads {SCHEMA_VERSION}")
    return RobotMotion(
        qpos=datasets["qpos"],
        human_joints=datasets["human_joints"],
        fps=_number(attrs, "fps", path, float),
        robot=str(attrs["robot"]),
        joint_names=tuple(_json_attr(attrs, "joint_names", path, list)),
        source=str(attrs["source"]),
        source_sha256=str(attrs["source_sha256"]),
        body_model=str(attrs["body_model"]),
        retarget_params=_json_attr(attrs, "retarget_params", path, dict, "{}"),
        quality=_json_attr(attrs, "quality", path, dict, "{}"),
        human_joint_names=tuple(_json_attr(attrs, "human_joint_names", path, list, "[]")),
    )


def _number(attrs: dict[str, Any], name: str, path: Path, kind: type,
            default: Any = None) -> Any:
    """Attribute ``name`` as ``kind`` (int or float); a string or array is a MotionFileError."""
    value = attrs.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int | float | np.number):
        raise MotionFileError(path, f"attribute {name!r} is {value!r} "
                                    f"({type(value).__name__}), expected a number")
    if kind is int and float(value) != int(value):
        raise MotionFileError(path, f"attribute {name!r} is {value!r}, expected an integer")
    return kind(value)


def _json_attr(attrs: dict[str, Any], name: str, path: Path, kind: type,
               default: str | None = None) -> Any:
    """JSON attribute ``name`` decoded, checked to be a ``kind`` (list or dict)."""
    raw = attrs.get(name, default)
    try:
        value = json.loads(raw)
    except (TypeError, ValueError) as exc:
        raise MotionFileError(path, f"attribute {name!r} is not valid JSON ({exc})") from None
    if not isinstance(value, kind):
        raise MotionFileError(path, f"attribute {name!r} holds {type(value).__name__}, "
                                    f"expected a JSON {kind.__name__}")
    return value


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
