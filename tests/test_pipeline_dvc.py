"""`dvc repro` end to end on a 2-clip configuration in a temporary git repository."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import h5py
import pytest
import yaml

import robots
from amp.dataset import load_dataset

ROOT = Path(__file__).resolve().parents[1]
CODE = ("robots", "retarget", "amp", "training", "pipeline", "bench")
TWO_CLIPS = [
    {"name": "walk_a", "kind": "walk", "fps": 60.0, "duration_s": 2.0, "speed_mps": 1.0},
    {"name": "turn_b", "kind": "turn", "fps": 120.0, "duration_s": 2.0, "speed_mps": 0.9,
     "yaw_rate_radps": 0.35},
]


def _run(args: list[str], cwd: Path) -> str:
    env = {**os.environ, "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl")}
    result = subprocess.run(args, cwd=cwd, capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, f"{' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout + result.stderr


def _stages_run(output: str) -> list[str]:
    return re.findall(r"Running stage '([^']+)'", output)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    repo = tmp_path_factory.mktemp("ampkit_repo")
    for name in CODE:
        shutil.copytree(ROOT / name, repo / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("dvc.yaml", ".dvcignore", "walk/dvc.yaml"):
        (repo / name).parent.mkdir(exist_ok=True)
        shutil.copy(ROOT / name, repo / name)
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["synthesize"]["clips"] = TWO_CLIPS
    params["render_reference"].update(
        {"clips": ["walk*"], "max_videos": 1, "max_seconds": 0.5, "width": 160, "height": 120})
    (repo / "params.yaml").write_text(yaml.safe_dump(params))
    _run(["git", "init", "-q"], repo)
    _run(["dvc", "init", "-q"], repo)
    _run(["dvc", "config", "core.analytics", "false"], repo)
    return repo


def test_dvc_repro_two_clips(repo: Path) -> None:
    # The data pipeline (training is covered by the trainer's own tests).
    output = _run(["dvc", "repro", "render_reference", "merge"], repo)
    ran = _stages_run(output)  # in an order of the graph (render_reference anywhere after)
    assert sorted(ran) == ["convert", "merge", "render_reference", "retarget", "synthesize"]
    assert [name for name in ran if name != "render_reference"] == [
        "synthesize", "retarget", "convert", "merge"]

    retarget = json.loads((repo / "metrics/retarget.json").read_text())
    assert retarget["summary"]["clips_retargeted"] == 2 and retarget["rejected"] == {}
    assert retarget["summary"]["foot_penetration_max_m"] <= 0.005
    dataset = load_dataset(repo / "data/amp/merged.h5", robots.load_spec("wildrobot"))
    assert sorted(dataset.data.clip_name) == ["turn_b", "turn_b_mirror", "walk_a",
                                              "walk_a_mirror"]
    assert (repo / "videos/reference/walk_a.mp4").stat().st_size > 1000
    assert (repo / "videos/reference/contact_sheet.png").exists()

    # Provenance: merged dataset -> clip file -> robot motion -> raw synthesized clip.
    with h5py.File(repo / "data/amp/merged.h5") as merged:
        inputs = {i["name"]: i["sha256"] for i in json.loads(merged.attrs["inputs"])}
    clip_path = repo / "data/amp/clips/walk_a.h5"
    assert inputs["walk_a"] == _sha256(clip_path)
    with h5py.File(clip_path) as clip:
        assert clip.attrs["source_sha256"] == _sha256(repo / "data/retargeted/walk_a.h5")
    with h5py.File(repo / "data/retargeted/walk_a.h5") as motion:
        assert motion.attrs["source_sha256"] == _sha256(repo / "data/raw/synthetic/walk_a.npz")
    lock = yaml.safe_load((repo / "dvc.lock").read_text())
    assert any(out["path"] == "data/amp/merged.h5" for out in lock["stages"]["merge"]["outs"])

    # Nothing changed: nothing runs.
    assert _stages_run(_run(["dvc", "repro", "render_reference", "merge"], repo)) == []

    # A convert parameter re-runs convert and what depends on it, nothing upstream.
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["convert"]["mirror"] = False
    (repo / "params.yaml").write_text(yaml.safe_dump(params))
    output = _run(["dvc", "repro", "render_reference", "merge"], repo)
    assert _stages_run(output) == ["convert", "merge"]
    dataset = load_dataset(repo / "data/amp/merged.h5", robots.load_spec("wildrobot"))
    assert sorted(dataset.data.clip_name) == ["turn_b", "walk_a"]


def test_walk_pipeline_hangs_off_the_merged_data_and_names_its_presets(repo: Path) -> None:
    """``walk/dvc.yaml`` (tracker, filter, walking run) starts from the main pipeline's
    merged.h5, and its commands carry the presets and evaluation its params section names."""
    from dvc.repo import Repo

    from training.config import preset

    walk = yaml.safe_load((repo / "params.yaml").read_text())["walk"]
    assert preset(walk["track_preset"]).env == "wildrobot_track"  # what the filter needs
    assert preset(walk["preset"]).env == "wildrobot_walk"
    dag = _run(["dvc", "dag", "--dot", "walk/dvc.yaml:walk"], repo)
    for upstream, downstream in (("merge", "walk/dvc.yaml:track"),
                                 ("walk/dvc.yaml:track", "walk/dvc.yaml:filter_reference"),
                                 ("merge", "walk/dvc.yaml:filter_reference"),
                                 ("walk/dvc.yaml:filter_reference", "walk/dvc.yaml:walk")):
        assert f'"{upstream}" -> "{downstream}";' in dag
    commands = {stage.name: stage.cmd for stage in Repo(repo).stage.collect("walk/dvc.yaml")}
    assert f"--preset {walk['track_preset']} --out runs/track" in commands["track"]
    assert "--run runs/track --out data/amp/tracked.h5" in commands["filter_reference"]
    assert (f"bench.walk --data data/amp/tracked.h5 --preset {walk['preset']} --out runs/walk "
            f"--episodes {walk['episodes']} --seconds {walk['seconds']}") in commands["walk"]
