"""Synthesized AMASS-format clips: loadable, foot-locked, at their nominal speed, reproducible."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from pipeline.synthesize import main as synthesize_main
from retarget.amass import load_amass
from retarget.body_models import make_body_model
from retarget.human import HumanMotion
from retarget.synthesize import (
    DEFAULT_CLIPS,
    MANIFEST_NAME,
    ClipSpec,
    SynthesisConfig,
    synthesize,
)

STANCE_HEIGHT_M = 0.02
SHORT_CLIPS = (
    ClipSpec("walk_a", "walk", 30.0, 2.0, 1.0),
    ClipSpec("turn_a", "turn", 60.0, 2.0, 1.1, 0.4),
)


@pytest.fixture(scope="module")
def default_set(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("synthetic")
    manifest = synthesize(out, SynthesisConfig(seed=0))
    return out, manifest


@pytest.fixture(scope="module")
def motions(default_set: tuple[Path, dict]) -> dict[str, HumanMotion]:
    out, manifest = default_set
    model = make_body_model("skeleton")
    return {entry["name"]: model.forward(load_amass(out / entry["file"]))
            for entry in manifest["clips"]}


def test_default_set_covers_the_brief(default_set: tuple[Path, dict]) -> None:
    out, manifest = default_set
    entries = manifest["clips"]
    assert len(entries) == len(DEFAULT_CLIPS) >= 14
    assert 60.0 <= manifest["total_duration_s"] <= 120.0
    assert {entry["fps"] for entry in entries} == {30.0, 60.0, 100.0, 120.0}
    kinds = {entry["kind"] for entry in entries}
    assert kinds == {"walk", "turn", "start_stop", "jog", "stand"}
    walking = [e["nominal_speed_mps"] for e in entries if e["kind"] == "walk"]
    assert min(walking) < 0.6 and max(walking) > 1.4
    turns = [e["yaw_rate_radps"] for e in entries if e["kind"] == "turn"]
    assert min(turns) < 0 < max(turns)  # left and right
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [entry["file"] for entry in entries] + [MANIFEST_NAME]
    )
    assert json.loads((out / MANIFEST_NAME).read_text()) == manifest


def test_clips_load_with_amass_layout(default_set: tuple[Path, dict]) -> None:
    out, manifest = default_set
    for entry in manifest["clips"]:
        path = out / entry["file"]
        clip = load_amass(path)
        assert clip.fps == entry["fps"]
        assert clip.num_frames == entry["frames"]
        assert clip.gender == "neutral"
        with np.load(path) as raw:
            assert raw["poses"].shape == (entry["frames"], 165)
            assert raw["betas"].shape == (16,)
            assert np.all(raw["poses"][:, 66:] == 0.0)  # jaw, eyes, hands: neutral


def _foot_lowest(motion: HumanMotion) -> tuple[np.ndarray, np.ndarray]:
    """Per foot (left, right): height [T, 2] of its lowest sole point and that point's
    horizontal speed [T-1, 2] (forward differences), m and m/s."""
    feet = motion.positions[:, 22:26].reshape(-1, 2, 2, 3)  # [T, foot, heel/toe, xyz]
    lowest = np.argmin(feet[..., 2], axis=2)  # [T, 2]
    height = np.take_along_axis(feet[..., 2], lowest[..., None], axis=2)[..., 0]
    step = np.linalg.norm(np.diff(feet[..., :2], axis=0), axis=-1) * motion.fps  # [T-1, 2, 2]
    speed = np.take_along_axis(step, lowest[:-1, :, None], axis=2)[..., 0]
    return height, speed


def test_stance_foot_does_not_slide(default_set: tuple[Path, dict],
                                    motions: dict[str, HumanMotion]) -> None:
    for entry in default_set[1]["clips"]:
        motion = motions[entry["name"]]
        height, speed = _foot_lowest(motion)
        frames = np.arange(len(speed))
        stance = np.argmin(height[:-1], axis=1)  # the lower foot
        stance_speed = speed[frames, stance]
        swing_speed = speed[frames, 1 - stance]
        planted = (height[frames, stance] < STANCE_HEIGHT_M) & (stance_speed < swing_speed)
        if entry["kind"] != "stand":
            assert planted.mean() > 0.8, entry["name"]
        if planted.any():
            assert stance_speed[planted].mean() < 0.01, entry["name"]  # < 1 cm/s
        # the lowest sole point is on the floor, none below it
        assert np.abs(height.min(axis=1)).max() < 1e-9, entry["name"]


def test_pelvis_speed_matches_nominal(default_set: tuple[Path, dict],
                                      motions: dict[str, HumanMotion]) -> None:
    for entry in default_set[1]["clips"]:
        motion = motions[entry["name"]]
        pelvis = motion.positions[:, motion.index("pelvis"), :2]
        speed = np.linalg.norm(np.diff(pelvis, axis=0), axis=1).mean() * motion.fps
        assert speed == pytest.approx(entry["pelvis_speed_mps"], rel=1e-6, abs=1e-6)
        if entry["kind"] == "stand":
            assert speed < 0.05, entry["name"]
        else:
            assert speed == pytest.approx(entry["nominal_speed_mps"], rel=0.10), entry["name"]


def test_turns_turn_and_walks_go_straight(default_set: tuple[Path, dict],
                                          motions: dict[str, HumanMotion]) -> None:
    for entry in default_set[1]["clips"]:
        if entry["kind"] not in ("turn", "walk"):
            continue
        pelvis = motions[entry["name"]].positions[:, 0, :2]
        direction = np.diff(pelvis[:: max(1, int(entry["fps"]))], axis=0)  # 1 s chords
        heading = np.unwrap(np.arctan2(direction[:, 1], direction[:, 0]))
        turned = heading[-1] - heading[0]
        if entry["kind"] == "turn":
            assert np.sign(turned) == np.sign(entry["yaw_rate_radps"]), entry["name"]
            assert abs(turned) > 0.5, entry["name"]
        else:
            assert abs(turned) < 0.3, entry["name"]


def test_gait_kinematics_look_human(default_set: tuple[Path, dict],
                                    motions: dict[str, HumanMotion]) -> None:
    motion = motions["walk_medium_01"]
    pelvis = motion.positions[:, motion.index("pelvis")]
    travel = pelvis[-1, :2] - pelvis[0, :2]
    forward = travel / np.linalg.norm(travel)

    def ahead(name: str) -> np.ndarray:
        return (motion.positions[:, motion.index(name), :2] - pelvis[:, :2]) @ forward

    # counter-phase arm swing: the left hand is forward when the left foot is back
    correlation = np.corrcoef(ahead("left_wrist"), ahead("left_ankle"))[0, 1]
    assert correlation < -0.5
    # legs alternate
    assert np.corrcoef(ahead("left_ankle"), ahead("right_ankle"))[0, 1] < -0.8
    # pelvis bobs a few centimetres, standing height of a 1.75 m body
    assert 0.85 < pelvis[:, 2].mean() < 1.0
    assert 0.01 < np.ptp(pelvis[:, 2]) < 0.08
    # the swing foot lifts: the higher foot's lowest point reaches a few centimetres
    height, _ = _foot_lowest(motion)
    assert 0.03 < height.max() < 0.3


def test_same_seed_same_bytes(tmp_path: Path) -> None:
    config = SynthesisConfig(seed=7, clips=SHORT_CLIPS)
    first = synthesize(tmp_path / "first", config)
    second = synthesize(tmp_path / "second", config)
    assert first == second
    for name in [entry["file"] for entry in first["clips"]] + [MANIFEST_NAME]:
        assert (tmp_path / "first" / name).read_bytes() == (tmp_path / "second" / name).read_bytes()
    other = synthesize(tmp_path / "other", SynthesisConfig(seed=8, clips=SHORT_CLIPS))
    assert (tmp_path / "other" / "walk_a.npz").read_bytes() != (
        tmp_path / "first" / "walk_a.npz"
    ).read_bytes()
    assert other["clips"][0]["sha256"] != first["clips"][0]["sha256"]


def test_config_rejects_bad_clips() -> None:
    with pytest.raises(ValueError, match="unique"):
        SynthesisConfig(clips=(SHORT_CLIPS[0], SHORT_CLIPS[0]))
    with pytest.raises(ValueError, match="valid kinds"):
        SynthesisConfig(clips=(ClipSpec("x", "moonwalk", 30.0, 2.0, 1.0),))


def test_cli_reads_params_section(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    params = tmp_path / "params.yaml"
    params.write_text(
        "synthesize:\n"
        "  seed: 3\n"
        "  duration_scale: 0.5\n"
        "  clips:\n"
        "    - {name: walk_b, kind: walk, fps: 60, duration_s: 3.0, speed_mps: 0.8}\n"
        "    - {name: stand_b, kind: stand, fps: 30, duration_s: 2.0}\n"
    )
    out = tmp_path / "out"
    assert synthesize_main(["--out", str(out), "--params", str(params)]) == 0
    manifest = json.loads((out / MANIFEST_NAME).read_text())
    assert manifest["seed"] == 3
    assert [entry["name"] for entry in manifest["clips"]] == ["walk_b", "stand_b"]
    assert manifest["clips"][0]["frames"] == 91  # 1.5 s at 60 Hz, both ends
    assert load_amass(out / "walk_b.npz").fps == 60.0
    assert synthesize_main(["--out", str(out), "--params", str(params), "--seed", "4"]) == 0
    assert json.loads((out / MANIFEST_NAME).read_text())["seed"] == 4

    params.write_text("synthesize:\n  seeed: 3\n")
    assert synthesize_main(["--out", str(out), "--params", str(params)]) == 2
    assert "unknown key" in capsys.readouterr().err
