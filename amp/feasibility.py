"""Physical feasibility of a robot motion: can this robot, with its servos, do what a clip shows?

Per frame (``qpos``, ``qvel``, ``qacc``; the latter two by the same central differences the AMP
conversion uses):

1. **Inverse dynamics.** ``mujoco.mj_inverse`` with constraints off gives the generalized force
   ``qfrc`` [nv] the motion needs (mass matrix, bias, gravity, joint damping; armature is in the
   mass matrix). Joint dry friction (``dof_frictionloss``) is a constraint in MuJoCo, so it is
   added by hand: the servo must also overcome it.
2. **Contact forces.** The floor may push at the touching contact points (a contact site below
   the contact rule's height, as the AMP labels say). Each contact site stands for its collision
   geom: a capsule lying on the floor touches at its two end spheres, so a foot's support is the
   toe-heel-width rectangle, not a line. Forces lie in the linearized friction cone (4 edges
   ``n ± μ t``, μ from the model's geoms: inscribed, so conservative). One small QP per frame
   (daqp) picks the split.
3. **The split.** Contact-force splits are not unique (two feet, and two ends per capsule), so
   the QP states what we want, in priority by weight: (a) cover the wrench the free joint needs
   (the unactuated rows of ``qfrc``; weight 1e4 on it in body weights), (b) with the least
   servo effort ``Σ (τ/τ_max)²`` (weight 1), (c) a small force-norm term for uniqueness
   (1e-2). (b) is what a whole-body controller would pick, so the torques are near the best
   the robot could do; being a sum of squares, not a min-max, it can now and then leave one
   joint over its limit where another split would not. ``effort_weight: 0`` gives the
   minimum-norm split instead (a sensitivity check: ``scripts/check_feasibility.py``).
4. **Residual** ("hand of god"): the part of the free-joint wrench that no admissible contact
   force covers, as force [N] and torque about the root [N·m], both in the world frame.
5. **Centre of pressure.** The zero-moment point of the wrench the floor must supply (where its
   horizontal moment vanishes), against the convex hull of the touching points: signed distance,
   positive inside [m].

A frame is feasible when every actuator stays within ``torque_limit_scale`` × its force limit
and the residual is within its thresholds; a clip's score is its share of feasible frames.
"""

from __future__ import annotations

import copy
import fnmatch
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import daqp
import h5py
import mujoco
import numpy as np

from amp.features import FEATURE_LAYOUT
from robots.errors import AmpkitError

_BIG = 1e30  # daqp's "no bound"
# The foot contacts in the AMP frame (DESIGN 4.4): feasibility uses THE contact labels.
CONTACT_SLICE = next(b for b in FEATURE_LAYOUT if b.name == "foot_contact").as_slice()
_DAQP_OPTIMAL = (1, 2)  # exitflags for an optimal solution (2: optimal, soft constraints used)


class FeasibilityError(AmpkitError, ValueError):
    """A motion or model the feasibility check cannot evaluate (shapes, unsupported model)."""


@dataclass(frozen=True)
class FeasibilityConfig:
    """Thresholds and weights of the feasibility check (``feasibility:`` in params.yaml).

    Attributes:
        torque_limit_scale: A frame is over the limit when some actuator needs more than this
            times its force limit [-] (1.0: the model's ``forcerange``).
        max_residual_force_n: Largest residual ("hand of god") force a feasible frame may
            need [N].
        max_residual_torque_nm: Largest residual torque about the root a feasible frame may
            need [N·m].
        min_feasible_share: A clip is feasible when at least this share of its frames is [-].
        residual_length_m: Length that makes residual torque comparable to residual force in the
            QP (a torque of ``L`` × F costs like a force F) [m]; about a foot length.
        residual_weight: Weight of the (weight-normalized) residual in the QP against the
            actuator effort term (1 per actuator at its limit) [-]. Large: residual only where
            no split covers the wrench.
        effort_weight: Weight of the actuator-effort term [-]: 1 picks the split that needs the
            least servo effort (the default, see the module docstring); 0 the minimum-norm
            split (no preference), for a sensitivity check.
        regularization: Weight of the contact-force norm (in body weights) [-]; makes the split
            unique where effort does not decide it.
        friction_speed_rad_s: Joint speed below which dry friction is ramped linearly from zero
            instead of jumping with the sign of the speed [rad/s].
        min_support_force_share: The CoP is only defined when the floor must push up with at
            least this share of the body weight [-].
    """

    BOUNDS: ClassVar[dict[str, str]] = {
        "torque_limit_scale": "> 0", "max_residual_force_n": ">= 0",
        "max_residual_torque_nm": ">= 0", "min_feasible_share": "[0, 1]",
        "residual_length_m": "> 0", "residual_weight": "> 0", "effort_weight": ">= 0",
        "regularization": "> 0",
        "friction_speed_rad_s": "> 0", "min_support_force_share": "[0, 1]"}

    torque_limit_scale: float = 1.0
    max_residual_force_n: float = 1.5
    max_residual_torque_nm: float = 0.15
    min_feasible_share: float = 0.9
    residual_length_m: float = 0.1
    residual_weight: float = 1e4
    effort_weight: float = 1.0
    regularization: float = 1e-2
    friction_speed_rad_s: float = 0.01
    min_support_force_share: float = 0.05

    def as_record(self) -> dict[str, Any]:
        return asdict(self)


# --- the model side ---------------------------------------------------------------------------

@dataclass(frozen=True)
class ContactPoint:
    """One point where the floor may push: a sphere of ``radius`` at ``local`` in ``body``."""

    site_index: int  # which contact site (CONTACT_POINT_NAMES order) it belongs to
    body: int
    local: np.ndarray  # [3] position in the body frame [m]
    radius: float  # [m]; the touching point is ``radius`` below the centre


class FeasibilityModel:
    """Everything the per-frame check needs from a robot model, prepared once.

    Args:
        model: The robot scene (any constraints in it are ignored: a copy has them disabled).
        contact_site_ids: Site ids of the contact points, [S] (the AMP contact order).
    """

    def __init__(self, model: mujoco.MjModel, contact_site_ids: np.ndarray) -> None:
        self.model = _unconstrained_copy(model)
        self.data = mujoco.MjData(self.model)
        if model.nq < 7 or model.jnt_type[0] != mujoco.mjtJoint.mjJNT_FREE:
            raise FeasibilityError("the feasibility check needs a free-floating root joint")
        nv = self.model.nv
        self.root_body = int(self.model.jnt_bodyid[0])
        trn = self.model.actuator_trntype
        if np.any(trn != mujoco.mjtTrn.mjTRN_JOINT):
            raise FeasibilityError("only joint-transmission actuators are supported")
        joints = self.model.actuator_trnid[:, 0]
        self.actuator_dof = self.model.jnt_dofadr[joints].astype(np.int64)  # [nu]
        self.actuator_gear = self.model.actuator_gear[:, 0].copy()  # [nu]
        ranges = self.model.actuator_forcerange
        limited = self.model.actuator_forcelimited.astype(bool)
        self.force_limit = np.where(limited, np.max(np.abs(ranges), axis=1), np.inf)  # [nu] N·m
        self.actuator_names = tuple(self.model.actuator(i).name for i in range(self.model.nu))
        # Rows no actuator drives: the free joint and any passive hinge. The floor must supply
        # those alone.
        unpowered = np.ones(nv, dtype=bool)
        unpowered[self.actuator_dof] = False
        self.unpowered_rows = np.flatnonzero(unpowered)
        self.frictionloss = model.dof_frictionloss.copy()  # [nv] N·m (from the original)
        self.total_mass = float(self.model.body_subtreemass[self.root_body])
        self.gravity = float(np.linalg.norm(self.model.opt.gravity))
        self.weight = self.total_mass * self.gravity  # [N]
        self.points = _contact_points(model, np.asarray(contact_site_ids, dtype=np.int64))
        self.num_sites = len(contact_site_ids)
        self.mu = _floor_friction(model, {p.body for p in self.points})
        mu = self.mu
        # Friction-cone edges (columns) in the world frame, floor normal +z: [3, 4].
        self.edges = np.array([[mu, -mu, 0.0, 0.0], [0.0, 0.0, mu, -mu], [1.0, 1.0, 1.0, 1.0]])
        # Per point, for the vectorized kinematics: which contact body, where, how round.
        self.contact_bodies = np.array(sorted({p.body for p in self.points}), dtype=np.int64)
        self.point_body_index = np.array(
            [int(np.flatnonzero(self.contact_bodies == p.body)[0]) for p in self.points])
        self.point_local = np.array([p.local for p in self.points])  # [P, 3]
        self.point_radius = np.array([p.radius for p in self.points])  # [P]
        self.point_site = np.array([p.site_index for p in self.points])  # [P]
        self.site_body_name = tuple(model.body(int(model.site_bodyid[s])).name
                                    for s in np.asarray(contact_site_ids))  # [S]
        # Effort normalization per actuator: its limit at the joint (unlimited: 1e6 N·m).
        self.effort_scale = np.where(np.isfinite(self.force_limit), self.force_limit,
                                     1e6) * np.abs(self.actuator_gear)


def _unconstrained_copy(model: mujoco.MjModel) -> mujoco.MjModel:
    clone = copy.copy(model)  # a full copy: the caller's model keeps its flags
    clone.opt.disableflags |= int(mujoco.mjtDisableBit.mjDSBL_CONSTRAINT)
    clone.opt.disableflags |= int(mujoco.mjtDisableBit.mjDSBL_CONTACT)
    return clone


def _contact_points(model: mujoco.MjModel, site_ids: np.ndarray) -> tuple[ContactPoint, ...]:
    """The touching points of each contact site's collision geom (its nearest one on its body).

    Capsule: the centres of its two end spheres; sphere: its centre; other geoms (or no
    collision geom on the body): the site itself, radius 0.
    """
    points: list[ContactPoint] = []
    for index, site in enumerate(site_ids):
        body = int(model.site_bodyid[site])
        site_pos = model.site_pos[site]
        geoms = [g for g in range(model.ngeom) if model.geom_bodyid[g] == body
                 and (model.geom_contype[g] or model.geom_conaffinity[g])]
        if not geoms:
            points.append(ContactPoint(index, body, site_pos.copy(), 0.0))
            continue
        geom = min(geoms, key=lambda g: float(np.linalg.norm(model.geom_pos[g] - site_pos)))
        kind, size = int(model.geom_type[geom]), model.geom_size[geom]
        centre = model.geom_pos[geom].copy()
        if kind == mujoco.mjtGeom.mjGEOM_CAPSULE:
            rot = np.zeros(9)
            mujoco.mju_quat2Mat(rot, model.geom_quat[geom])
            axis = rot.reshape(3, 3)[:, 2] * size[1]
            points += [ContactPoint(index, body, centre + axis, float(size[0])),
                       ContactPoint(index, body, centre - axis, float(size[0]))]
        elif kind == mujoco.mjtGeom.mjGEOM_SPHERE:
            points.append(ContactPoint(index, body, centre, float(size[0])))
        else:
            points.append(ContactPoint(index, body, site_pos.copy(), 0.0))
    return tuple(points)


def _floor_friction(model: mujoco.MjModel, bodies: set[int]) -> float:
    """Sliding friction μ foot-floor: MuJoCo combines two geoms' μ by their maximum."""
    foot = [model.geom_friction[g, 0] for g in range(model.ngeom)
            if model.geom_bodyid[g] in bodies
            and (model.geom_contype[g] or model.geom_conaffinity[g])]
    floor = [model.geom_friction[g, 0] for g in range(model.ngeom)
             if model.geom_type[g] == mujoco.mjtGeom.mjGEOM_PLANE]
    if not foot or not floor:
        raise FeasibilityError("no foot collision geom or no floor plane in the model")
    return float(max(min(foot), min(floor)))


# --- per frame ----------------------------------------------------------------------------------

@dataclass
class FrameDynamics:
    """Per-frame results of :func:`frame_dynamics`; T frames, nu actuators.

    Attributes:
        torque: [T, nu] actuator force the motion needs with the chosen split [N·m].
        residual_force: [T, 3] world force no admissible contact covers [N].
        residual_torque: [T, 3] world torque about the root no admissible contact covers [N·m].
        normal_force: [T] total normal force of the chosen contact forces [N].
        zmp: [T, 2] floor point where the required floor wrench has no horizontal moment [m];
            NaN where the floor need not push up (flight).
        support_margin: [T] signed distance of ``zmp`` to the support polygon, + inside [m];
            NaN where no point touches or the ZMP is undefined.
        touching_sites: [T] number of contact sites in contact.
        contact_points: [T, P, 3] world positions of the touching points [m] (all P points;
            a point carries force only where its site touches).
        contact_force: [T, P, 3] chosen world force at each point [N].
        contact: [T, S] bool, the contact sites in contact (input).
        heading: [T, 2] unit vector of the root's forward (x) axis on the floor.
    """

    torque: np.ndarray
    residual_force: np.ndarray
    residual_torque: np.ndarray
    normal_force: np.ndarray
    zmp: np.ndarray
    support_margin: np.ndarray
    touching_sites: np.ndarray
    contact_points: np.ndarray
    contact_force: np.ndarray
    contact: np.ndarray
    heading: np.ndarray


def frame_dynamics(fm: FeasibilityModel, qpos: np.ndarray, qvel: np.ndarray, qacc: np.ndarray,
                   contact: np.ndarray, config: FeasibilityConfig) -> FrameDynamics:
    """Inverse dynamics and the contact-force QP for every frame.

    One pass of MuJoCo calls per frame (``mj_inverse`` and the foot Jacobians), then the QPs
    (one daqp call per frame with contact, on the touching points only); everything else is
    vectorized over the clip.

    Args:
        fm: The prepared model.
        qpos: [T, nq]; qvel, qacc: [T, nv] (MuJoCo's free-joint convention).
        contact: [T, S] bool, which contact sites touch the floor.
        config: Weights of the QP.
    """
    num_frames = qpos.shape[0]
    model = fm.model
    if qpos.shape != (num_frames, model.nq) or qvel.shape != (num_frames, model.nv) \
            or qacc.shape != (num_frames, model.nv) or contact.shape != (num_frames, fm.num_sites):
        raise FeasibilityError(
            f"shapes qpos {qpos.shape}, qvel {qvel.shape}, qacc {qacc.shape}, contact "
            f"{contact.shape} do not fit nq={model.nq}, nv={model.nv}, {fm.num_sites} sites")
    if not (np.all(np.isfinite(qpos)) and np.all(np.isfinite(qvel))
            and np.all(np.isfinite(qacc))):
        raise FeasibilityError("qpos, qvel or qacc contain a non-finite value")
    active = np.asarray(contact, bool)[:, fm.point_site]  # [T, P]
    kin = _mujoco_pass(fm, qpos, qvel, qacc, active.any(axis=1))
    qfrc = kin.qfrc + fm.frictionloss * np.clip(qvel / config.friction_speed_rad_s, -1.0, 1.0)
    columns, points = _contact_columns(fm, kin, active)  # [T, nv, 4P], [T, P, 3]
    x = _solve_splits(fm, qfrc, columns, active, config)  # [T, 4P] body weights
    needed = qfrc - np.einsum("tvk,tk->tv", columns, x)
    root_rot = kin.root_mat
    zmp = _zmp(kin.root_pos, qfrc[:, 0:3], np.einsum("tij,tj->ti", root_rot, qfrc[:, 3:6]),
               config.min_support_force_share * fm.weight)
    margin = support_margin(zmp, points[..., :2], active)
    return FrameDynamics(
        torque=needed[:, fm.actuator_dof] / fm.actuator_gear,
        residual_force=needed[:, 0:3],
        residual_torque=np.einsum("tij,tj->ti", root_rot, needed[:, 3:6]),
        normal_force=x.sum(axis=1) * fm.weight, zmp=zmp, support_margin=margin,
        touching_sites=np.asarray(contact, bool).sum(axis=1).astype(np.int64),
        contact_points=points,
        contact_force=(x.reshape(num_frames, -1, 1, 4) * fm.edges).sum(axis=-1) * fm.weight,
        contact=np.asarray(contact, bool), heading=_unit(root_rot[:, :2, 0]))


def _unit(vectors: np.ndarray) -> np.ndarray:
    norm = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return np.where(norm > 1e-9, vectors / np.maximum(norm, 1e-9), [1.0, 0.0])


@dataclass
class _Kinematics:
    qfrc: np.ndarray  # [T, nv] mj_inverse, constraints off
    root_pos: np.ndarray  # [T, 3]
    root_mat: np.ndarray  # [T, 3, 3]
    body_pos: np.ndarray  # [T, B, 3] contact bodies
    body_mat: np.ndarray  # [T, B, 3, 3]
    jacp: np.ndarray  # [T, B, 3, nv] translational Jacobian of each contact body's origin
    jacr: np.ndarray  # [T, B, 3, nv] rotational Jacobian


def _mujoco_pass(fm: FeasibilityModel, qpos: np.ndarray, qvel: np.ndarray,
                 qacc: np.ndarray, touching: np.ndarray) -> _Kinematics:
    """The only per-frame MuJoCo calls: mj_inverse, and one mj_jacBody per contact body in
    frames where something touches (``touching`` [T] bool; zeros elsewhere)."""
    model, data = fm.model, fm.data
    num_frames, nv = qpos.shape[0], model.nv
    bodies = fm.contact_bodies
    out = _Kinematics(
        qfrc=np.empty((num_frames, nv)), root_pos=np.empty((num_frames, 3)),
        root_mat=np.empty((num_frames, 9)), body_pos=np.empty((num_frames, len(bodies), 3)),
        body_mat=np.empty((num_frames, len(bodies), 9)),
        jacp=np.zeros((num_frames, len(bodies), 3, nv)),
        jacr=np.zeros((num_frames, len(bodies), 3, nv)))
    root = fm.root_body
    for t in range(num_frames):
        data.qpos[:] = qpos[t]
        data.qvel[:] = qvel[t]
        data.qacc[:] = qacc[t]
        mujoco.mj_inverse(model, data)
        out.qfrc[t] = data.qfrc_inverse
        out.root_pos[t] = data.xpos[root]
        out.root_mat[t] = data.xmat[root]
        out.body_pos[t] = data.xpos[bodies]
        out.body_mat[t] = data.xmat[bodies]
        if not touching[t]:
            continue
        for b, body in enumerate(bodies):
            mujoco.mj_jacBody(model, data, out.jacp[t, b], out.jacr[t, b], body)
    out.root_mat = out.root_mat.reshape(num_frames, 3, 3)
    out.body_mat = out.body_mat.reshape(num_frames, len(bodies), 3, 3)
    return out


def _contact_columns(fm: FeasibilityModel, kin: _Kinematics,
                     active: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Generalized force of a one-body-weight push along every cone edge of every point.

    Returns:
        columns [T, nv, 4P] (zero for points not touching) and the points' world positions
        [T, P, 3] (the lowest point of each contact sphere).
    """
    b = fm.point_body_index  # [P] index into the contact bodies
    mat = kin.body_mat[:, b]  # [T, P, 3, 3]
    centre = kin.body_pos[:, b] + np.einsum("tpij,pj->tpi", mat, fm.point_local)
    points = centre - fm.point_radius[None, :, None] * np.array([0.0, 0.0, 1.0])
    lever = points - kin.body_pos[:, b]  # [T, P, 3]
    jacr = kin.jacr[:, b]  # [T, P, 3, nv]
    # v_point = v_origin + ω × r = J_p q̇ - r × (J_r q̇), i.e. J = J_p - [r]× J_r
    rx, ry, rz = lever[..., 0, None], lever[..., 1, None], lever[..., 2, None]
    jac = kin.jacp[:, b].copy()
    jac[..., 0, :] -= ry * jacr[..., 2, :] - rz * jacr[..., 1, :]
    jac[..., 1, :] -= rz * jacr[..., 0, :] - rx * jacr[..., 2, :]
    jac[..., 2, :] -= rx * jacr[..., 1, :] - ry * jacr[..., 0, :]
    columns = (jac.swapaxes(-1, -2) @ (fm.edges * fm.weight))  # [T, P, nv, 4]
    columns *= active[:, :, None, None]
    columns = columns.transpose(0, 2, 1, 3)  # [T, nv, P, 4]
    return columns.reshape(columns.shape[0], columns.shape[1], -1), points


def _solve_splits(fm: FeasibilityModel, qfrc: np.ndarray, columns: np.ndarray,
                  active: np.ndarray, config: FeasibilityConfig) -> np.ndarray:
    """Edge forces x [T, 4P] ≥ 0 (in body weights) of the chosen split, one QP per frame.

    Objective, in normalized units: residual_weight × |unpowered rows - J x|² (force per body
    weight, torque per body weight × residual_length_m) + effort_weight × Σ (τ / τ_max)²
    + regularization |x|².
    """
    free = fm.unpowered_rows
    row_scale = np.ones(free.size) / fm.weight
    row_scale[(free >= 3) & (free < 6)] /= config.residual_length_m
    # Stack both least-squares blocks: H = Mᵀ M, f = -Mᵀ b (batched matmul, not einsum).
    root_weight = np.sqrt(config.residual_weight)
    effort_factor = np.sqrt(config.effort_weight) / fm.effort_scale
    rows = np.concatenate([columns[:, free] * (root_weight * row_scale)[:, None],
                           columns[:, fm.actuator_dof] * effort_factor[:, None]], axis=1)
    target = np.concatenate([qfrc[:, free] * (root_weight * row_scale),
                             qfrc[:, fm.actuator_dof] * effort_factor], axis=1)
    rows_t = rows.swapaxes(1, 2)  # [T, n, U + nu]
    hessian = rows_t @ rows
    linear = -(rows_t @ target[..., None])[..., 0]
    x = np.zeros(linear.shape)
    variable_active = np.repeat(active, 4, axis=1)  # [T, n]
    touching = np.flatnonzero(active.any(axis=1))
    # Frames touching with the same points share the problem's shape: slice them together.
    patterns, group = np.unique(variable_active[touching], axis=0, return_inverse=True)
    for g, pattern in enumerate(patterns):
        frames = touching[group.ravel() == g]
        index = np.flatnonzero(pattern)
        n = index.size
        # daqp reads its arguments as C-contiguous buffers: fancy indexing does not give that.
        h = np.ascontiguousarray(hessian[frames][:, index][:, :, index]
                                 + config.regularization * np.eye(n))
        f = np.ascontiguousarray(linear[frames][:, index])
        no_rows, upper, lower = np.zeros((0, n)), np.full(n, _BIG), np.zeros(n)
        sense = np.zeros(n, dtype=np.int32)
        solutions = np.empty((frames.size, n))
        for k in range(frames.size):
            solution, _, flag, _ = daqp.solve(h[k], f[k], no_rows, upper, lower, sense)
            if flag not in _DAQP_OPTIMAL:
                raise FeasibilityError(
                    f"contact-force QP failed in frame {frames[k]} (daqp exitflag {flag})")
            solutions[k] = solution
        x[frames[:, None], index[None, :]] = np.maximum(solutions, 0.0)
    return x


def _zmp(root_pos: np.ndarray, force: np.ndarray, torque: np.ndarray,
         min_normal_force: float) -> np.ndarray:
    """Floor points [T, 2] (z = 0) where the wrenches (force [T, 3], torque [T, 3] about
    ``root_pos`` [T, 3]) have no horizontal moment; NaN where the vertical force is below
    ``min_normal_force`` [N] (the floor need not push: flight)."""
    up = force[:, 2]
    ok = up >= min_normal_force
    safe = np.where(ok, up, 1.0)
    x, y, z = root_pos.T
    zmp = np.stack([x - (torque[:, 1] + z * force[:, 0]) / safe,
                    y + (torque[:, 0] - z * force[:, 1]) / safe], axis=1)
    zmp[~ok] = np.nan
    return zmp


def support_margin(point: np.ndarray, vertices: np.ndarray, active: np.ndarray,
                   tolerance: float = 1e-12) -> np.ndarray:
    """Signed distance [T] of ``point`` [T, 2] to the convex hull of the active ``vertices``.

    Positive inside (distance to the nearest hull edge), negative outside. A hull of one or two
    points (or collinear points) has no inside: minus the distance to it. NaN where ``point`` is
    NaN or no vertex is active.

    Args:
        point: [T, 2].
        vertices: [T, P, 2].
        active: [T, P] bool.
    """
    num_points = vertices.shape[1]
    i, j = np.triu_indices(num_points, 1)
    i, j = np.concatenate([i, j]), np.concatenate([j, i])  # every ordered pair
    start, edge = vertices[:, i], vertices[:, j] - vertices[:, i]  # [T, E, 2]
    # cross[t, e, k] >= 0: vertex k is left of (or on) directed edge e
    rel_vertices = vertices[:, None, :, :] - start[:, :, None, :]
    cross = edge[..., None, 0] * rel_vertices[..., 1] - edge[..., None, 1] * rel_vertices[..., 0]
    left = (cross >= -tolerance) | ~active[:, None, :]
    pair_active = active[:, i] & active[:, j]
    hull_edge = pair_active & left.all(axis=2)  # [T, E] counter-clockwise hull edges
    rel = point[:, None, :] - start
    length_sq = np.maximum(np.sum(edge * edge, axis=2), 1e-300)
    along = np.clip(np.sum(rel * edge, axis=2) / length_sq, 0.0, 1.0)
    edge_distance = np.linalg.norm(rel - along[..., None] * edge, axis=2)
    point_distance = np.linalg.norm(point[:, None, :] - vertices, axis=2)  # [T, P]
    distance = np.minimum(
        np.where(hull_edge, edge_distance, np.inf).min(axis=1),
        np.where(active, point_distance, np.inf).min(axis=1))
    side = edge[..., 0] * rel[..., 1] - edge[..., 1] * rel[..., 0]
    # Inside: strictly left of every hull edge, with an area (a reversed edge would fail).
    inside = np.where(hull_edge, side > tolerance, True).all(axis=1) & hull_edge.any(axis=1)
    margin = np.where(inside, distance, -distance)
    margin[~active.any(axis=1) | ~np.isfinite(point).all(axis=1)] = np.nan
    return margin


# --- per clip -----------------------------------------------------------------------------------

@dataclass
class FeasibilityReport:
    """One clip's verdict: per-joint torque statistics, residuals, CoP, score and frame mask.

    Attributes:
        frames: Number of frames.
        score: Share of feasible frames [0, 1].
        feasible: ``score >= min_feasible_share``.
        mask: [T] bool, feasible frames.
        actuators: Actuator names, the order of the per-joint arrays.
        torque_limit: [nu] force limits [N·m].
        torque_peak: [nu] max |τ| [N·m].
        torque_rms: [nu] RMS τ [N·m].
        over_limit_share: [nu] share of frames over ``torque_limit_scale`` × the limit.
        residual_force_max, residual_force_rms: Residual force norm [N].
        residual_torque_max, residual_torque_rms: Residual torque norm [N·m].
        residual_share: Share of frames whose residual is over a threshold.
        residual_weight_share: Mean residual force over the robot's weight: the share of
            its weight a hand of god carries on average [-].
        torque_excess_rms: RMS over frames and actuators of the torque beyond the limit [N·m].
        cop_outside_share: Share of supported frames whose ZMP is outside the support polygon.
        cop_margin_min: Smallest signed ZMP margin [m] (negative: outside); NaN if never defined.
        by_phase: Support phase ("flight", "left_foot", "left_foot+right_foot", …) → frames,
            infeasible frames, and the count of each cause among them (see
            :func:`frame_causes`).
        dynamics: The per-frame arrays (not stored in files).
    """

    frames: int
    score: float
    feasible: bool
    mask: np.ndarray
    actuators: tuple[str, ...]
    torque_limit: np.ndarray
    torque_peak: np.ndarray
    torque_rms: np.ndarray
    over_limit_share: np.ndarray
    residual_force_max: float
    residual_force_rms: float
    residual_torque_max: float
    residual_torque_rms: float
    residual_share: float
    residual_weight_share: float
    torque_excess_rms: float
    cop_outside_share: float
    cop_margin_min: float
    by_phase: dict[str, dict[str, Any]] = field(default_factory=dict)
    dynamics: FrameDynamics | None = field(default=None, repr=False)

    @property
    def worst_actuator(self) -> str:
        """The actuator with the highest peak-to-limit ratio."""
        return self.actuators[int(np.argmax(self.torque_peak / self.torque_limit))]

    def as_record(self) -> dict[str, Any]:
        """Plain-data form (JSON): stored with the clip and listed in the metrics."""
        def number(x: float) -> float | None:
            return None if not np.isfinite(x) else round(float(x), 6)

        return {
            "frames": self.frames, "score": number(self.score), "feasible": bool(self.feasible),
            "worst_actuator": self.worst_actuator,
            "per_actuator": {
                name: {"limit_nm": number(self.torque_limit[i]),
                       "peak_nm": number(self.torque_peak[i]),
                       "rms_nm": number(self.torque_rms[i]),
                       "over_limit_share": number(self.over_limit_share[i])}
                for i, name in enumerate(self.actuators)},
            "residual_force_max_n": number(self.residual_force_max),
            "residual_force_rms_n": number(self.residual_force_rms),
            "residual_torque_max_nm": number(self.residual_torque_max),
            "residual_torque_rms_nm": number(self.residual_torque_rms),
            "residual_share": number(self.residual_share),
            "residual_weight_share": number(self.residual_weight_share),
            "torque_excess_rms_nm": number(self.torque_excess_rms),
            "cop_outside_share": number(self.cop_outside_share),
            "cop_margin_min_m": number(self.cop_margin_min),
            "infeasible_by_phase": self.by_phase,
        }


def summarize(fm: FeasibilityModel, dyn: FrameDynamics, config: FeasibilityConfig) -> \
        FeasibilityReport:
    """Per-joint statistics, the frame mask and the clip score of per-frame results."""
    limit = fm.force_limit
    over = np.abs(dyn.torque) > config.torque_limit_scale * limit  # [T, nu]
    force = np.linalg.norm(dyn.residual_force, axis=1)
    torque = np.linalg.norm(dyn.residual_torque, axis=1)
    residual_bad = (force > config.max_residual_force_n) | (torque > config.max_residual_torque_nm)
    mask = ~over.any(axis=1) & ~residual_bad
    margin = dyn.support_margin[np.isfinite(dyn.support_margin)]
    score = float(mask.mean())
    return FeasibilityReport(
        frames=int(mask.size), score=score, feasible=score >= config.min_feasible_share,
        mask=mask, actuators=fm.actuator_names, torque_limit=limit,
        torque_peak=np.abs(dyn.torque).max(axis=0),
        torque_rms=np.sqrt(np.mean(dyn.torque ** 2, axis=0)),
        over_limit_share=over.mean(axis=0),
        residual_force_max=float(force.max()), residual_force_rms=float(np.sqrt(np.mean(force**2))),
        residual_torque_max=float(torque.max()),
        residual_torque_rms=float(np.sqrt(np.mean(torque ** 2))),
        residual_share=float(residual_bad.mean()),
        residual_weight_share=float(force.mean() / fm.weight),
        torque_excess_rms=float(np.sqrt(np.mean(np.maximum(
            np.abs(dyn.torque) - config.torque_limit_scale * limit, 0.0) ** 2))),
        cop_outside_share=float(np.mean(margin < 0.0)) if margin.size else 0.0,
        cop_margin_min=float(margin.min()) if margin.size else float("nan"),
        by_phase=phase_breakdown(support_phases(fm, dyn.contact),
                                 frame_causes(fm, dyn, over, residual_bad), mask),
        dynamics=dyn)


def support_phases(fm: FeasibilityModel, contact: np.ndarray) -> list[str]:
    """Per frame, the bodies in contact joined by "+" (sorted), or "flight"."""
    names = np.array(fm.site_body_name)
    return ["+".join(sorted(set(names[row]))) or "flight" for row in np.asarray(contact, bool)]


def frame_causes(fm: FeasibilityModel, dyn: FrameDynamics, over: np.ndarray,
                 residual_bad: np.ndarray) -> list[str]:
    """Per frame, why it is infeasible ("" when it is not).

    ``torque:<actuator>``: the actuator furthest over its limit. Otherwise, for a residual:
    ``flight`` (nothing touches), ``cop_ahead`` / ``cop_behind`` / ``cop_left`` / ``cop_right``
    (the ZMP is outside the support polygon, on that side relative to the root's heading, by
    the larger excess over the polygon's half-extent), or ``residual`` (the wrench fits the
    polygon but not the friction cones).
    """
    ratio = np.abs(dyn.torque) / fm.force_limit
    worst = np.argmax(np.where(over, ratio, -1.0), axis=1)
    active = dyn.contact[:, fm.point_site]  # [T, P]
    xy = dyn.contact_points[..., :2]
    count = np.maximum(active.sum(axis=1, keepdims=True), 1)
    centre = (xy * active[..., None]).sum(axis=1) / count
    lateral = np.stack([-dyn.heading[:, 1], dyn.heading[:, 0]], axis=1)
    causes = []
    for t in range(over.shape[0]):
        if over[t].any():
            causes.append(f"torque:{fm.actuator_names[worst[t]]}")
        elif not residual_bad[t]:
            causes.append("")
        elif not active[t].any():
            causes.append("flight")
        elif np.isfinite(dyn.support_margin[t]) and dyn.support_margin[t] < 0.0:
            rel = xy[t][active[t]] - centre[t]
            offset = dyn.zmp[t] - centre[t]
            along, side = offset @ dyn.heading[t], offset @ lateral[t]
            excess_along = abs(along) - np.abs(rel @ dyn.heading[t]).max()
            excess_side = abs(side) - np.abs(rel @ lateral[t]).max()
            if excess_along >= excess_side:
                causes.append("cop_ahead" if along > 0 else "cop_behind")
            else:
                causes.append("cop_left" if side > 0 else "cop_right")
        else:
            causes.append("residual")
    return causes


def phase_breakdown(phases: list[str], causes: list[str],
                    mask: np.ndarray) -> dict[str, dict[str, Any]]:
    """Phase → {"frames", "infeasible", "causes": {cause: count}} (causes sorted by count)."""
    table: dict[str, dict[str, Any]] = {}
    for phase, cause, ok in zip(phases, causes, mask, strict=True):
        row = table.setdefault(phase, {"frames": 0, "infeasible": 0, "causes": {}})
        row["frames"] += 1
        if not ok:
            row["infeasible"] += 1
            row["causes"][cause] = row["causes"].get(cause, 0) + 1
    for row in table.values():
        row["causes"] = dict(sorted(row["causes"].items(), key=lambda kv: -kv[1]))
    return dict(sorted(table.items()))


def accelerations(qvel: np.ndarray, fps: float) -> np.ndarray:
    """qacc [T, nv] from qvel [T, nv]: central differences, the AMP conversion's convention.

    Componentwise differencing of the free joint's body-frame angular velocity is exact: the
    body-frame derivative of ω_body equals R^T dω_world/dt, because ω × ω = 0.
    """
    from amp.kinematics import central_difference  # here: it pulls in scipy, merge need not

    return central_difference(qvel, fps)


def clip_feasibility(fm: FeasibilityModel, qpos: np.ndarray, qvel: np.ndarray, fps: float,
                     contact: np.ndarray, config: FeasibilityConfig) -> FeasibilityReport:
    """Feasibility of a clip: qpos [T, nq] and qvel [T, nv] at ``fps`` [Hz], contact [T, S]."""
    qacc = accelerations(qvel, fps)
    dyn = frame_dynamics(fm, qpos, qvel, qacc, np.asarray(contact, bool), config)
    return summarize(fm, dyn, config)


def feasibility_model(robot: Any) -> FeasibilityModel:
    """The :class:`FeasibilityModel` of a :class:`robots.Robot`'s model and contact sites,
    built once per robot (``Robot.derived``)."""
    return robot.derived("amp.feasibility_model",
                         lambda: FeasibilityModel(robot.model, robot.contact_site_ids))


def assess_clip(clip: Any, robot: Any, config: FeasibilityConfig) -> FeasibilityReport:
    """Feasibility of an :class:`amp.convert.AmpClip` (its qpos, qvel, fps and the contact
    labels of its features, i.e. THE contact rule), stored on the clip: ``clip.feasibility``
    (the record) and ``clip.feasible_frame`` ([T] bool)."""
    fm = feasibility_model(robot)
    contact = np.asarray(clip.features)[:, CONTACT_SLICE] > 0.5
    report = clip_feasibility(fm, clip.qpos, clip.qvel, clip.fps, contact, config)
    clip.feasibility = report.as_record()
    clip.feasible_frame = report.mask
    return report


def metrics_record(records: dict[str, dict[str, Any]],
                   config: FeasibilityConfig) -> dict[str, Any]:
    """The metrics block of a set of clips' records (name → :meth:`as_record`): a summary
    (counts, mean score, clips over the limit) and one short line of numbers per clip."""
    scores = [r["score"] for r in records.values()]
    short = {}
    for name, r in records.items():
        worst = r["per_actuator"][r["worst_actuator"]]
        short[name] = {"score": r["score"], "feasible": r["feasible"],
                       "worst_actuator": r["worst_actuator"], "peak_nm": worst["peak_nm"],
                       "rms_nm": worst["rms_nm"],
                       "over_limit_share": max(a["over_limit_share"]
                                               for a in r["per_actuator"].values()),
                       "residual_force_max_n": r["residual_force_max_n"],
                       "residual_share": r["residual_share"],
                       "residual_weight_share": r["residual_weight_share"],
                       "cop_outside_share": r["cop_outside_share"]}
    return {"thresholds": config.as_record(),
            "clips": len(records), "feasible_clips": sum(r["feasible"] for r in records.values()),
            "mean_score": round(float(np.mean(scores)), 6) if scores else None,
            "per_clip": short}


# --- merge policy -------------------------------------------------------------------------------

POLICIES = ("keep", "weight", "drop")


@dataclass(frozen=True)
class FeasibilityPolicy:
    """How ``merge`` uses each clip's feasibility score (``merge.feasibility`` in params.yaml).

    Attributes:
        policy: ``keep``: ignore the score. ``weight``: multiply the clip's sampling weight by
            ``max(score, min_weight)``. ``drop``: leave out clips scoring below ``min_score``.
        min_score: ``drop`` leaves out clips whose score is below this [0, 1].
        min_weight: ``weight`` never multiplies by less than this [0, 1] (0: an all-infeasible
            clip is kept in the file but never sampled).
        max_drop_share: ``drop`` refuses (MergeError) to leave out more than this share of the
            frames, so a bad threshold cannot silently throw away most of the data [0, 1].
        exempt: Clip-name globs the policy never touches (e.g. ``["stand*"]``).
    """

    BOUNDS: ClassVar[dict[str, str]] = {"min_score": "[0, 1]", "min_weight": "[0, 1]",
                                        "max_drop_share": "[0, 1]"}

    policy: str = "weight"
    min_score: float = 0.5
    min_weight: float = 0.25
    max_drop_share: float = 0.5
    exempt: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.policy not in POLICIES:
            raise ValueError(f"merge.feasibility.policy {self.policy!r}: use one of "
                             f"{list(POLICIES)}")


@dataclass(frozen=True)
class PolicyDecision:
    """What the policy did: a multiplier per clip, which clips stay, and why."""

    multiplier: np.ndarray  # [C]
    keep: np.ndarray  # [C] bool
    dropped: list[dict[str, Any]]
    weighted: list[dict[str, Any]]

    def as_metrics(self, policy: FeasibilityPolicy) -> dict[str, Any]:
        return {"policy": asdict(policy), "dropped_count": len(self.dropped),
                "dropped": self.dropped, "weighted_down": self.weighted}


def apply_policy(names: tuple[str, ...], lengths: np.ndarray, scores: np.ndarray,
                 policy: FeasibilityPolicy) -> PolicyDecision:
    """Apply ``policy`` to clips with feasibility ``scores`` [C] (NaN: no score, untouched).

    Raises:
        FeasibilityError: unknown policy, or ``drop`` would leave out more than
            ``max_drop_share`` of the frames (the message names the clips).
    """
    if policy.policy not in POLICIES:
        raise FeasibilityError(f"merge.feasibility.policy {policy.policy!r}: use one of "
                               f"{list(POLICIES)}")
    scores = np.asarray(scores, np.float64)
    lengths = np.asarray(lengths, np.int64)
    scored = np.isfinite(scores) & np.array(
        [not any(fnmatch.fnmatchcase(n, g) for g in policy.exempt) for n in names], dtype=bool)
    multiplier = np.ones(len(names))
    keep = np.ones(len(names), dtype=bool)
    dropped: list[dict[str, Any]] = []
    weighted: list[dict[str, Any]] = []
    if policy.policy == "weight":
        multiplier[scored] = np.maximum(scores[scored], policy.min_weight)
        weighted = [{"clip": names[i], "score": round(float(scores[i]), 6),
                     "multiplier": round(float(multiplier[i]), 6)}
                    for i in np.flatnonzero(scored & (multiplier < 1.0))]
    elif policy.policy == "drop":
        keep = ~(scored & (scores < policy.min_score))
        dropped = [{"clip": names[i], "frames": int(lengths[i]),
                    "score": round(float(scores[i]), 6),
                    "reason": f"feasibility score {scores[i]:.3f} < min_score "
                              f"{policy.min_score:g}"} for i in np.flatnonzero(~keep)]
        share = float(lengths[~keep].sum() / max(lengths.sum(), 1))
        if share > policy.max_drop_share:
            raise FeasibilityError(
                f"feasibility policy drop would leave out {share:.0%} of the frames "
                f"(> max_drop_share {policy.max_drop_share:g}): "
                f"{[d['clip'] for d in dropped]}; lower min_score or use policy weight")
    return PolicyDecision(multiplier, keep, dropped, weighted)


def read_record(path: str | Path) -> dict[str, Any] | None:
    """The feasibility record stored with an AMP clip file (its ``feasibility`` attribute);
    None when the file does not exist or holds none (converted without the check).

    Raises:
        FeasibilityError: the file exists but is not readable HDF5 or the record is not JSON.
    """
    path = Path(path)
    if not path.exists():
        return None
    try:
        with h5py.File(path, "r") as f:
            text = f.attrs.get("feasibility")
    except (OSError, ValueError) as exc:
        raise FeasibilityError(f"{path}: cannot open as HDF5 ({exc})") from exc
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError as exc:
        raise FeasibilityError(f"{path}: feasibility attribute is not JSON ({exc})") from exc


def feasibility_label(record: dict[str, Any]) -> list[str]:
    """Two short lines for a contact-sheet tile, from :meth:`FeasibilityReport.as_record`:
    the verdict, score and hand-of-god force; the worst actuator's peak against its limit."""
    worst = record["per_actuator"][record["worst_actuator"]]
    verdict = "feasible" if record["feasible"] else "INFEASIBLE"
    return [f"{verdict} {record['score']:.2f} (hand of god {record['residual_force_max_n']:.1f} N)",
            f"{record['worst_actuator']} {worst['peak_nm']:.1f}/{worst['limit_nm']:.1f} Nm"]
