"""ONNX policy: single-observation latency on CPU (target < 1 ms) and model size.

    python -m bench.export                          # default network (512, 256, 128), elu
    python -m bench.export --checkpoint runs/amp    # a real checkpoint's policy
    python -m bench.export --hidden 128 64          # another width

Without a checkpoint it builds a policy of the given widths for the walking task's observation
(42) and action (11) sizes with random weights (latency does not depend on the values). Times
``onnxruntime`` on one thread, batch 1, after warm-up; prints median and 99th-percentile latency,
the file size, and the jitted JAX policy's latency for comparison.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import onnxruntime as ort

from training.config import NetworkConfig
from training.export import build_policy_onnx, dense_layers, export_snapshot, save_onnx
from training.networks import make_policy

OBS_SIZE, ACTION_SIZE = 42, 11


def synthetic_model(hidden: tuple[int, ...], activation: str) -> tuple[object, Callable]:
    """(ONNX model, jitted JAX mean function) of a random policy of the given widths."""
    config = NetworkConfig(policy_hidden=hidden, activation=activation)
    policy = make_policy(config, ACTION_SIZE)
    params = policy.init(jax.random.PRNGKey(0), jnp.zeros((1, OBS_SIZE)))
    mean = np.zeros(OBS_SIZE, np.float32)
    std = np.ones(OBS_SIZE, np.float32)
    model = build_policy_onnx(dense_layers(params), mean, std, 10.0, activation, 1.0)
    jax_fn = jax.jit(lambda obs: jnp.clip(policy.apply(params, jnp.clip(obs, -10, 10))[0], -1, 1))
    return model, jax_fn


def checkpoint_model(path: Path) -> tuple[object, Callable]:
    from training.policy import deterministic_policy, load_snapshot

    snapshot = load_snapshot(path)
    act = deterministic_policy(snapshot)
    return export_snapshot(snapshot), jax.jit(lambda obs: act(obs))


def latencies_ms(call: Callable[[], object], repeats: int) -> np.ndarray:
    for _ in range(50):
        call()
    times = np.empty(repeats)
    for i in range(repeats):
        start = time.perf_counter()
        call()
        times[i] = time.perf_counter() - start
    return times * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.export",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, default=None)
    parser.add_argument("--hidden", type=int, nargs="+", default=[512, 256, 128])
    parser.add_argument("--activation", default="elu")
    parser.add_argument("--repeats", type=int, default=2000)
    args = parser.parse_args()
    if args.checkpoint is not None:
        model, jax_fn = checkpoint_model(args.checkpoint)
        what = f"checkpoint {args.checkpoint}"
    else:
        model, jax_fn = synthetic_model(tuple(args.hidden), args.activation)
        what = f"random policy {args.hidden} {args.activation}"
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "policy.onnx"
        size = save_onnx(model, path)
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    obs_size = session.get_inputs()[0].shape[1]
    obs = np.random.default_rng(0).normal(size=(1, obs_size)).astype(np.float32)
    onnx_ms = latencies_ms(lambda: session.run(None, {"obs": obs}), args.repeats)
    jax_obs = jnp.asarray(obs)
    jax_ms = latencies_ms(lambda: jax_fn(jax_obs).block_until_ready(), args.repeats)
    params = sum(int(np.prod(init.dims)) for init in model.graph.initializer)
    print(f"{what}: {params:,} numbers, ONNX file {size / 1024:.1f} KiB")
    print(f"onnxruntime (1 thread, batch 1): median {np.median(onnx_ms):.3f} ms, "
          f"p99 {np.percentile(onnx_ms, 99):.3f} ms  (target < 1 ms)")
    print(f"jax jit (batch 1): median {np.median(jax_ms):.3f} ms, "
          f"p99 {np.percentile(jax_ms, 99):.3f} ms")


if __name__ == "__main__":
    main()
