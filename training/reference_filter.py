"""A physically filtered reference: the dataset's clips as this robot performs them.

    python -m training.train --data data/amp/merged.h5 --preset cpu-track --out runs/track
    python -m training.reference_filter --data data/amp/merged.h5 --run runs/track \\
        --out data/amp/tracked.h5

A tracking policy (``wildrobot_track``, preset ``cpu-track``) follows each clip from its first
frame with its deterministic action, in the training physics, and its rollouts become a merged
dataset of the same schema: every frame's AMP features are the simulator's own frames, and its
qpos/qvel the physics state (so reference-state starts of the walking task begin in a balanced,
servo-driven state). A walking policy trained on it is asked to look like motion this robot can
make, not like retargeted human motion it cannot reproduce exactly (``bench.servo_replay``).

Where the tracker falls or strays, the frames from ``margin_s`` before the failure on are
dropped, and tracking restarts from the reference at the failed frame (a new clip, named
``<clip>@<frame>``), up to ``max_restarts`` times per clip; pieces shorter than ``min_clip_s``
are left out. Each piece keeps its source clip's weight in proportion to its length. The report
gives, per clip, the share of its frames kept and the RMS joint error against the reference.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from amp.merge import MergedDataset, content_hash, weighted_statistics, write_merged
from robots.errors import AmpkitError
from training.envs.base import Env
from training.policy import PolicyFn, deterministic_policy, load_snapshot
from training.train import load_reference, with_reference_init


@dataclass(frozen=True)
class FilterConfig:
    """How the rollouts are cut into clips.

    Attributes:
        margin_s: Seconds before a failure that are dropped with it.
        min_clip_s: Shortest piece kept [s].
        max_restarts: Restarts per clip after a failure.
    """

    margin_s: float = 0.5
    min_clip_s: float = 1.0
    max_restarts: int = 3


@dataclass(frozen=True)
class TrackedPiece:
    """One recorded piece of a clip.

    Attributes:
        name: ``<clip>`` or ``<clip>@<first reference frame>``.
        source_clip: Index of the source clip.
        features: [L, 29] the simulator's AMP frames.
        qpos, qvel: [L, nq], [L, nv] the physics states.
        joint_rms_rad: RMS joint-angle error against the reference over the piece.
    """

    name: str
    source_clip: int
    features: np.ndarray
    qpos: np.ndarray
    qvel: np.ndarray
    joint_rms_rad: float


def rollout_from(env: Env, policy: PolicyFn, frames: np.ndarray, steps: int
                 ) -> dict[str, np.ndarray]:
    """Every environment started at reference frame ``frames[i]`` and stepped ``steps`` times
    with ``policy``: states [B, steps + 1, ...] (qpos, qvel, amp_frame, reference_frame) and
    ``done`` / ``failed`` [B, steps + 1] (the step that led into each state; the state after a
    done step is already the next episode's)."""
    keys = jax.random.split(jax.random.PRNGKey(0), len(frames))
    start = jax.vmap(env.reset_to_reference)(keys, jnp.asarray(frames, jnp.int32))
    step = jax.vmap(env.step)

    def one(state: object, _: None) -> tuple[object, dict[str, jax.Array]]:
        action = policy(state.obs, jax.random.PRNGKey(0))
        state = step(state, action)
        return state, record(state)

    def record(state: object) -> dict[str, jax.Array]:
        return {"qpos": state.data.qpos, "qvel": state.data.qvel,
                "amp_frame": state.info["amp_frame"], "frame": state.info["reference_frame"],
                "done": state.done, "failed": state.done * (1.0 - state.info["truncated"])}

    @jax.jit
    def run(state: object) -> dict[str, jax.Array]:
        _, trace = jax.lax.scan(one, state, None, length=steps)
        first = jax.tree.map(lambda x: x[None], record(state))
        return jax.tree.map(lambda a, b: jnp.concatenate([a, b], axis=0), first, trace)

    trace = jax.device_get(run(start))
    return {name: np.swapaxes(np.asarray(value), 0, 1) for name, value in trace.items()}


def cut_piece(trace: dict[str, np.ndarray], row: int, margin_frames: int
              ) -> tuple[slice, bool, int]:
    """The kept states of rollout ``row`` (up to, not including, its first done step, less
    ``margin_frames`` when that step was a failure), whether it failed, and the reference
    frame it failed at."""
    done = np.flatnonzero(trace["done"][row, 1:] > 0.5)
    length = int(done[0]) + 1 if len(done) else trace["done"].shape[1]
    failed = bool(len(done) and trace["failed"][row, length] > 0.5)
    kept = max(length - margin_frames, 0) if failed else length
    return slice(0, kept), failed, int(trace["frame"][row, length - 1]) + 1


def track_clips(env: Env, policy: PolicyFn, data: MergedDataset, config: FilterConfig
                ) -> list[TrackedPiece]:
    """Every clip of ``data`` tracked from its first frame, restarting after failures."""
    fps = data.fps
    margin, shortest = int(round(config.margin_s * fps)), int(round(config.min_clip_s * fps))
    starts = [(c, int(data.clip_start[c])) for c in range(data.num_clips)]
    pieces: list[TrackedPiece] = []
    for _ in range(config.max_restarts + 1):
        if not starts:
            break
        ends = np.array([int(data.clip_start[c] + data.clip_length[c]) for c, _ in starts])
        first = np.array([f for _, f in starts])
        trace = rollout_from(env, policy, first, int(np.max(ends - first)))
        retry = []
        for row, (clip, frame) in enumerate(starts):
            span, failed, failed_at = cut_piece(trace, row, margin)
            if span.stop >= shortest:
                pieces.append(_piece(data, clip, frame, trace, row, span))
            if failed and ends[row] - failed_at >= shortest:
                retry.append((clip, failed_at))
        starts = retry
    return sorted(pieces, key=lambda p: (p.source_clip, p.name))


def _piece(data: MergedDataset, clip: int, frame: int, trace: dict[str, np.ndarray], row: int,
           span: slice) -> TrackedPiece:
    qpos = trace["qpos"][row, span]
    reference = data.qpos[trace["frame"][row, span]]
    rms = float(np.sqrt(np.mean((qpos[:, 7:] - reference[:, 7:]) ** 2)))
    name = data.clip_name[clip]
    if frame != int(data.clip_start[clip]):
        name = f"{name}@{frame - int(data.clip_start[clip])}"
    return TrackedPiece(name=name, source_clip=clip, features=trace["amp_frame"][row, span],
                        qpos=qpos, qvel=trace["qvel"][row, span], joint_rms_rad=rms)


def filtered_dataset(data: MergedDataset, pieces: list[TrackedPiece], provenance: dict
                     ) -> MergedDataset:
    """The pieces as a merged dataset of ``data``'s robot, layout, rate and contact rule."""
    if not pieces:
        raise AmpkitError("the tracker kept no piece of any clip; train it longer")
    lengths = np.array([len(p.features) for p in pieces], np.int64)
    weights = np.array([data.clip_weight[p.source_clip] * len(p.features)
                        / data.clip_length[p.source_clip] for p in pieces])
    if weights.sum() <= 0:
        raise AmpkitError("every kept piece comes from a clip of weight 0")
    weights = weights / weights.sum()
    features = np.concatenate([p.features for p in pieces]).astype(np.float32)
    qpos = np.concatenate([p.qpos for p in pieces]).astype(np.float32)
    qvel = np.concatenate([p.qvel for p in pieces]).astype(np.float32)
    names = tuple(p.name for p in pieces)
    mean, std = weighted_statistics(features, lengths, weights)
    return MergedDataset(
        features=features, clip_start=np.concatenate([[0], np.cumsum(lengths)[:-1]]),
        clip_length=lengths, clip_name=names, clip_weight=weights, mean=mean, std=std,
        fps=data.fps, robot=data.robot, layout=data.layout,
        content_sha256=content_hash(features, names, lengths, weights, data.layout, data.fps,
                                    data.robot, qpos=qpos, qvel=qvel),
        qpos=qpos, qvel=qvel, merge_params={"tracked": provenance},
        inputs=[{"path": provenance["source"], "content_sha256": data.content_sha256}],
        contact_rule=dict(data.contact_rule))


def report(data: MergedDataset, pieces: list[TrackedPiece]) -> str:
    """Per source clip: frames kept / frames, pieces, RMS joint error; then the totals."""
    lines = [f"{'clip':34s} kept   pieces  joint rms [rad]"]
    for clip, name in enumerate(data.clip_name):
        own = [p for p in pieces if p.source_clip == clip]
        kept = sum(len(p.features) for p in own)
        rms = np.sqrt(sum(p.joint_rms_rad ** 2 * len(p.features) for p in own) / max(kept, 1))
        lines.append(f"{name:34s} {kept / data.clip_length[clip]:5.2f}  {len(own):6d}  "
                     f"{rms:.3f}" if own else f"{name:34s}  0.00       0  -")
    total = sum(len(p.features) for p in pieces)
    lines.append(f"kept {total} of {data.num_frames} frames ({total / data.num_frames:.2f}) "
                 f"in {len(pieces)} pieces")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="the merged.h5 the tracker was trained on")
    parser.add_argument("--run", required=True, help="tracker run directory or checkpoint")
    parser.add_argument("--out", required=True, help="the filtered dataset to write (.h5)")
    parser.add_argument("--margin-s", type=float, default=FilterConfig.margin_s)
    parser.add_argument("--min-clip-s", type=float, default=FilterConfig.min_clip_s)
    parser.add_argument("--max-restarts", type=int, default=FilterConfig.max_restarts)
    args = parser.parse_args(argv)
    config = FilterConfig(args.margin_s, args.min_clip_s, args.max_restarts)
    try:
        snapshot = load_snapshot(args.run)
        if snapshot.config.env != "wildrobot_track":
            raise AmpkitError(f"{args.run}: a {snapshot.config.env} checkpoint; the filter "
                              "needs a tracker (env wildrobot_track, preset cpu-track)")
        dataset = load_reference(args.data, snapshot.env)
        env = with_reference_init(snapshot.env, dataset)
        pieces = track_clips(env, deterministic_policy(snapshot), dataset.data, config)
        print(report(dataset.data, pieces))
        provenance = {"source": str(args.data), "tracker": str(snapshot.path),
                      "tracker_iteration": snapshot.iteration, **asdict(config)}
        write_merged(Path(args.out), filtered_dataset(dataset.data, pieces, provenance))
    except AmpkitError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
