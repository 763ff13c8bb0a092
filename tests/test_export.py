"""Shipping and watching a policy: ONNX export parity with the JAX policy, checkpoint loading,
``training.inspect``, and ``pipeline.render`` videos."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import imageio_ffmpeg
import jax
import jax.numpy as jnp
import numpy as np
import onnx
import onnxruntime as ort
import pytest
from eval_fixtures import numpy_observations, shared_checkpoint, write_reference_clip

from training import checkpoint as ckpt
from training import envs, export, inspect
from training.config import NetworkConfig
from training.networks import make_policy
from training.policy import deterministic_policy, load_snapshot, resolve_checkpoint


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return shared_checkpoint(tmp_path_factory)


@pytest.fixture(scope="module")
def snapshot(tiny: tuple[Path, Path]):
    return load_snapshot(tiny[0])


def run_onnx(model: onnx.ModelProto, obs: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {export.INPUT_NAME: obs})[0]


# --------------------------------------------------------------------------- checkpoints
def test_checkpoint_paths_resolve_and_snapshot_matches_the_config(tiny, snapshot) -> None:
    checkpoint, _ = tiny
    assert resolve_checkpoint(checkpoint.parent.parent) == checkpoint  # run directory
    assert resolve_checkpoint(checkpoint.parent) == checkpoint  # checkpoints/ folder
    with pytest.raises(ckpt.CheckpointError, match="no checkpoint"):
        resolve_checkpoint(checkpoint.parent.parent.parent / "nowhere")
    assert (snapshot.observation_size, snapshot.action_size) == (42, 11)
    assert snapshot.iteration == 1 and snapshot.action_clip == 1.0
    kernel = snapshot.policy_params["params"]["MLP_0"]["Dense_0"]["kernel"]
    assert kernel.shape == (42, 32)
    assert float(snapshot.obs_stats.count) == 256.0


# --------------------------------------------------------------------------- ONNX
def test_onnx_policy_matches_the_jax_policy(tiny, snapshot, tmp_path: Path) -> None:
    out = tmp_path / "policy.onnx"
    assert export.main(["--checkpoint", str(tiny[0]), "--out", str(out)]) == 0
    model = onnx.load(out)
    onnx.checker.check_model(model)
    assert model.opset_import[0].version == export.OPSET
    obs = numpy_observations(64, snapshot.observation_size)
    onnx_action = run_onnx(model, obs)
    jax_action = np.asarray(deterministic_policy(snapshot)(jnp.asarray(obs), None))
    assert onnx_action.shape == (64, 11) and onnx_action.dtype == np.float32
    assert np.max(np.abs(onnx_action - jax_action)) < 1e-5
    # The test is not vacuous: actions vary, some are clipped, most are not.
    clipped = np.mean(np.abs(jax_action) >= 1.0 - 1e-6)
    assert 0.0 < clipped < 0.5 and np.std(jax_action) > 0.1
    meta = {p.key: p.value for p in model.metadata_props}
    assert meta["robot"] == "wildrobot" and json.loads(meta["iteration"]) == 1
    assert json.loads(meta["action_scale_rad"]) == 0.5
    assert json.loads(meta["action_filter_alpha"]) == 0.0
    layout = json.loads(meta["observation_layout"])
    assert sum(size for _, size in layout) == 42
    assert meta["dataset_content_sha256"] == snapshot.dataset_sha256


def test_metadata_tells_a_deployment_how_to_run_the_gait_clock() -> None:
    env = envs.load("wildrobot_walk", {"gait": {"frequency_hz": 0.6, "frequency_per_mps": 0.7}})
    snapshot = SimpleNamespace(env=env, path="ckpt", iteration=3, dataset_sha256="ab",
                               config=SimpleNamespace(env="wildrobot_walk"), action_clip=1.0)
    meta = export.snapshot_metadata(snapshot)
    assert meta["gait_clock_hz"] == pytest.approx(0.6)
    assert meta["gait_clock_hz_per_mps"] == pytest.approx(0.7)
    assert meta["observation_layout"][-1] == ["gait_clock", 2]
    json.dumps(meta)  # what export writes into the model


@pytest.mark.parametrize("activation", ["relu", "tanh", "swish"])
def test_onnx_activations_match_flax(activation: str) -> None:
    policy = make_policy(NetworkConfig(policy_hidden=(16, 8), activation=activation), 3)
    params = policy.init(jax.random.PRNGKey(1), jnp.zeros((1, 5)))
    params = jax.tree.map(lambda p: p + 0.3, params)  # non-trivial output layer
    mean, std = np.linspace(-1, 1, 5, dtype=np.float32), np.linspace(0.5, 2, 5, dtype=np.float32)
    model = export.build_policy_onnx(export.dense_layers(params), mean, std, 3.0, activation, 0.8)
    obs = np.random.default_rng(2).normal(0, 2, (32, 5)).astype(np.float32)
    expected = policy.apply(params, np.clip((obs - mean) / std, -3, 3))[0]
    np.testing.assert_allclose(run_onnx(model, obs), np.clip(expected, -0.8, 0.8), atol=1e-5)


def test_export_refuses_a_missing_checkpoint(tmp_path: Path,
                                             capsys: pytest.CaptureFixture) -> None:
    assert export.main(["--checkpoint", str(tmp_path), "--out",
                        str(tmp_path / "p.onnx")]) == 2
    assert "no checkpoint" in capsys.readouterr().err


# --------------------------------------------------------------------------- inspect
def test_inspect_prints_config_dataset_iteration_and_networks(
        tiny, capsys: pytest.CaptureFixture) -> None:
    checkpoint, _ = tiny
    assert inspect.main([str(checkpoint.parent.parent)]) == 0
    text = capsys.readouterr().out
    meta = ckpt.read_meta(checkpoint)
    assert f"checkpoint: {checkpoint}" in text
    assert "iteration: 1" in text and "robot: wildrobot" in text
    assert f"dataset_content_sha256: {meta['dataset']['content_sha256']}" in text
    assert "policy_hidden: [32, 16]" in text and "num_envs: 2" in text
    assert "params/MLP_0/Dense_0/kernel [42, 32]" in text
    policy_count = 42 * 32 + 32 + 32 * 16 + 16 + 16 * 11 + 11 + 11
    disc_count = 58 * 16 + 16 + 16 + 1
    assert f"policy: {policy_count:,} numbers in 7 arrays" in text
    assert f"discriminator: {disc_count:,} numbers" in text
    assert "replay_buffer:" in text and "env_state:" in text
    assert text.strip().splitlines()[-1].startswith(f"parameters: policy {policy_count:,}")
    assert inspect.main([str(checkpoint.parent.parent.parent / "nowhere")]) == 2


# --------------------------------------------------------------------------- videos
def _frames(path: Path) -> tuple[tuple[int, int], int]:
    reader = imageio_ffmpeg.read_frames(str(path))
    meta = next(reader)
    return meta["size"], sum(1 for _ in reader)


def test_render_writes_policy_videos_beside_a_reference(tiny, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture) -> None:
    from pipeline import render

    checkpoint, _ = tiny
    clips = tmp_path / "clips"
    write_reference_clip(clips, "walk_ref")
    params = tmp_path / "params.yaml"
    params.write_text("render_policy:\n  commands: [[0.3, 0.0, 0.0], [0.2, 0.0, -0.5]]\n"
                      "  width: 80\n  height: 64\n  fps: 10\n  seconds: 5.0\n")
    out = tmp_path / "videos"
    assert render.main(["--checkpoint", str(checkpoint), "--out", str(out), "--clips",
                        str(clips), "--seconds", "0.5", "--params", str(params)]) == 0
    names = sorted(p.name for p in out.iterdir())
    assert names == ["policy_vx0.20_vy0.00_wz-0.50.mp4", "policy_vx0.30_vy0.00_wz0.00.mp4"]
    size, count = _frames(out / names[1])
    assert size == (160, 64)  # policy | reference, side by side
    assert count == 6  # 0.5 s at 10 Hz, both ends
    assert "6 frames" in capsys.readouterr().out
    # Without reference clips the policy is rendered alone.
    alone = tmp_path / "alone"
    assert render.main(["--checkpoint", str(checkpoint), "--out", str(alone), "--clips",
                        str(tmp_path / "none"), "--seconds", "0.5", "--params",
                        str(params)]) == 0
    assert _frames(alone / names[1]) == ((80, 64), 6)
    assert "no reference clip" in capsys.readouterr().err


def test_render_caption_and_reference_lookup(tmp_path: Path) -> None:
    from pipeline.render import caption, find_reference

    lines = caption(np.array([0.3, 0.0, 0.5]), np.array([0.25, -0.01, 0.4]), 1.5, 1.2)
    assert lines[1] == "cmd vx +0.30 vy +0.00 m/s  yaw +0.50 rad/s"
    assert lines[2] == "act vx +0.25 vy -0.01 m/s  yaw +0.40 rad/s"
    assert lines[3] == "FELL at 1.20 s"
    assert len(caption(np.zeros(3), np.zeros(3), 1.0, 1.2)) == 3
    write_reference_clip(tmp_path, "jog_a")
    write_reference_clip(tmp_path, "walk_b")
    assert find_reference(tmp_path, ("walk*", "*")).name == "walk_b"
    assert find_reference(tmp_path, ("run*",)) is None
    clip = find_reference(tmp_path, ("jog*",))
    assert clip.qpos.shape == (51, 18) and clip.fps == 50.0
