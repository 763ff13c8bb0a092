"""Body models: pose parameters (``HumanClip``) -> world joint positions and rotations.

Two kinds share one protocol (DESIGN 4.2; the protocol, its error and the forward kinematics
are in ``retarget.body_model_base``):
- ``skeleton`` (default, ``retarget.skeleton``): SMPL-X topology, bone offsets from
  anthropometric segment ratios scaled to a body height; pure numpy; no files.
- ``smplx`` (``retarget.smplx_model``): the real SMPL-X model through the ``smplx`` package,
  from a user-named model directory; imported only when asked for.

This module is the factory that picks one by name.
"""

from __future__ import annotations

from pathlib import Path

from retarget.body_model_base import DEFAULT_HEIGHT_M, BodyModel, BodyModelError
from retarget.skeleton import SkeletonBodyModel

BODY_MODEL_KINDS: tuple[str, ...] = ("skeleton", "smplx")


def make_body_model(
    kind: str, model_dir: str | Path | None = None, *, height_m: float = DEFAULT_HEIGHT_M
) -> BodyModel:
    """Build a body model by name.

    kind: "skeleton" (uses ``height_m``, metres) or "smplx" (needs ``model_dir`` holding
    ``smplx/SMPLX_{NEUTRAL,MALE,FEMALE}.npz``). Unknown kind -> ``BodyModelError``.
    """
    if kind == "skeleton":
        return SkeletonBodyModel(height_m=height_m)
    if kind == "smplx":
        if model_dir is None:
            raise BodyModelError(
                "body model 'smplx' needs a model directory holding smplx/SMPLX_NEUTRAL.npz "
                "(the licensed SMPL-X files); use 'skeleton' when you have none"
            )
        from retarget.smplx_model import SmplxBodyModel

        return SmplxBodyModel(model_dir)
    raise BodyModelError(f"unknown body model {kind!r}; valid kinds: {', '.join(BODY_MODEL_KINDS)}")
