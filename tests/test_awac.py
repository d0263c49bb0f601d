"""AWAC's losses against NumPy references from its equations, and its
learner on a one-step task whose data hold a good and a bad action mode."""

import numpy as np
import tensorflow as tf

from acme.utils import loggers
from abmrl.agents import losses as shared_losses
from abmrl.agents import networks
from abmrl.agents.awac import losses
from abmrl.agents.awac.config import AWACConfig
from abmrl.agents.awac.learning import AWACLearner
from tests.test_abm import _bandit_batches
from tests.test_abm import _mean_and_mass
from tests.test_abm import np_log_prob


def test_twin_td_loss_uses_the_smaller_target_critic():
  rng = np.random.default_rng(0)
  q1, q2, r, n1, n2 = rng.normal(size=(5, 6)).astype(np.float32)
  d = np.array([1, 1, 0, 1, 0, 1], np.float32)
  # AWAC eq. 3 with TD3's clipped double Q: y = r + γ d min(Q1', Q2').
  y = r + 0.9 * d * np.minimum(n1, n2)
  expected = np.mean((q1 - y)**2) + np.mean((q2 - y)**2)
  got = losses.twin_td_loss(*map(tf.constant, (q1, q2, r, d, n1, n2)), 0.9)
  np.testing.assert_allclose(got.numpy(), expected, rtol=1e-5)


def test_advantage_weights_exp_batch_softmax_and_clip():
  """The options AWACLearner passes: exp(A/λ) (eq. 10 without Z(s)), or
  rlkit's batch softmax × batch size, then min(·, max_weight)."""
  a = np.array([-1.0, 0.0, 0.5, 2.0], np.float32)
  weights = lambda **options: shared_losses.advantage_weights(
      tf.constant(a), kind='exp', **options).numpy()
  np.testing.assert_allclose(weights(temperature=0.5), np.exp(a / 0.5),
                             rtol=1e-6)
  softmax = np.exp(a / 2.0) / np.sum(np.exp(a / 2.0)) * len(a)
  np.testing.assert_allclose(
      weights(temperature=2.0, normalisation='batch_softmax'), softmax,
      rtol=1e-6)
  np.testing.assert_allclose(weights(temperature=1.0, max_weight=2.0),
                             np.minimum(np.exp(a), 2.0), rtol=1e-6)


def test_weighted_log_likelihood_matches_the_projection_of_eq_10():
  rng = np.random.default_rng(1)
  mu, sd = rng.normal(size=(8, 3)), rng.uniform(0.2, 1.0, (8, 3))
  actions, weights = rng.normal(size=(8, 3)), rng.uniform(0, 3, 8)
  distribution = networks.tfd.MultivariateNormalDiag(mu, sd)
  got = shared_losses.weighted_maximum_likelihood(distribution, actions,
                                                  tf.constant(weights))
  expected = -np.mean(np_log_prob(actions, mu, sd) * weights)
  np.testing.assert_allclose(got.numpy(), expected, rtol=1e-6)


def test_l2_penalty_gradient_is_torch_weight_decay():
  w = tf.Variable([[1.0, -2.0], [0.5, 3.0]])
  with tf.GradientTape() as tape:
    penalty = losses.l2_penalty([w], 1e-4)
  np.testing.assert_allclose(tape.gradient(penalty, w).numpy(),
                             1e-4 * w.numpy(), rtol=1e-6)


def test_awac_policy_prefers_the_good_mode_of_the_data():
  """The data hold actions around +0.5 (reward ≈ 1) and −0.5 (reward ≈ −3):
  weighting by exp(A/λ) moves the policy to the good mode, where plain
  behaviour cloning would sit between the two."""
  tf.random.set_seed(0)
  config = AWACConfig(batch_size=128, policy_layer_sizes=(32, 32),
                      critic_layer_sizes=(64, 64),
                      policy_learning_rate=1e-3, critic_learning_rate=1e-3)
  learner = AWACLearner(
      networks.make_gaussian_policy(1, config.policy_layer_sizes),
      [networks.make_critic(config.critic_layer_sizes) for _ in range(2)],
      _bandit_batches(np.random.default_rng(0), 128), observation_size=2,
      action_size=1, config=config, logger=loggers.NoOpLogger())
  learner.run(num_steps=300)
  mean, mass = _mean_and_mass(learner._policy)  # pylint: disable=protected-access
  assert mean > 0.3 and mass > 0.7, (mean, mass)
