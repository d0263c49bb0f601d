"""The BM learner: maximum likelihood of the data's actions (ABM paper, eq. 3)."""

from typing import Dict, Iterator, Optional

from acme.tf import utils as tf2_utils
from acme.utils import counting
from acme.utils import loggers
import sonnet as snt
import tensorflow as tf

from abmrl.agents import base
from abmrl.agents import losses
from abmrl.agents.bm import config as config_lib


class BMLearner(base.StepLoopLearner):
  """Fits π_bm(a|s) to the actions of logged snippets.

  Takes its dataset iterator (dicts of [B, N, ...] snippet tensors), counter
  and logger as arguments, so a test can hand it synthetic batches.
  """

  def __init__(self,
               policy_network: snt.Module,
               dataset: Iterator[Dict[str, tf.Tensor]],
               observation_size: int,
               config: config_lib.BMConfig = config_lib.BMConfig(),
               counter: Optional[counting.Counter] = None,
               logger: Optional[loggers.Logger] = None,
               checkpoint_dir: Optional[str] = None,
               max_steps: Optional[int] = None):
    self._policy = policy_network
    self._config = config
    self._init_loop(dataset, counter, logger, max_steps)
    self._optimizer = snt.optimizers.Adam(config.learning_rate)
    self._num_steps = tf.Variable(0, dtype=tf.int64, trainable=False)
    tf2_utils.create_variables(
        self._policy, [tf.TensorSpec([observation_size], tf.float32)])
    self._variables = {'policy': self._policy.variables}

    self._checkpointer = self._make_checkpointer(
        checkpoint_dir,
        dict(policy=self._policy, optimizer=self._optimizer,
             num_steps=self._num_steps))
    self._step_fn = base.compiled(self._step, config.jit_compile)

  def _step(self, batch: Dict[str, tf.Tensor]) -> Dict[str, tf.Tensor]:
    data = losses.snippet_transitions(batch)
    with tf.GradientTape() as tape:
      distribution = self._policy(data.states)
      loss = losses.weighted_maximum_likelihood(distribution, data.actions)
    gradients = tape.gradient(loss, self._policy.trainable_variables)
    self._optimizer.apply(gradients, self._policy.trainable_variables)
    self._num_steps.assign_add(1)
    return {'bm_loss': loss,
            'policy_stddev': tf.reduce_mean(distribution.stddev())}
