"""AMASS loader: accepted SMPL-X / SMPL+H variants and specific rejections (DESIGN 4.1)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from retarget.amass import AmassFormatError, load_amass
from robots.errors import InputFileError

FRAMES = 7


def _poses(width: int, frames: int = FRAMES, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(0.0, 0.3, size=(frames, width))


def _trans(frames: int = FRAMES) -> np.ndarray:
    return np.column_stack([np.linspace(0, 1, frames), np.zeros(frames), np.full(frames, 0.9)])


def _write(path: Path, **arrays: object) -> Path:
    np.savez(path, **arrays)
    return path


def _smplx_arrays(frames: int = FRAMES) -> dict[str, object]:
    return {
        "poses": _poses(165, frames),
        "trans": _trans(frames),
        "betas": np.arange(16) / 10.0,
        "gender": np.array("female"),
        "mocap_frame_rate": np.array(120.0),
    }


def test_smplx_poses_variant(tmp_path: Path) -> None:
    arrays = _smplx_arrays()
    path = _write(tmp_path / "walk_stageii.npz", **arrays)
    clip = load_amass(path)
    poses = arrays["poses"]
    assert clip.fps == 120.0
    assert clip.num_frames == FRAMES
    assert clip.trans.shape == (FRAMES, 3)
    assert clip.root_orient.shape == (FRAMES, 3)
    assert clip.body_pose.shape == (FRAMES, 21, 3)
    np.testing.assert_array_equal(clip.root_orient, poses[:, :3])
    # body joint 1 (left_hip) is poses[3:6], joint 21 (right_wrist) is poses[63:66]
    np.testing.assert_array_equal(clip.body_pose[:, 0], poses[:, 3:6])
    np.testing.assert_array_equal(clip.body_pose[:, 20], poses[:, 63:66])
    np.testing.assert_array_equal(clip.betas, np.arange(16) / 10.0)
    assert clip.gender == "female"
    assert clip.source == path
    assert clip.source_sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert clip.duration_s == pytest.approx((FRAMES - 1) / 120.0)


def test_root_orient_pose_body_variant_without_poses(tmp_path: Path) -> None:
    root, body = _poses(3, seed=1), _poses(63, seed=2)
    path = _write(tmp_path / "a.npz", root_orient=root, pose_body=body, trans=_trans(),
                  mocap_frame_rate=np.array(60.0))
    clip = load_amass(path)
    assert clip.fps == 60.0
    np.testing.assert_array_equal(clip.root_orient, root)
    np.testing.assert_array_equal(clip.body_pose.reshape(FRAMES, 63), body)
    assert clip.gender == "neutral"  # absent gender -> neutral
    assert clip.betas.shape == (16,)


def test_explicit_arrays_win_over_poses(tmp_path: Path) -> None:
    arrays = _smplx_arrays()
    root, body = _poses(3, seed=5), _poses(63, seed=6)
    path = _write(tmp_path / "b.npz", root_orient=root, pose_body=body, **arrays)
    clip = load_amass(path)
    np.testing.assert_array_equal(clip.root_orient, root)
    np.testing.assert_array_equal(clip.body_pose.reshape(FRAMES, 63), body)


def test_smplh_variant(tmp_path: Path) -> None:
    poses = _poses(156)
    path = _write(tmp_path / "smplh_poses.npz", poses=poses, trans=_trans(),
                  betas=np.zeros(16), gender=np.array(b"male"), mocap_framerate=np.array(100.0))
    clip = load_amass(path)
    assert clip.fps == 100.0
    assert clip.gender == "male"  # bytes gender decoded
    assert clip.body_pose.shape == (FRAMES, 21, 3)
    np.testing.assert_array_equal(clip.body_pose.reshape(FRAMES, 63), poses[:, 3:66])


def test_per_frame_betas_take_the_first_row(tmp_path: Path) -> None:
    arrays = _smplx_arrays()
    arrays["betas"] = np.tile(np.arange(10.0), (FRAMES, 1))
    clip = load_amass(_write(tmp_path / "c.npz", **arrays))
    np.testing.assert_array_equal(clip.betas, np.arange(10.0))


def _without(key: str) -> dict[str, object]:
    arrays = _smplx_arrays()
    del arrays[key]
    return arrays


def _with(**changes: object) -> dict[str, object]:
    arrays = _smplx_arrays()
    arrays.update(changes)
    return arrays


def _nan_poses() -> np.ndarray:
    poses = _poses(165)
    poses[3, 10] = np.nan
    return poses


def _inf_trans() -> np.ndarray:
    trans = _trans()
    trans[1, 2] = np.inf
    return trans


REJECTED_ARRAYS = {
    "stagei_by_name": ("subject_stagei.npz", _smplx_arrays(), "shape-only"),
    "shape_only": ("shape.npz", {"betas": np.zeros(16), "gender": np.array("male")},
                   "shape-only"),
    "missing_frame_rate": ("d.npz", _without("mocap_frame_rate"), "no frame rate"),
    "zero_frame_rate": ("e.npz", _with(mocap_frame_rate=np.array(0.0)), "positive frame rate"),
    "one_frame": ("f.npz", _with(poses=_poses(165, 1), trans=_trans(1)), "at least 2 frames"),
    "nan_poses": ("g.npz", _with(poses=_nan_poses()), "NaN/inf"),
    "inf_trans": ("h.npz", _with(trans=_inf_trans()), "NaN/inf"),
    "wrong_pose_width": ("i.npz", _with(poses=_poses(100)), "'poses' must have shape"),
    "poses_1d": ("j.npz", _with(poses=np.zeros(165)), "'poses' must have shape"),
    "wrong_trans_shape": ("k.npz", _with(trans=np.zeros((FRAMES, 2))), "'trans' must have"),
    "frame_mismatch": ("l.npz", _with(trans=_trans(FRAMES + 1)), "frames"),
    "missing_trans": ("m.npz", _without("trans"), "missing array 'trans'"),
    "wrong_pose_body": ("n.npz", _with(root_orient=_poses(3), pose_body=_poses(60)),
                        "'pose_body' must have shape"),
    "bad_gender": ("o.npz", _with(gender=np.array("robot")), "'gender' must be one of"),
    "text_poses": ("p.npz", _with(poses=np.array(["a", "b"])), "numeric"),
}


@pytest.mark.parametrize("case", sorted(REJECTED_ARRAYS))
def test_rejects_bad_arrays(tmp_path: Path, case: str) -> None:
    name, arrays, reason = REJECTED_ARRAYS[case]
    path = _write(tmp_path / name, **arrays)
    with pytest.raises(AmassFormatError) as caught:
        load_amass(path)
    error = caught.value
    assert isinstance(error, InputFileError)
    assert error.path == path
    assert reason in error.problem
    assert str(path) in str(error)


def test_rejects_truncated_file(tmp_path: Path) -> None:
    path = _write(tmp_path / "whole.npz", **_smplx_arrays(200))
    data = path.read_bytes()
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(AmassFormatError, match="unreadable or truncated") as caught:
        load_amass(truncated)
    assert caught.value.path == truncated


def test_rejects_corrupted_member(tmp_path: Path) -> None:
    path = _write(tmp_path / "whole.npz", **_smplx_arrays(200))
    data = bytearray(path.read_bytes())
    data[len(data) // 3] ^= 0xFF  # flips bytes inside a stored array: CRC mismatch
    corrupted = tmp_path / "corrupted.npz"
    corrupted.write_bytes(bytes(data))
    with pytest.raises(AmassFormatError, match="unreadable"):
        load_amass(corrupted)


@pytest.mark.parametrize(
    ("content", "reason"),
    [(b"not a zip at all", "unreadable"), (None, "not an .npz"), (b"", "unreadable")],
)
def test_rejects_unreadable_files(tmp_path: Path, content: bytes | None, reason: str) -> None:
    path = tmp_path / "clip.npz"
    if content is None:
        with open(path, "wb") as handle:
            np.save(handle, np.zeros(3))  # a bare .npy under an .npz name
    else:
        path.write_bytes(content)
    with pytest.raises(AmassFormatError, match=reason):
        load_amass(path)


def test_rejects_missing_file(tmp_path: Path) -> None:
    with pytest.raises(AmassFormatError, match="does not exist"):
        load_amass(tmp_path / "nowhere.npz")
