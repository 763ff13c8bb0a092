"""The scenario suite: scenario data, per-step measurements, the MJX evaluation of a tiny
checkpoint (every metric, finite), baselines (a random policy falls more than standing still),
reproducibility, and the CLI's eval.json."""

from __future__ import annotations

import json
import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from eval_fixtures import TINY_EPISODES, TINY_SECONDS, shared_checkpoint

import robots
from training import eval_metrics, eval_setup, evaluate
from training.envs import kinematics as kin
from training.policy import random_policy, zero_policy
from training.scenarios import Scenario, ScenarioError, command_key, default_suite, resized

SCENARIO_METRICS = ("success_rate", "survival_s", "lin_vel_error_mps", "yaw_rate_error_rps",
                    "distance_m", "speed_mps", "mean_abs_torque_nm", "mechanical_power_w",
                    "cost_of_transport", "style_score", "duty_factor", "dataset_duty_factor",
                    "duty_factor_error")


@pytest.fixture(scope="module")
def tiny_suite() -> tuple[Scenario, ...]:
    return default_suite(episodes=TINY_EPISODES, seconds=TINY_SECONDS)


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    """``python -m training.evaluate`` once on the tiny checkpoint (MJX + 1 MuJoCo episode)."""
    import contextlib
    import io

    checkpoint, dataset = shared_checkpoint(tmp_path_factory)
    out = tmp_path_factory.mktemp("eval") / "metrics" / "eval.json"
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        code = evaluate.main(["--checkpoint", str(checkpoint.parent.parent), "--data",
                              str(dataset), "--out", str(out), "--episodes", str(TINY_EPISODES),
                              "--seconds", str(TINY_SECONDS), "--sim2sim-episodes", "1"])
    return SimpleNamespace(code=code, report=json.loads(out.read_text()),
                           stdout=stdout.getvalue(), checkpoint=checkpoint)


# --------------------------------------------------------------------------- scenario data
def test_default_suite_covers_the_required_conditions() -> None:
    suite = {s.name: s for s in default_suite()}
    assert list(suite) == ["flat", "slippery", "push", "tracking", "turning", "worst_case"]
    assert all(s.seconds == 20.0 and s.episodes == 16 for s in suite.values())
    assert len(suite["flat"].commands) >= 3
    assert suite["slippery"].friction == 0.4
    assert suite["push"].push_force_n == 10.0
    speeds = [c[0] for c in suite["tracking"].commands]
    assert min(speeds) == 0.1 and max(speeds) == 0.5 and len(speeds) >= 5
    assert sorted(c[2] for c in suite["turning"].commands) == [-0.5, 0.5]
    worst = suite["worst_case"]
    assert (worst.friction, worst.strength_scale, worst.noise_scale) == (0.3, 0.8, 3.0)
    assert dict(worst.body_mass_scale) == {"pelvis": 1.3, "torso": 1.3}


def test_resized_and_validation() -> None:
    suite = resized(default_suite(), episodes=3, seconds=0.5)
    assert {(s.episodes, s.seconds) for s in suite} == {(3, 0.5)}
    tracking = next(s for s in suite if s.name == "tracking")
    np.testing.assert_allclose(tracking.episode_commands()[:, 0], [0.1, 0.2, 0.3], rtol=1e-6)
    assert tracking.num_steps(0.02) == 25
    with pytest.raises(ScenarioError, match="commands"):
        Scenario("bad", ()).validate()
    with pytest.raises(ScenarioError, match="positive"):
        Scenario("bad", ((0.1, 0.0, 0.0),), episodes=0).validate()
    with pytest.raises(ScenarioError, match="friction"):
        Scenario("bad", ((0.1, 0.0, 0.0),), friction=0.0).validate()
    with pytest.raises(ScenarioError, match="unique"):
        resized((Scenario("a", ((0, 0, 0),)), Scenario("a", ((0, 0, 0),))))
    assert command_key((0.3, 0.0, -0.5)) == "vx0.30_vy0.00_wz-0.50"


def test_setup_arrays_carry_each_scenario_per_episode() -> None:
    robot = robots.load("wildrobot")
    model = robot.model
    suite = default_suite(episodes=4, seconds=2.0)
    setup = eval_setup.build_setup(suite, model, 0.02)
    assert setup.num_episodes == 24 and setup.max_steps == 100
    worst = setup.episodes_of(5)
    pelvis, torso = model.body("pelvis").id, model.body("torso").id
    assert np.all(setup.mass_scale[worst][:, [pelvis, torso]] == np.float32(1.3))
    assert np.all(np.delete(setup.mass_scale[worst], [pelvis, torso], axis=1) == 1.0)
    extra = 0.3 * (model.body_mass[pelvis] + model.body_mass[torso])
    np.testing.assert_allclose(setup.total_mass_kg[worst], model.body_mass.sum() + extra,
                               rtol=1e-6)
    np.testing.assert_allclose(setup.friction[worst], 0.3)
    np.testing.assert_allclose(setup.friction[setup.episodes_of(0)], 1.0)  # the model's
    np.testing.assert_allclose(setup.strength_scale[worst], 0.8)
    assert np.all(setup.push_force_n[setup.episodes_of(2)] == 10.0)
    assert np.all(setup.push_force_n[setup.episodes_of(0)] == 0.0)
    assert setup.push_interval_steps[0].tolist() == [100, 200]
    small = setup.subset(1)
    assert small.num_episodes == 6 and small.scenario_index.tolist() == list(range(6))
    with pytest.raises(ScenarioError, match="no body 'tail'"):
        eval_setup.build_setup((Scenario("x", ((0, 0, 0),), body_mass_scale=(("tail", 2.0),)),),
                         model, 0.02)


def test_groups_share_one_environment_unless_overrides_differ() -> None:
    suite = default_suite(episodes=1, seconds=1.0)
    groups = eval_setup.plan_groups(suite, "wildrobot_walk", {})
    assert len(groups) == 1 and groups[0].scenarios == suite
    slow = Scenario("slow_servo", ((0.2, 0, 0),), latency_steps=5, seconds=30.0,
                    env_overrides=(("action_scale_rad", 0.4),))
    groups = eval_setup.plan_groups((*suite, slow), "wildrobot_walk", {})
    assert [g.scenarios for g in groups] == [suite, (slow,)]
    config = groups[1].env.config
    assert config.action_scale_rad == 0.4
    assert config.randomization.latency_steps == (0, 5)
    assert config.termination.episode_length_s == 31.0
    assert groups[0].env is eval_setup.plan_groups(suite, "wildrobot_walk", {})[0].env  # cached


# --------------------------------------------------------------------------- measurements
def test_step_measurements_analytic() -> None:
    """Yawed 90 degrees and moving along world +y at 0.3 m/s is 0.3 m/s forward."""
    nq, nv, nu = 18, 17, 11
    yaw = np.pi / 2
    qpos = np.zeros((1, nq))
    qpos[0, 3:7] = [np.cos(yaw / 2), 0, 0, np.sin(yaw / 2)]
    before = qpos.copy()
    before[0, 1] = -0.006
    qvel = np.zeros((1, nv))
    qvel[0, 1] = 0.3
    qvel[0, 5] = 0.2  # yaw rate (root frame z = world z here)
    qvel[0, 6:] = np.arange(nu)
    force = np.full((1, nu), -2.0)
    frame = np.zeros((1, 29))
    frame[0, 25:29] = [1, 0, 0, 0]
    m = eval_metrics.step_measurements(before, qpos, qvel, force, np.array([[0.3, 0.0, 0.5]]),
                                       frame, np.arange(6, 6 + nu))
    np.testing.assert_allclose(kin.heading_velocity(qpos, qvel)[0], [0.3, 0.0, 0.0],
                               atol=1e-12)
    assert m["lin_vel_error"][0] == pytest.approx(0.0, abs=1e-12)
    assert m["yaw_rate_error"][0] == pytest.approx(0.3)
    assert m["power"][0] == pytest.approx(2.0 * np.arange(nu).sum())
    assert m["distance"][0] == pytest.approx(0.006)
    assert m["foot_contact"][0].tolist() == [1.0, 0.0]


def test_a_fall_ends_measuring_and_nan_does_not_leak() -> None:
    acc = eval_metrics.init_accumulator(3, 1)
    limit = np.array([2, 2, 1])
    values = {name: np.ones(3) for name in eval_metrics.ACCUMULATED}
    values["abs_torque"] = np.ones((3, 1))
    values["foot_contact"] = np.ones((3, 2))
    values["velocity_residual"] = np.ones((3, 3))
    for t, (done, fell) in enumerate([([0, 1, 0], [0, 1, 0]), ([0, 0, 0], [0, 0, 0])]):
        done, fell = np.array(done), np.array(fell)
        measured, fell_now = eval_metrics.episode_flags(acc, t, limit, done, fell)
        step_values = dict(values, power=np.where(fell > 0, np.nan, 1.0))
        acc = eval_metrics.accumulate(acc, step_values, measured, fell_now, window=100)
    assert acc["steps"].tolist() == [2, 0, 1]  # episode 2 stops at its 1-step limit
    assert acc["fell"].tolist() == [0, 1, 0]
    assert acc["power"].tolist() == [2, 0, 1]


def test_dataset_duty_factor_weights_clips() -> None:
    features = np.zeros((6, 29), np.float32)
    features[0:2, 25] = 1  # clip 0: left toe always, right never
    features[2:6, 27] = [1, 1, 0, 0]  # clip 1: right toe half the time, left never
    gait = eval_metrics.dataset_gait(features, np.array([0, 2]), np.array([2, 4]),
                                     np.array([0.25, 0.75]), fps=50.0)
    np.testing.assert_allclose(gait.duty_factor, [0.25, 0.75 * 0.5])


def test_sim2sim_gap_and_table() -> None:
    mjx = {"flat": {"success_rate": 1.0, "duty_factor": {"left": 0.5}, "episodes": 4}}
    mujoco = {"flat": {"success_rate": 0.5, "duty_factor": {"left": 0.75}, "episodes": 1}}
    gaps = evaluate.sim2sim_gap(mjx, mujoco)
    assert gaps == {"flat": {"success_rate": -0.5, "duty_factor/left": 0.25}}
    table = evaluate.format_table(mjx, gaps)
    assert "flat" in table and "-0.50" in table and "success" in table.splitlines()[0]


# --------------------------------------------------------------------------- MJX runs
def test_suite_on_tiny_checkpoint_produces_every_metric(cli_run: SimpleNamespace,
                                                        tiny_suite: tuple[Scenario, ...]) -> None:
    assert cli_run.code == 0
    report = cli_run.report
    assert report["iteration"] == 1 and report["episodes"] == TINY_EPISODES
    assert set(report["scenarios"]) == {s.name for s in tiny_suite}
    for name, metrics in report["scenarios"].items():
        for key in SCENARIO_METRICS:
            assert key in metrics, (name, key)
        assert len(metrics["mean_abs_torque_nm"]) == 11
        flat = eval_metrics.flatten_metrics(metrics)
        bad = [k for k, v in flat.items() if not math.isfinite(v)]
        assert not bad, (name, bad)
        assert 0.0 <= metrics["success_rate"] <= 1.0
        assert 0.0 < metrics["survival_s"] <= TINY_SECONDS + 1e-9
        assert 0.0 <= metrics["style_score"] <= 1.0
        assert all(0.0 <= v <= 1.0 for v in metrics["duty_factor"].values())
        assert metrics["mechanical_power_w"] > 0 and metrics["cost_of_transport"] > 0
    assert set(report["scenarios"]["tracking"]["per_command"]) == {
        "vx0.10_vy0.00_wz0.00", "vx0.20_vy0.00_wz0.00"}
    assert report["data"]["content_sha256"] == report["checkpoint_dataset_sha256"]


def test_cli_reports_sim2sim_gap_and_prints_a_table(cli_run: SimpleNamespace) -> None:
    sim2sim = cli_run.report["sim2sim"]
    assert sim2sim["episodes"] == 1
    assert set(sim2sim["gap"]) == set(cli_run.report["scenarios"])
    for name, gap in sim2sim["gap"].items():
        assert "success_rate" in gap and "lin_vel_error_mps" in gap
        assert sim2sim["mujoco"][name]["episodes"] == 1
        assert all(math.isfinite(v) for v in gap.values())
    assert "success_rate" in sim2sim["max_abs_gap"]
    lines = cli_run.stdout.splitlines()
    assert any(line.startswith("scenario") and "gap_succ" in line for line in lines)
    assert sum(line.split()[0] in cli_run.report["scenarios"] for line in lines if line) == 6


def test_random_policy_falls_more_than_standing_and_is_reproducible(
        cli_run: SimpleNamespace, tiny_suite: tuple[Scenario, ...]) -> None:
    def falls(results: dict) -> float:
        return sum((1 - m["success_rate"]) * m["episodes"] for m in results.values())

    standing = evaluate.evaluate_mjx(zero_policy(11), tiny_suite, seed=3)
    flailing = evaluate.evaluate_mjx(random_policy(11), tiny_suite, seed=3)
    assert falls(standing) == 0.0
    assert falls(flailing) >= 3, flailing
    assert min(m["survival_s"] for m in flailing.values()) < TINY_SECONDS
    # Standing still settles a few centimetres and costs almost no mechanical power.
    for name, still in standing.items():
        assert still["distance_m"] < 0.5 * flailing[name]["distance_m"], name
        assert still["mechanical_power_w"] < 0.05 * flailing[name]["mechanical_power_w"], name
    again = evaluate.evaluate_mjx(random_policy(11), tiny_suite, seed=3)
    assert eval_metrics.flatten_metrics(again) == eval_metrics.flatten_metrics(flailing)
    other = evaluate.evaluate_mjx(random_policy(11), tiny_suite, seed=4)
    assert eval_metrics.flatten_metrics(other) != eval_metrics.flatten_metrics(flailing)


def test_standing_still_has_no_sim2sim_gap(cli_run: SimpleNamespace,
                                           tiny_suite: tuple[Scenario, ...]) -> None:
    """MuJoCo replays the MJX episodes (initial pose, noise, pushes): holding still, the two
    simulators agree on every metric."""
    report = evaluate.evaluate_checkpoint(cli_run.checkpoint, episodes=TINY_EPISODES,
                                          seconds=TINY_SECONDS, sim2sim_episodes=1,
                                          policy="zero")
    gaps = report["sim2sim"]["gap"]
    assert set(gaps) == {s.name for s in tiny_suite}
    for name, gap in gaps.items():
        assert gap["success_rate"] == 0.0 and gap["survival_s"] == 0.0, name
        for key in ("lin_vel_error_mps", "yaw_rate_error_rps", "distance_m",
                    "duty_factor/left", "duty_factor/right", "style_score"):
            assert abs(gap[key]) < 0.005, (name, key, gap[key])
        torque = [v for k, v in gap.items() if k.startswith("mean_abs_torque_nm/")]
        assert len(torque) == 11 and max(map(abs, torque)) < 0.01, (name, torque)


def test_cli_rejects_a_missing_checkpoint(tmp_path: Path,
                                          capsys: pytest.CaptureFixture) -> None:
    assert evaluate.main(["--checkpoint", str(tmp_path), "--out",
                          str(tmp_path / "eval.json")]) == 2
    assert "no checkpoint" in capsys.readouterr().err
    assert not (tmp_path / "eval.json").exists()
