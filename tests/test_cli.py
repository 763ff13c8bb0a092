"""robots.cli: every stage's --help states its params, inputs and outputs (as dvc.yaml does),
and an unknown argument is an error listing the valid ones."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from robots.cli import STAGES, StageDoc, stage_parser

ROOT = Path(__file__).resolve().parents[1]
DVC_STAGES = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]


def _path(item: str) -> str:
    """A StageDoc entry without its note and trailing slash: ``"data/x/ (...)"`` -> data/x."""
    return item.split(" (", 1)[0].rstrip("/")


def _declared(entries: list) -> list[str]:
    return [next(iter(e)) if isinstance(e, dict) else e for e in entries]


def test_epilog_layout() -> None:
    doc = StageDoc("merge", ("merge", "convert.fps"), ("data/amp/clips/",),
                   ("data/amp/merged.h5", "metrics/dataset.json"))
    assert doc.epilog() == (
        "DVC stage `merge` (run it with: dvc repro merge)\n"
        "  params.yaml  merge, convert.fps\n"
        "  reads        data/amp/clips/\n"
        "  writes       data/amp/merged.h5\n"
        "               metrics/dataset.json")
    assert StageDoc("x", (), (), ()).epilog().splitlines()[1:] == [
        "  params.yaml  -", "  reads        -", "  writes       -"]


@pytest.mark.parametrize("name", sorted(STAGES))
def test_stage_doc_agrees_with_dvc_yaml(name: str) -> None:
    doc, stage = STAGES[name], DVC_STAGES[name]
    assert list(doc.params) == stage.get("params", [])
    declared = sorted(_declared(stage.get("outs", []) + stage.get("metrics", [])
                                + stage.get("plots", [])))
    assert sorted(_path(o) for o in doc.outputs) == declared
    deps = {d.rstrip("/") for d in stage["deps"]}
    for item in doc.inputs:  # "source.dir (...)" is the interpolated ${source.dir}
        path = _path(item)
        assert path in deps or f"${{{path}}}" in deps, (name, path)


def test_every_python_stage_has_a_doc() -> None:
    python_stages = {n for n, s in DVC_STAGES.items()
                     if "python -m" in (s["cmd"] if isinstance(s["cmd"], str) else "")}
    assert python_stages <= set(STAGES)


def test_help_ends_with_the_stage_facts(capsys: pytest.CaptureFixture[str]) -> None:
    from pipeline import convert

    with pytest.raises(SystemExit) as exit_info:
        convert.main(["--help"])
    assert exit_info.value.code == 0
    out, err = capsys.readouterr()
    assert out.rstrip().endswith(STAGES["convert"].epilog()) and err == ""
    assert "params.yaml  convert" in out and "metrics/convert.json" in out


def test_unknown_argument_lists_valid_options(capsys: pytest.CaptureFixture[str]) -> None:
    parser = stage_parser("convert", prog="python -m pipeline.convert")
    parser.add_argument("--in", dest="in_dir")
    parser.add_argument("--metrics")
    parser.add_argument("--quiet", action="store_true")
    assert parser.parse_args(["--in", "a", "--quiet"]).in_dir == "a"
    with pytest.raises(SystemExit) as exit_info:
        parser.parse_args(["--in", "a", "--metrcs=m.json"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "unrecognized argument(s): --metrcs=m.json (did you mean --metrics?)" in err
    assert re.search(r"^valid options: -h, --help, --in, --metrics, --quiet$", err, re.M)


def test_unknown_argument_of_a_real_stage(capsys: pytest.CaptureFixture[str]) -> None:
    from pipeline import merge

    with pytest.raises(SystemExit) as exit_info:
        merge.main(["--in", "x", "--out", "y", "--weights", "2"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "unrecognized argument(s): --weights 2" in err
    valid = re.search(r"^valid options: (.*)$", err, re.M).group(1).split(", ")
    assert {"--in", "--out", "--params", "--metrics"} <= set(valid)
