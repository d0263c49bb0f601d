"""The AWR learner (AWR paper, Algorithm 1).

One iteration of Algorithm 1:
  1. draw `batch_size` whole episodes from replay (this iteration's buffer
     D; offline, the restorers' dataset is the buffer, as the paper's
     static-data mode);
  2. compute TD(λ) returns over each whole episode with the current V;
  3. `value_steps` SGD steps on minibatches of D's transitions;
  4. recompute returns and advantages with the updated V (the official code
     does), then `policy_steps` SGD steps on the advantage-weighted
     log-likelihood.
One learner step is one of those SGD steps, so step counts compare with the
other agents'. Replay items are whole episodes padded to a common length
with a mask (datasets/replay.py); minibatches are drawn from the valid
transitions only.
"""

from typing import Dict, Iterator, Optional

from acme.tf import utils as tf2_utils
from acme.utils import counting
from acme.utils import loggers
import numpy as np
import sonnet as snt
import tensorflow as tf

from abmrl.agents import base
from abmrl.agents import losses as shared_losses
from abmrl.agents.awr import config as config_lib
from abmrl.agents.awr import losses

# AWRConfig.advantage_normalisation's values → advantage_weights' (others
# pass through, to be refused there).
_NORMALISATION = {'none': 'none', 'batch': 'batch_standardise'}


class AWRLearner(base.StepLoopLearner):
  """Advantage-weighted regression."""

  def __init__(self,
               policy_network: snt.Module,
               value_network: snt.Module,  # observation [B, O] -> [B]
               dataset: Iterator[Dict[str, tf.Tensor]],
               observation_size: int,
               config: config_lib.AWRConfig = config_lib.AWRConfig(),
               counter: Optional[counting.Counter] = None,
               logger: Optional[loggers.Logger] = None,
               checkpoint_dir: Optional[str] = None,
               max_steps: Optional[int] = None,
               seed: int = 0):
    self._config = config
    self._init_loop(dataset, counter, logger, max_steps)
    self._policy = policy_network
    self._value = value_network
    observation = tf.TensorSpec([observation_size], tf.float32)
    tf2_utils.create_variables(self._policy, [observation])
    tf2_utils.create_variables(self._value, [observation])
    self._policy_optimizer = snt.optimizers.Momentum(
        config.policy_learning_rate, config.momentum)
    self._value_optimizer = snt.optimizers.Momentum(
        config.value_learning_rate, config.momentum)
    self._num_steps = tf.Variable(0, dtype=tf.int64, trainable=False)
    self._variables = {'policy': self._policy.variables}
    self._checkpointer = self._make_checkpointer(
        checkpoint_dir,
        dict(policy=self._policy, value=self._value,
             policy_optimizer=self._policy_optimizer,
             value_optimizer=self._value_optimizer, num_steps=self._num_steps))
    self._targets_fn = base.compiled(self._targets, config.jit_compile)
    self._value_step_fn = base.compiled(self._value_step, config.jit_compile)
    self._policy_step_fn = base.compiled(self._policy_step,
                                         config.jit_compile)
    self._rng = np.random.default_rng(seed)
    self._buffer = None  # this iteration's transitions and targets
    self._schedule = []  # the iteration's remaining steps: 'value'/'policy'
    self._metrics = {name: tf.constant(0.) for name in (
        'value_loss', 'policy_loss', 'advantage_mean', 'weight_mean',
        'return_mean')}

  def _targets(self, buffer: Dict[str, tf.Tensor]) -> Dict[str, tf.Tensor]:
    """Returns, advantages and weights of the buffer's transitions with the
    current V. Episodes [E, N, ...] → transitions [E·(N−1)]."""
    config = self._config
    observation = buffer['observation']
    episodes, rows = observation.shape[0], observation.shape[1]
    values = tf.reshape(
        self._value(shared_losses.flatten_snippets(observation)),
        [episodes, rows])
    valid = buffer['mask'][:, 1:]  # transition t exists if s_{t+1} does
    returns = losses.td_lambda_returns(
        buffer['reward'][:, :-1], buffer['discount'][:, :-1], values[:, 1:],
        config.td_lambda, config.discount, valid)
    advantage = returns - values[:, :-1]
    weights = shared_losses.advantage_weights(
        advantage, kind='exp', temperature=config.temperature,
        max_weight=config.max_weight,
        normalisation=_NORMALISATION.get(config.advantage_normalisation,
                                         config.advantage_normalisation),
        valid=valid)
    flat = shared_losses.flatten_snippets  # [E, N − 1] → [E·(N−1)]
    count = tf.reduce_sum(valid)
    return {'returns': flat(returns), 'weights': flat(weights),
            'advantage_mean': tf.reduce_sum(advantage * valid) / count,
            'weight_mean': tf.reduce_sum(weights * valid) / count,
            'return_mean': tf.reduce_sum(returns * valid) / count}

  def _value_step(self, states, returns, indices):
    states, returns = tf.gather(states, indices), tf.gather(returns, indices)
    with tf.GradientTape() as tape:
      loss = losses.value_loss(self._value(states), returns)
    variables = self._value.trainable_variables
    self._value_optimizer.apply(tape.gradient(loss, variables), variables)
    self._num_steps.assign_add(1)
    return loss

  def _policy_step(self, states, actions, weights, indices):
    states, actions, weights = (tf.gather(x, indices)
                                for x in (states, actions, weights))
    with tf.GradientTape() as tape:
      loss = shared_losses.weighted_maximum_likelihood(self._policy(states),
                                                       actions, weights)
    variables = self._policy.trainable_variables
    self._policy_optimizer.apply(tape.gradient(loss, variables), variables)
    self._num_steps.assign_add(1)
    return loss

  def _new_iteration(self) -> None:
    buffer = next(self._iterator)
    data = shared_losses.snippet_transitions(buffer)
    valid = np.flatnonzero(buffer['mask'][:, 1:].numpy().reshape(-1))
    if not len(valid):
      raise ValueError('AWR: a batch of episodes without transitions')
    self._buffer = dict(buffer, states=data.states, actions=data.actions,
                        valid=valid)
    self._schedule = (['value'] * self._config.value_steps
                      + ['policy'] * self._config.policy_steps)[::-1]
    self._update_targets()

  def _update_targets(self) -> None:
    targets = self._targets_fn({key: self._buffer[key] for key in (
        'observation', 'reward', 'discount', 'mask')})
    self._buffer.update(targets)
    self._metrics.update({key: targets[key] for key in (
        'advantage_mean', 'weight_mean', 'return_mean')})

  def _train_step(self) -> Dict[str, tf.Tensor]:
    if not self._schedule:
      self._new_iteration()
    phase = self._schedule.pop()
    buffer = self._buffer
    indices = tf.constant(self._rng.choice(
        buffer['valid'], size=self._config.minibatch_size), tf.int32)
    if phase == 'value':
      self._metrics['value_loss'] = self._value_step_fn(
          buffer['states'], buffer['returns'], indices)
      if self._schedule and self._schedule[-1] == 'policy':
        self._update_targets()  # advantages with the updated V
    else:
      self._metrics['policy_loss'] = self._policy_step_fn(
          buffer['states'], buffer['actions'], buffer['weights'], indices)
    return self._metrics
