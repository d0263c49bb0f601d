"""Episodes on disk: round trip, metadata, summaries, interrupted writes."""

import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from abmrl.datasets import episodes
from abmrl.datasets import summary
from abmrl import environments

ENV_ID = 'control:point_mass-easy'


def _write_episode(writer, env, rng, steps, behaviour):
  timestep = env.reset()
  writer.begin_episode(timestep, behaviour)
  observations, actions, rewards = [timestep.observation], [], []
  for _ in range(steps):
    action = rng.uniform(-1, 1, size=2).astype(np.float32)
    timestep = env.step(action)
    writer.append(action, timestep)
    observations.append(timestep.observation)
    actions.append(action)
    rewards.append(timestep.reward)
  return writer.end_episode(), (np.array(observations), np.array(actions),
                                np.array(rewards, np.float32))


def test_round_trip_keeps_every_step_and_metadata(tmp_path):
  env = environments.make(ENV_ID, seed=3)
  writer = episodes.EpisodeWriter(str(tmp_path), ENV_ID, env)
  rng = np.random.default_rng(0)
  path, (obs, act, rew) = _write_episode(writer, env, rng, 30, 'random')
  episode = episodes.read_episode(path)
  np.testing.assert_array_equal(episode.observation, obs)
  np.testing.assert_array_equal(episode.action[:-1], act)
  np.testing.assert_array_equal(episode.action[-1], 0)
  np.testing.assert_allclose(episode.reward[:-1], rew)
  assert episode.discount[-1] == 0 and np.all(episode.discount[:-1] == 1)
  assert episode.num_transitions == 30
  assert episode.metadata['env_id'] == ENV_ID
  assert episode.metadata['behaviour'] == 'random'
  assert episode.metadata['episode_index'] == 0
  assert episode.metadata['length'] == 30
  assert episode.metadata['return'] == pytest.approx(float(rew.sum()), 1e-5)


def test_episode_indices_continue_per_behaviour(tmp_path):
  env = environments.make(ENV_ID)
  writer = episodes.EpisodeWriter(str(tmp_path), ENV_ID, env)
  rng = np.random.default_rng(0)
  for tag in ('a', 'a', 'b'):
    _write_episode(writer, env, rng, 3, tag)
  writer = episodes.EpisodeWriter(str(tmp_path), ENV_ID, env)
  path, _ = _write_episode(writer, env, rng, 3, 'a')
  assert episodes.read_episode(path).metadata['episode_index'] == 2
  assert len(episodes.list_episodes(str(tmp_path))) == 4


def test_writer_refuses_a_dataset_of_another_environment(tmp_path):
  env = environments.make(ENV_ID)
  episodes.EpisodeWriter(str(tmp_path), ENV_ID, env)
  other = environments.make('control:cartpole-swingup')
  with pytest.raises(episodes.DatasetError, match='point_mass-easy'):
    episodes.EpisodeWriter(str(tmp_path), 'control:cartpole-swingup', other)


def test_info_and_validate(small_dataset):
  info = summary.summarize(small_dataset)
  assert info.total.episodes == 8 and info.total.steps == 8 * 120
  assert set(info.by_behaviour) == {'random', 'scripted-noise0.1',
                                    'scripted-noise0.5', 'scripted-noise1.5'}
  assert info.by_behaviour['scripted-noise0.1'].return_mean > (
      info.by_behaviour['random'].return_mean)
  assert info.best_return == info.total.return_max
  text = summary.format_summary(info)
  assert 'scripted-noise0.1' in text and 'best episode' in text
  report = summary.validate(small_dataset)
  assert report.ok and report.valid == 8


def test_validate_names_a_corrupt_episode(small_dataset, tmp_path):
  import shutil
  copy = str(tmp_path / 'copy')
  shutil.copytree(small_dataset, copy)
  victim = episodes.list_episodes(copy)[3]
  _corrupt(victim)
  report = summary.validate(copy)
  assert not report.ok and report.valid == 7
  assert report.bad[0][0] == victim


def _corrupt(episode_dir):
  """Overwrites the middle of every Riegeli file of an episode with junk."""
  for root, _, files in os.walk(episode_dir):
    for name in files:
      if name.endswith('.riegeli'):
        path = os.path.join(root, name)
        size = os.path.getsize(path)
        with open(path, 'r+b') as f:
          f.seek(size // 3)
          f.write(b'\xff' * max(8, size // 3))


_KILLED_WRITER = textwrap.dedent('''
    import os, sys, time
    import numpy as np
    from abmrl.datasets import episodes
    from abmrl import environments
    env = environments.make('control:point_mass-easy')
    writer = episodes.EpisodeWriter(sys.argv[1], 'control:point_mass-easy', env)
    for i in range(2):
      ts = env.reset()
      writer.begin_episode(ts, 'random')
      for _ in range(20):
        ts = env.step(np.zeros(2, np.float32))
        writer.append(np.zeros(2, np.float32), ts)
      writer.end_episode()
    ts = env.reset()
    writer.begin_episode(ts, 'random')
    for _ in range(5):
      ts = env.step(np.zeros(2, np.float32))
      writer.append(np.zeros(2, np.float32), ts)
    print('mid-episode', flush=True)
    time.sleep(60)
''')


def test_write_killed_mid_episode_leaves_only_whole_episodes(tmp_path):
  directory = str(tmp_path / 'data')
  process = subprocess.Popen([sys.executable, '-c', _KILLED_WRITER, directory],
                             stdout=subprocess.PIPE, text=True)
  assert process.stdout.readline().strip() == 'mid-episode'
  process.send_signal(signal.SIGKILL)
  process.wait()
  paths = episodes.list_episodes(directory)
  assert len(paths) == 2
  assert len(episodes.list_partial_episodes(directory)) == 1
  assert all(episodes.read_episode(p).num_transitions == 20 for p in paths)
  report = summary.validate(directory)
  assert report.ok and report.valid == 2 and len(report.partial) == 1
  # The next writer removes the unfinished episode and reuses its index.
  env = environments.make(ENV_ID)
  writer = episodes.EpisodeWriter(directory, ENV_ID, env)
  assert not episodes.list_partial_episodes(directory)
  assert writer.next_episode_index('random') == 2


def test_first_episodes_is_a_view_per_behaviour(small_dataset):
  paths = episodes.list_episodes(small_dataset, first_episodes=1)
  assert len(paths) == 4  # one per behaviour tag
  assert all(p.endswith('0000000') for p in paths)
  assert len(episodes.list_episodes(small_dataset, first_episodes=5)) == 8


def test_merge_renumbers_and_refuses_other_environments(small_dataset,
                                                        tmp_path):
  out = str(tmp_path / 'merged')
  assert episodes.merge([small_dataset, small_dataset], out) == 16
  paths = episodes.list_episodes(out)
  assert len(paths) == 16
  assert sorted(os.listdir(os.path.join(out, 'episodes', 'random'))) == [
      f'{i:07d}' for i in range(4)]
  assert summary.validate(out).ok
  env = environments.make('control:cartpole-swingup')
  other = str(tmp_path / 'other')
  episodes.EpisodeWriter(other, 'control:cartpole-swingup', env)
  with pytest.raises(episodes.DatasetError, match='cannot merge'):
    episodes.merge([small_dataset, other], str(tmp_path / 'bad'))


def test_info_plot(small_dataset, tmp_path):
  info = summary.summarize(small_dataset)
  assert [i for i, _ in sorted(info.returns_by_index['random'])] == [0, 1]
  path = summary.plot_returns(info, str(tmp_path / 'r.png'))
  assert os.path.getsize(path) > 1000


def test_held_out_returns_are_monte_carlo_returns_of_the_held_out_rows(
    small_dataset):
  """G_t = Σ_k γ^k r_{t+k} to the episode's end, in NumPy, for the rows
  whose cut-off tail weighs γ^(T−t) ≤ 0.05 (the generator's episodes end at
  a time limit), each with its episode's behaviour tag index."""
  gamma = 0.9
  got = episodes.held_out_returns(small_dataset, 0.5, gamma,
                                  max_transitions=10_000)
  _, held = episodes.holdout_split(episodes.list_episodes(small_dataset), 0.5)
  tags = episodes.behaviour_tags(small_dataset)
  want_returns, want_tags = [], []
  for path in held:
    episode = episodes.read_episode(path)
    rewards = episode.reward[:-1].astype(np.float64)
    rows = len(rewards)
    for t in range(rows):
      if gamma ** (rows - t) <= 0.05:
        want_returns.append(np.sum(rewards[t:] * gamma ** np.arange(rows - t)))
        want_tags.append(tags.index(episodes.episode_behaviour(path)))
  assert len(want_returns) == 4 * 92  # 4 held-out episodes of 120 steps
  np.testing.assert_allclose(got['return'], want_returns, rtol=1e-5,
                             atol=1e-5)
  np.testing.assert_array_equal(got['behaviour'], want_tags)
  assert got['observation'].shape == (4 * 92, 4)
  assert got['action'].shape == (4 * 92, 2)
  # Episodes shorter than the discount's horizon leave no row.
  assert not len(episodes.held_out_returns(small_dataset, 0.5, 0.99)['return'])
