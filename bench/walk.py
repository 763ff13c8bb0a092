"""Train a walking policy with the ``cpu-walk`` preset from scratch, evaluate it, print one line.

    python -m bench.walk                                   # train (or resume) + evaluate
    nohup python -m bench.walk > runs/walk.log 2>&1 &      # the usual way: in the background
    python -m bench.walk --eval-only                       # evaluate the newest checkpoint
    python -m bench.walk --preset gpu --out runs/walk_gpu  # the same on a GPU
    dvc repro walk/dvc.yaml        # cpu-walk-tracked on the physically filtered reference

An interrupted run continues where its newest checkpoint left it (resume is bit-exact), so
re-running the same command finishes the job. The figures are the bar of the walking issue:

- ``flat`` at 0.3 m/s (16 episodes x 20 s): success, forward tracking error, yaw error,
  mechanical power, the largest per-joint mean |torque|, duty factor vs the dataset's, step
  alternation and the share of episodes that really walk (``walking_rate``);
- the ``tracking`` grid 0.1-0.5 m/s: mean tracking error;
- ``push`` and ``slippery``: success and tracking error;
- style: mean style reward and discriminator policy accuracy over the last 10 % of training;
- sim-to-sim: MuJoCo-minus-MJX success gap.

Training wall time is the sum of the iteration times the progress CSV records (compile,
logging and checkpoints excluded), so it adds up correctly over interruptions; the wall
clock of this invocation is printed beside it.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from robots.errors import AmpkitError

WALK_SCENARIOS = ("flat", "tracking", "push", "slippery", "turning")


def walk_suite(episodes: int, seconds: float) -> tuple[Any, ...]:
    """The issue's evaluation: flat at 0.3 m/s, the tracking grid, pushes, a slippery floor."""
    from training.scenarios import Scenario, default_suite, resized

    by_name = {s.name: s for s in default_suite()}
    flat = Scenario("flat", ((0.3, 0.0, 0.0),))
    suite = (flat, *(by_name[name] for name in WALK_SCENARIOS[1:]))
    return resized(suite, episodes=episodes, seconds=seconds)


def train_or_resume(args: argparse.Namespace) -> None:
    from training import checkpoint as ckpt
    from training.train import RunPaths, resolve_config, train

    paths = RunPaths(args.out, args.out / "train.json", args.out / "train_progress.csv")
    resume = bool(ckpt.list_checkpoints(paths.checkpoints))
    # The trainer's own rule: on resume the (newest good) checkpoint's config, plus --set.
    config = resolve_config(argparse.Namespace(resume=resume, out=args.out,
                                               preset=None if resume else args.preset,
                                               overrides=args.overrides))
    if resume:
        print(f"resuming {args.out}", file=sys.stderr)
    train(config, args.data, paths, resume=resume, progress=not args.no_progress)


def training_figures(progress_csv: Path) -> dict[str, float]:
    """Env steps, summed iteration time, and the last-10 % style figures from the CSV."""
    if not progress_csv.is_file():
        raise AmpkitError(f"{progress_csv}: no training progress CSV; bench.walk reads the "
                          "one its own training writes there (a run trained by training.train "
                          "with --plot elsewhere: copy that CSV here)")
    with progress_csv.open() as f:
        rows = list(csv.DictReader(f))
    if not rows:
        raise AmpkitError(f"{progress_csv}: no training rows")
    steps = [float(r["env_steps"]) for r in rows]
    per_iteration = steps[0] / max(float(rows[0]["iteration"]), 1.0)
    seconds = sum(per_iteration / max(float(r["env_steps_per_s"]), 1e-9) for r in rows)
    tail = rows[-max(1, len(rows) // 10):]

    def mean(column: str) -> float:
        values = [float(r[column]) for r in tail if r.get(column) not in (None, "")]
        return sum(values) / len(values) if values else float("nan")

    return {"env_steps": steps[-1], "train_s": seconds,
            "style_last10": mean("style_reward"),
            "disc_policy_acc_last10": mean("disc_policy_accuracy")}


def walking_line(report: dict[str, Any], figures: dict[str, float], wall_s: float) -> str:
    """The one line this benchmark prints."""
    sc = report["scenarios"]
    flat = sc["flat"]
    torque = max(flat["mean_abs_torque_nm"].values())
    duty = flat["duty_factor"]
    data_duty = flat.get("dataset_duty_factor", {"left": float("nan"), "right": float("nan")})
    gap = report.get("sim2sim", {}).get("gap", {}).get("flat", {}).get("success_rate")
    parts = [
        f"env_steps {figures['env_steps'] / 1e6:.2f}M",
        f"train {figures['train_s'] / 3600:.2f}h (this call {wall_s / 3600:.2f}h)",
        f"flat@0.3 success {flat['success_rate']:.2f} err {_error(flat, 'lin_vel')} m/s "
        f"yaw {_error(flat, 'yaw_rate')} rad/s",
        f"tracking err {_error(sc['tracking'], 'lin_vel')} m/s",
        f"style {figures['style_last10']:.3f} "
        f"disc_policy_acc {figures['disc_policy_acc_last10']:.2f}",
        f"duty L/R {duty['left']:.2f}/{duty['right']:.2f} (data {data_duty['left']:.2f}/"
        f"{data_duty['right']:.2f})",
        f"steps {flat['step_rate_hz']:.2f}Hz "
        f"(data {flat.get('dataset_step_rate_hz', float('nan')):.2f}) "
        f"alternation {flat['step_alternation']:.2f} "
        f"walking {flat['walking_rate']:.2f}",
        f"power {flat['mechanical_power_w']:.1f}W max_mean_torque {torque:.2f}Nm",
        f"push success {sc['push']['success_rate']:.2f} err {_error(sc['push'], 'lin_vel')}",
        f"slippery success {sc['slippery']['success_rate']:.2f} "
        f"err {_error(sc['slippery'], 'lin_vel')}",
        "sim2sim gap " + ("-" if gap is None else f"{gap:+.2f}"),
    ]
    return " | ".join(parts)


def _error(metrics: dict[str, Any], name: str) -> str:
    """A tracking error as "windowed (per step)": the 2-s windowed error is the figure of
    the bar (see ``training.eval_metrics.TRACKING_WINDOW_S``), the per-step one is kept
    beside it."""
    unit = "mps" if name == "lin_vel" else "rps"
    windowed = metrics.get(f"{name}_error_windowed_{unit}")
    shown = "-" if windowed is None else f"{windowed:.3f}"
    return f"{shown} ({metrics[f'{name}_error_{unit}']:.3f} per step)"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.walk", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path("data/amp/merged.h5"))
    parser.add_argument("--out", type=Path, default=Path("runs/walk"))
    parser.add_argument("--preset", default="cpu-walk")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="KEY=VALUE", help="override a config field (repeatable)")
    parser.add_argument("--eval-only", action="store_true", help="skip training")
    parser.add_argument("--report", type=Path, default=None,
                        help="where the evaluation and training figures go (JSON; default "
                             "OUT/walk_eval.json)")
    parser.add_argument("--episodes", type=int, default=16, help="episodes per scenario")
    parser.add_argument("--seconds", type=float, default=20.0, help="episode length [s]")
    parser.add_argument("--sim2sim-episodes", type=int, default=2)
    parser.add_argument("--no-progress", action="store_true")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    from robots.io import check_writable, write_json_atomic
    from training.evaluate import evaluate_checkpoint

    args = parse_args(argv)
    clock = time.perf_counter()
    report_path = args.report or args.out / "walk_eval.json"
    try:
        check_writable([report_path])  # before hours of training, not after
        if not args.eval_only:
            train_or_resume(args)
        figures = training_figures(args.out / "train_progress.csv")  # before the evaluation
        report = evaluate_checkpoint(args.out, data=args.data, episodes=args.episodes,
                                     seconds=args.seconds,
                                     sim2sim_episodes=args.sim2sim_episodes,
                                     scenarios=walk_suite(args.episodes, args.seconds))
        write_json_atomic(report_path, {**report, "training": figures})
    except AmpkitError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(walking_line(report, figures, time.perf_counter() - clock))
    print(json.dumps(figures), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
