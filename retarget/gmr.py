"""The GMR-style motion pickle, for users of other tools (an interop boundary: xyzw here).

A pickled dict: ``fps``, ``root_pos`` [T, 3], ``root_rot`` [T, 4] xyzw, ``dof_pos`` [T, n]
(the robot's joint order), ``local_body_pos`` [T, B, 3] (every body's position in the root
body's frame) and ``link_body_list`` (the B body names).
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import mujoco
import numpy as np

from robots import Robot
from robots.io import atomic_path
from robots.motion import RobotMotion
from robots.rotations import quat_rotate_inverse, wxyz_to_xyzw


def gmr_dict(motion: RobotMotion, robot: Robot) -> dict[str, Any]:
    """The pickle's content for ``motion`` (bodies: every body of the robot but the world)."""
    model = robot.model
    data = mujoco.MjData(model)
    body_ids = np.arange(1, model.nbody)
    world = np.empty((motion.num_frames, len(body_ids), 3))
    for t in range(motion.num_frames):
        data.qpos[:] = motion.qpos[t]
        mujoco.mj_kinematics(model, data)
        world[t] = data.xpos[body_ids]
    root_pos = motion.qpos[:, :3]
    root_quat = motion.qpos[:, 3:7]
    local = quat_rotate_inverse(root_quat[:, None, :], world - root_pos[:, None, :])
    fps = float(motion.fps)
    return {
        "fps": int(fps) if fps.is_integer() else fps,
        "root_pos": root_pos.copy(),
        "root_rot": wxyz_to_xyzw(root_quat),
        "dof_pos": motion.qpos[:, 7:].copy(),
        "local_body_pos": local,
        "link_body_list": [model.body(int(i)).name for i in body_ids],
    }


def write_gmr_pickle(path: str | Path, motion: RobotMotion, robot: Robot) -> None:
    """Write the GMR-style pickle of ``motion`` to ``path`` atomically."""
    content = gmr_dict(motion, robot)
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        pickle.dump(content, handle, protocol=4)
