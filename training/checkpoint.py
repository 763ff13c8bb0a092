"""Checkpoints (DESIGN 4.6): the whole :class:`TrainState` pytree plus metadata, written atomically.

A checkpoint is a directory ``<run>/checkpoints/iter_NNNNNNNN/`` holding

- ``state.npz``: every leaf of the state pytree (parameters, optimizer states, normalizers,
  replay buffer, environment states, PRNG key, iteration) as raw arrays, in flatten order;
- ``meta.json``: config, dataset ``content_sha256``, robot, git commit, iteration, env steps,
  JAX version and device, and the path/shape/dtype of every leaf (checked on load).

The directory is written under a temporary name and renamed into place, so a crash never leaves
a checkpoint that looks whole. Restoring needs a template state of the same structure (built
from the same config), whose leaves are replaced; that reproduces the run bit for bit on the
same device.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import jax
import numpy as np

from robots.errors import AmpkitError

PREFIX = "iter_"
STATE_FILE = "state.npz"
META_FILE = "meta.json"


class CheckpointError(AmpkitError, ValueError):
    """A checkpoint that is missing, incomplete or does not fit the run."""


def checkpoint_name(iteration: int) -> str:
    return f"{PREFIX}{iteration:08d}"


def list_checkpoints(directory: str | Path) -> list[Path]:
    """Complete checkpoints in ``directory``, oldest first."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    found = [p for p in directory.iterdir()
             if p.is_dir() and p.name.startswith(PREFIX) and (p / META_FILE).exists()]
    return sorted(found, key=lambda p: p.name)


def latest_checkpoint(directory: str | Path) -> Path | None:
    found = list_checkpoints(directory)
    return found[-1] if found else None


def _leaf_path(path: tuple[Any, ...]) -> str:
    return jax.tree_util.keystr(path)


def _to_host(leaf: Any) -> np.ndarray:
    if jax.dtypes.issubdtype(getattr(leaf, "dtype", None), jax.dtypes.prng_key):
        leaf = jax.random.key_data(leaf)
    return np.asarray(jax.device_get(leaf))


def git_commit(cwd: str | Path | None = None) -> str:
    """``HEAD``'s commit hash, suffixed ``-dirty`` when tracked files changed; ``unknown``
    outside a git checkout."""
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True,
                              text=True, check=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=cwd, capture_output=True, text=True, check=True,
                               timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{head}-dirty" if dirty else head


def save_checkpoint(directory: str | Path, state: Any, iteration: int, meta: dict[str, Any],
                    keep: int = 3) -> Path:
    """Write ``state`` as checkpoint ``iteration`` and keep only the ``keep`` newest.

    Returns:
        The checkpoint directory.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    flat = jax.tree_util.tree_flatten_with_path(state)[0]
    arrays = {f"leaf_{i:05d}": _to_host(leaf) for i, (_, leaf) in enumerate(flat)}
    leaves = [{"path": _leaf_path(path), "shape": list(arrays[f"leaf_{i:05d}"].shape),
               "dtype": str(arrays[f"leaf_{i:05d}"].dtype)}
              for i, (path, _) in enumerate(flat)]
    meta = {**meta, "iteration": iteration, "leaves": leaves}
    final = directory / checkpoint_name(iteration)
    tmp = directory / f".tmp-{final.name}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        np.savez(tmp / STATE_FILE, **arrays)
        (tmp / META_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True, default=str))
        _replace_dir(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    for old in list_checkpoints(directory)[:-keep] if keep > 0 else []:
        shutil.rmtree(old, ignore_errors=True)
    return final


def _replace_dir(src: Path, dst: Path) -> None:
    """Rename ``src`` onto ``dst``; an existing ``dst`` is moved aside first, then removed."""
    if dst.exists():
        trash = dst.with_name(f".old-{dst.name}-{os.getpid()}")
        os.replace(dst, trash)
        os.replace(src, dst)
        shutil.rmtree(trash, ignore_errors=True)
    else:
        os.replace(src, dst)


def read_meta(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    meta_file = path / META_FILE
    if not meta_file.exists():
        raise CheckpointError(f"{path}: not a checkpoint (no {META_FILE})")
    return json.loads(meta_file.read_text())


def load_checkpoint(path: str | Path, template: Any) -> tuple[Any, dict[str, Any]]:
    """Restore a state with ``template``'s structure from checkpoint ``path``.

    ``template`` may hold arrays or ``jax.ShapeDtypeStruct`` leaves (``jax.eval_shape``).

    Raises:
        CheckpointError: missing files, or leaves whose path, shape or dtype differ from the
            template (a different config or environment).
    """
    path = Path(path)
    meta = read_meta(path)
    flat, treedef = jax.tree_util.tree_flatten_with_path(template)
    recorded = meta["leaves"]
    if len(recorded) != len(flat):
        raise CheckpointError(f"{path}: holds {len(recorded)} state leaves, this run has "
                              f"{len(flat)}; was it written with another config or env?")
    leaves = []
    with np.load(path / STATE_FILE) as stored:
        for i, ((key, like), record) in enumerate(zip(flat, recorded, strict=True)):
            leaves.append(_restore_leaf(stored[f"leaf_{i:05d}"], like, key, record, path))
    return jax.tree_util.tree_unflatten(treedef, leaves), meta


def _restore_leaf(value: np.ndarray, like: Any, key: tuple[Any, ...], record: dict[str, Any],
                  path: Path) -> Any:
    name = _leaf_path(key)
    is_prng_key = jax.dtypes.issubdtype(like.dtype, jax.dtypes.prng_key)
    stored_like = jax.eval_shape(jax.random.key_data, like) if is_prng_key else like
    shape, dtype = tuple(stored_like.shape), np.dtype(stored_like.dtype)
    if record["path"] != name or value.shape != shape or value.dtype != dtype:
        raise CheckpointError(
            f"{path}: leaf {record['path']} {tuple(value.shape)} {value.dtype} does not match "
            f"this run's {name} {shape} {dtype}")
    if is_prng_key:
        return jax.random.wrap_key_data(value)
    return value
