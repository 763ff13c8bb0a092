"""Human motion -> robot-sized IK targets: scaling, heading, ground alignment, target poses.

Steps (per clip):
1. scale = robot leg length / human leg length (hip -> knee -> ankle; the mapping names the
   chains), overridable per task;
2. positions scaled about the pelvis: the pelvis path is scaled about its first-frame ground
   point (so the clip starts where it started, with the same heading: nothing is rotated), and
   every point keeps its scaled offset from the pelvis;
3. ground from stance (:func:`estimate_ground`): a plane fitted robustly to the sole points
   while they are slow (standing feet), so a glitch or a kick-step's lowest frame does not set
   the floor; the clip is levelled onto it (a capture floor tilted by a degree or two would
   otherwise put stance feet centimetres above or below z = 0 at the two ends of a walk);
4. target poses: each mapped robot frame gets a position (mean of its human points, shifted by
   its limb-root correction, plus a local offset) and a rotation (its human joint's world
   rotation times the mapping's frame change); feet get a pose from their sole points.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import mujoco
import numpy as np
from scipy.ndimage import gaussian_filter1d

from retarget.human import HumanMotion
from retarget.mapping import FootMapping, FrameMapping, IKMapping
from robots import Robot
from robots.errors import AmpkitError
from robots.rotations import (
    matrix_to_quat,
    quat_between_vectors,
    quat_mul,
    quat_rotate,
    quat_to_matrix,
)

_PELVIS = "pelvis"
_MIN_SEGMENT_M = 1e-6


class TargetError(AmpkitError):
    """Human motion that cannot be mapped onto the robot (degenerate legs or feet)."""


@dataclass(frozen=True)
class GroundConfig:
    """Ground from stance (lengths and speeds at robot scale).

    Attributes:
        stance_speed_mps: Sole points slower than this are stance candidates [m/s].
        smoothing_s: Speeds are measured on sole points low-passed with a Gaussian of this
            standard deviation [s].
        min_samples: Fewer stance samples than this: the floor is the lowest sole point.
        max_tilt_deg: A fitted floor steeper than this is not trusted; a level one is used.
        inlier_m: Samples further than this from the fitted plane are left out of the refit
            (a foot resting on a step, a lifted foot held still) [m].
    """

    BOUNDS: ClassVar[dict[str, str]] = {
        "stance_speed_mps": "> 0", "smoothing_s": ">= 0", "min_samples": ">= 3",
        "max_tilt_deg": "[0, 45]", "inlier_m": "> 0"}

    stance_speed_mps: float = 0.05
    smoothing_s: float = 0.03
    min_samples: int = 10
    max_tilt_deg: float = 4.0
    inlier_m: float = 0.01


@dataclass(frozen=True)
class Ground:
    """A floor plane z = height + slope . (x, y) in the scaled human's frame.

    Attributes:
        height_m: Height at the origin [m]; slope: [2] dz/dx, dz/dy.
        samples: Stance samples used (0: the fallback, the lowest sole point).
    """

    height_m: float
    slope: np.ndarray
    samples: int

    @property
    def tilt_deg(self) -> float:
        return float(np.degrees(np.arctan(np.linalg.norm(self.slope))))


def estimate_ground(points: np.ndarray, fps: float, config: GroundConfig) -> Ground:
    """Floor plane from slow sole points: least squares, then refit on the inliers.

    Args:
        points: [T, P, 3] sole points [m].
        fps: Frame rate [Hz].
        config: Thresholds.
    """
    smooth = points
    if points.shape[0] >= 3 and config.smoothing_s > 0:
        smooth = gaussian_filter1d(points, sigma=config.smoothing_s * fps, axis=0,
                                   mode="nearest")
    speed = (np.linalg.norm(np.gradient(smooth, axis=0), axis=-1) * fps
             if points.shape[0] >= 2 else np.zeros(points.shape[:2]))
    slow = smooth[speed < config.stance_speed_mps]  # [N, 3]
    if len(slow) < config.min_samples:
        return Ground(float(points[..., 2].min()), np.zeros(2), 0)
    keep = np.ones(len(slow), dtype=bool)
    # A slow point held high (a lifted foot) is above the floor, never below: start from
    # the lower half so the first fit is not pulled up.
    keep &= slow[:, 2] <= np.median(slow[:, 2])
    height, slope = float(np.median(slow[:, 2])), np.zeros(2)
    for _ in range(3):
        if keep.sum() < config.min_samples:
            break
        design = np.column_stack([np.ones(int(keep.sum())), slow[keep, :2]])
        coef, *_ = np.linalg.lstsq(design, slow[keep, 2], rcond=None)
        height, slope = float(coef[0]), coef[1:]
        if np.degrees(np.arctan(np.linalg.norm(slope))) > config.max_tilt_deg:
            height, slope = float(np.median(slow[keep, 2])), np.zeros(2)
        residual = slow[:, 2] - (height + slow[:, :2] @ slope)
        keep = np.abs(residual) <= config.inlier_m
    residual = slow[keep, 2] - (height + slow[keep, :2] @ slope) if keep.any() else np.zeros(1)
    return Ground(height + float(np.median(residual)), np.asarray(slope, dtype=float),
                  int(keep.sum()))


def level_onto(positions: np.ndarray, rotations: np.ndarray, ground: Ground,
               center_xy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rotate points and rotations so ``ground`` becomes z = 0 (about its point under
    ``center_xy``, which keeps its horizontal place)."""
    normal = np.array([-ground.slope[0], -ground.slope[1], 1.0])
    level = quat_between_vectors(normal, np.array([0.0, 0.0, 1.0]))
    pivot = np.array([center_xy[0], center_xy[1],
                      ground.height_m + float(center_xy @ ground.slope)])
    matrix = quat_to_matrix(level)
    levelled = (positions - pivot) @ matrix.T + np.array([pivot[0], pivot[1], 0.0])
    return levelled, quat_mul(np.broadcast_to(level, rotations.shape), rotations)


@dataclass(frozen=True)
class RobotGeometry:
    """What target building needs to know about the robot, measured on its zero pose.

    Attributes:
        leg_length_m: Mean hip -> knee -> ankle chain length of the mapping's robot legs.
        body_in_root: Position of every body in the root body's frame, name -> [3].
        site_in_body: Position of every site in its body's frame, name -> [3].
        site_quat_in_body: Rotation of every site in its body's frame, name -> [4] wxyz.
    """

    leg_length_m: float
    body_in_root: dict[str, np.ndarray]
    site_in_body: dict[str, np.ndarray]
    site_quat_in_body: dict[str, np.ndarray]

    @classmethod
    def measure(cls, robot: Robot, mapping: IKMapping) -> RobotGeometry:
        model = robot.model
        data = mujoco.MjData(model)
        mujoco.mj_kinematics(model, data)
        root_id = model.body(robot.spec.root_body).id
        root_pos, root_mat = data.xpos[root_id], data.xmat[root_id].reshape(3, 3)
        body_in_root = {
            model.body(i).name: root_mat.T @ (data.xpos[i] - root_pos) for i in range(model.nbody)
        }
        site_in_body, site_quat_in_body = {}, {}
        for i in range(model.nsite):
            body = model.site_bodyid[i]
            body_mat = data.xmat[body].reshape(3, 3)
            name = model.site(i).name
            site_in_body[name] = body_mat.T @ (data.site_xpos[i] - data.xpos[body])
            site_quat_in_body[name] = matrix_to_quat(body_mat.T @ data.site_xmat[i].reshape(3, 3))
        lengths = [
            sum(np.linalg.norm(data.xpos[model.body(b).id] - data.xpos[model.body(a).id])
                for a, b in zip(chain[:-1], chain[1:], strict=True))
            for chain in mapping.robot_legs
        ]
        return cls(leg_length_m=float(np.mean(lengths)), body_in_root=body_in_root,
                   site_in_body=site_in_body, site_quat_in_body=site_quat_in_body)


@dataclass
class PoseTrajectory:
    """Target poses over a clip: ``position`` [T, 3] m and ``quat`` [T, 4] wxyz."""

    position: np.ndarray
    quat: np.ndarray


@dataclass
class FootPoses:
    """Free (contact-unaware) foot targets of one foot over a clip.

    Attributes:
        body: Target pose of the robot foot body, from the human sole points.
        sole_points: [T, 2, 3] the human heel and toe after scaling, alignment and the
            limb-root shift [m].
    """

    body: PoseTrajectory
    sole_points: np.ndarray


@dataclass
class ScaledHuman:
    """Human motion at robot size.

    Attributes:
        positions: [T, J, 3] scaled and ground-aligned points (joints + foot points) [m].
        rotations: [T, J, 4] world rotations (unchanged by scaling), wxyz.
        joint_names: Names of the J points.
        scale: Human -> robot scale of the clip (robot leg / human leg).
        ground_offset_m: Vertical shift applied for ground alignment (floor height under
            the first pelvis position) [m].
        ground_tilt_deg: Tilt of the fitted floor the clip was levelled from [deg].
        ground_samples: Stance samples the floor was fitted to (0: lowest sole point).
        human_leg_length_m: The clip's human leg length [m].
        ankle_lift_m: Raise of every non-foot target (``match_ankle_height``) [m].
    """

    positions: np.ndarray
    rotations: np.ndarray
    joint_names: tuple[str, ...]
    scale: float
    ground_offset_m: float
    human_leg_length_m: float
    ankle_lift_m: float = 0.0
    ground_tilt_deg: float = 0.0
    ground_samples: int = 0

    def index(self, name: str) -> int:
        return self.joint_names.index(name)

    def point(self, name: str) -> np.ndarray:
        """[T, 3] position of one point."""
        return self.positions[:, self.joint_names.index(name)]

    def rotation(self, name: str) -> np.ndarray:
        """[T, 4] rotation of one point."""
        return self.rotations[:, self.joint_names.index(name)]


def human_leg_length(human: HumanMotion, mapping: IKMapping) -> float:
    """Mean over the mapping's human legs of the summed segment lengths (median over frames)."""
    lengths = []
    for chain in mapping.human_legs:
        total = 0.0
        for a, b in zip(chain[:-1], chain[1:], strict=True):
            segment = human.positions[:, human.index(b)] - human.positions[:, human.index(a)]
            total += float(np.median(np.linalg.norm(segment, axis=-1)))
        lengths.append(total)
    length = float(np.mean(lengths))
    if not np.isfinite(length) or length < _MIN_SEGMENT_M:
        raise TargetError(f"{human.source}: human leg length is {length} m")
    return length


def scale_human(human: HumanMotion, mapping: IKMapping, geometry: RobotGeometry,
                ground_config: GroundConfig | None = None) -> ScaledHuman:
    """Scale about the pelvis (its path about its first-frame ground point), then put the
    floor found from stance (:func:`estimate_ground`) at z = 0.

    Per-task scale overrides are applied later, in :func:`frame_targets` / :func:`foot_poses`,
    as offsets from the scaled pelvis.
    """
    leg = human_leg_length(human, mapping)
    scale = geometry.leg_length_m / leg
    positions = np.asarray(human.positions, dtype=np.float64)
    pelvis0 = positions[0, human.index(_PELVIS)]
    center = np.array([pelvis0[0], pelvis0[1], 0.0])
    scaled = center + scale * (positions - center)
    sole_columns = [human.index(name) for foot in mapping.feet
                    for name in (foot.human_heel, foot.human_toe)]
    ground = estimate_ground(scaled[:, sole_columns], float(human.fps),
                             ground_config or GroundConfig())
    rotations = np.asarray(human.rotations, dtype=np.float64)
    scaled, rotations = level_onto(scaled, rotations, ground, center[:2])
    result = ScaledHuman(positions=scaled, rotations=rotations,
                         joint_names=tuple(human.joint_names), scale=scale,
                         ground_offset_m=ground.height_m + float(center[:2] @ ground.slope),
                         human_leg_length_m=leg, ground_tilt_deg=ground.tilt_deg,
                         ground_samples=ground.samples)
    if mapping.match_ankle_height:
        result.ankle_lift_m = ankle_lift(result, mapping, geometry)
    return result


def ankle_lift(human: ScaledHuman, mapping: IKMapping, geometry: RobotGeometry) -> float:
    """(robot ankle height above its heel site) - (scaled human ankle above its heel) [m].

    Heights are along the foot's up axis (the heel rides the ankle, so the human's is a
    constant of the body model; the median over frames and the mean over feet are taken).
    """
    lifts = []
    for foot in mapping.feet:
        robot_height = -float(geometry.site_in_body[foot.robot_heel_site][2])
        ankle = target_rotation(human, mapping, foot.rotation_from, np.array([1.0, 0, 0, 0]))
        up = quat_rotate(ankle, np.array([0.0, 0.0, 1.0]))
        rise = human.point(foot.rotation_from) - human.point(foot.human_heel)
        lifts.append(robot_height - float(np.median(np.sum(rise * up, axis=-1))))
    return float(np.mean(lifts))


def _task_points(human: ScaledHuman, names: tuple[str, ...], scale: float | None) -> np.ndarray:
    """[T, len(names), 3] points, re-scaled about the pelvis when ``scale`` overrides."""
    points = human.positions[:, [human.index(n) for n in names]]
    if scale is None:
        return points
    pelvis = human.point(_PELVIS)[:, None, :]
    return pelvis + (scale / human.scale) * (points - pelvis)


def target_rotation(human: ScaledHuman, mapping: IKMapping, joint: str,
                    offset_wxyz: np.ndarray) -> np.ndarray:
    """[T, 4] robot-frame target rotation: R_joint * offset * human_from_robot."""
    return quat_mul(quat_mul(human.rotation(joint), offset_wxyz), mapping.human_from_robot_wxyz)


def root_pose(human: ScaledHuman, mapping: IKMapping) -> PoseTrajectory:
    """Target pose of the root task (it places the limb roots of every other task)."""
    return _frame_pose(human, mapping, mapping.root, limb_shift=None)


def limb_shift(human: ScaledHuman, root: PoseTrajectory, geometry: RobotGeometry,
               human_root: str | None, robot_root: str | None) -> np.ndarray:
    """[T, 3] horizontal shift moving the scaled human limb root onto the robot's.

    The robot limb root is placed by the root target pose; proportions differ (a small robot
    has relatively wide hips), so without the shift stance width would follow the human's.
    """
    frames = root.position.shape[0]
    if human_root is None or robot_root is None:
        return np.zeros((frames, 3))
    local = geometry.body_in_root[robot_root]
    robot_world = root.position + quat_rotate(root.quat, np.broadcast_to(local, (frames, 3)))
    shift = robot_world - human.point(human_root)
    shift[:, 2] = 0.0  # heights come from the human (ground contact), only widths move
    return shift


def _frame_pose(human: ScaledHuman, mapping: IKMapping, task: FrameMapping,
                limb_shift: np.ndarray | None) -> PoseTrajectory:
    frames = human.positions.shape[0]
    if task.rotation_from is not None:
        quat = target_rotation(human, mapping, task.rotation_from, task.rotation_offset_wxyz)
    else:
        quat = np.tile([1.0, 0.0, 0.0, 0.0], (frames, 1))
    if task.human:
        position = _task_points(human, task.human, task.scale).mean(axis=1)
        position[:, 2] += human.ankle_lift_m
        if limb_shift is not None:
            position = position + limb_shift
        position = position + quat_rotate(quat, np.broadcast_to(task.offset_m, (frames, 3)))
    else:
        position = np.zeros((frames, 3))
    return PoseTrajectory(position=position, quat=quat)


def frame_targets(human: ScaledHuman, mapping: IKMapping,
                  geometry: RobotGeometry) -> list[PoseTrajectory]:
    """Target poses of every ``[[task]]`` of the mapping, in mapping order (root first)."""
    root = root_pose(human, mapping)
    poses = [root]
    for task in mapping.frames[1:]:
        shift = limb_shift(human, root, geometry, task.human_limb_root, task.robot_limb_root)
        poses.append(_frame_pose(human, mapping, task, shift))
    return poses


def foot_poses(human: ScaledHuman, mapping: IKMapping, geometry: RobotGeometry,
               foot: FootMapping) -> FootPoses:
    """Free target pose of a foot body from the human heel and toe.

    The robot sole line (heel site -> toe site) is laid along the human heel -> toe line with
    its midpoint on the human's; roll comes from the human ``rotation_from`` joint.
    """
    root = root_pose(human, mapping)
    shift = limb_shift(human, root, geometry, foot.human_limb_root, foot.robot_limb_root)
    sole = _task_points(human, (foot.human_heel, foot.human_toe), foot.scale) + shift[:, None]
    heel, toe = sole[:, 0], sole[:, 1]
    along = toe - heel
    length = np.linalg.norm(along, axis=-1, keepdims=True)
    if np.any(length < _MIN_SEGMENT_M):
        raise TargetError(f"{foot.name}: the human heel and toe coincide")
    x_axis = along / length
    ankle = target_rotation(human, mapping, foot.rotation_from, np.array([1.0, 0.0, 0.0, 0.0]))
    y_ref = quat_rotate(ankle, np.array([0.0, 1.0, 0.0]))
    y_axis = y_ref - np.sum(y_ref * x_axis, axis=-1, keepdims=True) * x_axis
    y_norm = np.linalg.norm(y_axis, axis=-1, keepdims=True)
    # A foot pointing along the ankle's y (impossible anatomically) falls back to level roll.
    level = np.cross(np.array([0.0, 0.0, 1.0]), x_axis)
    y_axis = np.where(y_norm > 1e-6, y_axis / np.maximum(y_norm, 1e-12), level)
    y_axis /= np.linalg.norm(y_axis, axis=-1, keepdims=True)
    sole_frame = np.stack([x_axis, y_axis, np.cross(x_axis, y_axis)], axis=-1)  # columns
    body_quat = quat_mul(matrix_to_quat(sole_frame), sole_to_body(geometry, foot))
    middle_local = 0.5 * (geometry.site_in_body[foot.robot_heel_site]
                          + geometry.site_in_body[foot.robot_toe_site])
    frames = sole.shape[0]
    body_position = 0.5 * (heel + toe) - quat_rotate(
        body_quat, np.broadcast_to(middle_local, (frames, 3)))
    return FootPoses(body=PoseTrajectory(position=body_position, quat=body_quat),
                     sole_points=sole)


def sole_to_body(geometry: RobotGeometry, foot: FootMapping) -> np.ndarray:
    """[4] rotation from the sole frame (x along heel -> toe) to the foot body frame."""
    along = geometry.site_in_body[foot.robot_toe_site] - geometry.site_in_body[foot.robot_heel_site]
    sole_in_body = quat_between_vectors(np.array([1.0, 0.0, 0.0]), along)
    return sole_in_body * np.array([1.0, -1.0, -1.0, -1.0])  # body = sole * inverse(sole_in_body)
