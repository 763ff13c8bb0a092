"""Retargeting a human clip onto a robot: the per-clip pipeline (the batch over a directory is
``retarget.stages``).

Per clip: resample to the output rate -> body-model FK -> scale about the pelvis and align to
the ground (``retarget.targets``) -> contact detection and pinned feet (``retarget.contacts``)
-> per-frame mink IK (``retarget.ik``) -> contact-safe low-pass -> quality metrics
(``retarget.quality``) -> ``RobotMotion``.

The output rate is the source rate capped at ``max_fps`` (default 50 Hz, the AMP rate): IK
cost is per output frame, and downstream conversion works at 50 Hz anyway. The rate used is
the file's ``fps`` attribute.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

import robots
from retarget.amass import load_amass
from retarget.balance import (
    BalanceConfig,
    com_positions,
    com_target,
    lateral_tilt,
    sideways_only,
)
from retarget.body_model_base import DEFAULT_HEIGHT_M, BodyModel
from retarget.body_models import make_body_model
from retarget.bvh import BvhConfig, load_bvh
from retarget.contacts import (
    ContactConfig,
    FootPlan,
    SmoothingConfig,
    detect_contacts,
    lowpass_human,
    lowpass_outside_contacts,
    plan_foot,
    swing_clearance,
)
from retarget.gates import GateConfig, input_gates, motion_gates
from retarget.gmr import write_gmr_pickle
from retarget.human import HUMAN_MOTION_JOINTS, HumanClip, HumanMotion
from retarget.ik import IKConfig, IKResult, RobotIK, TrackTargets
from retarget.mapping import FootMapping, IKMapping, load_mapping
from retarget.quality import (
    Keypoint,
    QualityConfig,
    clip_quality,
    direction_errors,
    frame_positions,
)
from retarget.skeleton import SkeletonBodyModel, fit_height
from retarget.targets import (
    FootPoses,
    GroundConfig,
    PoseTrajectory,
    RobotGeometry,
    foot_poses,
    frame_targets,
    human_leg_length,
    scale_human,
    sole_to_body,
)
from robots import Robot
from robots.errors import AmpkitError, InputFileError
from robots.motion import RobotMotion, write_motion
from robots.rotations import (
    axis_angle_to_quat,
    quat_mul,
    quat_slerp,
    quat_to_axis_angle,
    quat_yaw,
)

RETARGET_VERSION = 1
"""Bumped when the algorithm changes its output for the same parameters (outputs go stale)."""
OUTPUT_FORMATS = ("h5", "gmr")
TIME_SCALINGS = ("none", "froude")
"""How a clip's timeline is mapped onto the robot (``RetargetConfig.time_scaling``)."""
SOURCE_SUFFIXES: dict[str, str] = {".npz": "AMASS SMPL-X / SMPL+H", ".bvh": "BVH motion capture"}
"""File types a clip can come from (suffix -> what it is)."""
# Below the floor by more than this after smoothing: the frame keeps its unsmoothed pose.
_SMOOTHING_FLOOR_SLACK_M = 1e-4


class ClipRejected(AmpkitError):
    """A clip that produced no usable motion; the message is the reason."""


@dataclass(frozen=True)
class RejectConfig:
    """When a retargeted clip is rejected instead of written.

    Attributes:
        min_frames: Fewer output frames than this.
        max_keypoint_error_m: Mean keypoint error above this [m].
        max_penetration_m: Foot penetration deeper than this [m].
        min_fps: Source frame rate below this [Hz]: too coarse to follow a step (rejected
            for its rate, before any IK).
    """

    BOUNDS: ClassVar[dict[str, str]] = {
        "min_frames": ">= 2", "max_keypoint_error_m": "> 0", "max_penetration_m": ">= 0",
        "min_fps": "> 0"}

    min_frames: int = 10
    max_keypoint_error_m: float = 0.10
    max_penetration_m: float = 0.02
    min_fps: float = 10.0


@dataclass(frozen=True)
class RetargetConfig:
    """Everything that decides a retarget's output (the ``retarget:`` section of params.yaml).

    Attributes:
        robot: Robot name (a folder under ``robots/`` with an ``ik_mapping.toml``).
        body_model: ``"skeleton"`` or ``"smplx"``.
        body_model_dir: Model directory for ``smplx``.
        human_height_m: Body height of the ``skeleton`` model [m]; None fits it per clip to
            the clip's stance frames (``retarget.skeleton.fit_height``: a 1.5 m and a 1.95 m
            subject both keep their stance feet on the floor).
        max_fps: Output frame rate cap [Hz]; faster sources are resampled; None keeps the
            source rate.
        formats: Output formats: ``"h5"`` (always written) and ``"gmr"`` (a GMR-style pickle).
        bvh: How BVH files are read (units, up axis, lead-in).
        ground: Floor from stance.
        ik, contact, smoothing, quality, reject: Stage settings.
        gates: Plausibility gates (``retarget.gates``): rejects and flags with reasons.
        balance: Centre-of-mass correction for the robot's feet (``retarget.balance``).
        time_scaling: ``"none"`` keeps the human's timeline: the robot moves the scaled
            human's poses at the human's cadence, so a robot of a fraction s of the human's
            leg length walks its strides in slow motion (its pendulum period is sqrt(s) of the
            human's). ``"froude"`` plays the clip sqrt(s) times as long (dynamic similarity:
            the Froude number v^2 / (g l) is kept), so the robot steps at the cadence its own
            legs and gravity give, and its speeds are sqrt(s) of the human's instead of s
            (:func:`froude_time_factor`).
    """

    BOUNDS: ClassVar[dict[str, str]] = {"human_height_m": "> 0"}

    robot: str = "wildrobot"
    body_model: str = "skeleton"
    body_model_dir: str | None = None
    human_height_m: float | None = None
    max_fps: float | None = 50.0
    formats: tuple[str, ...] = ("h5",)
    bvh: BvhConfig = field(default_factory=BvhConfig)
    ik: IKConfig = field(default_factory=IKConfig)
    ground: GroundConfig = field(default_factory=GroundConfig)
    contact: ContactConfig = field(default_factory=ContactConfig)
    smoothing: SmoothingConfig = field(default_factory=SmoothingConfig)
    quality: QualityConfig = field(default_factory=QualityConfig)
    reject: RejectConfig = field(default_factory=RejectConfig)
    gates: GateConfig = field(default_factory=GateConfig)
    balance: BalanceConfig = field(default_factory=BalanceConfig)
    time_scaling: str = "none"

    def __post_init__(self) -> None:
        if self.time_scaling not in TIME_SCALINGS:
            raise ValueError(f"time_scaling={self.time_scaling!r}; valid: "
                             f"{', '.join(TIME_SCALINGS)}")
        unknown = sorted(set(self.formats) - set(OUTPUT_FORMATS))
        if unknown:
            raise ValueError(f"unknown output format(s) {unknown}; valid: {OUTPUT_FORMATS}")
        if self.max_fps is not None and self.max_fps <= 0:
            raise ValueError(f"max_fps must be > 0 or null, got {self.max_fps}")


@dataclass
class ClipResult:
    """One retargeted clip: the motion (with quality) and what produced it."""

    motion: RobotMotion
    feet: list[FootPlan]
    iterations: np.ndarray


@functools.cache
def code_fingerprint() -> str:
    """SHA-256 over the source of ``retarget`` and ``robots`` (the code that makes a motion).

    Recorded with the parameters so that an output made by older code is never "current".
    """
    digest = hashlib.sha256()
    for package in (Path(__file__).parent, Path(robots.__file__).parent):
        for path in sorted(package.rglob("*")):
            if path.suffix in (".py", ".xml", ".toml") and "__pycache__" not in path.parts:
                digest.update(path.relative_to(package.parent).as_posix().encode())
                digest.update(path.read_bytes())
    return digest.hexdigest()


def retarget_params(config: RetargetConfig, mapping: IKMapping) -> dict[str, Any]:
    """The parameters recorded in every output (and compared to decide if it is current)."""
    settings = dataclasses.asdict(config)
    del settings["formats"]  # which files are written, not what is in them
    params = {
        "version": RETARGET_VERSION,
        "code_sha256": code_fingerprint(),
        "mapping_file": mapping.path.name,
        "mapping_sha256": mapping.sha256,
        "human_joint_names": list(HUMAN_MOTION_JOINTS),
        **settings,
    }
    return json.loads(json.dumps(params))  # the form it takes after a round trip (lists)


def resample_clip(clip: HumanClip, fps: float) -> HumanClip:
    """``clip`` at ``fps`` (linear translation, slerped rotations); unchanged if not faster."""
    if clip.fps <= fps * (1.0 + 1e-9):
        return clip
    count = int(np.floor(clip.duration_s * fps + 1e-9)) + 1
    source_index = np.arange(count) * (clip.fps / fps)
    lower = np.minimum(np.floor(source_index).astype(int), clip.num_frames - 2)
    weight = source_index - lower
    trans = clip.trans[lower] + weight[:, None] * (clip.trans[lower + 1] - clip.trans[lower])
    pose = axis_angle_to_quat(np.concatenate([clip.root_orient[:, None], clip.body_pose], axis=1))
    blended = quat_to_axis_angle(quat_slerp(pose[lower], pose[lower + 1], weight[:, None]))
    return dataclasses.replace(clip, fps=float(fps), trans=trans, root_orient=blended[:, 0],
                               body_pose=blended[:, 1:])


def froude_time_factor(human_leg_m: float, robot_leg_m: float) -> float:
    """Duration of the robot's motion per second of the human's under dynamic similarity.

    Equal Froude numbers v^2 / (g l) for legs of lengths l_h and l_r = s l_h, with positions
    scaled by s, give velocities scaled by sqrt(s) and so times scaled by s / sqrt(s) =
    sqrt(s): a pendulum's period goes with sqrt(l / g).
    """
    return float(np.sqrt(robot_leg_m / human_leg_m))


def time_scaled(human: HumanMotion, factor: float, max_fps: float | None) -> HumanMotion:
    """``human`` played ``factor`` times as long (factor < 1: faster), at its own frame rate
    divided by ``factor`` and resampled to at most ``max_fps``."""
    played = dataclasses.replace(human, fps=float(human.fps) / factor)
    return played if max_fps is None else resample_motion(played, max_fps)


def supported_types() -> str:
    """``.npz (AMASS ...), .bvh (...)`` for error messages."""
    return ", ".join(f"{suffix} ({what})" for suffix, what in SOURCE_SUFFIXES.items())


def resample_motion(human: HumanMotion, fps: float) -> HumanMotion:
    """``human`` at ``fps`` (linear positions, slerped rotations); unchanged if not faster."""
    if human.fps <= fps * (1.0 + 1e-9):
        return human
    duration = (human.num_frames - 1) / human.fps
    count = int(np.floor(duration * fps + 1e-9)) + 1
    source_index = np.arange(count) * (human.fps / fps)
    lower = np.minimum(np.floor(source_index).astype(int), human.num_frames - 2)
    weight = source_index - lower
    positions = human.positions[lower] + weight[:, None, None] * (
        human.positions[lower + 1] - human.positions[lower])
    rotations = quat_slerp(human.rotations[lower], human.rotations[lower + 1],
                           weight[:, None])
    return dataclasses.replace(human, fps=float(fps), positions=positions, rotations=rotations)


class Retargeter:
    """Retargets clips onto one robot with one configuration (build once per process).

    Args:
        config: Retarget settings.
        body_model: Optional prebuilt body model (default: from the config).
    """

    def __init__(self, config: RetargetConfig, body_model: BodyModel | None = None) -> None:
        self.config = config
        self.robot: Robot = robots.load(config.robot)
        self.mapping = load_mapping(self.robot)
        self.geometry = RobotGeometry.measure(self.robot, self.mapping)
        self.ik = RobotIK(self.robot, config.ik, self.mapping.posture_weight)
        self._body_model = body_model
        self.params = retarget_params(config, self.mapping)
        self._contact_sites = self._contact_site_feet()
        self._leg_columns, self._upper_columns = self._joint_groups()

    @property
    def body_model(self) -> BodyModel:
        """Built on first use (the smplx model loads its files then)."""
        if self._body_model is None:
            self._body_model = make_body_model(
                self.config.body_model, self.config.body_model_dir,
                height_m=self.config.human_height_m or DEFAULT_HEIGHT_M)
        return self._body_model

    # --- one clip --------------------------------------------------------------------------

    def retarget_file(self, path: str | Path) -> ClipResult:
        """Load an AMASS ``.npz`` or a ``.bvh`` clip and retarget it (raises InputFileError /
        ClipRejected)."""
        path = Path(path)
        suffix = path.suffix.lower()
        if suffix == ".bvh":
            clip = load_bvh(path, self.config.bvh)
            human = clip.motion
            reasons = input_gates(human.positions, None, self.config.gates)
            if reasons:
                raise ClipRejected("; ".join(reasons))
            if self.config.max_fps is not None:
                human = resample_motion(human, self.config.max_fps)
            self._check_length(human.num_frames, human.fps)
            result = self.retarget_motion(human)
            result.motion.quality.update(source_fps=float(clip.motion.fps), **clip.report())
            return result
        if suffix != ".npz":
            raise InputFileError(path, f"unsupported file type {path.suffix or '(none)'!r}; "
                                       f"supported: {supported_types()}")
        return self.retarget_clip(load_amass(path))

    def _check_rate(self, fps: float) -> None:
        if not fps >= self.config.reject.min_fps:  # NaN too
            raise ClipRejected(f"frame rate {fps:g} Hz is below reject.min_fps="
                               f"{self.config.reject.min_fps:g} Hz")

    def _check_length(self, frames: int, fps: float) -> None:
        self._check_rate(fps)
        if frames < self.config.reject.min_frames:
            raise ClipRejected(f"{frames} frames at {fps:g} Hz, need at least "
                               f"{self.config.reject.min_frames}")

    def retarget_clip(self, clip: HumanClip) -> ClipResult:
        """Retarget a loaded clip."""
        source_fps = clip.fps
        self._check_rate(source_fps)
        reasons = input_gates(clip.trans, np.concatenate(
            [clip.root_orient, clip.body_pose.reshape(clip.num_frames, -1)], axis=1),
            self.config.gates)
        if reasons:
            raise ClipRejected("; ".join(reasons))
        if self.config.max_fps is not None:
            clip = resample_clip(clip, self.config.max_fps)
        self._check_length(clip.num_frames, clip.fps)
        body_model, size = self._sized_body_model(clip)
        result = self.retarget_motion(body_model.forward(clip))
        result.motion.quality.update(source_fps=float(source_fps), **size)
        return result

    def _sized_body_model(self, clip: HumanClip) -> tuple[BodyModel, dict[str, Any]]:
        """The body model for this clip, and the subject size it assumed (for the metrics)."""
        if self.config.body_model != "skeleton":
            return self.body_model, {"subject_height_source": self.config.body_model}
        if self.config.human_height_m is not None:
            return self.body_model, {"subject_height_m": self.config.human_height_m,
                                     "subject_height_source": "params"}
        height, frames = fit_height(clip)
        source = "stance_fit" if frames else "default (no stance to fit)"
        return SkeletonBodyModel(height_m=height), {
            "subject_height_m": height, "subject_height_source": source,
            "subject_height_stance_frames": frames}

    def retarget_motion(self, human: HumanMotion) -> ClipResult:
        """Retarget body-model output (already at the output rate)."""
        human, time_factor = self._robot_timeline(human)
        fps = float(human.fps)
        scaled = scale_human(lowpass_human(human, self.config.smoothing.input_cutoff_hz),
                             self.mapping, self.geometry, self.config.ground)
        poses = frame_targets(scaled, self.mapping, self.geometry)
        free_feet = [foot_poses(scaled, self.mapping, self.geometry, f) for f in self.mapping.feet]
        plans = [self._plan_foot(foot, free, fps)
                 for foot, free in zip(self.mapping.feet, free_feet, strict=True)]
        tracks = self._frame_tracks(poses) + [
            self._foot_track(foot, plan)
            for foot, plan in zip(self.mapping.feet, plans, strict=True)]
        root_points = [scaled.index(name) for name in self.mapping.frames[0].human]
        root_path = scaled.positions[:, root_points].mean(axis=1) if root_points else None
        solution = self.ik.solve_clip(tracks, fps, self._site_clearance(plans), root_path)
        balance: dict[str, float] = {}
        if self.config.balance.enabled:
            solution, balance = self._balanced(solution, tracks, plans, fps, root_path)
        qpos = self._smooth(solution.qpos, plans, fps)
        quality = self._quality(qpos, fps, poses, free_feet, plans, scaled)
        quality.update(scale=scaled.scale, ground_offset_m=scaled.ground_offset_m,
                       ground_tilt_deg=scaled.ground_tilt_deg,
                       ground_stance_samples=scaled.ground_samples,
                       human_leg_length_m=scaled.human_leg_length_m,
                       ankle_lift_m=scaled.ankle_lift_m, time_factor=time_factor,
                       ik_iterations_mean=float(solution.iterations[1:].mean())
                       if len(solution.iterations) > 1 else 0.0,
                       ik_iterations_first_frame=int(solution.iterations[0]),
                       ik_relaxed_steps=int(solution.relaxed_steps),
                       **{f"balance_{k}": v for k, v in balance.items()},
                       joint_speed_at_limit_share=self._at_speed_limit(qpos, fps))
        self._check_usable(qpos, quality)
        gates = self._gates(qpos, fps, human, scaled, poses[0], quality)
        quality.update(gates.as_quality())
        if gates.rejects:
            raise ClipRejected("; ".join(gates.rejects))
        motion = RobotMotion(
            qpos=qpos, human_joints=scaled.positions, fps=fps, robot=self.robot.name,
            joint_names=self.robot.spec.joint_names, source=str(human.source),
            source_sha256=human.source_sha256, body_model=human.body_model,
            retarget_params=self.params, quality=quality,
            human_joint_names=tuple(scaled.joint_names))
        return ClipResult(motion=motion, feet=plans, iterations=solution.iterations)

    def _robot_timeline(self, human: HumanMotion) -> tuple[HumanMotion, float]:
        """``human`` on the robot's timeline (``config.time_scaling``), and the factor its
        duration was multiplied by."""
        if self.config.time_scaling == "none":
            return human, 1.0
        factor = froude_time_factor(human_leg_length(human, self.mapping),
                                    self.geometry.leg_length_m)
        scaled = time_scaled(human, factor, self.config.max_fps)
        self._check_length(scaled.num_frames, scaled.fps)
        return scaled, factor

    def write(self, result: ClipResult, out_path: Path, formats: tuple[str, ...]) -> None:
        """Write the motion file (and the GMR pickle beside it when asked)."""
        write_motion(out_path, result.motion)
        if "gmr" in formats:
            write_gmr_pickle(out_path.with_suffix(".pkl"), result.motion, self.robot)

    # --- pieces ----------------------------------------------------------------------------

    def _plan_foot(self, foot: FootMapping, free: FootPoses, fps: float) -> FootPlan:
        contact = detect_contacts(free.sole_points, fps, self.config.contact)
        return plan_foot(free, contact,
                         self.geometry.site_in_body[foot.robot_heel_site],
                         self.geometry.site_in_body[foot.robot_toe_site],
                         sole_to_body(self.geometry, foot),
                         self.config.ik.floor_height_m, self.config.contact)

    def _balanced(self, solution: IKResult, tracks: list[TrackTargets], plans: list[FootPlan],
                  fps: float, root_path: np.ndarray | None) -> tuple[IKResult, dict[str, float]]:
        """Re-solve with a CoM task on the balanced path (``retarget.balance``); returns the
        new solution and the CoM error before and after and the pelvis roll it took."""
        config = self.config.balance
        model = self.robot.model
        sites = [[int(self.robot.contact_site_ids[i])
                  for i, (foot, _) in enumerate(self._contact_sites) if foot == f]
                 for f in range(len(self.mapping.feet))]
        on_floor = [plan.contact.any(axis=1) for plan in plans]
        target, com = com_target(model, solution.qpos, fps, on_floor[0], on_floor[1],
                                 sites[0], sites[1], config)
        target = sideways_only(target, com[:, :2], quat_yaw(tracks[0].wxyz_xyz[:, :4]))
        error_before = float(np.linalg.norm(target - com[:, :2], axis=1).mean())
        root = dataclasses.replace(tracks[0], orientation_cost=tracks[0].orientation_cost.copy())
        root.orientation_cost[:, 0] = config.root_roll_cost
        hold_cost = np.zeros(model.nv)
        upper = np.isin(self.robot.joint_qpos_addresses, self._upper_columns)
        hold_cost[self.robot.joint_dof_addresses[upper]] = config.upper_body_hold_cost
        solution = self.ik.solve_clip([root, *tracks[1:]], fps, self._site_clearance(plans),
                                      root_path, com_target=target, com_cost=config.com_cost,
                                      hold_qpos=solution.qpos, hold_cost=hold_cost)
        com = com_positions(model, solution.qpos)
        return solution, {
            "com_error_before_m": error_before,
            "com_error_after_m": float(np.linalg.norm(target - com[:, :2], axis=1).mean()),
            "root_roll_std_deg": float(np.degrees(np.std(lateral_tilt(solution.qpos[:, 3:7]))))}

    def _frame_tracks(self, poses: list[PoseTrajectory]) -> list[TrackTargets]:
        tracks = []
        for task, pose in zip(self.mapping.frames, poses, strict=True):
            frames = pose.position.shape[0]
            tracks.append(TrackTargets(
                name=task.name, frame_names=(task.robot_frame,), frame_types=(task.frame_type,),
                frame_index=np.zeros(frames, dtype=np.int8),
                wxyz_xyz=np.concatenate([pose.quat, pose.position], axis=1),
                position_cost=np.tile(task.position_weight, (frames, 1)),
                orientation_cost=np.tile(task.orientation_weight, (frames, 1))))
        return tracks

    def _foot_track(self, foot: FootMapping, plan: FootPlan) -> TrackTargets:
        """Swinging: the foot body chases its pose; in contact: the pinned site holds still."""
        in_contact = (plan.anchor != 0)[:, None]
        site_quat = {name: self.geometry.site_quat_in_body[name]
                     for name in (foot.robot_heel_site, foot.robot_toe_site)}
        quat = plan.body.quat.copy()
        position = plan.body.position.copy()
        for code, site in ((1, foot.robot_heel_site), (2, foot.robot_toe_site)):
            rows = plan.anchor == code
            quat[rows] = quat_mul(plan.body.quat[rows], site_quat[site])
            position[rows] = plan.anchor_position[rows]
        return TrackTargets(
            name=foot.name,
            frame_names=(foot.robot_body, foot.robot_heel_site, foot.robot_toe_site),
            frame_types=("body", "site", "site"),
            frame_index=plan.anchor.copy(),
            wxyz_xyz=np.concatenate([quat, position], axis=1),
            position_cost=np.where(in_contact, foot.contact_position_weight,
                                   foot.position_weight),
            orientation_cost=np.where(in_contact, foot.contact_orientation_weight,
                                      foot.orientation_weight))

    def _smooth(self, qpos: np.ndarray, plans: list[FootPlan], fps: float) -> np.ndarray:
        """Contact-safe low-pass; frames it would push below the floor, or a site out of
        contact below its swing clearance (into the AMP contact band), keep the IK pose."""
        leg_contact = [plan.contact.any(axis=1) for plan in plans]
        smoothed = lowpass_outside_contacts(qpos, fps, self.config.smoothing, self._leg_columns,
                                            leg_contact, self._upper_columns)
        site_ids = self.robot.contact_site_ids
        _, sites = frame_positions(self.robot.model, smoothed, np.zeros(0, dtype=int), site_ids)
        floor = self.config.ik.floor_height_m + self._site_clearance(plans)
        below = (sites[..., 2] < floor - _SMOOTHING_FLOOR_SLACK_M).any(axis=1)
        smoothed[below] = qpos[below]
        return smoothed

    def _quality(self, qpos: np.ndarray, fps: float, poses: list[PoseTrajectory],
                 free_feet: list[FootPoses], plans: list[FootPlan],
                 scaled: Any = None) -> dict[str, Any]:
        keypoints = [Keypoint(task.name, task.robot_frame, task.frame_type, pose.position)
                     for task, pose in zip(self.mapping.frames, poses, strict=True)
                     if task.position_weight.max() > 0]
        keypoints += [Keypoint(foot.name, foot.robot_body, "body", free.body.position)
                      for foot, free in zip(self.mapping.feet, free_feet, strict=True)]
        contact = np.stack([plans[foot].contact[:, point]
                            for foot, point in self._contact_sites], axis=1)
        quality = clip_quality(
            self.robot.model, qpos, fps, keypoints, self.robot.contact_site_ids, contact,
            self.robot.joint_qpos_addresses, self.robot.spec.joint_range_array(),
            poses[0].position, self.config.quality, self.config.ik.floor_height_m)
        if scaled is not None:
            self._add_upper_body(quality, qpos, scaled, len(keypoints))
        return quality

    def _add_upper_body(self, quality: dict[str, Any], qpos: np.ndarray, scaled: Any,
                        count: int) -> None:
        """Torso and shoulder direction errors join the keypoint error (a torso offset the
        position keypoints cannot see, as the chord at the robot's torso length)."""
        frames = {task.rotation_from: task.robot_frame for task in self.mapping.frames}
        needed = ("spine3", "left_shoulder", "right_shoulder")
        if not all(name in frames for name in needed):
            return
        point = scaled.point
        lever = float(np.linalg.norm(self.geometry.body_in_root[frames["left_shoulder"]]
                                     - self.geometry.body_in_root[frames["spine3"]]))
        errors = direction_errors(
            self.robot.model, qpos, frames["spine3"], frames["left_shoulder"],
            frames["right_shoulder"], point("neck") - point("pelvis"),
            point("left_shoulder") - point("right_shoulder"), lever)
        by_frame = quality["keypoint_error_mean_m_by_frame"]
        total = quality["keypoint_error_mean_m"] * count
        for name, error in errors.items():
            by_frame[name] = float(error.mean())
            total += float(error.mean())
            quality["keypoint_error_max_m"] = max(quality["keypoint_error_max_m"],
                                                  float(error.max()))
            quality[f"{name}_error_mean_deg"] = float(np.degrees(
                2 * np.arcsin(np.clip(error / (2 * lever), 0, 1))).mean())
        quality["keypoint_error_mean_m"] = total / (count + len(errors))

    def _check_usable(self, qpos: np.ndarray, quality: dict[str, Any]) -> None:
        reject = self.config.reject
        if not np.all(np.isfinite(qpos)):
            raise ClipRejected("IK produced non-finite joint values")
        if quality["keypoint_error_mean_m"] > reject.max_keypoint_error_m:
            raise ClipRejected(f"mean keypoint error {quality['keypoint_error_mean_m']:.3f} m "
                               f"> {reject.max_keypoint_error_m} m")
        if quality["foot_penetration_max_m"] > reject.max_penetration_m:
            raise ClipRejected(f"foot penetration {quality['foot_penetration_max_m']:.3f} m "
                               f"> {reject.max_penetration_m} m")

    def _gates(self, qpos: np.ndarray, fps: float, human: HumanMotion, scaled: Any,
               root: PoseTrajectory, quality: dict[str, Any]) -> Any:
        """Plausibility gates; the human root path is taken before the input low-pass (which
        would smear a jump or a teleport over several frames), at robot scale."""
        root_points = [scaled.index(name) for name in self.mapping.frames[0].human]
        soles = [scaled.index(name) for foot in self.mapping.feet
                 for name in (foot.human_heel, foot.human_toe)]
        raw_root = scaled.scale * np.asarray(human.positions)[:, root_points].mean(axis=1)
        return motion_gates(
            self.robot.model, qpos, fps, scaled.positions[:, root_points].mean(axis=1), raw_root,
            quat_yaw(root.quat), scaled.positions[:, soles], self.robot.contact_site_ids,
            self.robot.joint_qpos_addresses, self.robot.spec.joint_range_array(),
            self.robot.spec.standing_height_m, quality, self.config.gates)

    def _at_speed_limit(self, qpos: np.ndarray, fps: float) -> float:
        """Share of frame steps where some joint moved at (>= 99 % of) the per-frame speed
        limit: the robot lagging the human there (the max joint speed is measured, not set)."""
        if qpos.shape[0] < 2:
            return 0.0
        speed = np.abs(np.diff(qpos[:, self.robot.joint_qpos_addresses], axis=0)).max(axis=1)
        return float(np.mean(speed * fps >= 0.99 * self.config.ik.joint_speed_limit_rad_s))

    def _site_clearance(self, plans: list[FootPlan]) -> np.ndarray:
        """[T, S] per contact site: 0 while it is in contact, else the swing clearance (as a
        hard floor: a site that grazes the floor out of contact slides on it; this also holds
        the free end of a foot pinned at its heel or toe clear), ramped in and out around the
        site's own contacts (``contact.clearance_ramp_frames``)."""
        in_contact = np.stack([(plans[foot].anchor != 0) & plans[foot].contact[:, point]
                               for foot, point in self._contact_sites], axis=1)
        return np.stack([swing_clearance(site, self.config.contact) for site in in_contact.T],
                        axis=1)

    def _contact_site_feet(self) -> list[tuple[int, int]]:
        """(foot index, 0 heel / 1 toe) of each robot contact site, in the spec's order."""
        located = []
        for site in self.robot.spec.contact_site_names:
            for index, foot in enumerate(self.mapping.feet):
                if site in (foot.robot_heel_site, foot.robot_toe_site):
                    located.append((index, 0 if site == foot.robot_heel_site else 1))
                    break
            else:
                raise AmpkitError(f"{self.mapping.path}: contact site {site!r} is not the heel "
                                  f"or toe site of any [[foot]]")
        return located

    def _joint_groups(self) -> tuple[list[np.ndarray], np.ndarray]:
        """qpos columns of each foot's leg chain, and of the remaining hinge joints."""
        model = self.robot.model
        legs = []
        for foot in self.mapping.feet:
            columns, body = [], model.body(foot.robot_body).id
            while body > 0:
                for joint in range(model.body_jntadr[body],
                                   model.body_jntadr[body] + model.body_jntnum[body]):
                    if model.jnt_type[joint] != 0:  # not the free joint
                        columns.append(int(model.jnt_qposadr[joint]))
                body = model.body_parentid[body]
            legs.append(np.array(sorted(columns), dtype=int))
        in_legs = set(np.concatenate(legs).tolist()) if legs else set()
        upper = np.array([c for c in self.robot.joint_qpos_addresses if c not in in_legs],
                         dtype=int)
        return legs, upper
