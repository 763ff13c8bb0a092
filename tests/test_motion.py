"""The robot-motion HDF5 format (DESIGN 4.3): exact round trip and clear rejections."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest

import robots
from robots.io import _umask
from robots.motion import RobotMotion, read_motion, write_motion


def _motion(num_frames: int = 40) -> RobotMotion:
    spec = robots.load_spec("wildrobot")
    rng = np.random.default_rng(3)
    qpos = np.tile(spec.default_qpos(), (num_frames, 1))
    qpos[:, 0] = np.linspace(0.0, 1.0, num_frames)
    qpos[:, 7:] += 0.1 * rng.standard_normal((num_frames, spec.num_joints))
    return RobotMotion(
        qpos=qpos,
        human_joints=rng.standard_normal((num_frames, 26, 3)),
        fps=60.0,
        robot="wildrobot",
        joint_names=spec.joint_names,
        source="data/raw/walk.npz",
        source_sha256="ab" * 32,
        body_model="skeleton",
        retarget_params={"max_iterations": 4, "weights": {"pelvis": 1.0}},
        quality={"mean_keypoint_error_m": 0.012},
        human_joint_names=tuple(f"point_{i}" for i in range(26)),
    )


def test_round_trip_is_exact(tmp_path: Path) -> None:
    original = _motion()
    path = tmp_path / "clip.h5"
    write_motion(path, original)
    loaded = read_motion(path)
    np.testing.assert_array_equal(loaded.qpos, original.qpos)
    np.testing.assert_array_equal(loaded.human_joints, original.human_joints)
    for name in ("fps", "robot", "joint_names", "source", "source_sha256", "body_model",
                 "retarget_params", "quality", "human_joint_names"):
        assert getattr(loaded, name) == getattr(original, name), name
    assert loaded.duration_s == pytest.approx(39 / 60)
    assert [p.name for p in tmp_path.iterdir()] == ["clip.h5"], "temporary file left behind"
    assert (path.stat().st_mode & 0o777) == 0o666 & ~_umask(), "atomic write changed the file mode"


def test_failed_write_leaves_no_file(tmp_path: Path) -> None:
    bad = _motion()
    bad.qpos = bad.qpos[:, :10]
    with pytest.raises(robots.MotionFileError, match="qpos has shape"):
        write_motion(tmp_path / "clip.h5", bad)
    assert list(tmp_path.iterdir()) == []


def _corrupt(path: Path, edit) -> None:
    with h5py.File(path, "a") as f:
        edit(f)


def _replace(name: str, value: np.ndarray):
    def edit(f: h5py.File) -> None:
        del f[name]
        f[name] = value
    return edit


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (_replace("qpos", np.zeros((40, 12))), "qpos has shape"),
        (_replace("human_joints", np.zeros((39, 26, 3))), "human_joints has shape"),
        (lambda f: f.__delitem__("human_joints"), "missing dataset 'human_joints'"),
        (lambda f: f.attrs.__delitem__("fps"), "missing attributes \\['fps'\\]"),
        (lambda f: f["qpos"].__setitem__((5, 9), np.nan), "non-finite value at index \\(5, 9\\)"),
        (lambda f: f["qpos"].__setitem__((2, 3), 3.0), "quaternion at frame 2"),
    ],
)
def test_bad_file_is_rejected_naming_file_and_problem(tmp_path: Path, edit, message: str) -> None:
    path = tmp_path / "broken.h5"
    write_motion(path, _motion())
    _corrupt(path, edit)
    with pytest.raises(robots.MotionFileError, match=message) as info:
        read_motion(path)
    assert str(path) in str(info.value)


def test_non_hdf5_file_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "truncated.h5"
    path.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\x00" * 10)
    with pytest.raises(robots.MotionFileError, match="cannot open as HDF5"):
        read_motion(path)


def test_same_motion_gives_same_bytes(tmp_path: Path) -> None:
    import time

    write_motion(tmp_path / "a.h5", _motion())
    time.sleep(1.1)  # HDF5 timestamps have one-second resolution; there must be none
    write_motion(tmp_path / "b.h5", _motion())
    assert (tmp_path / "a.h5").read_bytes() == (tmp_path / "b.h5").read_bytes()
