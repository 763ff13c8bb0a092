"""What a run reports: TensorBoard events, a per-iteration CSV (a DVC plot), final JSON metrics.

CSV columns (``CSV_COLUMNS``): ``iteration`` (completed), ``env_steps``, ``env_steps_per_s``
and the metric columns mapped in ``CSV_METRICS``; missing metrics (AMP off) are left empty.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from robots.io import atomic_path, write_json_atomic

CSV_METRICS: dict[str, str] = {
    "task_reward": "rollout/task_reward",
    "style_reward": "amp/style_reward_mean",
    "style_reward_std": "amp/style_reward_std",
    "style_weight": "amp/style_weight",
    "total_reward": "rollout/total_reward",
    "fall_rate": "rollout/fall_rate",
    "policy_loss": "ppo/policy_loss",
    "value_loss": "ppo/value_loss",
    "entropy": "ppo/entropy",
    "kl": "ppo/kl",
    "learning_rate": "ppo/learning_rate",
    "action_std": "ppo/action_std",
    "disc_loss": "amp/disc_loss",
    "disc_data_accuracy": "amp/data_accuracy",
    "disc_policy_accuracy": "amp/policy_accuracy",
    "disc_data_logit": "amp/data_logit_mean",
    "disc_policy_logit": "amp/policy_logit_mean",
    "disc_grad_penalty": "amp/grad_penalty",
    "disc_balanced_accuracy": "amp/balanced_accuracy",
    **{f"disc_reliance_{group}": f"amp/reliance/{group}"
       for group in ("joint_pos", "joint_vel", "root_lin_vel", "root_ang_vel", "root_height",
                     "foot_contact")},
    "lin_vel_error": "env/lin_vel_error_mps",
    "forward_velocity": "env/forward_velocity_mps",
}
CSV_COLUMNS: tuple[str, ...] = ("iteration", "env_steps", "env_steps_per_s", *CSV_METRICS)


class RunLog:
    """Per-iteration logging of one run.

    Args:
        tensorboard_dir: Where the event files go.
        csv_path: The per-iteration CSV (rewritten atomically on each flush).
        resume_from_iteration: Keep existing CSV rows up to this iteration (a resumed run);
            None starts a fresh CSV.
    """

    def __init__(self, tensorboard_dir: Path, csv_path: Path,
                 resume_from_iteration: int | None = None) -> None:
        from tensorboardX import SummaryWriter

        self.writer = SummaryWriter(str(tensorboard_dir))
        self.csv_path = csv_path
        self.rows: list[dict[str, Any]] = []
        if resume_from_iteration is not None and csv_path.exists():
            with csv_path.open() as f:
                self.rows = [r for r in csv.DictReader(f)
                             if int(r["iteration"]) <= resume_from_iteration]

    def record(self, iteration: int, env_steps: int, steps_per_s: float,
               metrics: dict[str, float]) -> None:
        for name, value in metrics.items():
            self.writer.add_scalar(name, value, iteration)
        self.writer.add_scalar("perf/env_steps_per_s", steps_per_s, iteration)
        row: dict[str, Any] = {"iteration": iteration, "env_steps": env_steps,
                               "env_steps_per_s": f"{steps_per_s:.1f}"}
        for column, key in CSV_METRICS.items():
            row[column] = f"{metrics[key]:.6g}" if key in metrics else ""
        self.rows.append(row)

    def flush(self) -> None:
        text = io.StringIO()
        writer = csv.DictWriter(text, fieldnames=CSV_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(self.rows)
        with atomic_path(self.csv_path) as tmp:
            tmp.write_text(text.getvalue())
        self.writer.flush()

    def close(self) -> None:
        self.flush()
        self.writer.close()


def write_final_metrics(path: Path, summary: dict[str, Any]) -> None:
    """``metrics/train.json``: the run's final figures."""
    write_json_atomic(path, summary)
