"""A synthetic, license-free model file in the SMPL-X ``.npz`` layout, for tests and benchmarks.

It is not a human body: it has the real model's array names, shapes and joint tree, joints on
the anthropometric skeleton, vertices scattered around the joints, and the heel/toe vertex ids
of ``SMPLX_FOOT_VERTEX_IDS`` placed on the soles. Shape and pose blend shapes are non-zero
(random, seeded), so a comparison against the ``smplx`` package exercises every term of its
linear blend skinning. Pose blend shapes are non-zero only on a few hundred vertices (the foot
vertices among them) so the file compresses to a few MB.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from retarget.human import FOOT_POINTS, SMPLX_BODY_JOINTS, SMPLX_PARENTS
from retarget.skeleton import SkeletonBodyModel
from retarget.smplx_model import NUM_SMPLX_JOINTS, SMPLX_FOOT_VERTEX_IDS
from robots.io import atomic_path

NUM_SMPLX_VERTICES = 10475
NUM_SHAPE_COLUMNS = 20  # 10 shape + 10 expression: the smallest layout smplx accepts
NUM_POSE_FEATURES = 9 * (NUM_SMPLX_JOINTS - 1)  # 486
# Where the real SMPL-X template puts the pelvis relative to its origin (m, canonical frame),
# approximately; non-zero so tests see that the root rotates about its rest position.
PELVIS_REST_OFFSET_M = (0.003, -0.35, 0.012)
HAND_PARENTS: tuple[int, ...] = (
    20, 25, 26, 20, 28, 29, 20, 31, 32, 20, 34, 35, 20, 37, 38,  # left fingers
    21, 40, 41, 21, 43, 44, 21, 46, 47, 21, 49, 50, 21, 52, 53,  # right fingers
)
SMPLX_ALL_PARENTS: tuple[int, ...] = SMPLX_PARENTS + (15, 15, 15) + HAND_PARENTS
_REGRESSOR_VERTICES_PER_JOINT = 8


def synthetic_rest_joints(height_m: float = 1.75) -> np.ndarray:
    """Rest joint positions [55, 3] (canonical frame): skeleton body, then jaw, eyes, fingers."""
    skeleton = SkeletonBodyModel(height_m=height_m)
    joints = np.zeros((NUM_SMPLX_JOINTS, 3))
    joints[:22] = skeleton.rest_joints
    head = joints[SMPLX_BODY_JOINTS.index("head")]
    joints[22] = head + [0.0, -0.04, 0.05]  # jaw
    joints[23] = head + [0.03, 0.05, 0.08]  # left eye
    joints[24] = head + [-0.03, 0.05, 0.08]  # right eye
    for side, wrist_index, first in ((1.0, 20, 25), (-1.0, 21, 40)):
        wrist = joints[wrist_index]
        for finger in range(5):
            spread_z = 0.02 * (finger - 2)
            for segment in range(3):
                joints[first + 3 * finger + segment] = wrist + [
                    side * (0.08 + 0.025 * segment),
                    0.0,
                    spread_z,
                ]
    return joints + np.array(PELVIS_REST_OFFSET_M)


def build_synthetic_smplx(seed: int = 0, height_m: float = 1.75) -> dict[str, np.ndarray]:
    """The arrays of a synthetic SMPLX_<GENDER>.npz (float32 / int64, real names and shapes)."""
    rng = np.random.default_rng(seed)
    joints = synthetic_rest_joints(height_m)
    num_vertices = NUM_SMPLX_VERTICES

    owner = rng.integers(0, NUM_SMPLX_JOINTS, size=num_vertices)
    v_template = joints[owner] + rng.normal(0.0, 0.04, size=(num_vertices, 3))
    weights = _skinning_weights(rng, owner)
    regressor = np.zeros((NUM_SMPLX_JOINTS, num_vertices))
    foot_ids = set(SMPLX_FOOT_VERTEX_IDS.values())
    free = np.array([v for v in range(num_vertices) if v not in foot_ids])
    chosen = rng.choice(free, size=(NUM_SMPLX_JOINTS, _REGRESSOR_VERTICES_PER_JOINT), replace=False)
    for joint in range(NUM_SMPLX_JOINTS):
        # symmetric pairs around the joint: the regressed rest joint is exactly joints[joint]
        half = rng.normal(0.0, 0.03, size=(_REGRESSOR_VERTICES_PER_JOINT // 2, 3))
        v_template[chosen[joint]] = joints[joint] + np.concatenate([half, -half])
        regressor[joint, chosen[joint]] = 1.0 / _REGRESSOR_VERTICES_PER_JOINT

    _place_foot_vertices(v_template, weights, height_m)

    shapedirs = rng.normal(0.0, 0.01, size=(num_vertices, 3, NUM_SHAPE_COLUMNS))
    posedirs = np.zeros((num_vertices, 3, NUM_POSE_FEATURES))
    posed_rows = np.unique(
        np.concatenate([list(foot_ids), rng.choice(num_vertices, 300, replace=False)])
    )
    posedirs[posed_rows] = rng.normal(0.0, 0.005, size=(len(posed_rows), 3, NUM_POSE_FEATURES))

    num_faces = 200
    faces = rng.integers(0, num_vertices, size=(num_faces, 3))
    kintree = np.stack([np.array(SMPLX_ALL_PARENTS), np.arange(NUM_SMPLX_JOINTS)])
    bary = rng.dirichlet(np.ones(3), size=51)
    return {
        "v_template": v_template.astype(np.float32),
        "f": faces.astype(np.int64),
        "shapedirs": shapedirs.astype(np.float32),
        "posedirs": posedirs.astype(np.float32),
        "J_regressor": regressor.astype(np.float32),
        "weights": weights.astype(np.float32),
        "kintree_table": kintree.astype(np.int64),
        "hands_componentsl": np.eye(45, dtype=np.float32),
        "hands_componentsr": np.eye(45, dtype=np.float32),
        "hands_meanl": np.zeros(45, dtype=np.float32),
        "hands_meanr": np.zeros(45, dtype=np.float32),
        "lmk_faces_idx": rng.integers(0, num_faces, size=51).astype(np.int64),
        "lmk_bary_coords": bary.astype(np.float32),
    }


def write_synthetic_smplx(
    model_dir: str | Path, genders: tuple[str, ...] = ("neutral",), seed: int = 0
) -> Path:
    """Write ``<model_dir>/smplx/SMPLX_<GENDER>.npz`` for each gender; returns ``model_dir``.

    Each gender gets a different seed, so gendered models differ.
    """
    model_dir = Path(model_dir)
    for offset, gender in enumerate(genders):
        arrays = build_synthetic_smplx(seed=seed + offset)
        path = model_dir / "smplx" / f"SMPLX_{gender.upper()}.npz"
        with atomic_path(path) as tmp, open(tmp, "wb") as handle:
            np.savez_compressed(handle, **arrays)
    return model_dir


def _skinning_weights(rng: np.random.Generator, owner: np.ndarray) -> np.ndarray:
    """[V, 55] rows summing to 1: the owning joint, its parent and a random third joint."""
    num_vertices = owner.shape[0]
    parents = np.array(SMPLX_ALL_PARENTS)
    weights = np.zeros((num_vertices, NUM_SMPLX_JOINTS))
    share = rng.dirichlet([4.0, 2.0, 1.0], size=num_vertices)
    rows = np.arange(num_vertices)
    weights[rows, owner] += share[:, 0]
    weights[rows, np.maximum(parents[owner], 0)] += share[:, 1]
    weights[rows, rng.integers(0, NUM_SMPLX_JOINTS, size=num_vertices)] += share[:, 2]
    return weights


def _place_foot_vertices(v_template: np.ndarray, weights: np.ndarray, height_m: float) -> None:
    """Put the heel/toe vertex ids on the skeleton's sole points, skinned to the foot joints."""
    skeleton = SkeletonBodyModel(height_m=height_m)
    offset = np.array(PELVIS_REST_OFFSET_M)
    parent_blend = {"heel": ("ankle", "knee", 0.8), "toe": ("foot", "ankle", 0.7)}
    for index, name in enumerate(FOOT_POINTS):
        side, part = name.split("_")
        vertex = SMPLX_FOOT_VERTEX_IDS[name]
        anchor = skeleton.rest_joints[skeleton.foot_point_parents[index]]
        v_template[vertex] = anchor + skeleton.foot_point_offsets[index] + offset
        main, secondary, main_share = parent_blend[part]
        weights[vertex] = 0.0
        weights[vertex, SMPLX_BODY_JOINTS.index(f"{side}_{main}")] = main_share
        weights[vertex, SMPLX_BODY_JOINTS.index(f"{side}_{secondary}")] = 1.0 - main_share
