"""Robot motion (DESIGN 4.3) → AMP clip: 50 FPS qpos, qvel, contact points and the 29-dim frame.

Steps, all vectorized over the clip: resample to ``ConvertConfig.fps`` (cubic spline for root
position and joints, SLERP for the root quaternion), velocities by central differences in
``mj_differentiatePos``'s convention, contact-point positions by forward kinematics of the robot
model, then :func:`amp.features.amp_features` — the same function the simulator uses.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any, ClassVar

import mujoco
import numpy as np

import robots
from amp.features import ContactRule, amp_features
from amp.kinematics import SiteKinematics, central_difference, differentiate_qpos, resample_qpos
from amp.mirror import mirror_qpos, mirror_qvel, mirrored_name
from robots.errors import AmpkitError
from robots.motion import RobotMotion
from robots.trajectory import step_speed


class ConversionError(AmpkitError, ValueError):
    """A robot motion that cannot be turned into an AMP clip (wrong robot, too short, …)."""


@dataclass(frozen=True)
class ConvertConfig:
    """How robot motions become AMP clips.

    Attributes:
        fps: Output frame rate [Hz].
        contact: The geometric contact rule (shared with the simulator).
        mirror: Also produce the left/right mirrored clip ``<name>_mirror``.
        min_frames: Clips with fewer output frames are rejected (a transition needs 2).
    """

    BOUNDS: ClassVar[dict[str, str]] = {"fps": "> 0", "min_frames": ">= 2"}

    fps: float = 50.0
    contact: ContactRule = ContactRule()
    mirror: bool = False
    min_frames: int = 2

    def as_record(self) -> dict[str, Any]:
        """Plain-data form, stored with every clip."""
        return asdict(self)


@dataclass
class AmpClip:
    """One converted clip.

    Attributes:
        name: Clip name (file stem; mirrored clips end in ``_mirror``).
        fps: Frame rate of every array [Hz].
        features: [T, 29] float32 AMP frames.
        qpos: [T, nq] resampled configurations.
        qvel: [T, nv] velocities, MuJoCo convention (consistent with ``mj_differentiatePos``).
        contact_pos: [T, 4, 3] world positions of left_toe, left_heel, right_toe, right_heel [m].
        robot: Robot registry name.
        mirrored: Whether this is the mirror image of the source motion.
        source: Path of the robot-motion file (filled by the caller that read it).
        source_sha256: Hash of that file's bytes.
        source_fps: Frame rate of the robot motion [Hz].
        motion_source: The human clip the robot motion was retargeted from.
        motion_source_sha256: Its hash.
        params: The conversion parameters (``ConvertConfig.as_record()``).
        gate_flags: The retarget plausibility flags of the motion (reasons; empty: none).
        feasibility: The physical feasibility record (:mod:`amp.feasibility`; None: not
            checked).
        feasible_frame: [T] bool, the frames the robot can physically do (None: not checked).
    """

    name: str
    fps: float
    features: np.ndarray
    qpos: np.ndarray
    qvel: np.ndarray
    contact_pos: np.ndarray
    robot: str
    mirrored: bool = False
    source: str = ""
    source_sha256: str = ""
    source_fps: float = 0.0
    motion_source: str = ""
    motion_source_sha256: str = ""
    params: dict[str, Any] = field(default_factory=dict)
    gate_flags: tuple[str, ...] = ()
    feasibility: dict[str, Any] | None = None
    feasible_frame: np.ndarray | None = None

    @property
    def num_frames(self) -> int:
        return int(self.features.shape[0])

    @property
    def duration_s(self) -> float:
        return (self.num_frames - 1) / self.fps


def load_for_kinematics(name: str) -> robots.Robot:
    """Robot ``name`` with its scene compiled without textures.

    Textures are visual only, so kinematics are identical to ``robots.load(name)``, but the
    compile is much faster (the scene's skybox texture dominates ``robots.load``), which
    matters for a batch stage that only needs forward kinematics.
    """
    spec = robots.load_spec(name)
    model_path = spec.folder() / spec.scene_xml
    mj_spec = mujoco.MjSpec.from_file(str(model_path))
    for texture in list(mj_spec.textures):
        mj_spec.delete(texture)
    for material in mj_spec.materials:
        material.textures = [""] * len(material.textures)
    model = mj_spec.compile()
    if model.nq != spec.nq:
        raise AmpkitError(f"{model_path}: nq={model.nq}, spec expects {spec.nq}")
    return robots.Robot(name=name, model_path=model_path, spec=spec, model=model)


def contact_kinematics(robot: robots.Robot) -> SiteKinematics:
    """Batched FK of the robot's contact sites, built once per robot (``Robot.derived``:
    building it costs about as much as converting a clip)."""
    return robot.derived("amp.contact_kinematics",
                         lambda: SiteKinematics(robot.model, robot.contact_site_ids))


def clip_from_qpos(qpos: np.ndarray, qvel: np.ndarray, robot: robots.Robot,
                   config: ConvertConfig, name: str) -> AmpClip:
    """Contact points and features of a motion already at ``config.fps``.

    Args:
        qpos: [T, nq] configurations at ``config.fps``.
        qvel: [T, nv] their velocities (MuJoCo convention).
    """
    contact_pos = contact_kinematics(robot).site_positions(qpos)
    contact_vel = (central_difference(contact_pos, config.fps)
                   if config.contact.max_speed_mps is not None else None)
    features = amp_features(qpos, qvel, contact_pos, robot.spec.amp_joint_indices,
                            config.contact, contact_vel)
    return AmpClip(name=name, fps=float(config.fps), features=features, qpos=qpos, qvel=qvel,
                   contact_pos=contact_pos, robot=robot.name, params=config.as_record())


def convert_motion(motion: RobotMotion, robot: robots.Robot, config: ConvertConfig,
                   name: str) -> AmpClip:
    """Convert one robot motion into an AMP clip at ``config.fps``.

    Raises:
        ConversionError: the motion is for another robot or joint order, or is too short.
    """
    if motion.robot != robot.name:
        raise ConversionError(f"motion is for robot {motion.robot!r}, not {robot.name!r}")
    if tuple(motion.joint_names) != robot.spec.joint_names:
        raise ConversionError(
            f"joint order {list(motion.joint_names)} differs from {robot.name}'s "
            f"{list(robot.spec.joint_names)}")
    check_physical(np.asarray(motion.qpos, dtype=np.float64), motion.fps, robot)
    qpos = resample_qpos(np.asarray(motion.qpos, dtype=np.float64), motion.fps, config.fps)
    if qpos.shape[0] < max(config.min_frames, 2):
        raise ConversionError(
            f"{motion.num_frames} frames at {motion.fps:g} Hz give {qpos.shape[0]} frame(s) at "
            f"{config.fps:g} Hz; need at least {max(config.min_frames, 2)}")
    qvel = differentiate_qpos(qpos, config.fps)
    clip = clip_from_qpos(qpos, qvel, robot, config, name)
    clip.source_fps = float(motion.fps)
    clip.motion_source = motion.source
    clip.motion_source_sha256 = motion.source_sha256
    clip.gate_flags = tuple(str(f) for f in motion.quality.get("gate_flags", ()))
    return clip


# A robot motion outside these is no motion a robot makes (a unit or export bug, a glitch).
NONPHYSICAL_JOINT_MARGIN_RAD = 0.5  # beyond the joint range
NONPHYSICAL_ROOT_SPEED_MPS = 20.0
NONPHYSICAL_POSITION_M = 1.0e4


def check_physical(qpos: np.ndarray, fps: float, robot: robots.Robot) -> None:
    """Raise ConversionError naming the first non-physical value of ``qpos`` [T, nq]: a joint
    more than NONPHYSICAL_JOINT_MARGIN_RAD outside its range (1e6 rad), a root beyond
    NONPHYSICAL_POSITION_M, or a root step faster than NONPHYSICAL_ROOT_SPEED_MPS (a
    teleport)."""
    joints = qpos[:, robot.joint_qpos_addresses]
    ranges = robot.spec.joint_range_array()
    outside = np.maximum(ranges[:, 0] - joints, joints - ranges[:, 1])
    if np.any(outside > NONPHYSICAL_JOINT_MARGIN_RAD):
        frame, joint = np.unravel_index(int(np.argmax(outside)), outside.shape)
        raise ConversionError(
            f"non-physical joint value: {robot.spec.joint_names[joint]} = "
            f"{joints[frame, joint]:.4g} rad at frame {frame} (range {ranges[joint, 0]:g}.."
            f"{ranges[joint, 1]:g} rad)")
    if np.abs(qpos[:, :3]).max() > NONPHYSICAL_POSITION_M:
        raise ConversionError(f"non-physical root position {np.abs(qpos[:, :3]).max():.4g} m")
    if qpos.shape[0] > 1:
        speed = step_speed(qpos[:, :3], fps)
        if speed.max() > NONPHYSICAL_ROOT_SPEED_MPS:
            frame = int(np.argmax(speed))
            raise ConversionError(f"non-physical root speed {speed[frame]:.4g} m/s between "
                                  f"frames {frame} and {frame + 1} (a teleport)")


def mirror_clip(clip: AmpClip, robot: robots.Robot, config: ConvertConfig) -> AmpClip:
    """The left/right mirror image of ``clip``, named ``<name>_mirror`` (and back again).

    qpos and qvel are mirrored exactly; contact points come from forward kinematics of the
    mirrored configuration, so an asymmetric model is handled honestly.
    """
    qpos = mirror_qpos(clip.qpos, robot.spec)
    qvel = mirror_qvel(clip.qvel, robot.spec)
    mirrored = clip_from_qpos(qpos, qvel, robot, replace(config, fps=clip.fps),
                              mirrored_name(clip.name))
    return replace(mirrored, mirrored=not clip.mirrored, source=clip.source,
                   source_sha256=clip.source_sha256, source_fps=clip.source_fps,
                   motion_source=clip.motion_source,
                   motion_source_sha256=clip.motion_source_sha256, params=dict(clip.params),
                   gate_flags=clip.gate_flags)


def convert_with_mirror(motion: RobotMotion, robot: robots.Robot, config: ConvertConfig,
                        name: str) -> list[AmpClip]:
    """The clip, plus its mirror image when ``config.mirror`` is set."""
    clip = convert_motion(motion, robot, config, name)
    return [clip, mirror_clip(clip, robot, config)] if config.mirror else [clip]
