"""``bench.walk``'s training figures: the last-10 % means and the summed iteration time, and a
clear error for a run without its progress CSV."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from bench.walk import main, training_figures
from robots.errors import AmpkitError


def _write_progress(path: Path, rows: int) -> None:
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["iteration", "env_steps", "env_steps_per_s", "style_reward",
                         "disc_policy_accuracy"])
        for i in range(1, rows + 1):
            writer.writerow([i, 100 * i, 50.0, i / 100, 1.0 - i / 1000])


def test_figures_are_last_tenth_means_and_summed_iteration_time(tmp_path: Path) -> None:
    path = tmp_path / "train_progress.csv"
    _write_progress(path, 20)
    figures = training_figures(path)
    assert figures["env_steps"] == 2000
    assert figures["train_s"] == pytest.approx(20 * 100 / 50.0)  # 2 s per iteration
    assert figures["style_last10"] == pytest.approx((0.19 + 0.20) / 2)
    assert figures["disc_policy_acc_last10"] == pytest.approx(1.0 - 0.0195)


def test_a_run_without_its_progress_csv_is_named_before_any_evaluation(
        tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(AmpkitError, match="no training progress CSV"):
        training_figures(tmp_path / "train_progress.csv")
    assert main(["--eval-only", "--out", str(tmp_path), "--data", str(tmp_path / "d.h5")]) == 2
    assert "train_progress.csv: no training progress CSV" in capsys.readouterr().err


def test_an_unwritable_report_location_stops_the_bench_before_training(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    import errno
    import os

    import robots.io
    from bench import walk

    real_mkstemp = robots.io.tempfile.mkstemp

    def read_only(*args, **kwargs):
        if str(kwargs.get("dir", "")).endswith("ro"):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS))
        return real_mkstemp(*args, **kwargs)

    def no_training(args) -> None:
        raise AssertionError("trained before checking where the report goes")

    monkeypatch.setattr(robots.io.tempfile, "mkstemp", read_only)
    monkeypatch.setattr(walk, "train_or_resume", no_training)
    (tmp_path / "ro").mkdir()
    assert main(["--out", str(tmp_path / "run"), "--data", str(tmp_path / "d.h5"),
                 "--report", str(tmp_path / "ro" / "walk_eval.json")]) == 2
    assert "walk_eval.json: cannot write: the file system is read-only (EROFS)" in \
        capsys.readouterr().err
