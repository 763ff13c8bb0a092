"""Independent check of amp.feasibility with plain MuJoCo, clip by clip.

    python -m scripts.check_feasibility data/amp/clips [--effort-weight 1.0] [--tolerance 0.15]

Rebuilds every clip's joint torques by a different route and compares each joint's RMS torque
(within ``--tolerance``, relative to the larger of the two, or 0.02 N·m absolute) and which
clips exceed the actuator limit:

- velocities from ``mujoco.mj_differentiatePos`` per frame pair (averaged at interior frames,
  the AMP conversion's convention) instead of amp.kinematics' numpy quaternions; accelerations
  by central differences of those;
- dynamics as ``M qacc + qfrc_bias - qfrc_passive`` from ``mj_forward`` and ``mj_fullM``
  (constraints off) instead of ``mj_inverse``;
- contact points from the geoms' world frames (capsule ends) and ``mj_jac`` at each point,
  instead of body Jacobians shifted by a lever arm;
- the same split objective (residual, then actuator effort, then force norm; friction
  pyramid edges from the model's μ), solved as a stacked non-negative least-squares problem by
  ``scipy.optimize.nnls`` instead of a QP by daqp.

``--effort-weight 0`` drops the effort term, i.e. the minimum-norm split: the printed
differences are then the sensitivity of the verdict to the split, not a check. Exits 1 when a
clip disagrees.
"""

from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path

import mujoco
import numpy as np
from scipy.optimize import nnls

from amp.clipfile import read_clip
from amp.convert import load_for_kinematics
from amp.feasibility import FeasibilityConfig, clip_feasibility, feasibility_model


def mujoco_velocities(model: mujoco.MjModel, qpos: np.ndarray, fps: float) -> np.ndarray:
    """qvel [T, nv]: mj_differentiatePos of each pair, averaged at interior frames."""
    steps = np.empty((qpos.shape[0] - 1, model.nv))
    for t in range(qpos.shape[0] - 1):
        mujoco.mj_differentiatePos(model, steps[t], 1.0 / fps, qpos[t], qpos[t + 1])
    qvel = np.empty((qpos.shape[0], model.nv))
    qvel[0], qvel[-1] = steps[0], steps[-1]
    qvel[1:-1] = 0.5 * (steps[:-1] + steps[1:])
    return qvel


def plain_torques(model: mujoco.MjModel, site_ids: np.ndarray, qpos: np.ndarray, fps: float,
                  contact: np.ndarray, config: FeasibilityConfig,
                  effort_weight: float) -> np.ndarray:
    """Actuator torques [T, nu] rebuilt with plain MuJoCo calls and scipy NNLS."""
    model = copy.copy(model)
    model.opt.disableflags |= int(mujoco.mjtDisableBit.mjDSBL_CONSTRAINT
                                  | mujoco.mjtDisableBit.mjDSBL_CONTACT)
    data = mujoco.MjData(model)
    qvel = mujoco_velocities(model, qpos, fps)
    qacc = np.empty_like(qvel)
    qacc[1:-1] = (qvel[2:] - qvel[:-2]) * fps / 2.0
    qacc[0], qacc[-1] = (qvel[1] - qvel[0]) * fps, (qvel[-1] - qvel[-2]) * fps
    weight = float(model.body_subtreemass[1] * np.linalg.norm(model.opt.gravity))
    dofs = model.jnt_dofadr[model.actuator_trnid[:, 0]]
    limit = np.abs(model.actuator_forcerange).max(axis=1)
    free = np.setdiff1d(np.arange(model.nv), dofs)
    scale = np.where((free >= 3) & (free < 6), 1.0 / (weight * config.residual_length_m),
                     1.0 / weight)
    # per contact site: its capsule geom (nearest collision geom on the site's body)
    geoms = []
    for site in site_ids:
        body = model.site_bodyid[site]
        candidates = [g for g in range(model.ngeom) if model.geom_bodyid[g] == body
                      and model.geom_contype[g]]
        geoms.append(min(candidates, key=lambda g: np.linalg.norm(
            model.geom_pos[g] - model.site_pos[site])))
    friction = max(model.geom_friction[geoms[0], 0], model.geom_friction[0, 0])
    cone = np.array([[friction, -friction, 0, 0], [0, 0, friction, -friction], [1, 1, 1, 1.0]])
    mass_matrix = np.zeros((model.nv, model.nv))
    jac = np.zeros((3, model.nv))
    torques = np.empty((qpos.shape[0], model.nu))
    for t in range(qpos.shape[0]):
        data.qpos[:], data.qvel[:] = qpos[t], qvel[t]
        mujoco.mj_forward(model, data)
        mujoco.mj_fullM(model, data, mass_matrix)
        qfrc = mass_matrix @ qacc[t] + data.qfrc_bias - data.qfrc_passive
        qfrc += model.dof_frictionloss * np.clip(qvel[t] / config.friction_speed_rad_s, -1, 1)
        blocks = []
        for site, geom in zip(range(len(geoms)), geoms, strict=True):
            if not contact[t, site]:
                continue
            axis = data.geom_xmat[geom].reshape(3, 3)[:, 2] * model.geom_size[geom, 1]
            for end in (data.geom_xpos[geom] + axis, data.geom_xpos[geom] - axis):
                point = end - [0.0, 0.0, model.geom_size[geom, 0]]
                mujoco.mj_jac(model, data, jac, None, point, model.geom_bodyid[geom])
                blocks.append(jac.T @ cone * weight)
        if not blocks:
            torques[t] = qfrc[dofs]
            continue
        columns = np.concatenate(blocks, axis=1)
        n = columns.shape[1]
        root_residual = np.sqrt(config.residual_weight)
        matrix = np.concatenate([root_residual * scale[:, None] * columns[free],
                                 np.sqrt(effort_weight) * columns[dofs] / limit[:, None],
                                 np.sqrt(config.regularization) * np.eye(n)])
        target = np.concatenate([root_residual * scale * qfrc[free],
                                 np.sqrt(effort_weight) * qfrc[dofs] / limit, np.zeros(n)])
        x, _ = nnls(matrix, target, maxiter=50 * n)
        torques[t] = (qfrc - columns @ x)[dofs]
    return torques


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("clips", type=Path, help="directory of AMP clip files")
    parser.add_argument("--effort-weight", type=float, default=1.0,
                        help="weight of the actuator-effort term (1: amp.feasibility's split)")
    parser.add_argument("--tolerance", type=float, default=0.15, help="relative RMS tolerance")
    parser.add_argument("--only", default="", help="substring a clip name must contain")
    args = parser.parse_args()
    robot = load_for_kinematics("wildrobot")
    fm = feasibility_model(robot)
    config = FeasibilityConfig()
    worst_all, disagreements = 0.0, 0
    print(f"{'clip':<26} {'worst RMS diff':>15} {'joint':<20} {'over limit (ampkit/plain)':>26}")
    for path in sorted(args.clips.glob("*.h5")):
        clip = read_clip(path)
        if args.only not in clip.name:
            continue
        contact = clip.features[:, 25:29] > 0.5
        report = clip_feasibility(fm, clip.qpos, clip.qvel, clip.fps, contact, config)
        plain = plain_torques(robot.model, robot.contact_site_ids, clip.qpos, clip.fps,
                              contact, config, args.effort_weight)
        rms = np.sqrt(np.mean(plain ** 2, axis=0))
        diff = np.abs(rms - report.torque_rms) / np.maximum(np.maximum(rms, report.torque_rms),
                                                             1e-9)
        worst = int(np.argmax(diff))
        raw = float(diff[worst])
        diff[np.abs(rms - report.torque_rms) < 0.02] = 0.0  # tiny torques: absolute tolerance
        over_ampkit = bool(np.any(report.over_limit_share > 0))
        over_plain = bool(np.any(np.abs(plain) > config.torque_limit_scale * fm.force_limit))
        bad = float(diff.max()) > args.tolerance or over_ampkit != over_plain
        disagreements += bad
        worst_all = max(worst_all, raw)
        print(f"{clip.name:<26} {raw:>14.3%} {fm.actuator_names[worst]:<20} "
              f"{str(over_ampkit):>12}/{str(over_plain):<13}{'  DISAGREE' if bad else ''}")
    print(f"largest per-joint RMS difference {worst_all:.2%}; {disagreements} clip(s) disagree")
    return 1 if disagreements else 0


if __name__ == "__main__":
    sys.exit(main())
