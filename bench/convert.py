"""Benchmark: output frames per second of ``pipeline.convert`` + ``pipeline.merge``.

Synthesizes a robot-motion set (default 16 clips, about 90 s, sources at 30/60/100/120 Hz,
gait-like joints, forward root motion with turning and bobbing), then times the two stage
entry points in-process (imports and the synthesis excluded) and prints merged frames / wall
second. Target (issue 5): >= 50,000 frames/s.

    python -m bench.convert [--clips 16] [--seconds 90] [--repeats 10] [--mirror] [--workers N]
"""

from __future__ import annotations

import argparse
import resource
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

import robots
from amp.merge import read_merged
from pipeline import convert as convert_stage
from pipeline import merge as merge_stage
from robots.motion import RobotMotion, write_motion
from robots.spec import RobotSpec

SOURCE_RATES_HZ = (30.0, 60.0, 100.0, 120.0)


def gait_motion(spec: RobotSpec, fps: float, duration_s: float,
                rng: np.random.Generator) -> np.ndarray:
    """A plausible walking clip: qpos [T, nq] at ``fps``."""
    t = np.arange(int(duration_s * fps) + 1) / fps
    gait_hz = rng.uniform(0.9, 1.8)
    phase = 2 * np.pi * gait_hz * t
    speed = rng.uniform(0.15, 0.5) * (1 + 0.2 * np.sin(2 * np.pi * 0.2 * t))
    yaw = rng.uniform(-np.pi, np.pi) + np.cumsum(rng.uniform(-0.4, 0.4) * np.ones_like(t)) / fps
    x = np.cumsum(speed * np.cos(yaw)) / fps
    y = np.cumsum(speed * np.sin(yaw)) / fps
    z = rng.uniform(0.47, 0.49) + 0.008 * np.sin(2 * phase)
    roll, pitch = 0.03 * np.sin(phase), 0.02 * np.sin(2 * phase + 0.5)
    quat = _euler_zyx_to_quat(yaw, pitch, roll)
    joints = np.tile(spec.default_joint_angles(), (len(t), 1))
    for side, offset in (("left", 0.0), ("right", np.pi)):
        p = phase + offset
        joints[:, spec.joint_names.index(f"{side}_hip_pitch")] += 0.35 * np.sin(p)
        joints[:, spec.joint_names.index(f"{side}_hip_roll")] += 0.04 * (1 + np.sin(p))
        joints[:, spec.joint_names.index(f"{side}_knee_pitch")] += 0.3 * (1 + np.sin(p - 1.2))
        joints[:, spec.joint_names.index(f"{side}_ankle_pitch")] += 0.15 * np.sin(p - 0.6)
        joints[:, spec.joint_names.index(f"{side}_shoulder_pitch")] += 0.3 * np.sin(p + np.pi)
    joints[:, spec.joint_names.index("waist_yaw")] += 0.08 * np.sin(phase)
    joints += rng.normal(scale=0.003, size=joints.shape)  # IK jitter
    lower, upper = spec.joint_range_array().T
    return np.concatenate([np.stack([x, y, z], 1), quat, np.clip(joints, lower, upper)], 1)


def _euler_zyx_to_quat(yaw: np.ndarray, pitch: np.ndarray, roll: np.ndarray) -> np.ndarray:
    cy, sy = np.cos(yaw / 2), np.sin(yaw / 2)
    cp, sp = np.cos(pitch / 2), np.sin(pitch / 2)
    cr, sr = np.cos(roll / 2), np.sin(roll / 2)
    return np.stack([cr * cp * cy + sr * sp * sy, sr * cp * cy - cr * sp * sy,
                     cr * sp * cy + sr * cp * sy, cr * cp * sy - sr * sp * cy], axis=1)


def synthesize(directory: Path, spec: RobotSpec, clips: int, total_s: float, seed: int) -> float:
    """Write the robot-motion set; returns its total duration [s]."""
    rng = np.random.default_rng(seed)
    durations = rng.uniform(0.6, 1.4, size=clips)
    durations *= total_s / durations.sum()
    for i, duration_s in enumerate(durations):
        fps = SOURCE_RATES_HZ[i % len(SOURCE_RATES_HZ)]
        qpos = gait_motion(spec, fps, float(duration_s), rng)
        write_motion(directory / f"walk_{i:02d}.h5", RobotMotion(
            qpos=qpos, human_joints=np.zeros((len(qpos), 1, 3)), fps=fps, robot=spec.name,
            joint_names=spec.joint_names, source=f"synthetic/walk_{i:02d}.npz",
            source_sha256="0" * 64, body_model="skeleton"))
    return float(durations.sum())


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.convert", description=__doc__)
    parser.add_argument("--clips", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=90.0)
    parser.add_argument("--repeats", type=int, default=10,
                        help="timed runs; the best approximates an undisturbed machine")
    parser.add_argument("--mirror", action="store_true", help="also write mirrored clips")
    parser.add_argument("--workers", type=int, default=None,
                        help="convert processes (default: pipeline.convert's default)")
    args = parser.parse_args()
    spec = robots.load_spec("wildrobot")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "robot").mkdir()
        total_s = synthesize(root / "robot", spec, args.clips, args.seconds, seed=0)
        params = root / "params.yaml"
        params.write_text(f"convert:\n  mirror: {str(args.mirror).lower()}\n")
        workers = [] if args.workers is None else ["--workers", str(args.workers)]
        timings, cpu_seconds = [], []
        for repeat in range(args.repeats):
            out = root / f"run{repeat}"
            cpu_start = _cpu_seconds()
            start = time.perf_counter()
            convert_stage.main(["--in", str(root / "robot"), "--out", str(out / "clips"),
                                "--params", str(params), "--metrics", str(out / "c.json"),
                                "--quiet", *workers])
            convert_s = time.perf_counter() - start
            merge_stage.main(["--in", str(out / "clips"), "--out", str(out / "merged.h5"),
                              "--params", str(params), "--metrics", str(out / "m.json"),
                              "--quiet"])
            timings.append((time.perf_counter() - start, convert_s))
            cpu_seconds.append(_cpu_seconds() - cpu_start)
        frames = read_merged(root / "run0" / "merged.h5").num_frames
    best_total, best_convert = min(timings)
    median_total = statistics.median(t for t, _ in timings)
    print(f"{args.clips} clips, {total_s:.1f} s of motion at {SOURCE_RATES_HZ} Hz, "
          f"mirror={args.mirror}: {frames} output frames at 50 FPS")
    print(f"convert+merge wall time: best {best_total * 1e3:.1f} ms "
          f"(convert {best_convert * 1e3:.1f} ms), median {median_total * 1e3:.1f} ms "
          f"over {args.repeats} runs")
    print(f"frames_per_second: {frames / best_total:,.0f} (best), "
          f"{frames / median_total:,.0f} (median)")
    print(f"frames per CPU-second (this process + workers; insensitive to other load): "
          f"{frames / min(cpu_seconds):,.0f}; load average now {_load():.1f}")


def _cpu_seconds() -> float:
    """CPU time of this process and its finished children [s]."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _load() -> float:
    try:
        return float(Path("/proc/loadavg").read_text().split()[0])
    except OSError:
        return float("nan")


if __name__ == "__main__":
    main()
