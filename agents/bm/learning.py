"""The BM learner: maximum likelihood of the data's actions (ABM paper, eq. 3)."""

import time
from typing import Dict, Iterator, List, Optional

import acme
from acme.tf import savers as tf2_savers
from acme.tf import utils as tf2_utils
from acme.utils import counting
from acme.utils import loggers
import numpy as np
import sonnet as snt
import tensorflow as tf

from agents.bm import config as config_lib
from agents.bm import losses


class BMLearner(acme.Learner):
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
    self._iterator = dataset
    self._config = config
    self._counter = counter or counting.Counter()
    self._logger = logger or loggers.make_default_logger('learner')
    self._max_steps = max_steps
    self._optimizer = snt.optimizers.Adam(config.learning_rate)
    self._num_steps = tf.Variable(0, dtype=tf.int64, trainable=False)
    tf2_utils.create_variables(
        self._policy, [tf.TensorSpec([observation_size], tf.float32)])
    self._variables = {'policy': self._policy.variables}

    self._checkpointer = None
    if checkpoint_dir is not None:
      # Restores the latest checkpoint, if any, so a restarted run resumes.
      self._checkpointer = tf2_savers.Checkpointer(
          objects_to_save={'policy': self._policy,
                           'optimizer': self._optimizer,
                           'num_steps': self._num_steps},
          # Acme writes <checkpoint_dir>/checkpoints/learner.
          directory=checkpoint_dir, subdirectory='learner', add_uid=False,
          time_delta_minutes=5.)
    self._step_fn = tf.function(self._step, jit_compile=config.jit_compile)
    self._timestamp = None

  def _step(self, batch: Dict[str, tf.Tensor]) -> Dict[str, tf.Tensor]:
    states, actions = losses.transitions_of_snippets(batch['observation'],
                                                     batch['action'])
    with tf.GradientTape() as tape:
      distribution = self._policy(states)
      loss = losses.behaviour_model_loss(distribution, actions)
    gradients = tape.gradient(loss, self._policy.trainable_variables)
    self._optimizer.apply(gradients, self._policy.trainable_variables)
    self._num_steps.assign_add(1)
    return {'bm_loss': loss,
            'policy_stddev': tf.reduce_mean(distribution.stddev())}

  def step(self) -> None:
    metrics = self._step_fn(next(self._iterator))
    now = time.time()
    elapsed = now - self._timestamp if self._timestamp else 0.
    self._timestamp = now
    counts = self._counter.increment(learner_steps=1, learner_walltime=elapsed)
    self._logger.write({**tf2_utils.to_numpy(metrics), **counts})

  def run(self, num_steps: Optional[int] = None) -> None:
    """Steps until `num_steps` (default: max_steps; None: forever), then saves."""
    num_steps = num_steps if num_steps is not None else self._max_steps
    # Counts resume with the checkpoint, so the counter agrees with num_steps.
    missing = int(self._num_steps.numpy()) - self._counter.get_counts().get(
        'learner_steps', 0)
    if missing > 0:
      self._counter.increment(learner_steps=missing)
    while num_steps is None or int(self._num_steps.numpy()) < num_steps:
      self.step()
    self.save()
    self._logger.close()
    self._counter.increment(learner_finished=1)

  @property
  def num_steps(self) -> int:
    return int(self._num_steps.numpy())

  def save(self) -> None:
    if self._checkpointer is not None:
      self._checkpointer.save(force=True)

  def get_variables(self, names: List[str]) -> List[List[np.ndarray]]:
    return [tf2_utils.to_numpy(self._variables[name]) for name in names]
