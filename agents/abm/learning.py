"""The learner of "Keep Doing What Worked" (ABM paper, Algorithm 1).

One class, configured by a prior (ABM, BM, none) and an improvement step
(MPO, SVG, none), so the variants differ only in their update rules. One
step, part by part (each part a method returning a NamedTuple):

  value targets       V̂(s) = mean of Q̂_φ'(s, a_j), a_j ~ π_θ', at s_{t+1}
                      (and at every s_t for the ABM weights); MPO's E-step
                      samples and their Q̂_φ' in the same critic call
                      (`_value_targets`)
  policy evaluation   TD(0) toward r + γ V̂(s') (eq. 1), or toward the
                      snippet's n-step return R(τ_t:N) (`policy_evaluation`)
  prior               weighted max likelihood on the data (eq. 3 / eq. 4)
                      (`_prior_update`)
  improvement, MPO    E-step on prior samples, M-step with a trust region
                      to the target policy (eq. 5, 7–10) (`_mpo_improvement`)
  improvement, SVG    reparameterised value gradient with KL to the prior
                      (eq. 6, 11–12) (`_svg_improvement`)
  prior only          no RL policy; V̂ and Q̂ are the prior's (ε = 0)

Target networks (π_θ', Q̂_φ', and the prior's in prior-only mode) are copied
every `target_update_period` steps.

What shows the advantage filter at work (§3.2) is logged beside the losses:
per behaviour tag of the data (`behaviour_tags`), the ABM weights' mean
(`abm_weight_<tag>`) and the prior's log-likelihood of the tag's actions
(`prior_logp_<tag>`); MPO's E-step weight entropy (`e_step_entropy`, log M
when the weights are uniform); and, with held-out episodes (`heldout`),
every `heldout_every` steps, the critic's Q̂(s, a) and V̂(s) at their
states beside the episodes' Monte-Carlo returns, per tag
(`heldout_{q,v,return}_<tag>`).
"""

import copy
from typing import Dict, Iterator, List, NamedTuple, Optional, Sequence, Tuple

from acme.tf import utils as tf2_utils
from acme.utils import counting
from acme.utils import loggers
import numpy as np
import sonnet as snt
import tensorflow as tf
import tensorflow_probability as tfp

from abmrl.agents import base
from abmrl.agents import losses as shared_losses
from abmrl.agents.abm import config as config_lib
from abmrl.agents.abm import losses

tfd = tfp.distributions


class EStep(NamedTuple):
  """What MPO's E-step (eq. 7–9) weighs: M actions per state, their Q̂_φ'."""
  states: tf.Tensor  # s, where the policy improves, [S, O]
  actions: tf.Tensor  # a_j, [M, S, A]
  q_values: tf.Tensor  # Q̂_φ'(s, a_j), [M, S]
  target: tfd.Distribution  # π_θ'(·|s), batch [S]: the M-step's trust region


class ValueTargets(NamedTuple):
  """V̂ from the target networks (eq. 1), and the E-step scored beside it."""
  next_value: tf.Tensor  # V̂(s_{t+1}), [B, T]
  value: Optional[tf.Tensor]  # V̂(s_t), [B, T]; with the ABM prior only
  e_step: Optional[EStep]  # with MPO only


class PriorUpdate(NamedTuple):
  """The prior's loss (eq. 3 or eq. 4) and its distribution at the data."""
  loss: tf.Tensor
  distribution: tfd.Distribution  # π_prior(·|s_t), batch [B·T]
  stats: Dict[str, tf.Tensor]  # logged: the ABM weights' mean


class Improvement(NamedTuple):
  """A policy improvement step's losses (MPO or SVG)."""
  policy_loss: tf.Tensor  # for θ
  dual_loss: tf.Tensor  # for `duals`
  duals: List[tf.Variable]  # projected to ≥ min_dual after their step
  stats: Dict[str, tf.Tensor]  # logged


class ABMLearner(base.StepLoopLearner):
  """ABM+MPO, BM+MPO, MPO, the SVG variants and the prior-only mode."""

  def __init__(self,
               policy_network: snt.Module,
               prior_network: snt.Module,
               critic_network: snt.Module,
               dataset: Iterator[Dict[str, tf.Tensor]],
               observation_size: int,
               action_size: int,
               config: config_lib.ABMConfig = config_lib.ABMConfig(),
               counter: Optional[counting.Counter] = None,
               logger: Optional[loggers.Logger] = None,
               checkpoint_dir: Optional[str] = None,
               max_steps: Optional[int] = None,
               behaviour_tags: Sequence[str] = (),
               heldout: Optional[Dict[str, np.ndarray]] = None):
    """`behaviour_tags`: the data's sorted tags, which the batches' per-row
    `behaviour` indices index (logged per tag); `heldout`: held-out states,
    actions, Monte-Carlo returns and tag indices
    (`datasets.episodes.held_out_returns`), compared with the critic's
    values every `config.heldout_every` steps."""
    if config.prior not in ('abm', 'bm', 'none'):
      raise ValueError(f'unknown prior {config.prior!r}')
    if config.improvement not in ('mpo', 'svg', 'none'):
      raise ValueError(f'unknown improvement {config.improvement!r}')
    if config.improvement == 'none' and config.prior == 'none':
      raise ValueError('prior-only mode needs a prior')
    if config.policy_evaluation not in ('td0', 'n_step'):
      raise ValueError(
          f'unknown policy_evaluation {config.policy_evaluation!r}: '
          "'td0' or 'n_step'")
    self._config = config
    self._init_loop(dataset, counter, logger, max_steps)
    self._has_policy = config.improvement != 'none'
    self._has_prior = config.prior != 'none'

    self._policy = policy_network
    self._prior = prior_network
    self._critic = critic_network
    self._target_policy = copy.deepcopy(policy_network)
    self._target_prior = copy.deepcopy(prior_network)
    self._target_critic = copy.deepcopy(critic_network)
    observation = tf.TensorSpec([observation_size], tf.float32)
    action = tf.TensorSpec([action_size], tf.float32)
    for network in (self._policy, self._target_policy, self._prior,
                    self._target_prior):
      tf2_utils.create_variables(network, [observation])
    for network in (self._critic, self._target_critic):
      tf2_utils.create_variables(network, [observation, action])

    self._critic_optimizer = snt.optimizers.Adam(config.learning_rate)
    self._policy_optimizer = snt.optimizers.Adam(config.learning_rate)
    self._prior_optimizer = snt.optimizers.Adam(config.learning_rate)
    self._dual_optimizer = snt.optimizers.Adam(config.dual_learning_rate)
    # Dual variables in their own units, projected to ≥ min_dual after each
    # step as in Appendix B (Acme's MPO uses a softplus parameterisation).
    self._temperature = tf.Variable(config.init_temperature, name='eta')
    self._alpha_mean = tf.Variable(config.init_alpha, name='alpha_mean')
    self._alpha_stddev = tf.Variable(config.init_alpha, name='alpha_stddev')
    self._svg_eta = tf.Variable(config.svg_init_eta, name='svg_eta')
    self._num_steps = tf.Variable(0, dtype=tf.int64, trainable=False)
    self._behaviour_tags = tuple(behaviour_tags)
    self._heldout = None
    if heldout is not None and len(heldout['return']):
      self._heldout = {name: tf.constant(x) for name, x in heldout.items()}
      self._heldout_fn = tf.function(self._heldout_values, autograph=False)
      self._heldout_stats = {}

    self._variables = {'policy': self._policy.variables,
                       'prior': self._prior.variables,
                       'critic': self._critic.variables}
    self._checkpointer = self._make_checkpointer(
        checkpoint_dir,
        dict(policy=self._policy, prior=self._prior, critic=self._critic,
             target_policy=self._target_policy,
             target_prior=self._target_prior,
             target_critic=self._target_critic,
             critic_optimizer=self._critic_optimizer,
             policy_optimizer=self._policy_optimizer,
             prior_optimizer=self._prior_optimizer,
             dual_optimizer=self._dual_optimizer,
             temperature=self._temperature, alpha_mean=self._alpha_mean,
             alpha_stddev=self._alpha_stddev, svg_eta=self._svg_eta,
             num_steps=self._num_steps))
    self._step_fn = base.compiled(self._step, config.jit_compile)

  # --- the update -----------------------------------------------------------

  def _q_of_samples(self, critic: snt.Module,
                    groups: List[Tuple[tf.Tensor, tf.Tensor]]
                    ) -> List[tf.Tensor]:
    """Q(s, a_j) for M samples per state, every group in one critic call.

    Args:
      groups: (states [B_i, O], actions [M, B_i, A]) pairs.
    Returns:
      [M, B_i] per group.
    """
    num_samples = groups[0][1].shape[0]
    states = tf.concat([s for s, _ in groups], axis=0)
    actions = tf.concat([a for _, a in groups], axis=1)
    tiled = tf.tile(states[None], [num_samples, 1, 1])
    q = critic(snt.merge_leading_dims(tiled, 2),
               snt.merge_leading_dims(actions, 2))
    q = tf.reshape(q, [num_samples, -1])
    return tf.split(q, [s.shape[0] for s, _ in groups], axis=1)

  def _value_targets(self, observation: tf.Tensor,
                     data: shared_losses.Transitions) -> ValueTargets:
    """V̂(s) = 1/M Σ_j Q̂_φ'(s, a_j) (eq. 1) and MPO's E-step samples.

    Args:
      observation: the snippets' states, [B, N, O].
      data: their transitions, T = N − 1 per snippet.
    """
    config = self._config
    m = config.num_action_samples
    batch_size = observation.shape[0]
    # V̂ under the target policy, or under the prior itself in prior-only
    # mode. The ABM weights need it at every row of a snippet (V̂(s_t) and
    # the bootstrap V̂(s_N)); otherwise only the next states s_{t+1} need it.
    evaluated = self._target_policy if self._has_policy else self._target_prior
    every_row = config.prior == 'abm'
    value_states = (shared_losses.flatten_snippets(observation) if every_row
                    else data.next_states)
    value_policy = evaluated(value_states)
    value_actions = value_policy.sample(m)
    e_step = None
    if config.improvement == 'mpo' and self._has_prior:
      # The E-step samples a_j ~ π_prior(·|s_t), scored in V̂'s critic call.
      prior_actions = self._prior(data.states).sample(m)
      value_q, prior_q = self._q_of_samples(
          self._target_critic,
          [(value_states, value_actions), (data.states, prior_actions)])
      e_step = EStep(data.states, prior_actions, prior_q,
                     self._target_policy(data.states))
    else:
      value_q, = self._q_of_samples(self._target_critic,
                                    [(value_states, value_actions)])
      if config.improvement == 'mpo':
        # Plain MPO samples its E-step from the target policy, as V̂ does,
        # so it improves the policy at the next states s_{t+1} with V̂'s own
        # samples and Q-values (as Acme's MPO learner does).
        e_step = EStep(value_states, value_actions, value_q, value_policy)
    value = tf.reshape(tf.reduce_mean(value_q, axis=0), [batch_size, -1])
    if every_row:  # [B, N]
      return ValueTargets(next_value=value[:, 1:], value=value[:, :-1],
                          e_step=e_step)
    return ValueTargets(next_value=value, value=None, e_step=e_step)

  def _prior_update(self, data: shared_losses.Transitions,
                    targets: ValueTargets,
                    returns: Optional[tf.Tensor]) -> PriorUpdate:
    """Eq. 4 with the ABM prior, weights f(R(τ_t:N) − V̂(s_t)); else eq. 3.

    `returns`: R(τ_t:N), [B, T]; only ABM's prior reads them (None for
    BM's when the critic is TD(0)).
    """
    config = self._config
    weights, stats = None, {}
    if config.prior == 'abm':
      advantage = shared_losses.flatten_snippets(returns - targets.value)
      weights = shared_losses.advantage_weights(
          advantage, kind=config.abm_weighting,
          max_weight=config.abm_max_weight)
      stats['abm_weight_mean'] = tf.reduce_mean(weights)
      stats.update(self._per_tag('abm_weight', weights, data))
    distribution = self._prior(data.states)
    loss = shared_losses.weighted_maximum_likelihood(distribution,
                                                     data.actions, weights)
    stats.update(self._per_tag(
        'prior_logp', tf.stop_gradient(distribution.log_prob(data.actions)),
        data))
    return PriorUpdate(loss, distribution, stats)

  def _per_tag(self, name: str, values: tf.Tensor,
               data: shared_losses.Transitions) -> Dict[str, tf.Tensor]:
    """{name_<tag>: the mean of `values` [B·T] over the tag's rows}."""
    if not self._behaviour_tags or data.behaviours is None:
      return {}
    means = shared_losses.per_behaviour_means(
        values, data.behaviours, len(self._behaviour_tags))
    return {f'{name}_{tag}': means[i]
            for i, tag in enumerate(self._behaviour_tags)}

  def _heldout_values(self) -> Dict[str, tf.Tensor]:
    """At the held-out states: the critic's Q̂_φ(s, a) of the data's
    actions, V̂(s) as eq. 1 bootstraps it (the target networks'), and the
    Monte-Carlo returns; overall and per tag."""
    heldout = self._heldout
    evaluated = self._target_policy if self._has_policy else self._target_prior
    states = heldout['observation']
    actions = evaluated(states).sample(self._config.num_action_samples)
    value, = self._q_of_samples(self._target_critic, [(states, actions)])
    rows = {'q': self._critic(states, heldout['action']),
            'v': tf.reduce_mean(value, axis=0), 'return': heldout['return']}
    stats = {}
    for key, x in rows.items():
      stats[f'heldout_{key}'] = tf.reduce_mean(x)
      if self._behaviour_tags:
        means = shared_losses.per_behaviour_means(
            x, heldout['behaviour'], len(self._behaviour_tags))
        stats.update({f'heldout_{key}_{tag}': means[i]
                      for i, tag in enumerate(self._behaviour_tags)})
    return stats

  def _train_step(self) -> Dict[str, tf.Tensor]:
    metrics = self._step_fn(next(self._iterator))
    if self._heldout is None:
      return metrics
    # Every heldout_every steps (and at the first), carried in between so
    # every log row has the same columns.
    if not self._heldout_stats or (
        self.num_steps % self._config.heldout_every == 0):
      self._heldout_stats = self._heldout_fn()
    return {**metrics, **self._heldout_stats}

  def _mpo_improvement(self, e_step: EStep) -> Improvement:
    """E-step weights exp(Q/η)/Z (eq. 7–9), M-step in a trust region (eq. 5,
    10)."""
    config = self._config
    online = self._policy(e_step.states)
    weights, temperature_loss = losses.mpo_temperature_dual(
        e_step.q_values, self._temperature, config.epsilon)
    # How far the E-step's reweighting is from uniform over the M samples.
    entropy = -tf.reduce_sum(
        weights * tf.math.log(tf.maximum(weights, 1e-12)), axis=0)
    policy_loss, alpha_loss, kl_mean, kl_stddev = (
        losses.mpo_weighted_maximum_likelihood(
            e_step.actions, weights, online, e_step.target, self._alpha_mean,
            self._alpha_stddev, config.epsilon_mean, config.epsilon_stddev))
    return Improvement(
        policy_loss, temperature_loss + alpha_loss,
        [self._temperature, self._alpha_mean, self._alpha_stddev],
        dict(kl_mean=tf.reduce_mean(kl_mean),
             e_step_entropy=tf.reduce_mean(entropy),
             kl_stddev=tf.reduce_mean(kl_stddev),
             temperature=self._temperature, alpha_mean=self._alpha_mean,
             alpha_stddev=self._alpha_stddev))

  def _svg_improvement(self, states: tf.Tensor,
                       prior: Optional[PriorUpdate]) -> Improvement:
    """max E_π[Q̂_φ'] s.t. KL(π_θ‖π_prior) ≤ ε (eq. 6, 11–12)."""
    config = self._config
    online = self._policy(states)
    # Reparameterised samples: gradients reach θ through the actions.
    samples = online.sample(config.num_action_samples)  # [M, B·T, A]
    q_online, = self._q_of_samples(self._target_critic, [(states, samples)])
    # Without a prior the target policy takes its place; the prior's own
    # loss alone moves the prior.
    anchor = (shared_losses.detached(prior.distribution) if prior is not None
              else self._target_policy(states))
    kl = online.kl_divergence(anchor)
    policy_loss, dual_loss = shared_losses.constrained_policy_loss(
        q_online, kl, self._svg_eta, config.svg_epsilon)
    return Improvement(policy_loss, dual_loss, [self._svg_eta],
                       dict(kl_to_prior=tf.reduce_mean(kl),
                            svg_eta=self._svg_eta))

  def _step(self, batch: Dict[str, tf.Tensor]) -> Dict[str, tf.Tensor]:
    config = self._config
    data = shared_losses.snippet_transitions(batch)  # T = N − 1 per snippet
    targets = self._value_targets(batch['observation'], data)
    # R(τ_t:N) of eq. 4, bootstrapped with V̂(s_N) (the last column of
    # next_value for every variant), where the ABM weights or the n-step
    # critic use it.
    returns = None
    if config.prior == 'abm' or config.policy_evaluation == 'n_step':
      returns = losses.n_step_returns(
          batch['reward'][:, :-1], batch['discount'][:, :-1],
          targets.next_value[:, -1], config.discount)  # [B, T]

    with tf.GradientTape(persistent=True) as tape:
      # Policy evaluation (eq. 1).
      q = self._critic(data.states, data.actions)
      if config.policy_evaluation == 'n_step':
        critic_loss = losses.policy_evaluation_n_step(
            q, shared_losses.flatten_snippets(returns))
      else:
        critic_loss = losses.policy_evaluation_td0(
            q, data.rewards, data.discounts,
            shared_losses.flatten_snippets(targets.next_value),
            config.discount)
      prior = (self._prior_update(data, targets, returns) if self._has_prior
               else None)
      improvement = None
      if config.improvement == 'mpo':
        improvement = self._mpo_improvement(targets.e_step)
      elif config.improvement == 'svg':
        improvement = self._svg_improvement(data.states, prior)

    updates = [(critic_loss, self._critic, self._critic_optimizer)]
    if prior is not None:
      updates.append((prior.loss, self._prior, self._prior_optimizer))
    if improvement is not None:
      updates.append((improvement.policy_loss, self._policy,
                      self._policy_optimizer))
    for loss, network, optimizer in updates:
      variables = network.trainable_variables
      optimizer.apply(tape.gradient(loss, variables), variables)
    if improvement is not None:
      duals = improvement.duals
      self._dual_optimizer.apply(tape.gradient(improvement.dual_loss, duals),
                                 duals)
      for dual in duals:
        dual.assign(tf.maximum(dual, config.min_dual))
    del tape

    self._num_steps.assign_add(1)
    base.copy_every(self._num_steps, config.target_update_period,
                    ((self._policy, self._target_policy),
                     (self._prior, self._target_prior),
                     (self._critic, self._target_critic)))
    stats = {}
    if prior is not None:
      stats.update(prior.stats)
    if improvement is not None:
      stats.update(improvement.stats)
    stats.update(
        critic_loss=critic_loss,
        prior_loss=tf.constant(0.) if prior is None else prior.loss,
        policy_loss=(tf.constant(0.) if improvement is None
                     else improvement.policy_loss),
        q_mean=tf.reduce_mean(q))
    return stats
