"""Stepping figures of evaluation: a walk steps and alternates; a shuffle and a hop do not."""

from __future__ import annotations

import numpy as np

from training import eval_metrics

DT = 0.02


def _run(contacts: np.ndarray) -> dict[str, float]:
    """Feed [T, E, 2] foot contacts through the accumulator; gait metrics of the episodes."""
    steps, episodes, _ = contacts.shape
    acc = eval_metrics.init_accumulator(episodes, 1)
    measured = np.ones(episodes, np.float32)
    for t in range(steps):
        acc["steps"] = acc["steps"] + measured
        acc.update(eval_metrics.count_steps(acc, contacts[t], measured))
    return eval_metrics.gait_metrics({k: np.asarray(v, np.float64) for k, v in acc.items()}, DT)


def _walk(seconds: float, period_s: float, duty: float) -> np.ndarray:
    """Alternating gait: each foot down for ``duty`` of the period, right half a period late."""
    t = np.arange(int(seconds / DT)) * DT
    phase_left = (t / period_s) % 1.0
    phase_right = (t / period_s + 0.5) % 1.0
    return np.stack([phase_left < duty, phase_right < duty], axis=-1).astype(np.float32)


def test_alternating_walk_counts_every_step() -> None:
    contacts = _walk(10.0, 1.0, 0.7)[:, None, :]  # 1 Hz stride: 2 steps/s, 0.3 s swings
    metrics = _run(contacts)
    # 10 touchdowns per foot in 10 s, minus the first one of the foot that starts down.
    assert abs(metrics["step_rate_hz"] - 1.9) < 0.11
    assert metrics["step_alternation"] >= 0.94  # all but the very first touchdown
    assert metrics["walking_rate"] == 1.0


def test_shuffle_and_hop_are_not_walking() -> None:
    steps = 500
    shuffle = np.ones((steps, 1, 2), np.float32)
    hop = np.repeat((np.arange(steps) % 25 < 15)[:, None], 2, axis=1)[:, None, :]
    chatter = _walk(10.0, 0.08, 0.7)[:, None, :]  # 40 ms in the air: contact chatter
    for contacts in (shuffle, hop.astype(np.float32), chatter):
        metrics = _run(contacts)
        assert metrics["step_alternation"] == 0.0
        assert metrics["walking_rate"] == 0.0
    assert _run(shuffle)["step_rate_hz"] == 0.0
    assert abs(_run(hop.astype(np.float32))["step_rate_hz"] - 2 * 19 / 10) < 0.05


def _clip_features(contacts: np.ndarray, forward_speed_mps: float) -> np.ndarray:
    """AMP frames [T, 29] whose toe contacts are ``contacts`` [T, 2] (heels never touch)."""
    features = np.zeros((contacts.shape[0], 29), np.float32)
    features[:, 18] = forward_speed_mps
    features[:, 25] = contacts[:, 0]
    features[:, 27] = contacts[:, 1]
    return features


def test_dataset_cadence_counts_locomotion_clips_by_weight() -> None:
    # 8 s at 1 Hz stride (2 touchdowns/s less the first of the foot that starts down: 15),
    # then 8 s at 0.5 Hz (7 touchdowns), then a standing clip that is not locomotion.
    fast = _clip_features(_walk(8.0, 1.0, 0.6), 0.4)
    slow = _clip_features(_walk(8.0, 2.0, 0.6), 0.2)
    stand = _clip_features(np.ones((400, 2), np.float32), 0.0)
    assert eval_metrics.clip_step_rate_hz(fast, 50.0) == 15 / 8
    assert eval_metrics.clip_step_rate_hz(slow, 50.0) == 7 / 8
    features = np.concatenate([fast, slow, stand])
    gait = eval_metrics.dataset_gait(features, np.array([0, 400, 800]), np.array([400] * 3),
                                     np.array([0.3, 0.1, 0.6]), fps=50.0)
    assert abs(gait.step_rate_hz - (0.75 * 15 / 8 + 0.25 * 7 / 8)) < 1e-9
    # The duty factor still counts every clip, the standing one included.
    np.testing.assert_allclose(gait.duty_factor, [0.3 * 0.6 + 0.1 * 0.6 + 0.6] * 2, atol=2e-3)
    only_standing = eval_metrics.dataset_gait(stand, np.array([0]), np.array([400]),
                                              np.array([1.0]), fps=50.0)
    assert np.isnan(only_standing.step_rate_hz)
