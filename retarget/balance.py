"""Balance-aware retargeting: move the robot's centre of mass where its feet can hold it.

A human motion scaled onto a robot keeps the human's sway, which was balanced for the human's
hips, feet and mass distribution, not for the robot's. Measured on the default walks
(``amp.feasibility``): the robot's centre of pressure fell outside its stance foot in 88-100 %
of the frames and 69-96 % needed a "hand of god" force, because its root swayed at 0.01-0.05
m/s (std, sideways) where the robot's own physics needs more: a trained policy stepping in
MuJoCo sways at 0.16 m/s and its rollouts score feasible by the same check (0.97-0.99).
Time-scaling the clips to the robot's size (Froude, x1.52) did not help: it raised the
residual forces (measured).

The fix, per clip, after the first IK pass:

1. Support: which foot carries the body at each frame (``support_weight``): 1 on the left foot
   alone, 0 on the right alone, ramping linearly through double support and flight, and
   towards 0.5 (both feet) in long double-support stretches such as standing.
2. A zero-moment-point (ZMP) reference ``p`` (``zmp_reference``): the carrying foot's centre,
   blended by that weight.
3. The centre-of-mass path whose ZMP that is, under the linear inverted pendulum
   ``p = c - (h/g)·c''`` (``lipm_com``). Solved for the whole clip at once (a banded linear
   system), it is the ZMP path low-passed: the CoM sways less than the feet are apart, as
   much less as the step rate is faster than the pendulum's.
4. IK again with a CoM task on that path's sideways component (the forward progression stays
   the human's) and a weak pelvis-roll cost. WildRobot has no ankle roll, so a flat stance
   foot keeps its leg upright in the frontal plane: shifting the pelvis sideways is out of
   reach (tried: the CoM error fell only from 3.6 to 3.1 cm) and the CoM gets over the stance
   foot by rolling the pelvis about the stance hip, as the simulated policy does. The joints
   off the root-to-feet chains (waist, arms) are held at the first pass's angles
   (``upper_body_hold_cost``): left free, the CoM task swung them instead (measured: the
   waist-yaw rate's std rose from 0.28 to 1.15 rad/s on the default walks, 4x the human's).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import mujoco
import numpy as np
from scipy.linalg import solve_banded

from retarget.quality import frame_positions
from robots.rotations import quat_rotate

GRAVITY_MPS2 = 9.81


@dataclass(frozen=True)
class BalanceConfig:
    """Centre-of-mass correction of the retargeted motion (the ``retarget.balance`` params).

    Attributes:
        enabled: Correct the CoM (False keeps the plain IK solution).
        transfer_s: In a double-support stretch longer than twice this, the support weight
            ramps to 0.5 (both feet) within this time of its ends and stays there [s].
        com_cost: mink cost per metre of the horizontal CoM task in the second pass.
        root_roll_cost: Cost per radian of the pelvis roll in the second pass (the first
            pass's is the mapping's): without ankle roll the robot can move its CoM over the
            stance foot only by rolling the pelvis about the stance hip.
        upper_body_hold_cost: Cost per radian holding every joint off the root-to-feet
            chains (the retargeter's upper-body joints, also those its smoothing treats
            apart) at its first-pass angle in the second pass; 0 lets the CoM task move them.
    """

    BOUNDS: ClassVar[dict[str, str]] = {"transfer_s": "> 0", "com_cost": "> 0",
                                        "root_roll_cost": ">= 0", "upper_body_hold_cost": ">= 0"}

    enabled: bool = False
    transfer_s: float = 0.25
    com_cost: float = 30.0
    root_roll_cost: float = 0.3
    upper_body_hold_cost: float = 10.0


def support_weight(left: np.ndarray, right: np.ndarray, fps: float,
                   transfer_s: float) -> np.ndarray:
    """Share of the body carried by the left foot at each frame, [T] in [0, 1].

    Args:
        left, right: [T] bool, the foot touches the floor.
        fps: Frame rate [Hz].
        transfer_s: Ramp time into and out of a long double-support stretch [s].

    Single support is 1 (left) or 0 (right). Every other stretch (double support, flight)
    ramps linearly between the values at its ends; a clip's start and end count as 0.5, and
    a stretch longer than two ramps passes through 0.5 in between.
    """
    left, right = np.asarray(left, bool), np.asarray(right, bool)
    single = np.where(left & ~right, 1.0, np.where(right & ~left, 0.0, np.nan))
    frames = np.arange(len(single), dtype=float)
    knots_t, knots_v = [], []
    ramp = transfer_s * fps
    for start, stop in _gaps(np.isnan(single)):
        before = single[start - 1] if start > 0 else 0.5
        after = single[stop] if stop < len(single) else 0.5
        knots_t += [start - 1.0, float(stop)]
        knots_v += [before, after]
        if stop - start > 2 * ramp:
            knots_t += [start - 1.0 + ramp, stop - ramp]
            knots_v += [0.5, 0.5]
    fixed = ~np.isnan(single)
    knots_t += frames[fixed].tolist()
    knots_v += single[fixed].tolist()
    order = np.argsort(knots_t, kind="stable")
    return np.interp(frames, np.asarray(knots_t)[order], np.asarray(knots_v)[order])


def _gaps(mask: np.ndarray) -> list[tuple[int, int]]:
    """[start, stop) of every run of True in ``mask``."""
    padded = np.concatenate([[False], mask, [False]]).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    return list(zip(edges[0::2].tolist(), edges[1::2].tolist(), strict=True))


def zmp_reference(weight_left: np.ndarray, left_center: np.ndarray,
                  right_center: np.ndarray) -> np.ndarray:
    """[T, 2] ZMP target: the feet's centres [T, 2] blended by the left foot's weight [T]."""
    w = np.asarray(weight_left)[:, None]
    return w * left_center + (1.0 - w) * right_center


def lipm_com(zmp: np.ndarray, fps: float, com_height_m: float) -> np.ndarray:
    """The CoM path [T, 2] whose linear-inverted-pendulum ZMP is ``zmp`` [T, 2].

    Solves ``c - (h/g)·c'' = p`` with second differences at ``fps`` and zero velocity at both
    ends. The operator is positive definite, so the solution exists, is unique, and is a
    low-pass of ``p``: a sinusoid of angular frequency w keeps 1 / (1 + w²h/g) of its amplitude.
    """
    zmp = np.asarray(zmp, float)
    count = zmp.shape[0]
    if count < 3:
        return zmp.copy()
    k = com_height_m / GRAVITY_MPS2 * fps * fps
    bands = np.zeros((3, count))
    bands[0, 1:] = -k
    bands[2, :-1] = -k
    bands[1, :] = 1.0 + 2.0 * k
    bands[1, [0, -1]] = 1.0 + k
    return solve_banded((1, 1), bands, zmp)


def com_positions(model: mujoco.MjModel, qpos: np.ndarray) -> np.ndarray:
    """Whole-body centre of mass [T, 3] of each configuration in ``qpos`` [T, nq] [m]."""
    data = mujoco.MjData(model)
    out = np.empty((qpos.shape[0], 3))
    root = int(model.jnt_bodyid[0])
    for t, q in enumerate(qpos):
        data.qpos[:] = q
        mujoco.mj_kinematics(model, data)
        mujoco.mj_comPos(model, data)
        out[t] = data.subtree_com[root]
    return out


def com_target(model: mujoco.MjModel, qpos: np.ndarray, fps: float, left_contact: np.ndarray,
               right_contact: np.ndarray, left_sites: list[int], right_sites: list[int],
               config: BalanceConfig) -> tuple[np.ndarray, np.ndarray]:
    """The balanced CoM path [T, 2] for a motion and its CoM now [T, 3].

    Args:
        qpos: [T, nq] the motion (its feet place the ZMP reference).
        left_contact, right_contact: [T] bool, the foot is on the floor.
        left_sites, right_sites: Site ids whose mean is each foot's centre (heel and toe).
    """
    com = com_positions(model, qpos)
    _, sites = frame_positions(model, qpos, np.zeros(0, dtype=int),
                               np.array([*left_sites, *right_sites]))
    feet = np.stack([sites[:, :len(left_sites), :2].mean(axis=1),
                     sites[:, len(left_sites):, :2].mean(axis=1)], axis=1)
    weight = support_weight(left_contact, right_contact, fps, config.transfer_s)
    zmp = zmp_reference(weight, feet[:, 0], feet[:, 1])
    return lipm_com(zmp, fps, float(com[:, 2].mean())), com


def sideways_only(target_xy: np.ndarray, com_xy: np.ndarray, heading: np.ndarray) -> np.ndarray:
    """``target_xy`` [T, 2] with its forward part replaced by ``com_xy``'s [T, 2]: only the
    component along the robot's left axis (heading [T] rad) moves.

    Moving the forward CoM too, the IK swung the arms and nearly doubled the peak shoulder
    torques (measured); the forward progression stays the human's.
    """
    lateral = np.stack([-np.sin(heading), np.cos(heading)], axis=1)
    return com_xy + lateral * np.sum((target_xy - com_xy) * lateral, axis=1)[:, None]


def lateral_tilt(quat: np.ndarray) -> np.ndarray:
    """Sideways tilt [rad] of bodies with orientations ``quat`` [..., 4] (wxyz): the angle
    of their left (y) axis above the horizontal, positive when the left side is up."""
    return np.arcsin(np.clip(quat_rotate(quat, np.array([0.0, 1.0, 0.0]))[..., 2], -1.0, 1.0))
