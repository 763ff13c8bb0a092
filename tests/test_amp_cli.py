"""``python -m pipeline.convert`` / ``pipeline.merge`` / ``amp.inspect`` end to end on tmp files."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from amp_fixtures import corrupt_file, synthetic_motion, write_synthetic_motions

import robots
from amp import inspect as amp_inspect
from amp.clipfile import read_clip
from amp.convert import ConvertConfig
from amp.dataset import load_dataset
from amp.merge import read_merged
from amp.stages import convert_directory
from pipeline import convert as convert_stage
from pipeline import merge as merge_stage
from robots.errors import AmpkitError
from robots.motion import write_motion

SPEC = robots.load_spec("wildrobot")


@pytest.fixture()
def motions(tmp_path: Path) -> Path:
    """Four good motions (30/60/100/120 Hz), a corrupt file and one for an unknown robot."""
    in_dir = tmp_path / "robot"
    write_synthetic_motions(in_dir, SPEC, durations_s=(1.5,))
    corrupt_file(in_dir / "broken.h5")
    stranger = synthetic_motion(SPEC, 50.0, 1.0)
    stranger.robot = "no_such_robot"
    write_motion(in_dir / "stranger.h5", stranger)
    return in_dir


def run(stage, *args: str | Path) -> int:
    return stage.main([str(a) for a in args] + ["--quiet"])


def test_bad_motions_are_reported_and_skipped(motions: Path, tmp_path: Path) -> None:
    clips, metrics = tmp_path / "clips", tmp_path / "convert.json"
    params = tmp_path / "params.yaml"
    params.write_text("convert:\n  mirror: true\n  contact:\n    height_m: 0.02\n"
                      "merge:\n  weights:\n    '*_mirror': 0.5\n")
    assert run(convert_stage, "--in", motions, "--out", clips, "--params", params,
               "--metrics", metrics) == 0
    report = json.loads(metrics.read_text())
    rejected = {Path(r["file"]).name: r["reason"] for r in report["rejected"]}
    assert set(rejected) == {"broken.h5", "stranger.h5"}
    assert "HDF5" in rejected["broken.h5"] and "no_such_robot" in rejected["stranger.h5"]
    assert report["inputs"] == 6 and report["outputs"] == 8  # 4 good motions + mirrors
    names = sorted(p.stem for p in clips.glob("*.h5"))
    assert names == sorted([f"walk_{i}_{f}hz" for i, f in enumerate((30, 60, 100, 120))]
                           + [f"walk_{i}_{f}hz_mirror" for i, f in enumerate((30, 60, 100, 120))])
    clip = read_clip(clips / "walk_1_60hz.h5")
    assert clip.params["contact"]["height_m"] == 0.02 and clip.source.endswith("walk_1_60hz.h5")
    assert clip.num_frames == 76 and len(clip.source_sha256) == 64

    corrupt_file(clips / "zz_damaged.h5")
    merged, merge_metrics = tmp_path / "merged.h5", tmp_path / "merge.json"
    assert run(merge_stage, "--in", clips, "--out", merged, "--params", params,
               "--metrics", merge_metrics) == 0
    report = json.loads(merge_metrics.read_text())
    assert [Path(r["file"]).name for r in report["rejected"]] == ["zz_damaged.h5"]
    data = read_merged(merged)
    assert data.num_clips == 8 and data.num_frames == 8 * 76
    assert report["content_sha256"] == data.content_sha256
    mirror_weight = data.clip_weight[list(data.clip_name).index("walk_0_30hz_mirror")]
    assert mirror_weight == pytest.approx(0.5 * data.clip_weight[0])
    assert {i["name"] for i in data.inputs} == set(data.clip_name)
    assert load_dataset(merged, SPEC, expected_fps=50.0).num_frames == 608

    # Same inputs, same bytes: the merged file is reproducible.
    again = tmp_path / "again.h5"
    assert run(merge_stage, "--in", clips, "--out", again, "--params", params,
               "--metrics", merge_metrics) == 0
    assert again.read_bytes() == merged.read_bytes()


def test_exit_status_is_nonzero_only_when_nothing_is_usable(tmp_path: Path) -> None:
    in_dir = tmp_path / "robot"
    in_dir.mkdir()
    corrupt_file(in_dir / "a.h5")
    metrics = tmp_path / "m.json"
    assert run(convert_stage, "--in", in_dir, "--out", tmp_path / "clips",
               "--params", tmp_path / "none.yaml", "--metrics", metrics) == 1
    assert json.loads(metrics.read_text())["rejected_count"] == 1
    assert run(merge_stage, "--in", in_dir, "--out", tmp_path / "merged.h5",
               "--params", tmp_path / "none.yaml", "--metrics", metrics) == 1
    assert not (tmp_path / "merged.h5").exists()


def test_mirror_name_clashes_and_stale_outputs_are_reported(tmp_path: Path) -> None:
    in_dir, out_dir = tmp_path / "robot", tmp_path / "clips"
    for name in ("step", "step_mirror"):
        write_motion(in_dir / f"{name}.h5", synthetic_motion(SPEC, 50.0, 0.5))
    (out_dir / "old").mkdir(parents=True)
    corrupt_file(out_dir / "old" / "leftover.h5")
    report = convert_directory(in_dir, out_dir, ConvertConfig(mirror=True), progress=False)
    assert report.outputs == ["step", "step_mirror"]
    assert [Path(r["file"]).name for r in report.rejected] == ["step_mirror.h5"]
    assert "mirror image of 'step'" in report.rejected[0]["reason"]
    assert report.extra["stale_outputs"] == [str(out_dir / "old" / "leftover.h5")]
    with pytest.raises(AmpkitError, match="does not exist"):
        convert_directory(tmp_path / "nowhere", out_dir, ConvertConfig(), progress=False)


def test_unknown_params_key_is_an_error(motions: Path, tmp_path: Path, capsys) -> None:
    params = tmp_path / "params.yaml"
    params.write_text("convert:\n  fsp: 50\n")
    assert run(convert_stage, "--in", motions, "--out", tmp_path / "c", "--params", params,
               "--metrics", tmp_path / "m.json") == 1
    assert "unknown key(s) ['fsp']" in capsys.readouterr().err
    assert not (tmp_path / "c").exists() and not (tmp_path / "m.json").exists()


def test_inspect_and_module_entry_points(motions: Path, tmp_path: Path, capsys) -> None:
    clips, merged = tmp_path / "clips", tmp_path / "merged.h5"
    none = tmp_path / "none.yaml"
    # A fresh interpreter (no JAX loaded) converts with 2 forked workers …
    result = subprocess.run(
        [sys.executable, "-m", "pipeline.convert", "--in", str(motions), "--out", str(clips),
         "--params", str(none), "--metrics", str(tmp_path / "c.json"), "--quiet",
         "--workers", "2"],
        capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert "rejected" in result.stderr and "broken.h5" in result.stderr
    # … and writes exactly the bytes a single process writes.
    single = tmp_path / "single"
    assert run(convert_stage, "--in", motions, "--out", single, "--params", none,
               "--metrics", tmp_path / "s.json", "--workers", "1") == 0
    parallel_files = sorted(p.name for p in clips.glob("*.h5"))
    assert parallel_files == sorted(p.name for p in single.glob("*.h5"))
    assert len(parallel_files) == 4
    for name in parallel_files:
        assert (clips / name).read_bytes() == (single / name).read_bytes()

    assert run(merge_stage, "--in", clips, "--out", merged, "--params", none,
               "--metrics", tmp_path / "m.json") == 0
    capsys.readouterr()
    assert amp_inspect.main([str(merged)]) == 0
    text = capsys.readouterr().out
    assert "walk_3_120hz" in text and "[foot_contact]" in text
    assert "joint_pos/left_knee_pitch" in text and "4 clip(s), 304 frames" in text
    assert amp_inspect.main([str(clips / "walk_0_30hz.h5")]) == 0
    assert amp_inspect.main([str(tmp_path / "missing.h5")]) == 1
    assert np.all(np.isfinite(read_merged(merged).features))


def test_merged_dataset_records_one_contact_rule(motions: Path, tmp_path: Path) -> None:
    """Clips labelled by another contact rule are refused, so data and simulation share one."""
    clips = tmp_path / "clips"
    strict, loose = tmp_path / "strict.yaml", tmp_path / "loose.yaml"
    strict.write_text("convert:\n  contact:\n    height_m: 0.02\n")
    loose.write_text("convert:\n  contact:\n    height_m: 0.01\n")
    run(convert_stage, "--in", motions, "--out", clips, "--params", strict,
        "--metrics", tmp_path / "c1.json")
    odd = tmp_path / "odd"
    (odd / "walk_0_30hz.h5").parent.mkdir()
    (odd / "walk_0_30hz.h5").write_bytes((motions / "walk_0_30hz.h5").read_bytes())
    run(convert_stage, "--in", odd, "--out", tmp_path / "odd_clips", "--params", loose,
        "--metrics", tmp_path / "c2.json")
    (clips / "zz_odd.h5").write_bytes((tmp_path / "odd_clips" / "walk_0_30hz.h5").read_bytes())
    metrics = tmp_path / "merge.json"
    assert run(merge_stage, "--in", clips, "--out", tmp_path / "m.h5", "--metrics", metrics) == 0
    rejected = json.dumps(json.loads(metrics.read_text())["rejected"])
    assert json.loads(metrics.read_text())["rejected_count"] == 1
    assert "zz_odd.h5" in rejected and "contacts labelled with" in rejected
    dataset = load_dataset(tmp_path / "m.h5", SPEC)
    assert dataset.contact_rule.height_m == 0.02 and dataset.contact_rule.max_speed_mps is None
