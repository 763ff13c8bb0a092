"""DVC stage: synthesize the default AMASS-format SMPL-X locomotion clips (DESIGN 4.1).

``python -m pipeline.synthesize --out data/raw/synthetic [--params params.yaml] [--seed N]``.
Parameters come from the ``synthesize:`` section of params.yaml when present (fields of
:class:`retarget.synthesize.SynthesisConfig`: seed, height_m, duration_scale, clips). Writes one
``<clip>.npz`` per clip and ``manifest.json``; the same seed gives the same bytes.
When params.yaml's ``source.kind`` is ``amass`` nothing is synthesized: the directory holds only
a manifest saying so, and the retarget stage reads the AMASS clips instead.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

from pipeline.params import build_config, load_section
from pipeline.sources import load_source
from retarget.synthesize import MANIFEST_NAME, SynthesisConfig, synthesize
from robots.cli import stage_parser
from robots.errors import AmpkitError
from robots.io import write_json_atomic
from robots.lock import stage_outputs


def write_skipped_manifest(out_dir: str) -> None:
    """Empty the output directory of clips and record why (DVC still needs the output)."""
    out = Path(out_dir)
    for stale in out.glob("*.npz"):
        stale.unlink()
    write_json_atomic(out / MANIFEST_NAME, {"num_clips": 0, "skipped": "source.kind is not "
                                            "synthetic", "clips": []})


def main(argv: list[str] | None = None) -> int:
    parser = stage_parser("synthesize", prog="python -m pipeline.synthesize", description=__doc__)
    parser.add_argument("--out", dest="out_dir", default="data/raw/synthetic",
                        help="directory for the .npz clips and manifest.json")
    parser.add_argument("--params", default="params.yaml", help="params file (section synthesize)")
    parser.add_argument("--seed", type=int, default=None, help="override the params seed")
    args = parser.parse_args(argv)

    try:
        config = build_config(SynthesisConfig, load_section("synthesize", args.params),
                              f"{args.params}: synthesize")
        if args.seed is not None:
            config = dataclasses.replace(config, seed=args.seed)
    except (AmpkitError, ValueError, TypeError) as error:
        print(f"synthesize: {error}", file=sys.stderr)
        return 2
    try:
        # One writer per output directory; temporaries of a killed run are removed first.
        with stage_outputs(directories=(args.out_dir,)):
            if load_source(args.params).kind != "synthetic":
                write_skipped_manifest(args.out_dir)
                print(f"synthesize: source.kind is not synthetic; nothing synthesized in "
                      f"{args.out_dir}", file=sys.stderr)
                return 0
            manifest = synthesize(args.out_dir, config)
    except AmpkitError as error:
        print(f"synthesize: {error}", file=sys.stderr)
        return 2
    print(f"synthesize: {manifest['num_clips']} clip(s), {manifest['total_duration_s']:.1f} s "
          f"in total, seed {config.seed} -> {args.out_dir}/ ({MANIFEST_NAME})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    from robots.errors import run_main

    sys.exit(run_main(main, "synthesize"))
