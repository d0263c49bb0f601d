"""The BEAR learner (Kumar et al. 2019, Algorithm 1), as the ABM paper ran it
(Table 4, App. C.2) or as the original. One step:

  prior     the behaviour prior by maximum likelihood on the data (the
            project's BM prior, ABM paper eq. 3)
  critics   Q_k toward r + γ d max_j [λ min_k + (1 − λ) max_k] Q'_k(s', a_j),
            a_j ~ π'(·|s') (one critic: r + γ d max_j Q'(s', a_j))
  policy    max E_{a~π}[min_k Q_k(s, a)] s.t. D(π, π_prior) ≤ ε, with a
            Lagrange multiplier, reparameterised samples, and
              'kl':  D = KL(π‖π_prior), closed form (the ABM paper's);
              'mmd': D = MMD of samples of π and π_prior (the original's),
                     the first `warmup_steps` steps on the MMD alone.

Target networks (π', Q'_k) are copied every `target_update_period` steps.
"""

import copy
from typing import Dict, Iterator, Optional

from acme.tf import utils as tf2_utils
from acme.utils import counting
from acme.utils import loggers
import sonnet as snt
import tensorflow as tf

from abmrl.agents import base
from abmrl.agents import losses as shared_losses
from abmrl.agents.bear import config as config_lib
from abmrl.agents.bear import losses


class BEARLearner(base.StepLoopLearner):
  """Bootstrapping error accumulation reduction."""

  def __init__(self,
               policy_network: snt.Module,
               prior_network: snt.Module,
               critic_networks,  # (observation, action) -> [B], num_critics
               dataset: Iterator[Dict[str, tf.Tensor]],
               observation_size: int,
               action_size: int,
               config: config_lib.BEARConfig = config_lib.BEARConfig(),
               counter: Optional[counting.Counter] = None,
               logger: Optional[loggers.Logger] = None,
               checkpoint_dir: Optional[str] = None,
               max_steps: Optional[int] = None):
    if config.constraint not in ('kl', 'mmd'):
      raise ValueError(f'unknown BEAR constraint {config.constraint!r}: kl '
                       'or mmd')
    self._config = config
    self._init_loop(dataset, counter, logger, max_steps)
    self._policy, self._prior = policy_network, prior_network
    self._critics = list(critic_networks)
    self._target_policy = copy.deepcopy(policy_network)
    self._target_critics = [copy.deepcopy(c) for c in self._critics]
    observation = tf.TensorSpec([observation_size], tf.float32)
    action = tf.TensorSpec([action_size], tf.float32)
    for network in (self._policy, self._target_policy, self._prior):
      tf2_utils.create_variables(network, [observation])
    for network in self._critics + self._target_critics:
      tf2_utils.create_variables(network, [observation, action])
    self._sources_and_targets = (
        [(self._policy, self._target_policy)]
        + list(zip(self._critics, self._target_critics)))
    base.copy_networks(self._sources_and_targets)
    self._policy_optimizer = snt.optimizers.Adam(config.learning_rate)
    self._prior_optimizer = snt.optimizers.Adam(config.learning_rate)
    self._critic_optimizer = snt.optimizers.Adam(config.learning_rate)
    self._dual_optimizer = snt.optimizers.Adam(config.dual_learning_rate)
    self._multiplier = tf.Variable(config.init_multiplier, name='multiplier')
    self._num_steps = tf.Variable(0, dtype=tf.int64, trainable=False)
    self._variables = {'policy': self._policy.variables,
                       'prior': self._prior.variables}
    saved = dict(policy=self._policy, prior=self._prior,
                 target_policy=self._target_policy,
                 policy_optimizer=self._policy_optimizer,
                 prior_optimizer=self._prior_optimizer,
                 critic_optimizer=self._critic_optimizer,
                 dual_optimizer=self._dual_optimizer,
                 multiplier=self._multiplier, num_steps=self._num_steps)
    for k, (critic, target) in enumerate(zip(self._critics,
                                             self._target_critics)):
      saved[f'critic_{k + 1}'] = critic
      saved[f'target_critic_{k + 1}'] = target
    self._checkpointer = self._make_checkpointer(checkpoint_dir, saved)
    self._step_fn = base.compiled(self._step, config.jit_compile)

  def _q_of_samples(self, critics, states, actions) -> tf.Tensor:
    """Q_k(s, a_j) of each critic, [K, n, T], for actions [n, T, A]."""
    n = actions.shape[0]
    tiled = tf.tile(states, [n, 1])
    flat = snt.merge_leading_dims(actions, 2)
    return tf.stack([tf.reshape(c(tiled, flat), [n, -1]) for c in critics])

  def _constraint(self, policy, prior, samples):
    """D(π, π_prior) per state, [T]."""
    config = self._config
    if config.constraint == 'kl':
      return policy.kl_divergence(prior)
    m = config.mmd_samples
    return losses.mmd(samples[:m], tf.stop_gradient(prior.sample(m)),
                      config.mmd_kernel, config.mmd_sigma)

  def _step(self, batch: Dict[str, tf.Tensor]) -> Dict[str, tf.Tensor]:
    config = self._config
    data = shared_losses.snippet_transitions(batch)
    n = config.num_action_samples
    next_q = self._q_of_samples(
        self._target_critics, data.next_states,
        self._target_policy(data.next_states).sample(n))
    target = shared_losses.soft_clipped_max_target(
        next_q, data.rewards, data.discounts, config.discount, config.mixing)
    with tf.GradientTape(persistent=True) as tape:
      q = [critic(data.states, data.actions) for critic in self._critics]
      critic_loss = shared_losses.critic_loss(q, target)
      prior = self._prior(data.states)
      prior_loss = shared_losses.weighted_maximum_likelihood(prior,
                                                             data.actions)
      policy = self._policy(data.states)
      p = config.policy_samples
      samples = policy.sample(max(p, config.mmd_samples))  # reparameterised
      q_policy = tf.reduce_min(
          self._q_of_samples(self._critics, data.states, samples[:p]), axis=0)
      if config.constraint == 'mmd':  # warm-up: the MMD alone
        q_policy *= tf.cast(self._num_steps >= config.warmup_steps,
                            tf.float32)
      divergence = self._constraint(
          policy, shared_losses.detached(prior), samples)
      epsilon = (config.kl_epsilon if config.constraint == 'kl'
                 else config.mmd_epsilon)
      policy_loss, dual_loss = shared_losses.constrained_policy_loss(
          q_policy, divergence, self._multiplier, epsilon)
    critic_variables = [v for c in self._critics
                        for v in c.trainable_variables]
    for loss, variables, optimizer in (
        (critic_loss, critic_variables, self._critic_optimizer),
        (prior_loss, self._prior.trainable_variables, self._prior_optimizer),
        (policy_loss, self._policy.trainable_variables,
         self._policy_optimizer),
        (dual_loss, [self._multiplier], self._dual_optimizer)):
      optimizer.apply(tape.gradient(loss, variables), variables)
    del tape
    self._multiplier.assign(tf.maximum(self._multiplier, config.min_dual))
    self._num_steps.assign_add(1)
    base.copy_every(self._num_steps, config.target_update_period,
                    self._sources_and_targets)
    return {'critic_loss': critic_loss, 'prior_loss': prior_loss,
            'policy_loss': policy_loss, 'q_mean': tf.reduce_mean(q[0]),
            f'{config.constraint}_to_prior': tf.reduce_mean(divergence),
            'multiplier': self._multiplier,
            'policy_stddev': tf.reduce_mean(policy.stddev())}
