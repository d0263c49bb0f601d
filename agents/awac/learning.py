"""The AWAC learner (AWAC paper, Algorithm 1; rlkit's `awac_trainer.py`).

  critics   twin Q, TD toward r + γ d min(Q1', Q2')(s', a'), a' ~ π(·|s'),
            soft target updates with rate τ (eq. 3; TD3-style)
  actor     weighted maximum likelihood of the buffer's actions,
            −log π(a|s) · exp((Q(s,a) − V(s))/λ), Q = min(Q1, Q2),
            V(s) = Q(s, a_π), a_π ~ π(·|s) (eq. 10 with Z(s) dropped)

No behaviour model is learned. The same learner runs offline (restorers) and
online (actors insert beside the restorers; launch/program.py).
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
from abmrl.agents.awac import config as config_lib
from abmrl.agents.awac import losses


class AWACLearner(base.StepLoopLearner):
  """Advantage-weighted actor-critic."""

  def __init__(self,
               policy_network: snt.Module,
               critic_networks,  # two critics: (observation, action) -> [B]
               dataset: Iterator[Dict[str, tf.Tensor]],
               observation_size: int,
               action_size: int,
               config: config_lib.AWACConfig = config_lib.AWACConfig(),
               counter: Optional[counting.Counter] = None,
               logger: Optional[loggers.Logger] = None,
               checkpoint_dir: Optional[str] = None,
               max_steps: Optional[int] = None):
    self._config = config
    self._init_loop(dataset, counter, logger, max_steps)
    self._policy = policy_network
    self._critics = list(critic_networks)
    self._target_critics = [copy.deepcopy(c) for c in self._critics]
    observation = tf.TensorSpec([observation_size], tf.float32)
    action = tf.TensorSpec([action_size], tf.float32)
    tf2_utils.create_variables(self._policy, [observation])
    for critic in self._critics + self._target_critics:
      tf2_utils.create_variables(critic, [observation, action])
    base.copy_networks(zip(self._critics, self._target_critics))
    self._policy_optimizer = snt.optimizers.Adam(config.policy_learning_rate)
    self._critic_optimizer = snt.optimizers.Adam(config.critic_learning_rate)
    self._num_steps = tf.Variable(0, dtype=tf.int64, trainable=False)
    self._variables = {'policy': self._policy.variables}
    self._checkpointer = self._make_checkpointer(
        checkpoint_dir,
        dict(policy=self._policy, critic_1=self._critics[0],
             critic_2=self._critics[1],
             target_critic_1=self._target_critics[0],
             target_critic_2=self._target_critics[1],
             policy_optimizer=self._policy_optimizer,
             critic_optimizer=self._critic_optimizer,
             num_steps=self._num_steps))
    self._step_fn = base.compiled(self._step, config.jit_compile)

  def _min_q(self, critics, states, actions) -> tf.Tensor:
    return tf.minimum(critics[0](states, actions), critics[1](states, actions))

  def _step(self, batch: Dict[str, tf.Tensor]) -> Dict[str, tf.Tensor]:
    config = self._config
    data = shared_losses.snippet_transitions(batch)
    states, actions, next_states = data.states, data.actions, data.next_states
    reward, discount = data.rewards, data.discounts
    next_actions = self._policy(next_states).sample()
    next_q = [c(next_states, next_actions) for c in self._target_critics]
    # The advantage of the buffer's actions under the current critics.
    k = config.value_samples
    policy_actions = self._policy(states).sample(k)  # [K, T, A]
    tiled = tf.tile(states[None], [k, 1, 1])
    value = tf.reduce_mean(tf.reshape(self._min_q(
        self._critics, snt.merge_leading_dims(tiled, 2),
        snt.merge_leading_dims(policy_actions, 2)), [k, -1]), axis=0)
    advantage = self._min_q(self._critics, states, actions) - value
    weights = shared_losses.advantage_weights(
        advantage, kind='exp', temperature=config.temperature,
        max_weight=config.max_weight,
        normalisation=config.weight_normalisation)
    critic_variables = (self._critics[0].trainable_variables +
                        self._critics[1].trainable_variables)
    with tf.GradientTape(persistent=True) as tape:
      q1 = self._critics[0](states, actions)
      q2 = self._critics[1](states, actions)
      critic_loss = losses.twin_td_loss(q1, q2, reward, discount, next_q[0],
                                        next_q[1], config.discount)
      distribution = self._policy(states)
      policy_loss = shared_losses.weighted_maximum_likelihood(
          distribution, actions, weights)
      regularised_policy_loss = policy_loss + losses.l2_penalty(
          self._policy.trainable_variables, config.policy_weight_decay)
    self._critic_optimizer.apply(tape.gradient(critic_loss, critic_variables),
                                 critic_variables)
    policy_variables = self._policy.trainable_variables
    self._policy_optimizer.apply(
        tape.gradient(regularised_policy_loss, policy_variables),
        policy_variables)
    del tape
    tau = config.target_update_rate
    for critic, target in zip(self._critics, self._target_critics):
      for s, t in zip(critic.variables, target.variables):
        t.assign((1. - tau) * t + tau * s)
    self._num_steps.assign_add(1)
    return {'critic_loss': critic_loss, 'policy_loss': policy_loss,
            'q_mean': tf.reduce_mean(q1),
            'advantage_mean': tf.reduce_mean(advantage),
            'weight_max': tf.reduce_max(weights),
            'policy_stddev': tf.reduce_mean(distribution.stddev())}
