"""An independent checker of retargeted motions: plain MuJoCo forward kinematics on the output
``qpos`` only (none of the retargeter's own metrics or code), for the bars of issue 13."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import mujoco
import numpy as np

FIRM_CONTACT_M = 0.005
NEAR_FLOOR_M = 0.015
ROOT_SPEED_RATIO = 1.3
ROOT_SPEED_SLACK_MPS = 0.05  # allowed on top of the ratio (noise at a standstill)
RATIO_MIN_HUMAN_SPEED_MPS = 0.3  # the reported ratio: frames where the human moves at least this


@dataclass
class MotionCheck:
    """Bars measured from qpos (floor z = 0). Speeds [m/s], lengths [m], joints [rad/s]."""

    frames: int
    penetration_m: float
    firm_contact_speed_mean_mps: float
    firm_contact_speed_max_mps: float
    near_floor_frame_share: float
    max_joint_speed_rad_s: float
    root_speed_ratio_max: float
    root_speed_excess_frames: int
    joint_limit_violations: int

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def check_motion(model: mujoco.MjModel, qpos: np.ndarray, fps: float,
                 human_root: np.ndarray, foot_sites: list[str]) -> MotionCheck:
    """Measure a motion.

    Args:
        model: Robot model (with a free joint first).
        qpos: [T, nq] motion.
        fps: Frame rate [Hz].
        human_root: [T, 3] the scaled human root (e.g. the hip midpoint) [m].
        foot_sites: Names of the foot contact sites.
    """
    data = mujoco.MjData(model)
    ids = [mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_SITE, n) for n in foot_sites]
    sites = np.empty((qpos.shape[0], len(ids), 3))
    for t, q in enumerate(qpos):
        data.qpos[:] = q
        mujoco.mj_kinematics(model, data)
        sites[t] = data.site_xpos[ids]
    z = sites[..., 2]
    firm = (z[1:] < FIRM_CONTACT_M) & (z[:-1] < FIRM_CONTACT_M)
    slide = np.linalg.norm(np.diff(sites[..., :2], axis=0), axis=-1) * fps
    hinge = [model.jnt_qposadr[j] for j in range(model.njnt)
             if model.jnt_type[j] == mujoco.mjtJoint.mjJNT_HINGE]
    ranges = np.array([model.jnt_range[j] for j in range(model.njnt)
                       if model.jnt_type[j] == mujoco.mjtJoint.mjJNT_HINGE])
    joints = qpos[:, hinge]
    robot_speed = np.linalg.norm(np.diff(qpos[:, :3], axis=0), axis=-1) * fps
    human_speed = np.linalg.norm(np.diff(human_root, axis=0), axis=-1) * fps
    ratio = robot_speed / np.maximum(human_speed, 1e-9)
    moving = human_speed > RATIO_MIN_HUMAN_SPEED_MPS
    return MotionCheck(
        frames=int(qpos.shape[0]),
        penetration_m=float(max(0.0, -z.min())),
        firm_contact_speed_mean_mps=float(slide[firm].mean()) if firm.any() else 0.0,
        firm_contact_speed_max_mps=float(slide[firm].max()) if firm.any() else 0.0,
        near_floor_frame_share=float(np.mean(z.min(axis=1) < NEAR_FLOOR_M)),
        max_joint_speed_rad_s=float(np.abs(np.diff(joints, axis=0)).max() * fps),
        root_speed_ratio_max=float(ratio[moving].max()) if moving.any() else 0.0,
        root_speed_excess_frames=int(np.sum(
            robot_speed > ROOT_SPEED_RATIO * human_speed + ROOT_SPEED_SLACK_MPS)),
        joint_limit_violations=int(np.sum((joints < ranges[:, 0] - 1e-9)
                                          | (joints > ranges[:, 1] + 1e-9))),
    )
