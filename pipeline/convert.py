"""DVC stage: robot motions (DESIGN 4.3) → one AMP clip file per motion (and its mirror).

``python -m pipeline.convert --in data/robot --out data/amp/clips [--params params.yaml]
[--metrics metrics/convert.json] [--workers N]``. Parameters come from the ``convert:`` section of
params.yaml (fields of :class:`amp.convert.ConvertConfig`). Every clip's physical feasibility
is checked with the ``feasibility:`` thresholds (:class:`amp.feasibility.FeasibilityConfig`)
and stored with it; the metrics list the results. Bad motions are listed in the metrics file
and skipped; the exit status is non-zero only when no clip came out.
"""

from __future__ import annotations

import sys

from amp.convert import ConvertConfig
from amp.feasibility import FeasibilityConfig
from amp.stages import convert_directory
from pipeline.params import ConfigError, build_config, load_section, validate_params
from robots.cli import stage_parser
from robots.errors import AmpkitError
from robots.io import write_json_atomic
from robots.lock import stage_outputs


def main(argv: list[str] | None = None) -> int:
    parser = stage_parser("convert", prog="python -m pipeline.convert", description=__doc__)
    parser.add_argument("--in", dest="in_dir", required=True, help="directory of robot motions")
    parser.add_argument("--out", dest="out_dir", required=True, help="directory for clip files")
    parser.add_argument("--params", default="params.yaml", help="params file (section convert)")
    parser.add_argument("--metrics", default="metrics/convert.json", help="metrics JSON to write")
    parser.add_argument("--workers", type=int, default=None,
                        help="processes converting clips in parallel (outputs do not depend "
                             "on it; default: one per 64 clips, at most the CPU count)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument("--no-feasibility", action="store_true",
                        help="skip the physical feasibility check (clips carry no score)")
    args = parser.parse_args(argv)

    try:
        # Every check before any work: bad parameters or an unwritable output stop the stage
        # with nothing written or deleted.
        if args.workers is not None and args.workers < 1:
            raise ConfigError(f"--workers must be >= 1, got {args.workers}")
        config = build_config(ConvertConfig, load_section("convert", args.params),
                              f"{args.params}: convert")
        feasibility = build_config(FeasibilityConfig, load_section("feasibility", args.params),
                                   f"{args.params}: feasibility")
        validate_params(("feasibility", "merge"), args.params)
        with stage_outputs(directories=(args.out_dir,), also_written=(args.metrics,)):
            report = convert_directory(args.in_dir, args.out_dir, config,
                                       progress=not args.quiet, workers=args.workers,
                                       feasibility=None if args.no_feasibility else feasibility)
            write_json_atomic(args.metrics, report.as_metrics())
    except AmpkitError as exc:
        print(f"convert: {exc}", file=sys.stderr)
        return 1
    for reject in report.rejected:
        print(f"rejected {reject['file']}: {reject['reason']}", file=sys.stderr)
    for stale in report.extra["stale_outputs"]:
        print(f"warning: {stale} is not from this run but merge will read it", file=sys.stderr)
    print(f"convert: {len(report.outputs)} clip(s), {report.frames} frames at {config.fps:g} FPS; "
          f"{len(report.rejected)} of {report.inputs} input(s) rejected", file=sys.stderr)
    if report.extra.get("feasibility", {}).get("clips"):
        summary = report.extra["feasibility"]
        print(f"convert: physically feasible: {summary['feasible_clips']} of "
              f"{summary['clips']} clip(s), mean score {summary['mean_score']:.2f} "
              f"(params.yaml feasibility; per clip in {args.metrics})", file=sys.stderr)
    return 0 if report.outputs else 1


if __name__ == "__main__":
    from robots.errors import run_main

    sys.exit(run_main(main, "convert"))
