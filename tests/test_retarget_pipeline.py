"""`python -m pipeline.retarget` end to end on synthesized clips: outputs, rejects, skips, bars."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest

from pipeline.retarget import main
from retarget.synthesize import ClipSpec, synthesize_clip, write_npz_deterministic
from robots.motion import read_motion


def _write_clip(path: Path, spec: ClipSpec, index: int) -> None:
    write_npz_deterministic(path, synthesize_clip(spec, (7, index)).arrays)


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    """Two good walking clips (one in a sub-folder) and one corrupt file."""
    root = tmp_path_factory.mktemp("amass")
    _write_clip(root / "walk_a.npz", ClipSpec("walk_a", "walk", 100.0, 4.0, 1.0), 0)
    (root / "sub").mkdir()
    _write_clip(root / "sub" / "walk_b.npz", ClipSpec("walk_b", "walk", 60.0, 3.0, 1.2), 1)
    good = (root / "walk_a.npz").read_bytes()
    (root / "bad.npz").write_bytes(good[: len(good) // 3])  # truncated
    return root


def _run(source: Path, out: Path, *extra: str, params: Path | None = None) -> tuple[int, dict]:
    metrics = out / "metrics.json"
    params = out / "no-params.yaml" if params is None else params
    code = main(["--src", str(source), "--out", str(out), "--metrics", str(metrics),
                 "--params", str(params), "--no-progress", *extra])
    return code, json.loads(metrics.read_text()) if metrics.exists() else {}


@pytest.fixture(scope="module")
def first_run(source, tmp_path_factory) -> tuple[Path, int, dict]:
    out = tmp_path_factory.mktemp("out1")
    code, metrics = _run(source, out, "--jobs", "1", "--format", "gmr")
    return out, code, metrics


def test_good_clips_come_out_and_the_corrupt_one_is_reported(source, first_run):
    out, code, metrics = first_run
    assert code == 0
    assert (out / "walk_a.h5").exists() and (out / "sub" / "walk_b.h5").exists()
    assert not (out / "bad.h5").exists()
    assert set(metrics["rejected"]) == {"bad"}
    assert str(source / "bad.npz") in metrics["rejected"]["bad"]
    assert set(metrics["clips"]) == {"walk_a", "sub/walk_b"}
    summary = metrics["summary"]
    assert summary["clips_retargeted"] == 2 and summary["clips_rejected"] == 1
    brief = json.loads((out / "metrics_summary.json").read_text())
    assert brief["clips_rejected"] == 1 and list(brief["rejected"]) == ["bad"]
    assert summary["frames_per_second_per_process"] > 0


def test_motion_file_records_rate_params_and_quality(source, first_run):
    out, _, metrics = first_run
    motion = read_motion(out / "walk_a.h5")
    assert motion.fps == 50.0  # 100 Hz source, capped at the default 50 Hz
    assert motion.quality["source_fps"] == 100.0
    assert motion.num_frames == 201
    assert motion.source == str(source / "walk_a.npz")
    assert motion.body_model == "skeleton"
    assert motion.retarget_params["max_fps"] == 50.0
    assert motion.retarget_params["robot"] == "wildrobot"
    assert motion.human_joints.shape == (201, 26, 3)
    in_metrics = metrics["clips"]["walk_a"]
    assert motion.quality["keypoint_error_mean_m"] == in_metrics["keypoint_error_mean_m"]
    assert "seconds" not in motion.quality  # timings would break reproducible bytes


def test_quality_bars_on_a_synthesized_straight_walk(first_run):
    _, _, metrics = first_run
    for name in ("walk_a", "sub/walk_b"):
        quality = metrics["clips"][name]
        assert quality["foot_penetration_max_m"] <= 0.005
        assert quality["foot_skate_mps"] <= 0.02
        assert quality["joint_limit_violations"] == 0
        assert quality["foot_contact_fraction"] > 0.3  # contacts were found at all
        by_frame = quality["keypoint_error_mean_m_by_frame"]
        assert max(by_frame["pelvis"], by_frame["left_foot"], by_frame["right_foot"]) <= 0.03
        assert quality["root_travel_ratio"] >= 0.9
        assert quality["human_root_travel_m"] > 1.0  # it walked (scaled: ~0.43 x 3+ m)


def test_contacts_do_not_kink_the_legs(source, first_run, tmp_path):
    """The swing clearance ramps in and out around contacts: applied at full height the frame
    after a lift-off it kinked a leg joint by more than 0.1 rad in 22 % of these walks' frames
    (joint acceleration RMS 110 rad/s^2); ramped over 3 frames, 7-9 % (50 rad/s^2)."""
    _, _, metrics = first_run
    params = tmp_path / "params.yaml"
    params.write_text("retarget:\n  contact:\n    clearance_ramp_frames: 0\n")
    code, at_once = _run(source, tmp_path, "--jobs", "1", params=params)
    assert code == 0
    for name in ("walk_a", "sub/walk_b"):
        ramped, sudden = metrics["clips"][name], at_once["clips"][name]
        assert ramped["joint_spike_frame_fraction"] <= 0.12
        assert sudden["joint_spike_frame_fraction"] >= 0.18
        rms = "joint_acceleration_rms_rad_s2"
        assert ramped[rms] < 0.6 * sudden[rms]


def test_retargeting_twice_gives_the_same_bytes(source, first_run, tmp_path):
    out, _, _ = first_run
    code, _ = _run(source, tmp_path, "--jobs", "2", "--format", "gmr")  # also via the pool
    assert code == 0
    for relative in ("walk_a.h5", "walk_a.pkl", "sub/walk_b.h5", "sub/walk_b.pkl"):
        assert (tmp_path / relative).read_bytes() == (out / relative).read_bytes(), relative


def test_current_outputs_are_skipped_and_stale_ones_redone(source, tmp_path):
    code, metrics = _run(source, tmp_path, "--jobs", "1")
    assert metrics["summary"]["clips_retargeted"] == 2
    before = (tmp_path / "walk_a.h5").stat().st_mtime_ns
    code, metrics = _run(source, tmp_path, "--jobs", "1")
    assert code == 0
    assert metrics["summary"]["clips_skipped"] == 2 and metrics["summary"]["clips_retargeted"] == 0
    assert metrics["clips"]["walk_a"]["status"] == "skipped"
    assert metrics["summary"]["frames"] > 0  # skipped clips still count in the quality summary
    assert (tmp_path / "walk_a.h5").stat().st_mtime_ns == before
    (tmp_path / "no-params.yaml").write_text("retarget:\n  contact:\n    height_m: 0.012\n")
    code, metrics = _run(source, tmp_path, "--jobs", "1")
    assert metrics["summary"]["clips_retargeted"] == 2
    assert read_motion(tmp_path / "walk_a.h5").retarget_params["contact"]["height_m"] == 0.012


def test_gmr_pickle_layout(first_run):
    out, _, _ = first_run
    motion = read_motion(out / "walk_a.h5")
    with open(out / "walk_a.pkl", "rb") as handle:
        data = pickle.load(handle)
    assert data["fps"] == 50
    assert np.array_equal(data["root_pos"], motion.qpos[:, :3])
    assert np.array_equal(data["root_rot"], motion.qpos[:, [4, 5, 6, 3]])  # xyzw
    assert np.array_equal(data["dof_pos"], motion.qpos[:, 7:])
    bodies = data["link_body_list"]
    assert bodies[0] == "pelvis" and "left_foot" in bodies
    assert data["local_body_pos"].shape == (motion.num_frames, len(bodies), 3)
    assert np.allclose(data["local_body_pos"][:, 0], 0.0)
    # the hips sit 5.4 cm either side of the pelvis, 7 cm below it, in the pelvis frame
    assert np.allclose(data["local_body_pos"][:, bodies.index("left_hip")], [0, 0.054, -0.07])


def test_nothing_usable_exits_nonzero(source, tmp_path):
    only_bad = tmp_path / "src"
    only_bad.mkdir()
    (only_bad / "bad.npz").write_bytes((source / "bad.npz").read_bytes())
    code, metrics = _run(only_bad, tmp_path / "out", "--jobs", "1")
    assert code == 1
    assert set(metrics["rejected"]) == {"bad"}


def test_bad_params_are_a_clear_error(source, tmp_path, capsys):
    (tmp_path / "no-params.yaml").write_text("retarget:\n  ik:\n    max_iteratons: 3\n")
    code, _ = _run(source, tmp_path, "--jobs", "1")
    assert code == 2
    assert "max_iteratons" in capsys.readouterr().err


def test_outputs_of_other_code_are_redone(source, tmp_path, monkeypatch):
    import retarget.retarget

    _run(source, tmp_path, "--jobs", "1")
    monkeypatch.setattr(retarget.retarget, "code_fingerprint", lambda: "0" * 64)
    code, metrics = _run(source, tmp_path, "--jobs", "1")
    assert code == 0 and metrics["clips"]["walk_a"]["status"] == "ok"
    assert read_motion(tmp_path / "walk_a.h5").retarget_params["code_sha256"] == "0" * 64


def test_include_exclude_and_prune(source, tmp_path):
    params = tmp_path / "params.yaml"
    params.write_text("source:\n  include: ['*.npz']\n  exclude: ['sub/*', 'bad.npz']\n")
    code = main(["--src", str(source), "--out", str(tmp_path / "out"), "--params", str(params),
                 "--metrics", str(tmp_path / "m.json"), "--no-progress", "--jobs", "1"])
    assert code == 0
    assert sorted(p.name for p in (tmp_path / "out").rglob("*.h5")) == ["walk_a.h5"]
    (tmp_path / "out" / "stale.h5").write_bytes(b"stale")
    main(["--src", str(source), "--out", str(tmp_path / "out"), "--params", str(params),
          "--metrics", str(tmp_path / "m.json"), "--no-progress", "--jobs", "1", "--prune"])
    assert sorted(p.name for p in (tmp_path / "out").rglob("*.h5")) == ["walk_a.h5"]
