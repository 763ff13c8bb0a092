"""The AMP clip file: one converted clip as HDF5 (output of ``pipeline.convert``).

Datasets: ``features`` [T, 29] float32, ``qpos`` [T, nq], ``qvel`` [T, nv], ``contact_pos``
[T, 4, 3] (float64). Attributes: ``schema_version``, ``fps``, ``robot``, ``layout`` (JSON, see
:func:`amp.features.layout_record`), ``source`` (robot-motion file), ``source_sha256``,
``convert_params`` (JSON) and ``provenance`` (JSON: name, mirrored, source fps, the human clip
the motion came from and its hash). Checked clips also hold ``feasibility`` (JSON, the
physical feasibility record of :mod:`amp.feasibility`) and ``feasible_frame`` [T] uint8 (the
frames the robot can physically do). Files are byte-identical for identical content (no
timestamps), so their hashes are meaningful provenance. Writing and the merge's reading go
through :mod:`amp.h5io` (lean low-level HDF5); any HDF5 reader sees ordinary datasets and
attributes.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from amp.convert import AmpClip
from amp.features import FEATURE_DIM, layout_record
from robots.errors import InputFileError
from robots.h5io import LeanReader, open_error_text, write_file
from robots.io import atomic_path

CLIP_SCHEMA_VERSION = 1
_DATASETS = ("features", "qpos", "qvel", "contact_pos")
_ATTRS = ("schema_version", "fps", "robot", "layout", "source", "source_sha256",
          "convert_params", "provenance")


class ClipFileError(InputFileError):
    """An AMP clip file that is unreadable or breaks the schema."""


@lru_cache(maxsize=16)
def layout_json(amp_joint_names: tuple[str, ...]) -> str:
    """Canonical JSON text of the feature layout (what files store and loaders compare)."""
    return json.dumps(layout_record(amp_joint_names), sort_keys=True, separators=(",", ":"))


def write_clip(path: str | Path, clip: AmpClip, amp_joint_names: tuple[str, ...]) -> None:
    """Write ``clip`` to ``path`` atomically and byte-deterministically."""
    provenance = {
        "name": clip.name, "mirrored": clip.mirrored, "source_fps": clip.source_fps,
        "motion_source": clip.motion_source, "motion_source_sha256": clip.motion_source_sha256,
        "gate_flags": list(clip.gate_flags),
    }
    datasets = {
        "features": np.asarray(clip.features, np.float32),
        "qpos": np.asarray(clip.qpos, np.float64),
        "qvel": np.asarray(clip.qvel, np.float64),
        "contact_pos": np.asarray(clip.contact_pos, np.float64),
    }
    if clip.feasible_frame is not None:
        datasets["feasible_frame"] = np.asarray(clip.feasible_frame, np.uint8)
    attrs = {
        "schema_version": CLIP_SCHEMA_VERSION,
        "fps": float(clip.fps),
        "robot": clip.robot,
        "layout": layout_json(tuple(amp_joint_names)),
        "source": str(clip.source),
        "source_sha256": clip.source_sha256,
        "convert_params": json.dumps(clip.params, sort_keys=True),
        "provenance": json.dumps(provenance, sort_keys=True),
    }
    if clip.feasibility is not None:
        attrs["feasibility"] = json.dumps(clip.feasibility, sort_keys=True)
    with atomic_path(path) as tmp:
        write_file(tmp, datasets, attrs)


def read_clip(path: str | Path) -> AmpClip:
    """Read a whole clip file (all arrays and attributes).

    Raises:
        ClipFileError: unreadable, missing a dataset or attribute, or wrong shapes.
    """
    path = Path(path)
    with _open(path) as f:
        _check_present(path, f, _DATASETS, _ATTRS)
        provenance = json.loads(f.attrs["provenance"])
        clip = AmpClip(
            name=str(provenance.get("name", path.stem)),
            fps=float(f.attrs["fps"]),
            features=f["features"][()],
            qpos=f["qpos"][()],
            qvel=f["qvel"][()],
            contact_pos=f["contact_pos"][()],
            robot=str(f.attrs["robot"]),
            mirrored=bool(provenance.get("mirrored", False)),
            source=str(f.attrs["source"]),
            source_sha256=str(f.attrs["source_sha256"]),
            source_fps=float(provenance.get("source_fps", 0.0)),
            motion_source=str(provenance.get("motion_source", "")),
            motion_source_sha256=str(provenance.get("motion_source_sha256", "")),
            gate_flags=tuple(provenance.get("gate_flags", ())),
            params=json.loads(f.attrs["convert_params"]),
        )
        if "feasibility" in f.attrs:
            clip.feasibility = json.loads(f.attrs["feasibility"])
        if "feasible_frame" in f:
            clip.feasible_frame = f["feasible_frame"][()].astype(bool)
    _check_features(path, clip.features)
    return clip


def read_clip_features(path: str | Path) -> tuple[np.ndarray, dict[str, Any]]:
    """Only what merging needs: features [T, 29] float32 and the header attributes.

    Returns:
        features and a dict with ``schema_version``, ``fps``, ``robot``, ``layout`` (raw JSON),
        ``contact_rule`` (the ContactRule fields the contacts were labelled with),
        ``gate_flags`` and ``feasibility_score`` (NaN when the clip was not checked).
    """
    path = Path(path)
    try:
        with LeanReader(path) as reader:
            header = {"schema_version": int(reader.attr("schema_version")),
                      "fps": float(reader.attr("fps")), "robot": str(reader.attr("robot")),
                      "layout": str(reader.attr("layout")),
                      "contact_rule": json.loads(str(reader.attr("convert_params")))["contact"],
                      "gate_flags": json.loads(str(reader.attr("provenance"))).get(
                          "gate_flags", []),
                      "feasibility_score": _feasibility_score(reader)}
            if header["schema_version"] != CLIP_SCHEMA_VERSION:
                raise ClipFileError(path, f"schema_version {header['schema_version']}, this "
                                          f"ampkit reads {CLIP_SCHEMA_VERSION}")
            features = reader.dataset("features")
    except KeyError as exc:
        raise ClipFileError(path, f"not an AMP clip file: missing {exc.args[0]!r}") from None
    except OSError as exc:
        raise ClipFileError(path, f"cannot open as HDF5 ({open_error_text(exc)})") from exc
    _check_features(path, features)
    return features, header


def read_clip_states(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """The clip's reference states: qpos [T, nq] and qvel [T, nv] (MuJoCo convention).

    Raises:
        ClipFileError: unreadable, missing, non-finite, or not aligned with the features.
    """
    path = Path(path)
    try:
        with LeanReader(path) as reader:
            qpos, qvel = reader.dataset("qpos"), reader.dataset("qvel")
            frames = reader.dataset("features").shape[0]
    except KeyError as exc:
        raise ClipFileError(path, f"not an AMP clip file: missing {exc.args[0]!r}") from None
    except OSError as exc:
        raise ClipFileError(path, f"cannot open as HDF5 ({open_error_text(exc)})") from exc
    if qpos.ndim != 2 or qvel.ndim != 2 or qpos.shape[0] != frames or qvel.shape[0] != frames:
        raise ClipFileError(path, f"qpos {qpos.shape} / qvel {qvel.shape} are not aligned with "
                                  f"the {frames} feature frames")
    if not (np.all(np.isfinite(qpos)) and np.all(np.isfinite(qvel))):
        raise ClipFileError(path, "qpos/qvel contain a non-finite value")
    return qpos, qvel


def _feasibility_score(reader: LeanReader) -> float:
    """The clip's physical feasibility score (NaN when the clip was not checked)."""
    if not reader.has_attr("feasibility"):
        return float("nan")
    score = json.loads(str(reader.attr("feasibility"))).get("score")
    return float("nan") if score is None else float(score)


def _open(path: Path) -> h5py.File:
    try:
        return h5py.File(path, "r")
    except (OSError, ValueError) as exc:
        raise ClipFileError(path, f"cannot open as HDF5 ({open_error_text(exc)})") from exc


def _check_present(path: Path, f: h5py.File, datasets: tuple[str, ...],
                   attrs: tuple[str, ...]) -> None:
    missing = [d for d in datasets if d not in f]
    if missing:
        raise ClipFileError(path, f"missing dataset(s) {missing}")
    missing = [a for a in attrs if a not in f.attrs]
    if missing:
        raise ClipFileError(path, f"missing attribute(s) {missing}")


def _check_features(path: Path, features: np.ndarray) -> None:
    if features.ndim != 2 or features.shape[1] != FEATURE_DIM:
        raise ClipFileError(
            path, f"features has shape {features.shape}, expected [T, {FEATURE_DIM}]")
    if features.shape[0] < 2:
        raise ClipFileError(path, f"features has {features.shape[0]} frame(s), need at least 2")
    if not np.all(np.isfinite(features)):
        raise ClipFileError(path, "features contain a non-finite value")
