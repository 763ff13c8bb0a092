"""The merged AMP dataset (DESIGN 4.5): all clips' frames, a clip index, weights and statistics.

File layout (HDF5): ``features`` [N, 29] float32; ``clip_start`` [C] int64; ``clip_length``
[C] int64; ``clip_name`` [C] UTF-8 strings; ``clip_weight`` [C] float64 (sums to 1, the
probability of drawing a transition from that clip); ``mean`` [29], ``std`` [29] float32.
Schema 2 adds the reference states, aligned row for row with ``features``: ``qpos`` [N, nq] and
``qvel`` [N, nv] float32 (MuJoCo convention), the robot state an episode can start from
(reference-state initialization). Files merged from pipeline clips always hold them; a dataset
built from bare features (tests, synthetic benchmarks) may omit both. ``clip_feasibility``
[C] float64 is each clip's physical feasibility score (:mod:`amp.feasibility`; NaN: not
checked), present when the clips were checked; ``merge.feasibility`` may have folded it into
``clip_weight``.
Attributes: ``fps``, ``robot``, ``layout`` (JSON), ``schema_version``, ``content_sha256``,
``merge_params`` (JSON) and ``inputs`` (JSON list of the clip files with their sha256).

``content_sha256`` hashes exactly the data — features, reference states, clip names, lengths and
weights, layout, fps, robot, schema version — and no paths or timestamps, so it changes exactly
when the data does.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import h5py
import numpy as np

from amp.feasibility import FeasibilityPolicy, apply_policy
from amp.features import FEATURE_DIM, ContactRule
from robots.errors import AmpkitError, InputFileError
from robots.h5io import open_error_text, write_file
from robots.io import atomic_path

DATASET_SCHEMA_VERSION = 2
_SCHEMA_HISTORY = {
    1: "schema 1 predates the reference states (qpos/qvel per frame) that reference-state "
       "initialization starts episodes from; re-run merge (`dvc repro merge`) to upgrade it",
}
_DATASETS = ("features", "clip_start", "clip_length", "clip_name", "clip_weight", "mean", "std")
_ATTRS = ("fps", "robot", "layout", "schema_version", "content_sha256", "contact_rule")


class DatasetFileError(InputFileError):
    """A merged dataset file that is unreadable, breaks the schema, or does not fit the robot."""


class MergeError(AmpkitError, ValueError):
    """Clips that cannot be merged (none left, all weights zero, …)."""


INCLUDE_POLICIES = ("reject", "flag", "keep")
STATIC_FLAG = "not_locomotion"


def gated_out(gate_flags: list[str] | tuple[str, ...], include: str) -> str | None:
    """Why a clip with these retarget gate flags is left out under ``include`` (None: merged)."""
    if include == "reject" and gate_flags:
        return f"flagged by the retarget gates (merge.include: reject): {'; '.join(gate_flags)}"
    return None


def cap_static_weight(weights: np.ndarray, static: np.ndarray, cap: float) -> np.ndarray:
    """``weights`` [C] (sum 1) with the ``static`` [C] clips' total share scaled down to at
    most ``cap`` and the rest scaled up to fill; unchanged when under the cap or when every
    clip is static."""
    share = float(weights[static].sum())
    if share <= cap or share >= 1.0 or not static.any():
        return weights
    capped = weights.copy()
    capped[static] *= cap / share
    capped[~static] *= (1.0 - cap) / (1.0 - share)
    return capped


@dataclass(frozen=True)
class MergeConfig:
    """How clip files become one dataset.

    Attributes:
        weights: fnmatch pattern on the clip name → weight multiplier, tried in order; the
            first match applies (no match: 1). A clip's weight is its duration (transitions /
            fps) times its multiplier, normalized over all clips. 0 keeps a clip but never
            samples it.
        fps: Frame rate every clip must have [Hz].
        robot: Robot every clip must be for; None: the robot of the first readable clip.
        min_frames: Clips with fewer frames are rejected (a transition needs 2).
        include: What happens to clips the retarget gates flagged (``retarget.gates``):
            ``reject`` leaves them out, ``flag`` merges them and lists them in the metrics,
            ``keep`` merges them like any other clip.
        max_static_weight: Clips flagged ``not_locomotion`` (static or seated) together get
            at most this share of the sampling weight (a few long static clips and their
            mirrors must not dominate the data); 1 disables the cap.
        feasibility: What the clips' physical feasibility scores do to them
            (:class:`amp.feasibility.FeasibilityPolicy`: weight, drop or keep).
    """

    BOUNDS: ClassVar[dict[str, str]] = {"fps": "> 0", "min_frames": ">= 2"}

    weights: dict[str, float] = field(default_factory=dict)
    fps: float = 50.0
    robot: str | None = None
    min_frames: int = 2
    include: str = "flag"
    max_static_weight: float = 0.1
    feasibility: FeasibilityPolicy = FeasibilityPolicy()

    def __post_init__(self) -> None:
        if self.include not in INCLUDE_POLICIES:
            raise ValueError(f"merge.include {self.include!r}; valid: "
                             f"{', '.join(INCLUDE_POLICIES)}")
        if not 0.0 <= self.max_static_weight <= 1.0:
            raise ValueError(f"merge.max_static_weight must be in [0, 1], got "
                             f"{self.max_static_weight}")

    def as_record(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class MergedDataset:
    """A merged dataset in memory (numpy); see the module docstring for the fields."""

    features: np.ndarray
    clip_start: np.ndarray
    clip_length: np.ndarray
    clip_name: tuple[str, ...]
    clip_weight: np.ndarray
    mean: np.ndarray
    std: np.ndarray
    fps: float
    robot: str
    layout: str
    content_sha256: str
    schema_version: int = DATASET_SCHEMA_VERSION
    qpos: np.ndarray | None = None
    qvel: np.ndarray | None = None
    clip_feasibility: np.ndarray | None = None
    merge_params: dict[str, Any] = field(default_factory=dict)
    inputs: list[dict[str, Any]] = field(default_factory=list)
    contact_rule: dict[str, Any] = field(default_factory=lambda: asdict(ContactRule()))

    @property
    def num_frames(self) -> int:
        return int(self.features.shape[0])

    @property
    def num_clips(self) -> int:
        return len(self.clip_name)

    @property
    def has_reference_states(self) -> bool:
        """Whether ``qpos``/``qvel`` are present (needed for reference-state initialization)."""
        return self.qpos is not None and self.qvel is not None

    def clip_features(self, index: int) -> np.ndarray:
        """Frames of clip ``index``, [L, 29]."""
        start = int(self.clip_start[index])
        return self.features[start:start + int(self.clip_length[index])]


def weight_multiplier(name: str, patterns: dict[str, float]) -> float:
    """The multiplier of the first pattern that matches ``name`` (1 when none does)."""
    for pattern, multiplier in patterns.items():
        if fnmatch.fnmatchcase(name, pattern):
            return float(multiplier)
    return 1.0


def clip_weights(names: tuple[str, ...], lengths: np.ndarray, fps: float,
                 patterns: dict[str, float]) -> np.ndarray:
    """Normalized clip weights [C]: duration of transitions × pattern multiplier.

    Raises:
        MergeError: a negative multiplier, or every weight is zero.
    """
    multipliers = np.array([weight_multiplier(n, patterns) for n in names], dtype=np.float64)
    if np.any(multipliers < 0) or not np.all(np.isfinite(multipliers)):
        raise MergeError(f"weight multipliers must be finite and >= 0, got {patterns}")
    raw = (np.asarray(lengths, np.float64) - 1.0) / fps * multipliers
    total = raw.sum()
    if total <= 0:
        raise MergeError("every clip has weight 0; nothing could ever be sampled")
    return raw / total


def weighted_statistics(features: np.ndarray, clip_length: np.ndarray,
                        clip_weight: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation [29] of the frames as the sampler sees them.

    Each clip's weight is spread evenly over its frames, so a clip drawn twice as often counts
    twice as much. float64 accumulation, float32 result.
    """
    frame_weight = np.repeat(clip_weight / clip_length, clip_length)
    frame_weight = frame_weight / frame_weight.sum()
    values = features.astype(np.float64)
    mean = frame_weight @ values
    var = frame_weight @ (values - mean) ** 2
    return mean.astype(np.float32), np.sqrt(var).astype(np.float32)


def content_hash(features: np.ndarray, clip_name: tuple[str, ...], clip_length: np.ndarray,
                 clip_weight: np.ndarray, layout: str, fps: float, robot: str,
                 schema_version: int = DATASET_SCHEMA_VERSION,
                 qpos: np.ndarray | None = None, qvel: np.ndarray | None = None,
                 clip_feasibility: np.ndarray | None = None) -> str:
    """sha256 of the dataset's content (arrays' bytes, clip index, weights, layout)."""
    header = json.dumps({
        "schema_version": schema_version, "fps": float(fps), "robot": robot,
        "layout": json.loads(layout), "clip_name": list(clip_name),
        "clip_length": [int(n) for n in clip_length],
    }, sort_keys=True, separators=(",", ":"))
    digest = hashlib.sha256(header.encode())
    digest.update(b"\0weights\0")
    digest.update(np.ascontiguousarray(clip_weight, dtype="<f8").tobytes())
    digest.update(b"\0features\0")
    digest.update(np.ascontiguousarray(features, dtype="<f4").tobytes())
    for name, states in (("qpos", qpos), ("qvel", qvel)):
        if states is not None:
            digest.update(f"\0{name}\0".encode())
            digest.update(np.ascontiguousarray(states, dtype="<f4").tobytes())
    if clip_feasibility is not None:
        digest.update(b"\0clip_feasibility\0")
        digest.update(np.ascontiguousarray(clip_feasibility, dtype="<f8").tobytes())
    return digest.hexdigest()


def merge_features(clips: list[tuple[str, np.ndarray]], fps: float, robot: str, layout: str,
                   config: MergeConfig, inputs: list[dict[str, Any]] | None = None,
                   contact_rule: dict[str, Any] | None = None,
                   states: list[tuple[np.ndarray, np.ndarray]] | None = None,
                   gate_flags: list[list[str]] | None = None,
                   feasibility_scores: list[float] | None = None) -> MergedDataset:
    """Merge already validated clips (name, features [L, 29]) in the given order.

    ``contact_rule`` is the ContactRule (as a dict) every clip's contacts were labelled with;
    the simulator must label its contacts the same way (default: ``ContactRule()``).
    ``states`` gives each clip's (qpos [L, nq], qvel [L, nv]) reference states, in the same
    order; None leaves the dataset without them. ``gate_flags`` gives each clip's retarget gate
    flags; static ones are capped to ``config.max_static_weight`` of the weight.
    ``feasibility_scores`` gives each clip's physical feasibility score (NaN: not checked);
    ``config.feasibility`` weights by them (clips it drops must already be left out).

    Raises:
        MergeError: no clips, duplicate names, or all weights zero.
    """
    if not clips:
        raise MergeError("no clips to merge")
    names = tuple(name for name, _ in clips)
    if len(set(names)) != len(names):
        duplicates = sorted({n for n in names if names.count(n) > 1})
        raise MergeError(f"duplicate clip names {duplicates}")
    lengths = np.array([f.shape[0] for _, f in clips], dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    features = np.concatenate([f for _, f in clips], axis=0).astype(np.float32, copy=False)
    weights = clip_weights(names, lengths, fps, config.weights)
    weights, clip_feasibility = feasibility_weights(weights, names, lengths,
                                                    feasibility_scores, config.feasibility)
    if gate_flags is not None:
        static = np.array([any(f.startswith(STATIC_FLAG) for f in flags) for flags in gate_flags])
        weights = cap_static_weight(weights, static, config.max_static_weight)
    mean, std = weighted_statistics(features, lengths, weights)
    qpos, qvel = _stack_states(states, lengths, names)
    return MergedDataset(
        features=features, clip_start=starts, clip_length=lengths, clip_name=names,
        clip_weight=weights, mean=mean, std=std, fps=float(fps), robot=robot, layout=layout,
        content_sha256=content_hash(features, names, lengths, weights, layout, fps, robot,
                                    qpos=qpos, qvel=qvel, clip_feasibility=clip_feasibility),
        qpos=qpos, qvel=qvel, clip_feasibility=clip_feasibility,
        merge_params=config.as_record(), inputs=list(inputs or []),
        contact_rule=dict(contact_rule or asdict(ContactRule())))


def feasibility_weights(weights: np.ndarray, names: tuple[str, ...], lengths: np.ndarray,
                        scores: list[float] | None, policy: FeasibilityPolicy,
                        ) -> tuple[np.ndarray, np.ndarray | None]:
    """``weights`` [C] times the feasibility policy's multipliers, renormalized, and the
    clips' scores as stored (``clip_feasibility`` [C]; None without scores).

    Raises:
        MergeError: the policy leaves every clip with weight 0.
    """
    if scores is None:
        return weights, None
    scores_array = np.asarray(scores, np.float64)
    decision = apply_policy(names, lengths, scores_array, policy)
    weighted = weights * decision.multiplier
    if weighted.sum() <= 0:
        raise MergeError(f"merge.feasibility {policy.policy}: every clip ends with weight 0 "
                         f"(scores {scores_array.round(3).tolist()}); raise min_weight")
    return weighted / weighted.sum(), scores_array


def _stack_states(states: list[tuple[np.ndarray, np.ndarray]] | None, lengths: np.ndarray,
                  names: tuple[str, ...]) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Concatenated (qpos [N, nq], qvel [N, nv]) float32, checked row for row against the
    clips' feature lengths; (None, None) without states."""
    if states is None:
        return None, None
    if len(states) != len(lengths):
        raise MergeError(f"{len(states)} reference-state arrays for {len(lengths)} clips")
    for name, length, (qpos, qvel) in zip(names, lengths, states, strict=True):
        if qpos.shape[0] != length or qvel.shape[0] != length:
            raise MergeError(f"clip {name!r}: {length} feature frames but qpos/qvel have "
                             f"{qpos.shape[0]}/{qvel.shape[0]} rows")
    qpos = np.concatenate([q for q, _ in states], axis=0).astype(np.float32)
    qvel = np.concatenate([v for _, v in states], axis=0).astype(np.float32)
    return qpos, qvel


def write_merged(path: str | Path, data: MergedDataset) -> None:
    """Write ``data`` to ``path`` atomically and byte-deterministically."""
    datasets = {
        "features": data.features.astype(np.float32),
        "clip_start": data.clip_start.astype(np.int64),
        "clip_length": data.clip_length.astype(np.int64),
        "clip_name": tuple(data.clip_name),
        "clip_weight": data.clip_weight.astype(np.float64),
        "mean": data.mean.astype(np.float32),
        "std": data.std.astype(np.float32),
    }
    if data.has_reference_states:
        datasets["qpos"] = np.asarray(data.qpos, np.float32)
        datasets["qvel"] = np.asarray(data.qvel, np.float32)
    if data.clip_feasibility is not None:
        datasets["clip_feasibility"] = np.asarray(data.clip_feasibility, np.float64)
    attrs = {
        "schema_version": data.schema_version,
        "fps": float(data.fps),
        "robot": data.robot,
        "layout": data.layout,
        "content_sha256": data.content_sha256,
        "merge_params": json.dumps(data.merge_params, sort_keys=True),
        "inputs": json.dumps(data.inputs, sort_keys=True),
        "contact_rule": json.dumps(data.contact_rule, sort_keys=True),
    }
    with atomic_path(path) as tmp:
        write_file(tmp, datasets, attrs)


def read_merged(path: str | Path, verify_hash: bool = True) -> MergedDataset:
    """Read a merged dataset and check its internal consistency.

    Raises:
        DatasetFileError: unreadable file, missing field, wrong schema version, shapes or clip
            index that do not add up, or (``verify_hash``) a content hash that does not match.
    """
    path = Path(path)
    try:
        f = h5py.File(path, "r")
    except (OSError, ValueError) as exc:
        raise DatasetFileError(path, f"cannot open as HDF5 ({open_error_text(exc)})") from exc
    with f:
        missing = [d for d in _DATASETS if d not in f] + [a for a in _ATTRS if a not in f.attrs]
        if missing:
            raise DatasetFileError(path, f"not a merged AMP dataset: missing {missing}")
        version = int(f.attrs["schema_version"])
        if version != DATASET_SCHEMA_VERSION:
            why = _SCHEMA_HISTORY.get(version, "written by another ampkit version")
            raise DatasetFileError(
                path, f"schema_version {version}, this ampkit reads {DATASET_SCHEMA_VERSION}: "
                      f"{why}")
        has_states = "qpos" in f and "qvel" in f
        data = MergedDataset(
            features=f["features"][()], clip_start=f["clip_start"][()],
            clip_length=f["clip_length"][()],
            clip_name=tuple(n.decode() if isinstance(n, bytes) else str(n)
                            for n in f["clip_name"][()]),
            clip_weight=f["clip_weight"][()], mean=f["mean"][()], std=f["std"][()],
            fps=float(f.attrs["fps"]), robot=str(f.attrs["robot"]),
            layout=str(f.attrs["layout"]), content_sha256=str(f.attrs["content_sha256"]),
            schema_version=version,
            qpos=f["qpos"][()] if has_states else None,
            qvel=f["qvel"][()] if has_states else None,
            clip_feasibility=f["clip_feasibility"][()] if "clip_feasibility" in f else None,
            merge_params=json.loads(f.attrs.get("merge_params", "{}")),
            inputs=json.loads(f.attrs.get("inputs", "[]")),
            contact_rule=json.loads(f.attrs["contact_rule"]))
    _check_consistent(path, data)
    if verify_hash:
        actual = content_hash(data.features, data.clip_name, data.clip_length, data.clip_weight,
                              data.layout, data.fps, data.robot, data.schema_version,
                              qpos=data.qpos, qvel=data.qvel,
                              clip_feasibility=data.clip_feasibility)
        if actual != data.content_sha256:
            raise DatasetFileError(
                path, f"content_sha256 {data.content_sha256[:12]}… does not match the "
                      f"content ({actual[:12]}…): the file was modified or is damaged")
    return data


def _check_consistent(path: Path, data: MergedDataset) -> None:
    if data.features.ndim != 2 or data.features.shape[1] != FEATURE_DIM:
        raise DatasetFileError(
            path, f"features has shape {data.features.shape}, expected [N, {FEATURE_DIM}]")
    num_clips = len(data.clip_name)
    for name in ("clip_start", "clip_length", "clip_weight"):
        if getattr(data, name).shape != (num_clips,):
            raise DatasetFileError(
                path, f"{name} has shape {getattr(data, name).shape}, expected [{num_clips}]")
    if num_clips == 0:
        raise DatasetFileError(path, "holds no clips")
    expected_starts = np.concatenate([[0], np.cumsum(data.clip_length)[:-1]])
    if (np.any(data.clip_length < 2) or not np.array_equal(data.clip_start, expected_starts)
            or int(data.clip_length.sum()) != data.num_frames):
        raise DatasetFileError(
            path, "clip index is inconsistent (starts must be contiguous, every clip >= 2 "
                  "frames, lengths summing to the number of frames)")
    weights = data.clip_weight
    if np.any(weights < 0) or not np.isclose(weights.sum(), 1.0, atol=1e-6):
        raise DatasetFileError(path, "clip_weight must be >= 0 and sum to 1")
    for name in ("mean", "std"):
        if getattr(data, name).shape != (FEATURE_DIM,):
            raise DatasetFileError(path, f"{name} must have shape [{FEATURE_DIM}]")
    if data.clip_feasibility is not None and data.clip_feasibility.shape != (num_clips,):
        raise DatasetFileError(path, f"clip_feasibility has shape "
                                     f"{data.clip_feasibility.shape}, expected [{num_clips}]")
    for name in ("qpos", "qvel"):
        states = getattr(data, name)
        if states is not None and (states.ndim != 2 or states.shape[0] != data.num_frames
                                   or not np.all(np.isfinite(states))):
            raise DatasetFileError(
                path, f"{name} has shape {states.shape} (or non-finite values); expected "
                      f"[{data.num_frames}, n] finite rows aligned with features")
