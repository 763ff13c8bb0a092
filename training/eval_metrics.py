"""What MJX evaluation and the plain-MuJoCo sim-to-sim runner measure, written once.

- :func:`step_measurements` / :func:`accumulate`: the per-step quantities and their masked
  running sums, written once for numpy and jax (``xp``), so MJX and MuJoCo use the same code;
- :func:`accumulate_windows`: tracking errors of the velocity averaged over
  :data:`TRACKING_WINDOW_S` windows (the stride's own sway left out);
- :func:`count_steps` / :func:`gait_metrics`: touchdowns, alternation and the walking rate;
- :func:`summarize`: per-scenario metrics from the sums (numpy).

Episode bookkeeping: a step counts ("measured") while the episode has not fallen and is within
its length; the step on which it falls ends it (and is not measured: the environment has
already reset that episode's state). An episode that reaches its length without a fall is a
success.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from amp.features import FORWARD_SPEED_COLUMN
from training.envs import kinematics as kin
from training.eval_setup import EpisodeSetup
from training.scenarios import Scenario, command_key

GRAVITY_MPS2 = 9.81
MIN_COT_DISTANCE_M = 0.01
"""Cost of transport divides by the distance walked, at least this much (a standing policy's
CoT is then large but finite)."""
TRACKING_WINDOW_S = 2.0
"""Length of the windows whose mean velocity the ``*_windowed`` tracking errors score [s].

A stepping robot's root velocity swings within every stride (its lateral sway alone was a
per-step std of 0.14-0.17 m/s for a 1.3 Hz gait), so a per-step error scores the stride, not
the tracking: a shuffle, which has no sway, then beats a walk. Two seconds hold at least two
strides of any gait at 1 Hz or faster (the residual of a sway at 1.3 Hz is under 15 % of its
amplitude) and are still short against the 20-s episodes, so a slow weave or a drift counts."""


# --------------------------------------------------------------------------- per step
def step_measurements(qpos_before: Any, qpos: Any, qvel: Any, actuator_force: Any,
                      command: Any, terminal_frame: Any, actuator_dofs: np.ndarray,
                      xp: Any = np) -> dict[str, Any]:
    """What one control step contributes, batched over leading axes.

    Args:
        qpos_before: [..., nq] configuration before the step.
        qpos, qvel: [..., nq], [..., nv] after it.
        actuator_force: [..., nu] servo torques [N m].
        command: [..., 3] commanded velocity.
        terminal_frame: [..., 29] AMP frame reached (contacts in 25:29).
        actuator_dofs: [nu] qvel index of each actuator's joint.
    Returns:
        lin_vel_error [...] |cmd_xy - v_xy| (heading frame) [m/s], yaw_rate_error [...]
        [rad/s], velocity_residual [..., 3] cmd - (v_x, v_y, yaw rate) (signed, for the
        windowed errors), abs_torque [..., nu] [N m], power [...] sum |torque * joint speed|
        [W], distance [...] planar root displacement [m], foot_contact [..., 2] (left, right).
    """
    velocity = kin.heading_velocity(qpos, qvel, xp)
    yaw_rate = kin.yaw_rate_world(qpos, qvel, xp)
    residual = command - xp.concatenate([velocity[..., :2], yaw_rate[..., None]], axis=-1)
    joint_speed = qvel[..., actuator_dofs]
    foot = kin.foot_contact(terminal_frame, xp)
    return {
        "lin_vel_error": xp.sqrt(xp.sum(residual[..., :2] ** 2, axis=-1)),
        "yaw_rate_error": xp.abs(residual[..., 2]),
        "velocity_residual": residual,
        "abs_torque": xp.abs(actuator_force),
        "power": xp.sum(xp.abs(actuator_force * joint_speed), axis=-1),
        "distance": xp.sqrt(xp.sum((qpos[..., :2] - qpos_before[..., :2]) ** 2, axis=-1)),
        "foot_contact": foot,
    }


ACCUMULATED = ("lin_vel_error", "yaw_rate_error", "abs_torque", "power", "distance",
               "foot_contact")


MIN_SWING_STEPS = 3
"""A foot must have been off the floor for at least this many control steps (60 ms at 50 Hz)
before touching down again counts as a step: contact chatter of a sliding foot is no step."""


def window_steps(control_dt: float) -> int:
    """Control steps in one :data:`TRACKING_WINDOW_S` window."""
    return max(int(round(TRACKING_WINDOW_S / control_dt)), 1)


def init_accumulator(num_episodes: int, num_actuators: int, xp: Any = np) -> dict[str, Any]:
    """Zeroed running sums: ``steps`` (measured steps), ``fell``, ``style``, every
    :data:`ACCUMULATED` quantity, the tracking windows (see :func:`accumulate_windows`) and
    the gait counters (see :func:`count_steps`), one row per episode."""
    zeros = {"steps": (), "fell": (), "style": (), "lin_vel_error": (), "yaw_rate_error": (),
             "abs_torque": (num_actuators,), "power": (), "distance": (),
             "foot_contact": (2,), "window_residual": (3,), "window_steps": (),
             "windows": (), "windowed_lin_vel_error": (), "windowed_yaw_rate_error": (),
             "air_steps": (2,), "touchdowns": (2,),
             "alternating_touchdowns": (), "last_touchdown_foot": ()}
    return {name: xp.zeros((num_episodes, *shape), dtype=xp.float32)
            for name, shape in zeros.items()}


def episode_flags(acc: dict[str, Any], step_index: Any, limit_steps: Any, done: Any,
                  fell: Any, xp: Any = np) -> tuple[Any, Any]:
    """(measured [E], fell_now [E]) float masks for control step ``step_index`` (0-based).

    Args:
        done: [E] the environment ended the episode at this step (fall or time limit).
        fell: [E] the ending was a fall.
    """
    active = (acc["fell"] == 0) & (step_index < limit_steps)
    measured = active & (done == 0)
    fell_now = active & (done > 0) & (fell > 0)
    return measured.astype(xp.float32), fell_now.astype(xp.float32)


def accumulate(acc: dict[str, Any], measurements: dict[str, Any], measured: Any,
               fell_now: Any, xp: Any = np, *, window: int) -> dict[str, Any]:
    """Running sums plus this step's measurements where ``measured`` [E] is 1 (pure);
    ``window``: control steps per tracking window (:func:`window_steps`)."""
    out = dict(acc)
    for name in ACCUMULATED:
        value = measurements[name]
        counted = measured.reshape(measured.shape + (1,) * (value.ndim - 1)) > 0
        # where, not a product: a diverged (NaN) episode must not poison the sums.
        out[name] = acc[name] + xp.where(counted, value, 0.0)
    out["steps"] = acc["steps"] + measured
    out["fell"] = xp.maximum(acc["fell"], fell_now)
    out.update(count_steps(acc, measurements["foot_contact"], measured, xp))
    out.update(accumulate_windows(acc, measurements["velocity_residual"], measured, window, xp))
    return out


def accumulate_windows(acc: dict[str, Any], residual: Any, measured: Any, window: int,
                       xp: Any = np) -> dict[str, Any]:
    """Add this step's velocity residual [E, 3] to the open window; close windows that are
    full, scoring the error of their mean velocity.

    ``windowed_lin_vel_error`` sums |mean(cmd_xy - v_xy)| and ``windowed_yaw_rate_error``
    |mean(cmd_yaw - yaw rate)| over the ``windows`` closed so far; a window an episode's end
    (fall or time limit) leaves unfinished is not scored.
    """
    counted = measured > 0
    residual_sum = acc["window_residual"] + xp.where(counted[..., None], residual, 0.0)
    steps = acc["window_steps"] + measured
    closed = steps >= window
    mean = residual_sum / float(window)
    lin = xp.sqrt(xp.sum(mean[..., :2] ** 2, axis=-1))
    return {
        "window_residual": xp.where(closed[..., None], 0.0, residual_sum),
        "window_steps": xp.where(closed, 0.0, steps),
        "windows": acc["windows"] + closed.astype(xp.float32),
        "windowed_lin_vel_error": acc["windowed_lin_vel_error"] + xp.where(closed, lin, 0.0),
        "windowed_yaw_rate_error": acc["windowed_yaw_rate_error"]
        + xp.where(closed, xp.abs(mean[..., 2]), 0.0),
    }


def count_steps(acc: dict[str, Any], foot_contact: Any, measured: Any,
                xp: Any = np) -> dict[str, Any]:
    """Update the gait counters with this step's foot contacts [E, 2] (left, right; 0/1).

    A touchdown is a foot touching after at least :data:`MIN_SWING_STEPS` steps in the air. It
    alternates when the other foot made the previous touchdown (``last_touchdown_foot``: 0 none
    or both at once, 1 left, 2 right). A shuffle (feet never leave the floor) and a hop (both
    feet land together) make no alternating steps. Only ``measured`` steps are counted.
    """
    touching = foot_contact > 0.5
    counted = (measured > 0)[..., None]
    touchdown = touching & (acc["air_steps"] >= MIN_SWING_STEPS) & counted
    left, right = touchdown[..., 0], touchdown[..., 1]
    last = acc["last_touchdown_foot"]
    alternating = (left & ~right & (last == 2)) | (right & ~left & (last == 1))
    new_last = xp.where(left & ~right, 1.0, xp.where(right & ~left, 2.0,
                                                     xp.where(left & right, 0.0, last)))
    return {
        "air_steps": xp.where(touching, 0.0, acc["air_steps"] + 1.0),
        "touchdowns": acc["touchdowns"] + touchdown.astype(xp.float32),
        "alternating_touchdowns": acc["alternating_touchdowns"] + alternating.astype(xp.float32),
        "last_touchdown_foot": new_last.astype(xp.float32),
    }


def gait_metrics(a: dict[str, np.ndarray], control_dt: float) -> dict[str, float]:
    """Stepping figures of a scenario's episodes from the gait counters.

    Returns:
        ``step_rate_hz`` (touchdowns per second, both feet), ``step_alternation`` (share of
        touchdowns made by the other foot than the previous one) and ``walking_rate`` (share
        of episodes that neither fell nor shuffled: at least one touchdown per foot every
        2 s, and at least 80 % of them alternating).
    """
    seconds = np.maximum(a["steps"] * control_dt, control_dt)
    touchdowns = a["touchdowns"].sum(axis=-1)
    alternation = a["alternating_touchdowns"] / np.maximum(touchdowns, 1.0)
    stepping = (a["touchdowns"].min(axis=-1) >= seconds / 2.0) & (alternation >= 0.8)
    return {
        "step_rate_hz": float(touchdowns.sum() / seconds.sum()),
        "step_alternation": float(a["alternating_touchdowns"].sum()
                                  / max(float(touchdowns.sum()), 1.0)),
        "walking_rate": float(np.mean(stepping & (a["fell"] == 0))),
    }


# --------------------------------------------------------------------------- summaries
LOCOMOTION_MIN_SPEED_MPS = 0.1
"""A clip whose mean forward root speed is at least this is a locomotion clip: its step rate
is the data's cadence (standing clips would pull the mean towards zero)."""


@dataclass(frozen=True)
class DatasetGait:
    """The data's gait, what a policy's is compared with.

    Attributes:
        duty_factor: [2] share of time each foot (left, right) touches the floor, all clips.
        step_rate_hz: Touchdowns per second (both feet) in the locomotion clips (see
            :data:`LOCOMOTION_MIN_SPEED_MPS`); NaN when there are none.
    """

    duty_factor: np.ndarray
    step_rate_hz: float


def dataset_gait(features: np.ndarray, clip_start: np.ndarray, clip_length: np.ndarray,
                 clip_weight: np.ndarray, fps: float) -> DatasetGait:
    """Duty factor and cadence of a merged dataset, clips counted by their sampling weight.

    The duty factor (share of time each foot, left and right, touches the floor: toe or heel
    contact feature on) counts every clip, as the discriminator sees them; the cadence only
    the locomotion clips (mean forward speed >= :data:`LOCOMOTION_MIN_SPEED_MPS`).
    """
    duty = np.zeros(2)
    weights = np.asarray(clip_weight, np.float64) / np.sum(clip_weight)
    rates, rate_weights = [], []
    for start, length, weight in zip(clip_start, clip_length, weights, strict=True):
        clip = features[int(start):int(start) + int(length)]
        duty += weight * kin.foot_contact(clip).mean(axis=0)
        if is_locomotion_clip(clip):
            rates.append(clip_step_rate_hz(clip, fps))
            rate_weights.append(float(weight))
    rate = float(np.average(rates, weights=rate_weights)) if sum(rate_weights) > 0 \
        else float("nan")
    return DatasetGait(duty_factor=duty, step_rate_hz=rate)


def is_locomotion_clip(features: np.ndarray) -> bool:
    """Whether a clip's AMP frames [T, 29] move forward on average at
    :data:`LOCOMOTION_MIN_SPEED_MPS` or faster (walks and jogs, not standing or stepping in
    place)."""
    return bool(features[:, FORWARD_SPEED_COLUMN].mean() >= LOCOMOTION_MIN_SPEED_MPS)


def clip_step_rate_hz(features: np.ndarray, fps: float) -> float:
    """Touchdowns per second of one clip's AMP frames [T, 29], by :func:`count_steps`'s rule
    (the one the policy's steps are counted by)."""
    acc = init_accumulator(1, 0)
    measured = np.ones(1, np.float32)
    for contact in kin.foot_contact(features):
        acc.update(count_steps(acc, contact[None], measured))
    return float(acc["touchdowns"].sum() * fps / max(features.shape[0], 1))


def summarize(acc: dict[str, np.ndarray], setup: EpisodeSetup, control_dt: float,
              actuator_names: tuple[str, ...], dataset: DatasetGait | None = None,
              has_style: bool = True) -> dict[str, dict[str, Any]]:
    """Metrics per scenario name from the final running sums (see :func:`scenario_metrics`)."""
    return {scenario.name: scenario_metrics(acc, setup.episodes_of(index), setup, scenario,
                                            control_dt, actuator_names, dataset, has_style)
            for index, scenario in enumerate(setup.scenarios)}


def scenario_metrics(acc: dict[str, np.ndarray], episodes: np.ndarray, setup: EpisodeSetup,
                     scenario: Scenario, control_dt: float, actuator_names: tuple[str, ...],
                     dataset: DatasetGait | None, has_style: bool) -> dict[str, Any]:
    """One scenario's metrics.

    Per-step quantities are averaged over every measured step of every episode (pooled);
    ``distance_m`` is the mean planar path length per episode. Cost of transport is the
    mechanical energy over (weight x distance), distance at least :data:`MIN_COT_DISTANCE_M`.
    """
    a = {name: np.asarray(value, np.float64)[episodes] for name, value in acc.items()}
    steps = a["steps"]
    total = max(float(steps.sum()), 1.0)
    energy_j = float(a["power"].sum()) * control_dt
    weight_distance = float(np.sum(setup.total_mass_kg[episodes] * GRAVITY_MPS2
                                   * np.maximum(a["distance"], 0.0)))
    weight_floor = float(np.mean(setup.total_mass_kg[episodes])) * GRAVITY_MPS2 * \
        MIN_COT_DISTANCE_M
    duty = a["foot_contact"].sum(axis=0) / total
    metrics: dict[str, Any] = {
        "episodes": int(len(episodes)),
        "seconds": float(scenario.seconds),
        "success_rate": float(np.mean(1.0 - a["fell"])),
        "survival_s": float(np.mean(steps) * control_dt),
        "lin_vel_error_mps": float(a["lin_vel_error"].sum() / total),
        "yaw_rate_error_rps": float(a["yaw_rate_error"].sum() / total),
        **windowed_errors(a),
        "distance_m": float(np.mean(a["distance"])),
        "speed_mps": float(a["distance"].sum() / (total * control_dt)),
        "mean_abs_torque_nm": {name: float(a["abs_torque"][:, j].sum() / total)
                               for j, name in enumerate(actuator_names)},
        "mechanical_power_w": float(a["power"].sum() / total),
        "cost_of_transport": energy_j / max(weight_distance, weight_floor),
        "duty_factor": {"left": float(duty[0]), "right": float(duty[1])},
        **gait_metrics(a, control_dt),
    }
    if has_style:
        metrics["style_score"] = float(a["style"].sum() / total)
    if dataset is not None:
        metrics["dataset_duty_factor"] = {"left": float(dataset.duty_factor[0]),
                                          "right": float(dataset.duty_factor[1])}
        metrics["duty_factor_error"] = float(np.mean(np.abs(duty - dataset.duty_factor)))
        metrics["dataset_step_rate_hz"] = dataset.step_rate_hz
    if len(scenario.commands) > 1:
        metrics["per_command"] = _per_command(a, setup.command[episodes])
    return metrics


def _per_command(a: dict[str, np.ndarray], commands: np.ndarray) -> dict[str, Any]:
    out = {}
    for command in np.unique(commands, axis=0):
        rows = np.all(commands == command, axis=1)
        total = max(float(a["steps"][rows].sum()), 1.0)
        out[command_key(command)] = {
            "success_rate": float(np.mean(1.0 - a["fell"][rows])),
            "lin_vel_error_mps": float(a["lin_vel_error"][rows].sum() / total),
            "yaw_rate_error_rps": float(a["yaw_rate_error"][rows].sum() / total),
            **windowed_errors({name: value[rows] for name, value in a.items()}),
        }
    return out


def windowed_errors(a: dict[str, np.ndarray]) -> dict[str, float | None]:
    """Mean windowed tracking errors of the episodes in ``a`` (None without a closed window)."""
    windows = float(a["windows"].sum())
    if windows == 0:
        return {"lin_vel_error_windowed_mps": None, "yaw_rate_error_windowed_rps": None}
    return {"lin_vel_error_windowed_mps": float(a["windowed_lin_vel_error"].sum() / windows),
            "yaw_rate_error_windowed_rps": float(a["windowed_yaw_rate_error"].sum() / windows)}


def flatten_metrics(metrics: dict[str, Any], prefix: str = "") -> dict[str, float]:
    """Nested metric dicts as ``{"a/b": value}`` (numbers only)."""
    flat: dict[str, float] = {}
    for key, value in metrics.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten_metrics(value, name + "/"))
        elif isinstance(value, int | float) and not isinstance(value, bool):
            flat[name] = float(value)
    return flat
