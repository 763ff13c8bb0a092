"""``python -m amp.inspect FILE``: what an AMP dataset (merged or single clip) holds.

Prints the header (robot, FPS, content hash), the clips with their durations and weights, and
per-feature statistics grouped by the named slices of the layout.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

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
    lines += _clip_table(data, max_clips)
    lines += _feature_table(data)
    return "\n".join(lines)


def _clip_table(data: MergedDataset, max_clips: int) -> list[str]:
    width = max(12, *(len(n) for n in data.clip_name[:max_clips]))
    lines = ["", f"  {'clip':<{width}} {'frames':>7} {'seconds':>8} {'weight':>8}"]
    for i, name in enumerate(data.clip_name[:max_clips]):
        length = int(data.clip_length[i])
        lines.append(f"  {name:<{width}} {length:>7} {(length - 1) / data.fps:>8.2f} "
                     f"{data.clip_weight[i]:>8.4f}")
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
    sys.exit(main())
