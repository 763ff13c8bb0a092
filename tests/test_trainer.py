"""The AMP+PPO trainer end to end on a tiny stand-in environment (tests/trainer_fixtures.py):
learning, bit-for-bit resume, dataset checks, the NaN guard, two devices vs one, and the CLI on
the real MJX environment (slow)."""

from __future__ import annotations

import csv
import dataclasses
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from trainer_fixtures import PointWalk, tiny_config, write_reference_dataset

from amp.merge import DatasetFileError
from training import checkpoint as ckpt
from training.run_log import CSV_COLUMNS
from training.train import (
    DataMismatchError,
    NonFiniteError,
    RunPaths,
    check_contact_rule,
    check_finite,
    load_reference,
    main,
    train,
    with_dataset_contact_rule,
)

TESTS_DIR = Path(__file__).resolve().parent


def learning_config():
    """12 iterations; the action noise's cap anneals from 0.5 to 0.2 and the style weight ramps
    from 0.5 to 1.0 over iterations 4-8, so resume is also checked across both."""
    config = tiny_config(num_iterations=12, checkpoint_every=4)
    network = dataclasses.replace(config.network, init_action_std=0.5, max_action_std=0.5,
                                  final_max_action_std=0.2, anneal_iterations=(4, 8))
    amp = dataclasses.replace(config.amp, final_style_weight=1.0, style_ramp_iterations=(4, 8))
    return dataclasses.replace(config, network=network, amp=amp,
                               ppo=dataclasses.replace(config.ppo, num_envs=32,
                                                       unroll_length=16))


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    """One uninterrupted 12-iteration run shared by the tests (one compile for the module)."""
    root = tmp_path_factory.mktemp("trainer")
    env = PointWalk()
    dataset = load_reference(write_reference_dataset(root / "merged.h5"), env)
    config = learning_config()
    paths = RunPaths.under(root / "full")
    result = train(config, dataset, paths, env=env, progress=False)
    with paths.progress_csv.open() as f:
        rows = list(csv.DictReader(f))
    return SimpleNamespace(root=root, env=env, dataset=dataset, config=config, paths=paths,
                           result=result, rows=rows)


def column(rows: list[dict[str, str]], name: str) -> np.ndarray:
    return np.array([float(r[name]) for r in rows])


def test_task_reward_rises_and_discriminator_separates_policy_from_data(run) -> None:
    task = column(run.rows, "task_reward")
    assert task[-3:].mean() > task[0] + 0.15, task
    accuracy = 0.5 * (column(run.rows, "disc_data_accuracy")
                      + column(run.rows, "disc_policy_accuracy"))
    assert accuracy[-1] > 0.75, accuracy
    assert accuracy[-1] > accuracy[0] + 0.2, accuracy
    assert column(run.rows, "style_reward").min() >= 0.0


def test_rollouts_use_the_annealed_action_noise(run) -> None:
    """Row k logs iteration k-1's noise: the cap is 0.5 through iteration 4, then falls
    geometrically (0.5 x 0.4^(1/4) at 5) to 0.2 from iteration 8 on."""
    std = column(run.rows, "action_std")
    assert np.all(std[:5] <= 0.5 + 1e-6) and std[0] == pytest.approx(0.5, rel=1e-5)
    assert std[5] == pytest.approx(0.5 * 0.4 ** 0.25, rel=1e-4)
    np.testing.assert_allclose(std[8:], 0.2, rtol=1e-5)


def test_the_style_weight_ramps_and_mixes_the_reward(run) -> None:
    """Row k logs iteration k-1: weight 0.5 through iteration 4, 0.5 + 0.125 per iteration to
    1.0 at 8; each row's mean reward is 0.5 x task + that weight x style."""
    weight = column(run.rows, "style_weight")
    expected = [0.5] * 5 + [0.625, 0.75, 0.875] + [1.0] * 4
    np.testing.assert_allclose(weight, expected, rtol=1e-6)
    mixed = 0.5 * column(run.rows, "task_reward") + weight * column(run.rows, "style_reward")
    np.testing.assert_allclose(column(run.rows, "total_reward"), mixed, rtol=1e-4, atol=1e-5)


def test_outputs_logs_metrics_and_checkpoint_metadata(run) -> None:
    assert tuple(run.rows[0]) == CSV_COLUMNS and len(run.rows) == 12
    summary = json.loads(run.paths.metrics_json.read_text())
    assert summary["iteration"] == 12 and summary["env_steps"] == 12 * 32 * 16
    assert summary["dataset_content_sha256"] == run.dataset.content_sha256
    assert list(run.paths.tensorboard.glob("events.out.tfevents.*"))
    names = [p.name for p in ckpt.list_checkpoints(run.paths.checkpoints)]
    assert names == ["iter_00000004", "iter_00000008", "iter_00000012"]
    assert not [p for p in run.paths.checkpoints.iterdir() if p.name.startswith(".")]
    meta = ckpt.read_meta(run.paths.checkpoints / "iter_00000012")
    assert meta["dataset"]["content_sha256"] == run.dataset.content_sha256
    assert meta["robot"] == "wildrobot" and meta["iteration"] == 12
    assert meta["config"]["ppo"]["num_envs"] == 32 and meta["git_commit"]


def test_resume_is_bit_for_bit_equal_to_an_uninterrupted_run(run, tmp_path: Path) -> None:
    paths = RunPaths.under(tmp_path / "resumed")
    first = train(run.config, run.dataset, paths, env=run.env, stop_at=5, progress=False)
    assert first.iteration == 5 and first.checkpoint.name == "iter_00000005"
    resumed = train(run.config, run.dataset, paths, env=run.env, resume=True, progress=False)
    assert resumed.iteration == 12
    full = jax.tree_util.tree_leaves(jax.device_get(run.result.state))
    again = jax.tree_util.tree_leaves(jax.device_get(resumed.state))
    assert len(full) == len(again)
    for a, b in zip(full, again, strict=True):
        np.testing.assert_array_equal(a, b)
    with paths.progress_csv.open() as f:
        rows = list(csv.DictReader(f))
    np.testing.assert_array_equal(column(rows, "task_reward"), column(run.rows, "task_reward"))


def test_a_warm_start_with_unchanged_settings_continues_like_a_resume(run, tmp_path: Path):
    """``init_from`` restores every leaf the checkpoint holds and continues from its
    iteration, so with the same config it equals the uninterrupted run bit for bit."""
    paths = RunPaths.under(tmp_path / "warm")
    warm = train(run.config, run.dataset, paths, env=run.env, progress=False,
                 init_from=run.paths.checkpoints / "iter_00000008")
    assert warm.iteration == 12
    for a, b in zip(jax.tree_util.tree_leaves(jax.device_get(run.result.state)),
                    jax.tree_util.tree_leaves(jax.device_get(warm.state)), strict=True):
        np.testing.assert_array_equal(a, b)
    with paths.progress_csv.open() as f:
        assert [int(r["iteration"]) for r in csv.DictReader(f)] == [9, 10, 11, 12]


def test_warm_start_keeps_new_leaves_fresh_and_refuses_other_shapes(tmp_path: Path) -> None:
    stored = {"policy": jnp.arange(3.0), "step": jnp.asarray(7, jnp.int32)}
    folder = ckpt.save_checkpoint(tmp_path, stored, 7, {"run_id": "x"})
    template = {"policy": jnp.zeros(3), "step": jnp.asarray(0, jnp.int32),
                "filter": jnp.full(2, 5.0)}
    state, meta, kept = ckpt.load_matching(folder, template)
    np.testing.assert_array_equal(state["policy"], [0.0, 1.0, 2.0])
    assert int(state["step"]) == 7 and meta["iteration"] == 7
    np.testing.assert_array_equal(state["filter"], [5.0, 5.0])
    assert kept == ["['filter']"]
    with pytest.raises(ckpt.CheckpointError, match=r"\['policy'\] \(3,\) float32 does not match"):
        ckpt.load_matching(folder, {**template, "policy": jnp.zeros(4)})


def test_resume_refuses_another_dataset_unless_allowed(run, tmp_path: Path) -> None:
    paths = RunPaths.under(tmp_path / "run")
    train(run.config, run.dataset, paths, env=run.env, stop_at=2, progress=False)
    other = load_reference(write_reference_dataset(tmp_path / "other.h5", scale=1.1), run.env)
    assert other.content_sha256 != run.dataset.content_sha256
    with pytest.raises(DataMismatchError, match="--allow-data-mismatch"):
        train(run.config, other, paths, env=run.env, resume=True, progress=False)
    changed = dataclasses.replace(run.config, seed=7)
    with pytest.raises(ckpt.CheckpointError, match="seed"):
        train(changed, run.dataset, paths, env=run.env, resume=True, progress=False)
    result = train(run.config, other, paths, env=run.env, resume=True,
                   allow_data_mismatch=True, stop_at=3, progress=False)
    assert result.iteration == 3


def test_dataset_of_another_robot_or_layout_is_refused(run, tmp_path: Path) -> None:
    with pytest.raises(DatasetFileError, match="robot 'otherbot'"):
        load_reference(write_reference_dataset(tmp_path / "a.h5", robot="otherbot"), run.env)
    joints = tuple(reversed(run.env.robot.spec.amp_joint_names))
    with pytest.raises(DatasetFileError, match="layout"):
        load_reference(write_reference_dataset(tmp_path / "b.h5", amp_joints=joints), run.env)


def test_nan_stops_the_run_naming_the_loss_and_keeps_the_last_good_checkpoint(
        run, tmp_path: Path) -> None:
    paths = RunPaths.under(tmp_path / "run")
    train(run.config, run.dataset, paths, env=run.env, stop_at=2, progress=False)
    arrays = run.dataset.arrays
    poisoned = dataclasses.replace(
        run.dataset, arrays=arrays._replace(features=jnp.full_like(arrays.features, jnp.nan)))
    with pytest.raises(NonFiniteError, match="amp/disc_loss") as error:
        train(run.config, poisoned, paths, env=run.env, resume=True, progress=False)
    assert "iteration 3" in str(error.value) and "iter_00000002" in str(error.value)
    names = [p.name for p in ckpt.list_checkpoints(paths.checkpoints)]
    assert names == ["iter_00000002"]


def test_check_finite_names_the_parameter_path() -> None:
    with pytest.raises(NonFiniteError, match="parameter value/params/Dense_0/kernel"):
        check_finite(7, {"ppo/value_loss": 1.0}, np.array([True, False]),
                     ["policy/params/log_std", "value/params/Dense_0/kernel"], None)
    check_finite(7, {"ppo/value_loss": 1.0}, np.array([True, True]), ["a", "b"], None)


def test_two_devices_match_one_device_on_the_same_global_batch(tmp_path: Path) -> None:
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=2")
    code = ("import json, sys; from pathlib import Path; sys.path.insert(0, sys.argv[1]); "
            "import conftest; from trainer_fixtures import compare_device_counts; "
            "print('RESULT', json.dumps(compare_device_counts(Path(sys.argv[2]))))")
    proc = subprocess.run([sys.executable, "-c", code, str(TESTS_DIR), str(tmp_path)],
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = next(x for x in proc.stdout.splitlines() if x.startswith("RESULT"))
    report = json.loads(line.removeprefix("RESULT "))
    assert report["devices_seen"] == 2
    assert report["env_state_shard_devices"] == [2]  # the env batch really is split
    assert report["max_relative_param_diff"] < 1e-4
    np.testing.assert_allclose(*report["task_reward"], rtol=1e-5)
    np.testing.assert_allclose(*report["disc_loss"], rtol=1e-4)


@pytest.mark.slow
def test_cli_trains_and_resumes_on_the_real_mjx_environment(tmp_path: Path) -> None:
    data = write_reference_dataset(tmp_path / "merged.h5")
    out, metrics, plot = tmp_path / "run", tmp_path / "train.json", tmp_path / "train.csv"
    tiny = ["ppo.num_envs=8", "ppo.unroll_length=4", "ppo.num_minibatches=2",
            "ppo.num_epochs=1", "network.policy_hidden=[32]", "network.value_hidden=[32]",
            "amp.hidden=[32]", "amp.batch_size=32", "amp.num_minibatches=1",
            "amp.replay_size=64", "amp.replay_insert=16", "num_iterations=1"]
    common = ["--data", str(data), "--out", str(out), "--metrics", str(metrics),
              "--plot", str(plot), "--no-progress"]
    args = [*common, *[a for s in tiny for a in ("--set", s)]]
    assert main(args) == 0
    assert main([*common, "--resume", "--set", "num_iterations=2"]) == 0
    summary = json.loads(metrics.read_text())
    assert summary["iteration"] == 2 and np.isfinite(summary["final"]["amp/disc_loss"])
    assert summary["final"]["env/" + next(iter(_metric_names(summary)))] is not None
    with plot.open() as f:
        assert [r["iteration"] for r in csv.DictReader(f)] == ["1", "2"]
    assert ckpt.read_meta(ckpt.latest_checkpoint(out / "checkpoints"))["robot"] == "wildrobot"
    assert main([*common, "--resume", "--set", "seed=5"]) == 2  # config change refused


def _metric_names(summary: dict) -> list[str]:
    return [k.removeprefix("env/") for k in summary["final"] if k.startswith("env/")]


def test_cli_reports_unknown_preset_key(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    data = write_reference_dataset(tmp_path / "merged.h5")
    assert main(["--data", str(data), "--out", str(tmp_path / "r"), "--set", "ppo.bogus=1"]) == 2
    assert "valid" in capsys.readouterr().err
    shutil.rmtree(tmp_path / "r", ignore_errors=True)


def test_checkpoint_round_trips_typed_keys_and_refuses_other_shapes(tmp_path: Path) -> None:
    state = {"key": jax.random.key(3), "raw_key": jax.random.PRNGKey(1),
             "w": jnp.arange(6.0).reshape(2, 3)}
    path = ckpt.save_checkpoint(tmp_path, state, 4, {"note": "x"}, keep=1)
    restored, meta = ckpt.load_checkpoint(path, jax.eval_shape(lambda: state))
    assert meta["iteration"] == 4 and meta["note"] == "x"
    assert float(jax.random.normal(restored["key"])) == float(jax.random.normal(state["key"]))
    np.testing.assert_array_equal(restored["w"], state["w"])
    ckpt.save_checkpoint(tmp_path, state, 5, {}, keep=1)
    assert [p.name for p in ckpt.list_checkpoints(tmp_path)] == ["iter_00000005"]
    other = dict(state, w=jnp.zeros((3, 2)))
    with pytest.raises(ckpt.CheckpointError, match="does not match"):
        ckpt.load_checkpoint(ckpt.latest_checkpoint(tmp_path), jax.eval_shape(lambda: other))


def test_environment_labels_contacts_like_the_dataset(tmp_path: Path) -> None:
    from robots.config import ConfigError
    from training import envs
    from training.config import load_env, preset

    rule = {"height_m": 0.02, "max_speed_mps": None}
    config = with_dataset_contact_rule(preset("cpu-smoke"), rule)
    assert dict(config.env_overrides)["contact.height_m"] == 0.02
    env = load_env(config)
    assert env.config.contact.height_m == 0.02
    contradicting = dataclasses.replace(
        preset("cpu-smoke"), env_overrides=(("contact.height_m", 0.01),))
    with pytest.raises(ConfigError, match="contradicts the dataset"):
        with_dataset_contact_rule(contradicting, rule)
    dataset = SimpleNamespace(path=tmp_path / "d.h5", contact_rule=env.config.contact)
    check_contact_rule(env, dataset)
    with pytest.raises(Exception, match="contacts labelled with"):
        check_contact_rule(envs.load("wildrobot_walk"), dataset)
