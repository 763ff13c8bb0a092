"""Checkpoints (DESIGN 4.6): the whole :class:`TrainState` pytree plus metadata, written atomically.

A checkpoint is a directory ``<run>/checkpoints/iter_NNNNNNNN/`` holding

- ``state.npz``: every leaf of the state pytree (parameters, optimizer states, normalizers,
  replay buffer, environment states, PRNG key, iteration) as raw arrays, in flatten order;
- ``meta.json``: config, dataset ``content_sha256``, robot, git commit, iteration, env steps,
  JAX version and device, and the path/shape/dtype of every leaf (checked on load).

- ``SHA256SUMS``: the SHA-256 of both files, checked on load (with the parameters' finiteness),
  so a truncated, bit-flipped or NaN checkpoint is refused by name and resume, evaluation and
  export fall back to the newest good one, saying so (:func:`newest_good_checkpoint`).

The directory is written under a temporary name (files fsynced) and renamed into place, so a
crash never leaves a checkpoint that looks whole. ``meta.json`` records the ``run_id`` of the
run that wrote it; pruning to the newest ``keep`` only ever counts (and deletes) checkpoints of
the same run. Restoring needs a template state of the same structure (built
from the same config), whose leaves are replaced; that reproduces the run bit for bit on the
same device.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import jax
import numpy as np

from robots.errors import AmpkitError, StorageError
from robots.io import file_sha256, fsync_directory, storage_errors, write_bytes

PREFIX = "iter_"
STATE_FILE = "state.npz"
META_FILE = "meta.json"
SUMS_FILE = "SHA256SUMS"


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
    """Write ``state`` as checkpoint ``iteration``; keep only this run's ``keep`` newest.

    ``meta["run_id"]`` (if given) names the run: pruning ignores checkpoints of other runs.

    Returns:
        The checkpoint directory.
    Raises:
        StorageError: the checkpoint could not be written (full or read-only disk); the
            message names the newest complete checkpoint still on disk.
    """
    directory = Path(directory)
    flat = jax.tree_util.tree_flatten_with_path(state)[0]
    arrays = {f"leaf_{i:05d}": _to_host(leaf) for i, (_, leaf) in enumerate(flat)}
    leaves = [{"path": _leaf_path(path), "shape": list(arrays[f"leaf_{i:05d}"].shape),
               "dtype": str(arrays[f"leaf_{i:05d}"].dtype)}
              for i, (path, _) in enumerate(flat)]
    meta = {**meta, "iteration": iteration, "leaves": leaves}
    final = directory / checkpoint_name(iteration)
    tmp = directory / f".tmp-{final.name}-{os.getpid()}"
    try:
        with storage_errors(final):
            directory.mkdir(parents=True, exist_ok=True)
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir()
            try:
                _write_checkpoint_files(tmp, arrays, meta)
                _replace_dir(tmp, final)
                fsync_directory(directory)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
    except StorageError as exc:
        newest = latest_checkpoint(directory)
        kept = f"newest complete checkpoint: {newest}" if newest else "no checkpoint on disk"
        raise StorageError(final, f"{exc.cause}; {kept}", exc.errno) from exc
    if keep > 0:
        run_id = meta.get("run_id")
        same_run = [p for p in list_checkpoints(directory) if _run_id(p) == run_id]
        for old in same_run[:-keep]:
            shutil.rmtree(old, ignore_errors=True)
    return final


def _write_checkpoint_files(folder: Path, arrays: dict[str, np.ndarray],
                            meta: dict[str, Any]) -> None:
    """state.npz, meta.json and their checksums, each written with plain (fsynced) writes."""
    state_path = folder / STATE_FILE
    with open(state_path, "wb") as stream:
        np.savez(stream, **arrays)
        stream.flush()
        os.fsync(stream.fileno())
    meta_bytes = json.dumps(meta, indent=2, sort_keys=True, default=str).encode()
    write_bytes(folder / META_FILE, meta_bytes)
    sums = {STATE_FILE: file_sha256(state_path), META_FILE: hashlib.sha256(meta_bytes).hexdigest()}
    write_bytes(folder / SUMS_FILE, "".join(f"{digest}  {name}\n"
                                            for name, digest in sums.items()).encode())
    for name in (META_FILE, SUMS_FILE):
        fd = os.open(folder / name, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _run_id(path: Path) -> Any:
    try:
        return json.loads((path / META_FILE).read_text()).get("run_id")
    except (OSError, ValueError, AttributeError):
        return None


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
    """A checkpoint's ``meta.json``.

    Raises:
        CheckpointError: missing, unreadable or not a JSON object (the file is named).
    """
    path = Path(path)
    meta_file = path / META_FILE
    if not meta_file.exists():
        raise CheckpointError(f"{path}: not a checkpoint (no {META_FILE})")
    try:
        meta = json.loads(meta_file.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise CheckpointError(f"{meta_file}: damaged ({type(exc).__name__}: {exc})") from None
    if not isinstance(meta, dict) or not isinstance(meta.get("leaves"), list):
        raise CheckpointError(f"{meta_file}: damaged (not a checkpoint record)")
    return meta


def verify_files(path: str | Path) -> None:
    """Check the files of checkpoint ``path`` against its ``SHA256SUMS``.

    Checkpoints written before checksums existed (no ``SHA256SUMS``) pass; their content is
    still checked when loaded.

    Raises:
        CheckpointError: a file is missing or its bytes differ from the recorded checksum.
    """
    path = Path(path)
    sums_file = path / SUMS_FILE
    if not sums_file.exists():
        return
    try:
        lines = sums_file.read_text().splitlines()
        recorded = dict(reversed(line.split(maxsplit=1)) for line in lines if line.strip())
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise CheckpointError(f"{sums_file}: damaged ({exc})") from None
    for name in (STATE_FILE, META_FILE):
        file = path / name
        if name not in recorded:
            raise CheckpointError(f"{sums_file}: damaged (no checksum for {name})")
        if not file.exists():
            raise CheckpointError(f"{file}: missing")
        if file_sha256(file) != recorded[name].strip():
            raise CheckpointError(f"{file}: damaged (its SHA-256 differs from the one "
                                  f"recorded when it was written: truncated or corrupted)")


def check_finite_leaves(path: Path, named: list[tuple[str, np.ndarray]]) -> None:
    """Raise CheckpointError naming the first leaves holding NaN or inf."""
    bad = [name for name, value in named
           if np.issubdtype(value.dtype, np.floating) and not np.all(np.isfinite(value))]
    if bad:
        raise CheckpointError(f"{path / STATE_FILE}: non-finite values (NaN/inf) in "
                              f"{', '.join(bad[:5])}{' …' if len(bad) > 5 else ''}; "
                              "this checkpoint cannot be used")


def read_state_arrays(path: Path) -> dict[str, np.ndarray]:
    """Every array of ``state.npz`` (``leaf_NNNNN`` -> array).

    Raises:
        CheckpointError: the file is missing or not a readable npz (truncated, corrupted).
    """
    file = path / STATE_FILE
    try:
        with np.load(file) as stored:
            return {name: stored[name] for name in stored.files}
    except FileNotFoundError:
        raise CheckpointError(f"{file}: missing") from None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError) as exc:
        raise CheckpointError(f"{file}: damaged ({type(exc).__name__}: {exc})") from None


def verify_checkpoint(path: str | Path) -> dict[str, Any]:
    """Checksums, metadata, and finite values of every floating leaf of checkpoint ``path``.

    Returns:
        Its metadata.
    Raises:
        CheckpointError: the first problem, naming the file.
    """
    path = Path(path)
    verify_files(path)
    meta = read_meta(path)
    arrays = read_state_arrays(path)
    records = meta["leaves"]
    if len(records) != len(arrays):
        raise CheckpointError(f"{path / STATE_FILE}: damaged ({len(arrays)} arrays, "
                              f"{META_FILE} records {len(records)})")
    check_finite_leaves(path, [(record.get("path", f"leaf {i}"), arrays[f"leaf_{i:05d}"])
                               for i, record in enumerate(records)])
    return meta


def newest_good_checkpoint(directory: str | Path,
                           warn: bool = True) -> tuple[Path | None, list[tuple[Path, str]]]:
    """The newest checkpoint in ``directory`` that passes :func:`verify_checkpoint`.

    Args:
        directory: A ``checkpoints/`` folder.
        warn: Print each skipped checkpoint and the reason to stderr.
    Returns:
        The checkpoint (None when none is good) and the (checkpoint, reason) pairs skipped.
    """
    skipped: list[tuple[Path, str]] = []
    for candidate in reversed(list_checkpoints(directory)):
        try:
            verify_checkpoint(candidate)
        except CheckpointError as exc:
            skipped.append((candidate, str(exc)))
            if warn:
                print(f"warning: skipping checkpoint {candidate}: {exc}", file=sys.stderr)
            continue
        if skipped and warn:
            print(f"warning: using {candidate}, the newest good checkpoint", file=sys.stderr)
        return candidate, skipped
    return None, skipped


def require_good_checkpoint(directory: str | Path) -> Path:
    """:func:`newest_good_checkpoint`, or a CheckpointError naming why each one failed."""
    good, skipped = newest_good_checkpoint(directory)
    if good is None:
        reasons = "; ".join(reason for _, reason in skipped)
        raise CheckpointError(f"{directory}: no usable checkpoint"
                              + (f" ({reasons})" if reasons else ""))
    return good


def load_checkpoint(path: str | Path, template: Any) -> tuple[Any, dict[str, Any]]:
    """Restore a state with ``template``'s structure from checkpoint ``path``.

    ``template`` may hold arrays or ``jax.ShapeDtypeStruct`` leaves (``jax.eval_shape``).

    Raises:
        CheckpointError: missing or damaged files (checksums), non-finite values, or leaves
            whose path, shape or dtype differ from the template (another config or env).
    """
    path = Path(path)
    meta = read_meta(path)
    flat, treedef = jax.tree_util.tree_flatten_with_path(template)
    recorded = meta["leaves"]
    if len(recorded) != len(flat):
        raise CheckpointError(_leaf_set_mismatch(path, [r["path"] for r in recorded],
                                                 [_leaf_path(key) for key, _ in flat]))
    values = _stored_leaves(path, meta)
    check_finite_leaves(path, [(record["path"], value)
                               for record, value in zip(recorded, values, strict=True)])
    leaves = [_restore_leaf(value, like, key, record, path)
              for (key, like), record, value in zip(flat, recorded, values, strict=True)]
    return jax.tree_util.tree_unflatten(treedef, leaves), meta


def _stored_leaves(path: Path, meta: dict[str, Any]) -> list[np.ndarray]:
    """The checkpoint's arrays in the order ``meta`` records them, after the checksums."""
    verify_files(path)
    stored = read_state_arrays(path)
    names = [f"leaf_{i:05d}" for i in range(len(meta["leaves"]))]
    if sorted(stored) != names:
        raise CheckpointError(f"{path / STATE_FILE}: damaged ({len(stored)} arrays, "
                              f"{META_FILE} records {len(names)})")
    return [stored[name] for name in names]


def _leaf_set_mismatch(path: Path, stored: list[str], expected: list[str]) -> str:
    """Why a checkpoint's leaves do not fit this run, naming a few of the differing ones."""
    stored_set, expected_set = set(stored), set(expected)
    missing = [name for name in expected if name not in stored_set]
    extra = [name for name in stored if name not in expected_set]

    def few(names: list[str]) -> str:
        return ", ".join(names[:4]) + (f" (+{len(names) - 4} more)" if len(names) > 4 else "")

    parts = [f"{path}: holds {len(stored)} state leaves, this run has {len(expected)}"]
    if missing:
        parts.append(f"it lacks {few(missing)}")
    if extra:
        parts.append(f"this run has no {few(extra)}")
    return ("; ".join(parts) + ". It was written by another ampkit version, config or env: "
            "resuming needs the same state; `--init-from` starts a new run from it instead")


def load_matching(path: str | Path, template: Any) -> tuple[Any, dict[str, Any], list[str]]:
    """Warm start: ``template`` with every leaf the checkpoint holds under the same path
    replaced by the stored value; leaves it does not hold keep the template's.

    For continuing a run under changed settings (a new reward term, an action filter): the
    networks, normalizers, optimizer and replay buffer carry over, a new piece of
    environment state starts fresh.

    Returns:
        (state, the checkpoint's meta, the paths of the leaves kept from ``template``).
    Raises:
        CheckpointError: damaged files, non-finite values, or a leaf stored under one of the
            template's paths with another shape or dtype (another network size).
    """
    path = Path(path)
    meta = read_meta(path)
    values = _stored_leaves(path, meta)
    by_path = {record["path"]: (i, record) for i, record in enumerate(meta["leaves"])}
    flat, treedef = jax.tree_util.tree_flatten_with_path(template)
    leaves, kept = [], []
    for key, like in flat:
        name = _leaf_path(key)
        if name not in by_path:
            leaves.append(like)
            kept.append(name)
            continue
        i, record = by_path[name]
        value = values[i]
        check_finite_leaves(path, [(name, value)])
        leaves.append(_restore_leaf(value, like, key, record, path))
    return jax.tree_util.tree_unflatten(treedef, leaves), meta, kept


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
