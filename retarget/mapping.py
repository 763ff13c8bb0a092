"""Per-robot human -> robot IK mapping, read from ``robots/<name>/ik_mapping.toml``.

The file names, for every robot frame the IK drives, which human joints give its target, how
strongly it is tracked, and local offsets (see the WildRobot file for the annotated format). A
new robot is a new folder with its own mapping; nothing here is robot specific.
"""

from __future__ import annotations

import hashlib
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mujoco
import numpy as np

from retarget.human import HUMAN_MOTION_JOINTS
from robots import Robot
from robots.errors import InputFileError

MAPPING_FILE_NAME = "ik_mapping.toml"
_FRAME_TYPES = ("body", "site")


class MappingError(InputFileError):
    """An IK mapping file that cannot be used (bad syntax, unknown joint or frame, bad value)."""


@dataclass(frozen=True)
class FrameMapping:
    """One FrameTask: a robot body or site chasing a pose derived from human joints.

    Attributes:
        name: Task name (unique in the file).
        robot_frame: Robot body or site name.
        frame_type: ``"body"`` or ``"site"``.
        human: Human points whose mean is the target position; empty for orientation only.
        rotation_from: Human joint whose world rotation gives the target rotation.
        position_weight: [3] mink position cost per metre.
        orientation_weight: [3] mink orientation cost per radian, per robot-frame axis.
        offset_m: [3] offset of the target position, in the target frame [m].
        rotation_offset_wxyz: [4] extra rotation applied in the human joint frame.
        scale: Per-task override of the human -> robot scale (None: the clip's leg ratio).
        human_limb_root: Human joint whose scaled position is replaced by the robot's.
        robot_limb_root: Robot body placed, via the root task's target, where that joint goes.
    """

    name: str
    robot_frame: str
    frame_type: str
    human: tuple[str, ...]
    rotation_from: str | None
    position_weight: np.ndarray
    orientation_weight: np.ndarray
    offset_m: np.ndarray
    rotation_offset_wxyz: np.ndarray
    scale: float | None
    human_limb_root: str | None
    robot_limb_root: str | None


@dataclass(frozen=True)
class FootMapping:
    """One foot: its robot body and sole sites, the human sole points, and the weights.

    Attributes:
        name: Foot name (unique in the file).
        robot_body: Robot foot body.
        robot_heel_site, robot_toe_site: Robot sole sites (contact points) at heel and toe.
        human_heel, human_toe: Human sole points.
        rotation_from: Human joint giving the foot's roll.
        human_limb_root, robot_limb_root: As in :class:`FrameMapping` (the hip).
        position_weight, orientation_weight: [3] costs while the foot swings.
        contact_position_weight, contact_orientation_weight: [3] costs while it is in contact.
        scale: Per-foot scale override (None: the clip's leg ratio).
    """

    name: str
    robot_body: str
    robot_heel_site: str
    robot_toe_site: str
    human_heel: str
    human_toe: str
    rotation_from: str
    human_limb_root: str | None
    robot_limb_root: str | None
    position_weight: np.ndarray
    orientation_weight: np.ndarray
    contact_position_weight: np.ndarray
    contact_orientation_weight: np.ndarray
    scale: float | None


@dataclass(frozen=True)
class IKMapping:
    """A robot's whole mapping file, validated against its model and the human joint set.

    Attributes:
        robot: Robot name the file is for.
        path: The file.
        sha256: Hash of the file's bytes (part of the retarget parameters).
        human_from_robot_wxyz: [4] rotation from robot-body axes into the human joint frame.
        posture_weight: PostureTask cost.
        robot_legs, human_legs: Leg chains (hip, knee, ankle) for the scale ratio.
        match_ankle_height: Raise non-foot targets by (robot ankle height above its heel site)
            - (scaled human ankle height above its heel), per clip.
        frames: Frame tasks; the first is the root task (it places the limb roots).
        feet: The feet.
    """

    robot: str
    path: Path
    sha256: str
    human_from_robot_wxyz: np.ndarray
    posture_weight: float
    robot_legs: tuple[tuple[str, ...], ...]
    human_legs: tuple[tuple[str, ...], ...]
    match_ankle_height: bool
    frames: tuple[FrameMapping, ...]
    feet: tuple[FootMapping, ...]

    @property
    def root(self) -> FrameMapping:
        """The root task (the first ``[[task]]``)."""
        return self.frames[0]


def mapping_path(robot: Robot) -> Path:
    """Where robot ``robot`` keeps its mapping: ``robots/<name>/ik_mapping.toml``."""
    return robot.spec.folder() / MAPPING_FILE_NAME


def load_mapping(robot: Robot, path: str | Path | None = None) -> IKMapping:
    """Read and validate the IK mapping of ``robot`` (default: the file in its folder).

    Raises:
        MappingError: missing file, TOML syntax error, unknown key, human joint or robot
            frame, or a malformed value; the message names the file and the problem.
    """
    path = Path(path) if path is not None else mapping_path(robot)
    try:
        raw_bytes = path.read_bytes()
    except OSError as exc:
        raise MappingError(path, f"cannot read the IK mapping ({exc.strerror})") from exc
    try:
        data = tomllib.loads(raw_bytes.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise MappingError(path, f"not valid TOML ({exc})") from exc
    reader = _Reader(path, robot.model)
    mapping = reader.mapping(data, hashlib.sha256(raw_bytes).hexdigest())
    if mapping.robot != robot.name:
        raise MappingError(path, f"mapping is for robot {mapping.robot!r}, not {robot.name!r}")
    return mapping


class _Reader:
    """Turns the parsed TOML into dataclasses, with errors that say where the problem is."""

    def __init__(self, path: Path, model: mujoco.MjModel) -> None:
        self.path = path
        self.model = model

    def fail(self, where: str, problem: str) -> MappingError:
        return MappingError(self.path, f"{where}: {problem}")

    def mapping(self, data: dict[str, Any], sha256: str) -> IKMapping:
        self.keys("top level", data, required={"robot", "scale", "task", "foot"},
                  optional={"human_from_robot_wxyz", "posture_weight"})
        scale = data["scale"]
        self.keys("[scale]", scale, required={"robot_legs", "human_legs"},
                  optional={"match_ankle_height"})
        match_ankle_height = scale.get("match_ankle_height", False)
        if not isinstance(match_ankle_height, bool):
            raise self.fail("[scale].match_ankle_height", "expected true or false")
        robot_legs = self.chains("[scale].robot_legs", scale["robot_legs"], self.body)
        human_legs = self.chains("[scale].human_legs", scale["human_legs"], self.human_point)
        frames = tuple(self.frame(i, t) for i, t in enumerate(self.tables("task", data["task"])))
        feet = tuple(self.foot(i, f) for i, f in enumerate(self.tables("foot", data["foot"])))
        names = [f.name for f in frames] + [f.name for f in feet]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise self.fail("tasks", f"duplicate names {duplicates}")
        if frames[0].position_weight.max() <= 0 or not frames[0].human:
            raise self.fail("[[task]] 1", "the first task is the root task and needs a "
                                          "position target (human points, position_weight > 0)")
        return IKMapping(
            robot=self.string("robot", data["robot"]),
            path=self.path,
            sha256=sha256,
            human_from_robot_wxyz=self.quat(
                "human_from_robot_wxyz", data.get("human_from_robot_wxyz", [1.0, 0, 0, 0])),
            posture_weight=self.number("posture_weight", data.get("posture_weight", 0.01)),
            robot_legs=robot_legs,
            human_legs=human_legs,
            match_ankle_height=match_ankle_height,
            frames=frames,
            feet=feet,
        )

    def frame(self, index: int, t: dict[str, Any]) -> FrameMapping:
        where = f"[[task]] {index + 1} ({t.get('name', '?')})"
        self.keys(where, t, required={"name", "robot_frame", "position_weight",
                                      "orientation_weight"},
                  optional={"frame_type", "human", "rotation_from", "offset_m",
                            "rotation_offset_wxyz", "scale", "human_limb_root",
                            "robot_limb_root"})
        frame_type = t.get("frame_type", "body")
        if frame_type not in _FRAME_TYPES:
            raise self.fail(where, f"frame_type must be one of {_FRAME_TYPES}, got {frame_type!r}")
        human = tuple(self.human_point(f"{where}.human", h) for h in t.get("human", []))
        position_weight = self.vector3(f"{where}.position_weight", t["position_weight"])
        if position_weight.max() > 0 and not human:
            raise self.fail(where, "position_weight > 0 needs `human` points")
        orientation_weight = self.vector3(f"{where}.orientation_weight", t["orientation_weight"])
        rotation_from = t.get("rotation_from")
        if orientation_weight.max() > 0 and rotation_from is None:
            raise self.fail(where, "orientation_weight > 0 needs `rotation_from`")
        human_root, robot_root = self.limb_roots(where, t)
        return FrameMapping(
            name=self.string(f"{where}.name", t["name"]),
            robot_frame=self.frame_name(where, t["robot_frame"], frame_type),
            frame_type=frame_type,
            human=human,
            rotation_from=None if rotation_from is None else self.human_point(
                f"{where}.rotation_from", rotation_from),
            position_weight=position_weight,
            orientation_weight=orientation_weight,
            offset_m=self.vector3(f"{where}.offset_m", t.get("offset_m", [0.0, 0.0, 0.0]),
                                  allow_negative=True, broadcast=False),
            rotation_offset_wxyz=self.quat(f"{where}.rotation_offset_wxyz",
                                           t.get("rotation_offset_wxyz", [1.0, 0, 0, 0])),
            scale=self.optional_scale(where, t),
            human_limb_root=human_root,
            robot_limb_root=robot_root,
        )

    def foot(self, index: int, f: dict[str, Any]) -> FootMapping:
        where = f"[[foot]] {index + 1} ({f.get('name', '?')})"
        self.keys(where, f, required={"name", "robot_body", "robot_heel_site", "robot_toe_site",
                                      "human_heel", "human_toe", "rotation_from",
                                      "position_weight", "orientation_weight",
                                      "contact_position_weight", "contact_orientation_weight"},
                  optional={"human_limb_root", "robot_limb_root", "scale"})
        human_root, robot_root = self.limb_roots(where, f)
        return FootMapping(
            name=self.string(f"{where}.name", f["name"]),
            robot_body=self.frame_name(where, f["robot_body"], "body"),
            robot_heel_site=self.frame_name(where, f["robot_heel_site"], "site"),
            robot_toe_site=self.frame_name(where, f["robot_toe_site"], "site"),
            human_heel=self.human_point(f"{where}.human_heel", f["human_heel"]),
            human_toe=self.human_point(f"{where}.human_toe", f["human_toe"]),
            rotation_from=self.human_point(f"{where}.rotation_from", f["rotation_from"]),
            human_limb_root=human_root,
            robot_limb_root=robot_root,
            position_weight=self.vector3(f"{where}.position_weight", f["position_weight"]),
            orientation_weight=self.vector3(f"{where}.orientation_weight",
                                            f["orientation_weight"]),
            contact_position_weight=self.vector3(f"{where}.contact_position_weight",
                                                 f["contact_position_weight"]),
            contact_orientation_weight=self.vector3(f"{where}.contact_orientation_weight",
                                                    f["contact_orientation_weight"]),
            scale=self.optional_scale(where, f),
        )

    # --- small validated readers -------------------------------------------------------------

    def keys(self, where: str, table: dict[str, Any], required: set[str],
             optional: set[str] = frozenset()) -> None:  # type: ignore[assignment]
        if not isinstance(table, dict):
            raise self.fail(where, f"expected a table, got {type(table).__name__}")
        missing = sorted(required - set(table))
        unknown = sorted(set(table) - required - set(optional))
        if missing:
            raise self.fail(where, f"missing key(s) {missing}")
        if unknown:
            raise self.fail(where, f"unknown key(s) {unknown}; valid keys: "
                                   f"{sorted(required | set(optional))}")

    def tables(self, name: str, value: Any) -> list[dict[str, Any]]:
        if not isinstance(value, list) or not value:
            raise self.fail(f"[[{name}]]", "needs at least one entry")
        return value

    def string(self, where: str, value: Any) -> str:
        if not isinstance(value, str) or not value:
            raise self.fail(where, f"expected a non-empty string, got {value!r}")
        return value

    def number(self, where: str, value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise self.fail(where, f"expected a number >= 0, got {value!r}")
        return float(value)

    def vector3(self, where: str, value: Any, *, allow_negative: bool = False,
                broadcast: bool = True) -> np.ndarray:
        if broadcast and isinstance(value, int | float) and not isinstance(value, bool):
            value = [value] * 3
        array = np.asarray(value, dtype=float) if isinstance(value, list) else None
        if array is None or array.shape != (3,) or not np.all(np.isfinite(array)):
            raise self.fail(where, f"expected {'a number or ' if broadcast else ''}"
                                   f"a list of 3 numbers, got {value!r}")
        if not allow_negative and np.any(array < 0):
            raise self.fail(where, f"weights must be >= 0, got {value!r}")
        return array

    def quat(self, where: str, value: Any) -> np.ndarray:
        array = np.asarray(value, dtype=float) if isinstance(value, list) else None
        if array is None or array.shape != (4,) or abs(np.linalg.norm(array) - 1.0) > 1e-3:
            raise self.fail(where, f"expected a unit quaternion [w, x, y, z], got {value!r}")
        return array / np.linalg.norm(array)

    def human_point(self, where: str, name: Any) -> str:
        if name not in HUMAN_MOTION_JOINTS:
            raise self.fail(where, f"unknown human joint {name!r}; valid: "
                                   f"{', '.join(HUMAN_MOTION_JOINTS)}")
        return name

    def body(self, where: str, name: Any) -> str:
        return self.frame_name(where, name, "body")

    def frame_name(self, where: str, name: Any, frame_type: str) -> str:
        kind = mujoco.mjtObj.mjOBJ_BODY if frame_type == "body" else mujoco.mjtObj.mjOBJ_SITE
        if not isinstance(name, str) or mujoco.mj_name2id(self.model, kind, name) < 0:
            raise self.fail(where, f"the robot model has no {frame_type} {name!r}")
        return name

    def chains(self, where: str, value: Any, check: Any) -> tuple[tuple[str, ...], ...]:
        if not isinstance(value, list) or not value or not all(
                isinstance(c, list) and len(c) >= 2 for c in value):
            raise self.fail(where, "expected a list of chains, each a list of >= 2 names")
        return tuple(tuple(check(where, n) for n in chain) for chain in value)

    def limb_roots(self, where: str, t: dict[str, Any]) -> tuple[str | None, str | None]:
        human_root, robot_root = t.get("human_limb_root"), t.get("robot_limb_root")
        if (human_root is None) != (robot_root is None):
            raise self.fail(where, "human_limb_root and robot_limb_root go together")
        if human_root is None:
            return None, None
        return (self.human_point(f"{where}.human_limb_root", human_root),
                self.body(f"{where}.robot_limb_root", robot_root))

    def optional_scale(self, where: str, t: dict[str, Any]) -> float | None:
        if "scale" not in t:
            return None
        value = self.number(f"{where}.scale", t["scale"])
        if value <= 0:
            raise self.fail(f"{where}.scale", "must be > 0")
        return value
