"""training.quiet_imports: MJX's "Failed to import warp" lines never reach stdout."""

from __future__ import annotations

import importlib
import re
import subprocess
import sys
from pathlib import Path

import pytest

from training.quiet_imports import MISSING_WARP, QuietImportFinder, forward_unmatched

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def chatty_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A package whose import prints what mujoco.mjx.warp prints, plus one other line."""
    name = "ampkit_chatty_pkg"
    pkg = tmp_path / name
    pkg.mkdir()
    (pkg / "__init__.py").write_text(
        "print(\"Failed to import warp: No module named 'warp'\")\n"
        "print(\"Failed to import mujoco_warp: No module named 'warp'\")\n"
        "print('Failed to import warp: CUDA driver version is insufficient')\n"
        "VALUE = 42\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    finder = QuietImportFinder(name, MISSING_WARP)
    monkeypatch.setattr(sys, "meta_path", [finder, *sys.meta_path])
    yield name
    sys.modules.pop(name, None)


def test_missing_warp_lines_dropped_other_output_goes_to_stderr(
        chatty_module: str, capsys: pytest.CaptureFixture[str]) -> None:
    module = importlib.import_module(chatty_module)
    out, err = capsys.readouterr()
    assert module.VALUE == 42
    assert out == ""
    # A warp that is there but broken is news: it still shows, on stderr.
    assert err == "Failed to import warp: CUDA driver version is insufficient\n"


def test_forward_unmatched_matches_whole_lines(capsys: pytest.CaptureFixture[str]) -> None:
    forward_unmatched("Failed to import warp: No module named 'warp'\n"
                      "Failed to import warp: No module named 'warp'; and more\n"
                      "Failed to import mujoco_warp: No module named 'warp.context'\n",
                      MISSING_WARP)
    assert capsys.readouterr().err == "Failed to import warp: No module named 'warp'; and more\n"


def test_other_modules_are_not_touched() -> None:
    finder = QuietImportFinder("mujoco.mjx.warp", re.compile("x"))
    assert finder.find_spec("json", None) is None


def test_importing_mjx_after_training_prints_nothing() -> None:
    # A fresh interpreter: the real mujoco.mjx, imported the way every training entry point does.
    code = ("import training\nfrom mujoco import mjx\nimport mujoco.mjx.warp as w\n"
            "print('warp installed:', w.WARP_INSTALLED, callable(mjx.put_model))")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "warp installed: False True\n"
    assert "Failed to import" not in result.stderr
