"""One training iteration as one pure function of the :class:`TrainState` (jit it once).

rollout (scan over ``unroll_length`` steps of the vmapped env batch)
→ AMP normalizer update → discriminator steps (scan) → style reward
→ GAE → PPO epochs (scan) over shuffled minibatches (scan)
→ observation normalizer update → replay-buffer insert.

The observation normalizers are updated after the PPO epochs, so the update sees exactly the
normalization the rollout acted with (the importance ratio starts at 1). The policy and the
style reward are the inference functions of :mod:`training.policy`, so evaluation and export
compute exactly what training optimized.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import flax.struct
import jax
import jax.numpy as jnp
import optax

from training import ppo
from training.config import AmpConfig, TrainConfig
from training.discriminator import (
    add_input_noise,
    discriminator_loss,
    mix_policy_batch,
    replay_insert,
    separability,
)
from training.networks import (
    gaussian_entropy,
    gaussian_kl,
    gaussian_log_prob,
    window_progress,
)
from training.normalization import normalize, update_stats
from training.policy import make_inference_fn, policy_distribution, style_rewards
from training.train_state import Networks, TrainState

if TYPE_CHECKING:
    from training.envs.base import Env

SampleFn = Callable[[Any, jax.Array, int], jax.Array]
"""``sample_pairs(dataset_arrays, rng, batch_size) -> [B, 2, F]`` reference transitions."""
Metrics = dict[str, jax.Array]


@flax.struct.dataclass
class Transition:
    """One rollout step of the whole batch; under the scan each field gains a leading [T].

    Attributes:
        obs: [N, O] raw policy observation the action was taken from.
        critic_obs: [N, P] raw critic observation of the same state.
        action: [N, A] unclipped Gaussian sample.
        log_prob: [N] its log-probability.
        mean: [N, A] policy mean.
        task_reward: [N] env reward of the step.
        done: [N] 1.0 where the episode ended at this step.
        truncated: [N] 1.0 where it ended by the time limit.
        amp_pairs: [N, 2, F] (amp_prev_frame, amp_terminal_frame).
        env_metrics: name → [N] env metrics after the step.
    """

    obs: jax.Array
    critic_obs: jax.Array
    action: jax.Array
    log_prob: jax.Array
    mean: jax.Array
    task_reward: jax.Array
    done: jax.Array
    truncated: jax.Array
    amp_pairs: jax.Array
    env_metrics: dict[str, jax.Array]


def critic_input(env_state: Any, networks: Networks) -> jax.Array:
    return env_state.privileged_obs if networks.critic_uses_privileged else env_state.obs


def values_of(state: TrainState, networks: Networks, config: TrainConfig,
              critic_obs: jax.Array, params: Any = None) -> jax.Array:
    """V for raw critic observations [..., P] → [...]."""
    params = state.params if params is None else params
    x = normalize(state.critic_obs_stats, critic_obs, config.ppo.obs_clip)
    return networks.value.apply(params["value"], x)


def collect_rollout(state: TrainState, env: Env, networks: Networks, config: TrainConfig,
                    rng: jax.Array) -> tuple[Any, Transition]:
    """Step the batch ``unroll_length`` times with the stochastic policy."""
    step_fn = jax.vmap(env.step)

    def one_step(env_state: Any, key: jax.Array) -> tuple[Any, Transition]:
        mean, log_std = policy_distribution(networks.policy, state.params["policy"],
                                            state.obs_stats, env_state.obs, state.iteration)
        action = mean + jnp.exp(log_std) * jax.random.normal(key, mean.shape)
        clip = networks.policy.action_clip
        next_state = step_fn(env_state, jnp.clip(action, -clip, clip))
        info = next_state.info
        transition = Transition(
            obs=env_state.obs,
            critic_obs=critic_input(env_state, networks),
            action=action,
            log_prob=gaussian_log_prob(action, mean, log_std),
            mean=mean,
            task_reward=next_state.reward,
            done=next_state.done,
            truncated=info["truncated"].astype(jnp.float32),
            amp_pairs=jnp.stack([info["amp_prev_frame"], info["amp_terminal_frame"]], axis=-2),
            env_metrics=dict(next_state.metrics),
        )
        return next_state, transition

    keys = jax.random.split(rng, config.ppo.unroll_length)
    return jax.lax.scan(one_step, state.env_state, keys)


def discriminator_phase(state: TrainState, networks: Networks, config: TrainConfig,
                        policy_pairs: jax.Array, dataset: Any, sample_fn: SampleFn,
                        rng: jax.Array) -> tuple[TrainState, Metrics]:
    """Update the AMP normalizer, then take ``num_epochs × num_minibatches`` discriminator steps.

    Args:
        policy_pairs: [M, 2, F] raw current-rollout transitions.
    """
    amp = config.amp
    num_steps = amp.num_epochs * amp.num_minibatches
    rng_data, rng_steps = jax.random.split(rng)
    data_pairs = sample_fn(dataset, rng_data, num_steps * amp.batch_size)
    frames = jnp.concatenate([data_pairs.reshape(-1, data_pairs.shape[-1]),
                              policy_pairs.reshape(-1, policy_pairs.shape[-1])])
    amp_stats = update_stats(state.amp_stats, frames)
    data_pairs = data_pairs.reshape(num_steps, amp.batch_size, *data_pairs.shape[1:])

    def logits(params: Any, pairs_n: jax.Array) -> jax.Array:
        return networks.discriminator.apply(params, pairs_n)

    def disc_step(carry: tuple[Any, Any], xs: tuple[jax.Array, jax.Array]) -> tuple[Any, Metrics]:
        params, opt_state = carry
        data_batch, key = xs
        mix_key, data_noise_key, policy_noise_key = jax.random.split(key, 3)
        policy_batch = mix_policy_batch(mix_key, policy_pairs, state.replay, amp.batch_size,
                                        amp.replay_fraction)
        data_n = add_input_noise(data_noise_key,
                                 normalize(amp_stats, data_batch, amp.normalizer_clip),
                                 amp.input_noise_std)
        policy_n = add_input_noise(policy_noise_key,
                                   normalize(amp_stats, policy_batch, amp.normalizer_clip),
                                   amp.input_noise_std)
        (_, metrics), grads = jax.value_and_grad(discriminator_loss, has_aux=True)(
            params, logits, data_n, policy_n, amp.grad_penalty_weight, amp.logit_weight_decay)
        updates, opt_state = networks.disc_optimizer.update(grads, opt_state, params)
        metrics["amp/disc_grad_norm"] = optax.tree.norm(grads)
        return (optax.apply_updates(params, updates), opt_state), metrics

    keys = jax.random.split(rng_steps, num_steps)
    (disc_params, disc_opt_state), metrics = jax.lax.scan(
        disc_step, (state.disc_params, state.disc_opt_state), (data_pairs, keys))
    state = state.replace(disc_params=disc_params, disc_opt_state=disc_opt_state,
                          amp_stats=amp_stats)
    metrics = jax.tree.map(jnp.mean, metrics)
    # Evidence of what separates the two, with the updated discriminator, on clean inputs.
    probe = policy_pairs[:amp.batch_size]
    metrics.update(separability(disc_params, logits,
                                normalize(amp_stats, data_pairs[0], amp.normalizer_clip),
                                normalize(amp_stats, probe, amp.normalizer_clip)))
    return state, metrics


class PPOBatch(flax.struct.PyTreeNode):
    """Flattened rollout for the PPO epochs; every field has leading axis [M] (= T·N)."""

    obs: jax.Array
    critic_obs: jax.Array
    action: jax.Array
    log_prob: jax.Array
    mean: jax.Array
    advantages: jax.Array
    returns: jax.Array
    values: jax.Array


def ppo_minibatch_loss(params: Any, state: TrainState, networks: Networks, config: TrainConfig,
                       batch: PPOBatch, old_log_std: jax.Array) -> tuple[jax.Array, Metrics]:
    """PPO loss of one minibatch; metrics include the KL(old ‖ new) of the policy."""
    mean, log_std = policy_distribution(networks.policy, params["policy"], state.obs_stats,
                                        batch.obs, state.iteration)
    terms = ppo.PPOTerms(
        log_prob=gaussian_log_prob(batch.action, mean, log_std),
        old_log_prob=batch.log_prob,
        advantages=batch.advantages,
        values=values_of(state, networks, config, batch.critic_obs, params),
        old_values=batch.values,
        returns=batch.returns,
        entropy=jnp.broadcast_to(gaussian_entropy(log_std), batch.log_prob.shape),
    )
    loss, metrics = ppo.ppo_loss_from_terms(terms, config.ppo)
    kl = gaussian_kl(batch.mean, old_log_std, mean, log_std)
    metrics["ppo/kl"] = jax.lax.stop_gradient(jnp.mean(kl))
    return loss, metrics


def ppo_phase(state: TrainState, networks: Networks, config: TrainConfig, batch: PPOBatch,
              old_log_std: jax.Array, rng: jax.Array) -> tuple[TrainState, Metrics]:
    """``num_epochs`` passes of ``num_minibatches`` Adam steps over a reshuffled batch."""
    cfg = config.ppo
    grad_fn = jax.value_and_grad(ppo_minibatch_loss, has_aux=True)

    def minibatch_step(carry: tuple[Any, Any, jax.Array], mb: PPOBatch) -> tuple[Any, Metrics]:
        params, opt_state, lr = carry
        (_, metrics), grads = grad_fn(params, state, networks, config, mb, old_log_std)
        if cfg.lr_schedule == "adaptive":
            lr = ppo.adapt_learning_rate(lr, metrics["ppo/kl"], cfg)
        updates, opt_state = networks.optimizer.update(grads, opt_state, params)
        params = jax.tree.map(lambda p, u: p - lr * u, params, updates)
        metrics["ppo/grad_norm"] = optax.tree.norm(grads)
        return (params, opt_state, lr), metrics

    def epoch(carry: tuple[Any, Any, jax.Array], key: jax.Array) -> tuple[Any, Metrics]:
        order = jax.random.permutation(key, batch.returns.shape[0])
        shuffled = jax.tree.map(
            lambda x: x[order].reshape(cfg.num_minibatches, -1, *x.shape[1:]), batch)
        return jax.lax.scan(minibatch_step, carry, shuffled)

    carry = (state.params, state.opt_state, state.learning_rate)
    (params, opt_state, lr), metrics = jax.lax.scan(
        epoch, carry, jax.random.split(rng, cfg.num_epochs))
    state = state.replace(params=params, opt_state=opt_state, learning_rate=lr)
    return state, jax.tree.map(jnp.mean, metrics)


def make_ppo_batch(state: TrainState, networks: Networks, config: TrainConfig,
                   rollout: Transition, rewards: jax.Array,
                   final_env_state: Any) -> tuple[PPOBatch, Metrics]:
    """Values, GAE and the flattened batch."""
    values = jax.lax.map(lambda x: values_of(state, networks, config, x), rollout.critic_obs)
    bootstrap = values_of(state, networks, config, critic_input(final_env_state, networks))
    gae = ppo.compute_gae(rewards, values, bootstrap, rollout.done, rollout.truncated,
                          config.ppo.discount, config.ppo.gae_lambda)

    def flat(x: jax.Array) -> jax.Array:
        return x.reshape(-1, *x.shape[2:])

    batch = PPOBatch(obs=flat(rollout.obs), critic_obs=flat(rollout.critic_obs),
                     action=flat(rollout.action), log_prob=flat(rollout.log_prob),
                     mean=flat(rollout.mean), advantages=flat(gae.advantages),
                     returns=flat(gae.returns), values=flat(values))
    metrics = {"ppo/value_mean": jnp.mean(values), "ppo/advantage_std": jnp.std(gae.advantages),
               "ppo/return_mean": jnp.mean(gae.returns)}
    return batch, metrics


def insert_rollout_into_replay(state: TrainState, config: TrainConfig, policy_pairs: jax.Array,
                               rng: jax.Array) -> TrainState:
    """Insert a random subset (``amp.replay_insert``, capped) of this rollout's transitions."""
    count = min(config.amp.replay_insert, policy_pairs.shape[0], config.amp.replay_size)
    chosen = jax.random.permutation(rng, policy_pairs.shape[0])[:count]
    return state.replace(replay=replay_insert(state.replay, policy_pairs[chosen]))


def rollout_metrics(rollout: Transition, style: jax.Array | None,
                    rewards: jax.Array) -> Metrics:
    metrics = {
        "rollout/task_reward": jnp.mean(rollout.task_reward),
        "rollout/total_reward": jnp.mean(rewards),
        "rollout/done_rate": jnp.mean(rollout.done),
        "rollout/fall_rate": jnp.mean(rollout.done * (1.0 - rollout.truncated)),
    }
    if style is not None:
        metrics["amp/style_reward_mean"] = jnp.mean(style)
        metrics["amp/style_reward_std"] = jnp.std(style)
    for name, value in rollout.env_metrics.items():
        metrics[f"env/{name}"] = jnp.mean(value)
    return metrics


def style_weight_at(config: AmpConfig, iteration: jax.Array) -> jax.Array:
    """The style weight [] at ``iteration``: ``style_weight``, then linear to
    ``final_style_weight`` over ``style_ramp_iterations`` (constant when that is None)."""
    if config.final_style_weight is None:
        return jnp.asarray(config.style_weight, jnp.float32)
    progress = window_progress(iteration, config.style_ramp_iterations)
    return config.style_weight + (config.final_style_weight - config.style_weight) * progress


def task_fade_keep(config: AmpConfig, iteration: jax.Array) -> jax.Array:
    """Progress of the fade at ``iteration`` as the share [] of a term fading to 0 still in
    the task reward: 1, then linearly to 0 over ``task_fade_iterations``."""
    if not config.faded_task_terms:
        return jnp.ones((), jnp.float32)
    return 1.0 - window_progress(iteration, config.task_fade_iterations)


def faded_task_reward(config: AmpConfig, iteration: jax.Array, rollout: Transition
                      ) -> jax.Array:
    """The rollout's task reward [T, N] less the faded part of ``faded_task_terms`` (their
    weighted values are in ``rollout.env_metrics`` under their names). Term i keeps
    ``final_i + (1 - final_i) · task_fade_keep`` of its value (``task_fade_final_shares``)."""
    if not config.faded_task_terms:
        return rollout.task_reward
    finals = config.task_fade_final_shares or (0.0,) * len(config.faded_task_terms)
    removed = 1.0 - task_fade_keep(config, iteration)
    faded = sum((1.0 - final) * rollout.env_metrics[name]
                for name, final in zip(config.faded_task_terms, finals, strict=True))
    return rollout.task_reward - removed * faded


def mixed_rewards(config: AmpConfig, iteration: jax.Array, task_reward: jax.Array,
                  style: jax.Array) -> jax.Array:
    """What PPO optimizes at ``iteration``: task_weight·task + style weight·style, [T, N]."""
    return config.task_weight * task_reward + style_weight_at(config, iteration) * style


def training_iteration(state: TrainState, dataset: Any, *, env: Env, networks: Networks,
                       config: TrainConfig, sample_fn: SampleFn,
                       ) -> tuple[TrainState, Metrics, jax.Array]:
    """One full iteration. Returns the new state, scalar metrics, and a [num_param_leaves] bool
    vector saying which parameter leaves (``param_leaf_paths`` order) are all finite."""
    rng, k_rollout, k_disc, k_ppo, k_replay = jax.random.split(state.rng, 5)
    if config.ppo.lr_schedule != "adaptive":
        state = state.replace(learning_rate=ppo.scheduled_learning_rate(
            state.iteration, config.ppo, config.num_iterations))
    final_env_state, rollout = collect_rollout(state, env, networks, config, k_rollout)
    metrics: Metrics = {}
    style = None
    task_reward = faded_task_reward(config.amp, state.iteration, rollout)
    rewards = task_reward
    if config.amp.faded_task_terms:
        metrics["rollout/task_fade_keep"] = task_fade_keep(config.amp, state.iteration)
    policy_pairs = rollout.amp_pairs.reshape(-1, *rollout.amp_pairs.shape[2:])
    if config.amp.enabled:
        state, disc_metrics = discriminator_phase(state, networks, config, policy_pairs,
                                                  dataset, sample_fn, k_disc)
        metrics.update(disc_metrics)
        style = style_rewards(networks.discriminator, state.disc_params, state.amp_stats,
                              rollout.amp_pairs)
        metrics["amp/style_weight"] = style_weight_at(config.amp, state.iteration)
        rewards = mixed_rewards(config.amp, state.iteration, task_reward, style)
    batch, gae_metrics = make_ppo_batch(state, networks, config, rollout, rewards,
                                        final_env_state)
    _, old_log_std = policy_distribution(networks.policy, state.params["policy"],
                                         state.obs_stats, rollout.obs[0, :1], state.iteration)
    state, ppo_metrics = ppo_phase(state, networks, config, batch, old_log_std, k_ppo)
    state = state.replace(
        obs_stats=update_stats(state.obs_stats, rollout.obs),
        critic_obs_stats=update_stats(state.critic_obs_stats, rollout.critic_obs),
        env_state=final_env_state, rng=rng, iteration=state.iteration + 1)
    if config.amp.enabled:
        state = insert_rollout_into_replay(state, config, policy_pairs, k_replay)
    metrics.update(gae_metrics)
    metrics.update(ppo_metrics)
    metrics.update(rollout_metrics(rollout, style, rewards))
    metrics["ppo/learning_rate"] = state.learning_rate
    metrics["ppo/action_std"] = jnp.mean(jnp.exp(old_log_std))
    return state, metrics, params_finite(state)


def trained_params(state: TrainState) -> dict[str, Any]:
    """The parameter trees checked for NaN/inf, by name."""
    return {"policy": state.params["policy"], "value": state.params["value"],
            "discriminator": state.disc_params}


def params_finite(state: TrainState) -> jax.Array:
    leaves = jax.tree_util.tree_leaves(trained_params(state))
    return jnp.stack([jnp.all(jnp.isfinite(leaf)) for leaf in leaves])


def param_leaf_paths(state: TrainState) -> list[str]:
    """Readable path of each parameter leaf, e.g. ``policy/params/MLP_0/Dense_0/kernel``."""
    flat = jax.tree_util.tree_flatten_with_path(trained_params(state))[0]
    return ["/".join(str(getattr(k, "key", getattr(k, "idx", k))) for k in path)
            for path, _ in flat]


def evaluate_policy(state: TrainState, env: Env, networks: Networks, config: TrainConfig,
                    rng: jax.Array) -> Metrics:
    """Deterministic (mean-action) rollout of ``eval_envs`` fresh episodes for ``eval_steps``
    steps; reads the state, changes nothing in it."""
    env_state = jax.vmap(env.reset)(jax.random.split(rng, config.eval_envs))
    act = make_inference_fn(networks.policy)(state.params["policy"], state.obs_stats)

    def one_step(carry: Any, _: None) -> tuple[Any, tuple[jax.Array, jax.Array, jax.Array]]:
        carry = jax.vmap(env.step)(carry, act(carry.obs))
        fell = carry.done * (1.0 - carry.info["truncated"].astype(jnp.float32))
        return carry, (carry.reward, carry.done, fell)

    _, (reward, done, fell) = jax.lax.scan(one_step, env_state, None, length=config.eval_steps)
    return {"eval/task_reward": jnp.mean(reward), "eval/episodes_ended": jnp.sum(done),
            "eval/falls": jnp.sum(fell)}
