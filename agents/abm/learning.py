"""The learner of "Keep Doing What Worked" (ABM paper, Algorithm 1).

One class, configured by a prior (ABM, BM, none) and an improvement step
(MPO, SVG, none), so the variants differ only in their update rules:

  policy evaluation   TD(0), V̂(s') = mean of Q̂(s', a_j), a_j ~ π_θ' (eq. 1)
  prior               weighted max likelihood on the data (eq. 3 / eq. 4)
  improvement, MPO    E-step on prior samples, M-step with a trust region
                      to the target policy (eq. 5, 7–10)
  improvement, SVG    reparameterised value gradient with KL to the prior
                      (eq. 6, 11–12)
  prior only          no RL policy; V̂ and Q̂ are the prior's (ε = 0)

Target networks (π_θ', Q̂_φ', and the prior's in prior-only mode) are copied
every `target_update_period` steps.
"""

import copy
from typing import Dict, Iterator, List, Optional, Tuple

from acme.tf import utils as tf2_utils
from acme.utils import counting
from acme.utils import loggers
import sonnet as snt
import tensorflow as tf
import tensorflow_probability as tfp

from abmrl.agents import base
from abmrl.agents.abm import config as config_lib
from abmrl.agents.abm import losses

tfd = tfp.distributions


def _merge(x: tf.Tensor) -> tf.Tensor:
  """[B, T, ...] -> [B·T, ...]."""
  return tf.reshape(x, [-1] + list(x.shape[2:]))


def _detached(distribution) -> tfd.Distribution:
  return tfd.MultivariateNormalDiag(tf.stop_gradient(distribution.mean()),
                                    tf.stop_gradient(distribution.stddev()))


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
               max_steps: Optional[int] = None):
    if config.prior not in ('abm', 'bm', 'none'):
      raise ValueError(f'unknown prior {config.prior!r}')
    if config.improvement not in ('mpo', 'svg', 'none'):
      raise ValueError(f'unknown improvement {config.improvement!r}')
    if config.improvement == 'none' and config.prior == 'none':
      raise ValueError('prior-only mode needs a prior')
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

  def _step(self, batch: Dict[str, tf.Tensor]) -> Dict[str, tf.Tensor]:
    config = self._config
    m = config.num_action_samples
    observation = batch['observation']  # [B, N, O]
    batch_size, rows = observation.shape[0], observation.shape[1]
    states = _merge(observation[:, :-1])  # [B·T, O], T = N − 1
    actions = _merge(batch['action'][:, :-1])  # [B·T, A]
    reward = batch['reward'][:, :-1]  # [B, T]
    discount = batch['discount'][:, :-1]  # [B, T]

    # V̂(s) from the target networks: under the target policy, or under the
    # prior itself in prior-only mode. The ABM weights need it at every row
    # of a snippet; otherwise only the next states s_{t+1} need it.
    evaluated = self._target_policy if self._has_policy else self._target_prior
    first_row = 0 if config.prior == 'abm' else 1
    value_states = _merge(observation[:, first_row:])
    value_policy = evaluated(value_states)
    sampled = [(value_states, value_policy.sample(m))]
    # Plain MPO samples its E-step from the target policy, as V̂ does, so it
    # improves the policy at the next states s_{t+1} with V̂'s own samples
    # and Q-values (as Acme's MPO learner does). With a prior, the E-step
    # samples a_j ~ π_prior(·|s_t), scored in the same critic call.
    shared_samples = config.improvement == 'mpo' and not self._has_prior
    improved_states = value_states if shared_samples else states
    target = None
    if self._has_policy:
      target = value_policy if shared_samples else self._target_policy(states)
    if config.improvement == 'mpo' and not shared_samples:
      sampled.append((states, self._prior(states).sample(m)))
    q_sampled = self._q_of_samples(self._target_critic, sampled)
    value = tf.reshape(tf.reduce_mean(q_sampled[0], axis=0),
                       [batch_size, rows - first_row])
    next_value = value[:, 1 - first_row:]  # V̂(s_{t+1}), [B, T]

    stats = {}
    with tf.GradientTape(persistent=True) as tape:
      # Policy evaluation (eq. 1).
      q = self._critic(states, actions)
      critic_loss = losses.policy_evaluation_td0(
          q, _merge(reward), _merge(discount), _merge(next_value),
          config.discount)

      # The prior (eq. 3 or 4).
      prior_loss = tf.constant(0.)
      if self._has_prior:
        weights = None
        if config.prior == 'abm':
          returns = losses.n_step_returns(reward, discount, value[:, -1],
                                          config.discount)  # [B, T]
          advantage = _merge(returns - value[:, :-1])
          weights = losses.abm_prior_weights(advantage, config.abm_weighting)
          stats['abm_weight_mean'] = tf.reduce_mean(weights)
        prior_distribution = self._prior(states)
        prior_loss = losses.behaviour_model_loss(prior_distribution, actions,
                                                 weights)

      # Policy improvement.
      policy_loss = dual_loss = tf.constant(0.)
      if self._has_policy:
        online = self._policy(improved_states)
        if config.improvement == 'mpo':
          weights_e, temperature_loss = losses.mpo_temperature_dual(
              q_sampled[-1], self._temperature, config.epsilon)
          policy_loss, alpha_loss, kl_mean, kl_stddev = (
              losses.mpo_weighted_maximum_likelihood(
                  sampled[-1][1], weights_e, online, target,
                  self._alpha_mean, self._alpha_stddev, config.epsilon_mean,
                  config.epsilon_stddev))
          dual_loss = temperature_loss + alpha_loss
          stats.update(kl_mean=tf.reduce_mean(kl_mean),
                       kl_stddev=tf.reduce_mean(kl_stddev),
                       temperature=self._temperature,
                       alpha_mean=self._alpha_mean,
                       alpha_stddev=self._alpha_stddev)
        else:  # svg
          # Reparameterised samples: gradients reach θ through the actions.
          q_online = self._q_of_samples(self._target_critic,
                                        [(states, online.sample(m))])[0]
          anchor = (_detached(prior_distribution) if self._has_prior
                    else target)
          kl = online.kl_divergence(anchor)
          policy_loss, dual_loss = losses.svg_policy_loss(
              q_online, kl, self._svg_eta, config.svg_epsilon)
          stats.update(kl_to_prior=tf.reduce_mean(kl), svg_eta=self._svg_eta)

    updates = [(critic_loss, self._critic, self._critic_optimizer)]
    if self._has_prior:
      updates.append((prior_loss, self._prior, self._prior_optimizer))
    if self._has_policy:
      updates.append((policy_loss, self._policy, self._policy_optimizer))
    for loss, network, optimizer in updates:
      variables = network.trainable_variables
      optimizer.apply(tape.gradient(loss, variables), variables)
    if self._has_policy:
      duals = ([self._temperature, self._alpha_mean, self._alpha_stddev]
               if config.improvement == 'mpo' else [self._svg_eta])
      self._dual_optimizer.apply(tape.gradient(dual_loss, duals), duals)
      for dual in duals:
        dual.assign(tf.maximum(dual, config.min_dual))
    del tape

    self._num_steps.assign_add(1)
    def update_targets():
      for source, target_network in ((self._policy, self._target_policy),
                                     (self._prior, self._target_prior),
                                     (self._critic, self._target_critic)):
        for s, t in zip(source.variables, target_network.variables):
          t.assign(s)
      return tf.constant(True)
    tf.cond(tf.equal(self._num_steps % config.target_update_period, 0),
            update_targets, lambda: tf.constant(False))
    stats.update(critic_loss=critic_loss, prior_loss=prior_loss,
                 policy_loss=policy_loss, q_mean=tf.reduce_mean(q))
    return stats
