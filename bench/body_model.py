"""Benchmark: our SMPL-X body-model path vs the direct ``smplx`` forward pass, 1000 frames.

``python -m bench.body_model [--model-dir DIR] [--frames 1000]``. Without ``--model-dir`` a
synthetic model file in the SMPL-X layout (10,475 vertices, non-zero blend shapes) is written
to a temporary directory. Prints both times, the speed-up and the largest difference in joints
0..21 and the heel/toe vertices (the target: >= 50x faster, equal to 1e-5 m). Also times the
skeleton model.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from retarget.body_models import make_body_model
from retarget.human import HumanClip
from retarget.smplx_model import SmplxBodyModel, direct_smplx_forward


def random_clip(frames: int, seed: int = 0) -> HumanClip:
    """A clip of smooth random poses (about +-0.5 rad per joint) and a random walk root."""
    rng = np.random.default_rng(seed)
    time_s = np.arange(frames)[:, None] / 60.0
    frequencies = rng.uniform(0.3, 2.0, size=(1, 66))
    phases = rng.uniform(0, 2 * np.pi, size=(1, 66))
    pose = 0.5 * np.sin(2 * np.pi * frequencies * time_s + phases)
    return HumanClip(
        fps=60.0,
        trans=np.cumsum(rng.normal(0, 0.01, size=(frames, 3)), axis=0) + [0, 0, 0.9],
        root_orient=pose[:, :3] + [np.pi / 2, 0.0, 0.0],
        body_pose=pose[:, 3:].reshape(frames, 21, 3),
        betas=rng.normal(0, 1, size=16),
        gender="neutral",
        source=Path("<bench>"),
        source_sha256="",
    )


def best_of(repeats: int, function) -> tuple[float, float]:
    """Fastest wall time and fastest process CPU time (all threads) of ``repeats`` calls, s."""
    wall, cpu = [], []
    for _ in range(repeats):
        start_wall, start_cpu = time.perf_counter(), time.process_time()
        function()
        wall.append(time.perf_counter() - start_wall)
        cpu.append(time.process_time() - start_cpu)
    return min(wall), min(cpu)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.body_model", description=__doc__)
    parser.add_argument("--model-dir", default=None, help="directory holding smplx/SMPLX_*.npz")
    parser.add_argument("--frames", type=int, default=1000)
    args = parser.parse_args()

    import torch

    torch.set_num_threads(2)
    with tempfile.TemporaryDirectory() as scratch:
        model_dir = args.model_dir
        if model_dir is None:
            from retarget.smplx_synthetic import write_synthetic_smplx

            model_dir = write_synthetic_smplx(Path(scratch) / "model")
            print(f"model: synthetic SMPL-X-layout file in {model_dir}")
        clip = random_clip(args.frames)
        ours = SmplxBodyModel(model_dir)
        ours.forward(clip)  # load the model file once, outside the timing
        direct = ours.create_smplx(clip.gender, len(clip.betas))

        ours_s, ours_cpu = best_of(5, lambda: ours.forward(clip))
        direct_s, direct_cpu = best_of(2, lambda: direct_smplx_forward(direct, clip))
        motion = ours.forward(clip)
        joints, feet = direct_smplx_forward(direct, clip)
        joint_error = np.abs(motion.positions[:, :22] - joints).max()
        foot_error = np.abs(motion.positions[:, 22:] - feet).max()

        skeleton = make_body_model("skeleton")
        skeleton_s, skeleton_cpu = best_of(5, lambda: skeleton.forward(clip))

    print(f"frames: {args.frames}                       wall ms    CPU ms (all threads)")
    print(f"direct smplx forward (whole mesh): {direct_s * 1e3:9.1f} {direct_cpu * 1e3:9.1f}")
    print(f"retarget smplx body model:         {ours_s * 1e3:9.1f} {ours_cpu * 1e3:9.1f}")
    print(f"skeleton body model:               {skeleton_s * 1e3:9.1f} {skeleton_cpu * 1e3:9.1f}")
    print(f"speed-up (wall):                   {direct_s / ours_s:9.1f} x   (target >= 50 x)")
    print(f"speed-up (CPU):                    {direct_cpu / ours_cpu:9.1f} x")
    print(f"max |difference| joints 0..21:     {joint_error:9.2e} m  (target <= 1e-5 m)")
    print(f"max |difference| heel/toe points:  {foot_error:9.2e} m")


if __name__ == "__main__":
    main()
