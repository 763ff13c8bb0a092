"""DVC stage: retarget AMASS clips onto a robot (``python -m pipeline.retarget``).

Reads the ``retarget:`` section of params.yaml (``retarget.retarget.RetargetConfig``) and the
``source:`` and ``body_model:`` sections (which clips, which body model); the command-line
options below override them. Writes one ``.h5`` robot motion per clip (DESIGN 4.3),
optionally a GMR-style ``.pkl`` beside it, and the run's metrics (per clip, summary, rejects).
Exits 1 only when no usable clip is left (none found, or all rejected).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from pathlib import Path

from pipeline.params import (
    DEFAULT_PARAMS,
    ConfigError,
    build_config,
    load_section,
    validate_params,
)
from pipeline.sources import load_body_model, load_source
from retarget.body_models import BODY_MODEL_KINDS
from retarget.retarget import OUTPUT_FORMATS, SOURCE_SUFFIXES, RetargetConfig, supported_types
from retarget.stages import retarget_directory
from robots.cli import stage_parser
from robots.errors import AmpkitError
from robots.io import write_json_atomic
from robots.lock import stage_outputs

DEFAULT_METRICS = Path("metrics/retarget.json")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = stage_parser("retarget", prog="python -m pipeline.retarget", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--src", type=Path,
                        help="directory of AMASS .npz / .bvh clips (searched recursively) or "
                             "one file "
                             "(default: params.yaml source.dir)")
    parser.add_argument("--out", type=Path, required=True, help="output directory")
    parser.add_argument("--robot", help="robot name (default: params.yaml, else wildrobot)")
    parser.add_argument("--body-model", choices=BODY_MODEL_KINDS,
                        help="body model (default: params.yaml, else skeleton)")
    parser.add_argument("--body-model-dir", type=Path,
                        help="SMPL-X model directory (holds smplx/SMPLX_NEUTRAL.npz)")
    parser.add_argument("--format", choices=OUTPUT_FORMATS, action="append", default=None,
                        help="extra output format; 'gmr' also writes a GMR-style .pkl per clip")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                        help="worker processes (default: all cores)")
    parser.add_argument("--metrics", type=Path, default=DEFAULT_METRICS,
                        help=f"metrics file (default: {DEFAULT_METRICS})")
    parser.add_argument("--summary", type=Path,
                        help="run summary only, for `dvc metrics show` (default: beside "
                             "--metrics, named <stem>_summary.json)")
    parser.add_argument("--params", type=Path, default=DEFAULT_PARAMS,
                        help=f"parameters file (default: {DEFAULT_PARAMS})")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--prune", action="store_true",
                        help="delete outputs whose source clip is gone (DVC-managed --out)")
    return parser.parse_args(argv)


def build_retarget_config(args: argparse.Namespace) -> RetargetConfig:
    """params.yaml's ``retarget:`` section, then the command-line overrides."""
    config = build_config(RetargetConfig, load_section("retarget", args.params),
                          f"{args.params}: retarget")
    body_model = load_body_model(args.params)
    overrides: dict[str, object] = {"body_model": body_model.kind,
                                    "body_model_dir": body_model.dir}
    if args.robot:
        overrides["robot"] = args.robot
    if args.body_model:
        overrides["body_model"] = args.body_model
    if args.body_model_dir:
        overrides["body_model_dir"] = str(args.body_model_dir)
    if args.format:
        overrides["formats"] = tuple(dict.fromkeys(("h5", *config.formats, *args.format)))
    return dataclasses.replace(config, **overrides)


def _other_files(src: Path) -> str:
    """``; found instead: 3 .txt, 1 .fbx`` (file types there that are no clip), or ''."""
    if not src.is_dir():
        return ""
    counts: dict[str, int] = {}
    for path in src.rglob("*"):
        if path.is_file() and path.suffix.lower() not in SOURCE_SUFFIXES:
            counts[path.suffix or "(no suffix)"] = counts.get(path.suffix or "(no suffix)", 0) + 1
    found = ", ".join(f"{n} {suffix}" for suffix, n in sorted(counts.items()))
    return f"; found instead: {found}" if found else "; the directory is empty"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    summary_path = args.summary or args.metrics.with_name(f"{args.metrics.stem}_summary.json")
    try:
        # Every check before any work: a bad parameter (here or in a later stage's section)
        # or an unwritable output stops the stage with nothing deleted.
        if args.jobs < 1:
            raise ConfigError(f"--jobs must be >= 1, got {args.jobs}")
        config = build_retarget_config(args)
        source = load_source(args.params)
        validate_params(("convert", "feasibility", "merge"), args.params)
        src = args.src or Path(source.dir)
        if not src.exists():
            raise AmpkitError(f"{src}: source directory does not exist")
        with stage_outputs(directories=(args.out,), also_written=(args.metrics, summary_path)):
            report = retarget_directory(src, args.out, config, jobs=args.jobs,
                                        progress=not args.no_progress, include=source.include,
                                        exclude=source.exclude, prune=args.prune)
            metrics = report.metrics()
            write_json_atomic(args.metrics, metrics)
            write_json_atomic(summary_path, {**metrics["summary"],
                                             "rejected": metrics["rejected"],
                                             "flagged": metrics["flagged"]})
    except (AmpkitError, ValueError) as exc:
        print(f"retarget: {exc}", file=sys.stderr)
        return 2
    summary = metrics["summary"]
    for name, reason in metrics["rejected"].items():
        print(f"retarget: rejected {name}: {reason}", file=sys.stderr)
    for name, flags in metrics["flagged"].items():
        print(f"retarget: flagged {name}: {'; '.join(flags)}", file=sys.stderr)
    print(f"retarget: {summary['clips_retargeted']} retargeted, {summary['clips_skipped']} "
          f"current, {summary['clips_rejected']} rejected, {summary['clips_flagged']} flagged; "
          f"metrics in {args.metrics}")
    if report.usable == 0:
        if not report.outcomes:
            print(f"retarget: no clip found under {src}: nothing matches include "
                  f"{list(source.include)} minus exclude {list(source.exclude)} among the "
                  f"supported types ({supported_types()}){_other_files(src)}", file=sys.stderr)
        print("retarget: no usable clip", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    from robots.errors import run_main

    sys.exit(run_main(main, "retarget"))
