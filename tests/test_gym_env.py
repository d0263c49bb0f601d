"""gymnasium's MuJoCo tasks as `gym:<Name>-v5`: the dm_env interface, D4RL's
normalised score, and a D4RL-layout file of Hopper imported and trained on,
evaluated in the matching environment."""

import os
import subprocess
import sys

import h5py
import numpy as np
import pytest

from abmrl import environments
from abmrl.environments import gym as gym_envs
from abmrl.launch import run as run_lib
from tests.conftest import run_ok


def test_episodes_end_by_termination_or_at_the_time_limit():
  hopper = environments.make('gym:Hopper-v5', seed=0)
  assert hopper.observation_spec().shape == (11,)
  assert hopper.action_spec().shape == (3,)
  first = hopper.reset()
  assert first.first() and first.observation.dtype == np.float32
  again = environments.make('gym:Hopper-v5', seed=0).reset()
  np.testing.assert_array_equal(first.observation, again.observation)
  steps = 0
  while True:  # with the maximal action the hopper falls: a termination
    timestep = hopper.step(np.ones(3, np.float32))
    steps += 1
    if timestep.last():
      break
  assert steps < 1000 and timestep.discount == 0
  assert hopper.step(np.zeros(3)).first()  # then a new episode
  cheetah = environments.make('gym:HalfCheetah-v5', seed=1)
  cheetah.reset()
  for steps in range(1, 1001):
    timestep = cheetah.step(np.zeros(6, np.float32))
    if timestep.last():
      break
  assert steps == 1000 and timestep.discount == 1  # truncated, not terminal
  assert environments.step_limit('gym:HalfCheetah-v5') == 1000


def test_d4rl_normalised_score():
  score = environments.score('gym:Walker2d-v5')
  low, high = gym_envs.D4RL_REFERENCE['Walker2d']
  assert score(low) == pytest.approx(0.)
  assert score(high) == pytest.approx(100.)
  assert score((low + high) / 2) == pytest.approx(50.)
  assert environments.score('control:point_mass-easy') is None


def _hopper_d4rl_file(path, episodes=3):
  """Random-policy Hopper episodes in D4RL's flat layout (terminals where it
  fell, a timeout where a 40-step cap cut it)."""
  env = environments.make('gym:Hopper-v5', seed=3)
  rng = np.random.default_rng(3)
  rows = {k: [] for k in ('observations', 'actions', 'rewards', 'terminals',
                          'timeouts', 'next_observations')}
  for _ in range(episodes):
    timestep = env.reset()
    for t in range(40):
      action = rng.uniform(-1, 1, 3).astype(np.float32)
      after = env.step(action)
      rows['observations'].append(timestep.observation)
      rows['actions'].append(action)
      rows['rewards'].append(after.reward)
      rows['next_observations'].append(after.observation)
      rows['terminals'].append(after.last() and after.discount == 0)
      rows['timeouts'].append(not after.last() and t == 39)
      timestep = after
      if after.last():
        break
  with h5py.File(path, 'w') as h5:
    for key, values in rows.items():
      h5.create_dataset(key, data=np.asarray(values))
  return str(path)


def test_imported_d4rl_file_trains_and_evaluates_with_its_score(tmp_path):
  source = _hopper_d4rl_file(tmp_path / 'hopper-random.hdf5')
  dataset = str(tmp_path / 'hopper')
  run_ok([sys.executable, '-m', 'abmrl.launch.cli', 'dataset', 'import',
          source, '--format', 'd4rl', '--env', 'gym:Hopper-v5',
          '--out', dataset])
  run_dir = str(tmp_path / 'run')
  run_ok([sys.executable, '-m', 'abmrl.launch.cli', 'train', '--agent', 'bm',
          '--env', 'gym:Hopper-v5', '--dataset', dataset, '--steps', '10',
          '--restorers', '1', '--eval-episodes', '1', '--eval-every', '100',
          '--min-replay-size', '20', '--replay-size', '500',
          '--snippets-per-item', '4', '--run-dir', run_dir,
          '--launch', 'test_mt', '--set', 'batch_size=16',
          '--set', 'policy_layer_sizes=16', '--set', 'jit_compile=false'])
  rows = run_lib.read_csv(os.path.join(run_dir, 'logs', 'evaluator_policy_0',
                                       'logs.csv'))
  final = rows[-1]
  assert final['final'] == 1
  assert final['normalised_score'] == pytest.approx(
      gym_envs.d4rl_score('Hopper-v5', final['evaluation_return']), rel=1e-4)
  # `abmrl video` renders the gym task (MuJoCo's renderer on its model).
  from abmrl.environments import rendering  # pylint: disable=g-import-not-at-top
  if rendering.default_backend() != 'osmesa':
    return  # no libOSMesa here (.ci/run installs it)
  from PIL import Image  # pylint: disable=g-import-not-at-top
  out = str(tmp_path / 'hopper.gif')
  done = subprocess.run(
      [sys.executable, '-m', 'abmrl.launch.cli', 'video', '--run-dir', run_dir,
       '--frame-every', '5', '--width', '64', '--height', '48', '--out', out],
      capture_output=True, text=True, timeout=240,
      env=dict(os.environ, MUJOCO_GL='osmesa', PYOPENGL_PLATFORM='osmesa'),
      cwd=os.path.dirname(os.path.dirname(__file__)))
  assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
  gif = Image.open(out)
  assert gif.size == (64, 48) and gif.n_frames >= 2
  assert np.asarray(gif.convert('RGB')).std() > 1  # not a blank frame


def test_import_names_the_older_version_a_file_was_logged_in(tmp_path,
                                                             capsys):
  from abmrl.launch import cli  # pylint: disable=g-import-not-at-top
  source = _hopper_d4rl_file(tmp_path / 'hopper-random-v2.hdf5', episodes=1)
  with h5py.File(source, 'a') as h5:
    h5.attrs['env_name'] = 'Hopper-v2'
  assert cli.main(['dataset', 'import', source, '--format', 'd4rl', '--env',
                   'gym:Hopper-v5', '--out', str(tmp_path / 'out')]) == 0
  assert ('note: the data names Hopper-v2; gym:Hopper-v5 is used'
          in capsys.readouterr().out)
