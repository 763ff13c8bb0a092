"""Export a checkpoint's policy as ONNX: ``python -m training.export --checkpoint PATH --out
policy.onnx``.

The graph (built node by node with ``onnx.helper``, opset 17) is the deployed policy:

    obs [batch, O] float32
      -> (obs - mean) / std, clipped to ±obs_clip      the trainer's observation normalizer
      -> Dense + activation, ... , Dense               the policy MLP (mean head)
      -> clipped to ±action_clip                       as the environment clips it
    action [batch, A] float32                          deterministic mean action

The robot then applies ``target = default_joint_pos + action_scale_rad * u`` with ``u`` the action,
low-passed as ``u = alpha * u_prev + (1 - alpha) * action`` when ``action_filter_alpha`` > 0 (all
stored in the model's metadata, with the observation layout and control period).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from robots.errors import AmpkitError
from robots.io import atomic_path, check_writable

OPSET = 17
INPUT_NAME = "obs"
OUTPUT_NAME = "action"
_DENSE = re.compile(r"Dense_(\d+)$")


def dense_layers(policy_params: Any) -> list[tuple[np.ndarray, np.ndarray]]:
    """(kernel [in, out], bias [out]) of the policy MLP's layers in order: ``Dense_0`` …
    ``Dense_k`` then ``out``.

    Raises:
        AmpkitError: the parameter tree is not the trainer's Gaussian-policy MLP.
    """
    try:
        mlp = policy_params["params"]["MLP_0"]
        hidden = sorted((int(_DENSE.match(name).group(1)), name)  # type: ignore[union-attr]
                        for name in mlp if _DENSE.match(name))
        names = [name for _, name in hidden] + ["out"]
        return [(np.asarray(mlp[n]["kernel"], np.float32), np.asarray(mlp[n]["bias"], np.float32))
                for n in names]
    except (KeyError, TypeError) as exc:
        raise AmpkitError(f"policy parameters are not the trainer's MLP (missing {exc})") from None


def _activation_nodes(kind: str, x: str, out: str) -> list[onnx.NodeProto]:
    if kind == "elu":
        return [helper.make_node("Elu", [x], [out], alpha=1.0)]
    if kind == "relu":
        return [helper.make_node("Relu", [x], [out])]
    if kind == "tanh":
        return [helper.make_node("Tanh", [x], [out])]
    if kind == "swish":
        return [helper.make_node("Sigmoid", [x], [out + "_gate"]),
                helper.make_node("Mul", [x, out + "_gate"], [out])]
    raise AmpkitError(f"activation {kind!r} has no ONNX export; valid: elu, relu, tanh, swish")


def build_policy_onnx(layers: list[tuple[np.ndarray, np.ndarray]], obs_mean: np.ndarray,
                      obs_std: np.ndarray, obs_clip: float, activation: str, action_clip: float,
                      metadata: dict[str, Any] | None = None) -> onnx.ModelProto:
    """The ONNX model of a normalized MLP policy (see the module docstring).

    Args:
        layers: (kernel [in, out], bias [out]) per layer; the last is the output layer.
        obs_mean, obs_std: [O] normalizer (divided by, as the trainer does).
        obs_clip: Normalized observations are clipped to ±this.
        activation: Hidden-layer activation name.
        action_clip: Output clip.
        metadata: Stored as ``metadata_props`` (values JSON-encoded unless strings).
    """
    def const(name: str, value: np.ndarray | float) -> onnx.TensorProto:
        return numpy_helper.from_array(np.asarray(value, np.float32), name)

    initializers = [const("obs_mean", obs_mean), const("obs_std", obs_std),
                    const("obs_clip_low", -obs_clip), const("obs_clip_high", obs_clip),
                    const("action_clip_low", -action_clip), const("action_clip_high", action_clip)]
    nodes = [helper.make_node("Sub", [INPUT_NAME, "obs_mean"], ["obs_centered"]),
             helper.make_node("Div", ["obs_centered", "obs_std"], ["obs_scaled"]),
             helper.make_node("Clip", ["obs_scaled", "obs_clip_low", "obs_clip_high"], ["x0"])]
    x = "x0"
    for index, (kernel, bias) in enumerate(layers):
        last = index == len(layers) - 1
        initializers += [const(f"kernel_{index}", kernel), const(f"bias_{index}", bias)]
        nodes += [helper.make_node("MatMul", [x, f"kernel_{index}"], [f"matmul_{index}"]),
                  helper.make_node("Add", [f"matmul_{index}", f"bias_{index}"],
                                   ["action_mean" if last else f"pre_{index}"])]
        if not last:
            nodes += _activation_nodes(activation, f"pre_{index}", f"x{index + 1}")
            x = f"x{index + 1}"
    nodes.append(helper.make_node("Clip", ["action_mean", "action_clip_low",
                                           "action_clip_high"], [OUTPUT_NAME]))
    obs_size, action_size = layers[0][0].shape[0], layers[-1][0].shape[1]
    graph = helper.make_graph(
        nodes, "ampkit_policy",
        [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, ["batch", obs_size])],
        [helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, ["batch", action_size])],
        initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="ampkit")
    model.ir_version = min(model.ir_version, 9)  # readable by older onnxruntime releases too
    for key, value in (metadata or {}).items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value if isinstance(value, str) else json.dumps(value)
    onnx.checker.check_model(model)
    return model


def snapshot_metadata(snapshot: Any) -> dict[str, Any]:
    """What a deployment needs besides the graph: where it came from and how to apply it."""
    from training.sim2sim import default_qpos

    env, model = snapshot.env, snapshot.env.mj_model
    keyframe = default_qpos(env)
    actuator_qpos = model.jnt_qposadr[model.actuator_trnid[:, 0]]
    gait = getattr(env.config, "gait", None)
    return {
        "checkpoint": str(snapshot.path),
        "iteration": snapshot.iteration,
        "dataset_content_sha256": snapshot.dataset_sha256 or "",
        "robot": env.robot.name,
        "env": snapshot.config.env,
        "observation_layout": [list(block) for block in env.observation_layout()],
        "control_dt_s": env.control_dt,
        # gait_clock block (if in the layout): sin, cos of 2*pi*phase, phase 0 at the start
        # and phase <- frac(phase + dt * (hz + hz_per_mps * |(vx, vy) command|)) every step
        "gait_clock_hz": float(getattr(gait, "frequency_hz", 0.0)),
        "gait_clock_hz_per_mps": float(getattr(gait, "frequency_per_mps", 0.0)),
        "actuator_names": [model.actuator(i).name for i in range(model.nu)],
        "default_joint_pos_rad": [float(v) for v in keyframe[actuator_qpos]],
        "action_scale_rad": float(getattr(env.config, "action_scale_rad", 1.0)),
        "action_clip": snapshot.action_clip,
        # targets low-passed on the robot: u = alpha * u_prev + (1 - alpha) * action (0: none)
        "action_filter_alpha": float(getattr(env.config, "action_filter_alpha", 0.0)),
    }


def export_policy(network: Any, params: Any, obs_stats: Any,
                  metadata: dict[str, Any] | None = None) -> onnx.ModelProto:
    """The ONNX model of the deterministic policy of (``network``, ``params``, ``obs_stats``):
    the triple :func:`training.policy.make_inference_fn` runs, with the network's clips and
    activation.

    Args:
        network: A :class:`training.policy.PolicyNetwork`.
        params: Its parameters.
        obs_stats: The observation normalizer (:class:`training.normalization.RunningStats`).
        metadata: As :func:`build_policy_onnx`.
    """
    from training.policy import normalization_arrays

    mean, std = normalization_arrays(obs_stats)
    return build_policy_onnx(dense_layers(params), mean, std, float(network.obs_clip),
                             network.config.activation, network.action_clip, metadata)


def export_snapshot(snapshot: Any) -> onnx.ModelProto:
    """The ONNX model of a :class:`training.policy.PolicySnapshot`'s deterministic policy."""
    return export_policy(snapshot.policy_network, snapshot.policy_params, snapshot.obs_stats,
                         snapshot_metadata(snapshot))


def save_onnx(model: onnx.ModelProto, path: str | Path) -> int:
    """Write ``model`` atomically; returns its size in bytes."""
    data = model.SerializeToString()
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return len(data)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.export",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", required=True, type=Path,
                        help="checkpoint directory, or a run directory (its newest checkpoint)")
    parser.add_argument("--out", required=True, type=Path, help="ONNX file to write")
    args = parser.parse_args(argv)
    from training.policy import load_snapshot

    try:
        check_writable(files=(args.out,))  # a read-only --out fails before any work
        snapshot = load_snapshot(args.checkpoint)
        size = save_onnx(export_snapshot(snapshot), args.out)
    except AmpkitError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {args.out} ({size / 1024:.1f} KiB; {snapshot.observation_size} observations -> "
          f"{snapshot.action_size} actions; checkpoint {snapshot.path})")
    return 0


if __name__ == "__main__":
    from robots.errors import run_main

    sys.exit(run_main(main, "export"))
