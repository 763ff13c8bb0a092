"""DVC stages ``summarize_data`` and ``summarize_policy``: the numbers ``dvc metrics show`` prints.

    python -m pipeline.summary --retarget metrics/retarget.json --convert metrics/convert.json \\
        --dataset metrics/dataset.json --out metrics/summary --plots metrics/plots
    python -m pipeline.summary --train metrics/train.json --eval metrics/eval.json \\
        --out metrics/summary --plots metrics/plots

The stages' own metrics files hold hundreds of numbers (``metrics/eval.json`` alone over 500),
and ``dvc metrics show`` prints every key of every declared metrics file as one column. So
only these summaries are declared as DVC metrics: one small file per stage under
``metrics/summary/``, a few numbers each, where a column means the same thing in every row
(``clips``, ``rejected``, ``style``), so the table fits a 160-column terminal. The full
files stay plain outputs, and the per-clip and per-scenario tables go to ``metrics/plots/`` for
``dvc plots show``.
"""

from __future__ import annotations

import csv
import io
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from robots.cli import STAGES, stage_parser
from robots.errors import AmpkitError, InputFileError
from robots.io import write_json_atomic, write_text_atomic

RETARGET_CLIP_COLUMNS: tuple[str, ...] = (
    "keypoint_error_mean_m", "keypoint_error_max_m", "foot_skate_mps", "foot_skate_max_mps",
    "foot_penetration_max_m", "foot_float_max_m", "max_joint_speed_rad_s",
    "joint_limit_violations")
"""Per-clip quality columns of ``retarget_clips.csv`` (after ``clip``), as in retarget.json."""

EVAL_SCENARIO_COLUMNS: tuple[str, ...] = (
    "success_rate", "survival_s", "lin_vel_error_mps", "yaw_rate_error_rps",
    "lin_vel_error_windowed_mps", "yaw_rate_error_windowed_rps", "style_score",
    "cost_of_transport")
"""Per-scenario columns of ``eval_scenarios.csv`` (after ``scenario``), as in eval.json."""


def read_metrics(path: str | Path) -> dict[str, Any]:
    """A metrics JSON object.

    Raises:
        InputFileError: the file is missing, is not JSON, or is not a JSON object.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise InputFileError(path, "no such metrics file (run its stage first)") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputFileError(path, f"not a readable JSON file: {exc}") from exc
    if not isinstance(data, dict):
        raise InputFileError(path, f"expected a JSON object, got {type(data).__name__}")
    return data


def _field(report: Mapping[str, Any], key: str, source: str) -> Any:
    """``report[key]`` following dots (``"final.rollout/fall_rate"``); an error names ``source``."""
    value: Any = report
    for part in key.split("."):  # train.json's "final" keys hold slashes, never dots
        if not isinstance(value, Mapping) or part not in value:
            raise InputFileError(source, f"has no {key!r}")
        value = value[part]
    return value


def summarize_retarget(report: Mapping[str, Any], source: str = "retarget.json") -> dict[str, Any]:
    """Headline of the retarget stage from its ``metrics/retarget.json``.

    Returns:
        ``clips``: clips with a robot motion; ``rejected``: clips refused;
        ``keypoint_err_m``: mean keypoint error over all frames [m] (the run's figure). Foot
        skate and the rest are per clip in ``retarget_clips.csv``.
    """
    summary = _field(report, "summary", source)
    return {"clips": len(_field(report, "clips", source)),
            "rejected": len(_field(report, "rejected", source)),
            "keypoint_err_m": _field(summary, "keypoint_error_mean_m", source)}


def summarize_dataset(convert: Mapping[str, Any], dataset: Mapping[str, Any],
                      sources: tuple[str, str] = ("convert.json", "dataset.json")
                      ) -> dict[str, Any]:
    """Headline of convert + merge: ``clips`` in the dataset, ``rejected`` by either stage,
    ``seconds`` of motion in the dataset [s]."""
    return {"clips": _field(dataset, "clips", sources[1]),
            "rejected": (_field(convert, "rejected_count", sources[0])
                         + _field(dataset, "rejected_count", sources[1])),
            "seconds": _field(dataset, "duration_s", sources[1])}


def summarize_train(report: Mapping[str, Any], source: str = "train.json") -> dict[str, Any]:
    """Headline of training from ``metrics/train.json`` (its last iteration).

    Returns:
        ``iteration``; ``fall_rate``: falls per environment step in the last rollout;
        ``style``: mean AMP style reward of the last rollout's transitions (0..1).
    """
    return {"iteration": _field(report, "iteration", source),
            "fall_rate": _field(report, "final.rollout/fall_rate", source),
            "style": _field(report, "final.amp/style_reward_mean", source)}


def summarize_eval(report: Mapping[str, Any], source: str = "eval.json") -> dict[str, Any]:
    """Headline of the scenario suite from ``metrics/eval.json``.

    Returns:
        ``success``: share of all the suite's episodes that ran to the end without a fall
        (scenarios weighted by their episode counts); ``lin_err_mps``: mean linear velocity
        tracking error of the ``flat`` scenario [m/s]; ``style``: the same
        episode-weighted mean of the style score (the training's style reward on the
        evaluation's transitions); ``sim2sim_gap``: the largest |MuJoCo - MJX| success-rate
        difference over the scenarios (absent when sim-to-sim was skipped).
    """
    scenarios = _field(report, "scenarios", source)
    if not isinstance(scenarios, Mapping) or not scenarios:
        raise InputFileError(source, "has no scenarios")
    weights = {name: _field(s, "episodes", f"{source}: scenarios.{name}")
               for name, s in scenarios.items()}
    total = sum(weights.values())
    if total <= 0:
        raise InputFileError(source, "its scenarios hold no episodes")

    def weighted(key: str) -> float:
        return sum(weights[name] * _field(s, key, f"{source}: scenarios.{name}")
                   for name, s in scenarios.items()) / total

    summary = {"success": weighted("success_rate"),
               "lin_err_mps": _field(scenarios, "flat.lin_vel_error_mps", source),
               "style": weighted("style_score")}
    gap = report.get("sim2sim", {}).get("max_abs_gap", {}).get("success_rate")
    if gap is not None:
        summary["sim2sim_gap"] = gap
    return summary


def retarget_clip_rows(report: Mapping[str, Any], source: str = "retarget.json"
                       ) -> list[dict[str, Any]]:
    """One row per retargeted clip: ``clip`` and :data:`RETARGET_CLIP_COLUMNS` (empty if absent)."""
    clips = _field(report, "clips", source)
    return [{"clip": name, **{c: quality.get(c, "") for c in RETARGET_CLIP_COLUMNS}}
            for name, quality in sorted(clips.items())]


def eval_scenario_rows(report: Mapping[str, Any], source: str = "eval.json"
                       ) -> list[dict[str, Any]]:
    """One row per scenario: ``scenario``, :data:`EVAL_SCENARIO_COLUMNS`, and
    ``sim2sim_success_gap``: MuJoCo minus MJX success rate on the episodes replayed in both
    (empty without sim-to-sim). Not MuJoCo's own rate: it covers only the first episodes."""
    scenarios = _field(report, "scenarios", source)
    gaps = report.get("sim2sim", {}).get("gap", {})
    return [{"scenario": name, **{c: s.get(c, "") for c in EVAL_SCENARIO_COLUMNS},
             "sim2sim_success_gap": gaps.get(name, {}).get("success_rate", "")}
            for name, s in scenarios.items()]


def csv_text(rows: Sequence[Mapping[str, Any]]) -> str:
    """``rows`` as CSV with a header (the first row's keys)."""
    out = io.StringIO()
    if rows:
        writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return out.getvalue()


def main(argv: list[str] | None = None) -> int:
    description = (__doc__ or "").split("\n\n", 1)[0]
    parser = stage_parser("summarize_data", prog="python -m pipeline.summary",
                          description=description)
    # One command serves both stages; the epilog names the first, so add the second.
    parser.epilog = f"{parser.epilog}\n\n{STAGES['summarize_policy'].epilog()}"
    parser.add_argument("--retarget", type=Path, help="retarget metrics (metrics/retarget.json)")
    parser.add_argument("--convert", type=Path, help="convert metrics (needs --dataset)")
    parser.add_argument("--dataset", type=Path, help="merge metrics (needs --convert)")
    parser.add_argument("--train", type=Path, help="training metrics (metrics/train.json)")
    parser.add_argument("--eval", type=Path, help="evaluation metrics (metrics/eval.json)")
    parser.add_argument("--out", type=Path, default=Path("metrics/summary"),
                        help="directory of the summaries (<stage>.json)")
    parser.add_argument("--plots", type=Path, default=Path("metrics/plots"),
                        help="directory of the per-clip / per-scenario CSV tables")
    args = parser.parse_args(argv)
    if (args.convert is None) != (args.dataset is None):
        parser.error("--convert and --dataset go together")
    try:
        written = write_summaries(args.out, args.plots, args.retarget, args.convert,
                                  args.dataset, args.train, args.eval)
    except AmpkitError as exc:
        print(f"summary: {exc}", file=sys.stderr)
        return 1
    if not written:
        parser.error("nothing to summarize: give --retarget, --convert/--dataset, --train "
                     "or --eval")
    print(f"summary: wrote {', '.join(map(str, written))}", file=sys.stderr)
    return 0


def write_summaries(out: Path, plots: Path, retarget: Path | None = None,
                    convert: Path | None = None, dataset: Path | None = None,
                    train: Path | None = None, evaluation: Path | None = None) -> list[Path]:
    """Write the summaries (``out/<stage>.json``) and tables (``plots/*.csv``) that inputs are
    given for; ``convert`` and ``dataset`` go together. Returns the paths written."""
    written: list[Path] = []

    def put(path: Path, content: str | dict[str, Any]) -> None:
        if isinstance(content, str):
            write_text_atomic(path, content)
        else:
            write_json_atomic(path, content)
        written.append(path)

    if retarget is not None:
        report = read_metrics(retarget)
        put(out / "retarget.json", summarize_retarget(report, str(retarget)))
        put(plots / "retarget_clips.csv", csv_text(retarget_clip_rows(report, str(retarget))))
    if convert is not None and dataset is not None:
        put(out / "dataset.json", summarize_dataset(read_metrics(convert), read_metrics(dataset),
                                                    (str(convert), str(dataset))))
    if train is not None:
        put(out / "train.json", summarize_train(read_metrics(train), str(train)))
    if evaluation is not None:
        report = read_metrics(evaluation)
        put(out / "eval.json", summarize_eval(report, str(evaluation)))
        put(plots / "eval_scenarios.csv", csv_text(eval_scenario_rows(report, str(evaluation))))
    return written


if __name__ == "__main__":
    from robots.errors import run_main

    sys.exit(run_main(main, "summary"))
