"""Offscreen rendering of robot motions, shared by reference videos and policy videos.

The GL backend is chosen by ``MUJOCO_GL`` before mujoco is imported; entry points call
:func:`pipeline.gl.select_gl_backend` first. This module only turns configurations into pixels.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import mujoco
import numpy as np

from robots import Robot

HUMAN_POINT_RGBA = (0.9, 0.2, 0.2, 0.55)
HUMAN_BONE_RGBA = (0.95, 0.45, 0.3, 0.45)


@dataclass(frozen=True)
class RenderConfig:
    """Camera and output settings.

    Attributes:
        width, height: Frame size [px].
        fps: Output frame rate [Hz]; the motion is sampled at this rate.
        distance_m: Tracking camera distance from the pelvis [m].
        azimuth_deg: Camera azimuth; 90 looks at the robot's left side when it faces +x.
        elevation_deg: Camera elevation (negative looks down).
        point_radius_m: Radius of the drawn human keypoints [m].
        bone_radius_m: Radius of the drawn human bones [m].
    """

    width: int = 640
    height: int = 480
    fps: float = 25.0
    distance_m: float = 1.4
    azimuth_deg: float = 120.0
    elevation_deg: float = -15.0
    point_radius_m: float = 0.012
    bone_radius_m: float = 0.005


class MotionRenderer:
    """Renders robot configurations with a tracking camera and an optional keypoint overlay."""

    def __init__(self, robot: Robot, config: RenderConfig = RenderConfig()) -> None:
        self.robot = robot
        self.config = config
        self.data = mujoco.MjData(robot.model)
        self._renderer = mujoco.Renderer(robot.model, config.height, config.width)
        self._camera = mujoco.MjvCamera()
        self._camera.type = mujoco.mjtCamera.mjCAMERA_FREE
        self._camera.distance = config.distance_m
        self._camera.azimuth = config.azimuth_deg
        self._camera.elevation = config.elevation_deg

    def close(self) -> None:
        self._renderer.close()

    def __enter__(self) -> MotionRenderer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def render(
        self,
        qpos: np.ndarray,
        points: np.ndarray | None = None,
        bones: Sequence[tuple[int, int]] = (),
    ) -> np.ndarray:
        """One frame.

        Args:
            qpos: [nq] robot configuration.
            points: [J, 3] world positions to draw over the robot (e.g. the scaled human).
            bones: Index pairs into ``points`` drawn as thin capsules.
        Returns:
            [height, width, 3] uint8 RGB.
        """
        self.data.qpos[:] = qpos
        mujoco.mj_kinematics(self.robot.model, self.data)
        self._camera.lookat[:] = self.data.xpos[self.robot.root_body_id]
        self._renderer.update_scene(self.data, camera=self._camera)
        if points is not None:
            self._add_overlay(points, bones)
        return self._renderer.render()

    def render_motion(
        self,
        qpos: np.ndarray,
        fps: float,
        points: np.ndarray | None = None,
        bones: Sequence[tuple[int, int]] = (),
    ) -> Iterator[np.ndarray]:
        """Frames of a whole clip at ``config.fps`` (nearest source frame per output frame).

        Args:
            qpos: [T, nq] at ``fps`` Hz.
            points: [T, J, 3] overlay points, or None.
        """
        for index in frame_indices(len(qpos), fps, self.config.fps):
            yield self.render(qpos[index], None if points is None else points[index], bones)

    def _add_overlay(self, points: np.ndarray, bones: Sequence[tuple[int, int]]) -> None:
        scene = self._renderer.scene
        identity = np.eye(3).ravel()
        radius = self.config.point_radius_m
        for point in points:
            if scene.ngeom >= scene.maxgeom:
                return
            mujoco.mjv_initGeom(scene.geoms[scene.ngeom], mujoco.mjtGeom.mjGEOM_SPHERE,
                                np.array([radius, 0, 0]), point, identity,
                                np.array(HUMAN_POINT_RGBA, np.float32))
            scene.ngeom += 1
        for parent, child in bones:
            if scene.ngeom >= scene.maxgeom:
                return
            geom = scene.geoms[scene.ngeom]
            mujoco.mjv_initGeom(geom, mujoco.mjtGeom.mjGEOM_CAPSULE, np.zeros(3), np.zeros(3),
                                identity, np.array(HUMAN_BONE_RGBA, np.float32))
            mujoco.mjv_connector(geom, mujoco.mjtGeom.mjGEOM_CAPSULE, self.config.bone_radius_m,
                                 points[parent].astype(np.float64),
                                 points[child].astype(np.float64))
            scene.ngeom += 1


def frame_indices(num_frames: int, source_fps: float, output_fps: float) -> np.ndarray:
    """Source frame index for each output frame when resampling ``source_fps`` → ``output_fps``."""
    duration_s = (num_frames - 1) / source_fps
    times = np.arange(0.0, duration_s + 1e-9, 1.0 / output_fps)
    return np.minimum(np.rint(times * source_fps).astype(int), num_frames - 1)
