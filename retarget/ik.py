"""Per-frame inverse kinematics with mink: frame tasks, posture, joint, speed and floor limits.

One :class:`RobotIK` solves a whole clip frame by frame. The first frame is solved to
convergence from the robot's default pose (placed at the root target), so the result never
depends on where a previous clip ended; every later frame is warm-started from the previous
solution (extrapolated by the last frame's motion) and iterated until the weighted task error
stops improving, with a cap on iterations.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import mink
import mujoco
import numpy as np

from robots import Robot
from robots.errors import AmpkitError
from robots.rotations import quat_angle_between, quat_yaw
from robots.trajectory import heading_steps

# Relative error changes below this are numerical noise, not a worse iterate.
_NOISE_FRACTION = 1e-2


class IKError(AmpkitError):
    """The QP solver found no solution (infeasible limits or a degenerate problem)."""


@dataclass(frozen=True)
class IKConfig:
    """Solver settings.

    Attributes:
        solver: qpsolvers backend for mink (daqp is the one that installs with mink).
        damping: Levenberg-Marquardt damping on every dof (regularizes near singularities).
        joint_speed_limit_rad_s: Per-frame limit on every hinge joint [rad/s]: a frame's
            solution stays within this speed times the frame period of the previous frame's,
            whatever the number of iterations (a per-iteration limit let 4 iterations move 4x).
        root_speed_ratio: The root may move per frame, along each world axis, at most this
            multiple of its target's (the scaled human's) move, plus ``root_speed_slack_mps``
            (no root jumps the human does not make).
        root_speed_slack_mps: See ``root_speed_ratio`` [m/s].
        root_turn_ratio: Likewise for the root's rotation: per frame, about each body axis, at
            most this multiple of the root target's rotation angle, plus
            ``root_turn_slack_rad_s`` (no heading flips the human's hips do not make).
        root_turn_slack_rad_s: See ``root_turn_ratio`` [rad/s].
        max_iterations: Cap on solve_ik iterations per frame after the first frame.
        min_relative_improvement: Stop a frame when an iteration removes less than this
            fraction of the weighted task error.
        error_tolerance: Stop a frame when the cost-weighted position error norm is below this
            (0.02: 0.4 mm at a pinned contact site, cost 50; 2 mm at a cost-10 target).
        first_frame_max_iterations: Cap for the first frame (solved to convergence).
        first_frame_min_relative_improvement: Convergence test of the first frame.
        extrapolate_warm_start: Start each frame from the previous solution advanced by the
            previous frame's motion (constant-velocity prediction) instead of standing still.
        floor_height_m: Contact sites are kept at or above this height (the floor).
        acceleration_cost: Cost per radian on every hinge joint's departure from the
            constant-velocity prediction of the two previous frames (``q[t-1] + (q[t-1] -
            q[t-2])``): a penalty on the joint's second difference. Without it a frame where
            the foot targets change kind (touch-down, heel-to-toe hand-over, lift-off) can
            spike a joint by 0.2-0.4 rad for one frame, which no physical robot reproduces and
            an AMP discriminator picks up; 0 disables it.
    """

    BOUNDS: ClassVar[dict[str, str]] = {
        "damping": ">= 0", "joint_speed_limit_rad_s": "> 0", "max_iterations": ">= 1",
        "min_relative_improvement": "[0, 1]", "error_tolerance": ">= 0",
        "first_frame_max_iterations": ">= 1", "first_frame_min_relative_improvement": "[0, 1]",
        "acceleration_cost": ">= 0"}

    solver: str = "daqp"
    damping: float = 1e-3
    joint_speed_limit_rad_s: float = 20.0
    root_speed_ratio: float = 1.15
    root_speed_slack_mps: float = 0.02
    root_turn_ratio: float = 1.3
    root_turn_slack_rad_s: float = 0.5
    max_iterations: int = 4
    min_relative_improvement: float = 0.5
    error_tolerance: float = 0.02
    first_frame_max_iterations: int = 200
    first_frame_min_relative_improvement: float = 1e-4
    extrapolate_warm_start: bool = True
    floor_height_m: float = 0.0
    acceleration_cost: float = 0.0


@dataclass
class TrackTargets:
    """The target trajectory of one frame task over a clip.

    A task may switch between several robot frames (a foot tracks its body while swinging and
    its contacting sole site while in contact); ``frame_index`` picks one per frame.

    Attributes:
        name: Task name (from the mapping).
        frame_names: Candidate robot frames.
        frame_types: ``"body"`` or ``"site"`` per candidate.
        frame_index: [T] int, candidate used at each frame.
        wxyz_xyz: [T, 7] target pose of that frame (quaternion wxyz, position [m]).
        position_cost: [T, 3] mink position cost per frame.
        orientation_cost: [T, 3] mink orientation cost per frame.
    """

    name: str
    frame_names: tuple[str, ...]
    frame_types: tuple[str, ...]
    frame_index: np.ndarray
    wxyz_xyz: np.ndarray
    position_cost: np.ndarray
    orientation_cost: np.ndarray

    @property
    def num_frames(self) -> int:
        return int(self.wxyz_xyz.shape[0])


@dataclass
class IKResult:
    """IK output of a clip: ``qpos`` [T, nq], ``iterations`` [T] solve_ik calls per frame, and
    ``relaxed_steps``: iterations solved with a hard limit relaxed (conflicting limits)."""

    qpos: np.ndarray
    iterations: np.ndarray
    relaxed_steps: int = 0


class FloorLimit(mink.Limit):
    """Keeps sites (the foot contact points) at or above the floor: z + J_z dq >= floor."""

    def __init__(self, model: mujoco.MjModel, site_names: tuple[str, ...],
                 floor_height_m: float = 0.0, gain: float = 1.0) -> None:
        self.model = model
        self.site_ids = np.array([model.site(name).id for name in site_names])
        self.floor_height_m = floor_height_m
        self.gain = gain
        self.clearance = np.zeros(len(site_names))
        self._jacp = np.zeros((len(site_names), 3, model.nv))
        self._G = np.zeros((len(site_names), model.nv))

    def compute_qp_inequalities(self, configuration: mink.Configuration,
                                dt: float) -> mink.Constraint:
        del dt  # a position constraint: independent of the step duration
        data = configuration.data
        for row, site_id in enumerate(self.site_ids):
            mujoco.mj_jacSite(self.model, data, self._jacp[row], None, site_id)
        np.negative(self._jacp[:, 2, :], out=self._G)
        heights = data.site_xpos[self.site_ids, 2] - self.floor_height_m - self.clearance
        return mink.Constraint(G=self._G.copy(), h=self.gain * heights)

    def set_clearance(self, clearance_m: np.ndarray | None) -> None:
        """Per-site extra height above the floor for the coming frame (a swinging foot's
        sites stay clear of the floor; sites in contact get 0). None: 0 everywhere."""
        self.clearance = np.zeros(len(self.site_ids)) if clearance_m is None else clearance_m


class FrameStepLimit(mink.Limit):
    """Bounds how far one frame's solution moves from the previous frame's, over all of the
    frame's iterations: |q_joint - q_ref| <= joint_step and |root - root_ref| <= root_step
    (per world axis). Inactive until :meth:`set_reference` is called."""

    def __init__(self, model: mujoco.MjModel, joint_qpos: np.ndarray) -> None:
        self.model = model
        self.joint_qpos = np.asarray(joint_qpos, dtype=int)
        joint_dofs = []
        for j in range(model.njnt):
            if model.jnt_type[j] == mujoco.mjtJoint.mjJNT_HINGE and \
                    model.jnt_qposadr[j] in set(self.joint_qpos.tolist()):
                joint_dofs.append((model.jnt_qposadr[j], model.jnt_dofadr[j]))
        order = {q: d for q, d in joint_dofs}
        self.joint_dofs = np.array([order[q] for q in self.joint_qpos], dtype=int)
        rows = np.concatenate([np.arange(6), self.joint_dofs])
        projection = np.zeros((len(rows), model.nv))
        projection[np.arange(len(rows)), rows] = 1.0
        self._G = np.vstack([projection, -projection])
        self.reference: np.ndarray | None = None
        self.bound = np.zeros(len(rows))

    def set_reference(self, qpos: np.ndarray | None, root_step: np.ndarray | None = None,
                      joint_step: float = 0.0, turn_step: np.ndarray | None = None) -> None:
        """Bound the coming frame around ``qpos`` (None: no bound): root position per world
        axis by ``root_step`` [3] m, root rotation about its body x, y, z by ``turn_step``
        [3] rad, joints by ``joint_step`` rad."""
        self.reference = None if qpos is None else qpos.copy()
        if qpos is not None and root_step is not None:
            turn = np.full(3, np.inf) if turn_step is None else turn_step
            self.bound = np.concatenate([root_step, turn,
                                         np.full(len(self.joint_qpos), joint_step)])

    def clip(self, qpos: np.ndarray) -> np.ndarray:
        """``qpos`` moved inside the bound (a warm start must be feasible)."""
        if self.reference is None:
            return qpos
        out = qpos.copy()
        columns = np.concatenate([np.arange(3), self.joint_qpos])
        bound = np.concatenate([self.bound[:3], self.bound[6:]])
        out[columns] = np.clip(qpos[columns], self.reference[columns] - bound,
                               self.reference[columns] + bound)
        turn = np.zeros(3)
        mujoco.mju_subQuat(turn, qpos[3:7], self.reference[3:7])
        if np.any(np.abs(turn) > self.bound[3:6]):
            out[3:7] = self.reference[3:7]  # an over-turned warm start restarts unturned
        return out

    def compute_qp_inequalities(self, configuration: mink.Configuration,
                                dt: float) -> mink.Constraint:
        del dt  # a bound on the frame's displacement, not on one iteration
        if self.reference is None:
            return mink.Constraint()
        columns = np.concatenate([np.arange(3), self.joint_qpos])
        moved_qpos = configuration.q[columns] - self.reference[columns]
        turned = np.zeros(3)
        mujoco.mju_subQuat(turned, configuration.q[3:7], self.reference[3:7])
        moved = np.concatenate([moved_qpos[:3], turned, moved_qpos[3:]])
        h = np.concatenate([np.maximum(self.bound - moved, 0.0),
                            np.maximum(self.bound + moved, 0.0)])
        return mink.Constraint(G=self._G, h=h)


class ConstantVelocityLimit(mink.VelocityLimit):
    """mink's VelocityLimit with its (configuration-independent) rows built once per dt."""

    def __init__(self, model: mujoco.MjModel, velocities: dict[str, float]) -> None:
        super().__init__(model, velocities)
        self._cache: tuple[float, mink.Constraint] | None = None

    def compute_qp_inequalities(self, configuration: mink.Configuration,
                                dt: float) -> mink.Constraint:
        if self._cache is None or self._cache[0] != dt:
            self._cache = (dt, super().compute_qp_inequalities(configuration, dt))
        return self._cache[1]


class RobotIK:
    """mink IK for one robot; reusable across clips (one per worker process).

    Args:
        robot: The robot (its model is used, not modified).
        config: Solver settings.
        posture_weight: PostureTask cost towards the standing pose.
    """

    def __init__(self, robot: Robot, config: IKConfig, posture_weight: float) -> None:
        self.robot = robot
        self.config = config
        self.model = robot.model
        self.configuration = mink.Configuration(self.model, robot.spec.default_qpos())
        self.default_qpos = robot.spec.default_qpos()
        self.posture = mink.PostureTask(self.model, cost=posture_weight)
        self.posture.set_target(self.default_qpos)
        self._joint_qpos = robot.joint_qpos_addresses
        self.step_limit = FrameStepLimit(self.model, self._joint_qpos)
        self.relaxed_steps = 0
        self.floor_limit = FloorLimit(self.model, robot.spec.contact_site_names,
                                      config.floor_height_m)
        self.limits: list[mink.Limit] = [
            mink.ConfigurationLimit(self.model), self.step_limit, self.floor_limit]
        ranges = robot.spec.joint_range_array()
        self._joint_lower, self._joint_upper = ranges[:, 0], ranges[:, 1]
        self._velocity = np.zeros(self.model.nv)
        self._frame_ids: dict[tuple[str, str], int] = {}

    # --- public API ------------------------------------------------------------------------

    def solve_clip(self, tracks: list[TrackTargets], fps: float,
                   site_clearance: np.ndarray | None = None,
                   root_path: np.ndarray | None = None,
                   com_target: np.ndarray | None = None, com_cost: float = 0.0,
                   hold_qpos: np.ndarray | None = None,
                   hold_cost: np.ndarray | None = None) -> IKResult:
        """Solve every frame of a clip.

        Args:
            tracks: Target trajectories, all with the same number of frames T >= 1; the
                first is the root task (its target places the first frame's start pose).
            fps: Frame rate [Hz]; the frame period is the IK step (velocity limits).
            site_clearance: [T, S] minimum height above the floor of each contact site (spec
                order) per frame [m]; None: 0 (the floor only).
            root_path: [T, 3] the human root path whose per-frame moves bound the robot
                root's (``root_speed_ratio``); None: the root task's target positions.
            com_target: [T, 2] horizontal centre-of-mass targets [m] (``retarget.balance``),
                tracked with cost ``com_cost`` per metre; None: no CoM task.
            hold_qpos: [T, nq] a posture per frame that joints are held at, with
                ``hold_cost`` [nv] per radian (zero entries free their joints); None: none.

        Returns:
            IKResult with qpos [T, nq] and iterations [T].

        Raises:
            IKError: the QP solver failed.
        """
        num_frames = tracks[0].num_frames
        dt = 1.0 / fps
        self.relaxed_steps = 0
        tasks: list = [self._make_task(track) for track in tracks]
        com_task = None
        if com_target is not None:
            com_task = mink.ComTask(cost=np.array([com_cost, com_cost, 0.0]))
            tasks.append(com_task)
        hold_task = None
        if hold_qpos is not None:
            hold_task = mink.PostureTask(self.model, cost=hold_cost)
            tasks.append(hold_task)
        smooth_task = self._acceleration_task()
        if smooth_task is not None:
            tasks.append(smooth_task)
        qpos = np.zeros((num_frames, self.model.nq))
        iterations = np.zeros(num_frames, dtype=np.int32)
        root_target = tracks[0].wxyz_xyz[:, 4:] if root_path is None else root_path
        root_slack = self.config.root_speed_slack_mps * dt
        root_quat = tracks[0].wxyz_xyz[:, :4]
        # Per-frame turn bounds: the whole rotation for roll and pitch, the heading change for
        # yaw (the pelvis is near level, so its body z is near world z).
        turns = quat_angle_between(root_quat[:-1], root_quat[1:]) if num_frames > 1 else []
        headings = heading_steps(quat_yaw(root_quat))
        turn_slack = self.config.root_turn_slack_rad_s * dt
        joint_step = self.config.joint_speed_limit_rad_s * dt
        for t in range(num_frames):
            self._set_targets(tasks[:len(tracks)], tracks, t)
            if com_task is not None:
                com_task.set_target(np.append(com_target[t], 0.0))
            if hold_task is not None:
                hold_task.set_target(hold_qpos[t])
            if smooth_task is not None:
                self._predict_target(smooth_task, qpos, t)
            self.floor_limit.set_clearance(None if site_clearance is None
                                           else site_clearance[t])
            if t == 0:
                self.step_limit.set_reference(None)
                self.configuration.update(self.start_pose(tracks[0].wxyz_xyz[0]))
                iterations[t] = self._iterate(
                    tasks, dt, self.config.first_frame_max_iterations,
                    self.config.first_frame_min_relative_improvement, tolerance=0.0,
                    full_error=True)
            else:
                root_step = (self.config.root_speed_ratio
                             * np.abs(root_target[t] - root_target[t - 1]) + root_slack)
                turn, heading = float(turns[t - 1]), float(headings[t - 1])
                self.step_limit.set_reference(
                    qpos[t - 1], root_step, joint_step,
                    self.config.root_turn_ratio * np.array([turn, turn, heading]) + turn_slack)
                self._warm_start(qpos, t)
                iterations[t] = self._iterate(
                    tasks, dt, self.config.max_iterations,
                    self.config.min_relative_improvement, self.config.error_tolerance)
            qpos[t] = self.configuration.data.qpos
        return IKResult(qpos=qpos, iterations=iterations, relaxed_steps=self.relaxed_steps)

    def solve_pose(self, tracks: list[TrackTargets], fps: float, frame: int = 0,
                   max_iterations: int | None = None) -> np.ndarray:
        """Solve one frame to convergence from the default pose; returns qpos [nq]."""
        tasks = [self._make_task(track) for track in tracks]
        self._set_targets(tasks, tracks, frame)
        self.step_limit.set_reference(None)
        self.floor_limit.set_clearance(None)
        self.configuration.update(self.start_pose(tracks[0].wxyz_xyz[frame]))
        self._iterate(tasks, 1.0 / fps,
                      max_iterations or self.config.first_frame_max_iterations,
                      self.config.first_frame_min_relative_improvement, tolerance=0.0,
                      full_error=True)
        return self.configuration.data.qpos.copy()

    def start_pose(self, root_target_wxyz_xyz: np.ndarray) -> np.ndarray:
        """The standing pose placed at the root target's position and heading, [nq]."""
        qpos = self.default_qpos.copy()
        qpos[:3] = root_target_wxyz_xyz[4:]
        w, x, y, z = root_target_wxyz_xyz[:4]
        yaw = np.arctan2(2.0 * (w * z + x * y), 1.0 - 2.0 * (y * y + z * z))
        qpos[3:7] = [np.cos(0.5 * yaw), 0.0, 0.0, np.sin(0.5 * yaw)]
        return qpos

    # --- internals -------------------------------------------------------------------------

    def _make_task(self, track: TrackTargets) -> mink.FrameTask:
        task = mink.FrameTask(track.frame_names[0], track.frame_types[0],
                              position_cost=1.0, orientation_cost=1.0)
        task.transform_target_to_world = mink.SE3(wxyz_xyz=track.wxyz_xyz[0].copy())
        return task

    def _set_targets(self, tasks: list[mink.FrameTask], tracks: list[TrackTargets],
                     t: int) -> None:
        body_ids, site_ids, body_rows, site_rows = [], [], [], []
        for row, (task, track) in enumerate(zip(tasks, tracks, strict=True)):
            k = int(track.frame_index[t])
            task.frame_name = track.frame_names[k]
            task.frame_type = track.frame_types[k]
            task.cost[:3] = track.position_cost[t]
            task.cost[3:] = track.orientation_cost[t]
            # A fresh SE3 (no copy needed: the row is never written again).
            task.transform_target_to_world = mink.SE3(wxyz_xyz=track.wxyz_xyz[t])
            frame_id = self._frame_id(track.frame_names[k], track.frame_types[k])
            if task.frame_type == "body":
                body_ids.append(frame_id)
                body_rows.append(row)
            else:
                site_ids.append(frame_id)
                site_rows.append(row)
        # What the stopping rule measures: cost-weighted position errors of every task.
        order = body_rows + site_rows
        self._stop_body_ids = np.array(body_ids, dtype=int)
        self._stop_site_ids = np.array(site_ids, dtype=int)
        self._stop_targets = np.array([tracks[r].wxyz_xyz[t, 4:] for r in order])
        self._stop_costs = np.array([tracks[r].position_cost[t] for r in order])
        self._stop_current = np.empty_like(self._stop_targets)

    def _frame_id(self, name: str, frame_type: str) -> int:
        key = (name, frame_type)
        if key not in self._frame_ids:
            kind = mujoco.mjtObj.mjOBJ_BODY if frame_type == "body" else mujoco.mjtObj.mjOBJ_SITE
            self._frame_ids[key] = mujoco.mj_name2id(self.model, kind, name)
        return self._frame_ids[key]

    def _weighted_error(self, full_tasks: list[mink.FrameTask] | None = None) -> float:
        """Sum over tasks of |cost * error|^2 at the current configuration.

        With ``full_tasks``: mink's full SE(3) errors (first frame, solved to convergence).
        Otherwise positions only: they are what the per-frame stopping rule is for (feet,
        pelvis), and reading them from MuJoCo's arrays is far cheaper.
        """
        if full_tasks is not None:
            total = 0.0
            for task in full_tasks:
                weighted = task.cost * task.compute_error(self.configuration)
                total += float(weighted @ weighted)
            return total
        data = self.configuration.data
        current, split = self._stop_current, len(self._stop_body_ids)
        np.take(data.xpos, self._stop_body_ids, axis=0, out=current[:split])
        np.take(data.site_xpos, self._stop_site_ids, axis=0, out=current[split:])
        current -= self._stop_targets
        current *= self._stop_costs
        flat = current.ravel()
        return float(flat @ flat)

    def _iterate(self, tasks: list[mink.FrameTask], dt: float, max_iterations: int,
                 min_relative_improvement: float, tolerance: float,
                 full_error: bool = False) -> int:
        """Run solve_ik + integrate until the error stops improving; returns iterations."""
        all_tasks = [*tasks, self.posture]
        measured = tasks if full_error else None
        error = self._weighted_error(measured)
        tolerance_sq = tolerance * tolerance
        for iteration in range(1, max_iterations + 1):
            velocity = self._solve(all_tasks, dt)
            self.configuration.integrate_inplace(velocity, dt)
            new_error = self._weighted_error(measured)
            # Stop when converged or when the error barely improved; an iteration that made
            # things worse (a poor linearization) is followed by another.
            improvement = error - new_error
            settled = -_NOISE_FRACTION * error <= improvement < min_relative_improvement * error
            if new_error <= tolerance_sq or settled:
                return iteration
            error = new_error
        return max_iterations

    def _solve(self, tasks: list, dt: float) -> np.ndarray:
        """One mink step; when the hard limits conflict (a swing site held clear of the floor
        that the frame's step bound cannot lift in time, in a fast jump) the frame is retried
        without the swing clearance, then without the step bound, and counted."""
        relaxations = (None, self.floor_limit, self.step_limit)
        for dropped in relaxations:
            limits = [limit for limit in self.limits if limit is not dropped]
            saved = self.floor_limit.clearance
            if dropped is self.floor_limit:  # keep the floor itself, drop only the clearance
                self.floor_limit.set_clearance(None)
                limits = self.limits
            try:
                velocity = mink.solve_ik(self.configuration, tasks, dt, self.config.solver,
                                         damping=self.config.damping, limits=limits)
            except mink.NoSolutionFound as exc:
                error = exc
                continue
            finally:
                self.floor_limit.clearance = saved
            if dropped is not None:
                self.relaxed_steps += 1
            return velocity
        raise IKError(f"IK failed: {error}")

    def _acceleration_task(self) -> mink.PostureTask | None:
        """The joint second-difference penalty (``IKConfig.acceleration_cost``), or None."""
        if self.config.acceleration_cost <= 0:
            return None
        cost = np.zeros(self.model.nv)
        cost[self.robot.joint_dof_addresses] = self.config.acceleration_cost
        task = mink.PostureTask(self.model, cost=cost)
        task.set_target(self.default_qpos)
        return task

    def _predict_target(self, task: mink.PostureTask, qpos: np.ndarray, t: int) -> None:
        """Point ``task`` at frame ``t``'s constant-velocity prediction; off before frame 2
        (no velocity to continue yet)."""
        active = t >= 2
        task.cost[self.robot.joint_dof_addresses] = (
            self.config.acceleration_cost if active else 0.0)
        if active:
            task.set_target(self._extrapolated(qpos, t))

    def _extrapolated(self, qpos: np.ndarray, t: int) -> np.ndarray:
        """``qpos[t-1]`` advanced by the motion from ``t-2`` to ``t-1``, joints clipped to
        their range, [nq]."""
        start = qpos[t - 1].copy()
        mujoco.mj_differentiatePos(self.model, self._velocity, 1.0, qpos[t - 2], qpos[t - 1])
        mujoco.mj_integratePos(self.model, start, self._velocity, 1.0)
        joints = start[self._joint_qpos]
        start[self._joint_qpos] = np.clip(joints, self._joint_lower, self._joint_upper)
        return start

    def _warm_start(self, qpos: np.ndarray, t: int) -> np.ndarray:
        """Start of frame ``t``: the previous solution, or (when configured and closer to the
        new targets) the previous solution advanced by the previous frame's motion, [nq].

        The configuration is left updated to the returned pose.
        """
        previous = qpos[t - 1]
        self.configuration.update(previous)
        if not (self.config.extrapolate_warm_start and t >= 2):
            return previous.copy()
        held_error = self._weighted_error()
        start = self.step_limit.clip(self._extrapolated(qpos, t))
        self.configuration.update(start)
        if self._weighted_error() <= held_error:
            return start
        self.configuration.update(previous)
        return previous.copy()
