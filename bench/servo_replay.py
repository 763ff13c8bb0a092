"""Can this robot's servos reproduce the data at all? The reference joints replayed through them.

    python -m bench.servo_replay --data data/amp/merged.h5
    python -m bench.servo_replay --data … --feedforward --noise 0.1 0.6

A policy can only look like the data if the robot can move like it. This bench asks how much
the robot's joint dynamics alone give away, with balance taken out of the question: every
locomotion clip (mean forward speed >= ``LOCOMOTION_MIN_SPEED_MPS``) is replayed in plain
MuJoCo from its first reference state, its joint targets each control step set to the next
reference frame's joint angles (``--feedforward``: plus kv/kp times the reference joint
velocity, the lead a position servo needs to follow without lag), and its root put on the
reference at every physics step (position and velocity interpolated, orientation slerped):
a kinematic "hand of god" that leaves the legs, the servos and the foot contacts to physics.
The AMP frames of that replay are the shared ``amp.features`` frames, so the root velocity
and height match the data exactly by construction and everything else is the servos'.

Prints the joint tracking error, the contact agreement and the joint-velocity spreads, then
trains fresh discriminators (as ``bench.cadence_probe``: the trainer's loss and the dataset's
normalizer; scored on fresh draws of the same clips, so an upper bound of what one
generalizes) on the replay against the unchanged clips. A policy that balanced perfectly and
moved its joints exactly as these servos follow the data would still be told apart this well.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass

import jax
import mujoco
import numpy as np

from amp.dataset import DatasetArrays, load_dataset
from amp.features import ContactRule, amp_features
from bench.cadence_probe import locomotion_arrays
from bench.disc_probe import probe_arrays
from robots import load_spec
from robots.errors import AmpkitError
from training.config import load_env, preset
from training.eval_metrics import is_locomotion_clip


@dataclass(frozen=True)
class ServoModel:
    """What a replay needs of the simulated robot.

    Attributes:
        model: The MuJoCo scene (the walking environment's, position servos on the joints).
        substeps: Physics steps per control step.
        actuator_qpos: [nu] qpos address of each actuator's joint.
        actuator_dof: [nu] dof address of each actuator's joint.
        velocity_lead_s: kv / kp of the servos [s]: the target lead that cancels the damping
            term when the joint moves at the reference velocity.
        site_ids: [4] contact-point site ids in the AMP contact order.
        amp_joint_indices: [9] AMP joints among the joints.
        rule: The shared contact rule.
    """

    model: mujoco.MjModel
    substeps: int
    actuator_qpos: np.ndarray
    actuator_dof: np.ndarray
    velocity_lead_s: float
    site_ids: np.ndarray
    amp_joint_indices: np.ndarray
    rule: ContactRule


def servo_model(preset_name: str = "cpu-walk") -> ServoModel:
    """The walking environment's robot, as a preset builds it."""
    env = load_env(preset(preset_name))
    model = env.mj_model
    joints = model.actuator_trnid[:, 0]
    kp = model.actuator_gainprm[:, 0]
    kv = -model.actuator_biasprm[:, 2]
    return ServoModel(model=model, substeps=int(round(env.control_dt / model.opt.timestep)),
                      actuator_qpos=model.jnt_qposadr[joints],
                      actuator_dof=model.jnt_dofadr[joints],
                      velocity_lead_s=float(np.mean(kv / kp)),
                      site_ids=np.asarray(env.robot.contact_site_ids),
                      amp_joint_indices=np.asarray(env.robot.spec.amp_joint_indices),
                      rule=env.config.contact)


def _root_between(qpos_a: np.ndarray, qpos_b: np.ndarray, share: float) -> np.ndarray:
    """Root position (linear) and orientation (normalized lerp on the near hemisphere) [7]."""
    position = (1.0 - share) * qpos_a[:3] + share * qpos_b[:3]
    quat_b = qpos_b[3:7] if np.dot(qpos_a[3:7], qpos_b[3:7]) >= 0.0 else -qpos_b[3:7]
    quat = (1.0 - share) * qpos_a[3:7] + share * quat_b
    return np.concatenate([position, quat / np.linalg.norm(quat)])


def replay_clip(servos: ServoModel, qpos: np.ndarray, qvel: np.ndarray,
                feedforward: bool = False) -> np.ndarray:
    """AMP frames [T, 29] of one clip's joints replayed through the servos, root held on the
    reference; ``qpos`` [T, nq], ``qvel`` [T, nv] the reference states at the control rate."""
    model = servos.model
    data = mujoco.MjData(model)
    data.qpos[:], data.qvel[:] = qpos[0], qvel[0]
    mujoco.mj_forward(model, data)
    frames = [_frame(servos, data)]
    for t in range(len(qpos) - 1):
        target = qpos[t + 1, servos.actuator_qpos]
        if feedforward:
            target = target + servos.velocity_lead_s * qvel[t + 1, servos.actuator_dof]
        data.ctrl[:] = target
        for k in range(servos.substeps):
            mujoco.mj_step(model, data)
            share = (k + 1) / servos.substeps
            data.qpos[:7] = _root_between(qpos[t], qpos[t + 1], share)
            data.qvel[:6] = (1.0 - share) * qvel[t, :6] + share * qvel[t + 1, :6]
        mujoco.mj_forward(model, data)
        frames.append(_frame(servos, data))
    return np.stack(frames)


def _frame(servos: ServoModel, data: mujoco.MjData) -> np.ndarray:
    return amp_features(data.qpos.copy(), data.qvel.copy(), data.site_xpos[servos.site_ids],
                        servos.amp_joint_indices, servos.rule)


def replayed_arrays(path: str, servos: ServoModel, feedforward: bool
                    ) -> tuple[DatasetArrays, DatasetArrays]:
    """Sampler arrays of the locomotion clips replayed through the servos and of the same clips
    as recorded (``bench.cadence_probe.locomotion_arrays``: the dataset's weights and
    normalizer); their ``features`` are the frames [N, 29], clip for clip."""
    dataset = load_dataset(path, load_spec("wildrobot")).data
    if not dataset.has_reference_states:
        raise AmpkitError(f"{path}: no reference states (qpos/qvel); re-run pipeline.merge")
    replayed = np.array(dataset.features, np.float32)
    for start, length in zip(dataset.clip_start, dataset.clip_length, strict=True):
        span = slice(int(start), int(start) + int(length))
        if is_locomotion_clip(dataset.features[span]):
            replayed[span] = replay_clip(servos, np.asarray(dataset.qpos[span], np.float64),
                                         np.asarray(dataset.qvel[span], np.float64),
                                         feedforward)
    clips = (dataset.clip_start, dataset.clip_length, dataset.clip_weight, dataset.mean,
             dataset.std, 1.0)
    return (locomotion_arrays(replayed, *clips),
            locomotion_arrays(np.asarray(dataset.features), *clips))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="a merged.h5 (schema 2)")
    parser.add_argument("--feedforward", action="store_true",
                        help="lead each target by kv/kp x the reference joint velocity")
    parser.add_argument("--noise", type=float, nargs="+", default=[0.1, 0.6])
    parser.add_argument("--gp", type=float, default=10.0)
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--scored", type=int, default=20_000)
    args = parser.parse_args(argv)

    servos = servo_model()
    replay, reference = replayed_arrays(args.data, servos, args.feedforward)
    replay_f, record_f = np.asarray(replay.features), np.asarray(reference.features)
    joint_error = np.abs(replay_f[:, 0:9] - record_f[:, 0:9]).mean(axis=0)
    print(f"{args.data}: {len(replay_f)} locomotion frames replayed through the servos "
          f"({'with' if args.feedforward else 'no'} velocity lead), root on the reference")
    print(f"  joint tracking error [rad]: mean {joint_error.mean():.3f}, worst "
          f"{joint_error.max():.3f}; contact labels agree on "
          f"{np.mean(replay_f[:, 25:29] == record_f[:, 25:29]):.3f}")
    print(f"  joint-velocity std, replay / data [rad/s]: {replay_f[:, 10:14].std(0).round(2)} / "
          f"{record_f[:, 10:14].std(0).round(2)} (left hip pitch, hip roll, knee, ankle)")

    rng = jax.random.PRNGKey(0)
    for noise in args.noise:
        *keys, rng = jax.random.split(rng, 5)
        print(probe_arrays(keys, f"replay, noise {noise:g}", replay, reference, noise, args.gp,
                           args.steps, args.scored).line(), flush=True)
    return 0


def _main() -> int:
    try:
        return main()
    except AmpkitError as exc:  # a missing, old or damaged dataset, named
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(_main())
