"""Where clips come from: BVH files through the pipeline stage, unsupported file types, and a
source folder with nothing usable in it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from pipeline.retarget import main
from pipeline.sources import load_source

DATA = Path(__file__).parent / "data" / "bvh"


def _run(src: Path, out: Path, params: Path | None = None) -> tuple[int, dict]:
    metrics = out / "metrics.json"
    code = main(["--src", str(src), "--out", str(out), "--metrics", str(metrics),
                 "--params", str(params or out / "none.yaml"), "--no-progress", "--jobs", "1"])
    return code, json.loads(metrics.read_text()) if metrics.exists() else {}


def test_a_folder_of_bvh_files_and_a_single_bvh_are_retargeted(tmp_path):
    src = tmp_path / "mocap"
    (src / "cmu").mkdir(parents=True)
    shutil.copy(DATA / "cmu_07_01_walk.bvh", src / "cmu" / "walk.bvh")
    (src / "notes.txt").write_text("not a clip")
    params = tmp_path / "params.yaml"
    params.write_text(f"source:\n  kind: bvh\n  dir: {src}\n")
    assert load_source(params).kind == "bvh"
    code, metrics = _run(src, tmp_path / "out", params)
    assert code == 0 and metrics["rejected"] == {}
    quality = metrics["clips"]["cmu/walk"]
    assert quality["bvh_dialect"] == "motionbuilder" and quality["bvh_lead_in_frames_dropped"] == 1
    assert (tmp_path / "out" / "cmu" / "walk.h5").exists()
    code, metrics = _run(src / "cmu" / "walk.bvh", tmp_path / "single")
    assert code == 0 and list(metrics["clips"]) == ["walk"]


def test_an_unsupported_file_type_names_the_supported_ones(tmp_path):
    clip = tmp_path / "take.fbx"
    clip.write_bytes(b"Kaydara FBX Binary")
    code, metrics = _run(clip, tmp_path / "out")
    assert code == 1
    reason = metrics["rejected"]["take"]
    assert "unsupported file type '.fbx'" in reason and ".npz" in reason and ".bvh" in reason


def test_a_folder_with_no_clip_says_what_it_found(tmp_path, capsys):
    src = tmp_path / "mocap"
    src.mkdir()
    (src / "a.fbx").write_bytes(b"x")
    (src / "b.fbx").write_bytes(b"x")
    code, metrics = _run(src, tmp_path / "out")
    assert code == 1 and metrics["summary"]["clips_rejected"] == 0
    err = capsys.readouterr().err
    assert f"no clip found under {src}" in err and "found instead: 2 .fbx" in err
    assert ".bvh" in err and ".npz" in err


def test_a_bvh_with_non_physical_positions_is_rejected(tmp_path):
    text = (DATA / "cmu_07_01_walk.bvh").read_text()
    header, motion = text.split("Frame Time:")
    rows = motion.split("\n")
    values = rows[60].split()
    values[0] = "1e9"  # the root x position of one frame: 56,000 km
    rows[60] = " ".join(values)
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "far.bvh").write_text(header + "Frame Time:" + "\n".join(rows))
    code, metrics = _run(tmp_path / "src", tmp_path / "out")
    assert code == 1
    assert "non_physical: position" in metrics["rejected"]["far"]
