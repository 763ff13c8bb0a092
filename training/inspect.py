"""Print what a checkpoint holds: ``python -m training.inspect PATH``.

PATH is a checkpoint directory, a ``checkpoints/`` folder or a run directory (its newest
checkpoint). Only ``meta.json`` is read (no arrays are loaded), so this is quick on any machine:
iteration, environment steps, robot, git commit, the dataset's content hash, the training
config, and per network the shape of every parameter and the parameter counts.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from robots.errors import AmpkitError
from training import checkpoint as ckpt

PARTS = (
    ("policy", ".params['policy']"),
    ("value", ".params['value']"),
    ("discriminator", ".disc_params"),
    ("obs_normalizer", ".obs_stats"),
    ("critic_obs_normalizer", ".critic_obs_stats"),
    ("amp_normalizer", ".amp_stats"),
    ("policy_optimizer", ".opt_state"),
    ("discriminator_optimizer", ".disc_opt_state"),
    ("replay_buffer", ".replay"),
    ("env_state", ".env_state"),
)
"""(report name, leaf-path prefix in the trainer's TrainState), in report order."""
NETWORKS = ("policy", "value", "discriminator")


@dataclass(frozen=True)
class Part:
    """One part of the state: its leaves (path below the prefix, shape) and element count."""

    name: str
    leaves: tuple[tuple[str, tuple[int, ...]], ...]

    @property
    def count(self) -> int:
        return sum(math.prod(shape) for _, shape in self.leaves)


def readable(key_path: str) -> str:
    """``['params']['MLP_0']['out']['bias']`` -> ``params/MLP_0/out/bias``."""
    parts = re.findall(r"\['([^']*)'\]|\[(\d+)\]|\.(\w+)", key_path)
    return "/".join(next(p for p in groups if p) for groups in parts) or "(value)"


def group_leaves(meta: dict[str, Any]) -> list[Part]:
    """The recorded state leaves grouped into :data:`PARTS` (anything else under ``other``)."""
    grouped: dict[str, list[tuple[str, tuple[int, ...]]]] = {name: [] for name, _ in PARTS}
    grouped["other"] = []
    for record in meta.get("leaves", []):
        path, shape = record["path"], tuple(record["shape"])
        for name, prefix in PARTS:
            if path.startswith(prefix):
                grouped[name].append((readable(path[len(prefix):]), shape))
                break
        else:
            grouped["other"].append((path, shape))
    return [Part(name, tuple(leaves)) for name, leaves in grouped.items() if leaves]


def describe(path: str | Path) -> str:
    """The report :func:`main` prints."""
    from training.policy import resolve_checkpoint

    directory = resolve_checkpoint(path)
    meta = ckpt.read_meta(directory)
    dataset = meta.get("dataset", {})
    lines = [
        f"checkpoint: {directory}",
        f"iteration: {meta.get('iteration')}",
        f"env_steps: {meta.get('env_steps')}",
        f"robot: {meta.get('robot')}",
        f"git_commit: {meta.get('git_commit')}",
        f"jax_version: {meta.get('jax_version')}",
        f"devices: {', '.join(meta.get('devices', []))}",
        f"dataset: {dataset.get('path')}",
        f"dataset_content_sha256: {dataset.get('content_sha256')}",
        "",
        "config:",
        *("  " + line for line in yaml.safe_dump(meta.get("config", {}), sort_keys=True,
                                                 default_flow_style=None).splitlines()),
        "",
        "state:",
    ]
    parts = group_leaves(meta)
    for part in parts:
        lines.append(f"  {part.name}: {part.count:,} numbers in {len(part.leaves)} arrays")
        if part.name in NETWORKS:
            lines += [f"    {leaf} {list(shape)}" for leaf, shape in part.leaves]
    networks = {p.name: p.count for p in parts if p.name in NETWORKS}
    lines += ["", "parameters: " + ", ".join(f"{k} {v:,}" for k, v in networks.items())
              + f"; total {sum(networks.values()):,}"]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.inspect",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("path", type=Path, help="checkpoint, checkpoints/ folder or run dir")
    args = parser.parse_args(argv)
    try:
        print(describe(args.path))
    except (AmpkitError, OSError, json.JSONDecodeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    from robots.errors import run_main

    sys.exit(run_main(main, "inspect"))
