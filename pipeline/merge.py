"""DVC stage: AMP clip files → the merged dataset (DESIGN 4.5).

``python -m pipeline.merge --in data/amp/clips --out data/amp/merged.h5 [--params params.yaml]
[--metrics metrics/merge.json]``. Parameters come from the ``merge:`` section of params.yaml
(fields of :class:`amp.merge.MergeConfig`, e.g. ``weights: {"*run*": 2.0}``). Bad clip files
are listed in the metrics file and skipped; the exit status is non-zero only when nothing
usable is left.
"""

from __future__ import annotations

import sys

from amp.merge import MergeConfig, write_merged
from amp.stages import merge_directory
from pipeline.params import build_config, load_section
from robots.cli import stage_parser
from robots.errors import AmpkitError, StorageError
from robots.io import write_json_atomic
from robots.lock import stage_outputs


def main(argv: list[str] | None = None) -> int:
    parser = stage_parser("merge", prog="python -m pipeline.merge", description=__doc__)
    parser.add_argument("--in", dest="in_dir", required=True, help="directory of clip files")
    parser.add_argument("--out", dest="out_file", required=True, help="merged dataset to write")
    parser.add_argument("--params", default="params.yaml", help="params file (section merge)")
    parser.add_argument("--metrics", default="metrics/merge.json", help="metrics JSON to write")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)

    try:
        # Every check before any work: bad parameters or an unwritable output (the dataset or
        # its metrics) stop the stage before either is written.
        config = build_config(MergeConfig, load_section("merge", args.params),
                              f"{args.params}: merge")
        with stage_outputs(files=(args.out_file,), also_written=(args.metrics,)):
            try:
                data, report = merge_directory(args.in_dir, config, progress=not args.quiet)
            except StorageError:
                raise
            except AmpkitError as exc:  # MergeError included: say why in the metrics
                write_json_atomic(args.metrics, {"error": str(exc)})
                raise
            if data is not None:
                write_merged(args.out_file, data)
            write_json_atomic(args.metrics, report.as_metrics())
    except AmpkitError as exc:  # MergeError, ConfigError, StorageError included
        print(f"merge: {exc}", file=sys.stderr)
        return 1
    for reject in report.rejected:
        print(f"rejected {reject['file']}: {reject['reason']}", file=sys.stderr)
    if data is None:
        print(f"merge: no usable clip among {report.inputs} input(s)", file=sys.stderr)
        return 1
    print(f"merge: {data.num_clips} clip(s), {data.num_frames} frames, "
          f"content_sha256 {data.content_sha256[:12]}; {len(report.rejected)} rejected",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    from robots.errors import run_main

    sys.exit(run_main(main, "merge"))
