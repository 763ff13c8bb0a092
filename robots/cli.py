"""The command-line front every DVC stage shares: its ``--help`` and its argument errors.

Each stage's ``--help`` ends with what the stage is in the pipeline: its ``params.yaml``
sections, what it reads and what it writes (the :data:`STAGES` table, kept equal to
``dvc.yaml`` by ``tests/test_cli.py``). An unknown argument is an error that lists the valid
options (and the nearest one), instead of argparse's bare "unrecognized arguments".

This sits in ``robots`` because it is the one package every stage (``pipeline.*`` and
``training.train``/``training.evaluate``) may import.
"""

from __future__ import annotations

import argparse
import difflib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NoReturn


@dataclass(frozen=True)
class StageDoc:
    """What one DVC stage is: the facts its ``--help`` states.

    Attributes:
        name: The stage's name in ``dvc.yaml``.
        params: The ``params.yaml`` sections it reads (a dotted key stands for one field).
        inputs: The files or directories it reads (code excluded), with a note where useful.
        outputs: The files or directories it writes, as ``dvc.yaml`` declares them.
    """

    name: str
    params: tuple[str, ...]
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]

    def epilog(self) -> str:
        """The ``--help`` footer: stage name, params sections, inputs and outputs."""
        lines = [f"DVC stage `{self.name}` (run it with: dvc repro {self.name})"]
        lines += _listing("params.yaml", (", ".join(self.params),) if self.params else ())
        lines += _listing("reads", self.inputs)
        lines += _listing("writes", self.outputs)
        return "\n".join(lines)


def _listing(label: str, items: tuple[str, ...]) -> list[str]:
    """``label`` and the first item on one line, the others below it, in one column."""
    first, *rest = items or ("-",)
    return [f"  {label:<13}{first}"] + [f"  {'':<13}{item}" for item in rest]


STAGES: dict[str, StageDoc] = {doc.name: doc for doc in (
    StageDoc("synthesize", ("source.kind", "synthesize"), (),
             ("data/raw/synthetic/ (16 AMASS-format .npz clips + manifest.json)",)),
    StageDoc("retarget", ("source", "body_model", "retarget"),
             ("source.dir (default data/raw/synthetic/: the clips to retarget)",),
             ("data/retargeted/ (one robot-motion .h5 per clip)",
              "metrics/retarget.json (per-clip quality, rejects)",
              "metrics/retarget_summary.json (the run)")),
    StageDoc("convert", ("convert", "feasibility"), ("data/retargeted/",),
             ("data/amp/clips/ (one AMP clip file per motion and mirror)",
              "metrics/convert.json")),
    StageDoc("merge", ("merge",), ("data/amp/clips/",),
             ("data/amp/merged.h5 (the AMP dataset)", "metrics/dataset.json")),
    StageDoc("render_reference", ("render_reference",), ("data/retargeted/",),
             ("videos/reference/ (mp4s and contact_sheet.png)",)),
    StageDoc("train", ("train",), ("data/amp/merged.h5",),
             ("runs/amp/ (checkpoints, TensorBoard events under tb/)",
              "metrics/train.json (final losses and rewards)",
              "metrics/train_progress.csv (one row per iteration, for dvc plots)")),
    StageDoc("evaluate", ("evaluate",), ("runs/amp/ (newest checkpoint)", "data/amp/merged.h5"),
             ("metrics/eval.json (every scenario metric and the sim-to-sim gap)",)),
    StageDoc("render_policy", ("render_policy",),
             ("runs/amp/ (newest checkpoint)", "data/amp/merged.h5", "data/amp/clips/"),
             ("videos/policy/ (one mp4 per command)",)),
    StageDoc("summarize_data", (),
             ("metrics/retarget.json", "metrics/convert.json", "metrics/dataset.json"),
             ("metrics/summary/retarget.json", "metrics/summary/dataset.json",
              "metrics/plots/retarget_clips.csv (per-clip quality, for dvc plots)")),
    StageDoc("summarize_policy", (), ("metrics/train.json", "metrics/eval.json"),
             ("metrics/summary/train.json", "metrics/summary/eval.json",
              "metrics/plots/eval_scenarios.csv (per-scenario results, for dvc plots)")),
)}
"""Every stage of ``dvc.yaml`` that has a ``--help``, by stage name."""


class StageArgumentParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose unknown-argument error lists the valid options."""

    def parse_args(self, args: Sequence[str] | None = None,  # type: ignore[override]
                   namespace: argparse.Namespace | None = None) -> argparse.Namespace:
        parsed, unknown = self.parse_known_args(args, namespace)
        if unknown:
            self.unknown_arguments(unknown)
        return parsed

    def valid_options(self) -> list[str]:
        """Every option string this parser accepts, long forms first as declared."""
        return [s for action in self._actions for s in action.option_strings]

    def unknown_arguments(self, unknown: Sequence[str]) -> NoReturn:
        """Exit (status 2) naming the unknown arguments, the nearest valid one, and all."""
        valid = self.valid_options()
        message = f"unrecognized argument(s): {' '.join(unknown)}"
        flags = [u.split("=", 1)[0] for u in unknown if u.startswith("-")]
        near = difflib.get_close_matches(flags[0], valid, n=1) if flags else []
        if near:
            message += f" (did you mean {near[0]}?)"
        self.error(f"{message}\nvalid options: {', '.join(valid)}")


def stage_parser(stage: str, **kwargs: Any) -> StageArgumentParser:
    """The argument parser of DVC stage ``stage``, its help ending with the stage's facts.

    Args:
        stage: A key of :data:`STAGES`.
        **kwargs: Passed to ``argparse.ArgumentParser`` (``prog``, ``description`` ...); the
            description keeps its line breaks.
    """
    kwargs.setdefault("formatter_class", argparse.RawDescriptionHelpFormatter)
    return StageArgumentParser(epilog=STAGES[stage].epilog(), **kwargs)
