"""Standardised network inputs (`abmrl train --normalise-observations`):
the data's statistics, the wrapper every network of such a run sits behind,
and a run that uses them end to end."""

import dataclasses
import os

import numpy as np
import pytest
import tensorflow as tf

from abmrl.agents import networks
from abmrl.datasets import episodes
from abmrl.datasets import statistics
from abmrl import environments
from abmrl.launch import config as config_lib
from abmrl.launch import run as run_lib
from tests.conftest import ENV_ID
from tests.test_program import _config


def _all_observations(directory, first_episodes=None):
  return np.concatenate([
      episodes.read_episode(p).observation
      for p in episodes.list_episodes(directory, first_episodes)])


def test_statistics_match_numpy_over_the_runs_view(small_dataset):
  mean, std = statistics.observation_stats(small_dataset)
  x = _all_observations(small_dataset).astype(np.float64)
  np.testing.assert_allclose(mean, x.mean(0), rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(std, x.std(0), rtol=1e-5)
  # The first-episodes view, seen through an observation function that adds
  # a constant column: that one is left alone (mean 0, std 1).
  add = lambda o: np.concatenate([o * 2 + 1, np.full((len(o), 1), 3.)], 1)
  mean, std = statistics.observation_stats(small_dataset, 1, add)
  x = add(_all_observations(small_dataset, 1).astype(np.float64))
  np.testing.assert_allclose(mean[:-1], x[:, :-1].mean(0), rtol=1e-5)
  np.testing.assert_allclose(std[:-1], x[:, :-1].std(0), rtol=1e-5)
  assert (mean[-1], std[-1]) == (0.0, 1.0)


def test_saved_statistics_round_trip_and_bad_files_are_named(tmp_path):
  path = statistics.save(str(tmp_path / 's.npz'),
                         (np.array([1., 2.]), np.array([3., 4.])))
  mean, std = statistics.load(path)
  np.testing.assert_array_equal(mean, [1., 2.])
  np.testing.assert_array_equal(std, [3., 4.])
  bad = tmp_path / 'bad.npz'
  bad.write_bytes(b'not numpy')
  with pytest.raises(ValueError, match='bad.npz'):
    statistics.load(str(bad))
  with pytest.raises(ValueError, match='no complete episodes'):
    statistics.observation_stats(str(tmp_path))


def test_normalised_network_sees_standardised_input_with_no_new_variables():
  mean, std = np.array([1., -2., 0.5]), np.array([2., 0.5, 1.])
  critic = networks.make_critic((8, 8))
  wrapped = networks.Normalised(critic, mean, std)
  observation = tf.constant([[3., -1., 0.], [1., -2., 0.5]], tf.float32)
  action = tf.constant([[0.1], [-0.3]], tf.float32)
  q = wrapped(observation, action)
  expected = critic((observation - mean.astype(np.float32)) /
                    std.astype(np.float32), action)
  np.testing.assert_allclose(q.numpy(), expected.numpy(), rtol=1e-6)
  assert [v.name for v in wrapped.variables] == [
      v.name for v in critic.variables]


def test_a_run_with_standardised_inputs(small_dataset, tmp_path):
  """The launcher computes and saves the statistics; learner and evaluators
  train and evaluate behind them; a policy restored from the checkpoint
  with them acts differently from one without (they are used)."""
  run_dir = str(tmp_path / 'run')
  config = _config(small_dataset, run_dir, steps=25,
                   normalise_observations=True)
  result = run_lib.train(config)
  assert result.learner_steps == 25 and np.isfinite(result.final_return)
  saved = config_lib.load_train_config(os.path.join(run_dir, 'config.json'))
  assert saved.data.normalise_observations
  mean, std = saved.observation_stats()
  expected = statistics.observation_stats(small_dataset)
  np.testing.assert_array_equal(mean, expected[0])
  np.testing.assert_array_equal(std, expected[1])
  environment = environments.make(ENV_ID)
  without_stats = dataclasses.replace(saved, data=dataclasses.replace(
      saved.data, normalise_observations=False))
  restore = lambda run: run_lib.restore_policy(run, 'policy', environment)
  observation = tf.constant(_all_observations(small_dataset)[:5], tf.float32)
  with_stats = restore(saved)(observation).mean().numpy()
  without = restore(without_stats)(observation).mean().numpy()
  assert not np.allclose(with_stats, without)
