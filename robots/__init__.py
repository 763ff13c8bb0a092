"""Robots: MJCF models, per-robot specs, and the robot-motion file format.

A robot is one folder under ``robots/`` holding an ``__init__.py`` that exports ``SPEC`` (a
:class:`robots.spec.RobotSpec`) and the MJCF files it names. ``load(name)`` finds it; adding a
robot needs no edit anywhere else.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import mujoco
import numpy as np

from robots.errors import AmpkitError, MotionFileError, UnknownRobotError
from robots.spec import CONTACT_POINT_NAMES, JointLimit, RobotSpec

__all__ = [
    "CONTACT_POINT_NAMES",
    "AmpkitError",
    "JointLimit",
    "MotionFileError",
    "Robot",
    "RobotSpec",
    "UnknownRobotError",
    "known_robots",
    "load",
    "load_spec",
]

_ROBOTS_DIR = Path(__file__).resolve().parent
T = TypeVar("T")


@dataclass
class Robot:
    """A loaded robot: where its model lives, its spec, and a freshly compiled MuJoCo model.

    Attributes:
        name: Registry name.
        model_path: The MJCF scene (robot + floor).
        spec: Static constants.
        model: A new ``mujoco.MjModel`` owned by this object (safe to modify, before anything
            is :meth:`derived` from it).
    """

    name: str
    model_path: Path
    spec: RobotSpec
    model: mujoco.MjModel
    _derived: dict[str, Any] = field(default_factory=dict, init=False, repr=False,
                                     compare=False)

    def derived(self, name: str, build: Callable[[], T]) -> T:
        """``build()`` the first time ``name`` is asked for, then the same object: what other
        packages precompute from this robot's model (batched kinematics, the feasibility
        model) lives with the robot, so it is built once per robot and goes with it."""
        if name not in self._derived:
            self._derived[name] = build()
        return self._derived[name]

    @property
    def joint_qpos_addresses(self) -> np.ndarray:
        """qpos address of each spec joint, [num_joints]."""
        return np.array([self.model.joint(j).qposadr[0] for j in self.spec.joint_names])

    @property
    def joint_dof_addresses(self) -> np.ndarray:
        """qvel address of each spec joint, [num_joints]."""
        return np.array([self.model.joint(j).dofadr[0] for j in self.spec.joint_names])

    @property
    def contact_site_ids(self) -> np.ndarray:
        """Site ids of the contact points in ``CONTACT_POINT_NAMES`` order, [4]."""
        return np.array([self.model.site(s).id for s in self.spec.contact_site_names])

    @property
    def root_body_id(self) -> int:
        return self.model.body(self.spec.root_body).id

    def keyframe_qpos(self) -> np.ndarray:
        """qpos of the standing keyframe, [nq]."""
        return self.model.keyframe(self.spec.keyframe).qpos.copy()

    def keyframe_ctrl(self) -> np.ndarray:
        """Actuator targets of the standing keyframe, [nu]."""
        return self.model.keyframe(self.spec.keyframe).ctrl.copy()


def known_robots() -> list[str]:
    """Names of the robot folders (each a package with a ``SPEC``), sorted."""
    return sorted(
        p.name for p in _ROBOTS_DIR.iterdir()
        if p.is_dir() and (p / "__init__.py").exists() and not p.name.startswith("_")
    )


def load_spec(name: str) -> RobotSpec:
    """The :class:`RobotSpec` of robot ``name``; raises :class:`UnknownRobotError`."""
    known = known_robots()
    if name not in known:
        raise UnknownRobotError(name, known)
    return importlib.import_module(f"robots.{name}").SPEC


def load(name: str) -> Robot:
    """Load robot ``name`` with a fresh compiled model; raises :class:`UnknownRobotError`."""
    spec = load_spec(name)
    model_path = _ROBOTS_DIR / name / spec.scene_xml
    model = mujoco.MjModel.from_xml_path(str(model_path))
    _check_model_matches_spec(model, spec, model_path)
    return Robot(name=name, model_path=model_path, spec=spec, model=model)


def _check_model_matches_spec(model: mujoco.MjModel, spec: RobotSpec, path: Path) -> None:
    hinge_names = [model.joint(i).name for i in range(model.njnt)
                   if model.jnt_type[i] == mujoco.mjtJoint.mjJNT_HINGE]
    if tuple(hinge_names) != spec.joint_names:
        raise AmpkitError(f"{path}: joints {hinge_names} differ from the spec {spec.joint_names}")
    if model.nq != spec.nq:
        raise AmpkitError(f"{path}: nq={model.nq}, spec expects {spec.nq}")
