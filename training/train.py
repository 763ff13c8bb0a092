"""AMP+PPO training: ``python -m training.train --data data/amp/merged.h5``.

Start-up (:func:`prepare`) reads the merged dataset once, gives the environment the dataset's
contact rule and reference states, and checks that the two fit; a :class:`Runner` holds the
compiled iteration; the host loop only calls that one jitted iteration
(:mod:`training.iteration`), then logs, evaluates, checkpoints and reports progress. Usage::

    python -m training.train --data data/amp/merged.h5                    # cpu-smoke preset
    python -m training.train --data data/amp/merged.h5 --preset gpu --out runs/gpu
    python -m training.train --data data/amp/merged.h5 --out runs/gpu --resume \\
        --set num_iterations=8000
    python -m training.train --data … --set ppo.num_envs=64 --set amp.style_weight=0.7 \\
        --set env.randomization.enabled=false

On several visible devices the environment batch is sharded over all of them
(``--set num_devices=N`` to use fewer). ``--resume`` continues bit for bit on the same device
kind; on GPUs that needs deterministic XLA kernels (``XLA_FLAGS=--xla_gpu_deterministic_ops=true``,
at some cost in speed). GPU install: ``pip install -e '.[gpu]'`` (jax[cuda12]).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jax
import numpy as np

from amp.dataset import (
    AmpDataset,
    DatasetArrays,
    dataset_contact_rule,
    dataset_from,
    make_arrays,
    pair_distribution,
    sample_pairs,
)
from amp.features import ContactRule
from amp.merge import MergedDataset, read_merged
from amp.speed_match import SpeedMatch, speed_matched_probability
from robots.cli import stage_parser
from robots.config import build_config
from robots.errors import AmpkitError
from robots.io import check_writable, remove_stale_temps
from robots.lock import output_lock
from training import checkpoint as ckpt
from training import sharding
from training.config import (
    PRESETS,
    AmpConfig,
    ConfigError,
    TrainConfig,
    apply_overrides,
    config_from_dict,
    load_env,
    preset,
)
from training.iteration import (
    SampleFn,
    evaluate_policy,
    param_leaf_paths,
    training_iteration,
)
from training.policy import resolve_checkpoint
from training.run_log import RunLog, write_final_metrics
from training.rundir import prepare_run_dir, run_id
from training.train_state import Networks, TrainState, init_train_state, make_networks

if TYPE_CHECKING:
    from training.envs.base import Env

RUN_LENGTH_KEYS = ("num_iterations", "checkpoint_every", "keep_checkpoints", "log_every",
                   "eval_every", "eval_envs", "eval_steps")
"""Config keys a resumed run may change without breaking bit-for-bit continuation (for the
linear learning-rate schedule, ``num_iterations`` does change the rate)."""


class NonFiniteError(AmpkitError, FloatingPointError):
    """A NaN or inf appeared in a loss, metric or parameter; the run stopped."""


class DataMismatchError(AmpkitError, ValueError):
    """``--resume`` with a dataset other than the one the checkpoint was trained on."""


@dataclass(frozen=True)
class RunPaths:
    """Where a run writes.

    Attributes:
        out: Run directory (checkpoints/, tb/).
        metrics_json: Final figures (DVC metrics).
        progress_csv: Per-iteration CSV (DVC plot).
    """

    out: Path
    metrics_json: Path
    progress_csv: Path

    @property
    def checkpoints(self) -> Path:
        return self.out / "checkpoints"

    @property
    def tensorboard(self) -> Path:
        return self.out / "tb"

    @classmethod
    def under(cls, out: str | Path) -> RunPaths:
        """Everything inside ``out`` (metrics in ``out/metrics``)."""
        out = Path(out)
        return cls(out, out / "metrics" / "train.json", out / "metrics" / "train_progress.csv")


@dataclass
class TrainResult:
    """Outcome of :func:`train`: the final state, last metrics, and the last checkpoint."""

    state: TrainState
    metrics: dict[str, float]
    iteration: int
    checkpoint: Path | None


def with_dataset_contact_rule(config: TrainConfig,
                              rule: ContactRule | Mapping[str, Any]) -> TrainConfig:
    """``config`` with the environment labelling contacts exactly as the dataset did.

    The rule (a :class:`ContactRule`, or its fields as a mapping, checked by the config
    builder) goes into ``env_overrides`` (and so into every checkpoint, for evaluation and
    videos). A ``--set env.contact.*`` that contradicts the dataset is refused: with two rules
    the discriminator would tell data from simulation by the labelling alone.
    """
    if not isinstance(rule, ContactRule):
        rule = build_config(ContactRule, rule, where="dataset contact_rule")
    overrides = dict(config.env_overrides)
    for name, value in dataclasses.asdict(rule).items():
        key = f"contact.{name}"
        if key in overrides and overrides[key] != value:
            raise ConfigError(
                f"env.{key}={overrides[key]} contradicts the dataset, whose contacts were "
                f"labelled with {key}={value}; re-convert the data or drop the override")
        overrides[key] = value
    return dataclasses.replace(config, env_overrides=tuple(sorted(overrides.items())))


def check_contact_rule(env: Env, dataset: AmpDataset) -> None:
    """Refuse an environment whose contact rule differs from the dataset's."""
    env_rule = getattr(getattr(env, "config", None), "contact", None)
    if env_rule is not None and env_rule != dataset.contact_rule:
        raise AmpkitError(f"{dataset.path}: contacts labelled with {dataset.contact_rule}, the "
                          f"environment labels them with {env_rule}")


def with_reference_init(env: Env, dataset: AmpDataset) -> Any:
    """``env`` with the dataset's reference states attached when its settings use them
    (reference-state initialization, the pose template, the data's stance width;
    ``Env.reference_state_uses``); ``env`` itself when none does.

    Raises:
        AmpkitError: naming the file, when the dataset holds no reference states or lacks what
            a setting fits from them (counted gait cycles).
    """
    # Optional in the environment contract (``Env`` gives every subclass one): a task that
    # does not say uses no reference states.
    uses = env.reference_state_uses() if hasattr(env, "reference_state_uses") else ()
    if not uses:
        return env
    data = dataset.data
    if not data.has_reference_states:
        raise AmpkitError(f"{dataset.path}: {', '.join(uses)} needs the dataset's reference "
                          "states (qpos/qvel), which it does not hold; re-run merge on "
                          "converted clips, or turn that off")
    from training.envs.base import reference_states

    reference = reference_states(data.qpos, data.qvel, data.clip_length, data.clip_weight,
                                 data.features, data.fps)
    try:
        seeded = env.with_reference_states(reference)
    except ConfigError as exc:
        raise AmpkitError(f"{dataset.path}: {exc}") from exc
    for line in seeded.reference_fit_lines():
        print(f"{dataset.path}: {line}", flush=True)
    return seeded


def load_reference(path: str | Path, env: Env, verify_hash: bool = True) -> AmpDataset:
    """The merged dataset, refused (``DatasetFileError``) when its robot, feature layout or
    frame rate differ from the environment's."""
    path = Path(path)
    return _fitted(path, read_merged(path, verify_hash=verify_hash), env)


def _fitted(path: Path, data: MergedDataset, env: Env) -> AmpDataset:
    """``data`` (read from ``path``) on the device, once it is known to fit ``env``: 29-number
    AMP frames, its robot and layout, its control rate."""
    if env.amp_feature_size != 29:
        raise AmpkitError(f"environment AMP frames have {env.amp_feature_size} numbers; "
                          "the dataset layout has 29")
    return dataset_from(path, data, env.robot.spec, expected_fps=round(1.0 / env.control_dt, 9))


@dataclass(frozen=True)
class EnvKey:
    """What makes two environments interchangeable inside a compiled iteration: an
    environment is a function of its class and its (frozen) config, plus the reference states
    its resets draw from, which the compiled iteration bakes in.

    Attributes:
        kind: The environment class.
        config: Its config (hashable).
        reference_sha256: ``content_sha256`` of the dataset whose reference states seed its
            resets; None when they are not used.
    """

    kind: type
    config: Any
    reference_sha256: str | None = None

    @classmethod
    def of(cls, env: Env, reference_sha256: str | None = None) -> EnvKey | None:
        """The key of ``env``; None when its config is missing or unhashable (then the
        compiled iteration is not shared)."""
        config = getattr(env, "config", None)
        if config is None:
            return None
        try:
            hash(config)
        except TypeError:
            return None
        return cls(type(env), config, reference_sha256)


@dataclass(frozen=True)
class Setup:
    """What a run starts from, read and checked once (:func:`prepare`).

    Attributes:
        config: The run's config, with the dataset's contact rule in ``env_overrides`` when
            the environment was built from it.
        env: The environment, with the dataset's reference states where the config asks.
        env_key: Its :class:`EnvKey` (None: not shareable).
        dataset: The merged dataset, on the device.
        discriminator_data: The sampler arrays the discriminator's reference transitions
            are drawn from: ``dataset.arrays``, or those matched to the commanded speeds
            (``amp.speed_matched_data``, :func:`discriminator_arrays`).
    """

    config: TrainConfig
    env: Env
    env_key: EnvKey | None
    dataset: AmpDataset
    discriminator_data: DatasetArrays


def prepare(config: TrainConfig, data: str | Path | AmpDataset, env: Env | None = None,
            verify_hash: bool = True) -> Setup:
    """Read the dataset once, build (or take) the environment to fit it, and check both.

    Args:
        config: The run's settings (validated here).
        data: Merged dataset path, or an already loaded :class:`AmpDataset`.
        env: An environment object; default: the one ``config`` names, labelling contacts
            with the dataset's rule.
        verify_hash: Check the file's content hash.
    Raises:
        AmpkitError: the dataset does not fit the environment (robot, layout, frame rate,
            contact rule, reference states).
        ConfigError: the config cannot run, or contradicts the dataset's contact rule.
    """
    config = config.validate()
    if isinstance(data, AmpDataset):
        merged = data.data
    else:
        merged = read_merged(Path(data), verify_hash=verify_hash)  # the one read of the file
    if env is None:
        config = with_dataset_contact_rule(config, dataset_contact_rule(merged))
        env = load_env(config)
    dataset = data if isinstance(data, AmpDataset) else _fitted(Path(data), merged, env)
    check_contact_rule(env, dataset)
    check_faded_terms(config.amp, env)
    seeded = with_reference_init(env, dataset)
    reference = dataset.content_sha256 if seeded is not env else None
    return Setup(config, seeded, EnvKey.of(seeded, reference), dataset,
                 discriminator_arrays(dataset, config.amp, env))


def check_faded_terms(amp: AmpConfig, env: Env) -> None:
    """Raise :class:`ConfigError` unless every ``amp.faded_task_terms`` name is one of the
    environment's reward terms (whose weighted values it reports under those names)."""
    unknown = [name for name in amp.faded_task_terms if name not in env.reward_names]
    if unknown:
        raise ConfigError(f"amp.faded_task_terms: {unknown} are not reward terms of this "
                          f"environment; valid: {sorted(env.reward_names)}")


def discriminator_arrays(dataset: AmpDataset, amp: AmpConfig, env: Env) -> DatasetArrays:
    """The arrays the discriminator's reference transitions are drawn from: the dataset's
    own, or with ``amp.speed_matched_data`` reweighted to the environment's forward-speed
    command range (the bins' shares before and after are printed to stderr).

    Raises:
        ConfigError: speed matching is asked of an environment without a forward-speed
            command range.
        SpeedMatchError: no reference transition moves at the commanded speeds.
    """
    if not (amp.enabled and amp.speed_matched_data):
        return dataset.arrays
    commands = getattr(getattr(env, "config", None), "commands", None)
    if commands is None or not hasattr(commands, "vx_mps"):
        raise ConfigError(f"amp.speed_matched_data needs an environment with a forward-speed "
                          f"command range (commands.vx_mps); {type(env).__name__} has none")
    data = dataset.data
    match = SpeedMatch(speed_range_mps=tuple(commands.vx_mps),
                       window_s=amp.speed_match_window_s, bin_width_mps=amp.speed_match_bin_mps,
                       max_ratio=amp.speed_match_max_ratio)
    pair_start, probability = pair_distribution(data.clip_length, data.clip_weight)
    matched, report = speed_matched_probability(data.features, data.clip_start, data.clip_length,
                                                pair_start, probability, data.fps, match)
    print(f"{dataset.path}: {report.summary()}", file=sys.stderr)
    return make_arrays(data, pair_probability=matched)


_COMPILED: dict[tuple[Any, ...], Any] = {}
"""Compiled iterations by (EnvKey, config as compiled, devices, sampler): a second run in the
same process with an interchangeable environment (a resume, a test) compiles nothing."""


def compiled_iteration(env: Env, env_key: EnvKey | None, networks: Networks,
                       config: TrainConfig, mesh: Any, shardings: Any, dataset_sharding: Any,
                       sample_fn: SampleFn) -> Any:
    """The jitted iteration for this (env, config, mesh), built once per process when the
    environment has a key."""
    def step(state: TrainState, dataset: Any) -> Any:
        return training_iteration(state, dataset, env=env, networks=networks, config=config,
                                  sample_fn=sample_fn)

    def build() -> Any:
        replicated = sharding.replicated(mesh)
        return jax.jit(step, in_shardings=(shardings, dataset_sharding),
                       out_shardings=(shardings, replicated, replicated), donate_argnums=0)

    if env_key is None:
        return build()
    key = (env_key, _compile_key(config), tuple(d.id for d in mesh.devices.flat), sample_fn)
    if key not in _COMPILED:
        _COMPILED[key] = build()
    return _COMPILED[key]


def _compile_key(config: TrainConfig) -> TrainConfig:
    """The config with the fields the iteration never reads blanked, so e.g. a resumed run
    with more iterations reuses the compiled iteration."""
    blank = dict.fromkeys(RUN_LENGTH_KEYS, 0)
    if config.ppo.lr_schedule != "linear":
        return dataclasses.replace(config, **blank)
    return dataclasses.replace(config, **{k: 0 for k in blank if k != "num_iterations"})


def check_finite(iteration: int, metrics: dict[str, float], finite: np.ndarray,
                 leaf_paths: list[str], last_checkpoint: Path | None) -> None:
    """Raise :class:`NonFiniteError` naming the first non-finite metrics and parameters."""
    bad_metrics = [k for k, v in metrics.items() if not np.isfinite(v)]
    bad_params = [p for p, ok in zip(leaf_paths, finite, strict=True) if not ok]
    if not bad_metrics and not bad_params:
        return
    parts = []
    if bad_metrics:
        parts.append(f"loss/metric {', '.join(bad_metrics[:5])}")
    if bad_params:
        parts.append(f"parameter {', '.join(bad_params[:5])}")
    kept = f"last good checkpoint: {last_checkpoint}" if last_checkpoint else "no checkpoint yet"
    raise NonFiniteError(f"NaN/inf at iteration {iteration} in {'; '.join(parts)}; "
                         f"the run stopped ({kept})")


def check_resume_compatible(meta: dict[str, Any], config: TrainConfig, dataset_sha: str,
                            allow_data_mismatch: bool, path: Path) -> None:
    recorded_sha = meta.get("dataset", {}).get("content_sha256")
    if recorded_sha != dataset_sha and not allow_data_mismatch:
        raise DataMismatchError(
            f"{path}: checkpoint was trained on dataset content_sha256 {recorded_sha}, --data "
            f"has {dataset_sha}; pass --allow-data-mismatch to continue anyway")
    recorded = {k: v for k, v in meta["config"].items() if k not in RUN_LENGTH_KEYS}
    as_json = json.loads(json.dumps(config.to_dict(), default=str))  # tuples → lists
    current = {k: v for k, v in as_json.items() if k not in RUN_LENGTH_KEYS}
    changed = sorted(k for k in current if recorded.get(k) != current[k])
    if changed:
        raise ckpt.CheckpointError(f"{path}: config differs from the checkpoint's in {changed}; "
                                   "resuming needs the same settings (start a new --out instead)")


class Runner:
    """The host side of one training run (state lives on the devices): the mesh, the
    compiled iteration and evaluation, checkpoints. ``bench/train.py`` times its
    ``iteration_fn``."""

    def __init__(self, setup: Setup, paths: RunPaths) -> None:
        self.config, self.env, self.dataset = setup.config, setup.env, setup.dataset
        self.paths = paths
        config, env = self.config, self.env
        self.mesh = sharding.make_mesh(config.num_devices)
        sharding.check_divisible(config.ppo.num_envs, self.mesh)
        self.networks = make_networks(config, env)
        shape = jax.eval_shape(lambda: init_train_state(config, env, self.networks))
        self.shardings = sharding.state_shardings(shape, self.mesh)
        self.dataset_arrays = sharding.put_replicated(setup.discriminator_data, self.mesh)
        self.iteration_fn = compiled_iteration(
            env, setup.env_key, self.networks, config, self.mesh, self.shardings,
            sharding.replicated(self.mesh), sample_pairs)
        self.leaf_paths = param_leaf_paths(shape)
        self.evaluate_fn = jax.jit(
            lambda s, k: evaluate_policy(s, env, self.networks, config, k))
        self.last_checkpoint: Path | None = None

    def fresh_state(self) -> TrainState:
        init = jax.jit(lambda: init_train_state(self.config, self.env, self.networks),
                       out_shardings=self.shardings)
        return init()

    def warm_start(self, path: Path) -> tuple[TrainState, int]:
        """This run's fresh state with every leaf checkpoint ``path`` holds (matched by
        path) restored; returns it and the checkpoint's iteration, which the run continues
        from (so the noise anneal and learning-rate schedules do too)."""
        fresh = self.fresh_state()
        state, meta, kept = ckpt.load_matching(path, jax.device_get(fresh))
        if kept:
            print(f"note: {path} holds no {', '.join(kept)}; starting those fresh",
                  file=sys.stderr)
        return jax.device_put(state, self.shardings), int(meta["iteration"])

    def restore(self, path: Path, allow_data_mismatch: bool) -> TrainState:
        meta = ckpt.read_meta(path)
        check_resume_compatible(meta, self.config, self.dataset.content_sha256,
                                allow_data_mismatch, path)
        template = jax.eval_shape(lambda: init_train_state(self.config, self.env,
                                                           self.networks))
        state, _ = ckpt.load_checkpoint(path, template)
        self.last_checkpoint = path
        return jax.device_put(state, self.shardings)

    def metadata(self, iteration: int) -> dict[str, Any]:
        return {
            "config": self.config.to_dict(),
            "dataset": {"path": str(self.dataset.path),
                        "content_sha256": self.dataset.content_sha256},
            "robot": self.env.robot.name,
            "git_commit": ckpt.git_commit(Path(__file__).parent),
            "env_steps": iteration * self.config.transitions_per_iteration,
            "jax_version": jax.__version__,
            "devices": [str(d) for d in self.mesh.devices.flat],
            "run_id": run_id(self.config.to_dict(), self.dataset.content_sha256),
        }

    def save(self, state: TrainState, iteration: int) -> Path:
        self.last_checkpoint = ckpt.save_checkpoint(
            self.paths.checkpoints, state, iteration, self.metadata(iteration),
            keep=self.config.keep_checkpoints)
        return self.last_checkpoint

    def evaluate(self, state: TrainState, iteration: int) -> dict[str, float]:
        # Its own key stream: evaluating never changes the training state or its randomness.
        rng = jax.random.fold_in(jax.random.PRNGKey(self.config.seed + 1), iteration)
        metrics = self.evaluate_fn(state, rng)
        return {k: float(v) for k, v in jax.device_get(metrics).items()}


def train(config: TrainConfig, data: str | Path | AmpDataset, paths: RunPaths, *,
          overwrite: bool = False, **kwargs: Any) -> TrainResult:
    """:func:`_train` holding the run directory: one writer at a time, one run per directory.

    Before any work: the metrics locations must take a file, the run directory is locked
    (another run writing there fails fast, naming it), temporaries of killed runs are removed,
    and a fresh run into a directory that holds a run is refused unless ``overwrite``
    (:func:`training.rundir.prepare_run_dir`).
    """
    check_writable(files=(paths.metrics_json, paths.progress_csv), directories=(paths.out,))
    with output_lock(paths.out):
        remove_stale_temps(paths.out)
        prepare_run_dir(paths.out, bool(kwargs.get("resume")), overwrite)
        return _train(config, data, paths, **kwargs)


def _train(config: TrainConfig, data: str | Path | AmpDataset, paths: RunPaths, *,
           env: Env | None = None, resume: bool = False, allow_data_mismatch: bool = False,
           init_from: Path | None = None, stop_at: int | None = None,
           progress: bool = True) -> TrainResult:
    """Train (or, with ``resume``, continue from the newest checkpoint in ``paths``).

    Args:
        config: The run's settings.
        data: Merged dataset path, or an already loaded :class:`AmpDataset`.
        paths: Output locations.
        env: An environment object (default: the one ``config`` names, labelling contacts
            with the dataset's rule; see :func:`prepare`).
        resume: Continue from ``paths.checkpoints``' newest checkpoint.
        allow_data_mismatch: Resume even if the dataset's content hash differs.
        init_from: Start a new run from this checkpoint (or run directory) under ``config``:
            a warm start (:meth:`Runner.warm_start`), not a resume; ignored with ``resume``.
        stop_at: Stop (with a checkpoint) after this iteration, as if interrupted there.
        progress: Show a progress bar.
    Raises:
        NonFiniteError: NaN/inf in a loss or parameter (the last good checkpoint is kept).
    """
    run = Runner(prepare(config, data, env), paths)
    config = run.config
    start = 0
    if resume:
        latest = ckpt.require_good_checkpoint(paths.checkpoints)  # skips damaged ones, saying so
        state = run.restore(latest, allow_data_mismatch)
        start = int(ckpt.read_meta(latest)["iteration"])
    elif init_from is not None:
        state, start = run.warm_start(resolve_checkpoint(init_from))
    else:
        state = run.fresh_state()
    end = min(config.num_iterations, stop_at if stop_at is not None else config.num_iterations)
    log = RunLog(paths.tensorboard, paths.progress_csv, start if resume else None)
    try:
        state, metrics = _loop(run, state, start, end, log, progress)
    finally:
        log.close()
    if end > start or run.last_checkpoint is None:
        run.save(state, end)
    _write_summary(run, paths, end, metrics, log)
    return TrainResult(state, metrics, end, run.last_checkpoint)


def _loop(run: Runner, state: TrainState, start: int, end: int, log: RunLog,
          progress: bool) -> tuple[TrainState, dict[str, float]]:
    from tqdm import tqdm

    config = run.config
    per_iteration = config.transitions_per_iteration
    metrics: dict[str, float] = {}
    bar = tqdm(total=config.num_iterations, initial=start, disable=not progress,
               unit="it", dynamic_ncols=True, file=sys.stderr)
    clock = time.perf_counter()
    for iteration in range(start + 1, end + 1):
        state, device_metrics, finite = run.iteration_fn(state, run.dataset_arrays)
        host_metrics, finite = jax.device_get((device_metrics, finite))
        metrics = {k: float(v) for k, v in host_metrics.items()}
        check_finite(iteration, metrics, np.asarray(finite), run.leaf_paths,
                     run.last_checkpoint)
        steps_per_s = per_iteration / max(time.perf_counter() - clock, 1e-9)
        if config.eval_every and iteration % config.eval_every == 0:
            metrics.update(run.evaluate(state, iteration))
        if iteration % config.log_every == 0 or iteration == end:
            log.record(iteration, iteration * per_iteration, steps_per_s, metrics)
        if iteration % config.checkpoint_every == 0 and iteration != end:
            run.save(state, iteration)
            log.flush()
        bar.update(1)
        bar.set_postfix(steps_per_s=f"{steps_per_s:,.0f}",
                        task=f"{metrics['rollout/task_reward']:.3f}")
        clock = time.perf_counter()  # logging, evaluation and saving are not training time
    bar.close()
    return state, metrics


def _write_summary(run: Runner, paths: RunPaths, iteration: int, metrics: dict[str, float],
                   log: RunLog) -> None:
    rates = [float(r["env_steps_per_s"]) for r in log.rows[1:]] or [0.0]
    summary = {
        "iteration": iteration,
        "env_steps": iteration * run.config.transitions_per_iteration,
        "env_steps_per_s_median": float(np.median(rates)),
        "dataset_content_sha256": run.dataset.content_sha256,
        "checkpoint": str(run.last_checkpoint),
        "final": metrics,
    }
    write_final_metrics(paths.metrics_json, summary)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = stage_parser("train", prog="python -m training.train", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, type=Path, help="merged AMP dataset (.h5)")
    parser.add_argument("--preset", choices=sorted(PRESETS), default=None,
                        help="settings preset (default cpu-smoke; on --resume the checkpoint's)")
    parser.add_argument("--out", type=Path, default=Path("runs/amp"), help="run directory")
    parser.add_argument("--resume", action="store_true",
                        help="continue from the newest checkpoint in --out")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace the run already in --out (a fresh run into a non-empty "
                             "--out is refused otherwise)")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="KEY=VALUE", help="override a config field (repeatable)")
    parser.add_argument("--init-from", type=Path, default=None, metavar="CHECKPOINT",
                        help="start a new run from this checkpoint's networks, normalizers and "
                             "buffers under this config (a warm start; --set what changes)")
    parser.add_argument("--allow-data-mismatch", action="store_true",
                        help="resume although --data differs from the checkpoint's dataset")
    # Beside the run by default: the DVC stage names metrics/ itself, and a run started by
    # hand (a probe, a warm start) must not overwrite the pipeline's tracked metrics.
    parser.add_argument("--metrics", type=Path, default=None,
                        help="final metrics JSON (default: OUT/train.json)")
    parser.add_argument("--plot", type=Path, default=None,
                        help="per-iteration CSV (default: OUT/train_progress.csv)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return parser.parse_args(argv)


def resolve_config(args: argparse.Namespace) -> TrainConfig:
    """Preset + ``--set``; on ``--resume`` the checkpoint's config + ``--set``."""
    if args.resume:
        latest, _ = ckpt.newest_good_checkpoint(args.out / "checkpoints", warn=False)
        if latest is None:
            raise ckpt.CheckpointError(f"{args.out / 'checkpoints'}: no usable checkpoint to "
                                       "resume from")
        base = config_from_dict(ckpt.read_meta(latest)["config"])
        if args.preset is not None and preset(args.preset) != base:
            print(f"note: --preset {args.preset} ignored on --resume; using the checkpoint's "
                  "config", file=sys.stderr)
    else:
        base = preset(args.preset or "cpu-smoke")
    return apply_overrides(base, args.overrides)


def run_paths(args: argparse.Namespace) -> RunPaths:
    """The run directory, and the metrics JSON and progress CSV: as given, else inside it."""
    return RunPaths(args.out, args.metrics or args.out / "train.json",
                    args.plot or args.out / "train_progress.csv")


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    paths = run_paths(args)
    try:
        config = resolve_config(args)
        result = train(config, args.data, paths, resume=args.resume, overwrite=args.overwrite,
                       allow_data_mismatch=args.allow_data_mismatch,
                       init_from=args.init_from, progress=not args.no_progress)
    except NonFiniteError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 3
    except (AmpkitError, ConfigError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"trained {result.iteration} iterations; checkpoint {result.checkpoint}; "
          f"metrics {paths.metrics_json}")
    return 0


if __name__ == "__main__":
    from robots.errors import run_main

    sys.exit(run_main(main, "train"))
