"""Acting one observation at a time (agents/networks.py:acting_function)."""

import json
import os
import subprocess
import sys

import numpy as np
import tensorflow as tf

from abmrl.agents import builders
from abmrl.agents import networks

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _rss_growth_per_10k_calls(way):
  """MB of RSS growth per 10,000 calls of the point_mass policy called
  `way`, measured by benchmarks/acting_memory.py in a fresh process (in a
  test worker, memory freed by earlier tests is reused first and hides
  growth)."""
  done = subprocess.run(
      [sys.executable, os.path.join(REPO, 'benchmarks', 'acting_memory.py'),
       '--way', way, '--calls', '20000'],
      capture_output=True, text=True, timeout=300, check=True)
  return json.loads(done.stdout.strip().splitlines()[-1])['mb_per_10k']


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
  # TF 2.8's plain tf.function keeps ≈ 0.4 KB a call (≈ 4 MB per 10k
  # calls); the XLA-compiled acting function nothing.
  assert _rss_growth_per_10k_calls('acting_function') < 0.5
  assert _rss_growth_per_10k_calls('tf.function') > 2.0


def test_a_task_conditioned_policy_is_not_compiled_with_xla():
  # XLA would compile its per-task partition anew for each pattern.
  policy = builders.NetworkSpec(4, 2, num_tasks=3).gaussian_policy(
      (32, 32), networks.MIN_VARIANCE, name='policy')
  act = networks.acting_function(lambda o: policy(o[None]).mean()[0], policy)
  observation = np.array([0.1, -0.2, 0.3, 0.4, 0., 1., 0.], np.float32)
  assert act(tf.constant(observation)).shape == (2,)
  assert not act._jit_compile  # pylint: disable=protected-access
