"""pipeline.summary: the few numbers `dvc metrics show` prints, and the plot tables."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from pipeline import summary
from robots.errors import InputFileError
from training.run_log import CSV_COLUMNS

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(__file__).resolve().parent / "data" / "metrics"  # a real cpu-smoke run's files
DVC = yaml.safe_load((ROOT / "dvc.yaml").read_text())


def _eval_report() -> dict:
    return {"scenarios": {
        "flat": {"episodes": 4, "success_rate": 1.0, "style_score": 0.5,
                 "lin_vel_error_mps": 0.125},
        "push": {"episodes": 12, "success_rate": 0.25, "style_score": 0.1,
                 "lin_vel_error_mps": 0.5}},
        "sim2sim": {"max_abs_gap": {"success_rate": 0.5},
                    "gap": {"flat": {"success_rate": 0.0}, "push": {"success_rate": -0.5}}}}


def test_eval_summary_weights_scenarios_by_episodes() -> None:
    # success: (4 * 1.0 + 12 * 0.25) / 16 = 7/16; style: (4 * 0.5 + 12 * 0.1) / 16 = 0.2.
    assert summary.summarize_eval(_eval_report()) == pytest.approx(
        {"success": 0.4375, "lin_err_mps": 0.125, "style": 0.2, "sim2sim_gap": 0.5})
    no_sim2sim = {k: v for k, v in _eval_report().items() if k != "sim2sim"}
    assert "sim2sim_gap" not in summary.summarize_eval(no_sim2sim)


def test_stage_summaries_pick_their_fields() -> None:
    retarget = {"summary": {"keypoint_error_mean_m": 0.004}, "clips": {"a": {}, "b": {}},
                "rejected": {"c": "too deep"}}
    assert summary.summarize_retarget(retarget) == {"clips": 2, "rejected": 1,
                                                    "keypoint_err_m": 0.004}
    assert summary.summarize_dataset({"rejected_count": 1},
                                     {"clips": 6, "rejected_count": 2, "duration_s": 30.5}) == {
        "clips": 6, "rejected": 3, "seconds": 30.5}
    train = {"iteration": 7, "final": {"rollout/fall_rate": 0.25, "amp/style_reward_mean": 0.5}}
    assert summary.summarize_train(train) == {"iteration": 7, "fall_rate": 0.25, "style": 0.5}


def test_missing_field_names_file_and_key() -> None:
    with pytest.raises(InputFileError, match=r"metrics/train\.json: has no 'final\.amp/style"):
        summary.summarize_train({"iteration": 1, "final": {"rollout/fall_rate": 0.0}},
                                "metrics/train.json")


def test_unreadable_metrics_file(tmp_path: Path) -> None:
    bad = tmp_path / "eval.json"
    bad.write_text("{not json")
    with pytest.raises(InputFileError, match=r"eval\.json: not a readable JSON file"):
        summary.read_metrics(bad)
    with pytest.raises(InputFileError, match="no such metrics file"):
        summary.read_metrics(tmp_path / "absent.json")


def test_main_writes_summaries_and_plot_tables(tmp_path: Path) -> None:
    rc = summary.main(["--retarget", str(DATA / "retarget.json"),
                       "--convert", str(DATA / "convert.json"),
                       "--dataset", str(DATA / "dataset.json"),
                       "--train", str(DATA / "train.json"), "--eval", str(DATA / "eval.json"),
                       "--out", str(tmp_path / "summary"), "--plots", str(tmp_path / "plots")])
    assert rc == 0
    retarget = json.loads((DATA / "retarget.json").read_text())
    assert json.loads((tmp_path / "summary/retarget.json").read_text()) == {
        "clips": 16, "rejected": 0,
        "keypoint_err_m": retarget["summary"]["keypoint_error_mean_m"]}
    # The run's six scenarios, 16 episodes each: 1, 0, 1, 1, 0.9375, 1 -> 4.9375 / 6.
    evaluation = json.loads((tmp_path / "summary/eval.json").read_text())
    assert evaluation["success"] == pytest.approx(4.9375 / 6)
    with (tmp_path / "plots/retarget_clips.csv").open() as f:
        clips = list(csv.DictReader(f))
    assert len(clips) == 16
    jog = next(r for r in clips if r["clip"] == "jog_01")
    assert float(jog["keypoint_error_mean_m"]) == retarget["clips"]["jog_01"][
        "keypoint_error_mean_m"]
    with (tmp_path / "plots/eval_scenarios.csv").open() as f:
        scenarios = {r["scenario"]: r for r in csv.DictReader(f)}
    assert float(scenarios["turning"]["success_rate"]) == 0.9375
    assert float(scenarios["push"]["sim2sim_success_gap"]) == 0.0


def test_only_summaries_are_dvc_metrics() -> None:
    declared = [next(iter(m)) if isinstance(m, dict) else m
                for stage in DVC["stages"].values() for m in stage.get("metrics", [])]
    assert sorted(declared) == ["metrics/summary/dataset.json", "metrics/summary/eval.json",
                                "metrics/summary/retarget.json", "metrics/summary/train.json"]


def test_plot_definitions_name_real_columns() -> None:
    columns = {"metrics/train_progress.csv": set(CSV_COLUMNS),
               "docs/walk_cpu_progress.csv": set(CSV_COLUMNS),
               "docs/walk_cpu_smooth_contacts_progress.csv": set(CSV_COLUMNS),
               "docs/walk_cpu_style3_progress.csv": set(CSV_COLUMNS),
               "docs/walk_cpu_tracked_progress.csv": set(CSV_COLUMNS),
               "docs/walk_cpu_phase_aligned_progress.csv": set(CSV_COLUMNS),
               "docs/walk_cpu_stance_width_progress.csv": set(CSV_COLUMNS),
               "docs/walk_cpu_pose_template_progress.csv": set(CSV_COLUMNS),
               "docs/walk_cpu_yaw_rate_progress.csv": set(CSV_COLUMNS),
               "docs/walk_cpu_regularized_progress.csv": set(CSV_COLUMNS),
               "docs/track_cpu_progress.csv": set(CSV_COLUMNS),
               "../runs/walk/train_progress.csv": set(CSV_COLUMNS),  # walk/dvc.yaml's
               "metrics/plots/retarget_clips.csv": {"clip", *summary.RETARGET_CLIP_COLUMNS},
               "metrics/plots/eval_scenarios.csv": {"scenario", *summary.EVAL_SCENARIO_COLUMNS}}
    walk = yaml.safe_load((ROOT / "walk/dvc.yaml").read_text())
    for entry in DVC["plots"] + walk["plots"]:
        (title, spec), = entry.items()
        (file, fields), = spec["y"].items()
        fields = [fields] if isinstance(fields, str) else fields
        assert {spec["x"], *fields} <= columns[file], title


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_dvc_metrics_show_fits_160_columns(tmp_path: Path) -> None:
    # The real thing: dvc's table of the four summaries of a real run, in a scratch repository
    # whose dvc.yaml declares them as ours does.
    summary.write_summaries(tmp_path / "metrics/summary", tmp_path / "metrics/plots",
                            DATA / "retarget.json", DATA / "convert.json", DATA / "dataset.json",
                            DATA / "train.json", DATA / "eval.json")
    metrics = [m for s in DVC["stages"].values() for m in s.get("metrics", [])]
    (tmp_path / "dvc.yaml").write_text(yaml.safe_dump({"metrics": [next(iter(m))
                                                                   for m in metrics]}))
    for command in (["git", "init", "-q"], ["dvc", "init", "-q"]):
        subprocess.run(command, cwd=tmp_path, check=True, capture_output=True)
    shown = subprocess.run(["dvc", "metrics", "show"], cwd=tmp_path, check=True,
                           capture_output=True, text=True).stdout
    lines = shown.splitlines()
    assert len(lines) == 5 and lines[0].split() == [
        "Path", "clips", "fall_rate", "iteration", "keypoint_err_m", "lin_err_mps", "rejected",
        "seconds", "sim2sim_gap", "style", "success"]
    assert max(map(len, lines)) <= 160
    eval_row = next(line for line in lines if line.startswith("metrics/summary/eval.json"))
    assert "0.82292" in eval_row.split()  # 4.9375 / 6 at dvc's 5 decimals
