"""Fault injection: full and read-only disks, bad parameters, damaged files, concurrent and
killed runs. Each ends in one ampkit error naming the file or key and the problem (no
traceback, hang or segfault), every good input of the batch still comes out, and no earlier
output is lost. Numbers in the test names are the cases of issue 15.

A real full or read-only file system is a tiny tmpfs, mounted only where the tests run as root
and ``mount`` works (skipped otherwise); everywhere else the write layer is patched to fail
with the same OS error.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
from amp_fixtures import write_synthetic_motions

import robots
import robots.io
from pipeline import convert as convert_stage
from pipeline import merge as merge_stage
from pipeline import retarget as retarget_stage
from pipeline.params import load_section, validate_params
from retarget.synthesize import ClipSpec, synthesize_clip, write_npz_deterministic
from robots.config import ConfigError, build_config
from robots.errors import OutputLockedError, StorageError
from robots.h5io import LeanReader, write_file
from robots.lock import output_lock
from robots.motion import read_motion, write_motion
from training import checkpoint as ckpt
from training.config import apply_overrides, preset
from training.rundir import RunDirError, prepare_run_dir

SPEC = robots.load_spec("wildrobot")
REPO = Path(__file__).resolve().parents[1]
TRACEBACK = "Traceback (most recent call last)"


# --- helpers ---------------------------------------------------------------------------------

def _mount_available() -> bool:
    return os.geteuid() == 0 and sys.platform.startswith("linux")


@contextlib.contextmanager
def tiny_fs(where: Path, size_kib: int = 256) -> Iterator[Path]:
    """A real, tiny tmpfs at ``where`` (root and ``mount`` only; skips the test otherwise)."""
    if not _mount_available():
        pytest.skip("needs root and mount for a real tiny file system")
    where.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_kib}k", "tmpfs",
                             str(where)], capture_output=True, text=True, timeout=20)
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {result.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], capture_output=True, timeout=20)


def fill(directory: Path, leave_bytes: int = 0) -> None:
    """Fill the file system of ``directory`` until about ``leave_bytes`` are free."""
    stats = os.statvfs(directory)
    free = stats.f_bavail * stats.f_frsize
    with open(directory / "ballast", "wb") as f, contextlib.suppress(OSError):
        f.write(b"\0" * max(0, free - leave_bytes))


def remount_read_only(where: Path) -> None:
    subprocess.run(["mount", "-o", "remount,ro", str(where)], check=True, timeout=20)


def run_module(module: str, *args: str | Path, timeout: float = 60.0,
               cwd: Path = REPO) -> subprocess.CompletedProcess:
    """``python -m module args`` in a fresh interpreter (a hang fails the test by timeout)."""
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, "-m", module, *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


def assert_clean_error(proc: subprocess.CompletedProcess, *fragments: str) -> None:
    """A non-zero exit with a one-line ampkit message, not a traceback or a signal."""
    assert proc.returncode > 0, (proc.returncode, proc.stderr[-2000:])
    assert TRACEBACK not in proc.stderr, proc.stderr[-3000:]
    for fragment in fragments:
        assert fragment in proc.stderr, proc.stderr[-3000:]


def tree_bytes(root: Path, suffixes: tuple[str, ...] = (".h5", ".pkl", ".npz", ".json")
               ) -> dict[str, bytes]:
    """Relative path -> bytes of every output file under ``root`` (hidden ones included)."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and p.suffix in suffixes}


def debris(root: Path) -> list[str]:
    """Temporaries and locks left anywhere under ``root``."""
    return [p.relative_to(root).as_posix() for p in root.rglob(".*")
            if p.name.endswith((".tmp", ".lock")) or p.name.startswith((".tmp-", ".old-"))]


def _clip(path: Path, spec: ClipSpec, index: int) -> None:
    write_npz_deterministic(path, synthesize_clip(spec, (11, index)).arrays)


@pytest.fixture(scope="module")
def amass(tmp_path_factory) -> Path:
    """Two short synthesized AMASS clips (1.2 s each)."""
    root = tmp_path_factory.mktemp("amass")
    _clip(root / "walk_a.npz", ClipSpec("walk_a", "walk", 30.0, 1.2, 1.0), 0)
    _clip(root / "walk_b.npz", ClipSpec("walk_b", "walk", 30.0, 1.2, 1.1), 1)
    return root


@pytest.fixture(scope="module")
def retargeted(amass, tmp_path_factory) -> Path:
    """The clean retarget of ``amass`` (the reference every faulty run is compared to)."""
    out = tmp_path_factory.mktemp("retargeted")
    assert _retarget(amass, out) == 0
    return out


def _retarget(src: Path, out: Path, *extra: str, params: Path | None = None) -> int:
    params = params or out.parent / f"{out.name}-none.yaml"
    return retarget_stage.main(["--src", str(src), "--out", str(out), "--params", str(params),
                                "--metrics", str(out.parent / f"{out.name}-metrics.json"),
                                "--no-progress", "--jobs", "1", *extra])


@pytest.fixture()
def motions(tmp_path: Path) -> Path:
    in_dir = tmp_path / "robot"
    write_synthetic_motions(in_dir, SPEC, fps_list=(30.0, 50.0, 60.0), durations_s=(1.0,))
    return in_dir


def _convert(in_dir: Path, out: Path, metrics: Path, *extra: str,
             params: Path | None = None) -> int:
    params = params or metrics.with_name("none.yaml")
    return convert_stage.main(["--in", str(in_dir), "--out", str(out), "--params", str(params),
                               "--metrics", str(metrics), "--quiet", *extra])


def _merge(in_dir: Path, out: Path, metrics: Path, params: Path | None = None) -> int:
    params = params or metrics.with_name("none.yaml")
    return merge_stage.main(["--in", str(in_dir), "--out", str(out), "--params", str(params),
                             "--metrics", str(metrics), "--quiet"])


def _enospc(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


# --- 1. full disk ------------------------------------------------------------------------------

def test_1_hdf5_on_a_real_full_disk_is_an_error_not_a_segfault(tmp_path: Path) -> None:
    # HDF5 writing to a full disk itself crashes (SIGSEGV while closing); the write layer
    # builds the file in memory and writes it with os.write, so this must end in an error.
    code = ("import sys, numpy as np; from robots.h5io import write_file; "
            "from robots.errors import StorageError\n"
            "for i in range(3):\n"
            "    try: write_file(sys.argv[1] + f'/x{i}.h5', {'q': np.ones((50, 18))}, "
            "{'fps': 50.0})\n"
            "    except StorageError as e: print('STORAGE', e)\n")
    with tiny_fs(tmp_path / "fs", 64) as fs:
        fill(fs, leave_bytes=8192)
        proc = subprocess.run([sys.executable, "-c", code, str(fs)], cwd=REPO,
                              capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, (proc.returncode, proc.stderr[-2000:])
    assert proc.stdout.count("STORAGE") == 3 and "no space left on the device" in proc.stdout


def test_1_write_layer_enospc_names_the_output_and_keeps_the_old_file(tmp_path: Path,
                                                                       monkeypatch) -> None:
    path = tmp_path / "clip.h5"
    write_file(path, {"x": np.arange(4.0)}, {"fps": 50.0})
    before = path.read_bytes()
    monkeypatch.setattr(robots.io.os, "write", _enospc)
    with pytest.raises(StorageError, match=r"direct\.h5: cannot write: no space left") as error:
        write_file(tmp_path / "direct.h5", {"x": np.arange(8.0)}, {"fps": 60.0})
    assert error.value.errno == errno.ENOSPC
    (tmp_path / "direct.h5").unlink()
    with pytest.raises(StorageError) as error, robots.io.atomic_path(path) as tmp:
        write_file(tmp, {"x": np.arange(8.0)}, {"fps": 60.0})
    assert error.value.path == path  # the real name, not the temporary's
    assert path.read_bytes() == before and debris(tmp_path) == []


def test_1_convert_with_two_workers_on_a_full_disk_stops_cleanly(motions: Path,
                                                                 tmp_path: Path) -> None:
    with tiny_fs(tmp_path / "fs", 256) as fs:
        (fs / "clips").mkdir()
        fill(fs, leave_bytes=24 * 1024)  # room for the lock and a clip or two, not for all
        proc = run_module("pipeline.convert", "--in", motions, "--out", fs / "clips",
                          "--params", tmp_path / "none.yaml", "--metrics",
                          tmp_path / "convert.json", "--workers", "2", "--quiet", timeout=60)
        assert_clean_error(proc, "no space left on the device")
        assert debris(fs) == []


def test_1_worker_failures_surface_and_stop_the_pool() -> None:
    import math

    from robots.parallel import WorkerCrashedError, parallel_map

    assert list(parallel_map(math.sqrt, [4.0, 9.0], 2)) == [2.0, 3.0]
    with pytest.raises(ValueError, match="math domain error"):
        list(parallel_map(math.sqrt, [4.0, -1.0, 9.0], 2, start_method="spawn"))
    with pytest.raises(WorkerCrashedError, match="died while working on 3"):
        list(parallel_map(os._exit, [3], 1))


def test_1_errors_cross_process_boundaries_whole() -> None:
    import pickle

    from robots.errors import InputFileError, MotionFileError, UnknownRobotError

    for error in (StorageError("/data/x.h5", "no space left on the device (ENOSPC)", 28),
                  OutputLockedError("/data/out", "pid 7: python -m pipeline.retarget"),
                  MotionFileError("/data/m.h5", "attribute 'fps' is 'x'"),
                  InputFileError("/data/a.npz", "truncated"), UnknownRobotError("r2", ["w"])):
        copy = pickle.loads(pickle.dumps(error))
        assert type(copy) is type(error) and str(copy) == str(error)
        assert vars(copy) == vars(error)


@pytest.mark.slow
def test_1_retarget_with_two_workers_on_a_full_disk_stops_cleanly(amass: Path,
                                                                  tmp_path: Path) -> None:
    with tiny_fs(tmp_path / "fs", 128) as fs:
        (fs / "out").mkdir()
        fill(fs, leave_bytes=8 * 1024)
        proc = run_module("pipeline.retarget", "--src", amass, "--out", fs / "out", "--params",
                          tmp_path / "none.yaml", "--metrics", tmp_path / "m.json",
                          "--jobs", "2", "--no-progress", timeout=120)
        assert_clean_error(proc, "no space left on the device", str(fs / "out"))
        assert debris(fs) == [] and not list((fs / "out").glob("*.h5"))


def test_1_merge_on_a_full_disk_keeps_the_old_dataset(motions: Path, tmp_path: Path,
                                                      monkeypatch, capsys) -> None:
    clips, merged, metrics = tmp_path / "clips", tmp_path / "merged.h5", tmp_path / "m.json"
    assert _convert(motions, clips, tmp_path / "c.json") == 0
    assert _merge(clips, merged, metrics) == 0
    before, metrics_before = merged.read_bytes(), metrics.read_bytes()
    (clips / "walk_0_30hz.h5").unlink()  # the new merge would differ
    monkeypatch.setattr(robots.io.os, "write", _enospc)
    assert _merge(clips, merged, metrics) == 1
    err = capsys.readouterr().err
    assert "merged.h5: cannot write: no space left on the device (ENOSPC)" in err
    assert merged.read_bytes() == before and metrics.read_bytes() == metrics_before
    assert debris(tmp_path) == []


def test_1_checkpoint_on_a_full_disk_names_the_newest_complete_one(tmp_path: Path,
                                                                   monkeypatch) -> None:
    state = {"w": np.ones(3, np.float32)}
    ckpt.save_checkpoint(tmp_path, state, 10, {"run_id": "r"})
    monkeypatch.setattr(robots.io.os, "write", _enospc)
    with pytest.raises(StorageError, match="iter_00000020.*no space left.*newest complete "
                                           "checkpoint: .*iter_00000010"):
        ckpt.save_checkpoint(tmp_path, state, 20, {"run_id": "r"})
    monkeypatch.undo()
    assert [p.name for p in ckpt.list_checkpoints(tmp_path)] == ["iter_00000010"]
    assert debris(tmp_path) == []


# --- 2. a fresh run into an existing run directory ------------------------------------------

def test_2_fresh_run_into_a_used_run_directory_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "run"
    ckpt.save_checkpoint(out / "checkpoints", {"w": np.zeros(2)}, 20, {"run_id": "old"})
    with pytest.raises(RunDirError, match=r"run: already holds a run \(checkpoints/\); pass "
                                          r"--resume .* --overwrite"):
        prepare_run_dir(out, resume=False, overwrite=False)
    assert prepare_run_dir(out, resume=True, overwrite=False) == []
    assert ckpt.list_checkpoints(out / "checkpoints")  # untouched
    assert prepare_run_dir(out, resume=False, overwrite=True) == [out / "checkpoints"]
    assert not (out / "checkpoints").exists()


def test_2_training_cli_refuses_before_any_work(tmp_path: Path, capsys) -> None:
    from training import train

    out = tmp_path / "run"
    ckpt.save_checkpoint(out / "checkpoints", {"w": np.zeros(2)}, 20, {"run_id": "old"})
    code = train.main(["--data", str(tmp_path / "missing.h5"), "--out", str(out), "--metrics",
                       str(tmp_path / "t.json"), "--plot", str(tmp_path / "t.csv"),
                       "--no-progress"])
    assert code == 2
    err = capsys.readouterr().err
    assert f"{out}: already holds a run (checkpoints/)" in err and "--overwrite" in err
    assert not (tmp_path / "t.json").exists() and ckpt.list_checkpoints(out / "checkpoints")


def test_2_pruning_counts_only_this_runs_checkpoints(tmp_path: Path) -> None:
    for iteration in (10, 20, 30):
        ckpt.save_checkpoint(tmp_path, {"w": np.zeros(2)}, iteration, {"run_id": "old"}, keep=3)
    for iteration in (5, 15):
        ckpt.save_checkpoint(tmp_path, {"w": np.ones(2)}, iteration, {"run_id": "new"}, keep=1)
    names = [p.name for p in ckpt.list_checkpoints(tmp_path)]
    assert names == ["iter_00000010", "iter_00000015", "iter_00000020", "iter_00000030"]


# --- 3. a wrong-typed parameter never deletes earlier outputs ---------------------------------

@pytest.mark.parametrize(("section", "body", "message"), [
    ("retarget", "  max_fps: fast\n", "retarget.max_fps: expected a number, got the string"),
    ("retarget", "  ik:\n    max_iterations: 2.5\n", "ik.max_iterations: expected an integer"),
    ("retarget", "  formats: h5\n", "retarget.formats: expected a list, got the string 'h5'"),
    ("convert", "  mirror: 'false'\n", "convert.mirror: expected true or false, got the "
                                       "string 'false'"),
    ("merge", "  fps: -50\n", "merge.fps: must be > 0, got -50.0"),
])
def test_3_bad_parameter_stops_retarget_before_it_touches_outputs(
        amass, retargeted, tmp_path, capsys, section, body, message) -> None:
    out = tmp_path / "out"
    out.mkdir()
    for path in retargeted.glob("*.h5"):
        (out / path.name).write_bytes(path.read_bytes())
    before = tree_bytes(out)
    params = tmp_path / "params.yaml"
    params.write_text(f"{section}:\n{body}")
    assert _retarget(amass, out, "--prune", params=params) == 2
    err = capsys.readouterr().err
    assert message in err and str(params) in err
    assert tree_bytes(out) == before


def test_3_strict_types_false_is_not_true() -> None:
    from amp.convert import ConvertConfig

    assert build_config(ConvertConfig, {"mirror": False}).mirror is False
    with pytest.raises(ConfigError, match="expected true or false"):
        build_config(ConvertConfig, {"mirror": "false"})
    with pytest.raises(ConfigError, match="expected true or false"):
        build_config(ConvertConfig, {"mirror": 0})
    assert build_config(ConvertConfig, {"min_frames": 4.0}).min_frames == 4
    with pytest.raises(ConfigError, match="contact: is a nested config"):
        build_config(ConvertConfig, {"contact": 0.02})


# --- 4. misspelled sections, bounds up front --------------------------------------------------

@dataclasses.dataclass(frozen=True)
class _Item:
    name: str
    weight: float = 1.0


@dataclasses.dataclass(frozen=True)
class _Inner:
    BOUNDS: ClassVar[dict[str, str]] = {"rate_hz": "> 0", "share": "(0, 1]"}

    rate_hz: float = 50.0
    share: float = 0.5
    count: int = 3
    offset_m: float = -0.1


@dataclasses.dataclass(frozen=True)
class _Outer:
    inner: _Inner = _Inner()
    limit: float | None = None
    pair: tuple[int, int] = (1, 2)
    items: tuple[_Item, ...] = ()


@pytest.mark.parametrize(("overrides", "message"), [
    ({"inner": {"rate_hz": 0}}, "cfg.inner.rate_hz: must be > 0, got 0.0"),
    ({"inner": {"share": 0.0}}, "cfg.inner.share: must lie in (0, 1], got 0.0"),
    ({"inner": {"count": -1}}, "cfg.inner.count: must be >= 0, got -1"),
    ({"inner": {"count": True}}, "cfg.inner.count: expected an integer, got bool True"),
    ({"limit": "none"}, "cfg.limit: expected a number, got the string 'none'"),
    ({"pair": [1, 2, 3]}, "cfg.pair: expected a list of 2 items, got 3"),
    ({"items": [{"weight": 2}]}, "cfg.items[0]: missing key(s) ['name']"),
    ({"items": [{"name": "a", "wieght": 2}]}, "cfg.items[0]: unknown key(s) ['wieght']"),
    ({"inner": {"rate": 5}}, "cfg.inner: unknown key(s) ['rate']; valid keys: ['count', "
                             "'offset_m', 'rate_hz', 'share']"),
])
def test_4_every_key_is_typed_and_bounded(overrides, message) -> None:
    with pytest.raises(ConfigError) as error:
        build_config(_Outer, overrides, "cfg")
    assert message in str(error.value)


def test_4_good_values_are_coerced_exactly() -> None:
    config = build_config(_Outer, {"inner": {"rate_hz": 30, "offset_m": -0.5}, "limit": None,
                                   "pair": [3, 4.0], "items": [{"name": "a"}]}, "cfg")
    assert config == _Outer(_Inner(rate_hz=30.0, offset_m=-0.5), None, (3, 4), (_Item("a"),))
    assert isinstance(config.inner.rate_hz, float) and isinstance(config.pair[1], int)


def test_4_exponent_notation_that_yaml_leaves_a_string_is_a_number() -> None:
    """PyYAML (YAML 1.1) reads ``3e-5`` as a string; a float field takes it as 3e-5, and an
    integer field or a non-number string is still refused."""
    import yaml

    assert yaml.safe_load("3e-5") == "3e-5"  # the quirk this guards against
    config = build_config(_Outer, {"inner": {"offset_m": yaml.safe_load("-3e-5")},
                                   "limit": yaml.safe_load("1E4")}, "cfg")
    assert config.inner.offset_m == -3e-5 and config.limit == 1e4
    with pytest.raises(ConfigError, match="expected an integer, got the string '2e3'"):
        build_config(_Outer, {"inner": {"count": "2e3"}}, "cfg")
    with pytest.raises(ConfigError, match="expected a number, got the string '3e'"):
        build_config(_Outer, {"limit": "3e"}, "cfg")


def test_4_misspelled_section_is_an_error_listing_the_valid_ones(tmp_path: Path) -> None:
    params = tmp_path / "params.yaml"
    params.write_text("retraget:\n  max_fps: 30\n")
    with pytest.raises(ConfigError, match=r"unknown section\(s\) \['retraget'\]; valid "
                                          r"sections: \[.*'retarget'"):
        load_section("retarget", params)


def test_4_misspelled_section_stops_the_retarget_stage(amass, tmp_path, capsys) -> None:
    params = tmp_path / "params.yaml"
    params.write_text("retraget:\n  max_fps: 30\n")
    assert _retarget(amass, tmp_path / "out", params=params) == 2
    assert "unknown section(s) ['retraget']" in capsys.readouterr().err
    assert not list((tmp_path / "out").glob("*.h5")) if (tmp_path / "out").exists() else True


@pytest.mark.parametrize(("assignment", "message"), [
    ("ppo.num_envs=0", "ppo.num_envs: must be >= 1, got 0"),
    ("ppo.num_minibatches=0", "ppo.num_minibatches: must be >= 1, got 0"),
    ("ppo.unroll_length=-4", "ppo.unroll_length: must be >= 1"),
    ("amp.replay_fraction=1.5", "amp.replay_fraction: must lie in [0, 1], got 1.5"),
    ("network.value_hidden=[64,0]", "network.value_hidden: must be >= 1, got 0"),
    ("amp.speed_match_max_ratio=0.5", "amp.speed_match_max_ratio: must be >= 1, got 0.5"),
    ("amp.speed_matched_data=maybe", "amp.speed_matched_data"),
    ("ppo.num_minibatches=3", "not divisible by ppo.num_minibatches=3"),
])
def test_4_training_bounds_are_checked_up_front(assignment, message) -> None:
    with pytest.raises(ConfigError) as error:
        apply_overrides(preset("cpu-smoke"), [assignment])
    assert message in str(error.value)


def test_4_negative_jobs_and_workers_are_refused(amass, motions, tmp_path, capsys) -> None:
    assert _retarget(amass, tmp_path / "out", "--jobs", "-3") == 2
    assert "--jobs must be >= 1, got -3" in capsys.readouterr().err
    assert _convert(motions, tmp_path / "c", tmp_path / "c.json", "--workers", "0") == 1
    assert "--workers must be >= 1, got 0" in capsys.readouterr().err


def test_4_later_sections_are_checked_by_the_first_stage(tmp_path: Path) -> None:
    params = tmp_path / "params.yaml"
    params.write_text("convert:\n  fps: 0\n")
    with pytest.raises(ConfigError, match=r"convert\.fps: must be > 0, got 0"):
        validate_params(("convert", "merge"), params)


# --- 5. one bad attribute does not abort a batch ----------------------------------------------

@pytest.mark.parametrize(("value", "reason"), [
    ("fifty", "attribute 'fps' is 'fifty' (str), expected a number"),
    (np.array([30.0, 31.0]), "malformed (attribute 'fps' has shape (2,), expected a single "
                             "value)"),
])
def test_5_a_malformed_fps_attribute_rejects_only_that_file(motions, tmp_path, value,
                                                            reason) -> None:
    import h5py

    bad = motions / "walk_1_50hz.h5"
    with h5py.File(bad, "r+") as f:
        del f.attrs["fps"]
        f.attrs["fps"] = value
    out, metrics = tmp_path / "clips", tmp_path / "convert.json"
    assert _convert(motions, out, metrics) == 0
    report = json.loads(metrics.read_text())
    assert report["rejected"] == [{"file": str(bad), "reason": reason}]
    assert sorted(p.name for p in out.glob("*.h5")) == ["walk_0_30hz.h5", "walk_2_60hz.h5"]


# --- 6. damaged checkpoints --------------------------------------------------------------------

def _three_checkpoints(directory: Path) -> list[Path]:
    return [ckpt.save_checkpoint(directory, {"w": np.full(64, float(i), np.float32)},
                                 i, {"run_id": "r"}) for i in (1, 2, 3)]


@pytest.mark.parametrize("damage", ["truncate_state", "flip_state", "truncate_meta", "nan"])
def test_6_damaged_newest_checkpoint_is_named_and_the_previous_one_used(
        tmp_path, capsys, damage) -> None:
    first, second, third = _three_checkpoints(tmp_path)
    state, meta = third / ckpt.STATE_FILE, third / ckpt.META_FILE
    if damage == "truncate_state":
        state.write_bytes(state.read_bytes()[:100])
    elif damage == "flip_state":
        data = bytearray(state.read_bytes())
        data[len(data) // 2] ^= 0x10
        state.write_bytes(bytes(data))
    elif damage == "truncate_meta":
        meta.write_text(meta.read_text()[:40])
    else:  # a well-formed checkpoint holding NaN (as a diverged run would write it)
        (third.parent / "nan").mkdir()
        nan = ckpt.save_checkpoint(third.parent / "nan", {"w": np.full(64, np.nan, np.float32)},
                                   3, {"run_id": "r"})
        for name in (ckpt.STATE_FILE, ckpt.META_FILE, ckpt.SUMS_FILE):
            (third / name).write_bytes((nan / name).read_bytes())
    expected = {"truncate_state": f"{state}: damaged", "flip_state": f"{state}: damaged",
                "truncate_meta": f"{meta}: damaged", "nan": f"{state}: non-finite values"}[damage]
    with pytest.raises(ckpt.CheckpointError, match="damaged|non-finite") as error:
        ckpt.verify_checkpoint(third)
    assert expected in str(error.value)
    with pytest.raises(ckpt.CheckpointError):
        ckpt.load_checkpoint(third, {"w": np.zeros(64, np.float32)})
    good, skipped = ckpt.newest_good_checkpoint(tmp_path)
    assert good == second and [p for p, _ in skipped] == [third]
    err = capsys.readouterr().err
    assert f"skipping checkpoint {third}" in err and f"using {second}" in err
    restored, _ = ckpt.load_checkpoint(good, {"w": np.zeros(64, np.float32)})
    np.testing.assert_array_equal(restored["w"], np.full(64, 2.0, np.float32))


def test_6_export_and_evaluate_refuse_a_nan_checkpoint(tmp_path: Path, capsys) -> None:
    from training import evaluate, export

    run = tmp_path / "run"
    nan = ckpt.save_checkpoint(run / "checkpoints", {"w": np.array([np.nan], np.float32)}, 5,
                               {})
    assert export.main(["--checkpoint", str(run), "--out", str(tmp_path / "p.onnx")]) == 2
    assert evaluate.main(["--checkpoint", str(run), "--out", str(tmp_path / "e.json")]) == 2
    assert export.main(["--checkpoint", str(nan), "--out", str(tmp_path / "p.onnx")]) == 2
    err = capsys.readouterr().err
    assert err.count("no usable checkpoint") == 2
    assert err.count(f"{nan / ckpt.STATE_FILE}: non-finite values (NaN/inf) in ['w']") == 5
    assert not (tmp_path / "p.onnx").exists() and not (tmp_path / "e.json").exists()


# --- 7. read-only output ------------------------------------------------------------------------

def test_7_read_only_metrics_location_stops_merge_before_the_dataset(
        motions, tmp_path, monkeypatch, capsys) -> None:
    clips = tmp_path / "clips"
    assert _convert(motions, clips, tmp_path / "c.json") == 0
    real_mkstemp = robots.io.tempfile.mkstemp

    def read_only_metrics(*args, **kwargs):
        if str(kwargs.get("dir", "")).endswith("ro"):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS))
        return real_mkstemp(*args, **kwargs)

    monkeypatch.setattr(robots.io.tempfile, "mkstemp", read_only_metrics)
    (tmp_path / "ro").mkdir()
    assert _merge(clips, tmp_path / "merged.h5", tmp_path / "ro" / "dataset.json") == 1
    err = capsys.readouterr().err
    assert "dataset.json: cannot write: the file system is read-only (EROFS)" in err
    assert not (tmp_path / "merged.h5").exists()  # nothing half-finished


def test_7_real_read_only_file_system(motions, tmp_path, capsys) -> None:
    with tiny_fs(tmp_path / "fs", 1024) as fs:
        assert _convert(motions, fs / "clips", fs / "convert.json") == 0
        before = tree_bytes(fs)
        remount_read_only(fs)
        assert _merge(fs / "clips", fs / "merged.h5", fs / "m.json",
                      params=tmp_path / "none.yaml") == 1
        assert _convert(motions, fs / "clips", fs / "convert.json",
                        params=tmp_path / "none.yaml") == 1
        assert tree_bytes(fs) == before
    err = capsys.readouterr().err
    assert f"{fs / 'merged.h5'}: cannot write: the file system is read-only (EROFS)" in err
    assert f"{fs / 'clips'}: cannot write: the file system is read-only (EROFS)" in err


# --- 8. concurrent runs -----------------------------------------------------------------------

def test_8_second_writer_fails_fast_naming_the_first(amass, motions, tmp_path, capsys) -> None:
    out = tmp_path / "out"
    with output_lock(out) as lock:
        assert lock == out / ".ampkit.lock"
        start = time.monotonic()
        assert _retarget(amass, out) == 2
        assert time.monotonic() - start < 10  # failed fast, did not wait
        err = capsys.readouterr().err
        assert f"{out}: in use by another run (pid {os.getpid()}" in err
        with pytest.raises(OutputLockedError, match="in use by another run"), output_lock(out):
            pass
    assert not list(out.glob("*.h5")) and not lock.exists()
    with output_lock(out):  # released: the next run gets it
        pass


def test_8_lock_held_by_another_process(tmp_path: Path) -> None:
    out = tmp_path / "clips"
    code = ("import sys, time; from robots.lock import output_lock\n"
            "with output_lock(sys.argv[1]):\n    print('HELD', flush=True); time.sleep(30)\n")
    holder = subprocess.Popen([sys.executable, "-c", code, str(out)], cwd=REPO,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "HELD"
        with pytest.raises(OutputLockedError, match=f"pid {holder.pid}: .*-c .*started"), \
                output_lock(out):
            pass
        holder.kill()  # kill -9: the kernel drops the lock
        holder.wait(timeout=10)
        with output_lock(out):
            pass
    finally:
        holder.kill()


# --- 9. debris of killed runs -------------------------------------------------------------------

def test_9_stale_temporaries_are_removed_at_start_and_ignored_by_dvc(motions, tmp_path) -> None:
    out = tmp_path / "clips"
    out.mkdir()
    dead = 2 ** 22 + 12345  # above the default pid_max: never a live process
    stale = [out / f".walk_0_30hz.h5.{dead}.abcd1234.tmp", out / f".x.h5.{dead}.zzzz9999.tmp",
             out / f".tmp-iter_00000010-{dead}"]
    for path in stale[:2]:
        path.write_bytes(b"half a file")
    stale[2].mkdir()
    live = out / f".walk_9.h5.{os.getpid()}.abcd1234.tmp"  # a live writer's: kept
    live.write_bytes(b"being written")
    assert _convert(motions, out, tmp_path / "c.json") == 0
    assert not any(p.exists() for p in stale) and live.exists()
    patterns = [line.strip() for line in (REPO / ".dvcignore").read_text().splitlines()
                if line.strip() and not line.startswith("#")]
    import fnmatch

    for name in (stale[0].name, stale[2].name, ".ampkit.lock", ".merged.h5.lock"):
        assert any(fnmatch.fnmatch(name, p) for p in patterns), name


# --- 10. minor: odd files named like clips ---------------------------------------------------

def test_10_odd_files_named_npz_and_a_half_hertz_clip_are_listed_as_rejects(amass,
                                                                            tmp_path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "walk_a.npz").write_bytes((amass / "walk_a.npz").read_bytes())
    (src / "folder.npz").mkdir()
    (src / "loop.npz").symlink_to(src / "loop.npz")
    _clip(src / "slow.npz", ClipSpec("slow", "walk", 0.5, 30.0, 1.0), 2)  # 16 frames at 0.5 Hz
    out = tmp_path / "out"
    assert _retarget(src, out) == 0
    rejected = json.loads((tmp_path / "out-metrics.json").read_text())["rejected"]
    assert set(rejected) == {"folder", "loop", "slow"}
    assert "Is a directory" in rejected["folder"] and "symbolic links" in rejected["loop"]
    assert rejected["slow"] == f"{src / 'slow.npz'}: frame rate 0.5 Hz is below " \
                               "reject.min_fps=10 Hz"
    assert (out / "walk_a.h5").exists()


# --- kill -9 at random points, then a re-run: byte-identical outputs ------------------------

def _kill_at_random(cmd: list[str], delay_s: float) -> int:
    """Start ``cmd`` in its own process group, SIGKILL the group after ``delay_s``."""
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        proc.wait(timeout=delay_s)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=20)
    return proc.returncode


def _seed() -> int:
    seed = int.from_bytes(os.urandom(4), "little")
    print(f"kill-9 seed {seed}")  # shown on failure, to replay the same kill point
    return seed


def test_kill9_synthesize_then_rerun_is_byte_identical(tmp_path: Path) -> None:
    from pipeline.synthesize import main as synthesize_main

    params = tmp_path / "params.yaml"
    params.write_text("synthesize:\n  clips:\n"
                      "    - {name: walk_k, kind: walk, fps: 60, duration_s: 1.0}\n"
                      "    - {name: turn_k, kind: turn, fps: 30, duration_s: 1.0}\n")
    assert synthesize_main(["--out", str(tmp_path / "ref"), "--params", str(params)]) == 0
    rng = random.Random(_seed())
    cmd = [sys.executable, "-m", "pipeline.synthesize", "--out", str(tmp_path / "out"),
           "--params", str(params)]
    _kill_at_random(cmd, rng.uniform(0.5, 4.0))
    assert subprocess.run(cmd, cwd=REPO, timeout=60, capture_output=True).returncode == 0
    assert tree_bytes(tmp_path / "out") == tree_bytes(tmp_path / "ref")
    assert debris(tmp_path / "out") == []


def test_kill9_convert_then_rerun_is_byte_identical(motions, tmp_path) -> None:
    reference = tmp_path / "ref"
    assert _convert(motions, reference, tmp_path / "ref.json", "--workers", "2") == 0
    rng = random.Random(_seed())
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "pipeline.convert", "--in", str(motions), "--out", str(out),
           "--params", str(tmp_path / "none.yaml"), "--metrics", str(tmp_path / "m.json"),
           "--workers", "2", "--quiet"]
    _kill_at_random(cmd, rng.uniform(0.5, 4.0))
    assert subprocess.run(cmd, cwd=REPO, timeout=60, capture_output=True).returncode == 0
    assert tree_bytes(out) == tree_bytes(reference) and debris(out) == []
    assert (json.loads((tmp_path / "m.json").read_text())
            == json.loads((tmp_path / "ref.json").read_text()))


def test_kill9_merge_then_rerun_is_byte_identical(motions, tmp_path) -> None:
    clips = tmp_path / "clips"
    assert _convert(motions, clips, tmp_path / "c.json") == 0
    assert _merge(clips, tmp_path / "ref.h5", tmp_path / "ref.json") == 0
    rng = random.Random(_seed())
    cmd = [sys.executable, "-m", "pipeline.merge", "--in", str(clips), "--out",
           str(tmp_path / "merged.h5"), "--params", str(tmp_path / "none.yaml"), "--metrics",
           str(tmp_path / "m.json"), "--quiet"]
    _kill_at_random(cmd, rng.uniform(0.5, 3.5))
    assert subprocess.run(cmd, cwd=REPO, timeout=60, capture_output=True).returncode == 0
    assert (tmp_path / "merged.h5").read_bytes() == (tmp_path / "ref.h5").read_bytes()
    assert debris(tmp_path) == []


def test_kill9_retarget_then_rerun_is_byte_identical(amass, retargeted, tmp_path) -> None:
    rng = random.Random(_seed())
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "pipeline.retarget", "--src", str(amass), "--out", str(out),
           "--params", str(tmp_path / "none.yaml"), "--metrics", str(tmp_path / "m.json"),
           "--jobs", "1", "--no-progress", "--prune"]
    _kill_at_random(cmd, rng.uniform(1.0, 8.0))
    assert subprocess.run(cmd, cwd=REPO, timeout=120, capture_output=True).returncode == 0
    assert tree_bytes(out, (".h5",)) == tree_bytes(retargeted, (".h5",))
    assert debris(out) == []
    motion = read_motion(out / "walk_a.h5")
    assert motion.num_frames > 10


_CHECKPOINT_LOOP = """
import sys, numpy as np
from training import checkpoint as ckpt
directory = sys.argv[1]
good, _ = ckpt.newest_good_checkpoint(directory, warn=False)
start = 0 if good is None else ckpt.read_meta(good)["iteration"]
w = np.zeros(4096, np.float32) if good is None else ckpt.read_state_arrays(good)["leaf_00000"]
for iteration in range(start + 1, 41):
    w = w + np.float32(iteration)
    ckpt.save_checkpoint(directory, {"w": w}, iteration, {"run_id": "loop"}, keep=2)
"""


def test_kill9_while_checkpointing_then_resume_is_byte_identical(tmp_path: Path) -> None:
    def run(directory: Path, delay: float | None) -> None:
        cmd = [sys.executable, "-c", _CHECKPOINT_LOOP, str(directory)]
        if delay is None:
            assert subprocess.run(cmd, cwd=REPO, timeout=60).returncode == 0
        else:
            _kill_at_random(cmd, delay)

    run(tmp_path / "ref", None)
    rng = random.Random(_seed())
    run(tmp_path / "run", rng.uniform(0.8, 3.0))
    robots.io.remove_stale_temps(tmp_path / "run")  # what the trainer does at start
    run(tmp_path / "run", None)
    final = "iter_00000040"
    for name in (ckpt.STATE_FILE, ckpt.META_FILE, ckpt.SUMS_FILE):
        assert ((tmp_path / "run" / final / name).read_bytes()
                == (tmp_path / "ref" / final / name).read_bytes())
    assert [p.name for p in ckpt.list_checkpoints(tmp_path / "run")] == ["iter_00000039", final]
    assert debris(tmp_path / "run") == []


def test_lean_reader_still_reads_what_the_memory_image_wrote(tmp_path: Path) -> None:
    motion_dir = tmp_path / "m"
    path = write_synthetic_motions(motion_dir, SPEC, fps_list=(50.0,), durations_s=(0.5,))[0]
    motion = read_motion(path)
    write_motion(tmp_path / "again.h5", motion)
    assert (tmp_path / "again.h5").read_bytes() == path.read_bytes()
    with LeanReader(path) as reader:
        assert reader.attr("fps") == 50.0


def test_6_checkpoint_of_another_state_names_its_leaves_and_the_warm_start(tmp_path) -> None:
    # As an older ampkit's checkpoint: the env state then had no filtered_action.
    old = ckpt.save_checkpoint(tmp_path, {"w": np.zeros(2, np.float32)}, 1, {"run_id": "r"})
    template = {"w": np.zeros(2, np.float32), "filtered_action": np.zeros(3, np.float32)}
    with pytest.raises(ckpt.CheckpointError) as error:
        ckpt.load_checkpoint(old, template)
    message = str(error.value)
    assert f"{old}: holds 1 state leaves, this run has 2" in message
    assert "it lacks ['filtered_action']" in message and "--init-from" in message
    restored, _, kept = ckpt.load_matching(old, template)
    assert kept == ["['filtered_action']"]


def test_train_cli_writes_its_metrics_beside_the_run_by_default() -> None:
    from training import train

    by_hand = train.run_paths(train.parse_args(["--data", "d.h5", "--out", "runs/probe"]))
    assert by_hand == train.RunPaths(Path("runs/probe"), Path("runs/probe/train.json"),
                                     Path("runs/probe/train_progress.csv"))
    stage = train.run_paths(train.parse_args(["--data", "d.h5", "--metrics", "metrics/t.json",
                                              "--plot", "metrics/t.csv"]))
    assert (stage.out, stage.metrics_json, stage.progress_csv) == (
        Path("runs/amp"), Path("metrics/t.json"), Path("metrics/t.csv"))
