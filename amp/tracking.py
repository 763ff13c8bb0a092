"""Physically tracked references: replay a clip in MuJoCo with the robot's own servos.

The physical counterpart of :mod:`amp.feasibility`'s inverse-dynamics residual. The robot
starts in the clip's first state; every control step its position servos get the reference
joint angles of the next frame, while a root-assist wrench (a critically damped spring on the
pelvis pose, applied at the pelvis) pulls the body toward the reference root motion. The assist
is what the motion needs beyond the servos and the floor: a clip the robot can really do needs
almost none. The spring is deliberately soft (``assist_hz``): it is the penalty, so the servos
and contacts do the work wherever they can, and the root is allowed to lag rather than being
held on the reference by force.

Reported per clip: the assist force and torque (RMS, max), whether the tracked motion keeps the
reference's foot contacts (share of frames with the same contact labels), how far the root and
joints end up from the reference, and whether the robot fell (pelvis below ``fall_height_m``).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, ClassVar

import mujoco
import numpy as np

from amp.kinematics import quat_conj, quat_mul, quat_to_rotvec
from robots.errors import AmpkitError


@dataclass(frozen=True)
class TrackingConfig:
    """How a clip is replayed.

    Attributes:
        assist_hz: Natural frequency of the root-assist spring (critically damped) [Hz].
        contact_height_m: A contact point below this height is in contact [m] (THE rule).
        fall_height_m: The robot fell when the pelvis is lower than this [m].
    """

    BOUNDS: ClassVar[dict[str, str]] = {"assist_hz": "> 0", "contact_height_m": "> 0",
                                        "fall_height_m": ">= 0"}

    assist_hz: float = 2.0
    contact_height_m: float = 0.015
    fall_height_m: float = 0.25


@dataclass
class TrackingReport:
    """One clip's replay; forces in N, torques in N·m, shares in [0, 1].

    Attributes:
        assist_force: [T] norm of the assist force [N].
        assist_torque: [T] norm of the assist torque [N·m].
        contact_agreement: Share of frames whose four contact labels equal the reference's.
        root_error_rms_m: RMS distance of the pelvis from the reference [m].
        joint_error_rms_rad: RMS joint-angle error over all frames and joints [rad].
        fell: The pelvis dropped below ``fall_height_m``.
        weight_n: The robot's weight [N] (to read the assist against).
    """

    assist_force: np.ndarray
    assist_torque: np.ndarray
    contact_agreement: float
    root_error_rms_m: float
    joint_error_rms_rad: float
    fell: bool
    weight_n: float

    def as_record(self) -> dict[str, Any]:
        return {
            "assist_force_rms_n": round(float(np.sqrt(np.mean(self.assist_force ** 2))), 6),
            "assist_force_max_n": round(float(self.assist_force.max()), 6),
            "assist_torque_rms_nm": round(float(np.sqrt(np.mean(self.assist_torque ** 2))), 6),
            "assist_torque_max_nm": round(float(self.assist_torque.max()), 6),
            "assist_force_share_of_weight": round(
                float(np.sqrt(np.mean(self.assist_force ** 2)) / self.weight_n), 6),
            "contact_agreement": round(self.contact_agreement, 6),
            "root_error_rms_m": round(self.root_error_rms_m, 6),
            "joint_error_rms_rad": round(self.joint_error_rms_rad, 6),
            "fell": self.fell,
        }


def track_reference(model: mujoco.MjModel, contact_site_ids: np.ndarray, qpos: np.ndarray,
                    qvel: np.ndarray, fps: float, config: TrackingConfig = TrackingConfig(),
                    feedforward: np.ndarray | None = None) -> TrackingReport:
    """Replay ``qpos`` [T, nq] / ``qvel`` [T, nv] at ``fps`` with the servos and a root assist.

    The servos' targets are the reference joint angles of the next frame (actuator ``i``
    drives the joint of ``actuator_trnid``), held for one frame; the assist is recomputed every
    physics step. ``feedforward`` [T, nu] (e.g. the inverse-dynamics torques of
    :mod:`amp.feasibility`) offsets each target by ``(τ + kv q̇_ref) / kp``, so a servo at the
    reference state exerts τ instead of sagging under load by τ / kp (a policy learns such
    offsets; without them a 21 N·m/rad servo sags 0.2 rad under 4 N·m).

    Raises:
        AmpkitError: the model's timestep does not divide the frame period.
    """
    model = copy.copy(model)
    data = mujoco.MjData(model)
    scratch = mujoco.MjData(model)  # the reference poses' kinematics, apart from the simulation
    substeps = int(round(1.0 / (fps * model.opt.timestep)))
    if substeps < 1 or abs(substeps * model.opt.timestep * fps - 1.0) > 1e-6:
        raise AmpkitError(f"timestep {model.opt.timestep} s does not divide 1/{fps:g} s")
    root = int(model.jnt_bodyid[0])
    mass = float(model.body_subtreemass[root])
    inertia = model.body_inertia[root] + mass * 0.1 ** 2  # pelvis + the body around it [kg m²]
    omega = 2 * np.pi * config.assist_hz
    stiffness, damping = omega ** 2, 2 * omega  # per unit mass (inertia): critically damped
    joint_qpos = model.jnt_qposadr[model.actuator_trnid[:, 0]]
    joint_dof = model.jnt_dofadr[model.actuator_trnid[:, 0]]
    kp, kv = model.actuator_gainprm[:, 0], -model.actuator_biasprm[:, 2]
    num_frames = qpos.shape[0]
    data.qpos[:], data.qvel[:] = qpos[0], qvel[0]
    mujoco.mj_forward(model, data)
    force, torque = np.zeros(num_frames), np.zeros(num_frames)
    agree, root_error, joint_error = np.zeros(num_frames, bool), np.zeros(num_frames), []
    fell = False
    for t in range(num_frames):
        target = qpos[min(t + 1, num_frames - 1)]
        data.ctrl[:] = target[joint_qpos]
        if feedforward is not None:
            data.ctrl[:] += (feedforward[t] + kv * qvel[t, joint_dof]) / kp
        peak_force = peak_torque = 0.0
        for _ in range(substeps):
            f, tau = _assist(data, root, qpos[t], qvel[t], mass, inertia, stiffness, damping)
            data.xfrc_applied[root, :3], data.xfrc_applied[root, 3:] = f, tau
            mujoco.mj_step(model, data)
            peak_force = max(peak_force, float(np.linalg.norm(f)))
            peak_torque = max(peak_torque, float(np.linalg.norm(tau)))
        force[t], torque[t] = peak_force, peak_torque
        reference = target if t + 1 < num_frames else qpos[-1]
        sim_contact = data.site_xpos[contact_site_ids, 2] < config.contact_height_m
        ref_contact = (_site_heights(model, scratch, reference, contact_site_ids)
                       < config.contact_height_m)
        agree[t] = bool(np.all(sim_contact == ref_contact))
        root_error[t] = float(np.linalg.norm(data.qpos[:3] - reference[:3]))
        joint_error.append(data.qpos[joint_qpos] - reference[joint_qpos])
        fell = fell or data.qpos[2] < config.fall_height_m
    return TrackingReport(
        assist_force=force, assist_torque=torque, contact_agreement=float(agree.mean()),
        root_error_rms_m=float(np.sqrt(np.mean(root_error ** 2))),
        joint_error_rms_rad=float(np.sqrt(np.mean(np.square(joint_error)))), fell=fell,
        weight_n=mass * float(np.linalg.norm(model.opt.gravity)))


def _assist(data: mujoco.MjData, root: int, qpos_ref: np.ndarray, qvel_ref: np.ndarray,
            mass: float, inertia: np.ndarray, stiffness: float,
            damping: float) -> tuple[np.ndarray, np.ndarray]:
    """World force [3] and torque [3] of the root-assist spring toward the reference pose."""
    position_error = qpos_ref[:3] - data.qpos[:3]
    velocity_error = qvel_ref[:3] - data.qvel[:3]
    force = mass * (stiffness * position_error + damping * velocity_error)
    rotation = quat_to_rotvec(quat_mul(quat_conj(data.qpos[3:7]), qpos_ref[3:7]))  # body frame
    spin_error = qvel_ref[3:6] - data.qvel[3:6]  # both in their body frames (nearly equal)
    torque_body = inertia * (stiffness * rotation + damping * spin_error)
    return force, data.xmat[root].reshape(3, 3) @ torque_body


def _site_heights(model: mujoco.MjModel, scratch: mujoco.MjData, qpos: np.ndarray,
                  site_ids: np.ndarray) -> np.ndarray:
    """Heights [S] of the sites in configuration ``qpos`` [nq], computed in ``scratch``."""
    scratch.qpos[:] = qpos
    mujoco.mj_kinematics(model, scratch)
    return scratch.site_xpos[site_ids, 2].copy()
