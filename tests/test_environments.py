import numpy as np
import pytest

from abmrl import environments


def test_control_suite_task_has_flat_float32_observations():
  env = environments.make('control:cheetah-run', seed=1)
  assert env.observation_spec().shape == (17,)
  assert env.observation_spec().dtype == np.float32
  assert env.action_spec().shape == (6,)
  timestep = env.reset()
  assert timestep.observation.dtype == np.float32
  timestep = env.step(np.zeros(6, np.float32))
  assert timestep.observation.shape == (17,)
  assert np.isfinite(timestep.reward)


def test_registry_lists_control_suite_ids():
  ids = environments.env_ids()
  assert 'control:cheetah-run' in ids and 'control:walker-walk' in ids


def test_unknown_id_is_a_clear_error_listing_valid_ids():
  with pytest.raises(environments.UnknownEnvironmentError) as error:
    environments.make('control:cheetah-fly')
  message = str(error.value)
  assert "'control:cheetah-fly'" in message
  assert 'control:cheetah-run' in message
