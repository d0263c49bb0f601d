"""The BM learner: the loss against NumPy, and recovery of a behaviour."""

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from acme.utils import counting
from acme.utils import loggers
from abmrl.agents import losses
from abmrl.agents import networks
from abmrl.agents.bm.config import BMConfig
from abmrl.agents.bm.learning import BMLearner

tfd = tfp.distributions


def _gaussian_log_prob(x, mean, std):
  """log N(x; mean, diag(std²)) from the density's formula, summed over dims."""
  return np.sum(-0.5 * ((x - mean) / std) ** 2 - np.log(std)
                - 0.5 * np.log(2 * np.pi), axis=-1)


def test_bm_loss_matches_numpy_eq3():
  rng = np.random.default_rng(0)
  mean = rng.normal(size=(5, 3)).astype(np.float32)
  std = rng.uniform(0.2, 2.0, size=(5, 3)).astype(np.float32)
  actions = rng.normal(size=(5, 3)).astype(np.float32)
  loss = losses.weighted_maximum_likelihood(
      tfd.MultivariateNormalDiag(mean, std), tf.constant(actions))
  expected = -np.mean(_gaussian_log_prob(actions, mean, std))
  np.testing.assert_allclose(loss.numpy(), expected, rtol=1e-5)


def test_snippet_transitions_drop_the_last_row():
  observation = tf.reshape(tf.range(2 * 3 * 2, dtype=tf.float32), [2, 3, 2])
  action = observation[..., :1] * 10
  reward = tf.reshape(tf.range(2 * 3, dtype=tf.float32), [2, 3])
  data = losses.snippet_transitions(
      {'observation': observation, 'action': action, 'reward': reward,
       'discount': 1. - reward / 10})
  np.testing.assert_array_equal(data.states.numpy(), [[0, 1], [2, 3], [6, 7],
                                                      [8, 9]])
  np.testing.assert_array_equal(data.actions.numpy()[:, 0], [0, 20, 60, 80])
  np.testing.assert_array_equal(data.rewards.numpy(), [0, 1, 3, 4])
  np.testing.assert_allclose(data.discounts.numpy(), [1, 0.9, 0.7, 0.6])
  np.testing.assert_array_equal(data.next_states.numpy(),
                                [[2, 3], [4, 5], [8, 9], [10, 11]])
  # A behaviour model's batch holds states and actions only.
  bm_data = losses.snippet_transitions({'observation': observation,
                                        'action': action})
  assert bm_data.rewards is None and bm_data.discounts is None
  np.testing.assert_array_equal(bm_data.states.numpy(), data.states.numpy())


def _one_step_batches(rng, batch_size, weights, noise_std):
  """Snippets of one transition: a = W s + N(0, σ²)."""
  while True:
    states = rng.uniform(-1, 1, size=(batch_size, 2, 3)).astype(np.float32)
    actions = (states @ weights.T + noise_std * rng.standard_normal(
        (batch_size, 2, 2))).astype(np.float32)
    yield {'observation': tf.constant(states), 'action': tf.constant(actions)}


def test_bm_recovers_behaviour_mean_and_spread():
  rng = np.random.default_rng(1)
  tf.random.set_seed(1)
  weights = np.array([[0.5, -0.4, 0.2], [-0.3, 0.1, 0.6]], np.float32)
  noise_std = np.array([0.3, 0.6], np.float32)
  config = BMConfig(learning_rate=3e-3, batch_size=256,
                    policy_layer_sizes=(64, 64))
  policy = networks.make_gaussian_policy(2, config.policy_layer_sizes,
                                         config.min_variance)
  learner = BMLearner(policy, _one_step_batches(rng, 256, weights, noise_std),
                      observation_size=3, config=config,
                      logger=loggers.NoOpLogger())
  learner.run(num_steps=1500)
  assert learner.num_steps == 1500
  states = rng.uniform(-1, 1, size=(2000, 3)).astype(np.float32)
  distribution = policy(tf.constant(states))
  mean_error = np.abs(distribution.mean().numpy() - states @ weights.T)
  assert mean_error.mean() < 0.05
  np.testing.assert_allclose(distribution.stddev().numpy().mean(axis=0),
                             noise_std, rtol=0.1)


def test_minimum_variance_is_enforced():
  policy = networks.make_gaussian_policy(2, (8,), min_variance=0.01)
  policy(tf.zeros([4, 3]))
  for variable in policy.trainable_variables:
    variable.assign(variable - 100.0)  # push the scale head far negative
  stddev = policy(tf.zeros([4, 3])).stddev().numpy()
  assert np.all(stddev >= 0.1 - 1e-6)


def test_checkpoint_resumes_step_count(tmp_path):
  rng = np.random.default_rng(0)
  weights = np.eye(2, 3, dtype=np.float32)
  config = BMConfig(batch_size=8, policy_layer_sizes=(8,))

  def make(counter=None):
    policy = networks.make_gaussian_policy(2, (8,))
    return BMLearner(policy, _one_step_batches(rng, 8, weights, np.ones(2)),
                     observation_size=3, config=config, counter=counter,
                     logger=loggers.NoOpLogger(), checkpoint_dir=str(tmp_path))

  first = make()
  first.run(num_steps=7)
  first_variables = first.get_variables(['policy'])[0]
  # A restarted program's counter starts empty; it holds the restored count
  # as soon as the learner is built (before run: other nodes read it once the
  # learner serves its variables).
  counter = counting.Counter()
  resumed = make(counting.Counter(counter, prefix='', time_delta=0.))
  assert resumed.num_steps == 7
  assert counter.get_counts()['learner_steps'] == 7
  for a, b in zip(first_variables, resumed.get_variables(['policy'])[0]):
    np.testing.assert_array_equal(a, b)
  resumed.run(num_steps=10)
  assert resumed.num_steps == 10
