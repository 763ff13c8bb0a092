"""BVH motion capture in: a small text-BVH reader, forward kinematics, and the mapping of a BVH
skeleton onto the body joints the retargeter uses (``retarget.human.HUMAN_MOTION_JOINTS``).

A BVH clip needs no body model: its forward kinematics gives the human joints directly and its
bone lengths give the subject's own size (DESIGN 4.1b).

What a loader meets in real files (``tests/data/bvh/README.md`` lists them per file):

- Units differ (CMU ASF units of 0.056444 m, centimetres, metres) and BVH has no unit field,
  so the unit is chosen from the rest skeleton: the candidate unit that puts the hip height in
  the human range. ``BvhConfig.unit_m`` overrides it.
- The up axis is the axis along which the spine points at rest (``BvhConfig.up_axis``
  overrides it). The output is Z-up metres, the floor found later from stance
  (``retarget.targets``).
- Per-joint channel orders (``Z Y X`` and ``Z X Y`` in one file): each joint's rotation is
  composed in its listed order, R = R1 R2 R3 acting on column vectors.
- Naming dialects of one skeleton (MotionBuilder, 3dsMax, DAZ) with name traps (``LeftShoulder``
  is the clavicle in one and the upper arm in another): per-dialect name tables, chosen by which
  table the file's names satisfy, and a topology fallback for other rigs.
- Rest poses differ per dialect (legs splayed 20 deg, arms down or sideways), so a joint's
  rotation is corrected by the rest-bone rotation from the SMPL-X T-pose to the file's rest pose;
  the mapping's frame conventions (SMPL-X canonical joint frames) then hold for every dialect.
- Lead-in frames that are not capture (a synthetic reference pose, an all-zero frame, blend-in
  frames) and duplicated last frames are dropped; how many is reported.

Our own reader rather than a PyPI parser: the format is small, the files above need exactly
these rules, and the reader has no dependency beyond numpy (``tests/test_bvh.py``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import numpy as np

from retarget.human import (
    FOOT_POINTS,
    HUMAN_MOTION_JOINTS,
    SMPLX_BODY_JOINTS,
    SMPLX_PARENTS,
    HumanMotion,
)
from robots.errors import InputFileError
from robots.io import file_sha256
from robots.rotations import matrix_to_quat, quat_between_vectors, quat_to_matrix
from robots.trajectory import step_speed

BODY_MODEL_NAME = "bvh"
"""``HumanMotion.body_model`` of BVH clips (their own skeleton, no body model)."""

# Metres per file unit a BVH file may use: CMU ASF units ((1/0.45) inch), cm, m, mm, inch.
CANDIDATE_UNITS_M: dict[str, float] = {
    "cmu_asf": 0.0254 / 0.45,
    "centimetre": 0.01,
    "metre": 1.0,
    "millimetre": 0.001,
    "inch": 0.0254,
}
# Adult hip (pelvis) heights above the soles, standing [m]; the unit must land inside.
HIP_HEIGHT_RANGE_M = (0.55, 1.30)
_HIP_HEIGHT_TYPICAL_M = 0.9
UP_AXES = ("auto", "x", "y", "z")
_ROTATION_CHANNELS = {"Xrotation": 0, "Yrotation": 1, "Zrotation": 2}
_POSITION_CHANNELS = {"Xposition": 0, "Yposition": 1, "Zposition": 2}
_NUMBER = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$")


class BvhFormatError(InputFileError):
    """A BVH file that cannot be used (syntax, counts, values, an unmappable skeleton)."""


@dataclass(frozen=True)
class BvhConfig:
    """How BVH files are read (the ``retarget.bvh`` section of params.yaml).

    Attributes:
        unit_m: Metres per file unit; None detects it from the rest hip height.
        up_axis: ``auto`` (the rest spine direction) or ``x``/``y``/``z`` (positive).
        lead_in_window_s: Lead-in frames are looked for only in this first stretch [s].
        lead_in_joint_speed_rad_s: A frame change faster than this in any body joint (hands
            excluded: their channels are noisy) marks the frames before it as lead-in [rad/s].
        lead_in_root_speed_mps: Likewise for the root position [m/s].
        lead_in_blend_ratio: After a lead-in, following frames whose joint speed is above this
            multiple of the median of the next ``lead_in_window_s`` are dropped too (blend-in).
    """

    BOUNDS: ClassVar[dict[str, str]] = {
        "unit_m": "> 0", "lead_in_window_s": ">= 0", "lead_in_joint_speed_rad_s": "> 0",
        "lead_in_root_speed_mps": "> 0", "lead_in_blend_ratio": ">= 1"}

    unit_m: float | None = None
    up_axis: str = "auto"
    lead_in_window_s: float = 0.1
    lead_in_joint_speed_rad_s: float = 50.0
    lead_in_root_speed_mps: float = 10.0
    lead_in_blend_ratio: float = 2.0

    def __post_init__(self) -> None:
        if self.up_axis not in UP_AXES:
            raise ValueError(f"bvh.up_axis {self.up_axis!r}; valid: {', '.join(UP_AXES)}")
        if self.unit_m is not None and not (np.isfinite(self.unit_m) and self.unit_m > 0):
            raise ValueError(f"bvh.unit_m must be > 0 or null, got {self.unit_m}")


# --- the file ------------------------------------------------------------------------------

@dataclass
class BvhSkeleton:
    """The HIERARCHY: joints in file order (parents first), End Sites appended as leaf joints.

    Attributes:
        names: [J] joint names; an End Site is named ``<parent>_end``.
        parents: [J] parent index, -1 for the root.
        offsets: [J, 3] rest offset from the parent, file units.
        channels: [J] channel names per joint (empty for End Sites).
        is_end_site: [J] bool.
    """

    names: list[str] = field(default_factory=list)
    parents: list[int] = field(default_factory=list)
    offsets: list[np.ndarray] = field(default_factory=list)
    channels: list[tuple[str, ...]] = field(default_factory=list)
    is_end_site: list[bool] = field(default_factory=list)

    def index(self, name: str) -> int:
        return self.names.index(name)

    def rest_positions(self) -> np.ndarray:
        """[J, 3] joint positions at zero rotation, root at the origin, file units."""
        positions = np.zeros((len(self.names), 3))
        for joint, parent in enumerate(self.parents):
            if parent >= 0:
                positions[joint] = positions[parent] + self.offsets[joint]
        return positions

    def children(self, joint: int) -> list[int]:
        return [j for j, p in enumerate(self.parents) if p == joint]


@dataclass
class BvhFile:
    """A parsed BVH: skeleton, frame time [s] and the MOTION rows [F, channels]."""

    path: Path
    skeleton: BvhSkeleton
    frame_time_s: float
    motion: np.ndarray

    @property
    def fps(self) -> float:
        """Frame rate; rounded to an integer when the file's rounded frame time is all that
        separates it from one (``0.008333`` s is 120 Hz, not 120.005)."""
        fps = 1.0 / self.frame_time_s
        nearest = round(fps)
        return float(nearest) if nearest > 0 and abs(fps - nearest) < 1e-4 * fps else fps


def parse_bvh(path: str | Path) -> BvhFile:
    """Read a text BVH file (any whitespace, CRLF, scientific notation, tabs).

    Raises ``BvhFormatError`` naming the file and the problem.
    """
    path = Path(path)
    if not path.is_file():
        raise BvhFormatError(path, "file does not exist")
    try:
        text = path.read_text(encoding="utf-8", errors="strict")
    except (UnicodeDecodeError, OSError) as error:
        raise BvhFormatError(path, f"not a text BVH file ({error})") from error
    tokens = text.split()
    if not tokens or tokens[0] != "HIERARCHY":
        raise BvhFormatError(path, "does not start with HIERARCHY (not a BVH file)")
    skeleton, position = _parse_hierarchy(path, tokens)
    return _parse_motion(path, skeleton, tokens, position)


def _parse_hierarchy(path: Path, tokens: list[str]) -> tuple[BvhSkeleton, int]:
    skeleton = BvhSkeleton()
    stack: list[int] = []
    pending: int | None = None
    i = 1
    while i < len(tokens) and tokens[i] != "MOTION":
        token = tokens[i]
        if token in ("ROOT", "JOINT") or token == "End":
            if token == "ROOT" and skeleton.names:
                raise BvhFormatError(path, "more than one ROOT (only one skeleton per file)")
            if token != "ROOT" and not stack:
                raise BvhFormatError(path, f"{token} outside the ROOT's braces")
            end = token == "End"
            name = f"{skeleton.names[stack[-1]]}_end" if end else _token(path, tokens, i + 1)
            skeleton.names.append(name)
            skeleton.parents.append(stack[-1] if stack else -1)
            skeleton.offsets.append(np.zeros(3))
            skeleton.channels.append(())
            skeleton.is_end_site.append(end)
            pending = len(skeleton.names) - 1
            i += 2
        elif token == "{":
            if pending is None:
                raise BvhFormatError(path, "'{' without a joint")
            stack.append(pending)
            pending = None
            i += 1
        elif token == "}":
            if not stack:
                raise BvhFormatError(path, "unbalanced '}' in HIERARCHY")
            stack.pop()
            i += 1
        elif token == "OFFSET":
            if not stack:
                raise BvhFormatError(path, "OFFSET outside a joint")
            skeleton.offsets[stack[-1]] = np.array(
                [_number(path, tokens, i + k, "OFFSET") for k in (1, 2, 3)])
            i += 4
        elif token == "CHANNELS":
            if not stack:
                raise BvhFormatError(path, "CHANNELS outside a joint")
            count_token = _token(path, tokens, i + 1)
            if not count_token.isdigit():
                raise BvhFormatError(path, f"CHANNELS count {count_token!r} is not a number")
            count = int(count_token)
            names = tuple(tokens[i + 2: i + 2 + count])
            unknown = [n for n in names if n not in _ROTATION_CHANNELS
                       and n not in _POSITION_CHANNELS]
            if len(names) != count or unknown:
                raise BvhFormatError(path, f"joint {skeleton.names[stack[-1]]!r}: bad CHANNELS "
                                           f"{' '.join(names)!r}")
            skeleton.channels[stack[-1]] = names
            i += 2 + count
        else:
            raise BvhFormatError(path, f"unexpected token {token!r} in HIERARCHY")
    if stack:
        raise BvhFormatError(path, "unbalanced braces: HIERARCHY ends inside a joint")
    if not skeleton.names:
        raise BvhFormatError(path, "HIERARCHY has no ROOT")
    if i >= len(tokens):
        raise BvhFormatError(path, "no MOTION section (truncated file?)")
    return skeleton, i + 1


def _parse_motion(path: Path, skeleton: BvhSkeleton, tokens: list[str], i: int) -> BvhFile:
    if tokens[i: i + 1] != ["Frames:"]:
        raise BvhFormatError(path, "MOTION must start with 'Frames:'")
    frames_token = _token(path, tokens, i + 1)
    if not frames_token.isdigit():
        raise BvhFormatError(path, f"'Frames:' {frames_token!r} is not a count")
    frames = int(frames_token)
    if tokens[i + 2: i + 4] != ["Frame", "Time:"]:
        raise BvhFormatError(path, "missing 'Frame Time:' after 'Frames:'")
    frame_time = _number(path, tokens, i + 4, "Frame Time")
    if not frame_time > 0:
        raise BvhFormatError(path, f"'Frame Time:' must be > 0, got {frame_time}")
    width = sum(len(c) for c in skeleton.channels)
    values = tokens[i + 5:]
    if len(values) != frames * width:
        raise BvhFormatError(
            path, f"MOTION holds {len(values)} numbers; {frames} frames x {width} channels "
                  f"need {frames * width} (truncated file or wrong 'Frames:')")
    try:
        motion = np.array(values, dtype=np.float64).reshape(frames, width)
    except ValueError as error:
        raise BvhFormatError(path, f"MOTION holds a value that is not a number ({error})") from None
    if not np.all(np.isfinite(motion)):
        row = int(np.argwhere(~np.isfinite(motion))[0, 0])
        raise BvhFormatError(path, f"MOTION frame {row} holds NaN or inf")
    return BvhFile(path=path, skeleton=skeleton, frame_time_s=frame_time, motion=motion)


def _token(path: Path, tokens: list[str], i: int) -> str:
    if i >= len(tokens):
        raise BvhFormatError(path, "file ends early (truncated)")
    return tokens[i]


def _number(path: Path, tokens: list[str], i: int, what: str) -> float:
    token = _token(path, tokens, i)
    if not _NUMBER.match(token):
        raise BvhFormatError(path, f"{what}: {token!r} is not a number")
    return float(token)


# --- forward kinematics --------------------------------------------------------------------

def _axis_rotation(axis: int, angle_rad: np.ndarray) -> np.ndarray:
    """[F, 3, 3] rotations about x (0), y (1) or z (2)."""
    c, s = np.cos(angle_rad), np.sin(angle_rad)
    matrix = np.zeros(angle_rad.shape + (3, 3))
    a, b = [(1, 2), (2, 0), (0, 1)][axis]
    matrix[..., axis, axis] = 1.0
    matrix[..., a, a], matrix[..., a, b] = c, -s
    matrix[..., b, a], matrix[..., b, b] = s, c
    return matrix


def local_transforms(bvh: BvhFile) -> tuple[np.ndarray, np.ndarray]:
    """Per-joint local rotations [F, J, 3, 3] and root translation [F, 3] (file units).

    Rotations compose in each joint's listed channel order: R = R1 R2 R3 (column vectors).
    """
    skeleton = bvh.skeleton
    frames = bvh.motion.shape[0]
    rotations = np.tile(np.eye(3), (frames, len(skeleton.names), 1, 1))
    root_translation = np.zeros((frames, 3))
    column = 0
    for joint, names in enumerate(skeleton.channels):
        for name in names:
            values = bvh.motion[:, column]
            if name in _ROTATION_CHANNELS:
                rotations[:, joint] = rotations[:, joint] @ _axis_rotation(
                    _ROTATION_CHANNELS[name], np.deg2rad(values))
            elif joint == 0:
                root_translation[:, _POSITION_CHANNELS[name]] = values
            # position channels on a non-root joint: ignored (none in practice; offsets rule)
            column += 1
    return rotations, root_translation


def forward_kinematics(bvh: BvhFile) -> tuple[np.ndarray, np.ndarray]:
    """Global rotations [F, J, 3, 3] and positions [F, J, 3] (file units, file axes)."""
    local, root_translation = local_transforms(bvh)
    skeleton = bvh.skeleton
    global_rotations = np.empty_like(local)
    positions = np.empty(local.shape[:2] + (3,))
    global_rotations[:, 0] = local[:, 0]
    positions[:, 0] = skeleton.offsets[0] + root_translation
    for joint in range(1, len(skeleton.names)):
        parent = skeleton.parents[joint]
        global_rotations[:, joint] = global_rotations[:, parent] @ local[:, joint]
        positions[:, joint] = positions[:, parent] + global_rotations[:, parent] @ \
            skeleton.offsets[joint]
    return global_rotations, positions


# --- mapping onto the body joints ----------------------------------------------------------

# Roles: the 22 SMPL-X body joints, plus the toe tip (an End Site or the last foot joint).
TOE_TIP_ROLES = ("left_toe_tip", "right_toe_tip")


def _sided(table: dict[str, str], left: dict[str, str], right: dict[str, str]) -> dict[str, str]:
    return {**table, **{f"left_{k}": v for k, v in left.items()},
            **{f"right_{k}": v for k, v in right.items()}}


DIALECTS: dict[str, dict[str, str]] = {
    # cgspeed MotionBuilder-friendly CMU: LeftShoulder is the clavicle, LeftArm the upper arm.
    "motionbuilder": _sided(
        {"pelvis": "Hips", "spine1": "LowerBack", "spine2": "Spine", "spine3": "Spine1",
         "neck": "Neck1", "head": "Head"},
        {"hip": "LeftUpLeg", "knee": "LeftLeg", "ankle": "LeftFoot", "foot": "LeftToeBase",
         "toe_tip": "LeftToeBase_end", "collar": "LeftShoulder", "shoulder": "LeftArm",
         "elbow": "LeftForeArm", "wrist": "LeftHand"},
        {"hip": "RightUpLeg", "knee": "RightLeg", "ankle": "RightFoot", "foot": "RightToeBase",
         "toe_tip": "RightToeBase_end", "collar": "RightShoulder", "shoulder": "RightArm",
         "elbow": "RightForeArm", "wrist": "RightHand"}),
    # cgspeed 3dsMax-friendly CMU: LeftShoulder is the upper arm; Neck is the upper neck.
    "3dsmax": _sided(
        {"pelvis": "Hips", "spine1": "lowerback", "spine2": "Chest", "spine3": "Chest2",
         "neck": "Neck", "head": "Head"},
        {"hip": "LeftHip", "knee": "LeftKnee", "ankle": "LeftAnkle", "foot": "LeftToe",
         "toe_tip": "LeftToe_end", "collar": "LeftCollar", "shoulder": "LeftShoulder",
         "elbow": "LeftElbow", "wrist": "LeftWrist"},
        {"hip": "RightHip", "knee": "RightKnee", "ankle": "RightAnkle", "foot": "RightToe",
         "toe_tip": "RightToe_end", "collar": "RightCollar", "shoulder": "RightShoulder",
         "elbow": "RightElbow", "wrist": "RightWrist"}),
    # cgspeed DAZ-friendly: buttock joints above the thighs, no toe joint (the foot's End Site
    # stands in for the ball and the toe tip).
    "daz": _sided(
        {"pelvis": "hip", "spine1": "abdomen", "spine2": "abdomen", "spine3": "chest",
         "neck": "neck", "head": "head"},
        {"hip": "lThigh", "knee": "lShin", "ankle": "lFoot", "foot": "lFoot_end",
         "toe_tip": "lFoot_end", "collar": "lCollar", "shoulder": "lShldr",
         "elbow": "lForeArm", "wrist": "lHand"},
        {"hip": "rThigh", "knee": "rShin", "ankle": "rFoot", "foot": "rFoot_end",
         "toe_tip": "rFoot_end", "collar": "rCollar", "shoulder": "rShldr",
         "elbow": "rForeArm", "wrist": "rHand"}),
}
ROLES: tuple[str, ...] = SMPLX_BODY_JOINTS + TOE_TIP_ROLES


def match_dialect(skeleton: BvhSkeleton) -> tuple[str, dict[str, int]] | None:
    """The first name table whose every name the skeleton has (letter case ignored)."""
    lower = {name.lower(): i for i, name in enumerate(skeleton.names)}
    for dialect, table in DIALECTS.items():
        if all(name.lower() in lower for name in table.values()):
            return dialect, {role: lower[name.lower()] for role, name in table.items()}
    return None


def match_topology(skeleton: BvhSkeleton, up: np.ndarray, left: np.ndarray) -> dict[str, int]:
    """Roles from the tree shape alone (for rigs no name table knows).

    Legs: the root's sub-trees whose lowest leaf is well below the root; along the path to that
    leaf (zero-length joints collapsed) the thigh and shank are the longest consecutive pair of
    bones. Spine: the sub-tree going up to the branching joint of head and arms; arms: the
    branch's other sub-trees, upper arm and forearm again the longest consecutive pair.
    Left is the side along ``left``. Raises ValueError naming what was not found.
    """
    rest = skeleton.rest_positions()
    height = rest @ up
    roles: dict[str, int] = {}
    legs, spines = [], []
    for child in skeleton.children(0):
        leaves = _leaves(skeleton, child)
        lowest = min(leaves, key=lambda j: height[j])
        if height[lowest] < -0.3 * np.ptp(height):
            legs.append(_collapsed_path(skeleton, rest, 0, lowest))
        else:
            spines.append(child)
    if len(legs) != 2 or not spines:
        raise ValueError(f"found {len(legs)} legs and {len(spines)} spine(s) below the root, "
                         f"need 2 legs and a spine")
    legs.sort(key=lambda path: -float(rest[path[-1]] @ left))  # left first
    for side, path in zip(("left", "right"), legs, strict=True):
        hip = _longest_pair(rest, path)
        if hip + 2 >= len(path):
            raise ValueError(f"{side} leg: no foot below the shank")
        roles[f"{side}_hip"], roles[f"{side}_knee"] = path[hip], path[hip + 1]
        roles[f"{side}_ankle"] = path[hip + 2]
        after = path[hip + 3:]
        roles[f"{side}_foot"] = after[0] if after else path[hip + 2]
        roles[f"{side}_toe_tip"] = after[-1] if after else path[hip + 2]
    spine_leaves = [j for s in spines for j in _leaves(skeleton, s)]
    top = max(spine_leaves, key=lambda j: height[j])
    spine_path = _path(skeleton, 0, top)
    branches = [j for j in spine_path[1:] if len(skeleton.children(j)) >= 3]
    if not branches:
        raise ValueError("no joint where the neck and both arms branch off the spine")
    chest = branches[0]
    trunk = spine_path[1: spine_path.index(chest) + 1] or [chest]
    roles["pelvis"] = 0
    roles["spine1"], roles["spine2"] = trunk[0], trunk[len(trunk) // 2]
    roles["spine3"] = chest
    head_path = spine_path[spine_path.index(chest) + 1:]
    roles["neck"] = head_path[0] if head_path else chest
    roles["head"] = head_path[-2] if len(head_path) >= 2 else roles["neck"]
    arms = []
    for child in skeleton.children(chest):
        if child in spine_path:
            continue
        leaves = _leaves(skeleton, child)
        far = max(leaves, key=lambda j: float(np.linalg.norm(rest[j] - rest[chest])))
        arms.append(_collapsed_path(skeleton, rest, chest, far))
    if len(arms) != 2:
        raise ValueError(f"found {len(arms)} arms at the chest, need 2")
    arms.sort(key=lambda path: -float(rest[path[-1]] @ left))
    for side, path in zip(("left", "right"), arms, strict=True):
        # the first bone leaves the chest (a collar, up to shoulder width): never the arm
        shoulder = _longest_pair(rest, path[1:]) + 1 if len(path) >= 5 else \
            _longest_pair(rest, path)
        if shoulder + 2 >= len(path) + 1:
            raise ValueError(f"{side} arm: too few bones")
        roles[f"{side}_collar"] = path[max(shoulder - 1, 0)]
        roles[f"{side}_shoulder"], roles[f"{side}_elbow"] = path[shoulder], path[shoulder + 1]
        roles[f"{side}_wrist"] = path[min(shoulder + 2, len(path) - 1)]
    return roles


def _leaves(skeleton: BvhSkeleton, joint: int) -> list[int]:
    children = skeleton.children(joint)
    return [joint] if not children else [leaf for c in children for leaf in _leaves(skeleton, c)]


def _path(skeleton: BvhSkeleton, ancestor: int, joint: int) -> list[int]:
    path = [joint]
    while path[-1] != ancestor:
        path.append(skeleton.parents[path[-1]])
    return path[::-1]


def _collapsed_path(skeleton: BvhSkeleton, rest: np.ndarray, ancestor: int,
                    joint: int) -> list[int]:
    """The path ancestor -> joint keeping, of joints at the same place, the deepest (the one
    whose rotation moves the next bone)."""
    kept: list[int] = []
    for j in _path(skeleton, ancestor, joint):
        if kept and np.linalg.norm(rest[j] - rest[kept[-1]]) < 1e-9:
            kept[-1] = j
        else:
            kept.append(j)
    return kept


def _longest_pair(rest: np.ndarray, path: list[int]) -> int:
    """Index i in ``path`` maximizing the length of bones i->i+1 plus i+1->i+2."""
    bones = np.linalg.norm(np.diff(rest[path], axis=0), axis=-1)
    if len(bones) < 2:
        raise ValueError("a limb with fewer than two bones")
    return int(np.argmax(bones[:-1] + bones[1:]))


# --- loading a clip ------------------------------------------------------------------------

@dataclass
class BvhClip:
    """A BVH take ready for the retargeter.

    Attributes:
        motion: Body joints and sole points (Z-up metres, file's floor level: the ground is
            estimated later, from stance).
        dialect: Name table used, or ``topology``.
        unit_m: Metres per file unit used; unit_name: which candidate (or ``override``).
        up_axis: File axis taken as up.
        lead_in_frames: Frames dropped at the start (not capture).
        trailing_frames: Duplicated frames dropped at the end.
        source_frames: Frames in the file.
        leg_length_m: The subject's rest leg length (hip -> knee -> ankle) [m].
        hip_height_m: The subject's rest hip height above the toe tips [m].
    """

    motion: HumanMotion
    dialect: str
    unit_m: float
    unit_name: str
    up_axis: str
    lead_in_frames: int
    trailing_frames: int
    source_frames: int
    leg_length_m: float
    hip_height_m: float

    def report(self) -> dict[str, object]:
        """What the loader decided, for the clip's quality metrics."""
        return {
            "bvh_dialect": self.dialect, "bvh_unit_m": self.unit_m,
            "bvh_unit": self.unit_name, "bvh_up_axis": self.up_axis,
            "bvh_lead_in_frames_dropped": self.lead_in_frames,
            "bvh_trailing_frames_dropped": self.trailing_frames,
            "bvh_source_frames": self.source_frames,
            "subject_leg_length_m": self.leg_length_m,
            "subject_hip_height_m": self.hip_height_m,
        }


def load_bvh(path: str | Path, config: BvhConfig | None = None) -> BvhClip:
    """Read, map and convert one BVH take (see the module docstring).

    Raises ``BvhFormatError`` naming the file and the problem.
    """
    config = config or BvhConfig()
    bvh = parse_bvh(path)
    skeleton = bvh.skeleton
    if len(skeleton.channels[0]) != 6 or not all(
            c in _POSITION_CHANNELS for c in skeleton.channels[0][:3]):
        raise BvhFormatError(bvh.path, "the ROOT must have 3 position + 3 rotation channels")
    rest = skeleton.rest_positions()
    up_name, up = _up_axis(bvh, rest, config)
    roles, dialect = _roles(bvh, up)
    left = _unit(rest[roles["left_hip"]] - rest[roles["right_hip"]])
    left = _unit(left - (left @ up) * up)
    unit_name, unit = _unit_scale(bvh, rest, roles, up, config)
    global_rotations, positions = forward_kinematics(bvh)
    first, last = _capture_span(bvh, global_rotations, positions * unit, roles, config)
    global_rotations, positions = global_rotations[first:last], positions[first:last] * unit
    if positions.shape[0] < 2:
        raise BvhFormatError(bvh.path, f"only {positions.shape[0]} capture frame(s) left after "
                                       f"dropping {first} lead-in frame(s)")
    # canonical (SMPL-X: x left, y up, z forward) -> file axes, and file -> world (Z-up)
    file_from_canonical = np.stack([left, up, np.cross(left, up)], axis=1)
    world_from_canonical = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
    world_from_file = world_from_canonical @ file_from_canonical.T
    leg = float(np.mean([
        np.linalg.norm(rest[roles[f"{s}_knee"]] - rest[roles[f"{s}_hip"]])
        + np.linalg.norm(rest[roles[f"{s}_ankle"]] - rest[roles[f"{s}_knee"]])
        for s in ("left", "right")])) * unit
    motion = _human_motion(bvh, rest * unit, global_rotations, positions, roles,
                           world_from_file, file_from_canonical, leg)
    return BvhClip(motion=motion, dialect=dialect, unit_m=unit, unit_name=unit_name,
                   up_axis=up_name, lead_in_frames=first,
                   trailing_frames=bvh.motion.shape[0] - last, source_frames=bvh.motion.shape[0],
                   leg_length_m=leg, hip_height_m=float(_hip_height(rest, roles, up)) * unit)


def _unit(v: np.ndarray) -> np.ndarray:
    return v / max(float(np.linalg.norm(v)), 1e-12)


def _up_axis(bvh: BvhFile, rest: np.ndarray, config: BvhConfig) -> tuple[str, np.ndarray]:
    """The up axis: from the legs to the trunk. The root's largest sub-tree is the trunk (spine,
    head and arms), the others are the legs; the axis nearest the direction from the legs'
    joints to the trunk's (signed) is up."""
    if config.up_axis != "auto":
        return config.up_axis, np.eye(3)["xyz".index(config.up_axis)]
    skeleton = bvh.skeleton
    subtrees = [_subtree(skeleton, child) for child in skeleton.children(0)]
    if len(subtrees) < 2:
        raise BvhFormatError(bvh.path, "the ROOT has fewer than 2 sub-trees (no legs and trunk); "
                                       "set retarget.bvh.up_axis")
    subtrees.sort(key=len, reverse=True)
    trunk = rest[subtrees[0]].mean(axis=0)
    legs = np.mean([rest[tree].mean(axis=0) for tree in subtrees[1:]], axis=0)
    direction = trunk - legs
    axis = int(np.argmax(np.abs(direction)))
    sign = 1.0 if direction[axis] > 0 else -1.0
    return f"{'' if sign > 0 else '-'}{'xyz'[axis]}", sign * np.eye(3)[axis]


def _subtree(skeleton: BvhSkeleton, joint: int) -> list[int]:
    """``joint`` and all its descendants."""
    out, stack = [], [joint]
    while stack:
        j = stack.pop()
        out.append(j)
        stack += skeleton.children(j)
    return out


def _roles(bvh: BvhFile, up: np.ndarray) -> tuple[dict[str, int], str]:
    matched = match_dialect(bvh.skeleton)
    if matched is not None:
        return matched[1], matched[0]
    # BVH convention (and every CMU conversion): the subject's left is +X.
    left = np.array([1.0, 0.0, 0.0])
    left = _unit(left - (left @ up) * up) if abs(left @ up) < 0.9 else np.array([0.0, 0.0, 1.0])
    try:
        return match_topology(bvh.skeleton, up, left), "topology"
    except ValueError as error:
        names = ", ".join(bvh.skeleton.names[:60])
        raise BvhFormatError(
            bvh.path, f"skeleton matches no name table ({', '.join(DIALECTS)}) and its "
                      f"topology is not a biped's ({error}); joints: {names}") from None


def _hip_height(rest: np.ndarray, roles: dict[str, int], up: np.ndarray) -> float:
    """Rest height of the root above the lower toe tip, file units."""
    toes = [rest[roles[r]] @ up for r in TOE_TIP_ROLES + ("left_ankle", "right_ankle")]
    return float(rest[roles["pelvis"]] @ up - min(toes))


def _unit_scale(bvh: BvhFile, rest: np.ndarray, roles: dict[str, int], up: np.ndarray,
                config: BvhConfig) -> tuple[str, float]:
    if config.unit_m is not None:
        return "override", float(config.unit_m)
    hip = _hip_height(rest, roles, up)
    fits = {name: unit for name, unit in CANDIDATE_UNITS_M.items()
            if HIP_HEIGHT_RANGE_M[0] <= hip * unit <= HIP_HEIGHT_RANGE_M[1]}
    if not fits:
        raise BvhFormatError(
            bvh.path, f"rest hip height is {hip:.4g} file units, which is no human hip height "
                      f"({HIP_HEIGHT_RANGE_M[0]}-{HIP_HEIGHT_RANGE_M[1]} m) in any known unit "
                      f"({', '.join(CANDIDATE_UNITS_M)}); set retarget.bvh.unit_m")
    name = min(fits, key=lambda n: abs(np.log(hip * fits[n] / _HIP_HEIGHT_TYPICAL_M)))
    return name, fits[name]


def _body_joint_columns(bvh: BvhFile, roles: dict[str, int]) -> list[int]:
    """Joints whose rotations judge the lead-in: everything but what lies below the wrists,
    the ankles and the head (fingers, thumbs, toes, eyes: noisy channels)."""
    skeleton = bvh.skeleton
    excluded: set[int] = set()
    for role in ("left_wrist", "right_wrist", "head", "left_foot", "right_foot"):
        stack = [roles[role]]
        while stack:
            joint = stack.pop()
            excluded.add(joint)
            stack += skeleton.children(joint)
    return [j for j in range(len(skeleton.names))
            if j not in excluded and not skeleton.is_end_site[j]]


def _capture_span(bvh: BvhFile, global_rotations: np.ndarray, positions_m: np.ndarray,
                  roles: dict[str, int], config: BvhConfig) -> tuple[int, int]:
    """[first, last) frames of capture: lead-in and repeated last frames dropped.

    Lead-in: inside the first ``lead_in_window_s``, a frame whose rotations are all whole
    degrees (a synthetic reference pose; all zeros included), or any frame followed by a
    jump faster than the lead-in speeds, and every frame before it.
    """
    frames = bvh.motion.shape[0]
    fps = bvh.fps
    window = min(frames - 1, max(1, int(round(config.lead_in_window_s * fps))))
    rotation_columns = [c for c, name in enumerate(
        n for names in bvh.skeleton.channels for n in names) if name in _ROTATION_CHANNELS]
    first = 0
    columns = _body_joint_columns(bvh, roles)
    relative = np.einsum("fjki,fjkl->fjil", global_rotations[:-1, columns],
                         global_rotations[1:, columns])
    cos = np.clip((np.trace(relative, axis1=-2, axis2=-1) - 1.0) / 2.0, -1.0, 1.0)
    joint_speed = np.arccos(cos).max(axis=1) * fps  # [F-1]
    root_speed = step_speed(positions_m[:, 0], fps)
    for t in range(window):
        reference = np.all(bvh.motion[t, rotation_columns] == np.round(
            bvh.motion[t, rotation_columns]))
        jump = (joint_speed[t] > config.lead_in_joint_speed_rad_s
                or root_speed[t] > config.lead_in_root_speed_mps)
        if reference or jump:
            first = t + 1
    # Blend-in: after a lead-in, frames still moving much faster than the capture that
    # follows are part of it (a ramp from the reference pose, decaying frame by frame).
    while 0 < first < window and joint_speed[first] > config.lead_in_blend_ratio * np.median(
            joint_speed[first + 1: first + 1 + window]):
        first += 1
    last = frames
    while last - 1 > first and np.array_equal(bvh.motion[last - 1], bvh.motion[last - 2]):
        last -= 1
    return first, last


def _rest_correction(rest_m: np.ndarray, roles: dict[str, int],
                     file_from_canonical: np.ndarray) -> np.ndarray:
    """[22, 3, 3] rotation per body joint taking its SMPL-X rest bone onto the file's rest bone
    (canonical axes). Identity for joints whose bone the file does not define."""
    from retarget.skeleton import rest_joint_heights

    smpl = rest_joint_heights()
    children: dict[int, int] = {}
    for joint, parent in enumerate(SMPLX_PARENTS):
        if parent >= 0 and parent not in children:
            children[parent] = joint
    children[SMPLX_BODY_JOINTS.index("left_ankle")] = SMPLX_BODY_JOINTS.index("left_foot")
    children[SMPLX_BODY_JOINTS.index("right_ankle")] = SMPLX_BODY_JOINTS.index("right_foot")
    corrections = np.tile(np.eye(3), (len(SMPLX_BODY_JOINTS), 1, 1))
    for joint, child in children.items():
        name, child_name = SMPLX_BODY_JOINTS[joint], SMPLX_BODY_JOINTS[child]
        if name in ("pelvis", "spine1", "spine2", "spine3", "neck"):
            continue  # upright trunk in every dialect; its children fan out
        smpl_bone = np.subtract(smpl[child_name], smpl[name])
        file_bone = file_from_canonical.T @ (rest_m[roles[child_name]] - rest_m[roles[name]])
        if np.linalg.norm(file_bone) < 1e-6 or np.linalg.norm(smpl_bone) < 1e-9:
            continue
        corrections[joint] = quat_to_matrix(quat_between_vectors(smpl_bone, file_bone))
    return corrections


def _human_motion(bvh: BvhFile, rest_m: np.ndarray, global_rotations: np.ndarray,
                  positions_m: np.ndarray, roles: dict[str, int], world_from_file: np.ndarray,
                  file_from_canonical: np.ndarray, leg_length_m: float) -> HumanMotion:
    """Body joints + sole points, world Z-up metres, rotations as SMPL-X joint frames."""
    body = [roles[name] for name in SMPLX_BODY_JOINTS]
    correction = _rest_correction(rest_m, roles, file_from_canonical)
    rotations = world_from_file @ global_rotations[:, body] @ file_from_canonical @ correction
    points = np.einsum("ij,fkj->fki", world_from_file, positions_m[:, body])
    feet = _sole_points(rest_m, global_rotations, positions_m, roles, file_from_canonical,
                        bvh.fps, leg_length_m)
    foot_points = np.einsum("ij,fkj->fki", world_from_file, feet)
    foot_rotations = rotations[:, [SMPLX_BODY_JOINTS.index(n) for n in
                                   ("left_ankle", "left_foot", "right_ankle", "right_foot")]]
    quats = matrix_to_quat(np.concatenate([rotations, foot_rotations], axis=1))
    return HumanMotion(fps=bvh.fps, joint_names=HUMAN_MOTION_JOINTS,
                       positions=np.concatenate([points, foot_points], axis=1),
                       rotations=quats, source=bvh.path, source_sha256=file_sha256(bvh.path),
                       body_model=BODY_MODEL_NAME)


def _sole_points(rest_m: np.ndarray, global_rotations: np.ndarray, positions_m: np.ndarray,
                 roles: dict[str, int], file_from_canonical: np.ndarray,
                 fps: float, leg_length_m: float) -> np.ndarray:
    """[F, 4, 3] heel and toe sole points (FOOT_POINTS order), file axes, metres.

    Both ride the ankle as one rigid foot (the robot's foot is rigid, and the CMU toe channels
    are noisy: points riding them scatter stance heights by centimetres). BVH has no sole, the
    rest pose is no stance, and the CMU toe tip sits on the toe's bone axis, ~3 cm above the
    floor in stance. So the sole's direction comes from the clip's own stance frames (ankle
    and toe tip both still: the foot's "down" in the ankle frame), and its distance below the
    ankle from the published ratio (ankle height 0.039 H, hip to ankle 0.491 H: Drillis &
    Contini via Winter, as the skeleton body model) applied to the subject's leg length. Heel
    and toe lie on that sole, the toe under the toe tip, the heel a third of the ankle-to-toe
    length behind the ankle. With too few stance frames the rest pose's "down" stands in.
    """
    from retarget.skeleton import ANKLE_HEIGHT_RATIO, HIP_HEIGHT_RATIO

    ankle_height_m = leg_length_m * ANKLE_HEIGHT_RATIO / (HIP_HEIGHT_RATIO - ANKLE_HEIGHT_RATIO)
    up = file_from_canonical[:, 1]
    points = {}
    for side in ("left", "right"):
        ankle, tip = roles[f"{side}_ankle"], roles[f"{side}_toe_tip"]
        rotation = global_rotations[:, ankle]
        along = rest_m[tip] - rest_m[ankle]
        up_local = _stance_up(positions_m[:, ankle], positions_m[:, tip], rotation, up, fps)
        height = ankle_height_m
        forward = along - (along @ up_local) * up_local
        sole = positions_m[:, ankle] - height * (rotation @ up_local)
        points[f"{side}_heel"] = sole - rotation @ (forward / 3.0)
        points[f"{side}_toe"] = sole + rotation @ forward
    return np.stack([points[name] for name in FOOT_POINTS], axis=1)


_STANCE_SPEED_MPS = 0.1  # human scale: a planted foot's points move slower than this
_MIN_STANCE_FRAMES = 5


def _stance_up(ankle: np.ndarray, toe: np.ndarray, rotation: np.ndarray, up: np.ndarray,
               fps: float) -> np.ndarray:
    """The world up in the ankle frame, over the frames where ankle and toe tip are both still
    (the rest pose's when there are too few)."""
    from scipy.ndimage import gaussian_filter1d

    if ankle.shape[0] < 3:
        return up
    sigma = 0.03 * fps
    speeds = [np.linalg.norm(np.gradient(gaussian_filter1d(p, sigma, axis=0, mode="nearest"),
                                         axis=0), axis=-1) * fps for p in (ankle, toe)]
    stance = (speeds[0] < _STANCE_SPEED_MPS) & (speeds[1] < _STANCE_SPEED_MPS)
    if stance.sum() < _MIN_STANCE_FRAMES:
        return up
    up_local = np.median(np.einsum("fji,j->fi", rotation[stance], up), axis=0)
    return up_local / np.linalg.norm(up_local)
