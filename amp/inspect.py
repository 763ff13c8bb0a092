"""``python -m amp.inspect FILE``: what an AMP dataset (merged or single clip) holds.

Prints the header (robot, FPS, content hash), the clips with their durations, weights and
physical feasibility scores, per-feature statistics grouped by the named slices of the layout,
and for a single clip its feasibility report (torques per actuator against the limit, the
"hand of god" residual, the centre of pressure, infeasible frames by support phase).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from amp.clipfile import read_clip
from amp.features import FEATURE_LAYOUT
from amp.merge import MergedDataset, read_merged
from robots.errors import AmpkitError


def describe(path: str | Path, max_clips: int = 50) -> str:
    """Human-readable summary of a merged dataset or clip file."""
    path = Path(path)
    try:
        with h5py.File(path, "r") as f:
            is_merged = "clip_start" in f
            layout = str(f.attrs.get("layout", "{}"))
            scores = f["clip_feasibility"][()] if "clip_feasibility" in f else None
            record = json.loads(f.attrs["feasibility"]) if "feasibility" in f.attrs else None
    except (OSError, ValueError) as exc:
        raise AmpkitError(f"{path}: cannot open as HDF5 ({exc})") from exc
    if is_merged:
        data = read_merged(path, verify_hash=False)
    else:
        clip = read_clip(path)
        data = MergedDataset(
            features=clip.features, clip_start=np.zeros(1, np.int64),
            clip_length=np.array([clip.num_frames]), clip_name=(clip.name,),
            clip_weight=np.ones(1), mean=clip.features.mean(0), std=clip.features.std(0),
            fps=clip.fps, robot=clip.robot, layout=layout,
            content_sha256="(single clip file)")
    lines = [f"{path}",
             f"  robot {data.robot}, {data.fps:g} FPS, content_sha256 {data.content_sha256}",
             f"  {data.num_clips} clip(s), {data.num_frames} frames, "
             f"{(data.clip_length - 1).sum() / data.fps:.2f} s"]
    if record is not None:
        scores = np.array([np.nan if record.get("score") is None else record["score"]])
    lines += _clip_table(data, max_clips, scores)
    lines += _feature_table(data)
    if record is not None:
        lines += feasibility_lines(record)
    return "\n".join(lines)


def _clip_table(data: MergedDataset, max_clips: int,
                scores: np.ndarray | None = None) -> list[str]:
    width = max(12, *(len(n) for n in data.clip_name[:max_clips]))
    header = f"  {'clip':<{width}} {'frames':>7} {'seconds':>8} {'weight':>8}"
    lines = ["", header + (f" {'feasible':>8}" if scores is not None else "")]
    for i, name in enumerate(data.clip_name[:max_clips]):
        length = int(data.clip_length[i])
        score = "" if scores is None else (
            f" {'-':>8}" if not np.isfinite(scores[i]) else f" {scores[i]:>8.2f}")
        lines.append(f"  {name:<{width}} {length:>7} {(length - 1) / data.fps:>8.2f} "
                     f"{data.clip_weight[i]:>8.4f}{score}")
    if data.num_clips > max_clips:
        lines.append(f"  … {data.num_clips - max_clips} more")
    return lines


def _feature_table(data: MergedDataset) -> list[str]:
    names = _names(data)
    features = data.features
    lines = ["", f"  {'feature':<32} {'mean':>9} {'std':>9} {'min':>9} {'max':>9}"]
    for block in FEATURE_LAYOUT:
        lines.append(f"  [{block.name}] ({block.unit})")
        for i in range(block.start, block.stop):
            column = features[:, i]
            lines.append(f"    {names[i]:<30} {data.mean[i]:>9.4f} {data.std[i]:>9.4f} "
                         f"{column.min():>9.4f} {column.max():>9.4f}")
    return lines


def feasibility_lines(record: dict[str, Any]) -> list[str]:
    """The feasibility report of one clip (:meth:`FeasibilityReport.as_record`) as text."""
    def value(x: float | None, spec: str) -> str:
        return "-" if x is None else format(x, spec)

    verdict = "feasible" if record["feasible"] else "INFEASIBLE"
    lines = ["", f"  physical feasibility: {verdict}, score {value(record['score'], '.3f')} "
                 f"(share of frames within the servo limits and needing no hand of god)",
             f"  {'actuator':<22} {'limit':>7} {'peak':>7} {'rms':>7} {'over':>7}  [N·m, share]"]
    for name, row in record["per_actuator"].items():
        lines.append(f"  {name:<22} {value(row['limit_nm'], '7.2f')} "
                     f"{value(row['peak_nm'], '7.2f')} {value(row['rms_nm'], '7.2f')} "
                     f"{value(row['over_limit_share'], '7.1%')}")
    lines += [
        f"  hand of god: force max {value(record['residual_force_max_n'], '.2f')} N, rms "
        f"{value(record['residual_force_rms_n'], '.2f')} N; torque max "
        f"{value(record['residual_torque_max_nm'], '.3f')} N·m, rms "
        f"{value(record['residual_torque_rms_nm'], '.3f')} N·m; "
        f"{value(record['residual_share'], '.1%')} of frames over the thresholds, "
        f"{value(record.get('residual_weight_share'), '.1%')} of the weight on average",
        f"  centre of pressure outside the support polygon in "
        f"{value(record['cop_outside_share'], '.1%')} of supported frames (worst margin "
        f"{value(record['cop_margin_min_m'], '.3f')} m)"]
    for phase, row in record.get("infeasible_by_phase", {}).items():
        causes = ", ".join(f"{c} {n}" for c, n in list(row["causes"].items())[:4])
        lines.append(f"    {phase:<24} {row['infeasible']:>5}/{row['frames']:<5} infeasible"
                     f"{': ' + causes if causes else ''}")
    return lines


def _names(data: MergedDataset) -> list[str]:
    try:
        return list(json.loads(data.layout)["names"])
    except (KeyError, ValueError):
        return [f"feature_{i}" for i in range(data.features.shape[1])]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m amp.inspect", description=__doc__)
    parser.add_argument("file", help="merged dataset or clip file (.h5)")
    parser.add_argument("--max-clips", type=int, default=50, help="clips to list")
    args = parser.parse_args(argv)
    try:
        print(describe(args.file, args.max_clips))
    except (AmpkitError, OSError) as exc:
        print(f"amp.inspect: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    from robots.errors import run_main

    sys.exit(run_main(main, "inspect"))
