"""Loading AMASS ``.npz`` clips (SMPL-X and SMPL+H variants, DESIGN 4.1) into ``HumanClip``.

Accepted layouts:
- SMPL-X: ``poses`` [T, 165] and ``mocap_frame_rate``;
- SMPL-X with ``root_orient`` [T, 3] and ``pose_body`` [T, 63] instead of, or besides, ``poses``
  (when both are present the explicit arrays win);
- SMPL+H: ``poses`` [T, 156] and ``mocap_framerate``.
In all of them the first 66 pose values are the root and the 21 body joints, which share names,
order and parents with SMPL-X joints 0..21. Hands, jaw and eyes are dropped.

Rejected, with ``AmassFormatError`` naming the file and the problem: shape-only
``*_stagei.npz`` files, a missing or non-positive frame rate, fewer than 2 frames, NaN or inf
values, wrong array shapes, and unreadable or truncated files.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from retarget.human import NUM_BODY_JOINTS, HumanClip
from robots.errors import InputFileError
from robots.io import file_sha256

FRAME_RATE_KEYS: tuple[str, ...] = ("mocap_frame_rate", "mocap_framerate")
POSE_WIDTHS: dict[int, str] = {165: "SMPL-X", 156: "SMPL+H"}
VALID_GENDERS: tuple[str, ...] = ("neutral", "male", "female")
DEFAULT_NUM_BETAS = 16
_BODY_POSE_WIDTH = 3 * (NUM_BODY_JOINTS - 1)  # 63: 21 body joints, axis-angle
_MIN_FRAMES = 2


class AmassFormatError(InputFileError):
    """An AMASS ``.npz`` file that cannot be used as a motion clip."""


def load_amass(path: str | Path) -> HumanClip:
    """Read one AMASS clip into a ``HumanClip`` (fps, trans, root_orient, body_pose, betas, gender).

    Raises ``AmassFormatError`` (an ``InputFileError``) naming ``path`` and the problem.
    """
    path = Path(path)
    if not path.is_file():
        raise AmassFormatError(path, "file does not exist")
    arrays = _read_arrays(path)
    if _is_shape_only(path, arrays):
        raise AmassFormatError(
            path,
            "shape-only file (a *_stagei.npz holds body shape, no motion); "
            "use the matching *_stageii.npz",
        )
    fps = _frame_rate(path, arrays)
    trans = _float_array(path, arrays, "trans")
    root_orient, body_pose = _pose(path, arrays)
    num_frames = root_orient.shape[0]
    if trans.ndim != 2 or trans.shape[1] != 3:
        raise AmassFormatError(path, f"'trans' must have shape [T, 3], got {list(trans.shape)}")
    if trans.shape[0] != num_frames:
        raise AmassFormatError(
            path, f"'trans' has {trans.shape[0]} frames but the poses have {num_frames}"
        )
    if num_frames < _MIN_FRAMES:
        raise AmassFormatError(path, f"needs at least {_MIN_FRAMES} frames, has {num_frames}")
    return HumanClip(
        fps=fps,
        trans=trans,
        root_orient=root_orient,
        body_pose=body_pose.reshape(num_frames, NUM_BODY_JOINTS - 1, 3),
        betas=_betas(path, arrays),
        gender=_gender(path, arrays),
        source=path,
        source_sha256=file_sha256(path),
    )


def _read_arrays(path: Path) -> dict[str, np.ndarray]:
    """Every array of the archive, decompressed now so truncation shows up here."""
    try:
        archive = np.load(path, allow_pickle=False)
    except (zipfile.BadZipFile, EOFError, OSError, ValueError) as error:
        raise AmassFormatError(path, f"unreadable or truncated .npz ({error})") from error
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise AmassFormatError(path, "not an .npz archive (a single .npy array)")
    arrays: dict[str, np.ndarray] = {}
    with archive:
        for key in archive.files:
            try:
                arrays[key] = archive[key]
            except ValueError as error:
                if "allow_pickle" in str(error):
                    continue  # pickled optional metadata: skipped, never unpickled
                raise AmassFormatError(path, f"array {key!r} is unreadable ({error})") from error
            except (zipfile.BadZipFile, EOFError, OSError, KeyError) as error:
                raise AmassFormatError(
                    path, f"unreadable or truncated .npz: array {key!r} ({error})"
                ) from error
    return arrays


def _is_shape_only(path: Path, arrays: dict[str, np.ndarray]) -> bool:
    has_motion = "poses" in arrays or "root_orient" in arrays or "pose_body" in arrays
    return path.name.endswith("_stagei.npz") or not has_motion


def _frame_rate(path: Path, arrays: dict[str, np.ndarray]) -> float:
    for key in FRAME_RATE_KEYS:
        if key in arrays:
            value = arrays[key]
            if value.size != 1 or not np.issubdtype(value.dtype, np.number):
                raise AmassFormatError(path, f"{key!r} must be one number, got {value!r}")
            fps = float(value.reshape(()))
            if not np.isfinite(fps) or fps <= 0.0:
                raise AmassFormatError(path, f"{key!r} must be a positive frame rate, got {fps}")
            return fps
    raise AmassFormatError(path, f"no frame rate (expected one of {', '.join(FRAME_RATE_KEYS)})")


def _float_array(path: Path, arrays: dict[str, np.ndarray], key: str) -> np.ndarray:
    if key not in arrays:
        raise AmassFormatError(path, f"missing array {key!r}")
    value = arrays[key]
    if not np.issubdtype(value.dtype, np.number):
        raise AmassFormatError(path, f"{key!r} must be numeric, got dtype {value.dtype}")
    value = value.astype(np.float64)
    if not np.all(np.isfinite(value)):
        bad = int(np.sum(~np.isfinite(value)))
        raise AmassFormatError(path, f"{key!r} holds {bad} NaN/inf value(s)")
    return value


def _pose(path: Path, arrays: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Root orientation [T, 3] and body pose [T, 63] from whichever arrays the file has."""
    if "root_orient" in arrays or "pose_body" in arrays:
        root_orient = _float_array(path, arrays, "root_orient")
        body_pose = _float_array(path, arrays, "pose_body")
        _expect_width(path, "root_orient", root_orient, 3)
        _expect_width(path, "pose_body", body_pose, _BODY_POSE_WIDTH)
        if root_orient.shape[0] != body_pose.shape[0]:
            raise AmassFormatError(
                path,
                f"'root_orient' has {root_orient.shape[0]} frames, "
                f"'pose_body' has {body_pose.shape[0]}",
            )
        return root_orient, body_pose
    poses = _float_array(path, arrays, "poses")
    if poses.ndim != 2 or poses.shape[1] not in POSE_WIDTHS:
        widths = " or ".join(f"{w} ({name})" for w, name in POSE_WIDTHS.items())
        raise AmassFormatError(
            path, f"'poses' must have shape [T, {widths}], got {list(poses.shape)}"
        )
    return poses[:, 0:3], poses[:, 3 : 3 + _BODY_POSE_WIDTH]


def _expect_width(path: Path, key: str, value: np.ndarray, width: int) -> None:
    if value.ndim != 2 or value.shape[1] != width:
        shape = list(value.shape)
        raise AmassFormatError(path, f"{key!r} must have shape [T, {width}], got {shape}")


def _betas(path: Path, arrays: dict[str, np.ndarray]) -> np.ndarray:
    if "betas" not in arrays:
        return np.zeros(DEFAULT_NUM_BETAS)
    betas = _float_array(path, arrays, "betas")
    if betas.ndim == 2 and betas.shape[0] >= 1:
        betas = betas[0]  # a few exports repeat the shape per frame; it is constant
    if betas.ndim != 1:
        raise AmassFormatError(path, f"'betas' must have shape [B], got {list(betas.shape)}")
    return betas


def _gender(path: Path, arrays: dict[str, np.ndarray]) -> str:
    if "gender" not in arrays:
        return "neutral"
    value = arrays["gender"]
    if value.size != 1:
        raise AmassFormatError(path, f"'gender' must be one string, got shape {list(value.shape)}")
    item = value.reshape(()).item()
    text = item.decode("utf-8", "replace") if isinstance(item, bytes) else str(item)
    gender = text.strip().lower()
    if gender not in VALID_GENDERS:
        raise AmassFormatError(
            path, f"'gender' must be one of {', '.join(VALID_GENDERS)}, got {text!r}"
        )
    return gender
