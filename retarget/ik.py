"""Per-frame inverse kinematics with mink: frame tasks, posture, joint, speed and floor limits.

One :class:`RobotIK` solves a whole clip frame by frame. The first frame is solved to
convergence from the robot's default pose (placed at the root target), so the result never
depends on where a previous clip ended; every later frame is warm-started from the previous
solution (extrapolated by the last frame's motion) and iterated until the weighted task error
stops improving, with a cap on iterations.
"""

from __future__ import annotations

from dataclasses import dataclass

import mink
import mujoco
import numpy as np

from robots import Robot
from robots.errors import AmpkitError

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
        joint_speed_limit_rad_s: VelocityLimit on every hinge joint [rad/s]; mink applies it
            per iteration with dt = the frame period.
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
    """

    solver: str = "daqp"
    damping: float = 1e-3
    joint_speed_limit_rad_s: float = 20.0
    max_iterations: int = 4
    min_relative_improvement: float = 0.5
    error_tolerance: float = 0.02
    first_frame_max_iterations: int = 200
    first_frame_min_relative_improvement: float = 1e-4
    extrapolate_warm_start: bool = True
    floor_height_m: float = 0.0


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
    """IK output of a clip: ``qpos`` [T, nq] and ``iterations`` [T] solve_ik calls per frame."""

    qpos: np.ndarray
    iterations: np.ndarray


class FloorLimit(mink.Limit):
    """Keeps sites (the foot contact points) at or above the floor: z + J_z dq >= floor."""

    def __init__(self, model: mujoco.MjModel, site_names: tuple[str, ...],
                 floor_height_m: float = 0.0, gain: float = 1.0) -> None:
        self.model = model
        self.site_ids = np.array([model.site(name).id for name in site_names])
        self.floor_height_m = floor_height_m
        self.gain = gain
        self._jacp = np.zeros((len(site_names), 3, model.nv))
        self._G = np.zeros((len(site_names), model.nv))

    def compute_qp_inequalities(self, configuration: mink.Configuration,
                                dt: float) -> mink.Constraint:
        del dt  # a position constraint: independent of the step duration
        data = configuration.data
        for row, site_id in enumerate(self.site_ids):
            mujoco.mj_jacSite(self.model, data, self._jacp[row], None, site_id)
        np.negative(self._jacp[:, 2, :], out=self._G)
        heights = data.site_xpos[self.site_ids, 2] - self.floor_height_m
        return mink.Constraint(G=self._G.copy(), h=self.gain * heights)


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
        joint_names = robot.spec.joint_names
        self.limits: list[mink.Limit] = [
            mink.ConfigurationLimit(self.model),
            ConstantVelocityLimit(self.model, {j: config.joint_speed_limit_rad_s
                                               for j in joint_names}),
            FloorLimit(self.model, robot.spec.contact_site_names, config.floor_height_m),
        ]
        self._joint_qpos = robot.joint_qpos_addresses
        ranges = robot.spec.joint_range_array()
        self._joint_lower, self._joint_upper = ranges[:, 0], ranges[:, 1]
        self._velocity = np.zeros(self.model.nv)
        self._frame_ids: dict[tuple[str, str], int] = {}

    # --- public API ------------------------------------------------------------------------

    def solve_clip(self, tracks: list[TrackTargets], fps: float) -> IKResult:
        """Solve every frame of a clip.

        Args:
            tracks: Target trajectories, all with the same number of frames T >= 1; the
                first is the root task (its target places the first frame's start pose).
            fps: Frame rate [Hz]; the frame period is the IK step (velocity limits).

        Returns:
            IKResult with qpos [T, nq] and iterations [T].

        Raises:
            IKError: the QP solver failed.
        """
        num_frames = tracks[0].num_frames
        dt = 1.0 / fps
        tasks = [self._make_task(track) for track in tracks]
        qpos = np.zeros((num_frames, self.model.nq))
        iterations = np.zeros(num_frames, dtype=np.int32)
        for t in range(num_frames):
            self._set_targets(tasks, tracks, t)
            if t == 0:
                self.configuration.update(self.start_pose(tracks[0].wxyz_xyz[0]))
                iterations[t] = self._iterate(
                    tasks, dt, self.config.first_frame_max_iterations,
                    self.config.first_frame_min_relative_improvement, tolerance=0.0,
                    full_error=True)
            else:
                self._warm_start(qpos, t)
                iterations[t] = self._iterate(
                    tasks, dt, self.config.max_iterations,
                    self.config.min_relative_improvement, self.config.error_tolerance)
            qpos[t] = self.configuration.data.qpos
        return IKResult(qpos=qpos, iterations=iterations)

    def solve_pose(self, tracks: list[TrackTargets], fps: float, frame: int = 0,
                   max_iterations: int | None = None) -> np.ndarray:
        """Solve one frame to convergence from the default pose; returns qpos [nq]."""
        tasks = [self._make_task(track) for track in tracks]
        self._set_targets(tasks, tracks, frame)
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
            try:
                velocity = mink.solve_ik(self.configuration, all_tasks, dt, self.config.solver,
                                         damping=self.config.damping, limits=self.limits)
            except mink.NoSolutionFound as exc:
                raise IKError(f"IK failed: {exc}") from exc
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
        start = previous.copy()
        mujoco.mj_differentiatePos(self.model, self._velocity, 1.0, qpos[t - 2], previous)
        mujoco.mj_integratePos(self.model, start, self._velocity, 1.0)
        joints = start[self._joint_qpos]
        start[self._joint_qpos] = np.clip(joints, self._joint_lower, self._joint_upper)
        self.configuration.update(start)
        if self._weighted_error() <= held_error:
            return start
        self.configuration.update(previous)
        return previous.copy()
