"""The AWR learner (AWR paper, Algorithm 1), on the shared data path.

Each step takes a batch of snippets of N rows, computes TD(λ) returns over
each snippet's N − 1 transitions with the current V (bootstrapping with
V(s_N) at the snippet's end), then takes one value step and one policy step.

Deliberate differences from Algorithm 1, for the one data path all learners
share: the paper recomputes returns over whole stored paths and alternates
200 value steps with 1000 policy steps per iteration; here returns are
λ-returns truncated at the snippet's end (the default N = 32 keeps most of
the λ weight, (λγ)^31 ≈ 0.15, inside the snippet) and both networks step
on every batch. Offline, the dataset is the buffer (the paper's static-data
mode); online, actors insert beside the restorers.
"""

from typing import Dict, Iterator, Optional

from acme.tf import utils as tf2_utils
from acme.utils import counting
from acme.utils import loggers
import sonnet as snt
import tensorflow as tf

from agents import base
from agents.awr import config as config_lib
from agents.awr import losses
from agents.bm import losses as bm_losses


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
               max_steps: Optional[int] = None):
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
    self._step_fn = tf.function(self._step, jit_compile=config.jit_compile)

  def _step(self, batch: Dict[str, tf.Tensor]) -> Dict[str, tf.Tensor]:
    config = self._config
    observation = batch['observation']  # [B, N, O]
    batch_size, rows = observation.shape[0], observation.shape[1]
    reward = batch['reward'][:, :-1]
    discount = batch['discount'][:, :-1]
    values = tf.reshape(
        self._value(tf.reshape(observation, [-1, observation.shape[-1]])),
        [batch_size, rows])
    returns = losses.td_lambda_returns(reward, discount, values[:, 1:],
                                       config.td_lambda, config.discount)
    states = tf.reshape(observation[:, :-1], [-1, observation.shape[-1]])
    actions = tf.reshape(batch['action'][:, :-1],
                         [-1, batch['action'].shape[-1]])
    returns = tf.reshape(returns, [-1])
    advantage = returns - tf.reshape(values[:, :-1], [-1])
    weights = losses.advantage_weights(advantage, config.temperature,
                                       config.max_weight,
                                       config.advantage_normalisation)
    with tf.GradientTape(persistent=True) as tape:
      value_loss = losses.value_loss(self._value(states), returns)
      distribution = self._policy(states)
      policy_loss = bm_losses.behaviour_model_loss(distribution, actions,
                                                   weights)
    for loss, network, optimizer in (
        (value_loss, self._value, self._value_optimizer),
        (policy_loss, self._policy, self._policy_optimizer)):
      variables = network.trainable_variables
      optimizer.apply(tape.gradient(loss, variables), variables)
    del tape
    self._num_steps.assign_add(1)
    return {'value_loss': value_loss, 'policy_loss': policy_loss,
            'advantage_mean': tf.reduce_mean(advantage),
            'weight_mean': tf.reduce_mean(weights),
            'return_mean': tf.reduce_mean(returns)}
