"""How separable are a checkpoint's policy transitions from the data, for any discriminator?

    python -m bench.disc_probe --checkpoint runs/walk --data data/amp/merged.h5
    python -m bench.disc_probe --checkpoint runs/walk --data … --noise 0.1 0.3 --gp 10 40

The trainer's discriminator co-evolves with the policy, so its accuracy mixes two questions:
do the policy's states differ from the data's, and does this discriminator's training (its
gradient penalty, input noise, learning rate) let it draw the line? This bench fixes the
policy: it takes the checkpoint's replay buffer (the last ~30 iterations' transitions) and
trains fresh discriminators on it against the dataset, one per setting, with the trainer's
loss (:func:`training.discriminator.discriminator_loss`) and normalizer. Each is scored on
held-out replay transitions and fresh data pairs, on clean inputs, as the style reward is.

With ``--rollout-steps N`` the policy's transitions come instead from its deterministic policy
(the mean action, no exploration noise), rolled out for N control steps in the checkpoint's
own training environment (commands, randomization and pushes as in training; the first
second of each episode dropped): how much of the separation is the exploration noise the
trainer's rollouts carry, and how much the policy's own motion.

Prints the features one threshold separates best, then one line per setting (and one for
the checkpoint's own discriminator): data and policy accuracy, mean logits, and the policy's
mean style reward. ``--noise`` / ``--gp`` with no values skip the fresh discriminators.

Two more questions, each with fresh discriminators at the first ``--noise`` / ``--gp``:

- ``--groups``: what gives the policy away? One discriminator per feature group (the AMP
  frame's blocks, and each joint's angle and velocity together), shown only that group.
- ``--hold-out-motions SHARE``: does the discriminator memorize the reference rather than
  learn its style? That share of the data's motions (a clip with its mirror image and its
  filtered pieces, :func:`motion_name`) is kept out of its training; it is scored on them
  and on the motions it trained on. Held-out motions scored as data as often as the
  trained ones mean it has learnt what the data's motion looks like, not the clips.
"""

from __future__ import annotations

import argparse
import itertools
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
import optax

from amp.dataset import AmpDataset, DatasetArrays, load_dataset, sample_pairs, sampler_arrays
from amp.dataset import normalize as normalize_frames
from amp.features import FEATURE_LAYOUT, NUM_AMP_JOINTS, feature_names
from amp.mirror import MIRROR_SUFFIX
from robots import load_spec
from robots.errors import AmpkitError
from training import checkpoint as ckpt
from training.discriminator import add_input_noise, discriminator_loss, style_reward
from training.networks import make_discriminator
from training.normalization import normalize
from training.policy import PolicySnapshot, deterministic_policy, load_snapshot
from training.train import discriminator_arrays


@dataclass(frozen=True)
class ProbeResult:
    """Held-out, clean-input scores of one discriminator."""

    label: str
    data_accuracy: float
    policy_accuracy: float
    data_logit: float
    policy_logit: float
    policy_style: float

    def line(self) -> str:
        return (f"{self.label:28s} acc data {self.data_accuracy:.3f} policy "
                f"{self.policy_accuracy:.3f}  logit {self.data_logit:+.2f} / "
                f"{self.policy_logit:+.2f}  policy style {self.policy_style:.3f}")


def score(label: str, logits: jax.Array, data_logits: jax.Array) -> ProbeResult:
    """Scores from held-out policy ``logits`` [B] and data ``data_logits`` [B]."""
    return ProbeResult(label, float(jnp.mean(data_logits > 0)), float(jnp.mean(logits < 0)),
                       float(jnp.mean(data_logits)), float(jnp.mean(logits)),
                       float(jnp.mean(style_reward(logits))))


def feature_groups(names: Sequence[str]) -> dict[str, list[int]]:
    """Feature group name → AMP frame columns: each block of the frame, then each joint's
    angle and velocity together (named by the angle's feature name)."""
    groups = {block.name: list(range(block.start, block.stop)) for block in FEATURE_LAYOUT}
    for joint in range(NUM_AMP_JOINTS):
        groups[names[joint]] = [joint, NUM_AMP_JOINTS + joint]
    return groups


def motion_name(clip_name: str) -> str:
    """The motion a merged clip shows: its name without a mirror suffix or the ``@frame`` of
    a filtered piece (``walk_fast_01_mirror@30`` → ``walk_fast_01``)."""
    name = clip_name.split("@")[0]
    return name[: -len(MIRROR_SUFFIX)] if name.endswith(MIRROR_SUFFIX) else name


def held_out_motions(clip_names: Sequence[str], share: float, seed: int = 0) -> set[str]:
    """A random ``share`` of the motions in ``clip_names`` (at least one, never all)."""
    motions = sorted({motion_name(n) for n in clip_names})
    count = min(max(1, round(share * len(motions))), len(motions) - 1)
    order = np.random.default_rng(seed).permutation(len(motions))
    return {motions[i] for i in order[:count]}


def motion_split(reference: DatasetArrays, clip_names: Sequence[str], held: set[str],
                 clip_weight: np.ndarray) -> tuple[DatasetArrays, DatasetArrays]:
    """``reference``'s transitions split into (the other motions', the ``held`` motions'),
    each keeping the draw probabilities ``reference`` gives its transitions, renormalized."""
    starts = np.asarray(reference.clip_start)
    pair_start = np.asarray(reference.pair_start)
    probability = np.diff(np.concatenate([[0.0], np.asarray(reference.pair_cdf, np.float64)]))
    clip_of_pair = np.searchsorted(starts, pair_start, side="right") - 1
    in_held = np.array([motion_name(clip_names[c]) in held for c in clip_of_pair])

    def arrays(mask: np.ndarray) -> DatasetArrays:
        kept = np.where(mask, probability, 0.0)
        if kept.sum() <= 0:
            raise ValueError("a side of the motion split has no transition the draws reach")
        return sampler_arrays(np.asarray(reference.features), starts,
                              np.asarray(reference.clip_length), clip_weight,
                              np.asarray(reference.mean), np.asarray(reference.std),
                              pair_probability=kept / kept.sum())

    return arrays(~in_held), arrays(in_held)


def threshold_accuracy(data: np.ndarray, policy: np.ndarray) -> np.ndarray:
    """Best balanced accuracy of one threshold per feature, [F]: data [N, F], policy [M, F]."""
    values = np.concatenate([data, policy])
    is_data = np.concatenate([np.ones(len(data)), np.zeros(len(policy))])
    order = np.argsort(values, axis=0, kind="stable")
    labels = is_data[order]
    ordered = np.take_along_axis(values, order, axis=0)
    # balanced accuracy of "data below the threshold" at every cut, and of the reverse; a cut
    # can only fall between two different values (a 0/1 feature has one)
    below = np.cumsum(labels, axis=0) / len(data) - np.cumsum(1 - labels, axis=0) / len(policy)
    cut = np.ones_like(below, dtype=bool)
    cut[:-1] = ordered[1:] != ordered[:-1]
    return 0.5 + 0.5 * np.where(cut, np.abs(below), 0.0).max(axis=0)


def feature_report(data: np.ndarray, policy: np.ndarray, names: Sequence[str],
                   top: int) -> list[str]:
    """Lines for the ``top`` features one threshold separates best, with both stds."""
    accuracy = threshold_accuracy(data, policy)
    lines = []
    for i in np.argsort(-accuracy)[:top]:
        lines.append(f"  {names[i]:32s} one-threshold acc {accuracy[i]:.3f}  std data "
                     f"{data[:, i].std():.3f} policy {policy[:, i].std():.3f}  mean "
                     f"{data[:, i].mean():+.3f} / {policy[:, i].mean():+.3f}")
    return lines


def probe_arrays(keys: Sequence[jax.Array], label: str, first: DatasetArrays,
                 reference: DatasetArrays, noise_std: float, gp_weight: float, steps: int,
                 scored: int, hidden: Sequence[int] = (512, 256), learning_rate: float = 1e-4,
                 batch_size: int = 2048, train_pairs: int = 100_000) -> ProbeResult:
    """A fresh discriminator trained on ``first``'s transitions (``train_pairs`` drawn once)
    against ``reference``'s (drawn anew each step), both normalized by their arrays' statistics,
    and scored on fresh draws of each (``scored`` per side, clean inputs).

    Args:
        keys: Four PRNG keys: the training draw, the scored draw of ``first``, the scored
            draw of ``reference``, the network's initialization and steps.
    """
    train_key, first_key, reference_key, probe_key = keys

    def normalized(arrays: DatasetArrays, key: jax.Array, n: int) -> jax.Array:
        return normalize_frames(arrays, sample_pairs(arrays, key, n))

    network, params = train_probe(probe_key, tuple(hidden),
                                  normalized(first, train_key, train_pairs),
                                  lambda key, n: normalized(reference, key, n), noise_std,
                                  gp_weight, learning_rate, steps, batch_size)
    return score(label, network.apply(params, normalized(first, first_key, scored)),
                 network.apply(params, normalized(reference, reference_key, scored)))


def train_probe(rng: jax.Array, hidden: Sequence[int], train_policy: jax.Array,
                data_fn, noise_std: float, gp_weight: float, learning_rate: float,
                steps: int, batch_size: int) -> tuple[object, object]:
    """Fresh discriminator trained ``steps`` steps on normalized policy pairs [M, 2, F]
    against ``data_fn(key, n)`` normalized data pairs; returns (network, params)."""
    network = make_discriminator(hidden)
    init_key, rng = jax.random.split(rng)
    params = network.init(init_key, train_policy[:1])
    optimizer = optax.chain(optax.clip_by_global_norm(1.0), optax.adam(learning_rate))

    def logit_fn(p, x):
        return network.apply(p, x)

    @jax.jit
    def step(carry, key):
        params, opt_state = carry
        pick, data_key, noise_a, noise_b = jax.random.split(key, 4)
        idx = jax.random.randint(pick, (batch_size,), 0, train_policy.shape[0])
        policy = add_input_noise(noise_a, train_policy[idx], noise_std)
        data = add_input_noise(noise_b, data_fn(data_key, batch_size), noise_std)
        grads, _ = jax.grad(discriminator_loss, has_aux=True)(params, logit_fn, data, policy,
                                                              gp_weight, 0.01)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return (optax.apply_updates(params, updates), opt_state), None

    carry = (params, optimizer.init(params))
    for key in jax.random.split(rng, steps):
        carry, _ = step(carry, key)
    return network, carry[0]


def deterministic_pairs(snapshot: PolicySnapshot, num_envs: int, steps: int,
                        warmup_steps: int, seed: int = 0) -> np.ndarray:
    """Raw AMP pairs [M, 2, 29] of the checkpoint's deterministic policy in its training env.

    ``num_envs`` environments run ``steps`` control steps from their resets (auto-reset on a
    fall or time-out, as in training); a transition is kept once its episode is at least
    ``warmup_steps`` old, so the standing start does not count as the policy's walking, and
    an episode's last one is dropped."""
    env, policy = snapshot.env, deterministic_policy(snapshot)

    def one_step(state, _):
        action = policy(state.obs, None)
        state = jax.vmap(env.step)(state, action)
        pair = jnp.stack([state.info["amp_prev_frame"], state.info["amp_terminal_frame"]], 1)
        return state, (pair, (state.info["step"] >= warmup_steps) & (state.done == 0))

    @jax.jit
    def run(key):
        state = jax.vmap(env.reset)(jax.random.split(key, num_envs))
        return jax.lax.scan(one_step, state, None, length=steps)[1]

    pairs, keep = jax.device_get(run(jax.random.PRNGKey(seed)))
    return np.asarray(pairs[keep], np.float32)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", required=True, help="checkpoint or run directory")
    parser.add_argument("--data", required=True, help="the run's merged.h5")
    parser.add_argument("--noise", type=float, nargs="*", default=[0.1, 0.3, 0.6])
    parser.add_argument("--gp", type=float, nargs="*", default=[10.0])
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--batch", type=int, default=2048)
    parser.add_argument("--learning-rate", type=float, default=1e-4)
    parser.add_argument("--top", type=int, default=8, help="features listed")
    parser.add_argument("--rollout-steps", type=int, default=0,
                        help="probe the deterministic policy's rollouts of this many control "
                             "steps instead of the replay buffer (0: the replay buffer)")
    parser.add_argument("--rollout-envs", type=int, default=128)
    parser.add_argument("--groups", action="store_true",
                        help="one fresh discriminator per feature group, shown only that group")
    parser.add_argument("--hold-out-motions", type=float, default=0.0, metavar="SHARE",
                        help="train a fresh discriminator without this share of the data's "
                             "motions and score it on them (a memorization check)")
    args = parser.parse_args(argv)

    snapshot = load_snapshot(args.checkpoint)  # the config, AMP normalizer, discriminator
    path, meta, config, stats = snapshot.path, snapshot.meta, snapshot.config, snapshot.amp_stats
    leaf_index = {leaf["path"]: i for i, leaf in enumerate(meta["leaves"])}
    if args.rollout_steps > 0:
        warmup = int(round(1.0 / snapshot.env.control_dt))
        raw_pairs = deterministic_pairs(snapshot, args.rollout_envs, args.rollout_steps, warmup)
        source = "deterministic-policy transitions"
    else:
        arrays = ckpt.read_state_arrays(path)
        size = int(arrays[f"leaf_{leaf_index['.replay.size']:05d}"])
        raw_pairs = arrays[f"leaf_{leaf_index['.replay.pairs']:05d}"][:size]
        source = "replay transitions"
    size = raw_pairs.shape[0]
    clip = config.amp.normalizer_clip
    rng = jax.random.PRNGKey(0)
    perm_key, data_key, rng = jax.random.split(rng, 3)
    pairs = normalize(stats, jnp.asarray(raw_pairs)[jax.random.permutation(perm_key, size)],
                      clip)
    held_out = pairs[: min(size // 5, 20_000)]
    train = pairs[held_out.shape[0]:]
    spec = load_spec(meta["robot"])
    dataset = load_dataset(args.data, spec)
    # The reference transitions as the run's discriminator drew them (speed-matched or not).
    reference = discriminator_arrays(dataset, config.amp, snapshot.env)

    def normalized_draw(arrays, key, n):
        return normalize(stats, sample_pairs(arrays, key, n), clip)

    def data_fn(key, n):
        return normalized_draw(reference, key, n)

    held_data = data_fn(data_key, held_out.shape[0])
    raw_data = np.asarray(sample_pairs(reference, data_key, 20_000)[:, 0])
    names = feature_names(spec.amp_joint_names)
    print(f"{path}: iteration {meta['iteration']}, {size} {source} "
          f"({held_out.shape[0]} held out), discriminator {config.amp.hidden}")
    print("features one threshold separates best (raw units, s_t of each pair):")
    print("\n".join(feature_report(raw_data, raw_pairs[:, 0], names, args.top)))
    own, own_params = snapshot.style_network, snapshot.disc_params
    print(score("checkpoint's discriminator", own.apply(own_params, held_out),
                own.apply(own_params, held_data)).line())
    for noise, gp in itertools.product(args.noise, args.gp):
        key, rng = jax.random.split(rng)
        network, params = train_probe(key, config.amp.hidden, train, data_fn, noise, gp,
                                      args.learning_rate, args.steps, args.batch)
        print(score(f"fresh: noise {noise:g}, gp {gp:g}", network.apply(params, held_out),
                    network.apply(params, held_data)).line(), flush=True)
    probe = FreshProbe(config.amp.hidden, args.noise[0] if args.noise else 0.1,
                       args.gp[0] if args.gp else 10.0, args.learning_rate, args.steps,
                       args.batch)
    if args.groups:
        print(f"fresh discriminators shown one feature group (noise {probe.noise_std:g}, "
              f"gp {probe.gp_weight:g}):")
        for group, columns in feature_groups(names).items():
            key, rng = jax.random.split(rng)
            print(probe.on_columns(key, group, columns, train, held_out, data_fn,
                                   held_data).line(), flush=True)
    if args.hold_out_motions > 0:
        key, rng = jax.random.split(rng)
        print("\n".join(hold_out_report(key, probe, dataset, reference, args.hold_out_motions,
                                        train, held_out, normalized_draw)))
    return 0


DataFn = Callable[[jax.Array, int], jax.Array]
"""``(key, n) -> normalized data pairs [n, 2, 29]``."""


@dataclass(frozen=True)
class FreshProbe:
    """How a fresh discriminator is built and trained (``train_probe``'s settings)."""

    hidden: tuple[int, ...]
    noise_std: float
    gp_weight: float
    learning_rate: float
    steps: int
    batch: int

    def train(self, key: jax.Array, policy: jax.Array, data_fn: DataFn
              ) -> tuple[object, object]:
        return train_probe(key, self.hidden, policy, data_fn, self.noise_std, self.gp_weight,
                           self.learning_rate, self.steps, self.batch)

    def on_columns(self, key: jax.Array, label: str, columns: Sequence[int], train: jax.Array,
                   held_out: jax.Array, data_fn: DataFn, held_data: jax.Array
                   ) -> ProbeResult:
        """Trained and scored on the feature ``columns`` of normalized pairs alone."""
        cols = jnp.asarray(columns)
        network, params = self.train(key, train[:, :, cols],
                                     lambda k, n: data_fn(k, n)[:, :, cols])
        return score(label, network.apply(params, held_out[:, :, cols]),
                     network.apply(params, held_data[:, :, cols]))


def hold_out_report(key: jax.Array, probe: FreshProbe, dataset: AmpDataset,
                    reference: DatasetArrays, share: float, train: jax.Array,
                    held_out: jax.Array,
                    normalized_draw: Callable[[DatasetArrays, jax.Array, int], jax.Array]
                    ) -> list[str]:
    """Lines of the memorization check: a fresh discriminator trained without ``share`` of
    the motions, scored on the motions it trained on and on the held-out ones.

    Args:
        normalized_draw: ``(arrays, key, n) -> normalized pairs [n, 2, 29]``.
    """
    data = dataset.data
    held = held_out_motions(data.clip_name, share)
    trained_on, held_back = motion_split(reference, data.clip_name, held, data.clip_weight)
    train_key, score_key = jax.random.split(key)
    network, params = probe.train(train_key, train,
                                  lambda k, n: normalized_draw(trained_on, k, n))
    policy_logits = network.apply(params, held_out)
    lines = [f"motions held out of training: {', '.join(sorted(held))}"]
    for label, arrays in (("motions trained on", trained_on), ("motions held out", held_back)):
        data_logits = network.apply(params, normalized_draw(arrays, score_key, held_out.shape[0]))
        lines.append(score(label, policy_logits, data_logits).line())
    return lines


def _main() -> int:
    try:
        return main()
    except AmpkitError as exc:  # a missing or damaged checkpoint or dataset, named
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(_main())
