"""Run directories: one run per directory, refused rather than mixed.

A fresh run into a directory that already holds a run (checkpoints, TensorBoard events) would
mix two runs: the keep-newest pruning would count the old run's checkpoints and
``metrics/train.json`` could point at either. :func:`prepare_run_dir` refuses that unless the
caller asked to continue (``--resume``) or to replace (``--overwrite``) it; ``run_id`` names a
run so checkpoint pruning only ever counts the current run's checkpoints.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

from robots.errors import AmpkitError
from robots.io import is_stale_temp, storage_errors
from robots.lock import DIRECTORY_LOCK_NAME


class RunDirError(AmpkitError, ValueError):
    """A fresh run into a directory that already holds another run."""


def existing_content(out: Path) -> list[Path]:
    """What ``out`` holds besides this layer's lock and temporaries of killed runs."""
    if not out.is_dir():
        return []
    return sorted(p for p in out.iterdir()
                  if p.name != DIRECTORY_LOCK_NAME and not is_stale_temp(p)
                  and not (p.is_dir() and not any(p.iterdir())))


def prepare_run_dir(out: str | Path, resume: bool, overwrite: bool) -> list[Path]:
    """Check (and with ``overwrite`` empty) the run directory before a run starts.

    Args:
        out: The run directory.
        resume: The run continues the one in ``out``: nothing to check here.
        overwrite: Delete what ``out`` holds (the user asked to replace that run).
    Returns:
        The paths removed (with ``overwrite``).
    Raises:
        RunDirError: a fresh run into a non-empty ``out`` without ``overwrite``.
    """
    out = Path(out)
    if resume:
        return []
    found = existing_content(out)
    if not found:
        return []
    if not overwrite:
        listing = ", ".join(p.name + ("/" if p.is_dir() else "") for p in found[:5])
        raise RunDirError(f"{out}: already holds a run ({listing}); pass --resume to continue "
                          f"it, --overwrite to replace it, or choose another --out")
    for path in found:
        with storage_errors(path):
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()
    return found


RUN_ID_IGNORED_KEYS = ("num_iterations", "checkpoint_every", "keep_checkpoints", "log_every",
                       "eval_every", "eval_envs", "eval_steps")
"""Config keys a resumed run may change (``training.train.RUN_LENGTH_KEYS``): not part of the id."""


def run_id(config: dict[str, Any], dataset_sha256: str) -> str:
    """A deterministic name of a run: its config (less the run-length keys) and its data.

    Deterministic, so a killed and re-run training writes byte-identical checkpoints.
    """
    settings = {k: v for k, v in config.items() if k not in RUN_ID_IGNORED_KEYS}
    text = json.dumps({"config": settings, "dataset": dataset_sha256}, sort_keys=True,
                      default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]
