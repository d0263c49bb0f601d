"""Acting one observation at a time (agents/networks.py:acting_function)."""

import numpy as np
import psutil
import tensorflow as tf

from abmrl.agents import builders
from abmrl.agents import networks


def _rss_growth_mb(act, observations, calls=20_000):
  for i in range(500):  # traced, compiled, warmed up
    act(tf.constant(observations[i % len(observations)]))
  process = psutil.Process()
  before = process.memory_info().rss
  for i in range(calls):
    act(tf.constant(observations[i % len(observations)])).numpy()
  return (process.memory_info().rss - before) / 2**20


def test_acting_function_acts_as_the_policy_and_keeps_no_memory():
  policy = builders.NetworkSpec(4, 2).gaussian_policy(
      (64, 64), networks.MIN_VARIANCE, name='policy')
  mean = networks.MeanAction(policy)
  observations = np.random.default_rng(0).normal(
      size=(100, 4)).astype(np.float32)
  mean(tf.constant(observations[:1]))
  act = networks.acting_function(lambda o: mean(o[None])[0], policy)
  np.testing.assert_allclose(
      np.stack([act(tf.constant(o)).numpy() for o in observations[:10]]),
      mean(tf.constant(observations[:10])).numpy(), atol=1e-5)
  # TF 2.8's plain tf.function keeps ≈ 0.4 KB a call (≈ 8 MB here, less
  # where freed memory of earlier tests is reused first); the XLA-compiled
  # acting function nothing.
  assert _rss_growth_mb(act, observations) < 1.0
  assert _rss_growth_mb(tf.function(lambda o: mean(o[None])[0]),
                        observations) > 2.0


def test_a_task_conditioned_policy_is_not_compiled_with_xla():
  # XLA would compile its per-task partition anew for each pattern.
  policy = builders.NetworkSpec(4, 2, num_tasks=3).gaussian_policy(
      (32, 32), networks.MIN_VARIANCE, name='policy')
  act = networks.acting_function(lambda o: policy(o[None]).mean()[0], policy)
  observation = np.array([0.1, -0.2, 0.3, 0.4, 0., 1., 0.], np.float32)
  assert act(tf.constant(observation)).shape == (2,)
  assert not act._jit_compile  # pylint: disable=protected-access
